//! BFD Control packets from the network: decoded, and whatever decodes fed to a session in
//! each state (Down, after the handshake, AdminDown) at times around its deadlines, never a
//! panic. The input is cut into datagrams of 24 to 40 bytes, so one run plays a sequence.
#![no_main]
use ferrolb_bfd::packet::{ControlPacket, State};
use ferrolb_bfd::session::{Session, Settings};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let _ = ControlPacket::decode(data);
    let now = Instant::now();
    let settings = Settings {
        desired_min_tx: Duration::from_millis(50),
        required_min_rx: Duration::from_millis(50),
        detect_mult: 3,
        passive: data.first().is_some_and(|b| b & 1 == 1),
    };
    let mut sessions = [
        Session::new(settings, 7, 1, now),
        Session::new(settings, 7, 2, now),
        Session::new(settings, 7, 3, now),
    ];
    let _ = sessions[2].admin_down(now);
    let mut at = now;
    let mut rest = data;
    while rest.len() >= 24 {
        let take = (24 + usize::from(rest[0] % 17)).min(rest.len());
        let (datagram, tail) = rest.split_at(take);
        rest = tail;
        at += Duration::from_millis(u64::from(datagram[2]));
        if let Ok(packet) = ControlPacket::decode(datagram) {
            for session in &mut sessions {
                let _ = session.on_packet(at, &packet);
                let _ = session.on_timer(at);
                if session.state() == State::Up && packet.poll {
                    let _ = session.set_settings(at, Settings { desired_min_tx: packet.desired_min_tx(), ..settings });
                }
                let _ = session.next_deadline();
                let _ = session.detection_time();
            }
        }
    }
});
