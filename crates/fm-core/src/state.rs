//! The run and stage state machines, written down in one place.
//!
//! ```text
//! Stage:
//!   pending ──deps settled, trigger holds──▶ running ──ok──────────────▶ succeeded
//!      │                                      │  ▲
//!      │                                      │  └── retrying ◀─┐ (attempt failed or retry
//!      │                                      │                 │  condition held; attempts left)
//!      │                                      ├──error, no attempts left──▶ failed
//!      │                                      └──run cancelled / timed out / failed elsewhere──▶ cancelled
//!      ├──trigger rule false / route not taken / scope skipped──▶ skipped
//!      └──run ended before it could start──▶ cancelled
//!   A stage that was running when the process died is, on resume, re-run if idempotent,
//!   else failed with kind `outcome_unknown` (never executed twice).
//!
//! Run:
//!   queued ──claimed──▶ running ──all stages settled, no uncaught failure──▶ succeeded
//!                         ├──uncaught stage failure──▶ failed
//!                         ├──--timeout elapsed──▶ timed_out
//!                         └──Ctrl-C / cancel request──▶ cancelled
//! ```
//!
//! Terminal states never change. Skipped and cancelled stages are never counted as run.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum StageStatus {
    Pending,
    Running,
    Retrying,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
}

impl StageStatus {
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StageStatus::Succeeded
                | StageStatus::Failed
                | StageStatus::Skipped
                | StageStatus::Cancelled
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            StageStatus::Pending => "pending",
            StageStatus::Running => "running",
            StageStatus::Retrying => "retrying",
            StageStatus::Succeeded => "succeeded",
            StageStatus::Failed => "failed",
            StageStatus::Skipped => "skipped",
            StageStatus::Cancelled => "cancelled",
        }
    }

    /// Whether the transition `self -> next` is allowed by the machine above.
    pub fn can_become(self, next: StageStatus) -> bool {
        use StageStatus::*;
        matches!(
            (self, next),
            (Pending, Running | Skipped | Cancelled)
                | (Running, Retrying | Succeeded | Failed | Cancelled)
                | (Retrying, Running | Failed | Cancelled)
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
}

impl RunStatus {
    pub fn is_terminal(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::TimedOut => "timed_out",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "timed_out" => RunStatus::TimedOut,
            "cancelled" => RunStatus::Cancelled,
            _ => return None,
        })
    }
}

/// Why a stage did not run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkipReason {
    /// `route_not_taken`, `trigger`, `scope_skipped`, `try_aborted`, `catch_not_needed`.
    pub code: String,
    pub message: String,
}

impl SkipReason {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        SkipReason {
            code: code.to_owned(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StageStatus::*;

    #[test]
    fn terminal_states_never_change() {
        for t in [Succeeded, Failed, Skipped, Cancelled] {
            for n in [
                Pending, Running, Retrying, Succeeded, Failed, Skipped, Cancelled,
            ] {
                assert!(!t.can_become(n), "{t:?} -> {n:?} must be refused");
            }
        }
        assert!(Pending.can_become(Skipped));
        assert!(
            !Pending.can_become(Succeeded),
            "a stage must run before it succeeds"
        );
    }
}
