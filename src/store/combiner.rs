//! SQLite: the commits of several documents in one transaction.
//!
//! A SQLite file has one writer at a time, and every transaction ends
//! with an fsync of the WAL (`durability = "full"`). With many documents
//! committing at once, each commit waited for all the others' fsyncs (a
//! document's op then took 20 commits' time to be acked with 20 busy
//! documents). So the store hands every SQLite commit to one writer task:
//! it takes every batch waiting, writes each in a savepoint of one
//! transaction, and commits once. A batch that fails (its head check, a
//! constraint) is rolled back to its savepoint alone and answered with
//! its error; the others commit. If the transaction itself fails, every
//! batch of it is answered with that failure (and, as after any failed
//! commit, each document verifies its head before its next one).
//!
//! PostgreSQL commits documents in parallel on separate connections and
//! does not use this.

use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use super::StoreError;
use super::writes::{CommitBatch, begin_write, write_batch};

/// Most batches in one transaction (the rest wait for the next).
const MAX_BATCHES_PER_TRANSACTION: usize = 64;

/// A batch on its way to the writer, and where its answer goes.
struct Request {
    batch: CommitBatch,
    answer: Answer,
}

type Answer = oneshot::Sender<Result<(), StoreError>>;

/// The handle on the writer task; cheap to clone.
#[derive(Debug, Clone)]
pub(super) struct Combiner {
    requests: mpsc::UnboundedSender<Request>,
}

impl Combiner {
    /// Starts the writer task of `db` on the current Tokio runtime; `None`
    /// outside of one (then each commit is its own transaction).
    pub fn start(db: DatabaseConnection) -> Option<Combiner> {
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        // Unbounded, yet bounded in practice: a document has at most one
        // commit in flight, so at most one request per loaded document.
        let (requests, queue) = mpsc::unbounded_channel();
        runtime.spawn(run(db, queue));
        Some(Combiner { requests })
    }

    /// Commits `batch` with whatever else is waiting; answered once the
    /// transaction holding it committed (or failed).
    pub async fn commit(&self, batch: CommitBatch) -> Result<(), StoreError> {
        let (answer, answered) = oneshot::channel();
        self.requests
            .send(Request { batch, answer })
            .map_err(|_| writer_gone())?;
        answered.await.map_err(|_| writer_gone())?
    }
}

fn writer_gone() -> StoreError {
    StoreError::Db(DbErr::Custom(
        "the SQLite writer task has stopped (the runtime that started it is gone)".to_owned(),
    ))
}

/// The writer task: one transaction per wave of waiting batches, until
/// every handle is gone.
async fn run(db: DatabaseConnection, mut queue: mpsc::UnboundedReceiver<Request>) {
    while let Some(first) = queue.recv().await {
        let mut wave = vec![first];
        while wave.len() < MAX_BATCHES_PER_TRANSACTION {
            match queue.try_recv() {
                Ok(request) => wave.push(request),
                Err(_) => break,
            }
        }
        commit_wave(&db, wave).await;
    }
}

/// Writes every batch of `wave` in a savepoint of one transaction and
/// answers each.
async fn commit_wave(db: &DatabaseConnection, wave: Vec<Request>) {
    let txn = match begin_write(db).await {
        Ok(txn) => txn,
        Err(e) => return answer_all(wave.into_iter().map(|r| r.answer), &e),
    };
    let mut written = Vec::with_capacity(wave.len());
    for Request { batch, answer } in wave {
        let savepoint = match txn.begin().await {
            Ok(savepoint) => savepoint,
            Err(e) => {
                let e = StoreError::from(e);
                let _ = answer.send(Err(shared(&e)));
                return answer_all(written.into_iter().map(|(_, a)| a), &e);
            }
        };
        let outcome = match write_batch(&savepoint, batch).await {
            Ok(()) => savepoint.commit().await.map_err(StoreError::from),
            Err(e) => match savepoint.rollback().await {
                Ok(()) => Err(e),
                // The transaction is in an unknown state: nothing of it
                // may be committed.
                Err(rollback) => {
                    let rollback = StoreError::from(rollback);
                    let _ = answer.send(Err(e));
                    return answer_all(written.into_iter().map(|(_, a)| a), &rollback);
                }
            },
        };
        written.push((outcome, answer));
    }
    match txn.commit().await {
        Ok(()) => {
            for (outcome, answer) in written {
                let _ = answer.send(outcome);
            }
        }
        Err(e) => {
            let e = StoreError::from(e);
            for (outcome, answer) in written {
                // A batch refused on its own keeps its own error.
                let _ = answer.send(outcome.and(Err(shared(&e))));
            }
        }
    }
}

/// The same failure for every batch of a transaction.
fn shared(e: &StoreError) -> StoreError {
    StoreError::Db(DbErr::Custom(format!(
        "the transaction of this commit failed: {e}"
    )))
}

fn answer_all(answers: impl IntoIterator<Item = Answer>, e: &StoreError) {
    for answer in answers {
        let _ = answer.send(Err(shared(e)));
    }
}
