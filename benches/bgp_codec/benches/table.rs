//! The sender's share of a table transfer: a new session's whole table turned into UPDATEs
//! (the export state walked, the routes grouped and packed), for 100,000 and 1,000,000 IPv4
//! /32s. Flat time per route here means a longer transfer at 1M routes is the receiver's.
//!
//! `cargo bench --manifest-path benches/bgp_codec/Cargo.toml --bench table`
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferrolb_bgp::export::{Export, Path};
use ferrolb_bgp::packet::{
    AsPathSegment, Attributes, Family, NextHop, Origin, SegmentType,
};
use ferrolb_bgp::session::Negotiated;
use ferrolb_bgp_codec_bench::CONTEXT;
use ipnet::IpNet;
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn negotiated() -> Negotiated {
    Negotiated {
        peer_as: 64500,
        peer_id: Ipv4Addr::new(192, 0, 2, 1),
        hold_time: 90,
        keepalive: Some(Duration::from_secs(30)),
        context: CONTEXT,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        route_refresh: true,
        enhanced_route_refresh: true,
        extended_next_hop: false,
        peer_graceful_restart: None,
    }
}

fn export(routes: u32) -> Export {
    let path = Path {
        attributes: Attributes {
            origin: Some(Origin::Igp),
            as_path: Some(vec![AsPathSegment {
                kind: SegmentType::Sequence,
                asns: vec![64501],
            }]),
            ..Attributes::default()
        },
        next_hop: Some(NextHop::V4(Ipv4Addr::new(192, 0, 2, 11))),
    };
    let prefixes: Vec<IpNet> = (0..routes)
        .map(|i| IpNet::from(IpAddr::from(Ipv4Addr::from(0x0a00_0000 + i))))
        .collect();
    Export::with_routes(path, &prefixes)
}

fn full_table(c: &mut Criterion) {
    let mut group = c.benchmark_group("full table to UPDATEs");
    group.sample_size(10);
    let n = negotiated();
    for routes in [100_000u32, 1_000_000] {
        let mut table = export(routes);
        group.throughput(Throughput::Elements(u64::from(routes)));
        group.bench_function(BenchmarkId::new("FerroLB", routes), |b| {
            b.iter(|| {
                table.session_down();
                let updates = table.updates(&n, None);
                assert_eq!(updates.announced, routes as usize);
                black_box(updates.messages.len())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, full_table);
criterion_main!(benches);
