//! `ferrolbctl bgp announce`: one BGP session that announces a table, for operators testing
//! a top-of-rack router before deploying, and for benchmarks.
use anyhow::Context;
use ferrolb_bgp::driver::{self, Command, Event, Peer};
use ferrolb_bgp::export::{Export, Path};
use ferrolb_bgp::packet::{
    AsPathSegment, Attributes, Family, GRACEFUL_SHUTDOWN, NextHop, Origin, SegmentType,
    describe as describe_notify, subcode,
};
use ferrolb_bgp::session::{Config, Down, PeerAs, Session};
use ipnet::IpNet;
use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(clap::Args)]
pub struct Announce {
    /// The peer's address.
    #[arg(long)]
    peer: IpAddr,
    #[arg(long, default_value_t = 179)]
    peer_port: u16,
    #[arg(long)]
    peer_as: u32,
    #[arg(long)]
    local_as: u32,
    /// Default: the local address, or 10.0.0.1 without one.
    #[arg(long)]
    router_id: Option<Ipv4Addr>,
    /// The source address of the session.
    #[arg(long)]
    local_address: Option<IpAddr>,
    /// One prefix per line; read again on SIGHUP, and only the difference is sent.
    #[arg(long, conflicts_with_all = ["count", "from"])]
    routes: Option<PathBuf>,
    /// Announce this many consecutive host routes, starting at `--from`.
    #[arg(long, requires = "from")]
    count: Option<u32>,
    #[arg(long)]
    from: Option<IpAddr>,
    /// Default: the local address.
    #[arg(long)]
    next_hop: Option<IpAddr>,
    /// `A:B` or `graceful-shutdown` (65535:0, RFC 8326), repeatable.
    #[arg(long = "community")]
    communities: Vec<String>,
    /// `A:B:C`, repeatable.
    #[arg(long = "large-community")]
    large_communities: Vec<String>,
    /// LOCAL_PREF (sent to internal peers only).
    #[arg(long)]
    local_pref: Option<u32>,
    /// The TCP MD5 key (RFC 2385) the peer expects.
    #[arg(long)]
    password: Option<String>,
    #[arg(long, default_value_t = 90)]
    hold_time: u16,
    /// Wait for the peer to connect.
    #[arg(long)]
    passive: bool,
    /// Accept the peer's connections while also connecting to it (when both sides connect,
    /// the collision is resolved as RFC 4271 6.8 says).
    #[arg(long)]
    listen: bool,
    /// The peer is more than one hop away: send with TTL 255 (an external peer otherwise gets
    /// TTL 1, as routers expect of a directly connected neighbour).
    #[arg(long)]
    ebgp_multihop: bool,
    /// GTSM (RFC 5082): send with TTL 255 and accept only TTL 255 (`ttl-security hops 1`).
    #[arg(long)]
    gtsm: bool,
    /// Announce graceful restart (RFC 4724, 120 s): a peer that helps keeps our routes
    /// across a restart of this command until its End-of-RIB.
    #[arg(long)]
    graceful_restart: bool,
}

fn host_routes(from: IpAddr, count: u32) -> anyhow::Result<Vec<IpNet>> {
    (0..count)
        .map(|i| {
            Ok(match from {
                IpAddr::V4(ip) => {
                    let n = u32::from(ip)
                        .checked_add(i)
                        .context("--count runs past the end of IPv4")?;
                    IpNet::new(Ipv4Addr::from(n).into(), 32)?
                }
                IpAddr::V6(ip) => {
                    let n = u128::from(ip)
                        .checked_add(u128::from(i))
                        .context("--count runs past the end of IPv6")?;
                    IpNet::new(std::net::Ipv6Addr::from(n).into(), 128)?
                }
            })
        })
        .collect()
}

/// `A:B`, or a well-known community by name.
fn pair(text: &str) -> anyhow::Result<u32> {
    if text == "graceful-shutdown" {
        return Ok(GRACEFUL_SHUTDOWN);
    }
    let (a, b) = text.split_once(':').context("a community is A:B")?;
    Ok((a.parse::<u16>()? as u32) << 16 | b.parse::<u16>()? as u32)
}

fn triple(text: &str) -> anyhow::Result<(u32, u32, u32)> {
    let parts: Vec<u32> = text.split(':').map(str::parse).collect::<Result<_, _>>()?;
    match parts[..] {
        [a, b, c] => Ok((a, b, c)),
        _ => anyhow::bail!("a large community is A:B:C, not {text}"),
    }
}

impl Announce {
    /// The routes to announce: from `--routes` (read again on SIGHUP) or `--count`.
    fn table(&self) -> anyhow::Result<Vec<(IpNet, Arc<Path>)>> {
        let prefixes = match (&self.routes, self.count, self.from) {
            (Some(path), _, _) => std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| {
                    l.parse::<IpNet>()
                        .with_context(|| format!("not a prefix: {l}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
            (None, Some(count), Some(from)) => host_routes(from, count)?,
            _ => Vec::new(),
        };
        // Without either, our address on the session.
        let next_hop = self.next_hop.or(self.local_address).map(|ip| match ip {
            IpAddr::V4(ip) => NextHop::V4(ip),
            IpAddr::V6(ip) => NextHop::V6 {
                global: ip,
                link_local: None,
            },
        });
        let attributes = Attributes {
            origin: Some(Origin::Igp),
            // eBGP: our AS first; iBGP: an empty path.
            as_path: Some(if self.peer_as == self.local_as {
                Vec::new()
            } else {
                vec![AsPathSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![self.local_as],
                }]
            }),
            local_pref: self.local_pref,
            communities: self
                .communities
                .iter()
                .map(|c| pair(c))
                .collect::<anyhow::Result<_>>()?,
            large_communities: self
                .large_communities
                .iter()
                .map(|c| triple(c))
                .collect::<anyhow::Result<_>>()?,
            ..Attributes::default()
        };
        let path = Arc::new(Path {
            attributes,
            next_hop,
        });
        Ok(prefixes.into_iter().map(|p| (p, path.clone())).collect())
    }

    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if !(self.hold_time == 0 || self.hold_time >= 3) {
            anyhow::bail!("--hold-time is 0 or at least 3 seconds");
        }
        let table = self.table()?;
        let router_id = self.router_id.unwrap_or(match self.local_address {
            Some(IpAddr::V4(ip)) => ip,
            _ => Ipv4Addr::new(10, 0, 0, 1),
        });
        let config = Config {
            local_as: self.local_as,
            peer_as: PeerAs::Is(self.peer_as),
            router_id,
            hold_time: self.hold_time,
            keepalive: None,
            connect_retry: Duration::from_secs(1),
            passive: self.passive,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            // The first session of the process follows a restart (or a first start, which the
            // peer cannot tell apart and which costs nothing).
            graceful_restart: self.graceful_restart.then_some((120, true)),
            // IPv4 routes over an IPv6 session need it (RFC 8950).
            extended_next_hop: self.peer.is_ipv6()
                || matches!(self.next_hop.or(self.local_address), Some(IpAddr::V6(_))),
        };
        let peer = Peer {
            address: SocketAddr::new(self.peer, self.peer_port),
            local_address: self.local_address,
            ttl: if self.ebgp_multihop {
                Some(255)
            } else {
                (self.peer_as != self.local_as).then_some(1)
            },
            gtsm: self.gtsm,
            password: self.password.clone(),
        };
        let seed = u64::from(std::process::id()) ^ u64::from(u32::from(router_id));
        let (commands, command_rx) = mpsc::channel(1);
        let (event_tx, mut events) = mpsc::channel(64);
        let mut routes = table.len();
        let mut export = Export::default();
        export.replace(table);
        let session = tokio::spawn(driver::run(
            peer,
            Session::new(config, seed),
            export,
            self.passive || self.listen,
            command_rx,
            event_tx,
            tokio::sync::watch::channel(Default::default()).0,
        ));
        let terminated = ferrolb_cluster::terminated();
        tokio::pin!(terminated);
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("listening for SIGHUP")?;
        let mut established = false;
        let mut exit = ExitCode::SUCCESS;
        // Commands wait here until the channel has room, while events keep being read: the
        // driver may be waiting for us to take one.
        let mut queued: VecDeque<Command> = VecDeque::new();
        let mut stopping = false;
        let stop = |message: &str| Command::Stop {
            subcode: subcode::ADMINISTRATIVE_SHUTDOWN,
            message: message.into(),
        };
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Some(Event::Established(n)) => {
                        established = true;
                        println!("established with AS {} ({}), hold time {} s", n.peer_as, n.peer_id, n.hold_time);
                    }
                    Some(Event::EndOfRibSent(after)) => {
                        println!("End-of-RIB sent: {routes} routes, {} ms after established", after.as_millis());
                    }
                    Some(Event::Down(Down::Received(n))) if !established && !stopping => {
                        eprintln!("peer refused: {}", n.describe());
                        exit = ExitCode::from(1);
                        stopping = true;
                        queued.push_back(stop(""));
                    }
                    Some(Event::Down(why)) => {
                        established = false;
                        eprintln!("session down: {}", why.describe());
                    }
                    Some(Event::Sent { messages, announced, withdrawn, .. }) if established => {
                        println!("sent {messages} messages: {announced} routes announced, {withdrawn} withdrawn");
                    }
                    Some(Event::Update(update)) => {
                        for problem in &update.problems {
                            eprintln!(
                                "peer sent a malformed attribute (type {}): {} ({}/{}), {}",
                                problem.type_code,
                                describe_notify(problem.notify.code, problem.notify.subcode),
                                problem.notify.code,
                                problem.notify.subcode,
                                problem.handling
                            );
                        }
                    }
                    Some(Event::Sent { .. }) => {}
                    Some(Event::ConnectFailed(why)) => eprintln!("connecting failed: {why}"),
                    // The session ended (after our Stop).
                    None => break,
                },
                permit = commands.reserve(), if !queued.is_empty() => {
                    if let (Ok(permit), Some(command)) = (permit, queued.pop_front()) {
                        permit.send(command);
                    }
                }
                Some(()) = hangups.recv(), if !stopping => match self.table() {
                    // Only what changed goes to the peer.
                    Ok(table) => {
                        routes = table.len();
                        println!("routes read again: {routes}");
                        queued.push_back(Command::Replace(table));
                    }
                    Err(e) => eprintln!("keeping the routes announced: {e:#}"),
                },
                () = &mut terminated, if !stopping => {
                    stopping = true;
                    queued.push_back(stop("ferrolbctl stopped"));
                }
            }
        }
        session.await.context("the session task")??;
        Ok(exit)
    }
}
