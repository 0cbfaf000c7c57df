//! FerroLB's binaries on a file store, checked the way a user would: with `ferrolbctl`.
use crate::wait_until;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A binary of this workspace, built by `cargo build --workspace --bins` (scripts/test does it
/// before the tests).
pub fn binary(name: &str) -> PathBuf {
    let path = binary_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// `target/<profile>`, where cargo puts the workspace's binaries: the directory of the running
/// program, or its parent for a test (`target/<profile>/deps/<test>`).
pub fn binary_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the running program's path");
    let dir = exe.parent().expect("a target directory");
    let dir = if dir.ends_with("deps") {
        dir.parent().expect("a target directory")
    } else {
        dir
    };
    dir.to_path_buf()
}

/// A store directory and a controller running on it; both go away on drop.
pub struct StoreRun {
    dir: tempfile::TempDir,
    controller: Option<Child>,
    metrics_port: u16,
}

impl Default for StoreRun {
    fn default() -> Self {
        StoreRun::new()
    }
}

impl StoreRun {
    pub fn new() -> StoreRun {
        StoreRun {
            dir: tempfile::tempdir().expect("a temporary directory"),
            controller: None,
            metrics_port: 0,
        }
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a user file (atomically, as an editor saving it would appear to a reader).
    pub fn write(&self, file: &str, yaml: &str) {
        let temporary = self.dir().join(format!(".{file}.tmp"));
        std::fs::write(&temporary, yaml).expect("writing a store file");
        std::fs::rename(&temporary, self.dir().join(file)).expect("renaming a store file");
    }

    pub fn remove(&self, file: &str) {
        std::fs::remove_file(self.dir().join(file)).expect("removing a store file");
    }

    /// Starts `ferrolb-controller --store DIR` with `extra` arguments.
    pub fn start_controller(&mut self, extra: &[&str]) {
        self.start_controller_under(&[], extra);
    }

    /// As [`StoreRun::start_controller`], run by `launcher` (a command and its arguments, such
    /// as `unshare --pid --fork`, to make it PID 1 of a new PID namespace).
    pub fn start_controller_under(&mut self, launcher: &[&str], extra: &[&str]) {
        assert!(
            self.controller.is_none(),
            "the controller is already running"
        );
        let log = std::fs::File::create(self.dir().join("controller.log.txt")).expect("a log file");
        self.metrics_port = free_port();
        let port = self.metrics_port.to_string();
        let controller = binary("ferrolb-controller");
        let mut command = match launcher.split_first() {
            Some((program, args)) => {
                let mut command = Command::new(program);
                command.args(args).arg(&controller);
                command
            }
            None => Command::new(&controller),
        };
        let child = command
            .arg("--store")
            .arg(self.dir())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--log-level",
                "debug",
                // Tests run controllers side by side: any free port for the admin API.
                "--admin-addr",
                "127.0.0.1:0",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("a log file"))
            .stderr(log)
            .spawn()
            .expect("starting ferrolb-controller");
        self.controller = Some(child);
    }

    /// The process started by [`StoreRun::start_controller`] (the launcher's, if any).
    pub fn controller_pid(&self) -> Option<u32> {
        self.controller.as_ref().map(Child::id)
    }

    /// Waits up to `timeout` for the started process to exit; whether it did.
    pub fn wait_controller_exit(&mut self, timeout: Duration) -> bool {
        let Some(child) = self.controller.as_mut() else {
            return true;
        };
        let exited = wait_until(timeout, Duration::from_millis(20), || {
            matches!(child.try_wait(), Ok(Some(_))).then_some(())
        })
        .is_some();
        if exited {
            self.controller = None;
        }
        exited
    }

    /// Stops the controller with SIGKILL, as a crash would.
    pub fn kill_controller(&mut self) {
        if let Some(mut child) = self.controller.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `GET path` on the controller's metrics port (waiting up to 5 s for it to listen).
    pub fn http_get(&self, path: &str) -> String {
        self.http_get_with(path, "")
    }

    /// [`StoreRun::http_get`] with extra header lines (each ending in `\r\n`).
    pub fn http_get_with(&self, path: &str, headers: &str) -> String {
        use std::io::{Read, Write};
        let connect = || std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)).ok();
        let mut stream = wait_until(Duration::from_secs(5), Duration::from_millis(20), connect)
            .expect("the controller listens");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{headers}\r\n"
        )
        .expect("sending a request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("reading the response");
        response
    }

    pub fn controller_log(&self) -> String {
        std::fs::read_to_string(self.dir().join("controller.log.txt")).unwrap_or_default()
    }

    /// `ferrolbctl --store DIR get WHAT -o json`, parsed.
    pub fn get(&self, what: &str) -> serde_json::Value {
        let output = Command::new(binary("ferrolbctl"))
            .arg("--store")
            .arg(self.dir())
            .args(["get", what, "-o", "json"])
            .output()
            .expect("running ferrolbctl");
        assert!(
            output.status.success(),
            "ferrolbctl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("ferrolbctl prints JSON")
    }

    /// The Service `namespace/name` as `ferrolbctl get services -o json` shows it.
    pub fn service(&self, namespace: &str, name: &str) -> Option<serde_json::Value> {
        self.get("services")["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["metadata"]["namespace"] == namespace && s["metadata"]["name"] == name)
            .cloned()
    }

    /// Waits (10 s at most) until the Service satisfies `check`, and returns it.
    pub fn wait_service(
        &self,
        namespace: &str,
        name: &str,
        what: &str,
        check: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || self.service(namespace, name).filter(|s| check(s)))
            .unwrap_or_else(|| {
                panic!(
                    "{namespace}/{name}: {what} never happened; it is {:#}\nevents: {:#?}\ncontroller log:\n{}",
                    self.service(namespace, name).unwrap_or_default(),
                    self.events(),
                    self.controller_log()
                )
            })
    }

    /// Events the controller published.
    pub fn events(&self) -> Vec<serde_json::Value> {
        let text =
            std::fs::read_to_string(self.dir().join("status/ferrolb-controller/events.log.json"))
                .unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// Waits (10 s at most) for an Event with `reason` about `name`; returns its message.
    pub fn wait_event(&self, name: &str, reason: &str) -> String {
        wait_until(Duration::from_secs(10), Duration::from_millis(50), || {
            self.events()
                .into_iter()
                .find(|e| e["regarding"]["name"] == name && e["reason"] == reason)
                .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        })
        .unwrap_or_else(|| {
            panic!(
                "no {reason} event for {name}; events: {:#?}\n{}",
                self.events(),
                self.controller_log()
            )
        })
    }
}

impl Drop for StoreRun {
    fn drop(&mut self) {
        self.kill_controller();
    }
}

/// A TCP port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The ingress IPs of a Service as `ferrolbctl` shows it.
pub fn ingress(service: &serde_json::Value) -> Vec<String> {
    service["status"]["loadBalancer"]["ingress"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|i| i["ip"].as_str().map(str::to_string))
        .collect()
}

/// The pool a Service's IPs came from, per its annotation.
pub fn pool_of(service: &serde_json::Value) -> Option<String> {
    service["metadata"]["annotations"]["metallb.io/ip-allocated-from-pool"]
        .as_str()
        .map(str::to_string)
}
