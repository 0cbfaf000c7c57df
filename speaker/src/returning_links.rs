//! Interfaces that come back up wait for gossip before this node announces on them again.
//!
//! While a node's link is down, the others declare it dead and take its IPs over; the node
//! itself cannot hear that until its link works again. Answering ARP on the returning link at
//! once would make two nodes answer for the same IP until the news crosses (up to a second,
//! while the kernel resolves its neighbours again, holding back what we send). So a returning
//! interface counts as usable only once another member has answered a ping sent after it came
//! back (by then our refutation of any death has gone out ahead of that ping), when no other
//! member is alive, or after `MAX_WAIT`.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use tokio::time::Instant;

/// The longest a returning interface waits for gossip.
pub const MAX_WAIT: Duration = Duration::from_secs(3);

#[derive(Debug, Default)]
pub struct ReturningLinks {
    /// The interfaces usable at the last update; `None` before the first.
    last: Option<BTreeSet<String>>,
    /// Interfaces back since the given time, and not usable yet.
    waiting: BTreeMap<String, Instant>,
}

impl ReturningLinks {
    /// Of the interfaces that are up now (`eligible`), those this node may announce on.
    /// `contact` is when the latest ping another member answered had been sent;
    /// `others_alive` whether gossip knows any other live member.
    pub fn usable(
        &mut self,
        eligible: &BTreeSet<String>,
        contact: Option<Instant>,
        others_alive: bool,
        now: Instant,
    ) -> BTreeSet<String> {
        if let Some(last) = &self.last {
            for name in eligible.difference(last) {
                self.waiting.insert(name.clone(), now);
            }
        }
        self.last = Some(eligible.clone());
        self.waiting.retain(|name, since| {
            eligible.contains(name)
                && others_alive
                && contact.is_none_or(|c| c <= *since)
                && now.saturating_duration_since(*since) < MAX_WAIT
        });
        eligible
            .iter()
            .filter(|name| !self.waiting.contains_key(*name))
            .cloned()
            .collect()
    }

    /// The interfaces usable at the last update.
    pub fn last(&self) -> &BTreeSet<String> {
        static NONE: BTreeSet<String> = BTreeSet::new();
        self.last.as_ref().unwrap_or(&NONE)
    }

    /// Whether an interface is waiting (the caller checks again soon).
    pub fn any_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn a_returning_interface_waits_for_gossip_contact() {
        let t0 = Instant::now();
        let mut links = ReturningLinks::default();
        let ms = Duration::from_millis;
        // At start, every interface is usable: there is nothing to come back from.
        assert_eq!(
            links.usable(&set(&["eth0"]), None, true, t0),
            set(&["eth0"])
        );
        assert_eq!(
            links.usable(&set(&[]), Some(t0), true, t0 + ms(10)),
            set(&[])
        );
        // Back up at 2 s: the last packet heard is older, so it waits...
        let back = t0 + ms(2000);
        assert_eq!(
            links.usable(&set(&["eth0"]), Some(t0), true, back),
            set(&[])
        );
        assert!(links.any_waiting());
        assert_eq!(
            links.usable(&set(&["eth0"]), Some(t0), true, back + ms(50)),
            set(&[])
        );
        // ...until a packet arrives after it came back.
        let heard = back + ms(60);
        assert_eq!(
            links.usable(&set(&["eth0"]), Some(heard), true, heard),
            set(&["eth0"])
        );
        assert!(!links.any_waiting());
    }

    #[test]
    fn alone_or_after_the_longest_wait_a_returning_interface_is_usable() {
        let t0 = Instant::now();
        let mut links = ReturningLinks::default();
        links.usable(&set(&[]), None, true, t0);
        assert_eq!(
            links.usable(&set(&["eth0"]), None, false, t0),
            set(&["eth0"])
        );
        links.usable(&set(&[]), None, true, t0);
        assert_eq!(links.usable(&set(&["eth0"]), None, true, t0), set(&[]));
        assert_eq!(
            links.usable(&set(&["eth0"]), None, true, t0 + MAX_WAIT),
            set(&["eth0"])
        );
    }
}
