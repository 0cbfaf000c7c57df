//! The speaker's loop: on every change of the cluster, of the live members or of the
//! interfaces, elect again, announce what this node owns, watch the members whose IPs it
//! would take over, and publish status, Events and metrics.
use crate::election::{self, Decision, Speaker as LiveSpeaker};
use crate::event_rate::EventRate;
use crate::layer2::announcer::{Announcer, Conflict, Plan};
use crate::layer2::interfaces::Links;
use crate::meta;
use crate::metrics::Metrics;
use crate::returning_links::ReturningLinks;
use ferrolb_api::config::Config;
use ferrolb_api::event_reason::EventReason;
use ferrolb_api::kind::Kind;
use ferrolb_cluster::{Cluster, Event, EventTarget, ObjectKey, Snapshot};
use ferrolb_gossip::core::{Event as GossipEvent, State};
use ferrolb_gossip::driver::Gossip;
use ferrolb_l2::packet::format_mac;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// How long a new speaker waits to hear from another before announcing alone: announcing
/// at once would claim every IP for a moment, stealing them from their owners.
pub const JOIN_GRACE: Duration = Duration::from_secs(3);

/// How often an interface back up checks whether another member has answered since.
const WAITING_LINK_CHECK: Duration = Duration::from_millis(10);

/// Owned IPs are announced again (members joined, we refuted our death) at most this often.
const ANNOUNCE_AGAIN_EVERY: Duration = Duration::from_secs(1);

/// How soon a pass whose status writes failed runs again.
const RETRY: Duration = Duration::from_secs(1);

/// A conflict is reported (Event) at most this often per IP and claimant (one other speaker,
/// or any number of MACs that belong to no speaker).
const CONFLICT_REPORT_EVERY: Duration = Duration::from_secs(60);
/// For this long after this speaker starts or a member joins (or comes back), views of the
/// members may still differ, so another speaker briefly announcing our IP (even one we have
/// not heard of yet) is convergence, not a split brain or a rogue host. A claim that persists
/// is seen again: the announcer reports a claiming MAC again each second.
const JOIN_CONVERGENCE: Duration = Duration::from_secs(2);
/// Conflicts held during convergence beyond this many are dropped (the announcer reports a
/// claim that persists again).
const MAX_HELD_CONFLICTS: usize = 64;

/// Events this speaker may publish at once, and then one per this long.
const EVENT_BURST: u32 = 20;
const EVENT_EVERY: Duration = Duration::from_secs(1);

pub struct Options {
    pub node: String,
    pub namespace: String,
    pub lb_class: Option<String>,
    pub ml_port: u16,
    /// The label selector of the speaker pods (Kubernetes), whose IPs gossip joins.
    pub ml_labels: String,
}

/// How often freed memory is handed back to the kernel.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// How often the speaker pods are listed again (Kubernetes) for gossip to join.
const POD_LIST_EVERY: Duration = Duration::from_secs(10);

/// The InternalIP of every Node, by name: where their speakers listen for gossip.
pub fn node_addresses(snapshot: &Snapshot) -> BTreeMap<String, IpAddr> {
    snapshot
        .nodes()
        .filter_map(|n| {
            let ip = n
                .status
                .as_ref()?
                .addresses
                .as_ref()?
                .iter()
                .find(|a| a.type_ == "InternalIP")?
                .address
                .parse()
                .ok()?;
            Some((n.metadata.name.clone()?, ip))
        })
        .collect()
}

/// The name of this node's ServiceL2Status for a Service: stable, so a restart rewrites
/// rather than duplicates it.
pub fn status_name(node: &str, namespace: &str, service: &str) -> String {
    let digest = Sha256::digest(format!("{node}/{namespace}/{service}"));
    let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("l2-{hex}")
}

pub struct Speaker {
    options: Options,
    cluster: Cluster,
    gossip: Gossip,
    metrics: Arc<Metrics>,
    announcer: Announcer,
    conflicts: mpsc::UnboundedReceiver<Conflict>,
    links: watch::Receiver<Links>,
    config: Option<Config>,
    config_broken: bool,
    started: Instant,
    /// Services we announce (`namespace/name`), with the interfaces their status lists.
    published: BTreeMap<String, BTreeSet<String>>,
    watched: Vec<String>,
    meta: Vec<u8>,
    seeds: Vec<SocketAddr>,
    /// Whether the seeds come from the speaker pods (Kubernetes) rather than the Nodes.
    seeds_from_pods: bool,
    reported: BTreeMap<(IpAddr, Option<String>), Instant>,
    /// When this speaker started or a member last joined: until the views converge, two
    /// speakers may both announce an IP for a moment (see `JOIN_CONVERGENCE`).
    last_join: Instant,
    /// Conflicts seen while members were joining, each decided `JOIN_CONVERGENCE` after it
    /// arrived, when the claiming MAC is known to belong to a speaker or not.
    held: VecDeque<(Instant, Conflict)>,
    event_rate: EventRate,
    returning: ReturningLinks,
}

impl Speaker {
    pub fn new(
        options: Options,
        cluster: Cluster,
        gossip: Gossip,
        metrics: Arc<Metrics>,
        links: watch::Receiver<Links>,
        refresh: Option<Duration>,
    ) -> Speaker {
        let (announcer, conflicts) = Announcer::new(metrics.l2.clone(), refresh);
        Speaker {
            options,
            cluster,
            gossip,
            metrics,
            announcer,
            conflicts,
            links,
            config: None,
            config_broken: false,
            started: Instant::now(),
            published: BTreeMap::new(),
            watched: Vec::new(),
            meta: Vec::new(),
            seeds: Vec::new(),
            seeds_from_pods: false,
            reported: BTreeMap::new(),
            last_join: Instant::now(),
            held: VecDeque::new(),
            event_rate: EventRate::new(EVENT_BURST, EVENT_EVERY, Instant::now().into_std()),
            returning: ReturningLinks::default(),
        }
    }

    /// Runs until `shutdown` resolves, then stops answering and leaves the cluster at once,
    /// so another node takes over without waiting for failure detection.
    /// Fails when gossip stops: without it this node cannot know who is alive, and would
    /// soon believe itself alone and claim every IP. Better to stop announcing and exit, so
    /// the node's supervisor restarts it.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let mut snapshots = self.cluster.snapshots();
        tokio::pin!(shutdown);
        // Wakes the loop once when the join grace ends, in case nothing else changed.
        let grace = tokio::time::sleep(JOIN_GRACE);
        tokio::pin!(grace);
        let mut grace_over = false;
        // Set when every owned IP should be announced again, after the next election: a
        // node that gives an IP up in that election must not announce it once more.
        let mut announce_again = false;
        // Announcing everything again is at most once per ANNOUNCE_AGAIN_EVERY: a flood of
        // joins (fake members, a rolling restart) costs one round of gratuitous ARPs a second.
        let mut announced_again: Option<Instant> = None;
        // Whether the inputs of the election may have changed (a conflict report does not).
        let mut elect = true;
        let mut failure = None;
        let mut retry = false;
        let mut last_snapshot = Arc::new(Snapshot::default());
        let mut pod_list = tokio::time::interval(POD_LIST_EVERY);
        let mut trim = tokio::time::interval(TRIM_EVERY);
        loop {
            if elect {
                let snapshot = snapshots.borrow_and_update().clone();
                retry = !self.pass(&snapshot).await;
                if !Arc::ptr_eq(&snapshot, &last_snapshot) {
                    last_snapshot = snapshot;
                    crate::memory::release_free_memory();
                }
            }
            elect = true;
            let again_due = announced_again.is_none_or(|at| at.elapsed() >= ANNOUNCE_AGAIN_EVERY);
            if announce_again && again_due {
                announce_again = false;
                announced_again = Some(Instant::now());
                self.announcer.announce_again();
            }
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() {
                    failure = Some("the cluster connection ended");
                    break;
                },
                event = self.gossip.events.recv() => {
                    let Some(event) = event else {
                        failure = Some("gossip stopped");
                        break;
                    };
                    // Every event already queued goes into this one pass: a flood of joins
                    // (hundreds of fake members in one packet) costs one election, not one each.
                    let mut events = vec![event];
                    while let Ok(more) = self.gossip.events.try_recv() {
                        events.push(more);
                    }
                    for event in events {
                        announce_again |= self.needs_announcing_again(&event);
                    }
                }
                changed = self.links.changed() => if changed.is_err() {
                    failure = Some("the interface watch ended");
                    break;
                },
                Some(conflict) = self.conflicts.recv() => {
                    self.report_conflict(conflict, false).await;
                    elect = false;
                }
                () = tokio::time::sleep_until(self.held.front().map_or(self.started, |(at, _)| *at) + JOIN_CONVERGENCE), if !self.held.is_empty() => {
                    while let Some((at, _)) = self.held.front() {
                        if at.elapsed() < JOIN_CONVERGENCE {
                            break;
                        }
                        let (_, conflict) = self.held.pop_front().expect("the front exists");
                        self.report_conflict(conflict, true).await;
                    }
                    elect = false;
                }
                () = &mut grace, if !grace_over => grace_over = true,
                _ = pod_list.tick() => self.seeds_from_speaker_pods().await,
                // Reading the store (on another thread) leaves garbage even when nothing
                // this speaker reads changed.
                _ = trim.tick() => {
                    crate::memory::release_free_memory();
                    elect = false;
                }
                () = tokio::time::sleep(RETRY), if retry => {}
                () = tokio::time::sleep(ANNOUNCE_AGAIN_EVERY), if announce_again => elect = false,
                () = tokio::time::sleep(WAITING_LINK_CHECK), if self.returning.any_waiting() => {}
                () = &mut shutdown => break,
            }
        }
        self.announcer.clear();
        self.gossip.leave().await;
        for service in std::mem::take(&mut self.published).into_keys() {
            self.withdraw_status(&service).await;
        }
        if let Err(error) = self.cluster.flush() {
            tracing::warn!(%error, "writing the last status failed");
        }
        match failure {
            Some(reason) => {
                tracing::error!(reason, "speaker stopped");
                anyhow::bail!("{reason}")
            }
            None => {
                tracing::info!("speaker stopped");
                Ok(())
            }
        }
    }

    /// A member that joins may have believed itself the owner of our IPs while apart; if we
    /// were declared dead ourselves (our own Updated event), another node took our IPs over.
    /// Either way, our IPs are announced again.
    fn needs_announcing_again(&mut self, event: &GossipEvent) -> bool {
        match event {
            GossipEvent::Joined(member) => {
                tracing::info!(member = %member.name, "member joined");
                self.last_join = Instant::now();
                true
            }
            GossipEvent::Updated(member) if member.name == self.options.node => {
                tracing::info!("this node was declared dead and refuted it");
                true
            }
            _ => false,
        }
    }

    /// One election and its consequences; false when a status write failed and the pass
    /// should run again soon.
    async fn pass(&mut self, snapshot: &Snapshot) -> bool {
        if !snapshot.synced {
            return true;
        }
        self.update_seeds(snapshot).await;
        match Config::build(&snapshot.config_objects(&self.options.namespace)) {
            Ok(config) => {
                self.config = Some(config);
                self.config_broken = false;
            }
            Err(errors) => {
                if !self.config_broken {
                    tracing::error!(errors = ?errors.iter().map(ToString::to_string).collect::<Vec<_>>(), "the configuration is invalid: keeping the last good one");
                }
                self.config_broken = true;
            }
        }
        let links = self.links.borrow().clone();
        let eligible: BTreeSet<String> = links
            .values()
            .filter(|l| l.eligible())
            .map(|l| l.name.clone())
            .collect();
        let members = self.gossip.members().await;
        let others_alive = members.iter().any(|m| {
            m.name != self.options.node && matches!(m.state, State::Alive | State::Suspect)
        });
        // Only while an interface waits: then every member is pinged (each 15 ms at most).
        let contact = if self.returning.any_waiting() || &eligible != self.returning.last() {
            self.gossip.check_contact().await
        } else {
            None
        };
        let interfaces = self
            .returning
            .usable(&eligible, contact, others_alive, Instant::now());
        if interfaces != eligible {
            tracing::debug!(waiting = ?eligible.difference(&interfaces).collect::<Vec<_>>(), "interfaces back up wait for gossip");
        }
        let announcing: meta::Interfaces = interfaces
            .iter()
            .map(|name| {
                let mac = links.values().find(|l| l.name == *name).and_then(|l| l.mac);
                (name.clone(), mac)
            })
            .collect();
        let meta = meta::encode(&announcing);
        if meta != self.meta {
            tracing::info!(?interfaces, "interfaces usable for announcing changed");
            self.gossip.update_meta(meta.clone()).await;
            self.meta = meta;
        }
        let mut speakers: BTreeMap<String, LiveSpeaker> = members
            .iter()
            .filter(|m| matches!(m.state, State::Alive | State::Suspect))
            .map(|m| {
                (
                    m.name.clone(),
                    LiveSpeaker {
                        interfaces: meta::parse(&m.meta).map(|i| meta::names(&i)),
                    },
                )
            })
            .collect();
        speakers.insert(
            self.options.node.clone(),
            LiveSpeaker {
                interfaces: Some(interfaces),
            },
        );
        let alone = speakers.len() == 1;
        if alone && !self.seeds.is_empty() && self.started.elapsed() < JOIN_GRACE {
            return true;
        }
        let Some(config) = &self.config else {
            return true;
        };
        let inputs = election::Inputs::new(
            snapshot.objects.values(),
            config,
            &speakers,
            &self.options.node,
            self.options.lb_class.as_deref(),
        );
        let decisions = election::elect(&inputs);
        self.announce(&decisions, &links);
        self.watch(&decisions).await;
        let written = self.publish(&decisions, snapshot).await;
        self.metrics.set_ready();
        written
    }

    /// In Kubernetes, joins through the speaker pods' IPs, as MetalLB does; the file store
    /// has no pods, and its Nodes' InternalIPs are used instead.
    async fn seeds_from_speaker_pods(&mut self) {
        match self
            .cluster
            .speaker_ips(&self.options.namespace, &self.options.ml_labels)
            .await
        {
            Ok(Some(ips)) => {
                self.seeds_from_pods = true;
                let seeds: Vec<SocketAddr> = ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, self.options.ml_port))
                    .collect();
                if seeds != self.seeds {
                    self.gossip.set_seeds(seeds.clone()).await;
                    self.seeds = seeds;
                }
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "listing the speaker pods failed"),
        }
    }

    async fn update_seeds(&mut self, snapshot: &Snapshot) {
        if self.seeds_from_pods {
            return;
        }
        let seeds: Vec<SocketAddr> = node_addresses(snapshot)
            .into_iter()
            .filter(|(name, _)| *name != self.options.node)
            .map(|(_, ip)| SocketAddr::new(ip, self.options.ml_port))
            .collect();
        if seeds != self.seeds {
            self.gossip.set_seeds(seeds.clone()).await;
            self.seeds = seeds;
        }
    }

    fn announce(&mut self, decisions: &[Decision], links: &Links) {
        let mut plan = Plan::new();
        for d in decisions
            .iter()
            .filter(|d| d.owner() == Some(&self.options.node))
        {
            for interface in &d.interfaces {
                for ip in &d.ips {
                    plan.entry(interface.clone())
                        .or_default()
                        .insert(*ip, format!("{}/{}", d.namespace, d.name));
                }
            }
        }
        self.announcer.set(&plan, links);
    }

    /// Watches closely the owners of the Services we would take over.
    async fn watch(&mut self, decisions: &[Decision]) {
        let watched: BTreeSet<String> = decisions
            .iter()
            .filter(|d| d.order.get(1) == Some(&self.options.node))
            .filter_map(|d| d.order.first().cloned())
            .collect();
        let watched: Vec<String> = watched.into_iter().collect();
        if watched != self.watched {
            tracing::debug!(?watched, "watching closely");
            self.gossip.watch(watched.clone()).await;
            self.watched = watched;
        }
    }

    /// ServiceL2Status objects and `nodeAssigned` Events for what we announce.
    /// Returns whether every write went through.
    async fn publish(&mut self, decisions: &[Decision], snapshot: &Snapshot) -> bool {
        let me = self.options.node.clone();
        let mut now_published = BTreeMap::new();
        let mut failed = false;
        for d in decisions.iter().filter(|d| d.owner() == Some(&me)) {
            let key = format!("{}/{}", d.namespace, d.name);
            if self.published.get(&key) != Some(&d.interfaces) {
                let status = json!({
                    "node": me,
                    "serviceName": d.name,
                    "serviceNamespace": d.namespace,
                    "interfaces": d.interfaces.iter().map(|i| json!({"name": i})).collect::<Vec<_>>(),
                });
                let partial = json!({
                    "apiVersion": "metallb.io/v1beta1", "kind": "ServiceL2Status",
                    "metadata": {
                        "name": status_name(&me, &d.namespace, &d.name),
                        "namespace": self.options.namespace,
                        "labels": {
                            "metallb.io/node": me,
                            "metallb.io/service-name": d.name,
                            "metallb.io/service-namespace": d.namespace,
                        },
                    },
                    "status": status,
                });
                if let Err(error) = self.cluster.apply(partial).await {
                    // Not recorded as published: the next pass writes it again.
                    tracing::warn!(service = %key, %error, "writing ServiceL2Status failed");
                    failed = true;
                    continue;
                }
                if !self.published.contains_key(&key) {
                    self.publish_event(
                        &d.namespace,
                        &d.name,
                        EventReason::NodeAssigned,
                        format!("announcing from node \"{me}\" with protocol \"layer2\""),
                    )
                    .await;
                }
            }
            now_published.insert(key, d.interfaces.clone());
        }
        // Statuses of ours that no Service we announce explains: left by an earlier run.
        let ours: BTreeSet<String> = decisions
            .iter()
            .filter(|d| d.owner() == Some(&me))
            .map(|d| status_name(&me, &d.namespace, &d.name))
            .collect();
        // The file store knows what we wrote (and the speaker does not load status objects
        // from it); in Kubernetes, the snapshot has every speaker's.
        let written: Vec<ObjectKey> = match self.cluster.written_keys(Kind::ServiceL2Status) {
            Some(keys) => keys,
            None => snapshot
                .l2_statuses()
                .filter(|s| s.status.as_ref().is_some_and(|st| st.node == me))
                .filter_map(|s| {
                    Some(ObjectKey::new(
                        Kind::ServiceL2Status,
                        s.metadata.namespace.as_deref(),
                        s.metadata.name.as_deref()?,
                    ))
                })
                .collect(),
        };
        let leftovers: Vec<ObjectKey> = written
            .into_iter()
            .filter(|k| k.namespace.as_deref() == Some(&self.options.namespace))
            .filter(|k| !ours.contains(&k.name))
            .collect();
        for key in leftovers {
            if let Err(error) = self.cluster.delete(&key).await {
                tracing::warn!(%error, "removing a ServiceL2Status failed");
            }
        }
        let gone: Vec<String> = self
            .published
            .keys()
            .filter(|k| !now_published.contains_key(*k))
            .cloned()
            .collect();
        for service in gone {
            self.withdraw_status(&service).await;
        }
        self.metrics
            .set_announced(&me, now_published.keys().map(String::as_str));
        self.published = now_published;
        if let Err(error) = self.cluster.flush() {
            tracing::warn!(%error, "writing status failed");
        }
        !failed
    }

    async fn withdraw_status(&self, service: &str) {
        let Some((namespace, name)) = service.split_once('/') else {
            return;
        };
        let key = ObjectKey::new(
            Kind::ServiceL2Status,
            Some(&self.options.namespace),
            &status_name(&self.options.node, namespace, name),
        );
        if let Err(error) = self.cluster.delete(&key).await {
            tracing::warn!(%service, %error, "removing ServiceL2Status failed");
        }
    }

    async fn publish_event(
        &mut self,
        namespace: &str,
        name: &str,
        reason: EventReason,
        message: String,
    ) {
        match self.event_rate.admit(Instant::now().into_std()) {
            None => return,
            Some(0) => {}
            Some(refused) => {
                tracing::warn!(refused, "too many Events: some were not published");
            }
        }
        let regarding = EventTarget {
            api_version: "v1".into(),
            kind: "Service".into(),
            namespace: Some(namespace.into()),
            name: name.into(),
            uid: None,
        };
        let event = Event::new(regarding, reason, message);
        if let Err(error) = self.cluster.publish(event).await {
            tracing::warn!(%error, "publishing an Event failed");
        }
    }

    /// Another MAC announces an IP we own: make it visible (Warning Event, metric, log).
    /// `held` says the conflict was seen while members joined and is decided now.
    async fn report_conflict(&mut self, conflict: Conflict, held: bool) {
        let now = Instant::now();
        let mac = format_mac(&conflict.mac);
        // Another speaker's MAC (its gossip metadata says so): both believe they own the IP,
        // so gossip between them is broken.
        let other = self.gossip.members().await.into_iter().find(|m| {
            m.name != self.options.node
                && meta::parse(&m.meta)
                    .is_some_and(|i| i.values().any(|mac| *mac == Some(conflict.mac)))
        });
        let converging = now.duration_since(self.last_join) < JOIN_CONVERGENCE;
        match &other {
            // Perhaps a speaker we have not heard of yet: decided when the views converged.
            None if converging && !held => {
                if self.held.len() < MAX_HELD_CONFLICTS {
                    self.held.push_back((now, conflict));
                }
                return;
            }
            // A speaker whose view differed a moment ago. If it still claims the IP after the
            // views converged, its next announcement (the repeats go on for 5 s) is reported.
            // (A member we hold dead is not converging: its claim is a split brain at once.)
            Some(member) if member.state == State::Alive && (converging || held) => {
                tracing::info!(ip = %conflict.ip, %mac, other_node = %member.name, "another speaker claims an IP this node announces while members join: waiting for the views to converge");
                return;
            }
            _ => {}
        }
        let key = (conflict.ip, other.as_ref().map(|m| m.name.clone()));
        if self
            .reported
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < CONFLICT_REPORT_EVERY)
        {
            return;
        }
        self.reported
            .retain(|_, at| now.duration_since(*at) < CONFLICT_REPORT_EVERY);
        self.reported.insert(key, now);
        let claimant = match &other {
            Some(member) => format!(
                "node \"{}\" (MAC {mac}): the two cannot reach each other through gossip (port {})",
                member.name, self.options.ml_port
            ),
            None => format!("MAC {mac}"),
        };
        tracing::warn!(ip = %conflict.ip, %mac, interface = %conflict.interface, other_node = ?other.as_ref().map(|m| &m.name), "another MAC address claims an IP this node announces");
        if other.is_some() {
            self.metrics.split_brain(conflict.ip);
        }
        if let Some((namespace, name)) = conflict.service.split_once('/') {
            self.publish_event(
                namespace,
                name,
                EventReason::AddressConflict,
                format!(
                    "node \"{}\" announces {} on {}, and so does {claimant}",
                    self.options.node, conflict.ip, conflict.interface
                ),
            )
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_are_stable_and_distinct() {
        assert_eq!(
            status_name("n1", "default", "web"),
            status_name("n1", "default", "web")
        );
        assert_ne!(
            status_name("n1", "default", "web"),
            status_name("n2", "default", "web")
        );
        assert!(status_name("n1", "default", "web").len() <= 63);
    }
}
