use super::*;
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn parses_cidrs_masked_to_their_network() {
    let r = AddressRange::parse("192.0.2.5/24").unwrap();
    assert_eq!((r.first(), r.last()), (ip("192.0.2.0"), ip("192.0.2.255")));
    assert_eq!(r.len(), AddressCount::new(256));
    let r = AddressRange::parse("2001:db8::/126").unwrap();
    assert_eq!(r.family(), Family::V6);
    assert_eq!(r.len(), AddressCount::new(4));
}

#[test]
fn parses_ranges_with_spaces_around_the_dash() {
    let r = AddressRange::parse("203.0.113.101 - 203.0.113.102").unwrap();
    assert_eq!(
        (r.first(), r.last()),
        (ip("203.0.113.101"), ip("203.0.113.102"))
    );
    let r = AddressRange::parse("2001:db8::1-2001:db8::ff").unwrap();
    assert_eq!(r.len(), AddressCount::new(255));
}

#[test]
fn rejects_bad_entries_with_the_reason() {
    assert_eq!(
        AddressRange::parse("192.0.2.0/33"),
        Err(AddressError::InvalidCidr("192.0.2.0/33".into()))
    );
    assert_eq!(
        AddressRange::parse(" 192.0.2.0/24"),
        Err(AddressError::InvalidCidr(" 192.0.2.0/24".into()))
    );
    assert!(matches!(
        AddressRange::parse("192.0.2.x-192.0.2.9"),
        Err(AddressError::InvalidStart { .. })
    ));
    assert!(matches!(
        AddressRange::parse("192.0.2.1-"),
        Err(AddressError::InvalidEnd { .. })
    ));
    assert!(matches!(
        AddressRange::parse("192.0.2.9-192.0.2.1"),
        Err(AddressError::StartAfterEnd { .. })
    ));
    assert!(matches!(
        AddressRange::parse("192.0.2.1-2001:db8::1"),
        Err(AddressError::MixedFamilies { .. })
    ));
    let err = AddressRange::parse("192.0.2.9-192.0.2.1")
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "invalid IP range \"192.0.2.9-192.0.2.1\": start IP 192.0.2.9 is after the end IP 192.0.2.1"
    );
}

#[test]
fn counts_whole_spaces_without_overflow() {
    assert_eq!(
        AddressRange::parse("0.0.0.0/0").unwrap().len(),
        AddressCount::new(1 << 32)
    );
    let all = AddressRange::parse("::/0").unwrap().len();
    assert_eq!(all.to_u128(), None);
    assert_eq!(all.to_string(), "340282366920938463463374607431768211456");
    assert_eq!(all.saturating_i64(), i64::MAX);
    assert_eq!(AddressRange::parse("::/0").unwrap().cidrs().len(), 1);
}

#[test]
fn summarises_ranges_into_minimal_cidrs() {
    let r = AddressRange::parse("3.3.3.2-3.3.3.254").unwrap();
    let cidrs: Vec<String> = r.cidrs().iter().map(ToString::to_string).collect();
    assert_eq!(cidrs.first().unwrap(), "3.3.3.2/31");
    assert_eq!(cidrs.last().unwrap(), "3.3.3.254/32");
    assert_eq!(r.widest_prefix(), 26);
    assert_eq!(
        AddressRange::parse("192.0.2.0/24").unwrap().widest_prefix(),
        24
    );
}

#[test]
fn overlap_is_per_family_and_inclusive() {
    let a = AddressRange::parse("192.0.2.0-192.0.2.10").unwrap();
    let b = AddressRange::parse("192.0.2.10/32").unwrap();
    let c = AddressRange::parse("192.0.2.11-192.0.2.20").unwrap();
    assert!(a.overlaps(&b) && b.overlaps(&a));
    assert!(!a.overlaps(&c));
    assert!(!a.overlaps(&AddressRange::parse("::/0").unwrap()));
}

proptest! {
    #[test]
    fn cidrs_cover_the_range_exactly(first in any::<u32>(), len in 0u32..100_000) {
        let last = first.saturating_add(len);
        let r = AddressRange::new(IpAddr::V4(first.into()), IpAddr::V4(last.into())).unwrap();
        let mut expected = u128::from(first);
        let mut total = AddressCount::ZERO;
        for net in r.cidrs() {
            let part = AddressRange::from(net);
            prop_assert_eq!(part.offsets().0, expected);
            expected = part.offsets().1 + 1;
            total += part.len();
        }
        prop_assert_eq!(expected, u128::from(last) + 1);
        prop_assert_eq!(total, r.len());
    }

    #[test]
    fn parse_never_panics(s in ".{0,60}") {
        let _ = AddressRange::parse(&s);
    }
}
