//! Decoding UPDATEs full of IPv4 /32s (classic NLRI) and of IPv6 /128s (MP_REACH_NLRI):
//! FerroLB's decoder, bgpkit-parser and netgauze-bgp-pkt on the same bytes, in the same run,
//! each counting the prefixes it read (and checked against the count sent). Throughput is in
//! prefixes per second on one core.
//!
//! `cargo bench --manifest-path benches/bgp_codec/Cargo.toml --bench decode`
use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferrolb_bgp::packet::{Message, decode};
use ferrolb_bgp_codec_bench::{CONTEXT, ipv4_hosts, ipv6_hosts};
use netgauze_bgp_pkt::BgpMessage as NetgauzeMessage;
use netgauze_bgp_pkt::path_attribute::{MpReach, PathAttributeValue};
use netgauze_bgp_pkt::wire::deserializer::BgpParsingContext;
use netgauze_parse_utils::{ReadablePduWithOneInput, Span};
use std::hint::black_box;

const PREFIXES: u32 = 100_000;

fn ferrolb(messages: &[Vec<u8>]) -> usize {
    messages
        .iter()
        .map(|m| match decode(m, &CONTEXT) {
            Ok(Message::Update(u)) => {
                u.nlri.len() + u.attributes.mp_reach.as_ref().map_or(0, |r| r.nlri.len())
            }
            _ => panic!("FerroLB failed to decode an UPDATE"),
        })
        .sum()
}

fn bgpkit(messages: &[Bytes]) -> usize {
    use bgpkit_parser::models::{AsnLength, BgpMessage};
    messages
        .iter()
        .map(|m| {
            let mut data = m.clone();
            match bgpkit_parser::parser::bgp::messages::parse_bgp_message(
                &mut data,
                false,
                &AsnLength::Bits32,
            ) {
                Ok(BgpMessage::Update(u)) => {
                    u.announced_prefixes.len()
                        + u.attributes.get_reachable_nlri().map_or(0, |n| n.prefixes.len())
                }
                other => panic!("bgpkit-parser: {other:?}"),
            }
        })
        .sum()
}

fn netgauze(messages: &[Vec<u8>]) -> usize {
    messages
        .iter()
        .map(|m| {
            let mut ctx = BgpParsingContext::default();
            match NetgauzeMessage::from_wire(Span::new(m), &mut ctx) {
                Ok((_, NetgauzeMessage::Update(u))) => {
                    let mp: usize = u
                        .path_attributes()
                        .iter()
                        .map(|a| match a.value() {
                            PathAttributeValue::MpReach(MpReach::Ipv6Unicast { nlri, .. }) => {
                                nlri.len()
                            }
                            _ => 0,
                        })
                        .sum();
                    u.nlri().len() + mp
                }
                other => panic!("netgauze: {other:?}"),
            }
        })
        .sum()
}

fn decoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode UPDATEs");
    group.throughput(Throughput::Elements(u64::from(PREFIXES)));
    for (name, messages) in [
        ("IPv4 /32 NLRI", ipv4_hosts(PREFIXES)),
        ("IPv6 /128 MP_REACH", ipv6_hosts(PREFIXES)),
    ] {
        let shared: Vec<Bytes> = messages.iter().map(|m| Bytes::copy_from_slice(m)).collect();
        let expected = PREFIXES as usize;
        assert_eq!(ferrolb(&messages), expected);
        assert_eq!(bgpkit(&shared), expected);
        assert_eq!(netgauze(&messages), expected);
        group.bench_with_input(BenchmarkId::new("FerroLB", name), &messages, |b, m| {
            b.iter(|| black_box(ferrolb(black_box(m))))
        });
        group.bench_with_input(BenchmarkId::new("bgpkit-parser", name), &shared, |b, m| {
            b.iter(|| black_box(bgpkit(black_box(m))))
        });
        group.bench_with_input(BenchmarkId::new("netgauze-bgp-pkt", name), &messages, |b, m| {
            b.iter(|| black_box(netgauze(black_box(m))))
        });
    }
    group.finish();
}

criterion_group!(benches, decoding);
criterion_main!(benches);
