//! The I/O shell of layer 2: one task per interface in use, reading its ARP and ICMPv6
//! sockets into a `ferrolb_l2::responder::Responder` (which decides what to answer, announce
//! and report), sending what it puts out, and counting it.
use super::interfaces::{Link, Links};
use crate::admin::{self, Announced};
use crate::conflicts::Conflict;
use crate::metrics::L2Metrics;
use crate::plan::Layer2;
use ferrolb_l2::packet::{ETHERTYPE_ARP, Mac};
use ferrolb_l2::responder::{Input, Output, Owned, Purpose, Responder};
use ferrolb_l2::socket::{Icmp6Socket, PacketSocket};
use ferrolb_proto::v1;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::Instrument;

struct Task {
    link: Link,
    owned: watch::Sender<Owned>,
    handle: JoinHandle<()>,
}

impl Drop for Task {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub struct Announcer {
    metrics: L2Metrics,
    conflicts: mpsc::UnboundedSender<Conflict>,
    /// Announce every owned IP again this often (off when `None`).
    refresh: Option<Duration>,
    tasks: BTreeMap<String, Task>,
    generation: u64,
    /// What is announced where, for the admin API; the tasks add when each IP was last
    /// announced unasked.
    published: Arc<watch::Sender<Announced>>,
}

impl Announcer {
    pub fn new(
        metrics: L2Metrics,
        refresh: Option<Duration>,
    ) -> (Announcer, mpsc::UnboundedReceiver<Conflict>) {
        let (conflicts, rx) = mpsc::unbounded_channel();
        let announcer = Announcer {
            metrics,
            conflicts,
            refresh,
            tasks: BTreeMap::new(),
            generation: 0,
            published: Arc::new(watch::Sender::new(Announced::new())),
        };
        (announcer, rx)
    }

    /// What is announced where (the admin API's snapshot).
    pub fn published(&self) -> watch::Receiver<Announced> {
        self.published.subscribe()
    }

    /// Makes the interface tasks announce exactly `plan`: new IPs are announced at once,
    /// IPs no longer in it are no longer answered.
    pub fn set(&mut self, plan: &Layer2, links: &Links) {
        // Every MAC address of this node: our own announcements on one interface, heard on
        // another, are no conflict.
        let local_macs: BTreeSet<Mac> = links.values().filter_map(|l| l.mac).collect();
        let by_name: BTreeMap<&str, &Link> = links.values().map(|l| (l.name.as_str(), l)).collect();
        // Published before the tasks hear of it: their first gratuitous ARPs find their
        // entries.
        self.publish(plan, &by_name);
        self.tasks.retain(|name, task| {
            plan.contains_key(name) && by_name.get(name.as_str()) == Some(&&task.link)
        });
        for (name, ips) in plan {
            let Some(link) = by_name.get(name.as_str()) else {
                continue;
            };
            let owned = Owned {
                ips: ips.keys().copied().collect(),
                generation: self.generation,
                local_macs: local_macs.clone(),
            };
            match self.tasks.get(name) {
                Some(task) => {
                    task.owned.send_if_modified(|current| {
                        let changed = *current != owned;
                        *current = owned;
                        changed
                    });
                }
                None => {
                    let (tx, rx) = watch::channel(owned);
                    // Every log line of the task names its interface.
                    let span = tracing::info_span!("interface", interface = %link.name);
                    let handle = tokio::spawn(
                        serve(
                            (*link).clone(),
                            rx,
                            self.metrics.clone(),
                            self.conflicts.clone(),
                            self.refresh,
                            self.published.clone(),
                        )
                        .instrument(span),
                    );
                    self.tasks.insert(
                        name.clone(),
                        Task {
                            link: (*link).clone(),
                            owned: tx,
                            handle,
                        },
                    );
                }
            }
        }
    }

    /// The announcements of `plan` on the interfaces that can announce (they exist, with a
    /// MAC): those announced before keep their times.
    fn publish(&self, plan: &Layer2, links: &BTreeMap<&str, &Link>) {
        let served = |interface: &str| links.get(interface).is_some_and(|l| l.mac.is_some());
        self.published.send_if_modified(|published| {
            let mut now = Announced::new();
            for (interface, ips) in plan.iter().filter(|(i, _)| served(i)) {
                for (ip, service) in ips {
                    let key = (interface.clone(), *ip);
                    let service = service.to_string();
                    let entry = match published.remove(&key) {
                        Some(before) if before.service == service => before,
                        _ => v1::Announcement {
                            ip: ip.to_string(),
                            service,
                            interface: interface.clone(),
                            since_unix_ms: admin::unix_ms_now(),
                            last_announced_unix_ms: 0,
                        },
                    };
                    now.insert(key, entry);
                }
            }
            let changed = *published != now;
            *published = now;
            changed
        });
    }

    /// Announces every owned IP once more (a member joined that may have claimed them).
    pub fn announce_again(&mut self) {
        self.generation += 1;
        for task in self.tasks.values() {
            task.owned.send_modify(|o| o.generation += 1);
        }
    }

    /// Stops answering for everything.
    pub fn clear(&mut self) {
        self.tasks.clear();
        self.published.send_replace(Announced::new());
    }
}

/// Serves one interface until aborted (or its owned set's sender is gone).
async fn serve(
    link: Link,
    mut owned_rx: watch::Receiver<Owned>,
    metrics: L2Metrics,
    conflicts: mpsc::UnboundedSender<Conflict>,
    refresh: Option<Duration>,
    published: Arc<watch::Sender<Announced>>,
) {
    let Some(mac) = link.mac else { return };
    // Without its ARP socket the interface cannot announce: retry until it opens (the task
    // lives as long as the interface is in the plan).
    let mut backoff = Duration::from_millis(100);
    let arp = loop {
        match PacketSocket::open(link.index, ETHERTYPE_ARP) {
            Ok(s) => break s,
            Err(error) => {
                tracing::error!(%error, "cannot open an ARP socket (the speaker needs CAP_NET_RAW); retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    let ndp = match Icmp6Socket::open(&link.name, link.index) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(%error, "cannot open an ICMPv6 socket: IPv6 is not announced here");
            None
        }
    };
    let mut shell = Shell {
        interface: link.name.clone(),
        responder: Responder::new(mac, refresh, Instant::now().into_std()),
        arp,
        ndp,
        metrics,
        conflicts,
        groups: BTreeSet::new(),
        published,
        announced: BTreeMap::new(),
        publish_at: None,
    };
    let mut arp_buf = vec![0u8; 1600];
    let mut ndp_buf = vec![0u8; 1600];
    let owned = owned_rx.borrow_and_update().clone();
    shell.set_owned(owned).await;
    loop {
        let wake = shell.responder.next_deadline().map(Instant::from_std);
        tokio::select! {
            changed = owned_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let owned = owned_rx.borrow_and_update().clone();
                shell.set_owned(owned).await;
            }
            received = shell.arp.recv(&mut arp_buf) => match received {
                Ok(len) => shell.handle(Input::Arp(&arp_buf[..len])).await,
                Err(error) => {
                    tracing::warn!(%error, "reading ARP failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            received = recv_ndp(shell.ndp.as_ref(), &mut ndp_buf) => match received {
                Ok((len, from, on_link)) => {
                    shell.handle(Input::Icmp6 { body: &ndp_buf[..len], from, on_link }).await;
                }
                Err(error) => {
                    tracing::warn!(%error, "reading ICMPv6 failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = sleep_until(wake) => shell.handle(Input::Tick).await,
            () = sleep_until(shell.publish_at) => shell.publish_announced(),
        }
    }
}

async fn recv_ndp(
    socket: Option<&Icmp6Socket>,
    buf: &mut [u8],
) -> std::io::Result<(usize, Option<Ipv6Addr>, bool)> {
    match socket {
        Some(s) => s.recv_from(buf).await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// How often the times of gratuitous ARPs and unsolicited NAs reach the admin API.
const PUBLISH_ANNOUNCED_EVERY: Duration = Duration::from_secs(1);

/// One interface's sockets around its responder.
struct Shell {
    interface: String,
    responder: Responder,
    arp: PacketSocket,
    ndp: Option<Icmp6Socket>,
    metrics: L2Metrics,
    conflicts: mpsc::UnboundedSender<Conflict>,
    /// Solicited-node groups joined for the owned IPv6 addresses.
    groups: BTreeSet<Ipv6Addr>,
    published: Arc<watch::Sender<Announced>>,
    /// When each IP was last announced unasked, not yet published: at a takeover of
    /// thousands of IPs, the admin API's snapshot changes once a second, not per packet.
    announced: BTreeMap<IpAddr, u64>,
    publish_at: Option<Instant>,
}

impl Shell {
    async fn set_owned(&mut self, owned: Owned) {
        let outputs = self.responder.set_owned(Instant::now().into_std(), owned);
        self.update_groups();
        self.act(outputs).await;
    }

    async fn handle(&mut self, input: Input<'_>) {
        let outputs = self.responder.handle(Instant::now().into_std(), input);
        self.act(outputs).await;
    }

    async fn act(&mut self, outputs: Vec<Output>) {
        for output in outputs {
            match output {
                Output::Frame { frame, ip, purpose } => {
                    let sent = self.arp.send(&frame).await;
                    self.count(sent, ip, purpose);
                }
                Output::Icmp6 {
                    body,
                    source,
                    destination,
                    ip,
                    purpose,
                } => {
                    // Without an ICMPv6 socket, IPv6 is not announced here (logged at open).
                    let Some(ndp) = &self.ndp else { continue };
                    let sent = ndp.send_from(&body, source, destination).await;
                    self.count(sent, ip, purpose);
                }
                Output::Asked(ip) => self.metrics.request(ip),
                Output::Announcing(ip) => tracing::info!(%ip, "announcing"),
                Output::Claimed(ip) => self.metrics.conflict(ip),
                Output::Conflict { ip, mac } => {
                    let _ = self.conflicts.send(Conflict {
                        ip,
                        mac,
                        interface: self.interface.clone(),
                        service: None,
                    });
                }
            }
        }
    }

    /// Publishes when the IPs were last announced unasked, all at once.
    fn publish_announced(&mut self) {
        self.publish_at = None;
        let announced = std::mem::take(&mut self.announced);
        self.published.send_if_modified(|published| {
            let mut changed = false;
            for (ip, at) in announced {
                let key = (self.interface.clone(), ip);
                if let Some(announcement) = published.get_mut(&key) {
                    announcement.last_announced_unix_ms = at;
                    changed = true;
                }
            }
            changed
        });
    }

    fn count(&mut self, sent: std::io::Result<usize>, ip: IpAddr, purpose: Purpose) {
        match (sent, purpose) {
            (Ok(_), Purpose::Announcement) => {
                self.metrics.gratuitous(ip);
                self.announced.insert(ip, admin::unix_ms_now());
                self.publish_at
                    .get_or_insert_with(|| Instant::now() + PUBLISH_ANNOUNCED_EVERY);
            }
            (Ok(_), Purpose::Reply) => self.metrics.response(ip),
            (Err(error), purpose) => {
                tracing::warn!(%ip, ?purpose, %error, "sending failed");
            }
        }
    }

    /// Joins the solicited-node group of every owned IPv6 address, and leaves the others.
    fn update_groups(&mut self) {
        let Some(ndp) = &self.ndp else { return };
        let wanted = self.responder.groups();
        for group in self.groups.difference(&wanted) {
            if let Err(error) = ndp.leave(*group) {
                tracing::debug!(%group, %error, "leaving a multicast group failed");
            }
        }
        self.groups.retain(|g| wanted.contains(g));
        // Only groups actually joined are remembered, so a failed join is tried again on the
        // next update.
        for group in &wanted {
            if self.groups.contains(group) {
                continue;
            }
            match ndp.join(*group) {
                Ok(()) => {
                    self.groups.insert(*group);
                }
                Err(error) => {
                    tracing::warn!(%group, %error, "joining a multicast group failed")
                }
            }
        }
    }
}
