//! `ferrolb-controller --store DIR` with 10,000 Services: the time from start until every
//! Service's status is written (target: under 5 s), then a restart over the same store, which
//! must change no assignment.
//!
//! Run: `cargo build --release --bins && cargo bench -p ferrolb-e2e --bench controller_store`
#![allow(clippy::disallowed_methods)] // a benchmark measures wall-clock time
use ferrolb_e2e::standalone::{StoreRun, ingress};
use ferrolb_e2e::wait_until;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const SERVICES: usize = 10_000;

/// Services whose status the controller has written: documents of its Service status files.
fn statuses_written(run: &StoreRun) -> usize {
    let dir = run.dir().join("status/ferrolb-controller/service");
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|file| {
            std::fs::read_to_string(file.path())
                .unwrap_or_default()
                .matches("\n    ingress:")
                .count()
        })
        .sum()
}

fn assignments(run: &StoreRun) -> BTreeMap<String, Vec<String>> {
    run.get("services")["items"]
        .as_array()
        .expect("a List")
        .iter()
        .map(|s| {
            (
                format!(
                    "{}/{}",
                    s["metadata"]["namespace"].as_str().unwrap_or(""),
                    s["metadata"]["name"].as_str().unwrap_or("")
                ),
                ingress(s),
            )
        })
        .collect()
}

fn main() {
    let mut run = StoreRun::new();
    // RFC 2544's benchmarking range: no packet is sent, the addresses are only handed out.
    run.write(
        "pools.yaml",
        "apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata: {name: bench, namespace: metallb-system}\nspec:\n  addresses: [198.18.0.0/15]\n",
    );
    let services: String = (0..SERVICES)
        .map(|i| format!("apiVersion: v1\nkind: Service\nmetadata: {{name: svc-{i}, namespace: ns-{}}}\nspec:\n  type: LoadBalancer\n  ports: [{{port: 80}}]\n---\n", i % 50))
        .collect();
    run.write("services.yaml", &services);

    let start = Instant::now();
    run.start_controller(&[]);
    let written = wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
        (statuses_written(&run) >= SERVICES).then(|| start.elapsed())
    })
    .unwrap_or_else(|| {
        panic!(
            "only {} statuses after 60 s\n{}",
            statuses_written(&run),
            run.controller_log()
        )
    });
    let before = assignments(&run);
    let allocated = before.values().filter(|ips| ips.len() == 1).count();
    let distinct: std::collections::BTreeSet<&Vec<String>> = before.values().collect();

    run.kill_controller();
    let restart = Instant::now();
    run.start_controller(&[]);
    // The restarted controller's first pass over the full store: it must write nothing.
    let settled = wait_until(Duration::from_secs(60), Duration::from_millis(20), || {
        run.controller_log()
            .contains("pass done objects=")
            .then(|| restart.elapsed())
    })
    .expect("the restarted controller finished a pass");
    let first_pass = run
        .controller_log()
        .lines()
        .find(|l| l.contains("pass done objects="))
        .unwrap_or_default()
        .to_string();
    let after = assignments(&run);
    let moved = before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(v))
        .count();

    println!("services                 {SERVICES}");
    println!(
        "all statuses written in  {:.2} s  (target < 5 s)",
        written.as_secs_f64()
    );
    println!(
        "services with an IP      {allocated}, distinct IPs {}",
        distinct.len()
    );
    println!(
        "restart: first pass in   {:.2} s: {}",
        settled.as_secs_f64(),
        first_pass.split("pass done ").nth(1).unwrap_or("")
    );
    println!("assignments changed by the restart: {moved}");
    let ok = written < Duration::from_secs(5)
        && allocated == SERVICES
        && distinct.len() == SERVICES
        && moved == 0
        && first_pass.contains("writes=0");
    println!("target: {}", if ok { "met" } else { "MISSED" });
    // `exit` skips destructors: stop the controller (StoreRun's guard) first.
    drop(run);
    if !ok {
        std::process::exit(1);
    }
}
