//! Stopping a run (a cancel, its time limit, an uncaught failure) without breaking the
//! always-notify promise: once a non-idempotent stage has started (it may have acted), the catch
//! and finally stages of the running trycatch scopes get a bounded cleanup time to tell people,
//! and nothing else starts; before that, everything stops at once. Also what the record and the
//! run's error say about it.

use std::time::{Duration, Instant};

use serde_json::json;

use super::Driver;
use crate::component::{ErrorKind, StageError};
use crate::events::{Cleanup, EventKind, StopReport};
use crate::model::{Control, ScopeRole};
use crate::state::{RunStatus, StageStatus};

/// Why the run is stopping early.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    Failed,
    TimedOut,
    Cancelled,
}

impl Stop {
    pub(super) fn status(self) -> RunStatus {
        match self {
            Stop::Failed => RunStatus::Failed,
            Stop::TimedOut => RunStatus::TimedOut,
            Stop::Cancelled => RunStatus::Cancelled,
        }
    }
}

/// What a stop started: the cause, what had acted, and the cleanup under way or its result.
pub(super) struct StopState {
    pub(super) cause: String,
    pub(super) at_ms: u64,
    pub(super) acted: Vec<usize>,
    /// Trycatch stages running when the stop came: their catch and finally stages may run.
    pub(super) scopes: Vec<usize>,
    /// `Ok(deadline)` while the cleanup runs; then its result.
    pub(super) phase: Result<Instant, Cleanup>,
    /// Stages started during the cleanup.
    pub(super) ran: Vec<usize>,
}

/// How the run's time limit and cleanup are set.
pub struct Limits {
    pub deadline: Option<Instant>,
    /// In words, for the record: `its time limit of 2s elapsed`.
    pub timeout_cause: String,
    pub cleanup: Duration,
}

impl Driver<'_, '_> {
    pub(super) fn cleanup_open(&self) -> bool {
        self.cleanup_deadline().is_some()
    }

    pub(super) fn cleanup_deadline(&self) -> Option<Instant> {
        self.stop_state.as_ref().and_then(|s| s.phase.ok())
    }

    /// The run stops starting new work. If a stage that may have acted had started and a
    /// trycatch scope is running, its catch and finally stages get `cleanup` to run; everything
    /// else stops now.
    pub(super) fn begin_stop(
        &mut self,
        kind: Stop,
        cause: String,
        cleanup: Duration,
        abandoned: bool,
    ) {
        self.stop = Some(kind);
        let n = self.p.stages.len();
        let acted: Vec<usize> = (0..n).filter(|&i| self.shared().has_acted(i)).collect();
        let scopes: Vec<usize> = (0..n)
            .filter(|&i| {
                matches!(self.p.stages[i].control, Control::TryCatch { .. })
                    && self.status[i] == StageStatus::Running
            })
            .collect();
        let phase = if acted.is_empty() {
            Err(Cleanup::NotNeeded)
        } else if scopes.is_empty() || cleanup.is_zero() {
            Err(Cleanup::NoScope)
        } else if abandoned {
            Err(Cleanup::Abandoned)
        } else {
            Ok(Instant::now() + cleanup)
        };
        let cleaning = phase.is_ok();
        self.emitter.emit(EventKind::RunStopping {
            status: kind.status(),
            cause: cause.clone(),
            acted: acted.iter().map(|&i| self.p.stages[i].id.clone()).collect(),
            cleanup_scopes: if cleaning {
                scopes
                    .iter()
                    .map(|&i| self.p.stages[i].id.clone())
                    .collect()
            } else {
                Vec::new()
            },
            cleanup_ms: if cleaning {
                u64::try_from(cleanup.as_millis()).unwrap_or(u64::MAX)
            } else {
                0
            },
        });
        self.stop_state = Some(StopState {
            cause,
            at_ms: self.shared().elapsed_ms(),
            acted,
            scopes,
            phase,
            ran: Vec::new(),
        });
        if !cleaning {
            self.abort_all();
            return;
        }
        // Stop the work that is not cleanup: its stages settle as cancelled when their futures
        // end; a try stage among them counts as its scope's failure, so the catch runs.
        for i in 0..n {
            if self.aborts[i].is_some() && !self.cleanup_allows(i) {
                self.note_interrupted_try(i, true);
                if let Some(h) = &self.aborts[i] {
                    h.abort();
                }
            }
        }
        // What has not started and is not cleanup never will.
        for i in self.p.topo_order.clone() {
            if self.status[i] == StageStatus::Pending && !self.cleanup_allows(i) {
                let reason = format!("not started: {}", self.cancel_reason(i));
                self.note_interrupted_try(i, false);
                self.settle_cancelled(i, None, reason);
            }
        }
        // The catch and finally stages whose turn has come start now.
        let scopes = self
            .stop_state
            .as_ref()
            .map(|s| s.scopes.clone())
            .unwrap_or_default();
        for t in scopes {
            self.after_scope_change(t);
        }
    }

    /// The cleanup time ran out, or the cleanup was abandoned: everything stops now.
    pub(super) fn end_cleanup(&mut self, how: Cleanup) {
        if let Some(s) = self.stop_state.as_mut() {
            s.phase = Err(how);
        }
        self.abort_all();
    }

    /// Whether stage `i` may start during the cleanup: it is (at some depth) a catch or finally
    /// stage of a trycatch scope given cleanup time.
    pub(super) fn cleanup_allows(&self, i: usize) -> bool {
        let Some(state) = &self.stop_state else {
            return false;
        };
        if state.phase.is_err() {
            return false;
        }
        let mut cur = self.p.stages[i].scope;
        while let Some(m) = cur {
            if matches!(m.role, ScopeRole::Catch | ScopeRole::Finally)
                && self.status[m.trycatch] == StageStatus::Running
            {
                return true;
            }
            cur = self.p.stages[m.trycatch].scope;
        }
        false
    }

    /// A try stage cancelled by the stop while its scope gets cleanup time: its scope did not
    /// complete, which is the scope's failure (the catch tells people).
    pub(super) fn note_interrupted_try(&mut self, i: usize, started: bool) {
        let Some(m) = self.p.stages[i].scope else {
            return;
        };
        if m.role != ScopeRole::Try
            || self.status[m.trycatch] != StageStatus::Running
            || !self.cleanup_open()
        {
            return;
        }
        let already = self.trycatch[m.trycatch]
            .as_ref()
            .is_some_and(|tc| tc.try_failed.is_some());
        if already {
            return;
        }
        let kind = if self.stop == Some(Stop::TimedOut) {
            ErrorKind::Timeout
        } else {
            ErrorKind::Cancelled
        };
        let what = match self.stop {
            Some(Stop::TimedOut) => "the run timed out",
            Some(Stop::Failed) => "the run stopped on a failure elsewhere",
            _ => "the run was cancelled",
        };
        let cause = self.stop_state.as_ref().map_or("", |s| s.cause.as_str());
        let message = if started {
            format!("{what} ({cause}) while it ran")
        } else {
            format!("{what} ({cause}) before it could run")
        };
        let error = StageError::new(kind, message).retryable(false);
        if let Some(tc) = self.trycatch[m.trycatch].as_mut() {
            tc.try_failed = Some((i, error.clone()));
        }
        let err = json!({"stage": self.p.stages[i].id, "message": error.message, "kind": error.kind.as_str()});
        if let Some(slot) = self.shared().provisional.get(m.trycatch) {
            if let Ok(mut g) = slot.lock() {
                *g = Some(json!({"outcome": "caught", "error": err}));
            }
        }
    }

    pub(super) fn stop_report(&self) -> Option<StopReport> {
        let s = self.stop_state.as_ref()?;
        let ids = |v: &[usize]| -> Vec<String> {
            v.iter().map(|&i| self.p.stages[i].id.clone()).collect()
        };
        let cleanup = s.phase.err().unwrap_or(Cleanup::Completed);
        let cleaning = !matches!(cleanup, Cleanup::NotNeeded | Cleanup::NoScope);
        let mut ran: Vec<usize> = s
            .ran
            .iter()
            .copied()
            .filter(|&i| matches!(self.status[i], StageStatus::Succeeded | StageStatus::Failed))
            .collect();
        ran.sort_unstable();
        let mut missed = Vec::new();
        if cleaning {
            for &t in &s.scopes {
                if let Control::TryCatch {
                    catch_stages,
                    finally_stages,
                    ..
                } = &self.p.stages[t].control
                {
                    for &c in catch_stages.iter().chain(finally_stages) {
                        if self.status[c] == StageStatus::Cancelled {
                            missed.push(c);
                        }
                    }
                }
            }
        }
        Some(StopReport {
            cause: s.cause.clone(),
            at_ms: s.at_ms,
            acted: ids(&s.acted),
            cleanup,
            cleanup_scopes: if cleaning { ids(&s.scopes) } else { Vec::new() },
            cleanup_stages: ids(&ran),
            cleanup_missed: ids(&missed),
        })
    }

    /// The run error's message for a cancelled or timed-out run: the cause, whether anything
    /// had acted, and what the cleanup did.
    pub(super) fn stop_message(&self, what: &str, report: Option<&StopReport>) -> String {
        let Some(r) = report else {
            return format!("{what}; running stages were cancelled");
        };
        let quoted = |v: &[String]| -> String {
            v.iter()
                .map(|s| format!("'{s}'"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let head = format!("{what} ({})", r.cause);
        match r.cleanup {
            Cleanup::NotNeeded => format!(
                "{head} before any stage that changes something had started: nothing was changed and no one was notified"
            ),
            Cleanup::NoScope => format!(
                "{head} after {} had started (it may have acted); no trycatch scope was running to handle it",
                quoted(&r.acted)
            ),
            Cleanup::Completed | Cleanup::TimedOut | Cleanup::Abandoned => {
                let acted = format!("{head} after {} had started (it may have acted)", quoted(&r.acted));
                let scopes = quoted(&r.cleanup_scopes);
                let ran = if r.cleanup_stages.is_empty() {
                    "none".to_owned()
                } else {
                    quoted(&r.cleanup_stages)
                };
                let missed = if r.cleanup_missed.is_empty() {
                    "none".to_owned()
                } else {
                    quoted(&r.cleanup_missed)
                };
                match r.cleanup {
                    Cleanup::Completed => format!(
                        "{acted}, so the catch and finally stages of {scopes} ran to tell people: {ran}"
                    ),
                    Cleanup::TimedOut => format!(
                        "{acted}; the catch and finally stages of {scopes} got the cleanup time and it ran out (ran: {ran}; did not finish: {missed})"
                    ),
                    _ => format!(
                        "{acted}; the cleanup by the catch and finally stages of {scopes} was abandoned (ran: {ran}; did not finish: {missed})"
                    ),
                }
            }
        }
    }
}
