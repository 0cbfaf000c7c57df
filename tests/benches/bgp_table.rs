//! Table transfer: 100,000 IPv4 /32 routes sent to a BIRD receiver in the lab, by FerroLB
//! (`ferrolbctl bgp announce`), BIRD and FRR's bgpd, one after the other in the same run.
//! Measured at the receiver: from its session's Established (BIRD's own timestamp, in ms)
//! to `show route count` reporting every route (polled every 10 ms). Also the sender's
//! resident memory once the table is sent, and, for FerroLB, how long after Established it
//! wrote End-of-RIB.
//!
//! `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench bgp_table`
//! (root; `BGP_ROUTES=10000` and `BGP_TRIALS=1` for a shorter run).
use ferrolb_e2e::{Lab, NODE_AS, ROUTER_AS, lab_available, wait_until};
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
}

#[derive(Clone, Copy)]
enum Sender {
    FerroLb,
    Bird,
    Frr,
}

impl Sender {
    fn name(self) -> &'static str {
        match self {
            Sender::FerroLb => "FerroLB (ferrolbctl bgp announce)",
            Sender::Bird => "BIRD 2",
            Sender::Frr => "FRR bgpd",
        }
    }
}

fn trial(sender: Sender, routes: u32) -> Trial {
    let mut lab = Lab::standard().expect("the lab starts");
    let receiver = lab
        .start_bird_receiver(NODE_AS, "timeformat protocol iso long ms;", "")
        .expect("the receiving BIRD starts");
    let pid = match sender {
        Sender::FerroLb => {
            let count = routes.to_string();
            lab.start_announce(
                "sender",
                "192.0.2.1",
                ROUTER_AS,
                &["--count", &count, "--from", "10.0.0.0"],
            )
            .expect("ferrolbctl starts")
            .pid()
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
    Trial {
        transfer_ms: done_at - since,
        sender_rss_mib: resident_kib(pid) as f64 / 1024.0,
        end_of_rib_ms,
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() {
    if !lab_available(&["ip", "bird", "birdc", "bgpd"]) {
        eprintln!("bgp_table needs root, BIRD and FRR");
        std::process::exit(1);
    }
    let routes = env("BGP_ROUTES", 100_000);
    let trials = env("BGP_TRIALS", 3);
    println!(
        "| sender | trials | routes | Established to all held, median ms | worst ms | sender resident MiB |"
    );
    println!("|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for sender in [Sender::FerroLb, Sender::Bird, Sender::Frr] {
        let results: Vec<Trial> = (0..trials).map(|_| trial(sender, routes)).collect();
        let times: Vec<f64> = results.iter().map(|t| t.transfer_ms).collect();
        let worst = times.iter().copied().fold(0.0, f64::max);
        let med = median(times);
        let rss = median(results.iter().map(|t| t.sender_rss_mib).collect());
        println!(
            "| {} | {trials} | {routes} | {med:.0} | {worst:.0} | {rss:.1} |",
            sender.name()
        );
        if let Sender::FerroLb = sender {
            let eor: Vec<f64> = results.iter().filter_map(|t| t.end_of_rib_ms).collect();
            if !eor.is_empty() {
                println!(
                    "|   FerroLB: End-of-RIB written after Established, median ms | | | {:.0} | | |",
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
    let bird_rss = medians[1].2;
    println!(
        "FerroLB's resident memory {:.1} MiB against BIRD's {bird_rss:.1} MiB: {}",
        medians[0].2,
        if medians[0].2 < bird_rss {
            "below"
        } else {
            "not below"
        }
    );
}
