//! The planner without root, sockets or a cluster: objects and members in, an Intent out.
use super::*;
use ferrolb_api::config::ConfigObjects;
use ferrolb_api::objects::Detail;
use ferrolb_l2::packet::Mac;
use std::time::Instant;

const WORLD: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: web, namespace: metallb-system}
spec: {addresses: [198.51.100.0/24]}
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: all, namespace: metallb-system}
spec: {ipAddressPools: [web]}
---
apiVersion: v1
kind: Node
metadata: {name: n1}
---
apiVersion: v1
kind: Node
metadata: {name: n2}
---
apiVersion: v1
kind: Node
metadata: {name: n3}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec: {type: LoadBalancer, ports: [{port: 80}]}
status: {loadBalancer: {ingress: [{ip: 198.51.100.10}]}}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: web-x, namespace: default, labels: {kubernetes.io/service-name: web}}
addressType: IPv4
endpoints: [{addresses: [10.0.0.1], nodeName: n1, conditions: {ready: true}}]
"#;

const NODES: [&str; 3] = ["n1", "n2", "n3"];

fn objects() -> Vec<Object> {
    Object::decode_yaml_stream_as(WORLD, Detail::Speaker)
        .into_iter()
        .map(|(_, o)| o.expect("decodes"))
        .collect()
}

fn config(objects: &[Object]) -> Config {
    Config::build(&ConfigObjects::from_objects(objects, "metallb-system")).expect("valid")
}

fn mac(node: &str) -> Mac {
    [2, 0, 0, 0, 0, node.as_bytes()[1]]
}

fn interfaces(node: &str) -> meta::Interfaces {
    [("eth0".to_string(), Some(mac(node)))]
        .into_iter()
        .collect()
}

// The clock starts anywhere: members only carry it.
#[allow(clippy::disallowed_methods)]
fn member(name: &str, state: State) -> Member {
    Member {
        name: name.into(),
        addr: "192.0.2.1:7946".parse().expect("an address"),
        meta: meta::encode(&interfaces(name)),
        incarnation: 1,
        state,
        vsn: vec![1, 5, 2, 0, 0, 0],
        state_change: Instant::now(),
    }
}

fn order() -> Vec<String> {
    let ip: IpAddr = "198.51.100.10".parse().expect("an IP");
    let mut order: Vec<String> = NODES.iter().map(|n| n.to_string()).collect();
    order.sort_by_key(|n| election::tie_breaker(n, ip));
    order
}

/// Every node alive, the elected owner changed by `change`.
fn members_with_owner(change: impl Fn(&mut Member)) -> Vec<Member> {
    let owner = order()[0].clone();
    NODES
        .iter()
        .map(|n| {
            let mut m = member(n, State::Alive);
            if *n == owner {
                change(&mut m);
            }
            m
        })
        .collect()
}

fn plan_for(me: &str, members: &[Member], config: Option<&Config>) -> Intent {
    let objects = objects();
    let own = interfaces(me);
    let node = Node {
        name: me,
        lb_class: None,
        ignore_exclude_lb: false,
        interfaces: &own,
    };
    plan(&objects, config, members, &node)
}

#[test]
fn the_owner_announces_and_writes_status_and_the_next_in_line_watches_it() {
    let objects = objects();
    let config = config(&objects);
    let members: Vec<Member> = NODES.iter().map(|n| member(n, State::Alive)).collect();
    let order = order();
    let web = ServiceKey::new("default", "web");
    let ip: IpAddr = "198.51.100.10".parse().expect("an IP");

    let owner = plan_for(&order[0], &members, Some(&config));
    assert_eq!(owner.layer2["eth0"][&ip], web);
    assert_eq!(owner.layer2_service("eth0", &ip), Some(&web));
    assert_eq!(
        *owner.l2_statuses[&web],
        ["eth0".to_string()].into_iter().collect()
    );
    assert!(owner.bgp.peers.is_empty(), "no BGPPeer: no BGP mode");
    assert_eq!(owner.meta, meta::encode(&interfaces(&order[0])));

    let next = plan_for(&order[1], &members, Some(&config));
    assert!(next.layer2.is_empty() && next.l2_statuses.is_empty());

    let last = plan_for(&order[2], &members, Some(&config));
    assert!(last.layer2.is_empty());
}

#[test]
fn a_dead_owner_is_replaced_by_the_next_in_line() {
    let objects = objects();
    let config = config(&objects);
    let order = order();
    let members = members_with_owner(|owner| owner.state = State::Dead);
    let next = plan_for(&order[1], &members, Some(&config));
    assert_eq!(next.layer2["eth0"].len(), 1);
}

#[test]
fn without_a_configuration_only_the_metadata_is_planned() {
    let members: Vec<Member> = NODES.iter().map(|n| member(n, State::Alive)).collect();
    let intent = plan_for("n1", &members, None);
    assert_eq!(
        intent,
        Intent {
            meta: meta::encode(&interfaces("n1")),
            ..Intent::default()
        }
    );
}

#[test]
fn a_node_without_usable_interfaces_is_no_candidate() {
    let objects = objects();
    let config = config(&objects);
    let order = order();
    // The owner's link is down: it says so in its metadata (no interfaces).
    let members = members_with_owner(|owner| owner.meta = meta::encode(&meta::Interfaces::new()));
    let next = plan_for(&order[1], &members, Some(&config));
    assert_eq!(next.layer2["eth0"].len(), 1, "{next:?}");
}

/// No node has an interface (every link down): only the node the hash picks is to report
/// the gap, with every node that may announce listed.
#[test]
fn only_the_would_be_owner_plans_to_report_a_service_nobody_can_announce() {
    let objects = objects();
    let config = config(&objects);
    let order = order();
    let none = meta::encode(&meta::Interfaces::new());
    let members: Vec<Member> = NODES
        .iter()
        .map(|n| {
            let mut m = member(n, State::Alive);
            m.meta = none.clone();
            m
        })
        .collect();
    let web = ServiceKey::new("default", "web");
    let plan_without_interfaces = |me: &str| {
        let own = meta::Interfaces::new();
        let node = Node {
            name: me,
            lb_class: None,
            ignore_exclude_lb: false,
            interfaces: &own,
        };
        plan(&objects, Some(&config), &members, &node)
    };
    let reporter = plan_without_interfaces(&order[0]);
    assert!(reporter.layer2.is_empty());
    let (ips, lacking) = &reporter.lacking_interfaces[&web];
    assert_eq!(ips, &["198.51.100.10".parse::<IpAddr>().expect("an IP")]);
    assert_eq!(lacking.nodes, order);
    assert!(
        lacking.named.is_empty(),
        "the advertisement takes any interface"
    );
    for other in &order[1..] {
        assert!(plan_without_interfaces(other).lacking_interfaces.is_empty());
    }
}
