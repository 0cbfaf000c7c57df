//! The Kubernetes objects FerroLB reads, decoded from YAML or JSON by `apiVersion` and `kind`.
use crate::config::ConfigObjects;
use crate::kind::Kind;
use crate::shared_names::shared_name;
use crate::{v1beta1, v1beta2};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Node, Secret, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::Resource;
use serde::de::DeserializeOwned;
use std::fmt;
use std::sync::Arc;

pub mod slim;
#[cfg(test)]
mod tests;

/// How much of each object a component keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Detail {
    /// Every field (the controller, `ferrolbctl`).
    #[default]
    Full,
    /// Services and EndpointSlices as [`slim`] records, everything else in full (speakers).
    Speaker,
}

/// One object of a kind FerroLB knows. Shared (`Arc`): the file store's cache of parsed files,
/// its snapshots and the Kubernetes watchers' state all hold the same objects, and a clone
/// costs a reference count rather than a copy.
#[derive(Clone, Debug, PartialEq)]
pub enum Object {
    Service(Arc<Service>),
    Node(Arc<Node>),
    Namespace(Arc<Namespace>),
    Secret(Arc<Secret>),
    ConfigMap(Arc<ConfigMap>),
    EndpointSlice(Arc<EndpointSlice>),
    IPAddressPool(Arc<v1beta1::IPAddressPool>),
    L2Advertisement(Arc<v1beta1::L2Advertisement>),
    BGPAdvertisement(Arc<v1beta1::BGPAdvertisement>),
    Community(Arc<v1beta1::Community>),
    BFDProfile(Arc<v1beta1::BFDProfile>),
    /// Either version; v1beta1 objects are converted as MetalLB's webhook does.
    BGPPeer(Arc<v1beta2::BGPPeer>),
    ServiceL2Status(Arc<v1beta1::ServiceL2Status>),
    ServiceBGPStatus(Arc<v1beta1::ServiceBGPStatus>),
    ConfigurationState(Arc<v1beta1::ConfigurationState>),
    /// A Service as a speaker keeps it ([`Detail::Speaker`]).
    SlimService(Arc<slim::Service>),
    /// An EndpointSlice as a speaker keeps it ([`Detail::Speaker`]).
    SlimEndpointSlice(Arc<slim::EndpointSlice>),
}

/// Identifies an object: kind, namespace (none for cluster-scoped kinds) and name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectKey {
    pub kind: Kind,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn new(kind: Kind, namespace: Option<&str>, name: &str) -> ObjectKey {
        ObjectKey {
            kind,
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    pub fn of(object: &Object) -> ObjectKey {
        ObjectKey::new(object.kind(), object.namespace(), object.name())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// Why a document could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("missing apiVersion or kind")]
    MissingType,
    #[error("unsupported kind {kind:?} of apiVersion {api_version:?}")]
    UnsupportedKind { api_version: String, kind: String },
    /// `object` names the kind, and the namespace and name when the document has them;
    /// `reason` starts with the path of the offending field.
    #[error("invalid {object}: {reason}")]
    Invalid {
        object: String,
        reason: String,
        /// Which object, when the document names its kind and name.
        key: Option<ObjectKey>,
    },
}

impl DecodeError {
    /// Whether the document is of a kind FerroLB does not read (a Deployment in a folder of
    /// manifests), rather than a broken object of a kind it reads.
    pub fn is_unsupported_kind(&self) -> bool {
        matches!(self, DecodeError::UnsupportedKind { .. })
    }

    /// The object that failed, when the document named its kind and name.
    pub fn key(&self) -> Option<&ObjectKey> {
        match self {
            DecodeError::Invalid { key, .. } => key.as_ref(),
            _ => None,
        }
    }
}

/// A document's `metadata.namespace` and `metadata.name`, where written.
fn identity(value: &serde_json::Value) -> (Option<&str>, Option<&str>) {
    let meta = |field: &str| {
        value
            .pointer(&format!("/metadata/{field}"))
            .and_then(|v| v.as_str())
    };
    (meta("namespace"), meta("name"))
}

/// "Kind namespace/name", with as much of the identity as the document has.
fn describe(kind: &str, value: &serde_json::Value) -> String {
    match identity(value) {
        (Some(ns), Some(name)) => format!("{kind} {ns}/{name}"),
        (None, Some(name)) => format!("{kind} {name}"),
        _ => kind.to_string(),
    }
}

/// The key of a document of `kind` that names itself (its namespace as written: none when
/// left out).
fn key_of(kind: &str, value: &serde_json::Value) -> Option<ObjectKey> {
    let (namespace, name) = identity(value);
    Some(ObjectKey::new(kind.parse().ok()?, namespace, name?))
}

fn typed<T: DeserializeOwned>(kind: &str, value: serde_json::Value) -> Result<Arc<T>, DecodeError> {
    let object = describe(kind, &value);
    let key = key_of(kind, &value);
    serde_path_to_error::deserialize(value)
        .map(Arc::new)
        .map_err(|e| DecodeError::Invalid {
            object,
            reason: match e.path().to_string().as_str() {
                "." => e.into_inner().to_string(),
                path => format!("{path}: {}", e.into_inner()),
            },
            key,
        })
}

/// MetalLB's CRDs require `spec` on IPAddressPool only: every other kind is valid without one
/// (the most common L2Advertisement has none), and means the same as an empty `spec`.
/// `status: {}` (written by MetalLB's ConfigMap converter) or `status: null` means no status.
fn fill_optional_parts(api_version: &str, kind: &str, value: &mut serde_json::Value) {
    if api_version.split('/').next() != Some("metallb.io") {
        return;
    }
    let Some(fields) = value.as_object_mut() else {
        return;
    };
    let empty = |v: &serde_json::Value| v.is_null() || v.as_object().is_some_and(|o| o.is_empty());
    if fields.get("status").is_some_and(empty) {
        fields.remove("status");
    }
    if kind != "IPAddressPool" && fields.get("spec").is_none_or(serde_json::Value::is_null) {
        fields.insert(
            "spec".into(),
            serde_json::Value::Object(serde_json::Map::new()),
        );
    }
}

impl Object {
    /// Decodes one document (already parsed as JSON-compatible data).
    pub fn decode(mut value: serde_json::Value) -> Result<Object, DecodeError> {
        let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_string);
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return Err(DecodeError::MissingType);
        };
        fill_optional_parts(&api_version, &kind, &mut value);
        let k = kind.as_str();
        Ok(match (api_version.as_str(), k) {
            ("v1", "Service") => Object::Service(typed(k, value)?),
            ("v1", "Node") => Object::Node(typed(k, value)?),
            ("v1", "Namespace") => Object::Namespace(typed(k, value)?),
            ("v1", "Secret") => Object::Secret(typed(k, value)?),
            ("v1", "ConfigMap") => Object::ConfigMap(typed(k, value)?),
            ("discovery.k8s.io/v1", "EndpointSlice") => Object::EndpointSlice(typed(k, value)?),
            ("metallb.io/v1beta1", "IPAddressPool") => Object::IPAddressPool(typed(k, value)?),
            ("metallb.io/v1beta1", "L2Advertisement") => Object::L2Advertisement(typed(k, value)?),
            ("metallb.io/v1beta1", "BGPAdvertisement") => {
                Object::BGPAdvertisement(typed(k, value)?)
            }
            ("metallb.io/v1beta1", "Community") => Object::Community(typed(k, value)?),
            ("metallb.io/v1beta1", "BFDProfile") => Object::BFDProfile(typed(k, value)?),
            ("metallb.io/v1beta1", "BGPPeer") => {
                let old: Arc<v1beta1::BGPPeer> = typed(k, value)?;
                Object::BGPPeer(Arc::new(Arc::unwrap_or_clone(old).into()))
            }
            ("metallb.io/v1beta2", "BGPPeer") => Object::BGPPeer(typed(k, value)?),
            ("metallb.io/v1beta1", "ServiceL2Status") => Object::ServiceL2Status(typed(k, value)?),
            ("metallb.io/v1beta1", "ServiceBGPStatus") => {
                Object::ServiceBGPStatus(typed(k, value)?)
            }
            ("metallb.io/v1beta1", "ConfigurationState") => {
                Object::ConfigurationState(typed(k, value)?)
            }
            _ => return Err(DecodeError::UnsupportedKind { api_version, kind }),
        })
    }

    /// Decodes every document of a multi-document YAML text; empty documents are skipped.
    /// Each result carries the document's index (from 0).
    pub fn decode_yaml_stream(text: &str) -> Vec<(usize, Result<Object, DecodeError>)> {
        Object::decode_yaml_stream_as(text, Detail::Full)
    }

    /// As [`Object::decode_yaml_stream`], each object kept with `detail` as soon as it is
    /// decoded (a file of 10,000 Services is never held in full).
    pub fn decode_yaml_stream_as(
        text: &str,
        detail: Detail,
    ) -> Vec<(usize, Result<Object, DecodeError>)> {
        let mut out = Vec::new();
        for (index, document) in yaml_serde::Deserializer::from_str(text).enumerate() {
            let value = match serde_json::Value::deserialize_yaml(document) {
                Ok(serde_json::Value::Null) => continue,
                Ok(value) => value,
                Err(reason) => {
                    out.push((
                        index,
                        Err(DecodeError::Invalid {
                            object: "YAML".into(),
                            key: None,
                            reason,
                        }),
                    ));
                    // The YAML stream cannot be trusted past a syntax error.
                    break;
                }
            };
            out.push((index, Object::decode(value).map(|o| o.kept_as(detail))));
        }
        out
    }

    /// The object as a component reading with `detail` keeps it.
    pub fn kept_as(self, detail: Detail) -> Object {
        match (detail, self) {
            (Detail::Speaker, Object::Service(s)) => {
                Object::SlimService(Arc::new(slim::Service::of(&s)))
            }
            (Detail::Speaker, Object::EndpointSlice(e)) => {
                Object::SlimEndpointSlice(Arc::new(slim::EndpointSlice::of(&e)))
            }
            (_, object) => object,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Object::Service(_) | Object::SlimService(_) => Kind::Service,
            Object::Node(_) => Kind::Node,
            Object::Namespace(_) => Kind::Namespace,
            Object::Secret(_) => Kind::Secret,
            Object::ConfigMap(_) => Kind::ConfigMap,
            Object::EndpointSlice(_) | Object::SlimEndpointSlice(_) => Kind::EndpointSlice,
            Object::IPAddressPool(_) => Kind::IPAddressPool,
            Object::L2Advertisement(_) => Kind::L2Advertisement,
            Object::BGPAdvertisement(_) => Kind::BGPAdvertisement,
            Object::Community(_) => Kind::Community,
            Object::BFDProfile(_) => Kind::BFDProfile,
            Object::BGPPeer(_) => Kind::BGPPeer,
            Object::ServiceL2Status(_) => Kind::ServiceL2Status,
            Object::ServiceBGPStatus(_) => Kind::ServiceBGPStatus,
            Object::ConfigurationState(_) => Kind::ConfigurationState,
        }
    }

    /// The metadata of a full object; `None` for a slim one.
    fn full_meta(&self) -> Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta> {
        Some(match self {
            Object::Service(o) => o.meta(),
            Object::Node(o) => o.meta(),
            Object::Namespace(o) => o.meta(),
            Object::Secret(o) => o.meta(),
            Object::ConfigMap(o) => o.meta(),
            Object::EndpointSlice(o) => o.meta(),
            Object::IPAddressPool(o) => o.meta(),
            Object::L2Advertisement(o) => o.meta(),
            Object::BGPAdvertisement(o) => o.meta(),
            Object::Community(o) => o.meta(),
            Object::BFDProfile(o) => o.meta(),
            Object::BGPPeer(o) => o.meta(),
            Object::ServiceL2Status(o) => o.meta(),
            Object::ServiceBGPStatus(o) => o.meta(),
            Object::ConfigurationState(o) => o.meta(),
            Object::SlimService(_) | Object::SlimEndpointSlice(_) => return None,
        })
    }

    /// Puts the object in `namespace`; it is copied first if it is shared.
    pub fn set_namespace(&mut self, namespace: &str) {
        let full = || Some(namespace.to_string());
        match self {
            Object::Service(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::Node(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::Namespace(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::Secret(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::ConfigMap(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::EndpointSlice(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::IPAddressPool(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::L2Advertisement(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::BGPAdvertisement(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::Community(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::BFDProfile(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::BGPPeer(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::ServiceL2Status(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::ServiceBGPStatus(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::ConfigurationState(o) => Arc::make_mut(o).meta_mut().namespace = full(),
            Object::SlimService(o) => Arc::make_mut(o).namespace = Some(shared_name(namespace)),
            Object::SlimEndpointSlice(o) => {
                Arc::make_mut(o).namespace = Some(shared_name(namespace))
            }
        }
    }

    /// The object as JSON, with its `apiVersion` and `kind`.
    pub fn to_json(&self) -> Result<serde_json::Value, String> {
        let value = match self {
            Object::Service(o) => serde_json::to_value(&**o),
            Object::Node(o) => serde_json::to_value(&**o),
            Object::Namespace(o) => serde_json::to_value(&**o),
            Object::Secret(o) => serde_json::to_value(&**o),
            Object::ConfigMap(o) => serde_json::to_value(&**o),
            Object::EndpointSlice(o) => serde_json::to_value(&**o),
            Object::IPAddressPool(o) => serde_json::to_value(&**o),
            Object::L2Advertisement(o) => serde_json::to_value(&**o),
            Object::BGPAdvertisement(o) => serde_json::to_value(&**o),
            Object::Community(o) => serde_json::to_value(&**o),
            Object::BFDProfile(o) => serde_json::to_value(&**o),
            Object::BGPPeer(o) => serde_json::to_value(&**o),
            Object::ServiceL2Status(o) => serde_json::to_value(&**o),
            Object::ServiceBGPStatus(o) => serde_json::to_value(&**o),
            Object::ConfigurationState(o) => serde_json::to_value(&**o),
            Object::SlimService(o) => Ok(o.to_json()),
            Object::SlimEndpointSlice(o) => Ok(o.to_json()),
        };
        value.map_err(|e| e.to_string())
    }

    /// Whether both are the very same object (one shared allocation), not merely equal.
    pub fn same(&self, other: &Object) -> bool {
        match (self, other) {
            (Object::SlimService(a), Object::SlimService(b)) => Arc::ptr_eq(a, b),
            (Object::SlimEndpointSlice(a), Object::SlimEndpointSlice(b)) => Arc::ptr_eq(a, b),
            _ => match (self.full_meta(), other.full_meta()) {
                (Some(a), Some(b)) => std::ptr::eq(a, b),
                _ => false,
            },
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Object::SlimService(o) => &o.name,
            Object::SlimEndpointSlice(o) => &o.name,
            _ => self
                .full_meta()
                .and_then(|m| m.name.as_deref())
                .unwrap_or(""),
        }
    }

    pub fn namespace(&self) -> Option<&str> {
        match self {
            Object::SlimService(o) => o.namespace.as_deref(),
            Object::SlimEndpointSlice(o) => o.namespace.as_deref(),
            _ => self.full_meta().and_then(|m| m.namespace.as_deref()),
        }
    }

    /// Whether the kind belongs to the `metallb.io` group (and so to MetalLB's namespace).
    pub fn is_metallb(&self) -> bool {
        matches!(
            self,
            Object::IPAddressPool(_)
                | Object::L2Advertisement(_)
                | Object::BGPAdvertisement(_)
                | Object::Community(_)
                | Object::BFDProfile(_)
                | Object::BGPPeer(_)
                | Object::ServiceL2Status(_)
                | Object::ServiceBGPStatus(_)
                | Object::ConfigurationState(_)
        )
    }
}

/// Parsing a YAML document into JSON-compatible data.
trait DeserializeYaml: Sized {
    fn deserialize_yaml(document: yaml_serde::Deserializer<'_>) -> Result<Self, String>;
}

impl DeserializeYaml for serde_json::Value {
    fn deserialize_yaml(document: yaml_serde::Deserializer<'_>) -> Result<Self, String> {
        use serde::Deserialize;
        serde_json::Value::deserialize(document).map_err(|e| e.to_string())
    }
}

impl ConfigObjects {
    /// Gathers the configuration kinds among `objects`: metallb.io objects of `namespace`
    /// (or with none), Secrets of `namespace`, and every Node.
    pub fn from_objects<'a>(
        objects: impl IntoIterator<Item = &'a Object>,
        namespace: &str,
    ) -> ConfigObjects {
        let mut config = ConfigObjects {
            nodes: Some(Vec::new()),
            ..ConfigObjects::default()
        };
        for object in objects {
            let in_namespace = object.namespace().is_none_or(|ns| ns == namespace);
            if !in_namespace && !matches!(object, Object::Node(_)) {
                continue;
            }
            match object {
                Object::IPAddressPool(o) => config.pools.push((**o).clone()),
                Object::L2Advertisement(o) => config.l2_advertisements.push((**o).clone()),
                Object::BGPAdvertisement(o) => config.bgp_advertisements.push((**o).clone()),
                Object::BGPPeer(o) => config.bgp_peers.push((**o).clone()),
                Object::BFDProfile(o) => config.bfd_profiles.push((**o).clone()),
                Object::Community(o) => config.communities.push((**o).clone()),
                Object::Secret(o) => config.secrets.push((**o).clone()),
                Object::Node(o) => config
                    .nodes
                    .get_or_insert_with(Vec::new)
                    .push((**o).clone()),
                _ => {}
            }
        }
        if config.nodes.as_ref().is_some_and(Vec::is_empty) {
            config.nodes = None;
        }
        config
    }
}
