//! The network lab: LAB.md's topology in Linux network namespaces, under names unique to each
//! test, with real peers and project binaries started "on" its hosts. Everything a lab creates
//! (namespaces, processes, files) goes away when it is dropped, also when a test fails.
pub mod faults;
pub mod gossip;
mod lab;
pub mod layer2;
mod peers;
mod process;
pub mod route_monitor;
pub mod standalone;
mod wait;

pub use lab::{Host, Lab, STANDARD_HOSTS};
pub use peers::{BFD_PROFILE_FAST, FRR_BFD_FAST, NODE_AS, Neighbor, ROUTER_AS};
pub use process::{Daemon, cpu_seconds, median, thread_cpu_seconds, thread_switches};
pub use wait::wait_until;

/// Whether the lab can run here: root, and the given tools. Without them a test is skipped,
/// except under `CI=true`, where it fails: CI must never pass by skipping.
pub fn lab_available(tools: &[&str]) -> bool {
    let mut missing = Vec::new();
    if !is_root() {
        missing.push("root".to_string());
    }
    for tool in tools {
        if which(tool).is_none() {
            missing.push((*tool).to_string());
        }
    }
    if missing.is_empty() {
        return true;
    }
    let message = format!("the lab needs {}", missing.join(", "));
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message} (CI=true: run scripts/setup as root)");
    }
    eprintln!("skipped: {message}");
    false
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The full path of a program on PATH or in the usual sbin and lib folders.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    if program.starts_with('/') {
        let path = std::path::PathBuf::from(program);
        return path.exists().then_some(path);
    }
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/lib/frr"])
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|candidate| candidate.is_file())
}
