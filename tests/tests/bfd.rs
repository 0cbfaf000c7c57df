//! BFD under BGP mode against real peers: FRR's bfdd (zebra, bfdd and bgpd on `rtr`) and
//! BIRD's BFD. Hold times are 9 s, so only BFD explains a route gone within a second.
use ferrolb_e2e::layer2::{L2Cluster, NODES, nodes, service, wall_clock};
use ferrolb_e2e::{BFD_PROFILE_FAST, FRR_BFD_FAST, lab_available, wait_until};
use std::time::Duration;

/// A pool announced to `peer_address` by BGPPeer `tor` with BFD profile `fast`
/// (50 ms x 3, MetalLB's field names).
fn config(peer_address: &str, peer_asn: u32) -> String {
    format!(
        r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {{name: bgp, namespace: metallb-system}}
spec: {{addresses: [203.0.113.0/24]}}
---
{BFD_PROFILE_FAST}apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {{name: tor, namespace: metallb-system}}
spec: {{myASN: 64501, peerASN: {peer_asn}, peerAddress: {peer_address}, holdTime: 9s, bfdProfile: fast}}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {{name: bgp, namespace: metallb-system}}
spec: {{ipAddressPools: [bgp]}}
---
"#
    )
}

const IP: &str = "203.0.113.10";
const ALL: [&str; 3] = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];

fn start() -> L2Cluster {
    L2Cluster::start(&[
        ("config.yaml", &config("192.0.2.1", 64500)),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &service("web", IP, "Cluster", &NODES)),
    ])
    .expect("the lab starts")
}

/// FRR's BFD peers, by address: (status, remote diagnostic, the intervals FRR uses).
fn frr_bfd_peers(cluster: &L2Cluster, vty: &str) -> Vec<serde_json::Value> {
    let json = cluster.lab.vtysh("rtr", vty, "show bfd peers json");
    serde_json::from_str(&json).unwrap_or_default()
}

fn frr_peer(cluster: &L2Cluster, vty: &str, address: &str) -> Option<serde_json::Value> {
    frr_bfd_peers(cluster, vty)
        .into_iter()
        .find(|p| p["peer"] == address)
}

fn wait_frr_up(cluster: &L2Cluster, vty: &str, addresses: &[&str], timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(50), || {
        addresses
            .iter()
            .all(|a| frr_peer(cluster, vty, a).is_some_and(|p| p["status"] == "up"))
            .then_some(())
    })
    .is_some()
}

fn wait_next_hops(cluster: &L2Cluster, wanted: &[&str], timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(10), || {
        (cluster.lab.next_hops(IP) == wanted).then_some(())
    })
    .is_some()
}

fn speaker_metrics(cluster: &L2Cluster, node: &str) -> String {
    cluster
        .lab
        .exec(node, &["curl", "-s", "http://127.0.0.1:7472/metrics"])
        .unwrap_or_default()
}

#[test]
fn with_frr_bfd_a_cut_link_takes_its_route_away_at_once_and_everything_comes_back() {
    if !lab_available(&["ip", "zebra", "bfdd", "bgpd", "vtysh", "curl"]) {
        return;
    }
    let mut cluster = start();
    let vty = cluster
        .lab
        .start_frr_tor_with_bfd(" neighbor nodes bfd profile fast", FRR_BFD_FAST)
        .expect("FRR starts");
    assert!(
        wait_next_hops(&cluster, &ALL, Duration::from_secs(30)),
        "{:?}\n{}\n{}",
        cluster.lab.next_hops(IP),
        cluster.lab.vtysh("rtr", &vty, "show bgp summary"),
        cluster.logs()
    );
    assert!(
        wait_frr_up(&cluster, &vty, &ALL, Duration::from_secs(10)),
        "{}\n{}",
        cluster.lab.vtysh("rtr", &vty, "show bfd peers"),
        cluster.logs()
    );
    // 50 ms both ways, as both sides asked (FRR's view of what we said).
    let n1 = frr_peer(&cluster, &vty, "192.0.2.11").expect("n1's session");
    assert_eq!(n1["remote-receive-interval"], 50, "{n1:#}");
    assert_eq!(n1["remote-transmit-interval"], 50, "{n1:#}");
    assert_eq!(n1["remote-detect-multiplier"], 3, "{n1:#}");
    // MetalLB's BFD metrics, on our side (published each second: waited for).
    let counted = |metrics: &str, counter: &str| {
        let series = format!("metallb_bfd_{counter}{{peer=\"192.0.2.1\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse::<u64>().ok())
    };
    let metrics = wait_until(Duration::from_secs(5), Duration::from_millis(200), || {
        let metrics = speaker_metrics(&cluster, "n1");
        ["control_packet_input", "control_packet_output"]
            .iter()
            .all(|c| counted(&metrics, c).is_some_and(|n| n > 10))
            .then_some(metrics)
    });
    let metrics = metrics.unwrap_or_else(|| speaker_metrics(&cluster, "n1"));
    for wanted in [
        "metallb_bfd_session_up{peer=\"192.0.2.1\"} 1",
        "metallb_bfd_session_up_events{peer=\"192.0.2.1\"} 1",
        "metallb_bfd_echo_packet_output{peer=\"192.0.2.1\"} 0",
    ] {
        assert!(metrics.lines().any(|l| l == wanted), "{wanted}: {metrics}");
    }
    assert!(
        counted(&metrics, "control_packet_input").is_some_and(|n| n > 10),
        "{metrics}"
    );
    assert!(metrics.contains("ferrolb_bfd_tx_lateness_seconds{peer=\"192.0.2.1\"}"));

    // n2's link is cut: FRR's BFD sees it within 150 ms and bgpd drops the path; with a
    // 9 s hold time, only BFD can explain it going within a second.
    let cut = wall_clock();
    cluster.lab.set_link("n2", false).expect("cutting n2");
    let others = ["192.0.2.11", "192.0.2.13"];
    assert!(
        wait_next_hops(&cluster, &others, Duration::from_secs(5)),
        "{:?}",
        cluster.lab.next_hops(IP)
    );
    let gone = wall_clock() - cut;
    assert!(gone < 1.0, "n2's next hop went after {gone:.3} s");
    // Our side saw it too, and took the BGP session down with a Cease saying why.
    let n2_down = wait_until(Duration::from_secs(3), Duration::from_millis(50), || {
        let log = cluster.lab.daemon("n2", "speaker")?.output();
        log.contains("BFD session down: the BGP session goes down with it")
            .then_some(())
    });
    assert!(n2_down.is_some(), "{}", cluster.logs());

    // The link returns: BFD and BGP come back, and the next hop with them.
    cluster.lab.set_link("n2", true).expect("restoring n2");
    assert!(
        wait_next_hops(&cluster, &ALL, Duration::from_secs(20)),
        "{:?}\n{}\n{}",
        cluster.lab.next_hops(IP),
        cluster.lab.vtysh("rtr", &vty, "show bfd peers"),
        cluster.logs()
    );
    assert!(wait_frr_up(&cluster, &vty, &ALL, Duration::from_secs(10)));

    // The profile slows to 300 ms, then speeds up to 50 ms again: each change reaches FRR
    // by a Poll Sequence, and neither takes the session down.
    let uptime = |cluster: &L2Cluster| {
        frr_peer(cluster, &vty, "192.0.2.11").and_then(|p| p["uptime"].as_u64())
    };
    let before = uptime(&cluster).expect("n1's session is up");
    for interval in [300, 50] {
        cluster.store.write(
            "config.yaml",
            &config("192.0.2.1", 64500).replace(
                "receiveInterval: 50, transmitInterval: 50",
                &format!("receiveInterval: {interval}, transmitInterval: {interval}"),
            ),
        );
        let negotiated = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            let peer = frr_peer(&cluster, &vty, "192.0.2.11")?;
            (peer["remote-receive-interval"] == interval
                && peer["remote-transmit-interval"] == interval
                && peer["status"] == "up")
                .then_some(())
        });
        assert!(
            negotiated.is_some(),
            "{interval}: {:#?}\n{}",
            frr_peer(&cluster, &vty, "192.0.2.11"),
            cluster.logs()
        );
    }
    assert!(uptime(&cluster).is_some_and(|now| now >= before));
    let metrics = speaker_metrics(&cluster, "n1");
    assert!(
        metrics.contains("metallb_bfd_session_down_events{peer=\"192.0.2.1\"} 0"),
        "{metrics}"
    );

    // A drained speaker says AdminDown before it goes, three times (one lost packet must
    // not look like a failed path), before it closes its BGP session. (This FRR takes the
    // BGP session down on the peer's AdminDown, though RFC 5882 says it should not, and
    // forgets the dynamic peer: the packets on the wire are what shows it.)
    cluster
        .lab
        .spawn(
            "rtr",
            "tcpdump",
            &[
                "tcpdump",
                "-n",
                "-l",
                "-v",
                "-i",
                "eth0",
                "src",
                "192.0.2.13",
                "and",
                "(udp port 3784 or tcp port 179)",
            ],
        )
        .expect("tcpdump starts");
    std::thread::sleep(Duration::from_millis(500));
    cluster
        .lab
        .daemon("n3", "speaker")
        .expect("n3's speaker")
        .terminate();
    let wire = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let out = cluster.lab.daemon("rtr", "tcpdump")?.output();
        (out.matches("State AdminDown").count() >= 3 && out.contains("Flags [F")).then_some(out)
    });
    let out = cluster
        .lab
        .daemon("rtr", "tcpdump")
        .map(|d| d.output())
        .unwrap_or_default();
    assert!(wire.is_some(), "{out}\n{}", cluster.logs());
    // AdminDown went out before the BGP connection's end (its FIN).
    let admin_down = out.find("State AdminDown").unwrap_or(usize::MAX);
    let fin = out.find("Flags [F").unwrap_or(0);
    assert!(admin_down < fin, "{out}");
}

#[test]
fn with_bird_bfd_the_sessions_come_up_and_a_cut_link_takes_bgp_down_at_once() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    // BIRD on cli (internal, AS 64501) with BFD on every BGP session; `direct`, or BIRD
    // takes an internal peer for a multihop one (and its BFD session with it); a short
    // error wait, or BIRD waits a minute before it opens a session BFD took down.
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", &config("192.0.2.100", 64501)),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &service("web", IP, "Cluster", &NODES)),
    ])
    .expect("the lab starts");
    let mut protocols = String::from(
        "protocol bfd { interface \"*\" { min rx interval 50 ms; min tx interval 50 ms; multiplier 3; }; }\n",
    );
    for n in NODES {
        protocols.push_str(&format!(
            "protocol bgp {n} {{ local 192.0.2.100 as 64501; neighbor 192.0.2.1{} as 64501; \
             direct; connect retry time 1; error wait time 1, 5; bfd on; ipv4 {{ import all; export none; }}; }}\n",
            &n[1..]
        ));
    }
    let bird = cluster
        .lab
        .start_bird("cli", &protocols)
        .expect("BIRD starts");
    let sessions = |cluster: &L2Cluster| cluster.lab.birdc("cli", &bird, "show bfd sessions");
    let up = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let table = sessions(&cluster);
        (ALL.iter().all(|a| {
            table
                .lines()
                .any(|l| l.starts_with(a) && l.contains(" Up "))
        }))
        .then_some(())
    });
    assert!(up.is_some(), "{}\n{}", sessions(&cluster), cluster.logs());
    let established = |cluster: &L2Cluster, n: &str| {
        cluster
            .lab
            .birdc("cli", &bird, &format!("show protocols {n}"))
            .contains("Established")
    };
    assert!(
        wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
            NODES.iter().all(|n| established(&cluster, n)).then_some(())
        })
        .is_some()
    );
    // n1's link is cut: BIRD's BGP session with it goes within a second (hold 9 s).
    let cut = wall_clock();
    cluster.lab.set_link("n1", false).expect("cutting n1");
    let down = wait_until(Duration::from_secs(5), Duration::from_millis(10), || {
        (!established(&cluster, "n1")).then_some(())
    });
    assert!(down.is_some(), "{}", sessions(&cluster));
    let took = wall_clock() - cut;
    assert!(took < 1.0, "BIRD's session with n1 went after {took:.3} s");
    assert!(established(&cluster, "n2") && established(&cluster, "n3"));
    // Back: up again.
    cluster.lab.set_link("n1", true).expect("restoring n1");
    let all_up = |cluster: &L2Cluster| {
        wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            let table = sessions(cluster);
            (NODES.iter().all(|n| established(cluster, n))
                && ALL.iter().all(|a| {
                    table
                        .lines()
                        .any(|l| l.starts_with(a) && l.contains(" Up "))
                }))
            .then_some(())
        })
        .is_some()
    };
    assert!(
        all_up(&cluster),
        "{}\n{}",
        sessions(&cluster),
        cluster.logs()
    );
    // BIRD restarts (killed, as in a crash): every session, BFD and BGP, comes back.
    cluster.lab.daemon("cli", "bird").expect("BIRD runs").kill();
    let bird = cluster
        .lab
        .start_bird("cli", &protocols)
        .expect("BIRD starts again");
    let sessions = |cluster: &L2Cluster| cluster.lab.birdc("cli", &bird, "show bfd sessions");
    let up = wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
        let table = sessions(&cluster);
        ALL.iter()
            .all(|a| {
                table
                    .lines()
                    .any(|l| l.starts_with(a) && l.contains(" Up "))
            })
            .then_some(())
    });
    assert!(up.is_some(), "{}\n{}", sessions(&cluster), cluster.logs());
}

#[test]
fn an_ebgp_multihop_peer_gets_multihop_bfd_and_a_cut_link_still_takes_its_route_away() {
    if !lab_available(&["ip", "zebra", "bfdd", "bgpd", "vtysh"]) {
        return;
    }
    // ebgpMultiHop on our side, `ebgp-multihop` on FRR's: both run BFD over UDP 4784, our
    // side requiring the profile's minimumTtl (254 by default) on what arrives.
    let mut cluster = L2Cluster::start(&[
        (
            "config.yaml",
            &config("192.0.2.1", 64500)
                .replace("bfdProfile: fast}", "bfdProfile: fast, ebgpMultiHop: true}"),
        ),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &service("web", IP, "Cluster", &NODES)),
    ])
    .expect("the lab starts");
    let vty = cluster
        .lab
        .start_frr_tor_with_bfd(
            " neighbor nodes ebgp-multihop 2\n neighbor nodes bfd profile fast",
            FRR_BFD_FAST,
        )
        .expect("FRR starts");
    assert!(
        wait_next_hops(&cluster, &ALL, Duration::from_secs(30)),
        "{:?}\n{}",
        cluster.lab.next_hops(IP),
        cluster.logs()
    );
    assert!(
        wait_frr_up(&cluster, &vty, &ALL, Duration::from_secs(15)),
        "{}\n{}",
        cluster.lab.vtysh("rtr", &vty, "show bfd peers"),
        cluster.logs()
    );
    let n1 = frr_peer(&cluster, &vty, "192.0.2.11").expect("n1's session");
    assert_eq!(n1["multihop"], true, "{n1:#}");
    let cut = wall_clock();
    cluster.lab.set_link("n2", false).expect("cutting n2");
    assert!(
        wait_next_hops(
            &cluster,
            &["192.0.2.11", "192.0.2.13"],
            Duration::from_secs(5)
        ),
        "{:?}",
        cluster.lab.next_hops(IP)
    );
    let gone = wall_clock() - cut;
    assert!(gone < 1.0, "n2's next hop went after {gone:.3} s");
}
