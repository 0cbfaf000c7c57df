//! One interface's ARP and NDP behaviour, without I/O: `handle(now, input)` returns what to
//! send and what to report, and `next_deadline` when to tick it next. The speaker's interface
//! task is the shell that reads the sockets, sends the outputs and counts them.
//!
//! What it does, as MetalLB does: answer ARP requests and neighbor solicitations for the IPs
//! owned here; announce a newly owned IP at once (gratuitous ARP in both forms, unsolicited
//! NA with override) and again every 1.1 s for 5 s; optionally announce every owned IP again
//! periodically; and report other MACs that claim an owned IP, a few per IP at a time.
use crate::packet::{
    Arp, ArpOp, BROADCAST, Mac, Neighbor, neighbor_advertisement, solicited_node_group,
};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// MetalLB repeats its gratuitous announcements this often...
pub const REPEAT_EVERY: Duration = Duration::from_millis(1100);
/// ...for this long after taking an IP over.
pub const REPEAT_FOR: Duration = Duration::from_secs(5);

/// Conflicts about an IP are reported for at most `QUIET_MACS` different MACs in this long,
/// each MAC at most once per `CLAIM_EVERY`: a host flooding claims with random MACs costs a
/// lookup per frame, not a report, and a speaker whose claim was a moment of convergence is
/// still told apart from one that goes on claiming.
pub const CONFLICT_QUIET: Duration = Duration::from_secs(10);
pub const QUIET_MACS: usize = 4;
pub const CLAIM_EVERY: Duration = Duration::from_secs(1);

pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// What this interface announces: the owned IPs, and the MACs of every interface of this node
/// (our own announcements heard on another interface are no conflict). A new `generation`
/// announces every IP again.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Owned {
    pub ips: BTreeSet<IpAddr>,
    pub generation: u64,
    pub local_macs: BTreeSet<Mac>,
}

#[derive(Clone, Copy, Debug)]
pub enum Input<'a> {
    /// An Ethernet frame read from the ARP socket.
    Arp(&'a [u8]),
    /// An ICMPv6 body read from the raw socket, with its source address and whether it came
    /// with hop limit 255 (from this link; RFC 4861 requires it).
    Icmp6 {
        body: &'a [u8],
        from: Option<Ipv6Addr>,
        on_link: bool,
    },
    /// Time passed (`next_deadline` was reached, or the shell woke for another reason).
    Tick,
}

/// Why a packet is sent, for the shell's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    /// Telling the segment that an IP is here, unasked.
    Announcement,
    /// Answering a request or solicitation.
    Reply,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send this Ethernet frame on the ARP socket.
    Frame {
        frame: Vec<u8>,
        ip: IpAddr,
        purpose: Purpose,
    },
    /// Send this ICMPv6 body from `source` to `destination` on the raw ICMPv6 socket.
    Icmp6 {
        body: Vec<u8>,
        source: Ipv6Addr,
        destination: Ipv6Addr,
        ip: IpAddr,
        purpose: Purpose,
    },
    /// A request or solicitation for an owned IP arrived.
    Asked(IpAddr),
    /// A newly owned IP (or one announced again) is being announced.
    Announcing(IpAddr),
    /// Another MAC claimed an owned IP (every claiming packet).
    Claimed(IpAddr),
    /// Another MAC claims an owned IP: worth a report (a few per IP at a time).
    Conflict { ip: IpAddr, mac: Mac },
}

pub struct Responder {
    mac: Mac,
    refresh: Option<Duration>,
    owned: Owned,
    /// Announcements to repeat: (next, until).
    repeats: BTreeMap<IpAddr, (Instant, Instant)>,
    next_refresh: Option<Instant>,
    /// When conflicts about each IP were first reported in this quiet period, and which MACs
    /// were reported when.
    reported: BTreeMap<IpAddr, (Instant, Vec<(Mac, Instant)>)>,
}

impl Responder {
    /// A responder for an interface with address `mac`, announcing every owned IP again each
    /// `refresh` if set.
    pub fn new(mac: Mac, refresh: Option<Duration>, now: Instant) -> Responder {
        Responder {
            mac,
            refresh,
            owned: Owned::default(),
            repeats: BTreeMap::new(),
            next_refresh: refresh.map(|r| now + r),
            reported: BTreeMap::new(),
        }
    }

    pub fn owned(&self) -> &Owned {
        &self.owned
    }

    /// The solicited-node groups the interface must be in for the owned IPv6 addresses.
    pub fn groups(&self) -> BTreeSet<Ipv6Addr> {
        self.owned
            .ips
            .iter()
            .filter_map(|ip| match ip {
                IpAddr::V6(v6) => Some(solicited_node_group(*v6)),
                IpAddr::V4(_) => None,
            })
            .collect()
    }

    /// When `handle(now, Input::Tick)` has something to do next.
    pub fn next_deadline(&self) -> Option<Instant> {
        let next_repeat = self.repeats.values().map(|r| r.0).min();
        match (next_repeat, self.next_refresh) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Announces exactly `owned` from now on: new IPs (all of them for a new generation) at
    /// once and repeated; IPs no longer owned are no longer answered.
    pub fn set_owned(&mut self, now: Instant, owned: Owned) -> Vec<Output> {
        let again = owned.generation != self.owned.generation;
        let new: Vec<IpAddr> = owned
            .ips
            .iter()
            .filter(|ip| again || !self.owned.ips.contains(*ip))
            .copied()
            .collect();
        self.repeats.retain(|ip, _| owned.ips.contains(ip));
        self.owned = owned;
        let mut out = Vec::new();
        for ip in new {
            out.push(Output::Announcing(ip));
            self.announce(ip, &mut out);
            self.repeats
                .insert(ip, (now + REPEAT_EVERY, now + REPEAT_FOR));
        }
        out
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Arp(frame) => self.on_arp(now, frame, &mut out),
            Input::Icmp6 {
                body,
                from,
                on_link,
            } => {
                // Neighbor discovery from beyond the link is ignored (RFC 4861 7.1.1).
                if on_link {
                    self.on_icmp6(now, body, from, &mut out);
                }
            }
            Input::Tick => self.tick(now, &mut out),
        }
        out
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.next_refresh.is_some_and(|at| now >= at) {
            self.next_refresh = self.refresh.map(|r| now + r);
            let ips: Vec<IpAddr> = self.owned.ips.iter().copied().collect();
            for ip in ips {
                self.announce(ip, out);
            }
        }
        let due: Vec<IpAddr> = self
            .repeats
            .iter()
            .filter(|(_, (next, _))| now >= *next)
            .map(|(ip, _)| *ip)
            .collect();
        for ip in due {
            self.announce(ip, out);
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
    fn announce(&self, ip: IpAddr, out: &mut Vec<Output>) {
        match ip {
            IpAddr::V4(v4) => {
                for op in [ArpOp::Request, ArpOp::Reply] {
                    out.push(Output::Frame {
                        frame: Arp::gratuitous(op, self.mac, v4).frame(BROADCAST),
                        ip,
                        purpose: Purpose::Announcement,
                    });
                }
            }
            IpAddr::V6(v6) => out.push(Output::Icmp6 {
                body: neighbor_advertisement(v6, self.mac, false),
                source: v6,
                destination: ALL_NODES,
                ip,
                purpose: Purpose::Announcement,
            }),
        }
    }

    fn on_arp(&mut self, now: Instant, frame: &[u8], out: &mut Vec<Output>) {
        let Some(arp) = Arp::parse(frame) else { return };
        if arp.sender_mac == self.mac {
            return;
        }
        let sender = IpAddr::V4(arp.sender_ip);
        if self.owned.ips.contains(&sender) {
            self.conflict(now, sender, arp.sender_mac, out);
            return;
        }
        let target = IpAddr::V4(arp.target_ip);
        if arp.op != ArpOp::Request || !self.owned.ips.contains(&target) {
            return;
        }
        out.push(Output::Asked(target));
        out.push(Output::Frame {
            frame: arp.reply_to(self.mac).frame(arp.sender_mac),
            ip: target,
            purpose: Purpose::Reply,
        });
    }

    fn on_icmp6(
        &mut self,
        now: Instant,
        body: &[u8],
        from: Option<Ipv6Addr>,
        out: &mut Vec<Output>,
    ) {
        if let Some(na) = Neighbor::parse_advertisement(body) {
            let ip = IpAddr::V6(na.target);
            if let Some(mac) = na.lladdr
                && mac != self.mac
                && self.owned.ips.contains(&ip)
            {
                self.conflict(now, ip, mac, out);
            }
            return;
        }
        let Some(ns) = Neighbor::parse_solicitation(body) else {
            return;
        };
        let ip = IpAddr::V6(ns.target);
        if !self.owned.ips.contains(&ip) {
            return;
        }
        out.push(Output::Asked(ip));
        // A solicitation from the unspecified address (duplicate address detection) is
        // answered to all nodes, unsolicited (RFC 4861 7.2.4).
        let (destination, solicited) = match from {
            Some(from) if !from.is_unspecified() => (from, true),
            _ => (ALL_NODES, false),
        };
        out.push(Output::Icmp6 {
            body: neighbor_advertisement(ns.target, self.mac, solicited),
            source: ns.target,
            destination,
            ip,
            purpose: Purpose::Reply,
        });
    }

    fn conflict(&mut self, now: Instant, ip: IpAddr, mac: Mac, out: &mut Vec<Output>) {
        if self.owned.local_macs.contains(&mac) {
            return;
        }
        out.push(Output::Claimed(ip));
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
        out.push(Output::Conflict { ip, mac });
    }
}
