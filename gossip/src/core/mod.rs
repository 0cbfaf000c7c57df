//! The membership state machine, sans I/O: SWIM as hashicorp/memberlist runs it, with
//! Lifeguard's suspicion that shrinks with independent confirmations and local health
//! awareness that slows a struggling node's own probing.
//!
//! Inputs are decoded messages, the current time and timer expiries; outputs are messages to
//! send (datagrams and push-pull streams) and membership events. The driver owns sockets and
//! clocks; tests and the simulation drive the same code with a fake network and clock.
mod broadcasts;
mod incarnation;
mod rng;
mod watch;

#[cfg(test)]
mod tests;

pub use rng::Rng;
pub use watch::ring_position;
use watch::{WatchPing, Watched};

use crate::wire::{
    Ack, Alive, IndirectPing, Message, Nack, NodeState, Ping, PushNodeState, PushPull, Suspicion,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Protocol versions we speak: [min, max, current, delegate min, max, current]. Protocol 2 is
/// what Go memberlist uses by default; 5 adds checksums, which we accept. A member that runs
/// the close watch says so in the highest delegate version it understands (see
/// [`watch::CLOSE_WATCH_MARK`]).
pub const VERSIONS: [u8; 6] = [1, 5, 2, 0, 0, 0];

#[derive(Clone, Debug)]
pub struct Config {
    pub name: String,
    /// The address and port other members reach us at.
    pub addr: SocketAddr,
    pub meta: Vec<u8>,
    pub probe_interval: Duration,
    pub probe_timeout: Duration,
    pub indirect_checks: usize,
    /// Suspicion lasts `suspicion_mult * log10(n) * probe_interval` at least...
    pub suspicion_mult: u32,
    /// ...and this many times that at most, without confirmations.
    pub suspicion_max_timeout_mult: u32,
    pub gossip_interval: Duration,
    pub gossip_nodes: usize,
    /// Each broadcast is sent `retransmit_mult * log10(n + 1)` times.
    pub retransmit_mult: u32,
    pub push_pull_interval: Duration,
    /// Lifeguard: how far a struggling node slows its own probing.
    pub awareness_max_multiplier: u32,
    /// Dead members are still gossiped to this long, so they learn they were declared dead.
    pub gossip_to_the_dead: Duration,
    /// Whether we watch our ring neighbours closely (see the `watch` module); without it,
    /// failures are detected as memberlist does, in seconds.
    pub close_watch: bool,
    /// Our ring neighbours are heard from this often...
    pub watch_interval: Duration,
    /// ...their silence for this long starts a confirmation through other members...
    pub watch_silence: Duration,
    /// ...which pings them directly and through others this often...
    pub watch_confirm_interval: Duration,
    /// ...and lasts this long before the member is declared dead.
    pub watch_confirm: Duration,
    /// Members declared dead are pinged this often, with the news attached, until they are
    /// forgotten (`gossip_to_the_dead`): one that was only cut off hears it the moment its
    /// network is back, refutes, and both sides of a healed partition meet again at once.
    pub reconnect_interval: Duration,
    /// At most this many members are known: beyond it, new names are ignored (a flood of
    /// fake members costs nothing but the packets).
    pub max_members: usize,
}

/// memberlist's MetaMaxSize: longer metadata is refused.
pub const MAX_META: usize = 512;

impl Config {
    /// memberlist's LAN defaults (what MetalLB uses), plus FerroLB's close watch of each
    /// member's two ring neighbours: a ping every 25 ms (two datagrams sent per member per
    /// interval, 80 a second, at any cluster size), 60 ms of silence, then 30 ms to confirm:
    /// three rounds of direct and indirect pings, 10 ms apart. At 5% loss, 60 ms of silence
    /// happens now and then; three failed rounds on top of it almost never (see the
    /// simulation tests).
    pub fn lan(name: &str, addr: SocketAddr) -> Config {
        Config {
            name: name.to_string(),
            addr,
            meta: Vec::new(),
            probe_interval: Duration::from_secs(1),
            probe_timeout: Duration::from_millis(500),
            indirect_checks: 3,
            suspicion_mult: 4,
            suspicion_max_timeout_mult: 6,
            gossip_interval: Duration::from_millis(200),
            gossip_nodes: 3,
            retransmit_mult: 4,
            push_pull_interval: Duration::from_secs(30),
            awareness_max_multiplier: 8,
            gossip_to_the_dead: Duration::from_secs(30),
            close_watch: true,
            watch_interval: Duration::from_millis(25),
            watch_silence: Duration::from_millis(60),
            watch_confirm_interval: Duration::from_millis(10),
            watch_confirm: Duration::from_millis(30),
            reconnect_interval: Duration::from_millis(200),
            max_members: 10_000,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Alive,
    Suspect,
    Dead,
    /// Left on purpose (a graceful shutdown).
    Left,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub addr: SocketAddr,
    pub meta: Vec<u8>,
    pub incarnation: u32,
    pub state: State,
    pub vsn: Vec<u8>,
    pub state_change: Instant,
}

impl Member {
    fn is_gone(&self) -> bool {
        matches!(self.state, State::Dead | State::Left)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    Joined(Member),
    Updated(Member),
    /// Declared dead by failure detection.
    Failed(Member),
    /// Left gracefully.
    Left(Member),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Messages for one datagram (a compound when several).
    Packet {
        to: SocketAddr,
        messages: Vec<Message>,
    },
    /// A push-pull over a new TCP connection; the answer comes back to
    /// [`Memberlist::handle_push_pull_answer`].
    PushPull {
        to: SocketAddr,
        message: PushPull,
    },
    Event(Event),
}

/// A probe of ours in flight.
struct Probe {
    target: String,
    indirect_at: Instant,
    fail_at: Instant,
    indirect_sent: bool,
    nacks_expected: usize,
    nacks: usize,
}

/// An indirect probe we run for another member: our sequence number maps to theirs.
struct Relay {
    requester: SocketAddr,
    seq_no: u32,
    nack: bool,
    expires: Instant,
}

struct SuspicionTimer {
    from: BTreeSet<String>,
    started: Instant,
    min: Duration,
    max: Duration,
    /// Confirmations after which the timeout reaches its minimum.
    expected: u32,
    incarnation: u32,
}

impl SuspicionTimer {
    /// Lifeguard: the timeout shrinks logarithmically with independent confirmations.
    fn deadline(&self) -> Instant {
        let confirmations = self.from.len().saturating_sub(1) as f64;
        let frac = if self.expected == 0 {
            1.0
        } else {
            ((confirmations + 1.0).ln() / (f64::from(self.expected) + 1.0).ln()).min(1.0)
        };
        let span = self.max.saturating_sub(self.min).as_secs_f64();
        let timeout = self.max.as_secs_f64() - span * frac;
        self.started + Duration::from_secs_f64(timeout.max(self.min.as_secs_f64()))
    }
}

/// Running totals, for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub probes: u64,
    pub suspicions: u64,
    pub failures: u64,
}

pub struct Memberlist {
    config: Config,
    stats: Stats,
    incarnation: u32,
    members: BTreeMap<String, Member>,
    probe_order: Vec<String>,
    probe_index: usize,
    seq_no: u32,
    probes: HashMap<u32, Probe>,
    relays: HashMap<u32, Relay>,
    suspicions: HashMap<String, SuspicionTimer>,
    broadcasts: broadcasts::Broadcasts,
    /// Lifeguard's local health score: 0 is healthy.
    awareness: u32,
    rng: Rng,
    next_probe: Instant,
    next_gossip: Instant,
    next_push_pull: Instant,
    leaving: bool,
    /// Every other live member by [`ring_position`]: the ring the close watch runs on...
    ring: BTreeSet<(u64, String)>,
    /// ...and those of them that run the close watch too.
    watchers: BTreeSet<(u64, String)>,
    /// Our ring neighbours.
    watched: BTreeMap<String, Watched>,
    /// Members declared dead or left, not yet forgotten: the timers that deal with them do
    /// not walk the whole membership.
    gone: BTreeSet<String>,
    watch_pings: HashMap<u32, (WatchPing, Instant)>,
    /// Every known member by address, for what arrives from an address.
    by_addr: HashMap<SocketAddr, String>,
    next_reconnect: Instant,
    /// When we last told every member directly that we are alive after being declared dead.
    last_loud_refute: Option<Instant>,
    /// Pings of [`Memberlist::check_contact`] in flight, by sequence number: when sent.
    contact_pings: HashMap<u32, Instant>,
    last_contact_check: Option<Instant>,
    /// When the latest contact ping that was answered had been sent.
    round_trip: Option<Instant>,
}

/// How many members [`Memberlist::check_contact`] pings at a time: one answer is all it
/// needs, a few cover members that are gone.
const CONTACT_PINGS: usize = 8;

/// How often a declared-dead member tells every other member directly that it is alive.
const LOUD_REFUTE_EVERY: Duration = Duration::from_millis(100);

fn log10_nodes(n: usize) -> f64 {
    (n.max(1) as f64).log10().max(1.0)
}

impl Memberlist {
    pub fn new(config: Config, now: Instant, seed: u64) -> Memberlist {
        let mut list = Memberlist {
            stats: Stats::default(),
            // memberlist starts at 1, and ignores an alive message at 0 for a new member (its
            // unknown members start as dead at 0, and only a higher incarnation wins).
            incarnation: 1,
            members: BTreeMap::new(),
            probe_order: Vec::new(),
            probe_index: 0,
            seq_no: 0,
            probes: HashMap::new(),
            relays: HashMap::new(),
            suspicions: HashMap::new(),
            broadcasts: broadcasts::Broadcasts::default(),
            awareness: 0,
            rng: Rng::new(seed),
            next_probe: now + config.probe_interval,
            next_gossip: now + config.gossip_interval,
            next_push_pull: now + config.push_pull_interval,
            leaving: false,
            ring: BTreeSet::new(),
            watchers: BTreeSet::new(),
            watched: BTreeMap::new(),
            gone: BTreeSet::new(),
            watch_pings: HashMap::new(),
            by_addr: HashMap::new(),
            next_reconnect: now + config.reconnect_interval,
            last_loud_refute: None,
            contact_pings: HashMap::new(),
            last_contact_check: None,
            round_trip: None,
            config,
        };
        let me = list.alive_message();
        list.by_addr
            .insert(list.config.addr, list.config.name.clone());
        list.members.insert(
            list.config.name.clone(),
            Member {
                name: list.config.name.clone(),
                addr: list.config.addr,
                meta: list.config.meta.clone(),
                incarnation: 1,
                state: State::Alive,
                vsn: list.versions(),
                state_change: now,
            },
        );
        list.queue(me);
        list
    }

    pub fn name(&self) -> &str {
        &self.config.name
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    pub fn members(&self) -> impl Iterator<Item = &Member> {
        self.members.values()
    }

    /// Pings a few members (our ring neighbours first, then others, the dead too: up to
    /// `CONTACT_PINGS`), at most once per `watch_interval`, and returns when the latest
    /// answered one of these pings had been sent. An answer to a ping sent after time T shows that our packets get out since T: the kernel has resolved the
    /// neighbours again after a link came back, and whatever we sent before the ping (a
    /// refutation, new metadata) has been delivered too.
    pub fn check_contact(&mut self, now: Instant) -> (Option<Instant>, Vec<Output>) {
        let due = self
            .last_contact_check
            .is_none_or(|at| now.saturating_duration_since(at) >= self.config.watch_interval);
        let mut out = Vec::new();
        if due {
            self.last_contact_check = Some(now);
            self.contact_pings
                .retain(|_, sent| now.saturating_duration_since(*sent) < Duration::from_secs(2));
            let neighbours = self.watched().filter_map(|name| self.members.get(name));
            let rest = self
                .others()
                .filter(|m| m.state != State::Left && !self.watched.contains_key(&m.name));
            let targets: Vec<(String, SocketAddr)> = neighbours
                .chain(rest)
                .take(CONTACT_PINGS)
                .map(|m| (m.name.clone(), m.addr))
                .collect();
            for (name, to) in targets {
                let seq_no = self.next_seq();
                self.contact_pings.insert(seq_no, now);
                out.push(Output::Packet {
                    to,
                    messages: vec![Message::Ping(Ping {
                        seq_no,
                        node: name,
                        ..Ping::default()
                    })],
                });
            }
        }
        (self.round_trip, out)
    }

    /// Members currently alive or suspected (not yet declared dead), ourselves included.
    pub fn live_members(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| !m.is_gone())
    }

    /// The current probe period, stretched by Lifeguard's awareness when we are struggling.
    fn scaled(&self, d: Duration) -> Duration {
        d * (self.awareness + 1)
    }

    fn alive_message(&self) -> Message {
        Message::Alive(Alive {
            incarnation: self.incarnation,
            node: self.config.name.clone(),
            addr: ip_bytes(self.config.addr.ip()),
            port: self.config.addr.port(),
            meta: self.config.meta.clone(),
            vsn: self.versions(),
        })
    }

    /// Starts joining through `seeds`: a push-pull with each.
    pub fn join(&mut self, seeds: &[SocketAddr]) -> Vec<Output> {
        seeds
            .iter()
            .filter(|s| **s != self.config.addr)
            .map(|s| Output::PushPull {
                to: *s,
                message: self.local_state(true),
            })
            .collect()
    }

    /// One of `seeds`, at random, that is not a live member's address: joining it heals a
    /// partition both sides have forgotten. One at a time, since seeds that never become
    /// members (a node without a speaker) would otherwise each get a full state every time.
    pub fn stranger(&mut self, seeds: &[SocketAddr]) -> Option<SocketAddr> {
        let strangers: Vec<SocketAddr> = seeds
            .iter()
            .filter(|seed| {
                self.by_addr
                    .get(seed)
                    .and_then(|name| self.members.get(name))
                    .is_none_or(Member::is_gone)
            })
            .copied()
            .collect();
        (!strangers.is_empty()).then(|| strangers[self.rng.below(strangers.len())])
    }

    fn local_state(&self, join: bool) -> PushPull {
        let nodes = self
            .members
            .values()
            .map(|m| PushNodeState {
                name: m.name.clone(),
                addr: ip_bytes(m.addr.ip()),
                port: m.addr.port(),
                meta: m.meta.clone(),
                incarnation: m.incarnation,
                state: match m.state {
                    State::Alive => NodeState::Alive,
                    State::Suspect => NodeState::Suspect,
                    State::Dead => NodeState::Dead,
                    State::Left => NodeState::Left,
                },
                vsn: m.vsn.clone(),
            })
            .collect();
        PushPull {
            join,
            nodes,
            user_state: Vec::new(),
        }
    }

    /// A push-pull another member opened with us: merge its state, answer with ours.
    pub fn handle_push_pull(&mut self, message: PushPull, now: Instant) -> (PushPull, Vec<Output>) {
        let answer = self.local_state(message.join);
        let mut out = Vec::new();
        self.merge(message, now, &mut out);
        self.follow_membership(&out, now);
        (answer, out)
    }

    /// The answer to a push-pull we opened.
    pub fn handle_push_pull_answer(&mut self, message: PushPull, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        self.merge(message, now, &mut out);
        self.follow_membership(&out, now);
        out
    }

    /// memberlist's mergeState: a remote "dead" is only a suspicion here; a "left" is final.
    fn merge(&mut self, remote: PushPull, now: Instant, out: &mut Vec<Output>) {
        for node in remote.nodes {
            let Some(addr) = socket_addr(&node.addr, node.port) else {
                continue;
            };
            match node.state {
                NodeState::Alive => {
                    let alive = Alive {
                        incarnation: node.incarnation,
                        node: node.name,
                        addr: node.addr,
                        port: node.port,
                        meta: node.meta,
                        vsn: node.vsn,
                    };
                    self.on_alive(alive, Some(addr), now, out);
                }
                NodeState::Left => self.on_dead(
                    Suspicion {
                        incarnation: node.incarnation,
                        from: node.name.clone(),
                        node: node.name,
                    },
                    now,
                    out,
                ),
                // A remote "dead" about us is what it says: others may have taken over what
                // we serve, so refute it the way a dead message is refuted.
                NodeState::Dead if node.name == self.config.name => self.on_dead(
                    Suspicion {
                        incarnation: node.incarnation,
                        from: String::new(),
                        node: node.name,
                    },
                    now,
                    out,
                ),
                NodeState::Dead | NodeState::Suspect => {
                    // Unknown members are learnt as alive first, as memberlist does.
                    if !self.members.contains_key(&node.name) {
                        let alive = Alive {
                            incarnation: node.incarnation,
                            node: node.name.clone(),
                            addr: node.addr.clone(),
                            port: node.port,
                            meta: node.meta.clone(),
                            vsn: node.vsn.clone(),
                        };
                        self.on_alive(alive, Some(addr), now, out);
                    }
                    self.on_suspect(
                        Suspicion {
                            incarnation: node.incarnation,
                            node: node.name,
                            from: self.config.name.clone(),
                        },
                        now,
                        out,
                    );
                }
            }
        }
    }

    /// Messages from one datagram.
    pub fn handle_packet(
        &mut self,
        from: SocketAddr,
        messages: Vec<Message>,
        now: Instant,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(name) = self.by_addr.get(&from).cloned() {
            self.heard_from(&name, now);
        }
        for message in messages {
            match message {
                Message::Ping(ping) => self.on_ping(from, ping, &mut out),
                Message::IndirectPing(req) => self.on_indirect_ping(from, req, now, &mut out),
                Message::Ack(ack) => self.on_ack(ack, now, &mut out),
                Message::Nack(nack) => {
                    if let Some(probe) = self.probes.get_mut(&nack.seq_no) {
                        probe.nacks = probe.nacks.saturating_add(1);
                    } else if let Some((ping, sent)) = self.watch_pings.remove(&nack.seq_no) {
                        self.on_watch_nack(ping, sent);
                    }
                }
                Message::Alive(alive) => self.on_alive(alive, None, now, &mut out),
                Message::Suspect(s) => {
                    self.answer_stale_claim(from, &s, &mut out);
                    self.on_suspect(s, now, &mut out);
                }
                Message::Dead(d) => {
                    self.answer_stale_claim(from, &d, &mut out);
                    self.on_dead(d, now, &mut out);
                }
                Message::PushPull(_) | Message::User(_) | Message::Err(_) => {}
            }
        }
        self.follow_membership(&out, now);
        out
    }

    /// A member passes on a suspicion or death of an incarnation older than the one we know
    /// alive: it missed the refutation, and would go on acting on the stale claim (a suspicion
    /// it holds expires into a false failure). Tell it what we know, directly. Gossip spreads
    /// a refutation to nearly every member, but at a thousand members and some loss, one or
    /// two miss it now and then, and full state exchanges come only every few minutes there.
    fn answer_stale_claim(&self, from: SocketAddr, claim: &Suspicion, out: &mut Vec<Output>) {
        if !self.is_other_member(from) {
            return;
        }
        let Some(member) = self.members.get(&claim.node).filter(|m| !m.is_gone()) else {
            return;
        };
        if !incarnation::is_newer(member.incarnation, claim.incarnation) {
            return;
        }
        out.push(Output::Packet {
            to: from,
            messages: vec![Message::Alive(Alive {
                incarnation: member.incarnation,
                node: member.name.clone(),
                addr: ip_bytes(member.addr.ip()),
                port: member.addr.port(),
                meta: member.meta.clone(),
                vsn: member.vsn.clone(),
            })],
        });
    }

    fn on_ping(&mut self, from: SocketAddr, ping: Ping, out: &mut Vec<Output>) {
        // A ping for another name (an old member at a reused address) gets no answer.
        if !ping.node.is_empty() && ping.node != self.config.name {
            return;
        }
        let to = self.reply_address(from, &ping.source_addr, ping.source_port);
        let mut messages = vec![Message::Ack(Ack {
            seq_no: ping.seq_no,
            payload: Vec::new(),
        })];
        // A member we declared dead is probing us: its network is back. Tell it at once, so
        // it refutes now rather than at the next push-pull (memberlist waits for that).
        if let Some(dead) = self
            .by_addr
            .get(&to)
            .filter(|name| self.gone.contains(*name))
            .and_then(|name| self.members.get(name))
            .filter(|m| m.state == State::Dead)
        {
            messages.push(Message::Dead(Suspicion {
                incarnation: dead.incarnation,
                node: dead.name.clone(),
                from: self.config.name.clone(),
            }));
        }
        out.push(Output::Packet { to, messages });
    }

    fn on_indirect_ping(
        &mut self,
        from: SocketAddr,
        req: IndirectPing,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        // Only for a member, about a member: otherwise anyone could make us send datagrams to
        // any address (memberlist pings whatever address the request names).
        let Some(target) = socket_addr(&req.target, req.port) else {
            return;
        };
        let known = |addr: SocketAddr| self.is_other_member(addr);
        if !known(from) {
            tracing::debug!(%from, %target, "ignored an indirect ping outside the membership");
            return;
        }
        let requester = self.reply_address(from, &req.source_addr, req.source_port);
        if !known(target) {
            // A member asks about one we have not heard of yet (it joined a moment ago): say
            // at once that we cannot help, so our silence does not count as a check. In the
            // datagram that acks the requester's ping to us, if there is one: the two arrive
            // together or not at all.
            if req.nack {
                let nack = Message::Nack(Nack { seq_no: req.seq_no });
                match out.iter_mut().rev().find_map(|o| match o {
                    Output::Packet { to, messages } if *to == requester => Some(messages),
                    _ => None,
                }) {
                    Some(messages) => messages.push(nack),
                    None => out.push(Output::Packet {
                        to: requester,
                        messages: vec![nack],
                    }),
                }
            }
            return;
        }
        let seq_no = self.next_seq();
        self.relays.insert(
            seq_no,
            Relay {
                requester,
                seq_no: req.seq_no,
                nack: req.nack,
                expires: now + self.config.probe_timeout,
            },
        );
        let ping = Ping {
            seq_no,
            node: req.node,
            ..Ping::default()
        };
        out.push(Output::Packet {
            to: target,
            messages: vec![Message::Ping(ping)],
        });
    }

    /// Where to answer a request from `from` that names its own source address: that address
    /// when it is a member's (memberlist's behind-NAT case), else where the datagram came
    /// from, so a forged source address cannot aim our answers at someone else.
    fn reply_address(&self, from: SocketAddr, addr: &[u8], port: u16) -> SocketAddr {
        socket_addr(addr, port)
            .filter(|named| *named == from || self.is_other_member(*named))
            .unwrap_or(from)
    }

    fn on_ack(&mut self, ack: Ack, now: Instant, out: &mut Vec<Output>) {
        if let Some(sent) = self.contact_pings.remove(&ack.seq_no) {
            self.round_trip = Some(self.round_trip.map_or(sent, |r| r.max(sent)));
            return;
        }
        if let Some((ping, sent)) = self.watch_pings.remove(&ack.seq_no) {
            self.on_watch_ack(ping, sent, now);
            return;
        }
        if let Some(relay) = self.relays.remove(&ack.seq_no) {
            out.push(Output::Packet {
                to: relay.requester,
                messages: vec![Message::Ack(Ack {
                    seq_no: relay.seq_no,
                    payload: Vec::new(),
                })],
            });
            return;
        }
        if self.probes.remove(&ack.seq_no).is_some() {
            // A probe answered in time is good news about our own health too.
            self.awareness = self.awareness.saturating_sub(1);
        }
    }

    fn on_alive(
        &mut self,
        alive: Alive,
        addr: Option<SocketAddr>,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let Some(addr) = addr.or_else(|| socket_addr(&alive.addr, alive.port)) else {
            return;
        };
        if alive.meta.len() > MAX_META || alive.node.is_empty() {
            return;
        }
        if alive.node == self.config.name {
            // Someone thinks of an older us: refute with a higher incarnation.
            if incarnation::is_newer(alive.incarnation, self.incarnation)
                || (alive.incarnation == self.incarnation && addr != self.config.addr)
            {
                self.refute(alive.incarnation, now);
            }
            return;
        }
        let known = self.members.get(&alive.node).cloned();
        match known {
            None if self.members.len() >= self.config.max_members => {
                tracing::debug!(member = %alive.node, "too many members: ignored a new one");
                return;
            }
            None => {
                let member = Member {
                    name: alive.node.clone(),
                    addr,
                    meta: alive.meta.clone(),
                    incarnation: alive.incarnation,
                    state: State::Alive,
                    vsn: alive.vsn.clone(),
                    state_change: now,
                };
                self.members.insert(member.name.clone(), member.clone());
                self.by_addr.insert(addr, member.name.clone());
                self.add_to_probe_order(&member.name);
                out.push(Output::Event(Event::Joined(member)));
            }
            Some(member) => {
                let rejoined = member.is_gone()
                    && incarnation::at_least(alive.incarnation, member.incarnation);
                if !incarnation::is_newer(alive.incarnation, member.incarnation) && !rejoined {
                    return;
                }
                self.suspicions.remove(&member.name);
                let updated = Member {
                    addr,
                    meta: alive.meta.clone(),
                    incarnation: alive.incarnation,
                    state: State::Alive,
                    vsn: alive.vsn.clone(),
                    state_change: now,
                    ..member.clone()
                };
                self.members.insert(updated.name.clone(), updated.clone());
                if member.addr != addr {
                    if self.by_addr.get(&member.addr) == Some(&member.name) {
                        self.by_addr.remove(&member.addr);
                    }
                    self.by_addr.insert(addr, member.name.clone());
                }
                if rejoined {
                    // The round dropped it when it died: probe it again from now on.
                    self.add_to_probe_order(&updated.name);
                    out.push(Output::Event(Event::Joined(updated)));
                } else if member.state != State::Alive
                    || member.addr != addr
                    || member.meta != alive.meta
                {
                    out.push(Output::Event(Event::Updated(updated)));
                }
            }
        }
        self.queue(Message::Alive(alive));
    }

    fn on_suspect(&mut self, s: Suspicion, now: Instant, out: &mut Vec<Output>) {
        if s.node == self.config.name {
            // A claim about an older us was already refuted (memberlist ignores it too).
            if !self.leaving && incarnation::at_least(s.incarnation, self.incarnation) {
                // Lifeguard: being suspected means our own view may be the unhealthy one.
                self.raise_awareness(1);
                self.refute(s.incarnation, now);
            }
            return;
        }
        let Some(member) = self.current_member(&s.node, s.incarnation) else {
            return;
        };
        if member.state == State::Suspect {
            // An independent confirmation shortens the suspicion.
            if let Some(suspicion) = self.suspicions.get_mut(&s.node)
                && suspicion.from.insert(s.from.clone())
            {
                self.queue(Message::Suspect(s));
            }
            return;
        }
        member.state = State::Suspect;
        member.incarnation = s.incarnation;
        member.state_change = now;
        let updated = member.clone();
        self.stats.suspicions += 1;
        let n = self.members.len();
        let min = self
            .config
            .probe_interval
            .mul_f64(f64::from(self.config.suspicion_mult) * log10_nodes(n));
        let expected = self.config.suspicion_mult.saturating_sub(2);
        self.suspicions.insert(
            s.node.clone(),
            SuspicionTimer {
                from: BTreeSet::from([s.from.clone()]),
                started: now,
                min,
                max: min * self.config.suspicion_max_timeout_mult,
                expected,
                incarnation: s.incarnation,
            },
        );
        out.push(Output::Event(Event::Updated(updated)));
        self.queue(Message::Suspect(s));
    }

    /// The member a suspect or dead claim is about, unless the claim is stale (an older
    /// incarnation) or the member is already gone.
    fn current_member(&mut self, node: &str, claimed: u32) -> Option<&mut Member> {
        self.members
            .get_mut(node)
            .filter(|m| incarnation::at_least(claimed, m.incarnation) && !m.is_gone())
    }

    fn on_dead(&mut self, d: Suspicion, now: Instant, out: &mut Vec<Output>) {
        if d.node == self.config.name {
            if !self.leaving && incarnation::at_least(d.incarnation, self.incarnation) {
                self.refute(d.incarnation, now);
                // Others may have taken over what we serve while we counted as dead: tell
                // every member at once rather than by gossip, so they hand it back now (the
                // ones we count as dead too: after a partition, each side thinks the other
                // dead), and raise our own Updated event so the user announces it again.
                // Rate-limited, so forged claims cannot make us flood the cluster.
                let quiet = self
                    .last_loud_refute
                    .is_some_and(|at| now.saturating_duration_since(at) < LOUD_REFUTE_EVERY);
                if !quiet {
                    self.last_loud_refute = Some(now);
                    let alive = self.alive_message();
                    out.extend(self.others().filter(|m| m.state != State::Left).map(|m| {
                        Output::Packet {
                            to: m.addr,
                            messages: vec![alive.clone()],
                        }
                    }));
                }
                if let Some(me) = self.members.get(&self.config.name) {
                    out.push(Output::Event(Event::Updated(me.clone())));
                }
            } else if !self.leaving
                && let Some(sender) = self.members.get(&d.from).filter(|m| m.name != d.node)
            {
                // A claim older than our refutation: that one never reached the sender, which
                // still counts us dead (and may be answering for our IPs). Tell it directly.
                out.push(Output::Packet {
                    to: sender.addr,
                    messages: vec![self.alive_message()],
                });
            }
            return;
        }
        let Some(member) = self.current_member(&d.node, d.incarnation) else {
            return;
        };
        // A member declaring itself dead has left gracefully.
        let left = d.from == d.node;
        member.state = if left { State::Left } else { State::Dead };
        member.incarnation = d.incarnation;
        member.state_change = now;
        let gone = member.clone();
        self.suspicions.remove(&d.node);
        if !left {
            self.stats.failures += 1;
        }
        out.push(Output::Event(if left {
            Event::Left(gone)
        } else {
            Event::Failed(gone)
        }));
        self.queue(Message::Dead(d));
    }

    /// Answers a claim about us (suspected, declared dead, an older incarnation) with a
    /// higher incarnation, so the claim loses everywhere.
    fn refute(&mut self, claimed: u32, now: Instant) {
        let base = if incarnation::at_least(claimed, self.incarnation) {
            claimed
        } else {
            self.incarnation
        };
        self.incarnation = incarnation::next(base);
        if let Some(me) = self.members.get_mut(&self.config.name) {
            me.incarnation = self.incarnation;
            me.state_change = now;
        }
        let alive = self.alive_message();
        self.queue(alive);
    }

    fn queue(&mut self, message: Message) {
        let about = match &message {
            Message::Alive(a) => a.node.clone(),
            Message::Suspect(s) | Message::Dead(s) => s.node.clone(),
            _ => String::new(),
        };
        let n = self.members.len().max(1);
        let remaining = (f64::from(self.config.retransmit_mult) * ((n + 1) as f64).log10())
            .ceil()
            .max(1.0) as u32;
        self.broadcasts.push(about, message, remaining);
    }

    /// Forgets what is left to gossip, as a member of a cluster converged long ago has
    /// nothing left to tell (the simulation's shortcut to a settled cluster).
    #[cfg(any(test, feature = "sim"))]
    pub fn drop_pending_gossip(&mut self) {
        self.broadcasts = broadcasts::Broadcasts::default();
    }

    /// Up to `max` pending broadcasts, each counted as sent once more.
    fn take_broadcasts(&mut self, max: usize) -> Vec<Message> {
        self.broadcasts.take(max)
    }

    /// When [`Memberlist::tick`] next has something to do.
    pub fn next_deadline(&self) -> Instant {
        let mut next = self
            .next_probe
            .min(self.next_gossip)
            .min(self.next_push_pull);
        for probe in self.probes.values() {
            next = next.min(if probe.indirect_sent {
                probe.fail_at
            } else {
                probe.indirect_at
            });
        }
        for s in self.suspicions.values() {
            next = next.min(s.deadline());
        }
        for r in self.relays.values() {
            next = next.min(r.expires);
        }
        if let Some(round) = self.next_watch_round() {
            next = next.min(round);
        }
        next.min(self.next_reconnect)
    }

    /// Runs every timer due at `now`.
    pub fn tick(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        self.expire_probes(now, &mut out);
        self.expire_suspicions(now, &mut out);
        out.extend(self.expired_relays(now));
        self.watch_rounds(now, &mut out);
        if now >= self.next_reconnect {
            self.next_reconnect = now + self.config.reconnect_interval;
            self.reap(now);
            self.reconnect(&mut out);
        }
        if now >= self.next_probe {
            self.next_probe = now + self.scaled(self.config.probe_interval);
            self.probe(now, &mut out);
        }
        if now >= self.next_gossip {
            self.next_gossip = now + self.config.gossip_interval;
            self.gossip(now, &mut out);
        }
        if now >= self.next_push_pull {
            self.next_push_pull = now + self.push_pull_interval();
            let candidates: Vec<SocketAddr> = self
                .others()
                .filter(|m| m.state == State::Alive)
                .map(|m| m.addr)
                .collect();
            if !candidates.is_empty() {
                let to = candidates[self.rng.below(candidates.len())];
                out.push(Output::PushPull {
                    to,
                    message: self.local_state(false),
                });
            }
        }
        self.follow_membership(&out, now);
        out
    }

    /// memberlist's pushPullScale: beyond 32 members, full state exchanges are spaced out
    /// with the logarithm of the size, since each carries every member.
    fn push_pull_interval(&self) -> Duration {
        let live = self.ring.len() + 1;
        if live <= 32 {
            return self.config.push_pull_interval;
        }
        let multiplier = ((live as f64).log2() - 32f64.log2()).ceil() + 1.0;
        self.config.push_pull_interval.mul_f64(multiplier)
    }

    /// New and returning members are probed in a random place of the current round, as
    /// memberlist does.
    ///
    /// In constant time, as memberlist: a member learnt among thousands at once must not cost
    /// a walk of the order each. It goes somewhere in what is left of the round, and the
    /// member it displaces to the end is still probed in it. (One that died and came back
    /// within a round may be probed twice in it.)
    fn add_to_probe_order(&mut self, name: &str) {
        let start = self.probe_index.min(self.probe_order.len());
        let at = start + self.rng.below(self.probe_order.len() - start + 1);
        self.probe_order.push(name.to_string());
        let last = self.probe_order.len() - 1;
        self.probe_order.swap(at, last);
    }

    /// Lifeguard: a sign that our own view may be the unhealthy one slows our probing, up to
    /// `awareness_max_multiplier` times.
    fn raise_awareness(&mut self, by: u32) {
        let max = self.config.awareness_max_multiplier.saturating_sub(1);
        self.awareness = self.awareness.saturating_add(by).min(max);
    }

    /// Forgets members gone for longer than `gossip_to_the_dead`, as memberlist does (and
    /// the left ones too, which it keeps for ever): they come back by joining.
    fn reap(&mut self, now: Instant) {
        let window = self.config.gossip_to_the_dead;
        let expired: Vec<String> = self
            .gone
            .iter()
            .filter(|name| {
                self.members.get(*name).is_none_or(|m| {
                    !m.is_gone() || now.saturating_duration_since(m.state_change) >= window
                })
            })
            .cloned()
            .collect();
        for name in expired {
            self.gone.remove(&name);
            let Some(member) = self.members.get(&name).filter(|m| m.is_gone()) else {
                continue;
            };
            if self.by_addr.get(&member.addr) == Some(&name) {
                self.by_addr.remove(&member.addr);
            }
            self.members.remove(&name);
        }
    }

    /// Pings every member declared dead (not left) with the news attached: if it was only
    /// cut off, it refutes the moment it hears, and tells us so directly.
    fn reconnect(&self, out: &mut Vec<Output>) {
        out.extend(
            self.gone
                .iter()
                .filter_map(|name| self.members.get(name))
                .filter(|m| m.state == State::Dead)
                .map(|m| Output::Packet {
                    to: m.addr,
                    messages: vec![
                        Message::Ping(Ping {
                            seq_no: 0,
                            node: m.name.clone(),
                            ..Ping::default()
                        }),
                        Message::Dead(Suspicion {
                            incarnation: m.incarnation,
                            node: m.name.clone(),
                            from: self.config.name.clone(),
                        }),
                    ],
                }),
        );
    }

    fn others(&self) -> impl Iterator<Item = &Member> {
        self.members.values().filter(|m| m.name != self.config.name)
    }

    /// Whether `addr` is another member's address.
    fn is_other_member(&self, addr: SocketAddr) -> bool {
        self.by_addr
            .get(&addr)
            .is_some_and(|name| *name != self.config.name)
    }

    /// The next member of the round to probe: round-robin over a shuffled order (SWIM's
    /// bounded detection time), skipping the dead.
    fn probe(&mut self, now: Instant, out: &mut Vec<Output>) {
        for _ in 0..=self.probe_order.len() {
            if self.probe_index >= self.probe_order.len() {
                // Each round is every live member in a new random order: a member that came
                // back since the last round is in it whatever path brought it back.
                let mut order: Vec<String> = self
                    .others()
                    .filter(|m| !m.is_gone())
                    .map(|m| m.name.clone())
                    .collect();
                self.rng.shuffle(&mut order);
                self.probe_order = order;
                self.probe_index = 0;
                if self.probe_order.is_empty() {
                    return;
                }
            }
            let name = self.probe_order[self.probe_index].clone();
            self.probe_index += 1;
            let Some(target) = self.members.get(&name).filter(|m| !m.is_gone()).cloned() else {
                continue;
            };
            let seq_no = self.next_seq();
            self.stats.probes += 1;
            let timeout = self.scaled(self.config.probe_timeout);
            let interval = self.scaled(self.config.probe_interval);
            let to = target.addr;
            self.probes.insert(
                seq_no,
                Probe {
                    target: name.clone(),
                    indirect_at: now + timeout,
                    fail_at: now + interval,
                    indirect_sent: false,
                    nacks_expected: 0,
                    nacks: 0,
                },
            );
            // Lifeguard's buddy system: a suspected member learns of it from the probe itself,
            // so it can refute even when the suspicion's gossip passed it by.
            let suspected = (target.state == State::Suspect).then(|| {
                Message::Suspect(crate::wire::Suspicion {
                    incarnation: target.incarnation,
                    node: name.clone(),
                    from: self.config.name.clone(),
                })
            });
            let mut messages = vec![Message::Ping(Ping {
                seq_no,
                node: name,
                ..Ping::default()
            })];
            messages.extend(suspected);
            messages.extend(self.take_broadcasts(4));
            out.push(Output::Packet { to, messages });
            return;
        }
    }

    fn expire_probes(&mut self, now: Instant, out: &mut Vec<Output>) {
        let due: Vec<u32> = self
            .probes
            .iter()
            .filter(|(_, p)| (!p.indirect_sent && now >= p.indirect_at) || now >= p.fail_at)
            .map(|(s, _)| *s)
            .collect();
        for seq_no in due {
            let Some(probe) = self.probes.get(&seq_no) else {
                continue;
            };
            if !probe.indirect_sent && now < probe.fail_at {
                // No ack in time: ask k others to probe the target for us.
                let target = probe.target.clone();
                let Some(member) = self.members.get(&target).cloned() else {
                    self.probes.remove(&seq_no);
                    continue;
                };
                let helpers = self.helpers(&target, |m| m.state == State::Alive);
                for (_, helper) in &helpers {
                    out.push(Output::Packet {
                        to: *helper,
                        messages: vec![Message::IndirectPing(
                            self.indirect_ping(seq_no, &member, true),
                        )],
                    });
                }
                if let Some(probe) = self.probes.get_mut(&seq_no) {
                    probe.indirect_sent = true;
                    probe.nacks_expected = helpers.len();
                }
                continue;
            }
            let Some(probe) = self.probes.remove(&seq_no) else {
                continue;
            };
            // Lifeguard: helpers that did not even nack point at our own network, not the target.
            let missed_nacks = probe.nacks_expected.saturating_sub(probe.nacks) as u32;
            if probe.nacks_expected > 0 && missed_nacks > 0 {
                self.raise_awareness(missed_nacks.min(1));
            }
            let Some(member) = self.members.get(&probe.target) else {
                continue;
            };
            if member.is_gone() {
                continue;
            }
            let suspicion = Suspicion {
                incarnation: member.incarnation,
                node: probe.target,
                from: self.config.name.clone(),
            };
            self.on_suspect(suspicion, now, out);
        }
    }

    fn expire_suspicions(&mut self, now: Instant, out: &mut Vec<Output>) {
        let due: Vec<(String, u32)> = self
            .suspicions
            .iter()
            .filter(|(_, s)| now >= s.deadline())
            .map(|(n, s)| (n.clone(), s.incarnation))
            .collect();
        for (node, incarnation) in due {
            self.suspicions.remove(&node);
            self.on_dead(
                Suspicion {
                    incarnation,
                    node,
                    from: self.config.name.clone(),
                },
                now,
                out,
            );
        }
    }

    /// Sends pending broadcasts to a few random members, recently dead ones included.
    fn gossip(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.broadcasts.is_empty() {
            return;
        }
        let window = self.config.gossip_to_the_dead;
        let mut targets: Vec<SocketAddr> = self
            .others()
            .filter(|m| !m.is_gone() || now.saturating_duration_since(m.state_change) < window)
            .filter(|m| m.state != State::Left)
            .map(|m| m.addr)
            .collect();
        self.rng.shuffle(&mut targets);
        targets.truncate(self.config.gossip_nodes);
        for to in targets {
            let messages = self.take_broadcasts(8);
            if messages.is_empty() {
                break;
            }
            out.push(Output::Packet { to, messages });
        }
    }

    /// Changes the metadata other members see for us (an alive message with a higher
    /// incarnation, as memberlist's UpdateNode). Every live member is told at once, as well
    /// as by gossip: metadata says where we can announce, and a member that learns it late
    /// answers for an IP in our place meanwhile.
    pub fn update_meta(&mut self, meta: Vec<u8>, now: Instant) -> Vec<Output> {
        if meta == self.config.meta {
            return Vec::new();
        }
        self.config.meta = meta.clone();
        self.incarnation = incarnation::next(self.incarnation);
        if let Some(me) = self.members.get_mut(&self.config.name) {
            me.meta = meta;
            me.incarnation = self.incarnation;
            me.state_change = now;
        }
        let alive = self.alive_message();
        self.queue(alive.clone());
        self.to_every_live_member(&alive)
    }

    fn next_seq(&mut self) -> u32 {
        self.seq_no = self.seq_no.wrapping_add(1);
        self.seq_no
    }

    /// Up to `indirect_checks` other members, at random, that may probe `target` for us.
    fn helpers(
        &mut self,
        target: &str,
        eligible: impl Fn(&Member) -> bool,
    ) -> Vec<(String, SocketAddr)> {
        let mut helpers: Vec<(String, SocketAddr)> = self
            .others()
            .filter(|m| m.name != target && eligible(m))
            .map(|m| (m.name.clone(), m.addr))
            .collect();
        self.rng.shuffle(&mut helpers);
        helpers.truncate(self.config.indirect_checks);
        helpers
    }

    fn indirect_ping(&self, seq_no: u32, target: &Member, nack: bool) -> IndirectPing {
        IndirectPing {
            seq_no,
            target: ip_bytes(target.addr.ip()),
            port: target.addr.port(),
            node: target.name.clone(),
            nack,
            source_addr: ip_bytes(self.config.addr.ip()),
            source_port: self.config.addr.port(),
            source_node: self.config.name.clone(),
        }
    }

    /// One datagram with `message` to every member not known to be gone.
    fn to_every_live_member(&self, message: &Message) -> Vec<Output> {
        self.others()
            .filter(|m| !m.is_gone())
            .map(|m| Output::Packet {
                to: m.addr,
                messages: vec![message.clone()],
            })
            .collect()
    }

    /// Leaves gracefully: tells every live member at once that we left, so takeover starts
    /// now rather than after a failure detection.
    pub fn leave(&mut self, now: Instant) -> Vec<Output> {
        self.leaving = true;
        self.incarnation = incarnation::next(self.incarnation);
        let dead = Message::Dead(Suspicion {
            incarnation: self.incarnation,
            node: self.config.name.clone(),
            from: self.config.name.clone(),
        });
        if let Some(me) = self.members.get_mut(&self.config.name) {
            me.state = State::Left;
            me.incarnation = self.incarnation;
            me.state_change = now;
        }
        self.choose_neighbours(now);
        self.to_every_live_member(&dead)
    }

    /// Relayed probes that got no answer in time; a requester that asked for it gets a nack,
    /// telling it that we, at least, are alive and reachable.
    fn expired_relays(&mut self, now: Instant) -> Vec<Output> {
        let expired: Vec<u32> = self
            .relays
            .iter()
            .filter(|(_, r)| now >= r.expires)
            .map(|(s, _)| *s)
            .collect();
        expired
            .into_iter()
            .filter_map(|s| self.relays.remove(&s))
            .filter(|r| r.nack)
            .map(|r| Output::Packet {
                to: r.requester,
                messages: vec![Message::Nack(Nack { seq_no: r.seq_no })],
            })
            .collect()
    }
}

/// memberlist carries IPv4 addresses as 4 bytes and IPv6 as 16.
pub fn ip_bytes(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets().to_vec(),
        IpAddr::V6(v6) => v6.octets().to_vec(),
    }
}

pub fn socket_addr(ip: &[u8], port: u16) -> Option<SocketAddr> {
    let ip: IpAddr = match ip.len() {
        4 => <[u8; 4]>::try_from(ip).ok()?.into(),
        16 => <[u8; 16]>::try_from(ip).ok()?.into(),
        _ => return None,
    };
    (port != 0).then_some(SocketAddr::new(ip, port))
}
