//! What a Service asks the allocator for, independent of how it was written.
use ferrolb_api::address::Family;
use ferrolb_api::config::ServiceAllocation;
pub use ferrolb_api::service_key::ServiceKey;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

/// `spec.ipFamilyPolicy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FamilyPolicy {
    SingleStack,
    PreferDualStack,
    RequireDualStack,
}

/// What a Service shares its IP under (`allow-shared-ip`), and what decides compatibility.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sharing {
    pub key: String,
    /// `None` with externalTrafficPolicy Cluster; the pod selector with Local, since Local
    /// Services sharing an IP must reach the same pods.
    pub local_selector: Option<BTreeMap<String, String>>,
    /// (protocol, port) pairs the Service exposes.
    pub ports: BTreeSet<(String, i32)>,
}

impl Sharing {
    /// MetalLB's rule: same key; both Cluster or both Local with the same selector; no
    /// (protocol, port) in common.
    pub fn compatible_with(&self, other: &Sharing) -> bool {
        self.key == other.key
            && self.local_selector == other.local_selector
            && self.ports.is_disjoint(&other.ports)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    pub key: ServiceKey,
    /// `spec.ipFamilies[0]`.
    pub primary: Family,
    pub policy: FamilyPolicy,
    /// `spec.ipFamilies`, primary first; empty when unknown. A PreferDualStack Service of a
    /// single-stack cluster lists one family only, and must get only that one.
    pub ip_families: Vec<Family>,
    pub requested_ips: Vec<IpAddr>,
    /// `address-pool`.
    pub pool: Option<String>,
    pub sharing: Option<Sharing>,
    pub labels: BTreeMap<String, String>,
    pub namespace_labels: BTreeMap<String, String>,
}

impl Request {
    /// The families the Service wants, primary first.
    pub fn families(&self) -> Vec<Family> {
        let other = match self.primary {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        };
        match self.policy {
            FamilyPolicy::SingleStack => vec![self.primary],
            FamilyPolicy::PreferDualStack if self.ip_families.len() == 1 => vec![self.primary],
            _ => vec![self.primary, other],
        }
    }

    /// A request that only holds `ips` for `key`: their families, nothing shared.
    pub fn reservation(key: &ServiceKey, ips: &[IpAddr]) -> Request {
        let primary = ips.first().map(Family::of).unwrap_or(Family::V4);
        let mut request = Request::single_stack(key.clone(), primary);
        if ips.len() > 1 {
            request.policy = FamilyPolicy::RequireDualStack;
        }
        request.requested_ips = ips.to_vec();
        request
    }

    /// A single-stack request with nothing asked for: no IPs, pool, sharing or labels.
    pub fn single_stack(key: ServiceKey, primary: Family) -> Request {
        Request {
            key,
            primary,
            policy: FamilyPolicy::SingleStack,
            ip_families: Vec::new(),
            requested_ips: Vec::new(),
            pool: None,
            sharing: None,
            labels: BTreeMap::new(),
            namespace_labels: BTreeMap::new(),
        }
    }

    pub fn describe_families(&self) -> String {
        let families: Vec<String> = self.families().iter().map(ToString::to_string).collect();
        format!("{:?} {}", self.policy, families.join(","))
    }

    /// Whether a pool's serviceAllocation selects this Service.
    pub fn matches(&self, allocation: &ServiceAllocation) -> bool {
        let namespace_ok = (allocation.namespaces.is_empty()
            && allocation.namespace_selectors.is_empty())
            || allocation.namespaces.contains(&*self.key.namespace)
            || allocation
                .namespace_selectors
                .iter()
                .any(|s| s.matches(&self.namespace_labels));
        let service_ok = allocation.service_selectors.is_empty()
            || allocation
                .service_selectors
                .iter()
                .any(|s| s.matches(&self.labels));
        namespace_ok && service_ok
    }
}
