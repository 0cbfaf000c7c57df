//! How a Service is named everywhere in FerroLB: its namespace and name, never a string that
//! is split again.
use k8s_openapi::api::core::v1::Service;
use std::fmt;

/// The namespace of an object that names none, as the API server defaults it.
pub const DEFAULT_SERVICE_NAMESPACE: &str = "default";

/// `namespace/name` of a Service.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    pub namespace: String,
    pub name: String,
}

impl ServiceKey {
    pub fn new(namespace: &str, name: &str) -> ServiceKey {
        ServiceKey {
            namespace: namespace.to_string(),
            name: name.to_string(),
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
