//! Which Services have ready endpoints, and on which nodes: an index over EndpointSlices
//! (a Service's slices carry its name in a label), built once and asked per Service.
use crate::objects::slim::{Endpoint, EndpointSlice};
use crate::service_key::{DEFAULT_SERVICE_NAMESPACE, ServiceKey};
use std::collections::BTreeSet;

/// The EndpointSlices of every Service, indexed once per pass instead of scanning every
/// slice for every Service: one sorted vector of borrowed keys (at 10,000 Services, a hash
/// map with a key and a vector per Service was a megabyte and 20,000 allocations a pass).
#[derive(Default)]
pub struct Endpoints<'a> {
    /// By (namespace, Service name), sorted.
    slices: Vec<((&'a str, &'a str), &'a EndpointSlice)>,
}

impl<'a> Endpoints<'a> {
    pub fn index(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Endpoints<'a> {
        let mut indexed: Vec<((&'a str, &'a str), &'a EndpointSlice)> = slices
            .into_iter()
            .filter_map(|slice| {
                let namespace = slice
                    .namespace
                    .as_deref()
                    .unwrap_or(DEFAULT_SERVICE_NAMESPACE);
                Some(((namespace, slice.service.as_deref()?), slice))
            })
            .collect();
        indexed.sort_unstable_by_key(|(key, _)| *key);
        Endpoints { slices: indexed }
    }

    /// The Service's ready endpoints.
    pub fn ready<'s>(
        &'s self,
        service: &ServiceKey,
    ) -> impl Iterator<Item = &'a Endpoint> + use<'a, 's> {
        let key = (&*service.namespace, &*service.name);
        let start = self.slices.partition_point(|(k, _)| *k < key);
        let end = start + self.slices[start..].partition_point(|(k, _)| *k == key);
        self.slices[start..end]
            .iter()
            .flat_map(|(_, slice)| slice.endpoints.iter().filter(|e| e.ready))
    }

    /// Whether the Service has a ready endpoint anywhere.
    pub fn any_ready(&self, service: &ServiceKey) -> bool {
        self.ready(service).next().is_some()
    }

    /// The nodes with a ready endpoint of the Service (`externalTrafficPolicy: Local`).
    pub fn serving_nodes(&self, service: &ServiceKey) -> BTreeSet<&'a str> {
        self.ready(service)
            .filter_map(|e| e.node_name.as_deref())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_names::shared_name;

    fn slice(
        namespace: Option<&str>,
        service: Option<&str>,
        nodes: &[(&str, bool)],
    ) -> EndpointSlice {
        EndpointSlice {
            namespace: namespace.map(shared_name),
            name: "slice".into(),
            service: service.map(Into::into),
            endpoints: nodes
                .iter()
                .map(|(node, ready)| Endpoint {
                    node_name: Some(shared_name(node)),
                    ready: *ready,
                })
                .collect(),
        }
    }

    #[test]
    fn a_services_ready_endpoints_come_from_all_its_slices_and_only_its() {
        let slices = [
            slice(Some("demo"), Some("web"), &[("n1", true), ("n2", false)]),
            slice(Some("other"), Some("web"), &[("n9", true)]),
            slice(Some("demo"), Some("db"), &[("n8", true)]),
            slice(Some("demo"), Some("web"), &[("n3", true)]),
            slice(None, Some("web"), &[("n7", true)]),
            slice(Some("demo"), None, &[("n6", true)]),
            slice(Some("demo"), Some("idle"), &[("n5", false)]),
        ];
        let endpoints = Endpoints::index(&slices);
        let web = ServiceKey::new("demo", "web");
        assert_eq!(endpoints.serving_nodes(&web), BTreeSet::from(["n1", "n3"]));
        assert_eq!(endpoints.ready(&web).count(), 2);
        assert!(endpoints.any_ready(&web));
        assert!(!endpoints.any_ready(&ServiceKey::new("demo", "idle")));
        assert!(!endpoints.any_ready(&ServiceKey::new("demo", "gone")));
        let defaulted = ServiceKey::new("default", "web");
        assert_eq!(endpoints.serving_nodes(&defaulted), BTreeSet::from(["n7"]));
        assert!(Endpoints::default().ready(&web).next().is_none());
    }
}
