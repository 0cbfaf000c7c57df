//! memberlist's encryption (security.go): AES-GCM with a 12-byte random nonce, behind a version
//! byte. Version 1 (protocol 2 and later, what is sent) seals the message as it is; version 0
//! (protocol 1) padded it PKCS#7-style first, and is still read.
use super::WireError;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes128Gcm, Aes256Gcm, AesGcm, Nonce};
use sha2::{Digest, Sha256};

type Aes192Gcm = AesGcm<aes_gcm::aes::Aes192, aes_gcm::aead::consts::U12>;

const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;

/// One AES key: 16, 24 or 32 bytes, as memberlist accepts.
#[derive(Clone)]
pub struct Key(KeyKind);

#[derive(Clone)]
enum KeyKind {
    Aes128(Box<Aes128Gcm>),
    Aes192(Box<Aes192Gcm>),
    Aes256(Box<Aes256Gcm>),
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

impl Key {
    pub fn new(bytes: &[u8]) -> Option<Key> {
        Some(Key(match bytes.len() {
            16 => KeyKind::Aes128(Box::new(Aes128Gcm::new_from_slice(bytes).ok()?)),
            24 => KeyKind::Aes192(Box::new(Aes192Gcm::new_from_slice(bytes).ok()?)),
            32 => KeyKind::Aes256(Box::new(Aes256Gcm::new_from_slice(bytes).ok()?)),
            _ => return None,
        }))
    }

    fn seal(&self, nonce: &[u8; NONCE], msg: &[u8], aad: &[u8]) -> Vec<u8> {
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg, aad };
        let sealed = match &self.0 {
            KeyKind::Aes128(c) => c.encrypt(nonce, payload),
            KeyKind::Aes192(c) => c.encrypt(nonce, payload),
            KeyKind::Aes256(c) => c.encrypt(nonce, payload),
        };
        sealed.expect("AES-GCM sealing only fails past 64 GiB")
    }

    fn open(&self, nonce: &[u8], sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        let nonce = Nonce::from_slice(nonce);
        let payload = Payload { msg: sealed, aad };
        match &self.0 {
            KeyKind::Aes128(c) => c.decrypt(nonce, payload),
            KeyKind::Aes192(c) => c.decrypt(nonce, payload),
            KeyKind::Aes256(c) => c.decrypt(nonce, payload),
        }
        .ok()
    }
}

/// MetalLB's key from the `secretkey` file: the first 32 bytes of `secret || SHA-256("")`
/// (Go's `sha256.New().Sum(secret)[:32]`, which appends the digest of nothing to the secret).
pub fn metallb_key(secret: &[u8]) -> Key {
    let mut material = secret.to_vec();
    material.extend_from_slice(&Sha256::digest([]));
    Key::new(&material[..32]).expect("32 bytes make an AES-256 key")
}

/// Keys tried in order when reading; the first one is used to write.
#[derive(Clone, Debug)]
pub struct Keyring {
    keys: Vec<Key>,
}

pub(super) fn sealed_len(plain: usize) -> usize {
    1 + NONCE + plain + TAG
}

impl Keyring {
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![primary],
        }
    }

    pub fn add(&mut self, key: Key) {
        self.keys.push(key);
    }

    /// `[version][nonce][ciphertext and tag]`.
    pub fn encrypt(&self, msg: &[u8], aad: &[u8], nonce: [u8; NONCE]) -> Vec<u8> {
        let mut out = Vec::with_capacity(sealed_len(msg.len()));
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&self.keys[0].seal(&nonce, msg, aad));
        out
    }

    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, WireError> {
        if sealed.len() < 1 + NONCE + TAG {
            return Err(WireError::Truncated);
        }
        let version = sealed[0];
        if version > 1 {
            return Err(WireError::Malformed("unknown encryption version"));
        }
        let (nonce, body) = sealed[1..].split_at(NONCE);
        let plain = self
            .keys
            .iter()
            .find_map(|k| k.open(nonce, body, aad))
            .ok_or(WireError::Decrypt)?;
        if version == 0 {
            // PKCS#7: the last byte says how many padding bytes to drop.
            let pad = usize::from(*plain.last().ok_or(WireError::Truncated)?);
            if pad == 0 || pad > plain.len() {
                return Err(WireError::Malformed("bad padding"));
            }
            return Ok(plain[..plain.len() - pad].to_vec());
        }
        Ok(plain)
    }
}
