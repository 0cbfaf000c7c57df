//! BGP mode's shell: one task per BGPPeer session (the `bgp` crate's driver), started,
//! restarted and stopped as the plan's peers change, and handed each peer's routes in the
//! pass that changed them, with no debounce. A change to one peer touches only its session:
//! the others keep their uptime.
pub mod peer;

use crate::metrics::BgpMetrics;
use crate::plan::bgp::{Bgp, Route};
use ferrolb_bgp::driver::{self, Command, Event};
use ferrolb_bgp::export::{Export, Path};
use ferrolb_bgp::packet::subcode;
use ferrolb_bgp::session::Session;
use ipnet::IpNet;
use peer::SessionSpec;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long a stopping session may take to send its Cease.
const STOP_GRACE: Duration = Duration::from_secs(2);

pub struct Sessions {
    running: BTreeMap<String, Running>,
    metrics: BgpMetrics,
}

struct Running {
    spec: SessionSpec,
    commands: mpsc::Sender<Command>,
    /// The routes last handed to the session.
    routes: BTreeMap<IpNet, Route>,
    /// How many prefixes the peer should hold (for the pending-prefixes metric).
    wanted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Sessions {
    pub fn new(metrics: BgpMetrics) -> Sessions {
        Sessions {
            running: BTreeMap::new(),
            metrics,
        }
    }

    /// Carries out the BGP half of the plan. Returns what cannot be done, or is done
    /// without some field, to be reported.
    pub fn apply(&mut self, bgp: &Bgp, router_id: Ipv4Addr) -> Vec<String> {
        let mut unsupported = Vec::new();
        let mut wanted: BTreeMap<&String, SessionSpec> = BTreeMap::new();
        for (name, peer) in &bgp.peers {
            match peer::session(peer, router_id) {
                Ok(spec) => {
                    unsupported.extend(peer::not_honoured(peer));
                    wanted.insert(name, spec);
                }
                Err(why) => unsupported.push(why.to_string()),
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
                if !wanted.contains_key(&name) {
                    self.metrics.forget(running.spec.peer.address.ip());
                }
            }
        }
        for (name, spec) in wanted {
            let running = self
                .running
                .entry(name.clone())
                .or_insert_with(|| start(name, spec, self.metrics.clone()));
            let routes = bgp.routes.get(name).cloned().unwrap_or_default();
            if routes != running.routes {
                let Some(peer) = bgp.peers.get(name) else {
                    continue;
                };
                // One attribute set per distinct route, shared by its prefixes.
                let mut paths: Vec<(&Route, Arc<Path>)> = Vec::new();
                let mut table = Vec::with_capacity(routes.len());
                for (prefix, route) in &routes {
                    let path = match paths.iter().find(|(r, _)| *r == route) {
                        Some((_, path)) => path.clone(),
                        None => {
                            let path = Arc::new(peer::path(peer, route));
                            paths.push((route, path.clone()));
                            path
                        }
                    };
                    table.push((*prefix, path));
                }
                running.wanted.store(routes.len(), Ordering::Relaxed);
                match running.commands.try_send(Command::Replace(table)) {
                    Ok(()) => running.routes = routes,
                    // Full: the session is busy; the next pass hands it the routes again.
                    Err(error) => {
                        tracing::warn!(peer = %name, %error, "BGP routes not handed over yet")
                    }
                }
            }
        }
        unsupported
    }

    /// Whether a pass must run again soon: some session has not taken its routes yet.
    pub fn behind(&self, bgp: &Bgp) -> bool {
        self.running.iter().any(|(name, running)| {
            bgp.routes
                .get(name)
                .map_or(!running.routes.is_empty(), |r| *r != running.routes)
        })
    }

    /// Whether any session runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Ends every session as the speaker stops: with graceful restart, by closing the
    /// connection, so the router keeps the routes until the speaker is back; otherwise by
    /// withdrawing every route and sending a Cease (administrative shutdown), so traffic
    /// leaves before the process does. All within one `STOP_GRACE`.
    pub async fn stop_all(&mut self, message: &str) {
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
fn start(name: &str, spec: SessionSpec, metrics: BgpMetrics) -> Running {
    let (commands, command_rx) = mpsc::channel(16);
    let (event_tx, mut events) = mpsc::channel(64);
    let peer_ip = spec.peer.address.ip();
    let seed = seed(name);
    let driver = tokio::spawn(driver::run(
        spec.peer.clone(),
        Session::new(spec.config.clone(), seed),
        Export::default(),
        false,
        command_rx,
        event_tx,
    ));
    let wanted = Arc::new(AtomicUsize::new(0));
    let name = name.to_string();
    let task = {
        let wanted = wanted.clone();
        tokio::spawn(async move {
            metrics.session_up(peer_ip, false);
            while let Some(event) = events.recv().await {
                match event {
                    Event::Established(n) => {
                        tracing::info!(peer = %name, address = %peer_ip, asn = n.peer_as, hold_time = n.hold_time, "BGP session established");
                        metrics.session_up(peer_ip, true);
                    }
                    Event::Down(why) => {
                        tracing::warn!(peer = %name, address = %peer_ip, why = %why.describe(), "BGP session down");
                        metrics.session_up(peer_ip, false);
                        metrics.prefixes(peer_ip, 0, wanted.load(Ordering::Relaxed));
                    }
                    Event::Sent {
                        messages,
                        advertised,
                        ..
                    } => {
                        metrics.sent(peer_ip, messages);
                        metrics.prefixes(peer_ip, advertised, wanted.load(Ordering::Relaxed));
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
            // (No metric written here: a session started again for the same peer may be up
            // already. A peer removed for good has its series removed.)
            match driver.await {
                Ok(Err(error)) => {
                    tracing::error!(peer = %name, %error, "BGP session could not run")
                }
                Err(error) => tracing::error!(peer = %name, %error, "BGP session task failed"),
                Ok(Ok(())) => {}
            }
        })
    };
    Running {
        spec,
        commands,
        routes: BTreeMap::new(),
        wanted,
        task,
    }
}

/// Jitter that differs between sessions and runs.
fn seed(name: &str) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write(name.as_bytes());
    hasher.finish()
}
