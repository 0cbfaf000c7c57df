//! Gossip peers for the lab: hashicorp memberlist (Go, from Debian's package) and FerroLB's
//! own member (`gossip/examples/node.rs`), both printing their live members as JSON lines.
use crate::{Lab, wait_until};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Builds `tests/go/mlnode` against Debian's memberlist once per test run (LAB.md's way).
pub fn go_mlnode() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let target = crate::standalone::binary_dir().join("go-mlnode");
            let source = target.join("src/mlnode");
            std::fs::create_dir_all(&source).expect("a GOPATH");
            let main = Path::new(env!("CARGO_MANIFEST_DIR")).join("go/mlnode/main.go");
            std::fs::copy(&main, source.join("main.go")).expect("copying main.go");
            let binary = target.join("mlnode");
            let status = std::process::Command::new("go")
                .args(["build", "-o"])
                .arg(&binary)
                .arg("mlnode")
                .env("GOPATH", format!("{}:/usr/share/gocode", target.display()))
                .env("GO111MODULE", "off")
                .env("GOCACHE", target.join("cache"))
                .status()
                .expect("running go build");
            assert!(status.success(), "building the Go memberlist node failed");
            binary
        })
        .clone()
}

/// The members a node printed last (its last JSON line), or `None` before its first.
pub fn members(lab: &Lab, log_name: &str) -> Option<Vec<String>> {
    let log = std::fs::read_to_string(lab.dir().join(log_name)).ok()?;
    // The JSON lines are the member lists; the rest of the log is the nodes' own logging.
    log.lines()
        .rev()
        .filter(|l| l.starts_with('[') && l.ends_with(']'))
        .find_map(|l| serde_json::from_str(l).ok())
}

/// Waits (bounded) until the node's last member list equals `expected`.
pub fn wait_members(lab: &Lab, log_name: &str, expected: &[&str], timeout: Duration) -> bool {
    wait_until(timeout, Duration::from_millis(50), || {
        (members(lab, log_name)? == expected.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .then_some(())
    })
    .is_some()
}
