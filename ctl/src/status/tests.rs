//! `ferrolbctl status` output against golden files (`golden/`). After a deliberate change
//! of the output, `FERROLB_UPDATE_GOLDEN=1 cargo test -p ferrolbctl status` writes them again.
use super::*;

/// 2026-12-03T12:00:00Z.
const NOW: u64 = 1_796_299_200_000;

fn view() -> View {
    let ago = |s: u64| NOW - s * 1000;
    View {
        node: "n1".into(),
        members: Some(vec![
            v1::Member {
                name: "n1".into(),
                address: "172.30.0.11:7946".into(),
                state: v1::MemberState::Alive.into(),
                incarnation: 1,
                since_unix_ms: ago(3725),
            },
            v1::Member {
                name: "n2".into(),
                address: "172.30.0.12:7946".into(),
                state: v1::MemberState::Suspect.into(),
                incarnation: 7,
                since_unix_ms: ago(2),
            },
            v1::Member {
                name: "node-with-a-long-name".into(),
                address: "[fd00::13]:7946".into(),
                state: v1::MemberState::Dead.into(),
                incarnation: 3,
                since_unix_ms: ago(200_000),
            },
        ]),
        announcements: Some(vec![
            v1::Announcement {
                ip: "172.30.0.100".into(),
                service: "default/web".into(),
                interface: "eth0".into(),
                since_unix_ms: ago(75),
                last_announced_unix_ms: ago(70),
            },
            v1::Announcement {
                ip: "fd00::100".into(),
                service: "default/web".into(),
                interface: "eth0".into(),
                since_unix_ms: ago(75),
                last_announced_unix_ms: 0,
            },
        ]),
        sessions: Some(vec![
            v1::Session {
                peer: "tor".into(),
                address: "172.30.0.1:179".into(),
                local_asn: 64501,
                peer_asn: 64500,
                state: v1::SessionState::Established.into(),
                established_unix_ms: ago(93),
                prefixes_sent: 3,
                prefixes_received: 0,
                last_error: String::new(),
                hold_time_s: 90,
                capabilities: vec!["ipv4-unicast".into(), "route-refresh".into()],
            },
            v1::Session {
                peer: "backup".into(),
                address: "172.30.0.2:179".into(),
                local_asn: 64501,
                peer_asn: 64502,
                state: v1::SessionState::Active.into(),
                last_error: "cannot connect: connection refused".into(),
                ..Default::default()
            },
        ]),
        bfd_sessions: Some(vec![v1::BfdSession {
            peer: "172.30.0.1".into(),
            multihop: false,
            state: v1::BfdState::Up.into(),
            remote_state: v1::BfdState::Up.into(),
            diagnostic: "no diagnostic".into(),
            tx_interval_us: 50_000,
            detection_time_us: 150_000,
            packets_in: 1200,
            packets_out: 1187,
            bgp_peers: vec!["tor".into()],
        }]),
        ..View::default()
    }
}

fn check(name: &str, got: &str) {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/status/golden")
        .join(name);
    if std::env::var_os("FERROLB_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, got).expect("writing a golden file");
    }
    let want = std::fs::read_to_string(&path).expect("a golden file");
    assert_eq!(got, want, "{name} differs from its golden file");
}

#[test]
fn everything_in_tables() {
    check("all.txt", &render(&view(), None, NOW).expect("rendered"));
    check(
        "all-wide.txt",
        &render(&view(), Some(Format::Wide), NOW).expect("rendered"),
    );
}

#[test]
fn one_part_is_its_table_alone() {
    let members = View {
        members: view().members,
        ..View::default()
    };
    check(
        "members.txt",
        &render(&members, None, NOW).expect("rendered"),
    );
}

#[test]
fn json_names_the_states() {
    let text = render(&view(), Some(Format::Json), NOW).expect("rendered");
    check("all.json", &text);
    let json: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(json["members"][1]["state"], "MEMBER_STATE_SUSPECT");
    assert_eq!(json["sessions"][0]["state"], "SESSION_STATE_ESTABLISHED");
    assert_eq!(json["bfd_sessions"][0]["remote_state"], "BFD_STATE_UP");
}

#[test]
fn nothing_is_said_plainly() {
    let empty = View {
        node: "n3".into(),
        members: Some(Vec::new()),
        announcements: Some(Vec::new()),
        sessions: Some(Vec::new()),
        bfd_sessions: Some(Vec::new()),
        ..View::default()
    };
    check("empty.txt", &render(&empty, None, NOW).expect("rendered"));
}

#[test]
fn the_controllers_pools_and_allocations() {
    let pools = View {
        pools: Some(vec![
            v1::Pool {
                name: "lab".into(),
                cidrs: vec!["198.51.100.0/25".into(), "2001:db8::ff00/120".into()],
                size: 384,
                used: 3,
                auto_assign: true,
            },
            v1::Pool {
                name: "v6-wide".into(),
                cidrs: vec!["2001:db8::/32".into()],
                size: u64::MAX,
                used: 0,
                auto_assign: false,
            },
        ]),
        ..View::default()
    };
    check("pools.txt", &render(&pools, None, NOW).expect("rendered"));
    let allocations = View {
        allocations: Some(vec![v1::Allocation {
            service: "default/web".into(),
            pool: "lab".into(),
            ips: vec!["198.51.100.10".into(), "2001:db8::ff10".into()],
        }]),
        ..View::default()
    };
    check(
        "allocations.txt",
        &render(&allocations, None, NOW).expect("rendered"),
    );
}

#[test]
fn ages_as_kubectl_writes_them() {
    assert_eq!(age(0, NOW), "-");
    assert_eq!(age(NOW - 45_000, NOW), "45s");
    assert_eq!(age(NOW - 192_000, NOW), "3m12s");
    assert_eq!(age(NOW - 18_180_000, NOW), "5h3m");
    assert_eq!(age(NOW - 12 * 86_400_000, NOW), "12d");
    // A clock a little ahead of ours.
    assert_eq!(age(NOW + 500, NOW), "0s");
}
