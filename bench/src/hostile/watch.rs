//! What the hostile probes measure, on a thread of its own (so that a busy
//! attacker on the main thread does not delay it): the watcher client, an
//! innocent native session on document `watcher` typing one character every
//! 100 ms and timing op -> ack; the server's RSS every 100 ms; and
//! `GET /health` every 500 ms.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::peer::{self, Peer, Step};
use super::updates::{self, Chain};
use crate::procfs::{self, Pid};
use crate::protocol::{json_str, json_u64};
use crate::ws;

/// Flags shared by the attacker (main thread) and the watch thread.
#[derive(Default)]
pub struct Shared {
    /// The attack is over: finish up.
    pub stop: AtomicBool,
    /// The attack must stop now (server gone, RSS over the safety limit).
    pub abort: AtomicBool,
    pub abort_reason: Mutex<Option<String>>,
}

impl Shared {
    pub fn aborted(&self) -> bool {
        self.abort.load(Ordering::Relaxed)
    }

    fn abort_with(&self, why: String) {
        if let Ok(mut reason) = self.abort_reason.lock()
            && reason.is_none()
        {
            log::warn!("stopping the attack: {why}");
            *reason = Some(why);
        }
        self.abort.store(true, Ordering::Relaxed);
    }
}

pub struct WatchConfig {
    pub authority: String,
    pub server: Option<Pid>,
    /// Stop the attack when the server's RSS passes this (a safety limit on
    /// a shared machine).
    pub rss_limit_kib: u64,
}

/// The watcher's ops.
#[derive(Debug, Default)]
pub struct WatcherStats {
    pub ops: u64,
    pub acked: u64,
    /// Ops never acked: their latency counts as the time waited for them.
    pub unacked: u64,
    /// Op -> ack in microseconds (unacked ops: the time waited).
    pub latencies_us: Vec<u32>,
    /// Errors and connection ends the watcher saw, with counts.
    pub errors: BTreeMap<String, u64>,
    pub joined: bool,
}

#[derive(Debug, Default)]
pub struct ServerStats {
    pub rss_start_kib: Option<u64>,
    pub rss_peak_sampled_kib: Option<u64>,
    /// `VmHWM` after resetting it at the start (catches spikes between samples).
    pub hwm_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    pub cpu_s: Option<f64>,
    pub alive_at_end: Option<bool>,
}

#[derive(Debug, Default)]
pub struct HealthStats {
    pub checks: u64,
    pub ok: u64,
    pub latencies_us: Vec<u32>,
    pub failures: BTreeMap<String, u64>,
}

#[derive(Debug, Default)]
pub struct WatchReport {
    pub watcher: WatcherStats,
    pub server: ServerStats,
    pub health: HealthStats,
}

/// Starts the watch thread. `ready` gets one message once the watcher has
/// joined its document (or failed to).
pub fn spawn(
    cfg: WatchConfig,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Result<(), String>>,
) -> Result<JoinHandle<WatchReport>, String> {
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = ready.send(Err(format!("watch runtime: {e}")));
                    return WatchReport::default();
                }
            };
            let local = tokio::task::LocalSet::new();
            local.block_on(&runtime, watch(cfg, shared, ready))
        })
        .map_err(|e| format!("cannot start the watch thread: {e}"))
}

async fn watch(
    cfg: WatchConfig,
    shared: Arc<Shared>,
    ready: mpsc::Sender<Result<(), String>>,
) -> WatchReport {
    let sampler = sample_server(&cfg, &shared);
    let health = check_health(&cfg.authority, &shared);
    let watcher = run_watcher(&cfg.authority, &shared, ready);
    let (server, health, watcher) = tokio::join!(sampler, health, watcher);
    WatchReport {
        watcher,
        server,
        health,
    }
}

fn stopped(shared: &Shared) -> bool {
    shared.stop.load(Ordering::Relaxed)
}

async fn sample_server(cfg: &WatchConfig, shared: &Shared) -> ServerStats {
    let mut stats = ServerStats::default();
    let Some(pid) = cfg.server else {
        return stats;
    };
    let hwm_reset = procfs::reset_peak(pid);
    let cpu0 = procfs::cpu_seconds(pid).ok();
    stats.rss_start_kib = procfs::rss_kib(pid).ok();
    let mut peak = stats.rss_start_kib.unwrap_or(0);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut alive = true;
    while !stopped(shared) {
        tick.tick().await;
        match procfs::rss_kib(pid) {
            Ok(kib) => {
                peak = peak.max(kib);
                if kib > cfg.rss_limit_kib {
                    shared.abort_with(format!(
                        "server RSS {} MiB over the safety limit of {} MiB",
                        kib / 1024,
                        cfg.rss_limit_kib / 1024
                    ));
                }
            }
            // Gone, or a zombie (no VmRSS any more).
            Err(_) => {
                alive = false;
                shared.abort_with("the server process exited".to_string());
                break;
            }
        }
    }
    // The end of the attack: the numbers of the process.
    stats.rss_peak_sampled_kib = Some(peak);
    stats.rss_end_kib = procfs::rss_kib(pid).ok();
    alive = alive && stats.rss_end_kib.is_some();
    stats.alive_at_end = Some(alive);
    if hwm_reset && alive {
        stats.hwm_kib = procfs::hwm_kib(pid).ok();
    }
    if let (Some(a), Ok(b)) = (cpu0, procfs::cpu_seconds(pid)) {
        stats.cpu_s = Some(b - a);
    }
    stats
}

async fn check_health(authority: &str, shared: &Shared) -> HealthStats {
    let mut stats = HealthStats::default();
    let mut tick = tokio::time::interval(Duration::from_millis(500));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !stopped(shared) {
        tick.tick().await;
        stats.checks += 1;
        match peer::get_health(authority, Duration::from_secs(3)).await {
            Ok((200, took)) => {
                stats.ok += 1;
                stats.latencies_us.push(micros(took));
            }
            Ok((status, _)) => *stats.failures.entry(format!("http {status}")).or_default() += 1,
            Err(e) => *stats.failures.entry(e).or_default() += 1,
        }
    }
    stats
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// How long the watcher waits for its last acks after the stop.
const ACK_GRACE: Duration = Duration::from_secs(3);
const PERIOD: Duration = Duration::from_millis(100);

async fn run_watcher(
    authority: &str,
    shared: &Shared,
    ready: mpsc::Sender<Result<(), String>>,
) -> WatcherStats {
    let stats = Rc::new(RefCell::new(WatcherStats::default()));
    let mut ready = Some(ready);
    let mut next_send = Instant::now();
    // One session per iteration; a new one (fresh client) after an end.
    while !stopped(shared) {
        let result = watcher_session(authority, shared, &stats, &mut ready, &mut next_send).await;
        if let Err(e) = result {
            *stats.borrow_mut().errors.entry(e).or_default() += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if let Some(tx) = ready.take() {
        let _ = tx.send(Err("the watcher never joined".to_string()));
    }
    Rc::try_unwrap(stats)
        .map(RefCell::into_inner)
        .unwrap_or_default()
}

/// One watcher connection: join, then an op every 100 ms until the stop
/// (then wait for the last acks) or the connection ends.
async fn watcher_session(
    authority: &str,
    shared: &Shared,
    stats: &Rc<RefCell<WatcherStats>>,
    ready: &mut Option<mpsc::Sender<Result<(), String>>>,
    next_send: &mut Instant,
) -> Result<(), String> {
    let mut peer = Peer::open(authority, "/ws/watcher", Duration::from_secs(5))
        .await
        .map_err(|e| format!("open: {}", e.key()))?;
    let client = updates::random_client();
    let hello = crate::native::hello_json(&format!("watcher-{client}"), None, None);
    peer.queue(ws::OP_TEXT, hello.as_bytes());
    let joined = Cell::new(false);
    let error = RefCell::new(None::<String>);
    let mut on_join = |_: u8, payload: &[u8]| match json_str(payload, b"\"type\":\"") {
        Some(b"welcome") | Some(b"snapshot") => joined.set(true),
        Some(b"error") => *error.borrow_mut() = Some(String::from_utf8_lossy(payload).into()),
        _ => {}
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    if !peer
        .until(deadline, &mut on_join, &|| {
            joined.get() || error.borrow().is_some()
        })
        .await
    {
        return Err(format!("join: {}", peer.ended().unwrap_or("timeout")));
    }
    if let Some(e) = error.borrow_mut().take() {
        return Err(format!("join refused: {e}"));
    }
    stats.borrow_mut().joined = true;
    if let Some(tx) = ready.take() {
        let _ = tx.send(Ok(()));
    }
    let mut chain = Chain::new(client, 0, "w");
    let mut next_op = 1u64;
    // client_op_id -> send time, in order.
    let in_flight: RefCell<VecDeque<(u64, Instant)>> = RefCell::new(VecDeque::new());
    let mut on_msg = |_: u8, payload: &[u8]| match json_str(payload, b"\"type\":\"") {
        Some(b"ack") => {
            let Some(id) = json_u64(payload, b"\"client_op_id\":") else {
                return;
            };
            let mut in_flight = in_flight.borrow_mut();
            let mut s = stats.borrow_mut();
            while let Some(&(op, sent)) = in_flight.front() {
                if op > id {
                    break;
                }
                in_flight.pop_front();
                if op == id {
                    s.acked += 1;
                    s.latencies_us.push(micros(sent.elapsed()));
                }
            }
        }
        Some(b"error") => {
            let code = json_str(payload, b"\"code\":\"").unwrap_or(b"?");
            let key = format!("error {}", String::from_utf8_lossy(code));
            *stats.borrow_mut().errors.entry(key).or_default() += 1;
        }
        _ => {}
    };
    let b64 = base64::engine::general_purpose::STANDARD;
    loop {
        if stopped(shared) {
            break;
        }
        let now = Instant::now();
        if now >= *next_send {
            // Open loop: a late send catches up, and counts the lateness.
            let update = chain.next_update();
            let op = format!(
                "{{\"type\":\"op\",\"client_op_id\":{next_op},\"update\":\"{}\"}}",
                b64.encode(&update)
            );
            peer.queue(ws::OP_TEXT, op.as_bytes());
            in_flight.borrow_mut().push_back((next_op, *next_send));
            stats.borrow_mut().ops += 1;
            next_op += 1;
            *next_send += PERIOD;
            continue;
        }
        // Wake up at least every 100 ms to notice the stop.
        if peer.step((*next_send).min(now + PERIOD), &mut on_msg).await == Step::Ended {
            break;
        }
    }
    // The last acks.
    if peer.ended().is_none() {
        let deadline = Instant::now() + ACK_GRACE;
        peer.until(deadline, &mut on_msg, &|| in_flight.borrow().is_empty())
            .await;
    }
    let mut s = stats.borrow_mut();
    for (_, sent) in in_flight.borrow_mut().drain(..) {
        s.unacked += 1;
        s.latencies_us.push(micros(sent.elapsed()));
    }
    let ended = peer.ended().map(str::to_string);
    peer.close();
    match ended {
        Some(why) if !stopped(shared) => Err(format!("watcher connection ended: {why}")),
        _ => Ok(()),
    }
}
