//! `collab-bench hostile`: one attack (a probe) against a server while an
//! innocent watcher client types on another document.
//!
//! The watcher, the server's RSS sampling and the `/health` checks run on a
//! thread of their own ([`watch`]); the attack runs on the main thread
//! (one current-thread runtime), bounded by `--secs`. A watchdog ends the
//! process if anything hangs past `--secs` + 10 s.

mod idle;
mod native_probes;
mod peer;
pub mod report;
mod tally;
mod updates;
mod watch;
mod yjs_probes;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::procfs::Pid;
use crate::report::Latency;
use crate::ws::WsUrl;
use native_probes::{BigEdits, ChainSource};
use report::HostileRow;
use tally::{Ctx, Tally};
use watch::{Shared, WatchConfig, WatchReport};

/// The attacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Probe {
    /// 20 y-websocket connections on one document, each update one
    /// character from a new Yjs client, all concurrent.
    Conflicts,
    /// One native connection, updates that depend on a clock never sent.
    NeverIntegrate,
    /// One native connection: a 200,000-character document, then each op
    /// deletes and reinserts 100,000 characters.
    BigDeletes,
    /// 4 y-websocket connections sending 8-byte messages that declare 2^28
    /// entries, reconnecting whenever the server closes them.
    AllocBomb,
    /// 20 native connections on 20 documents, chained inserts.
    Flood,
    /// One connection sending awareness updates to 20 listeners.
    AwarenessFlood,
    /// As many idle /yjs connections as possible.
    IdleConnections,
}

impl Probe {
    pub fn name(self) -> &'static str {
        match self {
            Probe::Conflicts => "conflicts",
            Probe::NeverIntegrate => "never-integrate",
            Probe::BigDeletes => "big-deletes",
            Probe::AllocBomb => "alloc-bomb",
            Probe::Flood => "flood",
            Probe::AwarenessFlood => "awareness-flood",
            Probe::IdleConnections => "idle-connections",
        }
    }
}

pub struct HostileOptions {
    pub url: WsUrl,
    pub server: Option<Pid>,
    pub probe: Probe,
    pub secs: f64,
    pub label: String,
    pub rss_limit_mib: u64,
    pub max_connections: usize,
}

/// How much longer than `--secs` the whole run may take.
const HARD_MARGIN: Duration = Duration::from_secs(10);

/// Runs one probe and returns its row.
pub async fn run(opts: &HostileOptions) -> Result<HostileRow, String> {
    if !(opts.secs > 0.0 && opts.secs <= 3600.0) {
        return Err(format!("--secs must be in (0, 3600], got {}", opts.secs));
    }
    let secs = Duration::from_secs_f64(opts.secs);
    let started = Instant::now();
    let finished = Arc::new(AtomicBool::new(false));
    start_watchdog(opts, started + secs + HARD_MARGIN, Arc::clone(&finished))?;

    let shared = Arc::new(Shared::default());
    let (ready_tx, ready_rx) = mpsc::channel();
    let watch = watch::spawn(
        WatchConfig {
            authority: opts.url.authority.clone(),
            server: opts.server,
            rss_limit_kib: opts.rss_limit_mib * 1024,
        },
        Arc::clone(&shared),
        ready_tx,
    )?;
    let mut notes = Vec::new();
    // The watcher joins first (at most 3 s; the probe runs anyway).
    let wait_until = Instant::now() + Duration::from_secs(3);
    loop {
        match ready_rx.try_recv() {
            Ok(Ok(())) => break,
            Ok(Err(e)) => {
                notes.push(format!("watcher: {e}"));
                break;
            }
            Err(_) if Instant::now() >= wait_until => {
                notes.push("the watcher had not joined when the attack started".to_string());
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    let attack_start = Instant::now();
    let ctx = Ctx {
        url: opts.url.clone(),
        shared: Arc::clone(&shared),
        deadline: attack_start + secs,
        tally: Rc::new(RefCell::new(Tally::default())),
    };
    // The attack ends at the deadline by itself; the timeout is a backstop.
    let outcome = tokio::time::timeout(secs + Duration::from_secs(4), attack(&ctx, opts)).await;
    let attack_secs = attack_start.elapsed().min(secs).as_secs_f64().max(1e-3);
    shared.stop.store(true, Ordering::Relaxed);
    let extra = match outcome {
        Ok(extra) => extra,
        Err(_) => {
            notes.push("the attack did not end at its deadline (stopped)".to_string());
            ProbeExtra::default()
        }
    };
    // The watch thread finishes within a few seconds (ack grace).
    while !watch.is_finished() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let report = watch
        .join()
        .map_err(|_| "the watch thread panicked".to_string())?;
    let aborted = shared.abort_reason.lock().ok().and_then(|r| r.clone());
    let tally = ctx.tally.borrow();
    let row = make_row(opts, &tally, report, extra, attack_secs, aborted, notes);
    finished.store(true, Ordering::Relaxed);
    Ok(row)
}

/// Ends the process when the run takes longer than it may.
fn start_watchdog(
    opts: &HostileOptions,
    at: Instant,
    finished: Arc<AtomicBool>,
) -> Result<(), String> {
    let probe = opts.probe.name();
    std::thread::Builder::new()
        .name("watchdog".into())
        .spawn(move || {
            while Instant::now() < at {
                if finished.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            if !finished.load(Ordering::Relaxed) {
                eprintln!("collab-bench hostile: probe {probe} hung past --secs + 10 s; exiting");
                std::process::exit(3);
            }
        })
        .map(|_| ())
        .map_err(|e| format!("cannot start the watchdog: {e}"))
}

/// What a probe reports beyond its counters.
#[derive(Default)]
struct ProbeExtra {
    connections: usize,
    idle: Option<idle::IdleOutcome>,
}

async fn attack(ctx: &Ctx, opts: &HostileOptions) -> ProbeExtra {
    let mut extra = ProbeExtra::default();
    match opts.probe {
        Probe::Conflicts => {
            extra.connections = 20;
            let next_client = Cell::new(1u64 << 40);
            join_all((0..20).map(|_| yjs_probes::conflicts(ctx, &next_client))).await;
        }
        Probe::NeverIntegrate => {
            extra.connections = 1;
            native_probes::attacker(
                ctx,
                "pending",
                Box::new(ChainSource::new(1, "pending!")),
                64,
            )
            .await;
        }
        Probe::BigDeletes => {
            extra.connections = 1;
            native_probes::attacker(ctx, "big-deletes", Box::new(BigEdits::new()), 1).await;
        }
        Probe::AllocBomb => {
            extra.connections = 4;
            join_all((0..4).map(|i| yjs_probes::alloc_bomb(ctx, i))).await;
        }
        Probe::Flood => {
            extra.connections = 20;
            join_all((0..20).map(|i| {
                let doc = format!("flood-{i}");
                async move {
                    native_probes::attacker(ctx, &doc, Box::new(ChainSource::new(0, "f")), 64)
                        .await;
                }
            }))
            .await;
        }
        Probe::AwarenessFlood => {
            extra.connections = 21;
            let listeners = join_all((0..20).map(|_| yjs_probes::awareness_listener(ctx)));
            tokio::join!(listeners, yjs_probes::awareness_sender(ctx));
        }
        Probe::IdleConnections => {
            let outcome = idle::run(ctx, opts.max_connections).await;
            extra.connections = outcome.accepted;
            extra.idle = Some(outcome);
        }
    }
    extra
}

fn kib_to_mib(v: Option<u64>) -> Option<f64> {
    v.map(|k| k as f64 / 1024.0)
}

fn make_row(
    opts: &HostileOptions,
    tally: &Tally,
    report: WatchReport,
    extra: ProbeExtra,
    attack_secs: f64,
    aborted: Option<String>,
    mut notes: Vec<String>,
) -> HostileRow {
    let WatchReport {
        mut watcher,
        server,
        mut health,
    } = report;
    notes.extend(tally.notes.iter().cloned());
    if !watcher.joined {
        notes.push("the watcher never joined its document".to_string());
    }
    let lat = Latency::of_micros(&mut watcher.latencies_us);
    let health_lat = Latency::of_micros(&mut health.latencies_us);
    let per_s = |name: &str| tally.get(name) as f64 / attack_secs;
    let mut attacker: BTreeMap<String, f64> = tally
        .counters
        .iter()
        .map(|(k, v)| ((*k).to_string(), *v as f64))
        .collect();
    let (rate, unit, summary) = match opts.probe {
        Probe::Conflicts => {
            // Every update reaches the 19 other connections.
            let relayed = per_s("updates_received") / 19.0;
            let written = per_s("updates_written");
            attacker.insert("updates_written_per_s".into(), written);
            attacker.insert("bytes_written_per_s".into(), per_s("bytes_written"));
            let s = format!(
                "{relayed:.0} updates/s relayed ({written:.0}/s, {:.1} MB/s written)",
                per_s("bytes_written") / 1e6
            );
            (relayed, "updates/s relayed", s)
        }
        Probe::NeverIntegrate | Probe::Flood | Probe::BigDeletes => {
            let ops = per_s("ops_acked");
            let bytes = per_s("bytes_acked");
            attacker.insert("ops_acked_per_s".into(), ops);
            attacker.insert("bytes_acked_per_s".into(), bytes);
            attacker.insert("ops_written_per_s".into(), per_s("ops_written"));
            let written = per_s("bytes_written");
            attacker.insert("bytes_written_per_s".into(), written);
            let s = if opts.probe == Probe::BigDeletes {
                format!(
                    "{ops:.1} ops/s acked ({:.2} MB/s; {:.1} MB/s written)",
                    bytes / 1e6,
                    written / 1e6
                )
            } else {
                format!(
                    "{ops:.0} ops/s acked ({:.0} KB/s; {:.1} MB/s written)",
                    bytes / 1e3,
                    written / 1e6
                )
            };
            (ops, "ops/s acked", s)
        }
        Probe::AllocBomb => {
            let bombs = per_s("bombs_sent");
            attacker.insert("bombs_sent_per_s".into(), bombs);
            let s = format!(
                "{bombs:.0} bombs/s sent ({:.0} connections/s)",
                per_s("connections")
            );
            (bombs, "bombs/s", s)
        }
        Probe::AwarenessFlood => {
            let received = per_s("awareness_received") / 20.0;
            let written = per_s("awareness_written");
            attacker.insert("awareness_written_per_s".into(), written);
            attacker.insert("awareness_received_per_listener_per_s".into(), received);
            let s = format!("{written:.0}/s sent, {received:.0}/s received per listener");
            (received, "awareness msgs/s per listener", s)
        }
        Probe::IdleConnections => {
            let accepted = tally.get("accepted") as f64;
            let mut s = format!("{accepted:.0} connections accepted");
            if let Some(idle) = &extra.idle {
                attacker.insert("target".into(), idle.target as f64);
                attacker.insert("open_at_end".into(), idle.open_at_end as f64);
                attacker.insert("opening_secs".into(), idle.opening_secs);
                s = format!(
                    "{} of {} accepted, {} open at the end",
                    idle.accepted, idle.target, idle.open_at_end
                );
                let checks: Vec<String> = idle
                    .health_after_open
                    .iter()
                    .map(|r| match r {
                        Ok((status, took)) => {
                            format!("{status} in {:.1} ms", took.as_secs_f64() * 1e3)
                        }
                        Err(e) => e.clone(),
                    })
                    .collect();
                notes.push(format!(
                    "/health with all connections open: {}",
                    checks.join(", ")
                ));
            }
            (accepted, "connections", s)
        }
    };
    HostileRow {
        workload: "hostile".to_string(),
        label: opts.label.clone(),
        probe: opts.probe.name().to_string(),
        secs: opts.secs,
        attack_secs,
        connections: extra.connections,
        watcher_ops: watcher.ops,
        watcher_acked: watcher.acked,
        watcher_unacked: watcher.unacked,
        watcher_p50_ms: lat.map(|l| l.p50_ms),
        watcher_p99_ms: lat.map(|l| l.p99_ms),
        watcher_max_ms: lat.map(|l| l.max_ms),
        watcher_errors: watcher.errors,
        server_rss_start_mib: kib_to_mib(server.rss_start_kib),
        server_rss_peak_mib: kib_to_mib(server.rss_peak_sampled_kib),
        server_hwm_mib: kib_to_mib(server.hwm_kib),
        server_rss_end_mib: kib_to_mib(server.rss_end_kib),
        server_cpu_s: server.cpu_s,
        server_alive_at_end: server.alive_at_end,
        attacker_rate: rate,
        attacker_unit: unit.to_string(),
        attacker_summary: summary,
        attacker,
        refusals: tally.refusals.clone(),
        health_checks: health.checks,
        health_ok: health.ok,
        health_p50_ms: health_lat.map(|l| l.p50_ms),
        health_max_ms: health_lat.map(|l| l.max_ms),
        health_failures: health.failures,
        aborted,
        notes,
        load_avg: load_avg(),
    }
}

fn load_avg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}
