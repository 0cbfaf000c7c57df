//! The keys gossip is encrypted with, from the memberlist Secret mounted as a directory.
//!
//! `secretkey` is MetalLB's file: its key encrypts what we send, and is tried first on what
//! we receive. Any `secretkey-*` files are keys also accepted (in name order), so a key can
//! be rotated as memberlist's keyring allows, one rolling restart per step: add the new key
//! as `secretkey-next`; swap the two; remove the old one.
use ferrolb_gossip::wire::{Keyring, metallb_key};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("reading the memberlist key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// An empty secret derives a key everyone knows (SHA-256 of nothing): no secret at all.
    #[error(
        "the memberlist key {0} is empty: create it with `kubectl -n metallb-system create secret generic memberlist --from-literal=secretkey=\"$(openssl rand -base64 128)\"`"
    )]
    Empty(PathBuf),
}

/// The name of the primary key's file, as MetalLB mounts it.
pub const PRIMARY: &str = "secretkey";

pub fn load_keyring(dir: &Path) -> Result<Keyring, KeyError> {
    let mut keyring = Keyring::new(read_key(&dir.join(PRIMARY))?);
    let mut others: Vec<_> = std::fs::read_dir(dir)
        .map_err(|source| KeyError::Read {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{PRIMARY}-")))
        })
        .collect();
    others.sort();
    for path in others {
        keyring.add(read_key(&path)?);
    }
    Ok(keyring)
}

fn read_key(path: &Path) -> Result<ferrolb_gossip::wire::Key, KeyError> {
    let secret = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    if secret.iter().all(u8::is_ascii_whitespace) {
        return Err(KeyError::Empty(path.to_path_buf()));
    }
    Ok(metallb_key(&secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_primary_key_sends_and_the_others_are_accepted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secretkey"), "new").unwrap();
        std::fs::write(dir.path().join("secretkey-old"), "old").unwrap();
        std::fs::write(dir.path().join("unrelated"), "").unwrap();
        let keyring = load_keyring(dir.path()).unwrap();
        let sealed = keyring.encrypt(b"hello", b"", [7; 12]);
        let only_new = Keyring::new(metallb_key(b"new"));
        assert_eq!(only_new.decrypt(&sealed, b"").unwrap(), b"hello");
        let from_old = Keyring::new(metallb_key(b"old")).encrypt(b"hi", b"", [8; 12]);
        assert_eq!(keyring.decrypt(&from_old, b"").unwrap(), b"hi");
    }

    #[test]
    fn an_empty_or_missing_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_keyring(dir.path()).is_err());
        std::fs::write(dir.path().join("secretkey"), "\n").unwrap();
        let error = load_keyring(dir.path()).unwrap_err().to_string();
        assert!(error.contains("is empty"), "{error}");
        std::fs::write(dir.path().join("secretkey"), "k").unwrap();
        std::fs::write(dir.path().join("secretkey-old"), "").unwrap();
        assert!(load_keyring(dir.path()).is_err());
    }
}
