//! What the speaker writes about its work: one ServiceL2Status per Service this node
//! announces by layer 2 and one ServiceBGPStatus per Service it announces by BGP (typed,
//! named stably so a restart rewrites rather than duplicates them), the `nodeAssigned` Event
//! when it starts announcing one, and Events it is asked to publish, all under a rate cap.
use crate::event_rate::EventRate;
use ferrolb_api::event_reason::EventReason;
use ferrolb_api::kind::Kind;
use ferrolb_api::service_key::ServiceKey;
use ferrolb_api::v1beta1::{
    InterfaceInfo, ServiceBGPStatus, ServiceBGPStatusStatus, ServiceL2Status, ServiceL2StatusStatus,
};
use ferrolb_cluster::component::Health;
use ferrolb_cluster::{Cluster, Event, EventTarget, ObjectKey, Snapshot};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Events this speaker may publish at once, and then one per this long.
const EVENT_BURST: u32 = 20;
const EVENT_EVERY: Duration = Duration::from_secs(1);

/// What a status lists (the interfaces, or the peers), shared: in BGP mode 10,000 Services
/// go to the same few peers, and one set serves them all.
pub type Listed = std::sync::Arc<BTreeSet<String>>;

/// Hands out one shared set per distinct set of names: a plan lists the same few sets of
/// peers or interfaces for thousands of Services.
#[derive(Default)]
pub struct Sets {
    /// By hash of the names; sets whose hashes collide share a bucket.
    distinct: HashMap<u64, Vec<Listed>>,
}

impl Sets {
    /// The shared set holding exactly `names`.
    pub fn share(&mut self, names: BTreeSet<&str>) -> Listed {
        let mut hasher = std::hash::DefaultHasher::new();
        for name in &names {
            name.hash(&mut hasher);
        }
        let bucket = self.distinct.entry(hasher.finish()).or_default();
        let same = |listed: &&Listed| listed.iter().map(String::as_str).eq(names.iter().copied());
        if let Some(listed) = bucket.iter().find(same) {
            return listed.clone();
        }
        let listed = Listed::new(names.into_iter().map(str::to_string).collect());
        bucket.push(listed.clone());
        listed
    }
}

/// How a Service is announced, and so which status says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Layer2,
    Bgp,
}

impl Protocol {
    /// MetalLB's name, in Events and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Layer2 => "layer2",
            Protocol::Bgp => "bgp",
        }
    }

    fn kind(self) -> Kind {
        match self {
            Protocol::Layer2 => Kind::ServiceL2Status,
            Protocol::Bgp => Kind::ServiceBGPStatus,
        }
    }
}

/// The name of this node's status for a Service: stable, so a restart rewrites rather than
/// duplicates it.
pub fn status_name(protocol: Protocol, node: &str, service: &ServiceKey) -> String {
    let digest = Sha256::digest(format!("{node}/{}/{}", service.namespace, service.name));
    let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    match protocol {
        Protocol::Layer2 => format!("l2-{hex}"),
        Protocol::Bgp => format!("bgp-{hex}"),
    }
}

/// The label that names the node a status is from (MetalLB's).
pub const NODE_LABEL: &str = "metallb.io/node";

fn status_meta(
    protocol: Protocol,
    node: &str,
    namespace: &str,
    service: &ServiceKey,
) -> ObjectMeta {
    let labels = [
        (NODE_LABEL, node),
        ("metallb.io/service-name", &service.name),
        ("metallb.io/service-namespace", &service.namespace),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ObjectMeta {
        name: Some(status_name(protocol, node, service)),
        namespace: Some(namespace.to_string()),
        labels: Some(labels),
        ..ObjectMeta::default()
    }
}

/// The ServiceBGPStatus saying that `node` announces `service` to `peers`.
pub fn bgp_status(
    node: &str,
    namespace: &str,
    service: &ServiceKey,
    peers: &BTreeSet<String>,
) -> ServiceBGPStatus {
    ServiceBGPStatus {
        metadata: status_meta(Protocol::Bgp, node, namespace, service),
        spec: Default::default(),
        status: Some(ServiceBGPStatusStatus {
            node: node.to_string(),
            service_name: service.name.to_string(),
            service_namespace: service.namespace.to_string(),
            peers: peers.iter().cloned().collect(),
        }),
    }
}

/// The ServiceL2Status saying that `node` announces `service` on `interfaces`.
pub fn l2_status(
    node: &str,
    namespace: &str,
    service: &ServiceKey,
    interfaces: &BTreeSet<String>,
) -> ServiceL2Status {
    ServiceL2Status {
        metadata: status_meta(Protocol::Layer2, node, namespace, service),
        spec: Default::default(),
        status: Some(ServiceL2StatusStatus {
            node: node.to_string(),
            service_name: service.name.to_string(),
            service_namespace: service.namespace.to_string(),
            interfaces: interfaces
                .iter()
                .map(|name| InterfaceInfo { name: name.clone() })
                .collect(),
        }),
    }
}

/// Publishes Events (about Services, and BGPPeers), at most `EVENT_BURST` at once and then one a second.
pub struct Events {
    rate: EventRate,
}

impl Events {
    pub fn new(now: Instant) -> Events {
        Events {
            rate: EventRate::new(EVENT_BURST, EVENT_EVERY, now),
        }
    }

    pub async fn publish(
        &mut self,
        cluster: &Cluster,
        service: &ServiceKey,
        reason: EventReason,
        message: String,
    ) {
        let regarding = EventTarget {
            api_version: "v1".into(),
            kind: Kind::Service.name().into(),
            namespace: Some(service.namespace.to_string()),
            name: service.name.to_string(),
            uid: None,
        };
        self.publish_about(cluster, regarding, reason, message)
            .await;
    }

    /// An Event about any object (a BGPPeer).
    pub async fn publish_about(
        &mut self,
        cluster: &Cluster,
        regarding: EventTarget,
        reason: EventReason,
        message: String,
    ) {
        match self.rate.admit(tokio::time::Instant::now().into_std()) {
            None => return,
            Some(0) => {}
            Some(refused) => {
                tracing::warn!(refused, "too many Events: some were not published");
            }
        }
        if let Err(error) = cluster
            .publish(Event::new(regarding, reason, message))
            .await
        {
            tracing::warn!(%error, "publishing an Event failed");
        }
    }
}

/// This node's status objects of one protocol.
pub struct Statuses {
    protocol: Protocol,
    node: String,
    namespace: String,
    /// The speaker's pod (Kubernetes): the statuses go with it, as MetalLB's do.
    owner: Option<OwnerReference>,
    /// Services announced, with what their status lists (interfaces, or peers).
    published: BTreeMap<ServiceKey, Listed>,
    /// Set when what was published may have been deleted meanwhile: every status is
    /// written again at the next apply.
    stale: bool,
}

impl Statuses {
    pub fn new(
        protocol: Protocol,
        node: &str,
        namespace: &str,
        owner: Option<OwnerReference>,
    ) -> Statuses {
        Statuses {
            protocol,
            node: node.to_string(),
            namespace: namespace.to_string(),
            owner,
            published: BTreeMap::new(),
            stale: false,
        }
    }

    /// Writes every status again at the next apply (without `nodeAssigned`): this node was
    /// declared dead, and a survivor may have deleted its statuses meanwhile.
    pub fn write_again(&mut self) {
        self.stale = true;
    }

    /// The Services with a status, for the announced-Services metric.
    pub fn services(&self) -> impl Iterator<Item = &ServiceKey> {
        self.published.keys()
    }

    /// Makes this node's statuses exactly `wanted`, publishing `nodeAssigned` for each
    /// Service newly announced. Returns whether every write went through (those that did not
    /// are written again at the next call).
    /// Each answer from the cluster tells `health` the loop is moving: a first pass writing
    /// hundreds of statuses is slow, not stuck.
    pub async fn apply(
        &mut self,
        cluster: &Cluster,
        events: &mut Events,
        wanted: &BTreeMap<ServiceKey, Listed>,
        snapshot: &Snapshot,
        health: &Health,
    ) -> bool {
        let mut now_published = Vec::new();
        let mut failed = false;
        for (service, interfaces) in wanted {
            // Every log line about the Service carries its name.
            let span = tracing::info_span!("service", %service);
            let written = self
                .write(cluster, events, service, interfaces)
                .instrument(span)
                .await;
            health.beat();
            if written {
                now_published.push((service.clone(), interfaces.clone()));
            } else {
                // Not recorded as published: the next pass writes it again.
                failed = true;
            }
        }
        // Built at once from sorted keys: full tree nodes (inserted one by one, about half).
        let now_published: BTreeMap<ServiceKey, Listed> = now_published.into_iter().collect();
        self.remove_leftovers(cluster, wanted, snapshot).await;
        let gone: Vec<ServiceKey> = self
            .published
            .keys()
            .filter(|k| !now_published.contains_key(*k))
            .cloned()
            .collect();
        for service in gone {
            self.withdraw(cluster, &service).await;
        }
        self.published = now_published;
        self.stale &= failed;
        if let Err(error) = cluster.flush() {
            tracing::warn!(%error, "writing status failed");
        }
        !failed
    }

    /// Writes the Service's status unless it is written already, with `nodeAssigned` the first
    /// time; false when the write failed.
    async fn write(
        &self,
        cluster: &Cluster,
        events: &mut Events,
        service: &ServiceKey,
        interfaces: &Listed,
    ) -> bool {
        if !self.stale && self.published.get(service) == Some(interfaces) {
            return true;
        }
        let owners = self.owner.clone().map(|o| vec![o]);
        let status = match self.protocol {
            Protocol::Layer2 => {
                let mut status = l2_status(&self.node, &self.namespace, service, interfaces);
                status.metadata.owner_references = owners;
                serde_json::to_value(status)
            }
            Protocol::Bgp => {
                let mut status = bgp_status(&self.node, &self.namespace, service, interfaces);
                status.metadata.owner_references = owners;
                serde_json::to_value(status)
            }
        };
        let written = match status {
            Ok(partial) => cluster.apply(partial).await,
            Err(error) => Err(ferrolb_cluster::ClusterError::InvalidPatch(
                error.to_string(),
            )),
        };
        if let Err(error) = written {
            tracing::warn!(%error, kind = self.protocol.kind().name(), "writing a status failed");
            return false;
        }
        if !self.published.contains_key(service) {
            let message = format!(
                "announcing from node \"{}\" with protocol \"{}\"",
                self.node,
                self.protocol.name()
            );
            events
                .publish(cluster, service, EventReason::NodeAssigned, message)
                .await;
        }
        true
    }

    /// Statuses of ours that no Service we announce explains: left by an earlier run.
    async fn remove_leftovers(
        &self,
        cluster: &Cluster,
        wanted: &BTreeMap<ServiceKey, Listed>,
        snapshot: &Snapshot,
    ) {
        let ours: BTreeSet<String> = wanted
            .keys()
            .map(|service| status_name(self.protocol, &self.node, service))
            .collect();
        let kind = self.protocol.kind();
        // The file store knows what we wrote (and the speaker does not load status objects
        // from it); in Kubernetes, the snapshot has every speaker's.
        let written: Vec<ObjectKey> = match cluster.written_keys(kind) {
            Some(keys) => keys,
            None => {
                let key = |meta: &ObjectMeta| {
                    Some(ObjectKey::new(
                        kind,
                        meta.namespace.as_deref(),
                        meta.name.as_deref()?,
                    ))
                };
                match self.protocol {
                    Protocol::Layer2 => snapshot
                        .l2_statuses()
                        .filter(|s| s.status.as_ref().is_some_and(|st| st.node == self.node))
                        .filter_map(|s| key(&s.metadata))
                        .collect(),
                    Protocol::Bgp => snapshot
                        .bgp_statuses()
                        .filter(|s| s.status.as_ref().is_some_and(|st| st.node == self.node))
                        .filter_map(|s| key(&s.metadata))
                        .collect(),
                }
            }
        };
        let leftovers = written
            .into_iter()
            .filter(|k| k.namespace.as_deref() == Some(&self.namespace))
            .filter(|k| !ours.contains(&k.name));
        for key in leftovers {
            if let Err(error) = cluster.delete(&key).await {
                tracing::warn!(%error, kind = kind.name(), "removing a status failed");
            }
        }
    }

    async fn withdraw(&self, cluster: &Cluster, service: &ServiceKey) {
        let key = ObjectKey::new(
            self.protocol.kind(),
            Some(&self.namespace),
            &status_name(self.protocol, &self.node, service),
        );
        if let Err(error) = cluster.delete(&key).await {
            tracing::warn!(%service, %error, kind = self.protocol.kind().name(), "removing a status failed");
        }
    }

    /// Removes every status of this node (it stops announcing).
    pub async fn withdraw_all(&mut self, cluster: &Cluster) {
        for service in std::mem::take(&mut self.published).into_keys() {
            self.withdraw(cluster, &service).await;
        }
        if let Err(error) = cluster.flush() {
            tracing::warn!(%error, "writing the last status failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_stable_and_distinct() {
        let web = ServiceKey::new("default", "web");
        let name = |node| status_name(Protocol::Layer2, node, &web);
        assert_eq!(name("n1"), name("n1"));
        assert_ne!(name("n1"), name("n2"));
        assert!(name("n1").len() <= 63);
        assert_ne!(status_name(Protocol::Bgp, "n1", &web), name("n1"));
    }

    /// The typed status is what the speaker wrote as JSON before: MetalLB's fields, labels
    /// and name.
    #[test]
    fn the_typed_status_serialises_as_metallbs() {
        let web = ServiceKey::new("default", "web");
        let interfaces = ["eth0".to_string()].into_iter().collect();
        let json = serde_json::to_value(l2_status("n1", "metallb-system", &web, &interfaces))
            .expect("serialises");
        assert_eq!(
            json,
            serde_json::json!({
                "apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2Status",
                "metadata": {
                    "name": status_name(Protocol::Layer2, "n1", &web),
                    "namespace": "metallb-system",
                    "labels": {
                        "metallb.io/node": "n1",
                        "metallb.io/service-name": "web",
                        "metallb.io/service-namespace": "default",
                    },
                },
                "status": {
                    "node": "n1", "serviceName": "web", "serviceNamespace": "default",
                    "interfaces": [{"name": "eth0"}],
                },
            })
        );
    }

    #[test]
    fn the_bgp_status_lists_the_peers_as_metallbs_does() {
        let web = ServiceKey::new("default", "web");
        let peers = ["tor-b".to_string(), "tor-a".to_string()]
            .into_iter()
            .collect();
        let json = serde_json::to_value(bgp_status("n1", "metallb-system", &web, &peers))
            .expect("serialises");
        assert_eq!(json["kind"], "ServiceBGPStatus");
        assert_eq!(json["metadata"]["labels"]["metallb.io/node"], "n1");
        assert_eq!(
            json["status"],
            serde_json::json!({
                "node": "n1", "serviceName": "web", "serviceNamespace": "default",
                "peers": ["tor-a", "tor-b"],
            })
        );
    }

    /// In Kubernetes the statuses and the ConfigurationState name the speaker's pod as
    /// owner, so the garbage collector removes them with it (MetalLB's do the same).
    #[tokio::test]
    async fn statuses_and_configuration_state_are_owned_by_the_speaker_pod() {
        use ferrolb_cluster::kubernetes::fake::{Seen, mock_cluster, next};
        let (kube, mut seen, _listed) =
            mock_cluster(BTreeMap::new(), "metallb-system", "ferrolb-speaker-n1");
        let cluster = Cluster::Kube(Box::new(kube));
        let pod = OwnerReference {
            api_version: "v1".into(),
            kind: "Pod".into(),
            name: "speaker-x1".into(),
            uid: "9f1c-uid".into(),
            ..OwnerReference::default()
        };
        let owners = serde_json::json!([{"apiVersion": "v1", "kind": "Pod", "name": "speaker-x1", "uid": "9f1c-uid"}]);
        let web = ServiceKey::new("default", "web");
        let wanted =
            BTreeMap::from([(web.clone(), Sets::default().share(BTreeSet::from(["eth0"])))]);
        let mut statuses =
            Statuses::new(Protocol::Layer2, "n1", "metallb-system", Some(pod.clone()));
        let mut events = Events::new(tokio::time::Instant::now().into_std());
        assert!(
            statuses
                .apply(
                    &cluster,
                    &mut events,
                    &wanted,
                    &Snapshot::default(),
                    &Health::new()
                )
                .await
        );
        let mut requests: Vec<Seen> = Vec::new();
        for _ in 0..2 {
            requests.push(next(&mut seen).await);
        }
        let name = status_name(Protocol::Layer2, "n1", &web);
        let object = requests
            .iter()
            .find(|r| {
                r.path == format!("/apis/metallb.io/v1beta1/namespaces/metallb-system/servicel2statuses/{name}")
            })
            .unwrap_or_else(|| panic!("no write of the status: {requests:#?}"));
        assert_eq!(
            object.body["metadata"]["ownerReferences"], owners,
            "{object:#?}"
        );

        let mut state = crate::config_state::ConfigState::new("n1", "metallb-system", Some(pod));
        state
            .apply(&cluster, crate::config_state::Said::default())
            .await;
        let written = loop {
            let request = next(&mut seen).await;
            if request.path.ends_with("/configurationstates/speaker-n1") {
                break request;
            }
        };
        assert_eq!(
            written.body["metadata"]["ownerReferences"], owners,
            "{written:#?}"
        );
    }

    /// Equal sets are kept once: 10,000 Services to the same peers hold one set.
    #[test]
    fn equal_sets_are_shared() {
        let mut sets = Sets::default();
        let peers = || BTreeSet::from(["tor-a", "tor-b"]);
        let (one, two) = (sets.share(peers()), sets.share(peers()));
        let other = sets.share(BTreeSet::from(["tor-a"]));
        let none = sets.share(BTreeSet::new());
        assert!(std::sync::Arc::ptr_eq(&one, &two));
        assert_eq!(
            *one,
            BTreeSet::from(["tor-a".to_string(), "tor-b".to_string()])
        );
        assert_eq!(*other, BTreeSet::from(["tor-a".to_string()]));
        assert!(!std::sync::Arc::ptr_eq(&one, &other));
        assert!(none.is_empty() && !std::sync::Arc::ptr_eq(&none, &other));
    }

    /// A pass that plans the same peers (a new set, equal to the last) writes nothing; one
    /// that adds a peer writes the status again.
    #[tokio::test]
    async fn a_status_is_written_again_only_when_what_it_lists_changes() {
        use ferrolb_cluster::kubernetes::fake::{mock_cluster, next};
        let (kube, mut seen, _listed) =
            mock_cluster(BTreeMap::new(), "metallb-system", "ferrolb-speaker-n1");
        let cluster = Cluster::Kube(Box::new(kube));
        let web = ServiceKey::new("default", "web");
        let peers = |names: &[&str]| {
            let set = Sets::default().share(names.iter().copied().collect());
            BTreeMap::from([(web.clone(), set)])
        };
        let mut statuses = Statuses::new(Protocol::Bgp, "n1", "metallb-system", None);
        let mut events = Events::new(tokio::time::Instant::now().into_std());
        let (snapshot, health) = (Snapshot::default(), Health::new());
        let quiet = Duration::from_millis(300);

        let wanted = peers(&["tor-a"]);
        assert!(
            statuses
                .apply(&cluster, &mut events, &wanted, &snapshot, &health)
                .await
        );
        let mut first = Vec::new();
        while let Ok(Some(request)) = tokio::time::timeout(quiet, seen.recv()).await {
            first.push(request.path);
        }
        assert!(
            first.iter().any(|p| p.contains("/servicebgpstatuses/")),
            "{first:?}"
        );

        let again = peers(&["tor-a"]);
        assert!(!std::sync::Arc::ptr_eq(&wanted[&web], &again[&web]));
        assert!(
            statuses
                .apply(&cluster, &mut events, &again, &snapshot, &health)
                .await
        );
        if let Ok(Some(request)) = tokio::time::timeout(quiet, seen.recv()).await {
            panic!("an unchanged status was written again: {request:?}");
        }

        assert!(
            statuses
                .apply(
                    &cluster,
                    &mut events,
                    &peers(&["tor-a", "tor-b"]),
                    &snapshot,
                    &health
                )
                .await
        );
        // The object, then its status subresource.
        let (object, status) = (next(&mut seen).await, next(&mut seen).await);
        assert!(object.path.contains("/servicebgpstatuses/"), "{object:?}");
        assert!(status.path.ends_with("/status"), "{status:?}");
        assert_eq!(
            status.body["status"]["peers"],
            serde_json::json!(["tor-a", "tor-b"]),
            "{status:?}"
        );
    }
}
