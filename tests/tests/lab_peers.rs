//! The lab itself, proven with real routers before FerroLB's own daemons join it.
use ferrolb_e2e::{Lab, Neighbor, lab_available, wait_until};
use std::time::Duration;

const ROUTER_AS: u32 = 64500;

#[test]
fn hosts_reach_each_other_and_nothing_else() {
    if !lab_available(&["ip", "ping"]) {
        return;
    }
    let lab = Lab::standard().unwrap();
    lab.exec("cli", &["ping", "-c1", "-W2", "192.0.2.11"])
        .unwrap();
    lab.exec("cli", &["ping", "-6", "-c1", "-W2", "2001:db8::13"])
        .unwrap();
    // No default route: the outside world is unreachable from the lab.
    let routes = lab.exec("n1", &["ip", "route", "show", "default"]).unwrap();
    assert!(
        routes.trim().is_empty(),
        "unexpected default route: {routes}"
    );
}

#[test]
fn bird_and_gobgp_establish_and_exchange_routes() {
    if !lab_available(&["ip", "bird", "birdc", "gobgpd", "gobgp"]) {
        return;
    }
    let mut lab = Lab::standard().unwrap();
    lab.start_gobgp(
        "rtr",
        ROUTER_AS,
        &[Neighbor {
            address: lab.host("n1").ipv4,
            asn: 64501,
        }],
    )
    .unwrap();
    let bird = lab
        .start_bird(
            "n1",
            "protocol static announced { ipv4; route 203.0.113.0/24 blackhole; }\n\
             protocol bgp rtr { local 192.0.2.11 as 64501; neighbor 192.0.2.1 as 64500; ipv4 { import all; export all; }; }",
        )
        .unwrap();
    let established = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
        lab.birdc("n1", &bird, "show protocols all rtr")
            .contains("BGP state:          Established")
            .then_some(())
    });
    assert!(
        established.is_some(),
        "BIRD never established with GoBGP\n{}",
        lab.logs()
    );
    let route = wait_until(Duration::from_secs(10), Duration::from_millis(250), || {
        lab.gobgp("rtr", &["global", "rib"])
            .contains("203.0.113.0/24")
            .then_some(())
    });
    assert!(
        route.is_some(),
        "GoBGP never learnt BIRD's route: {}",
        lab.gobgp("rtr", &["global", "rib"])
    );
    assert!(lab.gobgp("rtr", &["neighbor"]).contains("Establ"));
}

#[test]
fn frr_bgpd_started_the_lab_way_peers_with_gobgp() {
    if !lab_available(&["ip", "bgpd", "vtysh", "gobgpd", "gobgp"]) {
        return;
    }
    let mut lab = Lab::standard().unwrap();
    lab.start_gobgp(
        "rtr",
        ROUTER_AS,
        &[Neighbor {
            address: lab.host("n2").ipv4,
            asn: 64502,
        }],
    )
    .unwrap();
    let vty = lab
        .start_frr_bgpd(
            "n2",
            "frr defaults traditional\nhostname n2\nrouter bgp 64502\n bgp router-id 192.0.2.12\n no bgp ebgp-requires-policy\n no bgp network import-check\n neighbor 192.0.2.1 remote-as 64500\n address-family ipv4 unicast\n  network 203.0.113.128/25\n exit-address-family\n",
        )
        .unwrap();
    let established = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
        lab.gobgp("rtr", &["neighbor"])
            .contains("Establ")
            .then_some(())
    });
    assert!(
        established.is_some(),
        "FRR never established with GoBGP\n{}\n{}",
        lab.vtysh("n2", &vty, "show bgp summary"),
        lab.logs()
    );
    let route = wait_until(Duration::from_secs(10), Duration::from_millis(250), || {
        lab.gobgp("rtr", &["global", "rib"])
            .contains("203.0.113.128/25")
            .then_some(())
    });
    assert!(route.is_some(), "GoBGP never learnt FRR's route");
    assert!(
        lab.vtysh("n2", &vty, "show bgp summary")
            .contains("192.0.2.1")
    );
}

#[test]
fn a_dropped_lab_leaves_nothing_behind() {
    if !lab_available(&["ip", "bird"]) {
        return;
    }
    let mut lab = Lab::standard().unwrap();
    lab.start_bird("n3", "").unwrap();
    let pid = lab.spawn("n1", "sleeper", &["sleep", "600"]).unwrap().pid();
    let namespaces = lab.namespaces();
    assert_eq!(namespaces.len(), 6, "{namespaces:?}");
    let dir = lab.dir().to_path_buf();
    let prefix = lab.prefix.clone();
    drop(lab);
    let listed = String::from_utf8_lossy(
        &std::process::Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!listed.contains(&prefix), "namespaces left: {listed}");
    assert!(!dir.exists());
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "process {pid} left running"
    );
    let birds = String::from_utf8_lossy(
        &std::process::Command::new("pgrep")
            .args(["-f", &prefix])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(birds.trim().is_empty(), "processes left: {birds}");
}
