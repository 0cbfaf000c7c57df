//! The sessions of one node, on a thread of their own, so BGP work, a store being read or a
//! busy runtime elsewhere cannot delay a packet or a detection. The thread waits in one
//! system call ([`poll::wait`]) for its sockets or the earliest deadline of all sessions:
//! no runtime, no task per session or packet, no timer per session.
//!
//! - Single hop (RFC 5881): to UDP port 3784, from a source port in 49152-65535 kept for the
//!   session's life, TTL 255 sent and required on receipt.
//! - Multihop (RFC 5883): to port 4784, TTL 255 sent, and the session's `minimum_ttl`
//!   required on receipt.
//! - Received packets go to their session by Your Discriminator, or, while the peer does not
//!   know ours yet, by source address; a packet matching no session is counted and dropped.
mod poll;
mod sockopt;

use crate::packet::{ControlPacket, Diag, State};
use crate::session::{Change, Output, Session, Settings};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, watch};

/// RFC 5881's destination port.
pub const SINGLE_HOP_PORT: u16 = 3784;
/// RFC 5883's destination port.
pub const MULTIHOP_PORT: u16 = 4784;
/// Status is published at least this often (the counters), and at every state change.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// A session's identity: the peer, and how it is reached.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub peer: IpAddr,
    /// The link, for a link-local peer (and the link single-hop packets leave by).
    pub interface: Option<String>,
    /// A link-local peer's scope (the interface's index; 0 otherwise): a new index, after
    /// the interface was made again, is a new session.
    pub scope_id: u32,
    pub multihop: bool,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.peer)?;
        if let Some(interface) = &self.interface {
            write!(f, "%{interface}")?;
        }
        if self.multihop {
            write!(f, " (multihop)")?;
        }
        Ok(())
    }
}

/// A session wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spec {
    pub key: Key,
    /// The address packets leave from; the kernel's choice when None.
    pub local: Option<IpAddr>,
    pub settings: Settings,
    /// Multihop only: the lowest TTL accepted from the peer.
    pub minimum_ttl: u8,
}

/// A session changed state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub key: Key,
    pub change: Change,
}

/// Packets and state changes, counted since the session was added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    pub control_in: u64,
    pub control_out: u64,
    pub up_events: u64,
    pub down_events: u64,
}

/// What a session looks like now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionStatus {
    pub key: Key,
    pub state: State,
    pub remote_state: State,
    pub diag: Diag,
    pub local_discr: u32,
    pub remote_discr: u32,
    /// The negotiated intervals (before jitter); None while not known.
    pub tx_interval: Option<Duration>,
    pub detection_time: Option<Duration>,
    pub remote_demand: bool,
    pub counters: Counters,
    /// How late the latest periodic packets left, at worst, since the last status: this
    /// thread being held up shows here first.
    pub tx_lateness: Duration,
}

/// Everything the driver's thread has to say: each session's status, and the packets that
/// reached no session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub sessions: Vec<SessionStatus>,
    pub unmatched: u64,
    /// Packets dropped for their TTL: sent from further away than the session allows.
    pub wrong_ttl: u64,
    /// Listening sockets that could not be opened (a session of that kind never comes up),
    /// and sessions that could not be made (tried again each second).
    pub errors: Vec<String>,
}

/// The thread's clock: the driver is the I/O shell that reads it; the session core is
/// given `now`.
#[allow(clippy::disallowed_methods)]
fn now() -> Instant {
    Instant::now()
}

enum Command {
    Set(Vec<Spec>),
    /// AdminDown to every peer, repeated, then the end.
    Stop(oneshot::Sender<()>),
    /// The handle is gone: AdminDown once, and the end.
    Close,
}

/// The driver: its thread runs until [`Bfd::stop`] or until this is dropped.
pub struct Bfd {
    commands: std_mpsc::Sender<Command>,
    /// A datagram here wakes the thread for its commands.
    wake: UnixDatagram,
    status: watch::Receiver<Status>,
}

impl Bfd {
    /// Starts the thread. State changes go to `events`.
    pub fn start(events: mpsc::UnboundedSender<Event>) -> io::Result<Bfd> {
        let (commands, command_rx) = std_mpsc::channel();
        let (status_tx, status) = watch::channel(Status::default());
        let (wake, woken) = UnixDatagram::pair()?;
        wake.set_nonblocking(true)?;
        woken.set_nonblocking(true)?;
        std::thread::Builder::new()
            .name("bfd".into())
            .spawn(move || run(&command_rx, &woken, events, &status_tx))?;
        Ok(Bfd {
            commands,
            wake,
            status,
        })
    }

    fn command(&self, command: Command) -> bool {
        let sent = self.commands.send(command).is_ok();
        // A full buffer already holds a wakeup the thread has not read.
        let _ = self.wake.send(&[0]);
        sent
    }

    /// These are now the sessions: new ones start, gone ones say AdminDown and end, and
    /// changed settings are applied without taking a session down.
    pub fn set(&self, specs: Vec<Spec>) {
        self.command(Command::Set(specs));
    }

    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Tells every peer AdminDown (so it does not take its BGP session down: RFC 5882
    /// section 3.2), then ends the thread.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.command(Command::Stop(done)) {
            let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
        }
    }
}

impl Drop for Bfd {
    fn drop(&mut self) {
        self.command(Command::Close);
    }
}

/// A random number without a clock (the standard library seeds its hasher randomly).
fn random() -> u64 {
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u8(0);
    hasher.finish()
}

/// One session and its sending socket.
struct Entry {
    spec: Spec,
    session: Session,
    socket: UdpSocket,
    to: SocketAddr,
    counters: Counters,
    late: Duration,
    send_failing: bool,
}

/// The four listening sockets, opened when a session first needs one.
#[derive(Default)]
struct Listeners {
    /// By [`slot`]: single hop IPv4, single hop IPv6, multihop IPv4, multihop IPv6.
    sockets: [Option<UdpSocket>; 4],
    errors: BTreeMap<String, String>,
}

/// Where the listener for this kind of session is kept.
fn slot(ipv6: bool, multihop: bool) -> usize {
    usize::from(ipv6) + 2 * usize::from(multihop)
}

/// Whether the listener in this slot is for multihop sessions.
fn slot_is_multihop(slot: usize) -> bool {
    slot >= 2
}

fn listen(ipv6: bool, port: u16) -> io::Result<UdpSocket> {
    let (domain, any) = if ipv6 {
        (Domain::IPV6, IpAddr::V6(Ipv6Addr::UNSPECIFIED))
    } else {
        (Domain::IPV4, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    };
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if ipv6 {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    sockopt::receive_ttl_and_time(&socket, ipv6)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(any, port).into())?;
    Ok(socket.into())
}

impl Listeners {
    /// Opens what `entries` need.
    fn open_for(&mut self, entries: &BTreeMap<Key, Entry>) {
        for ipv6 in [false, true] {
            for multihop in [false, true] {
                let socket = &mut self.sockets[slot(ipv6, multihop)];
                let needed = entries
                    .keys()
                    .any(|k| k.peer.is_ipv6() == ipv6 && k.multihop == multihop);
                if socket.is_some() || !needed {
                    continue;
                }
                let port = if multihop {
                    MULTIHOP_PORT
                } else {
                    SINGLE_HOP_PORT
                };
                match listen(ipv6, port) {
                    Ok(opened) => *socket = Some(opened),
                    Err(error) => {
                        let what = format!(
                            "BFD {}, {} (UDP port {port})",
                            if multihop { "multihop" } else { "single hop" },
                            if ipv6 { "IPv6" } else { "IPv4" }
                        );
                        tracing::error!(%error, "{what} cannot listen: its sessions never come up");
                        self.errors.insert(what, error.to_string());
                    }
                }
            }
        }
    }
}

/// The session's own sending socket: a source port from 49152-65535 (RFC 5881 section 4),
/// TTL 255, and bound to its interface when it has one.
fn sender(spec: &Spec) -> io::Result<(UdpSocket, SocketAddr)> {
    let key = &spec.key;
    let port = if key.multihop {
        MULTIHOP_PORT
    } else {
        SINGLE_HOP_PORT
    };
    let ipv6 = key.peer.is_ipv6();
    let socket = Socket::new(
        if ipv6 { Domain::IPV6 } else { Domain::IPV4 },
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    if ipv6 {
        socket.set_only_v6(true)?;
        socket.set_unicast_hops_v6(255)?;
    } else {
        socket.set_ttl_v4(255)?;
    }
    let mut to = SocketAddr::new(key.peer, port);
    if let Some(interface) = &key.interface {
        socket.bind_device(Some(interface.as_bytes()))?;
        if let IpAddr::V6(v6) = key.peer
            && v6.is_unicast_link_local()
        {
            to = SocketAddr::V6(SocketAddrV6::new(v6, port, 0, key.scope_id));
        }
    }
    let local = spec.local.unwrap_or(if ipv6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    });
    let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free source port");
    for _ in 0..64 {
        let port = 49152 + (random() % 16384) as u16;
        match socket.bind(&SocketAddr::new(local, port).into()) {
            Ok(()) => {
                socket.set_nonblocking(true)?;
                return Ok((socket.into(), to));
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

/// A removed session, saying AdminDown a few more times: RFC 5880 section 6.8.16 asks for
/// AdminDown for a detection time, so one lost packet does not look like a failed path.
struct Ending {
    entry: Entry,
    left: u8,
    next: Instant,
    every: Duration,
}

/// How many times a removed session says AdminDown, in all.
const ADMIN_DOWN_PACKETS: u8 = 3;

struct Driver {
    entries: BTreeMap<Key, Entry>,
    /// What was asked for: sessions that could not be made are tried again.
    wanted: BTreeMap<Key, Spec>,
    failed: BTreeMap<Key, String>,
    ending: Vec<Ending>,
    listeners: Listeners,
    events: mpsc::UnboundedSender<Event>,
    unmatched: u64,
    wrong_ttl: u64,
    changed: bool,
}

/// Sends on a session's socket. A full socket buffer loses the packet, as the network may:
/// BFD is built to tolerate that, and waiting here would delay every session. Another error
/// (the interface gone) is logged once until sending works again.
fn send(entry: &mut Entry, packet: &ControlPacket) {
    match entry.socket.send_to(&packet.encode(), entry.to) {
        Ok(_) => {
            entry.counters.control_out += 1;
            entry.send_failing = false;
        }
        Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
        Err(error) => {
            if !entry.send_failing {
                tracing::warn!(peer = %entry.spec.key, %error, "BFD packets cannot be sent");
                entry.send_failing = true;
            }
        }
    }
}

/// Carries out what a session asked for: packets out, state changes counted and told.
/// Returns whether the state changed.
fn apply(
    key: &Key,
    entry: &mut Entry,
    outputs: Vec<Output>,
    events: &mpsc::UnboundedSender<Event>,
) -> bool {
    let mut changed = false;
    for output in outputs {
        match output {
            Output::Send(packet) => send(entry, &packet),
            Output::Changed(change) => {
                changed = true;
                if change.to == State::Up {
                    entry.counters.up_events += 1;
                } else if change.from == State::Up {
                    entry.counters.down_events += 1;
                }
                tracing::info!(peer = %key, from = %change.from, to = %change.to, diag = %change.diag, peer_admin_down = change.peer_admin_down, "BFD session changed state");
                let _ = events.send(Event {
                    key: key.clone(),
                    change,
                });
            }
        }
    }
    changed
}

impl Driver {
    fn apply(&mut self, key: &Key, outputs: Vec<Output>) {
        if let Some(entry) = self.entries.get_mut(key) {
            self.changed |= apply(key, entry, outputs, &self.events);
        }
    }

    fn set(&mut self, specs: Vec<Spec>) {
        self.wanted = specs.into_iter().map(|s| (s.key.clone(), s)).collect();
        self.failed.retain(|key, _| self.wanted.contains_key(key));
        self.reconcile();
    }

    /// Brings the sessions to what is wanted: gone ones say AdminDown and end, new ones
    /// start, changed settings apply without taking a session down.
    fn reconcile(&mut self) {
        let now = now();
        // A new source address needs a new socket, so a new session; the rest changes in
        // place.
        let gone: Vec<Key> = self
            .entries
            .iter()
            .filter(|(key, entry)| {
                self.wanted
                    .get(*key)
                    .is_none_or(|spec| spec.local != entry.spec.local)
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in gone {
            let Some(mut entry) = self.entries.remove(&key) else {
                continue;
            };
            // At the rate the peer last expected packets, not the slow rate of AdminDown.
            let every = entry
                .session
                .tx_interval()
                .unwrap_or(Duration::from_millis(300))
                .clamp(Duration::from_millis(10), Duration::from_millis(300));
            for output in entry.session.admin_down(now) {
                if let Output::Send(packet) = output {
                    send(&mut entry, &packet);
                }
            }
            tracing::info!(peer = %key, "BFD session removed: AdminDown sent");
            self.ending.push(Ending {
                entry,
                left: ADMIN_DOWN_PACKETS - 1,
                next: now + every,
                every,
            });
            self.changed = true;
        }
        let wanted: Vec<Spec> = self.wanted.values().cloned().collect();
        for spec in wanted {
            let key = spec.key.clone();
            if let Some(entry) = self.entries.get_mut(&key) {
                let outputs = entry.session.set_settings(now, spec.settings);
                entry.spec = spec;
                self.apply(&key, outputs);
                continue;
            }
            let (socket, to) = match sender(&spec) {
                Ok(pair) => pair,
                Err(error) => {
                    if !self.failed.contains_key(&key) {
                        tracing::warn!(peer = %key, %error, "BFD session cannot send: tried again each second");
                        self.changed = true;
                    }
                    self.failed.insert(key, error.to_string());
                    continue;
                }
            };
            self.failed.remove(&key);
            let discr = self.new_discriminator();
            let session = Session::new(spec.settings, discr, random(), now);
            self.entries.insert(
                key,
                Entry {
                    spec,
                    session,
                    socket,
                    to,
                    counters: Counters::default(),
                    late: Duration::ZERO,
                    send_failing: false,
                },
            );
            self.changed = true;
        }
        self.listeners.open_for(&self.entries);
    }

    /// A nonzero discriminator no session of this node uses.
    fn new_discriminator(&self) -> u32 {
        loop {
            let discr = random() as u32;
            let used = self
                .entries
                .values()
                .chain(self.ending.iter().map(|e| &e.entry));
            if discr != 0 && used.into_iter().all(|e| e.session.local_discr() != discr) {
                return discr;
            }
        }
    }

    /// A datagram from a listening socket, read at `now`, which arrived at `arrived`.
    fn received(
        &mut self,
        bytes: &[u8],
        from: SocketAddr,
        ttl: Option<u8>,
        multihop: bool,
        (now, arrived): (Instant, Instant),
    ) {
        // Single hop: only from the link, whatever the packet says.
        if !multihop && ttl != Some(255) {
            self.wrong_ttl += 1;
            return;
        }
        let Ok(packet) = ControlPacket::decode(bytes) else {
            self.unmatched += 1;
            return;
        };
        let scope = match from {
            SocketAddr::V6(v6) => v6.scope_id(),
            SocketAddr::V4(_) => 0,
        };
        let from = from.ip().to_canonical();
        // By Your Discriminator once the peer knows it; before, by where the packet came
        // from: the address, and for a link-local one the link (RFC 5881 section 3).
        let key = self
            .entries
            .iter()
            .find(|(key, entry)| {
                key.multihop == multihop
                    && key.peer == from
                    && (key.scope_id == 0 || key.scope_id == scope)
                    && (packet.your_discr == 0 || packet.your_discr == entry.session.local_discr())
            })
            .map(|(key, _)| key.clone());
        let Some(key) = key else {
            self.unmatched += 1;
            return;
        };
        let Some(entry) = self.entries.get_mut(&key) else {
            return;
        };
        if multihop && ttl.is_none_or(|ttl| ttl < entry.spec.minimum_ttl) {
            self.wrong_ttl += 1;
            return;
        }
        entry.counters.control_in += 1;
        let outputs = entry.session.on_packet_received(now, arrived, &packet);
        self.apply(&key, outputs);
    }

    /// Every session with something to do by `now`: a detection time ended, or a periodic
    /// packet whose window is open, so the sessions near their time leave together, in
    /// one wakeup.
    fn timers(&mut self, now: Instant) {
        let due = self
            .entries
            .iter_mut()
            .filter(|(_, e)| e.session.next_earliest().is_some_and(|d| d <= now));
        for (key, entry) in due {
            if let Some(at) = entry.session.next_tx().filter(|at| *at <= now) {
                entry.late = entry.late.max(now - at);
            }
            let outputs = entry.session.on_timer(now);
            self.changed |= apply(key, entry, outputs, &self.events);
        }
        for ending in &mut self.ending {
            if ending.next <= now {
                let packet = ending.entry.session.current_packet();
                send(&mut ending.entry, &packet);
                ending.left = ending.left.saturating_sub(1);
                ending.next = now + ending.every;
            }
        }
        self.ending.retain(|e| e.left > 0);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let sessions = self
            .entries
            .values()
            .filter_map(|e| e.session.next_deadline());
        sessions.chain(self.ending.iter().map(|e| e.next)).min()
    }

    fn status(&mut self) -> Status {
        let sessions = self
            .entries
            .values_mut()
            .map(|e| {
                let s = &e.session;
                let status = SessionStatus {
                    key: e.spec.key.clone(),
                    state: s.state(),
                    remote_state: s.remote_state(),
                    diag: s.diag(),
                    local_discr: s.local_discr(),
                    remote_discr: s.remote_discr(),
                    tx_interval: s.tx_interval(),
                    detection_time: s.detection_time(),
                    remote_demand: s.remote_demand(),
                    counters: e.counters,
                    tx_lateness: e.late,
                };
                e.late = Duration::ZERO;
                status
            })
            .collect();
        let listeners = self
            .listeners
            .errors
            .iter()
            .map(|(what, error)| format!("{what}: {error}"));
        let sessions_failed = self
            .failed
            .iter()
            .map(|(key, error)| format!("BFD session with {key}: {error}"));
        Status {
            sessions,
            unmatched: self.unmatched,
            wrong_ttl: self.wrong_ttl,
            errors: listeners.chain(sessions_failed).collect(),
        }
    }
}

/// How long a received packet may wait to be read when a timer is that near: the thread
/// then wakes once for both. Its detection time counts from its arrival all the same (the
/// kernel's timestamp); what waits is the answer to it (a state change, a Final).
const PACKET_WAIT: Duration = Duration::from_millis(10);

/// At most this many datagrams are read from one socket at one wakeup, so a flood cannot
/// keep the timers waiting for long (about a millisecond). Sessions alone never send that
/// many in [`PACKET_WAIT`]; past it, a packet in time may be read after its session's
/// detection time has been judged, as it would be lost in a full socket buffer.
const DATAGRAMS_PER_WAKEUP: usize = 512;

/// The wall clock set by more than this between two wakeups: the kernel's stamps
/// (wall-clock times) are not trusted for that wakeup.
const CLOCK_STEP: Duration = Duration::from_millis(1);

/// The wall clock now, to place the kernel's arrival times (real-time clock) on the
/// thread's monotonic clock.
#[allow(clippy::disallowed_methods)]
fn wall_clock() -> Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}

/// Both clocks, read at one wakeup.
#[derive(Clone, Copy, Debug)]
struct Clocks {
    mono: Instant,
    wall: Duration,
}

impl Clocks {
    /// The wall clock first: an arrival placed by the two then errs late, and a later
    /// arrival can only delay a detection, never bring one early.
    fn read() -> Clocks {
        let wall = wall_clock();
        Clocks { mono: now(), wall }
    }
}

/// When a datagram the kernel stamped `stamp` (wall clock) arrived, on the monotonic clock:
/// between the previous wakeup and this one. Without a stamp, or when the wall clock was
/// set since the previous wakeup (the two clocks moved apart), it counts as arrived now.
fn arrival(turn: Clocks, previous: Clocks, stamp: Option<Duration>) -> Instant {
    let mono_moved = turn.mono.saturating_duration_since(previous.mono);
    let steady = turn
        .wall
        .checked_sub(previous.wall)
        .is_some_and(|wall_moved| wall_moved.abs_diff(mono_moved) <= CLOCK_STEP);
    match stamp {
        Some(stamp) if steady => turn
            .mono
            .checked_sub(turn.wall.saturating_sub(stamp))
            .unwrap_or(turn.mono)
            .clamp(previous.mono, turn.mono),
        _ => turn.mono,
    }
}

/// The thread. Each wakeup reads the packets first (a detection time ending now must see
/// the packet that arrived in time, [`DATAGRAMS_PER_WAKEUP`] aside), then fires the timers,
/// then takes the commands.
fn run(
    commands: &std_mpsc::Receiver<Command>,
    woken: &UnixDatagram,
    events: mpsc::UnboundedSender<Event>,
    status: &watch::Sender<Status>,
) {
    let mut driver = Driver {
        entries: BTreeMap::new(),
        wanted: BTreeMap::new(),
        failed: BTreeMap::new(),
        ending: Vec::new(),
        listeners: Listeners::default(),
        events,
        unmatched: 0,
        wrong_ttl: 0,
        changed: false,
    };
    let mut buf = [0u8; 512];
    let mut publish_at = now() + PUBLISH_EVERY;
    // Which sockets can be read: bit 0 the wakeup, bit 1 + k the listener in slot k.
    let mut ready = 0;
    // Whether the last wait listened to the listeners (if not, each is read, whatever
    // poll said).
    let mut listened = true;
    let mut previous = Clocks::read();
    loop {
        let turn = Clocks::read();
        let now = turn.mono;
        for slot in 0..driver.listeners.sockets.len() {
            if listened && ready & (2 << slot) == 0 {
                continue;
            }
            for _ in 0..DATAGRAMS_PER_WAKEUP {
                let Some(socket) = &driver.listeners.sockets[slot] else {
                    break;
                };
                let Ok(datagram) = sockopt::recv_datagram(socket, &mut buf) else {
                    break;
                };
                let arrived = arrival(turn, previous, datagram.received);
                driver.received(
                    &buf[..datagram.len],
                    datagram.from,
                    datagram.ttl,
                    slot_is_multihop(slot),
                    (now, arrived),
                );
            }
        }
        previous = turn;
        driver.timers(now);
        if ready & 1 != 0 {
            while woken.recv(&mut buf).is_ok() {}
            loop {
                match commands.try_recv() {
                    Ok(Command::Set(specs)) => driver.set(specs),
                    Ok(Command::Stop(done)) => {
                        driver.set(Vec::new());
                        status.send_replace(driver.status());
                        // The repeated AdminDowns, then the end.
                        while let Some(at) = driver.next_deadline() {
                            std::thread::sleep(at.saturating_duration_since(self::now()));
                            driver.timers(self::now());
                        }
                        let _ = done.send(());
                        return;
                    }
                    Ok(Command::Close) | Err(std_mpsc::TryRecvError::Disconnected) => {
                        driver.set(Vec::new());
                        return;
                    }
                    Err(std_mpsc::TryRecvError::Empty) => break,
                }
            }
        }
        if now >= publish_at {
            driver.changed = true;
            if !driver.failed.is_empty() {
                driver.reconcile();
            }
        }
        if driver.changed {
            driver.changed = false;
            publish_at = now + PUBLISH_EVERY;
            status.send_replace(driver.status());
        }
        let next = driver.next_deadline();
        let wake_at = next.map_or(publish_at, |at| at.min(publish_at));
        // A timer due soon: packets wait for it, and one wakeup serves both.
        listened = next.is_none_or(|at| at > self::now() + PACKET_WAIT);
        let [a, b, c, d] = driver
            .listeners
            .sockets
            .each_ref()
            .map(|s| s.as_ref().filter(|_| listened).map(AsFd::as_fd));
        let sockets = [Some(woken.as_fd()), a, b, c, d];
        ready = match poll::wait(&sockets, wake_at.saturating_duration_since(self::now())) {
            Ok(ready) => ready,
            Err(error) => {
                // Not expected (the sockets are this thread's own): not a spin either.
                tracing::error!(%error, "BFD cannot wait for its sockets");
                std::thread::sleep(Duration::from_millis(10));
                0
            }
        };
    }
}

#[cfg(test)]
mod tests;
