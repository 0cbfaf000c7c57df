//! Layer 2 mode: answering ARP and NDP for the IPs this node owns, on the interfaces chosen
//! for them, and telling the network at once when an IP moves here.
pub mod announcer;
pub mod interfaces;
