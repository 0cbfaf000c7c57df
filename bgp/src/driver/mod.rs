//! One session over tokio TCP: the thin shell around [`Session`]. It connects (from a chosen
//! source address, with a chosen TTL) or accepts the peer's connection, feeds the session the
//! bytes and the time, writes what it puts out in one batch per pass, and keeps the peer's
//! routes as the [`Export`] says: the whole table (packed for what was negotiated) and an
//! End-of-RIB per family each time the session comes up, then only what changes.
use crate::export::{Export, Path, Updates};
use crate::packet::{Message, RouteRefresh, RouteRefreshKind, Update};
use crate::session::{
    Counters, Down, Input, Link, Negotiated, Output, Session, State, collision_notification,
};
use ipnet::IpNet;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

pub mod sockopt;

/// Where the peer is and how to reach it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub address: SocketAddr,
    /// The source address of our connection (and the address a passive session listens on).
    pub local_address: Option<IpAddr>,
    /// TTL of what we send: 1 for a directly connected eBGP peer, more for multihop.
    pub ttl: Option<u32>,
    /// GTSM (RFC 5082): send with TTL 255 and accept only TTL 255 (overrides `ttl`).
    pub gtsm: bool,
    /// The TCP MD5 key (BGPPeer `password`).
    pub password: Option<String>,
}

#[derive(Debug)]
pub enum Command {
    /// Stop with a Cease of this subcode and message, then return.
    Stop { subcode: u8, message: String },
    /// Close the connection without a word and return: a restarting speaker's way under
    /// graceful restart (RFC 4724), so the peer keeps our routes until we are back.
    Abandon,
    /// These routes are now the whole table: the peer is sent the difference.
    Replace(Vec<(IpNet, Arc<Path>)>),
}

#[derive(Debug)]
pub enum Event {
    Established(Box<Negotiated>),
    /// The table and End-of-RIB were written, this long after Established.
    EndOfRibSent(Duration),
    /// Messages were queued for the peer (UPDATEs, and the markers around a refresh), with
    /// this many routes announced and withdrawn.
    Sent {
        messages: usize,
        announced: usize,
        withdrawn: usize,
        /// Prefixes the peer holds from us after them.
        advertised: usize,
    },
    Down(Down),
    Update(Box<Update>),
    /// An attempt to connect failed, or got no answer before the retry timer gave it up (a
    /// wrong TCP MD5 password looks like this: the peer drops our SYNs without a word).
    ConnectFailed(String),
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>> + Send>>;

async fn connect(peer: Peer) -> io::Result<TcpStream> {
    let socket = match peer.address {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if let Some(local) = peer.local_address {
        socket.bind(SocketAddr::new(local, 0))?;
    }
    if let Some(password) = &peer.password {
        sockopt::set_key(&socket, peer.address, password.as_bytes())?;
    }
    // Before connecting: the SYN goes out with the TTL too (a peer out of reach is never
    // half-connected), and under GTSM the peer's SYN-ACK is checked.
    set_ttl(&socket, &peer)?;
    let stream = socket.connect(peer.address).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// One connection to the peer, split so reading and writing wait independently.
struct Conn {
    reader: OwnedReadHalf,
    writer: OwnedWriteHalf,
    /// What the session sent and the socket has not taken yet: written as the peer reads,
    /// in the same select as everything else, so a peer that stops reading blocks nothing
    /// (the send hold timer then drops it).
    outbox: Vec<u8>,
    buf: Box<[u8]>,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        let (reader, writer) = stream.into_split();
        Conn {
            reader,
            writer,
            outbox: Vec::new(),
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
        }
    }
}

/// The outbound and the inbound connection (both exist only during a collision).
#[derive(Default)]
struct Conns {
    outbound: Option<Conn>,
    inbound: Option<Conn>,
}

impl Conns {
    fn get(&mut self, link: Link) -> &mut Option<Conn> {
        match link {
            Link::Outbound => &mut self.outbound,
            Link::Inbound => &mut self.inbound,
        }
    }
}

enum IoEvent {
    Read(Link, io::Result<usize>),
    Wrote(Link, io::Result<usize>),
}

/// The next read or write to complete on either connection.
async fn next_io(conns: &mut Conns) -> IoEvent {
    let Conns { outbound, inbound } = conns;
    tokio::select! {
        event = conn_io(outbound, Link::Outbound), if outbound.is_some() => event,
        event = conn_io(inbound, Link::Inbound), if inbound.is_some() => event,
        else => std::future::pending().await,
    }
}

async fn conn_io(conn: &mut Option<Conn>, link: Link) -> IoEvent {
    let Some(Conn {
        reader,
        writer,
        outbox,
        buf,
    }) = conn
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        read = reader.read(buf) => IoEvent::Read(link, read),
        written = writer.write(outbox), if !outbox.is_empty() => IoEvent::Wrote(link, written),
    }
}

/// Runs the session until `Command::Stop` (or the command channel closes).
pub async fn run(
    peer: Peer,
    mut session: Session,
    mut export: Export,
    listen: bool,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<Event>,
    counters: watch::Sender<Counters>,
) -> io::Result<()> {
    // Passive sessions listen; active ones may too, and then resolve collisions.
    let listener = if listen {
        let local = peer.local_address.unwrap_or(if peer.address.is_ipv4() {
            IpAddr::from([0, 0, 0, 0])
        } else {
            IpAddr::from([0u16; 8])
        });
        let listener = TcpListener::bind(SocketAddr::new(local, peer.address.port())).await?;
        if peer.gtsm {
            // Accepted connections inherit it: a SYN from afar never completes.
            sockopt::set_min_ttl(&listener, peer.address.is_ipv6(), 255)?;
        }
        if let Some(password) = &peer.password {
            sockopt::set_key(&listener, peer.address, password.as_bytes())?;
        }
        Some(listener)
    } else {
        None
    };
    let mut conns = Conns::default();
    let mut connecting: Option<Connecting> = None;
    let mut pending = session.handle(Instant::now().into_std(), Input::Start);
    // When the session came up on which connection, while its table and End-of-RIB are not
    // written yet.
    let mut table_since: Option<(Link, Instant)> = None;
    loop {
        while !pending.is_empty() {
            let mut next = Vec::new();
            for output in std::mem::take(&mut pending) {
                match output {
                    Output::Connect => connecting = Some(Box::pin(connect(peer.clone()))),
                    Output::Send(link, bytes) => {
                        if let Some(conn) = conns.get(link) {
                            conn.outbox.extend_from_slice(&bytes);
                        }
                    }
                    Output::Close(link) => {
                        if link == Link::Outbound && connecting.is_some() {
                            let _ = events.send(Event::ConnectFailed("no answer".into())).await;
                        }
                        if let Some(conn) = conns.get(link).take() {
                            close(conn.writer, conn.outbox).await;
                        }
                        if link == Link::Outbound {
                            connecting = None;
                        }
                        if table_since.is_some_and(|(l, _)| l == link) {
                            table_since = None;
                        }
                    }
                    Output::Established(negotiated) => {
                        let started = Instant::now();
                        // A new session: the peer holds nothing of ours (or only stale
                        // routes, which our End-of-RIB ends).
                        export.session_down();
                        let local = local_address(&mut conns, &session);
                        let mut updates = export.updates(&negotiated, local);
                        for family in &negotiated.families {
                            updates.messages.push(
                                Message::Update(Box::new(Update::end_of_rib(*family)))
                                    .encode(&negotiated.context),
                            );
                        }
                        let _ = events.send(Event::Established(negotiated)).await;
                        let sends =
                            send(&mut session, &events, started, updates, export.advertised())
                                .await;
                        if let Some(Output::Send(link, _)) = sends.first() {
                            table_since = Some((*link, started));
                        }
                        next.extend(sends);
                    }
                    Output::Down(why) => {
                        let _ = events.send(Event::Down(why)).await;
                    }
                    Output::Update(update) => {
                        let _ = events.send(Event::Update(update)).await;
                    }
                    Output::RouteRefresh(refresh) => {
                        // A request gets that family's routes again, between the markers of
                        // an enhanced refresh (RFC 7313 4) when both offered it; the peer's
                        // own markers ask nothing of us.
                        if refresh.kind == RouteRefreshKind::Request
                            && let Some(n) = session.negotiated().cloned()
                            && n.families.contains(&refresh.family)
                        {
                            export.resend(refresh.family);
                            let local = local_address(&mut conns, &session);
                            let mut updates = export.updates(&n, local);
                            if n.enhanced_route_refresh {
                                let marker = |kind| {
                                    Message::RouteRefresh(RouteRefresh {
                                        family: refresh.family,
                                        kind,
                                    })
                                    .encode(&n.context)
                                };
                                updates.messages.insert(0, marker(RouteRefreshKind::Begin));
                                updates.messages.push(marker(RouteRefreshKind::End));
                            }
                            next.extend(
                                send(
                                    &mut session,
                                    &events,
                                    Instant::now(),
                                    updates,
                                    export.advertised(),
                                )
                                .await,
                            );
                        }
                    }
                }
            }
            pending = next;
        }
        counters.send_if_modified(|last| {
            let changed = last != session.counters();
            *last = *session.counters();
            changed
        });
        let deadline = session.next_deadline().map(Instant::from_std);
        tokio::select! {
            command = commands.recv() => {
                let (subcode, message) = match command {
                    Some(Command::Replace(routes)) => {
                        export.replace(routes);
                        if let Some(n) = session.negotiated().cloned()
                            && session.state() == State::Established
                        {
                            let local = local_address(&mut conns, &session);
                            let updates = export.updates(&n, local);
                            pending = send(&mut session, &events, Instant::now(), updates, export.advertised()).await;
                        }
                        continue;
                    }
                    Some(Command::Stop { subcode, message }) => (subcode, message),
                    Some(Command::Abandon) => {
                        for conn in [conns.outbound.take(), conns.inbound.take()].into_iter().flatten() {
                            close(conn.writer, Vec::new()).await;
                        }
                        return Ok(());
                    }
                    None => (crate::packet::subcode::ADMINISTRATIVE_SHUTDOWN, String::new()),
                };
                // Every route withdrawn first: a router drops withdrawn routes as any
                // update, sooner than it clears a closed session's.
                let mut outputs = Vec::new();
                if let Some(n) = session.negotiated().cloned()
                    && session.state() == State::Established
                {
                    export.replace(Vec::new());
                    let local = local_address(&mut conns, &session);
                    let updates = export.updates(&n, local);
                    outputs.extend(session.send_updates(Instant::now().into_std(), updates.messages));
                }
                outputs.extend(session.handle(Instant::now().into_std(), Input::Stop { subcode, message }));
                // The withdrawals and the Cease counted too.
                counters.send_replace(*session.counters());
                for output in outputs {
                    if let Output::Send(link, bytes) = output
                        && let Some(conn) = conns.get(link)
                    {
                        conn.outbox.extend_from_slice(&bytes);
                    }
                }
                for conn in [conns.outbound.take(), conns.inbound.take()].into_iter().flatten() {
                    close(conn.writer, conn.outbox).await;
                }
                return Ok(());
            }
            connected = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                connecting = None;
                let input = match connected {
                    Ok(stream) => {
                        conns.outbound = Some(Conn::new(stream));
                        Input::Connected(Link::Outbound)
                    }
                    Err(error) => {
                        let _ = events.send(Event::ConnectFailed(error.to_string())).await;
                        Input::ConnectFailed
                    }
                };
                pending = session.handle(Instant::now().into_std(), input);
            }
            accepted = async { listener.as_ref().expect("guarded").accept().await }, if listener.is_some() => {
                match accepted {
                    // Only the configured peer, and one inbound connection at a time.
                    Ok((stream, from)) if from.ip() == peer.address.ip() && conns.inbound.is_none() => {
                        if set_ttl(&stream, &peer).is_ok() {
                            conns.inbound = Some(Conn::new(stream));
                            pending = session.handle(Instant::now().into_std(), Input::Connected(Link::Inbound));
                        }
                    }
                    // A third connection from the peer: refused as a collision would be.
                    Ok((stream, from)) if from.ip() == peer.address.ip() => {
                        let cease = Message::Notification(collision_notification())
                            .encode(&Default::default());
                        tokio::spawn(async move {
                            let (_, writer) = stream.into_split();
                            close(writer, cease).await;
                        });
                    }
                    Ok(_) | Err(_) => {}
                }
            }
            io = next_io(&mut conns) => {
                let now = Instant::now().into_std();
                pending = match io {
                    IoEvent::Read(link, Ok(n)) if n > 0 => {
                        let conn = conns.get(link).as_ref().expect("read from it");
                        session.handle(now, Input::Bytes(link, &conn.buf[..n]))
                    }
                    IoEvent::Wrote(link, Ok(n)) if n > 0 => {
                        let conn = conns.get(link).as_mut().expect("wrote to it");
                        conn.outbox.drain(..n);
                        if !conn.outbox.is_empty() {
                            continue;
                        }
                        if let Some((l, since)) = table_since
                            && l == link
                        {
                            table_since = None;
                            let _ = events.send(Event::EndOfRibSent(since.elapsed())).await;
                        }
                        session.handle(now, Input::Flushed(link))
                    }
                    // End of stream, or an error either way: the connection is gone.
                    IoEvent::Read(link, _) | IoEvent::Wrote(link, _) => {
                        *conns.get(link) = None;
                        if table_since.is_some_and(|(l, _)| l == link) {
                            table_since = None;
                        }
                        session.handle(now, Input::Closed(link))
                    }
                };
            }
            () = sleep_until(deadline) => {
                pending = session.handle(Instant::now().into_std(), Input::Tick);
            }
        }
    }
}

/// Writes what is left (a NOTIFICATION, usually) for at most `CLOSE_GRACE`, then closes.
async fn close(mut writer: OwnedWriteHalf, rest: Vec<u8>) {
    let _ = tokio::time::timeout(CLOSE_GRACE, writer.write_all(&rest)).await;
    let _ = writer.shutdown().await;
}

/// How long a closing connection may take to write its last bytes.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// The TTL (hop limit) we send with, and the minimum we accept under GTSM.
fn set_ttl(
    stream: &(impl std::os::fd::AsFd + std::os::fd::AsRawFd),
    peer: &Peer,
) -> io::Result<()> {
    let ttl = if peer.gtsm { Some(255) } else { peer.ttl };
    if let Some(ttl) = ttl {
        let socket = socket2::SockRef::from(stream);
        if peer.address.is_ipv6() {
            socket.set_unicast_hops_v6(ttl)?;
        } else {
            socket.set_ttl_v4(ttl)?;
        }
    }
    if peer.gtsm {
        sockopt::set_min_ttl(stream, peer.address.is_ipv6(), 255)?;
    }
    Ok(())
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Our address on the session's connection: the next hop of routes without one.
fn local_address(conns: &mut Conns, session: &Session) -> Option<IpAddr> {
    let conn = conns.get(session.link()?).as_ref()?;
    Some(conn.writer.local_addr().ok()?.ip())
}

/// Hands UPDATEs to the session (which sends them only when Established) and reports them.
async fn send(
    session: &mut Session,
    events: &mpsc::Sender<Event>,
    now: Instant,
    updates: Updates,
    advertised: usize,
) -> Vec<Output> {
    if updates.messages.is_empty() {
        return Vec::new();
    }
    let sent = Event::Sent {
        messages: updates.messages.len(),
        announced: updates.announced,
        withdrawn: updates.withdrawn,
        advertised,
    };
    let outputs = session.send_updates(now.into_std(), updates.messages);
    if !outputs.is_empty() {
        let _ = events.send(sent).await;
    }
    outputs
}
