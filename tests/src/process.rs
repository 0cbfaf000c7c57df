use std::path::PathBuf;
use std::process::Child;

/// A program the lab started; killed (and reaped) on drop. Its output goes to `log`.
pub struct Daemon {
    pub name: String,
    pub log: PathBuf,
    child: Child,
}

impl Daemon {
    pub(crate) fn new(name: String, log: PathBuf, child: Child) -> Daemon {
        Daemon { name, log, child }
    }

    /// Its resident memory now, KiB (`VmRSS`); None once it is gone.
    pub fn resident_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the program printed so far (stdout and stderr).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM (a graceful stop, as Kubernetes stops a pod) and waits for the exit.
    pub fn terminate(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }

    /// Sends SIGHUP (read the configuration again).
    pub fn hang_up(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status();
    }

    /// Whether the program has exited.
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The exit code once the program has exited (`Some(None)`: killed by a signal).
    pub fn try_exit_code(&mut self) -> Option<Option<i32>> {
        self.child
            .try_wait()
            .ok()
            .flatten()
            .map(|status| status.code())
    }

    /// Stops the program with SIGKILL.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}
