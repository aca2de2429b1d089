//! Workload W1, the hot document: N clients on one document all send
//! single-character inserts at an offered total rate; every client receives
//! everyone else's ops.
//!
//! Per rate step: a fresh document, connect and handshake all clients, then
//! one scheduler sends op `g` at `t0 + g / rate` from client `g % N`
//! (round-robin, open loop: a late generator catches up, and its lateness
//! counts as latency), then waits for in-flight deliveries. Sampled receivers
//! decode every message and record send → receipt latency per op; the others
//! only count frames (and, natively, acks).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use crate::conn::{Conn, Ended};
use crate::native;
use crate::ops::{self, CLIENT_BASE, ClientOps};
use crate::procfs::{self, PeakSampler, Pid};
use crate::protocol::{self, Incoming, Protocol};
use crate::report::{DeliveryCheck, Latency, Resync, W1Row};
use crate::ws::{RecvBuf, WsUrl};
use crate::yupdate;

/// Options of one W1 run (all rates).
#[derive(Debug, Clone)]
pub struct W1Options {
    pub url: WsUrl,
    pub protocol: Protocol,
    pub clients: usize,
    pub seconds: f64,
    pub doc_prefix: String,
    pub server: Option<Pid>,
    /// Receivers that decode and measure latency; `None`: all up to 5,000
    /// ops/s, 5 above.
    pub sample_receivers: Option<usize>,
    pub drain_secs: f64,
    pub label: String,
    /// The `workload` of the rows (`w1`, `w5`, `overload`).
    pub workload: String,
    /// Natively: reconnect the clients the server closed, with their
    /// `last_seen_server_seq`, and check that they catch up.
    pub resync_closed: bool,
}

/// Nanoseconds on a clock shared by all tasks of a step.
struct Clock(Instant);

impl Clock {
    fn now_ns(&self) -> u64 {
        self.0.elapsed().as_nanos() as u64
    }
}

/// Not sent (yet).
const UNSENT: u64 = u64::MAX;

/// What all tasks of a step share.
struct Step {
    protocol: Protocol,
    clients: usize,
    ops_per_client: usize,
    ops: Vec<ClientOps>,
    clock: Clock,
    /// Send time of op (client, seq) at `client * ops_per_client + seq`.
    send_ns: Vec<Cell<u64>>,
}

impl Step {
    fn op_index(&self, client: usize, seq: usize) -> usize {
        client * self.ops_per_client + seq
    }
}

/// Counters of one receiving client.
#[derive(Default)]
struct RecvStats {
    frames: u64,
    acks: u64,
    last_ack_ns: u64,
    errors: u64,
    /// Distinct ops of other clients received (sampled receivers).
    ops: u64,
    duplicates: u64,
    undecodable: u64,
    latency_us: Vec<u32>,
    ack_latency_us: Vec<u32>,
    /// Bit per op index: received already.
    seen: Vec<u64>,
    /// Native: `op` frames received (counting receivers).
    op_frames: u64,
    /// Native: the last `server_seq` of the op/ack stream, and how often
    /// the stream was not contiguous.
    last_seq: u64,
    seq_gaps: u64,
}

impl RecvStats {
    fn track_seq(&mut self, seq: u64) {
        if seq != self.last_seq + 1 {
            self.seq_gaps += 1;
            if self.seq_gaps <= 3 {
                log::warn!("seq stream not contiguous: {seq} after {}", self.last_seq);
            }
        }
        self.last_seq = self.last_seq.max(seq);
    }
}

impl RecvStats {
    fn reset(&mut self) {
        let seen = std::mem::take(&mut self.seen);
        *self = RecvStats {
            seen,
            ..RecvStats::default()
        };
        self.seen.fill(0);
    }
}

/// One connected client.
struct Client {
    conn: Rc<Conn>,
    stats: Rc<RefCell<RecvStats>>,
    sampled: bool,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Client {
    /// Ops of the others received (distinct when sampled; native frames
    /// otherwise); `None` when this receiver only counts frames of a
    /// protocol where frames are not ops.
    fn received(&self, protocol: Protocol) -> Option<u64> {
        let st = self.stats.borrow();
        if self.sampled {
            Some(st.ops)
        } else if protocol == Protocol::Native {
            Some(st.op_frames)
        } else {
            None
        }
    }
}

/// Runs every rate, handing each finished step to `on_row`.
pub async fn run(
    opts: &W1Options,
    rates: &[u64],
    mut on_row: impl FnMut(W1Row),
) -> Result<(), String> {
    for &rate in rates {
        if let Some(server) = opts.server {
            procfs::wait_until_idle(server).await;
        }
        let row = run_step(opts, rate).await?;
        on_row(row);
    }
    Ok(())
}

async fn run_step(opts: &W1Options, rate: u64) -> Result<W1Row, String> {
    if rate == 0 || opts.clients < 2 {
        return Err("W1 needs a positive rate and at least 2 clients".into());
    }
    let n = opts.clients;
    let doc = format!("{}-{rate}-{:08x}", opts.doc_prefix, fastrand::u32(..));
    let total_wanted = (rate as f64 * opts.seconds).round().max(n as f64) as usize;
    let ops_per_client = total_wanted.div_ceil(n);
    let total = ops_per_client * n;

    let started = Instant::now();
    let ops = ops::generate(opts.protocol, &doc, n, ops_per_client)?;
    log::info!(
        "w1 {rate}/s: generated {total} updates for {n} clients in {:.1} s (doc {doc})",
        started.elapsed().as_secs_f64()
    );
    let step = Rc::new(Step {
        protocol: opts.protocol,
        clients: n,
        ops_per_client,
        ops,
        clock: Clock(Instant::now()),
        send_ns: (0..total).map(|_| Cell::new(UNSENT)).collect(),
    });
    let sampled = opts
        .sample_receivers
        .unwrap_or(if rate <= 5000 { n } else { 5 })
        .min(n);

    let clients = connect_all(opts, &step, &doc, sampled).await?;
    // Let handshake stragglers (late sync replies, awareness) pass, then
    // start counting from zero.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for c in &clients {
        c.stats.borrow_mut().reset();
    }

    let server_cpu0 = opts.server.and_then(|p| procfs::cpu_seconds(p).ok());
    let hwm_reset = opts.server.is_some_and(procfs::reset_peak);
    let sampler = opts
        .server
        .map(|p| PeakSampler::start(p, Duration::from_millis(100)));
    let gen_cpu0 = procfs::cpu_seconds(Pid::This).unwrap_or(0.0);
    let wall0 = Instant::now();

    let sched = schedule(&step, &clients, rate, total).await;

    let expected: Vec<u64> = (0..n).map(|i| sched.sent - sched.sent_by[i]).collect();
    let drain_started = Instant::now();
    drain(opts, &step, &clients, &expected, &sched.sent_by).await;
    let drain_secs = drain_started.elapsed().as_secs_f64();
    let rss_end_kib = opts.server.and_then(|p| procfs::rss_kib(p).ok());

    let wall = wall0.elapsed().as_secs_f64();
    let gen_cpu = procfs::cpu_seconds(Pid::This).unwrap_or(gen_cpu0) - gen_cpu0;
    let server_cpu = match (opts.server, server_cpu0) {
        (Some(p), Some(c0)) => procfs::cpu_seconds(p).ok().map(|c| c - c0),
        _ => None,
    };
    let sampled_peak = sampler.map(PeakSampler::stop);
    let peak_kib = match opts.server {
        Some(p) if hwm_reset => procfs::hwm_kib(p).ok().max(sampled_peak),
        _ => sampled_peak,
    };

    let mut row = summarize(
        opts,
        &step,
        &clients,
        rate,
        &sched,
        &expected,
        StepMeasures {
            wall,
            gen_cpu,
            server_cpu,
            peak_kib,
            rss_end_kib,
            drain_secs,
        },
    );
    if opts.resync_closed && opts.protocol == Protocol::Native {
        row.resync = Some(resync_closed(opts, &step, &clients, &doc).await);
    }
    shut_down(clients).await;
    Ok(row)
}

/// Connects and handshakes all clients concurrently, then starts their
/// receive and write tasks.
async fn connect_all(
    opts: &W1Options,
    step: &Rc<Step>,
    doc: &str,
    sampled: usize,
) -> Result<Vec<Client>, String> {
    let path = opts.protocol.path(&opts.url.path, doc);
    let connecting = (0..opts.clients).map(|i| {
        let path = path.clone();
        async move {
            let (conn, mut rb) = Conn::open(&opts.url.authority, &path)
                .await
                .map_err(|e| format!("client {i}: connect {path}: {e}"))?;
            let writer = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
            opts.protocol
                .handshake(&conn, &mut rb, doc, &step.ops[i].name)
                .await
                .map_err(|e| format!("client {i}: handshake: {e}"))?;
            Ok::<_, String>((conn, rb, writer))
        }
    });
    let mut clients = Vec::with_capacity(opts.clients);
    for (i, result) in join_all(connecting).await.into_iter().enumerate() {
        let (conn, rb, writer) = result?;
        let is_sampled = i < sampled;
        let stats = Rc::new(RefCell::new(RecvStats {
            seen: if is_sampled {
                vec![0; step.send_ns.len().div_ceil(64)]
            } else {
                Vec::new()
            },
            ..RecvStats::default()
        }));
        let reader = tokio::task::spawn_local(receive_loop(
            Rc::clone(step),
            i,
            Rc::clone(&conn),
            rb,
            Rc::clone(&stats),
            is_sampled,
        ));
        clients.push(Client {
            conn,
            stats,
            sampled: is_sampled,
            tasks: vec![writer, reader],
        });
    }
    Ok(clients)
}

/// Receives until the connection ends. Sampled receivers decode every
/// message; the others count frames (and acks where the protocol has them).
async fn receive_loop(
    step: Rc<Step>,
    me: usize,
    conn: Rc<Conn>,
    mut rb: RecvBuf,
    stats: Rc<RefCell<RecvStats>>,
    sampled: bool,
) {
    loop {
        if !conn.fill(&mut rb).await {
            return;
        }
        // One timestamp per read: every message in it arrived by now.
        let now = step.clock.now_ns();
        let mut st = stats.borrow_mut();
        let st = &mut *st;
        let open = conn.dispatch(&mut rb, &mut |opcode, payload| {
            if sampled {
                on_sampled_message(&step, me, st, opcode, payload, now);
            } else {
                on_counted_message(step.protocol, st, opcode, payload, now);
            }
        });
        if !open {
            return;
        }
    }
}

/// Counting only: frames, acks, errors.
fn on_counted_message(
    protocol: Protocol,
    st: &mut RecvStats,
    opcode: u8,
    payload: &[u8],
    now: u64,
) {
    st.frames += 1;
    match protocol {
        Protocol::Native => {
            let is_ack = protocol::native_is_ack(payload);
            if is_ack {
                st.acks += 1;
                st.last_ack_ns = now;
            } else if protocol::native_is_error(payload) {
                note_error(st, payload);
            }
            if let Some(seq) = protocol::native_seq(payload) {
                if !is_ack {
                    st.op_frames += 1;
                }
                st.track_seq(seq);
            }
        }
        Protocol::Hocuspocus => match protocol.decode(opcode, payload) {
            Ok(Incoming::Ack(_)) => {
                st.acks += 1;
                st.last_ack_ns = now;
            }
            Ok(Incoming::Error(why)) => note_error(st, why),
            Ok(_) => {}
            Err(_) => st.undecodable += 1,
        },
        Protocol::Yjs | Protocol::Raw => {}
    }
}

fn note_error(st: &mut RecvStats, what: &[u8]) {
    st.errors += 1;
    if st.errors <= 3 {
        log::warn!("server error: {}", String::from_utf8_lossy(what));
    }
}

/// Full decoding: identifies every op received and records its latency.
fn on_sampled_message(
    step: &Step,
    me: usize,
    st: &mut RecvStats,
    opcode: u8,
    payload: &[u8],
    now: u64,
) {
    st.frames += 1;
    if step.protocol == Protocol::Native
        && let Some(seq) = protocol::native_seq(payload)
    {
        st.track_seq(seq);
    }
    match step.protocol.decode(opcode, payload) {
        Ok(Incoming::NativeOp {
            client_id,
            client_op_id,
        }) => match ops::parse_client_name(client_id) {
            Some(c) if c < step.clients && c != me && client_op_id >= 1 => {
                record_op(step, st, c, client_op_id as usize - 1, now);
            }
            _ => st.undecodable += 1,
        },
        Ok(Incoming::Update { update, .. }) => {
            let parsed = yupdate::for_each_client_range(update, |r| {
                let Some(c) = r.client.checked_sub(CLIENT_BASE).map(|c| c as usize) else {
                    return;
                };
                if c >= step.clients || c == me {
                    return; // not ours, or our own op echoed back
                }
                for seq in step.ops[c].seqs_in(r.clock, r.len) {
                    record_op(step, st, c, seq, now);
                }
            });
            if parsed.is_err() {
                st.undecodable += 1;
            }
        }
        Ok(Incoming::Ack(id)) => {
            // Without an id (Hocuspocus SyncStatus), acks come in send order.
            let seq = match id {
                Some(id) => usize::try_from(id).ok().and_then(|id| id.checked_sub(1)),
                None => usize::try_from(st.acks).ok(),
            };
            st.acks += 1;
            st.last_ack_ns = now;
            if let Some(seq) = seq.filter(|&s| s < step.ops_per_client) {
                let sent = step.send_ns[step.op_index(me, seq)].get();
                if sent != UNSENT {
                    st.ack_latency_us.push(micros(now.saturating_sub(sent)));
                }
            }
        }
        Ok(Incoming::Error(why)) => note_error(st, why),
        Ok(_) => {}
        Err(_) => st.undecodable += 1,
    }
}

fn record_op(step: &Step, st: &mut RecvStats, client: usize, seq: usize, now: u64) {
    if seq >= step.ops_per_client {
        st.undecodable += 1;
        return;
    }
    let i = step.op_index(client, seq);
    let (word, bit) = (i / 64, 1u64 << (i % 64));
    if st.seen[word] & bit != 0 {
        st.duplicates += 1;
        return;
    }
    st.seen[word] |= bit;
    st.ops += 1;
    let sent = step.send_ns[i].get();
    if sent != UNSENT {
        st.latency_us.push(micros(now.saturating_sub(sent)));
    }
}

fn micros(ns: u64) -> u32 {
    u32::try_from(ns / 1000).unwrap_or(u32::MAX)
}

/// What the scheduler did.
struct Schedule {
    sent: u64,
    sent_by: Vec<u64>,
    send_failures: u64,
    /// From the first send until one interval after the last.
    window_secs: f64,
    t0_ns: u64,
}

/// Sends op `g` at `t0 + g / rate` from client `g % n`.
async fn schedule(step: &Step, clients: &[Client], rate: u64, total: usize) -> Schedule {
    let n = step.clients;
    let interval_ns = 1e9 / rate as f64;
    let t0 = tokio::time::Instant::now();
    let t0_ns = step.clock.now_ns();
    let mut sent_by = vec![0u64; n];
    let mut sent = 0u64;
    let mut failures = 0u64;
    let mut g = 0usize;
    let mut last_ns = t0_ns;
    while g < total {
        let elapsed = step.clock.now_ns() - t0_ns;
        let due = ((elapsed as f64 / interval_ns) as usize + 1).min(total);
        while g < due {
            let (c, seq) = (g % n, g / n);
            let now = step.clock.now_ns();
            if clients[c].conn.send(step.ops[c].frame(seq)) {
                step.send_ns[step.op_index(c, seq)].set(now);
                sent += 1;
                sent_by[c] += 1;
                last_ns = now;
            } else {
                failures += 1;
            }
            g += 1;
        }
        if g < total {
            let next = Duration::from_nanos((g as f64 * interval_ns) as u64);
            tokio::time::sleep_until(t0 + next).await;
        }
    }
    let window_ns = (last_ns - t0_ns) as f64 + interval_ns;
    Schedule {
        sent,
        sent_by,
        send_failures: failures,
        window_secs: window_ns / 1e9,
        t0_ns,
    }
}

/// Waits until every checked receiver has every op it should get or was
/// closed, and every open sender has its acks (where there are acks), at
/// most `drain_secs`.
async fn drain(
    opts: &W1Options,
    step: &Step,
    clients: &[Client],
    expected: &[u64],
    sent_by: &[u64],
) {
    let deadline = Instant::now() + Duration::from_secs_f64(opts.drain_secs);
    let has_acks = step.protocol.has_acks();
    loop {
        let done = clients.iter().enumerate().all(|(i, c)| {
            if !c.conn.is_open() {
                return true;
            }
            let delivered = c
                .received(step.protocol)
                .is_none_or(|got| got >= expected[i]);
            let acked = !has_acks || c.stats.borrow().acks >= sent_by[i];
            delivered && acked
        });
        if done || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Reconnects every client the server closed during the step, resuming at
/// the last seq it received, and checks that it catches up to the head.
async fn resync_closed(opts: &W1Options, step: &Step, clients: &[Client], doc: &str) -> Resync {
    let path = opts.protocol.path(&opts.url.path, doc);
    let closed: Vec<(usize, u64)> = clients
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.conn.ended(), Ended::ClosedByServer(_) | Ended::Failed(_)))
        .map(|(i, c)| (i, c.stats.borrow().last_seq))
        .collect();
    let attempts = closed.iter().map(|&(i, last_seen)| {
        let path = path.clone();
        let name = step.ops[i].name.clone();
        async move {
            let started = Instant::now();
            let attempt = async {
                let (conn, mut rb) = Conn::open(&opts.url.authority, &path)
                    .await
                    .map_err(|e| format!("connect: {e}"))?;
                let writer = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
                let result = async {
                    let welcome =
                        native::join(&conn, &mut rb, &name, Some(last_seen), None).await?;
                    let caught =
                        native::catch_up(&conn, &mut rb, &welcome, Some(last_seen)).await?;
                    if caught.head != welcome.server_seq {
                        return Err(format!(
                            "caught up to {} instead of {}",
                            caught.head, welcome.server_seq
                        ));
                    }
                    Ok(welcome.replay)
                }
                .await;
                conn.close(1000);
                writer.abort();
                result
            };
            let result = tokio::time::timeout(Duration::from_secs(30), attempt)
                .await
                .unwrap_or_else(|_| Err("timeout".into()));
            if let Err(e) = &result {
                log::warn!("resync of client {i} (last seen {last_seen}): {e}");
            }
            (result, started.elapsed())
        }
    });
    let mut r = Resync {
        attempted: closed.len(),
        ..Resync::default()
    };
    for (result, took) in join_all(attempts).await {
        match result {
            Ok(replay) => {
                r.synced += 1;
                if replay {
                    r.by_replay += 1;
                } else {
                    r.by_snapshot += 1;
                }
                r.max_ms = r.max_ms.max(took.as_secs_f64() * 1000.0);
            }
            Err(_) => r.failed += 1,
        }
    }
    r
}

/// What was measured around a step.
struct StepMeasures {
    wall: f64,
    gen_cpu: f64,
    server_cpu: Option<f64>,
    peak_kib: Option<u64>,
    rss_end_kib: Option<u64>,
    drain_secs: f64,
}

fn summarize(
    opts: &W1Options,
    step: &Step,
    clients: &[Client],
    rate: u64,
    sched: &Schedule,
    expected: &[u64],
    m: StepMeasures,
) -> W1Row {
    let mut latency = Vec::new();
    let mut ack_latency = Vec::new();
    let (mut got, mut want) = (0u64, 0u64);
    let (mut frames, mut acks, mut errors, mut undecodable, mut dups) = (0, 0, 0, 0, 0);
    let mut last_ack_ns = sched.t0_ns;
    let mut closes = BTreeMap::new();
    let mut check = DeliveryCheck {
        drain_secs: m.drain_secs,
        ..DeliveryCheck::default()
    };
    for (i, c) in clients.iter().enumerate() {
        if let Some(got) = c.received(step.protocol) {
            let st = c.stats.borrow();
            check.receivers += 1;
            if st.seq_gaps > 0 {
                check.seq_gap_receivers += 1;
            }
            if got >= expected[i] && st.seq_gaps == 0 {
                check.complete += 1;
            } else if c.conn.is_open() {
                check.short_open += 1;
                check.missing_ops += expected[i].saturating_sub(got);
            } else {
                check.closed += 1;
            }
        }
        let mut st = c.stats.borrow_mut();
        frames += st.frames;
        acks += st.acks;
        errors += st.errors;
        undecodable += st.undecodable;
        dups += st.duplicates;
        last_ack_ns = last_ack_ns.max(st.last_ack_ns);
        if c.sampled {
            got += st.ops;
            want += expected[i];
            latency.append(&mut st.latency_us);
            ack_latency.append(&mut st.ack_latency_us);
        }
        let why = match c.conn.ended() {
            Ended::Open | Ended::ClosedByUs => continue,
            Ended::ClosedByServer(Some(code)) => code.to_string(),
            Ended::ClosedByServer(None) => "close".to_string(),
            Ended::Failed(e) => {
                log::warn!("client {i}: {e}");
                "eof".to_string()
            }
        };
        *closes.entry(why).or_insert(0) += 1;
    }
    if undecodable > 0 || dups > 0 {
        log::warn!("w1 {rate}/s: {undecodable} undecodable messages, {dups} duplicate ops");
    }
    let has_acks = step.protocol.has_acks();
    let ack_window = ((last_ack_ns - sched.t0_ns) as f64 / 1e9).max(sched.window_secs);
    let sampled = clients.iter().filter(|c| c.sampled).count();
    W1Row {
        workload: opts.workload.clone(),
        label: opts.label.clone(),
        protocol: format!("{:?}", step.protocol).to_lowercase(),
        clients: step.clients,
        seconds: opts.seconds,
        offered_ops_s: rate as f64,
        sent_ops: sched.sent,
        achieved_ops_s: sched.sent as f64 / sched.window_secs,
        acked_ops_s: has_acks.then(|| acks as f64 / ack_window),
        acked_pct: has_acks.then(|| pct(acks, sched.sent)),
        delivered_pct: pct(got, want),
        sampled_receivers: sampled,
        latency: Latency::of_micros(&mut latency),
        ack_latency: Latency::of_micros(&mut ack_latency),
        frames_in_s: frames as f64 / m.wall,
        server_cpu_s: m.server_cpu,
        server_peak_rss_mib: m.peak_kib.map(|k| k as f64 / 1024.0),
        gen_cpu_pct: 100.0 * m.gen_cpu / m.wall,
        errors,
        closes,
        send_failures: sched.send_failures,
        server_rss_end_mib: m.rss_end_kib.map(|k| k as f64 / 1024.0),
        delivery: Some(check),
        resync: None,
    }
}

fn pct(a: u64, b: u64) -> f64 {
    if b == 0 {
        100.0
    } else {
        100.0 * a as f64 / b as f64
    }
}

/// Closes every connection and stops its tasks.
async fn shut_down(clients: Vec<Client>) {
    for c in &clients {
        c.conn.close(1000);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    for c in clients {
        for t in c.tasks {
            t.abort();
        }
    }
}
