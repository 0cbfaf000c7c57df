//! The I/O shell of layer 2: one task per interface in use, answering ARP requests and
//! neighbor solicitations for the IPs this node owns there, announcing newly owned IPs at
//! once (gratuitous ARP in both forms, unsolicited NA with override) and again every 1.1 s
//! for 5 s as MetalLB does, and reporting other MACs that claim our IPs.
use super::interfaces::{Link, Links};
use super::packet::{
    Arp, ArpOp, BROADCAST, ETHERTYPE_ARP, Mac, Neighbor, neighbor_advertisement,
    solicited_node_group,
};
use super::socket::{Icmp6Socket, PacketSocket};
use crate::metrics::L2Metrics;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// MetalLB repeats its gratuitous announcements this often...
const REPEAT_EVERY: Duration = Duration::from_millis(1100);
/// ...for this long after taking an IP over.
const REPEAT_FOR: Duration = Duration::from_secs(5);

const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The IPs to announce, by interface name, each with the Service (`namespace/name`) it serves.
pub type Plan = BTreeMap<String, BTreeMap<IpAddr, String>>;

/// Another MAC address claims an IP we announce: split brain, or an address conflict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub ip: IpAddr,
    pub service: String,
    pub mac: Mac,
    pub interface: String,
}

/// What one interface task announces. `generation` moves when every IP should be announced
/// again (a member joined, which may have believed itself the owner).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Owned {
    ips: BTreeMap<IpAddr, String>,
    generation: u64,
}

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
    /// Every MAC address of this node: our own announcements on one interface, heard on
    /// another, are no conflict.
    local_macs: Arc<RwLock<BTreeSet<Mac>>>,
    conflicts: mpsc::UnboundedSender<Conflict>,
    /// Announce every owned IP again this often (off when `None`).
    refresh: Option<Duration>,
    tasks: BTreeMap<String, Task>,
    generation: u64,
}

impl Announcer {
    pub fn new(
        metrics: L2Metrics,
        refresh: Option<Duration>,
    ) -> (Announcer, mpsc::UnboundedReceiver<Conflict>) {
        let (conflicts, rx) = mpsc::unbounded_channel();
        let announcer = Announcer {
            metrics,
            local_macs: Arc::default(),
            conflicts,
            refresh,
            tasks: BTreeMap::new(),
            generation: 0,
        };
        (announcer, rx)
    }

    /// Makes the interface tasks announce exactly `plan`: new IPs are announced at once,
    /// IPs no longer in it are no longer answered.
    pub fn set(&mut self, plan: &Plan, links: &Links) {
        if let Ok(mut macs) = self.local_macs.write() {
            *macs = links.values().filter_map(|l| l.mac).collect();
        }
        let by_name: BTreeMap<&str, &Link> = links.values().map(|l| (l.name.as_str(), l)).collect();
        self.tasks.retain(|name, task| {
            plan.contains_key(name) && by_name.get(name.as_str()) == Some(&&task.link)
        });
        for (name, ips) in plan {
            let Some(link) = by_name.get(name.as_str()) else {
                continue;
            };
            let owned = Owned {
                ips: ips.clone(),
                generation: self.generation,
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
                    let handle = tokio::spawn(serve(
                        (*link).clone(),
                        rx,
                        Reporting {
                            metrics: self.metrics.clone(),
                            conflicts: self.conflicts.clone(),
                            local_macs: self.local_macs.clone(),
                        },
                        self.refresh,
                    ));
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
    }
}

/// Serves one interface until aborted.
/// What an interface task reports to, and what it needs to tell a conflict.
struct Reporting {
    metrics: L2Metrics,
    conflicts: mpsc::UnboundedSender<Conflict>,
    local_macs: Arc<RwLock<BTreeSet<Mac>>>,
}

/// Conflicts about an IP are reported for at most `QUIET_MACS` different MACs in this long,
/// each MAC at most once per `CLAIM_EVERY`: a host flooding claims with random MACs costs a
/// lookup per frame, not a report, and a speaker whose claim was a moment of convergence is
/// still told apart from one that goes on claiming.
const CONFLICT_QUIET: Duration = Duration::from_secs(10);
const QUIET_MACS: usize = 4;
const CLAIM_EVERY: Duration = Duration::from_secs(1);

async fn serve(
    link: Link,
    mut owned_rx: watch::Receiver<Owned>,
    reporting: Reporting,
    refresh: Option<Duration>,
) {
    let Some(mac) = link.mac else { return };
    // Without its ARP socket the interface cannot announce: retry until it opens (the task
    // lives as long as the interface is in the plan).
    let mut backoff = Duration::from_millis(100);
    let arp = loop {
        match PacketSocket::open(link.index, ETHERTYPE_ARP) {
            Ok(s) => break s,
            Err(error) => {
                tracing::error!(interface = %link.name, %error, "cannot open an ARP socket (the speaker needs CAP_NET_RAW); retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    };
    let ndp = match Icmp6Socket::open(&link.name, link.index) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(interface = %link.name, %error, "cannot open an ICMPv6 socket: IPv6 is not announced here");
            None
        }
    };
    let mut iface = Interface {
        link,
        mac,
        arp,
        ndp,
        metrics: reporting.metrics,
        conflicts: reporting.conflicts,
        local_macs: reporting.local_macs,
        reported: BTreeMap::new(),
        owned: Owned::default(),
        groups: BTreeSet::new(),
        repeats: BTreeMap::new(),
    };
    let mut next_refresh = refresh.map(|r| Instant::now() + r);
    let mut arp_buf = vec![0u8; 1600];
    let mut ndp_buf = vec![0u8; 1600];
    let owned = owned_rx.borrow_and_update().clone();
    iface.update(owned).await;
    loop {
        let next_repeat = iface.repeats.values().map(|r| r.0).min();
        let wake = match (next_repeat, next_refresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        tokio::select! {
            changed = owned_rx.changed() => {
                if changed.is_err() {
                    return;
                }
                let owned = owned_rx.borrow_and_update().clone();
                iface.update(owned).await;
            }
            received = iface.arp.recv(&mut arp_buf) => match received {
                Ok(len) => iface.on_arp(&arp_buf[..len]).await,
                Err(error) => {
                    tracing::warn!(interface = %iface.link.name, %error, "reading ARP failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            received = recv_ndp(iface.ndp.as_ref(), &mut ndp_buf) => match received {
                // Neighbor discovery from beyond the link (hop limit under 255) is ignored.
                Ok((len, from, true)) => iface.on_icmp6(&ndp_buf[..len], from).await,
                Ok((_, _, false)) => {}
                Err(error) => {
                    tracing::warn!(interface = %iface.link.name, %error, "reading ICMPv6 failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            () = sleep_until(wake) => {
                let now = Instant::now();
                if next_refresh.is_some_and(|at| now >= at) {
                    next_refresh = refresh.map(|r| now + r);
                    let ips: Vec<IpAddr> = iface.owned.ips.keys().copied().collect();
                    for ip in ips {
                        iface.announce(ip).await;
                    }
                }
                iface.repeat_due(now).await;
            }
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

struct Interface {
    link: Link,
    mac: Mac,
    arp: PacketSocket,
    ndp: Option<Icmp6Socket>,
    metrics: L2Metrics,
    conflicts: mpsc::UnboundedSender<Conflict>,
    local_macs: Arc<RwLock<BTreeSet<Mac>>>,
    /// When conflicts about each IP were first reported in this quiet period, and which MACs
    /// were reported when.
    reported: BTreeMap<IpAddr, (Instant, Vec<(Mac, Instant)>)>,
    owned: Owned,
    /// Solicited-node groups joined for the owned IPv6 addresses.
    groups: BTreeSet<Ipv6Addr>,
    /// Announcements to repeat: (next, until).
    repeats: BTreeMap<IpAddr, (Instant, Instant)>,
}

impl Interface {
    async fn update(&mut self, owned: Owned) {
        let again = owned.generation != self.owned.generation;
        let new: Vec<IpAddr> = owned
            .ips
            .keys()
            .filter(|ip| again || !self.owned.ips.contains_key(*ip))
            .copied()
            .collect();
        self.repeats.retain(|ip, _| owned.ips.contains_key(ip));
        self.owned = owned;
        self.update_groups();
        let now = Instant::now();
        for ip in new {
            tracing::info!(interface = %self.link.name, %ip, "announcing");
            self.announce(ip).await;
            self.repeats
                .insert(ip, (now + REPEAT_EVERY, now + REPEAT_FOR));
        }
    }

    /// Joins the solicited-node group of every owned IPv6 address, and leaves the others.
    fn update_groups(&mut self) {
        let Some(ndp) = &self.ndp else { return };
        let wanted: BTreeSet<Ipv6Addr> = self
            .owned
            .ips
            .keys()
            .filter_map(|ip| match ip {
                IpAddr::V6(v6) => Some(solicited_node_group(*v6)),
                IpAddr::V4(_) => None,
            })
            .collect();
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
                    tracing::warn!(interface = %self.link.name, %group, %error, "joining a multicast group failed")
                }
            }
        }
    }

    async fn repeat_due(&mut self, now: Instant) {
        let due: Vec<IpAddr> = self
            .repeats
            .iter()
            .filter(|(_, (next, _))| now >= *next)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            self.announce(ip).await;
            if let Some((next, until)) = self.repeats.get_mut(&ip) {
                *next = now + REPEAT_EVERY;
                if *next > *until {
                    self.repeats.remove(&ip);
                }
            }
        }
    }

    /// Tells the segment that `ip` is here: gratuitous ARP (request and reply forms) or an
    /// unsolicited neighbor advertisement with the override flag.
    async fn announce(&self, ip: IpAddr) {
        match ip {
            IpAddr::V4(v4) => {
                for op in [ArpOp::Request, ArpOp::Reply] {
                    let frame = Arp::gratuitous(op, self.mac, v4).frame(BROADCAST);
                    match self.arp.send(&frame).await {
                        Ok(_) => self.metrics.gratuitous(ip),
                        Err(error) => {
                            tracing::warn!(interface = %self.link.name, %ip, %error, "sending gratuitous ARP failed")
                        }
                    }
                }
            }
            IpAddr::V6(v6) => {
                let Some(ndp) = &self.ndp else { return };
                let body = neighbor_advertisement(v6, self.mac, false);
                match ndp.send_from(&body, v6, ALL_NODES).await {
                    Ok(_) => self.metrics.gratuitous(ip),
                    Err(error) => {
                        tracing::warn!(interface = %self.link.name, %ip, %error, "sending an unsolicited NA failed")
                    }
                }
            }
        }
    }

    async fn on_arp(&mut self, frame: &[u8]) {
        let Some(arp) = Arp::parse(frame) else { return };
        if arp.sender_mac == self.mac {
            return;
        }
        let sender = IpAddr::V4(arp.sender_ip);
        if let Some(service) = self.owned.ips.get(&sender).cloned() {
            self.conflict(sender, &service, arp.sender_mac);
            return;
        }
        let target = IpAddr::V4(arp.target_ip);
        if arp.op != ArpOp::Request || !self.owned.ips.contains_key(&target) {
            return;
        }
        self.metrics.request(target);
        let reply = arp.reply_to(self.mac).frame(arp.sender_mac);
        match self.arp.send(&reply).await {
            Ok(_) => self.metrics.response(target),
            Err(error) => {
                tracing::warn!(interface = %self.link.name, ip = %target, %error, "sending an ARP reply failed")
            }
        }
    }

    async fn on_icmp6(&mut self, body: &[u8], from: Option<Ipv6Addr>) {
        if let Some(na) = Neighbor::parse_advertisement(body) {
            let ip = IpAddr::V6(na.target);
            if let (Some(service), Some(mac)) = (self.owned.ips.get(&ip).cloned(), na.lladdr)
                && mac != self.mac
            {
                self.conflict(ip, &service, mac);
            }
            return;
        }
        let Some(ns) = Neighbor::parse_solicitation(body) else {
            return;
        };
        let ip = IpAddr::V6(ns.target);
        if !self.owned.ips.contains_key(&ip) {
            return;
        }
        self.metrics.request(ip);
        let Some(ndp) = &self.ndp else { return };
        // A solicitation from the unspecified address (duplicate address detection) is
        // answered to all nodes, unsolicited (RFC 4861 7.2.4).
        let (to, solicited) = match from {
            Some(from) if !from.is_unspecified() => (from, true),
            _ => (ALL_NODES, false),
        };
        match ndp
            .send_from(
                &neighbor_advertisement(ns.target, self.mac, solicited),
                ns.target,
                to,
            )
            .await
        {
            Ok(_) => self.metrics.response(ip),
            Err(error) => {
                tracing::warn!(interface = %self.link.name, %ip, %error, "sending an NA failed")
            }
        }
    }

    fn conflict(&mut self, ip: IpAddr, service: &str, mac: Mac) {
        if self.local_macs.read().is_ok_and(|m| m.contains(&mac)) {
            return;
        }
        self.metrics.conflict(ip);
        let now = Instant::now();
        self.reported
            .retain(|_, (since, _)| now.duration_since(*since) < CONFLICT_QUIET);
        let (_, macs) = self.reported.entry(ip).or_insert((now, Vec::new()));
        let full = macs.len() >= QUIET_MACS;
        match macs.iter_mut().find(|(known, _)| *known == mac) {
            Some((_, at)) if now.duration_since(*at) < CLAIM_EVERY => return,
            Some((_, at)) => *at = now,
            None if full => return,
            None => macs.push((mac, now)),
        }
        let _ = self.conflicts.send(Conflict {
            ip,
            service: service.to_string(),
            mac,
            interface: self.link.name.clone(),
        });
    }
}
