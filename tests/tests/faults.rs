//! The fault harness (issue 9): faults injected into a running controller and three
//! speakers while a client checks, every 10 ms, that at most one MAC answers for the Service
//! IP and that it is answered; in BGP mode, while the router's kernel table is watched.
use ferrolb_e2e::faults::{
    AnswerWatch, BgpFault, CONFIG_FILE, Fault, MAX_DOUBLE_ANSWER, allocation_violations,
    gossip_partition, inject, inject_bgp, route_violations,
};
use ferrolb_e2e::layer2::{L2Cluster, NODES, POOL, bgp_config, nodes, service, wall_clock};
use ferrolb_e2e::standalone::{StoreRun, ingress};
use ferrolb_e2e::{BFD_PROFILE_FAST, FRR_BFD_FAST, lab_available, route_monitor, wait_until};
use std::time::Duration;

const TOOLS: &[&str] = &["ip"];
const SETTLE: Duration = Duration::from_secs(15);

/// The timed fault tests count silence in 10 ms rounds: two three-node labs at once on a
/// two-core machine would measure the scheduler instead of the speakers, so they take turns.
static TIMED: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_timed_test_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one still runs.
    TIMED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The owner's link goes down for `cut`, then comes back: the taker must answer while it is
/// down, and the two must never both answer for longer than a takeover takes.
fn link_flap(ip: &str, cut: Duration) {
    if !lab_available(TOOLS) {
        return;
    }
    let _turn = one_timed_test_at_a_time();
    let (mut cluster, order) = L2Cluster::with_one_service(ip).expect("the lab starts");
    // Long enough after the link returns for the IP to settle back on its owner.
    let span = Duration::from_secs(4) + cut + Duration::from_secs(5);
    let watch = AnswerWatch::start(&mut cluster, ip, span).expect("watching the answers");
    std::thread::sleep(Duration::from_secs(2));
    cluster
        .lab
        .set_link(&order[0], false)
        .expect("cutting the link");
    std::thread::sleep(cut);
    cluster
        .lab
        .set_link(&order[0], true)
        .expect("restoring the link");
    let answers = watch.finish(&mut cluster).expect("the answers");
    assert!(
        answers.longest_double < MAX_DOUBLE_ANSWER,
        "after a {cut:?} cut, two MACs answered for {ip} for {:?} ({answers:?}, owner {}, MACs {:?})\n{}",
        answers.longest_double,
        order[0],
        NODES.map(|n| (n, cluster.mac(n))),
        cluster.logs()
    );
    // Unanswered only while the owner's loss is detected (about 0.1 s), with room for a
    // loaded machine.
    let silent = answers.silence();
    assert!(
        silent <= Duration::from_millis(600),
        "{ip} went unanswered for {silent:?} ({answers:?})\n{}",
        cluster.logs()
    );
    assert!(
        cluster.wait_resolves_to(ip, Some(&order[0]), SETTLE),
        "{ip} did not return to {}\n{}",
        order[0],
        cluster.logs()
    );
}

#[test]
fn a_200_ms_link_flap_never_has_two_nodes_answering() {
    link_flap("198.51.100.60", Duration::from_millis(200));
}

#[test]
fn a_1500_ms_link_flap_never_has_two_nodes_answering() {
    link_flap("198.51.100.61", Duration::from_millis(1500));
}

#[test]
fn a_6_s_link_flap_never_has_two_nodes_answering() {
    link_flap("198.51.100.62", Duration::from_secs(6));
}

const POOL_ONLY: &str = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: lab, namespace: metallb-system}\nspec: {addresses: [198.51.100.0/24]}\n---\n";

/// Issue 9, case 10: as PID 1 (a container), the controller once ignored SIGTERM, so a
/// rollout ran two controllers until the grace period ended in SIGKILL.
#[test]
fn the_controller_as_pid_1_stops_at_sigterm() {
    if !lab_available(&["unshare", "kill"]) {
        return;
    }
    let mut run = StoreRun::new();
    run.write("pools.yaml", POOL_ONLY);
    run.write("web.yaml", &service("web", "198.51.100.9", "Cluster", &[]));
    run.start_controller_under(&["unshare", "--pid", "--fork"], &[]);
    run.wait_service("default", "web", "an IP", |s| !ingress(s).is_empty());
    // The controller is the launcher's only child, PID 1 in its namespace.
    let launcher = run.controller_pid().expect("started");
    let children = std::fs::read_to_string(format!("/proc/{launcher}/task/{launcher}/children"))
        .expect("the launcher's children");
    let controller = children.split_whitespace().next().expect("the controller");
    let status = std::process::Command::new("kill")
        .args(["-TERM", controller])
        .status()
        .expect("kill");
    assert!(status.success());
    assert!(
        run.wait_controller_exit(Duration::from_secs(5)),
        "the controller ignored SIGTERM\n{}",
        run.controller_log()
    );
}

/// Unmounts a tmpfs on drop, also when the test fails.
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

fn temporaries(dir: &std::path::Path) -> usize {
    std::process::Command::new("find")
        .arg(dir)
        .args(["-name", ".*.tmp"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap_or(0)
}

/// Issue 9, case 10: a full disk left a new temporary file per retry of a status write. The
/// controller must keep retrying, leave nothing behind, and catch up once there is room.
#[test]
fn a_full_disk_leaves_no_temporary_files_and_is_caught_up_after() {
    if !lab_available(&["mount", "umount", "find"]) {
        return;
    }
    let mut run = StoreRun::new();
    let dir = run.dir().to_path_buf();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
        .arg(&dir)
        .status()
        .expect("mount");
    assert!(mounted.success(), "mounting a tmpfs on {}", dir.display());
    let _tmpfs = Tmpfs(dir.clone());
    run.write("pools.yaml", POOL_ONLY);
    let services: String = (0..40)
        .map(|i| {
            format!("apiVersion: v1\nkind: Service\nmetadata: {{name: s{i}, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n---\n")
        })
        .collect();
    run.write("services.yaml", &services);
    // Fill the disk to the last byte.
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=4096"])
        .arg(format!("of={}", dir.join(".filler").display()))
        .stderr(std::process::Stdio::null())
        .status();
    run.start_controller(&[]);
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(temporaries(&dir), 0, "temporary files left behind");
    assert!(
        run.service("default", "s0")
            .is_some_and(|s| ingress(&s).is_empty())
    );
    std::fs::remove_file(dir.join(".filler")).expect("freeing the disk");
    run.wait_service("default", "s39", "an IP once there is room", |s| {
        !ingress(s).is_empty()
    });
    run.kill_controller();
}

/// A gossip-only partition (issue 9): the owner and the others cannot reach each other by
/// gossip while ARP still works, so both sides announce. It cannot be decided safely, so it
/// must be visible (a Warning Event naming both nodes) and heal within a second of ending.
#[test]
fn a_gossip_only_partition_is_reported_and_heals_within_a_second() {
    if !lab_available(&["ip", "nft"]) {
        return;
    }
    let _turn = one_timed_test_at_a_time();
    let ip = "198.51.100.63";
    let (mut cluster, order) = L2Cluster::with_one_service(ip).expect("the lab starts");
    let (owner, taker) = (&order[0], &order[1]);
    gossip_partition(&cluster, owner, true).expect("partitioning gossip");
    let named = format!("so does node \"{taker}\"");
    let reported =
        ferrolb_e2e::wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
            cluster.speaker_events(owner).into_iter().find(|e| {
                e["reason"] == "addressConflict"
                    && e["message"].as_str().is_some_and(|m| m.contains(&named))
            })
        });
    assert!(
        reported.is_some(),
        "no Warning Event naming {taker}: {:?}\n{}",
        cluster.speaker_events(owner),
        cluster.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    let watch = AnswerWatch::start(&mut cluster, ip, Duration::from_secs(4)).expect("watching");
    std::thread::sleep(Duration::from_millis(200));
    gossip_partition(&cluster, owner, false).expect("healing");
    let answers = watch.finish(&mut cluster).expect("the answers");
    // Both answer until the partition ends (200 ms into the watch), then one within a second.
    assert!(
        answers.longest_double < Duration::from_millis(1200),
        "still two MACs {:?} after the partition ended ({answers:?})\n{}",
        answers.longest_double,
        cluster.logs()
    );
    assert!(
        cluster.wait_resolves_to(ip, Some(owner), SETTLE),
        "{ip} did not settle on {owner}\n{}",
        cluster.logs()
    );
}

/// Every kind of fault in turn, on one cluster, against the owner of the watched IP where the
/// fault is about a node. After each: one MAC answered (or, for a split, it healed within a
/// second), the IP was never unanswered longer than the fault explains, and the controller
/// kept every IP in its pool and each with one Service.
#[test]
fn the_cluster_keeps_its_invariants_through_every_kind_of_fault() {
    if !lab_available(&["ip", "nft"]) {
        return;
    }
    let _turn = one_timed_test_at_a_time();
    let ip = "198.51.100.64";
    let (mut cluster, order) = L2Cluster::with_one_service(ip).expect("the lab starts");
    let owner = order[0].clone();
    let pools = ["198.51.100.0/25", "2001:db8::ff00/120"].map(|n| n.parse().expect("a CIDR"));
    let ms = Duration::from_millis;
    let faults = [
        Fault::Kill {
            node: owner.clone(),
        },
        Fault::Terminate {
            node: owner.clone(),
        },
        Fault::DiesAgainAfterRejoining {
            node: owner.clone(),
        },
        Fault::LinkFlap {
            node: owner.clone(),
            down: ms(800),
        },
        Fault::GossipPartition {
            node: owner.clone(),
            for_: ms(1500),
        },
        Fault::OneWayLoss {
            node: owner.clone(),
            for_: ms(1500),
        },
        Fault::EmptyConfig { for_: ms(300) },
        Fault::DamagedConfig { for_: ms(1000) },
        Fault::DamagedStatus,
        Fault::ServiceChurn,
    ];
    for fault in &faults {
        let watch =
            AnswerWatch::start(&mut cluster, ip, Duration::from_secs(12)).expect("watching");
        std::thread::sleep(ms(500));
        inject(&mut cluster, fault, POOL).expect("injecting the fault");
        let answers = watch.finish(&mut cluster).expect("the answers");
        // Printed for every fault, so a failure shows how close the earlier ones came.
        eprintln!("{fault:?}: {answers:?}");
        assert!(
            answers.longest_double < fault.allowed_double_answer(),
            "{fault:?}: two MACs answered for {:?} ({answers:?})\n{}",
            answers.longest_double,
            cluster.logs()
        );
        let silent = answers.silence();
        assert!(
            silent <= fault.allowed_silence(),
            "{fault:?}: unanswered for {silent:?} ({answers:?})\n{}",
            cluster.logs()
        );
        let violations = allocation_violations(&cluster, &pools);
        assert!(
            violations.is_empty(),
            "{fault:?}: {violations:?}\n{}",
            cluster.logs()
        );
        assert!(
            cluster.wait_resolves_to(ip, Some(&owner), SETTLE),
            "{fault:?}: {ip} did not return to {owner}\n{}",
            cluster.logs()
        );
    }
}

/// How many times n1's speaker (the one running now) has had its session come up.
fn n1_sessions_up(cluster: &mut L2Cluster) -> usize {
    cluster
        .lab
        .daemon("n1", "speaker")
        .map(|d| d.output().matches("BGP session established").count())
        .unwrap_or(0)
}

/// BGP mode through faults of processes, links, sessions, configuration and the router
/// itself, as the router's kernel table shows them (`ip -ts monitor route` on `rtr`): a
/// fault on one node never takes the Service's route away (the two others keep it), a
/// damaged configuration changes nothing, the router's own crash heals once it is back, and
/// after each fault the route has all three next hops again. The speakers' memory stays
/// bounded throughout.
#[test]
fn bgp_mode_keeps_its_invariants_through_every_kind_of_fault() {
    if !lab_available(&["ip", "zebra", "bgpd", "vtysh"]) {
        return;
    }
    bgp_faults(false);
}

/// The same with BFD (50 ms x 3) under every session, and BFD's own faults: its packets
/// lost while BGP works, and the router's bfdd crashing.
#[test]
fn bgp_mode_with_bfd_keeps_its_invariants_through_every_kind_of_fault() {
    if !lab_available(&["ip", "zebra", "bfdd", "bgpd", "vtysh", "nft"]) {
        return;
    }
    bgp_faults(true);
}

fn bgp_faults(bfd: bool) {
    let _turn = one_timed_test_at_a_time();
    let mut config = bgp_config("3s");
    if bfd {
        config =
            config.replace("holdTime: 3s}", "holdTime: 3s, bfdProfile: fast}") + BFD_PROFILE_FAST;
    }
    let config = &config;
    let ip = "203.0.113.10";
    let mut cluster = L2Cluster::start(&[
        (CONFIG_FILE, config),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &service("web", ip, "Cluster", &NODES)),
    ])
    .expect("the lab starts");
    let vty = if bfd {
        cluster
            .lab
            .start_frr_tor_with_bfd(" neighbor nodes bfd profile fast", FRR_BFD_FAST)
    } else {
        cluster.lab.start_frr_tor("")
    }
    .expect("FRR starts");
    cluster
        .lab
        .spawn("rtr", "monitor", &["ip", "-ts", "monitor", "route"])
        .expect("ip monitor starts");
    let all = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    let all_held = |cluster: &L2Cluster| {
        wait_until(Duration::from_secs(30), Duration::from_millis(50), || {
            (cluster.lab.next_hops(ip) == all).then_some(())
        })
        .is_some()
    };
    assert!(all_held(&cluster), "{}", cluster.logs());
    let ms = Duration::from_millis;
    let mut faults = vec![
        BgpFault::SpeakerKill { node: "n1".into() },
        BgpFault::SpeakerTerminate { node: "n2".into() },
        BgpFault::LinkFlap {
            node: "n3".into(),
            down: ms(800),
        },
        BgpFault::SessionReset { node: "n1".into() },
        BgpFault::DamagedConfig { for_: ms(1000) },
        BgpFault::RouterCrash,
    ];
    if bfd {
        faults.extend([
            BgpFault::BfdLoss {
                node: "n2".into(),
                for_: ms(600),
            },
            BgpFault::BfdRouterCrash,
        ]);
    }
    let bfd_downs = |cluster: &mut L2Cluster, node: &str| {
        cluster
            .lab
            .daemon(node, "speaker")
            .map(|d| {
                d.output()
                    .matches("BFD session down: the BGP session goes down")
                    .count()
            })
            .unwrap_or(0)
    };
    for fault in &faults {
        let since = wall_clock();
        let sessions_up = n1_sessions_up(&mut cluster);
        let n2_bfd_downs = bfd_downs(&mut cluster, "n2");
        // BGP comes back before BFD does: a BFD fault needs BFD up to mean anything.
        if bfd {
            let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
                let peers = cluster.lab.vtysh("rtr", &vty, "show bfd peers brief");
                (peers.lines().filter(|l| l.contains(" up")).count() == 3).then_some(())
            });
            assert!(
                up.is_some(),
                "{fault:?}: BFD is not up with every node\n{}\n{}",
                cluster.lab.vtysh("rtr", &vty, "show bfd peers brief"),
                cluster.logs()
            );
        }
        inject_bgp(&mut cluster, fault, config, &vty).expect("injecting the fault");
        // Past the hold time, so a loss the router notices late is seen too; then back.
        std::thread::sleep(Duration::from_secs(4));
        let healed = all_held(&cluster);
        if matches!(fault, BgpFault::BfdLoss { .. }) {
            assert!(
                bfd_downs(&mut cluster, "n2") > n2_bfd_downs,
                "the lost BFD packets did not take n2's session down\n{}",
                cluster.logs()
            );
        }
        if matches!(fault, BgpFault::SessionReset { .. }) {
            assert!(
                n1_sessions_up(&mut cluster) > sessions_up,
                "the router's reset did not happen\n{}",
                cluster.logs()
            );
        }
        let log = cluster
            .lab
            .daemon("rtr", "monitor")
            .map(|d| d.output())
            .unwrap_or_default();
        let changes = route_monitor::parse(&log);
        if !fault.may_lose_the_route() {
            let violations = route_violations(&changes, ip, since, 2, fault.changes_nothing());
            assert!(
                violations.is_empty(),
                "{fault:?}: {violations:#?}\n{}",
                cluster.logs()
            );
        }
        assert!(
            healed && cluster.lab.next_hops(ip) == all,
            "{fault:?}: the route did not get its three next hops back: {:?}\n{}\n{}",
            cluster.lab.next_hops(ip),
            cluster.lab.vtysh("rtr", &vty, "show bgp summary"),
            cluster.logs()
        );
        for node in NODES {
            let rss_kib = cluster
                .lab
                .daemon(node, "speaker")
                .and_then(|d| d.resident_kib())
                .unwrap_or(0);
            assert!(
                rss_kib < 96 * 1024,
                "{fault:?}: {node}'s speaker holds {rss_kib} KiB"
            );
        }
    }
}
