//! The admin API (`ferrolb-proto`'s Speaker service). What it serves is published where it
//! is known: the loop publishes the gossip members, the announcer its announcements, the
//! BGP shell its sessions and BFD's. The server ([`server`]) only reads those snapshots; it
//! never reaches into the loop.
pub mod server;

use ferrolb_gossip::core::{Member, State};
use ferrolb_proto::v1;
use std::collections::BTreeMap;
use std::net::IpAddr;
use tokio::sync::watch;

/// The layer 2 announcements, by interface and IP.
pub type Announced = BTreeMap<(String, IpAddr), v1::Announcement>;

/// The BGP sessions, by BGPPeer.
pub type BgpSessions = BTreeMap<String, v1::Session>;

/// The snapshots the server reads.
#[derive(Clone)]
pub struct Snapshots {
    pub node: String,
    pub members: watch::Receiver<Vec<v1::Member>>,
    pub announcements: watch::Receiver<Announced>,
    pub sessions: watch::Receiver<BgpSessions>,
    pub bfd: watch::Receiver<Vec<v1::BfdSession>>,
}

/// Milliseconds since the Unix epoch at `at`, a monotonic instant (the snapshots' times are
/// for people: wall clock).
pub fn unix_ms(at: std::time::Instant) -> u64 {
    #[allow(clippy::disallowed_methods)] // the I/O shell: reading the clocks is its job
    let (now, wall) = (std::time::Instant::now(), std::time::SystemTime::now());
    let wall_at = match now.checked_duration_since(at) {
        Some(ago) => wall.checked_sub(ago),
        None => wall.checked_add(at - now),
    };
    wall_at
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Milliseconds since the Unix epoch, now.
pub fn unix_ms_now() -> u64 {
    #[allow(clippy::disallowed_methods)] // the I/O shell: reading the clock is its job
    unix_ms(std::time::Instant::now())
}

/// Publishes the gossip members when one joined, left or changed state (not for the
/// milliseconds their times move by as they are converted again).
pub fn publish_members(published: &watch::Sender<Vec<v1::Member>>, now: &[Member]) {
    let shown = members(now);
    published.send_if_modified(|before| {
        let same = |a: &v1::Member, b: &v1::Member| {
            (&a.name, &a.address, a.state, a.incarnation)
                == (&b.name, &b.address, b.state, b.incarnation)
        };
        let changed =
            before.len() != shown.len() || before.iter().zip(&shown).any(|(a, b)| !same(a, b));
        if changed {
            *before = shown;
        }
        changed
    });
}

/// Gossip members as the API shows them, by name.
pub fn members(members: &[Member]) -> Vec<v1::Member> {
    let mut shown: Vec<v1::Member> = members
        .iter()
        .map(|m| v1::Member {
            name: m.name.clone(),
            address: m.addr.to_string(),
            state: match m.state {
                State::Alive => v1::MemberState::Alive,
                State::Suspect => v1::MemberState::Suspect,
                State::Dead => v1::MemberState::Dead,
                State::Left => v1::MemberState::Left,
            }
            .into(),
            incarnation: m.incarnation,
            since_unix_ms: unix_ms(m.state_change),
        })
        .collect();
    shown.sort_by(|a, b| a.name.cmp(&b.name));
    shown
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn instants_become_wall_clock_milliseconds() {
        #[allow(clippy::disallowed_methods)] // comparing against the wall clock is the test
        let (now, wall) = (Instant::now(), std::time::SystemTime::now());
        let wall_ms = wall
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_millis() as u64;
        let ago = unix_ms(now - Duration::from_secs(60));
        assert!(ago.abs_diff(wall_ms - 60_000) < 1_000, "{ago} vs {wall_ms}");
        let ahead = unix_ms(now + Duration::from_secs(60));
        assert!(ahead.abs_diff(wall_ms + 60_000) < 1_000);
    }
}
