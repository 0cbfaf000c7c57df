//! The chaos run (issue 9): random faults from the fault harness's catalogue, on random
//! nodes, for a fixed time (30 minutes by default), against a controller and three speakers,
//! with the harness's checks after every fault: at most one MAC answers for each watched IP
//! (a split, which cannot be decided safely, must heal within a second of ending), no
//! unexplained silence, every IP in its pool and held by one Service, and the speakers'
//! memory bounded. Also a 20-trial link flap series, cut lengths from 0.2 s to 10 s.
//!
//! `cargo bench -p ferrolb-e2e --bench chaos` (root; needs nft). `CHAOS_MINUTES=N` changes
//! the length, `CHAOS_SEED=N` replays a run. Prints a Markdown summary; exits 1 on any
//! violation. benches/RESULTS.md keeps the last run.
use ferrolb_e2e::faults::{
    AnswerWatch, CONFIG_FILE, Fault, MAX_DOUBLE_ANSWER, allocation_violations, inject,
};
use ferrolb_e2e::lab_available;
use ferrolb_e2e::layer2::{L2Cluster, NODES, POOL, election_order, nodes, service};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A speaker's resident memory past this is a violation (release builds idle at about 20 MiB).
const MEMORY_BOUND_KIB: u64 = 64 * 1024;

/// The Services watched: their IPs spread the ownership over the nodes.
const IPS: [&str; 3] = ["198.51.100.70", "198.51.100.71", "198.51.100.72"];

/// A small xorshift generator: reproducible runs from a printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn random_fault(rng: &mut Rng) -> Fault {
    let node = NODES[rng.below(3) as usize].to_string();
    let ms = |lo: u64, hi: u64, rng: &mut Rng| Duration::from_millis(lo + rng.below(hi - lo));
    match rng.below(10) {
        0 => Fault::LinkFlap {
            node,
            down: ms(200, 10_000, rng),
        },
        1 => Fault::Kill { node },
        2 => Fault::Terminate { node },
        3 => Fault::DiesAgainAfterRejoining { node },
        4 => Fault::GossipPartition {
            node,
            for_: ms(500, 5_000, rng),
        },
        5 => Fault::OneWayLoss {
            node,
            for_: ms(500, 5_000, rng),
        },
        6 => Fault::EmptyConfig {
            for_: ms(100, 1_000, rng),
        },
        7 => Fault::DamagedConfig {
            for_: ms(100, 3_000, rng),
        },
        8 => Fault::DamagedStatus,
        _ => Fault::ServiceChurn,
    }
}

fn kind(fault: &Fault) -> &'static str {
    match fault {
        Fault::LinkFlap { .. } => "link flap",
        Fault::Kill { .. } => "kill -9",
        Fault::Terminate { .. } => "SIGTERM",
        Fault::DiesAgainAfterRejoining { .. } => "dies again after rejoining",
        Fault::GossipPartition { .. } => "gossip partition",
        Fault::OneWayLoss { .. } => "one-way gossip loss",
        Fault::EmptyConfig { .. } => "empty config file",
        Fault::DamagedConfig { .. } => "damaged config file",
        Fault::DamagedStatus => "damaged status file",
        Fault::ServiceChurn => "Service churn",
    }
}

fn config_files() -> Vec<(&'static str, String)> {
    let services: String = IPS
        .iter()
        .enumerate()
        .map(|(i, ip)| service(&format!("web{i}"), ip, "Cluster", &NODES))
        .collect();
    vec![
        (CONFIG_FILE, POOL.to_string()),
        ("nodes.yaml", nodes(&[])),
        ("web.yaml", services),
    ]
}

fn start() -> L2Cluster {
    let files = config_files();
    let files: Vec<(&str, &str)> = files.iter().map(|(n, y)| (*n, y.as_str())).collect();
    L2Cluster::start(&files).expect("the lab starts")
}

/// The resident memory of every speaker, in KiB.
fn speaker_memory(cluster: &mut L2Cluster) -> Vec<u64> {
    NODES
        .iter()
        .filter_map(|node| cluster.lab.daemon(node, "speaker").map(|d| d.pid()))
        .filter_map(|launcher| {
            // The lab starts programs through `ip netns exec`, which execs them: same pid.
            let status = std::fs::read_to_string(format!("/proc/{launcher}/status")).ok()?;
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .collect()
}

/// Checks one fault's window; returns the violations.
fn check(cluster: &mut L2Cluster, fault: &Fault, watches: Vec<(&str, AnswerWatch)>) -> Vec<String> {
    let mut violations = Vec::new();
    for (ip, watch) in watches {
        let answers = match watch.finish(cluster) {
            Ok(a) => a,
            Err(e) => {
                violations.push(format!("{ip}: {e}"));
                continue;
            }
        };
        if answers.longest_double >= fault.allowed_double_answer() {
            violations.push(format!(
                "{ip}: two MACs for {:?} ({answers:?})",
                answers.longest_double
            ));
        }
        let silent = answers.silence();
        if silent > fault.allowed_silence() {
            violations.push(format!("{ip}: unanswered for {silent:?}"));
        }
    }
    let pools = ["198.51.100.0/25", "2001:db8::ff00/120"].map(|n| n.parse().expect("a CIDR"));
    violations.extend(allocation_violations(cluster, &pools));
    violations
}

/// The link-flap series: 20 trials, cut lengths from 0.2 s to 10 s.
fn flap_series(out: &mut Vec<String>) -> usize {
    let mut cluster = start();
    let ip = IPS[0];
    let owner = election_order(ip, &NODES)[0].clone();
    let mut failures = 0;
    let mut worst = Duration::ZERO;
    let mut rows = Vec::new();
    for trial in 0..20u32 {
        // Geometric from 0.2 s to 10 s.
        let down = Duration::from_secs_f64(0.2 * 50f64.powf(f64::from(trial) / 19.0));
        cluster.wait_resolves_to(ip, Some(&owner), Duration::from_secs(15));
        let span = down + Duration::from_secs(7);
        let watch = AnswerWatch::start(&mut cluster, ip, span).expect("watching");
        std::thread::sleep(Duration::from_millis(500));
        let fault = Fault::LinkFlap {
            node: owner.clone(),
            down,
        };
        inject(&mut cluster, &fault, POOL).expect("flapping");
        let answers = watch.finish(&mut cluster).expect("the answers");
        worst = worst.max(answers.longest_double);
        let ok = answers.longest_double < MAX_DOUBLE_ANSWER;
        failures += usize::from(!ok);
        rows.push(format!(
            "| {:.2} | {} | {} |",
            down.as_secs_f64(),
            answers.longest_double.as_millis(),
            answers.silence().as_millis()
        ));
    }
    out.push("| link down s | longest double answer ms | unanswered ms |\n|---|---|---|".into());
    out.extend(rows);
    out.push(format!(
        "\nLink flaps: 20 trials, worst double answer {} ms, {failures} over {} ms.",
        worst.as_millis(),
        MAX_DOUBLE_ANSWER.as_millis()
    ));
    failures
}

fn main() {
    if !lab_available(&["ip", "nft"]) {
        eprintln!("chaos needs root and nft");
        std::process::exit(1);
    }
    let minutes: u64 = std::env::var("CHAOS_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(30);
    #[allow(clippy::disallowed_methods)] // a seed, not a measurement
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(1)
        })
        | 1;
    let mut out = Vec::new();
    let flap_failures = if std::env::var("CHAOS_SKIP_FLAPS").is_ok() {
        0
    } else {
        flap_series(&mut out)
    };

    let mut rng = Rng(seed);
    let mut cluster = start();
    for ip in IPS {
        let owner = election_order(ip, &NODES)[0].clone();
        cluster.wait_resolves_to(ip, Some(&owner), Duration::from_secs(15));
    }
    #[allow(clippy::disallowed_methods)] // the run's length in wall time
    let begin = Instant::now();
    let mut injected: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut violations: Vec<String> = Vec::new();
    let mut peak_memory = 0u64;
    while begin.elapsed() < Duration::from_secs(minutes * 60) {
        let fault = random_fault(&mut rng);
        let window = match &fault {
            Fault::LinkFlap { down, .. } => *down,
            Fault::GossipPartition { for_, .. } | Fault::OneWayLoss { for_, .. } => *for_,
            Fault::DiesAgainAfterRejoining { .. } => Duration::from_secs(7),
            _ => Duration::from_secs(2),
        } + Duration::from_secs(6);
        let watches: Vec<(&str, AnswerWatch)> = IPS
            .iter()
            .map(|ip| {
                (
                    *ip,
                    AnswerWatch::start(&mut cluster, ip, window).expect("watching"),
                )
            })
            .collect();
        std::thread::sleep(Duration::from_millis(500));
        if let Err(e) = inject(&mut cluster, &fault, POOL) {
            violations.push(format!("{fault:?}: could not inject: {e}"));
        }
        *injected.entry(kind(&fault)).or_default() += 1;
        for v in check(&mut cluster, &fault, watches) {
            eprintln!("violation after {fault:?}: {v}");
            violations.push(format!("{}: {v}", kind(&fault)));
        }
        let memory = speaker_memory(&mut cluster).into_iter().max().unwrap_or(0);
        if memory > MEMORY_BOUND_KIB {
            violations.push(format!("{}: a speaker holds {memory} KiB", kind(&fault)));
        }
        peak_memory = peak_memory.max(memory);
    }
    let total: usize = injected.values().sum();
    out.push(format!(
        "\nChaos: {minutes} min, seed {seed}, {total} faults injected:\n"
    ));
    out.push("| fault | injected |\n|---|---|".into());
    for (kind, count) in &injected {
        out.push(format!("| {kind} | {count} |"));
    }
    out.push(format!(
        "\nInvariant violations: {}. Largest speaker resident memory seen: {:.1} MiB.",
        violations.len(),
        peak_memory as f64 / 1024.0
    ));
    for v in &violations {
        out.push(format!("- {v}"));
    }
    println!("{}", out.join("\n"));
    if !violations.is_empty() || flap_failures > 0 {
        std::process::exit(1);
    }
}
