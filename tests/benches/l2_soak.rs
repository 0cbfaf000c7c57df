//! The soak: three speakers announcing three Services for 10 minutes with 5% of the gossip
//! datagrams dropped on every node (nftables, LAB.md) and one core kept busy. Nothing may
//! fail over and no healthy member may be declared failed.
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench l2_soak`
//! (root; `SOAK_SECONDS=60` for a shorter run).
use ferrolb_e2e::lab_available;
use ferrolb_e2e::layer2::{L2Cluster, NODES, POOL, election_order, nodes, service};
use ferrolb_e2e::standalone::binary;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Three IPs owned by three different nodes, so every speaker is watched by another.
fn ips_with_distinct_owners() -> Vec<String> {
    let mut chosen: Vec<(String, String)> = Vec::new();
    for last in 100..127 {
        let ip = format!("198.51.100.{last}");
        let owner = election_order(&ip, &NODES)[0].clone();
        if !chosen.iter().any(|(_, o)| *o == owner) {
            chosen.push((ip, owner));
        }
    }
    chosen.into_iter().map(|(ip, _)| ip).collect()
}

fn main() {
    if !lab_available(&["ip", "nft", "arping"]) {
        eprintln!("l2_soak needs root, nft and arping");
        std::process::exit(1);
    }
    let seconds: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(600);
    let ips = ips_with_distinct_owners();
    let services: String = ips
        .iter()
        .enumerate()
        .map(|(i, ip)| service(&format!("s{i}"), ip, "Cluster", &NODES))
        .collect();
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", POOL),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &services),
    ])
    .expect("the lab starts");
    for ip in &ips {
        let owner = election_order(ip, &NODES)[0].clone();
        assert!(
            cluster.wait_resolves_to(ip, Some(&owner), Duration::from_secs(15)),
            "{ip} is not announced by {owner}\n{}",
            cluster.logs()
        );
    }
    for node in NODES {
        for rule in [
            vec!["nft", "add", "table", "inet", "soak"],
            vec![
                "nft",
                "add chain inet soak input { type filter hook input priority 0; }",
            ],
            vec![
                "nft", "add", "rule", "inet", "soak", "input", "udp", "dport", "7946", "numgen",
                "random", "mod", "100", "<", "5", "drop",
            ],
        ] {
            cluster.lab.exec(node, &rule).expect("adding the loss rule");
        }
    }
    let labtool = binary("labtool");
    let span = (seconds + 5).to_string();
    let mut watches = Vec::new();
    for (i, ip) in ips.iter().enumerate() {
        let log = cluster
            .lab
            .spawn(
                "cli",
                &format!("arp-watch-{i}"),
                &[
                    labtool.to_str().expect("a UTF-8 path"),
                    "arp-watch",
                    "eth0",
                    "192.0.2.100",
                    ip,
                    "50",
                    &span,
                ],
            )
            .expect("starting arp-watch")
            .log
            .clone();
        watches.push(log);
    }
    // One core kept busy for the whole soak.
    let stop = Arc::new(AtomicBool::new(false));
    let busy = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut x: u64 = 1;
            while !stop.load(Ordering::Relaxed) {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                std::hint::black_box(x);
            }
        })
    };
    eprintln!("soaking for {seconds} s: 5% gossip loss on every node, one core busy");
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    let _ = busy.join();

    // Each watcher prints a line whenever the answering MAC changes: the first is the owner.
    let lines: Vec<usize> = watches
        .iter()
        .map(|log| {
            std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .count()
        })
        .collect();
    assert!(
        lines.iter().all(|n| *n >= 1),
        "a watcher never saw its IP answered: {lines:?}\n{}",
        cluster.logs()
    );
    let moves: usize = lines.iter().map(|n| n - 1).sum();
    let mut failed = 0;
    let mut suspected = 0;
    for node in NODES {
        let log = cluster
            .lab
            .daemon(node, "speaker")
            .map(|d| d.output())
            .unwrap_or_default();
        failed += log.lines().filter(|l| l.contains("event=Failed(")).count();
        suspected += log
            .lines()
            .filter(|l| l.contains("event=Updated(") && l.contains("state: Suspect"))
            .count();
    }
    println!(
        "| soak | seconds | gossip loss | busy cores | MAC changes seen by the client | members declared failed | suspicions (refuted) |"
    );
    println!("|---|---|---|---|---|---|---|");
    println!("| 3 speakers, 3 Services | {seconds} | 5% | 1 | {moves} | {failed} | {suspected} |");
    drop(cluster);
    if moves > 0 || failed > 0 {
        eprintln!("FAILED: a healthy member was declared failed or an IP moved");
        std::process::exit(1);
    }
}
