//! Layer 2 mode without policy: what to answer and announce is decided by the speaker; this
//! crate reads and writes ARP and NDP (`packet`), opens the raw sockets (`socket`, the
//! project's unsafe code), and decides packet by packet in a sans-IO `responder`: frames and
//! ticks in, frames to send and conflicts out. It depends on neither kube nor the api crate.
pub mod packet;
pub mod responder;
pub mod socket;
