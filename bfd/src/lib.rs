//! FerroLB's BFD (Bidirectional Forwarding Detection): RFC 5880 asynchronous mode, over
//! UDP as RFC 5881 (single hop) and RFC 5883 (multihop) say.
//!
//! - [`packet`]: the Control packet, decoded with the checks that need no session.
//! - [`session`]: one session's state machine, sans-IO, with an injected clock.
//! - [`driver`]: the sessions of a node on their own thread, with their sockets, so that no
//!   other work (a BGP table being sent, a store being read) can delay a packet or a
//!   detection.
//!
//! Nothing here depends on BGP: the speaker feeds BFD's state changes to its BGP sessions.
pub mod driver;
pub mod packet;
pub mod session;

pub use packet::{ControlPacket, DecodeError, Diag, State};
pub use session::{Change, Output, Session, Settings};
