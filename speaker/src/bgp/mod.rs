//! BGP mode's shell: one task per BGPPeer session (the `bgp` crate's driver), started,
//! restarted and stopped as the plan's peers change, and handed each peer's routes in the
//! pass that changed them, with no debounce. A change to one peer touches only its session:
//! the others keep their uptime.
pub mod peer;
pub mod unnumbered;
pub mod view;

use crate::admin::BgpSessions;
use crate::metrics::{BfdMetrics, BgpMetrics};
use crate::plan::bgp::{Bgp, Route, Routes};
use ferrolb_bfd::driver::{self as bfd, Bfd};
use ferrolb_bgp::driver::{self, Command, Event};
use ferrolb_bgp::export::{Export, Path};
use ferrolb_bgp::packet::{GRACEFUL_SHUTDOWN, subcode};
use ferrolb_bgp::session::{Counters, PeerAs, Session};
use ferrolb_proto::v1;
use ipnet::IpNet;
use peer::SessionSpec;
use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use unnumbered::Neighbours;

/// How long a stopping session may take to send its Cease.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How long a session BFD took down waits before it starts again, unless BFD is up again
/// sooner: a session bouncing over a path BFD calls broken helps no one, and a router's
/// dynamic neighbour that comes back within milliseconds can lose its BFD registration
/// (FRR's bgpd and bfdd race on it).
const BFD_DOWN_HOLD: Duration = Duration::from_secs(2);

pub struct Sessions {
    running: BTreeMap<String, Running>,
    metrics: BgpMetrics,
    reports: mpsc::UnboundedSender<Report>,
    /// Unnumbered peers whose interface has shown no neighbour yet (said once).
    waiting: BTreeSet<String>,
    bfd: BfdLink,
    /// Sessions BFD took down, held until BFD is up again or the time given.
    held: BTreeMap<String, tokio::time::Instant>,
    /// The sessions as the admin API shows them, kept by their tasks.
    published: Arc<watch::Sender<BgpSessions>>,
}

/// BFD under the sessions whose BGPPeer names a profile: started with the first one (a
/// node without BFD runs no BFD thread), its state changes fed back to the sessions.
struct BfdLink {
    metrics: BfdMetrics,
    driver: Option<(Bfd, mpsc::UnboundedReceiver<bfd::Event>)>,
    /// The BGPPeers each BFD session serves.
    peers: BTreeMap<bfd::Key, BTreeSet<String>>,
    /// The sessions last handed to the driver.
    specs: Vec<bfd::Spec>,
    /// The BFD sessions as the admin API shows them (with the BGPPeers each serves).
    published: Arc<watch::Sender<Vec<v1::BfdSession>>>,
    peers_published: watch::Sender<BTreeMap<bfd::Key, BTreeSet<String>>>,
}

/// What a session tells the speaker to report on its BGPPeer: why it is not up, or (None)
/// that it is up again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub peer: String,
    pub problem: Option<String>,
}

/// A BGPPeer field this node does not act on, said in the ConfigurationState and an Event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct NotHonoured {
    pub peer: String,
    pub message: String,
}

struct Running {
    spec: SessionSpec,
    commands: mpsc::Sender<Command>,
    /// The routes last handed to the session (the plan's table, shared), and the
    /// attribute set each distinct route got.
    routes: Routes,
    paths: Vec<(Route, Arc<Path>)>,
    /// How many prefixes the peer should hold (for the pending-prefixes metric).
    wanted: Arc<AtomicUsize>,
    /// Set when the peer is gone for good: its task removes its metric series at the end
    /// (after the last counts, which would otherwise bring them back).
    removed: Arc<AtomicBool>,
    /// Set when the session is stopped: its task's last news no longer shows in the admin
    /// API (a session started again for the same peer has its own).
    retired: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Sessions {
    pub fn new(
        metrics: BgpMetrics,
        bfd_metrics: BfdMetrics,
        reports: mpsc::UnboundedSender<Report>,
    ) -> Sessions {
        Sessions {
            running: BTreeMap::new(),
            metrics,
            reports,
            waiting: BTreeSet::new(),
            held: BTreeMap::new(),
            published: Arc::new(watch::Sender::new(BgpSessions::new())),
            bfd: BfdLink {
                metrics: bfd_metrics,
                driver: None,
                peers: BTreeMap::new(),
                specs: Vec::new(),
                published: Arc::new(watch::Sender::new(Vec::new())),
                peers_published: watch::Sender::new(BTreeMap::new()),
            },
        }
    }

    /// The BGP sessions, for the admin API.
    pub fn published(&self) -> watch::Receiver<BgpSessions> {
        self.published.subscribe()
    }

    /// The BFD sessions, for the admin API.
    pub fn bfd_published(&self) -> watch::Receiver<Vec<v1::BfdSession>> {
        self.bfd.published.subscribe()
    }

    /// A session stopped: its task's news is no longer shown, and the peer shows `why`
    /// until a new session replaces it (or, gone for good, it is removed).
    fn retire(&self, name: &str, running: &Running, why: &str, gone: bool) {
        running.retired.store(true, Ordering::Relaxed);
        self.published.send_modify(|sessions| {
            if gone {
                sessions.remove(name);
            } else if let Some(session) = sessions.get_mut(name) {
                *session = view::View::stopped(session, why);
            }
        });
    }

    /// Carries out the BGP half of the plan. Returns what cannot be done, or is done
    /// without some field, to be reported.
    pub fn apply(
        &mut self,
        bgp: &Bgp,
        router_id: Ipv4Addr,
        neighbours: &Neighbours,
    ) -> Vec<NotHonoured> {
        let mut unsupported = Vec::new();
        let mut wanted: BTreeMap<&String, SessionSpec> = BTreeMap::new();
        let note = |peer: &String, message: String| NotHonoured {
            peer: peer.clone(),
            message,
        };
        for (name, peer) in &bgp.peers {
            match peer::session(peer, router_id, neighbours) {
                Ok(spec) => {
                    let profile = bgp.bfd_profiles.get(name);
                    unsupported.extend(
                        peer::not_honoured(peer, profile)
                            .into_iter()
                            .map(|m| note(name, m)),
                    );
                    wanted.insert(name, spec);
                }
                // Waiting for the unnumbered peer: not a field left unhonoured; logged once.
                Err(why @ peer::Unsupported::NoNeighbour(..)) => {
                    if !self.waiting.contains(name) {
                        tracing::info!("{why}");
                        self.waiting.insert(name.clone());
                    }
                }
                Err(why) => unsupported.push(note(name, why.to_string())),
            }
        }
        // Sessions no longer wanted, wanted otherwise, or whose driver ended: stopped (and
        // started again below).
        let stale: Vec<String> = self
            .running
            .iter()
            .filter(|(name, running)| {
                wanted.get(name) != Some(&running.spec)
                    || running.task.is_finished()
                    || running.commands.is_closed()
            })
            .map(|(name, _)| name.clone())
            .collect();
        for name in stale {
            if let Some(running) = self.running.remove(&name) {
                tracing::info!(peer = %name, "BGP session stopped: its BGPPeer changed or went");
                let _ = running.commands.try_send(Command::Stop {
                    subcode: subcode::PEER_DECONFIGURED,
                    message: String::new(),
                });
                let gone = !wanted.contains_key(&name);
                if gone {
                    running.removed.store(true, Ordering::Relaxed);
                }
                self.retire(
                    &name,
                    &running,
                    "stopped: its BGPPeer changed, or its driver ended",
                    gone,
                );
            }
        }
        // Peers held after BFD took them down and then removed: nothing to show.
        self.published.send_if_modified(|sessions| {
            let before = sessions.len();
            sessions.retain(|name, _| wanted.contains_key(name));
            sessions.len() != before
        });
        self.waiting
            .retain(|name| bgp.peers.contains_key(name) && !wanted.contains_key(name));
        if let Err(error) = self.bfd.apply(bgp, &wanted) {
            for name in bgp.bfd_profiles.keys() {
                unsupported.push(note(
                    name,
                    format!("BGPPeer {name}: BFD cannot run on this node ({error}): the session relies on its hold time"),
                ));
            }
        }
        let no_routes = Routes::default();
        let now = tokio::time::Instant::now();
        self.held
            .retain(|name, until| *until > now && wanted.contains_key(name));
        for (name, spec) in wanted {
            if self.held.contains_key(name) && !self.running.contains_key(name) {
                continue;
            }
            let running = self.running.entry(name.clone()).or_insert_with(|| {
                start(
                    name,
                    spec,
                    self.metrics.clone(),
                    self.reports.clone(),
                    self.published.clone(),
                )
            });
            // Compared before anything is copied: at 10,000 Services most passes change
            // nothing here.
            let routes = bgp.routes.get(name).unwrap_or(&no_routes);
            if *routes != running.routes {
                let Some(peer) = bgp.peers.get(name) else {
                    continue;
                };
                let paths = distinct_paths(routes, |route| peer::path(peer, route));
                running.wanted.store(routes.len(), Ordering::Relaxed);
                match running
                    .commands
                    .try_send(Command::Replace(table(routes, &paths)))
                {
                    Ok(()) => {
                        running.routes = routes.clone();
                        running.paths = paths;
                    }
                    // Full: the session is busy; the next pass hands it the routes again.
                    Err(error) => {
                        tracing::warn!(peer = %name, %error, "BGP routes not handed over yet")
                    }
                }
            } else {
                // The same routes in the plan's new table: held once, not twice.
                running.routes = routes.clone();
            }
        }
        unsupported
    }

    /// Whether a pass must run again soon: some session has not taken its routes yet, or
    /// waits out its hold after BFD took it down.
    pub fn behind(&self, bgp: &Bgp) -> bool {
        !self.held.is_empty()
            || self.running.iter().any(|(name, running)| {
                bgp.routes
                    .get(name)
                    .map_or(!running.routes.is_empty(), |r| *r != running.routes)
            })
    }

    /// The next BFD state change (never, while no BGPPeer asks for BFD).
    pub async fn bfd_event(&mut self) -> bfd::Event {
        match &mut self.bfd.driver {
            Some((_, events)) => match events.recv().await {
                Some(event) => event,
                None => std::future::pending().await,
            },
            None => std::future::pending().await,
        }
    }

    /// BFD says the path to a peer failed: its BGP sessions go down at once with a Cease
    /// saying why (RFC 9384), and start again once BFD is up or `BFD_DOWN_HOLD` has passed,
    /// at a pass the caller runs (true: run one now). The peer shutting its BFD session on
    /// purpose (AdminDown) is no failure of the path (RFC 5882 section 3.2): the sessions
    /// stay.
    pub fn on_bfd(&mut self, event: bfd::Event) -> bool {
        let change = event.change;
        let names = self.bfd.peers.get(&event.key).cloned().unwrap_or_default();
        if change.to == ferrolb_bfd::State::Up {
            // The path works again: held sessions start now.
            let before = self.held.len();
            self.held.retain(|name, _| !names.contains(name));
            return self.held.len() != before;
        }
        // Only Up to Down: our own AdminDown (a removed or changed session) is no failure.
        if change.from != ferrolb_bfd::State::Up || change.to != ferrolb_bfd::State::Down {
            return false;
        }
        if change.peer_admin_down {
            tracing::info!(peer = %event.key, "BFD: the peer shut its session (AdminDown); its BGP sessions stay up");
            return false;
        }
        let mut any = false;
        let until = tokio::time::Instant::now() + BFD_DOWN_HOLD;
        for name in &names {
            self.held.insert(name.clone(), until);
            if let Some(running) = self.running.remove(name) {
                tracing::warn!(peer = %name, diag = %change.diag, "BFD session down: the BGP session goes down with it");
                let why = format!("BFD session down: {}", change.diag);
                self.retire(name, &running, &why, false);
                let _ = running.commands.try_send(Command::Stop {
                    subcode: subcode::BFD_DOWN,
                    message: why,
                });
                any = true;
            }
        }
        any
    }

    /// Whether a session for this BGPPeer runs (a report from one stopped is stale).
    pub fn runs(&self, peer: &str) -> bool {
        self.running.contains_key(peer)
    }

    /// Whether any session runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Ends every session as the speaker stops: with graceful restart, by closing the
    /// connection, so the router keeps the routes until the speaker is back; otherwise by
    /// withdrawing every route and sending a Cease (administrative shutdown), so traffic
    /// leaves before the process does. With `graceful_shutdown`, the routes are first
    /// announced again with the GRACEFUL_SHUTDOWN community (RFC 8326) for that long, so
    /// routers prefer other paths before these go. Then all within one `STOP_GRACE`.
    pub async fn stop_all(&mut self, message: &str, graceful_shutdown: Option<Duration>) {
        // BFD's AdminDown first: the routers must not take it for a failed path and drop
        // the sessions (with graceful restart, the routes they keep) before our own word.
        if let Some((bfd, _)) = &self.bfd.driver {
            bfd.stop().await;
        }
        if let Some(wait) = graceful_shutdown.filter(|w| !w.is_zero()) {
            let mut marked_any = false;
            for (name, session) in &self.running {
                if session.spec.config.graceful_restart.is_some() || session.routes.is_empty() {
                    continue;
                }
                let table = table(&session.routes, &session.paths);
                let marked = Command::Replace(marked_for_shutdown(&table));
                if session.commands.try_send(marked).is_ok() {
                    marked_any = true;
                } else {
                    tracing::warn!(peer = %name, "BGP session busy: its routes go without GRACEFUL_SHUTDOWN");
                }
            }
            if marked_any {
                tracing::info!(
                    ?wait,
                    "BGP routes marked GRACEFUL_SHUTDOWN: withdrawing them after the wait"
                );
                tokio::time::sleep(wait).await;
            }
        }
        let running = std::mem::take(&mut self.running);
        let mut tasks = Vec::new();
        for (name, session) in running {
            let command = if session.spec.config.graceful_restart.is_some() {
                Command::Abandon
            } else {
                Command::Stop {
                    subcode: subcode::ADMINISTRATIVE_SHUTDOWN,
                    message: message.to_string(),
                }
            };
            if session.commands.try_send(command).is_err() {
                tracing::warn!(peer = %name, "BGP session busy: closed without its Cease");
            }
            // Dropped: a driver that missed its command ends when the channel closes.
            drop(session.commands);
            tasks.push((name, session.task));
        }
        let deadline = tokio::time::Instant::now() + STOP_GRACE;
        for (name, task) in tasks {
            if tokio::time::timeout_at(deadline, task).await.is_err() {
                tracing::warn!(peer = %name, "BGP session did not stop in time");
            }
        }
    }
}

/// Starts the session's driver, and a task that follows what it reports.
fn start(
    name: &str,
    spec: SessionSpec,
    metrics: BgpMetrics,
    reports: mpsc::UnboundedSender<Report>,
    published: Arc<watch::Sender<BgpSessions>>,
) -> Running {
    let (commands, command_rx) = mpsc::channel(16);
    let (event_tx, mut events) = mpsc::channel(64);
    let (counters_tx, mut counters) = watch::channel(Counters::default());
    let peer = spec.peer.address;
    let seed = seed(name);
    let driver = tokio::spawn(driver::run(
        spec.peer.clone(),
        Session::new(spec.config.clone(), seed),
        Export::default(),
        false,
        command_rx,
        event_tx,
        counters_tx,
    ));
    let wanted = Arc::new(AtomicUsize::new(0));
    let removed = Arc::new(AtomicBool::new(false));
    let retired = Arc::new(AtomicBool::new(false));
    let peer_asn = match spec.config.peer_as {
        PeerAs::Is(asn) => asn,
        PeerAs::Internal => spec.config.local_as,
        PeerAs::External => 0,
    };
    let mut view = view::View::new(name, peer, spec.config.local_as, peer_asn);
    published.send_modify(|sessions| {
        // A session started again keeps saying why the last one ended.
        if let Some(before) = sessions.get(name) {
            view.session.last_error = before.last_error.clone();
        }
        sessions.insert(name.to_string(), view.session.clone());
    });
    let name = name.to_string();
    let task = {
        let (wanted, removed, retired) = (wanted.clone(), removed.clone(), retired.clone());
        tokio::spawn(async move {
            metrics.session_up(peer, false);
            let report = |problem: Option<String>| {
                let _ = reports.send(Report {
                    peer: name.clone(),
                    problem,
                });
            };
            let mut counted = Counters::default();
            let mut counters_open = true;
            loop {
                let event = tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => event,
                        None => break,
                    },
                    changed = counters.changed(), if counters_open => {
                        counters_open = changed.is_ok();
                        if counters_open {
                            let now = *counters.borrow_and_update();
                            metrics.exchanged(peer, &counted, &now);
                            counted = now;
                        }
                        continue;
                    }
                };
                if view.on_event(&event) {
                    // Checked under the channel's lock: a session started again for this
                    // peer inserts its own view after this one was retired.
                    published.send_if_modified(|sessions| {
                        if retired.load(Ordering::Relaxed) {
                            return false;
                        }
                        sessions.insert(name.clone(), view.session.clone());
                        true
                    });
                }
                match event {
                    Event::Established(n) => {
                        tracing::info!(peer = %name, address = %peer, asn = n.peer_as, hold_time = n.hold_time, "BGP session established");
                        metrics.session_up(peer, true);
                        report(None);
                    }
                    Event::Down(why) => {
                        let why = why.describe();
                        tracing::warn!(peer = %name, address = %peer, %why, "BGP session down");
                        metrics.session_up(peer, false);
                        metrics.prefixes(peer, 0, wanted.load(Ordering::Relaxed));
                        report(Some(format!("the session with {peer} went down: {why}")));
                    }
                    Event::ConnectFailed(why) => {
                        tracing::debug!(peer = %name, address = %peer, %why, "connecting failed");
                        let hint = if why == "no answer" {
                            " (the peer is down or filters us, or the TCP MD5 password differs: the peer then drops our connection without a word)"
                        } else {
                            ""
                        };
                        report(Some(format!("cannot connect to {peer}: {why}{hint}")));
                    }
                    Event::Sent { advertised, .. } => {
                        metrics.prefixes(peer, advertised, wanted.load(Ordering::Relaxed));
                    }
                    Event::EndOfRibSent(after) => {
                        tracing::debug!(peer = %name, ?after, "routes and End-of-RIB written");
                    }
                    Event::Update(update) => {
                        for problem in &update.problems {
                            tracing::warn!(peer = %name, attribute = problem.type_code, handling = %problem.handling, "the peer sent a malformed attribute");
                        }
                    }
                }
            }
            // The last messages (the withdrawals and the Cease) are counted; a peer removed
            // for good then has its series removed. (No session_up written otherwise: a
            // session started again for the same peer may be up already.)
            let last = *counters.borrow();
            if removed.load(Ordering::Relaxed) {
                metrics.forget(peer);
            } else {
                metrics.exchanged(peer, &counted, &last);
            }
            match driver.await {
                Ok(Err(error)) => {
                    tracing::error!(peer = %name, %error, "BGP session could not run");
                    report(Some(format!("the session cannot run: {error}")));
                }
                Err(error) => tracing::error!(peer = %name, %error, "BGP session task failed"),
                Ok(Ok(())) => {}
            }
        })
    };
    Running {
        spec,
        commands,
        routes: Routes::default(),
        paths: Vec::new(),
        wanted,
        removed,
        retired,
        task,
    }
}

/// One attribute set per distinct route, shared by the prefixes that have it.
fn distinct_paths(
    routes: &BTreeMap<IpNet, Route>,
    path_of: impl Fn(&Route) -> Path,
) -> Vec<(Route, Arc<Path>)> {
    let mut paths: Vec<(Route, Arc<Path>)> = Vec::new();
    for route in routes.values() {
        if !paths.iter().any(|(r, _)| r == route) {
            paths.push((route.clone(), Arc::new(path_of(route))));
        }
    }
    paths
}

/// A session's table: each prefix with its route's attribute set.
fn table(routes: &BTreeMap<IpNet, Route>, paths: &[(Route, Arc<Path>)]) -> Vec<(IpNet, Arc<Path>)> {
    routes
        .iter()
        .filter_map(|(prefix, route)| {
            let (_, path) = paths.iter().find(|(r, _)| r == route)?;
            Some((*prefix, path.clone()))
        })
        .collect()
}

/// The table with GRACEFUL_SHUTDOWN added to each path (each distinct path marked once).
fn marked_for_shutdown(table: &[(IpNet, Arc<Path>)]) -> Vec<(IpNet, Arc<Path>)> {
    let mut marked: Vec<(Arc<Path>, Arc<Path>)> = Vec::new();
    table
        .iter()
        .map(|(prefix, path)| {
            let shut = match marked.iter().find(|(was, _)| Arc::ptr_eq(was, path)) {
                Some((_, shut)) => shut.clone(),
                None => {
                    let mut shut = (**path).clone();
                    if !shut.attributes.communities.contains(&GRACEFUL_SHUTDOWN) {
                        shut.attributes.communities.push(GRACEFUL_SHUTDOWN);
                    }
                    let shut = Arc::new(shut);
                    marked.push((path.clone(), shut.clone()));
                    shut
                }
            };
            (*prefix, shut)
        })
        .collect()
}

/// Jitter that differs between sessions and runs.
fn seed(name: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(name.as_bytes());
    hasher.finish()
}

impl BfdLink {
    /// The BFD sessions under the sessions `wanted`, for the peers with a profile.
    fn apply(&mut self, bgp: &Bgp, wanted: &BTreeMap<&String, SessionSpec>) -> std::io::Result<()> {
        let mut specs: BTreeMap<bfd::Key, bfd::Spec> = BTreeMap::new();
        let mut peers: BTreeMap<bfd::Key, BTreeSet<String>> = BTreeMap::new();
        for (name, session) in wanted {
            let (Some(peer), Some(profile)) = (bgp.peers.get(*name), bgp.bfd_profiles.get(*name))
            else {
                continue;
            };
            let spec = peer::bfd_spec(peer, session, profile);
            peers
                .entry(spec.key.clone())
                .or_default()
                .insert((*name).clone());
            // Two BGPPeers to one address share its BFD session: the first's profile.
            specs.entry(spec.key.clone()).or_insert(spec);
        }
        self.peers_published.send_replace(peers.clone());
        self.peers = peers;
        if self.driver.is_none() {
            if specs.is_empty() {
                return Ok(());
            }
            let (events_tx, events) = mpsc::unbounded_channel();
            let driver = Bfd::start(events_tx)?;
            // Metrics follow the driver's status (at each change, and each second).
            let mut status = driver.status();
            let metrics = self.metrics.clone();
            let published = self.published.clone();
            let peers = self.peers_published.subscribe();
            tokio::spawn(async move {
                let mut before = bfd::Status::default();
                while status.changed().await.is_ok() {
                    let now = status.borrow_and_update().clone();
                    metrics.update(&before, &now);
                    published.send_replace(view::bfd_sessions(&now, &peers.borrow()));
                    // What the driver cannot do (a port taken, an address missing) is said
                    // once each time it changes.
                    if now.errors != before.errors && !now.errors.is_empty() {
                        tracing::error!(errors = ?now.errors, "BFD cannot run every session");
                    }
                    before = now;
                }
            });
            self.driver = Some((driver, events));
        }
        let specs: Vec<bfd::Spec> = specs.into_values().collect();
        if let Some((driver, _)) = &self.driver
            && specs != self.specs
        {
            driver.set(specs.clone());
            self.specs = specs;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolb_bgp::packet::Attributes;

    #[test]
    fn a_table_is_marked_for_shutdown_once_per_path() {
        let path = |communities: Vec<u32>| {
            Arc::new(Path {
                attributes: Attributes {
                    communities,
                    ..Attributes::default()
                },
                next_hop: None,
            })
        };
        let (plain, tagged) = (path(vec![]), path(vec![GRACEFUL_SHUTDOWN]));
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let table = vec![
            (net("203.0.113.1/32"), plain.clone()),
            (net("203.0.113.2/32"), plain.clone()),
            (net("203.0.113.3/32"), tagged),
        ];
        let marked = marked_for_shutdown(&table);
        assert_eq!(marked.len(), 3);
        for (_, path) in &marked {
            assert_eq!(path.attributes.communities, [GRACEFUL_SHUTDOWN]);
        }
        // Prefixes that shared a path still do (one attribute set in the UPDATE).
        assert!(Arc::ptr_eq(&marked[0].1, &marked[1].1));
        assert!(
            plain.attributes.communities.is_empty(),
            "the original is untouched"
        );
    }

    /// Each distinct route gets one attribute set, and the table gives every prefix its
    /// route's: prefixes with equal routes share it.
    #[test]
    fn a_table_shares_one_path_per_distinct_route() {
        let net = |s: &str| s.parse::<IpNet>().unwrap();
        let tagged = Route {
            communities: [100].into(),
            ..Route::default()
        };
        let routes = BTreeMap::from([
            (net("203.0.113.1/32"), Route::default()),
            (net("203.0.113.2/32"), tagged.clone()),
            (net("203.0.113.3/32"), Route::default()),
        ]);
        let paths = distinct_paths(&routes, |route| Path {
            attributes: Attributes {
                communities: route.communities.iter().copied().collect(),
                ..Attributes::default()
            },
            next_hop: None,
        });
        assert_eq!(paths.len(), 2);
        let table = table(&routes, &paths);
        let prefixes: Vec<IpNet> = table.iter().map(|(p, _)| *p).collect();
        assert_eq!(prefixes, routes.keys().copied().collect::<Vec<_>>());
        assert!(Arc::ptr_eq(&table[0].1, &table[2].1));
        assert!(!Arc::ptr_eq(&table[0].1, &table[1].1));
        assert_eq!(table[1].1.attributes.communities, [100]);
        assert!(table[0].1.attributes.communities.is_empty());
    }
}
