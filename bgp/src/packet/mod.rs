//! BGP messages: bytes to values and back. Decoding never panics and never trusts a length:
//! every problem is a [`Notify`] (the NOTIFICATION it calls for) or, inside an UPDATE, an
//! [`AttributeProblem`] handled as RFC 7606 says.
mod capability;
mod error;
mod notification;
mod open;
mod prefix;
mod update;

#[cfg(test)]
mod tests;

pub use capability::{Afi, Capability, Family, GracefulRestart, Safi};
pub use error::{AttributeProblem, Handling, Notify, code, describe, subcode};
pub use notification::{Notification, RouteRefresh, RouteRefreshKind};
pub use open::Open;
pub use prefix::{decode_prefixes, encode_prefix};
pub use update::{
    AsPathSegment, Attributes, GRACEFUL_SHUTDOWN, MpReach, MpUnreach, NextHop, Origin, SegmentType,
    Update, pack_announcements, pack_withdrawals,
};

pub const MARKER: [u8; 16] = [0xff; 16];
pub const HEADER_LEN: usize = 19;
/// RFC 4271's limit; FerroLB does not negotiate extended messages (RFC 8654).
pub const MAX_MESSAGE_LEN: usize = 4096;

pub const TYPE_OPEN: u8 = 1;
pub const TYPE_UPDATE: u8 = 2;
pub const TYPE_NOTIFICATION: u8 = 3;
pub const TYPE_KEEPALIVE: u8 = 4;
pub const TYPE_ROUTE_REFRESH: u8 = 5;
/// ROUTE-REFRESH as Cisco sent it before RFC 2918, still accepted.
pub const TYPE_ROUTE_REFRESH_LEGACY: u8 = 128;

/// What reading an UPDATE depends on, as negotiated in the OPEN exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Both sides announced 4-octet AS numbers (RFC 6793): AS_PATH carries 4-byte ASNs.
    pub four_octet_as: bool,
    /// The peer is in our AS: LOCAL_PREF is meaningful.
    pub ibgp: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    /// Boxed: an UPDATE's attributes dwarf the other messages.
    Update(Box<Update>),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// The length of the first message in `buf` once it has arrived whole, after checking its
/// header: `Ok(None)` while more bytes are needed.
pub fn frame_length(buf: &[u8]) -> Result<Option<usize>, Notify> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    if buf[..16] != MARKER {
        return Err(Notify::header(subcode::CONNECTION_NOT_SYNCHRONIZED, []));
    }
    let length = usize::from(u16::from_be_bytes([buf[16], buf[17]]));
    let minimum = match buf[18] {
        TYPE_OPEN => HEADER_LEN + 10,
        TYPE_UPDATE => HEADER_LEN + 4,
        TYPE_NOTIFICATION => HEADER_LEN + 2,
        TYPE_KEEPALIVE => HEADER_LEN,
        TYPE_ROUTE_REFRESH | TYPE_ROUTE_REFRESH_LEGACY => HEADER_LEN + 4,
        other => return Err(Notify::header(subcode::BAD_MESSAGE_TYPE, [other])),
    };
    let exact_keepalive = buf[18] != TYPE_KEEPALIVE || length == HEADER_LEN;
    if length < minimum || length > MAX_MESSAGE_LEN || !exact_keepalive {
        return Err(Notify::header(
            subcode::BAD_MESSAGE_LENGTH,
            (length as u16).to_be_bytes(),
        ));
    }
    Ok((buf.len() >= length).then_some(length))
}

/// Reads one whole message (header included), as `frame_length` delimited it.
pub fn decode(message: &[u8], ctx: &Context) -> Result<Message, Notify> {
    let Some(length) = frame_length(message)? else {
        return Err(Notify::header(
            subcode::BAD_MESSAGE_LENGTH,
            (message.len() as u16).to_be_bytes(),
        ));
    };
    if length != message.len() {
        return Err(Notify::header(
            subcode::BAD_MESSAGE_LENGTH,
            (length as u16).to_be_bytes(),
        ));
    }
    let body = &message[HEADER_LEN..];
    Ok(match message[18] {
        TYPE_OPEN => Message::Open(Open::decode(body)?),
        TYPE_UPDATE => Message::Update(Box::new(Update::decode(body, ctx)?)),
        TYPE_NOTIFICATION => Message::Notification(Notification::decode(body)),
        TYPE_KEEPALIVE => Message::Keepalive,
        _ => Message::RouteRefresh(RouteRefresh::decode(message)?),
    })
}

impl Message {
    /// The whole message, header included.
    pub fn encode(&self, ctx: &Context) -> Vec<u8> {
        let (kind, body) = match self {
            Message::Open(open) => (TYPE_OPEN, open.encode()),
            Message::Update(update) => (TYPE_UPDATE, update.encode(ctx)),
            Message::Notification(n) => (TYPE_NOTIFICATION, n.encode()),
            Message::Keepalive => (TYPE_KEEPALIVE, Vec::new()),
            Message::RouteRefresh(r) => (TYPE_ROUTE_REFRESH, r.encode()),
        };
        frame(kind, &body)
    }
}

/// A message of `kind` around `body`.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&MARKER);
    out.extend_from_slice(&((HEADER_LEN + body.len()) as u16).to_be_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    out
}
