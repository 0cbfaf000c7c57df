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
            Output::Send(_, bytes) => Some(bytes.clone()),
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
            let out = b.handle(now, Input::Bytes(Link::Inbound, &bytes));
            to_a.extend(sent(&out));
            all_b.extend(out);
        }
        for bytes in std::mem::take(&mut to_a) {
            let out = a.handle(now, Input::Bytes(Link::Outbound, &bytes));
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
    let opens_b = sent(&b.handle(t0, Input::Connected(Link::Inbound)));
    let opens_a = sent(&a.handle(t0, Input::Connected(Link::Outbound)));
    let mut out_a = Vec::new();
    for bytes in opens_b {
        out_a.extend(a.handle(t0, Input::Bytes(Link::Outbound, &bytes)));
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
    assert!(out.contains(&Output::Close(Link::Outbound)));
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
        Input::Bytes(
            Link::Outbound,
            &Message::Keepalive.encode(&Context::default()),
        ),
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
    let open_b = sent(&b.handle(t0, Input::Connected(Link::Inbound)));
    a.handle(t0, Input::Connected(Link::Outbound));
    let out = a.handle(t0, Input::Bytes(Link::Outbound, &open_b[0]));
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
    let open_b = sent(&b.handle(t0, Input::Connected(Link::Inbound)));
    a.handle(t0, Input::Connected(Link::Outbound));
    assert_eq!(
        notifications(&a.handle(t0, Input::Bytes(Link::Outbound, &open_b[0]))),
        vec![(2, 3)]
    );
}

#[test]
fn a_malformed_message_gets_its_notification_and_only_ends_this_session() {
    let t0 = start();
    let (mut a, mut b, _) = established(t0);
    let mut garbage = Message::Keepalive.encode(&Context::default());
    garbage[2] = 0;
    let out = a.handle(t0, Input::Bytes(Link::Outbound, &garbage));
    assert_eq!(notifications(&out), vec![(1, 1)]);
    assert_eq!(b.state(), State::Established);
    // The peer is told, and goes down with the NOTIFICATION it received.
    let out_b = b.handle(t0, Input::Bytes(Link::Inbound, &sent(&out)[0]));
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
        notifications(&a.handle(t0, Input::Bytes(Link::Outbound, &open))),
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
    let first = a.handle(t0, Input::Bytes(Link::Outbound, &stream[..30]));
    let rest = a.handle(t0, Input::Bytes(Link::Outbound, &stream[30..]));
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
        a.handle(now, Input::Bytes(Link::Outbound, &peer_keepalive));
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
        a.handle(now, Input::Bytes(Link::Outbound, &peer_keepalive));
        a.handle(now, Input::Tick);
        a.handle(now, Input::Flushed(Link::Outbound));
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
    let open = sent(&a.handle(t0, Input::Connected(Link::Outbound)));
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
    let out = a.handle(t0, Input::Bytes(Link::Outbound, &cease));
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

/// Two sessions joined by up to two connections: `X`, opened by `a` (a's outbound, b's
/// inbound), and `Y`, opened by `b`. Messages are delivered one at a time, in order per
/// connection, so a test can open the second connection at any point of the first's
/// exchange.
struct Wire {
    a: Session,
    b: Session,
    /// Bytes and closes in flight: (to a?, the receiver's link, bytes or `None` for a close).
    queue: std::collections::VecDeque<(bool, Link, Option<Vec<u8>>)>,
    /// What each side put out, in order.
    out_a: Vec<Output>,
    out_b: Vec<Output>,
    /// Connections closed by either side: [X, Y].
    closed: [bool; 2],
    /// NOTIFICATIONs seen on each connection: [X, Y].
    notifications: [Vec<(u8, u8)>; 2],
}

impl Wire {
    fn new(a: Session, b: Session) -> Wire {
        Wire {
            a,
            b,
            queue: Default::default(),
            out_a: Vec::new(),
            out_b: Vec::new(),
            closed: [false; 2],
            notifications: [Vec::new(), Vec::new()],
        }
    }

    /// X for a's outbound and b's inbound, Y for the others.
    fn connection(from_a: bool, link: Link) -> usize {
        usize::from(from_a != (link == Link::Outbound))
    }

    fn feed(&mut self, now: Instant, to_a: bool, input: Input) {
        let out = if to_a {
            self.a.handle(now, input)
        } else {
            self.b.handle(now, input)
        };
        for o in &out {
            let (link, bytes) = match o {
                Output::Send(link, bytes) => (*link, Some(bytes.clone())),
                Output::Close(link) => (*link, None),
                _ => continue,
            };
            let c = Wire::connection(to_a, link);
            if self.closed[c] {
                continue;
            }
            if let Some(bytes) = &bytes
                && let Ok(Message::Notification(n)) = decode(bytes, &Context::default())
            {
                self.notifications[c].push((n.code, n.subcode));
            }
            if bytes.is_none() {
                self.closed[c] = true;
            }
            // The other side sees it on the opposite link.
            let theirs = match link {
                Link::Outbound => Link::Inbound,
                Link::Inbound => Link::Outbound,
            };
            self.queue.push_back((!to_a, theirs, bytes));
        }
        if to_a {
            self.out_a.extend(out);
        } else {
            self.out_b.extend(out);
        }
    }

    fn open_x(&mut self, now: Instant) {
        self.feed(now, true, Input::Connected(Link::Outbound));
        self.feed(now, false, Input::Connected(Link::Inbound));
    }

    fn open_y(&mut self, now: Instant) {
        self.feed(now, false, Input::Connected(Link::Outbound));
        self.feed(now, true, Input::Connected(Link::Inbound));
    }

    /// Delivers the next message or close; false when nothing is in flight.
    fn step(&mut self, now: Instant) -> bool {
        let Some((to_a, link, bytes)) = self.queue.pop_front() else {
            return false;
        };
        match bytes {
            Some(bytes) => self.feed(now, to_a, Input::Bytes(link, &bytes)),
            None => self.feed(now, to_a, Input::Closed(link)),
        }
        true
    }

    fn run(&mut self, now: Instant) {
        while self.step(now) {}
    }

    fn downs(&self) -> usize {
        self.out_a
            .iter()
            .chain(&self.out_b)
            .filter(|o| matches!(o, Output::Down(_)))
            .count()
    }
}

/// Two active sessions, `a` with identifier `id_a` and `b` with `id_b`.
fn both_active(id_a: [u8; 4], id_b: [u8; 4]) -> Wire {
    let t0 = start();
    let mut a = Session::new(config(65001, PeerAs::Is(65002), id_a, false), 1);
    let mut b = Session::new(config(65002, PeerAs::Is(65001), id_b, false), 2);
    assert_eq!(a.handle(t0, Input::Start), vec![Output::Connect]);
    assert_eq!(b.handle(t0, Input::Start), vec![Output::Connect]);
    Wire::new(a, b)
}

#[test]
fn a_collision_keeps_the_connection_opened_by_the_higher_identifier_at_any_point() {
    let t0 = start();
    let mut checked = [0; 2];
    // Both ways: `a` lower, then `a` higher. The second connection opens after each possible
    // number of messages of the first one's exchange.
    for (id_a, id_b, survivor) in [
        ([192, 0, 2, 1], [192, 0, 2, 2], 1),
        ([192, 0, 2, 9], [192, 0, 2, 2], 0),
    ] {
        for delay in 0..8 {
            let mut wire = both_active(id_a, id_b);
            wire.open_x(t0);
            for _ in 0..delay {
                wire.step(t0);
            }
            // Once either side is up on X, X stays: the other side decides only on the
            // second connection's OPEN, which the side that is up never sends.
            let up = wire.a.state() == State::Established || wire.b.state() == State::Established;
            wire.open_y(t0);
            wire.run(t0);
            let expected = if up { 0 } else { survivor };
            let at = format!("ids {id_a:?}/{id_b:?}, after {delay} messages");
            assert_eq!(wire.a.state(), State::Established, "{at}");
            assert_eq!(wire.b.state(), State::Established, "{at}");
            assert_eq!(wire.downs(), 0, "{at}: no session went down");
            assert!(!wire.closed[expected], "{at}: the kept connection is open");
            assert!(wire.closed[1 - expected], "{at}: the other is closed");
            assert_eq!(
                wire.notifications[1 - expected],
                vec![(6, 7)],
                "{at}: closed with one Cease 7"
            );
            assert!(wire.notifications[expected].is_empty(), "{at}");
            checked[usize::from(up)] += 1;
        }
    }
    assert!(
        checked[0] >= 4 && checked[1] >= 2,
        "both before and after Established: {checked:?}"
    );
}

#[test]
fn a_connection_to_an_established_session_is_refused_and_the_session_stays() {
    let t0 = start();
    // `b` has the higher identifier, so only the Established state keeps X.
    let mut wire = both_active([192, 0, 2, 1], [192, 0, 2, 2]);
    wire.open_x(t0);
    wire.run(t0);
    assert_eq!(wire.a.state(), State::Established);
    let refused = wire.a.handle(t0, Input::Connected(Link::Inbound));
    assert_eq!(notifications(&refused), vec![(6, 7)]);
    assert_eq!(refused.last(), Some(&Output::Close(Link::Inbound)));
    assert_eq!(wire.a.state(), State::Established);
    // Bytes on the refused connection change nothing.
    let keepalive = Message::Keepalive.encode(&Context::default());
    assert!(
        wire.a
            .handle(t0, Input::Bytes(Link::Inbound, &keepalive))
            .is_empty()
    );
    assert!(wire.a.handle(t0, Input::Closed(Link::Inbound)).is_empty());
    assert_eq!(wire.a.state(), State::Established);
}

#[test]
fn a_second_connection_that_sends_garbage_is_dropped_alone() {
    let t0 = start();
    let mut wire = both_active([192, 0, 2, 1], [192, 0, 2, 2]);
    wire.open_x(t0);
    // a: OpenSent on X; a second connection arrives and says nonsense instead of an OPEN.
    let out = wire.a.handle(t0, Input::Connected(Link::Inbound));
    assert_eq!(sent(&out).len(), 1, "our OPEN on it");
    let out = wire.a.handle(t0, Input::Bytes(Link::Inbound, &[0xff; 19]));
    assert_eq!(notifications(&out), vec![(1, 3)], "bad message type");
    assert_eq!(out.last(), Some(&Output::Close(Link::Inbound)));
    wire.run(t0);
    assert_eq!(wire.a.state(), State::Established, "X is unharmed");
    assert_eq!(wire.downs(), 0);
}

#[test]
fn the_restart_bit_is_set_until_the_first_session_is_up() {
    let t0 = start();
    let restart_bits = |out: &[Output]| -> Vec<bool> {
        sent(out)
            .iter()
            .filter_map(|b| match decode(b, &Context::default()) {
                Ok(Message::Open(open)) => open.capabilities.iter().find_map(|c| match c {
                    Capability::GracefulRestart(gr) => Some(gr.restarting),
                    _ => None,
                }),
                _ => None,
            })
            .collect()
    };
    let mut cfg = config(65001, PeerAs::Is(65002), [192, 0, 2, 1], false);
    cfg.graceful_restart = Some((120, true));
    let mut a = Session::new(cfg, 1);
    let mut b = Session::new(config(65002, PeerAs::External, [192, 0, 2, 2], true), 2);
    a.handle(t0, Input::Start);
    b.handle(t0, Input::Start);
    // A session that fails before it is up: the next attempt is still a restart.
    let first = a.handle(t0, Input::Connected(Link::Outbound));
    assert_eq!(restart_bits(&first), vec![true]);
    a.handle(t0, Input::Closed(Link::Outbound));
    let retry = a.next_deadline().expect("a retry");
    a.handle(retry, Input::Tick);
    let second = a.handle(retry, Input::Connected(Link::Outbound));
    assert_eq!(restart_bits(&second), vec![true]);
    let open_b = sent(&b.handle(retry, Input::Connected(Link::Inbound)));
    let mut to_b = sent(&second);
    for bytes in open_b {
        to_b.extend(sent(&a.handle(retry, Input::Bytes(Link::Outbound, &bytes))));
    }
    exchange(retry, &mut a, &mut b, to_b);
    assert_eq!(a.state(), State::Established);
    // Up once: a reset after that is not a restart.
    a.handle(retry, Input::Closed(Link::Outbound));
    let retry = a.next_deadline().expect("a retry");
    a.handle(retry, Input::Tick);
    let third = a.handle(retry, Input::Connected(Link::Outbound));
    assert_eq!(restart_bits(&third), vec![false]);
}

#[test]
fn counters_follow_every_message_and_every_malformed_one() {
    let t0 = start();
    let (mut a, _, _) = established(t0);
    let c = *a.counters();
    assert_eq!((c.sent.opens, c.sent.keepalives), (1, 1));
    assert_eq!((c.received.opens, c.received.keepalives), (1, 1));
    // An UPDATE whose MED has 3 bytes: treated as withdraw (RFC 7606), the session stays.
    let marker = [0xffu8; 16];
    let attributes = [
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 0, // AS_PATH, empty
        0x40, 3, 4, 192, 0, 2, 2, // NEXT_HOP
        0x80, 4, 3, 0, 0, 1, // MED, one byte short
    ];
    let mut update = marker.to_vec();
    let length = 19 + 2 + 2 + attributes.len() + 5;
    update.extend_from_slice(&(length as u16).to_be_bytes());
    update.extend_from_slice(&[2, 0, 0, 0, attributes.len() as u8]);
    update.extend_from_slice(&attributes);
    update.extend_from_slice(&[32, 198, 51, 100, 5]);
    let out = a.handle(t0, Input::Bytes(Link::Outbound, &update));
    let Some(Output::Update(received)) = out.first() else {
        panic!("{out:?}");
    };
    assert_eq!(received.problems.len(), 1, "{received:?}");
    assert!(notifications(&out).is_empty());
    assert_eq!(a.state(), State::Established);
    assert_eq!(a.counters().malformed_attributes, 1);
    assert_eq!(
        (
            a.counters().prefixes_announced,
            a.counters().prefixes_withdrawn
        ),
        (0, 1),
        "its route counted as withdrawn"
    );
    assert_eq!(a.counters().received.updates, 1);
    // A broken header ends the session with a NOTIFICATION.
    let mut garbage = Message::Keepalive.encode(&Context::default());
    garbage[0] = 0;
    a.handle(t0, Input::Bytes(Link::Outbound, &garbage));
    let c = *a.counters();
    assert_eq!(c.malformed_messages, 1);
    assert_eq!(c.sent.notifications, 1);
    assert_eq!(
        c.received.keepalives, 1,
        "the broken one is not a KEEPALIVE"
    );
}

proptest::proptest! {
    /// Whatever an established peer sends, in whatever pieces: no panic, and the session
    /// either stays up or goes down with our NOTIFICATION (or the peer's).
    #[test]
    fn garbage_from_an_established_peer_never_panics(
        chunks in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64), 1..8),
        marker_first in proptest::prelude::any::<bool>(),
    ) {
        let t0 = start();
        let (mut a, _, _) = established(t0);
        for (i, chunk) in chunks.iter().enumerate() {
            let mut bytes = chunk.clone();
            if marker_first && i == 0 {
                // Mostly past the marker check, to reach the message decoders.
                let mut framed = vec![0xff; 16];
                framed.extend_from_slice(&bytes);
                bytes = framed;
            }
            let out = a.handle(t0, Input::Bytes(Link::Outbound, &bytes));
            if a.state() != State::Established {
                proptest::prop_assert!(out.iter().any(|o| matches!(o, Output::Down(_))));
                break;
            }
        }
    }
}
