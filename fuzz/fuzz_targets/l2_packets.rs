//! Frames and ICMPv6 messages from the segment: ARP, neighbor solicitations and
//! advertisements, never a panic.
#![no_main]
use ferrolb_speaker::layer2::packet::{Arp, Neighbor};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Arp::parse(data);
    let _ = Neighbor::parse_solicitation(data);
    let _ = Neighbor::parse_advertisement(data);
});
