//! memberlist's messages (net.go), each a msgpack map keyed by Go field name behind a type byte.
use super::WireError;
use super::msgpack::{Value, Writer, field};

/// The first byte of every message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageType {
    Ping = 0,
    IndirectPing = 1,
    Ack = 2,
    Suspect = 3,
    Alive = 4,
    Dead = 5,
    PushPull = 6,
    Compound = 7,
    User = 8,
    Compress = 9,
    Encrypt = 10,
    Nack = 11,
    HasCrc = 12,
    Err = 13,
    /// memberlist 0.3+: a label prefix, `[244][len][label]`.
    HasLabel = 244,
}

impl MessageType {
    pub fn from_byte(b: u8) -> Option<MessageType> {
        use MessageType::*;
        Some(match b {
            0 => Ping,
            1 => IndirectPing,
            2 => Ack,
            3 => Suspect,
            4 => Alive,
            5 => Dead,
            6 => PushPull,
            7 => Compound,
            8 => User,
            9 => Compress,
            10 => Encrypt,
            11 => Nack,
            12 => HasCrc,
            13 => Err,
            244 => HasLabel,
            _ => return None,
        })
    }
}

/// A probe. `node` names the intended target, so a restarted node at the same address
/// does not answer for the one that died.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ping {
    pub seq_no: u32,
    pub node: String,
    /// Where to answer, when not the packet's source (omitted when empty).
    pub source_addr: Vec<u8>,
    pub source_port: u16,
    pub source_node: String,
}

/// A request to probe `node` at `target:port` on the sender's behalf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndirectPing {
    pub seq_no: u32,
    pub target: Vec<u8>,
    pub port: u16,
    pub node: String,
    /// Answer with a nack if the target does not answer in time.
    pub nack: bool,
    pub source_addr: Vec<u8>,
    pub source_port: u16,
    pub source_node: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ack {
    pub seq_no: u32,
    pub payload: Vec<u8>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Nack {
    pub seq_no: u32,
}

/// `from` suspects `node` at `incarnation` (also the layout of a dead message).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Suspicion {
    pub incarnation: u32,
    pub node: String,
    pub from: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Alive {
    pub incarnation: u32,
    pub node: String,
    pub addr: Vec<u8>,
    pub port: u16,
    pub meta: Vec<u8>,
    /// Protocol and delegate versions: [pmin, pmax, pcur, dmin, dmax, dcur].
    pub vsn: Vec<u8>,
}

/// A member's state as push-pull carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeState {
    Alive = 0,
    Suspect = 1,
    Dead = 2,
    /// memberlist 0.2+: left gracefully.
    Left = 3,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushNodeState {
    pub name: String,
    pub addr: Vec<u8>,
    pub port: u16,
    pub meta: Vec<u8>,
    pub incarnation: u32,
    pub state: NodeState,
    pub vsn: Vec<u8>,
}

/// A full state exchange over TCP: at a join, and periodically for anti-entropy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PushPull {
    pub join: bool,
    pub nodes: Vec<PushNodeState>,
    pub user_state: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Ping(Ping),
    IndirectPing(IndirectPing),
    Ack(Ack),
    Nack(Nack),
    Suspect(Suspicion),
    Alive(Alive),
    Dead(Suspicion),
    PushPull(PushPull),
    /// A delegate's message: carried, not interpreted.
    User(Vec<u8>),
    Err(String),
}

fn map<'v, 'a>(value: &'v Value<'a>) -> Result<&'v [(Value<'a>, Value<'a>)], WireError> {
    match value {
        Value::Map(entries) => Ok(entries),
        _ => Err(WireError::Malformed("expected a msgpack map")),
    }
}

fn u32_field(m: &[(Value, Value)], name: &'static str) -> Result<u32, WireError> {
    match field(m, name) {
        None | Some(Value::Nil) => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or(WireError::Field(name)),
    }
}

fn u16_field(m: &[(Value, Value)], name: &'static str) -> Result<u16, WireError> {
    u16::try_from(u32_field(m, name)?).map_err(|_| WireError::Field(name))
}

fn bytes_field(m: &[(Value, Value)], name: &'static str) -> Result<Vec<u8>, WireError> {
    match field(m, name) {
        None => Ok(Vec::new()),
        Some(v) => v.as_byte_vec().ok_or(WireError::Field(name)),
    }
}

fn string_field(m: &[(Value, Value)], name: &'static str) -> Result<String, WireError> {
    String::from_utf8(bytes_field(m, name)?).map_err(|_| WireError::Field(name))
}

fn bool_field(m: &[(Value, Value)], name: &'static str) -> Result<bool, WireError> {
    field(m, name).map_or(Ok(false), |v| v.as_bool().ok_or(WireError::Field(name)))
}

impl Message {
    pub fn message_type(&self) -> MessageType {
        match self {
            Message::Ping(_) => MessageType::Ping,
            Message::IndirectPing(_) => MessageType::IndirectPing,
            Message::Ack(_) => MessageType::Ack,
            Message::Nack(_) => MessageType::Nack,
            Message::Suspect(_) => MessageType::Suspect,
            Message::Alive(_) => MessageType::Alive,
            Message::Dead(_) => MessageType::Dead,
            Message::PushPull(_) => MessageType::PushPull,
            Message::User(_) => MessageType::User,
            Message::Err(_) => MessageType::Err,
        }
    }

    /// The message with its type byte, as go-msgpack writes it: fields in name order, the
    /// `omitempty` ones left out when empty.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.buf.push(self.message_type() as u8);
        match self {
            Message::Ping(p) => {
                w.map(2 + source_fields(&p.source_addr, p.source_port, &p.source_node));
                w.str("Node");
                w.str(&p.node);
                w.str("SeqNo");
                w.uint(u64::from(p.seq_no));
                write_source(&mut w, &p.source_addr, p.source_port, &p.source_node);
            }
            Message::IndirectPing(p) => {
                w.map(5 + source_fields(&p.source_addr, p.source_port, &p.source_node));
                w.str("Nack");
                w.bool(p.nack);
                w.str("Node");
                w.str(&p.node);
                w.str("Port");
                w.uint(u64::from(p.port));
                w.str("SeqNo");
                w.uint(u64::from(p.seq_no));
                write_source(&mut w, &p.source_addr, p.source_port, &p.source_node);
                w.str("Target");
                w.bytes_or_nil(&p.target);
            }
            Message::Ack(a) => {
                w.map(2);
                w.str("Payload");
                w.bytes_or_nil(&a.payload);
                w.str("SeqNo");
                w.uint(u64::from(a.seq_no));
            }
            Message::Nack(n) => {
                w.map(1);
                w.str("SeqNo");
                w.uint(u64::from(n.seq_no));
            }
            Message::Suspect(s) | Message::Dead(s) => {
                w.map(3);
                w.str("From");
                w.str(&s.from);
                w.str("Incarnation");
                w.uint(u64::from(s.incarnation));
                w.str("Node");
                w.str(&s.node);
            }
            Message::Alive(a) => {
                w.map(6);
                w.str("Addr");
                w.bytes_or_nil(&a.addr);
                w.str("Incarnation");
                w.uint(u64::from(a.incarnation));
                w.str("Meta");
                w.bytes_or_nil(&a.meta);
                w.str("Node");
                w.str(&a.node);
                w.str("Port");
                w.uint(u64::from(a.port));
                w.str("Vsn");
                w.bytes_or_nil(&a.vsn);
            }
            Message::PushPull(p) => {
                w.map(3);
                w.str("Join");
                w.bool(p.join);
                w.str("Nodes");
                w.uint(p.nodes.len() as u64);
                w.str("UserStateLen");
                w.uint(p.user_state.len() as u64);
                for n in &p.nodes {
                    w.map(7);
                    w.str("Addr");
                    w.bytes_or_nil(&n.addr);
                    w.str("Incarnation");
                    w.uint(u64::from(n.incarnation));
                    w.str("Meta");
                    w.bytes_or_nil(&n.meta);
                    w.str("Name");
                    w.str(&n.name);
                    w.str("Port");
                    w.uint(u64::from(n.port));
                    w.str("State");
                    w.uint(n.state as u64);
                    w.str("Vsn");
                    w.bytes_or_nil(&n.vsn);
                }
                w.buf.extend_from_slice(&p.user_state);
            }
            Message::User(bytes) => w.buf.extend_from_slice(bytes),
            Message::Err(text) => {
                w.map(1);
                w.str("Error");
                w.str(text);
            }
        }
        w.buf
    }

    /// Decodes one message of a known type from its body (after the type byte). Compound,
    /// compressed, encrypted and checksummed wrappers are the packet layer's.
    pub fn decode(message_type: MessageType, body: &[u8]) -> Result<Message, WireError> {
        let mut input = body;
        let value = match message_type {
            MessageType::User => return Ok(Message::User(body.to_vec())),
            _ => Value::read(&mut input)?,
        };
        let m = map(&value)?;
        Ok(match message_type {
            MessageType::Ping => Message::Ping(Ping {
                seq_no: u32_field(m, "SeqNo")?,
                node: string_field(m, "Node")?,
                source_addr: bytes_field(m, "SourceAddr")?,
                source_port: u16_field(m, "SourcePort")?,
                source_node: string_field(m, "SourceNode")?,
            }),
            MessageType::IndirectPing => Message::IndirectPing(IndirectPing {
                seq_no: u32_field(m, "SeqNo")?,
                target: bytes_field(m, "Target")?,
                port: u16_field(m, "Port")?,
                node: string_field(m, "Node")?,
                nack: bool_field(m, "Nack")?,
                source_addr: bytes_field(m, "SourceAddr")?,
                source_port: u16_field(m, "SourcePort")?,
                source_node: string_field(m, "SourceNode")?,
            }),
            MessageType::Ack => Message::Ack(Ack {
                seq_no: u32_field(m, "SeqNo")?,
                payload: bytes_field(m, "Payload")?,
            }),
            MessageType::Nack => Message::Nack(Nack {
                seq_no: u32_field(m, "SeqNo")?,
            }),
            MessageType::Suspect | MessageType::Dead => {
                let s = Suspicion {
                    incarnation: u32_field(m, "Incarnation")?,
                    node: string_field(m, "Node")?,
                    from: string_field(m, "From")?,
                };
                if message_type == MessageType::Suspect {
                    Message::Suspect(s)
                } else {
                    Message::Dead(s)
                }
            }
            MessageType::Alive => Message::Alive(Alive {
                incarnation: u32_field(m, "Incarnation")?,
                node: string_field(m, "Node")?,
                addr: bytes_field(m, "Addr")?,
                port: u16_field(m, "Port")?,
                meta: bytes_field(m, "Meta")?,
                vsn: bytes_field(m, "Vsn")?,
            }),
            MessageType::PushPull => {
                let count = field(m, "Nodes").and_then(Value::as_u64).unwrap_or(0);
                let user_len = field(m, "UserStateLen")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                // Each node state takes bytes: a count larger than what is left is a lie.
                if count > input.len() as u64 || user_len > input.len() as u64 {
                    return Err(WireError::Truncated);
                }
                // The count is the sender's word: grow as the states really arrive.
                let mut nodes = Vec::with_capacity((count as usize).min(1024));
                for _ in 0..count {
                    let value = Value::read(&mut input)?;
                    let n = map(&value)?;
                    let state = match u32_field(n, "State")? {
                        0 => NodeState::Alive,
                        1 => NodeState::Suspect,
                        2 => NodeState::Dead,
                        3 => NodeState::Left,
                        _ => return Err(WireError::Field("State")),
                    };
                    nodes.push(PushNodeState {
                        name: string_field(n, "Name")?,
                        addr: bytes_field(n, "Addr")?,
                        port: u16_field(n, "Port")?,
                        meta: bytes_field(n, "Meta")?,
                        incarnation: u32_field(n, "Incarnation")?,
                        state,
                        vsn: bytes_field(n, "Vsn")?,
                    });
                }
                let user_len = user_len as usize;
                if input.len() < user_len {
                    return Err(WireError::Truncated);
                }
                Message::PushPull(PushPull {
                    join: bool_field(m, "Join")?,
                    nodes,
                    user_state: input[..user_len].to_vec(),
                })
            }
            MessageType::Err => Message::Err(string_field(m, "Error")?),
            MessageType::Compound
            | MessageType::Compress
            | MessageType::Encrypt
            | MessageType::HasCrc
            | MessageType::HasLabel
            | MessageType::User => {
                return Err(WireError::Malformed(
                    "a wrapper where a message was expected",
                ));
            }
        })
    }
}

fn source_fields(addr: &[u8], port: u16, node: &str) -> usize {
    usize::from(!addr.is_empty()) + usize::from(port != 0) + usize::from(!node.is_empty())
}

/// `codec:",omitempty"` fields: absent when empty, as Go writes them; in name order.
fn write_source(w: &mut Writer, addr: &[u8], port: u16, node: &str) {
    if !addr.is_empty() {
        w.str("SourceAddr");
        w.bytes(addr);
    }
    if !node.is_empty() {
        w.str("SourceNode");
        w.str(node);
    }
    if port != 0 {
        w.str("SourcePort");
        w.uint(u64::from(port));
    }
}
