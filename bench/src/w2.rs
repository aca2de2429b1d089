//! Workload W2, many documents: D documents with K clients each; every
//! client makes one small edit and waits for the edits of the others. The
//! server's RSS is read before (baseline), with all documents loaded, and
//! after every client left and the server had time to unload them.

use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::future::join_all;

use crate::conn::Conn;
use crate::ops::{self, CLIENT_BASE};
use crate::procfs::{self, Pid};
use crate::protocol::{Incoming, Protocol};
use crate::report::W2Row;
use crate::ws::{RecvBuf, WsUrl};
use crate::yupdate;

/// Options of a W2 run.
#[derive(Debug, Clone)]
pub struct W2Options {
    pub url: WsUrl,
    pub protocol: Protocol,
    pub documents: usize,
    pub clients_per_doc: usize,
    pub server: Pid,
    /// Documents being set up at the same time.
    pub concurrency: usize,
    /// Wait after everything is synced before reading the loaded RSS.
    pub settle_secs: f64,
    /// `None`: the server does not unload documents; report n/a.
    pub unload_wait_secs: Option<f64>,
    /// Do not conclude before this long after closing (the server's idle delay).
    pub unload_min_secs: f64,
    pub sync_timeout_secs: f64,
    pub label: String,
}

/// A client kept connected while the documents are loaded.
struct Held {
    conn: Rc<Conn>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Runs W2 and returns its row.
pub async fn run(opts: &W2Options) -> Result<W2Row, String> {
    if opts.clients_per_doc < 2 {
        return Err("W2 needs at least 2 clients per document".into());
    }
    let rss = || procfs::rss_kib(opts.server).map_err(|e| format!("server RSS: {e}"));
    procfs::wait_until_idle(opts.server).await;
    let baseline = rss()?;
    let run_id = fastrand::u32(..);

    let started = Instant::now();
    let results: Vec<Result<Vec<Held>, String>> =
        futures_util::stream::iter((0..opts.documents).map(|d| {
            let doc = format!("w2-{run_id:08x}-{d}");
            async move { sync_document(opts, &doc).await }
        }))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let connect_secs = started.elapsed().as_secs_f64();
    let mut held = Vec::new();
    let mut failed = 0usize;
    for r in results {
        match r {
            Ok(h) => held.extend(h),
            Err(e) => {
                failed += 1;
                if failed <= 5 {
                    log::warn!("w2: {e}");
                }
            }
        }
    }
    let synced = opts.documents - failed;
    log::info!("w2: {synced} documents synced ({failed} failed) in {connect_secs:.1} s; settling");
    tokio::time::sleep(Duration::from_secs_f64(opts.settle_secs)).await;
    let loaded = rss()?;

    for h in &held {
        h.conn.close(1000);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for h in held {
        for t in h.tasks {
            t.abort();
        }
    }

    let (after, waited) = match opts.unload_wait_secs {
        Some(max) => {
            let (kib, secs) = wait_for_unload(opts.server, opts.unload_min_secs, max).await?;
            (Some(kib), Some(secs))
        }
        None => (None, None),
    };
    let docs = opts.documents.max(1) as f64;
    let mib = |kib: u64| kib as f64 / 1024.0;
    let per_doc = |kib: u64| (kib as f64 - baseline as f64) / docs;
    Ok(W2Row {
        workload: "w2".into(),
        label: opts.label.clone(),
        protocol: format!("{:?}", opts.protocol).to_lowercase(),
        documents: opts.documents,
        clients_per_doc: opts.clients_per_doc,
        synced_documents: synced,
        failed_documents: failed,
        connect_secs,
        rss_baseline_mib: mib(baseline),
        rss_loaded_mib: mib(loaded),
        per_loaded_doc_kib: per_doc(loaded),
        rss_after_unload_mib: after.map(mib),
        per_unloaded_doc_kib: after.map(per_doc),
        unload_wait_secs: waited,
    })
}

/// Polls the server's RSS after the clients left: at least `min_secs`, then
/// until it stayed within 1 % for 3 s, at most `max_secs`. Returns the last
/// reading and the time waited.
async fn wait_for_unload(server: Pid, min_secs: f64, max_secs: f64) -> Result<(u64, f64), String> {
    let started = Instant::now();
    let mut last = procfs::rss_kib(server).map_err(|e| format!("server RSS: {e}"))?;
    let mut stable_since = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = procfs::rss_kib(server).map_err(|e| format!("server RSS: {e}"))?;
        if now.abs_diff(last) * 100 > last {
            stable_since = Instant::now();
        }
        last = now;
        let waited = started.elapsed().as_secs_f64();
        let stable = stable_since.elapsed() >= Duration::from_secs(3);
        if waited >= max_secs || (waited >= min_secs && stable) {
            return Ok((last, waited));
        }
    }
}

/// Connects every client of `doc`, lets each send one edit, and returns
/// once every client has received the edits of all others.
async fn sync_document(opts: &W2Options, doc: &str) -> Result<Vec<Held>, String> {
    let k = opts.clients_per_doc;
    let ops = ops::generate(opts.protocol, doc, k, 1)?;
    let path = opts.protocol.path(&opts.url.path, doc);
    let mut conns = Vec::with_capacity(k);
    for (i, client_ops) in ops.iter().enumerate() {
        let (conn, mut rb) = Conn::open(&opts.url.authority, &path)
            .await
            .map_err(|e| format!("{doc} client {i}: {e}"))?;
        let writer = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
        opts.protocol
            .handshake(&conn, &mut rb, doc, &client_ops.name)
            .await
            .map_err(|e| format!("{doc} client {i}: handshake: {e}"))?;
        conns.push((conn, rb, writer));
    }
    for (i, (conn, _, _)) in conns.iter().enumerate() {
        conn.send(ops[i].frame(0));
    }
    let timeout = Duration::from_secs_f64(opts.sync_timeout_secs);
    let waits = conns
        .into_iter()
        .enumerate()
        .map(|(i, (conn, rb, writer))| {
            let protocol = opts.protocol;
            async move {
                let rb = tokio::time::timeout(timeout, wait_synced(protocol, &conn, rb, i, k))
                    .await
                    .map_err(|_| format!("{doc} client {i}: not synced after {timeout:?}"))??;
                // Keep reading (answers pings) while the documents stay loaded.
                let reader = tokio::task::spawn_local(drain_forever(Rc::clone(&conn), rb));
                Ok::<_, String>(Held {
                    conn,
                    tasks: vec![writer, reader],
                })
            }
        });
    join_all(waits).await.into_iter().collect()
}

/// Reads until client `me` saw the edits of all other `k - 1` clients (and,
/// natively, the ack of its own).
async fn wait_synced(
    protocol: Protocol,
    conn: &Conn,
    mut rb: RecvBuf,
    me: usize,
    k: usize,
) -> Result<RecvBuf, String> {
    let mut seen = vec![false; k];
    seen[me] = true;
    let mut acked = !protocol.has_acks();
    let mut error = None;
    while !(acked && seen.iter().all(|&s| s)) {
        if !conn.fill(&mut rb).await {
            return Err(format!("client {me}: connection ended: {:?}", conn.ended()));
        }
        let open = conn.dispatch(&mut rb, &mut |opcode, payload| {
            match protocol.decode(opcode, payload) {
                Ok(Incoming::NativeOp { client_id, .. }) => {
                    if let Some(c) = ops::parse_client_name(client_id).filter(|&c| c < k) {
                        seen[c] = true;
                    }
                }
                Ok(Incoming::Update { update, .. }) => {
                    // Malformed updates just do not count.
                    let _ = yupdate::for_each_client_range(update, |r| {
                        let c = r.client.wrapping_sub(CLIENT_BASE) as usize;
                        if r.client >= CLIENT_BASE && c < k && r.len > 0 {
                            seen[c] = true;
                        }
                    });
                }
                Ok(Incoming::Ack(_)) => acked = true,
                Ok(Incoming::Error(e)) => error = Some(String::from_utf8_lossy(e).into_owned()),
                _ => {}
            }
        });
        if let Some(e) = error.take() {
            return Err(format!("client {me}: server error: {e}"));
        }
        if !open {
            return Err(format!("client {me}: connection ended: {:?}", conn.ended()));
        }
    }
    Ok(rb)
}

/// Reads and discards until the connection ends.
async fn drain_forever(conn: Rc<Conn>, mut rb: RecvBuf) {
    while conn.fill(&mut rb).await && conn.dispatch(&mut rb, &mut |_, _| {}) {}
}
