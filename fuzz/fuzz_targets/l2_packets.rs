//! Frames and ICMPv6 messages from the segment: ARP, neighbor solicitations and
//! advertisements, router advertisements (BGP unnumbered), read on their own and through the responder that owns the addresses they
//! name most often, never a panic.
#![no_main]
use ferrolb_l2::packet::{Arp, Neighbor, is_router_advertisement};
use ferrolb_l2::responder::{Input, Owned, Responder};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let _ = Arp::parse(data);
    let _ = Neighbor::parse_solicitation(data);
    let _ = Neighbor::parse_advertisement(data);
    let _ = is_router_advertisement(data);

    let now = Instant::now();
    let mut responder = Responder::new([2, 0, 0, 0, 0, 0x11], Some(Duration::from_secs(1)), now);
    let mut owned = Owned::default();
    // The addresses an ARP frame and an NDP body would name, so replies and conflicts run.
    if let Some(ip) = data.get(38..42).and_then(|b| <[u8; 4]>::try_from(b).ok()) {
        owned.ips.insert(std::net::Ipv4Addr::from(ip).into());
    }
    if let Some(ip) = data.get(8..24).and_then(|b| <[u8; 16]>::try_from(b).ok()) {
        owned.ips.insert(std::net::Ipv6Addr::from(ip).into());
    }
    responder.set_owned(now, owned);
    for step in 0..3u64 {
        let at = now + Duration::from_millis(700 * step);
        let _ = responder.handle(at, Input::Arp(data));
        let _ = responder.handle(
            at,
            Input::Icmp6 {
                body: data,
                from: None,
                on_link: true,
            },
        );
        let _ = responder.handle(at, Input::Tick);
    }
});
