use super::*;

const MS: Duration = Duration::from_millis(1);

fn settings(tx_ms: u64, rx_ms: u64, mult: u8) -> Settings {
    Settings {
        desired_min_tx: MS * tx_ms as u32,
        required_min_rx: MS * rx_ms as u32,
        detect_mult: mult,
        passive: false,
    }
}

/// Two sessions joined by a link with a 1 ms delay, on a simulated clock.
struct Pair {
    start: Instant,
    now: Instant,
    sessions: [Session; 2],
    /// Packets on the way: (arrival, to whom, packet).
    flight: Vec<(Instant, usize, ControlPacket)>,
    /// Whether what each side sends arrives.
    delivers: [bool; 2],
    /// Every packet sent: (time since start, by whom, packet).
    sent: Vec<(Duration, usize, ControlPacket)>,
    changes: Vec<(Duration, usize, Change)>,
}

impl Pair {
    #[allow(clippy::disallowed_methods)] // a starting point; the clock is simulated after it
    fn new(a: Settings, b: Settings) -> Pair {
        let start = Instant::now();
        Pair {
            start,
            now: start,
            sessions: [
                Session::new(a, 0x11, 1, start),
                Session::new(b, 0x22, 2, start),
            ],
            flight: Vec::new(),
            delivers: [true, true],
            sent: Vec::new(),
            changes: Vec::new(),
        }
    }

    fn take(&mut self, who: usize, outputs: Vec<Output>) {
        let at = self.now - self.start;
        for output in outputs {
            match output {
                Output::Send(packet) => {
                    self.sent.push((at, who, packet));
                    if self.delivers[who] {
                        self.flight.push((self.now + MS, 1 - who, packet));
                    }
                }
                Output::Changed(change) => self.changes.push((at, who, change)),
            }
        }
    }

    /// Runs every event up to `until` (since the start).
    fn run_until(&mut self, until: Duration) {
        let end = self.start + until;
        loop {
            let timers = self.sessions.iter().filter_map(Session::next_deadline);
            let arrivals = self.flight.iter().map(|(at, _, _)| *at);
            let Some(next) = timers.chain(arrivals).min() else {
                break;
            };
            if next > end {
                break;
            }
            self.now = next;
            if let Some(i) = self.flight.iter().position(|(at, _, _)| *at <= next) {
                let (_, to, packet) = self.flight.remove(i);
                let outputs = self.sessions[to].on_packet(self.now, &packet);
                self.take(to, outputs);
                continue;
            }
            for who in 0..2 {
                if self.sessions[who]
                    .next_deadline()
                    .is_some_and(|d| d <= next)
                {
                    let outputs = self.sessions[who].on_timer(self.now);
                    self.take(who, outputs);
                }
            }
        }
        self.now = end;
    }

    fn both(&self, state: State) -> bool {
        self.sessions.iter().all(|s| s.state() == state)
    }

    /// The gaps between `who`'s packets sent in [from, to).
    fn gaps(&self, who: usize, from: Duration, to: Duration) -> Vec<Duration> {
        let times: Vec<Duration> = self
            .sent
            .iter()
            .filter(|(at, w, _)| *w == who && *at >= from && *at < to)
            .map(|(at, _, _)| *at)
            .collect();
        times.windows(2).map(|w| w[1] - w[0]).collect()
    }
}

#[test]
fn two_sessions_come_up_by_the_three_way_handshake() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(MS * 10);
    assert!(pair.both(State::Up), "{:?}", pair.changes);
    // Down -> Init -> Up on one side, Down -> Up on the other: three changes in all.
    let ups: Vec<_> = pair
        .changes
        .iter()
        .filter(|(_, _, c)| c.to == State::Up)
        .collect();
    assert_eq!(ups.len(), 2);
    assert!(
        pair.changes
            .iter()
            .all(|(_, _, c)| c.diag == Diag::NONE && !c.peer_admin_down)
    );
    assert_eq!(pair.sessions[0].remote_discr(), 0x22);
    assert_eq!(pair.sessions[1].remote_discr(), 0x11);
}

#[test]
fn intervals_are_negotiated_and_the_slow_rate_ends_by_a_poll_once_up() {
    // A: send every 50 ms, accept no faster than 200 ms. B: send every 100 ms, accept 50 ms.
    let mut pair = Pair::new(settings(50, 200, 3), settings(100, 50, 4));
    pair.run_until(Duration::from_secs(3));
    assert!(pair.both(State::Up));
    let [a, b] = &pair.sessions;
    assert!(!a.polling() && !b.polling());
    // TX = max(our desired min TX, their required min RX).
    assert_eq!(a.tx_interval(), Some(MS * 50));
    assert_eq!(b.tx_interval(), Some(MS * 200));
    // Detection = their multiplier x max(our required min RX, their desired min TX).
    assert_eq!(a.detection_time(), Some(MS * 4 * 200));
    assert_eq!(b.detection_time(), Some(MS * 3 * 50));
    // A's packets once settled come every 37.5 to 50 ms; B's every 150 to 200 ms.
    let settled = Duration::from_secs(1);
    for (who, interval) in [(0, 50u32), (1, 200)] {
        let gaps = pair.gaps(who, settled, Duration::from_secs(3));
        assert!(!gaps.is_empty());
        for gap in gaps {
            assert!(
                gap >= MS * interval * 3 / 4 && gap <= MS * interval,
                "{who}: {gap:?}"
            );
        }
    }
    // The Up packets asked for the change with P, and the answers carried F.
    assert!(
        pair.sent
            .iter()
            .any(|(_, w, p)| *w == 0 && p.poll && p.desired_min_tx_us == 50_000)
    );
    assert!(pair.sent.iter().any(|(_, w, p)| *w == 1 && p.final_));
    assert!(pair.sent.iter().all(|(_, _, p)| !(p.poll && p.final_)));
}

#[test]
fn a_lone_session_sends_once_a_second_with_jitter() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.delivers = [false, false];
    pair.run_until(Duration::from_secs(20));
    assert!(pair.both(State::Down));
    for who in 0..2 {
        let gaps = pair.gaps(who, Duration::ZERO, Duration::from_secs(20));
        assert!(gaps.len() >= 19, "{gaps:?}");
        assert!(
            gaps.iter().all(|g| *g >= MS * 750 && *g <= MS * 1000),
            "{gaps:?}"
        );
        // Jittered: not all the same.
        assert!(gaps.iter().any(|g| *g != gaps[0]));
        for (_, _, packet) in pair.sent.iter().filter(|(_, w, _)| *w == who) {
            assert_eq!(
                packet.desired_min_tx_us, 1_000_000,
                "at least 1 s while not Up"
            );
            assert_eq!(packet.your_discr, 0);
            assert_eq!(packet.state, State::Down);
        }
    }
}

#[test]
fn jitter_windows_stay_within_75_to_100_percent_and_within_90_with_a_multiplier_of_1() {
    let mut jitter = Jitter::new(7);
    let from = Pair::new(settings(50, 50, 3), settings(50, 50, 3)).start;
    for interval in [MS * 10, MS * 50, MS * 300, MS * 1000, MS * 60_000] {
        let early = early_window(interval);
        for (mult, longest) in [(3, interval), (1, interval * 9 / 10)] {
            let windows: Vec<TxWindow> = (0..10_000)
                .map(|_| jitter.window(from, interval, mult))
                .collect();
            for w in &windows {
                // Sent anywhere in its window, the interval keeps to section 6.8.7, with
                // room to spare for a late wakeup.
                assert!(w.earliest - from >= interval * 3 / 4, "{interval:?} {w:?}");
                assert!(w.latest - from < longest, "{interval:?} {w:?}");
                assert!(w.latest - w.earliest <= early, "{interval:?} {w:?}");
            }
            // The whole range is used: shortest and longest both reached (within 2%), and
            // the window is the early one wherever the shortest does not cut it.
            let close = interval / 50;
            assert!(
                windows
                    .iter()
                    .any(|w| w.latest - from < interval * 3 / 4 + close)
            );
            assert!(windows.iter().any(|w| w.latest - from > longest - close));
            assert!(windows.iter().any(|w| w.latest - w.earliest == early));
        }
    }
    // Seed 0 (xorshift's fixed point) still jitters.
    let mut zero = Jitter::new(0);
    let values: Vec<TxWindow> = (0..10).map(|_| zero.window(from, MS * 1000, 3)).collect();
    assert!(values.iter().any(|v| *v != values[0]));
}

/// Ten sessions Up at 50 ms with ten peers, driven as the driver drives them: one wakeup at
/// the earliest deadline fires every session whose window is open.
#[test]
fn sessions_sent_together_in_their_windows_keep_every_interval_within_bounds() {
    let mut pairs: Vec<Pair> = (0..10)
        .map(|_| Pair::new(settings(50, 50, 3), settings(50, 50, 3)))
        .collect();
    for (i, pair) in pairs.iter_mut().enumerate() {
        // Different jitter on each side of each pair.
        pair.sessions[0].jitter = Jitter::new(100 + i as u64);
        pair.run_until(Duration::from_secs(2));
        assert!(pair.both(State::Up));
        pair.delivers = [false, true];
        pair.sent.clear();
    }
    let start = pairs[0].now;
    let end = start + Duration::from_secs(20);
    let mut wakeups = 0;
    loop {
        // Keep the peers' packets coming (A would otherwise go Down after 150 ms).
        let next = pairs
            .iter()
            .filter_map(|p| p.sessions[0].next_deadline())
            .min()
            .expect("a deadline");
        if next > end {
            break;
        }
        for pair in &mut pairs {
            let peer = pair.sessions[1].current_packet();
            let outputs = pair.sessions[0].on_packet(next, &peer);
            pair.now = next;
            pair.take(0, outputs);
        }
        wakeups += 1;
        for pair in &mut pairs {
            if pair.sessions[0]
                .next_earliest()
                .is_some_and(|at| at <= next)
            {
                let outputs = pair.sessions[0].on_timer(next);
                pair.take(0, outputs);
            }
        }
    }
    let mut packets = 0;
    for pair in &pairs {
        let from = start - pair.start;
        let gaps = pair.gaps(0, from, from + Duration::from_secs(20));
        packets += gaps.len() + 1;
        assert!(
            gaps.iter().all(|g| *g >= MS * 75 / 2 && *g <= MS * 50),
            "{gaps:?}"
        );
    }
    // 10 sessions at 43.75 ms on average: about 4,600 packets, in far fewer wakeups.
    assert!(packets > 4_000, "{packets}");
    assert!(
        wakeups * 3 < packets * 2,
        "{wakeups} wakeups for {packets} packets"
    );
}

#[test]
fn the_detection_time_counts_from_a_packets_arrival_not_from_when_it_was_read() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    assert!(pair.both(State::Up));
    let now = pair.now;
    let arrived = now - MS * 8;
    let packet = pair.sessions[1].current_packet();
    let outputs = pair.sessions[0].on_packet_received(now, arrived, &packet);
    assert!(outputs.is_empty(), "{outputs:?}");
    // Down 150 ms after the arrival, and not a moment before.
    let session = &mut pair.sessions[0];
    let before = session.on_timer(arrived + MS * 149);
    assert!(
        !before.iter().any(|o| matches!(o, Output::Changed(_))),
        "{before:?}"
    );
    let at = session.on_timer(arrived + MS * 150);
    assert!(
        at.iter()
            .any(|o| matches!(o, Output::Changed(c) if c.diag == Diag::DETECTION_TIME_EXPIRED)),
        "{at:?}"
    );
}

#[test]
fn a_silent_peer_is_declared_down_at_the_detection_time_and_not_before() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    assert!(pair.both(State::Up));
    let cut = pair.now - pair.start;
    pair.delivers[1] = false;
    // B's last packet to arrive left before the cut, and arrived 1 ms later.
    let (last, _, _) = *pair
        .sent
        .iter()
        .rfind(|(_, who, _)| *who == 1)
        .expect("B sent");
    let arrived = last + MS;
    pair.run_until(arrived + MS * 149);
    assert_eq!(pair.sessions[0].state(), State::Up, "down before 150 ms");
    pair.run_until(cut + MS * 200);
    let (at, _, change) = pair
        .changes
        .iter()
        .rfind(|(_, who, _)| *who == 0)
        .copied()
        .expect("A changed");
    assert_eq!((change.from, change.to), (State::Up, State::Down));
    assert_eq!(change.diag, Diag::DETECTION_TIME_EXPIRED);
    assert!(!change.peer_admin_down);
    // At the detection time after that packet, to the microsecond.
    assert_eq!(at, arrived + MS * 150);
    // Its discriminator is forgotten, and A sends slowly again.
    assert_eq!(pair.sessions[0].remote_discr(), 0);
    assert_eq!(pair.sessions[0].tx_interval(), Some(SLOW_TX.max(MS * 50)));
    // The link returns: B, which saw A go Down, and A come up again.
    pair.delivers[1] = true;
    pair.run_until(cut + Duration::from_secs(6));
    assert!(pair.both(State::Up), "{:?}", pair.changes);
}

#[test]
fn a_slower_tx_waits_for_the_final_and_a_faster_one_applies_at_once() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    let now = pair.now;
    // Slower: A keeps sending every 50 ms until B's Final comes back.
    let outputs = pair.sessions[0].set_settings(now, settings(300, 50, 3));
    assert!(
        matches!(outputs.as_slice(), [Output::Send(p)] if p.poll && p.desired_min_tx_us == 300_000)
    );
    assert_eq!(pair.sessions[0].tx_interval(), Some(MS * 50));
    assert!(pair.sessions[0].polling());
    pair.take(0, outputs);
    pair.run_until(now - pair.start + MS * 5);
    assert!(!pair.sessions[0].polling());
    assert_eq!(pair.sessions[0].tx_interval(), Some(MS * 300));
    // B's detection of A follows A's new desired TX: 3 x 300 ms.
    assert_eq!(pair.sessions[1].detection_time(), Some(MS * 900));
    // Faster again: at once.
    let now = pair.now;
    let outputs = pair.sessions[0].set_settings(now, settings(50, 50, 3));
    assert_eq!(pair.sessions[0].tx_interval(), Some(MS * 50));
    pair.take(0, outputs);
    pair.run_until(now - pair.start + Duration::from_secs(2));
    assert!(pair.both(State::Up));
    assert!(!pair.sessions[0].polling());
}

#[test]
fn a_lower_rx_keeps_the_old_detection_time_until_the_final() {
    let mut pair = Pair::new(settings(50, 300, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    assert_eq!(pair.sessions[0].detection_time(), Some(MS * 900));
    let now = pair.now;
    pair.delivers[1] = false;
    let outputs = pair.sessions[0].set_settings(now, settings(50, 50, 3));
    pair.take(0, outputs);
    // No Final (B's packets are lost): still 3 x 300 ms.
    assert_eq!(pair.sessions[0].detection_time(), Some(MS * 900));
    pair.delivers[1] = true;
    pair.run_until(now - pair.start + Duration::from_millis(500));
    assert_eq!(pair.sessions[0].detection_time(), Some(MS * 150));
    assert!(pair.both(State::Up));
}

#[test]
fn admin_down_takes_the_peer_down_without_blaming_the_path() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    let now = pair.now;
    let outputs = pair.sessions[0].admin_down(now);
    assert!(
        matches!(outputs.first(), Some(Output::Changed(c)) if c.to == State::AdminDown && c.diag == Diag::ADMINISTRATIVELY_DOWN)
    );
    assert!(matches!(outputs.last(), Some(Output::Send(p)) if p.state == State::AdminDown));
    pair.take(0, outputs);
    pair.run_until(now - pair.start + Duration::from_secs(5));
    let b = &pair.sessions[1];
    assert_eq!(b.state(), State::Down);
    assert_eq!(b.diag(), Diag::NEIGHBOR_SIGNALED_DOWN);
    let (_, _, change) = pair
        .changes
        .iter()
        .rfind(|(_, who, c)| *who == 1 && c.to == State::Down)
        .copied()
        .expect("B went down");
    assert!(change.peer_admin_down);
    // A stays AdminDown whatever B sends, and keeps saying so once a second.
    assert_eq!(pair.sessions[0].state(), State::AdminDown);
    let gaps = pair.gaps(
        0,
        now - pair.start + MS * 10,
        now - pair.start + Duration::from_secs(5),
    );
    assert!(gaps.iter().all(|g| *g >= MS * 750), "{gaps:?}");
    // Open again: the handshake runs once more.
    let now = pair.now;
    let outputs = pair.sessions[0].admin_up(now);
    pair.take(0, outputs);
    pair.run_until(now - pair.start + Duration::from_secs(3));
    assert!(pair.both(State::Up));
}

#[test]
fn a_passive_session_waits_for_the_peer_to_speak_first() {
    let passive = Settings {
        passive: true,
        ..settings(50, 50, 3)
    };
    let mut pair = Pair::new(passive, settings(50, 50, 3));
    pair.delivers[1] = false;
    pair.run_until(Duration::from_secs(5));
    assert!(
        pair.sent.iter().all(|(_, who, _)| *who == 1),
        "the passive side sent"
    );
    pair.delivers[1] = true;
    pair.run_until(Duration::from_secs(8));
    assert!(pair.both(State::Up));
    // Two passive sides never start.
    let mut quiet = Pair::new(passive, passive);
    quiet.run_until(Duration::from_secs(5));
    assert!(quiet.sent.is_empty());
}

#[test]
fn a_restarted_peer_with_a_new_discriminator_is_met_again() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    let now = pair.now;
    pair.sessions[1] = Session::new(settings(50, 50, 3), 0x33, 9, now);
    pair.flight.clear();
    pair.run_until(now - pair.start + Duration::from_secs(3));
    assert!(pair.both(State::Up));
    assert_eq!(pair.sessions[0].remote_discr(), 0x33);
    // A saw the new B's Down and went down for it, then up.
    assert!(pair.changes.iter().any(|(_, who, c)| *who == 0
        && c.to == State::Down
        && c.diag == Diag::NEIGHBOR_SIGNALED_DOWN));
}

#[test]
#[allow(clippy::disallowed_methods)] // a starting point only
fn a_peer_that_wants_no_packets_gets_none_and_a_poll_still_gets_its_final() {
    let start = Instant::now();
    let mut session = Session::new(settings(50, 50, 3), 1, 3, start);
    let first = session.on_timer(start);
    assert_eq!(first.len(), 1);
    let silent_peer = ControlPacket {
        diag: Diag::NONE,
        state: State::Down,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: false,
        detect_mult: 3,
        my_discr: 9,
        your_discr: 0,
        desired_min_tx_us: 1_000_000,
        required_min_rx_us: 0,
        required_min_echo_rx_us: 0,
    };
    let outputs = session.on_packet(start + MS, &silent_peer);
    // Down -> Init is still announced, but nothing periodic follows.
    assert!(matches!(outputs.first(), Some(Output::Changed(c)) if c.to == State::Init));
    assert_eq!(session.tx_interval(), None);
    assert_eq!(session.next_tx(), None);
    let polled = ControlPacket {
        poll: true,
        state: State::Init,
        your_discr: 1,
        ..silent_peer
    };
    let outputs = session.on_packet(start + MS * 2, &polled);
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Send(p) if p.final_ && !p.poll))
    );
}

#[test]
#[allow(clippy::disallowed_methods)] // a starting point only
fn a_packet_for_another_discriminator_changes_nothing_and_demand_is_only_noted() {
    let start = Instant::now();
    let mut session = Session::new(settings(50, 50, 3), 1, 3, start);
    let stray = ControlPacket {
        diag: Diag::NONE,
        state: State::Init,
        poll: false,
        final_: false,
        control_plane_independent: false,
        demand: true,
        detect_mult: 3,
        my_discr: 9,
        your_discr: 2,
        desired_min_tx_us: 50_000,
        required_min_rx_us: 50_000,
        required_min_echo_rx_us: 0,
    };
    assert!(session.on_packet(start, &stray).is_empty());
    assert_eq!(session.remote_discr(), 0);
    let demand = ControlPacket {
        your_discr: 1,
        ..stray
    };
    session.on_packet(start, &demand);
    assert!(session.remote_demand());
    assert_eq!(session.state(), State::Up);
    // Periodic packets go on (Demand mode is not entered), never with D.
    let outputs = session.on_timer(start + Duration::from_secs(1));
    assert!(
        outputs
            .iter()
            .any(|o| matches!(o, Output::Send(p) if !p.demand))
    );
}

#[test]
fn a_change_asked_during_a_poll_waits_for_its_final_and_then_polls_again() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    let now = pair.now;
    // B's answers are lost: A's first Poll (to 300 ms) stays open.
    pair.delivers[1] = false;
    let outputs = pair.sessions[0].set_settings(now, settings(300, 50, 3));
    pair.take(0, outputs);
    let outputs = pair.sessions[0].set_settings(now, settings(500, 50, 3));
    pair.take(0, outputs);
    // Still asking for 300 ms: the 500 waits.
    let last = pair
        .sent
        .iter()
        .rev()
        .find(|(_, w, _)| *w == 0)
        .expect("sent");
    assert_eq!(last.2.desired_min_tx_us, 300_000);
    assert_eq!(pair.sessions[0].tx_interval(), Some(MS * 50));
    // The Final arrives: 300 ms in use, and a new Poll for 500 ms, in use at its Final.
    pair.delivers[1] = true;
    pair.run_until(now - pair.start + Duration::from_secs(3));
    assert!(pair.both(State::Up));
    assert!(!pair.sessions[0].polling());
    assert_eq!(pair.sessions[0].tx_interval(), Some(MS * 500));
    assert!(
        pair.sent
            .iter()
            .any(|(_, w, p)| *w == 0 && p.poll && p.desired_min_tx_us == 500_000)
    );
}

#[test]
fn after_a_peer_that_wanted_nothing_times_out_the_session_sends_again() {
    let mut pair = Pair::new(settings(50, 50, 3), settings(50, 50, 3));
    pair.run_until(Duration::from_secs(2));
    let now = pair.now;
    // B says it wants no packets, then falls silent.
    let mut quiet = pair.sessions[1].current_packet();
    quiet.required_min_rx_us = 0;
    let outputs = pair.sessions[0].on_packet(now, &quiet);
    pair.take(0, outputs);
    assert_eq!(pair.sessions[0].tx_interval(), None);
    pair.delivers[1] = false;
    pair.run_until(now - pair.start + Duration::from_secs(3));
    assert_eq!(pair.sessions[0].state(), State::Down);
    // Sending again, slowly, for whoever comes next.
    assert_eq!(pair.sessions[0].tx_interval(), Some(SLOW_TX));
    let later = pair.now - pair.start;
    pair.run_until(later + Duration::from_secs(3));
    assert!(pair.sent.iter().any(|(at, w, _)| *w == 0 && *at > later));
}

#[test]
fn a_passive_session_whose_peer_went_quiet_sends_nothing_more() {
    let passive = Settings {
        passive: true,
        ..settings(50, 50, 3)
    };
    let mut pair = Pair::new(passive, settings(50, 50, 3));
    pair.run_until(Duration::from_secs(3));
    assert!(pair.both(State::Up));
    pair.delivers[1] = false;
    let cut = pair.now - pair.start;
    pair.run_until(cut + Duration::from_secs(1));
    assert_eq!(pair.sessions[0].state(), State::Down);
    // The Down it announced at the change, then silence (section 6.8.7).
    let after: Vec<_> = pair
        .sent
        .iter()
        .filter(|(at, w, _)| *w == 0 && *at > cut + MS * 200)
        .collect();
    assert!(after.is_empty(), "{after:?}");
}
