//! The inputs of the decoding benchmark: whole UPDATE messages as a full-table sender packs
//! them (FerroLB's encoder fills each to 4096 bytes), so every decoder reads the same bytes.
use ferrolb_bgp::packet::{
    AsPathSegment, Attributes, Context, NextHop, Origin, SegmentType, pack_announcements,
};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A 4-octet-AS eBGP session, as between a speaker and its router.
pub const CONTEXT: Context = Context {
    four_octet_as: true,
    ibgp: false,
};

fn attributes() -> Attributes {
    Attributes {
        origin: Some(Origin::Igp),
        as_path: Some(vec![AsPathSegment {
            kind: SegmentType::Sequence,
            asns: vec![64501],
        }]),
        communities: vec![(64501 << 16) | 100],
        ..Attributes::default()
    }
}

/// `count` IPv4 /32s in classic NLRI.
pub fn ipv4_hosts(count: u32) -> Vec<Vec<u8>> {
    let prefixes: Vec<IpNet> = (0..count)
        .map(|i| IpNet::from(IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i))))
        .collect();
    let next_hop = NextHop::V4(Ipv4Addr::new(192, 0, 2, 11));
    pack_announcements(&attributes(), next_hop, &prefixes, &CONTEXT)
}

/// `count` IPv6 /128s in MP_REACH_NLRI.
pub fn ipv6_hosts(count: u32) -> Vec<Vec<u8>> {
    let base = u128::from(Ipv6Addr::new(0x2001, 0xdb8, 0x100, 0, 0, 0, 0, 0));
    let prefixes: Vec<IpNet> = (0..count)
        .map(|i| IpNet::from(IpAddr::from(Ipv6Addr::from(base + u128::from(i)))))
        .collect();
    let next_hop = NextHop::V6 {
        global: Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x11),
        link_local: None,
    };
    pack_announcements(&attributes(), next_hop, &prefixes, &CONTEXT)
}
