//! Services and EndpointSlices as a speaker reads them: the few fields it decides on, in a
//! few dozen bytes, instead of the typed Kubernetes objects (824 and 432 bytes before any
//! field is set, a 540-byte map node for each label or annotation set). A speaker holds
//! every Service and EndpointSlice of the cluster, and keeps them for its life; the
//! controller, which reads every field, keeps the full objects.
//!
//! They are made from the full objects, so a document is checked exactly as the controller
//! checks it; [`Service::to_json`] and [`EndpointSlice::to_json`] give back what they keep,
//! in the Kubernetes shape, so status merges work on them as on full objects.
use crate::service_key::{DEFAULT_SERVICE_NAMESPACE, ServiceKey};
use crate::shared_names::shared_name;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The label EndpointSlices name their Service with.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// What a speaker reads of a Service.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Service {
    pub namespace: Option<Arc<str>>,
    /// Shared with the keys made from it.
    pub name: Arc<str>,
    /// Matched by advertisements' `serviceSelectors`.
    pub labels: BTreeMap<String, String>,
    pub load_balancer_class: Option<Box<str>>,
    /// `status.loadBalancer.ingress[].ip` in order; entries without an IP (a hostname) left out.
    pub ips: Box<[IpAddr]>,
    /// `spec.type` is LoadBalancer.
    pub load_balancer: bool,
    /// `spec.externalTrafficPolicy` is Local: only nodes with a ready endpoint announce.
    pub local_traffic: bool,
}

impl Service {
    pub fn of(service: &k8s_openapi::api::core::v1::Service) -> Service {
        let spec = service.spec.as_ref();
        Service {
            namespace: service.metadata.namespace.as_deref().map(shared_name),
            name: service.metadata.name.as_deref().unwrap_or_default().into(),
            labels: service.metadata.labels.clone().unwrap_or_default(),
            load_balancer_class: spec
                .and_then(|s| s.load_balancer_class.as_deref().map(Into::into)),
            ips: crate::service::status_ips(service).into(),
            load_balancer: spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer"),
            local_traffic: spec.and_then(|s| s.external_traffic_policy.as_deref()) == Some("Local"),
        }
    }

    /// The Service's key (`None` without a name); a missing namespace is the default one.
    pub fn key(&self) -> Option<ServiceKey> {
        (!self.name.is_empty()).then(|| ServiceKey {
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| shared_name(DEFAULT_SERVICE_NAMESPACE)),
            name: self.name.clone(),
        })
    }

    /// Whether FerroLB is in charge of it, as [`crate::service::is_ours`] decides for a full
    /// Service.
    pub fn is_ours(&self, lb_class: Option<&str>) -> bool {
        self.load_balancer && self.load_balancer_class.as_deref() == lb_class
    }

    /// What it keeps, as a Kubernetes Service.
    pub fn to_json(&self) -> serde_json::Value {
        let mut spec = serde_json::Map::new();
        if self.load_balancer {
            spec.insert("type".into(), "LoadBalancer".into());
        }
        if let Some(class) = &self.load_balancer_class {
            spec.insert("loadBalancerClass".into(), (**class).into());
        }
        if self.local_traffic {
            spec.insert("externalTrafficPolicy".into(), "Local".into());
        }
        let ingress: Vec<serde_json::Value> = self
            .ips
            .iter()
            .map(|ip| serde_json::json!({"ip": ip.to_string()}))
            .collect();
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": metadata(self.namespace.as_deref(), &self.name, &self.labels),
            "spec": spec,
            "status": {"loadBalancer": {"ingress": ingress}},
        })
    }
}

/// What a speaker reads of an EndpointSlice.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EndpointSlice {
    pub namespace: Option<Arc<str>>,
    pub name: Box<str>,
    /// The Service it belongs to, from its `kubernetes.io/service-name` label.
    pub service: Option<Box<str>>,
    pub endpoints: Box<[Endpoint]>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    pub node_name: Option<Arc<str>>,
    /// `conditions.ready`; unset counts as ready, as Kubernetes says.
    pub ready: bool,
}

impl EndpointSlice {
    pub fn of(slice: &k8s_openapi::api::discovery::v1::EndpointSlice) -> EndpointSlice {
        EndpointSlice {
            namespace: slice.metadata.namespace.as_deref().map(shared_name),
            name: slice.metadata.name.as_deref().unwrap_or_default().into(),
            service: slice
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(|s| s.as_str().into()),
            endpoints: slice
                .endpoints
                .iter()
                .map(|e| Endpoint {
                    node_name: e.node_name.as_deref().map(shared_name),
                    ready: e.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true),
                })
                .collect(),
        }
    }

    /// What it keeps, as a Kubernetes EndpointSlice. Kubernetes requires an address type and
    /// addresses, which a speaker never reads: they come back as `IPv4` and none.
    pub fn to_json(&self) -> serde_json::Value {
        let labels: BTreeMap<String, String> = self
            .service
            .iter()
            .map(|s| (SERVICE_NAME_LABEL.to_string(), s.to_string()))
            .collect();
        let endpoints: Vec<serde_json::Value> = self
            .endpoints
            .iter()
            .map(|e| {
                let mut endpoint = serde_json::json!({
                    "addresses": [],
                    "conditions": {"ready": e.ready},
                });
                if let Some(node) = &e.node_name {
                    endpoint["nodeName"] = (**node).into();
                }
                endpoint
            })
            .collect();
        serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": metadata(self.namespace.as_deref(), &self.name, &labels),
            "addressType": "IPv4",
            "endpoints": endpoints,
        })
    }
}

fn metadata(
    namespace: Option<&str>,
    name: &str,
    labels: &BTreeMap<String, String>,
) -> serde_json::Value {
    let mut metadata = serde_json::json!({"name": name});
    if let Some(namespace) = namespace {
        metadata["namespace"] = namespace.into();
    }
    if !labels.is_empty() {
        metadata["labels"] = serde_json::json!(labels);
    }
    metadata
}
