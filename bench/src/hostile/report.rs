//! The result row of a hostile probe and its table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One probe against one server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HostileRow {
    /// Always `hostile`.
    pub workload: String,
    pub label: String,
    pub probe: String,
    /// Length of the attack, as asked.
    pub secs: f64,
    /// Length of the attack, as run (shorter when it was stopped).
    pub attack_secs: f64,
    /// Attacking connections (at a time).
    pub connections: usize,
    pub watcher_ops: u64,
    pub watcher_acked: u64,
    /// Ops never acked (their latency counts as the time waited for them).
    pub watcher_unacked: u64,
    pub watcher_p50_ms: Option<f64>,
    pub watcher_p99_ms: Option<f64>,
    pub watcher_max_ms: Option<f64>,
    pub watcher_errors: BTreeMap<String, u64>,
    pub server_rss_start_mib: Option<f64>,
    /// The largest `VmRSS` sampled every 100 ms.
    pub server_rss_peak_mib: Option<f64>,
    /// `VmHWM` (reset at the start): also catches spikes between samples.
    pub server_hwm_mib: Option<f64>,
    pub server_rss_end_mib: Option<f64>,
    pub server_cpu_s: Option<f64>,
    pub server_alive_at_end: Option<bool>,
    /// The attacker's effective rate in `attacker_unit`.
    pub attacker_rate: f64,
    pub attacker_unit: String,
    /// The rate and its context, for the table.
    pub attacker_summary: String,
    /// Counters of the attack, per second where it says so.
    pub attacker: BTreeMap<String, f64>,
    /// Refused upgrades (HTTP status and error), close codes, error codes.
    pub refusals: BTreeMap<String, u64>,
    pub health_checks: u64,
    pub health_ok: u64,
    pub health_p50_ms: Option<f64>,
    pub health_max_ms: Option<f64>,
    pub health_failures: BTreeMap<String, u64>,
    /// Why the attack stopped early (server gone, RSS safety limit, timeout).
    pub aborted: Option<String>,
    pub notes: Vec<String>,
    /// 1-minute load average of the machine at the end.
    pub load_avg: Option<f64>,
}

fn mib(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.0}"))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(
        || "-".to_string(),
        |x| {
            if x < 10.0 {
                format!("{x:.1}")
            } else {
                format!("{x:.0}")
            }
        },
    )
}

/// `key×n, …` of a count map, the largest first, at most `max` entries.
pub fn counts_cell(counts: &BTreeMap<String, u64>, max: usize) -> String {
    if counts.is_empty() {
        return "-".to_string();
    }
    let mut v: Vec<(&String, &u64)> = counts.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let mut cells: Vec<String> = v
        .iter()
        .take(max)
        .map(|(k, n)| format!("{k} ×{n}"))
        .collect();
    if v.len() > max {
        cells.push(format!("+{} more", v.len() - max));
    }
    cells.join("; ")
}

pub const HEADERS: [&str; 12] = [
    "server",
    "probe",
    "watcher ops",
    "unacked",
    "p50 ms",
    "p99 ms",
    "max ms",
    "rss peak MiB",
    "srv cpu s",
    "health ok, max ms",
    "attacker",
    "refusals / closes",
];

impl HostileRow {
    pub fn cells(&self) -> Vec<String> {
        let peak = match (self.server_rss_peak_mib, self.server_hwm_mib) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let mut peak_cell = mib(peak);
        if self.server_alive_at_end == Some(false) {
            peak_cell.push_str(" (died)");
        }
        vec![
            self.label.clone(),
            self.probe.clone(),
            self.watcher_ops.to_string(),
            self.watcher_unacked.to_string(),
            ms(self.watcher_p50_ms),
            ms(self.watcher_p99_ms),
            ms(self.watcher_max_ms),
            peak_cell,
            self.server_cpu_s
                .map_or_else(|| "-".into(), |c| format!("{c:.1}")),
            format!(
                "{}/{}, {}",
                self.health_ok,
                self.health_checks,
                ms(self.health_max_ms)
            ),
            self.attacker_summary.clone(),
            counts_cell(&self.refusals, 3),
        ]
    }

    /// Lines for what does not fit the table: why the attack stopped, the
    /// watcher's errors, failed health checks, notes, every refusal.
    pub fn remarks(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(why) = &self.aborted {
            out.push(format!("attack stopped early: {why}"));
        }
        if !self.watcher_errors.is_empty() {
            out.push(format!("watcher: {}", counts_cell(&self.watcher_errors, 8)));
        }
        if !self.health_failures.is_empty() {
            out.push(format!(
                "/health failures: {}",
                counts_cell(&self.health_failures, 8)
            ));
        }
        if self.refusals.len() > 3 {
            out.push(format!("refusals: {}", counts_cell(&self.refusals, 20)));
        }
        out.extend(self.notes.iter().cloned());
        out
    }
}
