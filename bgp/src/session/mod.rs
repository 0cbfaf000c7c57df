//! One BGP session as a sans-IO state machine (RFC 4271 section 8): inputs (a start, bytes
//! from the peer, the connection's events, time passing) go in through `handle(now, input)`,
//! and what to do comes out: open a connection, send bytes, close, and what happened (up,
//! down, an UPDATE to read). `next_deadline` says when to call again. The clock is injected,
//! so every timer is tested without waiting.
//!
//! A session has at most two connections at once, one we opened and one the peer opened
//! ([`Link`]); when both get as far as an OPEN, collision detection (RFC 4271 6.8, RFC 6286)
//! keeps one and closes the other with a Cease.
use crate::packet::{
    Capability, Context, Family, GracefulRestart, HEADER_LEN, Message, Notification, Notify, Open,
    RouteRefresh, TYPE_KEEPALIVE, TYPE_NOTIFICATION, TYPE_OPEN, TYPE_ROUTE_REFRESH,
    TYPE_ROUTE_REFRESH_LEGACY, TYPE_UPDATE, Update, code, decode, frame_length, subcode,
};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

#[cfg(test)]
mod tests;

/// How long an OPEN may take to arrive once connected (RFC 4271 suggests 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);
/// The longest wait between connection attempts, however many failed.
const MAX_RETRY: Duration = Duration::from_secs(120);
/// RFC 9687: a peer that reads nothing for this long (or twice the hold time, if longer)
/// is dropped, so a stuck peer cannot hold our routes forever.
const SEND_HOLD_MIN: Duration = Duration::from_secs(480);
/// NOTIFICATION code for RFC 9687's send hold timer.
const SEND_HOLD_EXPIRED: u8 = 8;

/// Which AS the peer must be in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerAs {
    Is(u32),
    /// MetalLB's dynamicASN: internal (our AS) or external (any other).
    Internal,
    External,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub local_as: u32,
    pub peer_as: PeerAs,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Keepalive interval; a third of the negotiated hold time when `None`.
    pub keepalive: Option<Duration>,
    /// The first wait before connecting again; it doubles per failure up to two minutes.
    pub connect_retry: Duration,
    /// Wait for the peer to connect instead of connecting.
    pub passive: bool,
    pub families: Vec<Family>,
    /// Graceful restart (RFC 4724): the restart time announced, and whether this session
    /// starts after our own restart (the R bit, cleared once a session is up). Forwarding is
    /// always said preserved (the F bits).
    pub graceful_restart: Option<(u16, bool)>,
    /// Announce extended next hop for IPv4 routes over IPv6 (RFC 8950).
    pub extended_next_hop: bool,
}

impl Config {
    fn open(&self) -> Open {
        let mut capabilities: Vec<Capability> = self
            .families
            .iter()
            .map(|f| Capability::Multiprotocol(*f))
            .collect();
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::EnhancedRouteRefresh);
        if self.extended_next_hop {
            capabilities.push(Capability::ExtendedNextHop(vec![(
                Family::IPV4_UNICAST,
                crate::packet::Family::IPV6_UNICAST.afi,
            )]));
        }
        if let Some((time, restarting)) = self.graceful_restart {
            capabilities.push(Capability::GracefulRestart(GracefulRestart {
                restarting,
                notification: false,
                time: time & 0x0fff,
                // Forwarding state kept for every family: the data plane (kube-proxy's) does
                // not restart with the speaker.
                families: self.families.iter().map(|f| (*f, true)).collect(),
            }));
        }
        Open::new(self.local_as, self.hold_time, self.router_id, capabilities)
    }
}

/// What both sides agreed on in the OPEN exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    pub peer_as: u32,
    pub peer_id: Ipv4Addr,
    /// Seconds; 0 when neither side sends keepalives.
    pub hold_time: u16,
    pub keepalive: Option<Duration>,
    pub context: Context,
    /// Families both announced.
    pub families: Vec<Family>,
    pub route_refresh: bool,
    pub enhanced_route_refresh: bool,
    pub extended_next_hop: bool,
    /// The peer's graceful restart capability, if it sent one.
    pub peer_graceful_restart: Option<GracefulRestart>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Which of the (at most two) connections to the peer: the one we opened, or the one it
/// opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Outbound,
    Inbound,
}

#[derive(Clone, Debug)]
pub enum Input<'a> {
    /// Start (or restart after `Stop`).
    Start,
    /// Stop: a Cease with this subcode (and shutdown message) if a session is up.
    Stop { subcode: u8, message: String },
    /// A connection is up: the one `Output::Connect` asked for, or one the peer opened.
    Connected(Link),
    /// Connecting failed.
    ConnectFailed,
    /// The peer closed this connection, or it broke.
    Closed(Link),
    /// Bytes read from this connection, in order.
    Bytes(Link, &'a [u8]),
    /// Everything sent on this connection so far has been written to the socket.
    Flushed(Link),
    /// Time passed: `next_deadline` was reached.
    Tick,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Open a connection to the peer.
    Connect,
    Send(Link, Vec<u8>),
    /// Close this connection (after sending what was queued on it), or give up the attempt
    /// to open it.
    Close(Link),
    Established(Box<Negotiated>),
    /// The session went down: what we sent or received, or why.
    Down(Down),
    Update(Box<Update>),
    RouteRefresh(RouteRefresh),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Down {
    /// We sent this NOTIFICATION.
    Sent(Notification),
    /// The peer sent this one.
    Received(Notification),
    /// The connection ended without one.
    ConnectionLost,
}

/// Messages of each type (FRR's neighbor counters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    pub opens: u64,
    pub updates: u64,
    pub notifications: u64,
    pub keepalives: u64,
    pub route_refreshes: u64,
}

impl MessageCounts {
    fn count(&mut self, message: &[u8]) {
        let counter = match message.get(HEADER_LEN - 1) {
            Some(&TYPE_OPEN) => &mut self.opens,
            Some(&TYPE_UPDATE) => &mut self.updates,
            Some(&TYPE_NOTIFICATION) => &mut self.notifications,
            Some(&TYPE_KEEPALIVE) => &mut self.keepalives,
            Some(&(TYPE_ROUTE_REFRESH | TYPE_ROUTE_REFRESH_LEGACY)) => &mut self.route_refreshes,
            _ => return,
        };
        *counter += 1;
    }
}

/// What a session exchanged since it was created, across connections.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub sent: MessageCounts,
    pub received: MessageCounts,
    /// Messages that ended the session with our NOTIFICATION for their error.
    pub malformed_messages: u64,
    /// Malformed attributes that did not (RFC 7606: treat-as-withdraw, attribute discard).
    pub malformed_attributes: u64,
    /// Prefixes the peer announced and withdrawn (those treated as withdrawn among them).
    pub prefixes_announced: u64,
    pub prefixes_withdrawn: u64,
}

/// The second connection while collision detection has not decided: our OPEN is sent on it
/// and its OPEN awaited.
struct Contender {
    link: Link,
    buffer: Vec<u8>,
}

impl Down {
    /// In words, for logs: "sent hold timer expired (4/0)", "connection lost".
    pub fn describe(&self) -> String {
        match self {
            Down::Sent(n) => format!("sent {}", n.describe()),
            Down::Received(n) => format!("peer sent {}", n.describe()),
            Down::ConnectionLost => "connection lost".into(),
        }
    }
}

pub struct Session {
    config: Config,
    state: State,
    /// The connection the state belongs to (from OpenSent on).
    link: Option<Link>,
    contender: Option<Contender>,
    buffer: Vec<u8>,
    negotiated: Option<Negotiated>,
    /// Whether the session should come back after it goes down.
    running: bool,
    failures: u32,
    retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    /// Since when something we sent has not been written out.
    unflushed_since: Option<Instant>,
    rng: u64,
    counters: Counters,
}

impl Session {
    /// A session in Idle; `seed` makes its jitter reproducible (tests) or random (driver).
    pub fn new(config: Config, seed: u64) -> Session {
        Session {
            config,
            state: State::Idle,
            link: None,
            contender: None,
            buffer: Vec::new(),
            negotiated: None,
            running: false,
            failures: 0,
            retry_at: None,
            hold_at: None,
            keepalive_at: None,
            unflushed_since: None,
            rng: seed | 1,
            counters: Counters::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The connection the session runs on (from OpenSent on).
    pub fn link(&self) -> Option<Link> {
        self.link
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// When `handle(now, Input::Tick)` has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let send_hold = self
            .unflushed_since
            .filter(|_| self.state == State::Established)
            .map(|since| since + self.send_hold());
        [self.retry_at, self.hold_at, self.keepalive_at, send_hold]
            .into_iter()
            .flatten()
            .min()
    }

    /// Sends UPDATEs (whole messages, and the ROUTE-REFRESH markers around a refresh) on an
    /// established session; nothing otherwise.
    pub fn send_updates(&mut self, now: Instant, messages: Vec<Vec<u8>>) -> Vec<Output> {
        if self.state != State::Established || messages.is_empty() {
            return Vec::new();
        }
        // Sending an UPDATE does what a KEEPALIVE would (RFC 4271 4.4).
        let Some(link) = self.link else {
            return Vec::new();
        };
        self.restart_keepalive(now);
        self.unflushed_since.get_or_insert(now);
        for message in &messages {
            self.counters.sent.count(message);
        }
        messages
            .into_iter()
            .map(|bytes| Output::Send(link, bytes))
            .collect()
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Start => {
                self.running = true;
                if self.state == State::Idle {
                    self.start(now, &mut out);
                }
            }
            Input::Stop { subcode, message } => {
                self.running = false;
                let notification = Notification::shutdown(subcode, &message);
                self.drop_contender(Some(&notification), &mut out);
                if let Some(link) = self.link {
                    let bytes = Message::Notification(notification.clone()).encode(&self.context());
                    out.push(Output::Send(link, bytes));
                    self.down(now, Down::Sent(notification), &mut out);
                } else {
                    if self.state == State::Connect {
                        out.push(Output::Close(Link::Outbound));
                    }
                    self.reset();
                }
            }
            Input::Connected(link) => self.connected(now, link, &mut out),
            Input::ConnectFailed => {
                if self.state == State::Connect {
                    self.failures = self.failures.saturating_add(1);
                    self.state = State::Active;
                    self.schedule_retry(now);
                }
            }
            Input::Closed(link) => {
                if self.link == Some(link) {
                    self.down(now, Down::ConnectionLost, &mut out);
                } else if self.contender.as_ref().is_some_and(|c| c.link == link) {
                    self.contender = None;
                } else if self.state == State::Connect && link == Link::Outbound {
                    self.state = State::Active;
                    self.schedule_retry(now);
                }
            }
            Input::Bytes(link, bytes) => {
                if self.link == Some(link) {
                    self.receive(now, bytes, &mut out);
                } else if self.contender.as_ref().is_some_and(|c| c.link == link) {
                    self.contender_receive(now, bytes, &mut out);
                }
            }
            Input::Flushed(link) => {
                if self.link == Some(link) {
                    self.unflushed_since = None;
                }
            }
            Input::Tick => self.tick(now, &mut out),
        }
        for output in &out {
            if let Output::Send(_, message) = output {
                self.counters.sent.count(message);
            }
        }
        out
    }

    /// A connection came up: it becomes the session's if there is none, or else it collides
    /// with the one in use (RFC 4271 6.8).
    fn connected(&mut self, now: Instant, link: Link, out: &mut Vec<Output>) {
        let in_use =
            self.link == Some(link) || self.contender.as_ref().is_some_and(|c| c.link == link);
        if in_use || !self.running {
            out.push(Output::Close(link));
            return;
        }
        match self.state {
            State::Idle => out.push(Output::Close(link)),
            State::Connect | State::Active => self.open_on(now, link, out),
            // Our OPEN goes out on the new one too, and the first OPEN back that names the
            // peer decides (RFC 4271 6.8: on receipt of an OPEN, never before): in OpenSent
            // the one on either connection, in OpenConfirm the new one's.
            State::OpenSent | State::OpenConfirm if self.contender.is_none() => {
                let open = Message::Open(self.config.open()).encode(&Context::default());
                out.push(Output::Send(link, open));
                self.contender = Some(Contender {
                    link,
                    buffer: Vec::new(),
                });
            }
            // Established (RFC 4271 6.8: the established connection stays), or a third one.
            _ => refuse(link, out),
        }
    }

    /// Whether `link` is the connection to keep against the other, given the peer's id.
    fn wins(&self, link: Link, peer_id: Ipv4Addr, peer_as: u32) -> bool {
        let outbound_wins = keep_outbound(
            self.config.router_id,
            peer_id,
            self.config.local_as,
            peer_as,
        );
        (link == Link::Outbound) == outbound_wins
    }

    /// Sends our OPEN on `link`, which becomes the session's connection.
    fn open_on(&mut self, now: Instant, link: Link, out: &mut Vec<Output>) {
        self.retry_at = None;
        self.buffer.clear();
        self.negotiated = None;
        self.link = Some(link);
        let open = Message::Open(self.config.open()).encode(&Context::default());
        self.sent(now, open, out);
        self.state = State::OpenSent;
        self.hold_at = Some(now + OPEN_HOLD);
        self.keepalive_at = None;
    }

    /// The connection in use lost a collision: Cease 7 on it, closed, nothing reported (the
    /// session was not up).
    fn lose_main(&mut self, out: &mut Vec<Output>) {
        if let Some(link) = self.link.take() {
            let cease = Message::Notification(collision_notification()).encode(&self.context());
            out.push(Output::Send(link, cease));
            out.push(Output::Close(link));
        }
    }

    /// Closes the undecided second connection, with `notification` if given.
    fn drop_contender(&mut self, notification: Option<&Notification>, out: &mut Vec<Output>) {
        if let Some(contender) = self.contender.take() {
            if let Some(n) = notification {
                let bytes = Message::Notification(n.clone()).encode(&Context::default());
                out.push(Output::Send(contender.link, bytes));
            }
            out.push(Output::Close(contender.link));
        }
    }

    /// Bytes on the second connection: its first message must be an OPEN, which decides the
    /// collision.
    fn contender_receive(&mut self, now: Instant, bytes: &[u8], out: &mut Vec<Output>) {
        let Some(contender) = self.contender.as_mut() else {
            return;
        };
        contender.buffer.extend_from_slice(bytes);
        let (decoded, first) = match frame_length(&contender.buffer) {
            Ok(Some(length)) => (
                decode(&contender.buffer[..length], &Context::default()),
                contender.buffer[..length].to_vec(),
            ),
            Ok(None) => return,
            Err(notify) => (Err(notify), Vec::new()),
        };
        if let Ok(Message::Open(open)) = &decoded
            && !self
                .link
                .is_some_and(|main| self.wins(main, open.identifier, open.asn()))
            && let Some(contender) = self.contender.take()
        {
            // Read again (and counted) as the session's own.
            self.promote(now, contender, out);
            return;
        }
        self.counters.received.count(&first);
        match decoded {
            Ok(Message::Open(_)) => self.drop_contender(Some(&collision_notification()), out),
            // The peer gave this connection up.
            Ok(Message::Notification(_)) => self.drop_contender(None, out),
            Ok(_) => self.drop_contender(Some(&Notify::new(code::FSM, 0, []).into()), out),
            Err(notify) => {
                self.counters.malformed_messages += 1;
                self.drop_contender(Some(&notify.into()), out);
            }
        }
    }

    /// The second connection won: it takes the session's place, with our OPEN already sent
    /// on it and the peer's OPEN (and whatever followed) to read.
    fn promote(&mut self, now: Instant, contender: Contender, out: &mut Vec<Output>) {
        self.lose_main(out);
        self.link = Some(contender.link);
        self.state = State::OpenSent;
        self.negotiated = None;
        self.buffer.clear();
        self.hold_at = Some(now + OPEN_HOLD);
        self.keepalive_at = None;
        self.receive(now, &contender.buffer, out);
    }

    fn context(&self) -> Context {
        self.negotiated
            .as_ref()
            .map(|n| n.context)
            .unwrap_or_default()
    }

    fn send_hold(&self) -> Duration {
        let hold = self.negotiated.as_ref().map_or(0, |n| n.hold_time);
        SEND_HOLD_MIN.max(Duration::from_secs(2 * u64::from(hold)))
    }

    fn start(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.config.passive {
            self.state = State::Active;
        } else {
            self.state = State::Connect;
            out.push(Output::Connect);
            // Connecting may hang: the retry timer bounds it.
            self.retry_at = Some(now + self.retry_delay());
        }
    }

    /// The wait before the next attempt: doubled per failure up to `MAX_RETRY`, times a
    /// jitter between 0.75 and 1 (RFC 4271 10), so peers that failed together do not retry
    /// together.
    fn retry_delay(&mut self) -> Duration {
        let factor = 1u32 << self.failures.min(16);
        let base = self
            .config
            .connect_retry
            .saturating_mul(factor)
            .min(MAX_RETRY);
        // xorshift64: the jitter needs no better randomness.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = 0.75 + (self.rng % 1000) as f64 / 4000.0;
        base.mul_f64(jitter)
    }

    fn schedule_retry(&mut self, now: Instant) {
        self.retry_at = Some(now + self.retry_delay());
    }

    fn reset(&mut self) {
        self.state = State::Idle;
        self.link = None;
        self.contender = None;
        self.buffer.clear();
        self.negotiated = None;
        self.retry_at = None;
        self.hold_at = None;
        self.keepalive_at = None;
        self.unflushed_since = None;
    }

    /// The session ends: close, report, and (if still wanted) try again after a while.
    fn down(&mut self, now: Instant, why: Down, out: &mut Vec<Output>) {
        if self.running
            && self.state != State::Established
            && let Some(contender) = self.contender.take()
        {
            // The connection in use failed before the session was up (often the peer's
            // Cease for the collision it resolved first), but the other one may carry it.
            if let Some(link) = self.link.take() {
                out.push(Output::Close(link));
            }
            self.promote(now, contender, out);
            return;
        }
        self.drop_contender(None, out);
        if let Some(link) = self.link {
            out.push(Output::Close(link));
        }
        out.push(Output::Down(why));
        self.reset();
        if self.running {
            self.failures = self.failures.saturating_add(1);
            // Back to Active (waiting, or connecting when the retry timer fires).
            self.state = State::Active;
            self.schedule_retry(now);
        }
    }

    /// Sends a NOTIFICATION for `notify` and ends the session.
    fn fail(&mut self, now: Instant, notify: Notify, out: &mut Vec<Output>) {
        let notification = Notification::from(notify);
        if let Some(link) = self.link {
            let bytes = Message::Notification(notification.clone()).encode(&self.context());
            out.push(Output::Send(link, bytes));
        }
        self.down(now, Down::Sent(notification), out);
    }

    /// Sends on the session's connection.
    fn sent(&mut self, now: Instant, bytes: Vec<u8>, out: &mut Vec<Output>) {
        if let Some(link) = self.link {
            self.unflushed_since.get_or_insert(now);
            out.push(Output::Send(link, bytes));
        }
    }

    fn restart_keepalive(&mut self, now: Instant) {
        self.keepalive_at = self
            .negotiated
            .as_ref()
            .and_then(|n| n.keepalive)
            .map(|k| now + k);
    }

    fn restart_hold(&mut self, now: Instant) {
        self.hold_at = self
            .negotiated
            .as_ref()
            .filter(|n| n.hold_time > 0)
            .map(|n| now + Duration::from_secs(u64::from(n.hold_time)));
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Output>) {
        if self.hold_at.is_some_and(|at| now >= at) {
            self.fail(now, Notify::new(code::HOLD_TIMER_EXPIRED, 0, []), out);
            return;
        }
        if self.state == State::Established
            && self
                .unflushed_since
                .is_some_and(|since| now >= since + self.send_hold())
        {
            // The peer reads nothing: no NOTIFICATION could get through either.
            self.down(
                now,
                Down::Sent(Notification {
                    code: SEND_HOLD_EXPIRED,
                    subcode: 0,
                    data: Vec::new(),
                }),
                out,
            );
            return;
        }
        if self.keepalive_at.is_some_and(|at| now >= at) {
            let keepalive = Message::Keepalive.encode(&self.context());
            self.sent(now, keepalive, out);
            self.restart_keepalive(now);
        }
        if self.retry_at.is_some_and(|at| now >= at) {
            match self.state {
                State::Connect | State::Active if !self.config.passive => {
                    // The attempt under way (if any) is abandoned for a new one.
                    if self.state == State::Connect {
                        out.push(Output::Close(Link::Outbound));
                    }
                    self.state = State::Connect;
                    out.push(Output::Connect);
                    self.schedule_retry(now);
                }
                _ => self.retry_at = None,
            }
        }
    }

    fn receive(&mut self, now: Instant, bytes: &[u8], out: &mut Vec<Output>) {
        if !matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            return;
        }
        let link = self.link;
        self.buffer.extend_from_slice(bytes);
        let mut consumed = 0;
        loop {
            let length = match frame_length(&self.buffer[consumed..]) {
                Ok(Some(length)) => length,
                Ok(None) => break,
                Err(notify) => {
                    self.counters.malformed_messages += 1;
                    self.fail(now, notify, out);
                    return;
                }
            };
            let bytes = &self.buffer[consumed..consumed + length];
            self.counters.received.count(bytes);
            let message = decode(bytes, &self.context());
            consumed += length;
            let result = match message {
                Ok(message) => self.on_message(now, message, out),
                Err(notify) => {
                    self.counters.malformed_messages += 1;
                    Err(notify)
                }
            };
            if let Err(notify) = result {
                self.fail(now, notify, out);
                return;
            }
            if self.link != link {
                // The message ended the session, or a collision replaced its connection:
                // what follows belongs to nobody.
                return;
            }
        }
        self.buffer.drain(..consumed);
    }

    fn on_message(
        &mut self,
        now: Instant,
        message: Message,
        out: &mut Vec<Output>,
    ) -> Result<(), Notify> {
        let fsm_error = || Notify::new(code::FSM, 0, []);
        match (self.state, message) {
            (_, Message::Notification(notification)) => {
                self.down(now, Down::Received(notification), out);
            }
            (State::OpenSent, Message::Open(open)) => {
                let negotiated = self.negotiate(&open)?;
                // The peer's identifier decides a collision with a second connection.
                if let Some(main) = self.link
                    && self.contender.is_some()
                {
                    if self.wins(main, negotiated.peer_id, negotiated.peer_as) {
                        self.drop_contender(Some(&collision_notification()), out);
                    } else if let Some(contender) = self.contender.take() {
                        self.promote(now, contender, out);
                        return Ok(());
                    }
                }
                self.negotiated = Some(negotiated);
                let keepalive = Message::Keepalive.encode(&self.context());
                self.sent(now, keepalive, out);
                self.state = State::OpenConfirm;
                self.restart_hold(now);
                self.restart_keepalive(now);
            }
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                self.failures = 0;
                // The restart is over once a session is up: a later session of this process
                // is a reset, not a restart (RFC 4724 3, the R bit).
                if let Some((_, restarting)) = &mut self.config.graceful_restart {
                    *restarting = false;
                }
                self.restart_hold(now);
                if let Some(negotiated) = &self.negotiated {
                    out.push(Output::Established(Box::new(negotiated.clone())));
                }
            }
            (State::Established, Message::Keepalive) => self.restart_hold(now),
            (State::Established, Message::Update(update)) => {
                self.restart_hold(now);
                self.counters.malformed_attributes += update.problems.len() as u64;
                self.counters.prefixes_announced += update.announced().count() as u64;
                self.counters.prefixes_withdrawn += update.withdrawn_routes().count() as u64;
                out.push(Output::Update(update));
            }
            (State::Established, Message::RouteRefresh(refresh)) => {
                self.restart_hold(now);
                out.push(Output::RouteRefresh(refresh));
            }
            _ => return Err(fsm_error()),
        }
        Ok(())
    }

    /// The OPEN checks (RFC 4271 6.2, RFC 6793, RFC 6286), and what both sides agree on.
    fn negotiate(&self, open: &Open) -> Result<Negotiated, Notify> {
        let peer_as = open.asn();
        let acceptable = match self.config.peer_as {
            PeerAs::Is(asn) => peer_as == asn,
            PeerAs::Internal => peer_as == self.config.local_as,
            PeerAs::External => peer_as != self.config.local_as,
        };
        if !acceptable {
            return Err(Notify::open(subcode::BAD_PEER_AS, open.my_as.to_be_bytes()));
        }
        let ibgp = peer_as == self.config.local_as;
        // RFC 6286: the identifier must not be zero, nor ours within one AS.
        if open.identifier.is_unspecified() || (ibgp && open.identifier == self.config.router_id) {
            return Err(Notify::open(
                subcode::BAD_BGP_IDENTIFIER,
                open.identifier.octets(),
            ));
        }
        let hold_time = open.hold_time.min(self.config.hold_time);
        // At most a third of the hold time, at least a second (a zero interval would send
        // KEEPALIVEs without pause).
        let keepalive = (hold_time > 0).then(|| {
            let third = Duration::from_secs(u64::from(hold_time)) / 3;
            self.config
                .keepalive
                .map_or(third, |k| k.min(third))
                .max(Duration::from_secs(1))
        });
        let theirs = open.families();
        let families = self
            .config
            .families
            .iter()
            .filter(|f| theirs.contains(f))
            .copied()
            .collect();
        let has = |wanted: fn(&Capability) -> bool| open.capabilities.iter().any(wanted);
        Ok(Negotiated {
            peer_as,
            peer_id: open.identifier,
            hold_time,
            keepalive,
            context: Context {
                four_octet_as: has(|c| matches!(c, Capability::FourOctetAs(_))),
                ibgp,
            },
            families,
            route_refresh: has(|c| {
                matches!(c, Capability::RouteRefresh | Capability::RouteRefreshLegacy)
            }),
            enhanced_route_refresh: has(|c| matches!(c, Capability::EnhancedRouteRefresh)),
            extended_next_hop: self.config.extended_next_hop
                && has(|c| matches!(c, Capability::ExtendedNextHop(_))),
            peer_graceful_restart: open.capabilities.iter().find_map(|c| match c {
                Capability::GracefulRestart(gr) => Some(gr.clone()),
                _ => None,
            }),
        })
    }
}

/// Collision detection (RFC 4271 6.8, RFC 6286 2.3): when both sides connected, which
/// connection stays. The one opened by the side with the higher identifier; with equal
/// identifiers (possible between ASes), the one opened by the side with the higher AS.
pub fn keep_outbound(our_id: Ipv4Addr, their_id: Ipv4Addr, our_as: u32, their_as: u32) -> bool {
    match u32::from(our_id).cmp(&u32::from(their_id)) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => our_as > their_as,
    }
}

/// Our Cease for a collision lost on one of two connections.
pub fn collision_notification() -> Notification {
    Notification {
        code: code::CEASE,
        subcode: subcode::CONNECTION_COLLISION,
        data: Vec::new(),
    }
}

/// Refuses a connection that lost a collision before it was used: Cease 7, closed.
fn refuse(link: Link, out: &mut Vec<Output>) {
    let cease = Message::Notification(collision_notification()).encode(&Context::default());
    out.push(Output::Send(link, cease));
    out.push(Output::Close(link));
}
