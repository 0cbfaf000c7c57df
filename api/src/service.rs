//! What a Service's status says, read the same way by the controller, the speakers and
//! `ferrolbctl`.
use k8s_openapi::api::core::v1::Service;
use std::net::IpAddr;

/// The IPs in the Service's `status.loadBalancer.ingress`, in order; entries that are not an
/// IP (a hostname) are skipped.
pub fn status_ips(service: &Service) -> Vec<IpAddr> {
    service
        .status
        .as_ref()
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|i| i.ip.as_deref()?.parse().ok())
        .collect()
}
