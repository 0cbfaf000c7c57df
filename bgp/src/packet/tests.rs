//! Bytes <-> messages, both ways, and every malformed case the session must survive or
//! answer with the right NOTIFICATION.
use super::*;
use ipnet::IpNet;
use proptest::prelude::*;
use std::net::{Ipv4Addr, Ipv6Addr};

fn hex(text: &str) -> Vec<u8> {
    let digits: String = text.chars().filter(|c| c.is_ascii_hexdigit()).collect();
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("hex"))
        .collect()
}

fn net(text: &str) -> IpNet {
    text.parse().expect("a prefix")
}

const EBGP4: Context = Context {
    four_octet_as: true,
    ibgp: false,
};
const IBGP4: Context = Context {
    four_octet_as: true,
    ibgp: true,
};

/// A message of `kind` with `body`, as hex.
fn message(kind: u8, body: &str) -> Vec<u8> {
    frame(kind, &hex(body))
}

#[test]
fn keepalive_is_a_bare_header() {
    let bytes = hex("ffffffffffffffffffffffffffffffff 0013 04");
    assert_eq!(decode(&bytes, &EBGP4), Ok(Message::Keepalive));
    assert_eq!(Message::Keepalive.encode(&EBGP4), bytes);
}

#[test]
fn an_open_with_capabilities_reads_and_writes_back() {
    // Version 4, AS 65001, hold 90, id 192.0.2.1; MP IPv4 unicast, MP IPv6 unicast,
    // route refresh, 4-octet AS 65001, GR restarting time 120 with IPv4 forwarding kept,
    // one parameter per capability as BIRD sends them.
    let body = "04 fde9 005a c0000201 26 \
        0206 0104 00010001 \
        0206 0104 00020001 \
        0202 0200 \
        0206 4104 0000fde9 \
        0208 4006 8078 0001 01 80";
    let bytes = message(TYPE_OPEN, body);
    let Ok(Message::Open(open)) = decode(&bytes, &EBGP4) else {
        panic!("{:?}", decode(&bytes, &EBGP4));
    };
    assert_eq!(open.my_as, 65001);
    assert_eq!(open.asn(), 65001);
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.identifier, Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(
        open.families(),
        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
    );
    assert!(
        open.capabilities
            .contains(&Capability::GracefulRestart(GracefulRestart {
                restarting: true,
                notification: false,
                time: 120,
                families: vec![(Family::IPV4_UNICAST, true)],
            }))
    );
    assert_eq!(Message::Open(open).encode(&EBGP4), bytes);
}

#[test]
fn all_capabilities_in_one_parameter_read_the_same() {
    let one = message(
        TYPE_OPEN,
        "04 fde9 005a c0000201 10 020e 0104 00010001 4104 0000fde9 0200",
    );
    let Ok(Message::Open(open)) = decode(&one, &EBGP4) else {
        panic!("{:?}", decode(&one, &EBGP4));
    };
    assert_eq!(
        open.capabilities,
        vec![
            Capability::Multiprotocol(Family::IPV4_UNICAST),
            Capability::FourOctetAs(65001),
            Capability::RouteRefresh,
        ]
    );
}

#[test]
fn extended_optional_parameters_are_read() {
    // RFC 9072: length 255, type 255, then a two-byte length and two-byte parameter lengths.
    let bytes = message(
        TYPE_OPEN,
        "04 fde9 005a c0000201 ff ff 0009 02 0006 0104 00010001",
    );
    let Ok(Message::Open(open)) = decode(&bytes, &EBGP4) else {
        panic!("{:?}", decode(&bytes, &EBGP4));
    };
    assert_eq!(
        open.capabilities,
        vec![Capability::Multiprotocol(Family::IPV4_UNICAST)]
    );
}

#[test]
fn a_large_asn_is_sent_as_as_trans_with_the_capability() {
    let open = Open::new(4_200_000_001, 90, Ipv4Addr::new(192, 0, 2, 1), Vec::new());
    assert_eq!(open.my_as, 23456);
    assert_eq!(open.asn(), 4_200_000_001);
}

#[test]
fn graceful_restart_is_read_in_every_valid_length() {
    // The 2-byte helper form (no families), and with two families.
    assert_eq!(
        Capability::decode(64, &hex("0078")),
        Ok(Capability::GracefulRestart(GracefulRestart {
            restarting: false,
            notification: false,
            time: 120,
            families: Vec::new(),
        }))
    );
    let Ok(Capability::GracefulRestart(gr)) =
        Capability::decode(64, &hex("c0b4 0001 0100 0002 0180"))
    else {
        panic!("two families");
    };
    assert!(gr.restarting && gr.notification);
    assert_eq!(gr.time, 180);
    assert_eq!(
        gr.families,
        vec![(Family::IPV4_UNICAST, false), (Family::IPV6_UNICAST, true)]
    );
    assert!(
        Capability::decode(64, &hex("0078 0001")).is_err(),
        "a cut tuple"
    );
}

#[test]
fn unknown_capabilities_are_kept_and_unknown_parameters_refused() {
    let bytes = message(TYPE_OPEN, "04 fde9 005a c0000201 06 0204 4902 abcd");
    let Ok(Message::Open(open)) = decode(&bytes, &EBGP4) else {
        panic!("{:?}", decode(&bytes, &EBGP4));
    };
    assert_eq!(
        open.capabilities,
        vec![Capability::Unknown {
            code: 0x49,
            value: vec![0xab, 0xcd]
        }]
    );
    let bytes = message(TYPE_OPEN, "04 fde9 005a c0000201 03 0101 00");
    assert_eq!(
        decode(&bytes, &EBGP4),
        Err(Notify::open(subcode::UNSUPPORTED_OPTIONAL_PARAMETER, [1]))
    );
}

#[test]
fn bad_opens_get_the_right_notification() {
    let version3 = message(TYPE_OPEN, "03 fde9 005a c0000201 00");
    assert_eq!(decode(&version3, &EBGP4), Err(Notify::open(1, [0, 4])));
    let hold2 = message(TYPE_OPEN, "04 fde9 0002 c0000201 00");
    assert_eq!(
        decode(&hold2, &EBGP4),
        Err(Notify::open(subcode::UNACCEPTABLE_HOLD_TIME, []))
    );
    let cut = message(TYPE_OPEN, "04 fde9 005a c0000201 08 0206 0104");
    assert!(matches!(decode(&cut, &EBGP4), Err(Notify { code: 2, .. })));
}

#[test]
fn headers_are_checked_before_anything_else() {
    let mut bad_marker = Message::Keepalive.encode(&EBGP4);
    bad_marker[3] = 0;
    assert_eq!(frame_length(&bad_marker), Err(Notify::header(1, [])));
    let long_keepalive = hex("ffffffffffffffffffffffffffffffff 0014 04 00");
    assert_eq!(
        frame_length(&long_keepalive),
        Err(Notify::header(2, [0, 0x14]))
    );
    let huge = hex("ffffffffffffffffffffffffffffffff 1001 02");
    assert_eq!(frame_length(&huge), Err(Notify::header(2, [0x10, 0x01])));
    let kind = hex("ffffffffffffffffffffffffffffffff 0013 09");
    assert_eq!(frame_length(&kind), Err(Notify::header(3, [9])));
    assert_eq!(frame_length(&hex("ffff")), Ok(None), "more bytes needed");
}

fn announcement() -> Update {
    Update {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![AsPathSegment {
                kind: SegmentType::Sequence,
                asns: vec![65001],
            }]),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            local_pref: Some(200),
            communities: vec![0xfde9_0064],
            large_communities: vec![(65001, 1, 2)],
            ..Attributes::default()
        },
        nlri: vec![net("198.51.100.10/32"), net("203.0.113.0/24")],
        ..Update::default()
    }
}

#[test]
fn an_ipv4_update_reads_and_writes_back() {
    let update = announcement();
    let body = "0000 0031 \
        40 01 01 00 \
        40 02 06 02 01 0000fde9 \
        40 03 04 c0000201 \
        40 05 04 000000c8 \
        c0 08 04 fde90064 \
        c0 20 0c 0000fde9 00000001 00000002 \
        20 c633640a 18 cb0071";
    let bytes = message(TYPE_UPDATE, body);
    assert_eq!(
        Message::Update(Box::new(update.clone())).encode(&IBGP4),
        bytes
    );
    assert_eq!(
        decode(&bytes, &IBGP4),
        Ok(Message::Update(Box::new(update)))
    );
}

#[test]
fn local_pref_is_sent_to_and_read_from_internal_peers_only() {
    let bytes = Message::Update(Box::new(announcement())).encode(&EBGP4);
    let Ok(Message::Update(update)) = decode(&bytes, &EBGP4) else {
        panic!("decodes");
    };
    assert_eq!(update.attributes.local_pref, None);
    // An external peer sending it anyway: the attribute is dropped, the routes kept.
    let ibgp_bytes = Message::Update(Box::new(announcement())).encode(&IBGP4);
    let Ok(Message::Update(update)) = decode(&ibgp_bytes, &EBGP4) else {
        panic!("decodes");
    };
    assert_eq!(update.problems[0].handling, Handling::AttributeDiscard);
    assert_eq!(update.announced().count(), 2);
}

#[test]
fn ipv6_routes_travel_in_mp_reach_with_a_link_local_next_hop() {
    let next_hop = NextHop::V6 {
        global: "2001:db8::1".parse::<Ipv6Addr>().expect("v6"),
        link_local: Some("fe80::1".parse::<Ipv6Addr>().expect("v6")),
    };
    let attributes = announcement().attributes;
    let messages = pack_announcements(&attributes, next_hop, &[net("2001:db8:1::10/128")], &EBGP4);
    assert_eq!(messages.len(), 1);
    let Ok(Message::Update(update)) = decode(&messages[0], &EBGP4) else {
        panic!("decodes");
    };
    let reach = update.attributes.mp_reach.as_ref().expect("MP_REACH");
    assert_eq!(reach.family, Family::IPV6_UNICAST);
    assert_eq!(reach.next_hop, next_hop);
    assert_eq!(
        update.attributes.next_hop, None,
        "no classic NEXT_HOP for MP routes"
    );
    assert_eq!(
        update.announced().collect::<Vec<_>>(),
        vec![&net("2001:db8:1::10/128")]
    );
}

#[test]
fn ipv4_routes_with_an_ipv6_next_hop_use_mp_reach() {
    // RFC 8950: IPv4 over an IPv6 session (BGP unnumbered).
    let next_hop = NextHop::V6 {
        global: "2001:db8::1".parse::<Ipv6Addr>().expect("v6"),
        link_local: None,
    };
    let messages = pack_announcements(
        &announcement().attributes,
        next_hop,
        &[net("198.51.100.10/32")],
        &EBGP4,
    );
    let Ok(Message::Update(update)) = decode(&messages[0], &EBGP4) else {
        panic!("decodes");
    };
    let reach = update.attributes.mp_reach.as_ref().expect("MP_REACH");
    assert_eq!(reach.family, Family::IPV4_UNICAST);
    assert_eq!(reach.nlri, vec![net("198.51.100.10/32")]);
}

#[test]
fn a_full_table_packs_into_as_few_updates_as_fit() {
    let prefixes: Vec<IpNet> = (0..10_000u32)
        .map(|i| IpNet::new(Ipv4Addr::from(0x0a00_0000 + i).into(), 32).expect("a /32"))
        .collect();
    let messages = pack_announcements(
        &announcement().attributes,
        NextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        &prefixes,
        &EBGP4,
    );
    // Every UPDATE but the last is full: one more /32 (5 bytes) would not fit.
    let mut seen = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        assert!(m.len() <= 4096);
        if i + 1 < messages.len() {
            assert!(
                m.len() + 5 > 4096,
                "message {i} has room left: {} bytes",
                m.len()
            );
        }
        let Ok(Message::Update(update)) = decode(m, &EBGP4) else {
            panic!("decodes");
        };
        seen.extend(update.nlri);
    }
    assert_eq!(seen, prefixes);
    let withdrawals = pack_withdrawals(&prefixes, false, &EBGP4);
    assert_eq!(
        withdrawals.len(),
        prefixes.len().div_ceil((4096 - 19 - 4) / 5)
    );
}

#[test]
fn end_of_rib_is_recognised_for_each_family() {
    for family in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
        let bytes = Message::Update(Box::new(Update::end_of_rib(family))).encode(&EBGP4);
        let Ok(Message::Update(update)) = decode(&bytes, &EBGP4) else {
            panic!("decodes");
        };
        assert_eq!(update.end_of_rib_family(), Some(family));
    }
    assert_eq!(
        Message::Update(Box::new(Update::end_of_rib(Family::IPV4_UNICAST)))
            .encode(&EBGP4)
            .len(),
        23
    );
    assert_eq!(announcement().end_of_rib_family(), None);
}

#[test]
fn a_two_octet_peer_gets_as_trans_and_as4_path_and_is_read_back() {
    let two = Context {
        four_octet_as: false,
        ibgp: false,
    };
    let mut update = announcement();
    update.attributes.as_path = Some(vec![AsPathSegment {
        kind: SegmentType::Sequence,
        asns: vec![4_200_000_001, 65002],
    }]);
    let bytes = Message::Update(Box::new(update)).encode(&two);
    let Ok(Message::Update(read)) = decode(&bytes, &two) else {
        panic!("decodes");
    };
    let path = read.attributes.as_path.clone().expect("AS_PATH");
    assert_eq!(path[0].asns, vec![23456, 65002]);
    assert_eq!(
        read.attributes.as_path_4()[0].asns,
        vec![4_200_000_001, 65002]
    );
}

/// Replaces the attribute list of an UPDATE carrying one /32 with `attrs` (hex).
fn with_attributes(attrs: &str) -> Vec<u8> {
    let attrs = hex(attrs);
    let mut body = vec![0, 0];
    body.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    body.extend_from_slice(&attrs);
    body.extend_from_slice(&hex("20 c633640a"));
    frame(TYPE_UPDATE, &body)
}

const GOOD: &str = "40 01 01 00  40 02 06 02 01 0000fde9  40 03 04 c0000201";

fn handling(attrs: &str) -> Result<Vec<Handling>, Notify> {
    match decode(&with_attributes(attrs), &EBGP4)? {
        Message::Update(u) => Ok(u.problems.iter().map(|p| p.handling).collect()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn malformed_attributes_are_handled_as_rfc_7606_says() {
    use Handling::*;
    assert_eq!(handling(GOOD), Ok(vec![]));
    // ORIGIN out of range, AS_PATH cut short, NEXT_HOP too short, MED too long.
    assert_eq!(
        handling("40 01 01 07  40 02 06 02 01 0000fde9  40 03 04 c0000201"),
        Ok(vec![TreatAsWithdraw])
    );
    assert_eq!(
        handling("40 01 01 00  40 02 05 02 02 0000fd  40 03 04 c0000201"),
        Ok(vec![TreatAsWithdraw])
    );
    assert_eq!(
        handling("40 01 01 00  40 02 06 02 01 0000fde9  40 03 03 c00002"),
        Ok(vec![TreatAsWithdraw])
    );
    assert_eq!(
        handling(&format!("{GOOD} 80 04 05 0000000000")),
        Ok(vec![TreatAsWithdraw])
    );
    // A zero next hop; communities not a multiple of 4; large communities of 8 bytes.
    assert_eq!(
        handling("40 01 01 00  40 02 06 02 01 0000fde9  40 03 04 00000000"),
        Ok(vec![TreatAsWithdraw])
    );
    assert_eq!(
        handling(&format!("{GOOD} c0 08 03 000001")),
        Ok(vec![TreatAsWithdraw])
    );
    assert_eq!(
        handling(&format!("{GOOD} c0 20 08 0000000100000002")),
        Ok(vec![TreatAsWithdraw])
    );
    // ATOMIC_AGGREGATE with a value, AGGREGATOR of the wrong size: dropped.
    assert_eq!(
        handling(&format!("{GOOD} 40 06 01 00")),
        Ok(vec![AttributeDiscard])
    );
    assert_eq!(
        handling(&format!("{GOOD} c0 07 03 000000")),
        Ok(vec![AttributeDiscard])
    );
    // ORIGIN flagged optional; ORIGIN twice (the second copy dropped); NEXT_HOP missing.
    assert_eq!(
        handling("c0 01 01 00  40 02 06 02 01 0000fde9  40 03 04 c0000201"),
        Ok(vec![TreatAsWithdraw])
    );
    assert_eq!(
        handling(&format!("{GOOD} 40 01 01 02")),
        Ok(vec![AttributeDiscard])
    );
    assert_eq!(
        handling("40 01 01 00  40 02 06 02 01 0000fde9"),
        Ok(vec![TreatAsWithdraw])
    );
    // An unknown optional attribute is kept; an unknown well-known one resets, the
    // NOTIFICATION carrying the whole attribute.
    assert_eq!(handling(&format!("{GOOD} c0 63 02 abcd")), Ok(vec![]));
    assert_eq!(
        handling(&format!("{GOOD} 40 63 02 abcd")),
        Err(Notify::update(2, hex("40 63 02 abcd")))
    );
    // An attribute running past the list: the routes are withdrawn (RFC 7606 4).
    assert_eq!(
        handling(&format!("{GOOD} c0 08 09 00000001")),
        Ok(vec![TreatAsWithdraw])
    );
    // A malformed MP_REACH, or one running past the list: the session resets.
    assert!(matches!(
        handling(&format!("{GOOD} 80 0e 04 000201 ff")),
        Err(Notify {
            code: 3,
            subcode: 9,
            ..
        })
    ));
    assert_eq!(
        handling(&format!("{GOOD} 80 0e 09 0002")),
        Err(Notify::update(1, []))
    );
    // AS4_PATH from a 4-octet peer means nothing: dropped.
    assert_eq!(
        handling(&format!("{GOOD} c0 11 06 02 01 0000fde9")),
        Ok(vec![AttributeDiscard])
    );
}

#[test]
fn mp_attributes_go_first_and_the_rest_in_type_order() {
    let next_hop = NextHop::V6 {
        global: "2001:db8::1".parse::<Ipv6Addr>().expect("v6"),
        link_local: None,
    };
    let mut attributes = announcement().attributes;
    attributes.aggregator = Some((65001, Ipv4Addr::new(192, 0, 2, 1)));
    attributes.other = vec![(0xc0, 99, vec![1]), (0x80, 98, vec![2])];
    let messages = pack_announcements(&attributes, next_hop, &[net("2001:db8:1::/64")], &EBGP4);
    let body = &messages[0][HEADER_LEN..];
    let mut types = Vec::new();
    let mut attrs = &body[4..];
    while let [flags, kind, rest @ ..] = attrs {
        let (len, rest) = if flags & 0x10 != 0 {
            (
                usize::from(u16::from_be_bytes([rest[0], rest[1]])),
                &rest[2..],
            )
        } else {
            (usize::from(rest[0]), &rest[1..])
        };
        types.push(*kind);
        attrs = &rest[len..];
    }
    // The optional non-transitive unknown (98) is not passed on; the transitive one is.
    assert_eq!(types, vec![14, 1, 2, 7, 8, 32, 99]);
    let Ok(Message::Update(update)) = decode(&messages[0], &EBGP4) else {
        panic!("decodes");
    };
    assert_eq!(update.attributes.aggregator, attributes.aggregator);
}

#[test]
fn reserved_route_refresh_subtypes_are_read_as_such() {
    let bytes = message(TYPE_ROUTE_REFRESH, "0001 07 01");
    let Ok(Message::RouteRefresh(r)) = decode(&bytes, &EBGP4) else {
        panic!("decodes");
    };
    assert_eq!(r.kind, RouteRefreshKind::Unknown(7));
}

#[test]
fn a_treated_as_withdraw_update_withdraws_its_routes() {
    let bytes = with_attributes("40 01 01 07  40 02 06 02 01 0000fde9  40 03 04 c0000201");
    let Ok(Message::Update(update)) = decode(&bytes, &EBGP4) else {
        panic!("decodes");
    };
    assert!(update.treat_as_withdraw());
    assert_eq!(update.announced().count(), 0);
    assert_eq!(
        update.withdrawn_routes().collect::<Vec<_>>(),
        vec![&net("198.51.100.10/32")]
    );
}

#[test]
fn a_bad_prefix_length_is_an_invalid_network_field() {
    let mut bytes = with_attributes(GOOD);
    let last = bytes.len() - 5;
    bytes[last] = 33;
    assert_eq!(decode(&bytes, &EBGP4), Err(Notify::update(10, [])));
}

#[test]
fn notifications_say_what_they_mean() {
    let n = Notification::from(Notify::open(subcode::BAD_PEER_AS, []));
    assert_eq!(n.describe(), "OPEN error, bad peer AS (2/2)");
    let bytes = Message::Notification(Notification::shutdown(2, "maintenance")).encode(&EBGP4);
    let Ok(Message::Notification(read)) = decode(&bytes, &EBGP4) else {
        panic!("decodes");
    };
    assert_eq!(read.shutdown_message(), Some("maintenance"));
    assert_eq!(
        read.describe(),
        "cease, administrative shutdown (6/2): \"maintenance\""
    );
    // RFC 9003: cut at 255 bytes, on a character boundary.
    let long = "é".repeat(200);
    let cut = Notification::shutdown(2, &long);
    assert_eq!(usize::from(cut.data[0]), 254);
}

#[test]
fn route_refresh_in_both_codes_and_its_enhanced_markers() {
    let request = message(TYPE_ROUTE_REFRESH, "0001 00 01");
    assert_eq!(
        decode(&request, &EBGP4),
        Ok(Message::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            kind: RouteRefreshKind::Request
        }))
    );
    let legacy = message(TYPE_ROUTE_REFRESH_LEGACY, "0002 00 01");
    assert!(matches!(
        decode(&legacy, &EBGP4),
        Ok(Message::RouteRefresh(_))
    ));
    let end = message(TYPE_ROUTE_REFRESH, "0002 02 01");
    let Ok(Message::RouteRefresh(r)) = decode(&end, &EBGP4) else {
        panic!("decodes");
    };
    assert_eq!(r.kind, RouteRefreshKind::End);
    assert_eq!(Message::RouteRefresh(r).encode(&EBGP4), end);
}

#[test]
fn a_marker_with_orf_entries_is_refused_with_the_whole_message_and_a_request_served() {
    // RFC 7313 5: an EoRR longer than 4 bytes: 7/1, the data the complete message.
    let long_end = message(TYPE_ROUTE_REFRESH, "0001 02 01 01 0040 00");
    let Err(notify) = decode(&long_end, &EBGP4) else {
        panic!("refused");
    };
    assert_eq!((notify.code, notify.subcode), (7, 1));
    assert_eq!(notify.data, long_end);
    // Quoting a maximum-size one still fits in a maximum-size NOTIFICATION.
    let longest = message(
        TYPE_ROUTE_REFRESH,
        &format!("0001 02 01 {}", "00".repeat(4073)),
    );
    assert_eq!(longest.len(), MAX_MESSAGE_LEN);
    let Err(notify) = decode(&longest, &EBGP4) else {
        panic!("refused");
    };
    let sent = Message::Notification(notify.into()).encode(&EBGP4);
    assert_eq!(sent.len(), MAX_MESSAGE_LEN);
    assert!(decode(&sent, &EBGP4).is_ok());
    // A request with ORF entries (RFC 5291), which we never offered: served, entries ignored.
    let with_orf = message(TYPE_ROUTE_REFRESH, "0001 00 01 01 0040 00");
    assert_eq!(
        decode(&with_orf, &EBGP4),
        Ok(Message::RouteRefresh(RouteRefresh {
            family: Family::IPV4_UNICAST,
            kind: RouteRefreshKind::Request
        }))
    );
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, l)| IpNet::new(Ipv4Addr::from(a).into(), l)
            .expect("len")
            .trunc()),
        (any::<u128>(), 0u8..=128).prop_map(|(a, l)| IpNet::new(Ipv6Addr::from(a).into(), l)
            .expect("len")
            .trunc()),
    ]
}

proptest! {
    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512), kind in 1u8..6) {
        let mut message = frame(kind, &bytes);
        let _ = decode(&message, &EBGP4);
        let _ = decode(&message, &Context::default());
        message.truncate(message.len() / 2);
        let _ = frame_length(&message);
    }

    #[test]
    fn announcements_and_withdrawals_round_trip(prefixes in proptest::collection::vec(prefix(), 0..300)) {
        let v4 = NextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
        let mut back = Vec::new();
        for m in pack_announcements(&announcement().attributes, v4, &prefixes, &IBGP4) {
            prop_assert!(m.len() <= MAX_MESSAGE_LEN);
            let Ok(Message::Update(u)) = decode(&m, &IBGP4) else { panic!("decodes") };
            prop_assert!(u.problems.is_empty(), "{:?}", u.problems);
            back.extend(u.announced().copied());
        }
        let mut want = prefixes.clone();
        want.sort();
        back.sort();
        prop_assert_eq!(&back, &want);
        let mut gone = Vec::new();
        for m in pack_withdrawals(&prefixes, false, &IBGP4) {
            let Ok(Message::Update(u)) = decode(&m, &IBGP4) else { panic!("decodes") };
            gone.extend(u.withdrawn_routes().copied());
        }
        gone.sort();
        prop_assert_eq!(gone, want);
    }
}
