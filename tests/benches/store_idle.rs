//! The file store's cost, watched by inotify and polled every 25 ms (as before), side by side:
//! a controller on a store with 100 Services, idle for 10 s (its CPU time, which should be
//! about nothing), and the time from a new Service file being written to its status being
//! written (20 Services, one at a time).
//!
//! Run: `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench store_idle`
#![allow(clippy::disallowed_methods)] // a benchmark measures wall-clock time
use ferrolb_e2e::standalone::{StoreRun, ingress};
use ferrolb_e2e::wait_until;
use ferrolb_e2e::{cpu_seconds, median};
use std::time::{Duration, Instant};

const SERVICES: usize = 100;
const IDLE: Duration = Duration::from_secs(10);
const NEW: usize = 20;

fn service(name: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  type: LoadBalancer\n  ports: [{{port: 80}}]\n---\n"
    )
}

/// (idle CPU % of a core: user, system; new-Service latencies, ms) with the store watched
/// by inotify, or polled every 25 ms as before (`FERROLB_STORE_POLL=1`).
fn measure(poll: bool) -> (f64, f64, Vec<f64>) {
    let mut run = StoreRun::new();
    run.write(
        "pools.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bench, namespace: metallb-system}\nspec:\n  addresses: [198.18.0.0/16]\n---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata: {name: bench, namespace: metallb-system}\n",
    );
    let services: String = (0..SERVICES)
        .map(|i| service(&format!("svc-{i}")))
        .collect();
    run.write("services.yaml", &services);
    let launcher: &[&str] = if poll {
        &["env", "FERROLB_STORE_POLL=1"]
    } else {
        &["env"]
    };
    run.start_controller_under(launcher, &["--log-level=info"]);
    run.wait_service(
        "bench",
        &format!("svc-{}", SERVICES - 1),
        "allocation",
        |s| !ingress(s).is_empty(),
    );
    // Settled: nothing left to write.
    std::thread::sleep(Duration::from_secs(2));
    let pid = run.controller_pid().expect("running");
    let before = cpu_seconds(pid).expect("readable");
    std::thread::sleep(IDLE);
    let after = cpu_seconds(pid).expect("readable");
    let user = (after.0 - before.0) / IDLE.as_secs_f64() * 100.0;
    let system = (after.1 - before.1) / IDLE.as_secs_f64() * 100.0;

    let mut latencies = Vec::new();
    for i in 0..NEW {
        let name = format!("new-{i}");
        let start = Instant::now();
        run.write(&format!("{name}.yaml"), &service(&name));
        let latency = wait_until(Duration::from_secs(10), Duration::from_millis(1), || {
            run.service("bench", &name)
                .filter(|s| !ingress(s).is_empty())
                .map(|_| start.elapsed())
        })
        .expect("allocated");
        latencies.push(latency.as_secs_f64() * 1000.0);
    }
    (user, system, latencies)
}

fn main() {
    let mut ok = true;
    for (label, poll) in [("polled every 25 ms", true), ("inotify", false)] {
        let (user, system, latencies) = measure(poll);
        let median_ms = median(latencies.clone());
        let worst_ms = latencies.iter().copied().fold(0.0, f64::max);
        println!(
            "{label:>18}: idle controller over {} s with {SERVICES} Services: {:.2}% of a core ({user:.2}% user, {system:.2}% system); new Service file to its status: median {median_ms:.1} ms, worst {worst_ms:.1} ms ({NEW} Services)",
            IDLE.as_secs(),
            user + system
        );
        if !poll {
            ok = user + system < 0.2;
        }
    }
    println!(
        "target (inotify: idle under 0.2% of a core): {}",
        if ok { "met" } else { "MISSED" }
    );
}
