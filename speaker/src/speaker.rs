//! The speaker's loop: on every change of the cluster, of the live members or of the
//! interfaces, plan again (`plan::plan`, pure) and carry the plan out through the drivers:
//! the layer 2 interface tasks, gossip membership, and the status writers.
use crate::bgp::unnumbered::Unnumbered;
use crate::bgp::{NotHonoured, Report, Sessions};
use crate::config_state::{ConfigState, Said};
use crate::conflicts::{Conflict, Conflicts, Verdict};
use crate::layer2::announcer::Announcer;
use crate::layer2::interfaces::Links;
use crate::lost_nodes::LostNodes;
use crate::membership::{Membership, meta};
use crate::metrics::Metrics;
use crate::plan::{self, Intent, Node};
use crate::returning_links::ReturningLinks;
use crate::status::{Events, Protocol, Statuses};
use crate::unannounced::Unannounced;
use ferrolb_api::config::{Config, PeerEndpoint};
use ferrolb_api::event_reason::EventReason;
use ferrolb_api::exclusions::{self, Exclusions};
use ferrolb_api::kind::Kind;
use ferrolb_cluster::component::Health;
use ferrolb_cluster::{Cluster, EventTarget, Snapshot};
use ferrolb_gossip::core::{Event as GossipEvent, State};
use ferrolb_gossip::driver::Gossip;
use ferrolb_l2::packet::format_mac;
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::{BTreeMap, BTreeSet};
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

/// How often freed memory is handed back to the kernel.
const TRIM_EVERY: Duration = Duration::from_secs(5);

/// How often the speaker pods are listed again (Kubernetes) for gossip to join.
const POD_LIST_EVERY: Duration = Duration::from_secs(10);

/// Why the speaker stopped on its own: without what it lost, it cannot know what to announce.
#[derive(Debug, thiserror::Error)]
pub enum Stopped {
    #[error("the cluster connection ended")]
    ClusterEnded,
    #[error("gossip stopped")]
    GossipStopped,
    #[error("the interface watch ended")]
    InterfacesEnded,
}

pub struct Options {
    pub node: String,
    pub namespace: String,
    pub lb_class: Option<String>,
    pub ml_port: u16,
    /// The label selector of the speaker pods (Kubernetes), whose IPs gossip joins.
    pub ml_labels: String,
    /// How long stopping BGP sessions announce their routes with GRACEFUL_SHUTDOWN before
    /// they withdraw them (None: withdrawn at once).
    pub bgp_graceful_shutdown: Option<Duration>,
    /// MetalLB's `--ignore-exclude-lb`: nodes labelled
    /// `node.kubernetes.io/exclude-from-external-load-balancers` announce too.
    pub ignore_exclude_lb: bool,
    /// This speaker's pod (Kubernetes, `--pod-name`): its statuses and ConfigurationState
    /// name it as owner, so they go when it goes.
    pub pod: Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference>,
}

pub struct Speaker {
    options: Options,
    cluster: Cluster,
    gossip: Gossip,
    metrics: Arc<Metrics>,
    health: Health,
    announcer: Announcer,
    conflict_reports: mpsc::UnboundedReceiver<Conflict>,
    links: watch::Receiver<Links>,
    config: Option<Config>,
    started: Instant,
    membership: Membership,
    /// The plan carried out last.
    intent: Intent,
    statuses: Statuses,
    /// BGP mode: the sessions, and the ServiceBGPStatus objects.
    bgp: Sessions,
    bgp_statuses: Statuses,
    /// What the last pass could not do in BGP mode (said once per change).
    bgp_unsupported: Vec<NotHonoured>,
    /// Why each BGPPeer's session is not up, as last reported.
    bgp_reports: mpsc::UnboundedReceiver<Report>,
    bgp_problems: BTreeMap<String, String>,
    /// The peers on unnumbered interfaces, found by their router advertisements.
    unnumbered: Unnumbered,
    /// The errors of the configuration in the store while it is broken (the last good one
    /// runs); empty when it is valid.
    config_errors: Vec<String>,
    /// The interfaces that never announce (`metallb-excludel2`), and why the ConfigMap
    /// could not be read while it cannot (the last good list stays).
    exclusions: Exclusions,
    /// The ConfigMap that could not be read, and why.
    exclusions_error: Option<(ConfigMap, String)>,
    config_state: ConfigState,
    /// Whether a first pass has removed the BGP statuses an earlier run left.
    bgp_cleaned: bool,
    events: Events,
    conflicts: Conflicts,
    returning: ReturningLinks,
    /// The gossip members as the admin API shows them.
    members_published: watch::Sender<Vec<ferrolb_proto::v1::Member>>,
    lost_nodes: LostNodes,
    unannounced: Unannounced,
}

impl Speaker {
    pub fn new(
        options: Options,
        cluster: Cluster,
        gossip: Gossip,
        metrics: Arc<Metrics>,
        health: Health,
        links: watch::Receiver<Links>,
        refresh: Option<Duration>,
    ) -> Speaker {
        let (announcer, conflict_reports) = Announcer::new(metrics.l2.clone(), refresh);
        let (bgp_reports_tx, bgp_reports) = mpsc::unbounded_channel();
        let now = Instant::now();
        Speaker {
            membership: Membership::new(
                &options.node,
                &options.namespace,
                options.ml_port,
                &options.ml_labels,
            ),
            statuses: Statuses::new(
                Protocol::Layer2,
                &options.node,
                &options.namespace,
                options.pod.clone(),
            ),
            bgp: Sessions::new(metrics.bgp.clone(), metrics.bfd.clone(), bgp_reports_tx),
            bgp_statuses: Statuses::new(
                Protocol::Bgp,
                &options.node,
                &options.namespace,
                options.pod.clone(),
            ),
            bgp_unsupported: Vec::new(),
            bgp_reports,
            bgp_problems: BTreeMap::new(),
            unnumbered: Unnumbered::default(),
            config_errors: Vec::new(),
            exclusions: Exclusions::default(),
            exclusions_error: None,
            config_state: ConfigState::new(&options.node, &options.namespace, options.pod.clone()),
            bgp_cleaned: false,
            options,
            cluster,
            gossip,
            metrics,
            health,
            announcer,
            conflict_reports,
            links,
            config: None,
            started: now,
            intent: Intent::default(),
            events: Events::new(now.into_std()),
            conflicts: Conflicts::new(now.into_std()),
            returning: ReturningLinks::default(),
            members_published: watch::Sender::new(Vec::new()),
            lost_nodes: LostNodes::default(),
            unannounced: Unannounced::default(),
        }
    }

    /// What the admin API serves: snapshots published by this loop and its drivers.
    pub fn admin(&self) -> crate::admin::Snapshots {
        crate::admin::Snapshots {
            node: self.options.node.clone(),
            members: self.members_published.subscribe(),
            announcements: self.announcer.published(),
            sessions: self.bgp.published(),
            bfd: self.bgp.bfd_published(),
        }
    }

    /// Runs until `shutdown` resolves, then stops answering and leaves the cluster at once,
    /// so another node takes over without waiting for failure detection.
    /// Fails when gossip stops: without it this node cannot know who is alive, and would
    /// announce on a stale view.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), Stopped> {
        let mut snapshots = self.cluster.snapshots();
        tokio::pin!(shutdown);
        // Wakes the loop once when the join grace ends, in case nothing else changed.
        let grace = tokio::time::sleep(JOIN_GRACE);
        tokio::pin!(grace);
        let mut grace_over = false;
        // Set when every owned IP should be announced again, after the next plan: a node
        // that gives an IP up in that plan must not announce it once more.
        let mut announce_again = false;
        // Announcing everything again is at most once per ANNOUNCE_AGAIN_EVERY: a flood of
        // joins (fake members, a rolling restart) costs one round of gratuitous ARPs a second.
        let mut announced_again: Option<Instant> = None;
        // Whether the inputs of the plan may have changed (a conflict report does not).
        let mut replan = true;
        let mut failure = None;
        let mut retry = false;
        let mut last_snapshot = Arc::new(Snapshot::default());
        let mut pod_list = tokio::time::interval(POD_LIST_EVERY);
        let mut trim = tokio::time::interval(TRIM_EVERY);
        loop {
            // The loop wakes at least every TRIM_EVERY: `/healthz` knows it is not stuck.
            self.health.beat();
            if replan {
                let snapshot = snapshots.borrow_and_update().clone();
                retry = !self.pass(&snapshot).await;
                if !Arc::ptr_eq(&snapshot, &last_snapshot) {
                    last_snapshot = snapshot;
                    crate::memory::release_free_memory();
                }
            }
            replan = true;
            let again_due = announced_again.is_none_or(|at| at.elapsed() >= ANNOUNCE_AGAIN_EVERY);
            if announce_again && again_due {
                announce_again = false;
                announced_again = Some(Instant::now());
                self.announcer.announce_again();
            }
            let conflict_due = self.conflicts.next_due().map(Instant::from_std);
            let unannounced_due = self.unannounced.next_due().map(Instant::from_std);
            tokio::select! {
                changed = snapshots.changed() => if changed.is_err() {
                    failure = Some(Stopped::ClusterEnded);
                    break;
                },
                event = self.gossip.events.recv() => {
                    let Some(event) = event else {
                        failure = Some(Stopped::GossipStopped);
                        break;
                    };
                    // Every event already queued goes into this one pass: a flood of joins
                    // (hundreds of fake members in one packet) costs one plan, not one each.
                    let mut events = vec![event];
                    while let Ok(more) = self.gossip.events.try_recv() {
                        events.push(more);
                    }
                    for event in events {
                        announce_again |= self.needs_announcing_again(&event);
                    }
                }
                changed = self.links.changed() => if changed.is_err() {
                    failure = Some(Stopped::InterfacesEnded);
                    break;
                },
                changed = self.unnumbered.changes.changed() => if changed.is_err() {
                    failure = Some(Stopped::InterfacesEnded);
                    break;
                },
                // A BFD session down takes its BGP sessions down at once; the pass starts
                // them again.
                event = self.bgp.bfd_event() => replan = self.bgp.on_bfd(event),
                Some(report) = self.bgp_reports.recv() => {
                    self.on_bgp_report(report).await;
                    replan = false;
                }
                Some(conflict) = self.conflict_reports.recv() => {
                    self.on_conflict(conflict, false).await;
                    replan = false;
                }
                () = sleep_until(conflict_due) => {
                    for conflict in self.conflicts.due(Instant::now().into_std()) {
                        self.on_conflict(conflict, true).await;
                    }
                    replan = false;
                }
                () = sleep_until(unannounced_due) => {
                    self.report_unannounced().await;
                    replan = false;
                }
                () = &mut grace, if !grace_over => grace_over = true,
                _ = pod_list.tick() => {
                    self.membership.seeds_from_speaker_pods(&self.gossip, &self.cluster).await;
                }
                // Reading the store (on another thread) leaves garbage even when nothing
                // this speaker reads changed.
                _ = trim.tick() => {
                    crate::memory::release_free_memory();
                    replan = false;
                }
                () = tokio::time::sleep(RETRY), if retry => {}
                () = tokio::time::sleep(ANNOUNCE_AGAIN_EVERY), if announce_again => replan = false,
                () = tokio::time::sleep(WAITING_LINK_CHECK), if self.returning.any_waiting() => {}
                () = &mut shutdown => break,
            }
        }
        self.announcer.clear();
        // Both at once: the other speakers take the layer 2 IPs over while the routers
        // withdraw our routes (or, with graceful restart, keep them until we are back).
        let (bgp, gossip) = (&mut self.bgp, &self.gossip);
        let graceful_shutdown = self.options.bgp_graceful_shutdown;
        tokio::join!(
            bgp.stop_all("the speaker is stopping", graceful_shutdown),
            gossip.leave()
        );
        self.statuses.withdraw_all(&self.cluster).await;
        self.bgp_statuses.withdraw_all(&self.cluster).await;
        match failure {
            Some(reason) => {
                tracing::error!(%reason, "speaker stopped");
                Err(reason)
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
                self.conflicts.joined(Instant::now().into_std());
                true
            }
            GossipEvent::Updated(member) if member.name == self.options.node => {
                tracing::info!("this node was declared dead and refuted it");
                // A survivor may have removed our statuses as a lost node's.
                self.statuses.write_again();
                self.bgp_statuses.write_again();
                true
            }
            _ => false,
        }
    }

    /// The configuration from the snapshot, or the last good one when it is invalid.
    fn update_config(&mut self, snapshot: &Snapshot) {
        let built = Config::build(&snapshot.config_objects(&self.options.namespace));
        self.metrics.config.loaded(built.is_ok());
        match built {
            Ok(config) => {
                self.config = Some(config);
                self.config_errors.clear();
            }
            Err(errors) => {
                if self.config_errors.is_empty() {
                    tracing::error!(errors = ?errors.iter().map(ToString::to_string).collect::<Vec<_>>(), "the configuration is invalid: keeping the last good one");
                }
                self.config_errors = errors.iter().map(ToString::to_string).collect();
            }
        }
        self.update_exclusions(snapshot);
        self.config_errors
            .extend(self.exclusions_error.as_ref().map(|(_, e)| e.clone()));
    }

    /// MetalLB's `metallb-excludel2` ConfigMap, read again when it changes.
    fn update_exclusions(&mut self, snapshot: &Snapshot) {
        let key = ferrolb_cluster::ObjectKey::new(
            Kind::ConfigMap,
            Some(&self.options.namespace),
            exclusions::CONFIGMAP,
        );
        let configmap = match snapshot.get(&key) {
            Some(ferrolb_api::objects::Object::ConfigMap(c)) => Some(&**c),
            _ => None,
        };
        let unchanged = match &self.exclusions_error {
            Some((failed, _)) => configmap.is_some_and(|c| c.data == failed.data),
            None => self.exclusions.read_from(configmap),
        };
        if unchanged {
            return;
        }
        match Exclusions::from_configmap(configmap) {
            Ok(exclusions) => {
                tracing::info!(
                    configmap = configmap.is_some(),
                    "interfaces excluded from layer 2 announcements updated"
                );
                self.exclusions = exclusions;
                self.exclusions_error = None;
            }
            Err(error) => {
                tracing::error!(%error, "keeping the interfaces excluded until now");
                self.exclusions_error = configmap.map(|c| (c.clone(), error));
            }
        }
    }

    /// The interfaces this node can announce on now, with their MACs: those up and eligible,
    /// except one back up that still waits for gossip to reach another member.
    async fn usable_interfaces(&mut self, links: &Links, others_alive: bool) -> meta::Interfaces {
        let eligible: BTreeSet<String> = links
            .values()
            .filter(|l| l.eligible(&self.exclusions))
            .map(|l| l.name.clone())
            .collect();
        // Only while an interface waits: then a few members are pinged (each 25 ms at most).
        let contact = if self.returning.any_waiting() || &eligible != self.returning.last() {
            self.gossip.check_contact().await
        } else {
            None
        };
        let usable = self
            .returning
            .usable(&eligible, contact, others_alive, Instant::now());
        if usable != eligible {
            tracing::debug!(waiting = ?eligible.difference(&usable).collect::<Vec<_>>(), "interfaces back up wait for gossip");
        }
        usable
            .into_iter()
            .map(|name| {
                let mac = links.values().find(|l| l.name == name).and_then(|l| l.mac);
                (name, mac)
            })
            .collect()
    }

    /// One plan, carried out; false when a status write failed and the pass should run
    /// again soon.
    async fn pass(&mut self, snapshot: &Snapshot) -> bool {
        if !snapshot.synced {
            return true;
        }
        self.membership
            .seeds_from_nodes(&self.gossip, snapshot)
            .await;
        self.update_config(snapshot);
        let links = self.links.borrow().clone();
        let members = self.gossip.members().await;
        crate::admin::publish_members(&self.members_published, &members);
        let others_alive = members.iter().any(|m| {
            m.name != self.options.node && matches!(m.state, State::Alive | State::Suspect)
        });
        let interfaces = self.usable_interfaces(&links, others_alive).await;
        let node = Node {
            name: &self.options.node,
            lb_class: self.options.lb_class.as_deref(),
            ignore_exclude_lb: self.options.ignore_exclude_lb,
            interfaces: &interfaces,
        };
        let intent = plan::plan(
            snapshot.objects.values(),
            self.config.as_ref(),
            &members,
            &node,
        );
        if intent.meta != self.intent.meta {
            tracing::info!(interfaces = ?interfaces.keys().collect::<Vec<_>>(), "interfaces usable for announcing changed");
        }
        self.membership.set_meta(&self.gossip, &intent.meta).await;
        // BGP elects nothing, so it needs no gossip: every eligible node announces at once.
        let mut written = true;
        if self.config.is_some() {
            written = self.apply_bgp(&intent, snapshot, &links).await;
        }
        let said = Said {
            errors: self.config_errors.clone(),
            not_honoured: self.bgp_unsupported.clone(),
        };
        // A failed write is tried again at the next pass, without forcing one: it must not
        // replan every second while the API refuses it.
        self.config_state.apply(&self.cluster, said).await;
        // Alone right after starting, wait to hear from the others before claiming anything.
        let alone = !others_alive;
        if self.config.is_none()
            || (alone && self.membership.has_seeds() && self.started.elapsed() < JOIN_GRACE)
        {
            self.intent.meta = intent.meta;
            return written;
        }
        self.announcer.set(&intent.layer2, &links);
        self.unannounced
            .update(Instant::now().into_std(), &intent.lacking_interfaces);
        self.report_unannounced().await;
        written &= self
            .statuses
            .apply(
                &self.cluster,
                &mut self.events,
                &intent.l2_statuses,
                snapshot,
                &self.health,
            )
            .await;
        // MetalLB's `metallb_speaker_announced`: one series per Service, protocol and IP.
        let announced: Vec<(&'static str, String, String)> = self
            .statuses
            .services()
            .map(|s| (Protocol::Layer2.name(), s))
            .chain(
                self.bgp_statuses
                    .services()
                    .map(|s| (Protocol::Bgp.name(), s)),
            )
            .flat_map(|(protocol, key)| {
                service_ips(snapshot, key)
                    .into_iter()
                    .map(move |ip| (protocol, key.to_string(), ip))
            })
            .collect();
        self.metrics.set_announced(
            &self.options.node,
            announced
                .iter()
                .map(|(p, s, ip)| (*p, s.as_str(), ip.as_str())),
        );
        self.clean_up_after_lost_nodes(&members).await;
        // Acting on a synced view, having joined (or waited long enough to know it is alone).
        self.health.set_ready();
        self.intent = intent;
        written
    }

    /// BGP mode: the sessions and their routes as planned, and the ServiceBGPStatus
    /// objects; false when a status write failed.
    async fn apply_bgp(&mut self, intent: &Intent, snapshot: &Snapshot, links: &Links) -> bool {
        // Without BGP (no peer selects this node, no session, no status), nothing to do once
        // the first pass has removed what an earlier run left.
        let idle = intent.bgp.peers.is_empty()
            && self.bgp.is_empty()
            && self.bgp_statuses.services().next().is_none();
        if idle && self.bgp_cleaned {
            // What a removed peer left: its unnumbered watch, its notes.
            self.unnumbered.watch(&[]);
            self.bgp_unsupported.clear();
            return true;
        }
        self.bgp_cleaned = true;
        let router_id = node_ipv4(snapshot, &self.options.node)
            .unwrap_or_else(|| crate::bgp::peer::router_id_from_name(&self.options.node));
        let unnumbered: Vec<(String, u32)> = intent
            .bgp
            .peers
            .values()
            .filter_map(|peer| match &peer.endpoint {
                PeerEndpoint::Interface(name) => links
                    .values()
                    .find(|l| &l.name == name)
                    .map(|l| (name.clone(), l.index)),
                PeerEndpoint::Address(_) => None,
            })
            .collect();
        self.unnumbered.watch(&unnumbered);
        let neighbours = self.unnumbered.neighbours();
        let unsupported = self.bgp.apply(&intent.bgp, router_id, &neighbours);
        if unsupported != self.bgp_unsupported {
            for problem in &unsupported {
                if self.bgp_unsupported.contains(problem) {
                    continue;
                }
                tracing::warn!("{}", problem.message);
                let peer = peer_target(&self.options.namespace, &problem.peer);
                let message = format!("node {:?}: {}", self.options.node, problem.message);
                self.events
                    .publish_about(&self.cluster, peer, EventReason::NotHonoured, message)
                    .await;
            }
            self.bgp_unsupported = unsupported;
        }
        let written = self
            .bgp_statuses
            .apply(
                &self.cluster,
                &mut self.events,
                &intent.bgp.statuses,
                snapshot,
                &self.health,
            )
            .await;
        written && !self.bgp.behind(&intent.bgp)
    }

    /// The statuses of members declared dead, removed by the first live speaker (see
    /// `lost_nodes`); tried again at the next pass when the deletion fails.
    async fn clean_up_after_lost_nodes(&mut self, members: &[ferrolb_gossip::core::Member]) {
        let due = self.lost_nodes.due(&self.options.node, members);
        if due.is_empty() {
            return;
        }
        // Asked again just before deleting: a node back since the pass began (it refuted
        // its death, or restarted) has written its statuses again, and keeps them.
        let now = self.gossip.members().await;
        for lost in due {
            if !now.iter().any(|m| m.name == lost && m.state == State::Dead) {
                continue;
            }
            let kinds = [Kind::ServiceL2Status, Kind::ServiceBGPStatus];
            let label = (crate::status::NODE_LABEL, lost.as_str());
            match self
                .cluster
                .delete_labelled(&kinds, &self.options.namespace, label)
                .await
            {
                Ok(()) => tracing::info!(node = %lost, "removed the statuses of a lost node"),
                Err(error) => {
                    tracing::warn!(node = %lost, %error, "removing the statuses of a lost node failed: trying again");
                    self.lost_nodes.failed(&lost);
                }
            }
        }
    }

    /// The Services nobody announces by layer 2 for want of an interface, which lasted
    /// long enough to say so: a Warning Event on each (MetalLB's `announceFailed`).
    async fn report_unannounced(&mut self) {
        for (service, gap) in self.unannounced.due(Instant::now().into_std()) {
            let message = crate::unannounced::message(&self.options.node, &gap);
            tracing::warn!(%service, "{message}");
            self.events
                .publish(
                    &self.cluster,
                    &service,
                    EventReason::AnnounceFailed,
                    message,
                )
                .await;
        }
    }

    /// A BGP session's news: a Warning Event on its BGPPeer when it fails in a new way
    /// (refused, no answer, a NOTIFICATION), said once until the session is up again.
    async fn on_bgp_report(&mut self, report: Report) {
        // A stopped session's last news, or a peer gone: nothing to say about it any more.
        self.bgp_problems.retain(|peer, _| self.bgp.runs(peer));
        let Some(problem) = report.problem.filter(|_| self.bgp.runs(&report.peer)) else {
            self.bgp_problems.remove(&report.peer);
            return;
        };
        if self.bgp_problems.get(&report.peer) == Some(&problem) {
            return;
        }
        tracing::warn!(peer = %report.peer, "BGP session not up: {problem}");
        let message = format!("node {:?}: {problem}", self.options.node);
        self.bgp_problems.insert(report.peer.clone(), problem);
        let peer = peer_target(&self.options.namespace, &report.peer);
        self.events
            .publish_about(&self.cluster, peer, EventReason::SessionDown, message)
            .await;
    }

    /// Another MAC claims an IP we announce: make it visible (Warning Event, metric, log)
    /// when it means something. `held` says the claim was held while members joined.
    async fn on_conflict(&mut self, mut conflict: Conflict, held: bool) {
        if conflict.service.is_none() {
            conflict.service = self
                .intent
                .layer2_service(&conflict.interface, &conflict.ip)
                .cloned();
        }
        let members = self.gossip.members().await;
        let verdict = self.conflicts.assess(
            Instant::now().into_std(),
            &conflict,
            &members,
            &self.options.node,
            held,
        );
        let mac = format_mac(&conflict.mac);
        let node = match verdict {
            Verdict::Held | Verdict::Reported => return,
            Verdict::Converging { node } => {
                tracing::info!(ip = %conflict.ip, %mac, other_node = %node, "another speaker claims an IP this node announces while members join: waiting for the views to converge");
                return;
            }
            Verdict::Report { node } => node,
        };
        tracing::warn!(ip = %conflict.ip, %mac, interface = %conflict.interface, other_node = ?node, "another MAC address claims an IP this node announces");
        let claimant = match &node {
            Some(other) => {
                self.metrics.split_brain(conflict.ip);
                format!(
                    "node \"{other}\" (MAC {mac}): the two cannot reach each other through gossip (port {})",
                    self.options.ml_port
                )
            }
            None => format!("MAC {mac}"),
        };
        let Some(service) = conflict.service.clone() else {
            return;
        };
        let message = format!(
            "node \"{}\" announces {} on {}, and so does {claimant}",
            self.options.node, conflict.ip, conflict.interface
        );
        self.events
            .publish(
                &self.cluster,
                &service,
                EventReason::AddressConflict,
                message,
            )
            .await;
    }
}

/// A BGPPeer, as an Event's subject.
fn peer_target(namespace: &str, name: &str) -> EventTarget {
    EventTarget {
        api_version: Kind::BGPPeer.api_version(),
        kind: Kind::BGPPeer.name().into(),
        namespace: Some(namespace.to_string()),
        name: name.to_string(),
        uid: None,
    }
}

/// The node's first IPv4 InternalIP: its BGP router ID unless a BGPPeer sets one.
fn node_ipv4(snapshot: &Snapshot, node: &str) -> Option<std::net::Ipv4Addr> {
    let node = snapshot
        .nodes()
        .find(|n| n.metadata.name.as_deref() == Some(node))?;
    node.status
        .as_ref()?
        .addresses
        .as_ref()?
        .iter()
        .filter(|a| a.type_ == "InternalIP")
        .find_map(|a| a.address.parse().ok())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// The IPs a Service shows in its status (those the controller gave it).
fn service_ips(snapshot: &Snapshot, key: &ferrolb_api::service_key::ServiceKey) -> Vec<String> {
    let object = ferrolb_cluster::ObjectKey::new(Kind::Service, Some(&key.namespace), &key.name);
    let Some(ferrolb_api::objects::Object::SlimService(service)) = snapshot.get(&object) else {
        return Vec::new();
    };
    service
        .ips
        .iter()
        .map(std::net::IpAddr::to_string)
        .collect()
}
