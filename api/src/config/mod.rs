//! The validated configuration: what the controller and the speakers act on.
//!
//! [`Config::build`] turns the raw `metallb.io` objects into a [`Config`], applying every rule
//! MetalLB's webhooks and config parser apply, and reports every problem at once.
mod build;
mod community;
mod duration;
mod error;

#[cfg(test)]
mod tests;

pub use community::BgpCommunity;
pub use duration::parse_go_duration;
pub use error::ConfigError;

use crate::address::{AddressCount, AddressRange, Family};
use crate::selector::Selector;
use crate::{v1beta1, v1beta2};
use k8s_openapi::api::core::v1::{Node, Secret};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

/// The raw objects a configuration is built from, all from the MetalLB namespace.
#[derive(Clone, Debug, Default)]
pub struct ConfigObjects {
    pub pools: Vec<v1beta1::IPAddressPool>,
    pub l2_advertisements: Vec<v1beta1::L2Advertisement>,
    pub bgp_advertisements: Vec<v1beta1::BGPAdvertisement>,
    /// Peers of both versions, v1beta1 ones converted.
    pub bgp_peers: Vec<v1beta2::BGPPeer>,
    pub bfd_profiles: Vec<v1beta1::BFDProfile>,
    pub communities: Vec<v1beta1::Community>,
    /// Secrets that `passwordSecret` may name.
    pub secrets: Vec<Secret>,
    /// When known, the cluster's nodes: two peers for the same router conflict only when
    /// some node would open both sessions.
    pub nodes: Option<Vec<Node>>,
}

/// A whole, valid configuration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub pools: BTreeMap<String, Pool>,
    pub peers: BTreeMap<String, Peer>,
    pub bfd_profiles: BTreeMap<String, BfdProfile>,
}

/// An address pool with the advertisements that announce it.
#[derive(Clone, Debug, PartialEq)]
pub struct Pool {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Disjoint, in address order.
    pub ranges: Vec<AddressRange>,
    pub auto_assign: bool,
    pub avoid_buggy_ips: bool,
    /// `None` when the pool serves every Service.
    pub allocation: Option<ServiceAllocation>,
    pub l2_advertisements: Vec<L2Advertisement>,
    pub bgp_advertisements: Vec<BgpAdvertisement>,
}

impl Pool {
    pub fn contains(&self, ip: &IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// Whether some advertisement announces the pool's IPs.
    pub fn is_announced(&self) -> bool {
        !self.l2_advertisements.is_empty() || !self.bgp_advertisements.is_empty()
    }

    pub fn families(&self) -> BTreeSet<Family> {
        self.ranges.iter().map(AddressRange::family).collect()
    }

    /// How many addresses of `family` the pool holds (before `avoidBuggyIPs`).
    pub fn size(&self, family: Family) -> AddressCount {
        self.ranges
            .iter()
            .filter(|r| r.family() == family)
            .fold(AddressCount::ZERO, |sum, r| sum + r.len())
    }
}

/// Which Services a pool serves and in which order pools are tried.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceAllocation {
    /// Lower first; 0 means unset and sorts after every set priority.
    pub priority: i32,
    pub namespaces: BTreeSet<String>,
    pub namespace_selectors: Vec<Selector>,
    pub service_selectors: Vec<Selector>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct L2Advertisement {
    pub name: String,
    /// Empty: every node.
    pub node_selectors: Vec<Selector>,
    /// Empty: every eligible interface.
    pub interfaces: Vec<String>,
    /// Empty: every Service.
    pub service_selectors: Vec<Selector>,
    pub preferred_node_selectors: Vec<(i32, Selector)>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct BgpAdvertisement {
    pub name: String,
    pub aggregation_length: u8,
    pub aggregation_length_v6: u8,
    pub local_pref: u32,
    pub communities: BTreeSet<BgpCommunity>,
    /// Empty: every node.
    pub node_selectors: Vec<Selector>,
    /// Empty: every peer.
    pub peers: BTreeSet<String>,
    /// Empty: every Service.
    pub service_selectors: Vec<Selector>,
}

/// A BGP neighbour, with MetalLB's defaults filled in.
#[derive(Clone, Debug, PartialEq)]
pub struct Peer {
    pub name: String,
    pub my_asn: u32,
    /// The AS number announced in place of `my_asn`, if any.
    pub local_asn: Option<u32>,
    pub peer_asn: PeerAsn,
    pub endpoint: PeerEndpoint,
    pub port: u16,
    pub source_address: Option<IpAddr>,
    pub router_id: Option<std::net::Ipv4Addr>,
    pub hold_time: Duration,
    pub keepalive_time: Duration,
    pub connect_time: Option<Duration>,
    /// Empty: every node.
    pub node_selectors: Vec<Selector>,
    /// The TCP MD5 password, from the spec or the referenced Secret.
    pub password: Option<String>,
    pub bfd_profile: Option<String>,
    pub graceful_restart: bool,
    pub ebgp_multi_hop: bool,
    pub vrf: Option<String>,
    pub dual_stack_address_family: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAsn {
    Fixed(u32),
    Dynamic(v1beta2::DynamicAsnMode),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEndpoint {
    Address(IpAddr),
    /// Unnumbered BGP over a node interface.
    Interface(String),
}

/// BFD timers, with the defaults FRR and MetalLB document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdProfile {
    pub name: String,
    pub receive_interval_ms: u32,
    pub transmit_interval_ms: u32,
    pub detect_multiplier: u32,
    pub echo_interval_ms: u32,
    pub echo_mode: bool,
    pub passive_mode: bool,
    pub minimum_ttl: u32,
}

impl Config {
    /// Validates and normalises the objects; on failure returns every problem found, sorted.
    pub fn build(objects: &ConfigObjects) -> Result<Config, Vec<ConfigError>> {
        build::build(objects)
    }
}
