//! Workload W4, cold load (native protocol), in two phases run by separate
//! invocations so that the server can be restarted in between:
//!
//! - `build`: the first N patches of an editing trace, one Yjs update each,
//!   sent by one client as fast as the server accepts them (pipelined, at
//!   most `window` unacknowledged) into a fresh document; done when every op
//!   is acked (committed).
//! - `load`: against a freshly started server (the document is not in
//!   memory): the time from the WebSocket connect to the end of the
//!   catch-up (`welcome` plus `snapshot`, for a client without
//!   `last_seen_server_seq`): "connect to synced". The snapshot is then
//!   decoded and its text compared with the trace's text after N patches.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::conn::Conn;
use crate::native;
use crate::ops::CLIENT_BASE;
use crate::protocol::{Protocol, native_is_ack, native_is_error, native_seq};
use crate::report::{W4BuildRow, W4LoadRow};
use crate::trace;
use crate::ws::WsUrl;

/// Options shared by both phases.
#[derive(Debug, Clone)]
pub struct W4Options {
    pub url: WsUrl,
    pub trace: PathBuf,
    pub ops: usize,
    pub doc: String,
    pub label: String,
}

fn patches(opts: &W4Options) -> Result<Vec<trace::Patch>, String> {
    let started = Instant::now();
    let t = trace::load(&opts.trace)?;
    if t.patches.len() < opts.ops {
        return Err(format!(
            "the trace has {} patches, fewer than {}",
            t.patches.len(),
            opts.ops
        ));
    }
    let all = t.patches.len();
    let mut patches = t.patches;
    if all == opts.ops && trace::expected_text(&patches)? != t.end_content {
        return Err("the trace's patches do not yield its endContent".into());
    }
    patches.truncate(opts.ops);
    log::info!(
        "w4: {} of {all} patches read in {:.1} s",
        patches.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(patches)
}

/// Phase `build`: writes patches `from..ops` of the trace into the
/// document, which must hold exactly the first `from` (0: a fresh document).
pub async fn build(opts: &W4Options, window: usize, from: usize) -> Result<W4BuildRow, String> {
    if from >= opts.ops {
        return Err(format!("--from {from} must be below --ops {}", opts.ops));
    }
    let patches = patches(opts)?;
    let started = Instant::now();
    let (updates, text) = trace::updates(&patches, CLIENT_BASE + 4242)?;
    if text != trace::expected_text(&patches)? {
        return Err("yrs and the plain-text model disagree on the trace".into());
    }
    let mut frames: Vec<Vec<u8>> = Vec::with_capacity(updates.len() - from);
    let mut update_bytes = 0;
    for (k, u) in updates.iter().enumerate().skip(from) {
        update_bytes += u.len();
        let mut f = Vec::with_capacity(u.len() * 2 + 64);
        Protocol::Native.encode_op_frame(&mut f, &opts.doc, k as u64 + 1, u);
        frames.push(f);
    }
    drop(updates);
    log::info!(
        "w4 build: {} updates ({update_bytes} bytes) generated in {:.1} s; text {} characters",
        frames.len(),
        started.elapsed().as_secs_f64(),
        text.chars().count()
    );

    let path = Protocol::Native.path(&opts.url.path, &opts.doc);
    let (conn, mut rb) = Conn::open(&opts.url.authority, &path)
        .await
        .map_err(|e| format!("connect {path}: {e}"))?;
    let writer = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
    let welcome = native::join(&conn, &mut rb, "w4-writer", None, None).await?;
    if welcome.server_seq != from as u64 {
        return Err(format!(
            "document {} has head {}, expected {from}; use a fresh --doc or database",
            opts.doc, welcome.server_seq
        ));
    }
    if from > 0 && welcome.last_client_op_id != Some(from as u64) {
        return Err(format!(
            "the writer's last accepted op is {:?}, expected {from}",
            welcome.last_client_op_id
        ));
    }
    native::catch_up(&conn, &mut rb, &welcome, None).await?;

    let n = frames.len();
    let t0 = Instant::now();
    let (mut sent, mut acked, mut errors, mut head) = (0usize, 0usize, 0u64, 0u64);
    let mut first_error = None;
    while acked < n {
        while sent < n && sent - acked < window.max(1) {
            if !conn.send(&frames[sent]) {
                return Err(format!("send failed: {:?}", conn.ended()));
            }
            sent += 1;
        }
        if !conn.fill(&mut rb).await {
            break;
        }
        let open = conn.dispatch(&mut rb, &mut |_, payload| {
            if native_is_ack(payload) {
                acked += 1;
                head = native_seq(payload).unwrap_or(head);
            } else if native_is_error(payload) {
                errors += 1;
                first_error.get_or_insert_with(|| String::from_utf8_lossy(payload).into_owned());
            }
        });
        if !open || errors > 0 {
            break;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    conn.close(1000);
    tokio::time::sleep(Duration::from_millis(100)).await;
    writer.abort();
    if let Some(e) = first_error {
        return Err(format!("server error after {acked} acks: {e}"));
    }
    if acked < n {
        return Err(format!(
            "connection ended after {acked} of {n} acks: {:?}",
            conn.ended()
        ));
    }
    Ok(W4BuildRow {
        workload: "w4-build".into(),
        label: opts.label.clone(),
        doc: opts.doc.clone(),
        from,
        trace_ops: n,
        head,
        update_bytes,
        window,
        build_secs: secs,
        build_ops_s: n as f64 / secs,
        text_chars: text.chars().count(),
    })
}

/// Phase `load`: one cold load, timed from the connect to the snapshot.
pub async fn load(
    opts: &W4Options,
    run: usize,
    server_log: Option<&PathBuf>,
) -> Result<W4LoadRow, String> {
    let patches = patches(opts)?;
    let expected = trace::expected_text(&patches)?;
    let path = Protocol::Native.path(&opts.url.path, &opts.doc);
    let client_id = format!("w4-reader-{:08x}", fastrand::u32(..));

    let t0 = Instant::now();
    let (conn, mut rb) = Conn::open(&opts.url.authority, &path)
        .await
        .map_err(|e| format!("connect {path}: {e}"))?;
    let connected = t0.elapsed();
    let writer = tokio::task::spawn_local(Rc::clone(&conn).write_loop());
    let welcome = native::join(&conn, &mut rb, &client_id, None, None).await?;
    let welcomed = t0.elapsed();
    let caught = native::catch_up(&conn, &mut rb, &welcome, None).await?;
    let synced = caught.done_at.duration_since(t0);
    conn.close(1000);

    let state = caught.snapshot.as_deref().unwrap_or_default();
    let text = trace::text_of_state(state)?;
    let text_ok = text == expected;
    if !text_ok {
        log::error!(
            "w4 load: the loaded text differs from the trace's ({} vs {} characters)",
            text.chars().count(),
            expected.chars().count()
        );
    }
    let (server_load_ms, server_snapshot_at) = match server_log {
        Some(p) => server_load_line(p, &opts.doc).await,
        None => (None, None),
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    writer.abort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    Ok(W4LoadRow {
        workload: "w4".into(),
        label: opts.label.clone(),
        run,
        doc: opts.doc.clone(),
        loaded_head: caught.head,
        expected_head: opts.ops as u64,
        connect_ms: ms(connected),
        welcome_ms: ms(welcomed),
        synced_ms: ms(synced),
        snapshot_state_bytes: state.len(),
        snapshot_message_bytes: caught.snapshot_message_bytes,
        text_ok,
        server_load_ms,
        server_snapshot_at,
    })
}

/// The last `document DOC loaded: head H, snapshot at S, epoch E (N ms)`
/// line of the server's log: (N, S). Waits up to a second for it.
async fn server_load_line(path: &PathBuf, doc: &str) -> (Option<f64>, Option<u64>) {
    let needle = format!("document {doc} loaded: ");
    for _ in 0..20 {
        if let Ok(text) = std::fs::read_to_string(path)
            && let Some(line) = text.lines().rev().find(|l| l.contains(&needle))
        {
            return parse_load_line(line);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    log::warn!("no 'document {doc} loaded' line in {}", path.display());
    (None, None)
}

fn parse_load_line(line: &str) -> (Option<f64>, Option<u64>) {
    let ms = line
        .rfind('(')
        .and_then(|i| line[i + 1..].strip_suffix(" ms)"))
        .and_then(|n| n.trim().parse().ok());
    let at = line
        .find("snapshot at ")
        .map(|i| &line[i + "snapshot at ".len()..])
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.trim().parse().ok());
    (ms, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_load_line_parses() {
        let line = "[2026-11-25T14:00:00Z INFO  collab_engine::document::lifecycle] document w4 loaded: head 100000, snapshot at 99840, epoch 4f0c-aa (37 ms)";
        assert_eq!(parse_load_line(line), (Some(37.0), Some(99840)));
        assert_eq!(parse_load_line("garbage"), (None, None));
    }
}
