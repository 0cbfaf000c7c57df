//! A node that dies cannot withdraw its ServiceL2Status and ServiceBGPStatus objects, and a
//! status left behind says a dead node announces a Service. The first live speaker by name
//! removes them once gossip declares the node dead (MetalLB's speakers clean up after lost
//! nodes too): every status labelled with the lost node's name, whatever it announced.
use ferrolb_gossip::core::{Member, State};
use std::collections::BTreeSet;

#[derive(Default)]
pub struct LostNodes {
    /// Dead members whose statuses were removed (forgotten once alive again or reaped).
    cleaned: BTreeSet<String>,
}

impl LostNodes {
    /// The dead members this node cleans up after now: none unless it is the first live
    /// member by name (one speaker deletes, not all), each dead member once.
    pub fn due(&mut self, me: &str, members: &[Member]) -> Vec<String> {
        let dead = |m: &&Member| m.state == State::Dead;
        self.cleaned
            .retain(|name| members.iter().filter(dead).any(|m| &m.name == name));
        let first_live = members
            .iter()
            .filter(|m| matches!(m.state, State::Alive | State::Suspect))
            .map(|m| m.name.as_str())
            .min();
        if first_live != Some(me) {
            return Vec::new();
        }
        let due: Vec<String> = members
            .iter()
            .filter(dead)
            .filter(|m| !self.cleaned.contains(&m.name))
            .map(|m| m.name.clone())
            .collect();
        self.cleaned.extend(due.iter().cloned());
        due
    }

    /// Cleaning up after `node` failed: it is due again at the next call.
    pub fn failed(&mut self, node: &str) {
        self.cleaned.remove(node);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;
    use std::time::Instant;

    fn member(name: &str, state: State) -> Member {
        Member {
            name: name.into(),
            addr: SocketAddr::from(([192, 0, 2, 1], 7946)),
            meta: Vec::new(),
            incarnation: 1,
            state,
            vsn: Vec::new(),
            #[allow(clippy::disallowed_methods)] // any instant will do
            state_change: Instant::now(),
        }
    }

    #[test]
    fn the_first_live_member_cleans_up_after_each_dead_one_once() {
        let members = [
            member("n1", State::Dead),
            member("n2", State::Alive),
            member("n3", State::Suspect),
        ];
        let mut n3 = LostNodes::default();
        assert!(n3.due("n3", &members).is_empty(), "n2 comes first");
        let mut n2 = LostNodes::default();
        assert_eq!(n2.due("n2", &members), ["n1"]);
        assert!(n2.due("n2", &members).is_empty(), "once");
        // n1 back, and dead again: cleaned again.
        let back = [member("n1", State::Alive), members[1].clone()];
        assert!(n2.due("n2", &back).is_empty());
        assert_eq!(n2.due("n2", &members), ["n1"]);
        // n2 dies too: n3 is now first, and cleans up after both.
        let both = [
            member("n1", State::Dead),
            member("n2", State::Dead),
            member("n3", State::Alive),
        ];
        assert_eq!(n3.due("n3", &both), ["n1", "n2"]);
        // A member that left gracefully withdrew its own statuses.
        let left = [member("n1", State::Left), member("n3", State::Alive)];
        assert!(LostNodes::default().due("n3", &left).is_empty());
    }
}
