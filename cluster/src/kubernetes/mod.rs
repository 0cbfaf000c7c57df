//! The Kubernetes backend: a watcher per kind feeding one snapshot, status through server-side
//! apply, Events through the events.k8s.io API.
mod resources;
pub mod webhook;

#[cfg(any(test, feature = "testing"))]
pub mod fake;
#[cfg(test)]
mod tests;

use crate::{ClusterError, Event, EventType, ObjectKey, Problem, Snapshot};
use ferrolb_api::kind::{Kind, UnknownKind};
use ferrolb_api::objects::{Detail, Object};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Node, ObjectReference, Pod, Secret, Service,
};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// How long changes are gathered before a new snapshot is built: a burst of watch events
/// (a rollout, a resync) becomes one snapshot, not hundreds.
const COALESCE: Duration = Duration::from_millis(20);

/// What the watchers have seen, per kind, and whether each kind's initial list is complete.
#[derive(Default)]
struct WatchState {
    kinds: BTreeMap<&'static str, KindState>,
}

#[derive(Default)]
struct KindState {
    objects: BTreeMap<ObjectKey, Decoded>,
    /// Objects of an initial list (or relist) in progress.
    pending: Option<BTreeMap<ObjectKey, Decoded>>,
    listed: bool,
    /// Why the kind cannot be read (its CRD is not installed, or RBAC forbids it): acted on
    /// as a kind with no objects, so the others keep working, and reported.
    absent: Option<&'static str>,
}

/// An object as the watcher got it: decoded, or why it could not be.
type Decoded = Result<Object, String>;

pub struct KubeCluster {
    client: Client,
    field_manager: String,
    recorder: Recorder,
    snapshots: watch::Receiver<Arc<Snapshot>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl KubeCluster {
    /// Connects with a kubeconfig file, or the in-cluster/default configuration.
    pub async fn connect(
        kubeconfig: Option<&Path>,
        namespace: &str,
        component: &str,
        detail: Detail,
    ) -> Result<KubeCluster, ClusterError> {
        Ok(KubeCluster::new(
            client(kubeconfig).await?,
            namespace,
            component,
            detail,
        ))
    }

    /// Starts a watcher per kind: Services, EndpointSlices, Nodes and Namespaces cluster-wide,
    /// Secrets, ConfigMaps and every metallb.io kind in MetalLB's `namespace`. Objects are
    /// kept with `detail` as they arrive.
    pub fn new(client: Client, namespace: &str, component: &str, detail: Detail) -> KubeCluster {
        let state = Arc::new(Mutex::new(WatchState::default()));
        let changed = Arc::new(Notify::new());
        let (sender, snapshots) = watch::channel(Arc::new(Snapshot::default()));
        let all = |kind: &'static str| -> (&'static str, Arc<Mutex<WatchState>>, Arc<Notify>) {
            (kind, state.clone(), changed.clone())
        };
        let c = &client;
        let ns = namespace;
        let mut tasks: Vec<tokio::task::JoinHandle<()>> = vec![
            spawn_watch(Api::<Service>::all(c.clone()), all("Service"), move |o| {
                Ok(Object::Service(Arc::new(o)).kept_as(detail))
            }),
            spawn_watch(
                Api::<EndpointSlice>::all(c.clone()),
                all("EndpointSlice"),
                move |o| Ok(Object::EndpointSlice(Arc::new(o)).kept_as(detail)),
            ),
            spawn_watch(Api::<Node>::all(c.clone()), all("Node"), |mut o: Node| {
                // The container images a node holds (often dozens, each with every tag):
                // nothing FerroLB decides depends on them.
                if let Some(status) = o.status.as_mut() {
                    status.images = None;
                }
                Ok(Object::Node(Arc::new(o)))
            }),
            spawn_watch(Api::<Namespace>::all(c.clone()), all("Namespace"), |o| {
                Ok(Object::Namespace(Arc::new(o)))
            }),
            spawn_watch(
                Api::<Secret>::namespaced(c.clone(), ns),
                all("Secret"),
                |o| Ok(Object::Secret(Arc::new(o))),
            ),
            spawn_watch(
                Api::<ConfigMap>::namespaced(c.clone(), ns),
                all("ConfigMap"),
                |o| Ok(Object::ConfigMap(Arc::new(o))),
            ),
        ];
        // MetalLB's kinds are read as untyped objects and decoded one at a time: one object
        // that does not decode (or a CRD that is missing) must not stop the whole watch.
        for kind in Kind::ALL.into_iter().filter(|k| k.group() == "metallb.io") {
            let resource = resources::api_resource(kind);
            let api = Api::<DynamicObject>::namespaced_with(c.clone(), ns, &resource);
            tasks.push(spawn_watch(api, all(kind.name()), move |o| {
                decode_dynamic(kind, &resource, o)
            }));
        }
        let expected_kinds = tasks.len();
        tasks.push(tokio::spawn(build_snapshots(
            state,
            changed,
            sender,
            expected_kinds,
        )));
        let reporter = Reporter {
            controller: component.to_string(),
            instance: std::env::var("HOSTNAME").ok(),
        };
        KubeCluster {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            field_manager: component.to_string(),
            snapshots,
            tasks,
        }
    }

    pub fn snapshots(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshots.clone()
    }

    /// Server-side apply of a partial object: labels and annotations to the object itself,
    /// `status` to the status subresource.
    pub async fn apply(&self, partial: serde_json::Value) -> Result<(), ClusterError> {
        let (api, name) = self.dynamic_api(&partial)?;
        let params = PatchParams::apply(&self.field_manager).force();
        let metadata = partial.get("metadata").cloned().unwrap_or_default();
        let identity = |extra: Option<(&str, serde_json::Value)>| {
            let mut object = serde_json::json!({
                "apiVersion": partial["apiVersion"],
                "kind": partial["kind"],
                "metadata": {"name": metadata["name"]},
            });
            if let Some(ns) = metadata.get("namespace") {
                object["metadata"]["namespace"] = ns.clone();
            }
            if let Some((key, value)) = extra {
                object[key] = value;
            }
            object
        };
        // Annotations set to null are removed with a JSON merge patch: server-side apply can
        // only drop fields this manager owns, and a field written before (by MetalLB, during a
        // migration) belongs to another.
        let mut removed = serde_json::Map::new();
        let mut metadata = metadata.clone();
        if let Some(annotations) = metadata
            .get_mut("annotations")
            .and_then(|a| a.as_object_mut())
        {
            annotations.retain(|key, value| {
                if value.is_null() {
                    removed.insert(key.clone(), serde_json::Value::Null);
                }
                !value.is_null()
            });
        }
        if !removed.is_empty() {
            let patch = serde_json::json!({"metadata": {"annotations": removed}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(patch))
                .await?;
        }
        let has_meta = metadata
            .get("annotations")
            .is_some_and(|a| a.as_object().is_some_and(|a| !a.is_empty()))
            || metadata.get("labels").is_some();
        let owned = partial["kind"]
            .as_str()
            .and_then(|k| k.parse::<Kind>().ok())
            .is_some_and(Kind::is_owned);
        if has_meta || owned {
            let mut main = identity(None);
            for field in ["annotations", "labels", "ownerReferences"] {
                if let Some(value) = metadata.get(field) {
                    main["metadata"][field] = value.clone();
                }
            }
            api.patch(&name, &params, &Patch::Apply(main)).await?;
        }
        if let Some(status) = partial.get("status") {
            api.patch_status(
                &name,
                &params,
                &Patch::Apply(identity(Some(("status", status.clone())))),
            )
            .await?;
        }
        Ok(())
    }

    /// The IPs of the running pods matching `selector` in `namespace`: where the other
    /// speakers listen for gossip (MetalLB joins its speakers the same way).
    pub async fn pod_ips(
        &self,
        namespace: &str,
        selector: &str,
    ) -> Result<Vec<std::net::IpAddr>, ClusterError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&kube::api::ListParams::default().labels(selector))
            .await?;
        Ok(list
            .items
            .iter()
            .filter_map(|p| p.status.as_ref()?.pod_ip.as_deref()?.parse().ok())
            .collect())
    }

    /// The reference to pod `name` in `namespace` that objects it owns carry, so the
    /// garbage collector removes them with the pod (read once: its uid).
    pub async fn pod_reference(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference, ClusterError> {
        let pod = Api::<Pod>::namespaced(self.client.clone(), namespace)
            .get(name)
            .await?;
        let uid = pod.metadata.uid.ok_or_else(|| {
            ClusterError::InvalidPatch(format!("pod {namespace}/{name} has no uid"))
        })?;
        Ok(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                api_version: "v1".into(),
                kind: "Pod".into(),
                name: name.to_string(),
                uid,
                ..Default::default()
            },
        )
    }

    pub async fn delete(&self, key: &ObjectKey) -> Result<(), ClusterError> {
        let resource = resources::api_resource(key.kind);
        let api: Api<DynamicObject> = match &key.namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        match api.delete(&key.name, &Default::default()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object of `kind` in `namespace` labelled `label` (one request).
    pub async fn delete_labelled(
        &self,
        kind: Kind,
        namespace: &str,
        label: (&str, &str),
    ) -> Result<(), ClusterError> {
        let resource = resources::api_resource(kind);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &resource);
        let params = kube::api::ListParams::default().labels(&format!("{}={}", label.0, label.1));
        match api.delete_collection(&Default::default(), &params).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 404 => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn publish(&self, event: Event) -> Result<(), ClusterError> {
        let reference = ObjectReference {
            api_version: Some(event.regarding.api_version.clone()),
            kind: Some(event.regarding.kind.clone()),
            name: Some(event.regarding.name.clone()),
            namespace: event.regarding.namespace.clone(),
            uid: event.regarding.uid.clone(),
            ..ObjectReference::default()
        };
        let kube_event = kube::runtime::events::Event {
            type_: match event.type_ {
                EventType::Normal => kube::runtime::events::EventType::Normal,
                EventType::Warning => kube::runtime::events::EventType::Warning,
            },
            reason: event.reason.to_string(),
            note: Some(event.message.clone()),
            action: event.reason.to_string(),
            secondary: None,
        };
        self.recorder.publish(&kube_event, &reference).await?;
        Ok(())
    }

    fn dynamic_api(
        &self,
        partial: &serde_json::Value,
    ) -> Result<(Api<DynamicObject>, String), ClusterError> {
        let field = |pointer: &str| partial.pointer(pointer).and_then(|v| v.as_str());
        let (Some(kind), Some(name)) = (field("/kind"), field("/metadata/name")) else {
            return Err(ClusterError::InvalidPatch(
                "kind and metadata.name are required".into(),
            ));
        };
        let kind: Kind = kind
            .parse()
            .map_err(|e: UnknownKind| ClusterError::InvalidPatch(e.to_string()))?;
        let resource = resources::api_resource(kind);
        let api = match field("/metadata/namespace") {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        Ok((api, name.to_string()))
    }
}

impl Drop for KubeCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// A client for a kubeconfig file, or the in-cluster/default configuration.
pub async fn client(kubeconfig: Option<&Path>) -> Result<Client, ClusterError> {
    let config = match kubeconfig {
        Some(path) => {
            let file = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| ClusterError::Kube(kube::Error::InferKubeconfig(e)))?;
            kube::Config::from_custom_kubeconfig(file, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| ClusterError::Kube(kube::Error::InferKubeconfig(e)))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| ClusterError::Kube(kube::Error::InferConfig(e)))?,
    };
    Ok(Client::try_from(config)?)
}

/// Runs one kind's watcher (with kube's default backoff on errors) into the shared state.
fn spawn_watch<K>(
    api: Api<K>,
    (kind, state, changed): (&'static str, Arc<Mutex<WatchState>>, Arc<Notify>),
    decode: impl Fn(K) -> Decoded + Send + 'static,
) -> tokio::task::JoinHandle<()>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + Sync + 'static,
{
    tokio::spawn(async move {
        let mut events = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        let kind_of: Kind = kind.parse().expect("watched kinds are known kinds");
        let key_of = |o: &K| {
            let meta = o.meta();
            ObjectKey::new(
                kind_of,
                meta.namespace.as_deref(),
                meta.name.as_deref().unwrap_or(""),
            )
        };
        while let Some(event) = events.next().await {
            let event = match event {
                Ok(event) => event,
                Err(error) => {
                    let unavailable = unavailable(&error);
                    let mut state = state
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let entry = state.kinds.entry(kind).or_default();
                    match unavailable {
                        // Listed before: what was read stays (a CRD being replaced, RBAC
                        // being changed), and the watch is tried again.
                        Some(why) if entry.listed && entry.absent.is_none() => {
                            tracing::warn!(kind, "{why}; keeping what was read and retrying");
                        }
                        // Never listed: the other kinds are acted on, this one as empty;
                        // but without pools nothing can be acted on safely (every Service
                        // would lose its IPs), so a missing IPAddressPool kind waits.
                        Some(why) if entry.absent != Some(why) => {
                            entry.absent = Some(why);
                            if kind == Kind::IPAddressPool.name() {
                                tracing::warn!(kind, "{why}; waiting for it");
                            } else {
                                tracing::warn!(kind, "{why}; acting without it and retrying");
                                entry.listed = true;
                                entry.objects.clear();
                            }
                            drop(state);
                            changed.notify_one();
                        }
                        Some(_) => {}
                        None => tracing::warn!(kind, %error, "watch failed; retrying"),
                    }
                    continue;
                }
            };
            let mut state = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let entry = state.kinds.entry(kind).or_default();
            let keyed = |mut o: K| {
                let key = key_of(&o);
                // Server-side apply's bookkeeping, often larger than the object: no
                // component reads it, and a cluster's worth of it would be held for nothing.
                o.meta_mut().managed_fields = None;
                let decoded = decode(o);
                if let Err(reason) = &decoded {
                    tracing::warn!(kind, object = %key, "skipped: {reason}");
                }
                (key, decoded)
            };
            match event {
                watcher::Event::Init => entry.pending = Some(BTreeMap::new()),
                watcher::Event::InitApply(o) => {
                    let (key, object) = keyed(o);
                    entry
                        .pending
                        .get_or_insert_with(BTreeMap::new)
                        .insert(key, object);
                }
                watcher::Event::InitDone => {
                    entry.objects = entry.pending.take().unwrap_or_default();
                    entry.listed = true;
                    entry.absent = None;
                }
                watcher::Event::Apply(o) => {
                    let (key, object) = keyed(o);
                    entry.objects.insert(key, object);
                }
                watcher::Event::Delete(o) => {
                    entry.objects.remove(&key_of(&o));
                }
            }
            drop(state);
            changed.notify_one();
        }
    })
}

/// Why a watch cannot work until the cluster changes: the API server has no such resource
/// (a CRD not installed), or this component may not read it (an RBAC rule missing).
fn unavailable(error: &watcher::Error) -> Option<&'static str> {
    let status = match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status,
        watcher::Error::WatchError(status) => status,
        _ => return None,
    };
    if status.is_not_found() {
        Some("the API server does not know it (is its CRD installed?)")
    } else if status.is_forbidden() {
        Some("this component may not list it (a missing RBAC rule?)")
    } else {
        None
    }
}

/// One metallb.io object, decoded as the file store decodes it (a missing `spec` defaulted,
/// the offending field named). List items may come without their type, so it is set first.
fn decode_dynamic(kind: Kind, resource: &ApiResource, object: DynamicObject) -> Decoded {
    let mut value = serde_json::to_value(&object).map_err(|e| e.to_string())?;
    if let Some(fields) = value.as_object_mut() {
        fields.insert("apiVersion".into(), resource.api_version.clone().into());
        fields.insert("kind".into(), kind.name().into());
    }
    Object::decode(value).map_err(|e| e.to_string())
}

/// Publishes a snapshot once every kind has been listed, and again after changes.
async fn build_snapshots(
    state: Arc<Mutex<WatchState>>,
    changed: Arc<Notify>,
    sender: watch::Sender<Arc<Snapshot>>,
    expected_kinds: usize,
) {
    loop {
        changed.notified().await;
        tokio::time::sleep(COALESCE).await;
        let snapshot = {
            let state = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if state.kinds.len() < expected_kinds || !state.kinds.values().all(|k| k.listed) {
                continue;
            }
            let problem = |reason: String, object: Option<&ObjectKey>| Problem {
                source: "kubernetes".into(),
                document: None,
                reason,
                object: object.cloned(),
            };
            Snapshot {
                objects: state
                    .kinds
                    .values()
                    .flat_map(|k| k.objects.iter())
                    .filter_map(|(key, o)| Some((key.clone(), o.as_ref().ok()?.clone())))
                    .collect(),
                problems: state
                    .kinds
                    .iter()
                    .filter_map(|(kind, k)| {
                        Some(problem(
                            format!("{kind}: {}; acting as if there were none", k.absent?),
                            None,
                        ))
                    })
                    .chain(
                        state
                            .kinds
                            .values()
                            .flat_map(|k| k.objects.iter())
                            .filter_map(|(key, o)| {
                                Some(problem(o.as_ref().err()?.clone(), Some(key)))
                            }),
                    )
                    .collect(),
                skipped: Vec::new(),
                sources: BTreeMap::new(),
                synced: true,
            }
        };
        if **sender.borrow() != snapshot {
            sender.send_replace(Arc::new(snapshot));
        }
        if sender.is_closed() {
            return;
        }
    }
}
