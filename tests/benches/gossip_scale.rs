//! Issue 16: how the cost of membership grows with the cluster, in the gossip simulation
//! (`ferrolb_gossip::sim`: the real core, every message through the real wire encoding, a
//! fake network with 1 ms latency and a fake clock). For 10, 100, 1,000 and 5,000 members,
//! FerroLB's close watch of ring neighbours, side by side with memberlist's own probing
//! (what MetalLB runs, the close watch off) up to 1,000:
//! - idle datagrams sent per member per second, and the simulation's CPU per member (the
//!   core and the codec, without the kernel's share);
//! - failover: from a member's death (its network cut) to the first member declaring it
//!   failed, and to every live member knowing it (whoever takes over its IPs acts then);
//! - the 10-minute run at 5% loss with 1,000 members: no member declared failed.
//!
//! `cargo bench -p ferrolb-e2e --bench gossip_scale` (add `-- quick` to skip 5,000 members
//! and the 10-minute run).
use ferrolb_e2e::median;
use ferrolb_gossip::core::Event;
use ferrolb_gossip::sim::{Sim, addr};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const IDLE: Duration = Duration::from_secs(10);
/// Deaths measured at each size (fewer at 5,000 members, where a simulated second takes
/// several real ones).
fn deaths(members: usize) -> usize {
    if members > 1000 { 3 } else { 7 }
}

struct Row {
    members: usize,
    close_watch: bool,
    packets_per_member: f64,
    cpu_percent_per_member: f64,
    first_declared_ms: f64,
    everyone_knows_ms: f64,
}

fn main() {
    let quick = std::env::args().any(|a| a == "quick");
    let mut rows = Vec::new();
    let sizes: &[usize] = if quick {
        &[10, 100, 1000]
    } else {
        &[10, 100, 1000, 5000]
    };
    for &members in sizes {
        rows.push(measure(members, true));
        if members <= 1000 {
            rows.push(measure(members, false));
        }
    }
    println!();
    println!(
        "| members | detection | datagrams sent/s per member | simulation CPU per member | death to first verdict, median ms | death to every member knowing, median ms |"
    );
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.1} | {:.3}% | {:.0} | {:.0} |",
            r.members,
            if r.close_watch {
                "FerroLB (ring close watch)"
            } else {
                "memberlist's probing (MetalLB)"
            },
            r.packets_per_member,
            r.cpu_percent_per_member,
            r.first_declared_ms,
            r.everyone_knows_ms
        );
    }
    let ours: Vec<&Row> = rows.iter().filter(|r| r.close_watch).collect();
    let mut met = true;
    let mut check = |what: String, ok: bool| {
        println!("target: {what}: {}", if ok { "met" } else { "NOT met" });
        met &= ok;
    };
    for r in &ours {
        check(
            format!(
                "failover under 200 ms median at {} members ({:.0} ms)",
                r.members, r.everyone_knows_ms
            ),
            r.everyone_knows_ms < 200.0,
        );
    }
    let at = |n: usize| {
        ours.iter()
            .find(|r| r.members == n)
            .map(|r| r.packets_per_member)
    };
    if let (Some(ten), Some(thousand)) = (at(10), at(1000)) {
        check(
            format!(
                "datagrams per member at 1,000 no more than 2x those at 10 ({:.2}x)",
                thousand / ten
            ),
            thousand <= 2.0 * ten,
        );
    }
    if !quick {
        let false_failures = soak(1000, Duration::from_secs(600), 50_000);
        check(
            format!(
                "no member declared failed in 10 minutes at 5% loss with 1,000 members ({false_failures})"
            ),
            false_failures == 0,
        );
    }
    if !met {
        std::process::exit(1);
    }
}

fn converged(members: usize, close_watch: bool, seed: u64) -> Sim {
    let mut sim = Sim::with_config(members, seed, |c| c.close_watch = close_watch);
    sim.record_all_events = false;
    sim.start_converged();
    // Every close watch running, the first probes answered.
    sim.run(Duration::from_secs(5));
    sim
}

fn measure(members: usize, close_watch: bool) -> Row {
    #[allow(clippy::disallowed_methods)] // the benchmark's own wall clock
    let started = Instant::now();
    let mut sim = converged(members, close_watch, 16);
    let built = started.elapsed();

    sim.sent.iter_mut().for_each(|s| *s = 0);
    #[allow(clippy::disallowed_methods)]
    let idle_started = Instant::now();
    sim.run(IDLE);
    let cpu = idle_started.elapsed().as_secs_f64();
    let sent: u64 = sim.sent.iter().sum();
    let packets_per_member = sent as f64 / members as f64 / IDLE.as_secs_f64();
    let cpu_percent_per_member = 100.0 * cpu / members as f64 / IDLE.as_secs_f64();
    let failures_before = sim.failures().len();
    assert_eq!(
        failures_before, 0,
        "{members} members: a false failure while idle"
    );

    // Members die one at a time, spread over the cluster, at times that do not line up
    // with the timers; each comes back before the next dies.
    let mut first = Vec::new();
    let mut everyone = Vec::new();
    let count = deaths(members);
    for death in 0..count {
        let victim = (death * members / count + 3) % members;
        sim.run(Duration::from_millis(1000 + 37 * death as u64));
        let cut_at = sim.elapsed();
        sim.cut.insert(victim);
        let name = format!("n{victim}");
        let wait = if close_watch {
            Duration::from_secs(2)
        } else {
            Duration::from_secs(40)
        };
        sim.run(wait);
        let mut verdicts: BTreeMap<usize, Duration> = BTreeMap::new();
        for (at, who, event) in &sim.events {
            if *at >= cut_at && matches!(event, Event::Failed(m) if m.name == name) {
                verdicts.entry(*who).or_insert(*at - cut_at);
            }
        }
        assert_eq!(
            verdicts.len(),
            members - 1,
            "{members} members: only {} learnt that {name} failed",
            verdicts.len()
        );
        first.push(ms(*verdicts.values().min().expect("a verdict")));
        everyone.push(ms(*verdicts.values().max().expect("a verdict")));
        // Back: it hears it was declared dead, refutes, and everyone counts it again. If
        // the others forgot it meanwhile (30 s after its death), it joins again through a
        // seed, as the driver does.
        sim.cut.clear();
        let seed = addr((victim + 1) % members);
        let out = sim.nodes[victim].join(&[seed]);
        sim.send(victim, out);
        sim.run(if close_watch {
            Duration::from_secs(3)
        } else {
            Duration::from_secs(10)
        });
        let counting = (0..members).filter(|i| sim.live(*i) == members).count();
        assert_eq!(
            counting, members,
            "{members} members: {name} did not come back"
        );
    }
    eprintln!(
        "{members} members, close watch {close_watch}: built in {:.1} s, idle {IDLE:?} simulated in {cpu:.1} s, deaths {first:?} / {everyone:?} ms",
        built.as_secs_f64()
    );
    Row {
        members,
        close_watch,
        packets_per_member,
        cpu_percent_per_member,
        first_declared_ms: median(first),
        everyone_knows_ms: median(everyone),
    }
}

/// Members declared failed while all of them are alive, with `loss_ppm` of the datagrams lost.
fn soak(members: usize, span: Duration, loss_ppm: u64) -> usize {
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let mut sim = converged(members, true, 17);
    sim.loss_ppm = loss_ppm;
    let step = Duration::from_secs(60);
    let mut done = Duration::ZERO;
    while done < span {
        sim.run(step);
        done += step;
        eprintln!(
            "soak: {} s simulated in {:.0} s, {} failures declared",
            done.as_secs(),
            started.elapsed().as_secs_f64(),
            sim.failures().len()
        );
    }
    let failures = sim.failures().len();
    let live: Vec<usize> = (0..members).map(|i| sim.live(i)).collect();
    assert!(
        live.iter().all(|l| *l == members),
        "members missing after the soak"
    );
    println!(
        "soak: {members} members, {} s at {}% loss: {failures} members declared failed",
        span.as_secs(),
        loss_ppm as f64 / 10_000.0
    );
    failures
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
