//! What a malformed message means: the NOTIFICATION it calls for (code, subcode, data), and,
//! for an UPDATE, what RFC 7606 makes of it (reset the session, treat the routes as
//! withdrawn, or drop the attribute and go on).
use std::fmt;

/// NOTIFICATION error codes (RFC 4271 4.5 and later).
pub mod code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN: u8 = 2;
    pub const UPDATE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH: u8 = 7;
}

/// Subcodes, by code.
pub mod subcode {
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;

    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;

    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN: u8 = 2;
    pub const MISSING_WELL_KNOWN: u8 = 3;
    pub const ATTRIBUTE_FLAGS: u8 = 4;
    pub const ATTRIBUTE_LENGTH: u8 = 5;
    pub const INVALID_ORIGIN: u8 = 6;
    pub const INVALID_NEXT_HOP: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;

    pub const MAX_PREFIXES: u8 = 1;
    pub const ADMINISTRATIVE_SHUTDOWN: u8 = 2;
    pub const PEER_DECONFIGURED: u8 = 3;
    pub const ADMINISTRATIVE_RESET: u8 = 4;
    pub const CONNECTION_REJECTED: u8 = 5;
    pub const OTHER_CONFIGURATION_CHANGE: u8 = 6;
    pub const CONNECTION_COLLISION: u8 = 7;
    pub const OUT_OF_RESOURCES: u8 = 8;
    pub const HARD_RESET: u8 = 9;
    pub const BFD_DOWN: u8 = 10;

    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// An error that ends the session with a NOTIFICATION.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} ({code}/{subcode})", describe(*.code, *.subcode))]
pub struct Notify {
    pub code: u8,
    pub subcode: u8,
    pub data: Vec<u8>,
}

impl Notify {
    pub fn new(code: u8, subcode: u8, data: impl Into<Vec<u8>>) -> Notify {
        Notify {
            code,
            subcode,
            data: data.into(),
        }
    }

    pub fn header(subcode: u8, data: impl Into<Vec<u8>>) -> Notify {
        Notify::new(code::MESSAGE_HEADER, subcode, data)
    }

    pub fn open(subcode: u8, data: impl Into<Vec<u8>>) -> Notify {
        Notify::new(code::OPEN, subcode, data)
    }

    pub fn update(subcode: u8, data: impl Into<Vec<u8>>) -> Notify {
        Notify::new(code::UPDATE, subcode, data)
    }
}

/// How RFC 7606 handles a malformed attribute, mildest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Handling {
    /// The attribute is dropped; the UPDATE is otherwise used.
    AttributeDiscard,
    /// Every route in the UPDATE is treated as withdrawn; the session stays up.
    TreatAsWithdraw,
    /// The session is reset with this NOTIFICATION.
    SessionReset,
}

/// A malformed attribute in an UPDATE that did not end the session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttributeProblem {
    pub type_code: u8,
    pub handling: Handling,
    /// What the NOTIFICATION would have said had the session been reset (for logs).
    pub notify: Notify,
}

/// The words for a NOTIFICATION, for logs and `ferrolbctl bgp announce`.
pub fn describe(code: u8, subcode: u8) -> String {
    let (what, detail) = match code {
        code::MESSAGE_HEADER => (
            "message header error",
            match subcode {
                1 => "connection not synchronized",
                2 => "bad message length",
                3 => "bad message type",
                _ => "",
            },
        ),
        code::OPEN => (
            "OPEN error",
            match subcode {
                1 => "unsupported version number",
                2 => "bad peer AS",
                3 => "bad BGP identifier",
                4 => "unsupported optional parameter",
                6 => "unacceptable hold time",
                7 => "unsupported capability",
                8 => "role mismatch",
                _ => "",
            },
        ),
        code::UPDATE => (
            "UPDATE error",
            match subcode {
                1 => "malformed attribute list",
                2 => "unrecognized well-known attribute",
                3 => "missing well-known attribute",
                4 => "attribute flags error",
                5 => "attribute length error",
                6 => "invalid ORIGIN attribute",
                8 => "invalid NEXT_HOP attribute",
                9 => "optional attribute error",
                10 => "invalid network field",
                11 => "malformed AS_PATH",
                _ => "",
            },
        ),
        code::HOLD_TIMER_EXPIRED => ("hold timer expired", ""),
        code::FSM => ("finite state machine error", ""),
        code::CEASE => (
            "cease",
            match subcode {
                1 => "maximum number of prefixes reached",
                2 => "administrative shutdown",
                3 => "peer de-configured",
                4 => "administrative reset",
                5 => "connection rejected",
                6 => "other configuration change",
                7 => "connection collision resolution",
                8 => "out of resources",
                9 => "hard reset",
                10 => "BFD down",
                _ => "",
            },
        ),
        code::ROUTE_REFRESH => ("ROUTE-REFRESH message error", ""),
        _ => ("unknown error", ""),
    };
    if detail.is_empty() {
        what.to_string()
    } else {
        format!("{what}, {detail}")
    }
}

impl fmt::Display for Handling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Handling::AttributeDiscard => "attribute discarded",
            Handling::TreatAsWithdraw => "treated as withdraw",
            Handling::SessionReset => "session reset",
        })
    }
}
