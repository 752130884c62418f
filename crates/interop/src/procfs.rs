//! Per-process figures from /proc: resident memory and CPU time.

use super::*;

/// Clock ticks per second of the CPU times in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
pub const USER_HZ: u64 = 100;

/// Resident memory (`VmRSS`) of `pid` in KiB, from `/proc/PID/status`.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// CPU time (`utime + stime`, in [`USER_HZ`] ticks) of `pid`, from `/proc/PID/stat`.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which is in parentheses.
    let rest = s.get(s.rfind(')')? + 2..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(rss_kib(pid).is_some_and(|k| k > 0));
        assert!(cpu_ticks(pid).is_some());
        assert!(rss_kib(u32::MAX).is_none());
    }
}
