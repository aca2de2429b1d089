//! CPU time and memory of a process, from Linux `/proc`.

use std::cell::Cell;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Clock ticks per second of `/proc/PID/stat` times (`USER_HZ`, 100 on
/// every Linux architecture this runs on).
const USER_HZ: f64 = 100.0;

/// A process to watch: a pid, or `self`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pid {
    This,
    Other(u32),
}

impl Pid {
    fn path(self, file: &str) -> String {
        match self {
            Pid::This => format!("/proc/self/{file}"),
            Pid::Other(pid) => format!("/proc/{pid}/{file}"),
        }
    }
}

/// User + system CPU seconds used so far (all threads).
pub fn cpu_seconds(pid: Pid) -> io::Result<f64> {
    let stat = std::fs::read_to_string(pid.path("stat"))?;
    parse_cpu_ticks(&stat)
        .map(|t| t as f64 / USER_HZ)
        .ok_or_else(|| io::Error::other("unexpected /proc/PID/stat format"))
}

/// utime + stime from the text of `/proc/PID/stat`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    // The command name (field 2) may contain spaces: fields after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ')': state is field 3, so utime (14) and stime (15) are the
    // 12th and 13th.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident set size now, in KiB (`VmRSS`).
pub fn rss_kib(pid: Pid) -> io::Result<u64> {
    status_field(pid, "VmRSS:")
}

/// Peak resident set size, in KiB (`VmHWM`).
pub fn hwm_kib(pid: Pid) -> io::Result<u64> {
    status_field(pid, "VmHWM:")
}

fn status_field(pid: Pid, key: &str) -> io::Result<u64> {
    let status = std::fs::read_to_string(pid.path("status"))?;
    parse_status_kib(&status, key)
        .ok_or_else(|| io::Error::other(format!("no {key} in /proc/PID/status")))
}

fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..].split_whitespace().next()?.parse().ok()
}

/// The kernel's count of connections dropped because a listen queue was
/// full (`TcpExt ListenOverflows` of `/proc/net/netstat`; counts every
/// listener of the network namespace).
pub fn listen_overflows() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/net/netstat").ok()?;
    parse_netstat(&text, "TcpExt:", "ListenOverflows")
}

fn parse_netstat(text: &str, section: &str, field: &str) -> Option<u64> {
    let mut lines = text.lines().filter(|l| l.starts_with(section));
    let names = lines.next()?;
    let values = lines.next()?;
    let i = names.split_whitespace().position(|n| n == field)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

/// Resets the process's `VmHWM` to its current RSS (writing 5 to
/// `clear_refs`; needs to own the process or root). Returns whether it worked.
pub fn reset_peak(pid: Pid) -> bool {
    std::fs::write(pid.path("clear_refs"), "5").is_ok()
}

/// Waits (at most 60 s) until the server used less than 5 % of a core over
/// half a second, so that a backlog of the previous step does not spill
/// into the next one.
pub async fn wait_until_idle(server: Pid) {
    let started = Instant::now();
    let Ok(mut last) = cpu_seconds(server) else {
        return;
    };
    while started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let Ok(now) = cpu_seconds(server) else {
            return;
        };
        if now - last < 0.025 {
            return;
        }
        last = now;
    }
    log::warn!("the server is still busy after 60 s; starting the next step anyway");
}

/// Samples a process's RSS in the background and keeps the maximum (a
/// fallback for when `VmHWM` cannot be reset).
pub struct PeakSampler {
    max_kib: Rc<Cell<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl PeakSampler {
    /// Starts sampling `pid` every `every` (on the current `LocalSet`).
    pub fn start(pid: Pid, every: Duration) -> Self {
        let max_kib = Rc::new(Cell::new(rss_kib(pid).unwrap_or(0)));
        let max = Rc::clone(&max_kib);
        let task = tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if let Ok(kib) = rss_kib(pid) {
                    max.set(max.get().max(kib));
                }
            }
        });
        PeakSampler { max_kib, task }
    }

    /// Stops sampling and returns the largest RSS seen, in KiB.
    pub fn stop(self) -> u64 {
        self.task.abort();
        self.max_kib.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_spaces_in_the_name() {
        let stat = "1234 (my (odd) name) S 1 2 3 4 5 6 7 8 9 10 250 75 0 0 20 0 1 0";
        assert_eq!(parse_cpu_ticks(stat), Some(325));
    }

    #[test]
    fn status_fields_in_kib() {
        let status = "Name:\tx\nVmHWM:\t  20480 kB\nVmRSS:\t   1024 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(1024));
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(parse_status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn netstat_fields_by_name() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 17 19\nIpExt: A\nIpExt: 1\n";
        assert_eq!(parse_netstat(text, "TcpExt:", "ListenOverflows"), Some(17));
        assert_eq!(parse_netstat(text, "TcpExt:", "Nope"), None);
    }

    #[test]
    fn this_process_can_be_read() {
        assert!(cpu_seconds(Pid::This).is_ok());
        assert!(rss_kib(Pid::This).expect("rss") > 0);
        assert!(hwm_kib(Pid::This).expect("hwm") > 0);
    }
}
