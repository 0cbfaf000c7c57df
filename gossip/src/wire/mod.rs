//! memberlist's wire format: messages, and the wrappers around them on UDP (compound, CRC,
//! label, compression, encryption) and on TCP streams (push-pull, encryption, compression).
mod crypto;
mod message;
pub mod msgpack;

#[cfg(test)]
mod tests;

pub use crypto::{Key, Keyring, metallb_key};
pub use message::{
    Ack, Alive, IndirectPing, Message, MessageType, Nack, NodeState, Ping, PushNodeState, PushPull,
    Suspicion,
};

/// Why bytes from the network were not accepted. Never a panic: every decoder returns one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("truncated message")]
    Truncated,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
    #[error("bad field {0}")]
    Field(&'static str),
    #[error("unknown message type {0}")]
    UnknownType(u8),
    #[error("checksum mismatch")]
    Checksum,
    #[error("no key decrypts the message (wrong or missing secret key?)")]
    Decrypt,
    #[error("the message is not encrypted, but encryption is required")]
    NotEncrypted,
    #[error("the message is encrypted, but no key is configured")]
    UnexpectedlyEncrypted,
    #[error("decompression failed")]
    Decompress,
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("label {got:?} does not match {expected:?}")]
    Label { got: String, expected: String },
}

/// Largest decompressed or decrypted stream accepted, as memberlist's `maxPushStateBytes`.
pub const MAX_STREAM_BYTES: usize = 20 * 1024 * 1024;

/// Largest decompressed datagram accepted: what fits in a UDP packet. memberlist compresses
/// what it would send in one, so a compressed datagram that expands past this is a bomb
/// (54 KB of LZW once expanded to 73 MB).
pub const MAX_PACKET_BYTES: usize = 64 * 1024;

/// Nesting of compound and compressed wrappers accepted (memberlist uses at most two).
const MAX_WRAPPING: usize = 4;

/// Decodes a UDP packet into its messages. With a keyring, the packet must be encrypted with
/// one of its keys (memberlist's GossipVerifyIncoming).
pub fn decode_packet(packet: &[u8], keyring: Option<&Keyring>) -> Result<Vec<Message>, WireError> {
    let plain;
    let mut buf = packet;
    if let Some(keyring) = keyring {
        plain = keyring.decrypt(buf, &[])?;
        buf = &plain;
    }
    let buf = strip_label(buf)?;
    let mut out = Vec::new();
    if buf.len() >= 5 && buf[0] == MessageType::HasCrc as u8 {
        let expected = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
        if crc32fast::hash(&buf[5..]) != expected {
            return Err(WireError::Checksum);
        }
        decode_command(&buf[5..], &mut out, 0)?;
    } else {
        decode_command(buf, &mut out, 0)?;
    }
    Ok(out)
}

/// Labels (memberlist 0.3+) are accepted only when empty; FerroLB and MetalLB set none.
fn strip_label(buf: &[u8]) -> Result<&[u8], WireError> {
    if buf.first() != Some(&(MessageType::HasLabel as u8)) {
        return Ok(buf);
    }
    let len = usize::from(*buf.get(1).ok_or(WireError::Truncated)?);
    let label = buf.get(2..2 + len).ok_or(WireError::Truncated)?;
    Err(WireError::Label {
        got: String::from_utf8_lossy(label).into_owned(),
        expected: String::new(),
    })
}

fn decode_command(buf: &[u8], out: &mut Vec<Message>, depth: usize) -> Result<(), WireError> {
    if depth > MAX_WRAPPING {
        return Err(WireError::Malformed("wrappers nested too deep"));
    }
    let (&first, body) = buf.split_first().ok_or(WireError::Truncated)?;
    let message_type = MessageType::from_byte(first).ok_or(WireError::UnknownType(first))?;
    match message_type {
        MessageType::Compound => {
            // [count][count x u16 length][parts]
            let (&count, rest) = body.split_first().ok_or(WireError::Truncated)?;
            let count = usize::from(count);
            let lengths = rest.get(..count * 2).ok_or(WireError::Truncated)?;
            let mut parts = &rest[count * 2..];
            for pair in lengths.chunks_exact(2) {
                let len = usize::from(u16::from_be_bytes([pair[0], pair[1]]));
                let part = parts.get(..len).ok_or(WireError::Truncated)?;
                parts = &parts[len..];
                decode_command(part, out, depth + 1)?;
            }
            Ok(())
        }
        MessageType::Compress => {
            decode_command(&decompress(body, MAX_PACKET_BYTES)?, out, depth + 1)
        }
        _ => {
            out.push(Message::decode(message_type, body)?);
            Ok(())
        }
    }
}

/// memberlist's `compress{Algo, Buf}`: LZW, least significant bit first, 8-bit literals;
/// refused as soon as the output would pass `limit`.
fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let mut input = body;
    let value = msgpack::Value::read(&mut input)?;
    let msgpack::Value::Map(map) = value else {
        return Err(WireError::Malformed("compress"));
    };
    if msgpack::field(&map, "Algo")
        .and_then(msgpack::Value::as_u64)
        .unwrap_or(0)
        != 0
    {
        return Err(WireError::Malformed("unknown compression algorithm"));
    }
    let compressed = msgpack::field(&map, "Buf")
        .and_then(msgpack::Value::as_bytes)
        .ok_or(WireError::Field("Buf"))?;
    let mut decoder = weezl::decode::Decoder::new(weezl::BitOrder::Lsb, 8);
    let mut out = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut input = compressed;
    loop {
        let result = decoder.decode_bytes(input, &mut chunk);
        input = &input[result.consumed_in..];
        if out.len() + result.consumed_out > limit {
            return Err(WireError::TooLarge(limit));
        }
        out.extend_from_slice(&chunk[..result.consumed_out]);
        match result.status {
            Ok(weezl::LzwStatus::Done) => return Ok(out),
            Ok(weezl::LzwStatus::Ok) if result.consumed_in == 0 && result.consumed_out == 0 => {
                return Ok(out);
            }
            Ok(_) if input.is_empty() && result.consumed_out == 0 => return Ok(out),
            Ok(_) => {}
            Err(_) => return Err(WireError::Decompress),
        }
    }
}

/// Encodes messages into one UDP packet: one message alone, several as a compound; a CRC when
/// the receiver speaks protocol 5 or later; encrypted with the keyring's primary key.
pub fn encode_packet(
    messages: &[Message],
    crc: bool,
    keyring: Option<&Keyring>,
    nonce: [u8; 12],
) -> Vec<u8> {
    let mut buf = match messages {
        [single] => single.encode(),
        many => {
            let parts: Vec<Vec<u8>> = many.iter().map(Message::encode).collect();
            let mut buf = vec![MessageType::Compound as u8, parts.len() as u8];
            for part in &parts {
                buf.extend_from_slice(&(part.len() as u16).to_be_bytes());
            }
            parts.iter().for_each(|p| buf.extend_from_slice(p));
            buf
        }
    };
    if crc {
        let mut framed = vec![MessageType::HasCrc as u8];
        framed.extend_from_slice(&crc32fast::hash(&buf).to_be_bytes());
        framed.extend_from_slice(&buf);
        buf = framed;
    }
    match keyring {
        Some(keyring) => keyring.encrypt(&buf, &[], nonce),
        None => buf,
    }
}

/// Encodes a message for a TCP stream: encrypted streams are `[encrypt][u32 length][sealed]`,
/// with the 5-byte header as additional data.
pub fn encode_stream(message: &Message, keyring: Option<&Keyring>, nonce: [u8; 12]) -> Vec<u8> {
    let plain = message.encode();
    let Some(keyring) = keyring else { return plain };
    let sealed_len = crypto::sealed_len(plain.len());
    let mut header = vec![MessageType::Encrypt as u8];
    header.extend_from_slice(&(sealed_len as u32).to_be_bytes());
    let sealed = keyring.encrypt(&plain, &header, nonce);
    header.extend_from_slice(&sealed);
    header
}

/// Decodes one message from the start of a TCP stream. `Err(Truncated)` means more bytes are
/// needed; any other error means the stream is bad and must be closed.
pub fn decode_stream(stream: &[u8], keyring: Option<&Keyring>) -> Result<Message, WireError> {
    let (&first, rest) = stream.split_first().ok_or(WireError::Truncated)?;
    let decrypted;
    let mut buf = stream;
    if first == MessageType::Encrypt as u8 {
        let keyring = keyring.ok_or(WireError::UnexpectedlyEncrypted)?;
        let len_bytes = rest.get(..4).ok_or(WireError::Truncated)?;
        let len =
            u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]) as usize;
        if len > MAX_STREAM_BYTES {
            return Err(WireError::TooLarge(MAX_STREAM_BYTES));
        }
        let sealed = rest.get(4..4 + len).ok_or(WireError::Truncated)?;
        decrypted = keyring.decrypt(sealed, &stream[..5])?;
        buf = &decrypted;
    } else if keyring.is_some() {
        return Err(WireError::NotEncrypted);
    }
    let (&first, body) = buf.split_first().ok_or(WireError::Truncated)?;
    let message_type = MessageType::from_byte(first).ok_or(WireError::UnknownType(first))?;
    match message_type {
        MessageType::Compress => {
            let inner = decompress(body, MAX_STREAM_BYTES)?;
            let (&t, body) = inner.split_first().ok_or(WireError::Truncated)?;
            let t = MessageType::from_byte(t).ok_or(WireError::UnknownType(t))?;
            // Inside a compressed stream, truncation is corruption, not a short read.
            Message::decode(t, body).map_err(|e| {
                if e == WireError::Truncated {
                    WireError::Malformed("truncated compressed stream")
                } else {
                    e
                }
            })
        }
        MessageType::Compound
        | MessageType::HasCrc
        | MessageType::Encrypt
        | MessageType::HasLabel => Err(WireError::Malformed("unexpected wrapper on a stream")),
        t => Message::decode(t, body),
    }
}
