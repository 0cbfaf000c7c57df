//! Where cluster state comes from and where status goes.
//!
//! One interface over two backends: a [`Cluster`] gives a consistent [`Snapshot`] of every
//! object FerroLB reads, and a new one after every change (a `tokio::sync::watch` channel);
//! it takes status writes as partial objects (server-side apply semantics: each field
//! manager owns what it last applied) and Events.
//! - [`store::FileStore`]: a directory of YAML files (`--store DIR`), for standalone hosts
//!   and tests.
//! - [`kubernetes::KubeCluster`]: the Kubernetes API, through kube-rs watchers.
pub mod component;
pub mod kubernetes;
pub mod metallb_flags;
pub mod metrics;
mod snapshot;
pub mod store;
mod termination;

pub use snapshot::{ObjectKey, Problem, Snapshot, Source};
pub use termination::terminated;

use ferrolb_api::event_reason::EventReason;
use ferrolb_api::kind::Kind;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// What a component reads of the cluster.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reading {
    /// Kinds left out of every snapshot (a speaker never reads others' statuses). Only the
    /// file store honours it: Kubernetes' watches are per kind anyway.
    pub ignored: &'static [Kind],
    /// How much of each object is kept.
    pub detail: ferrolb_api::objects::Detail,
}

/// An Event about an object, as `kubectl describe` shows it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    pub regarding: EventTarget,
    /// `Normal` or `Warning`.
    #[serde(rename = "type")]
    pub type_: EventType,
    pub reason: EventReason,
    pub message: String,
}

impl Event {
    /// An Event about `regarding`; its type (Normal or Warning) follows from the reason.
    pub fn new(regarding: EventTarget, reason: EventReason, message: String) -> Event {
        Event {
            regarding,
            type_: if reason.warns() {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason,
            message,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTarget {
    pub api_version: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EventType {
    Normal,
    Warning,
}

/// Failures writing status or Events.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("store {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
    #[error("invalid partial object: {0}")]
    InvalidPatch(String),
}

/// Either backend, behind one interface.
pub enum Cluster {
    Store(store::FileStore),
    Kube(Box<kubernetes::KubeCluster>),
}

impl Cluster {
    /// The current snapshot, then a new one after each change.
    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        match self {
            Cluster::Store(s) => s.snapshots(),
            Cluster::Kube(k) => k.snapshots(),
        }
    }

    /// Applies a partial object (with `apiVersion`, `kind`, `metadata.name` and, for
    /// namespaced kinds, `metadata.namespace`) as this component's field manager: its
    /// `metadata.annotations`/`labels` to the object, its `status` to the status subresource.
    pub async fn apply(&self, partial: serde_json::Value) -> Result<(), ClusterError> {
        match self {
            Cluster::Store(s) => s.apply(partial),
            Cluster::Kube(k) => k.apply(partial).await,
        }
    }

    /// Makes applied changes visible to other readers now (the file store writes in the
    /// background otherwise; the Kubernetes API has nothing to flush).
    pub fn flush(&self) -> Result<(), ClusterError> {
        match self {
            Cluster::Store(s) => s.flush(),
            Cluster::Kube(_) => Ok(()),
        }
    }

    /// Deletes an object FerroLB owns (a ServiceL2Status, say); absent objects are fine.
    pub async fn delete(&self, key: &ObjectKey) -> Result<(), ClusterError> {
        match self {
            Cluster::Store(s) => s.delete(key),
            Cluster::Kube(k) => k.delete(key).await,
        }
    }

    /// Deletes every object of the `kinds` in `namespace` labelled `label`, whichever
    /// component wrote it (a lost speaker's statuses, removed by a survivor).
    pub async fn delete_labelled(
        &self,
        kinds: &[Kind],
        namespace: &str,
        label: (&str, &str),
    ) -> Result<(), ClusterError> {
        for kind in kinds {
            match self {
                Cluster::Store(s) => {
                    s.delete_labelled(*kind, namespace, label)?;
                }
                Cluster::Kube(k) => k.delete_labelled(*kind, namespace, label).await?,
            }
        }
        Ok(())
    }

    /// The objects of `kind` this component wrote (the file store keeps them); `None` for
    /// Kubernetes, where the snapshot holds every object of the kind.
    pub fn written_keys(&self, kind: Kind) -> Option<Vec<ObjectKey>> {
        match self {
            Cluster::Store(s) => Some(s.written_keys(kind)),
            Cluster::Kube(_) => None,
        }
    }

    /// Where the other speakers are, when the backend knows better than the Node objects:
    /// in Kubernetes, the IPs of the speaker pods matching `selector` in `namespace`. `None`
    /// for the file store, where the Nodes' InternalIPs say it.
    pub async fn speaker_ips(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Option<Vec<std::net::IpAddr>>, ClusterError> {
        match self {
            Cluster::Store(_) => Ok(None),
            Cluster::Kube(k) => k.pod_ips(namespace, selector).await.map(Some),
        }
    }

    /// The owner reference to this component's pod `name` in `namespace`, for the objects
    /// that should go with it; `None` for the file store, which has no pods.
    pub async fn pod_reference(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>, ClusterError>
    {
        match self {
            Cluster::Store(_) => Ok(None),
            Cluster::Kube(k) => k.pod_reference(namespace, name).await.map(Some),
        }
    }

    pub async fn publish(&self, event: Event) -> Result<(), ClusterError> {
        match self {
            Cluster::Store(s) => s.publish(event),
            Cluster::Kube(k) => k.publish(event).await,
        }
    }

    /// The Kubernetes API, when that is the backend (the admission webhook needs it).
    pub fn kube(&self) -> Option<&kubernetes::KubeCluster> {
        match self {
            Cluster::Store(_) => None,
            Cluster::Kube(k) => Some(k),
        }
    }

    /// Creates the memberlist Secret `name` in `namespace` holding `key` as `secretkey`,
    /// unless a Secret of that name exists; whether it was created. The file store has no
    /// Secrets to give speakers (they read `--ml-secret-key-path`): nothing is created there.
    pub async fn create_memberlist_secret(
        &self,
        namespace: &str,
        name: &str,
        key: &str,
    ) -> Result<bool, ClusterError> {
        match self {
            Cluster::Store(_) => Ok(false),
            Cluster::Kube(k) => {
                let contents = kubernetes::webhook::SecretContents {
                    data: [("secretkey".to_string(), key.as_bytes().to_vec())].into(),
                    ..Default::default()
                };
                k.create_secret(namespace, name, contents).await
            }
        }
    }
}
