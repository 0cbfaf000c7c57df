use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::v1beta2;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// The deprecated BGPPeer version, still served; it converts to v1beta2.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "BGPPeer",
    namespaced,
    derive = "PartialEq",
    deprecated = "v1beta1 is deprecated, please use v1beta2",
    printcolumn = r#"{"name":"Address","type":"string","jsonPath":".spec.peerAddress"}"#,
    printcolumn = r#"{"name":"ASN","type":"string","jsonPath":".spec.peerASN"}"#,
    printcolumn = r#"{"name":"BFD Profile","type":"string","jsonPath":".spec.bfdProfile"}"#,
    printcolumn = r#"{"name":"Multi Hops","type":"string","jsonPath":".spec.ebgpMultiHop"}"#
)]
pub struct BGPPeerSpec {
    /// Our AS number.
    #[serde(rename = "myASN")]
    pub my_asn: u32,
    /// The peer's AS number.
    #[serde(rename = "peerASN")]
    pub peer_asn: u32,
    /// The peer's address.
    #[serde(rename = "peerAddress")]
    pub peer_address: String,
    /// The local address the session starts from.
    #[serde(
        rename = "sourceAddress",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub source_address: String,
    /// The peer's TCP port (default 179).
    #[serde(rename = "peerPort", default, skip_serializing_if = "is_zero_u16")]
    #[schemars(range(max = 16384))]
    pub peer_port: u16,
    /// The hold time offered in OPEN, as a duration.
    #[serde(rename = "holdTime", default, skip_serializing_if = "String::is_empty")]
    pub hold_time: String,
    /// How often KEEPALIVEs are sent, as a duration.
    #[serde(
        rename = "keepaliveTime",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub keepalive_time: String,
    /// The BGP identifier.
    #[serde(rename = "routerID", default, skip_serializing_if = "String::is_empty")]
    pub router_id: String,
    /// Nodes that keep a session with this peer; empty means every node.
    #[serde(
        rename = "nodeSelectors",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub node_selectors: Vec<LegacyNodeSelector>,
    /// The TCP MD5 password.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub password: String,
    /// The BFDProfile the session runs under.
    #[serde(
        rename = "bfdProfile",
        default,
        skip_serializing_if = "String::is_empty"
    )]
    pub bfd_profile: String,
    /// The peer is more than one hop away.
    #[serde(rename = "ebgpMultiHop", default, skip_serializing_if = "is_false")]
    pub ebgp_multi_hop: bool,
}

/// v1beta1's own node selector type.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LegacyNodeSelector {
    /// Labels a node must carry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Expressions a node's labels must satisfy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LegacyMatchExpression>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct LegacyMatchExpression {
    pub key: String,
    pub operator: String,
    #[schemars(length(min = 1))]
    pub values: Vec<String>,
}

fn is_zero_u16(value: &u16) -> bool {
    *value == 0
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl From<LegacyNodeSelector> for LabelSelector {
    fn from(legacy: LegacyNodeSelector) -> Self {
        LabelSelector {
            match_labels: (!legacy.match_labels.is_empty()).then_some(legacy.match_labels),
            match_expressions: (!legacy.match_expressions.is_empty()).then(|| {
                legacy
                    .match_expressions
                    .into_iter()
                    .map(|e| LabelSelectorRequirement {
                        key: e.key,
                        operator: e.operator,
                        values: Some(e.values),
                    })
                    .collect()
            }),
        }
    }
}

impl From<BGPPeer> for v1beta2::BGPPeer {
    /// The conversion MetalLB's webhook performs: shared fields copied, the rest left unset.
    fn from(old: BGPPeer) -> Self {
        let spec = old.spec;
        let duration = |d: String| (!d.is_empty()).then_some(d);
        let mut new = v1beta2::BGPPeer::new(
            old.metadata.name.as_deref().unwrap_or_default(),
            v1beta2::BGPPeerSpec {
                my_asn: spec.my_asn,
                peer_asn: spec.peer_asn,
                peer_address: spec.peer_address,
                source_address: spec.source_address,
                peer_port: Some(if spec.peer_port == 0 {
                    179
                } else {
                    spec.peer_port
                }),
                hold_time: duration(spec.hold_time),
                keepalive_time: duration(spec.keepalive_time),
                router_id: spec.router_id,
                node_selectors: spec.node_selectors.into_iter().map(Into::into).collect(),
                password: spec.password,
                bfd_profile: spec.bfd_profile,
                ebgp_multi_hop: spec.ebgp_multi_hop,
                ..Default::default()
            },
        );
        new.metadata = old.metadata;
        new
    }
}
