//! Which Services a speaker deals with, and which nodes may announce them: the rules layer 2
//! and BGP mode share.
use ferrolb_api::config::{Config, Pool};
use ferrolb_api::selector::Selector;
use ferrolb_api::service_key::{DEFAULT_SERVICE_NAMESPACE, ServiceKey};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

pub use ferrolb_api::service::is_ours;

/// Nodes with this label never announce (Kubernetes' well-known label).
pub const EXCLUDE_LABEL: &str = "node.kubernetes.io/exclude-from-external-load-balancers";

/// The label EndpointSlices name their Service with.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

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

/// The ready endpoints of every Service, indexed once per pass (a Service's EndpointSlices
/// carry its name in a label), instead of scanning every slice for every Service.
#[derive(Default)]
pub struct Endpoints<'a> {
    ready: HashMap<ServiceKey, Vec<&'a Endpoint>>,
}

impl<'a> Endpoints<'a> {
    pub fn index(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Endpoints<'a> {
        let mut ready: HashMap<ServiceKey, Vec<&'a Endpoint>> = HashMap::new();
        for slice in slices {
            let Some(service) = slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
            else {
                continue;
            };
            let namespace = slice
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_SERVICE_NAMESPACE);
            ready
                .entry(ServiceKey::new(namespace, service))
                .or_default()
                .extend(
                    slice
                        .endpoints
                        .iter()
                        .filter(|e| e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true)),
                );
        }
        Endpoints { ready }
    }

    /// The Service's ready endpoints.
    pub fn ready(&self, service: &ServiceKey) -> &[&'a Endpoint] {
        self.ready.get(service).map_or(&[], Vec::as_slice)
    }

    /// The nodes with a ready endpoint of the Service (`externalTrafficPolicy: Local`).
    pub fn serving_nodes(&self, service: &ServiceKey) -> BTreeSet<&'a str> {
        self.ready(service)
            .iter()
            .filter_map(|e| e.node_name.as_deref())
            .collect()
    }
}
