//! The speakers' admin gRPC API in the lab, asked with `ferrolbctl status` on each node, and
//! its answers compared with what the client and the router see: the MAC `arping` gets,
//! the routes and BFD sessions FRR holds. And statuses that never lie: a lost node's are
//! removed by the survivors.
use ferrolb_e2e::layer2::{
    L2Cluster, NODES, POOL, bgp_config_with, election_order, nodes, service,
};
use ferrolb_e2e::{BFD_PROFILE_FAST, FRR_BFD_FAST, lab_available, wait_until};
use serde_json::Value;
use std::time::Duration;

const L2_IP: &str = "198.51.100.10";
const BGP_IP: &str = "203.0.113.10";
const NODE_ADDRESSES: [&str; 3] = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];

/// The lab pool by layer 2, and a second pool by BGP to FRR (BGPPeer `tor`, BFD 50 ms x 3).
fn config() -> String {
    format!(
        "{POOL}{BFD_PROFILE_FAST}{}",
        bgp_config_with("holdTime: 9s, bfdProfile: fast")
    )
}

/// The lab with web (layer 2) and shop (BGP), both with endpoints on every node.
fn start() -> L2Cluster {
    let services = [
        service("web", L2_IP, "Cluster", &NODES),
        service("shop", BGP_IP, "Cluster", &NODES),
    ]
    .concat();
    L2Cluster::start(&[
        ("config.yaml", &config()),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &services),
    ])
    .expect("the lab starts")
}

fn list<'a>(status: &'a Value, part: &str) -> &'a [Value] {
    status[part].as_array().map_or(&[], Vec::as_slice)
}

#[test]
fn each_speaker_says_what_it_announces_to_whom_and_who_is_alive() {
    if !lab_available(&["ip", "arping", "zebra", "bfdd", "bgpd", "vtysh"]) {
        return;
    }
    let mut cluster = start();
    let vty = cluster
        .lab
        .start_frr_tor_with_bfd(" neighbor nodes bfd profile fast", FRR_BFD_FAST)
        .expect("FRR starts");
    let owner = election_order(L2_IP, &NODES)[0].clone();
    assert!(
        cluster.wait_resolves_to(L2_IP, Some(&owner), Duration::from_secs(15)),
        "{}",
        cluster.logs()
    );
    assert!(
        wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
            (cluster.lab.next_hops(BGP_IP) == NODE_ADDRESSES).then_some(())
        })
        .is_some(),
        "{:?}\n{}",
        cluster.lab.next_hops(BGP_IP),
        cluster.logs()
    );

    // Members: every speaker sees the three alive, itself included.
    for node in NODES {
        let status = cluster.status(node, &["members"]);
        assert_eq!(status["node"], node, "{status:#}");
        let members: Vec<(&str, &str)> = list(&status, "members")
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap_or(""),
                    m["state"].as_str().unwrap_or(""),
                )
            })
            .collect();
        assert_eq!(
            members,
            NODES.map(|n| (n, "MEMBER_STATE_ALIVE")),
            "{node}: {status:#}"
        );
    }

    // Announcements: the node whose MAC the client gets says it announces the IP on eth0
    // for default/web, and has announced it unasked (the gratuitous ARP at takeover); the
    // others do not announce it.
    let seen = cluster.resolve(L2_IP).expect("an ARP answer");
    assert_eq!(seen, cluster.mac(&owner));
    for node in NODES {
        let status = cluster.status(node, &["announcements"]);
        let ours: Vec<&Value> = list(&status, "announcements")
            .iter()
            .filter(|a| a["ip"] == L2_IP)
            .collect();
        if node != owner {
            assert!(ours.is_empty(), "{node} also announces {L2_IP}: {status:#}");
            continue;
        }
        assert_eq!(ours.len(), 1, "{status:#}");
        assert_eq!(ours[0]["interface"], "eth0");
        assert_eq!(ours[0]["service"], "default/web");
        assert!(ours[0]["since_unix_ms"].as_u64() > Some(0), "{status:#}");
        assert!(
            ours[0]["last_announced_unix_ms"].as_u64() > Some(0),
            "{status:#}"
        );
        // BGP-only IPs are no layer 2 announcement.
        assert!(
            list(&status, "announcements")
                .iter()
                .all(|a| a["ip"] != BGP_IP)
        );
    }

    // Sessions: established with FRR, 9 s hold negotiated, as many prefixes sent as FRR
    // says it received from that node; BFD up at 50 ms under BGPPeer tor.
    let summary = cluster
        .lab
        .vtysh("rtr", &vty, "show bgp ipv4 unicast summary json");
    let summary: Value = serde_json::from_str(&summary).unwrap_or_default();
    for (node, address) in NODES.iter().zip(NODE_ADDRESSES) {
        let ok = wait_until(Duration::from_secs(5), Duration::from_millis(200), || {
            let status = cluster.status(node, &["sessions"]);
            let bfd_up = list(&status, "bfd_sessions")
                .first()
                .is_some_and(|b| b["state"] == "BFD_STATE_UP");
            bfd_up.then_some(status)
        });
        let status = ok.unwrap_or_else(|| cluster.status(node, &["sessions"]));
        let sessions = list(&status, "sessions");
        assert_eq!(sessions.len(), 1, "{node}: {status:#}");
        let tor = &sessions[0];
        assert_eq!(tor["peer"], "tor");
        assert_eq!(tor["address"], "192.0.2.1:179");
        assert_eq!(tor["state"], "SESSION_STATE_ESTABLISHED", "{status:#}");
        assert_eq!(tor["peer_asn"], 64500);
        assert_eq!(tor["local_asn"], 64501);
        assert_eq!(tor["hold_time_s"], 9);
        assert!(
            list(tor, "capabilities").contains(&Value::from("ipv4-unicast")),
            "{status:#}"
        );
        let received_by_frr = &summary["peers"][address]["pfxRcd"];
        assert_eq!(
            tor["prefixes_sent"], *received_by_frr,
            "{node}: {status:#}\n{summary:#}"
        );
        assert_eq!(tor["prefixes_sent"], 1);
        let bfd = list(&status, "bfd_sessions");
        assert_eq!(bfd.len(), 1, "{status:#}");
        assert_eq!(bfd[0]["peer"], "192.0.2.1");
        assert_eq!(bfd[0]["state"], "BFD_STATE_UP", "{status:#}");
        assert_eq!(bfd[0]["tx_interval_us"], 50_000);
        assert_eq!(bfd[0]["detection_time_us"], 150_000);
        assert_eq!(bfd[0]["bgp_peers"], serde_json::json!(["tor"]));
    }

    // Watching: the first snapshot at once, then another at each change it shows (the wide
    // table's BFD packet counters move every second).
    let ctl = ferrolb_e2e::standalone::binary("ferrolbctl");
    let watched = cluster.lab.exec_unchecked(
        "n1",
        &[
            "timeout",
            "2.5",
            ctl.to_str().expect("a UTF-8 path"),
            "status",
            "sessions",
            "--watch",
            "-o",
            "wide",
        ],
    );
    let text = String::from_utf8_lossy(&watched.stdout);
    assert!(
        text.matches("BFD SESSIONS").count() >= 2,
        "one table per change: {text}\n{}",
        String::from_utf8_lossy(&watched.stderr)
    );

    // The controller: each pool's use, and who holds which IP, as the Services' statuses
    // say. (It runs beside the test, its admin API on a port the kernel chose.)
    let log = cluster.store.controller_log();
    let admin = log
        .lines()
        .filter(|l| l.contains("admin API listening"))
        .find_map(|l| l.split("addr=").nth(1)?.split_whitespace().next())
        .expect("the controller logs its admin address")
        .to_string();
    let ask = |what: &str| -> Value {
        let out = std::process::Command::new(&ctl)
            .args(["status", what, "--admin", &admin, "-o", "json"])
            .output()
            .expect("running ferrolbctl");
        serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
            panic!("{}", String::from_utf8_lossy(&out.stderr));
        })
    };
    let pools = ask("pools");
    let usage: Vec<(&str, u64, u64)> = list(&pools, "pools")
        .iter()
        .map(|p| {
            let n = |f: &str| p[f].as_u64().unwrap_or(0);
            (p["name"].as_str().unwrap_or(""), n("used"), n("size"))
        })
        .collect();
    assert_eq!(usage, [("bgp", 1, 256), ("lab", 1, 128 + 256)], "{pools:#}");
    let allocations = ask("allocations");
    let held: Vec<(&str, &str, &Value)> = list(&allocations, "allocations")
        .iter()
        .map(|a| {
            let text = |f: &str| a[f].as_str().unwrap_or("");
            (text("service"), text("pool"), &a["ips"])
        })
        .collect();
    let (shop, web) = (serde_json::json!([BGP_IP]), serde_json::json!([L2_IP]));
    assert_eq!(
        held,
        [("default/shop", "bgp", &shop), ("default/web", "lab", &web)],
        "{allocations:#}"
    );
}

/// The nodes the statuses of `kind` (`l2status`, `bgpstatus`) name for Service `name`.
fn status_nodes(cluster: &L2Cluster, kind: &str, name: &str) -> Vec<String> {
    let statuses = cluster.store.get(kind);
    let mut nodes: Vec<String> = list(&statuses, "items")
        .iter()
        .filter(|s| s["status"]["serviceName"] == name)
        .filter_map(|s| s["status"]["node"].as_str().map(str::to_string))
        .collect();
    nodes.sort();
    nodes
}

/// Waits until the layer 2 Service's statuses come from `l2` and the BGP Service's from
/// `bgp`; false when they do not within `timeout`.
fn wait_statuses(cluster: &L2Cluster, l2: &[&str], bgp: &[&str], timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(100), || {
        (status_nodes(cluster, "l2status", "web") == l2
            && status_nodes(cluster, "bgpstatus", "shop") == bgp)
            .then_some(())
    })
    .is_some()
}

/// A node cut off from gossip is declared dead, and the survivors remove its statuses; once
/// it is back and owns again, its statuses must be there again, not lost. (The cut-off node
/// declares the others dead too and removes theirs; they refute that once the cut heals and
/// write theirs again, which the last check covers as well.)
#[test]
fn a_cut_off_node_writes_its_statuses_again_when_it_is_back() {
    if !lab_available(&["ip", "arping", "nft"]) {
        return;
    }
    let cluster = start();
    let order = election_order(L2_IP, &NODES);
    let state = |cluster: &L2Cluster| {
        format!(
            "{:?} {:?}\n{}",
            status_nodes(cluster, "l2status", "web"),
            status_nodes(cluster, "bgpstatus", "shop"),
            cluster.logs()
        )
    };
    assert!(
        wait_statuses(&cluster, &[&order[0]], &NODES, Duration::from_secs(20)),
        "{}",
        state(&cluster)
    );
    ferrolb_e2e::faults::gossip_partition(&cluster, &order[0], true).expect("cutting gossip");
    let others: Vec<&str> = NODES.iter().copied().filter(|n| *n != order[0]).collect();
    // The survivors take web over and remove the cut-off node's statuses.
    assert!(
        wait_statuses(&cluster, &[&order[1]], &others, Duration::from_secs(10)),
        "while cut off: {}",
        state(&cluster)
    );
    ferrolb_e2e::faults::gossip_partition(&cluster, &order[0], false).expect("healing");
    assert!(
        wait_statuses(&cluster, &[&order[0]], &NODES, Duration::from_secs(15)),
        "after healing: {}",
        state(&cluster)
    );
}

#[test]
fn a_killed_nodes_statuses_are_removed_by_the_survivors() {
    if !lab_available(&["ip", "arping"]) {
        return;
    }
    // BGP statuses are written as planned, whether or not the session is up: no router
    // is needed here.
    let mut cluster = start();
    let order = election_order(L2_IP, &NODES);
    assert!(
        wait_statuses(&cluster, &[&order[0]], &NODES, Duration::from_secs(20)),
        "{:?} {:?}\n{}",
        status_nodes(&cluster, "l2status", "web"),
        status_nodes(&cluster, "bgpstatus", "shop"),
        cluster.logs()
    );
    // The owner's speaker dies for good (SIGKILL: it withdraws nothing).
    cluster
        .lab
        .daemon(&order[0], "speaker")
        .expect("the owner's speaker")
        .kill();
    let survivors: Vec<&str> = NODES.iter().copied().filter(|n| *n != order[0]).collect();
    assert!(
        wait_statuses(&cluster, &[&order[1]], &survivors, Duration::from_secs(5)),
        "{:?} {:?}\n{}",
        status_nodes(&cluster, "l2status", "web"),
        status_nodes(&cluster, "bgpstatus", "shop"),
        cluster.logs()
    );
}
