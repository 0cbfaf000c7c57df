//! Sequences of datagrams into the membership state machine, with timers run in between:
//! whatever decodes must never panic the core, and we stay alive in our own view.
#![no_main]
use ferrolb_gossip::core::{Config, Memberlist, State};
use ferrolb_gossip::wire::decode_packet;
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let mut now = Instant::now();
    let mut list = Memberlist::new(Config::lan("me", SocketAddr::from(([198, 18, 0, 9], 7946))), now, 1);
    // [from][advance ms / 8][length][datagram] ...
    let mut rest = data;
    while let [from, advance, len, tail @ ..] = rest {
        let len = usize::from(*len).min(tail.len());
        let (packet, next) = tail.split_at(len);
        rest = next;
        if let Ok(messages) = decode_packet(packet, None) {
            let source = SocketAddr::from(([198, 18, 0, from % 4], 7946));
            let _ = list.handle_packet(source, messages, now);
        }
        now += Duration::from_millis(u64::from(*advance) * 8);
        let _ = list.tick(now);
        let _ = list.check_contact(now);
    }
    let me = list.members().find(|m| m.name == "me").expect("ourselves");
    assert_eq!(me.state, State::Alive);
});
