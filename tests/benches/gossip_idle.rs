//! Issue 16 in the lab: what a speaker costs doing nothing, at 3 nodes and at 12, and the
//! failover at both sizes. 100 Services (Cluster policy, endpoints on every node) spread over
//! the nodes by the election; every node runs `ferrolb-speaker` on one file store.
//! - Idle: over 20 s, each speaker's CPU time (/proc/PID/stat) and the UDP datagrams its node
//!   sent (`Udp: OutDatagrams` of the node's network namespace: gossip is all the UDP a
//!   speaker sends); the mean over the speakers.
//! - Failover: a Service owner's port on the lab bridge set down, to the first ARP answer
//!   from another MAC at the client (`labtool arp-watch`, every 5 ms), 10 trials.
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench gossip_idle` (root).
//! To profile an idle speaker: `GOSSIP_IDLE_HOLD=60` keeps the 3-node lab idle that many
//! seconds after measuring it (and skips the rest), printing the speakers' PIDs for
//! `perf record -p`.
use ferrolb_e2e::layer2::{
    POOL, arp_watch, election_order, first_other_mac, node_mac, resolve_mac, service,
    stop_arp_watch, wall_clock,
};
use ferrolb_e2e::standalone::{StoreRun, binary};
use ferrolb_e2e::{Lab, cpu_seconds, lab_available, median, wait_until};
use std::time::Duration;

const SERVICES: usize = 100;
const IDLE: Duration = Duration::from_secs(20);
const TRIALS: usize = 10;
const SETTLE: Duration = Duration::from_secs(3);

struct Size {
    nodes: usize,
    packets_per_second: f64,
    cpu_percent: f64,
    failover_ms: Vec<f64>,
}

fn node_names(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("n{i}")).collect()
}

fn nodes_yaml(names: &[String]) -> String {
    names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "apiVersion: v1\nkind: Node\nmetadata: {{name: {n}}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.0.2.{}}}]}}\n---\n",
                11 + i
            )
        })
        .collect()
}

fn udp_sent(lab: &Lab, host: &str) -> u64 {
    let snmp = lab.exec(host, &["cat", "/proc/net/snmp"]).expect("snmp");
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        panic!("no Udp lines in /proc/net/snmp")
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "OutDatagrams")
        .and_then(|(_, v)| v.parse().ok())
        .expect("OutDatagrams")
}

fn measure(n: usize) -> Size {
    let names = node_names(n);
    let mut hosts: Vec<(&str, u8)> = names
        .iter()
        .enumerate()
        .map(|(i, name)| (name.as_str(), 11 + i as u8))
        .collect();
    hosts.push(("cli", 100));
    let mut lab = Lab::with_hosts(&hosts).expect("the lab");
    let mut store = StoreRun::new();
    store.write("config.yaml", POOL);
    store.write("nodes.yaml", &nodes_yaml(&names));
    let everyone: Vec<&str> = names.iter().map(String::as_str).collect();
    let services: String = (0..SERVICES)
        .map(|i| {
            service(
                &format!("s{i}"),
                &format!("198.51.100.{}", i + 1),
                "Cluster",
                &everyone,
            )
        })
        .collect();
    store.write("services.yaml", &services);
    store.start_controller(&[]);
    let speaker = binary("ferrolb-speaker");
    let store_dir = store.dir().display().to_string();
    for name in &names {
        let ip = lab.host(name).ipv4.to_string();
        lab.spawn(
            name,
            "speaker",
            &[
                speaker.to_str().expect("a UTF-8 path"),
                "--node-name",
                name,
                "--store",
                &store_dir,
                "--ml-bindaddr",
                &ip,
                "--log-level",
                "info",
            ],
        )
        .expect("a speaker");
    }
    // Every IP answered by its elected owner: joined and announced.
    let probe_ip = "198.51.100.40";
    let order = election_order(probe_ip, &everyone);
    let owner = order[0].clone();
    let owner_mac = node_mac(&lab, &owner);
    let answered = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        resolve_mac(&lab, probe_ip).filter(|m| *m == owner_mac)
    });
    assert!(
        answered.is_some(),
        "{probe_ip} not answered by {owner}\n{}",
        lab.logs()
    );
    std::thread::sleep(Duration::from_secs(5));

    let pids: Vec<u32> = names
        .iter()
        .map(|name| lab.daemon(name, "speaker").expect("a speaker").pid())
        .collect();
    let cpu = |pid: u32| cpu_seconds(pid).map(|(u, s)| u + s).expect("cpu time");
    let cpu_before: Vec<f64> = pids.iter().map(|p| cpu(*p)).collect();
    let sent_before: Vec<u64> = names.iter().map(|h| udp_sent(&lab, h)).collect();
    std::thread::sleep(IDLE);
    let cpu_used: Vec<f64> = pids
        .iter()
        .zip(&cpu_before)
        .map(|(p, before)| cpu(*p) - before)
        .collect();
    let sent: Vec<u64> = names
        .iter()
        .zip(&sent_before)
        .map(|(h, before)| udp_sent(&lab, h) - before)
        .collect();
    let seconds = IDLE.as_secs_f64();
    let packets_per_second = sent.iter().sum::<u64>() as f64 / n as f64 / seconds;
    let cpu_percent = 100.0 * cpu_used.iter().sum::<f64>() / n as f64 / seconds;
    eprintln!(
        "{n} nodes idle: datagrams/s by node {:?}, CPU % by node {:?}",
        sent.iter().map(|s| *s as f64 / seconds).collect::<Vec<_>>(),
        cpu_used
            .iter()
            .map(|c| 100.0 * c / seconds)
            .collect::<Vec<_>>()
    );

    if let Some(hold) = hold() {
        eprintln!("holding the lab idle for {hold:?}: speaker PIDs {pids:?}");
        std::thread::sleep(hold);
        // Returning takes the lab down.
        return Size {
            nodes: n,
            packets_per_second,
            cpu_percent,
            failover_ms: Vec::new(),
        };
    }

    let mut failover_ms = Vec::new();
    for trial in 0..TRIALS {
        let log = arp_watch(&mut lab, probe_ip);
        let cut = wall_clock();
        lab.set_link(&owner, false).expect("cut");
        let moved = wait_until(Duration::from_secs(5), Duration::from_millis(5), || {
            first_other_mac(&log, &owner_mac)
        });
        stop_arp_watch(&mut lab);
        let (at, _) = moved.unwrap_or_else(|| panic!("trial {trial}: no failover\n{}", lab.logs()));
        failover_ms.push((at - cut) * 1000.0);
        lab.set_link(&owner, true).expect("restore");
        let back = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
            resolve_mac(&lab, probe_ip).filter(|m| *m == owner_mac)
        });
        assert!(
            back.is_some(),
            "trial {trial}: the IP did not return\n{}",
            lab.logs()
        );
        std::thread::sleep(SETTLE);
    }
    eprintln!("{n} nodes: failover trials {failover_ms:.0?} ms");
    Size {
        nodes: n,
        packets_per_second,
        cpu_percent,
        failover_ms,
    }
}

/// `GOSSIP_IDLE_HOLD`: seconds to keep the first lab idle for a profiler.
fn hold() -> Option<Duration> {
    let seconds = std::env::var("GOSSIP_IDLE_HOLD").ok()?;
    Some(Duration::from_secs(
        seconds.parse().expect("GOSSIP_IDLE_HOLD: seconds"),
    ))
}

fn main() {
    if !lab_available(&["ip", "arping"]) {
        eprintln!("skipped: needs root, ip and arping");
        return;
    }
    if hold().is_some() {
        measure(3);
        return;
    }
    let sizes: Vec<Size> = [3, 12].into_iter().map(measure).collect();
    println!();
    println!(
        "| nodes | datagrams sent/s per speaker | CPU per speaker | failover at the client, median ms | worst ms |"
    );
    println!("|---|---|---|---|---|");
    for s in &sizes {
        println!(
            "| {} | {:.1} | {:.2}% | {:.0} | {:.0} |",
            s.nodes,
            s.packets_per_second,
            s.cpu_percent,
            median(s.failover_ms.clone()),
            s.failover_ms.iter().copied().fold(0.0, f64::max)
        );
    }
    let (three, twelve) = (&sizes[0], &sizes[1]);
    let mut met = true;
    let mut check = |what: String, ok: bool| {
        println!("target: {what}: {}", if ok { "met" } else { "NOT met" });
        met &= ok;
    };
    check(
        format!(
            "under 100 datagrams/s per speaker at 3 nodes ({:.1})",
            three.packets_per_second
        ),
        three.packets_per_second < 100.0,
    );
    check(
        format!(
            "under 1% of a core per speaker at 3 nodes ({:.2}%)",
            three.cpu_percent
        ),
        three.cpu_percent < 1.0,
    );
    check(
        format!(
            "at 12 nodes, no more than 1.5x the datagrams of 3 ({:.2}x)",
            twelve.packets_per_second / three.packets_per_second
        ),
        twelve.packets_per_second <= 1.5 * three.packets_per_second,
    );
    check(
        format!(
            "at 12 nodes, no more than 1.5x the CPU of 3 ({:.2}x)",
            twelve.cpu_percent / three.cpu_percent
        ),
        twelve.cpu_percent <= 1.5 * three.cpu_percent,
    );
    for s in &sizes {
        let m = median(s.failover_ms.clone());
        check(
            format!(
                "failover under 200 ms median at {} nodes ({m:.0} ms)",
                s.nodes
            ),
            m < 200.0,
        );
    }
    if !met {
        std::process::exit(1);
    }
}
