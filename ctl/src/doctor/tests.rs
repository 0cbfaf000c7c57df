//! Each problem planted in a store is found, with its fix; a healthy store gives nothing.
use super::*;

const NS: &str = "metallb-system";

const POOL: &str = "apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: lab, namespace: metallb-system}
spec: {addresses: [198.51.100.0/28]}
---
";

const L2: &str = "apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: lab, namespace: metallb-system}
spec: {ipAddressPools: [lab]}
---
";

fn node(name: &str, excluded: bool) -> String {
    let labels = if excluded {
        "{node.kubernetes.io/exclude-from-external-load-balancers: \"\"}"
    } else {
        "{}"
    };
    format!(
        "apiVersion: v1\nkind: Node\nmetadata: {{name: {name}, labels: {labels}}}\nstatus: {{addresses: [{{type: InternalIP, address: 192.0.2.1}}]}}\n---\n"
    )
}

fn kube_proxy(config: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: kube-proxy, namespace: kube-system}}\ndata:\n  config.conf: |\n{}\n---\n",
        config
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

/// A Service asking for `ip` (empty: any), with the IP `held` in its status if any.
fn service(name: &str, ip: &str, held: Option<&str>) -> String {
    let annotations = if ip.is_empty() {
        "{}".to_string()
    } else {
        format!("{{metallb.io/loadBalancerIPs: \"{ip}\"}}")
    };
    let status = match held {
        Some(ip) => format!("status: {{loadBalancer: {{ingress: [{{ip: {ip}}}]}}}}\n"),
        None => String::new(),
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: default, annotations: {annotations}}}\nspec: {{type: LoadBalancer, ports: [{{port: 80}}]}}\n{status}---\n"
    )
}

fn findings_in(files: &[&str], kubernetes: Option<Kubernetes>) -> Vec<Finding> {
    findings_with(files, kubernetes, Vec::new())
}

fn findings_with(
    files: &[&str],
    kubernetes: Option<Kubernetes>,
    announce_failed: Vec<AnnounceFailed>,
) -> Vec<Finding> {
    let dir = tempfile::tempdir().expect("a directory");
    for (i, text) in files.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.yaml")), text).expect("writing");
    }
    let snapshot = ferrolb_cluster::store::load(dir.path(), NS);
    assert!(snapshot.problems.is_empty(), "{:?}", snapshot.problems);
    let key = ObjectKey::new(Kind::ConfigMap, Some("kube-system"), "kube-proxy");
    let kube_proxy = match snapshot.get(&key) {
        Some(Object::ConfigMap(c)) => Some((**c).clone()),
        _ => None,
    };
    diagnose(&Input {
        snapshot: &snapshot,
        namespace: NS,
        lb_class: None,
        kube_proxy: kube_proxy.as_ref(),
        kubernetes,
        announce_failed,
    })
}

fn healthy() -> Vec<String> {
    vec![
        POOL.to_string(),
        L2.to_string(),
        node("n1", false),
        node("n2", true),
        kube_proxy("mode: ipvs\nipvs:\n  strictARP: true"),
    ]
}

fn texts(files: &[String]) -> Vec<&str> {
    files.iter().map(String::as_str).collect()
}

#[test]
fn a_healthy_store_has_no_finding() {
    let findings = findings_in(&texts(&healthy()), None);
    assert!(findings.is_empty(), "{findings:#?}");
}

/// One finding, whose text holds `what` and whose fix holds `fix`.
fn assert_one(findings: &[Finding], what: &str, fix: &str) {
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert!(findings[0].what.contains(what), "{findings:#?}");
    assert!(findings[0].fix.contains(fix), "{findings:#?}");
}

#[test]
fn kube_proxy_in_ipvs_mode_without_strict_arp() {
    let mut files = healthy();
    files[4] = kube_proxy("mode: ipvs\nipvs:\n  strictARP: false");
    let findings = findings_in(&texts(&files), None);
    assert_one(&findings, "IPVS mode without strictARP", "strictARP: true");
    // iptables mode needs nothing.
    files[4] = kube_proxy("mode: iptables");
    assert!(findings_in(&texts(&files), None).is_empty());
}

#[test]
fn a_pool_no_advertisement_selects() {
    let mut files = healthy();
    files.push("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: orphan, namespace: metallb-system}\nspec: {addresses: [203.0.113.0/28]}\n---\n".into());
    let findings = findings_in(&texts(&files), None);
    assert_one(
        &findings,
        "\"orphan\" is selected by no",
        "ipAddressPools: [orphan]",
    );
}

/// MetalLB: an advertisement naming no pools (and no selectors) announces every pool.
#[test]
fn an_advertisement_naming_no_pools_announces_them_all() {
    let mut files = healthy();
    files[1] = "apiVersion: metallb.io/v1beta1\nkind: BGPAdvertisement\nmetadata: {name: all, namespace: metallb-system}\n---\n".into();
    files.push("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: more, namespace: metallb-system}\nspec: {addresses: [203.0.113.0/28]}\n---\n".into());
    let findings = findings_in(&texts(&files), None);
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn every_node_excluded_from_load_balancers() {
    let mut files = healthy();
    files[2] = node("n1", true);
    let findings = findings_in(&texts(&files), None);
    assert_one(&findings, "every node is labelled", "--ignore-exclude-lb");
}

#[test]
fn an_invalid_configuration() {
    let mut files = healthy();
    files[0] = POOL.replace("198.51.100.0/28", "198.51.100.0/33");
    let findings = findings_in(&texts(&files), None);
    assert!(!findings.is_empty());
    assert!(
        findings
            .iter()
            .all(|f| f.what.contains("the configuration is invalid")),
        "{findings:#?}"
    );
}

#[test]
fn pending_services_and_why() {
    let mut files = healthy();
    // Asks for an IP no pool has.
    files.push(service("outside", "203.0.113.7", None));
    let findings = findings_in(&texts(&files), None);
    assert_one(
        &findings,
        "Service default/outside has no IP",
        "widen a pool",
    );
    // Could have one now: the controller is not doing its work.
    let mut files = healthy();
    files.push(service("waiting", "", None));
    let findings = findings_in(&texts(&files), None);
    assert_one(
        &findings,
        "Service default/waiting has no IP yet",
        "ferrolb-controller runs",
    );
    // Holding its IP: nothing to say.
    let mut files = healthy();
    files.push(service("served", "", Some("198.51.100.3")));
    assert!(findings_in(&texts(&files), None).is_empty());
}

#[test]
fn in_kubernetes_the_memberlist_secret_and_webhook_leftovers() {
    let webhook = |service: &str| Webhook {
        configuration: "metallb-webhook-configuration".into(),
        service_namespace: NS.into(),
        service_name: service.into(),
    };
    let kubernetes = |webhooks| Kubernetes {
        memberlist_secret: MEMBERLIST_SECRET.into(),
        webhooks,
        services: vec![(NS.into(), "metallb-webhook-service".into())],
    };
    let mut files = healthy();
    let findings = findings_in(
        &texts(&files),
        Some(kubernetes(vec![webhook("metallb-webhook-service")])),
    );
    assert_one(
        &findings,
        "memberlist Secret",
        "kubectl create secret generic -n metallb-system memberlist",
    );
    files.push("apiVersion: v1\nkind: Secret\nmetadata: {name: memberlist, namespace: metallb-system}\ndata: {secretkey: c2VjcmV0}\n---\n".into());
    let findings = findings_in(
        &texts(&files),
        Some(kubernetes(vec![webhook("metallb-webhook-service")])),
    );
    assert!(findings.is_empty(), "{findings:#?}");
    let findings = findings_in(&texts(&files), Some(kubernetes(vec![webhook("gone")])));
    assert_one(
        &findings,
        "Service metallb-system/gone, which does not exist",
        "kubectl delete validatingwebhookconfiguration",
    );
}

fn excludel2(patterns: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: metallb-excludel2, namespace: metallb-system}}\ndata:\n  excludel2.yaml: |\n    announcedInterfacesToExclude: [{patterns}]\n---\n"
    )
}

#[test]
fn an_advertisement_whose_every_interface_is_excluded() {
    let mut files = healthy();
    files[1] = L2.replace(
        "{ipAddressPools: [lab]}",
        "{ipAddressPools: [lab], interfaces: [eth1, bond0]}",
    );
    assert!(findings_in(&texts(&files), None).is_empty());
    // MetalLB's default list excludes veth*: without the ConfigMap, that is the list.
    files[1] = L2.replace(
        "{ipAddressPools: [lab]}",
        "{ipAddressPools: [lab], interfaces: [veth0]}",
    );
    let findings = findings_in(&texts(&files), None);
    assert_one(
        &findings,
        "MetalLB's default list",
        "announcedInterfacesToExclude",
    );
    // The ConfigMap excludes both.
    files[1] = L2.replace(
        "{ipAddressPools: [lab]}",
        "{ipAddressPools: [lab], interfaces: [eth1, bond0]}",
    );
    files.push(excludel2("\"^eth1$\", \"^bond\""));
    let findings = findings_in(&texts(&files), None);
    assert_one(
        &findings,
        "L2Advertisement \"lab\" announces only on bond0, eth1, which ConfigMap metallb-system/metallb-excludel2 excludes: it announces nothing",
        "interfaces",
    );
    // One of them left: fine.
    *files.last_mut().expect("pushed") = excludel2("\"^eth1$\"");
    assert!(findings_in(&texts(&files), None).is_empty());
    // A ConfigMap that cannot be read is a finding of its own.
    *files.last_mut().expect("pushed") = excludel2("\"^eth(\"");
    let findings = findings_in(&texts(&files), None);
    assert_one(
        &findings,
        "announcedInterfacesToExclude",
        "list of regular expressions",
    );
}

#[test]
fn a_service_no_node_could_announce_for_want_of_an_interface() {
    let failed = |message: &str| AnnounceFailed {
        service: ServiceKey::new("default", "served"),
        message: message.into(),
    };
    let mut files = healthy();
    files.push(service("served", "", Some("198.51.100.3")));
    // Without a ready endpoint nobody announces it anyway: the Event is history.
    assert!(findings_with(&texts(&files), None, vec![failed("no node has eth9 up")]).is_empty());
    files.push("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata: {name: served-x, namespace: default, labels: {kubernetes.io/service-name: served}}\naddressType: IPv4\nendpoints: [{addresses: [10.0.0.1], nodeName: n1, conditions: {ready: true}}]\n---\n".into());
    let findings = findings_with(
        &texts(&files),
        None,
        vec![failed("an older reason"), failed("no node has eth9 up")],
    );
    assert_one(
        &findings,
        "Service default/served is not announced by layer 2: no node has eth9 up",
        "bring the interface up",
    );
    // Announced now (a ServiceL2Status names it): the Event is history.
    files.push("apiVersion: metallb.io/v1beta1\nkind: ServiceL2Status\nmetadata: {name: l2-abc, namespace: metallb-system}\nstatus: {node: n1, serviceName: served, serviceNamespace: default, interfaces: [{name: eth9}]}\n---\n".into());
    assert!(findings_with(&texts(&files), None, vec![failed("no node has eth9 up")]).is_empty());
    // A Service that is gone, or holds no IP, is no finding either.
    let findings = findings_with(
        &texts(&healthy()),
        None,
        vec![failed("no node has eth9 up")],
    );
    assert!(findings.is_empty(), "{findings:#?}");
}
