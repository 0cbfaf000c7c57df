//! FerroLB's own BGP (`ferrolbctl bgp announce`) against real routers in the lab: the
//! session comes up, every route arrives with its next hop and communities, and a refusal is
//! reported in words.
use ferrolb_e2e::{Lab, NODE_AS, Neighbor, ROUTER_AS, lab_available, wait_until};
use std::time::Duration;

/// `ferrolbctl bgp announce` on n1 towards the router at 192.0.2.1, with `extra` arguments.
fn announce(lab: &mut Lab, peer_as: u32, extra: &[&str]) {
    lab.start_announce("ferrolbctl", "192.0.2.1", peer_as, extra)
        .expect("starting ferrolbctl");
}

fn announced_log(lab: &mut Lab) -> String {
    lab.daemon("n1", "ferrolbctl").expect("started").output()
}

/// Opens a TCP connection from the router to port 179 on n1, writes the bytes given in hex,
/// and returns what came back (hex) before the speaker closed it.
fn tcp_send(lab: &Lab, hex: &str) -> String {
    let labtool = ferrolb_e2e::standalone::binary("labtool");
    let labtool = labtool.to_str().expect("a UTF-8 path");
    lab.exec("rtr", &[labtool, "tcp-send", "192.0.2.11:179", hex])
        .expect("labtool tcp-send")
        .trim()
        .to_string()
}

const MARKER: &str = "ffffffffffffffffffffffffffffffff";

#[test]
fn bird_receives_every_route_with_its_next_hop_and_communities() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
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
    assert!(
        lab.bird_holds(&bird, 1000, Duration::from_secs(10)),
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
fn gobgp_receives_the_routes_whichever_side_connects() {
    if !lab_available(&["ip", "gobgpd", "gobgp"]) {
        return;
    }
    for mode in [&[][..], &["--passive"][..]] {
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
        let mut args = vec![
            "--count",
            "50",
            "--from",
            "203.0.113.0",
            "--community",
            "64501:7",
        ];
        args.extend_from_slice(mode);
        announce(&mut lab, ROUTER_AS, &args);
        let rib = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            let rib = lab.gobgp("rtr", &["global", "rib"]);
            (rib.contains("203.0.113.49/32") && rib.contains("203.0.113.0/32")).then_some(rib)
        });
        let Some(rib) = rib else {
            panic!(
                "{mode:?}: GoBGP never held the routes: {}\n{}",
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
            "{mode:?}: {line}"
        );
        assert!(
            line.contains("64501:7"),
            "{mode:?}: community missing: {line}"
        );
    }
}

#[test]
fn a_refusal_is_reported_in_words_with_a_failing_exit() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    lab.start_bird_receiver(64999, "", "").expect("BIRD starts");
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

#[test]
fn frr_receives_ipv6_routes_over_an_ipv6_session_whichever_side_connects() {
    if !lab_available(&["ip", "bgpd", "vtysh"]) {
        return;
    }
    for mode in [&[][..], &["--passive"][..]] {
        let mut lab = Lab::standard().expect("the lab starts");
        let vty = lab
            .start_frr_bgpd(
                "rtr",
                &format!(
                    "frr defaults traditional\nhostname rtr\nrouter bgp {ROUTER_AS}\n bgp router-id 192.0.2.1\n \
                     no bgp ebgp-requires-policy\n neighbor 2001:db8::11 remote-as {NODE_AS}\n \
                     neighbor 2001:db8::11 timers connect 1\n address-family ipv6 unicast\n  \
                     neighbor 2001:db8::11 activate\n exit-address-family\n"
                ),
            )
            .expect("FRR starts");
        let mut args = vec![
            "--local-address",
            "2001:db8::11",
            "--router-id",
            "192.0.2.11",
            "--count",
            "20",
            "--from",
            "2001:db8:100::",
            "--large-community",
            "64501:3:4",
        ];
        args.extend_from_slice(mode);
        lab.start_announce("ferrolbctl", "2001:db8::1", ROUTER_AS, &args)
            .expect("starting ferrolbctl");
        let routes = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
            let table = lab.vtysh("rtr", &vty, "show bgp ipv6 unicast");
            (table.contains("2001:db8:100::13/128") && table.contains("2001:db8:100::/128"))
                .then_some(table)
        });
        assert!(
            routes.is_some(),
            "{mode:?}: FRR never held the routes: {}\n{}",
            lab.vtysh("rtr", &vty, "show bgp ipv6 unicast"),
            lab.logs()
        );
        let route = lab.vtysh("rtr", &vty, "show bgp ipv6 unicast 2001:db8:100::7/128");
        assert!(
            route.contains("2001:db8::11"),
            "{mode:?}: next hop: {route}"
        );
        assert!(
            route.contains("64501:3:4"),
            "{mode:?}: large community: {route}"
        );
    }
}

#[test]
fn frr_receives_ipv4_routes_over_an_ipv6_session_with_extended_next_hop() {
    if !lab_available(&["ip", "bgpd", "vtysh"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let vty = lab
        .start_frr_bgpd(
            "rtr",
            &format!(
                "frr defaults traditional\nhostname rtr\nrouter bgp {ROUTER_AS}\n bgp router-id 192.0.2.1\n \
                 no bgp ebgp-requires-policy\n neighbor 2001:db8::11 remote-as {NODE_AS}\n \
                 neighbor 2001:db8::11 timers connect 1\n \
                 neighbor 2001:db8::11 capability extended-nexthop\n address-family ipv4 unicast\n  \
                 neighbor 2001:db8::11 activate\n exit-address-family\n"
            ),
        )
        .expect("FRR starts");
    lab.start_announce(
        "ferrolbctl",
        "2001:db8::1",
        ROUTER_AS,
        &[
            "--local-address",
            "2001:db8::11",
            "--router-id",
            "192.0.2.11",
            "--count",
            "20",
            "--from",
            "198.51.100.0",
        ],
    )
    .expect("starting ferrolbctl");
    let routes = wait_until(Duration::from_secs(30), Duration::from_millis(250), || {
        let table = lab.vtysh("rtr", &vty, "show bgp ipv4 unicast");
        (table.contains("198.51.100.0/32") && table.contains("198.51.100.19/32")).then_some(table)
    });
    assert!(
        routes.is_some(),
        "FRR never held the routes: {}\n{}\n{}",
        lab.vtysh("rtr", &vty, "show bgp ipv4 unicast"),
        lab.vtysh("rtr", &vty, "show bgp neighbors 2001:db8::11"),
        lab.logs()
    );
    // An IPv4 route whose next hop is our IPv6 address (RFC 8950).
    let route = lab.vtysh("rtr", &vty, "show bgp ipv4 unicast 198.51.100.7/32");
    assert!(route.contains("2001:db8::11"), "next hop: {route}");
    let neighbor = lab.vtysh("rtr", &vty, "show bgp neighbors 2001:db8::11");
    assert!(
        neighbor.contains("Extended nexthop: advertised and received"),
        "{neighbor}"
    );
}

#[test]
fn an_internal_peer_gets_local_pref_and_the_graceful_shutdown_community() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    // Both in AS 64500: iBGP.
    let bird = lab
        .start_bird_receiver(ROUTER_AS, "", "")
        .expect("BIRD starts");
    let local_as = ROUTER_AS.to_string();
    announce(
        &mut lab,
        ROUTER_AS,
        &[
            "--local-as",
            &local_as,
            "--count",
            "3",
            "--from",
            "198.51.100.0",
            "--local-pref",
            "150",
            "--community",
            "graceful-shutdown",
        ],
    );
    assert!(
        lab.bird_holds(&bird, 3, Duration::from_secs(30)),
        "{}",
        lab.logs()
    );
    let route = lab.birdc("rtr", &bird, "show route 198.51.100.1/32 all");
    for wanted in [
        "BGP.local_pref: 150",
        "BGP.community: (65535,0)",
        "BGP.next_hop: 192.0.2.11",
    ] {
        assert!(route.contains(wanted), "missing {wanted:?} in\n{route}");
    }
    assert!(
        !route.contains("BGP.as_path: 6"),
        "an internal route has an empty AS path: {route}"
    );
}

#[test]
fn the_session_returns_after_the_peer_restarts() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &["--count", "10", "--from", "198.51.100.0"],
    );
    assert!(
        lab.bird_holds(&bird, 10, Duration::from_secs(30)),
        "{}",
        lab.logs()
    );
    // The router's BGP dies and comes back.
    lab.daemon("rtr", "bird").expect("started").kill();
    let down = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        announced_log(&mut lab)
            .contains("session down")
            .then_some(())
    });
    assert!(down.is_some(), "{}", announced_log(&mut lab));
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts again");
    assert!(
        lab.bird_holds(&bird, 10, Duration::from_secs(30)),
        "{}\n{}",
        lab.birdc("rtr", &bird, "show protocols all n1"),
        lab.logs()
    );
    assert_eq!(
        announced_log(&mut lab)
            .matches("established with AS 64500")
            .count(),
        2,
        "{}",
        announced_log(&mut lab)
    );
}

#[test]
fn a_passive_session_accepts_birds_connection() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &["--passive", "--count", "10", "--from", "198.51.100.0"],
    );
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts");
    assert!(
        lab.bird_holds(&bird, 10, Duration::from_secs(30)),
        "{}\n{}",
        lab.birdc("rtr", &bird, "show protocols all n1"),
        lab.logs()
    );
}

#[test]
fn our_hold_timer_drops_a_silent_peer() {
    if !lab_available(&["ip", "bird", "birdc", "nft"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    lab.start_bird_receiver(NODE_AS, "", "hold time 240;")
        .expect("BIRD starts");
    announce(&mut lab, ROUTER_AS, &["--hold-time", "3"]);
    let up = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        announced_log(&mut lab)
            .contains("established")
            .then_some(())
    });
    assert!(up.is_some(), "{}", lab.logs());
    // The router goes silent: everything it sends on port 179 is dropped.
    for rule in [
        vec!["nft", "add", "table", "inet", "silence"],
        vec![
            "nft",
            "add",
            "chain",
            "inet",
            "silence",
            "out",
            "{ type filter hook output priority 0; }",
        ],
        vec![
            "nft", "add", "rule", "inet", "silence", "out", "tcp", "sport", "179", "drop",
        ],
    ] {
        lab.exec("rtr", &rule).expect("nftables");
    }
    let dropped = wait_until(Duration::from_secs(8), Duration::from_millis(100), || {
        let log = announced_log(&mut lab);
        log.contains("session down: sent hold timer expired (4/0)")
            .then_some(())
    });
    assert!(dropped.is_some(), "{}", announced_log(&mut lab));
}

#[test]
fn a_malformed_message_gets_its_notification_and_the_speaker_goes_on() {
    if !lab_available(&["ip"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    announce(&mut lab, ROUTER_AS, &["--passive"]);
    std::thread::sleep(Duration::from_millis(500));
    let send = tcp_send;
    let marker = MARKER;
    // A header whose marker is broken: 1/1 (connection not synchronized).
    // (Each reply starts with our OPEN: a passive speaker sends it on accepting.)
    let reply = send(&lab, &format!("00{}001304", &marker[2..]));
    assert!(
        reply.ends_with(&format!("{marker}0015030101")),
        "got {reply}"
    );
    // An OPEN of version 3: 2/1 with the version we speak (4).
    let reply = send(&lab, &format!("{marker}001d0103fc1400b4c00002010000"));
    assert!(
        reply.ends_with(&format!("{marker}00170302010004")),
        "got {reply}"
    );
    // A message type that does not exist: 1/3 with the type.
    let reply = send(&lab, &format!("{marker}001309"));
    assert!(
        reply.ends_with(&format!("{marker}001603010309")),
        "got {reply}"
    );
    // The speaker is still there for the next peer.
    assert!(
        lab.daemon("n1", "ferrolbctl")
            .expect("started")
            .try_exit_code()
            .is_none(),
        "ferrolbctl exited\n{}",
        lab.logs()
    );
}

#[test]
fn a_malformed_optional_attribute_is_treated_as_withdraw_and_the_session_stays() {
    if !lab_available(&["ip"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    announce(&mut lab, ROUTER_AS, &["--passive"]);
    std::thread::sleep(Duration::from_millis(500));
    // A peer without capabilities (2-octet AS 64500, id 192.0.2.1) opens a session, then
    // sends an UPDATE for 198.51.100.5/32 whose MED is 3 bytes long, then a KEEPALIVE.
    let open = format!("{MARKER}001d0104fbf400b4c000020100");
    let keepalive = format!("{MARKER}001304");
    let update = format!(
        "{MARKER}0034020000001840010100400204 0201fbf4 400304c0000201 800403000001 20c6336405"
    )
    .replace(' ', "");
    let reply = tcp_send(&lab, &format!("{open}{keepalive}{update}{keepalive}"));
    // What came back, message by message: our OPEN, KEEPALIVE and End-of-RIB, and no
    // NOTIFICATION (type 3) until the client hung up.
    let mut types = Vec::new();
    let mut rest = reply.as_str();
    while rest.len() >= 38 {
        let length = usize::from_str_radix(&rest[32..36], 16).expect("a length") * 2;
        types.push(u8::from_str_radix(&rest[36..38], 16).expect("a type"));
        rest = &rest[length.min(rest.len())..];
    }
    assert!(
        types.starts_with(&[1, 4]) && !types.contains(&3),
        "types {types:?} in {reply}"
    );
    // The session stayed until the client went away after 3 s (which the speaker may log a
    // moment after the client has returned).
    let log = wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
        let log = announced_log(&mut lab);
        log.contains("session down").then_some(log)
    })
    .unwrap_or_else(|| announced_log(&mut lab));
    assert!(
        log.contains("peer sent a malformed attribute (type 4): UPDATE error, attribute length error (3/5), treated as withdraw"),
        "{log}"
    );
    assert!(log.contains("established"), "{log}");
    assert!(log.contains("session down: connection lost"), "{log}");
    assert!(!log.contains("session down: sent"), "{log}");
}

#[test]
fn md5_signatures_let_the_right_password_in_and_keep_a_wrong_one_out() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    for (password, comes_up) in [("s3cret", true), ("wrong", false)] {
        let mut lab = Lab::standard().expect("the lab starts");
        let bird = lab
            .start_bird_receiver(NODE_AS, "", r#"password "s3cret";"#)
            .expect("BIRD starts");
        announce(
            &mut lab,
            ROUTER_AS,
            &[
                "--password",
                password,
                "--count",
                "3",
                "--from",
                "198.51.100.0",
            ],
        );
        let timeout = Duration::from_secs(if comes_up { 30 } else { 6 });
        assert_eq!(
            lab.bird_holds(&bird, 3, timeout),
            comes_up,
            "password {password}: {}\n{}",
            lab.birdc("rtr", &bird, "show protocols all n1"),
            lab.logs()
        );
    }
}

#[test]
fn gtsm_lets_a_directly_connected_peer_in_and_only_with_ttl_255() {
    if !lab_available(&["ip", "bgpd", "vtysh"]) {
        return;
    }
    for (gtsm, comes_up) in [(true, true), (false, false)] {
        let mut lab = Lab::standard().expect("the lab starts");
        let vty = lab
            .start_frr_bgpd(
                "rtr",
                &format!(
                    "frr defaults traditional\nhostname rtr\nrouter bgp {ROUTER_AS}\n bgp router-id 192.0.2.1\n \
                     no bgp ebgp-requires-policy\n neighbor 192.0.2.11 remote-as {NODE_AS}\n \
                     neighbor 192.0.2.11 ttl-security hops 1\n neighbor 192.0.2.11 timers connect 1\n"
                ),
            )
            .expect("FRR starts");
        let mut extra = vec!["--count", "2", "--from", "198.51.100.0"];
        if gtsm {
            extra.push("--gtsm");
        }
        announce(&mut lab, ROUTER_AS, &extra);
        let timeout = Duration::from_secs(if comes_up { 30 } else { 6 });
        let routes = wait_until(timeout, Duration::from_millis(250), || {
            lab.vtysh("rtr", &vty, "show bgp ipv4 unicast")
                .contains("198.51.100.1/32")
                .then_some(())
        });
        assert_eq!(
            routes.is_some(),
            comes_up,
            "gtsm {gtsm}: {}\n{}",
            lab.vtysh("rtr", &vty, "show bgp summary"),
            lab.logs()
        );
    }
}

/// BIRD without 4-octet AS support (RFC 6793): it sends no AS4 capability, so the session
/// carries 2-octet AS_PATHs. (AS_TRANS and AS4_PATH for a 4-octet AS are covered by the codec's
/// tests: BIRD refuses a 4-octet peer AS once AS4 is off, even as AS_TRANS.)
#[test]
fn a_two_octet_peer_gets_two_octet_as_paths() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "enable as4 off;")
        .expect("BIRD starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &["--count", "2", "--from", "198.51.100.0"],
    );
    let route = wait_until(Duration::from_secs(30), Duration::from_millis(100), || {
        let route = lab.birdc("rtr", &bird, "show route 198.51.100.1/32 all");
        route.contains("BGP.as_path").then_some(route)
    });
    let Some(route) = route else {
        panic!(
            "{}\n{}",
            lab.birdc("rtr", &bird, "show protocols all n1"),
            lab.logs()
        );
    };
    assert!(route.contains("BGP.as_path: 64501"), "{route}");
    // BIRD lists what the session uses on its "Session:" line ("AS4" when negotiated).
    let protocols = lab.birdc("rtr", &bird, "show protocols all n1");
    let session = protocols
        .lines()
        .find(|l| l.trim_start().starts_with("Session:"))
        .unwrap_or_default();
    assert!(
        session.contains("external") && !session.contains("AS4"),
        "BIRD negotiated 4-octet ASNs after all: {protocols}"
    );
}

#[test]
fn a_changed_routes_file_sends_only_the_difference() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts");
    let file = lab.dir().join("routes");
    let routes = |range: std::ops::Range<u32>| -> String {
        range
            .map(|n| format!("198.51.{}.{}/32\n", 100 + n / 256, n % 256))
            .collect()
    };
    std::fs::write(&file, routes(0..100)).expect("writing routes");
    let path = file.to_str().expect("a UTF-8 path");
    announce(&mut lab, ROUTER_AS, &["--routes", path]);
    assert!(
        lab.bird_holds(&bird, 100, Duration::from_secs(30)),
        "{}",
        lab.logs()
    );
    // BIRD's counters of routes received: (updates, withdraws).
    let received = |lab: &Lab| -> (u64, u64) {
        let protocol = lab.birdc("rtr", &bird, "show protocols all n1");
        let count = |label: &str| {
            protocol
                .lines()
                .find(|l| l.trim_start().starts_with(label))
                .and_then(|l| l.split_whitespace().nth(2)?.parse().ok())
                .unwrap_or_else(|| panic!("no {label} in {protocol}"))
        };
        (count("Import updates:"), count("Import withdraws:"))
    };
    assert_eq!(received(&lab), (100, 0));
    // One route goes, one comes: one withdrawn and one announced, nothing else sent.
    std::fs::write(&file, routes(1..101)).expect("writing routes");
    lab.daemon("n1", "ferrolbctl").expect("started").hang_up();
    let changed = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (received(&lab) == (101, 1)).then_some(())
    });
    assert!(changed.is_some(), "{:?}\n{}", received(&lab), lab.logs());
    let route = lab.birdc("rtr", &bird, "show route 198.51.100.100/32");
    assert!(route.contains("198.51.100.100/32"), "{route}");
    assert!(lab.bird_holds(&bird, 100, Duration::from_secs(1)));
    assert!(
        announced_log(&mut lab).contains("sent 2 messages: 1 routes announced, 1 withdrawn"),
        "{}",
        announced_log(&mut lab)
    );
    // A broken file keeps what is announced.
    std::fs::write(&file, "198.51.100.1/32\nnot a prefix\n").expect("writing routes");
    lab.daemon("n1", "ferrolbctl").expect("started").hang_up();
    let kept = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        announced_log(&mut lab)
            .contains("keeping the routes announced: not a prefix: not a prefix")
            .then_some(())
    });
    assert!(kept.is_some(), "{}", announced_log(&mut lab));
    assert_eq!(received(&lab), (101, 1));
    assert!(lab.bird_holds(&bird, 100, Duration::from_secs(1)));
}

#[test]
fn a_route_refresh_request_gets_the_routes_again() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &["--count", "10", "--from", "198.51.100.0"],
    );
    assert!(
        lab.bird_holds(&bird, 10, Duration::from_secs(30)),
        "{}",
        lab.logs()
    );
    let updates = |lab: &Lab| -> String {
        let protocol = lab.birdc("rtr", &bird, "show protocols all n1");
        let line = protocol
            .lines()
            .find(|l| l.trim_start().starts_with("Import updates:"));
        line.unwrap_or_default()
            .split_whitespace()
            .nth(2)
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(updates(&lab), "10");
    // BIRD asks for our routes again (enhanced refresh: between its markers, RFC 7313).
    let reload = lab.birdc("rtr", &bird, "reload in n1");
    let again = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        (updates(&lab) == "20").then_some(())
    });
    assert!(
        again.is_some(),
        "{reload}\n{}",
        lab.birdc("rtr", &bird, "show protocols all n1")
    );
    assert!(lab.bird_holds(&bird, 10, Duration::from_secs(1)));
    // The markers and one UPDATE.
    assert!(
        announced_log(&mut lab).contains("sent 3 messages: 10 routes announced"),
        "{}",
        announced_log(&mut lab)
    );
}

#[test]
fn stopping_withdraws_every_route() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &["--count", "100", "--from", "198.51.100.0"],
    );
    assert!(
        lab.bird_holds(&bird, 100, Duration::from_secs(30)),
        "{}",
        lab.logs()
    );
    lab.daemon("n1", "ferrolbctl").expect("started").terminate();
    assert!(
        lab.bird_holds(&bird, 0, Duration::from_secs(5)),
        "{}\n{}",
        lab.birdc("rtr", &bird, "show protocols all n1"),
        lab.logs()
    );
    assert!(
        lab.birdc("rtr", &bird, "show protocols all n1")
            .contains("Administrative shutdown"),
        "the Cease reached BIRD: {}",
        lab.birdc("rtr", &bird, "show protocols all n1")
    );
}

#[test]
fn both_sides_connecting_end_in_one_session_and_a_further_connection_is_refused() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    // BIRD connects as well as listens; so does FerroLB with --listen. Whichever connections
    // meet, one session results.
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts");
    announce(
        &mut lab,
        ROUTER_AS,
        &["--listen", "--count", "10", "--from", "198.51.100.0"],
    );
    assert!(
        lab.bird_holds(&bird, 10, Duration::from_secs(30)),
        "{}\n{}",
        lab.birdc("rtr", &bird, "show protocols all n1"),
        lab.logs()
    );
    let downs = announced_log(&mut lab).matches("session down").count();
    // Another connection from the peer's address while the session is up: a Cease,
    // connection collision resolution (6/7), on that connection only.
    let open = format!("{MARKER}001d0104fbf400b4c000020100");
    let reply = tcp_send(&lab, &open);
    assert!(
        reply.ends_with(&format!("{MARKER}0015030607")),
        "got {reply}"
    );
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        announced_log(&mut lab).matches("session down").count(),
        downs,
        "{}",
        announced_log(&mut lab)
    );
    assert!(lab.bird_holds(&bird, 10, Duration::from_secs(1)));
    assert!(
        lab.birdc("rtr", &bird, "show protocols n1")
            .contains("Established"),
        "{}",
        lab.birdc("rtr", &bird, "show protocols all n1")
    );
}

#[test]
fn an_external_peer_one_router_away_needs_ebgp_multihop() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    // The peer (BIRD on cli) speaks from 203.0.113.100, which n1 reaches through the router:
    // one forwarding hop, so a TTL of 1 dies there. No redirects, or n1 would learn the
    // short way round.
    for (host, command) in [
        ("cli", "ip addr add 203.0.113.100/32 dev lo"),
        ("cli", "ip link set lo up"),
        ("rtr", "sysctl -qw net.ipv4.ip_forward=1"),
        ("rtr", "ip route add 203.0.113.100/32 via 192.0.2.100"),
        ("rtr", "sysctl -qw net.ipv4.conf.all.send_redirects=0"),
        ("rtr", "sysctl -qw net.ipv4.conf.default.send_redirects=0"),
        ("n1", "sysctl -qw net.ipv4.conf.all.accept_redirects=0"),
        ("n1", "ip route add 203.0.113.100/32 via 192.0.2.1"),
    ] {
        lab.exec(host, &command.split(' ').collect::<Vec<_>>())
            .expect(command);
    }
    for interface in lab
        .exec("rtr", &["ls", "/proc/sys/net/ipv4/conf"])
        .expect("ls")
        .split_whitespace()
    {
        let key = format!("net.ipv4.conf.{interface}.send_redirects=0");
        lab.exec("rtr", &["sysctl", "-qw", &key]).expect("sysctl");
    }
    let bird = lab
        .start_bird(
            "cli",
            &format!(
                "protocol bgp n1 {{ local 203.0.113.100 as {ROUTER_AS}; neighbor 192.0.2.11 as {NODE_AS}; \
                 multihop 2; connect retry time 1; ipv4 {{ import all; export none; }}; }}"
            ),
        )
        .expect("BIRD starts");
    let holds = |lab: &Lab, timeout| {
        wait_until(timeout, Duration::from_millis(100), || {
            lab.birdc("cli", &bird, "show route count")
                .contains("3 of 3 routes")
                .then_some(())
        })
        .is_some()
    };
    let args = ["--count", "3", "--from", "198.51.100.0"];
    // Without it: TTL 1, as for a directly connected neighbour, and nothing arrives.
    lab.start_announce("direct", "203.0.113.100", ROUTER_AS, &args)
        .expect("starting ferrolbctl");
    assert!(!holds(&lab, Duration::from_secs(5)), "{}", lab.logs());
    lab.daemon("n1", "direct").expect("started").terminate();
    let mut multihop = args.to_vec();
    multihop.push("--ebgp-multihop");
    lab.start_announce("multihop", "203.0.113.100", ROUTER_AS, &multihop)
        .expect("starting ferrolbctl");
    assert!(
        holds(&lab, Duration::from_secs(30)),
        "{}\n{}",
        lab.birdc("cli", &bird, "show protocols all n1"),
        lab.logs()
    );
}

#[test]
fn with_graceful_restart_the_peer_keeps_our_routes_across_our_restart_until_end_of_rib() {
    if !lab_available(&["ip", "bird", "birdc"]) {
        return;
    }
    let mut lab = Lab::standard().expect("the lab starts");
    // BIRD helps restarting peers by default ("graceful restart aware").
    let bird = lab
        .start_bird_receiver(NODE_AS, "", "")
        .expect("BIRD starts");
    let routes = |count: &'static str| ["--count", count, "--from", "198.51.100.0"];
    let count = |lab: &Lab| lab.birdc("rtr", &bird, "show route count");

    // Without it, the routes go with the process.
    lab.start_announce("plain", "192.0.2.1", ROUTER_AS, &routes("10"))
        .expect("starting ferrolbctl");
    assert!(
        lab.bird_holds(&bird, 10, Duration::from_secs(30)),
        "{}",
        lab.logs()
    );
    lab.daemon("n1", "plain").expect("started").kill();
    assert!(
        lab.bird_holds(&bird, 0, Duration::from_secs(10)),
        "{}",
        count(&lab)
    );

    // With it, a killed process's routes stay while it comes back...
    let mut gr = routes("10").to_vec();
    gr.push("--graceful-restart");
    lab.start_announce("first", "192.0.2.1", ROUTER_AS, &gr)
        .expect("starting ferrolbctl");
    assert!(
        lab.bird_holds(&bird, 10, Duration::from_secs(30)),
        "{}",
        lab.logs()
    );
    lab.daemon("n1", "first").expect("started").kill();
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = count(&lab);
        assert!(now.contains("10 of 10 routes"), "a route went: {now}");
    }
    // ... and the restarted one's End-of-RIB ends them: it announces 5 of the 10 now, so
    // the other 5 (stale) go.
    let mut again = routes("5").to_vec();
    again.push("--graceful-restart");
    lab.start_announce("second", "192.0.2.1", ROUTER_AS, &again)
        .expect("starting ferrolbctl");
    assert!(
        lab.bird_holds(&bird, 5, Duration::from_secs(30)),
        "{}\n{}",
        count(&lab),
        lab.logs()
    );
    // BIRD saw the R bit (restarted) and the F bits (forwarding kept) in the OPEN.
    let protocol = lab.birdc("rtr", &bird, "show protocols all n1");
    assert!(
        protocol.contains("Restart recovery") && protocol.contains("AF preserved: ipv4"),
        "{protocol}"
    );
}
