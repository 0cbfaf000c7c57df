use k8s_openapi::api::core::v1::SecretReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A BGP router the speakers peer with (the storage version).
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta2",
    kind = "BGPPeer",
    namespaced,
    derive = "PartialEq",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.peerAddress"}"#,
    printcolumn = r#"{"name":"ASN","type":"string","jsonPath":".spec.peerASN"}"#,
    printcolumn = r#"{"name":"BFD Profile","type":"string","jsonPath":".spec.bfdProfile"}"#,
    printcolumn = r#"{"name":"Multi Hops","type":"string","jsonPath":".spec.ebgpMultiHop"}"#
)]
pub struct BGPPeerSpec {
    /// Our AS number.
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    /// The peer's AS number; exclusive with `dynamicASN`.
    #[serde(rename = "peerASN", default, skip_serializing_if = "is_zero_u32")]
    pub peer_asn: u32,
    /// An AS number announced in place of myASN (FRR's local-as).
    #[serde(rename = "localASN", default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub local_asn: Option<u32>,
    /// Accept whatever AS the peer opens with, as long as it is internal or external.
    #[serde(
        rename = "dynamicASN",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub dynamic_asn: Option<DynamicAsnMode>,
    /// The peer's address; exclusive with `interface`.
    #[serde(
        rename = "peerAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub peer_address: String,
    /// Unnumbered BGP over this node interface; exclusive with `peerAddress`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// The local address the session starts from; by default the kernel picks one.
    #[serde(
        rename = "sourceAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub source_address: String,
    /// The peer's TCP port, 1 to 16384 (default 179).
    #[serde(
        rename = "peerPort",
        default = "default_port",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(range(min = 1, max = 16384))]
    pub peer_port: Option<u16>,
    /// A Go duration such as `90s`; 0 or at least 3s.
    #[serde(rename = "holdTime", default, skip_serializing_if = "Option::is_none")]
    pub hold_time: Option<String>,
    /// How often KEEPALIVEs are sent, as a duration (by default a third of the hold time).
    #[serde(
        rename = "keepaliveTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub keepalive_time: Option<String>,
    /// Time between connection attempts, whole seconds from 1s to 65535s.
    #[serde(
        rename = "connectTime",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub connect_time: Option<String>,
    /// The BGP identifier; by default the node's IPv4 address (generated on IPv6-only nodes).
    #[serde(rename = "routerID", default, skip_serializing_if = "String::is_empty")]
    pub router_id: String,
    /// Nodes that keep a session with this peer; empty means every node.
    #[serde(
        rename = "nodeSelectors",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub node_selectors: Vec<LabelSelector>,
    /// TCP MD5 password in clear text; exclusive with `passwordSecret`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// A `kubernetes.io/basic-auth` Secret holding the password under `password`.
    #[serde(
        rename = "passwordSecret",
        default,
        skip_serializing_if = "is_empty_secret_ref"
    )]
    pub password_secret: SecretReference,
    /// The BFDProfile the session runs under; BFD down takes the session down.
    #[serde(
        rename = "bfdProfile",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub bfd_profile: String,
    /// Announce graceful restart, so the peer keeps our routes while the speaker restarts.
    /// Cannot change once the peer exists.
    #[serde(
        rename = "enableGracefulRestart",
        default,
        skip_serializing_if = "is_false"
    )]
    pub enable_graceful_restart: bool,
    /// The peer is more than one hop away (an external peer).
    #[serde(rename = "ebgpMultiHop", default, skip_serializing_if = "is_false")]
    pub ebgp_multi_hop: bool,
    /// A VRF to peer from (FerroLB reports it as not honoured).
    #[serde(rename = "vrf", default, skip_serializing_if = "String::is_empty")]
    pub vrf: String,
    /// Deprecated in favour of `dualStackAddressFamily`.
    #[serde(rename = "disableMP", default, skip_serializing_if = "is_false")]
    pub disable_mp: bool,
    /// Carry IPv4 and IPv6 routes over one session.
    #[serde(
        rename = "dualStackAddressFamily",
        default,
        skip_serializing_if = "is_false"
    )]
    pub dual_stack_address_family: bool,
}

/// Which peer AS numbers a `dynamicASN` session accepts.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DynamicAsnMode {
    /// The peer's AS equals ours (iBGP).
    Internal,
    /// The peer's AS differs from ours (eBGP).
    External,
}

#[allow(clippy::unnecessary_wraps)]
fn default_port() -> Option<u16> {
    Some(179)
}

fn is_zero_u32(value: &u32) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}

pub(crate) fn is_empty_secret_ref(value: &SecretReference) -> bool {
    value.name.as_deref().unwrap_or("").is_empty()
        && value.namespace.as_deref().unwrap_or("").is_empty()
}
