//! A watcher: a client editing its own document every 100 ms while a test
//! attacks another one, recording how long each of its ops takes to be
//! acknowledged. A stall of the server shows up as a long delay.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::{Peer, TestApp};

/// A running watcher; [`Watcher::finish`] stops it.
pub struct Watcher {
    running: Rc<RefCell<bool>>,
    task: actix_web::rt::task::JoinHandle<Vec<Duration>>,
}

impl Watcher {
    /// Joins `document_id` and starts editing it every 100 ms.
    pub async fn start(app: &TestApp, document_id: &str) -> Watcher {
        let mut peer = Peer::join(app, document_id, "watcher").await;
        let running = Rc::new(RefCell::new(true));
        let flag = running.clone();
        let task = actix_web::rt::spawn(async move {
            let mut delays = Vec::new();
            while *flag.borrow() {
                let sent = Instant::now();
                peer.insert(0, "w").await;
                let target = peer.last_seen + 1;
                peer.sync_to(target).await;
                delays.push(sent.elapsed());
                actix_web::rt::time::sleep(Duration::from_millis(100)).await;
            }
            delays
        });
        Watcher { running, task }
    }

    /// Stops the watcher and answers its delays, sorted.
    pub async fn finish(self) -> WatcherReport {
        *self.running.borrow_mut() = false;
        let mut delays = self.task.await.expect("watcher task");
        delays.sort();
        WatcherReport { delays }
    }
}

/// The ack delays of a watcher's ops.
#[derive(Debug)]
pub struct WatcherReport {
    pub delays: Vec<Duration>,
}

impl WatcherReport {
    /// The 99th percentile delay.
    pub fn p99(&self) -> Duration {
        let at = (self.delays.len() * 99).div_ceil(100).saturating_sub(1);
        self.delays.get(at).copied().unwrap_or_default()
    }

    /// Fails when the watcher saw a stall: p99 over 1 s (the target is
    /// 50 ms; the assertion is loose so that a loaded CI machine passes),
    /// or fewer than `min_ops` ops in the run.
    pub fn assert_no_stall(&self, min_ops: usize, during: &str) {
        assert!(
            self.delays.len() >= min_ops,
            "the watcher got only {} ops through during {during}",
            self.delays.len()
        );
        let p99 = self.p99();
        assert!(
            p99 < Duration::from_secs(1),
            "the watcher stalled during {during}: p99 {p99:?}, max {:?}",
            self.delays.last()
        );
        log::info!(
            "watcher during {during}: {} ops, p99 {p99:?}, max {:?}",
            self.delays.len(),
            self.delays.last()
        );
    }
}
