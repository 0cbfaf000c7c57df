//! BFD under BGP mode, against FRR as the top-of-rack router (zebra, bfdd and bgpd on
//! `rtr`), with BIRD as the speaker beside FerroLB in the same lab and run:
//! - A speaker node's link cut to its route gone from FRR's kernel table (`ip -ts monitor
//!   route` on `rtr`), BFD 50 ms x 3, hold time 9 s (so only BFD explains a fast removal):
//!   FerroLB on n1 (its next hop leaves the Service's route), BIRD on n3 (its own /32 goes).
//! - The CPU of FerroLB's BFD thread for 10 sessions at 50 ms (the Service's peer and 9 of
//!   FRR's bfdd's configured peers, one per address pair), over three windows of 20 s, and
//!   how often the thread woke.
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench bfd` (root;
//! `BFD_TRIALS=3` for a shorter run).
use ferrolb_e2e::layer2::{L2Cluster, nodes, service, wall_clock};
use ferrolb_e2e::{
    BFD_PROFILE_FAST, FRR_BFD_FAST, cpu_seconds, lab_available, median, route_monitor,
    thread_cpu_seconds, thread_switches, wait_until,
};
use std::time::Duration;

const SERVICE_IP: &str = "203.0.113.2";
const BIRD_IP: &str = "203.0.113.99";
/// The Service's next hops: n1 and n2 run FerroLB, n3 runs BIRD.
const FERROLB: [&str; 2] = ["192.0.2.11", "192.0.2.12"];
/// The CPU run's sessions beside the Service's peer (10 in all), one BFD session each:
/// from n1's 192.0.2.(i + 20) to the router's 192.0.2.i (bfdd tells its sessions apart by
/// the peer's address).
const EXTRA: std::ops::RangeInclusive<u8> = 201..=209;

fn config(extra_peers: bool) -> String {
    let mut config = [
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bgp, namespace: metallb-system}\n\
         spec: {addresses: [203.0.113.0/24]}\n---\n",
        BFD_PROFILE_FAST,
        r#"apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s, bfdProfile: fast}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: metallb-system}
spec: {ipAddressPools: [bgp], peers: [tor]}
---
"#,
    ]
    .concat();
    if extra_peers {
        // BGP on a port nothing listens on (the sessions keep trying), BFD to bfdd's
        // configured peers: n1 only.
        for i in EXTRA {
            config.push_str(&format!(
                "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata: {{name: cpu{i}, namespace: metallb-system}}\n\
                 spec: {{myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.{i}, sourceAddress: 192.0.2.{}, \
                 peerPort: 1179, holdTime: 9s, bfdProfile: fast, nodeSelectors: [{{matchLabels: {{cpu: run}}}}]}}\n---\n",
                i + 20
            ));
        }
    }
    config
}

fn bfdd_config() -> String {
    // The profile, then the configured peers inside the same `bfd` block.
    let mut config = FRR_BFD_FAST
        .strip_suffix("!\n")
        .expect("the block's end")
        .to_string();
    for i in EXTRA {
        config.push_str(&format!(
            " peer 192.0.2.{} local-address 192.0.2.{i}\n  profile fast\n !\n",
            i + 20
        ));
    }
    config.push_str("!\n");
    config
}

fn row(what: &str, values: &[f64]) {
    let worst = values.iter().copied().fold(0.0, f64::max);
    println!(
        "| {what} | {} | {:.0} | {worst:.0} |",
        values.len(),
        median(values.to_vec())
    );
}

/// Milliseconds from `start` to the first change of `prefix`'s route after it that
/// satisfies `done` (deleted?, next hops).
fn time_until(
    cluster: &mut L2Cluster,
    prefix: &str,
    start: f64,
    done: impl Fn(bool, &[String]) -> bool,
) -> f64 {
    let seen = |cluster: &mut L2Cluster| {
        let log = cluster.lab.daemon("rtr", "monitor")?.output();
        route_monitor::parse(&log)
            .into_iter()
            .find(|c| c.at >= start - 0.001 && c.prefix == prefix && done(c.deleted, &c.next_hops))
            .map(|c| c.at)
    };
    let at = wait_until(Duration::from_secs(15), Duration::from_millis(5), || {
        seen(cluster)
    });
    let at = at.unwrap_or_else(|| {
        panic!(
            "{prefix}: never happened; next hops {:?}\n{}",
            cluster.lab.next_hops(prefix),
            cluster.logs()
        )
    });
    (at - start) * 1000.0
}

fn wait_for(cluster: &L2Cluster, prefix: &str, hops: &[&str]) {
    let back = wait_until(Duration::from_secs(60), Duration::from_millis(50), || {
        (cluster.lab.next_hops(prefix) == hops).then_some(())
    });
    assert!(
        back.is_some(),
        "{prefix}: next hops {:?}\n{}",
        cluster.lab.next_hops(prefix),
        cluster.logs()
    );
}

/// Waits (untimed) until FRR's BFD session with `peer` is up: BGP comes up first, and a cut
/// before BFD is up would measure the hold timer.
fn wait_bfd_up(cluster: &L2Cluster, vty: &str, peer: &str) {
    let up = wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
        let json = cluster.lab.vtysh("rtr", vty, "show bfd peers json");
        let peers: Vec<serde_json::Value> = serde_json::from_str(&json).unwrap_or_default();
        peers
            .iter()
            .any(|p| p["peer"] == peer && p["status"] == "up")
            .then_some(())
    });
    assert!(
        up.is_some(),
        "{}\n{}",
        cluster.lab.vtysh("rtr", vty, "show bfd peers"),
        cluster.logs()
    );
}

fn main() {
    if !lab_available(&["ip", "zebra", "bfdd", "bgpd", "vtysh", "bird"]) {
        eprintln!("the bfd bench needs root, FRR and BIRD");
        std::process::exit(1);
    }
    let trials: usize = std::env::var("BFD_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", &config(false)),
        ("nodes.yaml", &nodes(&[("n1", "cpu: run")])),
        (
            "services.yaml",
            &service("web", SERVICE_IP, "Cluster", &["n1", "n2"]),
        ),
    ])
    .expect("the lab starts");
    // n3 is BIRD's: its speaker goes.
    cluster
        .lab
        .daemon("n3", "speaker")
        .expect("n3's speaker")
        .terminate();
    for i in EXTRA {
        cluster
            .lab
            .exec(
                "rtr",
                &[
                    "ip",
                    "addr",
                    "add",
                    &format!("192.0.2.{i}/24"),
                    "dev",
                    "eth0",
                ],
            )
            .expect("a router address");
        let node_address = format!("192.0.2.{}/24", i + 20);
        cluster
            .lab
            .exec("n1", &["ip", "addr", "add", &node_address, "dev", "eth0"])
            .expect("a node address");
    }
    let vty = cluster
        .lab
        .start_frr_tor_with_bfd(" neighbor nodes bfd profile fast", &bfdd_config())
        .expect("FRR starts");
    cluster
        .lab
        .spawn("rtr", "monitor", &["ip", "-ts", "monitor", "route"])
        .expect("ip monitor starts");
    cluster
        .lab
        .start_bird(
            "n3",
            &format!(
                "protocol static {{ ipv4; route {BIRD_IP}/32 blackhole; }}\n\
                 protocol bfd {{ interface \"*\" {{ min rx interval 50 ms; min tx interval 50 ms; multiplier 3; }}; }}\n\
                 protocol bgp tor {{ local 192.0.2.13 as 64501; neighbor 192.0.2.1 as 64500; hold time 9; \
                 connect retry time 1; error wait time 1, 5; bfd on; ipv4 {{ import none; export all; }}; }}\n"
            ),
        )
        .expect("BIRD starts");
    wait_for(&cluster, SERVICE_IP, &FERROLB);
    wait_for(&cluster, BIRD_IP, &["192.0.2.13"]);

    let mut ferrolb = Vec::new();
    let mut bird = Vec::new();
    for _ in 0..trials {
        // FerroLB's n1: its next hop leaves the Service's route.
        wait_bfd_up(&cluster, &vty, "192.0.2.11");
        let start = wall_clock();
        cluster.lab.set_link("n1", false).expect("link down");
        ferrolb.push(time_until(&mut cluster, SERVICE_IP, start, |d, h| {
            !d && h == &FERROLB[1..]
        }));
        cluster.lab.set_link("n1", true).expect("link up");
        wait_for(&cluster, SERVICE_IP, &FERROLB);
        // BIRD's n3: its route goes.
        wait_bfd_up(&cluster, &vty, "192.0.2.13");
        let start = wall_clock();
        cluster.lab.set_link("n3", false).expect("link down");
        bird.push(time_until(&mut cluster, BIRD_IP, start, |d, _| d));
        cluster.lab.set_link("n3", true).expect("link up");
        wait_for(&cluster, BIRD_IP, &["192.0.2.13"]);
    }

    // 9 more sessions on n1, to bfdd's configured peers: the BFD thread's CPU.
    cluster.store.write("config.yaml", &config(true));
    let up = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        let peers = cluster.lab.vtysh("rtr", &vty, "show bfd peers brief");
        let n = peers
            .lines()
            .filter(|l| l.contains(" 192.0.2.2") && l.contains(" up"))
            .count();
        (n >= EXTRA.count()).then_some(())
    });
    assert!(
        up.is_some(),
        "{}\n{}",
        cluster.lab.vtysh("rtr", &vty, "show bfd peers brief"),
        cluster.logs()
    );
    let pid = cluster
        .lab
        .daemon("n1", "speaker")
        .expect("n1's speaker")
        .pid();
    // Up is not yet steady: each session's Poll to its fast rate, bfdd's too, first.
    std::thread::sleep(Duration::from_secs(5));
    let span = Duration::from_secs(20);
    let downs = |cluster: &mut L2Cluster| {
        cluster
            .lab
            .daemon("n1", "speaker")
            .map(|d| d.output().matches("to=Down").count())
            .unwrap_or(0)
    };
    // FRR's bfdd beside it: the other end of these 10 sessions, and of n2's and n3's.
    let bfdd = cluster.lab.daemon("rtr", "bfdd").expect("bfdd runs").pid();
    let percent = |seconds: f64| seconds / span.as_secs_f64() * 100.0;
    let downs_before = downs(&mut cluster);
    let bfdd_before = cpu_seconds(bfdd).expect("bfdd's CPU");
    // (user, kernel, wakeups per second) of each window.
    let mut windows = Vec::new();
    for _ in 0..3 {
        let before = thread_cpu_seconds(pid, "bfd").expect("the bfd thread");
        let switches_before = thread_switches(pid, "bfd").expect("the bfd thread's switches");
        std::thread::sleep(span);
        let after = thread_cpu_seconds(pid, "bfd").expect("the bfd thread");
        let switches_after = thread_switches(pid, "bfd").expect("the bfd thread's switches");
        windows.push((
            percent(after.0 - before.0),
            percent(after.1 - before.1),
            (switches_after - switches_before) as f64 / span.as_secs_f64(),
        ));
    }
    let bfdd_after = cpu_seconds(bfdd).expect("bfdd's CPU");
    let flaps = downs(&mut cluster) - downs_before;
    let whole = span.as_secs_f64() * windows.len() as f64;
    let bfdd_user = (bfdd_after.0 - bfdd_before.0) / whole * 100.0;
    let bfdd_system = (bfdd_after.1 - bfdd_before.1) / whole * 100.0;
    let shares: Vec<f64> = windows.iter().map(|(u, k, _)| u + k).collect();
    let share = median(shares.clone());
    let (user, system, wakeups) = windows
        .iter()
        .copied()
        .find(|(u, k, _)| u + k == share)
        .expect("the median window");

    println!("| measurement | trials | median ms | worst ms |");
    println!("|---|---|---|---|");
    row(
        "FerroLB speaker's link cut to its next hop gone from FRR's kernel table (BFD 50 ms x 3)",
        &ferrolb,
    );
    row(
        "BIRD speaker's link cut to its route gone from FRR's kernel table (BFD 50 ms x 3)",
        &bird,
    );
    println!();
    let (ours, theirs) = (median(ferrolb), median(bird));
    println!(
        "link cut: median {ours:.0} ms (target < 300 ms: {}), {:.2}x BIRD's {theirs:.0} ms (target <= 1.2x: {})",
        if ours < 300.0 { "met" } else { "not met" },
        ours / theirs,
        if ours <= 1.2 * theirs {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "CPU of the BFD thread, 10 sessions at 50 ms, three windows of {} s: {:.2?}% of a core; median {share:.2}%: {user:.2}% in FerroLB and {system:.2}% in the kernel, {wakeups:.0} wakeups/s (target < 1%: {}); BFD sessions down meanwhile: {flaps}",
        span.as_secs(),
        shares,
        if share < 1.0 { "met" } else { "not met" },
    );
    println!(
        "FRR's bfdd meanwhile, 12 sessions at 50 ms: {:.2}% of a core, {bfdd_user:.2}% in bfdd and {bfdd_system:.2}% in the kernel; per session, FerroLB {:.3}% and bfdd {:.3}%",
        bfdd_user + bfdd_system,
        share / 10.0,
        (bfdd_user + bfdd_system) / 12.0
    );
}
