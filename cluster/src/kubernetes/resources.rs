//! Group, version and plural of each kind FerroLB writes, for dynamic API calls.
use kube::core::{ApiResource, GroupVersionKind};

/// Kinds whose objects FerroLB creates itself.
pub(super) const OWNED_KINDS: [&str; 3] =
    ["ServiceL2Status", "ServiceBGPStatus", "ConfigurationState"];

pub(super) fn api_resource(kind: &str) -> Option<ApiResource> {
    let (group, version, plural) = match kind {
        "Service" => ("", "v1", "services"),
        "Node" => ("", "v1", "nodes"),
        "IPAddressPool" => ("metallb.io", "v1beta1", "ipaddresspools"),
        "ServiceL2Status" => ("metallb.io", "v1beta1", "servicel2statuses"),
        "ServiceBGPStatus" => ("metallb.io", "v1beta1", "servicebgpstatuses"),
        "ConfigurationState" => ("metallb.io", "v1beta1", "configurationstates"),
        "BGPPeer" => ("metallb.io", "v1beta2", "bgppeers"),
        _ => return None,
    };
    Some(ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(group, version, kind),
        plural,
    ))
}
