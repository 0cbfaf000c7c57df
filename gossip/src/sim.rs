//! A deterministic simulation: many members on a fake network with a fake clock, every
//! message going through the real wire encoding. Seeded, so every run is the same. The core's
//! tests use it, and so does the scale benchmark (`tests/benches/gossip_scale.rs`).
use crate::core::{Config, Event, Memberlist, Output, Rng, ip_bytes};
use crate::wire::{
    Message, NodeState, PushNodeState, PushPull, decode_packet, decode_stream, encode_packet,
    encode_stream,
};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// One way, every datagram and stream.
pub const LATENCY: Duration = Duration::from_millis(1);

enum Delivery {
    Packet {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    PushPull {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
    Answer {
        from: usize,
        to: usize,
        bytes: Vec<u8>,
    },
}

pub struct Sim {
    pub start: Instant,
    pub now: Instant,
    pub nodes: Vec<Memberlist>,
    queue: BinaryHeap<(Reverse<Instant>, Reverse<u64>)>,
    deliveries: HashMap<u64, Delivery>,
    sequence: u64,
    /// Each member's next timer, as last scheduled: older heap entries are skipped.
    timers: BinaryHeap<Reverse<(Instant, usize)>>,
    scheduled: Vec<Option<Instant>>,
    rng: Rng,
    /// Chance in a million that a datagram is lost.
    pub loss_ppm: u64,
    /// Nodes whose network is cut.
    pub cut: HashSet<usize>,
    /// Nodes on the far side of a partition: they reach each other only.
    pub partition: HashSet<usize>,
    /// Membership events, by when and where. Joins and updates are left out when
    /// `record_all_events` is off (a large cluster's convergence is millions of them).
    pub events: Vec<(Duration, usize, Event)>,
    pub record_all_events: bool,
    /// Datagrams each member sent.
    pub sent: Vec<u64>,
}

/// Simulated members live in RFC 2544's benchmarking range: nothing is ever sent there.
pub fn addr(i: usize) -> SocketAddr {
    assert!(i < 250 * 256, "up to 64,000 members");
    SocketAddr::new(
        IpAddr::from([198, 18, (i / 250) as u8, (i % 250) as u8 + 1]),
        7946,
    )
}

fn index_of(to: SocketAddr) -> usize {
    let IpAddr::V4(v4) = to.ip() else {
        panic!("IPv4 only")
    };
    let o = v4.octets();
    usize::from(o[2]) * 250 + usize::from(o[3]) - 1
}

impl Sim {
    /// `n` members with memberlist's LAN defaults (and FerroLB's close watch).
    pub fn new(n: usize, seed: u64) -> Sim {
        Sim::with_config(n, seed, |_| {})
    }

    /// `n` members, each configuration adjusted by `adjust`.
    pub fn with_config(n: usize, seed: u64, adjust: impl Fn(&mut Config)) -> Sim {
        Sim::with_configs(n, seed, |_, config| adjust(config))
    }

    /// `n` members, member `i`'s configuration adjusted by `adjust(i, ..)`.
    pub fn with_configs(n: usize, seed: u64, adjust: impl Fn(usize, &mut Config)) -> Sim {
        #[allow(clippy::disallowed_methods)] // any base will do: the clock is never read again
        let start = Instant::now();
        let nodes: Vec<Memberlist> = (0..n)
            .map(|i| {
                let mut config = Config::lan(&format!("n{i}"), addr(i));
                adjust(i, &mut config);
                Memberlist::new(config, start, seed.wrapping_add(i as u64))
            })
            .collect();
        let mut sim = Sim {
            start,
            now: start,
            queue: BinaryHeap::new(),
            deliveries: HashMap::new(),
            sequence: 0,
            timers: BinaryHeap::new(),
            scheduled: vec![None; n],
            rng: Rng::new(seed),
            loss_ppm: 0,
            cut: HashSet::new(),
            partition: HashSet::new(),
            events: Vec::new(),
            record_all_events: true,
            sent: vec![0; n],
            nodes,
        };
        for i in 0..n {
            sim.schedule(i);
        }
        sim
    }

    /// Simulated time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    fn schedule(&mut self, i: usize) {
        let at = self.nodes[i].next_deadline();
        if self.scheduled[i] != Some(at) {
            self.scheduled[i] = Some(at);
            self.timers.push(Reverse((at, i)));
        }
    }

    fn reachable(&self, a: usize, b: usize) -> bool {
        !self.cut.contains(&a)
            && !self.cut.contains(&b)
            && self.partition.contains(&a) == self.partition.contains(&b)
    }

    /// Carries out what member `from` asked for.
    pub fn send(&mut self, from: usize, outputs: Vec<Output>) {
        for output in outputs {
            let delivery = match output {
                Output::Packet { to, messages } => {
                    self.sent[from] += 1;
                    Delivery::Packet {
                        from,
                        to: index_of(to),
                        bytes: encode_packet(&messages, false, None, [0; 12]),
                    }
                }
                Output::PushPull { to, message } => Delivery::PushPull {
                    from,
                    to: index_of(to),
                    bytes: encode_stream(&Message::PushPull(message), None, [0; 12]),
                },
                Output::Event(event) => {
                    if self.record_all_events || matches!(event, Event::Failed(_) | Event::Left(_))
                    {
                        self.events.push((self.now - self.start, from, event));
                    }
                    continue;
                }
            };
            self.deliver_later(delivery);
        }
        self.schedule(from);
    }

    fn deliver_later(&mut self, delivery: Delivery) {
        self.sequence += 1;
        self.deliveries.insert(self.sequence, delivery);
        self.queue
            .push((Reverse(self.now + LATENCY), Reverse(self.sequence)));
    }

    /// Every member joins through member `via`.
    pub fn join_all(&mut self, via: usize) {
        for i in 0..self.nodes.len() {
            if i != via {
                let out = self.nodes[i].join(&[addr(via)]);
                self.send(i, out);
            }
        }
    }

    /// Every member learns every other at once, as in a cluster converged long ago: the
    /// state a member knowing them all would hold, handed to each as a push-pull answer, and
    /// nothing left to gossip about it.
    pub fn start_converged(&mut self) {
        let nodes = (0..self.nodes.len())
            .map(|i| PushNodeState {
                name: format!("n{i}"),
                addr: ip_bytes(addr(i).ip()),
                port: addr(i).port(),
                meta: Vec::new(),
                incarnation: 1,
                state: NodeState::Alive,
                vsn: self.nodes[i].versions(),
            })
            .collect();
        let state = Message::PushPull(PushPull {
            join: false,
            nodes,
            user_state: Vec::new(),
        });
        let bytes = encode_stream(&state, None, [0; 12]);
        for i in 0..self.nodes.len() {
            let Ok(Message::PushPull(state)) = decode_stream(&bytes, None) else {
                panic!("our streams decode")
            };
            let out = self.nodes[i].handle_push_pull_answer(state, self.now);
            self.nodes[i].drop_pending_gossip();
            self.send(i, out);
        }
    }

    /// Runs the cluster for `span` of simulated time.
    pub fn run(&mut self, span: Duration) {
        let end = self.now + span;
        loop {
            // Drop timers a member has since moved.
            while let Some(Reverse((at, i))) = self.timers.peek().copied() {
                if self.scheduled[i] == Some(at) {
                    break;
                }
                self.timers.pop();
            }
            let next_timer = self.timers.peek().map(|Reverse(t)| *t);
            let next_delivery = self.queue.peek().map(|(Reverse(at), _)| *at);
            let at = match (next_timer, next_delivery) {
                (Some((t, _)), Some(d)) => t.min(d),
                (Some((t, _)), None) => t,
                (None, Some(d)) => d,
                (None, None) => end,
            };
            if at > end {
                self.now = end;
                return;
            }
            self.now = self.now.max(at);
            if next_delivery == Some(at) {
                let (_, Reverse(id)) = self.queue.pop().expect("peeked");
                let delivery = self.deliveries.remove(&id).expect("queued");
                self.deliver(delivery);
            } else if let Some((_, i)) = next_timer {
                self.timers.pop();
                self.scheduled[i] = None;
                let out = self.nodes[i].tick(self.now);
                self.send(i, out);
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        match delivery {
            Delivery::Packet { from, to, bytes } => {
                let lost = self.loss_ppm > 0 && self.rng.below(1_000_000) < self.loss_ppm as usize;
                if lost || !self.reachable(from, to) {
                    return;
                }
                let messages = decode_packet(&bytes, None).expect("our packets decode");
                let out = self.nodes[to].handle_packet(addr(from), messages, self.now);
                self.send(to, out);
            }
            Delivery::PushPull { from, to, bytes } => {
                if !self.reachable(from, to) {
                    return;
                }
                let Message::PushPull(request) =
                    decode_stream(&bytes, None).expect("our streams decode")
                else {
                    panic!("push-pull")
                };
                let (answer, out) = self.nodes[to].handle_push_pull(request, self.now);
                self.send(to, out);
                let bytes = encode_stream(&Message::PushPull(answer), None, [0; 12]);
                self.deliver_later(Delivery::Answer {
                    from: to,
                    to: from,
                    bytes,
                });
            }
            Delivery::Answer { from, to, bytes } => {
                if !self.reachable(from, to) {
                    return;
                }
                let Message::PushPull(answer) =
                    decode_stream(&bytes, None).expect("our streams decode")
                else {
                    panic!("push-pull")
                };
                let out = self.nodes[to].handle_push_pull_answer(answer, self.now);
                self.send(to, out);
            }
        }
    }

    /// How many members `i` sees alive or suspected.
    pub fn live(&self, i: usize) -> usize {
        self.nodes[i].live_members().count()
    }

    /// Every failure declared, by anyone.
    pub fn failures(&self) -> Vec<&(Duration, usize, Event)> {
        self.events
            .iter()
            .filter(|(_, _, e)| matches!(e, Event::Failed(_)))
            .collect()
    }
}
