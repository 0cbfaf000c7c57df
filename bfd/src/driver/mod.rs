//! The sessions of one node, on a thread of their own (a current-thread runtime), so BGP
//! work, a store being read or a busy runtime elsewhere cannot delay a packet or a
//! detection. One timer for all sessions (the earliest deadline), no task per session or
//! packet.
//!
//! - Single hop (RFC 5881): to UDP port 3784, from a source port in 49152-65535 kept for the
//!   session's life, TTL 255 sent and required on receipt.
//! - Multihop (RFC 5883): to port 4784, TTL 255 sent, and the session's `minimum_ttl`
//!   required on receipt.
//! - Received packets go to their session by Your Discriminator, or, while the peer does not
//!   know ours yet, by source address; a packet matching no session is counted and dropped.
mod sockopt;

use crate::packet::{ControlPacket, Diag, State};
use crate::session::{Change, Output, Session, Settings};
use socket2::{Domain, Protocol, Socket, Type};
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

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

enum Command {
    Set(Vec<Spec>),
    Stop(oneshot::Sender<()>),
}

/// The driver: its thread runs until [`Bfd::stop`] or until this is dropped.
pub struct Bfd {
    commands: mpsc::UnboundedSender<Command>,
    status: watch::Receiver<Status>,
}

impl Bfd {
    /// Starts the thread. State changes go to `events`.
    pub fn start(events: mpsc::UnboundedSender<Event>) -> io::Result<Bfd> {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (status_tx, status) = watch::channel(Status::default());
        // Sockets and timers only: no signal or child-process driver to poll at every wakeup
        // (tokio reaps orphans at each turn when it has one).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        std::thread::Builder::new()
            .name("bfd".into())
            .spawn(move || runtime.block_on(run(command_rx, events, status_tx)))?;
        Ok(Bfd { commands, status })
    }

    /// These are now the sessions: new ones start, gone ones say AdminDown and end, and
    /// changed settings are applied without taking a session down.
    pub fn set(&self, specs: Vec<Spec>) {
        let _ = self.commands.send(Command::Set(specs));
    }

    pub fn status(&self) -> watch::Receiver<Status> {
        self.status.clone()
    }

    /// Tells every peer AdminDown (so it does not take its BGP session down: RFC 5882
    /// section 3.2), then ends the thread.
    pub async fn stop(&self) {
        let (done, wait) = oneshot::channel();
        if self.commands.send(Command::Stop(done)).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(1), wait).await;
        }
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
    socket: std::net::UdpSocket,
    to: SocketAddr,
    counters: Counters,
    late: Duration,
    send_failing: bool,
}

/// The four listening sockets, opened when a session first needs one.
#[derive(Default)]
struct Listeners {
    single_v4: Option<UdpSocket>,
    single_v6: Option<UdpSocket>,
    multi_v4: Option<UdpSocket>,
    multi_v6: Option<UdpSocket>,
    errors: BTreeMap<String, String>,
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
    sockopt::receive_ttl(&socket, ipv6)?;
    socket.set_nonblocking(true)?;
    socket.bind(&SocketAddr::new(any, port).into())?;
    UdpSocket::from_std(socket.into())
}

impl Listeners {
    /// Opens what `entries` need.
    fn open_for(&mut self, entries: &BTreeMap<Key, Entry>) {
        for ipv6 in [false, true] {
            for multihop in [false, true] {
                let socket = match (ipv6, multihop) {
                    (false, false) => &mut self.single_v4,
                    (true, false) => &mut self.single_v6,
                    (false, true) => &mut self.multi_v4,
                    (true, true) => &mut self.multi_v6,
                };
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

/// The next datagram on `socket` (never, without one), with its TTL.
async fn recv(
    socket: Option<&UdpSocket>,
    buf: &mut [u8],
) -> io::Result<(usize, SocketAddr, Option<u8>)> {
    let Some(socket) = socket else {
        return std::future::pending().await;
    };
    loop {
        socket.readable().await?;
        match socket.try_io(tokio::io::Interest::READABLE, || {
            sockopt::recv_with_ttl(socket, buf)
        }) {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

/// The session's own sending socket: a source port from 49152-65535 (RFC 5881 section 4),
/// TTL 255, and bound to its interface when it has one.
fn sender(spec: &Spec) -> io::Result<(std::net::UdpSocket, SocketAddr)> {
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

impl Driver {
    fn apply(&mut self, key: &Key, outputs: Vec<Output>) {
        let Some(entry) = self.entries.get_mut(key) else {
            return;
        };
        for output in outputs {
            match output {
                Output::Send(packet) => send(entry, &packet),
                Output::Changed(change) => {
                    self.changed = true;
                    if change.to == State::Up {
                        entry.counters.up_events += 1;
                    } else if change.from == State::Up {
                        entry.counters.down_events += 1;
                    }
                    tracing::info!(peer = %key, from = %change.from, to = %change.to, diag = %change.diag, peer_admin_down = change.peer_admin_down, "BFD session changed state");
                    let _ = self.events.send(Event {
                        key: key.clone(),
                        change,
                    });
                }
            }
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
        let now = Instant::now();
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
            for output in entry.session.admin_down(now.into_std()) {
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
                let outputs = entry.session.set_settings(now.into_std(), spec.settings);
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
            let session = Session::new(spec.settings, discr, random(), now.into_std());
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

    fn received(&mut self, bytes: &[u8], from: SocketAddr, ttl: Option<u8>, multihop: bool) {
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
        let outputs = entry.session.on_packet(Instant::now().into_std(), &packet);
        self.apply(&key, outputs);
    }

    fn timers(&mut self) {
        let now = Instant::now();
        let due: Vec<Key> = self
            .entries
            .iter()
            .filter(|(_, e)| {
                e.session
                    .next_deadline()
                    .is_some_and(|d| d <= now.into_std())
            })
            .map(|(key, _)| key.clone())
            .collect();
        for key in due {
            let Some(entry) = self.entries.get_mut(&key) else {
                continue;
            };
            if let Some(at) = entry.session.next_tx().filter(|at| *at <= now.into_std()) {
                entry.late = entry.late.max(now.into_std() - at);
            }
            let outputs = entry.session.on_timer(now.into_std());
            self.apply(&key, outputs);
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
            .filter_map(|e| e.session.next_deadline())
            .map(Instant::from_std);
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

async fn run(
    mut commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    status: watch::Sender<Status>,
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
    // One buffer per listening socket: the four wait at once.
    let mut bufs = [[0u8; 512]; 4];
    // Two timers for the thread's life, reset rather than made again at each turn.
    let far = || Instant::now() + Duration::from_secs(3600);
    let timer = tokio::time::sleep_until(far());
    tokio::pin!(timer);
    let publish = tokio::time::sleep_until(Instant::now() + PUBLISH_EVERY);
    tokio::pin!(publish);
    loop {
        let deadline = driver.next_deadline();
        if deadline != Some(timer.deadline()) {
            timer.as_mut().reset(deadline.unwrap_or_else(far));
        }
        let l = &driver.listeners;
        let single_v4 = l.single_v4.as_ref();
        let single_v6 = l.single_v6.as_ref();
        let multi_v4 = l.multi_v4.as_ref();
        let multi_v6 = l.multi_v6.as_ref();
        let [buf1, buf2, buf3, buf4] = &mut bufs;
        tokio::select! {
            // Timers first: a packet late is a false detection at the peer. Then commands:
            // a flood of packets must not keep a stop (and its AdminDown) waiting.
            biased;
            () = &mut timer, if deadline.is_some() => driver.timers(),
            command = commands.recv() => match command {
                Some(Command::Set(specs)) => driver.set(specs),
                Some(Command::Stop(done)) => {
                    driver.set(Vec::new());
                    status.send_replace(driver.status());
                    // The repeated AdminDowns, then the end.
                    while let Some(at) = driver.next_deadline() {
                        tokio::time::sleep_until(at).await;
                        driver.timers();
                    }
                    let _ = done.send(());
                    return;
                }
                None => {
                    driver.set(Vec::new());
                    return;
                }
            },
            received = recv(single_v4, buf1) => {
                if let Ok((n, from, ttl)) = received {
                    driver.received(&buf1[..n], from, ttl, false);
                }
            }
            received = recv(single_v6, buf2) => {
                if let Ok((n, from, ttl)) = received {
                    driver.received(&buf2[..n], from, ttl, false);
                }
            }
            received = recv(multi_v4, buf3) => {
                if let Ok((n, from, ttl)) = received {
                    driver.received(&buf3[..n], from, ttl, true);
                }
            }
            received = recv(multi_v6, buf4) => {
                if let Ok((n, from, ttl)) = received {
                    driver.received(&buf4[..n], from, ttl, true);
                }
            }
            () = &mut publish => {
                driver.changed = true;
                if !driver.failed.is_empty() {
                    driver.reconcile();
                }
            }
        }
        if driver.changed {
            driver.changed = false;
            publish.as_mut().reset(Instant::now() + PUBLISH_EVERY);
            status.send_replace(driver.status());
        }
    }
}

#[cfg(test)]
mod tests;
