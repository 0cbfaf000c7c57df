//! Deciding what another MAC claiming one of our IPs means, without I/O: a speaker whose view
//! of the members has not converged yet (ignored), a host we cannot place yet (held until the
//! views have converged), a split brain with a named speaker, or a rogue host. Each claimant
//! is reported at most once a minute per IP.
use crate::membership::meta;
use ferrolb_api::service_key::ServiceKey;
use ferrolb_gossip::core::{Member, State};
use ferrolb_l2::packet::Mac;
use std::collections::{BTreeMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A conflict is reported at most this often per IP and claimant (one other speaker, or any
/// number of MACs that belong to no speaker).
pub const REPORT_EVERY: Duration = Duration::from_secs(60);
/// For this long after this speaker starts or a member joins (or comes back), views of the
/// members may still differ, so another speaker briefly announcing our IP (even one we have
/// not heard of yet) is convergence, not a split brain or a rogue host. A claim that persists
/// is seen again: the layer 2 responder reports a claiming MAC again each second.
pub const JOIN_CONVERGENCE: Duration = Duration::from_secs(2);
/// Conflicts held during convergence beyond this many are dropped (a claim that persists is
/// reported again).
const MAX_HELD: usize = 64;

/// Another MAC claims an IP this node announces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub ip: IpAddr,
    pub mac: Mac,
    pub interface: String,
    /// The Service announced with the IP when the claim was seen (a held claim is decided
    /// later, when the IP may have moved on).
    pub service: Option<ServiceKey>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Decided once the views have converged (`due`).
    Held,
    /// A speaker whose view differed a moment ago: its next claim counts if it persists.
    Converging { node: String },
    /// Already reported for this IP and claimant.
    Reported,
    /// Worth a Warning: a split brain with `node`, or a host that is no speaker (`None`).
    Report { node: Option<String> },
}

pub struct Conflicts {
    last_join: Instant,
    held: VecDeque<(Instant, Conflict)>,
    reported: BTreeMap<(IpAddr, Option<String>), Instant>,
}

impl Conflicts {
    pub fn new(now: Instant) -> Conflicts {
        Conflicts {
            last_join: now,
            held: VecDeque::new(),
            reported: BTreeMap::new(),
        }
    }

    /// A member joined (or came back): views may differ for a moment.
    pub fn joined(&mut self, now: Instant) {
        self.last_join = now;
    }

    /// What a claim means, given the members as this node sees them. `held` says the claim
    /// was held before and is decided now.
    pub fn assess(
        &mut self,
        now: Instant,
        conflict: &Conflict,
        members: &[Member],
        me: &str,
        held: bool,
    ) -> Verdict {
        // Another speaker's MAC, as its gossip metadata says.
        let other = members.iter().find(|m| {
            m.name != me
                && meta::parse(&m.meta)
                    .is_some_and(|i| i.values().any(|mac| *mac == Some(conflict.mac)))
        });
        let converging = now.duration_since(self.last_join) < JOIN_CONVERGENCE;
        match other {
            // Perhaps a speaker we have not heard of yet.
            None if converging && !held => {
                if self.held.len() < MAX_HELD {
                    self.held.push_back((now, conflict.clone()));
                }
                return Verdict::Held;
            }
            // A member we hold dead is not converging: its claim is a split brain at once.
            Some(member) if member.state == State::Alive && (converging || held) => {
                return Verdict::Converging {
                    node: member.name.clone(),
                };
            }
            _ => {}
        }
        let key = (conflict.ip, other.map(|m| m.name.clone()));
        if self
            .reported
            .get(&key)
            .is_some_and(|at| now.duration_since(*at) < REPORT_EVERY)
        {
            return Verdict::Reported;
        }
        self.reported
            .retain(|_, at| now.duration_since(*at) < REPORT_EVERY);
        self.reported.insert(key.clone(), now);
        Verdict::Report { node: key.1 }
    }

    /// When the first held claim is to be decided.
    pub fn next_due(&self) -> Option<Instant> {
        self.held.front().map(|(at, _)| *at + JOIN_CONVERGENCE)
    }

    /// The held claims whose time to be decided has come.
    pub fn due(&mut self, now: Instant) -> Vec<Conflict> {
        let mut due = Vec::new();
        while let Some((at, _)) = self.held.front() {
            if now.duration_since(*at) < JOIN_CONVERGENCE {
                break;
            }
            if let Some((_, conflict)) = self.held.pop_front() {
                due.push(conflict);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROGUE: Mac = [2, 0, 0, 0, 0, 0x99];
    const N2_MAC: Mac = [2, 0, 0, 0, 0, 0x12];

    fn member(name: &str, mac: Mac, state: State, now: Instant) -> Member {
        let mut interfaces = meta::Interfaces::new();
        interfaces.insert("eth0".into(), Some(mac));
        Member {
            name: name.into(),
            addr: "192.0.2.12:7946".parse().expect("an address"),
            meta: meta::encode(&interfaces),
            incarnation: 1,
            state,
            vsn: vec![1, 5, 2, 0, 0, 0],
            state_change: now,
        }
    }

    fn claim(mac: Mac) -> Conflict {
        Conflict {
            ip: "198.51.100.10".parse().expect("an IP"),
            mac,
            interface: "eth0".into(),
            service: None,
        }
    }

    // The clock starts anywhere: times are offsets from this one reading.
    #[allow(clippy::disallowed_methods)]
    fn start() -> Instant {
        Instant::now()
    }

    #[test]
    fn an_unknown_mac_while_members_join_is_decided_once_they_have() {
        let t0 = start();
        let mut conflicts = Conflicts::new(t0);
        let at = t0 + Duration::from_millis(100);
        assert_eq!(
            conflicts.assess(at, &claim(ROGUE), &[], "n1", false),
            Verdict::Held
        );
        assert_eq!(conflicts.next_due(), Some(at + JOIN_CONVERGENCE));
        assert!(conflicts.due(at + Duration::from_secs(1)).is_empty());
        let due = conflicts.due(at + JOIN_CONVERGENCE);
        assert_eq!(due, vec![claim(ROGUE)]);
        // Still nobody's MAC once the views converged: a rogue host.
        let later = at + JOIN_CONVERGENCE;
        assert_eq!(
            conflicts.assess(later, &due[0], &[], "n1", true),
            Verdict::Report { node: None }
        );
        assert_eq!(
            conflicts.assess(later, &claim(ROGUE), &[], "n1", false),
            Verdict::Reported
        );
    }

    #[test]
    fn a_held_claim_that_turns_out_to_be_a_speaker_is_convergence() {
        let t0 = start();
        let mut conflicts = Conflicts::new(t0);
        assert_eq!(
            conflicts.assess(t0, &claim(N2_MAC), &[], "n1", false),
            Verdict::Held
        );
        let later = t0 + JOIN_CONVERGENCE;
        let members = [member("n2", N2_MAC, State::Alive, t0)];
        assert_eq!(
            conflicts.assess(later, &claim(N2_MAC), &members, "n1", true),
            Verdict::Converging { node: "n2".into() }
        );
    }

    #[test]
    fn a_speaker_still_claiming_after_convergence_is_a_split_brain_and_a_rogue_is_reported_too() {
        let t0 = start();
        let mut conflicts = Conflicts::new(t0);
        let later = t0 + Duration::from_secs(5);
        let members = [member("n2", N2_MAC, State::Alive, t0)];
        assert_eq!(
            conflicts.assess(later, &claim(N2_MAC), &members, "n1", false),
            Verdict::Report {
                node: Some("n2".into())
            }
        );
        // The split brain does not hide a rogue host claiming the same IP.
        assert_eq!(
            conflicts.assess(later, &claim(ROGUE), &members, "n1", false),
            Verdict::Report { node: None }
        );
    }

    #[test]
    fn a_dead_speakers_claim_is_a_split_brain_even_while_members_join() {
        let t0 = start();
        let mut conflicts = Conflicts::new(t0);
        let members = [member("n2", N2_MAC, State::Dead, t0)];
        assert_eq!(
            conflicts.assess(t0, &claim(N2_MAC), &members, "n1", false),
            Verdict::Report {
                node: Some("n2".into())
            }
        );
    }
}
