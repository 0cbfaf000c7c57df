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

/// Whether FerroLB is in charge of the Service, as MetalLB decides it: type LoadBalancer, and
/// its `loadBalancerClass` is ours (without `--lb-class`, Services with no class; with it,
/// exactly that class).
pub fn is_ours(service: &Service, lb_class: Option<&str>) -> bool {
    let spec = service.spec.as_ref();
    spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") && in_our_class(service, lb_class)
}

/// Whether the Service's `loadBalancerClass` is ours (whatever its type).
pub fn in_our_class(service: &Service, lb_class: Option<&str>) -> bool {
    service
        .spec
        .as_ref()
        .and_then(|s| s.load_balancer_class.as_deref())
        == lb_class
}
