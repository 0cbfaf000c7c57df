//! How the allocator's cost grows: n Services allocated over 10 pools of n/10 addresses each,
//! filled first-fit in pool order (MetalLB's worst case: it rescans full pools and formats
//! every candidate address, O(n^2)). Prints time and peak heap for 10k, 100k and 1M side by
//! side, and fails if 100k takes 1 s or more, or 64 MiB or more.
//!
//! Run: `cargo bench -p ferrolb-controller --bench allocator_scaling`
#![allow(clippy::disallowed_methods)] // a benchmark measures wall-clock time
use ferrolb_api::address::Family;
use ferrolb_api::config::{Config, ConfigObjects};
use ferrolb_api::v1beta1::{IPAddressPool, IPAddressPoolSpec};
use ferrolb_controller::allocator::{Allocator, Request, ServiceKey};
use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes and their peak.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

#[allow(unsafe_code)] // a GlobalAlloc is unsafe by definition; this one only counts and forwards
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const POOLS: usize = 10;

fn config(services: usize) -> Config {
    let per_pool = services / POOLS;
    let pools = (0..POOLS)
        .map(|p| {
            // 2001:db8:p::1 and the per_pool addresses after it.
            let first = u128::from(std::net::Ipv6Addr::new(
                0x2001, 0xdb8, p as u16, 0, 0, 0, 0, 1,
            ));
            let last = std::net::Ipv6Addr::from(first + per_pool as u128 - 1);
            let first = std::net::Ipv6Addr::from(first);
            let mut pool = IPAddressPool::new(
                &format!("pool-{p:02}"),
                IPAddressPoolSpec {
                    addresses: vec![format!("{first}-{last}")],
                    auto_assign: Some(true),
                    ..Default::default()
                },
            );
            pool.metadata.namespace = Some("metallb-system".into());
            pool
        })
        .collect();
    Config::build(&ConfigObjects {
        pools,
        ..Default::default()
    })
    .expect("a valid configuration")
}

fn request(i: usize) -> Request {
    Request::single_stack(
        ServiceKey::new(&format!("ns-{}", i % 100), &format!("svc-{i}")),
        Family::V6,
    )
}

/// Allocates `n` Services; returns the time and the peak heap above the starting point.
fn run(n: usize) -> (Duration, usize) {
    let config = config(n);
    let requests: Vec<Request> = (0..n).map(request).collect();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let mut allocator = Allocator::new(&config);
    for r in &requests {
        allocator
            .allocate(r)
            .expect("there is room for every Service");
    }
    let elapsed = start.elapsed();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    assert_eq!(allocator.assignments().count(), n);
    drop(allocator);
    (elapsed, peak)
}

fn main() {
    println!(
        "{:>10} {:>12} {:>14} {:>12}",
        "services", "time", "per service", "peak heap"
    );
    let mut results = BTreeMap::new();
    for n in [10_000, 100_000, 1_000_000] {
        let (time, peak) = run(n);
        println!(
            "{n:>10} {:>10.1}ms {:>12.0}ns {:>9.1}MiB",
            time.as_secs_f64() * 1e3,
            time.as_nanos() as f64 / n as f64,
            peak as f64 / (1024.0 * 1024.0)
        );
        results.insert(n, (time, peak));
    }
    let (time, peak) = results[&100_000];
    let ok = time < Duration::from_secs(1) && peak < 64 * 1024 * 1024;
    println!(
        "100k target (< 1 s, < 64 MiB): {}",
        if ok { "met" } else { "MISSED" }
    );
    if !ok {
        std::process::exit(1);
    }
}
