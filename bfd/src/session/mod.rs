//! One BFD session in asynchronous mode (RFC 5880 section 6), without I/O and without a
//! clock: the driver hands it each received packet and the time, fires its timers when
//! [`Session::next_deadline`] comes, and sends what it returns.
//!
//! - The three-way handshake (Down, Init, Up) and the peer's AdminDown (section 6.8.6).
//! - Negotiated intervals: we send every max(our Desired Min TX, their Required Min RX), less
//!   jitter, and declare the session down after their multiplier times max(our Required Min
//!   RX, their Desired Min TX) without a packet (sections 6.8.2 to 6.8.4).
//! - No faster than one packet a second while not Up (6.8.3): the configured interval is
//!   asked for by a Poll Sequence once Up, as any later change of ours is. An increase of our
//!   TX interval, and a decrease of our RX interval, take effect when the Final comes back.
//! - Jitter (6.8.7): each interval is 75 to 100 percent of the negotiated one, at most 90
//!   percent with a multiplier of 1. A periodic packet has a window rather than a moment:
//!   it may leave up to [`early_window`] before its jittered time, but never before the
//!   shortest interval, so every interval stays within those bounds. A driver with many
//!   sessions sends all whose window is open in one wakeup ([`Session::next_earliest`]).
//! - Passive mode: nothing is sent before the peer's first packet (6.1).
//! - Demand mode is not offered (the D bit is never set). A peer that asks for it is noted
//!   ([`Session::remote_demand`]) and keeps receiving periodic packets, so its detection goes
//!   on working.
//! - Echo mode is not offered: Required Min Echo RX Interval is 0 in every packet.
use crate::packet::{ControlPacket, Diag, State};
use std::time::{Duration, Instant};

/// While a session is not Up, it sends no faster than this (section 6.8.3).
pub const SLOW_TX: Duration = Duration::from_secs(1);

/// What a session is configured with (a BFDProfile, for the speaker).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// bfd.DesiredMinTxInterval once Up (the profile's transmitInterval).
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval (receiveInterval).
    pub required_min_rx: Duration,
    /// bfd.DetectMult (detectMultiplier).
    pub detect_mult: u8,
    /// Send nothing until the peer has sent something (passiveMode).
    pub passive: bool,
}

impl Default for Settings {
    /// MetalLB's BFDProfile defaults: 300 ms both ways, multiplier 3, active.
    fn default() -> Settings {
        Settings {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
            passive: false,
        }
    }
}

/// A state change, as the session's user sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub from: State,
    pub to: State,
    /// Why (the local diagnostic).
    pub diag: Diag,
    /// The peer said AdminDown: its side was shut on purpose, the path is fine, and
    /// RFC 5882 section 3.2 says the protocols BFD serves must not go down for it.
    pub peer_admin_down: bool,
}

/// What the driver must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Send(ControlPacket),
    Changed(Change),
}

/// How long before its jittered time a periodic packet may leave: a tenth of the interval,
/// at most 5 ms (a few milliseconds let a driver send many sessions' packets in one
/// wakeup; the wider the window, the more the times follow other sessions' rather than
/// the jitter).
pub fn early_window(interval: Duration) -> Duration {
    (interval / 10).min(Duration::from_millis(5))
}

/// When a periodic packet may leave, and when it must.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TxWindow {
    earliest: Instant,
    latest: Instant,
}

impl TxWindow {
    fn at(at: Instant) -> TxWindow {
        TxWindow {
            earliest: at,
            latest: at,
        }
    }
}

/// The jitter source: xorshift64, seeded by the driver (tests seed it to replay).
#[derive(Clone, Debug)]
struct Jitter(u64);

impl Jitter {
    fn new(seed: u64) -> Jitter {
        // Zero is xorshift's one fixed point.
        Jitter(seed | 1)
    }

    /// When the packet after one sent at `from` may leave: the interval reduced by a
    /// random 0 to 25 percent (10 to 25 percent when `mult` is 1), and up to
    /// [`early_window`] before that, but not before the shortest interval. The longest
    /// keeps a hundredth of the interval (at most 500 µs) in hand for a wakeup that comes a
    /// little late.
    fn window(&mut self, from: Instant, interval: Duration, mult: u8) -> TxWindow {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        let shortest = interval * 3 / 4;
        let longest = if mult == 1 {
            interval * 9 / 10
        } else {
            interval
        } - (interval / 100).min(Duration::from_micros(500));
        let span = (longest - shortest).as_micros() as u64;
        let latest = shortest + Duration::from_micros(self.0 % (span + 1));
        TxWindow {
            earliest: from + latest.saturating_sub(early_window(interval)).max(shortest),
            latest: from + latest,
        }
    }
}

/// One BFD session.
#[derive(Clone, Debug)]
pub struct Session {
    settings: Settings,
    local_discr: u32,
    state: State,
    diag: Diag,
    remote_discr: u32,
    remote_state: State,
    /// bfd.RemoteMinRxInterval: 1 µs until the peer says (section 6.8.1).
    remote_min_rx: Duration,
    remote_desired_min_tx: Duration,
    remote_detect_mult: u8,
    remote_demand: bool,
    /// The Desired Min TX Interval our packets carry (at least [`SLOW_TX`] while not Up).
    desired_min_tx: Duration,
    /// The one our transmit interval uses: an increase waits for the Poll's Final.
    tx_in_use: Duration,
    /// The Required Min RX Interval our packets carry.
    required_min_rx: Duration,
    /// The one the detection time uses: a decrease waits for the Poll's Final.
    rx_in_use: Duration,
    /// A Poll Sequence is under way: our packets carry P until a Final arrives.
    polling: bool,
    /// Intervals asked for while a Poll was under way: asked for once it ends, so a Final
    /// never confirms values the peer has not seen.
    queued: Option<(Duration, Duration)>,
    /// Whether a packet of the current Poll has gone out: a Final before that answers an
    /// earlier Poll.
    poll_sent: bool,
    next_tx: Option<TxWindow>,
    last_tx: Option<Instant>,
    /// When the peer is declared down without a packet; None before its first packet.
    detect_at: Option<Instant>,
    jitter: Jitter,
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Session {
    /// A session in state Down. `local_discr` must be nonzero and unique on this system;
    /// `seed` feeds the jitter.
    pub fn new(settings: Settings, local_discr: u32, seed: u64, now: Instant) -> Session {
        let slow = settings.desired_min_tx.max(SLOW_TX);
        let mut session = Session {
            settings,
            local_discr,
            state: State::Down,
            diag: Diag::NONE,
            remote_discr: 0,
            remote_state: State::Down,
            remote_min_rx: Duration::from_micros(1),
            remote_desired_min_tx: Duration::ZERO,
            remote_detect_mult: 0,
            remote_demand: false,
            desired_min_tx: slow,
            tx_in_use: slow,
            required_min_rx: settings.required_min_rx,
            rx_in_use: settings.required_min_rx,
            polling: false,
            queued: None,
            poll_sent: false,
            next_tx: None,
            last_tx: None,
            detect_at: None,
            jitter: Jitter::new(seed),
        };
        if session.may_send() {
            session.next_tx = Some(TxWindow::at(now));
        }
        session
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// Why the session last changed state.
    pub fn diag(&self) -> Diag {
        self.diag
    }

    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    /// The peer's discriminator; 0 until it has sent one, and again once it is lost.
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the peer asked for Demand mode (which FerroLB does not offer).
    pub fn remote_demand(&self) -> bool {
        self.remote_demand
    }

    /// Whether a Poll Sequence is under way.
    pub fn polling(&self) -> bool {
        self.polling
    }

    /// The negotiated transmit interval before jitter; None when the peer wants no packets.
    pub fn tx_interval(&self) -> Option<Duration> {
        (!self.remote_min_rx.is_zero()).then(|| self.tx_in_use.max(self.remote_min_rx))
    }

    /// How long without a packet until the session is declared down; None before the
    /// peer's first packet.
    pub fn detection_time(&self) -> Option<Duration> {
        (self.remote_detect_mult > 0).then(|| {
            self.rx_in_use.max(self.remote_desired_min_tx) * u32::from(self.remote_detect_mult)
        })
    }

    /// The latest moment [`Session::on_timer`] must be called: a periodic packet due, or
    /// the detection time ending.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.next_tx
            .map(|w| w.latest)
            .into_iter()
            .chain(self.detect_at)
            .min()
    }

    /// The first moment [`Session::on_timer`] has something to do: a periodic packet's
    /// window opens (up to [`early_window`] before [`Session::next_deadline`]), or the
    /// detection time ends.
    pub fn next_earliest(&self) -> Option<Instant> {
        self.next_tx
            .map(|w| w.earliest)
            .into_iter()
            .chain(self.detect_at)
            .min()
    }

    /// When the next periodic packet is due at the latest (for the driver's lateness
    /// metric).
    pub fn next_tx(&self) -> Option<Instant> {
        self.next_tx.map(|w| w.latest)
    }

    fn may_send(&self) -> bool {
        !(self.settings.passive && self.remote_discr == 0)
    }

    fn packet(&self, final_: bool) -> ControlPacket {
        ControlPacket {
            diag: self.diag,
            state: self.state,
            // Never both (section 6.5): a Final goes out alone, the Poll with the next one.
            poll: self.polling && !final_,
            final_,
            control_plane_independent: false,
            demand: false,
            detect_mult: self.settings.detect_mult,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx_us: micros(self.desired_min_tx),
            required_min_rx_us: micros(self.required_min_rx),
            required_min_echo_rx_us: 0,
        }
    }

    fn schedule(&mut self, now: Instant) {
        self.next_tx = match self.tx_interval() {
            Some(interval) if self.may_send() => {
                Some(self.jitter.window(now, interval, self.settings.detect_mult))
            }
            _ => None,
        };
    }

    /// The packet this session would send now (the driver repeats a removed session's
    /// AdminDown with it).
    pub fn current_packet(&self) -> ControlPacket {
        self.packet(false)
    }

    fn sent(&mut self, now: Instant, packet: ControlPacket, out: &mut Vec<Output>) {
        out.push(Output::Send(packet));
        self.poll_sent |= packet.poll;
        self.last_tx = Some(now);
        self.schedule(now);
    }

    /// Sends a packet now (a state change, a Poll, a Final) and counts the periodic
    /// interval from it.
    fn send_now(&mut self, now: Instant, final_: bool, out: &mut Vec<Output>) {
        if !self.may_send() {
            // Passive, and the peer gone quiet: nothing at all (section 6.8.7).
            self.next_tx = None;
            return;
        }
        let packet = self.packet(final_);
        self.sent(now, packet, out);
    }

    /// The timers: a periodic packet whose window is open, or the peer silent for the
    /// detection time.
    pub fn on_timer(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.detect_at.is_some_and(|at| now >= at) {
            self.detect_at = None;
            // Its discriminator is forgotten (section 6.8.1): a restarted peer picks a new
            // one. So is everything else it said (6.8.18): a peer that last asked for no
            // packets must not silence us for good.
            self.remote_discr = 0;
            self.remote_state = State::Down;
            self.remote_detect_mult = 0;
            self.remote_min_rx = Duration::from_micros(1);
            self.remote_desired_min_tx = Duration::ZERO;
            self.remote_demand = false;
            if matches!(self.state, State::Init | State::Up) {
                let diag = Diag::DETECTION_TIME_EXPIRED;
                self.change(State::Down, diag, false, now, &mut out);
            } else if !self.may_send() {
                self.next_tx = None;
            } else if self.next_tx.is_none() {
                self.schedule(now);
            }
        }
        if self.next_tx.is_some_and(|w| now >= w.earliest) {
            if self.may_send() {
                let packet = self.packet(false);
                self.sent(now, packet, &mut out);
            } else {
                self.next_tx = None;
            }
        }
        out
    }

    /// A packet from the peer, already decoded and checked ([`ControlPacket::decode`]) and
    /// routed to this session by the driver.
    pub fn on_packet(&mut self, now: Instant, packet: &ControlPacket) -> Vec<Output> {
        self.on_packet_received(now, now, packet)
    }

    /// [`Session::on_packet`] for a packet that arrived at `received`, a little before
    /// `now` (a driver that reads its sockets at its next wakeup): the detection time counts
    /// from its arrival, everything else from now.
    pub fn on_packet_received(
        &mut self,
        now: Instant,
        received: Instant,
        packet: &ControlPacket,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if packet.your_discr != 0 && packet.your_discr != self.local_discr {
            return out;
        }
        let was_silent = !self.may_send();
        self.remote_discr = packet.my_discr;
        self.remote_state = packet.state;
        self.remote_demand = packet.demand;
        self.remote_min_rx = packet.required_min_rx();
        self.remote_desired_min_tx = packet.desired_min_tx();
        self.remote_detect_mult = packet.detect_mult;
        if packet.final_ && self.polling && self.poll_sent {
            self.polling = false;
            self.tx_in_use = self.desired_min_tx;
            self.rx_in_use = self.required_min_rx;
            if let Some((tx, rx)) = self.queued.take() {
                self.request(tx, rx);
            }
        }
        if self.state == State::AdminDown {
            return out;
        }
        self.detect_at = self.detection_time().map(|d| received + d);
        let before = self.state;
        match (self.state, packet.state) {
            (State::Down | State::AdminDown, State::AdminDown) => {}
            (_, State::AdminDown) => self.change(
                State::Down,
                Diag::NEIGHBOR_SIGNALED_DOWN,
                true,
                now,
                &mut out,
            ),
            (State::Down, State::Down) => {
                self.change(State::Init, Diag::NONE, false, now, &mut out)
            }
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                self.change(State::Up, Diag::NONE, false, now, &mut out)
            }
            (State::Up, State::Down) => self.change(
                State::Down,
                Diag::NEIGHBOR_SIGNALED_DOWN,
                false,
                now,
                &mut out,
            ),
            _ => {}
        }
        if packet.poll {
            self.send_now(now, true, &mut out);
        } else if self.state == before && self.may_send() {
            if was_silent {
                // The peer's first packet frees a passive session.
                self.send_now(now, false, &mut out);
            } else if let Some(interval) = self.tx_interval() {
                // A shorter interval the peer now accepts (or any, after it wanted none)
                // counts from the last packet, not from the end of the old, longer wait.
                let from = self.last_tx.unwrap_or(now);
                if self.next_tx.is_none_or(|w| w.latest > from + interval) {
                    let next = self
                        .jitter
                        .window(from, interval, self.settings.detect_mult);
                    self.next_tx = Some(TxWindow {
                        earliest: next.earliest.max(now),
                        latest: next.latest.max(now),
                    });
                }
            }
        }
        out
    }

    /// Moves to `to`, announces it, and sends a packet at once so the peer learns it
    /// without waiting out an interval.
    fn change(
        &mut self,
        to: State,
        diag: Diag,
        peer_admin_down: bool,
        now: Instant,
        out: &mut Vec<Output>,
    ) {
        let from = self.state;
        self.state = to;
        self.diag = diag;
        out.push(Output::Changed(Change {
            from,
            to,
            diag,
            peer_admin_down,
        }));
        if to == State::Up {
            // Up: ask for the configured intervals (a Poll Sequence, as for any change).
            self.request(self.settings.desired_min_tx, self.settings.required_min_rx);
        } else {
            // Not Up: slow, at once (no Poll needed to slow down outside Up).
            self.polling = false;
            self.queued = None;
            self.desired_min_tx = self.settings.desired_min_tx.max(SLOW_TX);
            self.tx_in_use = self.desired_min_tx;
            self.required_min_rx = self.settings.required_min_rx;
            self.rx_in_use = self.required_min_rx;
        }
        self.send_now(now, false, out);
    }

    /// Asks for new intervals while Up: what is safe at once (sending faster, accepting
    /// slower) applies now, the rest when the peer's Final confirms the Poll.
    fn request(&mut self, desired_min_tx: Duration, required_min_rx: Duration) {
        if self.polling {
            let asked = (self.desired_min_tx, self.required_min_rx);
            self.queued = ((desired_min_tx, required_min_rx) != asked)
                .then_some((desired_min_tx, required_min_rx));
            return;
        }
        if desired_min_tx == self.desired_min_tx && required_min_rx == self.required_min_rx {
            return;
        }
        self.desired_min_tx = desired_min_tx;
        self.required_min_rx = required_min_rx;
        if desired_min_tx < self.tx_in_use {
            self.tx_in_use = desired_min_tx;
        }
        if required_min_rx > self.rx_in_use {
            self.rx_in_use = required_min_rx;
        }
        self.polling = true;
        self.poll_sent = false;
    }

    /// New settings (a changed BFDProfile), without taking the session down.
    pub fn set_settings(&mut self, now: Instant, settings: Settings) -> Vec<Output> {
        let mut out = Vec::new();
        if settings == self.settings {
            return out;
        }
        self.settings = settings;
        match self.state {
            State::Up => {
                self.request(settings.desired_min_tx, settings.required_min_rx);
                if self.polling {
                    self.send_now(now, false, &mut out);
                }
            }
            _ => {
                self.desired_min_tx = settings.desired_min_tx.max(SLOW_TX);
                self.tx_in_use = self.desired_min_tx;
                self.required_min_rx = settings.required_min_rx;
                self.rx_in_use = self.required_min_rx;
                if self.next_tx.is_none() && self.may_send() {
                    self.send_now(now, false, &mut out);
                } else if !self.may_send() {
                    self.next_tx = None;
                }
            }
        }
        out
    }

    /// Shuts the session on purpose (a stopping speaker, a removed peer): the peer is told
    /// AdminDown at once, and keeps being told at the slow rate while the session exists.
    pub fn admin_down(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::AdminDown {
            self.detect_at = None;
            self.change(
                State::AdminDown,
                Diag::ADMINISTRATIVELY_DOWN,
                false,
                now,
                &mut out,
            );
        }
        out
    }

    /// Opens a session shut by [`Session::admin_down`] again: Down, and the handshake.
    pub fn admin_up(&mut self, now: Instant) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state == State::AdminDown {
            self.change(State::Down, Diag::NONE, false, now, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests;
