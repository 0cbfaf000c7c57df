//! A router's kernel route changes, as `ip -ts monitor route` run in its namespace logs them:
//! where traffic is decided, timestamped by the kernel's notification, with no polling to
//! load the two cores.

/// One change: when (Unix time, s), whether the route was deleted, its prefix (a host route
/// is printed as the bare address) and its next hops.
#[derive(Clone, Debug, PartialEq)]
pub struct RouteChange {
    pub at: f64,
    pub deleted: bool,
    pub prefix: String,
    pub next_hops: Vec<String>,
}

/// The changes in a monitor's log; an ECMP route's next hops follow on their own lines.
pub fn parse(log: &str) -> Vec<RouteChange> {
    let mut changes: Vec<RouteChange> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix('[') {
            let Some((stamp, text)) = rest.split_once("] ") else {
                continue;
            };
            let Some(at) = unix_time(stamp) else {
                continue;
            };
            let deleted = text.starts_with("Deleted ");
            let text = text.trim_start_matches("Deleted ");
            let prefix = text
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            changes.push(RouteChange {
                at,
                deleted,
                prefix,
                next_hops: via(text),
            });
        } else if let Some(last) = changes.last_mut() {
            last.next_hops.extend(via(line));
            last.next_hops.sort();
        }
    }
    changes
}

/// The addresses after "via" ("via inet6 fe80::1" for an IPv4 route by an IPv6 next hop).
fn via(text: &str) -> Vec<String> {
    let words: Vec<&str> = text
        .split_whitespace()
        .filter(|w| *w != "inet6" && *w != "inet")
        .collect();
    words
        .windows(2)
        .filter(|w| w[0] == "via")
        .map(|w| w[1].to_string())
        .collect()
}

/// `ip -ts` prints local time as `2026-12-03T11:10:05.967021`; the lab machine runs in UTC,
/// the clock the components' logs are stamped with.
fn unix_time(stamp: &str) -> Option<f64> {
    crate::layer2::log_time(&format!("{stamp}Z"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_monitor_log_is_read_with_its_next_hops_and_times() {
        let log = "[2026-12-03T11:10:05.967021] 198.18.255.1 dev lo scope link \n\
                   [2026-12-03T11:10:06.000000] 203.0.113.2 proto bgp metric 20 \n\
                   \tnexthop via 192.0.2.12 dev eth0 weight 1 \n\
                   \tnexthop via 192.0.2.11 dev eth0 weight 1 \n\
                   [2026-12-03T11:10:07.5] Deleted 203.0.113.3 via inet6 fe80::1 dev un1 proto bgp \n";
        let changes = parse(log);
        assert_eq!(changes.len(), 3);
        // `date -d 2026-12-03T11:10:05.967021 +%s.%N` says 1796296205.967021.
        assert!((changes[0].at - 1_796_296_205.967_021).abs() < 1e-6);
        assert_eq!(changes[1].next_hops, ["192.0.2.11", "192.0.2.12"]);
        assert!(changes[2].deleted);
        assert_eq!(changes[2].prefix, "203.0.113.3");
        assert_eq!(changes[2].next_hops, ["fe80::1"]);
    }
}
