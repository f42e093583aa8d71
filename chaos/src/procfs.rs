//! Readings from `/proc`: memory and CPU time of the node, of this process and of the host.
//!
//! The build machines are shared, so every phase also reports who used the CPU while it
//! ran; a phase whose host busy cores exceed node plus load generator was contended.

use std::time::Instant;

use serde::Serialize;

use crate::stats::round3;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux's ABI).
const USER_HZ: f64 = 100.0;

/// Resident memory of a process in MiB, from `/proc/<pid>/status`.
pub fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = parse_vm_rss_kib(&status)?;
    Some(round3(kib as f64 / 1024.0))
}

/// The `VmRSS:` value of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|number| number.parse().ok())
}

/// The host's one-minute load average, from `/proc/loadavg`, to judge how quiet a run was.
pub fn host_load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// User plus system CPU seconds of a process, exited threads included.
pub fn process_cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(parse_process_ticks(&stat)? as f64 / USER_HZ)
}

/// `utime + stime` of a `/proc/<pid>/stat` line, in clock ticks.
pub fn parse_process_ticks(stat: &str) -> Option<u64> {
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // Field 3 (state) is index 0 here, so utime (14) and stime (15) are 11 and 12.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Busy and total ticks over all CPUs, and the CPU count, from a `/proc/stat` text.
pub fn parse_host_ticks(stat: &str) -> Option<(u64, u64, usize)> {
    let mut lines = stat.lines();
    let totals: Vec<u64> = lines
        .next()?
        .strip_prefix("cpu ")?
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal; guest time is already in user.
    let counted = totals.get(..8)?;
    let total: u64 = counted.iter().sum();
    let idle = counted.get(3)? + counted.get(4)?;
    let cpus = lines
        .filter(|line| {
            line.strip_prefix("cpu")
                .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count();
    Some((total - idle, total, cpus))
}

/// CPU counters at one instant, to be compared with a later sample.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    at: Instant,
    node_secs: Option<f64>,
    own_secs: Option<f64>,
    host: Option<(u64, u64, usize)>,
}

/// Cores' worth of CPU each party used between two samples.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CpuUsage {
    /// The node process.
    pub node_cores: Option<f64>,
    /// This load generator.
    pub load_generator_cores: Option<f64>,
    /// Every process on the host; more than the two above means someone else was busy.
    /// Tick-sampled by the kernel, so it under-counts short bursts of a lightly loaded host.
    pub host_busy_cores: Option<f64>,
}

impl CpuSample {
    /// Reads the counters of the node (if its pid is known), this process and the host.
    pub fn take(node_pid: Option<u32>) -> Self {
        CpuSample {
            at: Instant::now(),
            node_secs: node_pid.and_then(process_cpu_secs),
            own_secs: process_cpu_secs(std::process::id()),
            host: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|stat| parse_host_ticks(&stat)),
        }
    }

    /// What was used between `earlier` and this sample.
    pub fn usage_since(&self, earlier: &CpuSample) -> CpuUsage {
        let seconds = self.at.duration_since(earlier.at).as_secs_f64();
        let cores = |now: Option<f64>, then: Option<f64>| {
            let used = now? - then?;
            (seconds > 0.0).then(|| round3(used / seconds))
        };
        let host_busy_cores = match (self.host, earlier.host) {
            (Some((busy, total, cpus)), Some((busy_then, total_then, _))) if total > total_then => {
                let share = busy.saturating_sub(busy_then) as f64 / (total - total_then) as f64;
                Some(round3(share * cpus as f64))
            }
            _ => None,
        };
        CpuUsage {
            node_cores: cores(self.node_secs, earlier.node_secs),
            load_generator_cores: cores(self.own_secs, earlier.own_secs),
            host_busy_cores,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_vm_rss() {
        let status = "Name:\tgatehouse\nVmPeak:\t  900 kB\nVmRSS:\t   20480 kB\nThreads:\t9\n";
        assert_eq!(parse_vm_rss_kib(status), Some(20480));
        assert_eq!(parse_vm_rss_kib("Name:\tx\n"), None);
        assert!(rss_mb(std::process::id()).is_some_and(|mb| mb > 0.0));
        assert!(host_load_average().is_some_and(|load| load >= 0.0));
    }

    #[test]
    fn reads_process_and_host_ticks() {
        let stat = "42 (tokio (rt) w) S 1 42 42 0 -1 4194560 900 0 0 0 250 50 0 0 20 0 6 0";
        assert_eq!(parse_process_ticks(stat), Some(300));
        let host = "cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 50 0 25 400 25 0 0 0 0 0\n\
                    cpu1 50 0 25 400 25 0 0 0 0 0\nintr 1 2 3\n";
        assert_eq!(parse_host_ticks(host), Some((150, 1000, 2)));
        let first = CpuSample::take(Some(std::process::id()));
        let usage = CpuSample::take(Some(std::process::id())).usage_since(&first);
        assert!(usage.load_generator_cores.is_some());
    }
}
