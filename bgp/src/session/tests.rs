//! The state machine with an injected clock: two sessions wired back to back, or one fed
//! bytes by hand.
use super::*;
use crate::packet::{Family, Message, Notification, frame};

fn config(local_as: u32, peer_as: PeerAs, id: [u8; 4], passive: bool) -> Config {
    Config {
        local_as,
        peer_as,
        router_id: Ipv4Addr::from(id),
        hold_time: 90,
        keepalive: None,
        connect_retry: Duration::from_secs(5),
        passive,
        families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
        graceful_restart: None,
        extended_next_hop: false,
    }
}

// The clock starts anywhere: times are offsets from this one reading.
#[allow(clippy::disallowed_methods)]
fn start() -> Instant {
    Instant::now()
}

fn sent(outputs: &[Output]) -> Vec<Vec<u8>> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Send(bytes) => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

fn notifications(outputs: &[Output]) -> Vec<(u8, u8)> {
    sent(outputs)
        .iter()
        .filter_map(|b| match decode(b, &Context::default()) {
            Ok(Message::Notification(n)) => Some((n.code, n.subcode)),
            _ => None,
        })
        .collect()
}

/// Delivers what each side sends to the other until both are quiet; returns everything
/// each put out.
fn exchange(
    now: Instant,
    a: &mut Session,
    b: &mut Session,
    mut to_b: Vec<Vec<u8>>,
) -> (Vec<Output>, Vec<Output>) {
    let (mut all_a, mut all_b) = (Vec::new(), Vec::new());
    let mut to_a = Vec::new();
    while !to_a.is_empty() || !to_b.is_empty() {
        for bytes in std::mem::take(&mut to_b) {
            let out = b.handle(now, Input::Bytes(&bytes));
            to_a.extend(sent(&out));
            all_b.extend(out);
        }
        for bytes in std::mem::take(&mut to_a) {
            let out = a.handle(now, Input::Bytes(&bytes));
            to_b.extend(sent(&out));
            all_a.extend(out);
        }
    }
    (all_a, all_b)
}

/// An active session (AS 65001) and a passive one (AS 65002), brought to Established.
fn established(t0: Instant) -> (Session, Session, Vec<Output>) {
    let mut a = Session::new(config(65001, PeerAs::Is(65002), [192, 0, 2, 1], false), 1);
    let mut b = Session::new(config(65002, PeerAs::External, [192, 0, 2, 2], true), 2);
    assert_eq!(a.handle(t0, Input::Start), vec![Output::Connect]);
    assert!(b.handle(t0, Input::Start).is_empty(), "passive: waits");
    let opens_b = sent(&b.handle(t0, Input::Connected));
    let opens_a = sent(&a.handle(t0, Input::Connected));
    let mut out_a = Vec::new();
    for bytes in opens_b {
        out_a.extend(a.handle(t0, Input::Bytes(&bytes)));
    }
    let (more_a, _) = exchange(
        t0,
        &mut a,
        &mut b,
        opens_a.into_iter().chain(sent(&out_a)).collect(),
    );
    out_a.extend(more_a);
    (a, b, out_a)
}

#[test]
fn two_sessions_reach_established_and_agree() {
    let t0 = start();
    let (a, b, out_a) = established(t0);
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
    let Some(Output::Established(n)) = out_a.iter().find(|o| matches!(o, Output::Established(_)))
    else {
        panic!("no Established in {out_a:?}");
    };
    assert_eq!(n.peer_as, 65002);
    assert_eq!(n.hold_time, 90);
    assert_eq!(n.keepalive, Some(Duration::from_secs(30)));
    assert!(n.context.four_octet_as && !n.context.ibgp);
    assert_eq!(n.families, vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]);
    assert!(n.route_refresh && n.enhanced_route_refresh);
}

#[test]
fn keepalives_go_out_at_a_third_of_the_hold_time_and_silence_expires_it() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    assert_eq!(a.next_deadline(), Some(t0 + Duration::from_secs(30)));
    let out = a.handle(t0 + Duration::from_secs(30), Input::Tick);
    assert_eq!(
        sent(&out),
        vec![Message::Keepalive.encode(&Context::default())]
    );
    // Nothing from the peer for the 90 s hold time: NOTIFICATION 4, closed, down.
    let out = a.handle(t0 + Duration::from_secs(90), Input::Tick);
    assert_eq!(notifications(&out), vec![(4, 0)]);
    assert!(out.contains(&Output::Close));
    assert!(matches!(out.last(), Some(Output::Down(Down::Sent(n))) if n.code == 4));
    assert_eq!(a.state(), State::Active, "it will try again");
}

#[test]
fn a_keepalive_from_the_peer_restarts_the_hold_timer() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    let later = t0 + Duration::from_secs(80);
    a.handle(
        later,
        Input::Bytes(&Message::Keepalive.encode(&Context::default())),
    );
    let out = a.handle(t0 + Duration::from_secs(90), Input::Tick);
    assert!(notifications(&out).is_empty(), "{out:?}");
    assert_eq!(a.state(), State::Established);
}

#[test]
fn the_wrong_peer_as_is_refused_with_2_2() {
    let t0 = start();
    let mut a = Session::new(config(65001, PeerAs::Is(65009), [192, 0, 2, 1], false), 1);
    let mut b = Session::new(config(65002, PeerAs::External, [192, 0, 2, 2], true), 2);
    a.handle(t0, Input::Start);
    b.handle(t0, Input::Start);
    let open_b = sent(&b.handle(t0, Input::Connected));
    a.handle(t0, Input::Connected);
    let out = a.handle(t0, Input::Bytes(&open_b[0]));
    assert_eq!(notifications(&out), vec![(2, 2)]);
    let Some(Output::Down(Down::Sent(n))) = out.last() else {
        panic!("{out:?}");
    };
    assert_eq!(n.describe(), "OPEN error, bad peer AS (2/2)");
}

#[test]
fn an_internal_peer_with_our_identifier_is_refused_with_2_3() {
    let t0 = start();
    let mut a = Session::new(config(65001, PeerAs::Internal, [192, 0, 2, 1], false), 1);
    let mut b = Session::new(config(65001, PeerAs::Internal, [192, 0, 2, 1], true), 2);
    a.handle(t0, Input::Start);
    b.handle(t0, Input::Start);
    let open_b = sent(&b.handle(t0, Input::Connected));
    a.handle(t0, Input::Connected);
    assert_eq!(
        notifications(&a.handle(t0, Input::Bytes(&open_b[0]))),
        vec![(2, 3)]
    );
}

#[test]
fn a_malformed_message_gets_its_notification_and_only_ends_this_session() {
    let t0 = start();
    let (mut a, mut b, _) = established(t0);
    let mut garbage = Message::Keepalive.encode(&Context::default());
    garbage[2] = 0;
    let out = a.handle(t0, Input::Bytes(&garbage));
    assert_eq!(notifications(&out), vec![(1, 1)]);
    assert_eq!(b.state(), State::Established);
    // The peer is told, and goes down with the NOTIFICATION it received.
    let out_b = b.handle(t0, Input::Bytes(&sent(&out)[0]));
    assert!(matches!(out_b.last(), Some(Output::Down(Down::Received(n))) if n.code == 1));
}

#[test]
fn an_unexpected_message_is_an_fsm_error() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    let open = Message::Open(Open::new(
        65002,
        90,
        Ipv4Addr::new(192, 0, 2, 2),
        Vec::new(),
    ))
    .encode(&Context::default());
    assert_eq!(
        notifications(&a.handle(t0, Input::Bytes(&open))),
        vec![(5, 0)]
    );
}

#[test]
fn updates_are_passed_up_and_messages_may_arrive_in_pieces() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    let eor = Message::Update(Box::new(Update::end_of_rib(Family::IPV4_UNICAST)))
        .encode(&Context::default());
    let mut stream = eor.clone();
    stream.extend_from_slice(&eor);
    let first = a.handle(t0, Input::Bytes(&stream[..30]));
    let rest = a.handle(t0, Input::Bytes(&stream[30..]));
    let updates = first
        .iter()
        .chain(&rest)
        .filter(|o| matches!(o, Output::Update(_)))
        .count();
    assert_eq!(updates, 2);
}

#[test]
fn connection_attempts_back_off_with_jitter_up_to_two_minutes() {
    let t0 = start();
    let mut a = Session::new(config(65001, PeerAs::Is(65002), [192, 0, 2, 1], false), 7);
    a.handle(t0, Input::Start);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..8 {
        a.handle(now, Input::ConnectFailed);
        let at = a.next_deadline().expect("a retry");
        waits.push(at - now);
        now = at;
        assert_eq!(a.handle(now, Input::Tick), vec![Output::Connect]);
    }
    for (n, wait) in waits.iter().enumerate() {
        let base = (Duration::from_secs(5) * (1 << (n + 1)).min(1 << 16)).min(MAX_RETRY);
        assert!(
            *wait >= base.mul_f64(0.75) && *wait <= base,
            "attempt {n}: {wait:?} for {base:?}"
        );
    }
    assert!(waits.last().expect("waits") <= &MAX_RETRY);
}

#[test]
fn a_peer_that_reads_nothing_is_dropped_by_the_send_hold_timer() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    // Keepalives keep the peer's side alive, but nothing we send is ever written out.
    let mut now = t0;
    let peer_keepalive = Message::Keepalive.encode(&Context::default());
    let mut dropped = None;
    for _ in 0..40 {
        now += Duration::from_secs(30);
        a.handle(now, Input::Bytes(&peer_keepalive));
        let out = a.handle(now, Input::Tick);
        if let Some(Output::Down(Down::Sent(n))) = out.last() {
            dropped = Some((now - t0, n.code));
            break;
        }
    }
    let (after, code) = dropped.expect("dropped");
    assert_eq!(code, 8);
    assert!(
        after >= Duration::from_secs(480) && after <= Duration::from_secs(510),
        "{after:?}"
    );
}

#[test]
fn flushed_output_keeps_the_send_hold_timer_quiet() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    let mut now = t0;
    let peer_keepalive = Message::Keepalive.encode(&Context::default());
    for _ in 0..40 {
        now += Duration::from_secs(30);
        a.handle(now, Input::Bytes(&peer_keepalive));
        a.handle(now, Input::Tick);
        a.handle(now, Input::Flushed);
    }
    assert_eq!(a.state(), State::Established);
}

#[test]
fn stopping_sends_a_cease_with_the_operators_message() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    let out = a.handle(
        t0,
        Input::Stop {
            subcode: subcode::ADMINISTRATIVE_SHUTDOWN,
            message: "node drained".into(),
        },
    );
    let bytes = sent(&out);
    let Ok(Message::Notification(n)) = decode(&bytes[0], &Context::default()) else {
        panic!("{out:?}");
    };
    assert_eq!(n.shutdown_message(), Some("node drained"));
    assert_eq!(a.state(), State::Idle, "stopped: no retry");
    assert_eq!(a.next_deadline(), None);
}

#[test]
fn graceful_restart_is_announced_and_the_peers_is_remembered() {
    let t0 = start();
    let mut cfg = config(65001, PeerAs::Is(65002), [192, 0, 2, 1], false);
    cfg.graceful_restart = Some((120, true));
    let mut a = Session::new(cfg, 1);
    a.handle(t0, Input::Start);
    let open = sent(&a.handle(t0, Input::Connected));
    let Ok(Message::Open(open)) = decode(&open[0], &Context::default()) else {
        panic!("an OPEN");
    };
    assert!(open.capabilities.iter().any(|c| matches!(
        c,
        Capability::GracefulRestart(gr) if gr.restarting && gr.time == 120 && gr.families.len() == 2
    )));
}

#[test]
fn a_received_notification_brings_the_session_down() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    let cease = frame(3, &[6, 2]);
    let out = a.handle(t0, Input::Bytes(&cease));
    assert!(matches!(
        out.last(),
        Some(Output::Down(Down::Received(Notification {
            code: 6,
            subcode: 2,
            ..
        })))
    ));
    assert!(
        notifications(&out).is_empty(),
        "no NOTIFICATION answers one"
    );
}

#[test]
fn collisions_keep_the_connection_of_the_higher_identifier_then_as() {
    let low = Ipv4Addr::new(192, 0, 2, 1);
    let high = Ipv4Addr::new(192, 0, 2, 2);
    assert!(keep_outbound(high, low, 65001, 65002));
    assert!(!keep_outbound(low, high, 65001, 65002));
    assert!(
        keep_outbound(low, low, 65002, 65001),
        "RFC 6286: equal ids, higher AS"
    );
    assert!(!keep_outbound(low, low, 65001, 65002));
    assert_eq!(collision_notification().subcode, 7);
}
