//! BGP mode at scale, against FRR as the top-of-rack router (zebra and bgpd) and GoBGP as a
//! second peer of every node:
//! - 10,000 Services (Cluster policy) announced by three speakers: from the speakers' start
//!   (the controller has given every Service its IP) to the last of the 10,000 routes in
//!   FRR's kernel table with all three next hops, as `ip -ts monitor route` there reports it.
//!   Target: under 2 s.
//! - A speaker's resident memory with those 10,000 Services announced to both peers, at
//!   rest. Target: under 40 MiB.
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench bgp_scale` (root).
//! `BGP_SCALE_HOLD=N` keeps the lab up N seconds after measuring, printing the speakers'
//! PIDs.
use ferrolb_e2e::layer2::{L2Cluster, NODES, log_time, nodes, service, wall_clock};
use ferrolb_e2e::standalone::{StoreRun, ingress};
use ferrolb_e2e::{Lab, Neighbor, cpu_seconds, lab_available, route_monitor, wait_until};
use std::collections::BTreeMap;
use std::time::Duration;

const SERVICES: usize = 10_000;

const CONFIG: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: scale, namespace: metallb-system}
spec: {addresses: [198.18.0.0/17]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: gobgp, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64502, peerAddress: 192.0.2.100}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: scale, namespace: metallb-system}
spec: {ipAddressPools: [scale]}
---
"#;

/// The Service IPs: 198.18.0.1 on.
fn service_ip(i: usize) -> String {
    let n = i + 1;
    format!("198.18.{}.{}", n / 256, n % 256)
}

fn main() {
    if !lab_available(&["ip", "zebra", "bgpd", "vtysh", "gobgpd", "gobgp"]) {
        eprintln!("bgp_scale needs root, FRR and GoBGP");
        std::process::exit(1);
    }
    let services: String = (0..SERVICES)
        .map(|i| service(&format!("s{i}"), &service_ip(i), "Cluster", &NODES))
        .collect();
    let store = StoreRun::new();
    store.write("config.yaml", CONFIG);
    store.write("nodes.yaml", &nodes(&[]));
    store.write("services.yaml", &services);
    let mut cluster = L2Cluster {
        lab: Lab::standard().expect("the lab starts"),
        store,
    };
    cluster.store.start_controller(&[]);
    cluster.lab.start_frr_tor("").expect("FRR starts");
    let nodes_as_neighbors: Vec<Neighbor> = ["192.0.2.11", "192.0.2.12", "192.0.2.13"]
        .iter()
        .map(|a| Neighbor {
            address: a.parse().expect("an IPv4 address"),
            asn: 64501,
        })
        .collect();
    cluster
        .lab
        .start_gobgp("cli", 64502, &nodes_as_neighbors)
        .expect("GoBGP starts");
    cluster
        .lab
        .spawn("rtr", "monitor", &["ip", "-ts", "monitor", "route"])
        .expect("ip monitor starts");
    let allocated = wait_until(Duration::from_secs(60), Duration::from_secs(2), || {
        let all = cluster.store.get("services");
        let n = all["items"].as_array().map_or(0, |items| {
            items.iter().filter(|s| !ingress(s).is_empty()).count()
        });
        (n == SERVICES).then_some(())
    });
    assert!(allocated.is_some(), "{}", cluster.store.controller_log());

    let start = wall_clock();
    for node in NODES {
        cluster.start_speaker(node).expect("a speaker starts");
    }
    // The first time each prefix has all three next hops.
    let complete = wait_until(Duration::from_secs(60), Duration::from_millis(250), || {
        let log = cluster.lab.daemon("rtr", "monitor")?.output();
        let mut full: BTreeMap<String, f64> = BTreeMap::new();
        for change in route_monitor::parse(&log) {
            if !change.deleted && change.next_hops.len() == 3 {
                full.entry(change.prefix).or_insert(change.at);
            }
        }
        (full.len() == SERVICES).then(|| full.values().copied().fold(0.0, f64::max))
    });
    let Some(last) = complete else {
        panic!(
            "not every route reached the router with three next hops\n{}",
            cluster.lab.vtysh(
                "rtr",
                &format!("{}/rtr-frr", cluster.lab.dir().display()),
                "show bgp summary"
            )
        );
    };
    let all_present_ms = (last - start) * 1000.0;
    // Where the time went: the store read, the sessions, the first route and the router.
    let log = cluster
        .lab
        .daemon("rtr", "monitor")
        .map(|d| d.output())
        .unwrap_or_default();
    let changes = route_monitor::parse(&log);
    let first_route = changes.first().map_or(0.0, |c| (c.at - start) * 1000.0);
    let mut logged = |what: &str| -> Vec<f64> {
        NODES
            .iter()
            .filter_map(|n| {
                let log = cluster.lab.daemon(n, "speaker")?.output();
                log.lines()
                    .find(|l| l.contains(what))
                    .and_then(log_time)
                    .map(|at| (at - start) * 1000.0)
            })
            .collect()
    };
    let read = logged("speaker started");
    let established = logged("address=192.0.2.1:179");
    // GoBGP holds them too, from each node.
    let gobgp = wait_until(Duration::from_secs(60), Duration::from_secs(1), || {
        let summary = cluster
            .lab
            .gobgp("cli", &["global", "rib", "summary", "-a", "ipv4"]);
        summary
            .contains(&format!("Destination: {SERVICES}, Path: {}", 3 * SERVICES))
            .then_some(summary)
    });
    assert!(
        gobgp.is_some(),
        "{}",
        cluster.lab.gobgp("cli", &["neighbor"])
    );
    // At rest, as a long-running speaker sits.
    std::thread::sleep(Duration::from_secs(10));
    let memory: Vec<f64> = NODES
        .iter()
        .filter_map(|n| Some(cluster.lab.daemon(n, "speaker")?.resident_kib()? as f64 / 1024.0))
        .collect();
    let worst = memory.iter().copied().fold(0.0, f64::max);
    let cpu: Vec<f64> = NODES
        .iter()
        .filter_map(|n| cpu_seconds(cluster.lab.daemon(n, "speaker")?.pid()))
        .map(|(user, system)| user + system)
        .collect();
    let controller_cpu = cluster
        .store
        .controller_pid()
        .and_then(cpu_seconds)
        .map(|(user, system)| user + system);

    println!("| measurement | result | target |");
    println!("|---|---|---|");
    println!(
        "| {SERVICES} Services, 3 speakers: start to every route in FRR's kernel table with 3 next hops | {all_present_ms:.0} ms | < 2000 ms: {} |",
        if all_present_ms < 2000.0 {
            "met"
        } else {
            "not met"
        }
    );
    println!(
        "| speaker resident memory, {SERVICES} Services announced to FRR and GoBGP (largest of 3) | {worst:.1} MiB | < 40 MiB: {} |",
        if worst < 40.0 { "met" } else { "not met" }
    );
    println!(
        "(each speaker: {memory:.1?} MiB; CPU used since its start: {cpu:.2?} s; the controller's: {controller_cpu:.2?} s)"
    );
    println!(
        "(after the start: store read by {read:.0?} ms, sessions with FRR established at {established:.0?} ms, the first route in the kernel at {first_route:.0} ms, the last at {all_present_ms:.0} ms; {} kernel route changes)",
        changes.len()
    );
    // `BGP_SCALE_HOLD=N`: the lab stays up N more seconds, for a look inside the speakers
    // (`/proc/PID/smaps`, `gdb -p PID -batch -ex 'call (void)malloc_stats()'`).
    if let Ok(seconds) = std::env::var("BGP_SCALE_HOLD") {
        let pids: Vec<Option<u32>> = NODES
            .iter()
            .map(|n| cluster.lab.daemon(n, "speaker").map(|d| d.pid()))
            .collect();
        println!("holding the lab {seconds} s; speaker PIDs {pids:?}");
        let seconds = seconds.parse().expect("BGP_SCALE_HOLD: seconds");
        std::thread::sleep(Duration::from_secs(seconds));
    }
}
