//! Small tools the lab runs inside its namespaces, where a test process cannot go:
//! - `labtool http-serve PORT TEXT`: answers every HTTP request with TEXT (a Service backend);
//! - `labtool http-get IP:PORT`: prints the body of `GET /` (a client), exit 1 on failure;
//! - `labtool arp-watch IFACE FROM_IP IP INTERVAL_MS SECONDS`: asks who has IP every
//!   INTERVAL_MS, and prints one JSON line `{"at": unix seconds, "mac": ..., "kind": ...}`
//!   each time the MAC answering for IP (reply or gratuitous ARP) changes. This is how the
//!   tests and benchmarks see failover from the client's side;
//! - `labtool arp-who IFACE FROM_IP IP`: asks once who has IP and prints every MAC that
//!   answers within 300 ms, one per line (so a test can check that exactly one does);
//! - `labtool garp-count IFACE IP SECONDS`: counts the gratuitous ARPs for IP seen in that
//!   time (periodic announcements);
//! - `labtool arp-rounds IFACE FROM_IP IP INTERVAL_MS SECONDS`: asks who has IP every
//!   INTERVAL_MS and notes which MACs answer in each round (replies and gratuitous ARPs);
//!   at the end prints one JSON object: rounds, rounds answered, rounds answered by two or
//!   more MACs, the longest span of such double answers (rounds with double answers less
//!   than 100 ms apart count as one span), the time spent unanswered and the longest spans
//!   of it (`[start ms, length ms]`). This is the fault harness's one-owner check;
//! - `labtool garp IFACE IP`: claims IP with a gratuitous ARP from IFACE's MAC (a rogue host,
//!   or a split brain);
//! - `labtool garp-flood IFACE IP COUNT`: claims IP COUNT times, each from another made-up
//!   MAC (a hostile host);
//! - `labtool tcp-send IP:PORT HEX`: connects, sends the bytes, and prints in hex what comes
//!   back until the peer closes or 3 s pass (a peer sending malformed BGP).
use ferrolb_l2::packet::{Arp, ArpOp, BROADCAST, ETHERTYPE_ARP, Mac, format_mac};
use ferrolb_l2::socket::PacketSocket;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::time::Duration;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("missing argument {i}; see the source for usage"))
    };
    match arg(0)?.as_str() {
        "http-serve" => http_serve(arg(1)?.parse()?, &arg(2)?),
        "http-get" => http_get(&arg(1)?),
        "arp-watch" => arp_watch(
            &arg(1)?,
            arg(2)?.parse()?,
            arg(3)?.parse()?,
            Duration::from_millis(arg(4)?.parse()?),
            Duration::from_secs(arg(5)?.parse()?),
        ),
        "garp" => garp(&arg(1)?, arg(2)?.parse()?),
        "arp-rounds" => arp_rounds(
            &arg(1)?,
            arg(2)?.parse()?,
            arg(3)?.parse()?,
            Duration::from_millis(arg(4)?.parse()?),
            Duration::from_secs(arg(5)?.parse()?),
        ),
        "garp-flood" => garp_flood(&arg(1)?, arg(2)?.parse()?, arg(3)?.parse()?),
        "arp-who" => arp_who(&arg(1)?, arg(2)?.parse()?, arg(3)?.parse()?),
        "garp-count" => garp_count(
            &arg(1)?,
            arg(2)?.parse()?,
            Duration::from_secs(arg(3)?.parse()?),
        ),
        "tcp-send" => tcp_send(&arg(1)?, &arg(2)?),
        other => anyhow::bail!("unknown command {other}"),
    }
}

fn tcp_send(to: &str, hex: &str) -> anyhow::Result<()> {
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2).unwrap_or("?"), 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let mut stream = std::net::TcpStream::connect(to)?;
    stream.set_read_timeout(Some(Duration::from_secs(3)))?;
    stream.write_all(&bytes)?;
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    println!(
        "{}",
        reply.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    Ok(())
}

fn http_serve(port: u16, text: &str) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(("0.0.0.0", port))?;
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        // The whole request head, however it was split on the way (answering and closing
        // after its first part would reset a client still sending the rest).
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut request = Vec::new();
        let mut chunk = [0u8; 1024];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => request.extend_from_slice(&chunk[..n]),
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        let _ = stream.write_all(response.as_bytes());
    }
    Ok(())
}

fn http_get(address: &str) -> anyhow::Result<()> {
    let address: std::net::SocketAddr = address.parse()?;
    let mut stream = std::net::TcpStream::connect_timeout(&address, Duration::from_secs(1))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    // One write: `write!` on a socket sends each formatted piece as its own segment.
    let request = format!("GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| anyhow::anyhow!("not an HTTP response"))?;
    println!("{body}");
    Ok(())
}

fn sys_net(interface: &str, file: &str) -> anyhow::Result<String> {
    Ok(
        std::fs::read_to_string(format!("/sys/class/net/{interface}/{file}"))?
            .trim()
            .to_string(),
    )
}

fn parse_mac(text: &str) -> anyhow::Result<Mac> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|b| u8::from_str_radix(b, 16))
        .collect::<Result<_, _>>()?;
    Mac::try_from(bytes.as_slice()).map_err(|_| anyhow::anyhow!("bad MAC {text}"))
}

/// An ARP socket on `interface`, with the interface's MAC address.
fn arp_socket(interface: &str) -> anyhow::Result<(PacketSocket, Mac)> {
    let ifindex: u32 = sys_net(interface, "ifindex")?.parse()?;
    let mac = parse_mac(&sys_net(interface, "address")?)?;
    Ok((PacketSocket::open(ifindex, ETHERTYPE_ARP)?, mac))
}

/// The broadcast frame asking who has `ip`, from `mac`/`from`.
fn who_has(mac: Mac, from: Ipv4Addr, ip: Ipv4Addr) -> Vec<u8> {
    Arp {
        op: ArpOp::Request,
        sender_mac: mac,
        sender_ip: from,
        target_mac: [0; 6],
        target_ip: ip,
    }
    .frame(BROADCAST)
}

#[tokio::main(flavor = "current_thread")]
async fn arp_who(interface: &str, from: Ipv4Addr, ip: Ipv4Addr) -> anyhow::Result<()> {
    let (socket, mac) = arp_socket(interface)?;
    socket.send(&who_has(mac, from, ip)).await?;
    let mut seen: Vec<Mac> = Vec::new();
    let mut buf = [0u8; 1600];
    let deadline = tokio::time::sleep(Duration::from_millis(300));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            received = socket.recv(&mut buf) => {
                if let Some(arp) = Arp::parse(&buf[..received?])
                    && arp.op == ArpOp::Reply
                    && arp.sender_ip == ip
                    && arp.target_ip == from
                    && !seen.contains(&arp.sender_mac)
                {
                    seen.push(arp.sender_mac);
                }
            }
        }
    }
    for mac in seen {
        println!("{}", format_mac(&mac));
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn garp_count(interface: &str, ip: Ipv4Addr, span: Duration) -> anyhow::Result<()> {
    let (socket, _) = arp_socket(interface)?;
    let mut count = 0u32;
    let mut buf = [0u8; 1600];
    let deadline = tokio::time::sleep(span);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            () = &mut deadline => break,
            received = socket.recv(&mut buf) => {
                if let Some(arp) = Arp::parse(&buf[..received?])
                    && arp.sender_ip == ip
                    && arp.target_ip == ip
                {
                    count += 1;
                }
            }
        }
    }
    println!("{count}");
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn garp(interface: &str, ip: Ipv4Addr) -> anyhow::Result<()> {
    let (socket, mac) = arp_socket(interface)?;
    socket
        .send(&Arp::gratuitous(ArpOp::Reply, mac, ip).frame(BROADCAST))
        .await?;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn arp_rounds(
    interface: &str,
    from: Ipv4Addr,
    ip: Ipv4Addr,
    interval: Duration,
    span: Duration,
) -> anyhow::Result<()> {
    let (socket, mac) = arp_socket(interface)?;
    let request = who_has(mac, from, ip);
    // A late tick (this client starved of CPU) must not fire a burst of rounds too short
    // to be answered: that would count the client's own stall as silence.
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let start = tokio::time::Instant::now();
    let end = start + span;
    let mut buf = [0u8; 1600];
    let mut round: Vec<Mac> = Vec::new();
    let mut round_started = 0u128;
    let mut rounds = 0u64;
    let mut answered = 0u64;
    let mut double = 0u64;
    // Spans of double answers and of silence: (first, last) in ms since start.
    let mut spans: Vec<(u128, u128)> = Vec::new();
    let mut silences: Vec<(u128, u128)> = Vec::new();
    let mut double_macs: Vec<Mac> = Vec::new();
    loop {
        tokio::select! {
            // Answers already received belong to the round that is closing.
            biased;
            received = socket.recv(&mut buf) => {
                let Some(arp) = Arp::parse(&buf[..received?]) else { continue };
                if arp.sender_ip == ip && arp.sender_mac != mac && !round.contains(&arp.sender_mac) {
                    round.push(arp.sender_mac);
                }
            }
            _ = ticker.tick() => {
                let at = start.elapsed().as_millis();
                if rounds > 0 {
                    answered += u64::from(!round.is_empty());
                    if round.is_empty() {
                        match silences.last_mut() {
                            Some((_, last)) if *last == round_started => *last = at,
                            _ => silences.push((round_started, at)),
                        }
                    }
                    if round.len() >= 2 {
                        double += 1;
                        for m in &round {
                            if !double_macs.contains(m) {
                                double_macs.push(*m);
                            }
                        }
                        match spans.last_mut() {
                            Some((_, last)) if at - *last <= 100 => *last = at,
                            _ => spans.push((at, at)),
                        }
                    }
                }
                round.clear();
                round_started = at;
                if tokio::time::Instant::now() >= end {
                    break;
                }
                rounds += 1;
                socket.send(&request).await?;
            }
        }
    }
    let longest = spans
        .iter()
        .map(|(first, last)| last - first + interval.as_millis())
        .max()
        .unwrap_or(0);
    let macs: Vec<String> = double_macs
        .iter()
        .map(|m| format!("\"{}\"", format_mac(m)))
        .collect();
    let silent: u128 = silences.iter().map(|(first, last)| last - first).sum();
    // Where the silences were, for a failure's message: the longest few.
    silences.sort_by_key(|(first, last)| std::cmp::Reverse(last - first));
    let listed: Vec<String> = silences
        .iter()
        .take(8)
        .map(|(first, last)| format!("[{first}, {}]", last - first))
        .collect();
    println!(
        "{{\"rounds\": {rounds}, \"answered\": {answered}, \"double\": {double}, \"longest_double_ms\": {longest}, \"double_macs\": [{}], \"silent_ms\": {silent}, \"silences\": [{}]}}",
        macs.join(", "),
        listed.join(", ")
    );
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn garp_flood(interface: &str, ip: Ipv4Addr, count: u32) -> anyhow::Result<()> {
    let (socket, _) = arp_socket(interface)?;
    for i in 0..count {
        // Locally administered unicast MACs, a new one each time.
        let [_, a, b, c] = i.to_be_bytes();
        let mac: Mac = [0x02, 0x66, 0x6c, a, b, c];
        socket
            .send(&Arp::gratuitous(ArpOp::Reply, mac, ip).frame(BROADCAST))
            .await?;
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn arp_watch(
    interface: &str,
    from: Ipv4Addr,
    ip: Ipv4Addr,
    interval: Duration,
    span: Duration,
) -> anyhow::Result<()> {
    let (socket, mac) = arp_socket(interface)?;
    let request = who_has(mac, from, ip);
    let mut ticker = tokio::time::interval(interval);
    let end = tokio::time::Instant::now() + span;
    let mut buf = [0u8; 1600];
    let mut last: Option<Mac> = None;
    let mut out = std::io::stdout();
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                if tokio::time::Instant::now() >= end {
                    return Ok(());
                }
                socket.send(&request).await?;
            }
            received = socket.recv(&mut buf) => {
                let Some(arp) = Arp::parse(&buf[..received?]) else { continue };
                if arp.sender_ip != ip || arp.sender_mac == mac {
                    continue;
                }
                let kind = match arp.op {
                    ArpOp::Reply if arp.target_ip == from => "reply",
                    _ => "gratuitous",
                };
                if last != Some(arp.sender_mac) {
                    last = Some(arp.sender_mac);
                    #[allow(clippy::disallowed_methods)] // wall clock: compared across processes
                    let at = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)?
                        .as_secs_f64();
                    writeln!(out, "{{\"at\": {at:.6}, \"mac\": \"{}\", \"kind\": \"{kind}\"}}", format_mac(&arp.sender_mac))?;
                    out.flush()?;
                }
            }
        }
    }
}
