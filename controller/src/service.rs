//! From a Kubernetes Service to what it asks the allocator for.
use crate::allocator::{FamilyPolicy, Request, ServiceKey, Sharing};
use ferrolb_api::address::Family;
use ferrolb_api::annotations::{AnnotationError, ServiceAnnotations};
use ferrolb_api::service_key::DEFAULT_SERVICE_NAMESPACE;
use k8s_openapi::api::core::v1::Service;
use std::collections::{BTreeMap, BTreeSet};

pub fn key_of(service: &Service) -> ServiceKey {
    ServiceKey::of(service).unwrap_or_else(|| ServiceKey::new(DEFAULT_SERVICE_NAMESPACE, ""))
}

pub use ferrolb_api::service::status_ips;
pub use ferrolb_api::service::{in_our_class, is_ours};

/// The pool named in the Service's `ip-allocated-from-pool` annotation.
pub fn status_pool(service: &Service) -> Option<&str> {
    service
        .metadata
        .annotations
        .as_ref()?
        .get(ferrolb_api::annotations::IP_ALLOCATED_FROM_POOL)
        .map(String::as_str)
}

/// Builds the allocator's request from a Service and its namespace's labels.
pub fn request(
    service: &Service,
    namespace_labels: &BTreeMap<String, String>,
) -> Result<(Request, ServiceAnnotations), AnnotationError> {
    let empty = BTreeMap::new();
    let annotations =
        ServiceAnnotations::parse(service.metadata.annotations.as_ref().unwrap_or(&empty))?;
    let spec = service.spec.clone().unwrap_or_default();
    let mut requested_ips = annotations.requested_ips.clone();
    let spec_ip = spec.load_balancer_ip.as_deref().filter(|s| !s.is_empty());
    if !requested_ips.is_empty() && spec_ip.is_some() {
        return Err(AnnotationError::BothRequests {
            key: ferrolb_api::annotations::LOAD_BALANCER_IPS_KEY.into(),
        });
    }
    if let Some(ip) = spec_ip {
        let ip = ip.parse().map_err(|_| AnnotationError::InvalidIp {
            key: "spec.loadBalancerIP".into(),
            value: ip.to_string(),
        })?;
        requested_ips.push(ip);
    }
    let families: Vec<Family> = spec
        .ip_families
        .iter()
        .flatten()
        .filter_map(|f| match f.as_str() {
            "IPv4" => Some(Family::V4),
            "IPv6" => Some(Family::V6),
            _ => None,
        })
        .collect();
    // Without ipFamilies (a hand-written Service in the file store; the API server always
    // fills them in), the requested IPs decide, then IPv4.
    let primary = families
        .first()
        .copied()
        .or_else(|| requested_ips.first().map(Family::of))
        .unwrap_or(Family::V4);
    let requested_families: BTreeSet<Family> = requested_ips.iter().map(Family::of).collect();
    let policy = match spec.ip_family_policy.as_deref() {
        Some("PreferDualStack") => FamilyPolicy::PreferDualStack,
        Some("RequireDualStack") => FamilyPolicy::RequireDualStack,
        Some(_) => FamilyPolicy::SingleStack,
        None if families.len() == 2 || (families.is_empty() && requested_families.len() == 2) => {
            FamilyPolicy::RequireDualStack
        }
        None => FamilyPolicy::SingleStack,
    };
    let sharing = annotations.sharing_key.clone().map(|key| Sharing {
        key,
        local_selector: (spec.external_traffic_policy.as_deref() == Some("Local"))
            .then(|| spec.selector.clone().unwrap_or_default()),
        ports: spec
            .ports
            .iter()
            .flatten()
            .map(|p| {
                (
                    p.protocol.clone().unwrap_or_else(|| "TCP".to_string()),
                    p.port,
                )
            })
            .collect(),
    });
    let request = Request {
        key: key_of(service),
        primary,
        policy,
        ip_families: families,
        requested_ips,
        pool: annotations.pool.clone(),
        sharing,
        labels: service.metadata.labels.clone().unwrap_or_default(),
        namespace_labels: namespace_labels.clone(),
    };
    Ok((request, annotations))
}
