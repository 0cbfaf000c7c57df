//! Which Services have ready endpoints, and on which nodes: an index over EndpointSlices
//! (a Service's slices carry its name in a label), built once and asked per Service.
use crate::objects::slim::{Endpoint, EndpointSlice};
use crate::service_key::{DEFAULT_SERVICE_NAMESPACE, ServiceKey};
use std::collections::{BTreeSet, HashMap};

/// The ready endpoints of every Service, indexed once per pass, instead of scanning every
/// slice for every Service.
#[derive(Default)]
pub struct Endpoints<'a> {
    ready: HashMap<ServiceKey, Vec<&'a Endpoint>>,
}

impl<'a> Endpoints<'a> {
    pub fn index(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> Endpoints<'a> {
        let mut ready: HashMap<ServiceKey, Vec<&'a Endpoint>> = HashMap::new();
        for slice in slices {
            let Some(service) = &slice.service else {
                continue;
            };
            let namespace = slice
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_SERVICE_NAMESPACE);
            ready
                .entry(ServiceKey::new(namespace, service))
                .or_default()
                .extend(slice.endpoints.iter().filter(|e| e.ready));
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
