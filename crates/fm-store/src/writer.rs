//! SQLite's single writer, with group commit.
//!
//! SQLite lets one transaction write at a time, and each commit appends every page it touched
//! to the WAL (and, with `synchronous=FULL`, waits for an fsync). One transaction per store
//! call made the writer the server's bottleneck: under a burst, most of the commit work was
//! rewriting the same few pages of `fm_runs` and its indexes, one small transaction after
//! another, each behind a lock hand-off.
//!
//! Here every write of the process goes to one task that owns one connection. It takes the
//! writes that are waiting (up to [`MAX_BATCH`]), runs each inside a savepoint of one
//! `BEGIN IMMEDIATE` transaction, commits once, and only then answers each caller. So:
//!
//! - a call returns only after its write is committed (durable as the `synchronous` setting
//!   says), exactly as before;
//! - a write that fails (returns `Err`) is rolled back to its savepoint and does not disturb the
//!   others in its batch;
//! - if the batch itself cannot commit, every write in it gets the error: none of them was
//!   saved.
//!
//! Writes of other processes on the same file (`fm run` beside `fm serve`) still wait on
//! SQLite's lock, up to the busy timeout.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::FutureExt;
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot};

use crate::common::WriteFn;
use crate::StoreError;

/// The most writes one transaction carries: enough to amortise a commit over a burst, few
/// enough that the first caller of a batch does not wait long for the last.
pub(crate) const MAX_BATCH: usize = 256;

const BACKEND: &str = "sqlite";

/// The handle every store call writes through. Dropping the last one stops the task.
pub(crate) struct Writer {
    queue: mpsc::UnboundedSender<Msg>,
    /// Transactions the task has run (tests use it: writes that queued together share one).
    #[cfg_attr(not(test), allow(dead_code))]
    batches: Arc<AtomicU64>,
}

enum Msg {
    Write(Box<dyn Job>),
    /// Finish what is queued, close the connection, then answer.
    Close(oneshot::Sender<()>),
}

impl Writer {
    /// Starts the writer task on `conn` (on the current tokio runtime).
    pub fn start(conn: SqliteConnection) -> Writer {
        let (queue, rx) = mpsc::unbounded_channel();
        let batches = Arc::new(AtomicU64::new(0));
        tokio::spawn(serve(conn, rx, batches.clone()));
        Writer { queue, batches }
    }

    /// Runs `write` in the next batch; returns once that batch is committed (or failed).
    pub async fn write<T: Send + 'static>(
        &self,
        op: &'static str,
        write: impl WriteFn<SqliteConnection, T>,
    ) -> Result<T, StoreError> {
        let (done, answer) = oneshot::channel();
        let job = Box::new(Pending { op, write, done });
        self.queue.send(Msg::Write(job)).map_err(|_| stopped(op))?;
        answer.await.map_err(|_| stopped(op))?
    }

    /// Waits for the queued writes, then closes the connection. Later writes fail.
    pub async fn close(&self) {
        let (ack, closed) = oneshot::channel();
        if self.queue.send(Msg::Close(ack)).is_ok() {
            let _ = closed.await;
        }
    }
}

fn stopped(op: &'static str) -> StoreError {
    StoreError::Invalid {
        op,
        message: "the SQLite writer has stopped (the store was closed); nothing was written"
            .to_owned(),
    }
}

/// A queued write, type-erased so writes of every result type share one queue.
trait Job: Send {
    fn op(&self) -> &'static str;

    /// Runs the write on `conn`; what it returned waits in the [`Outcome`] until the batch ends.
    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Box<dyn Outcome>>;

    /// The write never ran: its batch could not begin or broke before its turn.
    fn abandon(self: Box<Self>, why: &str);
}

/// What a write returned, held until its batch commits.
trait Outcome: Send {
    fn succeeded(&self) -> bool;

    /// Answers the caller: the write's own result if the batch committed (or the write had
    /// failed anyway), else the commit's error.
    fn deliver(self: Box<Self>, commit_error: Option<&str>);
}

struct Pending<T, F> {
    op: &'static str,
    write: F,
    done: oneshot::Sender<Result<T, StoreError>>,
}

struct Ran<T> {
    op: &'static str,
    result: Result<T, StoreError>,
    done: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send + 'static, F: WriteFn<SqliteConnection, T>> Job for Pending<T, F> {
    fn op(&self) -> &'static str {
        self.op
    }

    fn run<'c>(self: Box<Self>, conn: &'c mut SqliteConnection) -> BoxFuture<'c, Box<dyn Outcome>> {
        let Pending { op, write, done } = *self;
        Box::pin(async move {
            // A panicking write must not take every later write down with the task.
            let result = match AssertUnwindSafe(write(conn)).catch_unwind().await {
                Ok(r) => r,
                Err(_) => Err(StoreError::Invalid {
                    op,
                    message: "the write panicked; it was rolled back".to_owned(),
                }),
            };
            Box::new(Ran { op, result, done }) as Box<dyn Outcome>
        })
    }

    fn abandon(self: Box<Self>, why: &str) {
        let _ = self.done.send(Err(not_saved(self.op, why)));
    }
}

impl<T: Send> Outcome for Ran<T> {
    fn succeeded(&self) -> bool {
        self.result.is_ok()
    }

    fn deliver(self: Box<Self>, commit_error: Option<&str>) {
        let result = match (self.result, commit_error) {
            (Ok(_), Some(why)) => Err(not_saved(self.op, why)),
            (r, _) => r,
        };
        let _ = self.done.send(result);
    }
}

fn not_saved(op: &'static str, why: &str) -> StoreError {
    StoreError::NotSaved {
        backend: BACKEND,
        op,
        message: why.to_owned(),
    }
}

async fn serve(
    mut conn: SqliteConnection,
    mut rx: mpsc::UnboundedReceiver<Msg>,
    batches: Arc<AtomicU64>,
) {
    let mut waiting: VecDeque<Box<dyn Job>> = VecDeque::new();
    let mut close: Option<oneshot::Sender<()>> = None;
    loop {
        if waiting.is_empty() && close.is_none() {
            match rx.recv().await {
                Some(Msg::Write(j)) => waiting.push_back(j),
                Some(Msg::Close(ack)) => close = Some(ack),
                None => break,
            }
        }
        while close.is_none() && waiting.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Msg::Write(j)) => waiting.push_back(j),
                Ok(Msg::Close(ack)) => close = Some(ack),
                Err(_) => break,
            }
        }
        if waiting.is_empty() {
            break;
        }
        let batch: Vec<Box<dyn Job>> = waiting.drain(..waiting.len().min(MAX_BATCH)).collect();
        run_batch(&mut conn, batch).await;
        batches.fetch_add(1, Ordering::Relaxed);
    }
    let _ = conn.close().await;
    if let Some(ack) = close {
        let _ = ack.send(());
    }
}

/// One transaction for the batch; a savepoint per write when there are several.
async fn run_batch(conn: &mut SqliteConnection, batch: Vec<Box<dyn Job>>) {
    let mut tx = match conn.begin_with("BEGIN IMMEDIATE").await {
        Ok(tx) => tx,
        Err(e) => {
            let why = format!("beginning the write transaction failed: {e}");
            for job in batch {
                job.abandon(&why);
            }
            return;
        }
    };
    let savepoints = batch.len() > 1;
    let mut outcomes: Vec<Box<dyn Outcome>> = Vec::with_capacity(batch.len());
    let mut broken: Option<String> = None;
    let mut jobs = batch.into_iter();
    for job in jobs.by_ref() {
        if !savepoints {
            outcomes.push(job.run(&mut tx).await);
            break;
        }
        match run_in_savepoint(&mut tx, job).await {
            Ok(outcome) => outcomes.push(outcome),
            Err((outcome, why)) => {
                outcomes.extend(outcome);
                broken = Some(why);
                break;
            }
        }
    }
    if let Some(why) = &broken {
        for job in jobs {
            job.abandon(&format!(
                "an earlier write in its batch broke the transaction: {why}"
            ));
        }
    }
    let single_failed = !savepoints && outcomes.first().is_some_and(|o| !o.succeeded());
    let commit_error = if broken.is_some() || single_failed {
        let _ = tx.rollback().await;
        broken
    } else {
        match tx.commit().await {
            Ok(()) => None,
            Err(e) => Some(format!("committing the write transaction failed: {e}")),
        }
    };
    for o in outcomes {
        o.deliver(commit_error.as_deref());
    }
}

/// Runs one write inside a savepoint: released if it succeeded, rolled back if it failed.
/// `Err` means the transaction itself is unusable (the savepoint could not be set or ended).
async fn run_in_savepoint(
    tx: &mut Transaction<'_, Sqlite>,
    job: Box<dyn Job>,
) -> Result<Box<dyn Outcome>, (Option<Box<dyn Outcome>>, String)> {
    let op = job.op();
    let mut sp = match tx.begin().await {
        Ok(sp) => sp,
        Err(e) => {
            let why = format!("setting a savepoint for {op} failed: {e}");
            job.abandon(&why);
            return Err((None, why));
        }
    };
    let outcome = job.run(&mut sp).await;
    let ended = if outcome.succeeded() {
        sp.commit().await
    } else {
        sp.rollback().await
    };
    match ended {
        Ok(()) => Ok(outcome),
        Err(e) => Err((
            Some(outcome),
            format!("ending the savepoint of {op} failed: {e}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::ConnectOptions;

    async fn writer_on(dir: &std::path::Path) -> (Writer, sqlx::SqlitePool) {
        let opts = SqliteConnectOptions::new()
            .filename(dir.join("w.db"))
            .create_if_missing(true)
            .busy_timeout(std::time::Duration::from_millis(100))
            .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
        let mut conn = opts.connect().await.unwrap();
        sqlx::raw_sql("CREATE TABLE t (k TEXT PRIMARY KEY)")
            .execute(&mut conn)
            .await
            .unwrap();
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        (Writer::start(conn), pool)
    }

    fn insert(k: &'static str, then_fail: bool) -> impl WriteFn<SqliteConnection, ()> {
        move |conn: &mut SqliteConnection| -> BoxFuture<'_, Result<(), StoreError>> {
            Box::pin(async move {
                sqlx::query("INSERT INTO t (k) VALUES ($1)")
                    .bind(k)
                    .execute(&mut *conn)
                    .await
                    .map_err(|e| StoreError::db(BACKEND, "insert", e))?;
                if then_fail {
                    return Err(StoreError::Invalid {
                        op: "insert",
                        message: "failing after writing".into(),
                    });
                }
                Ok(())
            })
        }
    }

    async fn keys(pool: &sqlx::SqlitePool) -> Vec<String> {
        sqlx::query_scalar("SELECT k FROM t ORDER BY k")
            .fetch_all(pool)
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_write_is_undone_without_disturbing_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let (w, pool) = writer_on(dir.path()).await;
        let w = std::sync::Arc::new(w);
        // A slow write holds the writer while the others queue, so they share the next batch.
        let slow = {
            let w = w.clone();
            tokio::spawn(async move {
                w.write(
                    "slow",
                    |_conn: &mut SqliteConnection| -> BoxFuture<'_, Result<(), StoreError>> {
                        Box::pin(async {
                            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                            Ok(())
                        })
                    },
                )
                .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let names: Vec<&'static str> = vec!["a", "b", "c", "d", "e", "f", "g", "h"];
        let tasks: Vec<_> = names
            .iter()
            .map(|&k| {
                let w = w.clone();
                tokio::spawn(async move { w.write("insert", insert(k, k == "d")).await })
            })
            .collect();
        let mut results = Vec::new();
        for t in tasks {
            results.push(t.await.unwrap());
        }
        slow.await.unwrap().unwrap();
        for (k, r) in names.iter().zip(&results) {
            assert_eq!(r.is_ok(), *k != "d", "{k}: {r:?}");
        }
        let batches = w.batches.load(Ordering::Relaxed);
        assert_eq!(batches, 2, "the slow write, then the eight together");
        assert_eq!(keys(&pool).await, ["a", "b", "c", "e", "f", "g", "h"]);

        // A write that breaks a constraint fails alone too.
        let dup = w.write("insert", insert("a", false)).await.unwrap_err();
        assert!(dup.to_string().contains("UNIQUE"), "{dup}");
        w.write("insert", insert("i", false)).await.unwrap();
        assert_eq!(keys(&pool).await.len(), 8);
    }

    #[tokio::test]
    async fn writes_after_close_are_refused_clearly() {
        let dir = tempfile::tempdir().unwrap();
        let (w, pool) = writer_on(dir.path()).await;
        w.write("insert", insert("a", false)).await.unwrap();
        w.close().await;
        let e = w.write("insert", insert("b", false)).await.unwrap_err();
        assert!(e.to_string().contains("writer has stopped"), "{e}");
        assert_eq!(keys(&pool).await, ["a"]);
    }

    #[tokio::test]
    async fn a_batch_that_cannot_begin_fails_every_write_in_it() {
        let dir = tempfile::tempdir().unwrap();
        let (w, pool) = writer_on(dir.path()).await;
        // Another connection holds the write lock; the writer gives up after its busy timeout.
        let mut other = pool.acquire().await.unwrap();
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut *other)
            .await
            .unwrap();
        sqlx::raw_sql("BEGIN IMMEDIATE; INSERT INTO t (k) VALUES ('held')")
            .execute(&mut *other)
            .await
            .unwrap();
        let e = w.write("insert", insert("x", false)).await.unwrap_err();
        assert!(
            e.to_string().contains("was not saved") && e.to_string().contains("locked"),
            "{e}"
        );
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut *other)
            .await
            .unwrap();
        drop(other);
        w.write("insert", insert("y", false)).await.unwrap();
        assert_eq!(keys(&pool).await, ["y"]);
    }
}
