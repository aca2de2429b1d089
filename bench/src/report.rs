//! Results: one row per W1 rate step or W2 run, printed as an aligned table
//! or as JSON lines (the tool's output, on stdout).

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::{Deserialize, Serialize};

/// p50 / p99 / max of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Latency {
    /// Percentiles of latencies given in microseconds (reorders the slice).
    pub fn of_micros(v: &mut [u32]) -> Option<Latency> {
        if v.is_empty() {
            return None;
        }
        v.sort_unstable();
        let at = |q: f64| {
            let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
            f64::from(v[i]) / 1000.0
        };
        Some(Latency {
            p50_ms: at(0.50),
            p99_ms: at(0.99),
            max_ms: f64::from(v[v.len() - 1]) / 1000.0,
        })
    }
}

/// One offered rate of workload W1 (hot document).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct W1Row {
    pub workload: String,
    pub label: String,
    pub protocol: String,
    pub clients: usize,
    pub seconds: f64,
    pub offered_ops_s: f64,
    pub sent_ops: u64,
    /// Ops sent per second over the send window (the honest offered rate).
    pub achieved_ops_s: f64,
    /// Acknowledgements per second (native `ack`, Hocuspocus `SyncStatus`).
    pub acked_ops_s: Option<f64>,
    pub acked_pct: Option<f64>,
    /// Ops received by the sampled receivers over the ops they should receive.
    pub delivered_pct: f64,
    pub sampled_receivers: usize,
    /// Send → receipt at the sampled receivers.
    pub latency: Option<Latency>,
    /// Send → ack at the sampled clients.
    pub ack_latency: Option<Latency>,
    /// Frames received per second by all clients together.
    pub frames_in_s: f64,
    pub server_cpu_s: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    /// CPU used by the load generator, in % of one core.
    pub gen_cpu_pct: f64,
    pub errors: u64,
    /// Connections that ended during the step, by reason (`1013`, `eof`, …).
    pub closes: BTreeMap<String, u64>,
    pub send_failures: u64,
}

/// Workload W2 (many idle documents).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct W2Row {
    pub workload: String,
    pub label: String,
    pub protocol: String,
    pub documents: usize,
    pub clients_per_doc: usize,
    pub synced_documents: usize,
    pub failed_documents: usize,
    pub connect_secs: f64,
    pub rss_baseline_mib: f64,
    pub rss_loaded_mib: f64,
    pub per_loaded_doc_kib: f64,
    /// `None` when the server does not unload documents (or was not asked).
    pub rss_after_unload_mib: Option<f64>,
    pub per_unloaded_doc_kib: Option<f64>,
    pub unload_wait_secs: Option<f64>,
}

/// Any result row, for reading results files back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Row {
    W1(Box<W1Row>),
    W2(Box<W2Row>),
}

const W1_HEADERS: [&str; 16] = [
    "server",
    "proto",
    "offered/s",
    "sent/s",
    "acked/s",
    "deliv%",
    "p50 ms",
    "p99 ms",
    "max ms",
    "ack p50",
    "ack p99",
    "srv cpu s",
    "srv rss MiB",
    "gen cpu%",
    "errors",
    "closes",
];

const W2_HEADERS: [&str; 10] = [
    "server",
    "proto",
    "docs",
    "synced",
    "connect s",
    "base MiB",
    "loaded MiB",
    "KiB/loaded doc",
    "after MiB",
    "KiB/unloaded doc",
];

fn opt(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x:.decimals$}"))
}

impl W1Row {
    fn cells(&self) -> Vec<String> {
        let closes = if self.closes.is_empty() {
            "-".to_string()
        } else {
            self.closes
                .iter()
                .map(|(k, v)| format!("{k}x{v}"))
                .collect::<Vec<_>>()
                .join(",")
        };
        vec![
            self.label.clone(),
            self.protocol.clone(),
            format!("{:.0}", self.offered_ops_s),
            format!("{:.0}", self.achieved_ops_s),
            opt(self.acked_ops_s, 0),
            format!("{:.2}", self.delivered_pct),
            opt(self.latency.map(|l| l.p50_ms), 2),
            opt(self.latency.map(|l| l.p99_ms), 2),
            opt(self.latency.map(|l| l.max_ms), 1),
            opt(self.ack_latency.map(|l| l.p50_ms), 2),
            opt(self.ack_latency.map(|l| l.p99_ms), 2),
            opt(self.server_cpu_s, 2),
            opt(self.server_peak_rss_mib, 1),
            format!("{:.0}", self.gen_cpu_pct),
            self.errors.to_string(),
            closes,
        ]
    }
}

impl W2Row {
    fn cells(&self) -> Vec<String> {
        vec![
            self.label.clone(),
            self.protocol.clone(),
            self.documents.to_string(),
            self.synced_documents.to_string(),
            format!("{:.1}", self.connect_secs),
            format!("{:.1}", self.rss_baseline_mib),
            format!("{:.1}", self.rss_loaded_mib),
            format!("{:.1}", self.per_loaded_doc_kib),
            self.rss_after_unload_mib
                .map_or_else(|| "n/a".into(), |x| format!("{x:.1}")),
            self.per_unloaded_doc_kib
                .map_or_else(|| "n/a".into(), |x| format!("{x:.1}")),
        ]
    }
}

/// Prints rows as aligned tables (W1 rows first, then W2 rows).
pub fn print_tables(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    let w1: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|r| match r {
            Row::W1(r) => Some(r.cells()),
            Row::W2(_) => None,
        })
        .collect();
    let w2: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|r| match r {
            Row::W2(r) => Some(r.cells()),
            Row::W1(_) => None,
        })
        .collect();
    if !w1.is_empty() {
        writeln!(
            out,
            "W1 hot document (latency: send -> receipt at the sampled receivers)"
        )?;
        print_table(out, &W1_HEADERS, &w1)?;
    }
    if !w2.is_empty() {
        if !w1.is_empty() {
            writeln!(out)?;
        }
        writeln!(
            out,
            "W2 many documents (server RSS; per doc = delta / docs)"
        )?;
        print_table(out, &W2_HEADERS, &w2)?;
    }
    Ok(())
}

/// Prints one row as a JSON line.
pub fn print_json(out: &mut impl Write, row: &Row) -> io::Result<()> {
    let line = serde_json::to_string(row).map_err(io::Error::other)?;
    writeln!(out, "{line}")
}

fn print_table(out: &mut impl Write, headers: &[&str], rows: &[Vec<String>]) -> io::Result<()> {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        cells
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < 2 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect::<Vec<_>>()
            .join("  ")
    };
    writeln!(out, "{}", line(&mut headers.iter().copied()))?;
    writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    )?;
    for row in rows {
        writeln!(out, "{}", line(&mut row.iter().map(String::as_str)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_microseconds() {
        let mut v: Vec<u32> = (1..=1000).rev().collect();
        let l = Latency::of_micros(&mut v).expect("some");
        assert_eq!(l.p50_ms, 0.5);
        assert_eq!(l.p99_ms, 0.99);
        assert_eq!(l.max_ms, 1.0);
        assert!(Latency::of_micros(&mut []).is_none());
    }

    #[test]
    fn rows_round_trip_through_json_and_print() {
        let w2 = Row::W2(Box::new(W2Row {
            workload: "w2".into(),
            label: "relay".into(),
            protocol: "raw".into(),
            documents: 10,
            clients_per_doc: 2,
            synced_documents: 10,
            failed_documents: 0,
            connect_secs: 0.5,
            rss_baseline_mib: 10.0,
            rss_loaded_mib: 12.0,
            per_loaded_doc_kib: 204.8,
            rss_after_unload_mib: None,
            per_unloaded_doc_kib: None,
            unload_wait_secs: None,
        }));
        let mut out = Vec::new();
        print_json(&mut out, &w2).expect("json");
        let back: Row = serde_json::from_slice(&out).expect("parse");
        assert!(matches!(back, Row::W2(_)));
        let mut table = Vec::new();
        print_tables(&mut table, &[back]).expect("table");
        let text = String::from_utf8(table).expect("utf8");
        assert!(text.contains("n/a"), "{text}");
        assert!(text.contains("204.8"), "{text}");
    }
}
