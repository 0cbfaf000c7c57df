//! BGP mode end to end: the controller and three speakers on a file store peer with FRR as
//! the top-of-rack router (zebra and bgpd: routes land in its kernel table), and announce
//! Service IPs as MetalLB decides them.
use ferrolb_e2e::layer2::{L2Cluster, NODES, nodes, service};
use ferrolb_e2e::{lab_available, wait_until};
use std::time::Duration;

const TOOLS: &[&str] = &["ip", "zebra", "bgpd", "vtysh"];

/// A pool announced by BGP to the router, over IPv4 (BGPPeer `tor`) and IPv6 (`tor6`), with
/// a community.
const CONFIG: &str = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp, namespace: metallb-system}
spec: {addresses: [203.0.113.0/24, "2001:db8:200::/120"]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1, holdTime: 9s}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor6, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, peerAddress: "2001:db8::1", holdTime: 9s}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: metallb-system}
spec: {ipAddressPools: [bgp], communities: ["64501:100"]}
---
"#;

fn wait_next_hops(cluster: &L2Cluster, ip: &str, wanted: &[&str], timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(50), || {
        (cluster.lab.next_hops(ip) == wanted).then_some(())
    })
    .is_some()
}

#[test]
fn the_router_spreads_a_service_over_every_node_that_may_announce_it() {
    if !lab_available(TOOLS) {
        return;
    }
    let services = [
        service("web", "203.0.113.10", "Cluster", &NODES),
        service("local", "203.0.113.20", "Local", &["n2"]),
        service("idle", "203.0.113.30", "Cluster", &[]),
        service("web6", "2001:db8:200::10", "Cluster", &NODES),
    ]
    .concat();
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", CONFIG),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &services),
    ])
    .expect("the lab starts");
    let vty = cluster.lab.start_frr_tor("").expect("FRR starts");
    let all = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &all, Duration::from_secs(30)),
        "{:?}\n{}\n{}",
        cluster.lab.next_hops("203.0.113.10"),
        cluster.lab.vtysh("rtr", &vty, "show bgp summary"),
        cluster.logs()
    );
    // Local: only the node with an endpoint. No endpoint at all: nobody.
    assert!(wait_next_hops(
        &cluster,
        "203.0.113.20",
        &["192.0.2.12"],
        Duration::from_secs(5)
    ));
    assert!(cluster.lab.next_hops("203.0.113.30").is_empty());
    // IPv6 over the IPv6 sessions (MP-BGP), with the nodes' IPv6 addresses as next hops.
    let all6 = ["2001:db8::11", "2001:db8::12", "2001:db8::13"];
    assert!(
        wait_next_hops(&cluster, "2001:db8:200::10", &all6, Duration::from_secs(10)),
        "{:?}\n{}",
        cluster.lab.next_hops("2001:db8:200::10"),
        cluster.lab.vtysh("rtr", &vty, "show bgp ipv6 unicast")
    );
    let route = cluster
        .lab
        .vtysh("rtr", &vty, "show bgp ipv4 unicast 203.0.113.10/32");
    assert!(route.contains("64501:100"), "community: {route}");
    // Each node says so in a ServiceBGPStatus, listing the peers that carry it (an IPv4
    // Service: the IPv4 session only).
    let statuses = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let items = cluster.store.get("bgpstatus")["items"].clone();
        let web: Vec<String> = items
            .as_array()
            .into_iter()
            .flatten()
            .filter(|s| {
                s["status"]["serviceName"] == "web"
                    && s["status"]["peers"] == serde_json::json!(["tor"])
            })
            .map(|s| s["status"]["node"].as_str().unwrap_or_default().to_string())
            .collect();
        (web.len() == 3).then_some(web)
    });
    assert!(
        statuses.is_some(),
        "{:?}",
        cluster.store.get("bgpstatus")["items"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| (
                s["status"]["node"].clone(),
                s["status"]["serviceName"].clone(),
                s["status"]["peers"].clone()
            ))
            .collect::<Vec<_>>()
    );

    // The Local Service goes: its route goes from the router's table.
    cluster.store.write(
        "services.yaml",
        &service("web", "203.0.113.10", "Cluster", &NODES),
    );
    assert!(
        wait_next_hops(&cluster, "203.0.113.20", &[], Duration::from_secs(5)),
        "{:?}",
        cluster.lab.next_hops("203.0.113.20")
    );
    // A speaker stopped (a node drained): its next hop goes at once, the others stay.
    cluster
        .lab
        .daemon("n1", "speaker")
        .expect("started")
        .terminate();
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &all[1..], Duration::from_secs(3)),
        "{:?}\n{}",
        cluster.lab.next_hops("203.0.113.10"),
        cluster.logs()
    );
}

#[test]
fn with_graceful_restart_a_restarted_speaker_keeps_its_next_hop_at_the_router() {
    if !lab_available(TOOLS) {
        return;
    }
    let config = CONFIG.replace(
        "peerAddress: 192.0.2.1, holdTime: 9s}",
        "peerAddress: 192.0.2.1, holdTime: 9s, enableGracefulRestart: true}",
    );
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", &config),
        ("nodes.yaml", &nodes(&[])),
        (
            "services.yaml",
            &service("web", "203.0.113.10", "Cluster", &NODES),
        ),
    ])
    .expect("the lab starts");
    // FRR helps restarting peers by default.
    let vty = cluster.lab.start_frr_tor("").expect("FRR starts");
    let all = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &all, Duration::from_secs(30)),
        "{:?}\n{}",
        cluster.lab.next_hops("203.0.113.10"),
        cluster.lab.vtysh("rtr", &vty, "show bgp summary")
    );
    // The speaker stops (an upgrade): it closes its session without a word, and the router
    // keeps its routes while it is away...
    cluster
        .lab
        .daemon("n1", "speaker")
        .expect("started")
        .terminate();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            cluster.lab.next_hops("203.0.113.10"),
            all,
            "{}",
            cluster
                .lab
                .vtysh("rtr", &vty, "show bgp ipv4 unicast 203.0.113.10/32")
        );
    }
    // ... and after it is back, with the session up again.
    cluster
        .start_speaker("n1")
        .expect("the speaker starts again");
    let again = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let neighbor = cluster
            .lab
            .vtysh("rtr", &vty, "show bgp neighbors 192.0.2.11");
        neighbor.contains("BGP state = Established").then_some(())
    });
    assert!(again.is_some(), "{}", cluster.logs());
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(cluster.lab.next_hops("203.0.113.10"), all);
    let route = cluster
        .lab
        .vtysh("rtr", &vty, "show bgp ipv4 unicast 203.0.113.10/32");
    assert!(!route.contains("stale"), "{route}");
}

/// Runs `curl` in a node's namespace against its speaker's metrics.
fn speaker_metrics(cluster: &L2Cluster, node: &str) -> String {
    cluster
        .lab
        .exec(node, &["curl", "-s", "http://127.0.0.1:7472/metrics"])
        .unwrap_or_default()
}

/// The sessions FRR established with a neighbor so far (FRR's own counter).
fn established_count(cluster: &L2Cluster, vty: &str, neighbor: &str) -> Option<u64> {
    let json = cluster
        .lab
        .vtysh("rtr", vty, &format!("show bgp neighbors {neighbor} json"));
    let value: serde_json::Value = serde_json::from_str(&json).ok()?;
    value[neighbor]["connectionsEstablished"].as_u64()
}

#[test]
fn a_password_from_a_secret_is_checked_and_what_fails_is_reported_on_the_peer() {
    if !lab_available(&["ip", "zebra", "bgpd", "vtysh", "curl"]) {
        return;
    }
    // The IPv4 peer's TCP MD5 password comes from a basic-auth Secret, and it names a BFD
    // profile asking for echo mode, which FerroLB does not run (the router runs no BFD here:
    // the BFD session stays Down, and BGP goes on without it). Each family has its own pool
    // and advertisement: MetalLB refuses echo mode towards a peer that gets IPv6 routes.
    let secret = |password: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: tor-auth, namespace: metallb-system}}\n\
             type: kubernetes.io/basic-auth\nstringData: {{password: {password}}}\n---\n"
        )
    };
    let config = CONFIG
        .replace(
            "spec: {addresses: [203.0.113.0/24, \"2001:db8:200::/120\"]}",
            "spec: {addresses: [203.0.113.0/24]}\n---\napiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bgp6, namespace: metallb-system}\nspec: {addresses: [\"2001:db8:200::/120\"]}",
        )
        .replace(
            "spec: {ipAddressPools: [bgp], communities: [\"64501:100\"]}",
            "spec: {ipAddressPools: [bgp], peers: [tor], communities: [\"64501:100\"]}\n---\napiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: bgp6, namespace: metallb-system}\nspec: {ipAddressPools: [bgp6], peers: [tor6]}",
        )
        .replace(
            "peerAddress: 192.0.2.1, holdTime: 9s}",
            "peerAddress: 192.0.2.1, holdTime: 9s, passwordSecret: {name: tor-auth}, bfdProfile: fast}",
        )
        + "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast, namespace: metallb-system}\nspec: {receiveInterval: 50, echoMode: true}\n---\n";
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", &config),
        ("secret.yaml", &secret("s3cret")),
        ("nodes.yaml", &nodes(&[])),
        (
            "services.yaml",
            &[
                service("web", "203.0.113.10", "Cluster", &NODES),
                service("web6", "2001:db8:200::10", "Cluster", &NODES),
            ]
            .concat(),
        ),
    ])
    .expect("the lab starts");
    let vty = cluster
        .lab
        .start_frr_tor(" neighbor nodes password s3cret")
        .expect("FRR starts");
    let all = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    let all6 = ["2001:db8::11", "2001:db8::12", "2001:db8::13"];
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &all, Duration::from_secs(30)),
        "{:?}\n{}\n{}",
        cluster.lab.next_hops("203.0.113.10"),
        cluster.lab.vtysh("rtr", &vty, "show bgp summary"),
        cluster.logs()
    );
    assert!(wait_next_hops(
        &cluster,
        "2001:db8:200::10",
        &all6,
        Duration::from_secs(10)
    ));
    // What the node cannot honour is in its ConfigurationState and an Event on the peer.
    let state = std::fs::read_to_string(
        cluster
            .store
            .dir()
            .join("status/ferrolb-speaker-n1/configurationstate/metallb-system.yaml"),
    )
    .unwrap_or_default();
    assert!(
        state.contains("speaker-n1")
            && state.contains("result: Valid")
            && state.contains("asks for echo mode"),
        "{state}"
    );
    let events = cluster.speaker_events("n1");
    assert!(
        events.iter().any(|e| e["reason"] == "notHonoured"
            && e["regarding"]["kind"] == "BGPPeer"
            && e["regarding"]["name"] == "tor"),
        "{events:#?}"
    );
    // MetalLB's metrics, FRR mode's counters among them.
    let metrics = speaker_metrics(&cluster, "n1");
    for wanted in [
        "metallb_bgp_session_up{peer=\"192.0.2.1:179\"} 1",
        "metallb_bgp_announced_prefixes_total{peer=\"192.0.2.1:179\"} 1",
    ] {
        assert!(metrics.lines().any(|l| l == wanted), "{wanted}:\n{metrics}");
    }
    // Counted over every connection of the session: a first attempt the router did not
    // answer (it was still starting) sent an OPEN too.
    for counter in ["opens_sent", "opens_received"] {
        let series = format!("metallb_bgp_{counter}{{peer=\"192.0.2.1:179\"}} ");
        let count = metrics
            .lines()
            .find_map(|l| l.strip_prefix(&series)?.parse::<u64>().ok());
        assert!(count.is_some_and(|c| c >= 1), "{series}:\n{metrics}");
    }
    assert!(metrics.contains("metallb_bgp_updates_total{peer=\"192.0.2.1:179\"}"));
    assert!(metrics.contains("metallb_bgp_keepalives_received{peer=\"192.0.2.1:179\"}"));

    // The Secret changes to a wrong password: the IPv4 sessions start again with it, and
    // the router drops their connections without a word. Each speaker says why on the peer;
    // the IPv6 sessions, untouched, keep their uptime.
    let established6 = established_count(&cluster, &vty, "2001:db8::11");
    assert!(established6.is_some());
    cluster.store.write("secret.yaml", &secret("wrong"));
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &[], Duration::from_secs(10)),
        "{:?}",
        cluster.lab.next_hops("203.0.113.10")
    );
    let refused = wait_until(Duration::from_secs(15), Duration::from_millis(100), || {
        cluster.speaker_events("n1").into_iter().find(|e| {
            e["reason"] == "sessionDown"
                && e["regarding"]["name"] == "tor"
                && e["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("no answer"))
        })
    });
    assert!(
        refused.is_some(),
        "{:#?}\n{}",
        cluster.speaker_events("n1"),
        cluster.logs()
    );
    assert_eq!(refused.unwrap()["type"], "Warning");
    let metrics = speaker_metrics(&cluster, "n1");
    assert!(
        metrics
            .lines()
            .any(|l| l == "metallb_bgp_session_up{peer=\"192.0.2.1:179\"} 0"),
        "{metrics}"
    );
    assert_eq!(cluster.lab.next_hops("2001:db8:200::10"), all6);
    assert_eq!(
        established_count(&cluster, &vty, "2001:db8::11"),
        established6
    );
}

#[test]
fn an_unnumbered_peer_is_found_on_its_interface_and_gets_ipv4_routes_by_an_ipv6_next_hop() {
    if !lab_available(TOOLS) {
        return;
    }
    // A point-to-point link between n1 and the router, with link-local addresses only.
    let config = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp, namespace: metallb-system}
spec: {addresses: [203.0.113.0/24]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: unnumbered, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, interface: un1, holdTime: 9s}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bgp, namespace: metallb-system}
spec: {ipAddressPools: [bgp]}
---
"#;
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", config),
        ("nodes.yaml", &nodes(&[])),
        (
            "services.yaml",
            &service("web", "203.0.113.10", "Cluster", &NODES),
        ),
    ])
    .expect("the lab starts");
    cluster
        .lab
        .add_link("rtr", "un1", "n1", "un1")
        .expect("the link");
    let vty = cluster
        .lab
        .start_frr_tor(" neighbor un1 interface remote-as 64501")
        .expect("FRR starts");
    // n1's link-local address on the link is the route's next hop (n2 and n3 have no un1).
    let n1_link_local = cluster
        .lab
        .exec(
            "n1",
            &[
                "ip", "-6", "-o", "addr", "show", "dev", "un1", "scope", "link",
            ],
        )
        .unwrap_or_default()
        .split_whitespace()
        .nth(3)
        .and_then(|a| a.split('/').next())
        .map(str::to_string)
        .expect("n1 has a link-local address on un1");
    assert!(
        wait_next_hops(
            &cluster,
            "203.0.113.10",
            &[&n1_link_local],
            Duration::from_secs(30)
        ),
        "{:?}\n{}\n{}",
        cluster.lab.next_hops("203.0.113.10"),
        cluster.lab.vtysh("rtr", &vty, "show bgp summary"),
        cluster.logs()
    );
    let route = cluster
        .lab
        .exec("rtr", &["ip", "-4", "route", "show", "203.0.113.10"])
        .unwrap_or_default();
    assert!(route.contains("dev un1"), "{route}");
    // The Service goes: so does the route.
    cluster.store.write("services.yaml", "");
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &[], Duration::from_secs(10)),
        "{:?}",
        cluster.lab.next_hops("203.0.113.10")
    );
}

#[test]
fn advertisements_set_aggregation_communities_and_local_pref_and_selectors_pick_nodes_and_peers() {
    if !lab_available(&["ip", "zebra", "bgpd", "vtysh", "bird", "birdc"]) {
        return;
    }
    // FRR (external) takes the pool aggregated to a /24 with a community and a large one,
    // from the rack-a nodes only; BIRD on cli (internal) takes each IP with LOCAL_PREF 250.
    let config = r#"apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp, namespace: metallb-system}
spec: {addresses: [203.0.113.0/24]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec:
  myASN: 64501
  peerASN: 64500
  peerAddress: 192.0.2.1
  holdTime: 9s
  nodeSelectors: [{matchLabels: {rack: a}}]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: bird, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64501, peerAddress: 192.0.2.100, holdTime: 9s}
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: communities, namespace: metallb-system}
spec:
  communities:
  - {name: edge, value: "large:64501:1:2"}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: to-tor, namespace: metallb-system}
spec:
  ipAddressPools: [bgp]
  peers: [tor]
  aggregationLength: 24
  communities: ["64501:100", edge]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: to-bird, namespace: metallb-system}
spec: {ipAddressPools: [bgp], peers: [bird], localPref: 250}
---
"#;
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", config),
        (
            "nodes.yaml",
            &nodes(&[("n1", "rack: a"), ("n2", "rack: a"), ("n3", "rack: b")]),
        ),
        (
            "services.yaml",
            &service("web", "203.0.113.10", "Cluster", &NODES),
        ),
    ])
    .expect("the lab starts");
    let vty = cluster.lab.start_frr_tor("").expect("FRR starts");
    let protocols: String = ["n1", "n2", "n3"]
        .iter()
        .map(|n| {
            format!(
                "protocol bgp {n} {{ local 192.0.2.100 as 64501; neighbor 192.0.2.1{} as 64501; \
                 connect retry time 1; ipv4 {{ import all; export none; }}; }}\n",
                &n[1..]
            )
        })
        .collect();
    let bird = cluster
        .lab
        .start_bird("cli", &protocols)
        .expect("BIRD starts");
    // The router: the /24 from n1 and n2 (n3 is not in rack a), and no host route.
    assert!(
        wait_next_hops(
            &cluster,
            "203.0.113.0/24",
            &["192.0.2.11", "192.0.2.12"],
            Duration::from_secs(30)
        ),
        "{:?}\n{}\n{}",
        cluster.lab.next_hops("203.0.113.0/24"),
        cluster.lab.vtysh("rtr", &vty, "show bgp summary"),
        cluster.logs()
    );
    let route = cluster
        .lab
        .vtysh("rtr", &vty, "show bgp ipv4 unicast 203.0.113.0/24");
    assert!(route.contains("64501:100"), "community: {route}");
    assert!(route.contains("64501:1:2"), "large community: {route}");
    assert!(
        !cluster
            .lab
            .vtysh("rtr", &vty, "show bgp ipv4 unicast")
            .contains("203.0.113.10/32"),
        "only the aggregate goes to the router"
    );
    // BIRD: the host route from all three nodes, with LOCAL_PREF 250 and no community.
    let held = wait_until(Duration::from_secs(30), Duration::from_millis(200), || {
        let routes = cluster
            .lab
            .birdc("cli", &bird, "show route all 203.0.113.10/32");
        (routes.matches("BGP.local_pref: 250").count() == 3).then_some(routes)
    });
    let routes = held.unwrap_or_else(|| {
        panic!(
            "{}\n{}",
            cluster
                .lab
                .birdc("cli", &bird, "show route all 203.0.113.10/32"),
            cluster.lab.birdc("cli", &bird, "show protocols")
        )
    });
    assert!(!routes.contains("BGP.community"), "{routes}");
    assert!(
        !cluster
            .lab
            .birdc("cli", &bird, "show route")
            .contains("203.0.113.0/24"),
        "the aggregate goes to the router only"
    );
}

#[test]
fn a_drained_speaker_marks_its_routes_graceful_shutdown_before_withdrawing_them() {
    if !lab_available(TOOLS) {
        return;
    }
    let mut cluster = L2Cluster::start_with(
        &[
            ("config.yaml", CONFIG),
            ("nodes.yaml", &nodes(&[])),
            (
                "services.yaml",
                &service("web", "203.0.113.10", "Cluster", &NODES),
            ),
        ],
        &["--bgp-graceful-shutdown", "3s"],
    )
    .expect("the lab starts");
    let vty = cluster.lab.start_frr_tor("").expect("FRR starts");
    let all = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &all, Duration::from_secs(30)),
        "{}",
        cluster.logs()
    );
    // SIGTERM (a drain), without waiting for the speaker to exit.
    let pid = cluster.lab.daemon("n1", "speaker").expect("started").pid();
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let marked = wait_until(Duration::from_secs(2), Duration::from_millis(50), || {
        let route = cluster
            .lab
            .vtysh("rtr", &vty, "show bgp ipv4 unicast 203.0.113.10/32");
        route.contains("graceful-shutdown").then_some(route)
    });
    assert!(marked.is_some(), "{}", cluster.logs());
    // Still announced while marked; withdrawn after the wait.
    assert!(
        cluster
            .lab
            .vtysh("rtr", &vty, "show bgp ipv4 unicast 203.0.113.10/32")
            .contains("192.0.2.11"),
        "withdrawn before the wait was over"
    );
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &all[1..], Duration::from_secs(6)),
        "{:?}\n{}",
        cluster.lab.next_hops("203.0.113.10"),
        cluster.logs()
    );
}

#[test]
fn an_ip_both_advertisements_select_is_announced_by_layer_2_and_by_bgp() {
    if !lab_available(&["ip", "zebra", "bgpd", "vtysh", "arping"]) {
        return;
    }
    // The pool has an L2Advertisement too: one node answers ARP for the IP on the segment,
    // and every node announces it to the router.
    let config = CONFIG.to_string()
        + "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: l2, namespace: metallb-system}\nspec: {ipAddressPools: [bgp]}\n---\n";
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", &config),
        ("nodes.yaml", &nodes(&[])),
        (
            "services.yaml",
            &service("web", "203.0.113.10", "Cluster", &NODES),
        ),
    ])
    .expect("the lab starts");
    cluster.lab.start_frr_tor("").expect("FRR starts");
    let all = ["192.0.2.11", "192.0.2.12", "192.0.2.13"];
    assert!(
        wait_next_hops(&cluster, "203.0.113.10", &all, Duration::from_secs(30)),
        "{}",
        cluster.logs()
    );
    // The client reaches the pool's range on the segment, as a host there would.
    cluster
        .lab
        .exec(
            "cli",
            &["ip", "route", "add", "203.0.113.0/24", "dev", "eth0"],
        )
        .expect("a route");
    let owner = ferrolb_e2e::layer2::election_order("203.0.113.10", &NODES)[0].clone();
    assert!(
        cluster.wait_resolves_to("203.0.113.10", Some(&owner), Duration::from_secs(15)),
        "{:?}\n{}",
        cluster.resolve_node("203.0.113.10"),
        cluster.logs()
    );
    assert_eq!(cluster.arp_answers("203.0.113.10").len(), 1, "one owner");
    // Both statuses: one ServiceL2Status (the owner), three ServiceBGPStatus.
    let statuses = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let l2 = cluster.store.get("l2status")["items"]
            .as_array()
            .map_or(0, Vec::len);
        let bgp = cluster.store.get("bgpstatus")["items"]
            .as_array()
            .map_or(0, Vec::len);
        (l2 == 1 && bgp == 3).then_some(())
    });
    assert!(statuses.is_some(), "{}", cluster.logs());
}
