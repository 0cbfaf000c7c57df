//! FerroLB's own BGP (`ferrolbctl bgp announce`) against real routers in the lab: the
//! session comes up, every route arrives with its next hop and communities, and a refusal is
//! reported in words.
use ferrolb_e2e::{Lab, Neighbor, lab_available, wait_until};
use std::time::Duration;

const ROUTER_AS: u32 = 64500;
const NODE_AS: u32 = 64501;

/// `ferrolbctl bgp announce` on n1 towards the router, with `extra` arguments.
fn announce(lab: &mut Lab, peer_as: u32, extra: &[&str]) {
    let ctl = ferrolb_e2e::standalone::binary("ferrolbctl");
    let peer_as = peer_as.to_string();
    let local_as = NODE_AS.to_string();
    let mut args = vec![
        ctl.to_str().expect("a UTF-8 path"),
        "bgp",
        "announce",
        "--peer",
        "192.0.2.1",
        "--peer-as",
        &peer_as,
        "--local-as",
        &local_as,
        "--local-address",
        "192.0.2.11",
    ];
    args.extend_from_slice(extra);
    lab.spawn("n1", "ferrolbctl", &args)
        .expect("starting ferrolbctl");
}

fn announced_log(lab: &mut Lab) -> String {
    lab.daemon("n1", "ferrolbctl").expect("started").output()
}

#[test]
fn bird_receives_every_route_with_its_next_hop_and_communities() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let bird = lab
        .start_bird(
            "rtr",
            &format!(
                "protocol bgp n1 {{ local 192.0.2.1 as {ROUTER_AS}; neighbor 192.0.2.11 as {NODE_AS}; \
                 ipv4 {{ import all; export none; }}; }}"
            ),
        )
        .expect("BIRD starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &[
            "--count",
            "1000",
            "--from",
            "198.51.100.0",
            "--community",
            "64501:100",
            "--large-community",
            "64501:1:2",
        ],
    );
    let eor = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        announced_log(&mut lab)
            .contains("End-of-RIB sent: 1000 routes")
            .then_some(())
    });
    assert!(eor.is_some(), "no End-of-RIB\n{}", lab.logs());
    let all = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let count = lab.birdc("rtr", &bird, "show route count");
        count.contains("1000 of 1000 routes").then_some(count)
    });
    assert!(
        all.is_some(),
        "BIRD holds {}\n{}",
        lab.birdc("rtr", &bird, "show route count"),
        lab.logs()
    );
    let route = lab.birdc("rtr", &bird, "show route 198.51.100.7/32 all");
    for wanted in [
        "via 192.0.2.11",
        "BGP.as_path: 64501",
        "BGP.next_hop: 192.0.2.11",
        "BGP.community: (64501,100)",
        "BGP.large_community: (64501, 1, 2)",
    ] {
        assert!(route.contains(wanted), "missing {wanted:?} in\n{route}");
    }
    assert!(announced_log(&mut lab).contains("established with AS 64500"));
}

#[test]
fn gobgp_receives_the_routes() {
    if !lab_available(&["ip", "gobgpd", "gobgp"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let n1 = lab.host("n1").ipv4;
    lab.start_gobgp(
        "rtr",
        ROUTER_AS,
        &[Neighbor {
            address: n1,
            asn: NODE_AS,
        }],
    )
    .expect("GoBGP starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &[
            "--count",
            "50",
            "--from",
            "203.0.113.0",
            "--community",
            "64501:7",
        ],
    );
    let rib = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
        let rib = lab.gobgp("rtr", &["global", "rib"]);
        (rib.contains("203.0.113.49/32") && rib.contains("203.0.113.0/32")).then_some(rib)
    });
    let Some(rib) = rib else {
        panic!(
            "GoBGP never held the routes: {}\n{}",
            lab.gobgp("rtr", &["global", "rib"]),
            lab.logs()
        );
    };
    let line = rib
        .lines()
        .find(|l| l.contains("203.0.113.7/32"))
        .expect("the route's line");
    assert!(
        line.contains("192.0.2.11") && line.contains("64501"),
        "{line}"
    );
    assert!(line.contains("64501:7"), "community missing: {line}");
}

#[test]
fn a_refusal_is_reported_in_words_with_a_failing_exit() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    lab.start_bird(
        "rtr",
        &format!(
            "protocol bgp n1 {{ local 192.0.2.1 as {ROUTER_AS}; neighbor 192.0.2.11 as 64999; \
             ipv4 {{ import all; export none; }}; }}"
        ),
    )
    .expect("BIRD starts");
    // We say we are AS 64501; BIRD expects 64999 and refuses with OPEN error 2/2.
    announce(&mut lab, ROUTER_AS, &[]);
    let refused = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let log = announced_log(&mut lab);
        log.contains("peer refused").then_some(log)
    });
    let Some(log) = refused else {
        panic!("no refusal\n{}", lab.logs());
    };
    assert!(
        log.contains("peer refused: OPEN error, bad peer AS (2/2)"),
        "{log}"
    );
    let exited = wait_until(Duration::from_secs(5), Duration::from_millis(100), || {
        lab.daemon("n1", "ferrolbctl")
            .expect("started")
            .try_exit_code()
    });
    assert_eq!(exited, Some(Some(1)), "exit status");
}
