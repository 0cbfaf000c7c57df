//! The tokio shell around the core: one UDP socket and one TCP listener on the same port
//! (memberlist's 7946), timers from the core's next deadline, and push-pull streams.
use crate::core::{Config, Event, Member, Memberlist, Output};
use crate::wire::{
    Keyring, Message, WireError, decode_packet, decode_stream, encode_packet, encode_stream,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::time::Instant;

/// How long a push-pull connection may take, as memberlist's TCPTimeout (10 s) but shorter:
/// a LAN peer that needs longer is in trouble anyway.
const STREAM_TIMEOUT: Duration = Duration::from_secs(5);

/// How often joining is retried until one seed answers.
const REJOIN_INTERVAL: Duration = Duration::from_secs(1);

/// How often seeds that are not live members are joined again, while we know others: after a
/// partition longer than `gossip_to_the_dead`, each side has forgotten the other, and only
/// the seeds bring them back together.
const SEED_CHECK_INTERVAL: Duration = Duration::from_secs(10);

/// How often the member counts and totals are copied into the metrics, at most.
const METRICS_EVERY: Duration = Duration::from_secs(1);

/// The most datagrams read in one wakeup before timers and commands get their turn.
const DATAGRAMS_PER_WAKEUP: usize = 64;

/// Bytes every inbound stream together may hold before it decodes (and, encrypted, before
/// it is authenticated): a connection that would go past it is closed. Without a bound, a
/// few connections that never finish their message held 20 MB each.
pub const DEFAULT_STREAM_BUDGET: usize = 32 * 1024 * 1024;

/// Inbound streams served at once, as memberlist's maxPushPullRequests.
const MAX_INBOUND_STREAMS: usize = 128;

/// Membership events waiting for the user: beyond this, new ones are dropped. The user
/// reads the member list afresh when it wakes, so a dropped event loses nothing but the
/// wake-up a queued one already gives.
const EVENTS_QUEUED: usize = 1024;

pub struct GossipConfig {
    pub core: Config,
    pub bind: SocketAddr,
    pub keyring: Option<Keyring>,
    /// Where to join: retried until one answers.
    pub seeds: Vec<SocketAddr>,
    pub metrics: GossipMetrics,
    /// See [`DEFAULT_STREAM_BUDGET`].
    pub stream_budget: usize,
}

type Labels = Vec<(String, String)>;

/// Gossip metrics, to register in the component's registry.
#[derive(Clone, Default)]
pub struct GossipMetrics {
    members: Family<Labels, Gauge>,
    probes: Counter,
    suspicions: Counter,
    failures: Counter,
    dropped: Family<Labels, Counter>,
    encrypted: Gauge,
}

impl GossipMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let gossip = registry.sub_registry_with_prefix("ferrolb_gossip");
        gossip.register("members", "Members known, by state", self.members.clone());
        gossip.register("probes", "Probes sent", self.probes.clone());
        gossip.register("suspicions", "Members suspected", self.suspicions.clone());
        gossip.register("failures", "Members declared failed", self.failures.clone());
        gossip.register(
            "encrypted",
            "1 when gossip is encrypted; 0 when anyone on the network can forge it",
            self.encrypted.clone(),
        );
        gossip.register(
            "packets_dropped",
            "Packets dropped, by reason",
            self.dropped.clone(),
        );
    }

    fn record(&self, core: &Memberlist) {
        for state in ["alive", "suspect", "dead", "left"] {
            let count = core
                .members()
                .filter(|m| state_label(m.state) == state)
                .count();
            self.members
                .get_or_create(&vec![("state".into(), state.into())])
                .set(count as i64);
        }
        let stats = core.stats();
        // Counters only move forward: add what happened since the last record.
        self.probes
            .inc_by(stats.probes.saturating_sub(self.probes.get()));
        self.suspicions
            .inc_by(stats.suspicions.saturating_sub(self.suspicions.get()));
        self.failures
            .inc_by(stats.failures.saturating_sub(self.failures.get()));
    }

    fn drop_stream(&self, reason: &str) {
        self.dropped
            .get_or_create(&vec![("reason".into(), format!("stream_{reason}"))])
            .inc();
    }

    fn drop_packet(&self, error: &WireError) {
        let reason = match error {
            WireError::Decrypt | WireError::NotEncrypted | WireError::UnexpectedlyEncrypted => {
                "encryption"
            }
            WireError::Checksum => "checksum",
            WireError::TooLarge(_) => "too_large",
            _ => "malformed",
        };
        self.dropped
            .get_or_create(&vec![("reason".into(), reason.into())])
            .inc();
    }
}

fn state_label(state: crate::core::State) -> &'static str {
    match state {
        crate::core::State::Alive => "alive",
        crate::core::State::Suspect => "suspect",
        crate::core::State::Dead => "dead",
        crate::core::State::Left => "left",
    }
}

enum Command {
    Members(oneshot::Sender<Vec<Member>>),
    Leave(oneshot::Sender<()>),
    UpdateMeta(Vec<u8>),
    Seeds(Vec<SocketAddr>),
    CheckContact(oneshot::Sender<Option<Instant>>),
}

/// Messages from connection tasks to the main loop.
enum Internal {
    /// A push-pull someone opened with us; answer on the sender.
    Incoming {
        message: crate::wire::PushPull,
        answer: oneshot::Sender<crate::wire::PushPull>,
    },
    /// The answer to a push-pull we opened.
    Answer(crate::wire::PushPull),
}

/// A running member: its events, and a handle to ask for members or to leave.
pub struct Gossip {
    pub events: mpsc::Receiver<Event>,
    commands: mpsc::Sender<Command>,
    /// Dropped with the handle: the member's thread then ends.
    _stop: oneshot::Sender<()>,
}

impl Gossip {
    /// Binds the member's sockets (a taken port is the caller's error) and runs it on a
    /// thread of its own (a current-thread runtime): each datagram or timer wakes that one
    /// thread, never a second worker of the caller's runtime, and the caller's work cannot
    /// delay a ping.
    pub async fn start(config: GossipConfig) -> std::io::Result<Gossip> {
        let udp = std::net::UdpSocket::bind(config.bind)?;
        udp.set_nonblocking(true)?;
        let tcp = std::net::TcpListener::bind(config.bind)?;
        tcp.set_nonblocking(true)?;
        let (events_tx, events) = mpsc::channel(EVENTS_QUEUED);
        let (commands, commands_rx) = mpsc::channel(16);
        let (stop, stopped) = oneshot::channel::<()>();
        // Sockets and timers only: no signal or child-process driver to poll at every wakeup.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        std::thread::Builder::new()
            .name("gossip".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let sockets = UdpSocket::from_std(udp)
                        .and_then(|udp| TcpListener::from_std(tcp).map(|tcp| (udp, tcp)));
                    let (udp, tcp) = match sockets {
                        Ok(sockets) => sockets,
                        Err(error) => {
                            tracing::error!(%error, "gossip cannot use its sockets");
                            return;
                        }
                    };
                    tokio::select! {
                        () = run(config, udp, tcp, events_tx, commands_rx) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Gossip {
            events,
            commands,
            _stop: stop,
        })
    }

    pub async fn members(&self) -> Vec<Member> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Members(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// Pings a few members, and says when the latest answered such ping had been sent (see
    /// [`Memberlist::check_contact`]).
    pub async fn check_contact(&self) -> Option<Instant> {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::CheckContact(tx)).await.is_err() {
            return None;
        }
        rx.await.ok().flatten()
    }

    /// New metadata for the other members to see.
    pub async fn update_meta(&self, meta: Vec<u8>) {
        let _ = self.commands.send(Command::UpdateMeta(meta)).await;
    }

    /// Where to join from now on: used whenever we know no other member.
    pub async fn set_seeds(&self, seeds: Vec<SocketAddr>) {
        let _ = self.commands.send(Command::Seeds(seeds)).await;
    }

    /// Tells every member we are leaving, then stops.
    /// Tells the others we leave; the member's loop ends once it has.
    pub async fn leave(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Leave(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

fn nonce() -> [u8; 12] {
    let mut nonce = [0u8; 12];
    getrandom::fill(&mut nonce).expect("the OS provides randomness");
    nonce
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the OS provides randomness");
    u64::from_le_bytes(bytes)
}

async fn run(
    config: GossipConfig,
    udp: UdpSocket,
    tcp: TcpListener,
    events: mpsc::Sender<Event>,
    mut commands: mpsc::Receiver<Command>,
) {
    let keyring = config.keyring;
    let metrics = config.metrics;
    metrics.encrypted.set(i64::from(keyring.is_some()));
    // One permit per KiB buffered by inbound streams.
    let budget = Arc::new(Semaphore::new(config.stream_budget / 1024));
    let connections = Arc::new(Semaphore::new(MAX_INBOUND_STREAMS));
    let mut core = Memberlist::new(config.core, Instant::now().into_std(), seed());
    let (internal_tx, mut internal) = mpsc::channel::<Internal>(64);
    let mut seeds = config.seeds;
    let mut joined = false;
    // Both run only now and then (when alone, when joined): no burst of missed ticks after.
    let mut rejoin = tokio::time::interval(REJOIN_INTERVAL);
    rejoin.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seed_check = tokio::time::interval(SEED_CHECK_INTERVAL);
    seed_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = vec![0u8; 65_536];
    let mut dropped: u64 = 0;
    let mut last_record = Instant::now();
    // One timer, moved when the core's next deadline moves, rather than a new one at every
    // turn of the loop.
    let timer = tokio::time::sleep_until(Instant::from_std(core.next_deadline()));
    tokio::pin!(timer);
    loop {
        let deadline = Instant::from_std(core.next_deadline());
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        let outputs = tokio::select! {
            received = udp.recv_from(&mut buf) => match received {
                Ok((len, from)) => {
                    let mut receive = |core: &mut Memberlist, bytes: &[u8], from| {
                        match decode_packet(bytes, keyring.as_ref()) {
                            Ok(messages) => core.handle_packet(from, messages, Instant::now().into_std()),
                            Err(error) => {
                                dropped += 1;
                                metrics.drop_packet(&error);
                                report_dropped(from, &error, dropped);
                                Vec::new()
                            }
                        }
                    };
                    let mut outputs = receive(&mut core, &buf[..len], from);
                    // Datagrams that arrived meanwhile are read in the same wakeup: a ping
                    // and an ack landing together cost one trip through the scheduler.
                    for _ in 1..DATAGRAMS_PER_WAKEUP {
                        match udp.try_recv_from(&mut buf) {
                            Ok((len, from)) => outputs.extend(receive(&mut core, &buf[..len], from)),
                            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(error) => {
                                tracing::warn!(%error, "receiving a datagram failed");
                                break;
                            }
                        }
                    }
                    outputs
                }
                Err(error) => {
                    tracing::warn!(%error, "receiving a datagram failed");
                    Vec::new()
                }
            },
            accepted = tcp.accept() => {
                if let Ok((stream, from)) = accepted {
                    // memberlist serves 128 push-pulls at once; past that, close at once.
                    match connections.clone().try_acquire_owned() {
                        Ok(permit) => {
                            tokio::spawn(serve_stream(stream, from, keyring.clone(), internal_tx.clone(), budget.clone(), metrics.clone(), permit));
                        }
                        Err(_) => metrics.drop_stream("connections"),
                    }
                }
                Vec::new()
            }
            Some(message) = internal.recv() => match message {
                Internal::Incoming { message, answer } => {
                    let (reply, outputs) = core.handle_push_pull(message, Instant::now().into_std());
                    let _ = answer.send(reply);
                    outputs
                }
                Internal::Answer(message) => {
                    joined = true;
                    core.handle_push_pull_answer(message, Instant::now().into_std())
                }
            },
            // Until a seed answers, and again whenever we are alone (every other member
            // gone, or we were the first to start).
            _ = rejoin.tick(), if !joined || core.is_alone() => {
                core.join(&seeds)
            }
            _ = seed_check.tick(), if joined => match core.stranger(&seeds) {
                Some(seed) => core.join(&[seed]),
                None => Vec::new(),
            },
            () = &mut timer => core.tick(Instant::now().into_std()),
            command = commands.recv() => match command {
                Some(Command::Members(reply)) => {
                    let _ = reply.send(core.members().cloned().collect());
                    Vec::new()
                }
                Some(Command::UpdateMeta(meta)) => core.update_meta(meta, Instant::now().into_std()),
                Some(Command::CheckContact(reply)) => {
                    let (round_trip, outputs) = core.check_contact(Instant::now().into_std());
                    let _ = reply.send(round_trip.map(Instant::from_std));
                    outputs
                }
                Some(Command::Seeds(new)) => {
                    seeds = new;
                    Vec::new()
                }
                Some(Command::Leave(done)) => {
                    let outputs = core.leave(Instant::now().into_std());
                    send_all(&udp, outputs, keyring.as_ref(), &events, &internal_tx).await;
                    let _ = done.send(());
                    return;
                }
                None => return,
            },
        };
        // Member counts change only with events; the rest may lag a second. Counting
        // members for every datagram would cost more with every member.
        let membership_changed = outputs.iter().any(|o| matches!(o, Output::Event(_)));
        send_all(&udp, outputs, keyring.as_ref(), &events, &internal_tx).await;
        if membership_changed || last_record.elapsed() >= METRICS_EVERY {
            metrics.record(&core);
            last_record = Instant::now();
        }
    }
}

fn report_dropped(from: SocketAddr, error: &WireError, dropped: u64) {
    match error {
        WireError::Decrypt | WireError::NotEncrypted | WireError::UnexpectedlyEncrypted => {
            tracing::warn!(%from, %error, dropped, "dropped a packet: check that every speaker has the same memberlist secret key");
        }
        _ => tracing::debug!(%from, %error, dropped, "dropped a malformed packet"),
    }
}

async fn send_all(
    udp: &UdpSocket,
    outputs: Vec<Output>,
    keyring: Option<&Keyring>,
    events: &mpsc::Sender<Event>,
    internal: &mpsc::Sender<Internal>,
) {
    for output in outputs {
        match output {
            Output::Packet { to, messages } => {
                // A nonce costs a system call: only encryption needs one.
                let nonce = if keyring.is_some() { nonce() } else { [0; 12] };
                let packet = encode_packet(&messages, false, keyring, nonce);
                if let Err(error) = udp.send_to(&packet, to).await {
                    tracing::debug!(%to, %error, "sending a datagram failed");
                }
            }
            Output::PushPull { to, message } => {
                let bytes = encode_stream(&Message::PushPull(message), keyring, nonce());
                tokio::spawn(push_pull(to, bytes, keyring.cloned(), internal.clone()));
            }
            Output::Event(event) => {
                tracing::info!(?event, "membership changed");
                let _ = events.try_send(event);
            }
        }
    }
}

/// Opens a push-pull with `to` and hands its answer to the main loop.
async fn push_pull(
    to: SocketAddr,
    bytes: Vec<u8>,
    keyring: Option<Keyring>,
    internal: mpsc::Sender<Internal>,
) {
    let exchange = async {
        let mut stream = TcpStream::connect(to).await?;
        stream.write_all(&bytes).await?;
        read_message(&mut stream, keyring.as_ref(), None).await
    };
    match tokio::time::timeout(STREAM_TIMEOUT, exchange).await {
        Ok(Ok(Message::PushPull(answer))) => {
            let _ = internal.send(Internal::Answer(answer)).await;
        }
        Ok(Ok(_)) => tracing::debug!(%to, "push-pull answered with another message"),
        Ok(Err(error)) => {
            tracing::warn!(%to, %error, "push-pull failed (is the memberlist secret key the same everywhere?)")
        }
        Err(_) => tracing::warn!(%to, "push-pull timed out"),
    }
}

/// Serves a push-pull someone opened with us.
async fn serve_stream(
    mut stream: TcpStream,
    from: SocketAddr,
    keyring: Option<Keyring>,
    internal: mpsc::Sender<Internal>,
    budget: Arc<Semaphore>,
    metrics: GossipMetrics,
    _connection: tokio::sync::OwnedSemaphorePermit,
) {
    let exchange = async {
        let message = read_message(&mut stream, keyring.as_ref(), Some(&budget))
            .await
            .inspect_err(|e| {
                if e.kind() == std::io::ErrorKind::OutOfMemory {
                    metrics.drop_stream("budget");
                }
            })?;
        let Message::PushPull(message) = message else {
            return Err(std::io::Error::other("only push-pull is served on streams"));
        };
        let (answer_tx, answer_rx) = oneshot::channel();
        internal
            .send(Internal::Incoming {
                message,
                answer: answer_tx,
            })
            .await
            .map_err(std::io::Error::other)?;
        let answer = answer_rx.await.map_err(std::io::Error::other)?;
        stream
            .write_all(&encode_stream(
                &Message::PushPull(answer),
                keyring.as_ref(),
                nonce(),
            ))
            .await
    };
    match tokio::time::timeout(STREAM_TIMEOUT, exchange).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%from, %error, "refused a push-pull (a different memberlist secret key?)")
        }
        Err(_) => tracing::debug!(%from, "push-pull timed out"),
    }
}

/// Reads until one whole message has arrived, holding its bytes against `budget` (inbound
/// streams), and decoding as few times as it can: an encrypted stream says its length up
/// front; a plain one only ends where its message does, so it is decoded when the buffer has
/// doubled since the last try, or when the sender pauses. Each decode reads the buffer from
/// the start, so trying after every chunk cost the square of the message's size.
async fn read_message(
    stream: &mut (impl AsyncReadExt + Unpin),
    keyring: Option<&Keyring>,
    budget: Option<&Arc<Semaphore>>,
) -> std::io::Result<Message> {
    read_message_counting(stream, keyring, budget)
        .await
        .map(|(message, _)| message)
}

/// [`read_message`], also saying how many times it decoded.
async fn read_message_counting(
    stream: &mut (impl AsyncReadExt + Unpin),
    keyring: Option<&Keyring>,
    budget: Option<&Arc<Semaphore>>,
) -> std::io::Result<(Message, usize)> {
    const CHUNK: usize = 16 * 1024;
    const PAUSE: Duration = Duration::from_millis(5);
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; CHUNK];
    let mut held = Vec::new();
    let mut decodes = 0;
    let mut tried_at = 0;
    let mut paused = false;
    loop {
        let complete = match expected_len(&buf) {
            Some(len) => buf.len() >= len,
            None => paused || tried_at == 0 || buf.len() >= 2 * tried_at,
        };
        if complete && !buf.is_empty() {
            decodes += 1;
            tried_at = buf.len();
            match decode_stream(&buf, keyring) {
                Ok(message) => return Ok((message, decodes)),
                Err(WireError::Truncated) if buf.len() < crate::wire::MAX_STREAM_BYTES => {}
                Err(error) => return Err(std::io::Error::other(error)),
            }
        }
        // A pause matters only when bytes arrived since the last decode; otherwise wait.
        let n = if buf.len() > tried_at {
            match tokio::time::timeout(PAUSE, stream.read(&mut chunk)).await {
                Ok(read) => read?,
                Err(_) => {
                    paused = true;
                    continue;
                }
            }
        } else {
            stream.read(&mut chunk).await?
        };
        paused = false;
        if n == 0 {
            // The sender is done: what arrived since the last try is all there is.
            if buf.len() > tried_at {
                decodes += 1;
                return decode_stream(&buf, keyring)
                    .map(|message| (message, decodes))
                    .map_err(std::io::Error::other);
            }
            return Err(std::io::Error::other(WireError::Truncated));
        }
        if buf.len() + n > crate::wire::MAX_STREAM_BYTES {
            return Err(std::io::Error::other(WireError::TooLarge(
                crate::wire::MAX_STREAM_BYTES,
            )));
        }
        if let Some(budget) = budget {
            let permits = (buf.len() + n).div_ceil(1024) - buf.len().div_ceil(1024);
            let permit = budget
                .clone()
                .try_acquire_many_owned(permits as u32)
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::OutOfMemory,
                        "inbound streams hold too many bytes: connection closed",
                    )
                })?;
            held.push(permit);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The whole length of an encrypted stream, once its header has arrived.
fn expected_len(buf: &[u8]) -> Option<usize> {
    if buf.first() != Some(&(crate::wire::MessageType::Encrypt as u8)) {
        return None;
    }
    let len = buf.get(1..5)?;
    Some(5 + u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(
        name: &str,
        port: u16,
        seeds: Vec<SocketAddr>,
        metrics: GossipMetrics,
    ) -> GossipConfig {
        let bind: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut core = Config::lan(name, bind);
        core.probe_interval = Duration::from_millis(100);
        core.probe_timeout = Duration::from_millis(50);
        GossipConfig {
            core,
            bind,
            keyring: None,
            seeds,
            metrics,
            stream_budget: DEFAULT_STREAM_BUDGET,
        }
    }

    /// A port free for both UDP and TCP right now (other tests open connections meanwhile,
    /// whose ports come from the same range: a port free for UDP alone was not enough).
    fn free_port() -> u16 {
        for _ in 0..100 {
            let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            let port = udp.local_addr().unwrap().port();
            if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
                return port;
            }
        }
        panic!("no port free for both UDP and TCP")
    }

    /// A push-pull of `nodes` members, as a plaintext stream.
    fn big_push_pull(nodes: usize) -> Vec<u8> {
        let nodes = (0..nodes)
            .map(|i| crate::wire::PushNodeState {
                name: format!("member-{i}"),
                addr: vec![198, 18, (i / 250) as u8, (i % 250) as u8],
                port: 7946,
                meta: vec![b'x'; 100],
                incarnation: 1,
                state: crate::wire::NodeState::Alive,
                vsn: crate::core::VERSIONS.to_vec(),
            })
            .collect();
        let message = Message::PushPull(crate::wire::PushPull {
            join: false,
            nodes,
            user_state: Vec::new(),
        });
        encode_stream(&message, None, [0; 12])
    }

    /// Issue 9, case 7: a plaintext stream was decoded again from its start after every
    /// 16 KB read, which costs the square of its size.
    #[tokio::test]
    async fn a_large_stream_read_in_small_pieces_is_decoded_a_few_times() {
        let bytes = big_push_pull(8_000);
        assert!(bytes.len() > 1_000_000, "{}", bytes.len());
        let (mut writer, mut reader) = tokio::io::duplex(4096);
        let sender = tokio::spawn(async move {
            for piece in bytes.chunks(1024) {
                writer.write_all(piece).await.unwrap();
            }
            writer
        });
        let (message, decodes) = read_message_counting(&mut reader, None, None)
            .await
            .unwrap();
        let _writer = sender.await.unwrap();
        let Message::PushPull(push_pull) = message else {
            panic!("a push-pull")
        };
        assert_eq!(push_pull.nodes.len(), 8_000);
        // Doubling from the first read: about log2(1 MB / 4 KB) = 8, and a few more when the
        // sender pauses on a busy machine. Decoding after every read would be about 300.
        assert!(decodes <= 40, "decoded {decodes} times");
    }

    /// Issue 9, case 7: connections that never finish a message held up to 20 MB each.
    #[tokio::test]
    async fn streams_that_outgrow_the_budget_are_closed() {
        let budget = Arc::new(Semaphore::new(256)); // 256 KiB for every inbound stream
        let bytes = big_push_pull(8_000);
        let (mut writer, mut reader) = tokio::io::duplex(64 * 1024);
        let _sender = tokio::spawn(async move {
            let _ = writer.write_all(&bytes).await;
            // Never finishes: keeps the connection open.
            std::future::pending::<()>().await;
        });
        let read = tokio::time::timeout(
            Duration::from_secs(5),
            read_message(&mut reader, None, Some(&budget)),
        )
        .await
        .expect("the reader gave up in time");
        let error = read.expect_err("the stream went past the budget");
        assert_eq!(error.kind(), std::io::ErrorKind::OutOfMemory);
        // Closing the connection gives its bytes back.
        assert_eq!(budget.available_permits(), 256);
    }

    /// Issue 9, case 8: a key rotation, midway: each member sends with its own primary key
    /// and accepts the other's.
    #[tokio::test]
    async fn members_with_different_primary_keys_that_accept_each_other_join() {
        use crate::wire::metallb_key;
        let (pa, pb) = (free_port(), free_port());
        let mut a = config("a", pa, vec![], GossipMetrics::default());
        let mut ring_a = Keyring::new(metallb_key(b"old"));
        ring_a.add(metallb_key(b"new"));
        a.keyring = Some(ring_a);
        let mut b = config(
            "b",
            pb,
            vec![([127, 0, 0, 1], pa).into()],
            GossipMetrics::default(),
        );
        let mut ring_b = Keyring::new(metallb_key(b"new"));
        ring_b.add(metallb_key(b"old"));
        b.keyring = Some(ring_b);
        let a = Gossip::start(a).await.unwrap();
        let b = Gossip::start(b).await.unwrap();
        let joined = tokio::time::timeout(Duration::from_secs(5), async {
            while a.members().await.len() < 2 || b.members().await.len() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(joined.is_ok(), "the members never saw each other");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
        /// The stream reader, on any bytes cut into any pieces: it gives what decoding the
        /// whole stream gives (or an error where that is truncated or wrong), and ends.
        #[test]
        fn the_stream_reader_agrees_with_decoding_the_whole_stream(
            nodes in 0usize..300,
            garbage in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
            cut_at in proptest::collection::vec(1usize..5000, 0..8),
            corrupt in proptest::prelude::any::<bool>(),
        ) {
            let mut bytes = big_push_pull(nodes);
            if corrupt {
                let at = garbage.len() % bytes.len();
                bytes.splice(at..at, garbage.iter().copied());
            }
            let whole = decode_stream(&bytes, None);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
            let read = runtime.block_on(async {
                let (mut writer, mut reader) = tokio::io::duplex(1024);
                let pieces = bytes.clone();
                let sender = tokio::spawn(async move {
                    let mut rest = &pieces[..];
                    for cut in cut_at {
                        let (piece, tail) = rest.split_at(cut.min(rest.len()));
                        if writer.write_all(piece).await.is_err() {
                            return; // the reader is done
                        }
                        rest = tail;
                    }
                    let _ = writer.write_all(rest).await;
                    // The sender closes: a reader waiting for more sees the end.
                });
                let read = tokio::time::timeout(
                    Duration::from_secs(10),
                    read_message(&mut reader, None, None),
                )
                .await
                .expect("the reader ended");
                drop(reader);
                let _ = sender.await;
                read
            });
            match (whole, read) {
                (Ok(expected), Ok(got)) => proptest::prop_assert_eq!(expected, got),
                (Ok(expected), Err(e)) => proptest::prop_assert!(false, "{expected:?} but {e}"),
                (Err(_), _) => {}
            }
        }
    }

    /// Issue 9, case 7: connections were accepted without limit.
    #[tokio::test]
    async fn connections_past_the_limit_are_closed_at_once() {
        let port = free_port();
        let metrics = GossipMetrics::default();
        let _member = Gossip::start(config("a", port, vec![], metrics.clone()))
            .await
            .unwrap();
        let mut idle = Vec::new();
        for _ in 0..MAX_INBOUND_STREAMS {
            idle.push(TcpStream::connect(("127.0.0.1", port)).await.unwrap());
        }
        let mut extra = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut byte = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut byte)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "the connection past the limit stayed open: {closed:?}"
        );
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("reason=\"stream_connections\"} 1"), "{text}");
    }

    #[tokio::test]
    async fn two_members_on_loopback_join_count_and_drop_garbage() {
        let (pa, pb) = (free_port(), free_port());
        let metrics = GossipMetrics::default();
        let a = Gossip::start(config("a", pa, vec![], metrics.clone()))
            .await
            .unwrap();
        let b = Gossip::start(config(
            "b",
            pb,
            vec![([127, 0, 0, 1], pa).into()],
            GossipMetrics::default(),
        ))
        .await
        .unwrap();
        let joined = tokio::time::timeout(Duration::from_secs(5), async {
            while a.members().await.len() < 2 || b.members().await.len() < 2 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(joined.is_ok(), "the members never saw each other");

        let garbage = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        garbage
            .send_to(&[0xff, 1, 2, 3], ("127.0.0.1", pa))
            .unwrap();
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let encode = || {
            let mut text = String::new();
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text
        };
        // Totals reach the metrics within a second (probes run once a second).
        let mut text = encode();
        for _ in 0..40 {
            if !text.contains("ferrolb_gossip_probes_total 0\n") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            text = encode();
        }
        assert!(
            text.contains("ferrolb_gossip_members{state=\"alive\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("ferrolb_gossip_packets_dropped_total{reason=\"malformed\"} 1"),
            "{text}"
        );
        assert!(text.contains("ferrolb_gossip_encrypted 0"), "{text}");
        assert!(
            !text.contains("ferrolb_gossip_probes_total 0\n"),
            "no probe counted: {text}"
        );

        b.leave().await;
        let left = tokio::time::timeout(Duration::from_secs(2), async {
            while a
                .members()
                .await
                .iter()
                .any(|m| m.name == "b" && m.state == crate::core::State::Alive)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert!(left.is_ok(), "a never saw b leave");
    }
}
