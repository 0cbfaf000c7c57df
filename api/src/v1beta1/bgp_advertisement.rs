use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Announces the IPs of some pools to BGP peers.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BGPAdvertisement",
    namespaced,
    derive = "PartialEq",
    printcolumn = r#"{"name":"IPAddressPools","type":"string","jsonPath":".spec.ipAddressPools"}"#,
    printcolumn = r#"{"name":"IPAddressPool Selectors","type":"string","jsonPath":".spec.ipAddressPoolSelectors"}"#,
    printcolumn = r#"{"name":"Peers","type":"string","jsonPath":".spec.peers"}"#,
    printcolumn = r#"{"name":"Node Selectors","type":"string","jsonPath":".spec.nodeSelectors","priority":10}"#
)]
#[serde(rename_all = "camelCase")]
pub struct BGPAdvertisementSpec {
    /// Prefix length of the IPv4 routes announced; 32 unless aggregated.
    #[serde(
        default = "default_aggregation_v4",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1))]
    pub aggregation_length: Option<i32>,
    /// Prefix length of the IPv6 routes announced; 128 unless aggregated.
    #[serde(
        default = "default_aggregation_v6",
        skip_serializing_if = "Option::is_none",
        rename = "aggregationLengthV6"
    )]
    pub aggregation_length_v6: Option<i32>,
    /// LOCAL_PREF sent to iBGP peers.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub local_pref: u32,
    /// Standard (`65000:1`), large (`large:1:2:3`) communities or Community aliases.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<String>,
    /// Pools announced by name; with no pools and no selectors, every pool.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pools: Vec<String>,
    /// Pools announced by their labels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ip_address_pool_selectors: Vec<LabelSelector>,
    /// Nodes that announce; empty means every node.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_selectors: Vec<LabelSelector>,
    /// Names of BGPPeer objects to announce to; empty means every peer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<String>,
    /// Services announced; empty means every Service. Only with the default aggregation
    /// lengths.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_selectors: Vec<LabelSelector>,
}

#[allow(clippy::unnecessary_wraps)]
fn default_aggregation_v4() -> Option<i32> {
    Some(32)
}

#[allow(clippy::unnecessary_wraps)]
fn default_aggregation_v6() -> Option<i32> {
    Some(128)
}

fn is_zero(value: &u32) -> bool {
    *value == 0
}
