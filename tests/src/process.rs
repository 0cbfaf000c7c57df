use ferrolb_cluster::metrics::process::cpu_seconds as cpu_from_stat;
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

/// CPU time used so far, s, (user, system), from a `/proc/.../stat` file's text: utime and
/// stime are its fields 14 and 15 (12 and 13 after the command, which may hold spaces).
/// CPU time process `pid` used so far, s: (user, system).
pub fn cpu_seconds(pid: u32) -> Option<(f64, f64)> {
    cpu_from_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// CPU time the thread named `name` of process `pid` used so far, s: (user, system).
pub fn thread_cpu_seconds(pid: u32, name: &str) -> Option<(f64, f64)> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })
        .and_then(|task| cpu_from_stat(&std::fs::read_to_string(task.path().join("stat")).ok()?))
}

/// How many times a process's thread named `name` (its `comm`) has been switched out,
/// waiting or preempted: about how often it woke.
pub fn thread_switches(pid: u32, name: &str) -> Option<u64> {
    let task = std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name)
        })?;
    switches_from_status(&std::fs::read_to_string(task.path().join("status")).ok()?)
}

/// The voluntary and involuntary context switches of a `/proc/.../status`, added.
fn switches_from_status(status: &str) -> Option<u64> {
    let count = |field: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    Some(count("voluntary_ctxt_switches:")? + count("nonvoluntary_ctxt_switches:")?)
}

/// The middle value (the upper one of an even count); NaN-safe ordering.
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_times_are_read_past_a_command_with_spaces_and_parentheses() {
        // pid (comm) state ppid ... utime(14) stime(15) ...
        let stat = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0";
        assert_eq!(cpu_from_stat(stat), Some((2.5, 0.75)));
        assert_eq!(cpu_from_stat("garbage"), None);
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        let status = "Name:\tbfd\nvoluntary_ctxt_switches:\t120\nnonvoluntary_ctxt_switches:\t3\n";
        assert_eq!(switches_from_status(status), Some(123));
        assert_eq!(switches_from_status("Name:\tbfd\n"), None);
    }
}
