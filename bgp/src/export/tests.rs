//! The export state decides what goes on the wire: each test decodes the UPDATEs it
//! produced.
use super::*;
use crate::packet::{AsPathSegment, Context, Message, Origin, SegmentType, decode};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

fn negotiated(families: &[Family], extended_next_hop: bool) -> Negotiated {
    Negotiated {
        peer_as: 64500,
        peer_id: Ipv4Addr::new(192, 0, 2, 1),
        hold_time: 90,
        keepalive: Some(Duration::from_secs(30)),
        context: Context {
            four_octet_as: true,
            ibgp: false,
        },
        families: families.to_vec(),
        route_refresh: true,
        enhanced_route_refresh: false,
        extended_next_hop,
        peer_graceful_restart: None,
    }
}

fn both() -> Negotiated {
    negotiated(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST], false)
}

fn path(community: u32) -> Arc<Path> {
    Arc::new(Path {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![AsPathSegment {
                kind: SegmentType::Sequence,
                asns: vec![64501],
            }]),
            communities: vec![community],
            ..Attributes::default()
        },
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 11))),
    })
}

fn v6_path() -> Arc<Path> {
    Arc::new(Path {
        next_hop: Some(NextHop::V6 {
            global: "2001:db8::11".parse().expect("an address"),
            link_local: None,
        }),
        ..(*path(1)).clone()
    })
}

fn host(n: u32) -> IpNet {
    IpNet::from(std::net::IpAddr::from(Ipv4Addr::from(0xc633_6400 + n)))
}

fn host6(n: u128) -> IpNet {
    IpNet::from(std::net::IpAddr::from(Ipv6Addr::from(
        0x2001_0db8_0100_0000_0000_0000_0000_0000 + n,
    )))
}

/// Each message as (announced, withdrawn) prefixes, classic and MP together.
fn contents(updates: &Updates) -> Vec<(Vec<IpNet>, Vec<IpNet>)> {
    updates
        .messages
        .iter()
        .map(|bytes| {
            let ctx = both().context;
            let Ok(Message::Update(update)) = decode(bytes, &ctx) else {
                panic!("an UPDATE");
            };
            let mut announced = update.nlri.clone();
            announced.extend(
                update
                    .attributes
                    .mp_reach
                    .iter()
                    .flat_map(|r| r.nlri.clone()),
            );
            let mut withdrawn = update.withdrawn.clone();
            withdrawn.extend(
                update
                    .attributes
                    .mp_unreach
                    .iter()
                    .flat_map(|r| r.withdrawn.clone()),
            );
            (announced, withdrawn)
        })
        .collect()
}

#[test]
fn a_full_table_costs_what_packing_it_in_one_go_costs() {
    let prefixes: Vec<IpNet> = (0..100_000).map(host).collect();
    let mut export = Export::with_routes((*path(1)).clone(), &prefixes);
    let updates = export.updates(&both(), None);
    let minimum = pack_announcements(
        &path(1).attributes,
        path(1).next_hop.expect("a next hop"),
        &prefixes,
        &both().context,
    );
    // The same messages and bytes (the prefixes in another order).
    let bytes = |messages: &[Vec<u8>]| messages.iter().map(Vec::len).sum::<usize>();
    assert_eq!(updates.messages.len(), minimum.len());
    assert_eq!(bytes(&updates.messages), bytes(&minimum));
    let mut sent: Vec<IpNet> = contents(&updates).into_iter().flat_map(|m| m.0).collect();
    sent.sort_unstable();
    assert_eq!(sent, prefixes);
    assert_eq!(updates.announced, 100_000);
    assert!(!export.has_changes());
    assert!(
        export.updates(&both(), None).messages.is_empty(),
        "told already"
    );
}

#[test]
fn one_new_route_is_one_small_update_and_one_gone_is_one_withdrawal() {
    let prefixes: Vec<IpNet> = (0..1000).map(host).collect();
    let mut export = Export::with_routes((*path(1)).clone(), &prefixes);
    export.updates(&both(), None);
    export.announce(host(5000), path(1));
    let updates = export.updates(&both(), None);
    assert_eq!(contents(&updates), vec![(vec![host(5000)], vec![])]);
    assert!(
        updates.messages[0].len() < 80,
        "{} bytes",
        updates.messages[0].len()
    );
    assert_eq!(export.advertised(), 1001);
    export.withdraw(host(7));
    let updates = export.updates(&both(), None);
    assert_eq!(contents(&updates), vec![(vec![], vec![host(7)])]);
    assert_eq!(export.advertised(), 1000);
    assert_eq!(updates.messages[0].len(), 19 + 4 + 5, "one /32 withdrawn");
    // Withdrawing what was never there costs nothing.
    export.withdraw(host(9999));
    assert!(export.updates(&both(), None).messages.is_empty());
}

#[test]
fn replacing_the_table_sends_only_the_difference() {
    let mut export = Export::default();
    let table = |changed: u32| -> Vec<(IpNet, Arc<Path>)> {
        (0..100)
            .map(|n| (host(n), if n == changed { path(2) } else { path(1) }))
            .collect()
    };
    export.replace(table(1000));
    assert_eq!(export.updates(&both(), None).announced, 100);
    // The same table (other Arcs, equal values): nothing.
    export.replace(table(1000));
    assert!(export.updates(&both(), None).messages.is_empty());
    // One route's communities change: that route is announced again, nothing withdrawn.
    export.replace(table(42));
    let updates = export.updates(&both(), None);
    assert_eq!(contents(&updates), vec![(vec![host(42)], vec![])]);
    // A smaller table: the rest is withdrawn in one message.
    export.replace(table(42).into_iter().take(90));
    let updates = export.updates(&both(), None);
    assert_eq!(
        contents(&updates),
        vec![(vec![], (90..100).map(host).collect())]
    );
}

#[test]
fn routes_travel_grouped_by_attribute_set() {
    let mut export = Export::default();
    // Three attribute sets, interleaved over the prefixes.
    for n in 0..300 {
        export.announce(host(n), path(n % 3));
    }
    let updates = export.updates(&both(), None);
    assert_eq!(updates.messages.len(), 3, "one UPDATE per attribute set");
    for (announced, _) in contents(&updates) {
        assert_eq!(announced.len(), 100);
    }
}

#[test]
fn after_the_session_goes_down_everything_goes_again_and_after_a_refresh_its_family() {
    let mut export = Export::with_routes((*path(1)).clone(), &[host(1), host(2)]);
    export.updates(&both(), None);
    export.session_down();
    assert_eq!(export.advertised(), 0);
    assert_eq!(export.updates(&both(), None).announced, 2);
    // A refresh while a withdrawal is pending: both routes' fate goes out.
    export.withdraw(host(2));
    export.announce(host6(1), v6_path());
    export.updates(&both(), None);
    export.withdraw(host(1));
    export.resend(Family::IPV6_UNICAST);
    let updates = export.updates(&both(), None);
    assert_eq!(
        contents(&updates),
        vec![(vec![], vec![host(1)]), (vec![host6(1)], vec![])]
    );
}

#[test]
fn what_the_peer_cannot_take_is_not_sent() {
    let mut export = Export::default();
    export.announce(host(1), path(1));
    export.announce(host6(1), v6_path());
    // IPv4 only: the IPv6 route waits.
    let v4_only = negotiated(&[Family::IPV4_UNICAST], false);
    assert_eq!(
        contents(&export.updates(&v4_only, None)),
        vec![(vec![host(1)], vec![])]
    );
    // An IPv4 route with an IPv6 next hop needs extended next hop.
    export.announce(host(2), v6_path());
    assert!(export.updates(&both(), None).messages.is_empty());
    let extended = negotiated(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST], true);
    export.session_down();
    let updates = export.updates(&extended, None);
    assert_eq!(updates.announced, 3);
    // Its withdrawal goes the way it came, in MP_UNREACH.
    export.withdraw(host(2));
    let updates = export.updates(&extended, None);
    let Ok(Message::Update(update)) = decode(&updates.messages[0], &extended.context) else {
        panic!("an UPDATE");
    };
    assert!(update.withdrawn.is_empty());
    assert_eq!(
        update.attributes.mp_unreach.map(|u| u.withdrawn),
        Some(vec![host(2)])
    );
}

#[test]
fn a_path_without_a_next_hop_goes_out_with_our_address_on_the_session() {
    let mut own = (*path(1)).clone();
    own.next_hop = None;
    let mut export = Export::with_routes(own, &[host(1), host6(1)]);
    // Not known yet: nothing can go.
    assert_eq!(export.updates(&both(), None).announced, 0);
    export.session_down();
    let v4: std::net::IpAddr = "192.0.2.11".parse().expect("an address");
    let updates = export.updates(&both(), Some(v4));
    // The IPv6 route has no IPv6 next hop on an IPv4 session without one.
    assert_eq!(contents(&updates), vec![(vec![host(1)], vec![])]);
    let Ok(Message::Update(update)) = decode(&updates.messages[0], &both().context) else {
        panic!("an UPDATE");
    };
    assert_eq!(
        update.attributes.next_hop,
        Some(Ipv4Addr::new(192, 0, 2, 11))
    );
    // Over an IPv6 session with extended next hop, both go with the IPv6 address.
    export.session_down();
    let v6: std::net::IpAddr = "2001:db8::11".parse().expect("an address");
    let extended = negotiated(&[Family::IPV4_UNICAST, Family::IPV6_UNICAST], true);
    assert_eq!(export.updates(&extended, Some(v6)).announced, 2);
}
