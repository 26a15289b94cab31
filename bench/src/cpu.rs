//! CPU accounting from /proc: busy time of one core (/proc/stat) and the
//! user+system time of chosen threads (/proc/PID/task/TID/stat).

use std::time::Duration;

use anyhow::{anyhow, Context, Result};

/// /proc/stat and /proc/PID/stat count in USER_HZ, which the kernel ABI
/// fixes at 100 on the architectures vipd runs on.
const USER_HZ: u64 = 100;

fn ticks(t: u64) -> Duration {
    Duration::from_millis(t * 1000 / USER_HZ)
}

/// Busy (non-idle, non-iowait, non-steal) time of `core` since boot, from
/// the text of /proc/stat.
pub fn parse_core_busy(stat: &str, core: usize) -> Option<Duration> {
    let label = format!("cpu{core}");
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(label.as_str()))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal ...
    let busy = f.first()? + f.get(1)? + f.get(2)? + f.get(5)? + f.get(6)?;
    Some(ticks(busy))
}

pub fn core_busy(core: usize) -> Result<Duration> {
    let text = std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
    parse_core_busy(&text, core).ok_or_else(|| anyhow!("no cpu{core} line in /proc/stat"))
}

/// utime+stime from the text of a /proc/…/stat file.
pub fn parse_task_time(stat: &str) -> Option<Duration> {
    // The command name is in parentheses and may contain spaces.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of the file; `rest` starts at field 3.
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(ticks(utime + stime))
}

/// utime+stime of a whole process (all its threads), or of one thread when
/// `tid` is given.
pub fn task_time(pid: u32, tid: Option<u32>) -> Result<Duration> {
    let path = match tid {
        Some(t) => format!("/proc/{pid}/task/{t}/stat"),
        None => format!("/proc/{pid}/stat"),
    };
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_task_time(&text).ok_or_else(|| anyhow!("cannot parse {path}"))
}

/// Threads of this process whose name starts with `prefix`.
pub fn own_threads(prefix: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let tid = e.file_name().to_str()?.parse().ok()?;
            let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
            comm.starts_with(prefix).then_some(tid)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  10 0 10 100 0 0 0 0 0 0\n\
                        cpu0 4 0 6 50 0 0 0 0 0 0\n\
                        cpu1 100 5 200 40 7 3 50 9 0 0\n\
                        intr 1 2 3\n";

    #[test]
    fn core_busy_sums_user_nice_system_irq_softirq() {
        assert_eq!(
            parse_core_busy(STAT, 1),
            Some(Duration::from_millis((100 + 5 + 200 + 3 + 50) * 10))
        );
        assert_eq!(parse_core_busy(STAT, 0), Some(Duration::from_millis(100)));
        assert_eq!(parse_core_busy(STAT, 2), None);
        assert_eq!(parse_core_busy("cpu1 1 2\n", 1), None);
    }

    #[test]
    fn task_time_handles_spaces_in_the_name() {
        let line = "1234 (vipd worker 0) R 1 1 1 0 -1 4194560 0 0 0 0 250 30 0 0 20 0 3 0 1 0 0";
        assert_eq!(parse_task_time(line), Some(Duration::from_millis(2800)));
        assert_eq!(parse_task_time("garbage"), None);
    }

    #[test]
    fn this_thread_is_accounted() {
        let me = std::process::id();
        assert!(task_time(me, None).is_ok());
        assert!(core_busy(0).is_ok());
    }
}
