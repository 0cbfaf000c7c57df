//! Messages captured from BIRD, FRR and GoBGP (see `fixtures/README.md`): each decodes, with
//! what the router was configured to send, and decodes the same after we encode it again.
use ferrolb_bgp::packet::{Capability, Context, Family, Message, decode};
use std::net::Ipv4Addr;

fn messages(text: &str) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            name = comment.to_string();
        } else if !line.trim().is_empty() {
            let bytes = (0..line.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&line[i..i + 2], 16).expect("hex"))
                .collect();
            out.push((name.clone(), bytes));
        }
    }
    out
}

/// Checks every message of a capture; returns the OPEN and the prefixes announced.
fn check(capture: &str) -> (ferrolb_bgp::packet::Open, Vec<String>) {
    let mut open = None;
    let mut announced = Vec::new();
    for (name, bytes) in messages(capture) {
        let ctx = Context {
            four_octet_as: true,
            ibgp: false,
        };
        let message = decode(&bytes, &ctx).unwrap_or_else(|e| panic!("{name}: {e}"));
        let again = decode(&message.encode(&ctx), &ctx).expect("what we encode decodes");
        assert_eq!(again, message, "{name}: changed by a round trip");
        match message {
            Message::Open(o) => open = Some(o),
            Message::Update(u) => {
                assert!(u.problems.is_empty(), "{name}: {:?}", u.problems);
                announced.extend(u.announced().map(ToString::to_string));
            }
            Message::Keepalive => assert_eq!(bytes.len(), 19),
            other => panic!("{name}: unexpected {other:?}"),
        }
    }
    (open.expect("an OPEN"), announced)
}

fn common_open_checks(open: &ferrolb_bgp::packet::Open) {
    assert_eq!(open.asn(), 64500);
    assert_eq!(open.identifier, Ipv4Addr::new(192, 0, 2, 1));
    assert!(open.families().contains(&Family::IPV4_UNICAST));
    assert!(open.capabilities.contains(&Capability::FourOctetAs(64500)));
}

#[test]
fn bird() {
    let (open, announced) = check(include_str!("fixtures/bird.hex"));
    common_open_checks(&open);
    assert_eq!(open.hold_time, 240);
    assert!(announced.contains(&"203.0.113.0/24".to_string()));
    assert!(announced.contains(&"198.51.100.128/25".to_string()));
}

#[test]
fn frr() {
    let (open, announced) = check(include_str!("fixtures/frr.hex"));
    common_open_checks(&open);
    assert!(announced.contains(&"203.0.113.0/24".to_string()));
    assert!(announced.contains(&"198.51.100.128/25".to_string()));
}

#[test]
fn gobgp() {
    let (open, announced) = check(include_str!("fixtures/gobgp.hex"));
    common_open_checks(&open);
    assert_eq!(announced, vec!["203.0.113.0/24".to_string()]);
}
