//! What both backends share: the SQL (written once: sqlx's SQLite driver takes `$1`
//! placeholders too), time and cursor helpers, folding stage events into journal writes, building
//! a `ResumeState` from journal rows, and — through `store_impl!` — the whole `RunStore` body,
//! compiled once per backend. A backend supplies only:
//!
//! - `BACKEND`, `CLAIM_SQL` (the claim, with `FOR UPDATE SKIP LOCKED` on PostgreSQL),
//!   `ROW_LOCK` (`FOR UPDATE` or nothing);
//! - `write(op, f)`: runs `f` in a write transaction and commits it (SQLite: in the next batch
//!   of the process's single writer, see `writer.rs`; PostgreSQL: a transaction of its own on
//!   a pooled connection, relying on row locks);
//! - `lock_budget(tx, key)` (nothing on SQLite, already serialized; an advisory transaction
//!   lock on PostgreSQL);
//! - `migration_tx(pool)` (a write transaction that no other process can migrate concurrently
//!   with; run before the store is built).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fm_core::component::StageError;
use fm_core::durability::{JournaledStage, ResumeState};
use fm_core::events::{Event, EventKind};
use serde::Serialize;
use serde_json::Value;

/// A write as the backends run it: gets the transaction's connection; returning `Err` undoes
/// what it wrote. `C` is the backend's connection type.
pub(crate) trait WriteFn<C, T>:
    for<'c> FnOnce(&'c mut C) -> futures::future::BoxFuture<'c, Result<T, crate::StoreError>>
    + Send
    + 'static
{
}

impl<C, T, F> WriteFn<C, T> for F where
    F: for<'c> FnOnce(&'c mut C) -> futures::future::BoxFuture<'c, Result<T, crate::StoreError>>
        + Send
        + 'static
{
}

pub(crate) fn now_ms() -> i64 {
    ms_of(SystemTime::now())
}

pub(crate) fn ms_of(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

pub(crate) fn dur_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

pub(crate) fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(0)
}

pub(crate) fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

pub(crate) fn new_alert_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn json_text<T: Serialize + ?Sized>(v: &T) -> Result<String, String> {
    serde_json::to_string(v).map_err(|e| e.to_string())
}

/// An event as stored, less its sequence number: serialized outside the write transaction;
/// [`with_seq`] adds the number the store gives it inside. Reads back as an `Event`.
#[derive(Serialize)]
pub(crate) struct EventBody<'a> {
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: &'a EventKind,
}

/// `{"seq":N,…body…}`: the stored event text from a serialized [`EventBody`] (a JSON object).
pub(crate) fn with_seq(seq: u64, body: &str) -> String {
    let rest = body.strip_prefix('{').unwrap_or("}");
    let mut text = String::with_capacity(body.len() + 24);
    text.push_str("{\"seq\":");
    text.push_str(&seq.to_string());
    if rest != "}" {
        text.push(',');
    }
    text.push_str(rest);
    text
}

/// Listing cursors: `<created_at ms>:<run id>` of the last row of the previous page.
pub(crate) fn encode_cursor(created_at: i64, id: &str) -> String {
    format!("{created_at}:{id}")
}

pub(crate) fn decode_cursor(c: &str) -> Option<(i64, String)> {
    let (ms, id) = c.split_once(':')?;
    Some((ms.parse().ok()?, id.to_owned()))
}

/// A journal write derived from an event. Owned, so a batch of them can be handed to the
/// writer (SQLite's runs in another task).
pub(crate) enum JournalOp {
    /// An attempt started: `running` (unless the stage already succeeded or failed).
    Start {
        stage: String,
        attempt: u32,
        started_at: String,
    },
    /// Between attempts: `retrying` (still in flight for resume purposes).
    Retrying { stage: String },
    /// Succeeded or failed: the result, final.
    Settle {
        stage: String,
        status: &'static str,
        attempts: u32,
        output: Option<String>,
        error: Option<String>,
        duration_ms: u64,
    },
    /// Skipped or cancelled (never overwrites a success or failure).
    End {
        stage: String,
        status: &'static str,
        error: Option<String>,
        duration_ms: Option<u64>,
    },
}

pub(crate) fn journal_op(e: &Event) -> Result<Option<JournalOp>, String> {
    Ok(Some(match &e.kind {
        EventKind::StageStarted {
            stage,
            attempt,
            started_at,
        } => JournalOp::Start {
            stage: stage.clone(),
            attempt: *attempt,
            started_at: started_at.clone(),
        },
        EventKind::StageRetrying { stage, .. } => JournalOp::Retrying {
            stage: stage.clone(),
        },
        EventKind::StageSucceeded {
            stage,
            output,
            attempts,
            duration_ms,
        } => JournalOp::Settle {
            stage: stage.clone(),
            status: "succeeded",
            attempts: *attempts,
            output: Some(json_text(output)?),
            error: None,
            duration_ms: *duration_ms,
        },
        EventKind::StageFailed {
            stage,
            error,
            attempts,
            duration_ms,
            ..
        } => JournalOp::Settle {
            stage: stage.clone(),
            status: "failed",
            attempts: *attempts,
            output: error.output.as_ref().map(json_text).transpose()?,
            error: Some(json_text(error)?),
            duration_ms: *duration_ms,
        },
        EventKind::StageSkipped { stage, reason } => JournalOp::End {
            stage: stage.clone(),
            status: "skipped",
            error: Some(json_text(reason)?),
            duration_ms: None,
        },
        EventKind::StageCancelled {
            stage,
            duration_ms,
            reason,
        } => JournalOp::End {
            stage: stage.clone(),
            status: "cancelled",
            error: Some(json_text(
                &serde_json::json!({ "kind": "cancelled", "message": reason }),
            )?),
            duration_ms: *duration_ms,
        },
        _ => return Ok(None),
    }))
}

/// The journal writes of one batch of events, coalesced: a stage that started and settled
/// within the batch needs one row write, not two. Returns the settles (with the start time of a
/// start coalesced into them), and the other operations in event order.
pub(crate) fn coalesce_journal(
    ops: Vec<JournalOp>,
) -> (Vec<(JournalOp, Option<String>)>, Vec<JournalOp>) {
    use std::collections::HashMap;
    let mut settled: HashMap<String, usize> = HashMap::new();
    let mut settles: Vec<(JournalOp, Option<String>)> = Vec::new();
    let mut started: HashMap<String, String> = HashMap::new();
    let mut others: Vec<JournalOp> = Vec::new();
    for op in ops {
        match op {
            JournalOp::Start {
                ref stage,
                ref started_at,
                ..
            } => {
                started
                    .entry(stage.clone())
                    .or_insert_with(|| started_at.clone());
                others.push(op);
            }
            JournalOp::Settle { ref stage, .. } => {
                let start = started.get(stage).cloned();
                match settled.get(stage) {
                    Some(&i) => settles[i] = (op, start),
                    None => {
                        settled.insert(stage.clone(), settles.len());
                        settles.push((op, start));
                    }
                }
            }
            other => others.push(other),
        }
    }
    // Starts and retries of stages that settle in this batch are superseded by the settle.
    others.retain(|op| match op {
        JournalOp::Start { stage, .. } | JournalOp::Retrying { stage } => {
            !settled.contains_key(stage)
        }
        _ => true,
    });
    (settles, others)
}

/// `$first, $first+1, …`: `n` placeholders of a multi-row statement.
pub(crate) fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows per multi-row journal upsert (9 parameters each).
pub(crate) const SETTLE_CHUNK: usize = 256;

/// A multi-row upsert of settled stages: `$1` run, then per row stage, status, attempts,
/// output, error, duration, started_at, now.
pub(crate) fn journal_settle_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO fm_stage_journal \
         (run_id, stage_id, status, attempts, output, error, duration_ms, started_at, updated_at) VALUES ",
    );
    for r in 0..rows {
        let p = 1 + r * 8;
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("($1, {})", placeholders(p + 1, 8)));
    }
    sql.push_str(
        " ON CONFLICT (run_id, stage_id) DO UPDATE SET status = excluded.status, \
           attempts = excluded.attempts, output = excluded.output, error = excluded.error, \
           duration_ms = excluded.duration_ms, \
           started_at = COALESCE(fm_stage_journal.started_at, excluded.started_at), \
           updated_at = excluded.updated_at",
    );
    sql
}

/// Rows per multi-row journal end upsert (6 parameters each).
pub(crate) const END_CHUNK: usize = 256;

/// A multi-row upsert of skipped or cancelled stages (never over a success or failure): `$1`
/// run, then per row stage, status, error (the reason), duration, now. A stage may appear only
/// once (PostgreSQL refuses to upsert one row twice in a statement): see [`split_ends`].
pub(crate) fn journal_end_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO fm_stage_journal \
         (run_id, stage_id, status, attempts, error, duration_ms, updated_at) VALUES ",
    );
    for r in 0..rows {
        let p = 1 + r * 5;
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!(
            "($1, {}, 0, {})",
            placeholders(p + 1, 2),
            placeholders(p + 3, 3)
        ));
    }
    sql.push_str(
        " ON CONFLICT (run_id, stage_id) DO UPDATE SET status = excluded.status, \
           error = excluded.error, \
           duration_ms = COALESCE(excluded.duration_ms, fm_stage_journal.duration_ms), \
           updated_at = excluded.updated_at \
         WHERE fm_stage_journal.status NOT IN ('succeeded', 'failed')",
    );
    sql
}

/// Splits the non-settle journal writes of a batch: starts and retries (few; run one by one,
/// in order) and ends (many: every skipped stage; run as multi-row upserts after them, the last
/// end of a stage winning). An end is final, so no start of the same stage can follow it.
pub(crate) fn split_ends(others: Vec<JournalOp>) -> (Vec<JournalOp>, Vec<JournalOp>) {
    let mut in_order = Vec::new();
    let mut ends: Vec<JournalOp> = Vec::new();
    let mut end_of: HashMap<String, usize> = HashMap::new();
    for op in others {
        match op {
            JournalOp::End { ref stage, .. } => match end_of.get(stage) {
                Some(&i) => ends[i] = op,
                None => {
                    end_of.insert(stage.clone(), ends.len());
                    ends.push(op);
                }
            },
            other => in_order.push(other),
        }
    }
    (in_order, ends)
}

/// A journal row as read for resuming.
pub(crate) struct JournalRow {
    pub stage_id: String,
    pub status: String,
    pub attempts: i64,
    pub output: Option<String>,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub duration_ms: Option<i64>,
}

/// What the journal says about an interrupted run: succeeded and failed stages are settled
/// (never run again); running and retrying stages, and cancelled ones that had started, were in
/// flight (they may have acted). Skipped stages and cancelled ones that never started are left
/// to the executor to decide again.
pub(crate) fn build_resume(rows: Vec<JournalRow>) -> Result<ResumeState, String> {
    let mut settled = HashMap::new();
    let mut in_flight = HashSet::new();
    for r in rows {
        match r.status.as_str() {
            "succeeded" | "failed" => {
                let output = match &r.output {
                    Some(t) => Some(
                        serde_json::from_str::<Value>(t)
                            .map_err(|e| format!("stage '{}' output: {e}", r.stage_id))?,
                    ),
                    None => None,
                };
                let error = match (&r.status[..], &r.error) {
                    ("failed", Some(t)) => Some(
                        serde_json::from_str::<StageError>(t)
                            .map_err(|e| format!("stage '{}' error: {e}", r.stage_id))?,
                    ),
                    _ => None,
                };
                settled.insert(
                    r.stage_id,
                    JournaledStage {
                        succeeded: r.status == "succeeded",
                        output,
                        error,
                        attempts: to_u32(r.attempts),
                        duration_ms: to_u64(r.duration_ms.unwrap_or(0)),
                    },
                );
            }
            "running" | "retrying" => {
                in_flight.insert(r.stage_id);
            }
            "cancelled" if r.started_at.is_some() => {
                in_flight.insert(r.stage_id);
            }
            _ => {}
        }
    }
    Ok(ResumeState { settled, in_flight })
}

// ---- SQL shared by both backends -------------------------------------------------------------

pub(crate) const CREATE_VERSION_TABLE: &str = "CREATE TABLE IF NOT EXISTS fm_schema_version (
    version    BIGINT PRIMARY KEY,
    name       TEXT   NOT NULL,
    applied_at BIGINT NOT NULL
)";

pub(crate) const RUN_COLS: &str = "id, pipeline, status, service, dedup_key, source, dry_run, \
     created_at, started_at, finished_at, claims, attached_alerts, cancel_requested, error, \
     outcome, outcome_reason";

pub(crate) const INSERT_RUN: &str = "INSERT INTO fm_runs \
     (id, pipeline, status, input, service, dedup_key, source, dry_run, created_at, started_at, \
      lease_owner, lease_expires_at, claims) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)";

/// The insert of `accept_alert`: nothing happens if another active run holds the key.
pub(crate) const INSERT_RUN_UNLESS_ACTIVE: &str = "INSERT INTO fm_runs \
     (id, pipeline, status, input, service, dedup_key, source, dry_run, created_at, claims) \
     VALUES ($1, $2, 'queued', $3, $4, $5, $6, $7, $8, 0) \
     ON CONFLICT (dedup_key) WHERE status IN ('queued', 'running') DO NOTHING";

pub(crate) const ATTACH_TO_ACTIVE: &str =
    "UPDATE fm_runs SET attached_alerts = attached_alerts + 1 \
     WHERE dedup_key = $1 AND status IN ('queued', 'running') \
     RETURNING id, attached_alerts";

pub(crate) const INSERT_ALERT: &str = "INSERT INTO fm_alerts \
     (id, source, dedup_key, service, received_at, payload, run_id, disposition) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub(crate) const INSERT_RESOLVED_ALERT: &str = "INSERT INTO fm_alerts \
     (id, source, dedup_key, service, received_at, payload, run_id, disposition) \
     VALUES ($1, $2, $3, $4, $5, $6, \
       (SELECT id FROM fm_runs WHERE dedup_key = $3 AND status IN ('queued', 'running')), \
       'resolved_recorded')";

/// `$1` service, `$2` since, `$3` at most: the caller only needs to know whether the count
/// passed its threshold, so no count reads more than that many index entries. The
/// `disposition` term matches the partial index `fm_alerts_firing` (migration 2).
pub(crate) const RECENT_ALERTS: &str = "SELECT COUNT(*) FROM (SELECT 1 FROM fm_alerts \
     WHERE service = $1 AND received_at > $2 AND disposition <> 'resolved_recorded' \
     LIMIT $3) AS recent";

/// `$1` worker, `$2` lease expiry, `$3` now. `{lock}` is replaced by the backend's row lock,
/// `{queue}` by how it names the queue index.
///
/// The redundant `status IN (…)` lets the planner walk the partial queue index in claim order
/// and stop at the first row (it skips only the runs being executed, whose leases are live).
/// Without it SQLite picked the status index and sorted every queued run on each claim: 2 ms a
/// claim with 10,000 queued, inside the single writer's transaction.
pub(crate) const CLAIM_TEMPLATE: &str = "UPDATE fm_runs SET status = 'running', lease_owner = $1, \
     lease_expires_at = $2, claims = claims + 1, started_at = COALESCE(started_at, $3) \
     WHERE id = (SELECT id FROM {queue} \
                 WHERE status IN ('queued', 'running') \
                   AND (status = 'queued' OR lease_expires_at < $3) \
                 ORDER BY created_at, id LIMIT 1{lock}) \
     RETURNING id, pipeline, input, dry_run, service, source, claims, cancel_requested";

pub(crate) const HEARTBEAT: &str = "UPDATE fm_runs SET lease_expires_at = $3 \
     WHERE id = $1 AND lease_owner = $2 AND status = 'running'";

pub(crate) const RELEASE: &str = "UPDATE fm_runs SET status = 'queued', lease_owner = NULL, \
     lease_expires_at = NULL WHERE id = $1 AND lease_owner = $2 AND status = 'running'";

pub(crate) const JOURNAL_ROWS: &str =
    "SELECT stage_id, status, attempts, output, error, started_at, \
     duration_ms FROM fm_stage_journal WHERE run_id = $1 \
     ORDER BY CASE WHEN started_at IS NULL THEN 1 ELSE 0 END, started_at, stage_id";

pub(crate) const BUMP_EVENT_SEQ: &str = "UPDATE fm_runs SET next_event_seq = next_event_seq + $2 \
     WHERE id = $1 RETURNING next_event_seq";

/// Events per `INSERT` (3 parameters each: well under either backend's parameter limit).
pub(crate) const EVENT_CHUNK: usize = 64;

/// `INSERT INTO fm_events … VALUES ($1, $2, $3), ($4, $5, $6), …` for `rows` rows.
pub(crate) fn insert_events_sql(rows: usize) -> String {
    let mut sql = String::from("INSERT INTO fm_events (run_id, seq, event) VALUES ");
    for r in 0..rows {
        let p = r * 3;
        if r > 0 {
            sql.push_str(", ");
        }
        sql.push_str(&format!("({})", placeholders(p + 1, 3)));
    }
    sql
}

/// `$1` run, `$2` stage, `$3` attempt, `$4` started_at, `$5` now.
pub(crate) const JOURNAL_START: &str = "INSERT INTO fm_stage_journal \
     (run_id, stage_id, status, attempts, started_at, updated_at) \
     VALUES ($1, $2, 'running', $3, $4, $5) \
     ON CONFLICT (run_id, stage_id) DO UPDATE SET status = 'running', \
       attempts = CASE WHEN excluded.attempts > fm_stage_journal.attempts \
                       THEN excluded.attempts ELSE fm_stage_journal.attempts END, \
       started_at = COALESCE(fm_stage_journal.started_at, excluded.started_at), \
       updated_at = excluded.updated_at \
     WHERE fm_stage_journal.status NOT IN ('succeeded', 'failed')";

/// `$1` run, `$2` stage, `$3` now.
pub(crate) const JOURNAL_RETRYING: &str = "INSERT INTO fm_stage_journal \
     (run_id, stage_id, status, attempts, updated_at) VALUES ($1, $2, 'retrying', 0, $3) \
     ON CONFLICT (run_id, stage_id) DO UPDATE SET status = 'retrying', updated_at = excluded.updated_at \
     WHERE fm_stage_journal.status NOT IN ('succeeded', 'failed')";

/// `$1` run, `$2` stage, `$3` status, `$4` attempts, `$5` output, `$6` error, `$7` duration, `$8` now.
pub(crate) const JOURNAL_SETTLE: &str = "INSERT INTO fm_stage_journal \
     (run_id, stage_id, status, attempts, output, error, duration_ms, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
     ON CONFLICT (run_id, stage_id) DO UPDATE SET status = excluded.status, \
       attempts = excluded.attempts, output = excluded.output, error = excluded.error, \
       duration_ms = excluded.duration_ms, updated_at = excluded.updated_at";

/// `$1` run, `$2` stage, `$3` status, `$4` error (reason), `$5` duration, `$6` now.
pub(crate) const JOURNAL_END: &str = "INSERT INTO fm_stage_journal \
     (run_id, stage_id, status, attempts, error, duration_ms, updated_at) \
     VALUES ($1, $2, $3, 0, $4, $5, $6) \
     ON CONFLICT (run_id, stage_id) DO UPDATE SET status = excluded.status, \
       error = excluded.error, \
       duration_ms = COALESCE(excluded.duration_ms, fm_stage_journal.duration_ms), \
       updated_at = excluded.updated_at \
     WHERE fm_stage_journal.status NOT IN ('succeeded', 'failed')";

pub(crate) const FINISH_RUN: &str = "UPDATE fm_runs SET status = $2, output = $3, error = $4, \
     record = $5, finished_at = $6, started_at = COALESCE(started_at, $6), lease_owner = NULL, \
     lease_expires_at = NULL, outcome = $7, outcome_reason = $8 \
     WHERE id = $1 AND status IN ('queued', 'running')";

/// `$1` run, `$2` error, `$3` now, `$4` outcome, `$5` outcome reason, `$6` cancel reason: a
/// queued run cancelled, never to start.
pub(crate) const CANCEL_QUEUED: &str = "UPDATE fm_runs SET status = 'cancelled', \
     cancel_requested = TRUE, error = $2, finished_at = $3, outcome = $4, \
     outcome_reason = $5, cancel_reason = $6, cancel_outcome = $4 WHERE id = $1";

/// `$1` run, `$2` reason, `$3` outcome: the first request's reason and outcome are kept.
pub(crate) const CANCEL_RUNNING: &str = "UPDATE fm_runs SET cancel_requested = TRUE, \
     cancel_reason = COALESCE(cancel_reason, $2), \
     cancel_outcome = CASE WHEN cancel_reason IS NULL THEN $3 ELSE cancel_outcome END \
     WHERE id = $1";

pub(crate) const BUDGET_COUNT: &str =
    "SELECT COUNT(*) FROM fm_budget_uses WHERE key = $1 AND used_at > $2";

pub(crate) const BUDGET_INSERT: &str =
    "INSERT INTO fm_budget_uses (key, used_at, run_id, stage) VALUES ($1, $2, $3, $4)";

/// A value bound to a dynamically built query.
pub(crate) enum Bind {
    Text(String),
    Int(i64),
}

/// The `list_runs` query: filters and the cursor as `$n` placeholders, newest first, one row
/// more than the page to know whether another page follows.
pub(crate) fn list_query(
    filter: &crate::RunFilter,
    limit: i64,
) -> Result<(String, Vec<Bind>), crate::StoreError> {
    let mut sql = format!("SELECT {RUN_COLS} FROM fm_runs WHERE 1 = 1");
    let mut binds = Vec::new();
    let mut push = |sql: &mut String, clause: &str, b: Bind| {
        binds.push(b);
        let n = binds.len();
        sql.push_str(&clause.replace("$?", &format!("${n}")));
    };
    if let Some(s) = filter.status {
        push(
            &mut sql,
            " AND status = $?",
            Bind::Text(s.as_str().to_owned()),
        );
    }
    match filter.outcome.as_deref() {
        None => {}
        Some("none") => sql.push_str(" AND outcome IS NULL"),
        Some(o) => push(&mut sql, " AND outcome = $?", Bind::Text(o.to_owned())),
    }
    if let Some(p) = &filter.pipeline {
        push(&mut sql, " AND pipeline = $?", Bind::Text(p.clone()));
    }
    if let Some(s) = &filter.service {
        push(&mut sql, " AND service = $?", Bind::Text(s.clone()));
    }
    if let Some(c) = &filter.cursor {
        let (ms, id) = decode_cursor(c).ok_or_else(|| crate::StoreError::Invalid {
            op: "list runs",
            message: format!("'{c}' is not a cursor returned by a previous page"),
        })?;
        push(&mut sql, " AND (created_at < $?", Bind::Int(ms));
        push(&mut sql, " OR (created_at = $?", Bind::Int(ms));
        push(&mut sql, " AND id < $?))", Bind::Text(id));
    }
    push(
        &mut sql,
        " ORDER BY created_at DESC, id DESC LIMIT $?",
        Bind::Int(limit + 1),
    );
    Ok((sql, binds))
}

/// Implements `RunStore`, `StartJournal` and `BudgetLedger` for a backend (see the module docs).
macro_rules! store_impl {
    ($Store:ident, $Db:ty, $Row:ty) => {
        use $crate::common::*;
        use $crate::types::*;
        use $crate::StoreError;
        use ::fm_core::durability::{BudgetDecision, BudgetLedger, StartJournal};
        use ::fm_core::events::{Event, RunError};
        use ::fm_core::record::RunRecord;
        use ::fm_core::state::RunStatus;
        use ::futures::future::BoxFuture;
        use ::sqlx::Row as _;
        use ::std::time::Duration;

        fn dbe(op: &'static str) -> impl FnOnce(::sqlx::Error) -> StoreError {
            move |e| StoreError::db($Store::BACKEND, op, e)
        }

        fn corrupt(op: &'static str) -> impl FnOnce(String) -> StoreError {
            move |m| StoreError::corrupt($Store::BACKEND, op, m)
        }

        fn get<'r, T>(row: &'r $Row, col: &str, op: &'static str) -> Result<T, StoreError>
        where
            T: ::sqlx::Decode<'r, $Db> + ::sqlx::Type<$Db>,
        {
            row.try_get::<T, _>(col).map_err(dbe(op))
        }

        fn parse_json<T: ::serde::de::DeserializeOwned>(
            text: Option<String>,
            what: &str,
            op: &'static str,
        ) -> Result<Option<T>, StoreError> {
            match text {
                None => Ok(None),
                Some(t) => serde_json::from_str(&t)
                    .map(Some)
                    .map_err(|e| StoreError::corrupt($Store::BACKEND, op, format!("{what}: {e}"))),
            }
        }

        fn summary_from_row(row: &$Row, op: &'static str) -> Result<(RunSummary, i64), StoreError> {
            let status: String = get(row, "status", op)?;
            let status = RunStatus::parse(&status)
                .ok_or_else(|| StoreError::corrupt($Store::BACKEND, op, format!("unknown run status '{status}'")))?;
            let created_at: i64 = get(row, "created_at", op)?;
            let started_at: Option<i64> = get(row, "started_at", op)?;
            let finished_at: Option<i64> = get(row, "finished_at", op)?;
            let claims: i32 = get(row, "claims", op)?;
            let attached: i32 = get(row, "attached_alerts", op)?;
            let error: Option<RunError> = parse_json(get(row, "error", op)?, "run error", op)?;
            let duration_ms = match (started_at, finished_at) {
                (Some(s), Some(f)) => Some(to_u64(f - s)),
                _ => None,
            };
            Ok((
                RunSummary {
                    id: get(row, "id", op)?,
                    pipeline: get(row, "pipeline", op)?,
                    status,
                    service: get(row, "service", op)?,
                    dedup_key: get(row, "dedup_key", op)?,
                    source: get(row, "source", op)?,
                    dry_run: get(row, "dry_run", op)?,
                    created_at: rfc3339(created_at),
                    started_at: started_at.map(rfc3339),
                    finished_at: finished_at.map(rfc3339),
                    duration_ms,
                    claims: to_u32(i64::from(claims)),
                    attached_alerts: to_u32(i64::from(attached)),
                    cancel_requested: get(row, "cancel_requested", op)?,
                    error,
                    outcome: get(row, "outcome", op)?,
                    outcome_reason: get(row, "outcome_reason", op)?,
                },
                created_at,
            ))
        }

        fn journal_row(row: &$Row, op: &'static str) -> Result<JournalRow, StoreError> {
            let attempts: i32 = get(row, "attempts", op)?;
            Ok(JournalRow {
                stage_id: get(row, "stage_id", op)?,
                status: get(row, "status", op)?,
                attempts: i64::from(attempts),
                output: get(row, "output", op)?,
                error: get(row, "error", op)?,
                started_at: get(row, "started_at", op)?,
                duration_ms: get(row, "duration_ms", op)?,
            })
        }

        impl $Store {
            /// Creates the schema or brings it up to date; safe to run from several processes
            /// at once.
            async fn migrate(pool: &::sqlx::Pool<$Db>) -> Result<(), StoreError> {
                let op = "migrate";
                let mut tx = Self::migration_tx(pool).await.map_err(dbe(op))?;
                ::sqlx::raw_sql(CREATE_VERSION_TABLE)
                    .execute(&mut *tx)
                    .await
                    .map_err(dbe(op))?;
                let applied: Vec<i64> =
                    ::sqlx::query_scalar("SELECT version FROM fm_schema_version")
                        .fetch_all(&mut *tx)
                        .await
                        .map_err(dbe(op))?;
                let known = $crate::migrate::latest();
                let current = applied.iter().copied().max().unwrap_or(0);
                if let Some(&unknown) = applied
                    .iter()
                    .find(|v| !$crate::migrate::MIGRATIONS.iter().any(|m| m.version == **v))
                {
                    return Err(StoreError::SchemaTooNew {
                        backend: Self::BACKEND,
                        found: unknown.max(current),
                        known,
                    });
                }
                for m in $crate::migrate::MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)) {
                    ::sqlx::raw_sql(m.sql(Self::BACKEND))
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| StoreError::Migrate {
                            backend: Self::BACKEND,
                            version: m.version,
                            name: m.name,
                            message: e.to_string(),
                        })?;
                    ::sqlx::query(
                        "INSERT INTO fm_schema_version (version, name, applied_at) VALUES ($1, $2, $3)",
                    )
                    .bind(m.version)
                    .bind(m.name)
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(dbe(op))?;
                }
                tx.commit().await.map_err(dbe(op))
            }

            async fn insert_run(
                &self,
                op: &'static str,
                run: NewRun,
                status: &'static str,
                lease: Option<(&str, Duration)>,
            ) -> Result<String, StoreError> {
                let input = json_text(&run.input).map_err(|m| StoreError::Invalid { op, message: format!("input: {m}") })?;
                let lease = lease.map(|(w, l)| (w.to_owned(), l));
                self.write(op, move |conn| Box::pin(async move {
                    let now = now_ms();
                    let res = ::sqlx::query(INSERT_RUN)
                        .bind(&run.id)
                        .bind(&run.pipeline)
                        .bind(status)
                        .bind(input)
                        .bind(&run.service)
                        .bind(&run.dedup_key)
                        .bind(&run.source)
                        .bind(run.dry_run)
                        .bind(now)
                        .bind(lease.as_ref().map(|_| now))
                        .bind(lease.as_ref().map(|(w, _)| w.clone()))
                        .bind(lease.as_ref().map(|(_, l)| now.saturating_add(dur_ms(*l))))
                        .bind(if lease.is_some() { 1_i32 } else { 0_i32 })
                        .execute(&mut *conn)
                        .await;
                    match res {
                        Ok(_) => Ok(run.id),
                        Err(::sqlx::Error::Database(d)) if d.is_unique_violation() => Err(StoreError::Invalid {
                            op,
                            message: match &run.dedup_key {
                                Some(k) => format!(
                                    "run id '{}' exists already, or a run with dedup key '{k}' is already queued or running",
                                    run.id
                                ),
                                None => format!("run id '{}' exists already", run.id),
                            },
                        }),
                        Err(e) => Err(StoreError::db(Self::BACKEND, op, e)),
                    }
                }))
                .await
            }

            /// One attempt at accepting an alert: `None` if another process started a run for
            /// the key between the two statements (try again, and attach to it).
            async fn try_accept_alert(
                &self,
                alert: &AlertIn,
                new_run: &NewRun,
                payload: &str,
                input: &str,
            ) -> Result<Option<AlertOutcome>, StoreError> {
                let op = "accept alert";
                let alert_id = new_alert_id();
                let received = ms_of(alert.received_at);
                let (source, key, service) = (alert.source.clone(), alert.dedup_key.clone(), alert.service.clone());
                let (payload, input, run) = (payload.to_owned(), input.to_owned(), new_run.clone());
                self.write(op, move |conn| Box::pin(async move {
                    if let Some(key) = &key {
                        let attached = ::sqlx::query(ATTACH_TO_ACTIVE)
                            .bind(key)
                            .fetch_optional(&mut *conn)
                            .await
                            .map_err(dbe(op))?;
                        if let Some(row) = attached {
                            let run_id: String = get(&row, "id", op)?;
                            let count: i32 = get(&row, "attached_alerts", op)?;
                            ::sqlx::query(INSERT_ALERT)
                                .bind(&alert_id)
                                .bind(&source)
                                .bind(key)
                                .bind(&service)
                                .bind(received)
                                .bind(&payload)
                                .bind(&run_id)
                                .bind("attached")
                                .execute(&mut *conn)
                                .await
                                .map_err(dbe(op))?;
                            return Ok(Some(AlertOutcome::Attached {
                                run_id,
                                alert_id,
                                count: to_u32(i64::from(count)),
                            }));
                        }
                    }
                    let inserted = ::sqlx::query(INSERT_RUN_UNLESS_ACTIVE)
                        .bind(&run.id)
                        .bind(&run.pipeline)
                        .bind(&input)
                        .bind(&run.service)
                        .bind(&key)
                        .bind(&run.source)
                        .bind(run.dry_run)
                        .bind(now_ms())
                        .execute(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    if inserted.rows_affected() == 0 {
                        // Nothing was written: the same as a rollback.
                        return Ok(None);
                    }
                    ::sqlx::query(INSERT_ALERT)
                        .bind(&alert_id)
                        .bind(&source)
                        .bind(&key)
                        .bind(&service)
                        .bind(received)
                        .bind(&payload)
                        .bind(&run.id)
                        .bind("started")
                        .execute(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    Ok(Some(AlertOutcome::Started { run_id: run.id, alert_id }))
                }))
                .await
            }

            async fn journal_op_exec(
                tx: &mut <$Db as ::sqlx::Database>::Connection,
                run_id: &str,
                j: JournalOp,
                now: i64,
            ) -> Result<(), ::sqlx::Error> {
                match j {
                    JournalOp::Start { stage, attempt, started_at } => {
                        ::sqlx::query(JOURNAL_START)
                            .bind(run_id)
                            .bind(stage)
                            .bind(to_i32(attempt))
                            .bind(started_at)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    JournalOp::Retrying { stage } => {
                        ::sqlx::query(JOURNAL_RETRYING)
                            .bind(run_id)
                            .bind(stage)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    JournalOp::Settle { stage, status, attempts, output, error, duration_ms } => {
                        ::sqlx::query(JOURNAL_SETTLE)
                            .bind(run_id)
                            .bind(stage)
                            .bind(status)
                            .bind(to_i32(attempts))
                            .bind(output)
                            .bind(error)
                            .bind(i64::try_from(duration_ms).unwrap_or(i64::MAX))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    JournalOp::End { stage, status, error, duration_ms } => {
                        ::sqlx::query(JOURNAL_END)
                            .bind(run_id)
                            .bind(stage)
                            .bind(status)
                            .bind(error)
                            .bind(duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)))
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                }
                Ok(())
            }
        }

        #[::async_trait::async_trait]
        impl $crate::RunStore for $Store {
            fn backend(&self) -> &'static str {
                Self::BACKEND
            }

            async fn ping(&self) -> Result<(), StoreError> {
                ::sqlx::query("SELECT 1").execute(&self.pool).await.map_err(dbe("ping"))?;
                Ok(())
            }

            async fn schema_version(&self) -> Result<i64, StoreError> {
                let v: Option<i64> = ::sqlx::query_scalar("SELECT MAX(version) FROM fm_schema_version")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(dbe("read schema version"))?;
                Ok(v.unwrap_or(0))
            }

            async fn enqueue_run(&self, run: NewRun) -> Result<RunId, StoreError> {
                self.insert_run("enqueue run", run, "queued", None).await
            }

            async fn begin_run(&self, run: NewRun, worker_id: &str, lease: Duration) -> Result<RunId, StoreError> {
                self.insert_run("begin run", run, "running", Some((worker_id, lease))).await
            }

            async fn accept_alert(&self, alert: AlertIn, new_run: NewRun) -> Result<AlertOutcome, StoreError> {
                let op = "accept alert";
                let payload = json_text(&alert.payload)
                    .map_err(|m| StoreError::Invalid { op, message: format!("payload: {m}") })?;
                let input = json_text(&new_run.input)
                    .map_err(|m| StoreError::Invalid { op, message: format!("input: {m}") })?;
                // Each retry means another process won a race for this key in between; a
                // handful is plenty (the next round attaches to the winner's run).
                for _ in 0..8 {
                    if let Some(outcome) = self.try_accept_alert(&alert, &new_run, &payload, &input).await? {
                        return Ok(outcome);
                    }
                }
                Err(StoreError::Invalid {
                    op,
                    message: format!(
                        "dedup key {:?} kept changing hands between runs; the alert was not stored, retry it",
                        alert.dedup_key
                    ),
                })
            }

            async fn record_alert_only(&self, alert: AlertIn) -> Result<String, StoreError> {
                let op = "record alert";
                let payload = json_text(&alert.payload)
                    .map_err(|m| StoreError::Invalid { op, message: format!("payload: {m}") })?;
                let id = new_alert_id();
                let received = ms_of(alert.received_at);
                let alert_id = id.clone();
                self.write(op, move |conn| Box::pin(async move {
                    ::sqlx::query(INSERT_RESOLVED_ALERT)
                        .bind(&alert_id)
                        .bind(&alert.source)
                        .bind(&alert.dedup_key)
                        .bind(&alert.service)
                        .bind(received)
                        .bind(payload)
                        .execute(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    Ok(())
                }))
                .await?;
                Ok(id)
            }

            async fn recent_alert_count(&self, service: &str, window: Duration, at_most: u32) -> Result<u32, StoreError> {
                let n: i64 = ::sqlx::query_scalar(RECENT_ALERTS)
                    .bind(service)
                    .bind(now_ms().saturating_sub(dur_ms(window)))
                    .bind(i64::from(at_most))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(dbe("count recent alerts"))?;
                Ok(to_u32(n))
            }

            async fn claim_next(&self, worker_id: &str, lease: Duration) -> Result<Option<ClaimedRun>, StoreError> {
                let op = "claim next run";
                let worker_id = worker_id.to_owned();
                self.write(op, move |conn| Box::pin(async move {
                    let now = now_ms();
                    let row = ::sqlx::query(Self::claim_sql())
                        .bind(&worker_id)
                        .bind(now.saturating_add(dur_ms(lease)))
                        .bind(now)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    let Some(row) = row else {
                        return Ok(None);
                    };
                    let id: String = get(&row, "id", op)?;
                    let claims: i32 = get(&row, "claims", op)?;
                    let input: String = get(&row, "input", op)?;
                    let input = serde_json::from_str(&input)
                        .map_err(|e| StoreError::corrupt(Self::BACKEND, op, format!("run '{id}' input: {e}")))?;
                    let resume = if claims > 1 {
                        let rows = ::sqlx::query(JOURNAL_ROWS)
                            .bind(&id)
                            .fetch_all(&mut *conn)
                            .await
                            .map_err(dbe(op))?;
                        let rows = rows
                            .iter()
                            .map(|r| journal_row(r, op))
                            .collect::<Result<Vec<_>, _>>()?;
                        Some(build_resume(rows).map_err(corrupt(op))?)
                    } else {
                        None
                    };
                    Ok(Some(ClaimedRun {
                        pipeline: get(&row, "pipeline", op)?,
                        input,
                        dry_run: get(&row, "dry_run", op)?,
                        service: get(&row, "service", op)?,
                        source: get(&row, "source", op)?,
                        cancel_requested: get(&row, "cancel_requested", op)?,
                        claims: to_u32(i64::from(claims)),
                        resume,
                        id,
                    }))
                }))
                .await
            }

            async fn heartbeat(&self, run_id: &str, worker_id: &str, lease: Duration) -> Result<bool, StoreError> {
                let op = "heartbeat";
                let (run_id, worker_id) = (run_id.to_owned(), worker_id.to_owned());
                self.write(op, move |conn| Box::pin(async move {
                    let r = ::sqlx::query(HEARTBEAT)
                        .bind(&run_id)
                        .bind(&worker_id)
                        .bind(now_ms().saturating_add(dur_ms(lease)))
                        .execute(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    Ok(r.rows_affected() == 1)
                }))
                .await
            }

            async fn release(&self, run_id: &str, worker_id: &str) -> Result<bool, StoreError> {
                let op = "release run";
                let (run_id, worker_id) = (run_id.to_owned(), worker_id.to_owned());
                self.write(op, move |conn| Box::pin(async move {
                    let r = ::sqlx::query(RELEASE)
                        .bind(&run_id)
                        .bind(&worker_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    Ok(r.rows_affected() == 1)
                }))
                .await
            }

            async fn append_events(&self, run_id: &str, events: &[Event]) -> Result<(), StoreError> {
                let op = "append events";
                if events.is_empty() {
                    return Ok(());
                }
                // Everything that can be prepared outside the write transaction is: the events'
                // JSON (their sequence numbers, known only inside it, are spliced in there) and
                // the journal writes they imply.
                let invalid = |m: String| StoreError::Invalid { op, message: m };
                let bodies = events
                    .iter()
                    .map(|e| json_text(&EventBody { at_ms: e.at_ms, kind: &e.kind }))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|m| invalid(format!("event: {m}")))?;
                let mut ops = Vec::new();
                for e in events {
                    if let Some(j) = journal_op(e).map_err(invalid)? {
                        ops.push(j);
                    }
                }
                let (settles, others) = coalesce_journal(ops);
                let (others, ends) = split_ends(others);
                let run_id = run_id.to_owned();
                self.write(op, move |conn| Box::pin(async move {
                    let n = i64::try_from(bodies.len()).unwrap_or(i64::MAX);
                    let now = now_ms();
                    let next: Option<i64> = ::sqlx::query_scalar(BUMP_EVENT_SEQ)
                        .bind(&run_id)
                        .bind(n)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    let Some(next) = next else {
                        return Err(StoreError::NotFound { op, run_id });
                    };
                    let base = to_u64(next - n);
                    let texts: Vec<(i64, String)> = (0u64..)
                        .zip(&bodies)
                        .map(|(i, body)| {
                            let seq = base + i;
                            (i64::try_from(seq).unwrap_or(i64::MAX), with_seq(seq, body))
                        })
                        .collect();
                    // Many rows per statement: one round trip per chunk, not per event.
                    for chunk in texts.chunks(EVENT_CHUNK) {
                        let mut q = ::sqlx::query(::sqlx::AssertSqlSafe(insert_events_sql(chunk.len())));
                        for (seq, text) in chunk {
                            q = q.bind(run_id.as_str()).bind(*seq).bind(text.as_str());
                        }
                        q.execute(&mut *conn).await.map_err(dbe(op))?;
                    }
                    for j in others {
                        Self::journal_op_exec(&mut *conn, &run_id, j, now).await.map_err(dbe(op))?;
                    }
                    // Skipped and cancelled stages: multi-row too (a run that takes one branch
                    // skips many stages at once).
                    for chunk in ends.chunks(END_CHUNK) {
                        let mut q = ::sqlx::query(::sqlx::AssertSqlSafe(journal_end_sql(chunk.len())))
                            .bind(run_id.as_str());
                        for j in chunk {
                            if let JournalOp::End { stage, status, error, duration_ms } = j {
                                q = q
                                    .bind(stage.as_str())
                                    .bind(*status)
                                    .bind(error.as_deref())
                                    .bind(duration_ms.map(|d| i64::try_from(d).unwrap_or(i64::MAX)))
                                    .bind(now);
                            }
                        }
                        q.execute(&mut *conn).await.map_err(dbe(op))?;
                    }
                    // Settled stages: a few multi-row statements, not one per stage.
                    for chunk in settles.chunks(SETTLE_CHUNK) {
                        let mut q = ::sqlx::query(::sqlx::AssertSqlSafe(journal_settle_sql(chunk.len())))
                            .bind(run_id.as_str());
                        for (j, started_at) in chunk {
                            if let JournalOp::Settle { stage, status, attempts, output, error, duration_ms } = j {
                                q = q
                                    .bind(stage.as_str())
                                    .bind(*status)
                                    .bind(to_i32(*attempts))
                                    .bind(output.as_deref())
                                    .bind(error.as_deref())
                                    .bind(i64::try_from(*duration_ms).unwrap_or(i64::MAX))
                                    .bind(started_at.as_deref())
                                    .bind(now);
                            }
                        }
                        q.execute(&mut *conn).await.map_err(dbe(op))?;
                    }
                    Ok(())
                }))
                .await
            }

            async fn journal_stage_start(
                &self,
                run_id: &str,
                stage: &str,
                attempt: u32,
                lease_owner: Option<&str>,
            ) -> Result<(), StoreError> {
                let op = "journal stage start";
                let (run_id, stage) = (run_id.to_owned(), stage.to_owned());
                let lease_owner = lease_owner.map(str::to_owned);
                self.write(op, move |conn| Box::pin(async move {
                    let now = now_ms();
                    let sql = format!(
                        "SELECT status, lease_owner, lease_expires_at FROM fm_runs WHERE id = $1{}",
                        Self::ROW_LOCK
                    );
                    let row = ::sqlx::query(::sqlx::AssertSqlSafe(sql))
                        .bind(&run_id)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    let Some(row) = row else {
                        return Err(StoreError::NotFound { op, run_id });
                    };
                    if let Some(worker) = lease_owner {
                        let status: String = get(&row, "status", op)?;
                        let owner: Option<String> = get(&row, "lease_owner", op)?;
                        let expires: Option<i64> = get(&row, "lease_expires_at", op)?;
                        let held = status == "running"
                            && owner.as_deref() == Some(worker.as_str())
                            && expires.is_some_and(|t| t >= now);
                        if !held {
                            return Err(StoreError::LeaseLost { op, run_id, worker });
                        }
                    }
                    let j = JournalOp::Start { stage, attempt, started_at: rfc3339(now) };
                    Self::journal_op_exec(&mut *conn, &run_id, j, now).await.map_err(dbe(op))
                }))
                .await
            }

            async fn finish_run(&self, run_id: &str, record: &RunRecord) -> Result<bool, StoreError> {
                let op = "finish run";
                if !record.status.is_terminal() {
                    return Err(StoreError::Invalid {
                        op,
                        message: format!(
                            "run '{run_id}': the record's status is '{}', not a final one",
                            record.status.as_str()
                        ),
                    });
                }
                let invalid = |m: String| StoreError::Invalid { op, message: m };
                let output = record.output.as_ref().map(json_text).transpose().map_err(invalid)?;
                let error = record.error.as_ref().map(json_text).transpose().map_err(invalid)?;
                let text = json_text(record).map_err(invalid)?;
                let status = record.status.as_str();
                let run_id = run_id.to_owned();
                let outcome = record.outcome.clone();
                let outcome_reason = record.outcome_reason.clone();
                self.write(op, move |conn| Box::pin(async move {
                    let r = ::sqlx::query(FINISH_RUN)
                        .bind(&run_id)
                        .bind(status)
                        .bind(output)
                        .bind(error)
                        .bind(text)
                        .bind(now_ms())
                        .bind(outcome)
                        .bind(outcome_reason)
                        .execute(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    if r.rows_affected() == 1 {
                        return Ok(true);
                    }
                    let n: i64 = ::sqlx::query_scalar("SELECT COUNT(*) FROM fm_runs WHERE id = $1")
                        .bind(&run_id)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    if n > 0 {
                        Ok(false)
                    } else {
                        Err(StoreError::NotFound { op, run_id })
                    }
                }))
                .await
            }

            async fn cancel_run(
                &self,
                run_id: &str,
                request: &::fm_core::CancelRequest,
            ) -> Result<CancelOutcome, StoreError> {
                let op = "request cancel";
                let reason = if request.reason.trim().is_empty() {
                    "cancel requested".to_owned()
                } else {
                    request.reason.clone()
                };
                let error = json_text(&RunError {
                    stage: None,
                    kind: "cancelled".to_owned(),
                    message: format!("cancelled before it started ({reason})"),
                })
                .map_err(|m| StoreError::Invalid { op, message: m })?;
                let outcome = request.outcome.clone();
                let id = run_id.to_owned();
                let result = self.write(op, move |conn| Box::pin(async move {
                    let sql = format!("SELECT status FROM fm_runs WHERE id = $1{}", Self::ROW_LOCK);
                    let status: Option<String> = ::sqlx::query_scalar(::sqlx::AssertSqlSafe(sql))
                        .bind(&id)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    Ok(match status.as_deref() {
                        None => CancelOutcome::NotFound,
                        Some("queued") => {
                            let outcome_reason = outcome.as_ref().map(|_| reason.clone());
                            ::sqlx::query(CANCEL_QUEUED)
                                .bind(&id)
                                .bind(error)
                                .bind(now_ms())
                                .bind(&outcome)
                                .bind(outcome_reason)
                                .bind(&reason)
                                .execute(&mut *conn)
                                .await
                                .map_err(dbe(op))?;
                            CancelOutcome::Cancelled
                        }
                        Some("running") => {
                            ::sqlx::query(CANCEL_RUNNING)
                                .bind(&id)
                                .bind(&reason)
                                .bind(&outcome)
                                .execute(&mut *conn)
                                .await
                                .map_err(dbe(op))?;
                            // Delivered to every listening process when the transaction commits.
                            if let Some(notify) = Self::NOTIFY_CANCEL {
                                ::sqlx::query(notify)
                                    .bind(&id)
                                    .execute(&mut *conn)
                                    .await
                                    .map_err(dbe(op))?;
                            }
                            CancelOutcome::Requested
                        }
                        Some(_) => CancelOutcome::AlreadyFinished,
                    })
                }))
                .await?;
                if result == CancelOutcome::Requested {
                    // This process's own workers hear it at once, whatever the backend.
                    let _ = self.cancels.send(run_id.to_owned());
                }
                Ok(result)
            }

            async fn cancel_request(
                &self,
                run_id: &str,
            ) -> Result<Option<::fm_core::CancelRequest>, StoreError> {
                let op = "read cancel request";
                let row = ::sqlx::query(
                    "SELECT cancel_requested, cancel_reason, cancel_outcome FROM fm_runs WHERE id = $1",
                )
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(dbe(op))?;
                let Some(row) = row else { return Ok(None) };
                let requested: bool = get(&row, "cancel_requested", op)?;
                if !requested {
                    return Ok(None);
                }
                let reason: Option<String> = get(&row, "cancel_reason", op)?;
                Ok(Some(::fm_core::CancelRequest {
                    reason: reason.unwrap_or_else(|| "cancel requested".to_owned()),
                    outcome: get(&row, "cancel_outcome", op)?,
                }))
            }

            fn cancel_notifications(&self) -> ::tokio::sync::broadcast::Receiver<String> {
                self.listen_for_cancels();
                self.cancels.subscribe()
            }

            async fn is_cancel_requested(&self, run_id: &str) -> Result<bool, StoreError> {
                let v: Option<bool> = ::sqlx::query_scalar("SELECT cancel_requested FROM fm_runs WHERE id = $1")
                    .bind(run_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(dbe("read cancel request"))?;
                Ok(v.unwrap_or(false))
            }

            async fn consume_budget(
                &self,
                key: &str,
                max: u32,
                per: Duration,
                run_id: &str,
                stage: &str,
            ) -> Result<BudgetDecision, StoreError> {
                let op = "consume budget";
                let (key, run_id, stage) = (key.to_owned(), run_id.to_owned(), stage.to_owned());
                self.write(op, move |conn| Box::pin(async move {
                    let now = now_ms();
                    Self::lock_budget(&mut *conn, &key).await.map_err(dbe(op))?;
                    let used: i64 = ::sqlx::query_scalar(BUDGET_COUNT)
                        .bind(&key)
                        .bind(now.saturating_sub(dur_ms(per)))
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    let used = to_u32(used);
                    if used >= max {
                        // Nothing was written.
                        return Ok(BudgetDecision::Exceeded { used });
                    }
                    ::sqlx::query(BUDGET_INSERT)
                        .bind(&key)
                        .bind(now)
                        .bind(&run_id)
                        .bind(&stage)
                        .execute(&mut *conn)
                        .await
                        .map_err(dbe(op))?;
                    Ok(BudgetDecision::Allowed { used: used + 1 })
                }))
                .await
            }

            async fn get_run(&self, run_id: &str) -> Result<Option<StoredRun>, StoreError> {
                let op = "get run";
                let sql = format!("SELECT {RUN_COLS}, input, output, record FROM fm_runs WHERE id = $1");
                let row = ::sqlx::query(::sqlx::AssertSqlSafe(sql))
                    .bind(run_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(dbe(op))?;
                let Some(row) = row else { return Ok(None) };
                let (summary, _) = summary_from_row(&row, op)?;
                let input: Option<serde_json::Value> = parse_json(Some(get(&row, "input", op)?), "input", op)?;
                Ok(Some(StoredRun {
                    summary,
                    input: input.unwrap_or(serde_json::Value::Null),
                    output: parse_json(get(&row, "output", op)?, "output", op)?,
                    record: parse_json(get(&row, "record", op)?, "record", op)?,
                }))
            }

            async fn list_runs(&self, filter: &RunFilter) -> Result<Page<RunSummary>, StoreError> {
                let op = "list runs";
                let limit = match filter.limit {
                    0 => 50,
                    n => i64::from(n.min(1000)),
                };
                let (sql, binds) = list_query(filter, limit)?;
                let mut q = ::sqlx::query(::sqlx::AssertSqlSafe(sql));
                for b in binds {
                    q = match b {
                        Bind::Text(s) => q.bind(s),
                        Bind::Int(i) => q.bind(i),
                    };
                }
                let rows = q.fetch_all(&self.pool).await.map_err(dbe(op))?;
                let mut items = Vec::with_capacity(rows.len());
                let mut last = None;
                for row in rows.iter().take(usize::try_from(limit).unwrap_or(50)) {
                    let (s, created) = summary_from_row(row, op)?;
                    last = Some(encode_cursor(created, &s.id));
                    items.push(s);
                }
                let more = i64::try_from(rows.len()).unwrap_or(0) > limit;
                Ok(Page { items, next_cursor: if more { last } else { None } })
            }

            async fn events(&self, run_id: &str, after_seq: Option<u64>) -> Result<Vec<Event>, StoreError> {
                let op = "read events";
                let after = after_seq.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX));
                let texts: Vec<String> = ::sqlx::query_scalar(
                    "SELECT event FROM fm_events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
                )
                .bind(run_id)
                .bind(after)
                .fetch_all(&self.pool)
                .await
                .map_err(dbe(op))?;
                texts
                    .iter()
                    .map(|t| {
                        serde_json::from_str::<Event>(t)
                            .map_err(|e| StoreError::corrupt(Self::BACKEND, op, format!("event: {e}")))
                    })
                    .collect()
            }

            async fn journal(&self, run_id: &str) -> Result<Vec<JournalEntry>, StoreError> {
                let op = "read journal";
                let rows = ::sqlx::query(JOURNAL_ROWS)
                    .bind(run_id)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(dbe(op))?;
                rows.iter()
                    .map(|r| {
                        let j = journal_row(r, op)?;
                        Ok(JournalEntry {
                            output: parse_json(j.output, "stage output", op)?,
                            error: parse_json(j.error, "stage error", op)?,
                            stage_id: j.stage_id,
                            status: j.status,
                            attempts: to_u32(j.attempts),
                            started_at: j.started_at,
                            duration_ms: j.duration_ms.map(to_u64),
                        })
                    })
                    .collect()
            }

            async fn queue_depth(&self) -> Result<u64, StoreError> {
                let n: i64 = ::sqlx::query_scalar("SELECT COUNT(*) FROM fm_runs WHERE status = 'queued'")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(dbe("queue depth"))?;
                Ok(to_u64(n))
            }

            async fn run_counts(&self) -> Result<Vec<RunCount>, StoreError> {
                let op = "count runs";
                let rows = ::sqlx::query(
                    "SELECT pipeline, status, COUNT(*) AS n FROM fm_runs GROUP BY pipeline, status \
                     ORDER BY pipeline, status",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(dbe(op))?;
                rows.iter()
                    .map(|r| {
                        let status: String = get(r, "status", op)?;
                        Ok(RunCount {
                            pipeline: get(r, "pipeline", op)?,
                            status: RunStatus::parse(&status).ok_or_else(|| {
                                StoreError::corrupt(Self::BACKEND, op, format!("unknown run status '{status}'"))
                            })?,
                            count: to_u64(get(r, "n", op)?),
                        })
                    })
                    .collect()
            }

            async fn alert_counts(&self) -> Result<Vec<AlertCount>, StoreError> {
                let op = "count alerts";
                let rows = ::sqlx::query(
                    "SELECT source, disposition, COUNT(*) AS n FROM fm_alerts \
                     GROUP BY source, disposition ORDER BY source, disposition",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(dbe(op))?;
                rows.iter()
                    .map(|r| {
                        Ok(AlertCount {
                            source: get(r, "source", op)?,
                            disposition: get(r, "disposition", op)?,
                            count: to_u64(get(r, "n", op)?),
                        })
                    })
                    .collect()
            }

            async fn close(&self) {
                self.close_writes().await;
                self.pool.close().await;
            }
        }

        impl StartJournal for $Store {
            fn stage_starting<'a>(&'a self, run_id: &'a str, stage: &'a str, attempt: u32) -> BoxFuture<'a, Result<(), String>> {
                Box::pin(async move {
                    $crate::RunStore::journal_stage_start(self, run_id, stage, attempt, None)
                        .await
                        .map_err(|e| e.to_string())
                })
            }
        }

        impl BudgetLedger for $Store {
            fn try_consume<'a>(
                &'a self,
                key: &'a str,
                max: u32,
                per: Duration,
                run_id: &'a str,
                stage: &'a str,
            ) -> BoxFuture<'a, Result<BudgetDecision, String>> {
                Box::pin(async move {
                    $crate::RunStore::consume_budget(self, key, max, per, run_id, stage)
                        .await
                        .map_err(|e| e.to_string())
                })
            }
        }
    };
}

pub(crate) use store_impl;
