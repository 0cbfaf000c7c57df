//! BGP mode's half of the plan: the sessions this node keeps (the BGPPeers whose node
//! selectors match it) and, for each, the routes to announce, decided as MetalLB decides
//! them. Unlike layer 2 nothing is elected: every eligible node announces, and the router
//! spreads the traffic over them (ECMP).
use super::election::Inputs;
use super::eligibility::{labels_of, matches_any, node_may_announce, pool_of};
use crate::bgp::peer::supported;
use ferrolb_api::config::{BfdProfile, BgpAdvertisement, BgpCommunity, Peer, PeerEndpoint};
use ferrolb_api::service_key::ServiceKey;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

/// What this node does in BGP mode.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Bgp {
    /// The peers this node keeps a session with, by name.
    pub peers: BTreeMap<String, Peer>,
    /// By peer name: the BFD profile its sessions run under, for those that name one.
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
    /// By peer name: the routes to announce to it. Peers that get the same routes share one
    /// table (most do), and the sessions keep it without a copy.
    pub routes: BTreeMap<String, Routes>,
    /// The Services this node announces, with the peers each goes to (ServiceBGPStatus).
    pub statuses: BTreeMap<ServiceKey, crate::status::Listed>,
}

/// The routes one peer gets, by prefix.
pub type Routes = Arc<BTreeMap<IpNet, Route>>;

/// A route's attributes beyond the prefix. Several advertisements may select the same
/// prefix for one peer: their communities add up and the highest local preference wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    pub local_pref: Option<u32>,
    pub communities: BTreeSet<u32>,
    pub large_communities: BTreeSet<(u32, u32, u32)>,
}

pub fn plan(inputs: &Inputs) -> Bgp {
    let mut bgp = Bgp::default();
    let Some(node) = inputs.nodes.get(inputs.me) else {
        return bgp;
    };
    let labels = labels_of(node);
    bgp.peers = inputs
        .config
        .peers
        .values()
        .filter(|p| matches_any(&p.node_selectors, &labels))
        .map(|p| (p.name.clone(), p.clone()))
        .collect();
    bgp.bfd_profiles = bgp
        .peers
        .iter()
        .filter_map(|(name, peer)| {
            let profile = inputs.config.bfd_profiles.get(peer.bfd_profile.as_ref()?)?;
            Some((name.clone(), profile.clone()))
        })
        .collect();
    if bgp.peers.is_empty() || !node_may_announce(node, inputs.ignore_exclude_lb) {
        return bgp;
    }
    let mut routes: BTreeMap<&str, BTreeMap<IpNet, Route>> = BTreeMap::new();
    // Most Services go to the same peers: one set each, shared.
    let mut peer_sets = crate::status::Sets::default();
    let mut statuses = Vec::new();
    for service in &inputs.services {
        if !service.is_ours(inputs.lb_class) {
            continue;
        }
        let Some(key) = service.key() else {
            continue;
        };
        let ips = &service.ips;
        let Some(pool) = pool_of(inputs.config, ips) else {
            continue;
        };
        // A ready endpoint somewhere (Cluster), or on this node (Local), as in MetalLB.
        let serving = if service.local_traffic {
            inputs.endpoints.serving_nodes(&key).contains(inputs.me)
        } else {
            inputs.endpoints.any_ready(&key)
        };
        if !serving {
            continue;
        }
        // The peers this Service goes to.
        let mut to: BTreeSet<&str> = BTreeSet::new();
        for advertisement in pool.bgp_advertisements.iter().filter(|a| {
            matches_any(&a.service_selectors, &service.labels)
                && matches_any(&a.node_selectors, &labels)
        }) {
            for (name, peer) in &bgp.peers {
                if !advertisement.peers.is_empty() && !advertisement.peers.contains(name) {
                    continue;
                }
                let mut carried = ips.iter().filter(|ip| carries(peer, ip)).peekable();
                if carried.peek().is_none() {
                    continue;
                }
                let routes = routes.entry(name).or_default();
                for ip in carried {
                    add(routes, aggregate(*ip, advertisement), advertisement);
                }
                to.insert(name.as_str());
            }
        }
        if !to.is_empty() {
            statuses.push((key, peer_sets.share(to)));
        }
    }
    // Built at once (full tree nodes), not entry by entry (about half full).
    bgp.statuses = statuses.into_iter().collect();
    bgp.routes = shared_tables(routes);
    bgp
}

/// The tables by peer, equal ones shared.
fn shared_tables(tables: BTreeMap<&str, BTreeMap<IpNet, Route>>) -> BTreeMap<String, Routes> {
    let mut distinct: Vec<Routes> = Vec::new();
    tables
        .into_iter()
        .map(|(peer, table)| {
            let shared = match distinct.iter().find(|d| ***d == table) {
                Some(same) => same.clone(),
                None => {
                    // Built again at once: full tree nodes (filled one by one, about half).
                    let table: Routes = Arc::new(table.into_iter().collect());
                    distinct.push(table.clone());
                    table
                }
            };
            (peer.to_string(), shared)
        })
        .collect()
}

/// Whether a session with `peer` carries `ip`'s routes, as in MetalLB: a session carries
/// its own family, and with `dualStackAddressFamily` an IPv6 session carries IPv4 too (with
/// extended next hop). An IPv4 session has no IPv6 next hop to give, so it never carries
/// IPv6. A peer FerroLB cannot open a session with carries nothing.
fn carries(peer: &Peer, ip: &IpAddr) -> bool {
    if !supported(peer) {
        return false;
    }
    match peer.endpoint {
        PeerEndpoint::Address(address) => {
            address.is_ipv4() == ip.is_ipv4()
                || (peer.dual_stack_address_family && address.is_ipv6())
        }
        // Unnumbered: an IPv6 link-local session, carrying IPv4 by extended next hop, as
        // FRR's `neighbor IFACE interface` does.
        PeerEndpoint::Interface(_) => true,
    }
}

/// The prefix announced for `ip`: the IP itself, or the block it falls in when the
/// advertisement aggregates.
fn aggregate(ip: IpAddr, advertisement: &BgpAdvertisement) -> IpNet {
    let length = match ip {
        IpAddr::V4(_) => advertisement.aggregation_length.min(32),
        IpAddr::V6(_) => advertisement.aggregation_length_v6.min(128),
    };
    IpNet::new(ip, length)
        .unwrap_or_else(|_| IpNet::from(ip))
        .trunc()
}

fn add(routes: &mut BTreeMap<IpNet, Route>, prefix: IpNet, advertisement: &BgpAdvertisement) {
    let route = routes.entry(prefix).or_default();
    // 0 is MetalLB's "not set": the router's default applies.
    if advertisement.local_pref > 0 {
        route.local_pref = route.local_pref.max(Some(advertisement.local_pref));
    }
    for community in &advertisement.communities {
        match *community {
            BgpCommunity::Standard(c) => {
                route.communities.insert(c);
            }
            BgpCommunity::Large(a, b, c) => {
                route.large_communities.insert((a, b, c));
            }
        }
    }
}

#[cfg(test)]
mod tests;
