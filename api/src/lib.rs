//! The `metallb.io` API as FerroLB serves it: the object types (serialised exactly as
//! MetalLB's), Service annotations, the validated configuration model, legacy ConfigMap
//! conversion and CRD generation.
pub mod address;
pub mod config;
pub mod endpoints;
pub mod event_reason;
pub mod exclusions;
pub mod kind;
pub mod objects;
pub mod selector;
pub mod service;
pub mod service_key;
pub mod shared_names;
pub mod status_partial;
pub mod v1beta1;
pub mod v1beta2;

/// The namespace MetalLB's objects live in unless told otherwise.
pub const DEFAULT_NAMESPACE: &str = "metallb-system";
pub mod annotations;
pub mod crds;
pub mod legacy;
