//! Probes on the y-websocket route (`/yjs/{doc}`): `conflicts`,
//! `alloc-bomb` and `awareness-flood`.

use std::cell::Cell;
use std::time::{Duration, Instant};

use super::peer::{Peer, Step};
use super::tally::Ctx;
use super::updates::{self, Bomb};
use crate::protocol::{SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE};
use crate::varint::Reader;
use crate::ws;

/// What a y-websocket message from the server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum YMsg {
    Step1,
    Step2,
    Update,
    Awareness,
    Other,
}

fn classify(payload: &[u8]) -> YMsg {
    let mut r = Reader::new(payload);
    match r.var_uint() {
        Ok(0) => match r.var_uint() {
            Ok(SYNC_STEP1) => YMsg::Step1,
            Ok(SYNC_STEP2) => YMsg::Step2,
            Ok(SYNC_UPDATE) => YMsg::Update,
            _ => YMsg::Other,
        },
        Ok(1) => YMsg::Awareness,
        _ => YMsg::Other,
    }
}

/// Opens `/yjs/{doc}` and syncs (our empty step 1, an empty step 2 for the
/// server's step 1, until the server's step 2). Failures are counted.
async fn open_synced(ctx: &Ctx, doc: &str) -> Option<Peer> {
    let path = format!("{}/{doc}", yjs_prefix(ctx));
    let mut peer = match Peer::open(ctx.authority(), &path, Duration::from_secs(3)).await {
        Ok(p) => p,
        Err(e) => {
            ctx.open_failed(&e);
            return None;
        }
    };
    peer.queue(ws::OP_BINARY, &updates::y_step1_empty());
    let synced = Cell::new(false);
    let answer = Cell::new(0u32);
    let mut on_msg = |_: u8, payload: &[u8]| match classify(payload) {
        YMsg::Step1 => answer.set(answer.get() + 1),
        YMsg::Step2 => synced.set(true),
        _ => {}
    };
    let deadline = (Instant::now() + Duration::from_secs(5)).min(ctx.deadline);
    loop {
        if synced.get() {
            break;
        }
        if peer.step(deadline, &mut on_msg).await != Step::Io {
            ctx.failure(format!(
                "sync: {}",
                peer.ended().unwrap_or("no step 2 in time")
            ));
            peer.close();
            return None;
        }
        for _ in 0..answer.replace(0) {
            peer.queue(ws::OP_BINARY, &updates::y_step2_empty());
        }
    }
    for _ in 0..answer.replace(0) {
        peer.queue(ws::OP_BINARY, &updates::y_step2_empty());
    }
    ctx.add("sessions", 1);
    Some(peer)
}

/// The y-websocket route: the URL's path if it has one, else `/yjs`.
fn yjs_prefix(ctx: &Ctx) -> &str {
    if ctx.url.path.is_empty() {
        "/yjs"
    } else {
        &ctx.url.path
    }
}

/// Counts the updates and awareness messages a connection receives.
fn counting(ctx: &Ctx) -> impl FnMut(u8, &[u8]) + '_ {
    move |_, payload| match classify(payload) {
        YMsg::Update | YMsg::Step2 => ctx.add("updates_received", 1),
        YMsg::Awareness => ctx.add("awareness_received", 1),
        _ => {}
    }
}

/// Ends a connection that is still open; counts why it ended otherwise.
fn finish(ctx: &Ctx, peer: &mut Peer) {
    match peer.ended() {
        Some(why) => ctx.refusal(format!("session ended: {why}")),
        None => peer.close(),
    }
}

/// `conflicts`: one of the 20 connections on document `conflicts`, each
/// update an insert of one character by a new Yjs client, at the start of
/// the text with no origin on either side (every one concurrent with all
/// the others: the server's integration scans them all). The client ids
/// increase, the worst order for that scan.
pub async fn conflicts(ctx: &Ctx, next_client: &Cell<u64>) {
    while ctx.running() {
        let Some(mut peer) = open_synced(ctx, "conflicts").await else {
            ctx.pause(Duration::from_millis(50)).await;
            continue;
        };
        let mut on_msg = counting(ctx);
        let mut unflushed = 0;
        while ctx.running() {
            if peer.queued() == 0 {
                ctx.add("updates_written", unflushed);
                unflushed = 0;
                for _ in 0..32 {
                    let client = next_client.get();
                    next_client.set(client + 1);
                    let update = updates::insert(client, 0, None, "x");
                    peer.queue(ws::OP_BINARY, &updates::y_update(&update));
                    unflushed += 1;
                }
            }
            if peer.step(ctx.deadline, &mut on_msg).await == Step::Ended {
                break;
            }
        }
        ctx.add("bytes_written", peer.bytes_out);
        finish(ctx, &mut peer);
    }
}

/// `alloc-bomb`: connection `index` of 4 sends one bomb per connection
/// (the kinds in turn), waits for the server to close it (at most 2 s),
/// and reconnects.
pub async fn alloc_bomb(ctx: &Ctx, index: usize) {
    let path = format!("{}/bomb-{index}", yjs_prefix(ctx));
    let mut n = index;
    while ctx.running() {
        let mut peer = match Peer::open(ctx.authority(), &path, Duration::from_secs(3)).await {
            Ok(p) => p,
            Err(e) => {
                ctx.open_failed(&e);
                // Hammer, but not in a loop that never sleeps.
                ctx.pause(Duration::from_millis(10)).await;
                continue;
            }
        };
        ctx.add("connections", 1);
        let bomb = Bomb::ALL[n % Bomb::ALL.len()];
        n += 1;
        peer.queue(ws::OP_BINARY, &bomb.message());
        let deadline = (Instant::now() + Duration::from_secs(2)).min(ctx.deadline);
        let mut ignore = |_: u8, _: &[u8]| {};
        let flushed = Cell::new(false);
        while peer.step(deadline, &mut ignore).await == Step::Io {
            if !flushed.get() && peer.queued() == 0 {
                flushed.set(true);
                ctx.add("bombs_sent", 1);
            }
        }
        if !flushed.get() && peer.queued() == 0 {
            ctx.add("bombs_sent", 1);
        }
        match peer.ended() {
            Some(why) => {
                if why.starts_with("close") {
                    ctx.add("bombs_answered_by_close", 1);
                }
                ctx.refusal(format!("{}: {why}", bomb.name()));
            }
            None => {
                if ctx.running() {
                    ctx.refusal(format!("{}: still open after 2 s", bomb.name()));
                }
                peer.close();
            }
        }
    }
}

/// `awareness-flood`: a listener (one of 20) on document `aware`, counting
/// the awareness messages it receives.
pub async fn awareness_listener(ctx: &Ctx) {
    while ctx.running() {
        let Some(mut peer) = open_synced(ctx, "aware").await else {
            ctx.pause(Duration::from_millis(50)).await;
            continue;
        };
        ctx.add("listeners_synced", 1);
        let mut on_msg = counting(ctx);
        while peer.step(ctx.deadline, &mut on_msg).await == Step::Io {}
        finish(ctx, &mut peer);
    }
}

/// `awareness-flood`: the sender, one client id, its state changed as fast
/// as the socket takes it.
pub async fn awareness_sender(ctx: &Ctx) {
    let client = updates::random_client();
    let mut clock = 0u64;
    // Let the listeners join first.
    ctx.pause(Duration::from_millis(300)).await;
    while ctx.running() {
        let Some(mut peer) = open_synced(ctx, "aware").await else {
            ctx.pause(Duration::from_millis(50)).await;
            continue;
        };
        let mut ignore = |_: u8, _: &[u8]| {};
        let mut unflushed = 0;
        while ctx.running() {
            if peer.queued() == 0 {
                ctx.add("awareness_written", unflushed);
                unflushed = 0;
                for _ in 0..32 {
                    clock += 1;
                    let state = format!(
                        "{{\"user\":{{\"name\":\"flood\",\"color\":\"#ff0000\"}},\"cursor\":{{\"anchor\":{clock},\"head\":{clock}}}}}"
                    );
                    peer.queue(ws::OP_BINARY, &updates::y_awareness(client, clock, &state));
                    unflushed += 1;
                }
            }
            if peer.step(ctx.deadline, &mut ignore).await == Step::Ended {
                break;
            }
        }
        finish(ctx, &mut peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_messages_are_classified() {
        assert_eq!(classify(&updates::y_step1_empty()), YMsg::Step1);
        assert_eq!(classify(&updates::y_step2_empty()), YMsg::Step2);
        assert_eq!(classify(&updates::y_update(&[0, 0])), YMsg::Update);
        assert_eq!(classify(&updates::y_awareness(1, 1, "{}")), YMsg::Awareness);
        assert_eq!(classify(&[3]), YMsg::Other);
        assert_eq!(classify(&[]), YMsg::Other);
    }
}
