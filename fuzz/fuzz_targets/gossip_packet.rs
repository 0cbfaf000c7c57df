//! Datagrams from the network: decoded with and without a key, never a panic.
#![no_main]
use ferrolb_gossip::wire::{Keyring, decode_packet, metallb_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_packet(data, None);
    let _ = decode_packet(data, Some(&Keyring::new(metallb_key(b"fuzz"))));
});
