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
    /// Server RSS after the drain, clients still connected.
    #[serde(default)]
    pub server_rss_end_mib: Option<f64>,
    /// Per-receiver delivery check (native protocol: every receiver).
    #[serde(default)]
    pub delivery: Option<DeliveryCheck>,
    /// Reconnection of the clients the server closed (`--resync-closed`).
    #[serde(default)]
    pub resync: Option<Resync>,
}

/// Whether every receiver got every op of the others, or was closed by the
/// server (natively checked on every receiver: op count and the contiguity
/// of the `server_seq` stream).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeliveryCheck {
    pub receivers: usize,
    /// Got every op sent by the others, no seq gap.
    pub complete: usize,
    /// Closed by the server (with the codes in `closes`), not complete.
    pub closed: usize,
    /// Still open but missing ops: silently dropped, or still late when the
    /// drain ended.
    pub short_open: usize,
    /// Receivers whose `server_seq` stream had a gap or went backwards.
    pub seq_gap_receivers: usize,
    /// Ops missing at the open, short receivers.
    pub missing_ops: u64,
    /// Time waited after the last send for the deliveries.
    pub drain_secs: f64,
}

/// The clients closed by the server during a step, reconnected with their
/// `last_seen_server_seq` after it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resync {
    pub attempted: usize,
    /// Caught up to the head announced in the welcome.
    pub synced: usize,
    pub by_replay: usize,
    pub by_snapshot: usize,
    pub failed: usize,
    /// Longest reconnect → caught up.
    pub max_ms: f64,
}

/// Workload W3 (reconnect storm).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct W3Row {
    pub workload: String,
    pub label: String,
    pub protocol: String,
    pub w3_documents: usize,
    pub w3_clients_per_doc: usize,
    pub missed_ops: usize,
    pub reconnecting_clients: usize,
    pub welcomed: usize,
    pub synced: usize,
    pub recovery_replay: usize,
    pub recovery_snapshot: usize,
    pub replayed_ops: u64,
    /// Clients that did not get back in sync, by reason.
    pub failures: BTreeMap<String, u64>,
    /// First reconnect → the last client caught up; `None` unless all did.
    pub all_synced_secs: Option<f64>,
    pub last_synced_secs: f64,
    pub storm_secs: f64,
    /// Storm start → WebSocket upgraded, per client.
    pub connect: Option<Latency>,
    /// Storm start → welcome, per client.
    pub welcome: Option<Latency>,
    /// Storm start → caught up to the head, per client.
    pub catch_up: Option<Latency>,
    pub server_cpu_s: Option<f64>,
    pub server_peak_rss_mib: Option<f64>,
    pub gen_cpu_pct: f64,
    /// Kernel `ListenOverflows` during the storm (whole network namespace).
    pub listen_overflows: Option<u64>,
}

/// Workload W4, phase build: the trace written into a fresh document.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct W4BuildRow {
    pub workload: String,
    pub label: String,
    pub doc: String,
    /// Patches written before this build (0: a fresh document).
    #[serde(default)]
    pub from: usize,
    /// Patches written by this build.
    pub trace_ops: usize,
    pub head: u64,
    pub update_bytes: usize,
    pub window: usize,
    pub build_secs: f64,
    pub build_ops_s: f64,
    pub text_chars: usize,
}

/// Workload W4, phase load: one cold load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct W4LoadRow {
    pub workload: String,
    pub label: String,
    pub run: usize,
    pub doc: String,
    pub loaded_head: u64,
    pub expected_head: u64,
    pub connect_ms: f64,
    pub welcome_ms: f64,
    /// Connect → snapshot received: "connect to synced".
    pub synced_ms: f64,
    pub snapshot_state_bytes: usize,
    /// The `snapshot` message as received (base64 JSON).
    pub snapshot_message_bytes: usize,
    /// The snapshot's text equals the trace's text.
    pub text_ok: bool,
    /// From the server's `document … loaded: … (N ms)` log line.
    pub server_load_ms: Option<f64>,
    pub server_snapshot_at: Option<u64>,
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
    W3(Box<W3Row>),
    W4Build(Box<W4BuildRow>),
    W4Load(Box<W4LoadRow>),
    Hostile(Box<crate::hostile::report::HostileRow>),
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
        let closes = closes_cell(&self.closes);
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

const OVERLOAD_HEADERS: [&str; 17] = [
    "server",
    "offered/s",
    "sent/s",
    "acked/s",
    "deliv%",
    "p99 ms",
    "rx",
    "complete",
    "closed",
    "short+open",
    "seq gaps",
    "closes",
    "resynced",
    "srv cpu s",
    "peak MiB",
    "end MiB",
    "gen cpu%",
];

const W3_HEADERS: [&str; 16] = [
    "server",
    "clients",
    "missed",
    "synced",
    "replay",
    "snapshot",
    "failures",
    "all synced s",
    "catch-up p50",
    "p99 ms",
    "max ms",
    "welcome p99",
    "srv cpu s",
    "peak MiB",
    "gen cpu%",
    "listen ovf",
];

const W4_HEADERS: [&str; 12] = [
    "variant",
    "runs",
    "head",
    "synced min ms",
    "median",
    "max",
    "welcome med",
    "srv load min",
    "srv median",
    "snapshot at",
    "state KiB",
    "text ok",
];

impl Resync {
    fn cell(&self) -> String {
        format!(
            "{}/{} ({} replay, {} snap, max {:.0} ms)",
            self.synced, self.attempted, self.by_replay, self.by_snapshot, self.max_ms
        )
    }
}

fn closes_cell(closes: &BTreeMap<String, u64>) -> String {
    if closes.is_empty() {
        "-".to_string()
    } else {
        closes
            .iter()
            .map(|(k, v)| format!("{k}x{v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl W1Row {
    fn overload_cells(&self) -> Vec<String> {
        let d = self.delivery.clone().unwrap_or_default();
        let has = self.delivery.is_some();
        let n = |v: usize| if has { v.to_string() } else { "-".into() };
        vec![
            self.label.clone(),
            format!("{:.0}", self.offered_ops_s),
            format!("{:.0}", self.achieved_ops_s),
            opt(self.acked_ops_s, 0),
            format!("{:.2}", self.delivered_pct),
            opt(self.latency.map(|l| l.p99_ms), 1),
            n(d.receivers),
            n(d.complete),
            n(d.closed),
            n(d.short_open),
            n(d.seq_gap_receivers),
            closes_cell(&self.closes),
            self.resync
                .as_ref()
                .map_or_else(|| "-".into(), Resync::cell),
            opt(self.server_cpu_s, 2),
            opt(self.server_peak_rss_mib, 1),
            opt(self.server_rss_end_mib, 1),
            format!("{:.0}", self.gen_cpu_pct),
        ]
    }
}

impl W3Row {
    fn cells(&self) -> Vec<String> {
        let failures: u64 = self.failures.values().sum();
        let failures = if failures == 0 {
            "0".to_string()
        } else {
            closes_cell(&self.failures)
        };
        vec![
            self.label.clone(),
            format!("{}x{}", self.w3_documents, self.w3_clients_per_doc),
            self.missed_ops.to_string(),
            format!("{}/{}", self.synced, self.reconnecting_clients),
            self.recovery_replay.to_string(),
            self.recovery_snapshot.to_string(),
            failures,
            self.all_synced_secs.map_or_else(
                || format!("not all ({:.3})", self.last_synced_secs),
                |s| format!("{s:.3}"),
            ),
            opt(self.catch_up.map(|l| l.p50_ms), 1),
            opt(self.catch_up.map(|l| l.p99_ms), 1),
            opt(self.catch_up.map(|l| l.max_ms), 1),
            opt(self.welcome.map(|l| l.p99_ms), 1),
            opt(self.server_cpu_s, 2),
            opt(self.server_peak_rss_mib, 1),
            format!("{:.0}", self.gen_cpu_pct),
            self.listen_overflows
                .map_or_else(|| "-".into(), |v| v.to_string()),
        ]
    }
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// One summary line per W4 variant (label), in order of appearance.
fn w4_summary(rows: &[&W4LoadRow]) -> Vec<Vec<String>> {
    let mut labels: Vec<&str> = Vec::new();
    for r in rows {
        if !labels.contains(&r.label.as_str()) {
            labels.push(&r.label);
        }
    }
    labels
        .into_iter()
        .map(|label| {
            let runs: Vec<&&W4LoadRow> = rows.iter().filter(|r| r.label == label).collect();
            let mut synced: Vec<f64> = runs.iter().map(|r| r.synced_ms).collect();
            let mut welcome: Vec<f64> = runs.iter().map(|r| r.welcome_ms).collect();
            let mut server: Vec<f64> = runs.iter().filter_map(|r| r.server_load_ms).collect();
            let mut at: Vec<u64> = runs.iter().filter_map(|r| r.server_snapshot_at).collect();
            at.dedup();
            let heads: Vec<String> = {
                let mut h: Vec<u64> = runs.iter().map(|r| r.loaded_head).collect();
                h.dedup();
                h.iter().map(u64::to_string).collect()
            };
            let ok = runs
                .iter()
                .all(|r| r.text_ok && r.loaded_head == r.expected_head);
            vec![
                label.to_string(),
                runs.len().to_string(),
                heads.join("/"),
                format!(
                    "{:.1}",
                    synced.iter().copied().fold(f64::INFINITY, f64::min)
                ),
                opt(median(&mut synced), 1),
                format!("{:.1}", synced.iter().copied().fold(0.0, f64::max)),
                opt(median(&mut welcome), 1),
                if server.is_empty() {
                    "-".into()
                } else {
                    format!(
                        "{:.0}",
                        server.iter().copied().fold(f64::INFINITY, f64::min)
                    )
                },
                opt(median(&mut server), 0),
                if at.is_empty() {
                    "-".into()
                } else {
                    at.iter().map(u64::to_string).collect::<Vec<_>>().join("/")
                },
                format!(
                    "{:.0}",
                    runs.iter()
                        .map(|r| r.snapshot_state_bytes)
                        .max()
                        .unwrap_or(0) as f64
                        / 1024.0
                ),
                if ok { "yes" } else { "NO" }.to_string(),
            ]
        })
        .collect()
}

/// Prints rows as aligned tables: W1, W5 and overload (W1 rows by their
/// `workload`), W2, W3, W4.
pub fn print_tables(out: &mut impl Write, rows: &[Row]) -> io::Result<()> {
    let w1_of = |name: &str| -> Vec<&W1Row> {
        rows.iter()
            .filter_map(|r| match r {
                Row::W1(r) if r.workload == name => Some(&**r),
                _ => None,
            })
            .collect()
    };
    let mut first = true;
    let mut section = |out: &mut dyn Write,
                       title: &str,
                       headers: &[&str],
                       cells: Vec<Vec<String>>|
     -> io::Result<()> {
        if cells.is_empty() {
            return Ok(());
        }
        if !first {
            writeln!(out)?;
        }
        first = false;
        writeln!(out, "{title}")?;
        print_table(out, headers, &cells)
    };
    section(
        out,
        "W1 hot document (latency: send -> receipt at the sampled receivers)",
        &W1_HEADERS,
        w1_of("w1").iter().map(|r| r.cells()).collect(),
    )?;
    let others: Vec<Vec<String>> = rows
        .iter()
        .filter_map(|r| match r {
            Row::W1(r) if !["w1", "w5", "overload"].contains(&r.workload.as_str()) => {
                Some(r.cells())
            }
            _ => None,
        })
        .collect();
    section(out, "W1-type steps", &W1_HEADERS, others)?;
    section(
        out,
        "W5 durability (W1 against Collab-Engine per durability mode)",
        &W1_HEADERS,
        w1_of("w5").iter().map(|r| r.cells()).collect(),
    )?;
    section(
        out,
        "Overload (W1 steps; rx = receivers checked: complete, closed by the server, short and still open)",
        &OVERLOAD_HEADERS,
        w1_of("overload")
            .iter()
            .map(|r| r.overload_cells())
            .collect(),
    )?;
    section(
        out,
        "W2 many documents (server RSS; per doc = delta / docs)",
        &W2_HEADERS,
        rows.iter()
            .filter_map(|r| match r {
                Row::W2(r) => Some(r.cells()),
                _ => None,
            })
            .collect(),
    )?;
    section(
        out,
        "W3 reconnect storm (times from the first reconnect; catch-up = until the replay reached the head)",
        &W3_HEADERS,
        rows.iter()
            .filter_map(|r| match r {
                Row::W3(r) => Some(r.cells()),
                _ => None,
            })
            .collect(),
    )?;
    section(
        out,
        "W4 cold load, build (trace written through one pipelined client)",
        &[
            "variant",
            "doc",
            "from",
            "ops",
            "head",
            "update bytes",
            "window",
            "secs",
            "ops/s",
        ],
        rows.iter()
            .filter_map(|r| match r {
                Row::W4Build(r) => Some(vec![
                    r.label.clone(),
                    r.doc.clone(),
                    r.from.to_string(),
                    r.trace_ops.to_string(),
                    r.head.to_string(),
                    r.update_bytes.to_string(),
                    r.window.to_string(),
                    format!("{:.2}", r.build_secs),
                    format!("{:.0}", r.build_ops_s),
                ]),
                _ => None,
            })
            .collect(),
    )?;
    let loads: Vec<&W4LoadRow> = rows
        .iter()
        .filter_map(|r| match r {
            Row::W4Load(r) => Some(&**r),
            _ => None,
        })
        .collect();
    section(
        out,
        "W4 cold load (connect -> snapshot received, restarted server; srv load = the server's own log line)",
        &W4_HEADERS,
        w4_summary(&loads),
    )?;
    section(
        out,
        "W4 cold load, every run",
        &[
            "variant",
            "run",
            "head",
            "connect ms",
            "welcome ms",
            "synced ms",
            "srv load ms",
            "snapshot at",
            "text ok",
        ],
        loads
            .iter()
            .map(|r| {
                vec![
                    r.label.clone(),
                    r.run.to_string(),
                    r.loaded_head.to_string(),
                    format!("{:.2}", r.connect_ms),
                    format!("{:.1}", r.welcome_ms),
                    format!("{:.1}", r.synced_ms),
                    opt(r.server_load_ms, 0),
                    r.server_snapshot_at
                        .map_or_else(|| "-".into(), |v| v.to_string()),
                    if r.text_ok { "yes" } else { "NO" }.to_string(),
                ]
            })
            .collect(),
    )?;
    let hostile: Vec<&crate::hostile::report::HostileRow> = rows
        .iter()
        .filter_map(|r| match r {
            Row::Hostile(r) => Some(&**r),
            _ => None,
        })
        .collect();
    section(
        out,
        "Hostile load (watcher: op -> ack on another document, an op every 100 ms; rss peak: sampled every 100 ms or VmHWM)",
        &crate::hostile::report::HEADERS,
        hostile.iter().map(|r| r.cells()).collect(),
    )?;
    for r in &hostile {
        for remark in r.remarks() {
            writeln!(out, "  {} {}: {remark}", r.label, r.probe)?;
        }
    }
    Ok(())
}

/// Prints one row as a JSON line.
pub fn print_json(out: &mut impl Write, row: &Row) -> io::Result<()> {
    let line = serde_json::to_string(row).map_err(io::Error::other)?;
    writeln!(out, "{line}")
}

fn print_table(
    out: &mut (impl Write + ?Sized),
    headers: &[&str],
    rows: &[Vec<String>],
) -> io::Result<()> {
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
