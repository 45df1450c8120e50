//! What the engine needs from a durable store, as traits and plain data, so that fm-core knows
//! nothing of databases: resuming a run from its journal, and remediation budgets that hold
//! across every worker.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use fm_expr::Value;
use futures::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::component::StageError;

/// A stage result read back from the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JournaledStage {
    pub succeeded: bool,
    pub output: Option<Value>,
    pub error: Option<StageError>,
    pub attempts: u32,
    pub duration_ms: u64,
}

/// The state of an interrupted run, as its journal tells it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ResumeState {
    /// Stages that succeeded or failed before the interruption: never run again.
    pub settled: HashMap<String, JournaledStage>,
    /// Stages that had started but not settled. Re-run if idempotent; otherwise failed with
    /// `outcome_unknown`, so that a remediation is never executed twice.
    pub in_flight: HashSet<String>,
}

/// Write-ahead record of stage starts. The executor awaits it before a stage acts, so that after
/// a crash the store knows the stage may have acted (settled results flow through the event
/// stream; losing one of those only turns a stage into `outcome_unknown`, never into a repeat).
pub trait StartJournal: Send + Sync {
    fn stage_starting<'a>(
        &'a self,
        run_id: &'a str,
        stage: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The answer of a budget check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetDecision {
    /// Consumed one unit; `used` now includes it.
    Allowed { used: u32 },
    /// Refused; nothing consumed.
    Exceeded { used: u32 },
}

/// Remediation budgets: "at most `max` per `per` for `key`", checked and consumed atomically.
pub trait BudgetLedger: Send + Sync {
    fn try_consume<'a>(
        &'a self,
        key: &'a str,
        max: u32,
        per: Duration,
        run_id: &'a str,
        stage: &'a str,
    ) -> BoxFuture<'a, Result<BudgetDecision, String>>;
}

/// A ledger that lives as long as the process: budgets hold within it (one `fm run`, tests).
/// Servers use the store's ledger so budgets hold across workers and restarts.
#[derive(Default)]
pub struct MemoryLedger {
    uses: Mutex<HashMap<String, Vec<SystemTime>>>,
}

impl BudgetLedger for MemoryLedger {
    fn try_consume<'a>(
        &'a self,
        key: &'a str,
        max: u32,
        per: Duration,
        _run_id: &'a str,
        _stage: &'a str,
    ) -> BoxFuture<'a, Result<BudgetDecision, String>> {
        Box::pin(async move {
            let now = SystemTime::now();
            let mut uses = self
                .uses
                .lock()
                .map_err(|_| "budget ledger lock poisoned".to_owned())?;
            let list = uses.entry(key.to_owned()).or_default();
            list.retain(|t| now.duration_since(*t).map_or(true, |age| age < per));
            let used = u32::try_from(list.len()).unwrap_or(u32::MAX);
            if used >= max {
                return Ok(BudgetDecision::Exceeded { used });
            }
            list.push(now);
            Ok(BudgetDecision::Allowed { used: used + 1 })
        })
    }
}
