//! The plain data that goes in and out of a [`RunStore`](crate::RunStore).

use std::time::SystemTime;

use fm_core::durability::ResumeState;
use fm_core::events::RunError;
use fm_core::record::RunRecord;
use fm_core::state::RunStatus;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub type RunId = String;

/// A run to queue (or, through `accept_alert`, to start for an alert).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NewRun {
    /// Chosen by the caller (a UUID), so it can be answered before the run exists anywhere else.
    pub id: RunId,
    pub pipeline: String,
    pub input: Value,
    pub service: Option<String>,
    pub dedup_key: Option<String>,
    /// The webhook kind (`pagerduty`, `alertmanager`), `api`, or `cli`.
    pub source: String,
    pub dry_run: bool,
}

/// An inbound alert, as the webhook parsed it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AlertIn {
    /// The webhook kind: `pagerduty`, `alertmanager`, ...
    pub source: String,
    /// Alerts with the same key attach to the active run instead of starting another; `None`
    /// never deduplicates.
    pub dedup_key: Option<String>,
    pub service: Option<String>,
    pub payload: Value,
    pub received_at: SystemTime,
}

/// What `accept_alert` did with an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "disposition", rename_all = "snake_case")]
pub enum AlertOutcome {
    /// A new run was queued for it.
    Started { run_id: RunId, alert_id: String },
    /// A run for its dedup key was already queued or running: the alert was recorded against it.
    /// `count` is how many alerts are now attached to that run (not counting the one that
    /// started it).
    Attached {
        run_id: RunId,
        alert_id: String,
        count: u32,
    },
}

impl AlertOutcome {
    pub fn run_id(&self) -> &str {
        match self {
            AlertOutcome::Started { run_id, .. } | AlertOutcome::Attached { run_id, .. } => run_id,
        }
    }
}

/// A run a worker has claimed: it holds the lease until it finishes, releases, or stops
/// heartbeating.
#[derive(Debug, Clone)]
pub struct ClaimedRun {
    pub id: RunId,
    pub pipeline: String,
    pub input: Value,
    pub dry_run: bool,
    pub service: Option<String>,
    pub source: String,
    /// `Some` when the run had been claimed before (its lease expired, or it was handed back):
    /// what its journal says has settled and what was in flight.
    pub resume: Option<ResumeState>,
    /// How many times the run has been claimed, this claim included.
    pub claims: u32,
    /// A cancel was requested while the run was running: the worker should cancel it at once.
    pub cancel_requested: bool,
}

/// What `request_cancel` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelOutcome {
    /// The run was queued: it is now cancelled and will never start.
    Cancelled,
    /// The run is running: its worker sees the request (`is_cancel_requested`, heartbeats) and
    /// stops it.
    Requested,
    /// The run had already finished; nothing changed.
    AlreadyFinished,
    NotFound,
}

/// A filter for [`RunStore::list_runs`](crate::RunStore::list_runs). Newest first.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    /// The run's outcome (`escalated`, ...); `none` matches runs without one.
    #[serde(default)]
    pub outcome: Option<String>,
    pub pipeline: Option<String>,
    pub service: Option<String>,
    /// 1..=1000; 0 means the default (50).
    pub limit: u32,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// One page of a listing. `next_cursor` is `None` on the last page.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A run as listings show it. Times are RFC 3339 (UTC, milliseconds).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: RunId,
    pub pipeline: String,
    pub status: RunStatus,
    pub service: Option<String>,
    pub dedup_key: Option<String>,
    pub source: String,
    pub dry_run: bool,
    pub created_at: String,
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// From the first claim to the finish.
    pub duration_ms: Option<u64>,
    pub claims: u32,
    /// Alerts attached to the run after the one that started it.
    pub attached_alerts: u32,
    pub cancel_requested: bool,
    pub error: Option<RunError>,
    /// What the run achieved in the pipeline's words (`escalated`, `auto_remediated`,
    /// `resolved_before_action`, ...), when the pipeline declares an outcome or a cancel gave one.
    pub outcome: Option<String>,
    pub outcome_reason: Option<String>,
}

/// A run with everything stored about it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredRun {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub input: Value,
    pub output: Option<Value>,
    /// The final record (the fold of the run's events), once the run has finished.
    pub record: Option<RunRecord>,
}

/// A stage's row in the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    pub stage_id: String,
    /// `running`, `retrying`, `succeeded`, `failed`, `skipped`, `cancelled`.
    pub status: String,
    pub attempts: u32,
    pub output: Option<Value>,
    pub error: Option<Value>,
    pub started_at: Option<String>,
    pub duration_ms: Option<u64>,
}

/// Runs by pipeline and status, for metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCount {
    pub pipeline: String,
    pub status: RunStatus,
    pub count: u64,
}

/// Alerts by source and disposition (`started`, `attached`, `resolved_recorded`), for metrics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertCount {
    pub source: String,
    pub disposition: String,
    pub count: u64,
}
