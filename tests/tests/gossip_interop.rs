//! FerroLB's gossip and hashicorp memberlist (Go, Debian's package) in one cluster, in the lab:
//! each joins through the other, both list the same members, each sees the other leave; with
//! encryption, the same `secretkey` admits and a different one does not.
use ferrolb_e2e::gossip::{go_mlnode, wait_members};
use ferrolb_e2e::standalone::binary_dir;
use ferrolb_e2e::{Lab, lab_available};
use std::time::Duration;

const SETTLE: Duration = Duration::from_secs(15);

fn ferrolb_node() -> String {
    let path = binary_dir().join("examples/node");
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --examples`",
        path.display()
    );
    path.display().to_string()
}

struct Nodes {
    lab: Lab,
    go: String,
    rust: String,
}

impl Nodes {
    fn new() -> Nodes {
        Nodes {
            lab: Lab::with_hosts(&[("n1", 11), ("n2", 12), ("n3", 13)]).expect("the lab"),
            go: go_mlnode().display().to_string(),
            rust: ferrolb_node(),
        }
    }

    fn go(&mut self, host: &str, name: &str, join: Option<&str>, key_dir: Option<&str>) -> u32 {
        let bind = self.lab.host(host).ipv4.to_string();
        let mut args = vec![
            self.go.clone(),
            "-name".into(),
            name.into(),
            "-bind".into(),
            bind,
        ];
        if let Some(join) = join {
            args.extend(["-join".into(), format!("{join}:7946")]);
        }
        if let Some(dir) = key_dir {
            args.extend(["-key-dir".into(), dir.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.lab
            .spawn(host, name, &args)
            .expect("starting a member")
            .pid()
    }

    fn rust(&mut self, host: &str, name: &str, join: Option<&str>, key_dir: Option<&str>) -> u32 {
        self.rust_with(host, name, join, key_dir, &[])
    }

    fn rust_with(
        &mut self,
        host: &str,
        name: &str,
        join: Option<&str>,
        key_dir: Option<&str>,
        extra: &[&str],
    ) -> u32 {
        let bind = format!("{}:7946", self.lab.host(host).ipv4);
        let mut args = vec![
            self.rust.clone(),
            "--name".into(),
            name.into(),
            "--bind".into(),
            bind,
        ];
        if let Some(join) = join {
            args.extend(["--join".into(), format!("{join}:7946")]);
        }
        if let Some(dir) = key_dir {
            args.extend(["--key-dir".into(), dir.into()]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.lab
            .spawn(host, name, &args)
            .expect("starting a member")
            .pid()
    }

    fn log(&self, host: &str, name: &str) -> String {
        format!("{host}-{name}.log")
    }

    fn expect(&self, host: &str, name: &str, members: &[&str]) {
        let log = self.log(host, name);
        assert!(
            wait_members(&self.lab, &log, members, SETTLE),
            "{name} never listed {members:?}\n{}",
            self.lab.logs()
        );
    }

    fn kill(&self, pid: u32) {
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
            .expect("kill");
    }

    fn terminate(&self, pid: u32) {
        std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
    }
}

#[test]
fn go_and_ferrolb_members_join_through_each_other_and_see_each_other_leave() {
    if !lab_available(&["ip", "go"]) {
        return;
    }
    let mut nodes = Nodes::new();
    let go_a = nodes.go("n1", "go-a", None, None);
    let rust_b = nodes.rust("n2", "rust-b", Some("192.0.2.11"), None);
    // A Go member joining through the FerroLB one.
    nodes.go("n3", "go-c", Some("192.0.2.12"), None);
    let all = ["go-a", "go-c", "rust-b"];
    nodes.expect("n1", "go-a", &all);
    nodes.expect("n2", "rust-b", &all);
    nodes.expect("n3", "go-c", &all);

    nodes.terminate(rust_b);
    nodes.expect("n1", "go-a", &["go-a", "go-c"]);
    nodes.expect("n3", "go-c", &["go-a", "go-c"]);

    // And the reverse: a FerroLB member sees a Go member leave.
    nodes.rust("n2", "rust-d", Some("192.0.2.13"), None);
    nodes.expect("n2", "rust-d", &["go-a", "go-c", "rust-d"]);
    nodes.terminate(go_a);
    nodes.expect("n2", "rust-d", &["go-c", "rust-d"]);
}

#[test]
fn crashed_members_of_either_kind_are_declared_failed_by_the_other() {
    if !lab_available(&["ip", "go"]) {
        return;
    }
    let mut nodes = Nodes::new();
    let go_a = nodes.go("n1", "go-a", None, None);
    // rust-b watches go-a closely: on a ring of three, each member's neighbours are the
    // other two.
    let rust_b = nodes.rust("n2", "rust-b", Some("192.0.2.11"), None);
    nodes.go("n3", "go-c", Some("192.0.2.11"), None);
    let all = ["go-a", "go-c", "rust-b"];
    for (host, name) in [("n1", "go-a"), ("n2", "rust-b"), ("n3", "go-c")] {
        nodes.expect(host, name, &all);
    }

    // A Go member crashes: the FerroLB member watching it declares it failed within a
    // second, and tells the Go member, which keeps its own (slower) timing otherwise.
    nodes.kill(go_a);
    assert!(
        wait_members(
            &nodes.lab,
            &nodes.log("n2", "rust-b"),
            &["go-c", "rust-b"],
            Duration::from_secs(1)
        ),
        "the watching FerroLB member did not see go-a fail within 1 s\n{}",
        nodes.lab.logs()
    );
    nodes.expect("n3", "go-c", &["go-c", "rust-b"]);

    // A FerroLB member crashes: the Go member declares it failed with memberlist's timing.
    nodes.kill(rust_b);
    assert!(
        wait_members(
            &nodes.lab,
            &nodes.log("n3", "go-c"),
            &["go-c"],
            Duration::from_secs(40)
        ),
        "go-c did not see rust-b fail\n{}",
        nodes.lab.logs()
    );
}

#[test]
fn with_encryption_the_same_secret_key_admits_and_another_does_not() {
    if !lab_available(&["ip", "go"]) {
        return;
    }
    let mut nodes = Nodes::new();
    let good = nodes.lab.dir().join("good");
    let bad = nodes.lab.dir().join("bad");
    std::fs::create_dir_all(&good).unwrap();
    std::fs::create_dir_all(&bad).unwrap();
    // As MetalLB users create it: random text in a Secret's `secretkey`.
    std::fs::write(good.join("secretkey"), "c2VjcmV0LWZvci10aGUtbGFi").unwrap();
    std::fs::write(bad.join("secretkey"), "another-secret").unwrap();
    let (good, bad) = (good.display().to_string(), bad.display().to_string());

    nodes.go("n1", "go-a", None, Some(&good));
    nodes.rust("n2", "rust-b", Some("192.0.2.11"), Some(&good));
    nodes.expect("n1", "go-a", &["go-a", "rust-b"]);
    nodes.expect("n2", "rust-b", &["go-a", "rust-b"]);

    nodes.rust("n3", "rust-c", Some("192.0.2.11"), Some(&bad));
    std::thread::sleep(Duration::from_secs(3));
    nodes.expect("n1", "go-a", &["go-a", "rust-b"]);
    nodes.expect("n3", "rust-c", &["rust-c"]);
    let log = std::fs::read_to_string(nodes.lab.dir().join(nodes.log("n3", "rust-c"))).unwrap();
    assert!(
        log.contains("secret key"),
        "the log does not say why rust-c was not admitted:\n{log}"
    );
}
