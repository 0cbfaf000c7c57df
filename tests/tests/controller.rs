//! `ferrolb-controller --store DIR`: each MetalLB allocation rule, checked with
//! `ferrolbctl get services -o json` as a user would.
use ferrolb_e2e::standalone::{StoreRun, ingress, pool_of};
use ferrolb_e2e::wait_until;
use std::time::Duration;

fn pool(name: &str, addresses: &str, extra: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec:\n  addresses: [{addresses}]\n{extra}---\n"
    )
}

/// A LoadBalancer Service in namespace `ns` with annotations (`key: value` lines) and extra spec lines.
fn service(ns: &str, name: &str, annotations: &[(&str, &str)], spec: &str) -> String {
    let annotations: String = annotations
        .iter()
        .map(|(k, v)| format!("    {k}: \"{v}\"\n"))
        .collect();
    let annotations = if annotations.is_empty() {
        String::new()
    } else {
        format!("  annotations:\n{annotations}")
    };
    let spec = if spec.is_empty() {
        "  ports: [{port: 80, protocol: TCP}]\n".to_string()
    } else {
        spec.to_string()
    };
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {ns}\n{annotations}spec:\n  type: LoadBalancer\n{spec}---\n"
    )
}

/// The controller's ConfigurationState as written to the store.
fn configuration_state(run: &StoreRun) -> Option<String> {
    std::fs::read_to_string(
        run.dir()
            .join("status/ferrolb-controller/configurationstate/metallb-system.yaml"),
    )
    .ok()
}

fn has_ip(s: &serde_json::Value) -> bool {
    !ingress(s).is_empty()
}

#[test]
fn requested_ips_through_annotations_and_spec() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/24", ""));
    run.write(
        "services.yaml",
        &(service(
            "demo",
            "new-key",
            &[("metallb.io/loadBalancerIPs", "198.51.100.7")],
            "",
        ) + &service(
            "demo",
            "old-key",
            &[("metallb.universe.tf/loadBalancerIPs", "198.51.100.8")],
            "",
        ) + &service(
            "demo",
            "spec-field",
            &[],
            "  loadBalancerIP: 198.51.100.9\n  ports: [{port: 80}]\n",
        )),
    );
    run.start_controller(&[]);
    for (name, ip) in [
        ("new-key", "198.51.100.7"),
        ("old-key", "198.51.100.8"),
        ("spec-field", "198.51.100.9"),
    ] {
        let s = run.wait_service("demo", name, "allocation", has_ip);
        assert_eq!(ingress(&s), [ip], "{name}");
        assert_eq!(pool_of(&s).as_deref(), Some("blue"));
    }
    let warning = run.wait_event("old-key", "deprecatedAnnotation");
    assert!(
        warning.contains("metallb.universe.tf/loadBalancerIPs"),
        "{warning}"
    );
    assert!(
        run.wait_event("new-key", "IPAllocated")
            .contains("198.51.100.7")
    );
}

#[test]
fn impossible_requests_fail_with_a_warning_and_no_ip() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/24", ""));
    run.write(
        "services.yaml",
        &(service(
            "demo",
            "holder",
            &[("metallb.io/loadBalancerIPs", "198.51.100.7")],
            "",
        ) + &service(
            "demo",
            "outside",
            &[("metallb.io/loadBalancerIPs", "203.0.113.7")],
            "",
        ) + &service(
            "demo",
            "taken",
            &[("metallb.io/loadBalancerIPs", "198.51.100.7")],
            "",
        ) + &service(
            "demo",
            "family",
            &[("metallb.io/loadBalancerIPs", "2001:db8::7")],
            "  ipFamilies: [IPv4]\n  ports: [{port: 80}]\n",
        )),
    );
    run.start_controller(&[]);
    run.wait_service("demo", "holder", "allocation", has_ip);
    assert!(
        run.wait_event("outside", "AllocationFailed")
            .contains("not in any pool")
    );
    assert!(
        run.wait_event("taken", "AllocationFailed")
            .contains("already in use by demo/holder")
    );
    assert!(
        run.wait_event("family", "AllocationFailed")
            .contains("do not match the Service's IP families")
    );
    for name in ["outside", "taken", "family"] {
        assert!(
            ingress(&run.service("demo", name).unwrap()).is_empty(),
            "{name} got an IP"
        );
    }
}

#[test]
fn the_pool_annotation_pins_the_pool_and_moves_a_service() {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        &(pool("a-first", "198.51.100.0/24", "") + &pool("b-second", "203.0.113.0/24", "")),
    );
    run.write("svc.yaml", &service("demo", "web", &[], ""));
    run.start_controller(&[]);
    let s = run.wait_service("demo", "web", "allocation", has_ip);
    assert_eq!(pool_of(&s).as_deref(), Some("a-first"));
    run.write(
        "svc.yaml",
        &service(
            "demo",
            "web",
            &[("metallb.io/address-pool", "b-second")],
            "",
        ),
    );
    let s = run.wait_service("demo", "web", "a move to b-second", |s| {
        pool_of(s).as_deref() == Some("b-second")
    });
    assert_eq!(ingress(&s), ["203.0.113.0"]);
}

#[test]
fn services_share_an_ip_only_under_the_sharing_rule() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/24", ""));
    let shared = [("metallb.io/allow-shared-ip", "k")];
    run.write(
        "services.yaml",
        &(service(
            "demo",
            "a-http",
            &shared,
            "  ports: [{port: 80, protocol: TCP}]\n",
        ) + &service(
            "demo",
            "b-dns",
            &shared,
            "  ports: [{port: 53, protocol: UDP}]\n",
        ) + &service(
            "demo",
            "c-http-again",
            &shared,
            "  ports: [{port: 80, protocol: TCP}]\n",
        ) + &service(
            "demo",
            "d-local",
            &shared,
            "  externalTrafficPolicy: Local\n  selector: {app: x}\n  ports: [{port: 443}]\n",
        )),
    );
    run.start_controller(&[]);
    let a = ingress(&run.wait_service("demo", "a-http", "allocation", has_ip));
    assert_eq!(
        ingress(&run.wait_service("demo", "b-dns", "allocation", has_ip)),
        a,
        "compatible ports share"
    );
    assert_ne!(
        ingress(&run.wait_service("demo", "c-http-again", "allocation", has_ip)),
        a,
        "the same port cannot share"
    );
    assert_ne!(
        ingress(&run.wait_service("demo", "d-local", "allocation", has_ip)),
        a,
        "Local cannot share with Cluster"
    );
}

#[test]
fn pools_are_chosen_by_service_allocation_priority_then_auto_assign() {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        &(pool("a-general", "198.51.100.0/30", "")
            + &pool("b-manual", "198.51.100.8/30", "  autoAssign: false\n")
            + &pool("c-team", "203.0.113.0/30", "  serviceAllocation:\n    priority: 10\n    namespaces: [team]\n")
            + &pool("d-gold", "203.0.113.8/30", "  serviceAllocation:\n    priority: 1\n    serviceSelectors: [{matchLabels: {tier: gold}}]\n")
            + &pool("e-buggy", "203.0.113.255-203.0.114.1", "  avoidBuggyIPs: true\n  autoAssign: false\n")),
    );
    let gold = "apiVersion: v1\nkind: Service\nmetadata: {name: gold, namespace: team, labels: {tier: gold}}\nspec:\n  type: LoadBalancer\n  ports: [{port: 80}]\n---\n";
    run.write(
        "services.yaml",
        &(service("other", "plain", &[], "")
            + &service("team", "teamsvc", &[], "")
            + gold
            + &service(
                "other",
                "manual",
                &[("metallb.io/address-pool", "b-manual")],
                "",
            )
            + &service(
                "other",
                "buggy",
                &[("metallb.io/address-pool", "e-buggy")],
                "",
            )),
    );
    run.start_controller(&[]);
    let pool =
        |name: &str, ns: &str| pool_of(&run.wait_service(ns, name, "allocation", has_ip)).unwrap();
    assert_eq!(pool("plain", "other"), "a-general");
    assert_eq!(pool("teamsvc", "team"), "c-team");
    assert_eq!(pool("gold", "team"), "d-gold");
    assert_eq!(pool("manual", "other"), "b-manual");
    assert_eq!(
        ingress(&run.wait_service("other", "buggy", "allocation", has_ip)),
        ["203.0.114.1"],
        "avoidBuggyIPs skips .255 and .0"
    );
}

#[test]
fn dual_stack_services() {
    let mut run = StoreRun::new();
    // b-dual holds one address of each family: the RequireDualStack Service (first by name)
    // takes them, and the PreferDualStack one, finding no pool with both families left,
    // takes its primary family's pool.
    run.write(
        "pools.yaml",
        &(pool("a-v4", "198.51.100.0/30", "")
            + &pool("b-dual", "203.0.113.0/32, 2001:db8::/128", "")),
    );
    run.write(
        "services.yaml",
        &(service("demo", "a-require", &[], "  ipFamilyPolicy: RequireDualStack\n  ipFamilies: [IPv6, IPv4]\n  ports: [{port: 80}]\n")
            + &service("demo", "prefer", &[], "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n  ports: [{port: 80}]\n")),
    );
    run.start_controller(&[]);
    let s = run.wait_service("demo", "a-require", "allocation", has_ip);
    assert_eq!(
        ingress(&s),
        ["2001:db8::", "203.0.113.0"],
        "primary family first"
    );
    let s = run.wait_service("demo", "prefer", "allocation", has_ip);
    assert_eq!(ingress(&s), ["198.51.100.0"]);
    // The pool gains IPv6: the PreferDualStack Service gains an IPv6 address and keeps its IPv4 one.
    run.write(
        "pools.yaml",
        &(pool("a-v4", "198.51.100.0/30, 2001:db8:1::/126", "")
            + &pool("b-dual", "203.0.113.0/32, 2001:db8::/128", "")),
    );
    let s = run.wait_service("demo", "prefer", "the IPv6 address", |s| {
        ingress(s).len() == 2
    });
    assert_eq!(ingress(&s), ["198.51.100.0", "2001:db8:1::"]);
}

#[test]
fn load_balancer_class_is_honoured() {
    let services = service("demo", "none", &[], "")
        + &service(
            "demo",
            "ours",
            &[],
            "  loadBalancerClass: example.com/ferrolb\n  ports: [{port: 80}]\n",
        )
        + &service(
            "demo",
            "theirs",
            &[],
            "  loadBalancerClass: example.com/other\n  ports: [{port: 80}]\n",
        );
    // As MetalLB: without --lb-class, Services with no class; with it, exactly that class.
    for (args, served, ignored) in [
        (vec![], vec!["none"], vec!["ours", "theirs"]),
        (
            vec!["--lb-class", "example.com/ferrolb"],
            vec!["ours"],
            vec!["none", "theirs"],
        ),
    ] {
        let mut run = StoreRun::new();
        run.write("pools.yaml", &pool("blue", "198.51.100.0/24", ""));
        run.write("services.yaml", &services);
        run.start_controller(&args);
        for name in served {
            run.wait_service("demo", name, "allocation", has_ip);
        }
        std::thread::sleep(Duration::from_millis(500));
        for name in ignored {
            assert!(
                ingress(&run.service("demo", name).unwrap()).is_empty(),
                "{name} got an IP with {args:?}"
            );
        }
    }
}

#[test]
fn leaving_load_balancer_or_being_deleted_frees_the_ip() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("tiny", "198.51.100.1/32", ""));
    run.write("a.yaml", &service("demo", "a", &[], ""));
    run.start_controller(&[]);
    run.wait_service("demo", "a", "allocation", has_ip);
    run.write("b.yaml", &service("demo", "b", &[], ""));
    run.wait_event("b", "AllocationFailed");
    // a becomes ClusterIP: its status and annotation are cleared, b gets the address.
    run.write(
        "a.yaml",
        &service("demo", "a", &[], "").replace("type: LoadBalancer", "type: ClusterIP"),
    );
    let a = run.wait_service("demo", "a", "clearing", |s| {
        !has_ip(s) && pool_of(s).is_none()
    });
    assert!(pool_of(&a).is_none());
    run.wait_service("demo", "b", "the freed IP", |s| {
        ingress(s) == ["198.51.100.1"]
    });
    // b is deleted: a, LoadBalancer again, gets the address back.
    run.remove("b.yaml");
    run.write("a.yaml", &service("demo", "a", &[], ""));
    run.wait_service("demo", "a", "the freed IP", |s| {
        ingress(s) == ["198.51.100.1"]
    });
}

#[test]
fn a_shrinking_pool_moves_only_the_services_that_lost_their_ip() {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        &(pool("a-main", "198.51.100.0/30", "") + &pool("b-spare", "203.0.113.0/31", "")),
    );
    run.write(
        "services.yaml",
        &(service("demo", "s0", &[], "")
            + &service("demo", "s1", &[], "")
            + &service("demo", "s2", &[], "")),
    );
    run.start_controller(&[]);
    for (name, ip) in [
        ("s0", "198.51.100.0"),
        ("s1", "198.51.100.1"),
        ("s2", "198.51.100.2"),
    ] {
        assert_eq!(
            ingress(&run.wait_service("demo", name, "allocation", has_ip)),
            [ip]
        );
    }
    run.write(
        "pools.yaml",
        &(pool("a-main", "198.51.100.0/31", "") + &pool("b-spare", "203.0.113.0/31", "")),
    );
    run.wait_service("demo", "s2", "a move to b-spare", |s| {
        ingress(s) == ["203.0.113.0"]
    });
    assert_eq!(
        ingress(&run.service("demo", "s0").unwrap()),
        ["198.51.100.0"]
    );
    assert_eq!(
        ingress(&run.service("demo", "s1").unwrap()),
        ["198.51.100.1"]
    );
    // The spare pool goes away too (issue 9, case 4): s2 keeps its IP until it goes, and a
    // newcomer has nowhere to go.
    run.write("pools.yaml", &pool("a-main", "198.51.100.0/31", ""));
    run.write("s3.yaml", &service("demo", "s3", &[], ""));
    assert!(
        run.wait_event("s3", "AllocationFailed")
            .contains("no available IPs")
    );
    assert_eq!(
        ingress(&run.service("demo", "s2").unwrap()),
        ["203.0.113.0"]
    );
}

#[test]
fn a_restart_changes_no_assignment() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/28", ""));
    let services: String = (0..8)
        .map(|i| service("demo", &format!("s{i}"), &[], ""))
        .collect();
    run.write("services.yaml", &services);
    run.start_controller(&[]);
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        run.get("services")["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(has_ip)
            .then_some(())
    })
    .expect("every Service allocated");
    // Shuffle the holders: delete s0 and s3, let s0 come back with another address.
    run.write(
        "services.yaml",
        &services.replace("name: s0\n", "name: s9\n"),
    );
    run.wait_service("demo", "s9", "allocation", has_ip);
    let before = run.get("services");
    run.kill_controller();
    // A new Service appears while the controller is down; it must not take anyone's address.
    run.write("late.yaml", &service("demo", "late", &[], ""));
    run.start_controller(&[]);
    run.wait_service("demo", "late", "allocation", has_ip);
    let after = run.get("services");
    for s in before["items"].as_array().unwrap() {
        let name = s["metadata"]["name"].as_str().unwrap();
        let now = after["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["metadata"]["name"] == name)
            .unwrap();
        assert_eq!(ingress(now), ingress(s), "{name} moved on restart");
    }
}

#[test]
fn a_bad_configuration_keeps_the_last_good_one_and_a_bad_service_blocks_nobody() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/24", ""));
    run.write("a.yaml", &service("demo", "a", &[], ""));
    run.start_controller(&[]);
    run.wait_service("demo", "a", "allocation", has_ip);
    // An overlapping pool makes the configuration invalid...
    run.write("bad.yaml", &pool("red", "198.51.100.128/25", ""));
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let state = configuration_state(&run)?;
        (state.contains("Invalid") && state.contains("overlaps")).then_some(())
    })
    .expect("ConfigurationState reports the invalid configuration");
    // MetalLB's chart alerts on a stale configuration (MetalLBStaleConfig): it can fire.
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let metrics = run.http_get("/metrics");
        (metrics.contains("metallb_k8s_client_config_stale_bool 1")
            && metrics.contains("metallb_k8s_client_config_loaded_bool 1"))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("not stale: {}", run.http_get("/metrics")));
    // ...yet the last good one still serves: a keeps its IP, a new Service is allocated, and
    // a Service with a broken annotation only hurts itself.
    run.write(
        "more.yaml",
        &(service(
            "demo",
            "broken",
            &[("metallb.io/loadBalancerIPs", "not-an-ip")],
            "",
        ) + &service("demo", "b", &[], "")),
    );
    run.wait_service("demo", "b", "allocation", has_ip);
    assert!(
        run.wait_event("broken", "AllocationFailed")
            .contains("not an IP address")
    );
    assert_eq!(
        ingress(&run.service("demo", "a").unwrap()),
        ["198.51.100.0"]
    );
    run.remove("bad.yaml");
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        configuration_state(&run)?.contains("Valid").then_some(())
    })
    .expect("ConfigurationState back to Valid");
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        run.http_get("/metrics")
            .contains("metallb_k8s_client_config_stale_bool 0")
            .then_some(())
    })
    .expect("fresh again");
}

#[test]
fn pool_status_counters_follow_allocations() {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        &pool("blue", "198.51.100.0/30, 2001:db8::/126", ""),
    );
    run.write(
        "svc.yaml",
        &(service("demo", "a", &[], "") + &service("demo", "b", &[], "")),
    );
    run.start_controller(&[]);
    let status = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let pools = run.get("pools");
        let status = pools["items"][0]["status"].clone();
        (status["assignedIPv4"] == 2).then_some(status)
    })
    .unwrap_or_else(|| panic!("pool status never counted 2: {:#}", run.get("pools")));
    assert_eq!(
        status,
        serde_json::json!({"assignedIPv4": 2, "assignedIPv6": 0, "availableIPv4": 2, "availableIPv6": 4})
    );
}

#[test]
fn metrics_and_health_are_served() {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        &pool("blue", "198.51.100.0/30, 2001:db8::/126", ""),
    );
    run.write(
        "svc.yaml",
        &(service("demo", "a", &[], "") + &service("demo", "b", &[], "")),
    );
    run.start_controller(&[]);
    run.wait_service("demo", "b", "allocation", has_ip);
    let metrics = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let text = run.http_get("/metrics");
        text.contains("metallb_allocator_addresses_in_use_total{pool=\"blue\"} 2")
            .then_some(text)
    })
    .unwrap_or_else(|| panic!("metrics never counted 2: {}", run.http_get("/metrics")));
    for line in [
        "metallb_allocator_addresses_total{pool=\"blue\"} 8",
        "metallb_allocator_ipv4_addresses_total{pool=\"blue\"} 4",
        "metallb_allocator_ipv4_addresses_in_use_total{pool=\"blue\"} 2",
        "metallb_allocator_ipv6_addresses_total{pool=\"blue\"} 4",
        "metallb_allocator_ipv6_addresses_in_use_total{pool=\"blue\"} 0",
        "metallb_allocator_services_allocated_total{pool=\"blue\"} 2",
        "metallb_k8s_client_config_loaded_bool 1",
        "metallb_k8s_client_config_stale_bool 0",
        "# TYPE metallb_k8s_client_updates_total counter",
        "# TYPE process_cpu_seconds_total counter",
        "process_resident_memory_bytes ",
        "process_start_time_seconds ",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }
    // MetalLB's Prometheus text format by default (as Go's client serves it), OpenMetrics
    // to a scraper that asks for it.
    assert!(
        metrics.contains("Content-Type: text/plain; version=0.0.4")
            || metrics.contains("content-type: text/plain; version=0.0.4"),
        "{metrics}"
    );
    assert!(!metrics.contains("# EOF"));
    let openmetrics = run.http_get_with(
        "/metrics",
        "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n",
    );
    assert!(
        openmetrics.contains("application/openmetrics-text") && openmetrics.contains("# EOF"),
        "{openmetrics}"
    );
    assert!(run.http_get("/healthz").starts_with("HTTP/1.1 200"));
    assert!(run.http_get("/readyz").starts_with("HTTP/1.1 200"));
}

/// `--log-format json`: one JSON object per line, with the level and the message, for log
/// collectors.
#[test]
fn the_log_can_be_json_lines() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/30", ""));
    run.write("svc.yaml", &service("demo", "a", &[], ""));
    run.start_controller(&["--log-format", "json"]);
    run.wait_service("demo", "a", "allocation", has_ip);
    let log = run.controller_log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["level"] == "INFO" && l["fields"]["message"] == "controller started"),
        "{log}"
    );
}

#[test]
fn after_a_restart_holders_keep_their_ips_before_anyone_reallocates() {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        &(pool("z-old", "203.0.113.0/30", "  autoAssign: false\n")
            + &pool("main", "198.51.100.0/30", "")),
    );
    run.write(
        "a.yaml",
        &service("demo", "a", &[("metallb.io/address-pool", "z-old")], ""),
    );
    run.write("b.yaml", &service("demo", "b", &[], ""));
    run.start_controller(&[]);
    run.wait_service("demo", "a", "allocation", |s| ingress(s) == ["203.0.113.0"]);
    run.wait_service("demo", "b", "allocation", |s| {
        ingress(s) == ["198.51.100.0"]
    });
    run.kill_controller();
    // While the controller is down: a's pool goes away, a is moved to main, b has a broken
    // annotation, and a newcomer c arrives. a sorts first, yet must not take b's address, and
    // c must not take it either: b still holds it.
    run.write("pools.yaml", &pool("main", "198.51.100.0/30", ""));
    run.write(
        "a.yaml",
        &service("demo", "a", &[("metallb.io/address-pool", "main")], ""),
    );
    run.write(
        "b.yaml",
        &service(
            "demo",
            "b",
            &[("metallb.io/loadBalancerIPs", "198.51.100.0,198.51.100.1")],
            "",
        ),
    );
    run.write("c.yaml", &service("demo", "c", &[], ""));
    run.start_controller(&[]);
    let a = ingress(&run.wait_service("demo", "a", "a move to main", |s| {
        pool_of(s).as_deref() == Some("main")
    }));
    let c = ingress(&run.wait_service("demo", "c", "allocation", has_ip));
    assert!(
        run.wait_event("b", "AllocationFailed")
            .contains("more than one IPv4")
    );
    assert_eq!(
        ingress(&run.service("demo", "b").unwrap()),
        ["198.51.100.0"],
        "b lost its address"
    );
    assert!(
        !a.contains(&"198.51.100.0".to_string()) && !c.contains(&"198.51.100.0".to_string()),
        "a={a:?} c={c:?}"
    );
}

/// MetalLB's documented layer 2 setup (an L2Advertisement with no `spec`) runs unchanged; an
/// object that cannot be read is left out with a Warning Event on it, and blocks nothing.
#[test]
fn metallbs_documented_layer2_setup_runs_and_an_unreadable_object_blocks_nobody() {
    let mut run = StoreRun::new();
    run.write(
        "metallb.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: first-pool\n  namespace: metallb-system\nspec:\n  addresses:\n  - 192.168.1.240-192.168.1.250\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n  name: example\n  namespace: metallb-system\n",
    );
    run.write("a.yaml", &service("demo", "a", &[], ""));
    run.start_controller(&[]);
    run.wait_service("demo", "a", "allocation", has_ip);
    assert_eq!(
        ingress(&run.service("demo", "a").unwrap()),
        ["192.168.1.240"]
    );
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        configuration_state(&run)?.contains("Valid").then_some(())
    })
    .expect("the documented configuration is valid");

    // A pool whose addresses are not a list: left out, said on the pool and in the state.
    run.write(
        "broken.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: broken, namespace: metallb-system}\nspec:\n  addresses: 198.51.100.0/24\n",
    );
    let message = run.wait_event("broken", "InvalidObject");
    assert!(
        message
            .contains("invalid IPAddressPool metallb-system/broken: spec.addresses: invalid type"),
        "{message}"
    );
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let state = configuration_state(&run)?;
        (state.contains("Invalid") && state.contains("broken.yaml")).then_some(())
    })
    .expect("ConfigurationState names the unreadable object");
    run.write("b.yaml", &service("demo", "b", &[], ""));
    run.wait_service("demo", "b", "allocation", has_ip);
    assert_eq!(
        ingress(&run.service("demo", "a").unwrap()),
        ["192.168.1.240"]
    );
}

/// Where MetalLB refuses a Service, FerroLB refuses it too, with a Warning Event saying why.
#[test]
fn requests_metallb_refuses_are_refused_with_the_reason() {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        &(pool(
            "gold",
            "198.51.100.0/30",
            "  serviceAllocation:\n    serviceSelectors: [{matchLabels: {tier: gold}}]\n",
        ) + &pool("dual", "203.0.113.0/30, 2001:db8::/126", "")),
    );
    run.write(
        "services.yaml",
        &(service("demo", "by-ip", &[("metallb.io/loadBalancerIPs", "198.51.100.1")], "")
            + &service("demo", "by-spec", &[], "  loadBalancerIP: 198.51.100.2\n  ports: [{port: 80}]\n")
            + &service("demo", "by-pool", &[("metallb.io/address-pool", "gold")], "")
            + &service("demo", "both", &[("metallb.io/loadBalancerIPs", "203.0.113.1")], "  loadBalancerIP: 203.0.113.2\n  ports: [{port: 80}]\n")
            + &service("demo", "half", &[("metallb.io/loadBalancerIPs", "203.0.113.3")], "  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv4, IPv6]\n  ports: [{port: 80}]\n")
            + &service("demo", "fine", &[], "")),
    );
    run.start_controller(&[]);
    run.wait_service("demo", "fine", "allocation", has_ip);
    for name in ["by-ip", "by-spec", "by-pool"] {
        let message = run.wait_event(name, "AllocationFailed");
        assert!(
            message.contains("pool \"gold\" does not serve this Service"),
            "{name}: {message}"
        );
    }
    assert!(
        run.wait_event("both", "AllocationFailed").contains(
            "both with the metallb.io/loadBalancerIPs annotation and spec.loadBalancerIP"
        )
    );
    assert!(
        run.wait_event("half", "AllocationFailed")
            .contains("a dual-stack Service requests one IP of each family")
    );
    for name in ["by-ip", "by-spec", "by-pool", "both", "half"] {
        assert!(
            !has_ip(&run.service("demo", name).unwrap()),
            "{name} got an IP"
        );
    }
    // Once the Service carries the label the pool selects, its requested IP is given.
    run.write(
        "services.yaml",
        &service(
            "demo",
            "by-ip",
            &[("metallb.io/loadBalancerIPs", "198.51.100.1")],
            "",
        )
        .replace("  name: by-ip\n", "  name: by-ip\n  labels: {tier: gold}\n"),
    );
    let s = run.wait_service("demo", "by-ip", "allocation", has_ip);
    assert_eq!(ingress(&s), ["198.51.100.1"]);
}

/// As in MetalLB, a pool no advertisement selects still gives IPs; unlike MetalLB, the Service
/// and the ConfigurationState say nothing will announce them.
#[test]
fn a_pool_no_advertisement_selects_gives_ips_and_says_they_are_not_announced() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("silent", "198.51.100.0/30", ""));
    run.write("a.yaml", &service("demo", "a", &[], ""));
    run.start_controller(&[]);
    run.wait_service("demo", "a", "allocation", has_ip);
    let message = run.wait_event("a", "NotAnnounced");
    assert!(
        message.contains("Pool silent is selected by no L2Advertisement"),
        "{message}"
    );
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let state = configuration_state(&run)?;
        (state.contains("Valid")
            && state.contains("NotAnnounced")
            && state.contains("IPAddressPool \"silent\" is selected by no"))
        .then_some(())
    })
    .unwrap_or_else(|| panic!("no NotAnnounced condition: {:?}", configuration_state(&run)));
    run.write(
        "l2.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: all, namespace: metallb-system}\n",
    );
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        (!configuration_state(&run)?.contains("NotAnnounced")).then_some(())
    })
    .expect("the condition goes once an advertisement selects the pool");
}

/// MetalLB's controller flags (as its manifests and chart pass them) start FerroLB; those it
/// does not act on are named once in the log. A flag given twice takes its last value.
#[test]
fn metallbs_controller_flags_are_accepted() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/30", ""));
    run.write("a.yaml", &service("demo", "a", &[], ""));
    run.start_controller(&[
        "--log-level=all",
        "--webhook-mode=enabled",
        "--cert-service-name=metallb-webhook-service",
        "--cert-dir=/tmp/k8s-webhook-server/serving-certs",
        "--disable-cert-rotation",
        "--enable-pprof=false",
        "--tls-min-version=VersionTLS12",
        "--deployment=controller",
        "--ml-secret-name=memberlist",
        "--health-probe-port=8081",
    ]);
    run.wait_service("demo", "a", "allocation", has_ip);
    let log = run.controller_log();
    assert!(
        log.contains("MetalLB flags accepted and ignored")
            && log.contains("--tls-min-version")
            && !log.contains("--cert-service-name")
            && !log.contains("flags=\"--webhook-mode"),
        "{log}"
    );
    assert!(
        log.contains("DEBUG"),
        "--log-level=all logs everything: {log}"
    );
}

/// MetalLB's separate webhook Deployment runs the controller image with
/// `--webhook-mode=onlywebhook`: it must not allocate beside the real controller (and on a
/// file store there is no API server for a webhook either).
#[test]
fn the_onlywebhook_deployment_allocates_nothing() {
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/30", ""));
    run.write("a.yaml", &service("demo", "a", &[], ""));
    run.start_controller(&["--webhook-mode=onlywebhook", "--log-level=none"]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(!run.wait_controller_exit(Duration::ZERO), "it stays up");
    assert!(!has_ip(&run.service("demo", "a").unwrap()));
    assert_eq!(run.controller_log(), "", "--log-level=none logs nothing");
}

/// The alerts shipped in `manifests/monitoring/` (MetalLB's chart's alerts) read metrics the
/// components serve, under those names.
#[test]
fn the_shipped_alerts_read_metrics_that_exist() {
    let rules = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../manifests/monitoring/prometheusrule.yaml"),
    )
    .expect("the PrometheusRule");
    let names: std::collections::BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("expr:"))
        .flat_map(|expr| expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .filter(|word| word.starts_with("metallb_"))
        .collect();
    assert!(names.len() >= 5, "{names:?}");
    let mut run = StoreRun::new();
    run.write("pools.yaml", &pool("blue", "198.51.100.0/30", ""));
    run.start_controller(&[]);
    let controller = wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        let text = run.http_get("/metrics");
        text.contains("metallb_allocator_addresses_total{")
            .then_some(text)
    })
    .expect("the controller's metrics");
    // A speaker with a BGP and a BFD session (families without series are not written).
    let speaker = ferrolb_speaker::metrics::Metrics::new();
    let peer: std::net::SocketAddr = "192.0.2.1:179".parse().unwrap();
    speaker.bgp.session_up(peer, false);
    let session = ferrolb_bfd::driver::SessionStatus {
        key: ferrolb_bfd::driver::Key {
            peer: peer.ip(),
            interface: None,
            scope_id: 0,
            multihop: false,
        },
        state: ferrolb_bfd::State::Down,
        remote_state: ferrolb_bfd::State::Down,
        diag: ferrolb_bfd::Diag::NONE,
        local_discr: 1,
        remote_discr: 0,
        tx_interval: None,
        detection_time: None,
        remote_demand: false,
        counters: ferrolb_bfd::driver::Counters::default(),
        tx_lateness: Duration::ZERO,
    };
    let status = |sessions| ferrolb_bfd::driver::Status {
        sessions,
        unmatched: 0,
        wrong_ttl: 0,
        errors: Vec::new(),
    };
    speaker
        .bfd
        .update(&status(Vec::new()), &status(vec![session]));
    let speaker = speaker.render();
    for name in names {
        let declared = |text: &str| {
            text.lines()
                .any(|l| l.starts_with(&format!("# TYPE {name} ")))
        };
        assert!(
            declared(&controller) || declared(&speaker),
            "{name} is served by neither component"
        );
    }
}

/// MetalLB's documented configurations (examples/metallb-documented: layer 2, BGP, pools with
/// selectors, shared IPs) validate and run unchanged.
#[test]
fn metallbs_documented_configurations_validate_and_run_unchanged() {
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/metallb-documented");
    let validate = std::process::Command::new(ferrolb_e2e::standalone::binary("ferrolbctl"))
        .arg("validate")
        .arg(&example)
        .output()
        .expect("ferrolbctl runs");
    assert!(
        validate.status.success(),
        "{}",
        String::from_utf8_lossy(&validate.stdout)
    );
    let mut run = StoreRun::new();
    for entry in std::fs::read_dir(&example).expect("the example") {
        let path = entry.expect("a file").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("a name");
        run.write(name, &std::fs::read_to_string(&path).expect("readable"));
    }
    run.start_controller(&[]);
    let tcp = run.wait_service("default", "dns-service-tcp", "allocation", has_ip);
    let udp = run.wait_service("default", "dns-service-udp", "allocation", has_ip);
    assert_eq!(ingress(&tcp), ["192.168.10.4"]);
    assert_eq!(ingress(&udp), ["192.168.10.4"], "shared under one key");
    let nginx = run.wait_service("default", "nginx", "allocation", has_ip);
    assert_eq!(pool_of(&nginx).as_deref(), Some("expensive"));
    let web = run.wait_service("prod", "web", "allocation", has_ip);
    assert_eq!(pool_of(&web).as_deref(), Some("production"));
    assert_eq!(ingress(&web), ["203.0.113.0"]);
    wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
        configuration_state(&run)?
            .contains("result: Valid")
            .then_some(())
    })
    .unwrap_or_else(|| panic!("{:?}", configuration_state(&run)));
}
