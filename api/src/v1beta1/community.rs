use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Names for BGP community values, usable in BGPAdvertisement `communities`.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[kube(
    group = "metallb.io",
    version = "v1beta1",
    kind = "Community",
    namespaced,
    derive = "PartialEq"
)]
#[serde(rename_all = "camelCase")]
pub struct CommunitySpec {
    /// Names for community values, usable in BGPAdvertisements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub communities: Vec<CommunityAlias>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
pub struct CommunityAlias {
    /// The alias used in BGPAdvertisements.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// `a:b` (16-bit parts) or `large:a:b:c` (32-bit parts).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub value: String,
}
