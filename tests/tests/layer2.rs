//! Layer 2 mode end to end: the controller and three speakers on a file store, a client
//! resolving Service IPs with the real `arping` and `ndisc6` (LAB.md).
use ferrolb_e2e::layer2::{L2Cluster, NODES, POOL, election_order, nodes, service};
use ferrolb_e2e::{lab_available, wait_until};
use std::time::Duration;

const TOOLS: &[&str] = &["ip", "arping", "ndisc6"];
const SETTLE: Duration = Duration::from_secs(15);

#[test]
fn the_elected_node_alone_answers_arp_and_ndp() {
    if !lab_available(TOOLS) {
        return;
    }
    let services = [
        service("web", "198.51.100.10,2001:db8::ff10", "Cluster", &NODES),
        service("idle", "198.51.100.11", "Cluster", &[]),
    ]
    .concat();
    let other_pool = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bgp-only, namespace: metallb-system}\nspec: {addresses: [203.0.113.0/24]}\n---\n";
    let cluster = L2Cluster::start(&[
        ("config.yaml", &format!("{POOL}{other_pool}")),
        ("nodes.yaml", &nodes(&[])),
        ("services.yaml", &services),
        (
            "other.yaml",
            &service("elsewhere", "203.0.113.5", "Cluster", &NODES),
        ),
    ])
    .expect("the lab starts");
    let owner = election_order("198.51.100.10", &NODES)[0].clone();
    assert!(
        cluster.wait_resolves_to("198.51.100.10", Some(&owner), SETTLE),
        "198.51.100.10 does not resolve to {owner}: {:?}\n{}",
        cluster.resolve_node("198.51.100.10"),
        cluster.logs()
    );
    // Exactly one node answers.
    assert_eq!(
        cluster.arp_answers("198.51.100.10"),
        [cluster.mac(&owner)],
        "more than one answer"
    );
    // The whole Service moves together: its IPv6 address is answered by the same node, via NDP.
    assert_eq!(
        cluster.resolve_node("2001:db8::ff10").as_deref(),
        Some(owner.as_str())
    );
    // Nothing for an IP nobody was given, a Service without endpoints, or a pool without an
    // L2Advertisement.
    for silent in ["198.51.100.99", "198.51.100.11", "203.0.113.5"] {
        assert_eq!(cluster.resolve(silent), None, "{silent} is answered");
    }
    let events = cluster.speaker_events(&owner);
    assert!(
        events
            .iter()
            .any(|e| e["reason"] == "nodeAssigned" && e["regarding"]["name"] == "web"),
        "no nodeAssigned event from {owner}: {events:?}"
    );
    let statuses = cluster.store.get("l2status");
    let web: Vec<&serde_json::Value> = statuses["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["status"]["serviceName"] == "web")
        .collect();
    assert_eq!(web.len(), 1, "{statuses:#}");
    assert_eq!(web[0]["status"]["node"], owner.as_str());
    assert_eq!(web[0]["status"]["interfaces"][0]["name"], "eth0");
}

#[test]
fn local_policy_selectors_interfaces_and_deletion_are_honoured() {
    if !lab_available(TOOLS) {
        return;
    }
    let rack_pool = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: rack, namespace: metallb-system}\nspec: {addresses: [198.51.100.128/26]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: rack, namespace: metallb-system}\nspec: {ipAddressPools: [rack], nodeSelectors: [{matchLabels: {rack: a}}]}\n---\n";
    let nowhere_pool = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: nowhere, namespace: metallb-system}\nspec: {addresses: [198.51.100.192/26]}\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: nowhere, namespace: metallb-system}\nspec: {ipAddressPools: [nowhere], interfaces: [eth9]}\n---\n";
    // A Local Service with its only endpoint on the node the hash ranks last, so that only
    // the policy can explain the choice.
    let local_ip = "198.51.100.20";
    let last = election_order(local_ip, &NODES)[2].clone();
    let cluster = L2Cluster::start(&[
        ("config.yaml", &format!("{POOL}{rack_pool}{nowhere_pool}")),
        ("nodes.yaml", &nodes(&[("n3", "rack: a")])),
        ("local.yaml", &service("local", local_ip, "Local", &[&last])),
        (
            "rack.yaml",
            &service("rack", "198.51.100.130", "Cluster", &NODES),
        ),
        (
            "nowhere.yaml",
            &service("nowhere", "198.51.100.200", "Cluster", &NODES),
        ),
    ])
    .expect("the lab starts");
    assert!(
        cluster.wait_resolves_to(local_ip, Some(&last), SETTLE),
        "the Local Service is not answered by {last}, its only endpoint's node: {:?}\n{}",
        cluster.resolve_node(local_ip),
        cluster.logs()
    );
    assert_eq!(
        cluster.resolve_node("198.51.100.130").as_deref(),
        Some("n3"),
        "only n3 has rack: a"
    );
    assert_eq!(
        cluster.resolve("198.51.100.200"),
        None,
        "no node has eth9, so nobody may announce"
    );
    // The node the hash would pick says so once the gap has lasted 10 s (a flap is no
    // news), once, and no other node does.
    let would_own = election_order("198.51.100.200", &NODES)[0].clone();
    let announce_failed = |node: &str| -> Vec<serde_json::Value> {
        cluster
            .speaker_events(node)
            .into_iter()
            .filter(|e| e["reason"] == "announceFailed" && e["regarding"]["name"] == "nowhere")
            .collect()
    };
    let reported =
        ferrolb_e2e::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            announce_failed(&would_own).into_iter().next()
        });
    let reported = reported.unwrap_or_else(|| {
        panic!(
            "no announceFailed Event from {would_own}: {:?}\n{}",
            cluster.speaker_events(&would_own),
            cluster.logs()
        )
    });
    assert_eq!(reported["type"], "Warning", "{reported}");
    let message = reported["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("198.51.100.200") && message.contains("eth9"),
        "{reported}"
    );
    // Passes go on (status writes, members' news): still one Event from one node, once
    // every speaker's log had the time to be written.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        announce_failed(&would_own).len(),
        1,
        "{:?}",
        cluster.speaker_events(&would_own)
    );
    for node in NODES.iter().filter(|n| **n != would_own) {
        assert_eq!(
            announce_failed(node),
            Vec::<serde_json::Value>::new(),
            "{node} reports too"
        );
    }

    cluster.store.remove("local.yaml");
    assert!(
        cluster.wait_resolves_to(local_ip, None, Duration::from_secs(5)),
        "a deleted Service is still answered by {:?}\n{}",
        cluster.resolve_node(local_ip),
        cluster.logs()
    );

    // MetalLB's metallb-excludel2 ConfigMap takes the nodes' eth0 out of layer 2; without it,
    // eth0 announces again.
    cluster.store.write(
        "excludel2.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: metallb-excludel2, namespace: metallb-system}\ndata:\n  excludel2.yaml: |\n    announcedInterfacesToExclude: [\"^eth0$\"]\n",
    );
    assert!(
        cluster.wait_resolves_to("198.51.100.130", None, Duration::from_secs(5)),
        "eth0 is excluded, yet {:?} answers\n{}",
        cluster.resolve_node("198.51.100.130"),
        cluster.logs()
    );
    cluster.store.remove("excludel2.yaml");
    assert!(
        cluster.wait_resolves_to("198.51.100.130", Some("n3"), Duration::from_secs(10)),
        "eth0 is back, yet {:?} answers\n{}",
        cluster.resolve_node("198.51.100.130"),
        cluster.logs()
    );
}

#[test]
fn another_mac_claiming_an_owned_ip_is_reported() {
    if !lab_available(TOOLS) {
        return;
    }
    let ip = "198.51.100.50";
    let cluster = L2Cluster::start(&[
        ("config.yaml", POOL),
        ("nodes.yaml", &nodes(&[])),
        ("web.yaml", &service("web", ip, "Cluster", &NODES)),
    ])
    .expect("the lab starts");
    let owner = election_order(ip, &NODES)[0].clone();
    assert!(
        cluster.wait_resolves_to(ip, Some(&owner), SETTLE),
        "{}",
        cluster.logs()
    );
    // The router claims the IP, as a misconfigured host or a second announcer would.
    let labtool = ferrolb_e2e::standalone::binary("labtool");
    cluster
        .lab
        .exec(
            "rtr",
            &[labtool.to_str().expect("a UTF-8 path"), "garp", "eth0", ip],
        )
        .expect("sending a gratuitous ARP");
    let rogue = cluster.mac("rtr");
    let reported = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        cluster.speaker_events(&owner).into_iter().find(|e| {
            e["reason"] == "addressConflict"
                && e["type"] == "Warning"
                && e["message"].as_str().is_some_and(|m| m.contains(&rogue))
        })
    });
    assert!(
        reported.is_some(),
        "no Warning Event for the rogue claim: {:?}\n{}",
        cluster.speaker_events(&owner),
        cluster.logs()
    );

    // Issue 9, case 9: a flood of claims from made-up MACs is one more conflict about the
    // same IP, not an Event each.
    cluster
        .lab
        .exec(
            "rtr",
            &[
                labtool.to_str().expect("a UTF-8 path"),
                "garp-flood",
                "eth0",
                ip,
                "2000",
            ],
        )
        .expect("flooding gratuitous ARPs");
    std::thread::sleep(Duration::from_secs(2));
    let conflicts = cluster
        .speaker_events(&owner)
        .into_iter()
        .filter(|e| e["reason"] == "addressConflict")
        .count();
    assert_eq!(conflicts, 1, "{}", cluster.logs());
}

#[test]
fn owned_ips_are_announced_again_periodically_when_asked() {
    if !lab_available(TOOLS) {
        return;
    }
    let ip = "198.51.100.60";
    let cluster = L2Cluster::start_with(
        &[
            ("config.yaml", POOL),
            ("nodes.yaml", &nodes(&[])),
            ("web.yaml", &service("web", ip, "Cluster", &NODES)),
        ],
        &["--l2-refresh", "300ms"],
    )
    .expect("the lab starts");
    let owner = election_order(ip, &NODES)[0].clone();
    assert!(
        cluster.wait_resolves_to(ip, Some(&owner), SETTLE),
        "{}",
        cluster.logs()
    );
    // Past the 5 s of repeats after a takeover, only the refresh announces.
    std::thread::sleep(Duration::from_secs(6));
    let labtool = ferrolb_e2e::standalone::binary("labtool");
    let counted = cluster
        .lab
        .exec(
            "cli",
            &[
                labtool.to_str().expect("a UTF-8 path"),
                "garp-count",
                "eth0",
                ip,
                "2",
            ],
        )
        .expect("counting gratuitous ARPs");
    let count: u32 = counted.trim().parse().expect("a count");
    // Every 300 ms, a request and a reply: about 13 in 2 s.
    assert!(
        count >= 6,
        "only {count} gratuitous ARPs in 2 s\n{}",
        cluster.logs()
    );
}

/// Brings the owner of `ip` down in some way, checks that the next node in election order
/// answers, then brings it back and checks that the IP returns to it.
fn failover(fault: &str) {
    if !lab_available(TOOLS) {
        return;
    }
    let ip = "198.51.100.30";
    let mut cluster = L2Cluster::start(&[
        ("config.yaml", POOL),
        ("nodes.yaml", &nodes(&[])),
        ("web.yaml", &service("web", ip, "Cluster", &NODES)),
    ])
    .expect("the lab starts");
    let order = election_order(ip, &NODES);
    assert!(
        cluster.wait_resolves_to(ip, Some(&order[0]), SETTLE),
        "{ip} is not answered by {}\n{}",
        order[0],
        cluster.logs()
    );
    match fault {
        "link" => cluster
            .lab
            .set_link(&order[0], false)
            .expect("cutting the link"),
        "kill" => cluster
            .lab
            .daemon(&order[0], "speaker")
            .expect("the owner's speaker")
            .kill(),
        "sigterm" => {
            let speaker = cluster
                .lab
                .daemon(&order[0], "speaker")
                .expect("the owner's speaker");
            speaker.terminate();
        }
        other => panic!("unknown fault {other}"),
    }
    assert!(
        cluster.wait_resolves_to(ip, Some(&order[1]), Duration::from_secs(5)),
        "after {fault}, {ip} did not move to {}: {:?}\n{}",
        order[1],
        cluster.resolve_node(ip),
        cluster.logs()
    );
    match fault {
        "link" => cluster
            .lab
            .set_link(&order[0], true)
            .expect("restoring the link"),
        _ => cluster
            .start_speaker(&order[0])
            .expect("restarting the speaker"),
    }
    assert!(
        cluster.wait_resolves_to(ip, Some(&order[0]), SETTLE),
        "after {fault} was undone, {ip} did not return to {}: {:?}\n{}",
        order[0],
        cluster.resolve_node(ip),
        cluster.logs()
    );
    // And stays there once gossip has settled. After a link cut, the returning node's first
    // packets wait for the kernel's next ARP retry (up to 1 s), so allow for that first.
    std::thread::sleep(Duration::from_secs(2));
    let flapped = wait_until(Duration::from_secs(2), Duration::from_millis(200), || {
        (cluster.resolve_node(ip).as_deref() != Some(order[0].as_str())).then_some(())
    });
    assert!(
        flapped.is_none(),
        "{ip} flapped after returning\n{}",
        cluster.logs()
    );
    assert_eq!(
        cluster.arp_answers(ip),
        [cluster.mac(&order[0])],
        "after {fault} was undone, not exactly one node answers"
    );
}

#[test]
fn failover_when_the_owner_loses_its_link() {
    failover("link");
}

#[test]
fn failover_when_the_owners_speaker_is_killed() {
    failover("kill");
}

#[test]
fn failover_when_the_owners_speaker_stops_gracefully() {
    failover("sigterm");
}
