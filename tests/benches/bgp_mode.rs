//! BGP mode against FRR as the top-of-rack router (zebra and bgpd, LAB.md), measured where
//! traffic is decided: the router namespace's kernel table, as `ip -ts monitor route` there
//! reports its changes (timestamped by the kernel's notification, with no polling to load
//! the two cores).
//! - A Service created (its file written to the store) to its route in the kernel table,
//!   from three speakers (Cluster policy: the first next hop counts).
//! - A speaker stopped with SIGTERM (a node drained) to its next hop gone.
//! - A node lost (its link cut) without BFD: the router notices at its hold timer (3 s).
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench bgp_mode` (root;
//! `BGP_TRIALS=3` for a shorter run).
use ferrolb_e2e::layer2::{L2Cluster, NODES, bgp_config, nodes, service, wall_clock};
use ferrolb_e2e::{lab_available, median, route_monitor, wait_until};
use std::time::Duration;

const ALL: [&str; 3] = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];

/// The kernel's route changes on the router so far: (Unix time, s; whether deleted; the
/// prefix; the next hops).
fn route_changes(cluster: &mut L2Cluster) -> Vec<(f64, bool, String, Vec<String>)> {
    let log = cluster
        .lab
        .daemon("rtr", "monitor")
        .expect("started")
        .output();
    route_monitor::parse(&log)
        .into_iter()
        .map(|c| (c.at, c.deleted, c.prefix, c.next_hops))
        .collect()
}

/// Milliseconds from `start` (wall clock, s) to the first change of `ip`'s route after it
/// that satisfies `done` (deleted?, next hops).
fn time_until(
    cluster: &mut L2Cluster,
    ip: &str,
    start: f64,
    timeout: Duration,
    done: impl Fn(bool, &[String]) -> bool,
) -> f64 {
    let seen = |cluster: &mut L2Cluster| {
        route_changes(cluster)
            .into_iter()
            .find(|(at, deleted, prefix, hops)| {
                *at >= start - 0.001 && prefix == ip && done(*deleted, hops)
            })
            .map(|c| c.0)
    };
    let at = wait_until(timeout, Duration::from_millis(5), || seen(cluster));
    let at = at.unwrap_or_else(|| {
        panic!(
            "{ip}: never happened; next hops {:?}\n{}",
            cluster.lab.next_hops(ip),
            cluster.logs()
        )
    });
    (at - start) * 1000.0
}

/// Waits (untimed) until the router spreads the warm-up Service over all three nodes again.
fn wait_all_next_hops(cluster: &L2Cluster, timeout: Duration) {
    let all = wait_until(timeout, Duration::from_millis(50), || {
        (cluster.lab.next_hops("203.0.113.2") == ALL).then_some(())
    });
    assert!(
        all.is_some(),
        "next hops {:?}\n{}",
        cluster.lab.next_hops("203.0.113.2"),
        cluster.logs()
    );
}

/// When process `pid` (a child of ours, so a zombie until reaped) exits, polled every ms.
fn exit_time(pid: u32) -> f64 {
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        // "pid (comm) S ...": the state follows the command's closing parenthesis.
        let state = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next());
        if matches!(state, None | Some('Z' | 'X')) {
            return wall_clock();
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn row(what: &str, values: Vec<f64>) {
    let worst = values.iter().copied().fold(0.0, f64::max);
    println!(
        "| {what} | {} | {:.0} | {worst:.0} |",
        values.len(),
        median(values)
    );
}

fn main() {
    if !lab_available(&["ip", "zebra", "bgpd", "vtysh"]) {
        eprintln!("bgp_mode needs root and FRR");
        std::process::exit(1);
    }
    let trials: usize = std::env::var("BGP_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", &bgp_config("3s")),
        ("nodes.yaml", &nodes(&[])),
    ])
    .expect("the lab starts");
    cluster.lab.start_frr_tor("").expect("FRR starts");
    cluster
        .lab
        .spawn("rtr", "monitor", &["ip", "-ts", "monitor", "route"])
        .expect("ip monitor starts");
    // Sessions up: a first Service reaches the router from every node.
    cluster.store.write(
        "warmup.yaml",
        &service("warmup", "203.0.113.2", "Cluster", &NODES),
    );
    wait_all_next_hops(&cluster, Duration::from_secs(30));

    let mut created = Vec::new();
    for trial in 0..trials {
        let ip = format!("203.0.113.{}", 10 + trial);
        let start = wall_clock();
        cluster.store.write(
            &format!("svc-{trial}.yaml"),
            &service(&format!("svc-{trial}"), &ip, "Cluster", &NODES),
        );
        created.push(time_until(
            &mut cluster,
            &ip,
            start,
            Duration::from_secs(10),
            |d, h| !d && !h.is_empty(),
        ));
    }

    let mut drained = Vec::new();
    let mut exited = Vec::new();
    for _ in 0..trials {
        // The signal alone: the clock runs while the speaker stops, not after it is gone.
        let pid = cluster.lab.daemon("n1", "speaker").expect("started").pid();
        let start = wall_clock();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let exit = std::thread::spawn(move || exit_time(pid));
        drained.push(time_until(
            &mut cluster,
            "203.0.113.2",
            start,
            Duration::from_secs(10),
            |d, h| !d && h == &ALL[1..],
        ));
        cluster
            .lab
            .daemon("n1", "speaker")
            .expect("started")
            .terminate();
        // The speaker's own share: it withdraws, sends its Cease and exits in this time.
        exited.push((exit.join().expect("the watch ends") - start) * 1000.0);
        cluster
            .start_speaker("n1")
            .expect("the speaker starts again");
        wait_all_next_hops(&cluster, Duration::from_secs(30));
    }

    let mut lost = Vec::new();
    for _ in 0..trials.min(3) {
        let start = wall_clock();
        cluster.lab.set_link("n1", false).expect("link down");
        lost.push(time_until(
            &mut cluster,
            "203.0.113.2",
            start,
            Duration::from_secs(15),
            |d, h| !d && h == &ALL[1..],
        ));
        cluster.lab.set_link("n1", true).expect("link up");
        wait_all_next_hops(&cluster, Duration::from_secs(60));
    }

    println!("| measurement | trials | median ms | worst ms |");
    println!("|---|---|---|---|");
    row(
        "Service created to its route in FRR's kernel table",
        created.clone(),
    );
    row(
        "speaker SIGTERM to its next hop gone from FRR's kernel table",
        drained.clone(),
    );
    row(
        "  of which the speaker: SIGTERM to its process gone (routes withdrawn, Cease sent)",
        exited,
    );
    row(
        "node link cut to its next hop gone (hold time 3 s, no BFD)",
        lost,
    );
    println!();
    println!(
        "created: median {:.0} ms, target < 100 ms: {}",
        median(created.clone()),
        if median(created) < 100.0 {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "drained: median {:.0} ms, target < 50 ms: {}",
        median(drained.clone()),
        if median(drained) < 50.0 {
            "met"
        } else {
            "not met"
        }
    );
}
