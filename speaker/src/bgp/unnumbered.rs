//! BGP unnumbered (BGPPeer `interface`): the peer is whoever sends router advertisements on
//! that interface, and its address is their source, a link-local one. As FRR does, the
//! speaker also advertises itself there (lifetime 0: no host takes it as a router), since FRR
//! learns its neighbour the same way before it connects. One task per interface.
use ferrolb_l2::packet::{ROUTER_ADVERTISEMENT, is_router_advertisement, router_advertisement};
use ferrolb_l2::socket::Icmp6Socket;
use std::collections::BTreeMap;
use std::net::{Ipv6Addr, SocketAddrV6};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Each watched interface's neighbour: its link-local address, scoped to the interface (the
/// port is not known here and left 0).
pub type Neighbours = BTreeMap<String, SocketAddrV6>;

/// Advertisements sent quickly after starting, so a peer learns us at once (FRR does 4).
const FAST_ADVERTISEMENTS: u32 = 4;
const FAST_EVERY: Duration = Duration::from_secs(1);
/// Then as often as FRR advertises on an unnumbered interface.
const ADVERTISE_EVERY: Duration = Duration::from_secs(10);
/// A neighbour stays the peer until it has been silent this long (three of FRR's
/// intervals): another sender on the link (a second router, radvd) does not take the session
/// over at each of its advertisements.
const NEIGHBOUR_SILENT: Duration = Duration::from_secs(35);

pub struct Unnumbered {
    tasks: BTreeMap<(String, u32), JoinHandle<()>>,
    found: watch::Sender<Neighbours>,
    /// Changes when a neighbour is found, changes or goes.
    pub changes: watch::Receiver<Neighbours>,
}

impl Default for Unnumbered {
    fn default() -> Self {
        let (found, changes) = watch::channel(Neighbours::new());
        Unnumbered {
            tasks: BTreeMap::new(),
            found,
            changes,
        }
    }
}

impl Unnumbered {
    /// Watches exactly these interfaces (name, index); an interface no longer named (or
    /// with a new index: it was created again) forgets its neighbour.
    pub fn watch(&mut self, interfaces: &[(String, u32)]) {
        // Also tasks that ended (the socket could not be opened): started again below.
        let stale: Vec<(String, u32)> = self
            .tasks
            .iter()
            .filter(|(k, task)| !interfaces.contains(k) || task.is_finished())
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(task) = self.tasks.remove(&key) {
                task.abort();
            }
            self.found.send_if_modified(|n| n.remove(&key.0).is_some());
        }
        for (name, index) in interfaces {
            let key = (name.clone(), *index);
            if !self.tasks.contains_key(&key) {
                let task = tokio::spawn(run(name.clone(), *index, self.found.clone()));
                self.tasks.insert(key, task);
            }
        }
    }

    pub fn neighbours(&self) -> Neighbours {
        self.changes.borrow().clone()
    }
}

impl Drop for Unnumbered {
    fn drop(&mut self) {
        for task in self.tasks.values() {
            task.abort();
        }
    }
}

async fn run(name: String, index: u32, found: watch::Sender<Neighbours>) {
    let socket = match Icmp6Socket::open_for(&name, index, &[ROUTER_ADVERTISEMENT]) {
        Ok(socket) => socket,
        Err(error) => {
            tracing::error!(interface = %name, %error, "BGP unnumbered: cannot listen for router advertisements");
            return;
        }
    };
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    let advertisement = router_advertisement();
    let mut sent = 0u32;
    let mut next = tokio::time::Instant::now();
    let mut buffer = [0u8; 1500];
    // The neighbour in use, and when it last advertised.
    let mut current: Option<(Ipv6Addr, tokio::time::Instant)> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep_until(next) => {
                // From the interface's link-local address: the kernel picks it for ff02::1.
                if let Err(error) = socket.send_from(&advertisement, Ipv6Addr::UNSPECIFIED, all_nodes).await {
                    tracing::debug!(interface = %name, %error, "sending a router advertisement failed");
                }
                sent = sent.saturating_add(1);
                next += if sent < FAST_ADVERTISEMENTS { FAST_EVERY } else { ADVERTISE_EVERY };
            }
            received = socket.recv_from(&mut buffer) => {
                let Ok((len, Some(from), on_link)) = received else {
                    continue;
                };
                // RFC 4861 6.1.2: only from a link-local source, with hop limit 255.
                if !on_link || !from.is_unicast_link_local() || !is_router_advertisement(&buffer[..len]) {
                    continue;
                }
                let now = tokio::time::Instant::now();
                match current {
                    Some((peer, _)) if peer == from => {
                        current = Some((from, now));
                        continue;
                    }
                    Some((_, heard)) if now.duration_since(heard) < NEIGHBOUR_SILENT => continue,
                    _ => current = Some((from, now)),
                }
                let neighbour = SocketAddrV6::new(from, 0, 0, index);
                found.send_if_modified(|n| {
                    let changed = n.get(&name) != Some(&neighbour);
                    if changed {
                        tracing::info!(interface = %name, peer = %from, "BGP unnumbered: found the peer");
                        n.insert(name.clone(), neighbour);
                    }
                    changed
                });
            }
        }
    }
}
