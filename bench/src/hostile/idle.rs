//! `idle-connections`: as many idle `/yjs` connections as the server takes
//! (up to `--max-connections`, and what this process's file limit allows),
//! opened by 128 openers at most 4,000 attempts a second (a refused attempt
//! leaves no TIME_WAIT: it is reset); then `/health` while they are all
//! open; they stay open (never read) until the end.

use std::cell::{Cell, RefCell};
use std::io;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use super::peer::{self, OpenError};
use super::tally::Ctx;

/// Documents the connections are spread over (a few hundred sessions
/// each, under any per-document limit).
const DOCUMENTS: usize = 50;
const OPENERS: usize = 128;
/// Shortest time between two attempts (4,000 a second).
const ATTEMPT_EVERY: Duration = Duration::from_micros(250);
/// File descriptors kept free for the watch thread and the rest.
const SPARE_FDS: u64 = 100;

/// The soft limit of open files of this process.
fn open_files_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// What the probe found, beyond the tally.
pub struct IdleOutcome {
    /// The most connections tried for (the request and the file limit).
    pub target: usize,
    pub accepted: usize,
    /// Of the accepted, still open at the end.
    pub open_at_end: usize,
    /// `/health` right after the opening phase, with everything open.
    pub health_after_open: Vec<Result<(u16, Duration), String>>,
    pub opening_secs: f64,
}

pub async fn run(ctx: &Ctx, max: usize) -> IdleOutcome {
    let limit = open_files_limit().map_or(max, |l| l.saturating_sub(SPARE_FDS) as usize);
    let target = max.min(limit);
    if target < max {
        ctx.note(format!(
            "idle-connections: capped at {target} by the generator's open-file limit"
        ));
    }
    let held: RefCell<Vec<TcpStream>> = RefCell::new(Vec::with_capacity(target));
    // Attempts under way, and all attempts so far.
    let attempts = Cell::new(0usize);
    let tried = Cell::new(0usize);
    let next_slot = Cell::new(Instant::now());
    let local_limit = Cell::new(false);
    let started = Instant::now();
    let (held_ref, attempts, tried, next_slot, local_limit) =
        (&held, &attempts, &tried, &next_slot, &local_limit);
    let opener = || async move {
        loop {
            // The ones in flight count, so that no more than `target` open.
            let in_flight = attempts.get();
            if !ctx.running() || local_limit.get() || held_ref.borrow().len() + in_flight >= target
            {
                return;
            }
            attempts.set(in_flight + 1);
            let n = tried.get();
            tried.set(n + 1);
            let slot = next_slot.get().max(Instant::now());
            next_slot.set(slot + ATTEMPT_EVERY);
            tokio::time::sleep_until(slot.into()).await;
            let path = format!("/yjs/idle-{}", n % DOCUMENTS);
            let result = peer::open_idle(ctx.authority(), &path, Duration::from_secs(5)).await;
            attempts.set(attempts.get() - 1);
            match result {
                Ok(stream) => {
                    held_ref.borrow_mut().push(stream);
                    ctx.add("accepted", 1);
                }
                Err(e) => {
                    if let OpenError::Io(io) = &e
                        && io.raw_os_error() == Some(24)
                    {
                        // Our own limit, not the server's answer.
                        local_limit.set(true);
                        ctx.refusal("EMFILE in the generator (stopped opening)".to_string());
                        return;
                    }
                    ctx.open_failed(&e);
                }
            }
        }
    };
    futures_util::future::join_all((0..OPENERS).map(|_| opener())).await;
    let opening_secs = started.elapsed().as_secs_f64();
    ctx.add("attempts", tried.get() as u64);
    let accepted = held.borrow().len();
    log::info!("idle-connections: {accepted} accepted in {opening_secs:.1} s; checking /health");
    let mut health_after_open = Vec::new();
    for _ in 0..5 {
        health_after_open.push(peer::get_health(ctx.authority(), Duration::from_secs(3)).await);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Hold them until the end, as an idle crowd does.
    ctx.pause(ctx.deadline.saturating_duration_since(Instant::now()))
        .await;
    let held = held.into_inner();
    let open_at_end = held.iter().filter(|s| still_open(s)).count();
    for stream in &held {
        let _ = stream.set_zero_linger();
    }
    IdleOutcome {
        target,
        accepted,
        open_at_end,
        health_after_open,
        opening_secs,
    }
}

/// Whether the server has not closed the connection (reads and drops
/// whatever it sent meanwhile).
fn still_open(stream: &TcpStream) -> bool {
    let mut scratch = [0u8; 4096];
    for _ in 0..64 {
        match stream.try_read(&mut scratch) {
            Ok(0) => return false,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
            Err(_) => return false,
        }
    }
    true
}
