//! From a BGPPeer (as the configuration normalised it) to what the `bgp` crate runs: where
//! to connect and how, the session's settings, and the attributes of each route. Pure.
use super::unnumbered::Neighbours;
use crate::plan::bgp::Route;
use ferrolb_api::config::{BfdProfile, Peer, PeerAsn, PeerEndpoint};
use ferrolb_api::v1beta2::DynamicAsnMode;
use ferrolb_bfd::driver as bfd;
use ferrolb_bgp::driver;
use ferrolb_bgp::export::Path;
use ferrolb_bgp::packet::{AsPathSegment, Attributes, Family, Origin, SegmentType};
use ferrolb_bgp::session::{Config, PeerAs};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;

/// How long to wait before connecting again when MetalLB's `connectTime` is not set.
const CONNECT_RETRY: Duration = Duration::from_secs(2);

/// LOCAL_PREF for internal peers when no advertisement sets one.
const DEFAULT_LOCAL_PREF: u32 = 100;

/// The graceful restart time announced with `enableGracefulRestart` (FRR's default).
const RESTART_TIME: u16 = 120;

/// A session as the `bgp` crate runs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionSpec {
    pub peer: driver::Peer,
    pub config: Config,
}

/// What FerroLB cannot do with a BGPPeer (yet): said in logs and Events, never ignored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("BGPPeer {0}: vrf {1:?} is not supported; the session is not opened")]
    Vrf(String, String),
    /// Unnumbered: no router advertisement on the interface yet, so no peer address. Not a
    /// field left unhonoured: the session starts once one arrives.
    #[error(
        "BGPPeer {0}: no router advertisement seen on {1:?} yet: the session waits for the peer"
    )]
    NoNeighbour(String, String),
}

/// Whether FerroLB can open a session for the peer at all (see `session`).
pub fn supported(peer: &Peer) -> bool {
    peer.vrf.as_ref().is_none_or(|v| v.is_empty())
}

/// Fields of a BGPPeer (and of its BFD profile) that FerroLB accepts but does not act on:
/// the session runs without them, and the speaker says so.
pub fn not_honoured(peer: &Peer, bfd: Option<&BfdProfile>) -> Vec<String> {
    let mut notes = Vec::new();
    if peer.dual_stack_address_family
        && matches!(peer.endpoint, PeerEndpoint::Address(IpAddr::V4(_)))
    {
        notes.push(format!(
            "BGPPeer {}: dualStackAddressFamily on an IPv4 session carries IPv4 only (no IPv6 next hop to give)",
            peer.name
        ));
    }
    if let Some(profile) = bfd.filter(|p| p.echo_mode) {
        notes.push(format!(
            "BGPPeer {}: BFDProfile {:?} asks for echo mode, which FerroLB does not run (echo packets must come back through the peer's forwarding plane to an address of this host's own, which a speaker process cannot arrange): control packets alone detect failures, at the profile's intervals",
            peer.name, profile.name
        ));
    }
    notes
}

/// The BFD session under a BGP session: to the same address (on the same link, for an
/// unnumbered peer), multihop for an `ebgpMultiHop` peer. Any other peer, internal ones
/// included, is taken as directly connected (single hop, TTL 255): FRR would make a
/// non-adjacent internal peer multihop, which needs the node's subnets to decide.
pub fn bfd_spec(peer: &Peer, session: &SessionSpec, profile: &BfdProfile) -> bfd::Spec {
    let ms = |v: u32| Duration::from_millis(u64::from(v));
    bfd::Spec {
        key: bfd::Key {
            peer: session.peer.address.ip(),
            interface: match &peer.endpoint {
                PeerEndpoint::Interface(name) => Some(name.clone()),
                PeerEndpoint::Address(_) => None,
            },
            scope_id: match session.peer.address {
                SocketAddr::V6(v6) => v6.scope_id(),
                SocketAddr::V4(_) => 0,
            },
            multihop: peer.ebgp_multi_hop,
        },
        local: peer.source_address,
        settings: ferrolb_bfd::Settings {
            desired_min_tx: ms(profile.transmit_interval_ms),
            required_min_rx: ms(profile.receive_interval_ms),
            detect_mult: u8::try_from(profile.detect_multiplier).unwrap_or(u8::MAX),
            passive: profile.passive_mode,
        },
        minimum_ttl: u8::try_from(profile.minimum_ttl).unwrap_or(u8::MAX),
    }
}

/// The AS this node speaks as towards `peer`.
pub fn local_as(peer: &Peer) -> u32 {
    peer.local_asn.unwrap_or(peer.my_asn)
}

/// Whether the peer is in our AS (iBGP): LOCAL_PREF goes to it, our AS does not go first.
pub fn internal(peer: &Peer) -> bool {
    match peer.peer_asn {
        PeerAsn::Fixed(asn) => asn == local_as(peer),
        PeerAsn::Dynamic(mode) => mode == DynamicAsnMode::Internal,
    }
}

/// The session for `peer` from this node. `node_router_id` is this node's IPv4 address (or
/// one derived from its name on IPv6-only nodes) for peers that set no router ID;
/// `neighbours` the link-local peers found on unnumbered interfaces.
pub fn session(
    peer: &Peer,
    node_router_id: Ipv4Addr,
    neighbours: &Neighbours,
) -> Result<SessionSpec, Unsupported> {
    if let Some(vrf) = peer.vrf.as_ref().filter(|v| !v.is_empty()) {
        return Err(Unsupported::Vrf(peer.name.clone(), vrf.clone()));
    }
    let address = match &peer.endpoint {
        PeerEndpoint::Address(ip) => SocketAddr::new(*ip, peer.port),
        PeerEndpoint::Interface(name) => match neighbours.get(name) {
            Some(neighbour) => {
                SocketAddrV6::new(*neighbour.ip(), peer.port, 0, neighbour.scope_id()).into()
            }
            None => return Err(Unsupported::NoNeighbour(peer.name.clone(), name.clone())),
        },
    };
    let external = !internal(peer);
    let router_id = peer
        .router_id
        .or(match peer.source_address {
            Some(IpAddr::V4(ip)) => Some(ip),
            _ => None,
        })
        .unwrap_or(node_router_id);
    let config = Config {
        local_as: local_as(peer),
        peer_as: match peer.peer_asn {
            PeerAsn::Fixed(asn) => PeerAs::Is(asn),
            PeerAsn::Dynamic(DynamicAsnMode::Internal) => PeerAs::Internal,
            PeerAsn::Dynamic(DynamicAsnMode::External) => PeerAs::External,
        },
        router_id,
        hold_time: u16::try_from(peer.hold_time.as_secs()).unwrap_or(u16::MAX),
        keepalive: Some(peer.keepalive_time),
        connect_retry: peer.connect_time.unwrap_or(CONNECT_RETRY),
        passive: false,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        // The first session after the speaker starts follows a restart.
        graceful_restart: peer.graceful_restart.then_some((RESTART_TIME, true)),
        // IPv4 routes over an IPv6 session (RFC 8950).
        extended_next_hop: address.is_ipv6(),
    };
    let peer = driver::Peer {
        address,
        local_address: peer.source_address,
        ttl: if peer.ebgp_multi_hop {
            Some(255)
        } else {
            external.then_some(1)
        },
        gtsm: false,
        password: peer.password.clone(),
    };
    Ok(SessionSpec { peer, config })
}

/// A route's attribute set towards `peer`; the next hop is ours on the session.
pub fn path(peer: &Peer, route: &Route) -> Path {
    let as_path = if internal(peer) {
        Vec::new()
    } else {
        vec![AsPathSegment {
            kind: SegmentType::Sequence,
            asns: vec![local_as(peer)],
        }]
    };
    // RFC 4271 5.1.5: internal peers always get a LOCAL_PREF (100, the usual default, when
    // no advertisement sets one).
    let local_pref = if internal(peer) {
        Some(route.local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
    } else {
        None
    };
    Path {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(as_path),
            local_pref,
            communities: route.communities.iter().copied().collect(),
            large_communities: route.large_communities.iter().copied().collect(),
            ..Attributes::default()
        },
        next_hop: None,
    }
}

/// A router ID for a node without an IPv4 address: stable, from its name, never 0.0.0.0.
pub fn router_id_from_name(node: &str) -> Ipv4Addr {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(node.as_bytes());
    let id = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    Ipv4Addr::from(id.max(1))
}

#[cfg(test)]
mod tests;
