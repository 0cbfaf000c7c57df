//! `process_*` metrics as Go's Prometheus client reports them, read from `/proc/self` at
//! each scrape.
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// /proc counts CPU time in USER_HZ, which Linux fixes at 100 for every architecture's ABI.
const TICKS_PER_SECOND: f64 = 100.0;

#[derive(Debug)]
pub struct ProcessCollector;

/// What /proc says about this process; `None` where it could not be read.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    resident_bytes: Option<f64>,
    virtual_bytes: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
}

impl Sample {
    fn read() -> Sample {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let stat = read("/proc/self/stat");
        let fields = stat.as_deref().map(stat_fields).unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        let boot_time = read("/proc/stat").and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<f64>().ok())
        });
        let status = read("/proc/self/status").unwrap_or_default();
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
                .map(|k| k * 1024.0)
        };
        Sample {
            cpu_seconds: stat
                .as_deref()
                .and_then(cpu_seconds)
                .map(|(user, system)| user + system),
            start_time_seconds: ticks(19)
                .zip(boot_time)
                .map(|(start, boot)| boot + start / TICKS_PER_SECOND),
            resident_bytes: kib("VmRSS:"),
            virtual_bytes: kib("VmSize:"),
            open_fds: std::fs::read_dir("/proc/self/fd")
                .ok()
                .map(|d| d.count() as f64),
            max_fds: read("/proc/self/limits").and_then(|l| max_open_files(&l)),
        }
    }
}

/// The CPU time in a /proc/PID/stat (or /proc/PID/task/TID/stat) text, s: (user, system):
/// utime and stime, fields 14 and 15 of proc(5).
pub fn cpu_seconds(stat: &str) -> Option<(f64, f64)> {
    let fields = stat_fields(stat);
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    // Counted from the state, field 3.
    Some((ticks(11)? / TICKS_PER_SECOND, ticks(12)? / TICKS_PER_SECOND))
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces and
/// parentheses): the state is index 0.
fn stat_fields(stat: &str) -> Vec<&str> {
    stat.rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default()
}

/// The soft limit of "Max open files" in /proc/PID/limits.
fn max_open_files(limits: &str) -> Option<f64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let sample = Sample::read();
        if let Some(cpu) = sample.cpu_seconds {
            let counter = ConstCounter::new(cpu);
            let metric = encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                None,
                counter.metric_type(),
            )?;
            counter.encode(metric)?;
        }
        for (name, help, value) in [
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                sample.start_time_seconds,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                sample.resident_bytes,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                sample.virtual_bytes,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds,
            ),
        ] {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
                gauge.encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let sample = Sample::read();
        assert!(sample.cpu_seconds.is_some_and(|c| c >= 0.0));
        assert!(sample.resident_bytes.is_some_and(|r| r > 0.0));
        assert!(sample.open_fds.is_some_and(|n| n >= 3.0));
        assert!(
            sample
                .max_fds
                .is_some_and(|n| n >= sample.open_fds.unwrap_or(0.0))
        );
        assert!(sample.start_time_seconds.is_some_and(|s| s > 1.0e9));
    }

    #[test]
    fn a_command_name_with_spaces_and_parentheses_is_skipped() {
        let fields = stat_fields("42 (a (b) c) S 1 2 3");
        assert_eq!(fields[..2], ["S", "1"]);
        assert_eq!(
            max_open_files(
                "Limit Soft Hard\nMax open files            1024                 524288               files\n"
            ),
            Some(1024.0)
        );
    }
}
