//! One test per validation rule: each bad configuration is rejected naming object, field, reason.
use super::*;
use crate::objects::Object;

fn objects(yaml: &str) -> ConfigObjects {
    let decoded: Vec<Object> = Object::decode_yaml_stream(yaml)
        .into_iter()
        .map(|(i, r)| r.unwrap_or_else(|e| panic!("document {i}: {e}")))
        .collect();
    ConfigObjects::from_objects(&decoded, "metallb-system")
}

fn build(yaml: &str) -> Result<Config, Vec<ConfigError>> {
    Config::build(&objects(yaml))
}

/// Asserts the configuration is rejected with an error on `kind`/`name`/`field` whose reason
/// contains `reason`.
#[track_caller]
fn rejects(yaml: &str, kind: &str, name: &str, field: &str, reason: &str) {
    let errors = build(yaml).expect_err("configuration should be rejected");
    assert!(
        errors.iter().any(|e| e.kind.name() == kind
            && e.name == name
            && e.field == field
            && e.reason.contains(reason)),
        "expected {kind} {name} {field}: ...{reason}..., got {errors:#?}"
    );
}

fn pool(name: &str, addresses: &[&str]) -> String {
    let list: Vec<String> = addresses.iter().map(|a| format!("  - {a:?}")).collect();
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: {name}\n  namespace: metallb-system\nspec:\n  addresses:\n{}\n---\n",
        list.join("\n")
    )
}

fn peer(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta2\nkind: BGPPeer\nmetadata:\n  name: {name}\n  namespace: metallb-system\nspec:\n{spec}\n---\n"
    )
}

fn bgp_adv(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata:\n  name: {name}\n  namespace: metallb-system\nspec:\n{spec}\n---\n"
    )
}

fn l2_adv(name: &str, spec: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: {name}\n  namespace: metallb-system\nspec:\n{spec}\n---\n"
    )
}

const PEER_OK: &str = "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1";

#[test]
fn a_good_configuration_is_normalised() {
    let config = build(&format!(
        "{}{}{}{}",
        pool("b", &["198.51.100.0/24", "2001:db8::1-2001:db8::ff"]),
        l2_adv("l2", "  ipAddressPools: [b]\n  interfaces: [eth0]"),
        bgp_adv("adv", "  aggregationLength: 24\n  localPref: 100\n  communities: [\"65000:1\", \"large:1:2:3\"]"),
        peer("p", PEER_OK),
    ))
    .unwrap();
    let pool = &config.pools["b"];
    assert!(pool.auto_assign && !pool.avoid_buggy_ips);
    assert_eq!(pool.size(Family::V4), AddressCount::new(256));
    assert_eq!(pool.size(Family::V6), AddressCount::new(255));
    assert_eq!(
        pool.l2_advertisements[0].interfaces,
        vec!["eth0".to_string()]
    );
    assert_eq!(pool.bgp_advertisements[0].aggregation_length, 24);
    assert_eq!(pool.bgp_advertisements[0].aggregation_length_v6, 128);
    assert_eq!(pool.bgp_advertisements[0].communities.len(), 2);
    let peer = &config.peers["p"];
    assert_eq!(
        (peer.port, peer.hold_time, peer.keepalive_time),
        (179, Duration::from_secs(90), Duration::from_secs(30))
    );
}

#[test]
fn rejects_a_bad_cidr() {
    rejects(
        &pool("p", &["198.51.100.0/33"]),
        "IPAddressPool",
        "p",
        "spec.addresses[0]",
        "invalid CIDR",
    );
}

#[test]
fn rejects_a_bad_range() {
    rejects(
        &pool("p", &["198.51.100.x-198.51.100.9"]),
        "IPAddressPool",
        "p",
        "spec.addresses[0]",
        "invalid start IP",
    );
}

#[test]
fn rejects_start_after_end() {
    rejects(
        &pool("p", &["198.51.100.9-198.51.100.1"]),
        "IPAddressPool",
        "p",
        "spec.addresses[0]",
        "is after the end IP",
    );
}

#[test]
fn rejects_mixed_family_ranges() {
    rejects(
        &pool("p", &["198.51.100.1-2001:db8::1"]),
        "IPAddressPool",
        "p",
        "spec.addresses[0]",
        "same family",
    );
}

#[test]
fn rejects_empty_addresses() {
    rejects(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec:\n  addresses: []\n",
        "IPAddressPool",
        "p",
        "spec.addresses",
        "no addresses",
    );
}

#[test]
fn rejects_overlap_inside_a_pool() {
    rejects(
        &pool("p", &["198.51.100.0/24", "198.51.100.10-198.51.100.20"]),
        "IPAddressPool",
        "p",
        "spec.addresses[1]",
        "in the same pool",
    );
}

#[test]
fn rejects_overlap_between_pools() {
    let yaml = pool("a", &["198.51.100.0/25"]) + &pool("b", &["198.51.100.100/32"]);
    rejects(
        &yaml,
        "IPAddressPool",
        "b",
        "spec.addresses[0]",
        "of pool \"a\"",
    );
}

#[test]
fn accepts_adjacent_ranges() {
    build(&(pool("a", &["198.51.100.0/25"]) + &pool("b", &["198.51.100.128-198.51.100.255"])))
        .unwrap();
}

#[test]
fn rejects_duplicate_namespaces() {
    let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec:\n  addresses: [198.51.100.0/24]\n  serviceAllocation:\n    namespaces: [a, a]\n";
    rejects(
        yaml,
        "IPAddressPool",
        "p",
        "spec.serviceAllocation.namespaces[1]",
        "duplicate definition",
    );
}

#[test]
fn rejects_duplicate_selectors() {
    let yaml = "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: p, namespace: metallb-system}\nspec:\n  addresses: [198.51.100.0/24]\n  serviceAllocation:\n    serviceSelectors:\n    - matchLabels: {app: a}\n    - matchLabels: {app: a}\n";
    rejects(
        yaml,
        "IPAddressPool",
        "p",
        "spec.serviceAllocation.serviceSelectors[1]",
        "duplicate definition",
    );
    let yaml = pool("p", &["198.51.100.0/24"])
        + &l2_adv(
            "l2",
            "  nodeSelectors:\n  - matchExpressions: [{key: a, operator: In, values: [x, y]}]\n  - matchExpressions: [{key: a, operator: In, values: [y, x]}]",
        );
    rejects(
        &yaml,
        "L2Advertisement",
        "l2",
        "spec.nodeSelectors[1]",
        "duplicate definition",
    );
}

#[test]
fn rejects_invalid_selectors() {
    let yaml = pool("p", &["198.51.100.0/24"])
        + &l2_adv(
            "l2",
            "  nodeSelectors:\n  - matchExpressions: [{key: a, operator: Maybe}]",
        );
    rejects(
        &yaml,
        "L2Advertisement",
        "l2",
        "spec.nodeSelectors[0]",
        "not a valid label selector operator",
    );
}

#[test]
fn rejects_aggregation_longer_than_the_address() {
    let yaml = pool("p", &["198.51.100.0/24"]) + &bgp_adv("a", "  aggregationLength: 33");
    rejects(
        &yaml,
        "BGPAdvertisement",
        "a",
        "spec.aggregationLength",
        "must be in 1-32",
    );
    let yaml = pool("p", &["2001:db8::/64"]) + &bgp_adv("a", "  aggregationLengthV6: 129");
    rejects(
        &yaml,
        "BGPAdvertisement",
        "a",
        "spec.aggregationLengthV6",
        "must be in 0-128",
    );
}

#[test]
fn rejects_aggregation_shorter_than_the_pool_prefix() {
    let yaml = pool("p", &["198.51.100.0/24"]) + &bgp_adv("a", "  aggregationLength: 23");
    rejects(
        &yaml,
        "BGPAdvertisement",
        "a",
        "spec.aggregationLength",
        "more specific than the aggregation length",
    );
    // A range's widest CIDR counts: .2-.254 holds /26 blocks at most.
    let yaml =
        pool("p", &["198.51.100.2-198.51.100.254"]) + &bgp_adv("a", "  aggregationLength: 25");
    rejects(
        &yaml,
        "BGPAdvertisement",
        "a",
        "spec.aggregationLength",
        "prefix 26",
    );
    build(
        &(pool("p", &["198.51.100.2-198.51.100.254"]) + &bgp_adv("a", "  aggregationLength: 26")),
    )
    .unwrap();
}

#[test]
fn rejects_service_selectors_with_aggregation() {
    let yaml = pool("p", &["198.51.100.0/24"])
        + &bgp_adv(
            "a",
            "  aggregationLength: 24\n  serviceSelectors: [{matchLabels: {a: b}}]",
        );
    rejects(
        &yaml,
        "BGPAdvertisement",
        "a",
        "spec.serviceSelectors",
        "mutually exclusive",
    );
}

#[test]
fn rejects_conflicting_local_pref() {
    let yaml = pool("p", &["198.51.100.0/24"])
        + &bgp_adv("a", "  localPref: 100")
        + &bgp_adv("b", "  localPref: 200");
    rejects(
        &yaml,
        "BGPAdvertisement",
        "b",
        "spec.localPref",
        "conflicts with 100",
    );
    // Different peers, or different aggregation, do not conflict.
    build(
        &(pool("p", &["198.51.100.0/24"])
            + &bgp_adv("a", "  localPref: 100\n  peers: [x]")
            + &bgp_adv("b", "  localPref: 200\n  peers: [y]")),
    )
    .unwrap();
    build(
        &(pool("p", &["198.51.100.0/24"])
            + &bgp_adv("a", "  localPref: 100")
            + &bgp_adv("b", "  localPref: 200\n  aggregationLength: 24")),
    )
    .unwrap();
}

#[test]
fn rejects_identical_bgp_advertisements() {
    let yaml = pool("p", &["198.51.100.0/24"])
        + &bgp_adv("a", "  localPref: 100")
        + &bgp_adv("b", "  localPref: 100");
    rejects(
        &yaml,
        "BGPAdvertisement",
        "b",
        "spec",
        "duplicate definition of BGPAdvertisement",
    );
}

#[test]
fn rejects_malformed_communities() {
    for (value, reason) in [
        ("\"65536:1\"", "16-bit"),
        ("\"large:1:2:4294967296\"", "32-bit"),
        ("\"big:1:2:3\"", "invalid marker"),
        ("\"1:2:3\"", "invalid community format"),
        (
            "no-such-alias",
            "neither a community value nor a Community alias",
        ),
    ] {
        let yaml =
            pool("p", &["198.51.100.0/24"]) + &bgp_adv("a", &format!("  communities: [{value}]"));
        rejects(
            &yaml,
            "BGPAdvertisement",
            "a",
            "spec.communities[0]",
            reason,
        );
    }
}

#[test]
fn resolves_and_checks_community_aliases() {
    let community = |name: &str, entries: &str| {
        format!(
            "apiVersion: metallb.io/v1beta1\nkind: Community\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec:\n  communities:\n{entries}\n---\n"
        )
    };
    let config = build(
        &(pool("p", &["198.51.100.0/24"])
            + &community("c", "  - {name: no-export, value: \"65535:65281\"}")
            + &bgp_adv("a", "  communities: [no-export]")),
    )
    .unwrap();
    assert!(
        config.pools["p"].bgp_advertisements[0]
            .communities
            .contains(&BgpCommunity::Standard(0xffff_ff01))
    );
    let yaml = community("c1", "  - {name: x, value: \"1:1\"}")
        + &community("c2", "  - {name: x, value: \"1:2\"}");
    rejects(
        &yaml,
        "Community",
        "c2",
        "spec.communities[0].name",
        "duplicate definition of community \"x\"",
    );
    rejects(
        &community("c", "  - {name: x, value: \"70000:1\"}"),
        "Community",
        "c",
        "spec.communities[0].value",
        "16-bit",
    );
}

#[test]
fn rejects_missing_or_double_peer_asn() {
    rejects(
        &peer("p", "  myASN: 64512\n  peerAddress: 192.0.2.1"),
        "BGPPeer",
        "p",
        "spec.peerASN",
        "missing peer ASN",
    );
    rejects(
        &peer(
            "p",
            "  myASN: 64512\n  peerASN: 1\n  dynamicASN: external\n  peerAddress: 192.0.2.1",
        ),
        "BGPPeer",
        "p",
        "spec.dynamicASN",
        "both peerASN and dynamicASN",
    );
    rejects(
        &peer("p", "  myASN: 0\n  peerASN: 1\n  peerAddress: 192.0.2.1"),
        "BGPPeer",
        "p",
        "spec.myASN",
        "missing local ASN",
    );
}

#[test]
fn rejects_multihop_on_ibgp() {
    rejects(
        &peer(
            "p",
            "  myASN: 64512\n  peerASN: 64512\n  ebgpMultiHop: true\n  peerAddress: 192.0.2.1",
        ),
        "BGPPeer",
        "p",
        "spec.ebgpMultiHop",
        "iBGP",
    );
}

#[test]
fn internal_or_external_is_decided_by_the_as_the_session_speaks_as() {
    // localASN makes a session with the peer's own AS internal, whatever myASN says...
    rejects(
        &peer(
            "p",
            "  myASN: 64512\n  localASN: 64513\n  peerASN: 64513\n  ebgpMultiHop: true\n  peerAddress: 192.0.2.1",
        ),
        "BGPPeer",
        "p",
        "spec.ebgpMultiHop",
        "iBGP",
    );
    // ...and one with myASN's AS external.
    let external = peer(
        "p",
        "  myASN: 64512\n  localASN: 64514\n  peerASN: 64512\n  ebgpMultiHop: true\n  peerAddress: 192.0.2.1",
    );
    assert!(build(&external).is_ok());
}

#[test]
fn rejects_address_and_interface_together_or_neither() {
    rejects(
        &peer("p", "  myASN: 1\n  peerASN: 2"),
        "BGPPeer",
        "p",
        "spec.peerAddress",
        "no peerAddress or interface",
    );
    rejects(
        &peer(
            "p",
            "  myASN: 1\n  peerASN: 2\n  peerAddress: 192.0.2.1\n  interface: eth0",
        ),
        "BGPPeer",
        "p",
        "spec.interface",
        "both peerAddress and interface",
    );
    rejects(
        &peer("p", "  myASN: 1\n  peerASN: 2\n  peerAddress: 192.0.2.300"),
        "BGPPeer",
        "p",
        "spec.peerAddress",
        "invalid peer address",
    );
}

#[test]
fn checks_hold_and_keepalive_times() {
    rejects(
        &peer("p", &format!("{PEER_OK}\n  holdTime: 2s")),
        "BGPPeer",
        "p",
        "spec.holdTime",
        "must be 0 or >=3s",
    );
    rejects(
        &peer(
            "p",
            &format!("{PEER_OK}\n  holdTime: 9s\n  keepaliveTime: 10s"),
        ),
        "BGPPeer",
        "p",
        "spec.keepaliveTime",
        "lower than the hold time",
    );
    rejects(
        &peer("p", &format!("{PEER_OK}\n  holdTime: soon")),
        "BGPPeer",
        "p",
        "spec.holdTime",
        "invalid duration",
    );
    // A keepalive near the longest Go duration must not overflow the derived hold time.
    build(&peer("p", &format!("{PEER_OK}\n  keepaliveTime: 2562047h"))).unwrap();
    let config = build(&peer("p", &format!("{PEER_OK}\n  keepaliveTime: 5s"))).unwrap();
    assert_eq!(config.peers["p"].hold_time, Duration::from_secs(15));
    let config = build(&peer("p", &format!("{PEER_OK}\n  holdTime: 0s"))).unwrap();
    assert_eq!(config.peers["p"].hold_time, Duration::ZERO);
}

#[test]
fn checks_connect_time() {
    rejects(
        &peer("p", &format!("{PEER_OK}\n  connectTime: 1500ms")),
        "BGPPeer",
        "p",
        "spec.connectTime",
        "whole number of seconds",
    );
    rejects(
        &peer("p", &format!("{PEER_OK}\n  connectTime: 20h")),
        "BGPPeer",
        "p",
        "spec.connectTime",
        "between 1 and 65535",
    );
}

#[test]
fn rejects_password_and_secret_together() {
    rejects(
        &peer(
            "p",
            &format!("{PEER_OK}\n  password: x\n  passwordSecret: {{name: s}}"),
        ),
        "BGPPeer",
        "p",
        "spec.passwordSecret",
        "both password and passwordSecret",
    );
}

#[test]
fn reads_the_password_secret() {
    let secret = |type_: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: metallb-system}}\ntype: {type_}\ndata:\n  password: c2VjcmV0\n---\n"
        )
    };
    let yaml = secret("kubernetes.io/basic-auth")
        + &peer("p", &format!("{PEER_OK}\n  passwordSecret: {{name: s}}"));
    assert_eq!(
        build(&yaml).unwrap().peers["p"].password.as_deref(),
        Some("secret")
    );
    let yaml = secret("Opaque") + &peer("p", &format!("{PEER_OK}\n  passwordSecret: {{name: s}}"));
    rejects(
        &yaml,
        "BGPPeer",
        "p",
        "spec.passwordSecret",
        "expected \"kubernetes.io/basic-auth\"",
    );
    rejects(
        &peer("p", &format!("{PEER_OK}\n  passwordSecret: {{name: s}}")),
        "BGPPeer",
        "p",
        "spec.passwordSecret",
        "not found",
    );
}

#[test]
fn rejects_bad_router_id_and_source_address() {
    rejects(
        &peer("p", &format!("{PEER_OK}\n  routerID: 2001:db8::1")),
        "BGPPeer",
        "p",
        "spec.routerID",
        "must be an IPv4 address",
    );
    rejects(
        &peer("p", &format!("{PEER_OK}\n  sourceAddress: nowhere")),
        "BGPPeer",
        "p",
        "spec.sourceAddress",
        "invalid source address",
    );
}

#[test]
fn rejects_a_missing_bfd_profile() {
    rejects(
        &peer("p", &format!("{PEER_OK}\n  bfdProfile: fast")),
        "BGPPeer",
        "p",
        "spec.bfdProfile",
        "does not exist",
    );
    let profile = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: fast, namespace: metallb-system}\nspec:\n  receiveInterval: 50\n---\n";
    let config =
        build(&(profile.to_string() + &peer("p", &format!("{PEER_OK}\n  bfdProfile: fast"))))
            .unwrap();
    assert_eq!(config.bfd_profiles["fast"].receive_interval_ms, 50);
    assert_eq!(config.bfd_profiles["fast"].transmit_interval_ms, 300);
}

#[test]
fn rejects_bfd_values_out_of_range() {
    let yaml = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: b, namespace: metallb-system}\nspec:\n  detectMultiplier: 1\n";
    rejects(
        yaml,
        "BFDProfile",
        "b",
        "spec.detectMultiplier",
        "must be in 2-255 range",
    );
}

#[test]
fn rejects_duplicate_peers_on_overlapping_nodes() {
    let yaml = peer("a", PEER_OK) + &peer("b", PEER_OK);
    rejects(
        &yaml,
        "BGPPeer",
        "b",
        "spec.peerAddress",
        "already peers with the same router",
    );
    // The same router from disjoint sets of nodes is fine, once Nodes show they are disjoint;
    // with no Node to tell them apart, MetalLB refuses them, and so does FerroLB.
    let rack =
        |r: &str| format!("{PEER_OK}\n  nodeSelectors: [{{matchLabels: {{rack: \"{r}\"}}}}]");
    let peers = peer("a", &rack("1")) + &peer("b", &rack("2"));
    rejects(
        &peers,
        "BGPPeer",
        "b",
        "spec.peerAddress",
        "already peers with the same router",
    );
    let nodes = "apiVersion: v1\nkind: Node\nmetadata: {name: n1, labels: {rack: \"1\"}}\n---\napiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {rack: \"2\"}}\n---\n";
    build(&(nodes.to_string() + &peers)).unwrap();
}

#[test]
fn converts_v1beta1_peers() {
    let yaml = "apiVersion: metallb.io/v1beta1\nkind: BGPPeer\nmetadata: {name: old, namespace: metallb-system}\nspec:\n  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.1\n  holdTime: 30s\n  nodeSelectors:\n  - matchLabels: {rack: \"1\"}\n";
    let peer = &build(yaml).unwrap().peers["old"];
    assert_eq!(
        (peer.hold_time, peer.keepalive_time, peer.port),
        (Duration::from_secs(30), Duration::from_secs(10), 179)
    );
    assert_eq!(peer.node_selectors.len(), 1);
}

#[test]
fn reports_every_problem_at_once() {
    let yaml = pool("a", &["bad"]) + &peer("p", "  myASN: 1\n  peerASN: 2");
    assert_eq!(build(&yaml).unwrap_err().len(), 2);
}

#[test]
fn ignores_objects_of_other_namespaces() {
    let yaml = pool("a", &["198.51.100.0/24"]).replace("metallb-system", "elsewhere");
    assert!(build(&yaml).unwrap().pools.is_empty());
}

#[test]
fn refuses_bfd_echo_on_a_peer_that_an_ipv6_pool_is_advertised_to() {
    let echo = "apiVersion: metallb.io/v1beta1\nkind: BFDProfile\nmetadata: {name: echo, namespace: metallb-system}\nspec:\n  echoMode: true\n---\n";
    let peers = peer("a", &format!("{PEER_OK}\n  bfdProfile: echo"))
        + &peer(
            "b",
            "  myASN: 64512\n  peerASN: 64513\n  peerAddress: 192.0.2.2",
        );
    let v6 = pool("v6", &["2001:db8::/64"]);
    let v4 = pool("v4", &["198.51.100.0/24"]);
    // To every peer, or to the echo peer by name: refused.
    for spec in [
        "  ipAddressPools: [v6]",
        "  ipAddressPools: [v6]\n  peers: [a]",
    ] {
        rejects(
            &(echo.to_string() + &peers + &v6 + &v4 + &bgp_adv("adv", spec)),
            "BGPPeer",
            "a",
            "spec.bfdProfile",
            "BFD echo mode with IPv6 routes is not possible",
        );
    }
    // The IPv6 pool only to the other peer, or only IPv4 to the echo peer: fine.
    build(
        &(echo.to_string()
            + &peers
            + &v6
            + &v4
            + &bgp_adv("adv", "  ipAddressPools: [v6]\n  peers: [b]")),
    )
    .unwrap();
    build(&(echo.to_string() + &peers + &v6 + &v4 + &bgp_adv("adv", "  ipAddressPools: [v4]")))
        .unwrap();
}
