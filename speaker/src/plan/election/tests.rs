use super::*;
use crate::plan::eligibility::EXCLUDE_LABEL;
use ferrolb_api::config::ConfigObjects;
use ferrolb_api::objects::{Detail, Object};

const POOLS: &str = r#"
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: web, namespace: metallb-system}
spec: {addresses: [198.51.100.0/24, "2001:db8:1::/120"]}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bgp-only, namespace: metallb-system}
spec: {addresses: [203.0.113.0/24]}
"#;

const L2_ALL: &str = r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: all, namespace: metallb-system}
spec: {ipAddressPools: [web]}
"#;

fn node(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {{{labels}}}}}\n---\n")
}

fn service(name: &str, ip: &str, policy: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: default}}
spec: {{type: LoadBalancer, externalTrafficPolicy: {policy}, ports: [{{port: 80}}]}}
status: {{loadBalancer: {{ingress: [{{ip: "{ip}"}}]}}}}
---
"#
    )
}

fn endpoints(service: &str, nodes: &[&str]) -> String {
    let endpoints: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!("{{addresses: [10.0.0.{i}], nodeName: {n}, conditions: {{ready: true}}}}")
        })
        .collect();
    format!(
        "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {{name: {service}-x, namespace: default, labels: {{kubernetes.io/service-name: {service}}}}}\naddressType: IPv4\nendpoints: [{}]\n---\n",
        endpoints.join(", ")
    )
}

struct World {
    objects: Vec<Object>,
    config: Config,
}

fn world(yaml: &str) -> World {
    let objects: Vec<Object> = Object::decode_yaml_stream_as(yaml, Detail::Speaker)
        .into_iter()
        .map(|(_, o)| o.expect("valid object"))
        .collect();
    let config = Config::build(&ConfigObjects::from_objects(&objects, "metallb-system"))
        .expect("valid config");
    World { objects, config }
}

fn speakers(names: &[&str]) -> BTreeMap<String, Speaker> {
    names
        .iter()
        .map(|n| {
            (
                n.to_string(),
                Speaker {
                    interfaces: Some(BTreeSet::from(["eth0".to_string()])),
                },
            )
        })
        .collect()
}

fn decide(world: &World, speakers: &BTreeMap<String, Speaker>, me: &str) -> Vec<Decision> {
    elect(&Inputs::new(
        &world.objects,
        &world.config,
        speakers,
        me,
        None,
    ))
}

fn three_nodes() -> String {
    format!("{}{}{}", node("n1", ""), node("n2", ""), node("n3", ""))
}

#[test]
fn the_owner_is_the_smallest_hash_of_node_and_ip() {
    let yaml = format!(
        "{POOLS}---{L2_ALL}---\n{}{}{}",
        three_nodes(),
        service("web", "198.51.100.10", "Cluster"),
        endpoints("web", &["n3"])
    );
    let w = world(&yaml);
    let all = speakers(&["n1", "n2", "n3"]);
    let decisions = decide(&w, &all, "n1");
    assert_eq!(decisions.len(), 1);
    let ip: IpAddr = "198.51.100.10".parse().expect("ip");
    let mut expected = vec!["n1", "n2", "n3"];
    expected.sort_by_key(|n| tie_breaker(n, ip));
    assert_eq!(decisions[0].order, expected);
    // Every speaker reaches the same order; only the owner gets interfaces.
    for me in ["n1", "n2", "n3"] {
        let d = &decide(&w, &all, me)[0];
        assert_eq!(d.order, expected);
        assert_eq!(d.interfaces.is_empty(), me != expected[0], "{me}");
    }
}

#[test]
fn the_tie_breaker_is_sha256_of_node_hash_ip() {
    // echo -n 'n1#198.51.100.10' | sha256sum
    let digest = tie_breaker("n1", "198.51.100.10".parse().expect("ip"));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let expected = std::process::Command::new("sh")
        .args(["-c", "printf 'n1#198.51.100.10' | sha256sum"])
        .output()
        .expect("sha256sum runs");
    let expected = String::from_utf8_lossy(&expected.stdout);
    assert_eq!(hex, expected.split_whitespace().next().expect("digest"));
}

#[test]
fn a_dead_speaker_hands_over_to_the_next_in_order() {
    let yaml = format!(
        "{POOLS}---{L2_ALL}---\n{}{}{}",
        three_nodes(),
        service("web", "198.51.100.10", "Cluster"),
        endpoints("web", &["n1"])
    );
    let w = world(&yaml);
    let before = decide(&w, &speakers(&["n1", "n2", "n3"]), "n1")[0]
        .order
        .clone();
    let survivors: Vec<&str> = before[1..].iter().map(String::as_str).collect();
    let after = decide(&w, &speakers(&survivors), survivors[0]);
    assert_eq!(after[0].order, before[1..]);
}

#[test]
fn local_traffic_policy_picks_only_nodes_with_a_ready_endpoint() {
    let yaml = format!(
        "{POOLS}---{L2_ALL}---\n{}{}{}",
        three_nodes(),
        service("web", "198.51.100.10", "Local"),
        endpoints("web", &["n2"])
    );
    let w = world(&yaml);
    assert_eq!(
        decide(&w, &speakers(&["n1", "n2", "n3"]), "n2")[0].order,
        ["n2"]
    );
}

#[test]
fn no_endpoints_other_pools_and_excluded_nodes_are_not_announced() {
    let objects = [
        node(
            "n1",
            "node.kubernetes.io/exclude-from-external-load-balancers: ''",
        ),
        node("n2", ""),
        service("no-endpoints", "198.51.100.11", "Cluster"),
        service("bgp", "203.0.113.5", "Cluster"),
        service("web", "198.51.100.10", "Cluster"),
        endpoints("web", &["n1"]),
        endpoints("bgp", &["n1"]),
    ];
    let yaml = format!("{POOLS}---{L2_ALL}---\n{}", objects.concat());
    let w = world(&yaml);
    let decisions = decide(&w, &speakers(&["n1", "n2"]), "n2");
    assert_eq!(decisions.len(), 1, "{decisions:?}");
    assert_eq!(&*decisions[0].service.name, "web");
    assert_eq!(decisions[0].order, ["n2"], "n1 is excluded by label");
    // MetalLB's --ignore-exclude-lb: the label is not looked at.
    let both = speakers(&["n1", "n2"]);
    let mut inputs = Inputs::new(&w.objects, &w.config, &both, "n2", None);
    inputs.ignore_exclude_lb = true;
    let decisions = elect(&inputs);
    let web = decisions
        .iter()
        .find(|d| &*d.service.name == "web")
        .expect("web");
    assert!(web.order.contains(&"n1".to_string()), "{:?}", web.order);
}

#[test]
fn node_selectors_interfaces_and_preferred_weights_are_honoured() {
    let advertisement = r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: rack-a, namespace: metallb-system}
spec:
  ipAddressPools: [web]
  interfaces: [eth1]
  nodeSelectors: [{matchLabels: {rack: a}}]
"#;
    let yaml = format!(
        "{POOLS}---{advertisement}---\n{}{}{}{}{}",
        node("n1", "rack: a"),
        node("n2", "rack: a"),
        node("n3", "rack: b"),
        service("web", "198.51.100.10", "Cluster"),
        endpoints("web", &["n3"])
    );
    let w = world(&yaml);
    let mut all = speakers(&["n1", "n2", "n3"]);
    // n3 is not selected; n1 has no eth1 and so is no candidate either.
    all.get_mut("n2")
        .expect("n2")
        .interfaces
        .as_mut()
        .expect("known")
        .insert("eth1".into());
    let d = &decide(&w, &all, "n2")[0];
    assert_eq!(d.order, ["n2"]);
    assert_eq!(d.interfaces, BTreeSet::from(["eth1".to_string()]));

    // A MetalLB speaker does not say which interfaces it has: it stays a candidate.
    all.get_mut("n1").expect("n1").interfaces = None;
    assert_eq!(decide(&w, &all, "n2")[0].order.len(), 2);
}

/// An advertisement naming an interface no node has: nobody announces, and exactly one
/// node, the one the hash would pick, reports it; once a node has it, nobody reports.
#[test]
fn interfaces_missing_everywhere_are_reported_by_the_would_be_owner_alone() {
    let advertisement = r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: foo-only, namespace: metallb-system}
spec: {ipAddressPools: [web], interfaces: [foo]}
"#;
    let yaml = format!(
        "{POOLS}---{advertisement}---\n{}{}{}",
        three_nodes(),
        service("web", "198.51.100.10", "Cluster"),
        endpoints("web", &["n1"])
    );
    let w = world(&yaml);
    let mut all = speakers(&["n1", "n2", "n3"]);
    let ip: IpAddr = "198.51.100.10".parse().unwrap();
    let mut by_hash = ["n1", "n2", "n3"];
    by_hash.sort_by_key(|n| tie_breaker(n, ip));
    for me in ["n1", "n2", "n3"] {
        let d = &decide(&w, &all, me)[0];
        assert!(d.order.is_empty(), "{:?}", d.order);
        let lacking = d.lacking_interfaces.as_ref().expect("reported");
        assert_eq!(lacking.node, by_hash[0]);
        assert_eq!(lacking.nodes, by_hash);
        assert_eq!(lacking.named, BTreeSet::from(["foo".to_string()]));
    }

    // The would-be owner gone, the next in hash order reports.
    all.remove(by_hash[0]);
    let d = &decide(&w, &all, by_hash[1])[0];
    assert_eq!(
        d.lacking_interfaces.as_ref().map(|l| l.node.as_str()),
        Some(by_hash[1])
    );

    // One node with `foo`: it announces, and nobody reports.
    all.get_mut(by_hash[2])
        .expect("present")
        .interfaces
        .as_mut()
        .expect("known")
        .insert("foo".into());
    let d = &decide(&w, &all, by_hash[2])[0];
    assert_eq!(d.order, [by_hash[2]]);
    assert_eq!(d.lacking_interfaces, None);
}

#[test]
fn preferred_node_selectors_outweigh_the_hash() {
    let advertisement = r#"
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: prefer, namespace: metallb-system}
spec:
  ipAddressPools: [web]
  preferredNodeSelectors:
  - {weight: 10, preference: {matchLabels: {zone: z1}}}
"#;
    for favourite in ["n1", "n2", "n3"] {
        let nodes: String = ["n1", "n2", "n3"]
            .iter()
            .map(|n| node(n, if *n == favourite { "zone: z1" } else { "" }))
            .collect();
        let yaml = format!(
            "{POOLS}---{advertisement}---\n{nodes}{}{}",
            service("web", "198.51.100.10", "Cluster"),
            endpoints("web", &["n1"])
        );
        let w = world(&yaml);
        let d = &decide(&w, &speakers(&["n1", "n2", "n3"]), "n1")[0];
        assert_eq!(d.owner(), Some(favourite));
    }
}

#[test]
fn ipv6_services_are_elected_on_their_first_ip() {
    let yaml = format!(
        "{POOLS}---{L2_ALL}---\n{}{}{}",
        three_nodes(),
        service("web6", "2001:db8:1::10", "Cluster"),
        endpoints("web6", &["n1"])
    );
    let w = world(&yaml);
    let d = &decide(&w, &speakers(&["n1", "n2", "n3"]), "n1")[0];
    let ip: IpAddr = "2001:db8:1::10".parse().expect("ip");
    let mut expected = vec!["n1", "n2", "n3"];
    expected.sort_by_key(|n| tie_breaker(n, ip));
    assert_eq!(d.order, expected);
}

/// Issue 9, case 6: only the first ingress IP was checked against the pools, and every one
/// was announced.
#[test]
fn a_service_with_an_ip_outside_its_pool_is_not_announced() {
    let service_with = |name: &str, ips: &[&str]| {
        let ingress: Vec<String> = ips.iter().map(|ip| format!("{{ip: \"{ip}\"}}")).collect();
        format!(
            "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\nstatus: {{loadBalancer: {{ingress: [{}]}}}}\n---\n",
            ingress.join(", ")
        )
    };
    let yaml = format!(
        "{POOLS}---{L2_ALL}---\n{}{}{}{}{}",
        three_nodes(),
        service_with("dual", &["198.51.100.7", "2001:db8:1::7"]),
        endpoints("dual", &["n1"]),
        service_with("stray", &["198.51.100.8", "192.0.2.200"]),
        endpoints("stray", &["n1"])
    );
    let w = world(&yaml);
    let decisions = decide(&w, &speakers(&["n1", "n2", "n3"]), "n1");
    let names: Vec<&str> = decisions.iter().map(|d| &*d.service.name).collect();
    assert_eq!(names, ["dual"]);
}

mod agreement {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]
        /// Every speaker computes the election alone: for any Services, endpoints, node
        /// labels and live speakers, they must all reach the same order, the owner must be a
        /// live speaker, and only IPs of a pool are announced.
        #[test]
        fn every_speaker_reaches_the_same_decisions(
            services in proptest::collection::vec((0u8..=255, any::<bool>(), 0u8..8, any::<bool>()), 1..6),
            excluded in 0u8..8,
            live in 1u8..8,
        ) {
            let mut yaml = format!("{POOLS}---{L2_ALL}---\n");
            for (i, n) in ["n1", "n2", "n3"].iter().enumerate() {
                let label = if excluded & (1 << i) != 0 { format!("{EXCLUDE_LABEL}: \"\"") } else { String::new() };
                yaml.push_str(&node(n, &label));
            }
            for (i, (octet, inside, on, local)) in services.iter().enumerate() {
                let ip = if *inside { format!("198.51.100.{octet}") } else { format!("192.0.2.{octet}") };
                let policy = if *local { "Local" } else { "Cluster" };
                yaml.push_str(&service(&format!("s{i}"), &ip, policy));
                let nodes: Vec<&str> = ["n1", "n2", "n3"].iter().enumerate().filter(|(j, _)| on & (1 << j) != 0).map(|(_, n)| *n).collect();
                if !nodes.is_empty() {
                    yaml.push_str(&endpoints(&format!("s{i}"), &nodes));
                }
            }
            let w = world(&yaml);
            let names: Vec<&str> = ["n1", "n2", "n3"].iter().enumerate().filter(|(i, _)| live & (1 << i) != 0).map(|(_, n)| *n).collect();
            let live_speakers = speakers(&names);
            let views: Vec<Vec<(String, Vec<String>)>> = names
                .iter()
                .map(|me| decide(&w, &live_speakers, me).into_iter().map(|d| (d.service.name.to_string(), d.order)).collect())
                .collect();
            for view in &views {
                prop_assert_eq!(view, &views[0]);
            }
            for d in decide(&w, &live_speakers, names[0]) {
                prop_assert!(d.owner().is_none_or(|o| names.contains(&o)));
                prop_assert!(d.ips.iter().all(|ip| w.config.pools.values().any(|p| p.contains(ip))));
            }
        }
    }
}
