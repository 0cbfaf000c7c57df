use super::*;
use ferrolb_api::config::ConfigObjects;
use ferrolb_api::objects::Object;
use proptest::prelude::*;

fn config(yaml: &str) -> Config {
    let objects: Vec<Object> = Object::decode_yaml_stream(yaml)
        .into_iter()
        .map(|(_, o)| o.unwrap())
        .collect();
    Config::build(&ConfigObjects::from_objects(&objects, "metallb-system")).unwrap()
}

fn pool(name: &str, addresses: &str, extra: &str) -> String {
    format!(
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {{name: {name}, namespace: metallb-system}}\nspec:\n  addresses: [{addresses}]\n{extra}---\n"
    )
}

fn request(name: &str) -> Request {
    Request::single_stack(ServiceKey::new("default", name), Family::V4)
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn shared(key: &str, port: i32) -> Option<Sharing> {
    Some(Sharing {
        key: key.into(),
        local_selector: None,
        ports: BTreeSet::from([("TCP".to_string(), port)]),
    })
}

#[test]
fn gives_the_lowest_free_address_of_the_first_pool_by_name() {
    let mut a = Allocator::new(&config(
        &(pool("b", "198.51.100.0/30", "") + &pool("a", "203.0.113.0/30", "")),
    ));
    assert_eq!(
        a.allocate(&request("x")).unwrap(),
        Assignment {
            pool: "a".into(),
            ips: vec![ip("203.0.113.0")]
        }
    );
    assert_eq!(
        a.allocate(&request("y")).unwrap().ips,
        vec![ip("203.0.113.1")]
    );
}

#[test]
fn honours_requested_ips_and_reports_why_not() {
    let mut a = Allocator::new(&config(&pool("a", "198.51.100.0/24", "")));
    let mut r = request("x");
    r.requested_ips = vec![ip("198.51.100.7")];
    assert_eq!(a.allocate(&r).unwrap().ips, vec![ip("198.51.100.7")]);
    let mut other = request("y");
    other.requested_ips = vec![ip("198.51.100.7")];
    assert!(matches!(
        a.allocate(&other),
        Err(AllocationError::InUse { .. })
    ));
    other.requested_ips = vec![ip("203.0.113.1")];
    assert!(matches!(
        a.allocate(&other),
        Err(AllocationError::NotInAnyPool { .. })
    ));
    other.requested_ips = vec![ip("2001:db8::1")];
    assert!(matches!(
        a.allocate(&other),
        Err(AllocationError::WrongFamilies { .. })
    ));
}

#[test]
fn auto_assign_false_pools_serve_only_on_request() {
    let mut a = Allocator::new(&config(&pool(
        "manual",
        "198.51.100.0/30",
        "  autoAssign: false\n",
    )));
    assert!(matches!(
        a.allocate(&request("x")),
        Err(AllocationError::NoAvailableIps(_))
    ));
    let mut r = request("x");
    r.pool = Some("manual".into());
    assert_eq!(&*a.allocate(&r).unwrap().pool, "manual");
    let mut r = request("y");
    r.requested_ips = vec![ip("198.51.100.3")];
    assert_eq!(&*a.allocate(&r).unwrap().pool, "manual");
}

#[test]
fn service_allocation_pools_come_first_by_priority_and_unset_last() {
    let yaml = pool("general", "198.51.100.0/30", "")
        + &pool(
            "p0",
            "203.0.113.0/30",
            "  serviceAllocation:\n    namespaces: [default]\n",
        )
        + &pool(
            "p5",
            "203.0.113.4/30",
            "  serviceAllocation:\n    priority: 5\n    namespaces: [default]\n",
        )
        + &pool(
            "p1",
            "203.0.113.8/30",
            "  serviceAllocation:\n    priority: 1\n    serviceSelectors: [{matchLabels: {tier: gold}}]\n",
        )
        + &pool(
            "other-ns",
            "203.0.113.12/30",
            "  serviceAllocation:\n    priority: 1\n    namespaces: [elsewhere]\n",
        );
    let a = Allocator::new(&config(&yaml));
    let mut gold = request("x");
    gold.labels.insert("tier".into(), "gold".into());
    let order = |r: &Request| {
        a.pool_groups(r)
            .concat()
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(order(&gold), ["p1", "p5", "p0", "general"]);
    assert_eq!(order(&request("y")), ["p5", "p0", "general"]);
}

#[test]
fn avoids_buggy_ips() {
    let mut a = Allocator::new(&config(&pool(
        "a",
        "198.51.100.255-198.51.101.1",
        "  avoidBuggyIPs: true\n",
    )));
    assert_eq!(
        a.allocate(&request("x")).unwrap().ips,
        vec![ip("198.51.101.1")]
    );
    let mut r = request("y");
    r.requested_ips = vec![ip("198.51.101.0")];
    assert!(matches!(
        a.allocate(&r),
        Err(AllocationError::BuggyIp { .. })
    ));
}

#[test]
fn shares_ips_only_under_the_sharing_rule() {
    let mut a = Allocator::new(&config(&pool("a", "198.51.100.0/30", "")));
    let mut web = request("web");
    web.sharing = shared("k", 80);
    let mut dns = request("dns");
    dns.sharing = shared("k", 53);
    let first = a.allocate(&web).unwrap();
    assert_eq!(
        a.allocate(&dns).unwrap().ips,
        first.ips,
        "compatible Services share"
    );
    let mut clash = request("clash");
    clash.sharing = shared("k", 80);
    assert_ne!(
        a.allocate(&clash).unwrap().ips,
        first.ips,
        "the same port cannot share"
    );
    let mut other_key = request("other");
    other_key.sharing = shared("z", 443);
    assert_ne!(a.allocate(&other_key).unwrap().ips, first.ips);
    let mut local = request("local");
    local.sharing = Some(Sharing {
        local_selector: Some(BTreeMap::from([("app".into(), "a".into())])),
        ..shared("k", 8080).unwrap()
    });
    local.requested_ips = first.ips.clone();
    assert!(
        matches!(a.allocate(&local), Err(AllocationError::InUse { .. })),
        "Local cannot share with Cluster"
    );
    // The address is freed only when its last holder lets it go.
    a.release(&web.key);
    assert!(!a.pools["a"].v4.is_free(&first.ips[0]));
    a.release(&dns.key);
    assert!(a.pools["a"].v4.is_free(&first.ips[0]));
}

#[test]
fn dual_stack_policies() {
    let mut a = Allocator::new(&config(
        &(pool("v4only", "198.51.100.0/30", "")
            + &pool("z-dual", "203.0.113.0/30, 2001:db8::/126", "")),
    ));
    let mut require = request("r");
    require.policy = FamilyPolicy::RequireDualStack;
    let got = a.allocate(&require).unwrap();
    assert_eq!(&*got.pool, "z-dual");
    assert_eq!(got.ips, vec![ip("203.0.113.0"), ip("2001:db8::")]);
    // MetalLB prefers a pool with both families over the first pool by name.
    let mut prefer = request("p");
    prefer.policy = FamilyPolicy::PreferDualStack;
    assert_eq!(
        a.allocate(&prefer).unwrap().ips,
        vec![ip("203.0.113.1"), ip("2001:db8::1")]
    );
}

/// MetalLB's order for a PreferDualStack Service with two cluster IPs: within each group of
/// pools, one with both families, then one with the primary family, then one with the other.
#[test]
fn prefer_dual_stack_takes_both_families_then_the_primary_then_the_other() {
    let mut a = Allocator::new(&config(
        &(pool("a-v6", "2001:db8:a::/127", "")
            + &pool("b-v4", "198.51.100.0/31", "")
            + &pool("c-dual", "203.0.113.0/32, 2001:db8:c::/128", "")),
    ));
    let prefer = |name: &str, primary: Family| {
        let mut r = Request::single_stack(ServiceKey::new("default", name), primary);
        r.policy = FamilyPolicy::PreferDualStack;
        r.ip_families = match primary {
            Family::V4 => vec![Family::V4, Family::V6],
            Family::V6 => vec![Family::V6, Family::V4],
        };
        r
    };
    let first = a.allocate(&prefer("first", Family::V4)).unwrap();
    assert_eq!(&*first.pool, "c-dual");
    // c-dual is full: the primary family's pool, though a-v6 comes first by name.
    let second = a.allocate(&prefer("second", Family::V4)).unwrap();
    assert_eq!(
        (&*second.pool, second.ips),
        ("b-v4", vec![ip("198.51.100.0")])
    );
    let third = a.allocate(&prefer("third", Family::V6)).unwrap();
    assert_eq!(&*third.pool, "a-v6");
    // No pool with the primary family left: the other family's.
    a.allocate(&prefer("fourth", Family::V4)).unwrap();
    let fifth = a.allocate(&prefer("fifth", Family::V4)).unwrap();
    assert_eq!(
        (&*fifth.pool, fifth.ips),
        ("a-v6", vec![ip("2001:db8:a::1")])
    );
}

/// MetalLB refuses one requested address for a Service with two cluster IPs.
#[test]
fn a_dual_stack_prefer_service_requests_both_families_or_nothing() {
    let mut a = Allocator::new(&config(&pool("dual", "203.0.113.0/30, 2001:db8::/126", "")));
    let mut r = request("p");
    r.policy = FamilyPolicy::PreferDualStack;
    r.ip_families = vec![Family::V4, Family::V6];
    r.requested_ips = vec![ip("203.0.113.2")];
    assert!(matches!(
        a.allocate(&r),
        Err(AllocationError::DualStackRequestNotDual { .. })
    ));
    r.requested_ips = vec![ip("203.0.113.2"), ip("2001:db8::2")];
    assert_eq!(a.allocate(&r).unwrap().ips.len(), 2);
    // On a single-stack cluster (one cluster IP), one address is the whole request.
    let mut single = request("s");
    single.policy = FamilyPolicy::PreferDualStack;
    single.ip_families = vec![Family::V4];
    single.requested_ips = vec![ip("203.0.113.1")];
    a.allocate(&single).unwrap();
}

/// MetalLB gives a requested IP, or an IP of a pool named by annotation, only when the pool's
/// serviceAllocation selects the Service; a Service holding IPs of a pool that stops selecting
/// it moves to one that does.
#[test]
fn requested_ips_and_pools_only_from_pools_that_serve_the_service() {
    let mut a = Allocator::new(&config(
        &(pool(
            "gold",
            "198.51.100.0/30",
            "  serviceAllocation:\n    serviceSelectors: [{matchLabels: {tier: gold}}]\n",
        ) + &pool("general", "203.0.113.0/30", "")),
    ));
    let mut by_ip = request("by-ip");
    by_ip.requested_ips = vec![ip("198.51.100.1")];
    assert_eq!(
        a.allocate(&by_ip),
        Err(AllocationError::NotSelectedByPool("gold".into()))
    );
    assert!(
        a.assignment(&by_ip.key).is_none(),
        "nothing held after a refusal"
    );
    let mut by_pool = request("by-pool");
    by_pool.pool = Some("gold".into());
    assert_eq!(
        a.allocate(&by_pool),
        Err(AllocationError::NotSelectedByPool("gold".into()))
    );
    by_ip.labels.insert("tier".into(), "gold".into());
    assert_eq!(a.allocate(&by_ip).unwrap().ips, vec![ip("198.51.100.1")]);
    // The label goes: the requested IP cannot be kept, and is refused again.
    by_ip.labels.clear();
    assert!(a.keep(&by_ip, &[], None).is_none());
    assert_eq!(
        a.ensure(&by_ip, &[], None),
        Err(AllocationError::NotSelectedByPool("gold".into()))
    );
    // A broken Service's status IPs are still held against newcomers, whatever the pool.
    assert!(a.reserve(&ServiceKey::new("default", "broken"), &[ip("198.51.100.2")]));
}

#[test]
fn prefer_dual_stack_on_a_single_stack_cluster_gets_one_family() {
    let mut a = Allocator::new(&config(&pool("dual", "203.0.113.0/30, 2001:db8::/126", "")));
    let mut prefer = request("p");
    prefer.policy = FamilyPolicy::PreferDualStack;
    prefer.ip_families = vec![Family::V4];
    assert_eq!(a.allocate(&prefer).unwrap().ips, vec![ip("203.0.113.0")]);
    assert_eq!(
        a.ensure(&prefer, &[], None).unwrap(),
        Outcome::Kept(Assignment {
            pool: "dual".into(),
            ips: vec![ip("203.0.113.0")]
        })
    );
}

#[test]
fn a_reservation_holds_status_ips_against_newcomers() {
    let mut a = Allocator::new(&config(&pool("a", "198.51.100.0/31", "")));
    assert!(a.reserve(&ServiceKey::new("default", "broken"), &[ip("198.51.100.0")]));
    assert_eq!(
        a.allocate(&request("new")).unwrap().ips,
        vec![ip("198.51.100.1")]
    );
    let mut r = request("other");
    r.requested_ips = vec![ip("198.51.100.0")];
    assert!(matches!(a.allocate(&r), Err(AllocationError::InUse { .. })));
}

#[test]
fn prefer_dual_stack_gains_the_missing_family_when_its_pool_does() {
    let mut a = Allocator::new(&config(&pool("a", "198.51.100.0/30", "")));
    let mut prefer = request("p");
    prefer.policy = FamilyPolicy::PreferDualStack;
    assert_eq!(a.allocate(&prefer).unwrap().ips, vec![ip("198.51.100.0")]);
    a.set_config(&config(&pool("a", "198.51.100.0/30, 2001:db8::/126", "")));
    let outcome = a.ensure(&prefer, &[], None).unwrap();
    assert_eq!(
        outcome,
        Outcome::Assigned(Assignment {
            pool: "a".into(),
            ips: vec![ip("198.51.100.0"), ip("2001:db8::")]
        })
    );
}

#[test]
fn shrinking_a_pool_moves_only_the_services_that_lost_their_ip() {
    let mut a = Allocator::new(&config(
        &(pool("a", "198.51.100.0/30", "") + &pool("b", "203.0.113.0/30", "")),
    ));
    let keys: Vec<Request> = ["s0", "s1", "s2"].iter().map(|n| request(n)).collect();
    for r in &keys {
        a.allocate(r).unwrap();
    }
    let lost = a.set_config(&config(
        &(pool("a", "198.51.100.0/31", "") + &pool("b", "203.0.113.0/30", "")),
    ));
    assert_eq!(lost, vec![keys[2].key.clone()]);
    assert_eq!(
        a.ensure(&keys[0], &[], None).unwrap(),
        Outcome::Kept(Assignment {
            pool: "a".into(),
            ips: vec![ip("198.51.100.0")]
        })
    );
    assert_eq!(
        a.ensure(&keys[2], &[], None).unwrap(),
        Outcome::Assigned(Assignment {
            pool: "b".into(),
            ips: vec![ip("203.0.113.0")]
        })
    );
}

#[test]
fn a_pool_annotation_moves_a_service_from_another_pool() {
    let mut a = Allocator::new(&config(
        &(pool("a", "198.51.100.0/30", "") + &pool("b", "203.0.113.0/30", "")),
    ));
    let mut r = request("x");
    assert_eq!(&*a.allocate(&r).unwrap().pool, "a");
    r.pool = Some("b".into());
    assert_eq!(
        a.ensure(&r, &[], None).unwrap(),
        Outcome::Assigned(Assignment {
            pool: "b".into(),
            ips: vec![ip("203.0.113.0")]
        })
    );
    assert!(a.pools["a"].v4.is_free(&ip("198.51.100.0")));
}

#[test]
fn restart_keeps_status_ips() {
    let cfg = config(&pool("a", "198.51.100.0/29", ""));
    let mut a = Allocator::new(&cfg);
    assert_eq!(
        a.ensure(&request("x"), &[ip("198.51.100.5")], None)
            .unwrap(),
        Outcome::Kept(Assignment {
            pool: "a".into(),
            ips: vec![ip("198.51.100.5")]
        })
    );
    assert_eq!(
        a.ensure(&request("y"), &[], None).unwrap(),
        Outcome::Assigned(Assignment {
            pool: "a".into(),
            ips: vec![ip("198.51.100.0")]
        })
    );
}

// Property tests: random sequences of Service and pool changes and restarts.

#[derive(Clone, Debug)]
enum Op {
    Add {
        service: u8,
        sharing: Option<(u8, i32)>,
        requested: Option<u8>,
        pool: Option<u8>,
    },
    Remove {
        service: u8,
    },
    SetPools(u8),
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..24, proptest::option::of((0u8..3, 1i32..4)), proptest::option::of(0u8..40), proptest::option::of(0u8..3))
            .prop_map(|(service, sharing, requested, pool)| Op::Add { service, sharing, requested, pool }),
        2 => (0u8..24).prop_map(|service| Op::Remove { service }),
        1 => (0u8..3).prop_map(Op::SetPools),
        1 => Just(Op::Restart),
    ]
}

/// Three pool layouts the sequence switches between: grown, shrunk, renamed.
fn layout(variant: u8) -> Config {
    config(&match variant {
        0 => {
            pool("p0", "198.51.100.0/29", "")
                + &pool("p1", "198.51.100.8/30", "")
                + &pool("p2", "198.51.100.16/30", "  avoidBuggyIPs: true\n")
        }
        1 => pool("p0", "198.51.100.0/30", "") + &pool("p2", "198.51.100.16/29", ""),
        _ => {
            pool("p1", "198.51.100.0/28", "  autoAssign: false\n")
                + &pool("p2", "198.51.100.16/30", "")
        }
    })
}

fn check_invariants(
    a: &Allocator,
    cfg: &Config,
    requests: &BTreeMap<ServiceKey, Request>,
) -> Result<(), TestCaseError> {
    let mut by_ip: BTreeMap<IpAddr, Vec<&ServiceKey>> = BTreeMap::new();
    for (key, assignment) in a.assignments() {
        let pool = cfg.pools.get(&*assignment.pool);
        for ip in &assignment.ips {
            match pool {
                Some(pool) => prop_assert!(
                    pool.contains(ip),
                    "{key} holds {ip} outside pool {}",
                    assignment.pool
                ),
                // An orphan: its pool is gone, and no other pool has its IPs.
                None => prop_assert!(
                    cfg.pools.values().all(|p| !p.contains(ip)),
                    "{key} holds {ip} of missing pool {} that another pool has",
                    assignment.pool
                ),
            }
            by_ip.entry(*ip).or_default().push(key);
        }
    }
    for (ip, holders) in by_ip {
        for (i, x) in holders.iter().enumerate() {
            for y in &holders[i + 1..] {
                let (sx, sy) = (&requests[*x].sharing, &requests[*y].sharing);
                let ok = matches!((sx, sy), (Some(a), Some(b)) if a.compatible_with(b));
                prop_assert!(ok, "{ip} held by {x} and {y}, which may not share");
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
    #[test]
    fn allocations_stay_valid_and_survive_restarts(ops in proptest::collection::vec(op(), 1..60)) {
        let mut cfg = layout(0);
        let mut a = Allocator::new(&cfg);
        let mut requests: BTreeMap<ServiceKey, Request> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Add { service, sharing, requested, pool } => {
                    let mut r = request(&format!("s{service}"));
                    r.sharing = sharing.map(|(k, port)| Sharing { key: format!("k{k}"), local_selector: None, ports: BTreeSet::from([("TCP".to_string(), port)]) });
                    r.requested_ips = requested.map(|i| vec![IpAddr::from([198, 51, 100, i])]).unwrap_or_default();
                    r.pool = pool.map(|p| format!("p{p}"));
                    let before = a.assignment(&r.key).cloned();
                    let result = a.ensure(&r, &[], None);
                    if let (Ok(Outcome::Kept(kept)), Some(before)) = (&result, before) {
                        prop_assert_eq!(kept, &before);
                    }
                    if result.is_err() {
                        prop_assert!(a.assignment(&r.key).is_none());
                    }
                    requests.insert(r.key.clone(), r);
                }
                Op::Remove { service } => {
                    let key = ServiceKey::new("default", &format!("s{service}"));
                    a.release(&key);
                    requests.remove(&key);
                }
                Op::SetPools(variant) => {
                    cfg = layout(variant);
                    for lost in a.set_config(&cfg) {
                        let r = &requests[&lost];
                        let _ = a.ensure(r, &[], None);
                    }
                }
                Op::Restart => {
                    // A new allocator rebuilt from the status the old one left: nothing moves.
                    let held: BTreeMap<ServiceKey, Assignment> = a.assignments().map(|(k, v)| (k.clone(), v.clone())).collect();
                    a = Allocator::new(&cfg);
                    for (key, assignment) in &held {
                        let outcome = a.ensure(&requests[key], &assignment.ips, Some(&assignment.pool));
                        prop_assert_eq!(outcome, Ok(Outcome::Kept(assignment.clone())), "{} moved on restart", key);
                    }
                }
            }
            check_invariants(&a, &cfg, &requests)?;
        }
    }
}

/// Issue 9, case 4: a pool that vanishes for a moment (its file empty while being rewritten)
/// once freed every assignment in it, and its IPs went to other Services.
#[test]
fn a_vanished_pool_keeps_its_assignments_until_it_returns() {
    let both = pool("a", "198.51.100.0/30", "") + &pool("b", "203.0.113.0/30", "");
    let mut a = Allocator::new(&config(&both));
    let x = request("x");
    let mut pinned = request("pinned");
    pinned.requested_ips = vec![ip("198.51.100.1")];
    assert_eq!(a.allocate(&x).unwrap().ips, vec![ip("198.51.100.0")]);
    assert_eq!(a.allocate(&pinned).unwrap().ips, vec![ip("198.51.100.1")]);

    // Pool a is gone: nothing is lost, and the held IPs stay held.
    assert!(
        a.set_config(&config(&pool("b", "203.0.113.0/30", "")))
            .is_empty()
    );
    assert_eq!(
        a.keep(&x, &[ip("198.51.100.0")], None),
        Some(Outcome::Kept(Assignment {
            pool: "a".into(),
            ips: vec![ip("198.51.100.0")]
        }))
    );
    assert!(matches!(a.keep(&pinned, &[], None), Some(Outcome::Kept(_))));
    let mut thief = request("thief");
    thief.requested_ips = vec![ip("198.51.100.1")];
    assert!(a.allocate(&thief).is_err());

    // Pool a is back: the same Services hold the same IPs, and newcomers get others.
    assert!(a.set_config(&config(&both)).is_empty());
    assert!(matches!(a.keep(&pinned, &[], None), Some(Outcome::Kept(_))));
    assert!(matches!(
        a.allocate(&thief),
        Err(AllocationError::InUse { .. })
    ));
    let mut newcomer = request("newcomer");
    newcomer.pool = Some("a".into());
    assert_eq!(a.allocate(&newcomer).unwrap().ips, vec![ip("198.51.100.2")]);

    // A Service that goes frees its orphaned IP.
    a.set_config(&config(&pool("b", "203.0.113.0/30", "")));
    a.release(&x.key);
    a.set_config(&config(&both));
    let mut again = request("again");
    again.requested_ips = vec![ip("198.51.100.0")];
    assert!(a.allocate(&again).is_ok());
}

/// Issue 9, case 4, across a restart: the Service's status names the pool that is gone, and
/// its IPs stay held.
#[test]
fn a_restart_while_a_pool_is_gone_keeps_its_services_ips() {
    let mut a = Allocator::new(&config(&pool("b", "203.0.113.0/30", "")));
    let x = request("x");
    assert_eq!(
        a.keep(&x, &[ip("198.51.100.0")], Some("a")),
        Some(Outcome::Kept(Assignment {
            pool: "a".into(),
            ips: vec![ip("198.51.100.0")]
        }))
    );
    a.set_config(&config(
        &(pool("a", "198.51.100.0/30", "") + &pool("b", "203.0.113.0/30", "")),
    ));
    let mut thief = request("thief");
    thief.requested_ips = vec![ip("198.51.100.0")];
    assert!(matches!(
        a.allocate(&thief),
        Err(AllocationError::InUse { .. })
    ));
    // Without the pool's name, nothing says the IPs were ever allocated: not kept.
    let mut fresh = Allocator::new(&config(&pool("b", "203.0.113.0/30", "")));
    assert_eq!(fresh.keep(&x, &[ip("198.51.100.0")], None), None);
}
