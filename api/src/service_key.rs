//! How a Service is named everywhere in FerroLB: its namespace and name, never a string that
//! is split again.
use k8s_openapi::api::core::v1::Service;
use std::fmt;
use std::sync::Arc;

/// The namespace of an object that names none, as the API server defaults it.
pub const DEFAULT_SERVICE_NAMESPACE: &str = "default";

/// `namespace/name` of a Service. Shared strings: a speaker keys several maps of 10,000
/// Services by it, and a clone costs two reference counts, not two allocations.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

impl ServiceKey {
    pub fn new(namespace: &str, name: &str) -> ServiceKey {
        ServiceKey {
            namespace: crate::shared_names::shared_name(namespace),
            name: name.into(),
        }
    }

    /// The key of a Service object (`None` without a name); a missing namespace is the
    /// default one.
    pub fn of(service: &Service) -> Option<ServiceKey> {
        Some(ServiceKey::new(
            service
                .metadata
                .namespace
                .as_deref()
                .unwrap_or(DEFAULT_SERVICE_NAMESPACE),
            service.metadata.name.as_deref()?,
        ))
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}
