//! BFD under load (issue 13): three speakers keep their BFD sessions with FRR (zebra, bfdd
//! and bgpd on `rtr`) at 50 ms x 3 for `SOAK_SECONDS` (600) while one core is kept busy by
//! a spinning process and n1's speaker sends a table of `SOAK_ROUTES` (100,000) routes to
//! GoBGP on another session, again and again: the big advertisement's community flips every
//! 30 s, so every route is sent anew. Counted: BFD session downs on both sides (none
//! allowed), and the worst TX lateness the speakers report.
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench bfd_soak` (root;
//! `SOAK_SECONDS=60 SOAK_ROUTES=20000` for a shorter run).
use ferrolb_e2e::layer2::{L2Cluster, NODES, nodes, service, wall_clock};
use ferrolb_e2e::standalone::{StoreRun, ingress};
use ferrolb_e2e::{BFD_PROFILE_FAST, FRR_BFD_FAST, Lab, Neighbor, lab_available, wait_until};
use std::time::Duration;

fn config(community: &str) -> String {
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: tor, namespace: metallb-system}}
spec: {{addresses: [203.0.113.0/24]}}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: big, namespace: metallb-system}}
spec: {{addresses: [10.64.0.0/12]}}
---
{BFD_PROFILE_FAST}apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: tor, namespace: metallb-system}}
spec: {{myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s, bfdProfile: fast}}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: gobgp, namespace: metallb-system}}
spec: {{myASN: 64501, peerASN: 64502, peerAddress: 192.0.2.100, nodeSelectors: [{{matchLabels: {{big: "yes"}}}}]}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: tor, namespace: metallb-system}}
spec: {{ipAddressPools: [tor], peers: [tor]}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: big, namespace: metallb-system}}
spec: {{ipAddressPools: [big], peers: [gobgp], communities: ["{community}"]}}
---
"#
    )
}

/// The big pool's Service IPs: 10.64.0.1 on.
fn big_ip(i: usize) -> String {
    let n = i + 1;
    format!("10.{}.{}.{}", 64 + n / 65536, (n / 256) % 256, n % 256)
}

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn speaker_metrics(cluster: &L2Cluster, node: &str) -> String {
    cluster
        .lab
        .exec(node, &["curl", "-s", "http://127.0.0.1:7472/metrics"])
        .unwrap_or_default()
}

/// The value of the first series of `name` in a metrics text.
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && !l.starts_with('#'))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn main() {
    if !lab_available(&[
        "ip", "zebra", "bfdd", "bgpd", "vtysh", "gobgpd", "gobgp", "curl",
    ]) {
        eprintln!("bfd_soak needs root, FRR and GoBGP");
        std::process::exit(1);
    }
    let seconds = env("SOAK_SECONDS", 600);
    let routes = env("SOAK_ROUTES", 100_000);
    let mut services: String = (0..routes)
        .map(|i| service(&format!("b{i}"), &big_ip(i), "Cluster", &["n1"]))
        .collect();
    services.push_str(&service("web", "203.0.113.10", "Cluster", &NODES));
    let store = StoreRun::new();
    store.write("config.yaml", &config("64501:1"));
    store.write("nodes.yaml", &nodes(&[("n1", "big: \"yes\"")]));
    store.write("services.yaml", &services);
    let mut cluster = L2Cluster {
        lab: Lab::standard().expect("the lab starts"),
        store,
    };
    cluster.store.start_controller(&[]);
    let vty = cluster
        .lab
        .start_frr_tor_with_bfd(" neighbor nodes bfd profile fast", FRR_BFD_FAST)
        .expect("FRR starts");
    let n1 = Neighbor {
        address: "192.0.2.11".parse().expect("an address"),
        asn: 64501,
    };
    cluster
        .lab
        .start_gobgp("cli", 64502, &[n1])
        .expect("GoBGP starts");
    let allocated = wait_until(Duration::from_secs(600), Duration::from_secs(2), || {
        let all = cluster.store.get("services");
        let n = all["items"].as_array().map_or(0, |items| {
            items.iter().filter(|s| !ingress(s).is_empty()).count()
        });
        (n == routes + 1).then_some(())
    });
    assert!(allocated.is_some(), "{}", cluster.store.controller_log());
    for node in NODES {
        cluster.start_speaker(node).expect("a speaker starts");
    }
    let gobgp_routes = |cluster: &L2Cluster| {
        let rib = cluster.lab.gobgp("cli", &["global", "rib", "summary"]);
        rib.split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .find(|w| w[0] == "Destination:")
            .and_then(|w| w[1].trim_end_matches(',').parse::<usize>().ok())
            .unwrap_or(0)
    };
    let loaded = wait_until(Duration::from_secs(600), Duration::from_secs(1), || {
        (gobgp_routes(&cluster) >= routes).then_some(())
    });
    assert!(
        loaded.is_some(),
        "GoBGP holds {} routes\n{}",
        gobgp_routes(&cluster),
        cluster.logs()
    );
    let up = wait_until(Duration::from_secs(60), Duration::from_millis(200), || {
        let peers = cluster.lab.vtysh("rtr", &vty, "show bfd peers brief");
        (peers.lines().filter(|l| l.contains(" up")).count() >= 3).then_some(())
    });
    assert!(
        up.is_some(),
        "{}",
        cluster.lab.vtysh("rtr", &vty, "show bfd peers")
    );

    // FRR's own count of its sessions going down (uptimes are whole seconds, too coarse to
    // tell a session that came up just before the run from one that flapped at its start).
    // All of them, added (None if FRR did not say).
    let frr_downs = |cluster: &L2Cluster| -> Option<u64> {
        let json = cluster
            .lab
            .vtysh("rtr", &vty, "show bfd peers counters json");
        let peers: Vec<serde_json::Value> = serde_json::from_str(&json).ok()?;
        peers.iter().map(|p| p["session-down"].as_u64()).sum()
    };
    let frr_downs_before = frr_downs(&cluster);
    // One core busy for the whole run.
    cluster
        .lab
        .spawn("cli", "busy", &["sh", "-c", "while :; do :; done"])
        .expect("the spinner starts");
    let start = wall_clock();
    let mut flips = 0;
    let mut worst_lateness: f64 = 0.0;
    let mut next_flip = start + 30.0;
    while wall_clock() - start < seconds as f64 {
        std::thread::sleep(Duration::from_secs(5));
        for node in NODES {
            let text = speaker_metrics(&cluster, node);
            if let Some(late) = metric(&text, "ferrolb_bfd_tx_lateness_seconds") {
                worst_lateness = worst_lateness.max(late);
            }
        }
        if wall_clock() >= next_flip {
            flips += 1;
            let community = if flips % 2 == 1 { "64501:2" } else { "64501:1" };
            cluster.store.write("config.yaml", &config(community));
            next_flip += 30.0;
        }
    }
    let elapsed = wall_clock() - start;
    let downs: Vec<usize> = NODES
        .iter()
        .map(|n| {
            cluster
                .lab
                .daemon(n, "speaker")
                .map(|d| d.output().matches("from=Up to=Down").count())
                .unwrap_or(0)
        })
        .collect();
    let json = cluster.lab.vtysh("rtr", &vty, "show bfd peers json");
    let peers: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap_or_default();
    let frr_uptimes: Vec<u64> = peers
        .iter()
        .map(|p| p["uptime"].as_u64().unwrap_or(0))
        .collect();
    let updates = metric(
        &speaker_metrics(&cluster, "n1"),
        "metallb_bgp_updates_total{peer=\"192.0.2.100:179\"}",
    )
    .unwrap_or(0.0);
    println!("| measurement | result | target |");
    println!("|---|---|---|");
    let false_downs: usize = downs.iter().sum();
    let frr_downs_after = frr_downs(&cluster);
    let frr_up = peers.iter().filter(|p| p["status"] == "up").count();
    let frr_intact =
        frr_up == 3 && frr_downs_before.is_some() && frr_downs_after == frr_downs_before;
    println!(
        "| BFD downs over {elapsed:.0} s at 50 ms x 3, one core busy, {routes} routes sent to GoBGP {flips} more times | ours {downs:?}, FRR's sessions up throughout: {frr_intact} (FRR's count of downs before {frr_downs_before:?}, after {frr_downs_after:?}; uptimes {frr_uptimes:?} s) | 0: {} |",
        if false_downs == 0 && frr_intact {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "| worst TX lateness a speaker reported (per second) | {:.1} ms | |",
        worst_lateness * 1000.0
    );
    println!("| UPDATE messages n1 sent to GoBGP | {updates:.0} | |");
}
