//! Which Services a speaker deals with, and which nodes may announce them: the rules layer 2
//! and BGP mode share.
use ferrolb_api::config::{Config, Pool};
use ferrolb_api::selector::Selector;
use k8s_openapi::api::core::v1::Node;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub use ferrolb_api::endpoints::Endpoints;

/// Nodes with this label never announce (Kubernetes' well-known label).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// An empty list selects everything, as in MetalLB.
pub fn matches_any(selectors: &[Selector], labels: &BTreeMap<String, String>) -> bool {
    selectors.is_empty() || selectors.iter().any(|s| s.matches(labels))
}

pub fn labels_of(node: &Node) -> BTreeMap<String, String> {
    node.metadata.labels.clone().unwrap_or_default()
}

/// Not excluded by label (unless told to ignore it, MetalLB's `--ignore-exclude-lb`), and
/// its network not reported unavailable.
pub fn node_may_announce(node: &Node, ignore_exclude_label: bool) -> bool {
    if !ignore_exclude_label && labels_of(node).contains_key(EXCLUDE_LABEL) {
        return false;
    }
    !node
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| c.type_ == "NetworkUnavailable" && c.status == "True")
}

/// The pool every one of a Service's IPs comes from, as MetalLB requires: an IP someone wrote
/// into the status by hand is never announced.
pub fn pool_of<'c>(config: &'c Config, ips: &[IpAddr]) -> Option<&'c Pool> {
    let first = ips.first()?;
    let pool = config.pools.values().find(|p| p.contains(first))?;
    ips.iter().all(|ip| pool.contains(ip)).then_some(pool)
}
