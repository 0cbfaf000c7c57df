//! Services nobody announces by layer 2 for want of an interface (MetalLB's `announceFailed`
//! Warning Event), reported only once the gap has lasted [`REPORT_AFTER`]: a link that
//! flaps, an interface back up waiting for gossip, or a speaker starting (or cut off) alone
//! sees a gap for a moment that is not the operator's to fix. Each gap is reported once, and
//! again only if it changes or closes and opens again.
use crate::plan::election::LackingInterfaces;
use ferrolb_api::service_key::ServiceKey;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long a gap must last before it is reported: longer than an interface waits for gossip
/// after coming back (`returning_links::MAX_WAIT`) and than a speaker waits to join.
pub const REPORT_AFTER: Duration = Duration::from_secs(10);

/// A Service's IPs, and why no node announces them.
pub type Gap = (Vec<IpAddr>, LackingInterfaces);

#[derive(Default)]
pub struct Unannounced {
    /// The gaps this node is the one to report, each with when it was first seen as it is.
    seen: BTreeMap<ServiceKey, (Gap, Instant)>,
    /// The gaps reported, as they were reported.
    said: BTreeMap<ServiceKey, Gap>,
}

impl Unannounced {
    /// The gaps the latest plan has for this node to report.
    pub fn update(&mut self, now: Instant, current: &BTreeMap<ServiceKey, Gap>) {
        self.seen
            .retain(|service, (gap, _)| current.get(service) == Some(gap));
        self.said
            .retain(|service, gap| current.get(service) == Some(gap));
        for (service, gap) in current {
            self.seen
                .entry(service.clone())
                .or_insert_with(|| (gap.clone(), now));
        }
    }

    /// The gaps to report now: seen for [`REPORT_AFTER`], not reported yet.
    pub fn due(&mut self, now: Instant) -> Vec<(ServiceKey, Gap)> {
        let due: Vec<(ServiceKey, Gap)> = self
            .seen
            .iter()
            .filter(|(service, (_, since))| {
                now.saturating_duration_since(*since) >= REPORT_AFTER
                    && !self.said.contains_key(*service)
            })
            .map(|(service, (gap, _))| (service.clone(), gap.clone()))
            .collect();
        for (service, gap) in &due {
            self.said.insert(service.clone(), gap.clone());
        }
        due
    }

    /// When the next gap becomes due, if one waits.
    pub fn next_due(&self) -> Option<Instant> {
        self.seen
            .iter()
            .filter(|(service, _)| !self.said.contains_key(*service))
            .map(|(_, (_, since))| *since + REPORT_AFTER)
            .min()
    }
}

/// The Warning Event's message: which IPs, which nodes may announce them, what they lack.
pub fn message(me: &str, (ips, lacking): &Gap) -> String {
    let ips: Vec<String> = ips.iter().map(ToString::to_string).collect();
    const LISTED: usize = 10;
    let mut nodes = lacking
        .nodes
        .iter()
        .take(LISTED)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if lacking.nodes.len() > LISTED {
        nodes.push_str(&format!(" and {} more", lacking.nodes.len() - LISTED));
    }
    let wanted = if lacking.named.is_empty() {
        "an interface".to_string()
    } else {
        let named: Vec<&str> = lacking.named.iter().map(String::as_str).collect();
        format!(
            "any of the interfaces its L2Advertisements name ({})",
            named.join(", ")
        )
    };
    format!(
        "LB IP {:?} is announced by layer 2 on no node: none of the nodes that may announce it ({nodes}) has {wanted} up and not excluded; node {me:?} would announce it with protocol \"layer2\"",
        ips.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn gap(named: &[&str]) -> Gap {
        (
            vec!["198.51.100.200".parse().unwrap()],
            LackingInterfaces {
                node: "n1".into(),
                nodes: vec!["n1".into(), "n2".into()],
                named: named.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>(),
            },
        )
    }

    #[test]
    fn a_gap_is_reported_once_after_it_lasted() {
        let t0 = tokio::time::Instant::now().into_std();
        let web = ServiceKey::new("default", "web");
        let mut unannounced = Unannounced::default();
        let current = BTreeMap::from([(web.clone(), gap(&["eth9"]))]);
        unannounced.update(t0, &current);
        assert!(unannounced.due(t0 + REPORT_AFTER / 2).is_empty());
        // Seen again at every pass: still timed from the first.
        unannounced.update(t0 + REPORT_AFTER / 2, &current);
        assert_eq!(unannounced.next_due(), Some(t0 + REPORT_AFTER));
        let due = unannounced.due(t0 + REPORT_AFTER);
        assert_eq!(due, [(web.clone(), gap(&["eth9"]))]);
        // Said once.
        unannounced.update(t0 + REPORT_AFTER * 2, &current);
        assert!(unannounced.due(t0 + REPORT_AFTER * 3).is_empty());
        assert_eq!(unannounced.next_due(), None);
        // Closed, then open again: a new gap, reported again once it lasted.
        unannounced.update(t0 + REPORT_AFTER * 3, &BTreeMap::new());
        unannounced.update(t0 + REPORT_AFTER * 4, &current);
        assert!(unannounced.due(t0 + REPORT_AFTER * 4).is_empty());
        assert_eq!(unannounced.due(t0 + REPORT_AFTER * 5).len(), 1);
    }

    #[test]
    fn a_gap_shorter_than_the_wait_is_never_reported() {
        let t0 = tokio::time::Instant::now().into_std();
        let web = ServiceKey::new("default", "web");
        let mut unannounced = Unannounced::default();
        unannounced.update(t0, &BTreeMap::from([(web.clone(), gap(&["eth9"]))]));
        unannounced.update(t0 + Duration::from_secs(3), &BTreeMap::new());
        assert!(unannounced.due(t0 + REPORT_AFTER * 2).is_empty());
        // A gap that changes (another interface named) starts its wait again.
        unannounced.update(
            t0 + REPORT_AFTER * 2,
            &BTreeMap::from([(web.clone(), gap(&["eth9"]))]),
        );
        unannounced.update(
            t0 + REPORT_AFTER * 2 + Duration::from_secs(5),
            &BTreeMap::from([(web, gap(&["eth8"]))]),
        );
        assert!(unannounced.due(t0 + REPORT_AFTER * 3).is_empty());
    }

    #[test]
    fn the_message_names_the_ips_the_nodes_and_what_they_lack() {
        let text = message("n1", &gap(&["eth9"]));
        assert!(text.contains("\"198.51.100.200\""), "{text}");
        assert!(text.contains("(n1, n2)"), "{text}");
        assert!(text.contains("name (eth9)"), "{text}");
        assert!(text.contains("node \"n1\" would announce"), "{text}");
        let any = message("n1", &gap(&[]));
        assert!(any.contains("has an interface up"), "{any}");
        let mut many = gap(&["eth9"]);
        many.1.nodes = (0..25).map(|i| format!("n{i}")).collect();
        assert!(message("n0", &many).contains("n9 and 15 more"));
    }
}
