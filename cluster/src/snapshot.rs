//! A consistent view of every object FerroLB reads, at one moment.
use ferrolb_api::config::ConfigObjects;
use ferrolb_api::objects::Object;
pub use ferrolb_api::objects::ObjectKey;
use k8s_openapi::api::core::v1::{Namespace, Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use std::collections::BTreeMap;
use std::fmt;

/// Something in the source that could not be used, and was skipped.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Problem {
    /// A file of the store, or `kubernetes`.
    pub source: String,
    /// The document inside the file, counted from 1.
    pub document: Option<usize>,
    pub reason: String,
    /// The object the problem is about, when the document said which it is: the place for a
    /// Warning Event.
    pub object: Option<ObjectKey>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.document {
            Some(doc) => write!(f, "{} (document {doc}): {}", self.source, self.reason),
            None => write!(f, "{}: {}", self.source, self.reason),
        }
    }
}

/// Where an object was written: a file of the store and the document in it (from 1).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Source {
    pub file: String,
    pub document: usize,
}

/// Every object, keyed, plus what had to be skipped to build it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    pub objects: BTreeMap<ObjectKey, Object>,
    pub problems: Vec<Problem>,
    /// Documents of kinds FerroLB does not read (a Deployment among the manifests): not
    /// wrong, only not ours.
    pub skipped: Vec<Problem>,
    /// For files read by [`crate::store::load_paths`] (`ferrolbctl validate`): where each
    /// object was defined. A running store does not keep it: nothing there reads it, and
    /// it would cost a key and a path per object.
    pub sources: BTreeMap<ObjectKey, Source>,
    /// Whether every kind has been read at least once. Until then the snapshot is incomplete
    /// (the Kubernetes backend starts with an empty one) and must not be acted on.
    pub synced: bool,
}

macro_rules! typed_iter {
    ($fn:ident, $variant:ident, $ty:ty) => {
        pub fn $fn(&self) -> impl Iterator<Item = &$ty> {
            self.objects.values().filter_map(|o| match o {
                Object::$variant(x) => Some(&**x),
                _ => None,
            })
        }
    };
}

impl Snapshot {
    typed_iter!(services, Service, Service);
    typed_iter!(nodes, Node, Node);
    typed_iter!(namespaces, Namespace, Namespace);
    typed_iter!(endpoint_slices, EndpointSlice, EndpointSlice);
    typed_iter!(pools, IPAddressPool, ferrolb_api::v1beta1::IPAddressPool);
    typed_iter!(
        l2_statuses,
        ServiceL2Status,
        ferrolb_api::v1beta1::ServiceL2Status
    );
    typed_iter!(
        bgp_statuses,
        ServiceBGPStatus,
        ferrolb_api::v1beta1::ServiceBGPStatus
    );
    typed_iter!(bgp_peers, BGPPeer, ferrolb_api::v1beta2::BGPPeer);

    pub fn get(&self, key: &ObjectKey) -> Option<&Object> {
        self.objects.get(key)
    }

    /// The objects the configuration is built from, those of MetalLB's `namespace`.
    pub fn config_objects(&self, namespace: &str) -> ConfigObjects {
        ConfigObjects::from_objects(self.objects.values(), namespace)
    }

    /// Namespace labels by name, for namespace selectors.
    pub fn namespace_labels(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.namespaces()
            .map(|ns| {
                (
                    ns.metadata.name.clone().unwrap_or_default(),
                    ns.metadata.labels.clone().unwrap_or_default(),
                )
            })
            .collect()
    }
}
