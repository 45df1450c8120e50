//! fm-store: the durable run store behind `fm serve` and `fm run`.
//!
//! The runs table is the queue: a run is inserted `queued`, a worker claims it with a lease and
//! heartbeats it, and finishes it. Alongside: a stage journal (what each stage did, upserted as
//! events arrive and before a stage acts, so an interrupted run resumes without repeating a
//! remediation), the event stream of every run, every inbound alert with what happened to it
//! (started a run, attached to one, recorded), and remediation budget uses.
//!
//! Two implementations share one schema and one body of logic: [`SqliteStore`] (embedded, the
//! default, WAL) and [`PostgresStore`] (several servers on one database). Only the few places
//! where the dialects must differ are written twice: how a write runs (SQLite: batched into
//! one `BEGIN IMMEDIATE` transaction by the process's single writer, with group commit;
//! PostgreSQL: a transaction per call, ordered by row locks), the claim's `FOR UPDATE SKIP LOCKED`, and the
//! budget's advisory lock. See the README for the schema and the claim logic.
//!
//! # Why `async-trait`
//!
//! The server holds the store as `Arc<dyn RunStore>` chosen at start from a URL, so the trait
//! must be object safe. Native `async fn` in traits is not (as of Rust 1.94) usable through
//! `dyn`; `async-trait` boxes each future, which costs one allocation per call — nothing next
//! to a database round trip — and keeps the trait readable. fm-core's own durability traits
//! (`StartJournal`, `BudgetLedger`) already return boxed futures for the same reason; the
//! stores implement them too, and `RunStore` has them as supertraits so an `Arc<dyn RunStore>`
//! upcasts to `Arc<dyn BudgetLedger>` / `Arc<dyn StartJournal>`.
//!
//! # Clocks
//!
//! Times (creation, leases, budget windows, alert windows) are taken from the clock of the
//! process calling the store, in milliseconds since the Unix epoch. Servers sharing one
//! PostgreSQL must keep their clocks in sync (NTP); a skew well under the lease length is fine.

mod common;
mod error;
mod journal;
mod migrate;
mod postgres;
mod sqlite;
mod types;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use fm_core::durability::{BudgetDecision, BudgetLedger, StartJournal};
use fm_core::events::Event;
use fm_core::record::RunRecord;

pub use error::{mask_url, Hint, StoreError};
pub use journal::{leased_journal, LeasedJournal};
pub use postgres::{PostgresStore, DEFAULT_CONNECTIONS as POSTGRES_DEFAULT_CONNECTIONS};
pub use sqlite::SqliteStore;
pub use types::{
    AlertCount, AlertIn, AlertOutcome, CancelOutcome, ClaimedRun, JournalEntry, NewRun, Page,
    RunCount, RunFilter, RunId, RunSummary, StoredRun,
};

/// The URL `fm` uses when none is configured.
pub const DEFAULT_URL: &str = "sqlite://.fm/fm.db";

/// Opens a store by URL and brings its schema up to date: `sqlite://path` (the file and its
/// parent directories are created; `sqlite:///abs/path` for an absolute path) or
/// `postgres://user:password@host:port/db`.
pub async fn open(url: &str) -> Result<Arc<dyn RunStore>, StoreError> {
    open_with(url, StoreOptions::default()).await
}

/// How to open a store, beyond its URL.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreOptions {
    /// PostgreSQL: the connection pool's size (default [`POSTGRES_DEFAULT_CONNECTIONS`]).
    /// SQLite ignores it: its writes have one connection of their own, its reads a small pool.
    pub connections: Option<u32>,
}

/// [`open`] with options.
pub async fn open_with(url: &str, options: StoreOptions) -> Result<Arc<dyn RunStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let connections = options.connections.unwrap_or(POSTGRES_DEFAULT_CONNECTIONS);
        Ok(Arc::new(
            PostgresStore::open_with_connections(url, connections).await?,
        ))
    } else {
        Err(StoreError::BadUrl { url: mask_url(url) })
    }
}

/// The durable store of runs, their journals and events, alerts, and budgets.
///
/// Every write is committed before the call returns.
#[async_trait]
pub trait RunStore: StartJournal + BudgetLedger + Send + Sync {
    /// `sqlite` or `postgres`.
    fn backend(&self) -> &'static str;

    /// A cheap round trip, for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;

    /// The schema version the database is at (the number of the last migration applied).
    async fn schema_version(&self) -> Result<i64, StoreError>;

    // ---- the queue ----------------------------------------------------------------------------

    /// Inserts a run as `queued`.
    async fn enqueue_run(&self, run: NewRun) -> Result<RunId, StoreError>;

    /// Inserts a run as `running`, already claimed by `worker_id` (for `fm run`, which executes
    /// the run in its own process). If that process dies, the lease expires and a server may
    /// resume the run.
    async fn begin_run(
        &self,
        run: NewRun,
        worker_id: &str,
        lease: Duration,
    ) -> Result<RunId, StoreError>;

    /// Atomically: if a queued or running run has the alert's dedup key, records the alert
    /// against it and bumps its attached count; otherwise inserts `new_run` (with the alert's
    /// dedup key) and records the alert as having started it. Holds under concurrent calls from
    /// any number of processes.
    async fn accept_alert(
        &self,
        alert: AlertIn,
        new_run: NewRun,
    ) -> Result<AlertOutcome, StoreError>;

    /// Records an alert that starts nothing (a resolved alert). It is linked to the active run
    /// with its dedup key, if there is one. Returns the alert id.
    async fn record_alert_only(&self, alert: AlertIn) -> Result<String, StoreError>;

    /// Firing alerts (those that started or attached to a run) for `service` received within
    /// `window` before now, counted up to `at_most` (the count stops there: a flapping check
    /// needs only to know whether its threshold was passed). Resolved alerts are not counted.
    async fn recent_alert_count(
        &self,
        service: &str,
        window: Duration,
        at_most: u32,
    ) -> Result<u32, StoreError>;

    /// Claims the oldest run that is queued, or running with an expired lease, for `worker_id`
    /// until now + `lease`. A run that had been claimed before comes with its `resume` state.
    async fn claim_next(
        &self,
        worker_id: &str,
        lease: Duration,
    ) -> Result<Option<ClaimedRun>, StoreError>;

    /// Extends the lease to now + `lease`. `false` if the worker no longer holds it (it
    /// expired and another worker claimed the run, or the run was released or finished): the
    /// worker must stop working on the run.
    async fn heartbeat(
        &self,
        run_id: &str,
        worker_id: &str,
        lease: Duration,
    ) -> Result<bool, StoreError>;

    /// Hands a running run back to the queue (graceful shutdown). `false` if the worker did not
    /// hold it.
    async fn release(&self, run_id: &str, worker_id: &str) -> Result<bool, StoreError>;

    // ---- a run's progress ---------------------------------------------------------------------

    /// Stores events (numbered in the store: a resumed run's stream continues after what is
    /// stored) and upserts the journal from stage events.
    async fn append_events(&self, run_id: &str, events: &[Event]) -> Result<(), StoreError>;

    /// Journals "stage `stage` attempt `attempt` started" (status `running`). With
    /// `lease_owner`, only while that worker holds an unexpired lease on the run
    /// ([`StoreError::LeaseLost`] otherwise). A stage the journal has settled stays settled.
    async fn journal_stage_start(
        &self,
        run_id: &str,
        stage: &str,
        attempt: u32,
        lease_owner: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Stores the final record and the run's terminal status (from the record). `false` if the
    /// run had already finished (terminal states never change).
    async fn finish_run(&self, run_id: &str, record: &RunRecord) -> Result<bool, StoreError>;

    /// Cancels a run. A queued run is cancelled at once and never starts: its outcome is the
    /// request's (if it has one) and its error says the reason. A running run is flagged; its
    /// worker hears of it within a second ([`RunStore::cancel_notifications`], or its poll) and
    /// stops it: if the run had not acted, the request's outcome is recorded; if it had, its
    /// catch and finally stages get their cleanup time and the pipeline's outcome says what
    /// happened. The first request's reason and outcome are the ones kept.
    ///
    /// A server cancelling a queued run because its incident resolved:
    /// `cancel_run(id, &CancelRequest::because("the incident resolved before fm acted").with_outcome("resolved_before_action"))`.
    async fn cancel_run(
        &self,
        run_id: &str,
        request: &fm_core::CancelRequest,
    ) -> Result<CancelOutcome, StoreError>;

    /// [`RunStore::cancel_run`] through the runs API, without an outcome.
    async fn request_cancel(&self, run_id: &str) -> Result<CancelOutcome, StoreError> {
        self.cancel_run(
            run_id,
            &fm_core::CancelRequest::because("cancel requested through the API"),
        )
        .await
    }

    /// The cancel request of a run (reason and outcome), if one was made.
    async fn cancel_request(
        &self,
        run_id: &str,
    ) -> Result<Option<fm_core::CancelRequest>, StoreError>;

    async fn is_cancel_requested(&self, run_id: &str) -> Result<bool, StoreError>;

    /// Ids of running runs whose cancel was requested after this call: at once for requests
    /// made through this store object, and (PostgreSQL, `LISTEN fm_cancel`) from every process
    /// on the database. Best effort (a notification can be missed while a connection is
    /// re-established): workers also poll [`RunStore::cancel_request`].
    fn cancel_notifications(&self) -> tokio::sync::broadcast::Receiver<String>;

    /// Budgets: consumes one use of `key` if fewer than `max` were used within `per` before
    /// now, atomically across every process using the store.
    async fn consume_budget(
        &self,
        key: &str,
        max: u32,
        per: Duration,
        run_id: &str,
        stage: &str,
    ) -> Result<BudgetDecision, StoreError>;

    // ---- reads --------------------------------------------------------------------------------

    async fn get_run(&self, run_id: &str) -> Result<Option<StoredRun>, StoreError>;

    /// Newest first, `filter.limit` per page.
    async fn list_runs(&self, filter: &RunFilter) -> Result<Page<RunSummary>, StoreError>;

    /// The run's events with a sequence number above `after_seq` (all of them with `None`), in
    /// order. Sequence numbers are the store's (see `append_events`).
    async fn events(&self, run_id: &str, after_seq: Option<u64>) -> Result<Vec<Event>, StoreError>;

    /// The run's stage journal, by start time (stages that never started last), then id.
    async fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError>;

    /// Runs waiting to be claimed.
    async fn queue_depth(&self) -> Result<u64, StoreError>;

    /// Runs by pipeline and status.
    async fn run_counts(&self) -> Result<Vec<RunCount>, StoreError>;

    /// Alerts by source and disposition.
    async fn alert_counts(&self) -> Result<Vec<AlertCount>, StoreError>;

    /// Closes the connections (waits for the ones in use).
    async fn close(&self);
}
