//! The MessagePack subset memberlist uses, written exactly as hashicorp's go-msgpack writes it
//! (`MsgpackHandle` without `WriteExt`): byte strings as *str* types (fixstr, str16, str32,
//! never str8 or bin), structs as maps keyed by field name. Reading accepts every encoding of
//! the same values, as go-msgpack does.
use super::WireError;

/// A decoded value, borrowing strings from the input.
#[derive(Clone, Debug, PartialEq)]
pub enum Value<'a> {
    Nil,
    Bool(bool),
    Uint(u64),
    Int(i64),
    Float(f64),
    /// str or bin: Go's strings and `[]byte` alike.
    Bytes(&'a [u8]),
    Array(Vec<Value<'a>>),
    Map(Vec<(Value<'a>, Value<'a>)>),
}

/// Nesting deeper than this is not memberlist's and is rejected (no stack exhaustion).
const MAX_DEPTH: usize = 16;

impl<'a> Value<'a> {
    /// Reads one value from the front of `input`, advancing it.
    pub fn read(input: &mut &'a [u8]) -> Result<Value<'a>, WireError> {
        read_value(input, 0)
    }

    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::Uint(v) => Some(v),
            Value::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            Value::Uint(v) => i64::try_from(v).ok(),
            Value::Int(v) => Some(v),
            _ => None,
        }
    }

    /// Bytes of a str/bin; nil reads as empty (Go's nil slice).
    pub fn as_bytes(&self) -> Option<&'a [u8]> {
        match *self {
            Value::Bytes(b) => Some(b),
            Value::Nil => Some(&[]),
            _ => None,
        }
    }

    /// A `[]uint8` written as bytes (Go) or as an array of small integers (other encoders).
    pub fn as_byte_vec(&self) -> Option<Vec<u8>> {
        match self {
            Value::Array(items) => items
                .iter()
                .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect(),
            other => other.as_bytes().map(<[u8]>::to_vec),
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match *self {
            Value::Bool(b) => Some(b),
            Value::Nil => Some(false),
            _ => None,
        }
    }
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], WireError> {
    if input.len() < n {
        return Err(WireError::Truncated);
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

fn be(input: &mut &[u8], n: usize) -> Result<u64, WireError> {
    Ok(take(input, n)?
        .iter()
        .fold(0u64, |acc, b| acc << 8 | u64::from(*b)))
}

fn read_value<'a>(input: &mut &'a [u8], depth: usize) -> Result<Value<'a>, WireError> {
    if depth > MAX_DEPTH {
        return Err(WireError::Malformed("msgpack nesting too deep"));
    }
    let marker = take(input, 1)?[0];
    let length = |input: &mut &'a [u8], n: usize| -> Result<usize, WireError> {
        usize::try_from(be(input, n)?).map_err(|_| WireError::Malformed("msgpack length"))
    };
    Ok(match marker {
        0x00..=0x7f => Value::Uint(u64::from(marker)),
        0x80..=0x8f => read_map(input, usize::from(marker & 0x0f), depth)?,
        0x90..=0x9f => read_array(input, usize::from(marker & 0x0f), depth)?,
        0xa0..=0xbf => Value::Bytes(take(input, usize::from(marker & 0x1f))?),
        0xc0 => Value::Nil,
        0xc2 => Value::Bool(false),
        0xc3 => Value::Bool(true),
        0xc4 | 0xd9 => {
            let n = length(input, 1)?;
            Value::Bytes(take(input, n)?)
        }
        0xc5 | 0xda => {
            let n = length(input, 2)?;
            Value::Bytes(take(input, n)?)
        }
        0xc6 | 0xdb => {
            let n = length(input, 4)?;
            Value::Bytes(take(input, n)?)
        }
        0xca => Value::Float(f64::from(f32::from_bits(be(input, 4)? as u32))),
        0xcb => Value::Float(f64::from_bits(be(input, 8)?)),
        0xcc => Value::Uint(be(input, 1)?),
        0xcd => Value::Uint(be(input, 2)?),
        0xce => Value::Uint(be(input, 4)?),
        0xcf => Value::Uint(be(input, 8)?),
        0xd0 => Value::Int(i64::from(be(input, 1)? as u8 as i8)),
        0xd1 => Value::Int(i64::from(be(input, 2)? as u16 as i16)),
        0xd2 => Value::Int(i64::from(be(input, 4)? as u32 as i32)),
        0xd3 => Value::Int(be(input, 8)? as i64),
        0xdc => {
            let n = length(input, 2)?;
            read_array(input, n, depth)?
        }
        0xdd => {
            let n = length(input, 4)?;
            read_array(input, n, depth)?
        }
        0xde => {
            let n = length(input, 2)?;
            read_map(input, n, depth)?
        }
        0xdf => {
            let n = length(input, 4)?;
            read_map(input, n, depth)?
        }
        0xe0..=0xff => Value::Int(i64::from(marker as i8)),
        _ => return Err(WireError::Malformed("unsupported msgpack type")),
    })
}

fn read_array<'a>(input: &mut &'a [u8], n: usize, depth: usize) -> Result<Value<'a>, WireError> {
    // Every element takes at least one byte: a larger count is a lie, not an allocation.
    if n > input.len() {
        return Err(WireError::Truncated);
    }
    (0..n)
        .map(|_| read_value(input, depth + 1))
        .collect::<Result<_, _>>()
        .map(Value::Array)
}

fn read_map<'a>(input: &mut &'a [u8], n: usize, depth: usize) -> Result<Value<'a>, WireError> {
    if n.saturating_mul(2) > input.len() {
        return Err(WireError::Truncated);
    }
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        let key = read_value(input, depth + 1)?;
        let value = read_value(input, depth + 1)?;
        entries.push((key, value));
    }
    Ok(Value::Map(entries))
}

/// Writes values the way go-msgpack does.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn map(&mut self, entries: usize) {
        match entries {
            0..=15 => self.buf.push(0x80 | entries as u8),
            16..=0xffff => {
                self.buf.push(0xde);
                self.buf.extend_from_slice(&(entries as u16).to_be_bytes());
            }
            _ => {
                self.buf.push(0xdf);
                self.buf.extend_from_slice(&(entries as u32).to_be_bytes());
            }
        }
    }

    /// A string or a `[]byte`: go-msgpack writes both as str without str8.
    pub fn bytes(&mut self, bytes: &[u8]) {
        match bytes.len() {
            n @ 0..=31 => self.buf.push(0xa0 | n as u8),
            n @ 32..=0xffff => {
                self.buf.push(0xda);
                self.buf.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.buf.push(0xdb);
                self.buf.extend_from_slice(&(n as u32).to_be_bytes());
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    pub fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    pub fn uint(&mut self, v: u64) {
        match v {
            0..=0x7f => self.buf.push(v as u8),
            0x80..=0xff => self.buf.extend_from_slice(&[0xcc, v as u8]),
            0x100..=0xffff => {
                self.buf.push(0xcd);
                self.buf.extend_from_slice(&(v as u16).to_be_bytes());
            }
            0x1_0000..=0xffff_ffff => {
                self.buf.push(0xce);
                self.buf.extend_from_slice(&(v as u32).to_be_bytes());
            }
            _ => {
                self.buf.push(0xcf);
                self.buf.extend_from_slice(&v.to_be_bytes());
            }
        }
    }

    pub fn bool(&mut self, v: bool) {
        self.buf.push(if v { 0xc3 } else { 0xc2 });
    }

    pub fn nil(&mut self) {
        self.buf.push(0xc0);
    }

    /// A `[]byte` field: nil when empty, as Go writes a nil slice.
    pub fn bytes_or_nil(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            self.nil()
        } else {
            self.bytes(bytes)
        }
    }
}

/// Looks a struct field up by name in a decoded map.
pub fn field<'v, 'a>(map: &'v [(Value<'a>, Value<'a>)], name: &str) -> Option<&'v Value<'a>> {
    map.iter()
        .find(|(k, _)| matches!(k, Value::Bytes(b) if *b == name.as_bytes()))
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_like_go_msgpack() {
        let mut w = Writer::default();
        w.bytes(&[7; 40]);
        assert_eq!(
            &w.buf[..3],
            &[0xda, 0, 40],
            "32..65535 bytes use str16, never str8"
        );
        let mut w = Writer::default();
        w.uint(300);
        w.uint(5);
        w.bool(true);
        assert_eq!(w.buf, [0xcd, 1, 44, 5, 0xc3]);
    }

    #[test]
    fn reads_every_encoding_back() {
        let mut w = Writer::default();
        w.map(2);
        w.str("SeqNo");
        w.uint(70_000);
        w.str("Node");
        w.str("n1");
        let mut input = w.buf.as_slice();
        let Value::Map(map) = Value::read(&mut input).unwrap() else {
            panic!("a map")
        };
        assert_eq!(field(&map, "SeqNo").and_then(Value::as_u64), Some(70_000));
        assert_eq!(
            field(&map, "Node").and_then(Value::as_bytes),
            Some(&b"n1"[..])
        );
        assert!(input.is_empty());
        // bin8 and negative fixint, which Go never writes but may read.
        let mut input: &[u8] = &[0xc4, 2, 1, 2, 0xff];
        assert_eq!(Value::read(&mut input).unwrap(), Value::Bytes(&[1, 2]));
        assert_eq!(Value::read(&mut input).unwrap(), Value::Int(-1));
    }

    #[test]
    fn rejects_lies_and_truncation() {
        let mut input: &[u8] = &[0xdd, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(Value::read(&mut input), Err(WireError::Truncated));
        let mut input: &[u8] = &[0xda, 0, 9, 1];
        assert_eq!(Value::read(&mut input), Err(WireError::Truncated));
        let deep = vec![0x91; 100];
        assert!(Value::read(&mut deep.as_slice()).is_err());
    }
}
