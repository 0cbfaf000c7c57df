//! The close watch: fast failure detection at a cost per member that does not grow with the
//! cluster.
//!
//! The live members sit on a ring, in an order every FerroLB member computes the same way
//! ([`ring_position`]). Each FerroLB member watches its two neighbours among the FerroLB
//! members on it:
//! - its successor, which it pings every `watch_interval`;
//! - its predecessor, which pings it every `watch_interval`: those pings are what it listens
//!   for, and it pings the predecessor itself only when they stop (a predecessor that sees the
//!   ring differently for a moment).
//!
//! Members that do not watch (MetalLB's speakers, during a migration) are watched by the
//! FerroLB member before them on the ring, which pings them every `watch_interval` too. So
//! every member is watched, a FerroLB one from both sides, and in a FerroLB cluster each
//! member sends two datagrams per interval (a ping and an ack) whatever the cluster's size. After `watch_silence` without a word from a
//! neighbour, a confirmation starts: every `watch_confirm_interval` the neighbour is pinged
//! directly and through up to `indirect_checks` helpers, and we ping each helper too. If a
//! helper that knows the neighbour answers us (a FerroLB helper that does not know it yet says
//! so at once, with a nack) and the neighbour stays silent until `watch_confirm`, it is
//! declared dead and every live member is told at once, so whoever takes over its IPs does so
//! now, one datagram later. If no such helper answers, we are the one cut off, or nobody could
//! check: the verdict is left to the usual probing, which Lifeguard slows when we struggle.
//!
//! Go members answer pings and indirect pings, which any memberlist does, and take part as
//! the watched and as helpers; only FerroLB members watch.
use super::{Member, Memberlist, Output};
use crate::wire::{Message, Ping, Suspicion};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Which side of us a watched neighbour is on the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    /// The next member: pinged every `watch_interval`.
    Successor,
    /// The previous member: heard through its own pings to us.
    Predecessor,
}

/// A ring neighbour watched closely.
pub(super) struct Watched {
    side: Side,
    /// The last datagram from it, or ack of ours through a helper.
    last_heard: Instant,
    next_round: Instant,
    /// Set while a silence is being confirmed through other members.
    confirm: Option<Confirm>,
}

struct Confirm {
    started: Instant,
    deadline: Instant,
    /// The most helpers asked in any round.
    helpers: usize,
    /// Helpers that answered us: we are not the one cut off...
    answered: BTreeSet<String>,
    /// ...and those of them that do not know the neighbour, so could not check it.
    unaware: BTreeSet<String>,
}

impl Confirm {
    /// Whether someone other than us checked the silent member: a helper answered us, and
    /// knows the member.
    fn checked_by_others(&self) -> bool {
        self.answered.iter().any(|h| !self.unaware.contains(h))
    }
}

/// What a ping of the close watch was for.
pub(super) enum WatchPing {
    /// The watched member itself, directly.
    Target(String),
    /// The watched member through a helper.
    Indirect { target: String, helper: String },
    /// A helper asked to confirm the silence of this watched member: its own ack shows that
    /// our network works.
    Helper { target: String, helper: String },
}

/// What a member that runs the close watch advertises as the highest delegate protocol
/// version it understands (the fifth byte of memberlist's version array). MetalLB's speakers
/// have no delegate and advertise 0. memberlist only requires every member's current delegate
/// version (0 everywhere) to lie between the highest minimum and the lowest maximum, which it
/// still does; an odd value keeps it from being taken for a real delegate range.
pub const CLOSE_WATCH_MARK: u8 = 0xf1;

/// Whether `member` runs the close watch (and so watches its ring neighbours).
fn runs_close_watch(member: &Member) -> bool {
    member.vsn.get(4) == Some(&CLOSE_WATCH_MARK)
}

/// Where a member sits on the ring: a hash of its name, so that the order is the same on
/// every member, and unrelated to how nodes are named (names like `rack1-node3` sort the
/// members of a rack together, and a rack lost at once would take its watchers with it).
/// FNV-1a, then SplitMix64's finalizer to spread names that differ in one character. Every
/// member must compute this the same way: changing it is a change of the protocol.
pub fn ring_position(name: &str) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in name.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 30;
    hash = hash.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash ^= hash >> 27;
    hash = hash.wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

impl Memberlist {
    /// The version array we advertise: with [`CLOSE_WATCH_MARK`] when we watch.
    pub fn versions(&self) -> Vec<u8> {
        let mut versions = super::VERSIONS.to_vec();
        if self.config.close_watch {
            versions[4] = CLOSE_WATCH_MARK;
        }
        versions
    }

    /// The members watched closely now: our neighbours among the members that watch, and the
    /// members that do not watch up to our successor.
    pub fn watched(&self) -> impl Iterator<Item = &str> {
        self.watched.keys().map(String::as_str)
    }

    /// Whether we know no other live member.
    pub fn is_alone(&self) -> bool {
        self.ring.is_empty()
    }

    /// Keeps the ring and the watched neighbours up to date with the membership events in
    /// `out`: a member that joined or came back is placed on the ring, one that failed or left
    /// is taken off (and counted among the gone). Called at the end of every entry point, so
    /// the cost is paid only when the membership changes.
    pub(super) fn follow_membership(&mut self, out: &[Output], now: Instant) {
        let mut changed = false;
        for output in out {
            let Output::Event(event) = output else {
                continue;
            };
            let (member, live) = match event {
                super::Event::Joined(m) => (m, true),
                super::Event::Failed(m) | super::Event::Left(m) => (m, false),
                super::Event::Updated(_) => continue,
            };
            if member.name == self.config.name {
                continue;
            }
            let key = (ring_position(&member.name), member.name.clone());
            if live {
                self.gone.remove(&member.name);
                if runs_close_watch(member) {
                    changed |= self.watchers.insert(key.clone());
                } else {
                    changed |= self.watchers.remove(&key);
                }
                changed |= self.ring.insert(key);
            } else {
                self.gone.insert(member.name.clone());
                self.watchers.remove(&key);
                changed |= self.ring.remove(&key);
            }
        }
        if changed {
            self.choose_neighbours(now);
        }
    }

    /// Watches our successor and predecessor among the members that watch, and the members
    /// that do not watch between us and our successor, keeping what we know of those we
    /// watched already.
    pub(super) fn choose_neighbours(&mut self, now: Instant) {
        let mut neighbours: Vec<(String, Side)> = Vec::new();
        if self.config.close_watch && !self.leaving && !self.ring.is_empty() {
            let me = (ring_position(&self.config.name), self.config.name.clone());
            let successor = self
                .watchers
                .range(me.clone()..)
                .next()
                .or_else(|| self.watchers.iter().next());
            let predecessor = self
                .watchers
                .range(..me.clone())
                .next_back()
                .or_else(|| self.watchers.iter().next_back());
            // Going round from us: the members that do not watch, up to our successor (all
            // of them when we are the only member that watches).
            let around = self.ring.range(me.clone()..).chain(self.ring.range(..me));
            for (position, name) in around {
                if successor.is_some_and(|(p, n)| (p, n) == (position, name)) {
                    break;
                }
                if !self.watchers.contains(&(*position, name.clone())) {
                    neighbours.push((name.clone(), Side::Successor));
                }
            }
            if let Some((_, name)) = successor {
                neighbours.push((name.clone(), Side::Successor));
            }
            // With one other member that watches, it is both: pinging it is enough.
            if let Some((_, name)) = predecessor.filter(|p| Some(*p) != successor) {
                neighbours.push((name.clone(), Side::Predecessor));
            }
        }
        let mut watched = BTreeMap::new();
        for (name, side) in neighbours {
            let entry = match self.watched.remove(&name) {
                Some(known) => Watched { side, ..known },
                None => Watched {
                    side,
                    last_heard: now,
                    next_round: now,
                    confirm: None,
                },
            };
            watched.insert(name, entry);
        }
        if watched.is_empty() {
            self.watch_pings.clear();
        }
        self.watched = watched;
    }

    /// A datagram came from `name`'s address: it is alive, whatever the datagram says.
    pub(super) fn heard_from(&mut self, name: &str, now: Instant) {
        if let Some(watched) = self.watched.get_mut(name) {
            watched.last_heard = now;
            watched.confirm = None;
        }
    }

    /// An answer to a ping of the close watch sent at `sent`.
    pub(super) fn on_watch_ack(&mut self, ping: WatchPing, sent: Instant, now: Instant) {
        match ping {
            WatchPing::Target(target) | WatchPing::Indirect { target, .. } => {
                self.heard_from(&target, now)
            }
            WatchPing::Helper { target, helper } => {
                if let Some(confirm) = self.confirm_of(&target, sent) {
                    confirm.answered.insert(helper);
                }
            }
        }
    }

    /// A helper does not know the member we asked it to check (or, much later, its relay of
    /// an older confirmation timed out: that one is ignored).
    pub(super) fn on_watch_nack(&mut self, ping: WatchPing, sent: Instant) {
        if let WatchPing::Indirect { target, helper } = ping
            && let Some(confirm) = self.confirm_of(&target, sent)
        {
            confirm.unaware.insert(helper);
        }
    }

    /// The confirmation running for `target`, if the ping sent at `sent` belongs to it.
    fn confirm_of(&mut self, target: &str, sent: Instant) -> Option<&mut Confirm> {
        self.watched
            .get_mut(target)?
            .confirm
            .as_mut()
            .filter(|c| sent >= c.started)
    }

    /// When the close watch next has something to do.
    pub(super) fn next_watch_round(&self) -> Option<Instant> {
        self.watched.values().map(|w| w.next_round).min()
    }

    /// Runs the round of every watched neighbour that is due.
    pub(super) fn watch_rounds(&mut self, now: Instant, out: &mut Vec<Output>) {
        self.watch_pings
            .retain(|_, (_, sent)| now.saturating_duration_since(*sent) < Duration::from_secs(1));
        let due: Vec<String> = self
            .watched
            .iter()
            .filter(|(_, w)| now >= w.next_round)
            .map(|(name, _)| name.clone())
            .collect();
        for name in due {
            self.watch_round(&name, now, out);
        }
    }

    fn watch_round(&mut self, name: &str, now: Instant, out: &mut Vec<Output>) {
        let interval = self.config.watch_interval;
        let confirm_interval = self.config.watch_confirm_interval;
        let silence = self.config.watch_silence;
        let confirm_for = self.config.watch_confirm;
        let Some(addr) = self
            .members
            .get(name)
            .filter(|m| !m.is_gone())
            .map(|m| m.addr)
        else {
            // Gone, and the ring will drop it with the event; until then, no busy loop.
            if let Some(watched) = self.watched.get_mut(name) {
                watched.next_round = now + interval;
            }
            return;
        };
        let Some(watched) = self.watched.get_mut(name) else {
            return;
        };
        let quiet = now.saturating_duration_since(watched.last_heard);
        let confirming = match &mut watched.confirm {
            Some(confirm) if now >= confirm.deadline => {
                // With no one else to ask (two members), silence alone decides.
                if confirm.checked_by_others() || confirm.helpers == 0 {
                    if let Some(member) = self.members.get(name).cloned() {
                        self.declare_dead(&member, now, out);
                    }
                    return;
                }
                // Nobody answered us (we are the one cut off), or nobody could check.
                watched.last_heard = now;
                watched.confirm = None;
                watched.next_round = now + interval;
                false
            }
            Some(confirm) => {
                watched.next_round = (now + confirm_interval).min(confirm.deadline);
                true
            }
            None if quiet >= silence => {
                watched.confirm = Some(Confirm {
                    started: now,
                    deadline: now + confirm_for,
                    helpers: 0,
                    answered: BTreeSet::new(),
                    unaware: BTreeSet::new(),
                });
                watched.next_round = now + confirm_interval;
                true
            }
            None => {
                watched.next_round = now + interval;
                // A predecessor pinging us is heard every interval; one ping missed, and we
                // ask ourselves (a fifth of an interval of slack for timers that fire late).
                if watched.side == Side::Successor || quiet >= interval + interval / 5 {
                    self.ping_watched(name, addr, now, out);
                }
                false
            }
        };
        if confirming && let Some(member) = self.members.get(name).cloned() {
            self.confirm_round(&member, now, out);
        }
    }

    fn ping_watched(&mut self, name: &str, addr: SocketAddr, now: Instant, out: &mut Vec<Output>) {
        let seq_no = self.next_seq();
        self.watch_pings
            .insert(seq_no, (WatchPing::Target(name.to_string()), now));
        out.push(Output::Packet {
            to: addr,
            messages: vec![Message::Ping(Ping {
                seq_no,
                node: name.to_string(),
                ..Ping::default()
            })],
        });
    }

    /// One round of a confirmation: the silent member pinged directly, and through up to
    /// `indirect_checks` alive members, each pinged too: its ack tells us our own network
    /// works. New helpers each round, so one lost path does not decide.
    fn confirm_round(&mut self, target: &Member, now: Instant, out: &mut Vec<Output>) {
        self.ping_watched(&target.name, target.addr, now, out);
        // Suspects help too: a member we merely suspect may well answer, and if we are the
        // one cut off, counting it keeps us from blaming everyone else.
        let helpers = self.helpers(&target.name, |m| !m.is_gone());
        for (helper, to) in &helpers {
            let helper_seq = self.next_seq();
            let target_seq = self.next_seq();
            let (name, helper) = (&target.name, helper);
            self.watch_pings.insert(
                helper_seq,
                (
                    WatchPing::Helper {
                        target: name.clone(),
                        helper: helper.clone(),
                    },
                    now,
                ),
            );
            self.watch_pings.insert(
                target_seq,
                (
                    WatchPing::Indirect {
                        target: name.clone(),
                        helper: helper.clone(),
                    },
                    now,
                ),
            );
            out.push(Output::Packet {
                to: *to,
                messages: vec![
                    Message::Ping(Ping {
                        seq_no: helper_seq,
                        node: helper.clone(),
                        ..Ping::default()
                    }),
                    Message::IndirectPing(self.indirect_ping(target_seq, target, true)),
                ],
            });
        }
        if let Some(confirm) = self
            .watched
            .get_mut(&target.name)
            .and_then(|w| w.confirm.as_mut())
        {
            confirm.helpers = confirm.helpers.max(helpers.len());
        }
    }

    /// Declares a watched member dead and tells every live member at once, rather than
    /// through gossip, so that whoever takes over its IPs does so now.
    fn declare_dead(&mut self, member: &Member, now: Instant, out: &mut Vec<Output>) {
        let dead = Suspicion {
            incarnation: member.incarnation,
            node: member.name.clone(),
            from: self.config.name.clone(),
        };
        tracing::debug!(member = %member.name, "a watched member stayed silent: declared dead");
        self.on_dead(dead.clone(), now, out);
        out.extend(self.to_every_live_member(&Message::Dead(dead)));
    }
}

#[cfg(test)]
mod tests {
    use super::ring_position;

    #[test]
    fn ring_positions_are_fixed_and_spread() {
        // A change here changes which members watch which: every version must agree. The
        // values were computed separately (FNV-1a 64, then SplitMix64's finalizer).
        assert_eq!(ring_position(""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(ring_position("node-1"), 0x1395_0d4e_f307_e655);
        assert_eq!(ring_position("node-2"), 0xc8c9_d86c_1e83_187b);
    }
}
