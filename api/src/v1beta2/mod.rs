//! `metallb.io/v1beta2`: BGPPeer's storage version.
mod bgp_peer;

pub use bgp_peer::{BGPPeer, BGPPeerSpec, DynamicAsnMode};
