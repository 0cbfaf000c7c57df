//! MetalLB's legacy configuration (the `config` ConfigMap of MetalLB 0.12 and before), and its
//! conversion to `metallb.io` objects as MetalLB's `configmaptocrs` tool does it.
use crate::config::{Config, ConfigError, ConfigObjects};
use crate::{v1beta1, v1beta2};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{
    LabelSelector, LabelSelectorRequirement, ObjectMeta,
};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The YAML under the ConfigMap's `config` key.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyConfig {
    #[serde(default)]
    pub peers: Vec<LegacyPeer>,
    #[serde(default)]
    pub bgp_communities: BTreeMap<String, String>,
    #[serde(default)]
    pub address_pools: Vec<LegacyPool>,
    #[serde(default)]
    pub bfd_profiles: Vec<LegacyBfdProfile>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyPeer {
    #[serde(default)]
    pub my_asn: u32,
    #[serde(default)]
    pub peer_asn: u32,
    #[serde(default)]
    pub peer_address: String,
    #[serde(default)]
    pub source_address: String,
    #[serde(default)]
    pub peer_port: u16,
    #[serde(default)]
    pub hold_time: String,
    #[serde(default)]
    pub keepalive_time: String,
    #[serde(default)]
    pub router_id: String,
    #[serde(default)]
    pub node_selectors: Vec<LegacyNodeSelector>,
    #[serde(default)]
    pub password: String,
    #[serde(default)]
    pub bfd_profile: String,
    #[serde(default)]
    pub ebgp_multihop: bool,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyNodeSelector {
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub match_expressions: Vec<LegacyExpression>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct LegacyExpression {
    pub key: String,
    pub operator: String,
    #[serde(default)]
    pub values: Vec<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyPool {
    pub name: String,
    #[serde(default)]
    pub protocol: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    pub auto_assign: Option<bool>,
    pub avoid_buggy_ips: Option<bool>,
    #[serde(default)]
    pub bgp_advertisements: Vec<LegacyBgpAdvertisement>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyBgpAdvertisement {
    pub aggregation_length: Option<i32>,
    pub aggregation_length_v6: Option<i32>,
    #[serde(default)]
    pub localpref: u32,
    #[serde(default)]
    pub communities: Vec<String>,
}

#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LegacyBfdProfile {
    pub name: String,
    pub receive_interval: Option<u32>,
    pub transmit_interval: Option<u32>,
    pub detect_multiplier: Option<u32>,
    pub echo_interval: Option<u32>,
    pub echo_mode: Option<bool>,
    pub passive_mode: Option<bool>,
    pub minimum_ttl: Option<u32>,
}

/// Why a legacy ConfigMap could not be converted.
#[derive(Debug, thiserror::Error)]
pub enum ConversionError {
    #[error("not a ConfigMap: {0}")]
    NotAConfigMap(String),
    #[error("the ConfigMap has no `config` key")]
    NoConfig,
    #[error("could not parse the `config` key: {0}")]
    BadConfig(String),
    #[error("{what} {name:?} has no letter to make a Kubernetes name of")]
    BadName { what: &'static str, name: String },
    #[error("{field}: {reason}")]
    BadField { field: String, reason: String },
    #[error("the converted configuration is invalid:\n{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<ConfigError>),
}

/// The objects a legacy configuration becomes, in MetalLB's output order.
#[derive(Debug, Default)]
pub struct Converted {
    pub peers: Vec<v1beta2::BGPPeer>,
    pub pools: Vec<v1beta1::IPAddressPool>,
    pub bgp_advertisements: Vec<v1beta1::BGPAdvertisement>,
    pub l2_advertisements: Vec<v1beta1::L2Advertisement>,
    pub bfd_profiles: Vec<v1beta1::BFDProfile>,
    pub communities: Vec<v1beta1::Community>,
}

impl Converted {
    /// Multi-document YAML, ready for `kubectl apply -f -` or a store directory.
    pub fn to_yaml(&self) -> String {
        let mut out = String::from(
            "# Converted from a MetalLB ConfigMap by `ferrolbctl convert-configmap`.\n",
        );
        let mut push = |value: yaml_serde::Result<String>| {
            out.push_str("---\n");
            out.push_str(&value.expect("API objects always serialise"));
        };
        self.peers
            .iter()
            .for_each(|o| push(yaml_serde::to_string(o)));
        self.pools
            .iter()
            .for_each(|o| push(yaml_serde::to_string(o)));
        self.bgp_advertisements
            .iter()
            .for_each(|o| push(yaml_serde::to_string(o)));
        self.l2_advertisements
            .iter()
            .for_each(|o| push(yaml_serde::to_string(o)));
        self.bfd_profiles
            .iter()
            .for_each(|o| push(yaml_serde::to_string(o)));
        self.communities
            .iter()
            .for_each(|o| push(yaml_serde::to_string(o)));
        out
    }

    pub fn config_objects(&self) -> ConfigObjects {
        ConfigObjects {
            pools: self.pools.clone(),
            l2_advertisements: self.l2_advertisements.clone(),
            bgp_advertisements: self.bgp_advertisements.clone(),
            bgp_peers: self.peers.clone(),
            bfd_profiles: self.bfd_profiles.clone(),
            communities: self.communities.clone(),
            ..ConfigObjects::default()
        }
    }
}

/// Converts a ConfigMap given as YAML text, then checks the result with the full validation.
pub fn convert_configmap_yaml(text: &str) -> Result<Converted, ConversionError> {
    let configmap: ConfigMap =
        yaml_serde::from_str(text).map_err(|e| ConversionError::NotAConfigMap(e.to_string()))?;
    if configmap_kind(text).as_deref() != Some("ConfigMap") {
        return Err(ConversionError::NotAConfigMap(
            "kind is not ConfigMap".into(),
        ));
    }
    convert_configmap(&configmap)
}

/// Converts a ConfigMap, then checks the result with the full validation.
pub fn convert_configmap(configmap: &ConfigMap) -> Result<Converted, ConversionError> {
    let namespace = configmap
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| crate::DEFAULT_NAMESPACE.to_string());
    let config = configmap
        .data
        .as_ref()
        .and_then(|d| d.get("config"))
        .ok_or(ConversionError::NoConfig)?;
    let legacy: LegacyConfig =
        yaml_serde::from_str(config).map_err(|e| ConversionError::BadConfig(e.to_string()))?;
    let converted = convert(&legacy, &namespace)?;
    Config::build(&converted.config_objects()).map_err(ConversionError::Invalid)?;
    Ok(converted)
}

fn configmap_kind(text: &str) -> Option<String> {
    let value: yaml_serde::Value = yaml_serde::from_str(text).ok()?;
    value.get("kind")?.as_str().map(str::to_string)
}

/// The conversion itself, without validation.
pub fn convert(legacy: &LegacyConfig, namespace: &str) -> Result<Converted, ConversionError> {
    let meta = |name: String| ObjectMeta {
        name: Some(name),
        namespace: Some(namespace.to_string()),
        ..ObjectMeta::default()
    };
    let mut out = Converted::default();

    for (i, peer) in legacy.peers.iter().enumerate() {
        let hold_time = legacy_duration(&format!("peers[{i}].hold-time"), &peer.hold_time, "90s")?;
        let keepalive_time = (!peer.keepalive_time.is_empty())
            .then(|| {
                legacy_duration(
                    &format!("peers[{i}].keepalive-time"),
                    &peer.keepalive_time,
                    "",
                )
            })
            .transpose()?;
        let bfd_profile = if peer.bfd_profile.is_empty() {
            String::new()
        } else {
            kubernetes_name("BFDProfile", &peer.bfd_profile)?
        };
        let spec = v1beta2::BGPPeerSpec {
            my_asn: peer.my_asn,
            peer_asn: peer.peer_asn,
            peer_address: peer.peer_address.clone(),
            source_address: peer.source_address.clone(),
            peer_port: Some(if peer.peer_port == 0 {
                179
            } else {
                peer.peer_port
            }),
            hold_time: Some(hold_time),
            keepalive_time,
            router_id: peer.router_id.clone(),
            node_selectors: peer.node_selectors.iter().map(label_selector).collect(),
            password: peer.password.clone(),
            bfd_profile,
            ebgp_multi_hop: peer.ebgp_multihop,
            ..v1beta2::BGPPeerSpec::default()
        };
        out.peers.push(v1beta2::BGPPeer {
            metadata: meta(format!("peer{}", i + 1)),
            spec,
        });
    }

    for pool in &legacy.address_pools {
        let name = kubernetes_name("IPAddressPool", &pool.name)?;
        out.pools.push(v1beta1::IPAddressPool {
            metadata: meta(name.clone()),
            spec: v1beta1::IPAddressPoolSpec {
                addresses: pool.addresses.clone(),
                auto_assign: Some(pool.auto_assign.unwrap_or(true)),
                avoid_buggy_ips: pool.avoid_buggy_ips.unwrap_or(false),
                service_allocation: None,
            },
            status: None,
        });
        match pool.protocol.as_str() {
            "layer2" if !pool.bgp_advertisements.is_empty() => {
                return Err(ConversionError::BadField {
                    field: format!("address-pools[{}].bgp-advertisements", pool.name),
                    reason: "cannot have bgp-advertisements in a layer2 address pool".into(),
                });
            }
            "layer2" => {
                let n = out.l2_advertisements.len() + 1;
                out.l2_advertisements.push(v1beta1::L2Advertisement {
                    metadata: meta(format!("l2advertisement{n}")),
                    spec: v1beta1::L2AdvertisementSpec {
                        ip_address_pools: vec![name],
                        ..Default::default()
                    },
                });
            }
            "bgp" => {
                let advertisements: Vec<&LegacyBgpAdvertisement> =
                    pool.bgp_advertisements.iter().collect();
                let default = LegacyBgpAdvertisement::default();
                let advertisements = if advertisements.is_empty() {
                    vec![&default]
                } else {
                    advertisements
                };
                for adv in advertisements {
                    let n = out.bgp_advertisements.len() + 1;
                    out.bgp_advertisements.push(v1beta1::BGPAdvertisement {
                        metadata: meta(format!("bgpadvertisement{n}")),
                        spec: v1beta1::BGPAdvertisementSpec {
                            aggregation_length: adv.aggregation_length.or(Some(32)),
                            aggregation_length_v6: adv.aggregation_length_v6.or(Some(128)),
                            local_pref: adv.localpref,
                            communities: adv.communities.clone(),
                            ip_address_pools: vec![name.clone()],
                            ..Default::default()
                        },
                    });
                }
            }
            "" => {
                return Err(ConversionError::BadField {
                    field: format!("address-pools[{}].protocol", pool.name),
                    reason: "address pool is missing the protocol field".into(),
                });
            }
            other => {
                return Err(ConversionError::BadField {
                    field: format!("address-pools[{}].protocol", pool.name),
                    reason: format!("unknown protocol {other:?}: expected layer2 or bgp"),
                });
            }
        }
    }

    for profile in &legacy.bfd_profiles {
        out.bfd_profiles.push(v1beta1::BFDProfile {
            metadata: meta(kubernetes_name("BFDProfile", &profile.name)?),
            spec: v1beta1::BFDProfileSpec {
                receive_interval: profile.receive_interval,
                transmit_interval: profile.transmit_interval,
                detect_multiplier: profile.detect_multiplier,
                echo_interval: profile.echo_interval,
                echo_mode: Some(profile.echo_mode.unwrap_or(false)),
                passive_mode: Some(profile.passive_mode.unwrap_or(false)),
                minimum_ttl: profile.minimum_ttl,
            },
        });
    }

    if !legacy.bgp_communities.is_empty() {
        out.communities.push(v1beta1::Community {
            metadata: meta("communities".into()),
            spec: v1beta1::CommunitySpec {
                communities: legacy
                    .bgp_communities
                    .iter()
                    .map(|(name, value)| v1beta1::CommunityAlias {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
            },
        });
    }
    Ok(out)
}

/// Makes a legacy name a valid Kubernetes name as MetalLB's tool does: kept when already valid,
/// otherwise cut to 63 bytes, lowercased, `_` turned into `-` and anything before the first
/// letter dropped.
pub fn kubernetes_name(what: &'static str, name: &str) -> Result<String, ConversionError> {
    let valid = |s: &str| {
        let b = s.as_bytes();
        (2..=63).contains(&b.len())
            && b[0].is_ascii_lowercase()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
            && b.last()
                .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    };
    if valid(name) {
        return Ok(name.to_string());
    }
    let cut: String = name
        .chars()
        .scan(0, |len, c| {
            *len += c.len_utf8();
            (*len <= 63).then_some(c)
        })
        .collect();
    let lowered = cut.to_lowercase().replace('_', "-");
    match lowered.find(|c: char| c.is_ascii_lowercase()) {
        Some(start) => Ok(lowered[start..].to_string()),
        None => Err(ConversionError::BadName {
            what,
            name: name.to_string(),
        }),
    }
}

/// A legacy duration, whole seconds as MetalLB truncated them, rendered the Go way.
fn legacy_duration(field: &str, text: &str, default: &str) -> Result<String, ConversionError> {
    let text = if text.is_empty() { default } else { text };
    let duration =
        crate::config::parse_go_duration(text).map_err(|reason| ConversionError::BadField {
            field: field.to_string(),
            reason,
        })?;
    Ok(format!("{}s", duration.as_secs()))
}

fn label_selector(legacy: &LegacyNodeSelector) -> LabelSelector {
    LabelSelector {
        match_labels: (!legacy.match_labels.is_empty()).then(|| legacy.match_labels.clone()),
        match_expressions: (!legacy.match_expressions.is_empty()).then(|| {
            legacy
                .match_expressions
                .iter()
                .map(|e| LabelSelectorRequirement {
                    key: e.key.clone(),
                    operator: e.operator.clone(),
                    values: (!e.values.is_empty()).then(|| e.values.clone()),
                })
                .collect()
        }),
    }
}

#[cfg(test)]
mod tests;
