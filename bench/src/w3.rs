//! Workload W3, the reconnect storm (native protocol): D documents with K
//! reading clients each connect and sync; every client keeps
//! `last_seen_server_seq` and `epoch` from its stream; all D × K disconnect;
//! one writer per document (connected throughout, so the documents stay
//! loaded) then commits M ops to its document; then all D × K clients
//! reconnect at once with `hello` carrying `last_seen_server_seq` and
//! `epoch`. Measured: the time from the first reconnect until the last
//! client has received its replay up to the document's head, per-client
//! catch-up times, the recovery the server chose (must be `replay`), and
//! every failure.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;

use crate::conn::{Conn, Ended};
use crate::native::{self, Welcome};
use crate::ops::{self, ClientOps};
use crate::procfs::{self, PeakSampler, Pid};
use crate::protocol::{Protocol, native_is_ack, native_is_error, native_seq};
use crate::report::{Latency, W3Row};
use crate::ws::{RecvBuf, WsUrl};

/// Options of a W3 run.
#[derive(Debug, Clone)]
pub struct W3Options {
    pub url: WsUrl,
    pub documents: usize,
    pub clients_per_doc: usize,
    /// Ops each disconnected client misses.
    pub missed_ops: usize,
    /// Ops written (and seen by every client) before the disconnect, so that
    /// `last_seen_server_seq` comes from the op stream.
    pub warm_ops: usize,
    pub concurrency: usize,
    pub server: Option<Pid>,
    pub timeout_secs: f64,
    pub label: String,
}

/// A reading client between its sessions.
#[derive(Debug, Clone)]
struct Reader {
    doc: usize,
    client_id: String,
    epoch: String,
    last_seen: u64,
}

/// The writer of one document, connected throughout.
struct Writer {
    conn: Rc<Conn>,
    rb: RecvBuf,
    ops: ClientOps,
    task: tokio::task::JoinHandle<()>,
}

/// A reader's first session, held open until everyone is synced.
struct Held {
    conn: Rc<Conn>,
    task: tokio::task::JoinHandle<()>,
}

/// One document after the setup.
struct DocSetup {
    writer: Writer,
    readers: Vec<Reader>,
    held: Vec<Held>,
}

fn doc_name(run: u32, d: usize) -> String {
    format!("w3-{run:08x}-{d}")
}

/// Runs W3 and returns its row.
pub async fn run(opts: &W3Options) -> Result<W3Row, String> {
    let k = opts.clients_per_doc;
    if opts.documents == 0 || k == 0 || opts.missed_ops == 0 {
        return Err("W3 needs documents, clients and missed ops".into());
    }
    let run_id = fastrand::u32(..);
    let started = Instant::now();
    let results: Vec<Result<DocSetup, String>> =
        futures_util::stream::iter((0..opts.documents).map(|d| async move {
            setup_document(opts, run_id, d)
                .await
                .map_err(|e| format!("{}: setup: {e}", doc_name(run_id, d)))
        }))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut setups = Vec::with_capacity(opts.documents);
    for r in results {
        setups.push(r?);
    }
    setups.sort_by_key(|s| s.readers[0].doc);
    log::info!(
        "w3: {} documents x {k} clients connected and synced in {:.1} s; disconnecting all",
        opts.documents,
        started.elapsed().as_secs_f64()
    );

    // Everyone leaves at once.
    for s in &setups {
        for h in &s.held {
            h.conn.close(1000);
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut readers = Vec::new();
    let mut writers = Vec::new();
    for s in setups {
        for h in s.held {
            h.task.abort();
        }
        readers.extend(s.readers);
        writers.push(s.writer);
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Each writer commits the ops the readers will miss.
    let first = opts.warm_ops;
    let last = opts.warm_ops + opts.missed_ops;
    let written = join_all(
        writers
            .iter_mut()
            .map(|w| write_ops(w, first, last, opts.timeout_secs)),
    )
    .await;
    let mut heads = Vec::with_capacity(writers.len());
    for (d, head) in written.into_iter().enumerate() {
        let head = head.map_err(|e| format!("{}: writer: {e}", doc_name(run_id, d)))?;
        heads.push(head);
    }
    log::info!(
        "w3: {} ops committed per document while the clients were away; reconnecting all {} clients at once",
        opts.missed_ops,
        readers.len()
    );
    if let Some(server) = opts.server {
        procfs::wait_until_idle(server).await;
    }

    // The storm.
    let overflows0 = procfs::listen_overflows();
    let server_cpu0 = opts.server.and_then(|p| procfs::cpu_seconds(p).ok());
    let sampler = opts
        .server
        .map(|p| PeakSampler::start(p, Duration::from_millis(50)));
    let gen_cpu0 = procfs::cpu_seconds(Pid::This).unwrap_or(0.0);
    let t0 = Instant::now();
    let path_of = |d: usize| Protocol::Native.path(&opts.url.path, &doc_name(run_id, d));
    let timeout = Duration::from_secs_f64(opts.timeout_secs);
    let sessions: Vec<Rc<RefCell<Option<Held>>>> = readers
        .iter()
        .map(|_| Rc::new(RefCell::new(None)))
        .collect();
    let outcomes = join_all(readers.iter().zip(&sessions).map(|(r, slot)| {
        let path = path_of(r.doc);
        let head = heads[r.doc];
        let authority = opts.url.authority.as_str();
        async move {
            match tokio::time::timeout(timeout, rejoin(authority, &path, r, head, t0, slot)).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::failed("timeout", format!("not synced after {timeout:?}")),
            }
        }
    }))
    .await;
    let storm_secs = t0.elapsed().as_secs_f64();
    let gen_cpu = procfs::cpu_seconds(Pid::This).unwrap_or(gen_cpu0) - gen_cpu0;
    let server_cpu = match (opts.server, server_cpu0) {
        (Some(p), Some(c0)) => procfs::cpu_seconds(p).ok().map(|c| c - c0),
        _ => None,
    };
    let peak_kib = sampler.map(PeakSampler::stop);
    let overflows = match (overflows0, procfs::listen_overflows()) {
        (Some(a), Some(b)) => Some(b.saturating_sub(a)),
        _ => None,
    };

    // Clean up: readers, then writers.
    for slot in &sessions {
        if let Some(h) = slot.borrow().as_ref() {
            h.conn.close(1000);
        }
    }
    for w in &writers {
        w.conn.close(1000);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for slot in &sessions {
        if let Some(h) = slot.borrow_mut().take() {
            h.task.abort();
        }
    }
    for w in writers {
        w.task.abort();
    }

    let mut failures: BTreeMap<String, u64> = BTreeMap::new();
    let (mut synced, mut welcomed, mut replay, mut snapshot, mut replayed) = (0, 0, 0, 0, 0u64);
    let mut connect_us = Vec::new();
    let mut welcome_us = Vec::new();
    let mut synced_us = Vec::new();
    let mut last_synced = 0.0f64;
    for o in &outcomes {
        if let Some(t) = o.connected {
            connect_us.push(micros(t));
        }
        if let Some(t) = o.welcomed {
            welcome_us.push(micros(t));
            welcomed += 1;
        }
        match o.replay {
            Some(true) => replay += 1,
            Some(false) => snapshot += 1,
            None => {}
        }
        replayed += o.replayed;
        match (&o.failure, o.synced) {
            (None, Some(t)) => {
                synced += 1;
                synced_us.push(micros(t));
                last_synced = last_synced.max(t.as_secs_f64());
            }
            (Some((class, detail)), _) => {
                let n = failures.entry(class.clone()).or_insert(0);
                *n += 1;
                if *n <= 3 {
                    log::warn!("w3: {detail}");
                }
            }
            (None, None) => *failures.entry("unknown".into()).or_insert(0) += 1,
        }
    }
    let clients = readers.len();
    Ok(W3Row {
        workload: "w3".into(),
        label: opts.label.clone(),
        protocol: "native".into(),
        w3_documents: opts.documents,
        w3_clients_per_doc: k,
        missed_ops: opts.missed_ops,
        reconnecting_clients: clients,
        welcomed,
        synced,
        recovery_replay: replay,
        recovery_snapshot: snapshot,
        replayed_ops: replayed,
        failures,
        all_synced_secs: (synced == clients).then_some(last_synced),
        last_synced_secs: last_synced,
        storm_secs,
        connect: Latency::of_micros(&mut connect_us),
        welcome: Latency::of_micros(&mut welcome_us),
        catch_up: Latency::of_micros(&mut synced_us),
        server_cpu_s: server_cpu,
        server_peak_rss_mib: peak_kib.map(|k| k as f64 / 1024.0),
        gen_cpu_pct: 100.0 * gen_cpu / storm_secs.max(1e-9),
        listen_overflows: overflows,
    })
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// Connects the writer and the K readers of document `d`, lets the writer
/// commit the warm-up ops and waits until every reader has seen them.
async fn setup_document(opts: &W3Options, run_id: u32, d: usize) -> Result<DocSetup, String> {
    let k = opts.clients_per_doc;
    let doc = doc_name(run_id, d);
    let path = Protocol::Native.path(&opts.url.path, &doc);
    // Clients c0..c{k-1} read; c{k} writes.
    let writer_ops = ops::generate(
        Protocol::Native,
        &doc,
        k + 1,
        opts.warm_ops + opts.missed_ops,
    )?
    .pop()
    .ok_or("no writer ops")?;
    let (conn, mut rb) = Conn::open(&opts.url.authority, &path)
        .await
        .map_err(|e| format!("writer connect: {e}"))?;
    let task = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
    let welcome = native::join(&conn, &mut rb, &writer_ops.name, None, None).await?;
    native::catch_up(&conn, &mut rb, &welcome, None).await?;
    let mut writer = Writer {
        conn,
        rb,
        ops: writer_ops,
        task,
    };

    let mut readers = Vec::with_capacity(k);
    let mut held = Vec::with_capacity(k);
    let mut rbs = Vec::with_capacity(k);
    for j in 0..k {
        let client_id = ops::client_name(j);
        let (conn, mut rb) = Conn::open(&opts.url.authority, &path)
            .await
            .map_err(|e| format!("{client_id} connect: {e}"))?;
        let task = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
        let welcome: Welcome = native::join(&conn, &mut rb, &client_id, None, None).await?;
        let caught = native::catch_up(&conn, &mut rb, &welcome, None).await?;
        readers.push(Reader {
            doc: d,
            client_id,
            epoch: welcome.epoch,
            last_seen: caught.head,
        });
        held.push(Held { conn, task });
        rbs.push(rb);
    }

    // Warm-up ops: every reader takes its last_seen from the op stream.
    let head = write_ops(&mut writer, 0, opts.warm_ops, opts.timeout_secs).await?;
    for ((r, h), rb) in readers.iter_mut().zip(&held).zip(&mut rbs) {
        follow(&h.conn, rb, &mut r.last_seen, head).await?;
    }
    Ok(DocSetup {
        writer,
        readers,
        held,
    })
}

/// Reads `op` messages until `last_seen` reaches `head`, checking the seqs.
async fn follow(
    conn: &Conn,
    rb: &mut RecvBuf,
    last_seen: &mut u64,
    head: u64,
) -> Result<(), String> {
    while *last_seen < head {
        let (_, payload) = conn
            .next_message(rb)
            .await
            .map_err(|e| format!("reading the stream: {e}"))?;
        if native_is_error(&payload) {
            return Err(format!(
                "server error: {}",
                String::from_utf8_lossy(&payload)
            ));
        }
        if let Some(seq) = native_seq(&payload) {
            if seq != *last_seen + 1 {
                return Err(format!("seq {seq} after {last_seen}"));
            }
            *last_seen = seq;
        }
    }
    Ok(())
}

/// Sends the writer's ops `first..last` (pipelined) and waits for their
/// acks; returns the seq of the last ack (the document's head).
async fn write_ops(
    w: &mut Writer,
    first: usize,
    last: usize,
    timeout_secs: f64,
) -> Result<u64, String> {
    for k in first..last {
        if !w.conn.send(w.ops.frame(k)) {
            return Err(format!("send failed: {:?}", w.conn.ended()));
        }
    }
    let mut acked = 0;
    let mut head = 0;
    let wait = async {
        while acked < last - first {
            let (_, payload) = w
                .conn
                .next_message(&mut w.rb)
                .await
                .map_err(|e| format!("waiting for acks: {e}"))?;
            if native_is_error(&payload) {
                return Err(format!(
                    "server error: {}",
                    String::from_utf8_lossy(&payload)
                ));
            }
            if native_is_ack(&payload) {
                acked += 1;
                head = native_seq(&payload).unwrap_or(head);
            }
        }
        Ok(())
    };
    tokio::time::timeout(Duration::from_secs_f64(timeout_secs), wait)
        .await
        .map_err(|_| {
            format!(
                "{acked} of {} ops acked after {timeout_secs} s",
                last - first
            )
        })??;
    Ok(head)
}

/// What happened to one reconnecting client (times from the storm's start).
#[derive(Debug, Default)]
struct Outcome {
    connected: Option<Duration>,
    welcomed: Option<Duration>,
    synced: Option<Duration>,
    replay: Option<bool>,
    replayed: u64,
    /// (class, detail)
    failure: Option<(String, String)>,
}

impl Outcome {
    fn failed(class: &str, detail: String) -> Outcome {
        Outcome {
            failure: Some((class.to_string(), detail)),
            ..Outcome::default()
        }
    }
}

/// Reconnects `r` with its resume point and reads the catch-up up to `head`.
async fn rejoin(
    authority: &str,
    path: &str,
    r: &Reader,
    head: u64,
    t0: Instant,
    slot: &RefCell<Option<Held>>,
) -> Outcome {
    let mut out = Outcome::default();
    let who = format!("doc {} client {}", r.doc, r.client_id);
    let (conn, mut rb) = match Conn::open(authority, path).await {
        Ok(c) => c,
        Err(e) => return Outcome::failed("connect", format!("{who}: connect: {e}")),
    };
    out.connected = Some(t0.elapsed());
    let task = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
    *slot.borrow_mut() = Some(Held {
        conn: Rc::clone(&conn),
        task,
    });
    let welcome = match native::join(
        &conn,
        &mut rb,
        &r.client_id,
        Some(r.last_seen),
        Some(&r.epoch),
    )
    .await
    {
        Ok(w) => w,
        Err(e) => {
            out.failure = Some((close_class(&conn), format!("{who}: hello: {e}")));
            return out;
        }
    };
    out.welcomed = Some(t0.elapsed());
    out.replay = Some(welcome.replay);
    if welcome.server_seq != head {
        out.failure = Some((
            "wrong head".into(),
            format!(
                "{who}: welcome at seq {}, head is {head}",
                welcome.server_seq
            ),
        ));
        return out;
    }
    match native::catch_up(&conn, &mut rb, &welcome, Some(r.last_seen)).await {
        Ok(c) => {
            out.replayed = c.replayed;
            if !welcome.replay {
                out.failure = Some((
                    "snapshot instead of replay".into(),
                    format!("{who}: recovery snapshot (last_seen {})", r.last_seen),
                ));
            } else {
                out.synced = Some(c.done_at.duration_since(t0));
            }
        }
        Err(e) => out.failure = Some((close_class(&conn), format!("{who}: catch-up: {e}"))),
    }
    out
}

fn close_class(conn: &Conn) -> String {
    match conn.ended() {
        Ended::ClosedByServer(Some(code)) => format!("close {code}"),
        Ended::ClosedByServer(None) => "close".into(),
        Ended::Failed(_) => "eof".into(),
        Ended::Open | Ended::ClosedByUs => "error".into(),
    }
}
