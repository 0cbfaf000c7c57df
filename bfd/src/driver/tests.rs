//! The driver against a peer made of this crate's session core on its own sockets, over
//! loopback: the driver at 127.0.0.1, the peer at 127.0.0.2 (port 3784 on both: the
//! driver listens on the wildcard address, the peer on its own).
use super::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::net::UdpSocket;
use tokio::time::Instant;

/// The tests with a driver and a peer use the same ports: one at a time.
static PORTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DRIVER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn fast() -> Settings {
    Settings {
        desired_min_tx: Duration::from_millis(50),
        required_min_rx: Duration::from_millis(50),
        detect_mult: 3,
        passive: false,
    }
}

fn udp(local: SocketAddr, ttl: u32) -> UdpSocket {
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).expect("a socket");
    socket.set_reuse_address(true).expect("reuse");
    socket.set_ttl_v4(ttl).expect("a TTL");
    socket.set_nonblocking(true).expect("non-blocking");
    socket.bind(&local.into()).expect("bound");
    UdpSocket::from_std(socket.into()).expect("a tokio socket")
}

/// The peer: a session on 127.0.0.2 that sends while `speaking`, and hands on what it
/// receives.
fn spawn_peer(speaking: Arc<AtomicBool>) -> mpsc::UnboundedReceiver<ControlPacket> {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let listener = udp(SocketAddr::new(PEER, SINGLE_HOP_PORT), 255);
        let sender = udp(SocketAddr::new(PEER, 49999), 255);
        let to = SocketAddr::new(DRIVER, SINGLE_HOP_PORT);
        let mut session = Session::new(fast(), 0x77, 5, Instant::now().into_std());
        let mut buf = [0u8; 64];
        loop {
            let deadline = session.next_deadline().map(Instant::from_std);
            let outputs = tokio::select! {
                received = listener.recv_from(&mut buf) => {
                    let Ok((n, _)) = received else { continue };
                    let Ok(packet) = ControlPacket::decode(&buf[..n]) else { continue };
                    let _ = seen_tx.send(packet);
                    session.on_packet(Instant::now().into_std(), &packet)
                }
                () = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => session.on_timer(Instant::now().into_std()),
            };
            for output in outputs {
                if let Output::Send(packet) = output
                    && speaking.load(Ordering::Relaxed)
                {
                    let _ = sender.send_to(&packet.encode(), to).await;
                }
            }
        }
    });
    seen
}

async fn next_change(events: &mut mpsc::UnboundedReceiver<Event>, within: Duration) -> Change {
    tokio::time::timeout(within, events.recv())
        .await
        .expect("a change in time")
        .expect("the driver runs")
        .change
}

async fn status_where(bfd: &Bfd, within: Duration, check: impl Fn(&Status) -> bool) -> Status {
    let mut status = bfd.status();
    let found = tokio::time::timeout(within, async {
        loop {
            if check(&status.borrow_and_update()) {
                return;
            }
            let _ = status.changed().await;
        }
    })
    .await;
    let now = status.borrow().clone();
    assert!(found.is_ok(), "{now:#?}");
    now
}

/// Waits (2 s at most) for the peer to see AdminDown, said as administratively down.
async fn admin_down_reaches(seen: &mut mpsc::UnboundedReceiver<ControlPacket>) {
    let admin_down = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(packet) = seen.recv().await {
            if packet.state == State::AdminDown {
                return packet;
            }
        }
        panic!("the peer's socket closed");
    })
    .await
    .expect("AdminDown reached the peer");
    assert_eq!(admin_down.diag, Diag::ADMINISTRATIVELY_DOWN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_comes_up_negotiates_detects_silence_and_says_admin_down_at_stop() {
    let _ports = PORTS.lock().await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let bfd = Bfd::start(events_tx).expect("the driver starts");
    let speaking = Arc::new(AtomicBool::new(true));
    let mut seen = spawn_peer(speaking.clone());
    let key = Key {
        peer: PEER,
        interface: None,
        scope_id: 0,
        multihop: false,
    };
    bfd.set(vec![Spec {
        key: key.clone(),
        local: Some(DRIVER),
        settings: fast(),
        minimum_ttl: 254,
    }]);
    // Up by the handshake, then 50 ms both ways once the Poll has settled it.
    let mut change = next_change(&mut events, Duration::from_secs(5)).await;
    if change.to == State::Init {
        change = next_change(&mut events, Duration::from_secs(5)).await;
    }
    assert_eq!(change.to, State::Up, "{change:?}");
    let status = status_where(&bfd, Duration::from_secs(5), |s| {
        s.sessions.first().is_some_and(|s| {
            s.tx_interval == Some(Duration::from_millis(50))
                && s.detection_time == Some(Duration::from_millis(150))
        })
    })
    .await;
    let session = &status.sessions[0];
    assert_eq!(session.key, key);
    assert_eq!(session.remote_discr, 0x77);
    assert!(session.counters.control_in > 0 && session.counters.control_out > 0);
    assert_eq!(session.counters.up_events, 1);
    // Every packet the peer saw came from a source port in 49152-65535 (checked by the
    // kernel delivering it to the peer's session, which matched it) with the driver's
    // discriminator.
    let first = seen.recv().await.expect("a packet");
    assert_eq!(first.my_discr, session.local_discr);

    // GTSM: a packet with TTL 254 is dropped for it, before anything else is looked at;
    // the same with TTL 255, from an address no session has, is unmatched.
    let stray = ControlPacket {
        your_discr: 0,
        state: State::Down,
        ..first
    };
    let unmatched = status.unmatched;
    let to = SocketAddr::new(DRIVER, SINGLE_HOP_PORT);
    let low = udp("127.0.0.3:50001".parse().expect("an address"), 254);
    low.send_to(&stray.encode(), to).await.expect("sent");
    let wrong_ttl = status_where(&bfd, Duration::from_secs(3), |s| s.wrong_ttl == 1).await;
    assert_eq!(wrong_ttl.unmatched, unmatched);
    let right = udp("127.0.0.3:50002".parse().expect("an address"), 255);
    right.send_to(&stray.encode(), to).await.expect("sent");
    status_where(&bfd, Duration::from_secs(3), |s| {
        s.unmatched == unmatched + 1
    })
    .await;

    // A flood of garbage and of well-formed strays (from an address with no session) is
    // counted and dropped, and the session stays up through it.
    let flood = udp("127.0.0.3:50003".parse().expect("an address"), 255);
    let before = bfd.status().borrow().unmatched;
    for i in 0..5000u32 {
        let datagram = if i % 2 == 0 {
            stray.encode().to_vec()
        } else {
            i.to_be_bytes().repeat(1 + (i % 13) as usize)
        };
        let _ = flood.send_to(&datagram, to).await;
        // In bursts the socket's buffer holds: what the kernel drops is not counted.
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    let flooded = status_where(&bfd, Duration::from_secs(5), |s| {
        s.unmatched >= before + 2500
    })
    .await;
    assert_eq!(flooded.sessions[0].state, State::Up);
    assert!(
        events.try_recv().is_err(),
        "a state change during the flood"
    );

    // The peer falls silent: down at the detection time (150 ms), said as such.
    speaking.store(false, Ordering::Relaxed);
    let silent_since = Instant::now();
    let change = next_change(&mut events, Duration::from_secs(2)).await;
    assert_eq!((change.from, change.to), (State::Up, State::Down));
    assert_eq!(change.diag, Diag::DETECTION_TIME_EXPIRED);
    let took = silent_since.elapsed();
    assert!(took < Duration::from_millis(400), "{took:?}");
    // It speaks again: up again.
    speaking.store(true, Ordering::Relaxed);
    loop {
        let change = next_change(&mut events, Duration::from_secs(5)).await;
        if change.to == State::Up {
            break;
        }
    }
    // A stop says AdminDown to the peer.
    while seen.try_recv().is_ok() {}
    bfd.stop().await;
    admin_down_reaches(&mut seen).await;
    // Said three times in all (one lost packet must not look like a failed path), at the
    // rate the peer expected packets.
    let mut more = 0;
    let _ = tokio::time::timeout(Duration::from_millis(300), async {
        while let Some(packet) = seen.recv().await {
            more += usize::from(packet.state == State::AdminDown);
        }
    })
    .await;
    assert_eq!(more, 2);
}

#[test]
fn an_arrival_is_placed_between_the_last_wakeup_and_this_one_and_a_set_clock_is_not_trusted() {
    let base = Instant::now().into_std();
    let wall = Duration::from_secs(1_000_000);
    let ms = Duration::from_millis;
    let previous = Clocks { mono: base, wall };
    let turn = Clocks {
        mono: base + ms(20),
        wall: wall + ms(20),
    };
    // Stamped 8 ms before this wakeup: 8 ms before it on the monotonic clock.
    assert_eq!(arrival(turn, previous, Some(wall + ms(12))), base + ms(12));
    // No stamp: now.
    assert_eq!(arrival(turn, previous, None), base + ms(20));
    // Stamped after the wakeup's reading, or before the previous wakeup: held within them.
    assert_eq!(arrival(turn, previous, Some(wall + ms(25))), base + ms(20));
    assert_eq!(arrival(turn, previous, Some(wall - ms(30))), base);
    // The wall clock set forward (or back) between the wakeups: the stamp means nothing.
    let stepped = Clocks {
        mono: base + ms(20),
        wall: wall + ms(5020),
    };
    assert_eq!(
        arrival(stepped, previous, Some(wall + ms(5012))),
        base + ms(20)
    );
    let back = Clocks {
        mono: base + ms(20),
        wall: wall - ms(3000),
    };
    assert_eq!(
        arrival(back, previous, Some(wall - ms(3008))),
        base + ms(20)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_driver_says_admin_down_and_a_second_stop_returns_at_once() {
    let _ports = PORTS.lock().await;
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let bfd = Bfd::start(events_tx).expect("the driver starts");
    let mut seen = spawn_peer(Arc::new(AtomicBool::new(true)));
    bfd.set(vec![Spec {
        key: Key {
            peer: PEER,
            interface: None,
            scope_id: 0,
            multihop: false,
        },
        local: Some(DRIVER),
        settings: fast(),
        minimum_ttl: 254,
    }]);
    loop {
        if next_change(&mut events, Duration::from_secs(5)).await.to == State::Up {
            break;
        }
    }
    while seen.try_recv().is_ok() {}
    drop(bfd);
    admin_down_reaches(&mut seen).await;

    // Stopped, then stopped again: the second finds no thread and does not wait.
    let (events_tx, _events) = mpsc::unbounded_channel();
    let bfd = Bfd::start(events_tx).expect("the driver starts");
    bfd.stop().await;
    let again = Instant::now();
    bfd.stop().await;
    assert!(again.elapsed() < Duration::from_millis(500));
}
