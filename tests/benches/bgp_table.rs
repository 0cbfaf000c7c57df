//! Table transfer: 100,000 IPv4 /32 routes sent to a BIRD receiver in the lab, by FerroLB
//! (`ferrolbctl bgp announce`), GoBGP, BIRD and FRR's bgpd, one after the other in the same
//! run. Measured at the receiver: from its session's Established (BIRD's own timestamp, in
//! ms) to `show route count` reporting every route (polled every 10 ms). Also the sender's
//! resident memory once the table is sent, for FerroLB how long after Established it wrote
//! End-of-RIB, and for FerroLB and GoBGP (which can drop their whole table at run time) the
//! time from the order to withdraw everything to the receiver holding nothing. Then 1M
//! routes from FerroLB and GoBGP, to see whether the time per route stays flat.
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench bgp_table`
//! (root; `BGP_ROUTES=10000`, `BGP_TRIALS=1`, `BGP_LARGE=0` and `BGP_SENDERS=ferrolb,gobgp`
//! for a shorter run).
use ferrolb_e2e::{Lab, NODE_AS, ROUTER_AS, lab_available, median, wait_until};
use std::time::Duration;

fn env(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The routes as BIRD static routes, or FRR network statements.
fn route(i: u32) -> String {
    let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
    format!("{ip}/32")
}

/// Wall-clock milliseconds: compared with BIRD's own timestamps.
fn now_ms() -> f64 {
    ferrolb_e2e::layer2::wall_clock() * 1000.0
}

/// BIRD's `iso long ms` time (local time, as BIRD writes it) as Unix milliseconds.
fn bird_time_ms(text: &str) -> Option<f64> {
    let out = std::process::Command::new("date")
        .args(["-d", text, "+%s.%N"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse::<f64>()
        .ok()
        .map(|s| s * 1000.0)
}

fn resident_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

struct Trial {
    transfer_ms: f64,
    sender_rss_mib: f64,
    end_of_rib_ms: Option<f64>,
    withdraw_ms: Option<f64>,
}

#[derive(Clone, Copy, PartialEq)]
enum Sender {
    FerroLb,
    GoBgp,
    Bird,
    Frr,
}

impl Sender {
    fn name(self) -> &'static str {
        match self {
            Sender::FerroLb => "FerroLB (ferrolbctl bgp announce)",
            Sender::GoBgp => "GoBGP",
            Sender::Bird => "BIRD 2",
            Sender::Frr => "FRR bgpd",
        }
    }
}

/// The routes as an MRT TABLE_DUMP_V2 file (RFC 6396) for `gobgp mrt inject`: a peer index
/// table, then one RIB entry per route with ORIGIN IGP, an empty AS_PATH and our next hop.
/// The last route is repeated 5,000 times at the end: GoBGP 3.10's `mrt inject` exits
/// without closing its gRPC stream, so whatever is still in flight then is lost (the
/// repeats replace one another).
fn mrt_dump(routes: u32) -> Vec<u8> {
    fn record(out: &mut Vec<u8>, subtype: u16, body: &[u8]) {
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&13u16.to_be_bytes()); // TABLE_DUMP_V2
        out.extend_from_slice(&subtype.to_be_bytes());
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(body);
    }
    let mut out = Vec::new();
    // PEER_INDEX_TABLE: collector id, no view name, one IPv4 peer with a 4-octet AS.
    let mut peers = vec![
        192, 0, 2, 11, 0, 0, 0, 1, 0x02, 192, 0, 2, 11, 192, 0, 2, 11,
    ];
    peers.extend_from_slice(&NODE_AS.to_be_bytes());
    record(&mut out, 1, &peers);
    let attributes = [
        0x40, 1, 1, 0, // ORIGIN IGP
        0x40, 2, 0, // AS_PATH, empty (GoBGP puts its own AS first)
        0x40, 3, 4, 192, 0, 2, 11, // NEXT_HOP
    ];
    let last = routes.saturating_sub(1);
    for i in (0..routes).chain(std::iter::repeat_n(last, 5000)) {
        let mut body = i.to_be_bytes().to_vec();
        body.push(32);
        body.extend_from_slice(&(0x0a00_0000 + i).to_be_bytes());
        body.extend_from_slice(&1u16.to_be_bytes());
        body.extend_from_slice(&0u16.to_be_bytes()); // peer index
        body.extend_from_slice(&0u32.to_be_bytes()); // originated
        body.extend_from_slice(&(attributes.len() as u16).to_be_bytes());
        body.extend_from_slice(&attributes);
        record(&mut out, 2, &body); // RIB_IPV4_UNICAST
    }
    out
}

/// How many routes the receiving BIRD holds ("N of M routes for ...").
fn held(lab: &Lab, receiver: &str) -> Option<u64> {
    let count = lab.birdc("rtr", receiver, "show route count");
    let line = count.lines().find(|l| l.contains(" routes for "))?;
    line.split_whitespace().next()?.parse().ok()
}

fn trial(sender: Sender, routes: u32) -> Trial {
    let mut lab = Lab::standard().expect("the lab starts");
    let receiver = lab
        .start_bird_receiver(NODE_AS, "timeformat protocol iso long ms;", "")
        .expect("the receiving BIRD starts");
    let routes_file = lab.dir().join("routes");
    let pid = match sender {
        Sender::FerroLb => {
            let table: String = (0..routes).map(|i| route(i) + "\n").collect();
            std::fs::write(&routes_file, table).expect("writing the routes");
            let file = routes_file.to_str().expect("a UTF-8 path");
            lab.start_announce("sender", "192.0.2.1", ROUTER_AS, &["--routes", file])
                .expect("ferrolbctl starts")
                .pid()
        }
        Sender::GoBgp => {
            // The table is loaded before the neighbour exists, so the transfer is measured
            // alone.
            lab.start_gobgp("n1", NODE_AS, &[]).expect("gobgpd starts");
            let api = wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
                lab.gobgp("n1", &["global"]).contains("AS:").then_some(())
            });
            api.expect("GoBGP's API answers");
            let dump = lab.dir().join("table.mrt");
            std::fs::write(&dump, mrt_dump(routes)).expect("writing the MRT dump");
            let dump = dump.to_str().expect("a UTF-8 path");
            lab.gobgp("n1", &["mrt", "inject", "global", dump]);
            let loaded = format!("Destination: {routes},");
            let all = wait_until(Duration::from_secs(300), Duration::from_millis(200), || {
                lab.gobgp("n1", &["global", "rib", "summary", "-a", "ipv4"])
                    .contains(&loaded)
                    .then_some(())
            });
            all.expect("GoBGP loaded the table");
            let peer_as = ROUTER_AS.to_string();
            lab.gobgp("n1", &["neighbor", "add", "192.0.2.1", "as", &peer_as]);
            lab.daemon("n1", "gobgpd").expect("started").pid()
        }
        Sender::Bird => {
            let statics: String = (0..routes)
                .map(|i| format!("route {} blackhole;\n", route(i)))
                .collect();
            lab.start_bird(
                "n1",
                &format!(
                    "protocol static announced {{ ipv4; {statics} }}\n\
                     protocol bgp rtr {{ local 192.0.2.11 as {NODE_AS}; neighbor 192.0.2.1 as {ROUTER_AS}; \
                     connect retry time 1; ipv4 {{ import none; export all; next hop self; }}; }}"
                ),
            )
            .expect("the sending BIRD starts");
            lab.daemon("n1", "bird").expect("started").pid()
        }
        Sender::Frr => {
            let networks: String = (0..routes)
                .map(|i| format!("  network {}\n", route(i)))
                .collect();
            lab.start_frr_bgpd(
                "n1",
                &format!(
                    "frr defaults traditional\nhostname n1\nrouter bgp {NODE_AS}\n bgp router-id 192.0.2.11\n \
                     no bgp ebgp-requires-policy\n no bgp network import-check\n neighbor 192.0.2.1 remote-as {ROUTER_AS}\n \
                     neighbor 192.0.2.1 timers connect 1\n address-family ipv4 unicast\n{networks} exit-address-family\n"
                ),
            )
            .expect("FRR starts");
            lab.daemon("n1", "bgpd").expect("started").pid()
        }
    };
    let wanted = format!("{routes} of {routes} routes");
    let done_at = wait_until(Duration::from_secs(300), Duration::from_millis(10), || {
        lab.birdc("rtr", &receiver, "show route count")
            .contains(&wanted)
            .then(now_ms)
    });
    let done_at = done_at
        .unwrap_or_else(|| panic!("{}: the table never arrived\n{}", sender.name(), lab.logs()));
    // "n1  BGP  ---  up  2026-12-03 06:40:01.123  Established"
    let protocols = lab.birdc("rtr", &receiver, "show protocols n1");
    let since = protocols
        .lines()
        .find(|l| l.starts_with("n1"))
        .and_then(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            bird_time_ms(&format!("{} {}", fields.get(4)?, fields.get(5)?))
        })
        .unwrap_or_else(|| panic!("no Established time in {protocols}"));
    let end_of_rib_ms = match sender {
        Sender::FerroLb => wait_until(Duration::from_secs(5), Duration::from_millis(50), || {
            let log = lab.daemon("n1", "sender").expect("started").output();
            log.lines().find_map(|l| {
                l.split(" routes, ")
                    .nth(1)?
                    .split(" ms")
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
        }),
        _ => None,
    };
    let sender_rss_mib = resident_kib(pid) as f64 / 1024.0;
    // Everything withdrawn while the session stays up: an empty routes file read again, or
    // GoBGP's whole RIB deleted.
    let started = now_ms();
    let ordered = match sender {
        Sender::FerroLb => {
            std::fs::write(&routes_file, "").expect("emptying the routes");
            lab.daemon("n1", "sender").expect("started").hang_up();
            true
        }
        Sender::GoBgp => {
            lab.gobgp("n1", &["global", "rib", "-a", "ipv4", "del", "all"]);
            true
        }
        _ => false,
    };
    let withdraw_ms = ordered.then(|| {
        let gone = wait_until(Duration::from_secs(300), Duration::from_millis(10), || {
            (held(&lab, &receiver) == Some(0)).then(now_ms)
        });
        gone.unwrap_or_else(|| panic!("{}: the routes never went\n{}", sender.name(), lab.logs()))
            - started
    });
    Trial {
        transfer_ms: done_at - since,
        sender_rss_mib,
        end_of_rib_ms,
        withdraw_ms,
    }
}

fn main() {
    if !lab_available(&["ip", "bird", "birdc", "bgpd", "gobgpd", "gobgp"]) {
        eprintln!("bgp_table needs root, BIRD, FRR and GoBGP");
        std::process::exit(1);
    }
    let routes = env("BGP_ROUTES", 100_000);
    let trials = env("BGP_TRIALS", 3);
    let large = env("BGP_LARGE", 1_000_000);
    println!(
        "| sender | trials | routes | Established to all held, median ms | worst ms | sender resident MiB | withdraw all, median ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    let only = std::env::var("BGP_SENDERS")
        .unwrap_or_default()
        .to_lowercase();
    let senders = [Sender::FerroLb, Sender::GoBgp, Sender::Bird, Sender::Frr]
        .into_iter()
        .filter(|s| {
            only.is_empty()
                || only
                    .split(',')
                    .any(|o| s.name().to_lowercase().starts_with(o))
        });
    for sender in senders {
        let results: Vec<Trial> = (0..trials).map(|_| trial(sender, routes)).collect();
        let times: Vec<f64> = results.iter().map(|t| t.transfer_ms).collect();
        let worst = times.iter().copied().fold(0.0, f64::max);
        let med = median(times);
        let rss = median(results.iter().map(|t| t.sender_rss_mib).collect());
        let withdraw: Vec<f64> = results.iter().filter_map(|t| t.withdraw_ms).collect();
        let withdraw = if withdraw.is_empty() {
            "-".to_string()
        } else {
            format!("{:.0}", median(withdraw))
        };
        println!(
            "| {} | {trials} | {routes} | {med:.0} | {worst:.0} | {rss:.1} | {withdraw} |",
            sender.name()
        );
        if let Sender::FerroLb = sender {
            let eor: Vec<f64> = results.iter().filter_map(|t| t.end_of_rib_ms).collect();
            if !eor.is_empty() {
                println!(
                    "|   FerroLB: End-of-RIB written after Established, median ms | | | {:.0} | | | |",
                    median(eor)
                );
            }
        }
        medians.push((sender, med, rss));
    }
    let ours = medians[0].1;
    let fastest_other = medians[1..].iter().map(|m| m.1).fold(f64::MAX, f64::min);
    println!();
    println!(
        "FerroLB's transfer takes {:.2}x the fastest other sender's ({ours:.0} ms against {fastest_other:.0} ms); target at most 0.5x: {}",
        ours / fastest_other,
        if ours <= fastest_other / 2.0 {
            "met"
        } else {
            "not met"
        }
    );
    let bird_rss = medians
        .iter()
        .find(|m| m.0 == Sender::Bird)
        .map_or(0.0, |m| m.2);
    println!(
        "FerroLB's resident memory {:.1} MiB against BIRD's {bird_rss:.1} MiB: {}",
        medians[0].2,
        if medians[0].2 < bird_rss {
            "below"
        } else {
            "not below"
        }
    );
    if large == 0 {
        return;
    }
    // Time per route at 10x the table: one trial each of the two fastest senders.
    println!();
    println!(
        "| sender | routes | Established to all held, ms | per 100k routes, ms | (at {routes}: per 100k, ms) | withdraw all, ms | End-of-RIB written, ms |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (sender, small, _) in medians
        .iter()
        .filter(|m| matches!(m.0, Sender::FerroLb | Sender::GoBgp))
    {
        let t = trial(*sender, large);
        let end_of_rib = t
            .end_of_rib_ms
            .map_or("-".to_string(), |ms| format!("{ms:.0}"));
        println!(
            "| {} | {large} | {:.0} | {:.1} | {:.1} | {:.0} | {end_of_rib} |",
            sender.name(),
            t.transfer_ms,
            t.transfer_ms * 100_000.0 / f64::from(large),
            small * 100_000.0 / f64::from(routes),
            t.withdraw_ms.unwrap_or(f64::NAN)
        );
    }
}
