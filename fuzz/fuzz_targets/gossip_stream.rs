//! Push-pull streams from the network (compressed, encrypted or plain), never a panic.
#![no_main]
use ferrolb_gossip::wire::{Keyring, decode_stream, metallb_key};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = decode_stream(data, None);
    let _ = decode_stream(data, Some(&Keyring::new(metallb_key(b"fuzz"))));
});
