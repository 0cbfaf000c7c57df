//! BGP mode's plan: which sessions a node keeps and what it announces on each.
use super::*;
use crate::plan::election::{Inputs, Speaker};
use ferrolb_api::config::{Config, ConfigObjects, PeerEndpoint};
use ferrolb_api::objects::{Detail, Object};

const WORLD: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: web, namespace: metallb-system}
spec: {addresses: [198.51.100.0/24, "2001:db8:100::/64"]}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, peerAddress: 192.0.2.1}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: tor-b, namespace: metallb-system}
spec:
  myASN: 64501
  peerASN: 64502
  peerAddress: 192.0.2.2
  nodeSelectors: [{matchLabels: {rack: b}}]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: hosts, namespace: metallb-system}
spec: {ipAddressPools: [web], peers: [tor], communities: ["64501:100"], localPref: 150}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: blocks, namespace: metallb-system}
spec:
  ipAddressPools: [web]
  peers: [tor-b]
  aggregationLength: 24
  communities: ["large:64501:1:2"]
---
apiVersion: v1
kind: Node
metadata: {name: n1, labels: {rack: a}}
---
apiVersion: v1
kind: Node
metadata: {name: n2, labels: {rack: b}}
---
apiVersion: v1
kind: Node
metadata: {name: n3, labels: {rack: b, node.kubernetes.io/exclude-from-external-load-balancers: ""}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.10}, {ip: "2001:db8:100::10"}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], nodeName: n1, conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: local, namespace: default}
spec: {type: LoadBalancer, externalTrafficPolicy: Local, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.20}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: local-x, namespace: default, labels: {kubernetes.io/service-name: local}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.2], nodeName: n2, conditions: {ready: true}}]
---
apiVersion: v1
kind: Service
metadata: {name: idle, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.30}]}}
"#;

fn objects() -> Vec<Object> {
    Object::decode_yaml_stream_as(WORLD, Detail::Speaker)
        .into_iter()
        .map(|(_, o)| o.expect("decodes"))
        .collect()
}

fn config(objects: &[Object]) -> Config {
    Config::build(&ConfigObjects::from_objects(objects, "metallb-system")).expect("valid")
}

fn plan_for(me: &str) -> Bgp {
    let objects = objects();
    let config = config(&objects);
    let speakers: BTreeMap<String, Speaker> = BTreeMap::new();
    let inputs = Inputs::new(objects.iter(), &config, &speakers, me, None);
    plan(&inputs)
}

fn net(text: &str) -> IpNet {
    text.parse().expect("a prefix")
}

fn web() -> ServiceKey {
    ServiceKey::new("default", "web")
}

#[test]
fn a_node_peers_with_the_peers_that_select_it() {
    assert_eq!(plan_for("n1").peers.keys().collect::<Vec<_>>(), ["tor"]);
    assert_eq!(
        plan_for("n2").peers.keys().collect::<Vec<_>>(),
        ["tor", "tor-b"]
    );
    // A node without a Node object keeps no session.
    assert!(plan_for("n9").peers.is_empty());
}

#[test]
fn cluster_services_go_from_every_node_and_local_ones_only_from_their_endpoints_nodes() {
    // An IPv4 session carries the IPv4 addresses only.
    let n1 = plan_for("n1");
    let to_tor: Vec<&IpNet> = n1.routes["tor"].keys().collect();
    assert_eq!(to_tor, [&net("198.51.100.10/32")]);
    let n2 = plan_for("n2");
    let to_tor: Vec<&IpNet> = n2.routes["tor"].keys().collect();
    assert_eq!(to_tor, [&net("198.51.100.10/32"), &net("198.51.100.20/32")]);
    // No ready endpoint anywhere: announced by nobody.
    assert!(
        !n2.statuses
            .contains_key(&ServiceKey::new("default", "idle"))
    );
}

#[test]
fn each_peer_gets_what_its_advertisements_say() {
    let n2 = plan_for("n2");
    let host = &n2.routes["tor"][&net("198.51.100.10/32")];
    assert_eq!(host.local_pref, Some(150));
    assert_eq!(host.communities, BTreeSet::from([(64501 << 16) | 100]));
    assert!(host.large_communities.is_empty());
    // tor-b gets the aggregate of both IPv4 Services once.
    let blocks: Vec<&IpNet> = n2.routes["tor-b"].keys().collect();
    assert_eq!(blocks, [&net("198.51.100.0/24")]);
    let block = &n2.routes["tor-b"][&net("198.51.100.0/24")];
    assert_eq!(block.large_communities, BTreeSet::from([(64501, 1, 2)]));
    assert_eq!(block.local_pref, None, "0 is not set");
    assert_eq!(
        *n2.statuses[&web()],
        BTreeSet::from(["tor".into(), "tor-b".into()])
    );
}

#[test]
fn an_excluded_node_keeps_its_sessions_and_announces_nothing() {
    let n3 = plan_for("n3");
    assert_eq!(n3.peers.keys().collect::<Vec<_>>(), ["tor", "tor-b"]);
    assert!(n3.routes.is_empty() && n3.statuses.is_empty());
}

#[test]
fn each_session_carries_its_family_and_an_ipv6_one_both_when_dual_stack_or_unnumbered() {
    let objects = objects();
    let mut config = config(&objects);
    let tor = config.peers.get_mut("tor").expect("tor");
    tor.endpoint = PeerEndpoint::Address("2001:db8::1".parse().expect("an IP"));
    let speakers: BTreeMap<String, Speaker> = BTreeMap::new();
    let plan_n1 = |config: &Config| {
        let inputs = Inputs::new(objects.iter(), config, &speakers, "n1", None);
        plan(&inputs)
    };
    let v6_only: Vec<IpNet> = plan_n1(&config).routes["tor"].keys().copied().collect();
    assert_eq!(v6_only, [net("2001:db8:100::10/128")]);
    config
        .peers
        .get_mut("tor")
        .expect("tor")
        .dual_stack_address_family = true;
    let both: Vec<IpNet> = plan_n1(&config).routes["tor"].keys().copied().collect();
    assert_eq!(both, [net("198.51.100.10/32"), net("2001:db8:100::10/128")]);
    // Unnumbered: a link-local session carries both, as FRR's `neighbor IFACE interface`.
    config
        .peers
        .get_mut("tor")
        .expect("tor")
        .dual_stack_address_family = false;
    config.peers.get_mut("tor").expect("tor").endpoint = PeerEndpoint::Interface("eth1".into());
    let unnumbered: Vec<IpNet> = plan_n1(&config).routes["tor"].keys().copied().collect();
    assert_eq!(unnumbered, both);
    // A peer FerroLB cannot open a session with gets nothing, and no status names it.
    config.peers.get_mut("tor").expect("tor").vrf = Some("red".into());
    let refused = plan_n1(&config);
    assert!(refused.routes.is_empty() && refused.statuses.is_empty());
    assert!(refused.peers.contains_key("tor"), "kept, to be reported");
}

/// Peers that get the same routes share one table, and Services going to the same peers
/// share one set: a plan for 10,000 Services holds each once.
#[test]
fn equal_tables_and_peer_sets_are_shared() {
    let objects = objects();
    let mut config = config(&objects);
    // Both peers get every route with the same attributes.
    for pool in config.pools.values_mut() {
        for advertisement in &mut pool.bgp_advertisements {
            advertisement.peers.clear();
            advertisement.aggregation_length = 32;
            advertisement.aggregation_length_v6 = 128;
            advertisement.communities.clear();
            advertisement.local_pref = 0;
        }
    }
    let speakers: BTreeMap<String, Speaker> = BTreeMap::new();
    let n2 = plan(&Inputs::new(objects.iter(), &config, &speakers, "n2", None));
    assert!(!n2.routes["tor"].is_empty());
    assert!(Arc::ptr_eq(&n2.routes["tor"], &n2.routes["tor-b"]));
    let web = &n2.statuses[&web()];
    let local = &n2.statuses[&ServiceKey::new("default", "local")];
    assert_eq!(
        **web,
        BTreeSet::from(["tor".to_string(), "tor-b".to_string()])
    );
    assert!(Arc::ptr_eq(web, local));
    // Different routes: each peer its own table.
    let n2 = plan_for("n2");
    assert!(!Arc::ptr_eq(&n2.routes["tor"], &n2.routes["tor-b"]));
}
