//! Anything a BGP peer can send: framed or not, under every decode context, never a panic;
//! what decodes encodes again and decodes to the same message.
#![no_main]
use ferrolb_bgp::packet::{Context, Message, decode, frame, frame_length};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = frame_length(data);
    let Some((&kind, body)) = data.split_first() else {
        return;
    };
    let message = frame(kind % 6, body);
    for ctx in [
        Context::default(),
        Context { four_octet_as: true, ibgp: false },
        Context { four_octet_as: true, ibgp: true },
    ] {
        let _ = decode(data, &ctx);
        if let Ok(decoded) = decode(&message, &ctx) {
            let again = decoded.encode(&ctx);
            if let (Message::Open(_) | Message::Keepalive | Message::RouteRefresh(_), Ok(back)) =
                (&decoded, decode(&again, &ctx))
            {
                assert_eq!(back, decoded, "re-encoding changed the message");
            }
        }
    }
});
