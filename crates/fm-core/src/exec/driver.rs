//! The scheduler: starts each stage as soon as what it waits for has settled (no wave barrier),
//! runs independent stages concurrently up to a limit, propagates skips, runs trycatch scopes,
//! and stops the run deterministically on an uncaught failure.
//!
//! Stopping (a cancel, the run's time limit, an uncaught failure) keeps one promise: once a
//! non-idempotent stage has started (it may have acted), the run does not end before the catch
//! and finally stages of its running trycatch scopes have had their cleanup time to tell people.
//! Nothing else starts; the running try stages are cancelled and count as the scope's failure,
//! so the catch runs. A run that had not acted stops at once and sends nothing more.

use std::collections::VecDeque;
use std::sync::OnceLock;
use std::time::Instant;

use fm_expr::Value;
use futures::future::{AbortHandle, Abortable, BoxFuture};
use futures::stream::{FuturesUnordered, StreamExt};
use futures::FutureExt;
use serde_json::json;

use crate::component::{ErrorKind, StageError};
use crate::events::{Cleanup, EventKind, RunError, StopReport};
use crate::exec::attempt::{run_stage, AttemptEnv, Settled};
use crate::exec::emit::Emitter;
use crate::exec::scope::{RunShared, StageView};
use crate::exec::CancelSignal;
use crate::model::{Control, OnError, Pipeline, ScopeRole, Trigger};
use crate::state::{RunStatus, SkipReason, StageStatus};

mod stop;
pub use stop::Limits;
use stop::{Stop, StopState};

/// Per-trycatch bookkeeping while its scope runs.
#[derive(Default)]
struct TryCatchState {
    try_failed: Option<(usize, StageError)>,
    catch_failed: Option<(usize, StageError)>,
    finally_failed: Option<(usize, StageError)>,
}

type StageFuture<'r> = BoxFuture<'r, (usize, Option<Settled>)>;

pub struct Driver<'p, 'r> {
    p: &'p Pipeline,
    env: &'r AttemptEnv<'r, 'p>,
    emitter: &'r Emitter<'r>,
    concurrency: usize,
    status: Vec<StageStatus>,
    queued: Vec<bool>,
    started_at: Vec<Option<Instant>>,
    route_skipped: Vec<Option<String>>,
    dependents: Vec<Vec<usize>>,
    trycatch: Vec<Option<TryCatchState>>,
    runnable: VecDeque<usize>,
    aborts: Vec<Option<AbortHandle>>,
    running: usize,
    fatal: Vec<(usize, StageError)>,
    stop: Option<Stop>,
    stop_state: Option<StopState>,
    resume: Option<crate::durability::ResumeState>,
}

pub struct DriverResult {
    pub status: RunStatus,
    pub error: Option<RunError>,
    pub stop: Option<StopReport>,
}

impl<'p, 'r> Driver<'p, 'r> {
    pub fn new(
        p: &'p Pipeline,
        env: &'r AttemptEnv<'r, 'p>,
        emitter: &'r Emitter<'r>,
        concurrency: usize,
        resume: Option<crate::durability::ResumeState>,
    ) -> Self {
        let n = p.stages.len();
        let mut dependents = vec![Vec::new(); n];
        for (i, s) in p.stages.iter().enumerate() {
            for &d in &s.depends_on {
                dependents[d].push(i);
            }
        }
        let trycatch = p
            .stages
            .iter()
            .map(|s| matches!(s.control, Control::TryCatch { .. }).then(TryCatchState::default))
            .collect();
        Driver {
            p,
            env,
            emitter,
            concurrency: concurrency.max(1),
            status: vec![StageStatus::Pending; n],
            queued: vec![false; n],
            started_at: vec![None; n],
            route_skipped: vec![None; n],
            dependents,
            trycatch,
            runnable: VecDeque::new(),
            aborts: vec![None; n],
            running: 0,
            fatal: Vec::new(),
            stop: None,
            stop_state: None,
            resume,
        }
    }

    fn shared(&self) -> &'r RunShared<'p> {
        self.env.shared
    }

    pub async fn run(mut self, limits: Limits, cancel: &CancelSignal) -> DriverResult {
        let mut futs: FuturesUnordered<StageFuture<'r>> = FuturesUnordered::new();
        // A run cancelled before it starts (a server claiming a run whose cancel came first)
        // starts nothing.
        if cancel.is_cancelled() {
            let cause = cancel
                .request()
                .map_or_else(|| "cancel requested".to_owned(), |r| r.reason);
            self.begin_stop(
                Stop::Cancelled,
                cause,
                limits.cleanup,
                cancel.is_abandoned(),
            );
        }
        for i in self.p.topo_order.clone() {
            self.consider(i);
        }
        loop {
            if self.stop.is_none() || self.cleanup_open() {
                self.start_runnable(&mut futs);
            }
            if futs.is_empty() {
                break;
            }
            let run_deadline = async {
                match limits.deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let cleanup_deadline = self.cleanup_deadline();
            let cleanup_over = async {
                match cleanup_deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                Some((i, settled)) = futs.next() => {
                    self.running -= 1;
                    self.on_settled(i, settled);
                    if self.stop == Some(Stop::Failed) && self.stop_state.is_none() {
                        // Collect every stage that finished at the same instant, so the reported
                        // cause does not depend on which of them the runtime polled first.
                        while let Some(Some((j, s))) = futs.next().now_or_never() {
                            self.running -= 1;
                            self.on_settled(j, s);
                        }
                        let first = self.fatal.iter().map(|(i, _)| *i).min().unwrap_or(i);
                        let cause = format!("stage '{}' failed", self.p.stages[first].id);
                        self.begin_stop(Stop::Failed, cause, limits.cleanup, cancel.is_abandoned());
                    }
                }
                () = run_deadline, if self.stop.is_none() => {
                    self.begin_stop(Stop::TimedOut, limits.timeout_cause.clone(), limits.cleanup, cancel.is_abandoned());
                }
                () = cancel.cancelled(), if self.stop.is_none() => {
                    let cause = cancel.request().map_or_else(|| "cancel requested".to_owned(), |r| r.reason);
                    self.begin_stop(Stop::Cancelled, cause, limits.cleanup, cancel.is_abandoned());
                }
                () = cleanup_over, if cleanup_deadline.is_some() => {
                    self.end_cleanup(Cleanup::TimedOut);
                }
                () = cancel.abandoned(), if self.cleanup_open() => {
                    self.end_cleanup(Cleanup::Abandoned);
                }
            }
        }
        self.finish()
    }

    fn start_runnable(&mut self, futs: &mut FuturesUnordered<StageFuture<'r>>) {
        while self.running < self.concurrency {
            let Some(i) = self.runnable.pop_front() else {
                break;
            };
            if self.status[i] != StageStatus::Pending {
                continue;
            }
            if self.stop.is_some() && !self.cleanup_allows(i) {
                continue;
            }
            // Things may have changed while it waited for a slot (a sibling try stage failed).
            if let Decision::Skip(reason) = self.decide(i) {
                self.settle_skipped(i, reason);
                continue;
            }
            self.status[i] = StageStatus::Running;
            self.started_at[i] = Some(Instant::now());
            if let Some(s) = self.stop_state.as_mut() {
                s.ran.push(i);
            }
            let (handle, reg) = AbortHandle::new_pair();
            self.aborts[i] = Some(handle);
            let stage = &self.p.stages[i];
            let env = self.env;
            let fut = Abortable::new(async move { run_stage(stage, env).await }, reg);
            futs.push(Box::pin(fut.map(move |r| (i, r.ok()))));
            self.running += 1;
        }
    }

    fn abort_all(&mut self) {
        for h in self.aborts.iter().flatten() {
            h.abort();
        }
    }

    /// Decides whether pending stage `i` can run, must be skipped, or must wait.
    fn consider(&mut self, i: usize) {
        if self.status[i] != StageStatus::Pending || self.queued[i] {
            return;
        }
        if self.stop.is_some() && !self.cleanup_allows(i) {
            return;
        }
        match self.decide(i) {
            Decision::Wait => {}
            Decision::Skip(reason) => self.settle_skipped(i, reason),
            Decision::Run => {
                if matches!(self.p.stages[i].control, Control::TryCatch { .. }) {
                    self.start_trycatch(i);
                } else if self.replay_from_journal(i) {
                    // Settled from the journal: not executed again.
                } else {
                    self.queued[i] = true;
                    self.runnable.push_back(i);
                }
            }
        }
    }

    /// On resume: a stage the journal has settled takes its recorded result; one that was in
    /// flight and is not idempotent fails as `outcome_unknown` (it may have acted: never act
    /// twice). Returns whether the stage was settled here.
    fn replay_from_journal(&mut self, i: usize) -> bool {
        let Some(resume) = &self.resume else {
            return false;
        };
        let id = &self.p.stages[i].id;
        if let Some(j) = resume.settled.get(id).cloned() {
            if !self.p.stages[i].idempotent {
                // It ran in an earlier process: it may have acted.
                self.shared().mark_acted(i);
            }
            if j.succeeded {
                self.settle_succeeded(
                    i,
                    j.output.unwrap_or(Value::Null),
                    j.attempts,
                    j.duration_ms,
                );
            } else {
                let error = j.error.unwrap_or_else(|| {
                    StageError::new(ErrorKind::Internal, "failed (no error recorded)")
                });
                self.settle_failed(i, error, j.attempts, j.duration_ms);
            }
            return true;
        }
        if resume.in_flight.contains(id) && !self.p.stages[i].idempotent {
            self.shared().mark_acted(i);
            let error = StageError::new(
                ErrorKind::OutcomeUnknown,
                format!(
                    "stage '{id}' was in flight when fm stopped and is not idempotent, so it is not run again; \
                     its effect is unknown: check the target system by hand"
                ),
            )
            .retryable(false);
            self.settle_failed(i, error, 1, 0);
            return true;
        }
        false
    }

    fn decide(&self, i: usize) -> Decision {
        let stage = &self.p.stages[i];
        let p = self.p;
        if let Some(m) = stage.scope {
            let t = m.trycatch;
            let tid = &p.stages[t].id;
            match self.status[t] {
                StageStatus::Pending => return Decision::Wait,
                StageStatus::Skipped
                | StageStatus::Cancelled
                | StageStatus::Failed
                | StageStatus::Succeeded => {
                    return Decision::Skip(SkipReason::new(
                        "scope_skipped",
                        format!("its trycatch '{tid}' did not run"),
                    ))
                }
                StageStatus::Running | StageStatus::Retrying => {}
            }
            let Control::TryCatch {
                try_stages,
                catch_stages,
                ..
            } = &p.stages[t].control
            else {
                return Decision::Wait;
            };
            let tc = self.trycatch[t].as_ref();
            let try_failed = tc.and_then(|s| s.try_failed.as_ref());
            match m.role {
                ScopeRole::Try => {
                    if let Some((f, _)) = try_failed {
                        return Decision::Skip(SkipReason::new(
                            "try_aborted",
                            format!("try stage '{}' of '{tid}' failed first", p.stages[*f].id),
                        ));
                    }
                }
                ScopeRole::Catch => {
                    if !self.all_terminal(try_stages) {
                        return Decision::Wait;
                    }
                    if try_failed.is_none() {
                        return Decision::Skip(SkipReason::new(
                            "catch_not_needed",
                            format!("the try stages of '{tid}' did not fail"),
                        ));
                    }
                }
                ScopeRole::Finally => {
                    if !self.all_terminal(try_stages) || !self.all_terminal(catch_stages) {
                        return Decision::Wait;
                    }
                }
            }
        }
        for &r in &stage.routed_by {
            match self.status[r] {
                StageStatus::Succeeded => {}
                s if s.is_terminal() => {
                    return Decision::Skip(SkipReason::new(
                        "route_not_taken",
                        format!("router '{}' did not run ({})", p.stages[r].id, s.as_str()),
                    ))
                }
                _ => return Decision::Wait,
            }
        }
        if let Some(why) = &self.route_skipped[i] {
            return Decision::Skip(SkipReason::new("route_not_taken", why.clone()));
        }
        if !self.all_terminal(&stage.depends_on) {
            return Decision::Wait;
        }
        self.trigger_decision(i)
    }

    fn trigger_decision(&self, i: usize) -> Decision {
        let stage = &self.p.stages[i];
        let deps = &stage.depends_on;
        if deps.is_empty() {
            return Decision::Run;
        }
        let states: Vec<StageStatus> = deps.iter().map(|&d| self.status[d]).collect();
        let ok = match stage.trigger {
            Trigger::AllSuccess => states.iter().all(|s| *s == StageStatus::Succeeded),
            Trigger::AllDone => true,
            Trigger::AnySuccess => states.contains(&StageStatus::Succeeded),
            Trigger::NoneFailed => !states
                .iter()
                .any(|s| matches!(s, StageStatus::Failed | StageStatus::Cancelled)),
        };
        if ok {
            return Decision::Run;
        }
        let culprits: Vec<String> = deps
            .iter()
            .filter(|&&d| self.status[d] != StageStatus::Succeeded)
            .map(|&d| format!("'{}' {}", self.p.stages[d].id, self.status[d].as_str()))
            .collect();
        Decision::Skip(SkipReason::new(
            "trigger",
            format!(
                "trigger {} not met: {}",
                stage.trigger.as_str(),
                culprits.join(", ")
            ),
        ))
    }

    fn all_terminal(&self, ids: &[usize]) -> bool {
        ids.iter().all(|&d| self.status[d].is_terminal())
    }

    fn start_trycatch(&mut self, t: usize) {
        self.status[t] = StageStatus::Running;
        self.started_at[t] = Some(Instant::now());
        if let Some(s) = self.stop_state.as_mut() {
            s.ran.push(t);
        }
        self.emitter.emit(EventKind::StageStarted {
            stage: self.p.stages[t].id.clone(),
            attempt: 1,
            started_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        });
        self.after_scope_change(t);
    }

    /// Re-considers the members of trycatch `t` and settles it when its whole scope has.
    fn after_scope_change(&mut self, t: usize) {
        let Control::TryCatch {
            try_stages,
            catch_stages,
            finally_stages,
        } = &self.p.stages[t].control
        else {
            return;
        };
        let members: Vec<usize> = try_stages
            .iter()
            .chain(catch_stages)
            .chain(finally_stages)
            .copied()
            .collect();
        for m in &members {
            self.consider(*m);
        }
        if matches!(self.status[t], StageStatus::Running) && self.all_terminal(&members) {
            self.settle_trycatch(t, !catch_stages.is_empty());
        }
    }

    fn settle_trycatch(&mut self, t: usize, has_catch: bool) {
        let state = self.trycatch[t].take().unwrap_or_default();
        let id = &self.p.stages[t].id;
        let error_obj = |(s, e): &(usize, StageError)| json!({"stage": self.p.stages[*s].id, "message": e.message, "kind": e.kind.as_str()});
        let caught = state.try_failed.as_ref().map(error_obj);
        let failure = match (
            &state.try_failed,
            &state.catch_failed,
            &state.finally_failed,
            has_catch,
        ) {
            (_, Some((c, e)), _, _) => Some(format!(
                "catch stage '{}' failed: {}",
                self.p.stages[*c].id, e.message
            )),
            (_, _, Some((f, e)), _) => Some(format!(
                "finally stage '{}' failed: {}",
                self.p.stages[*f].id, e.message
            )),
            (Some((s, e)), None, None, false) => Some(format!(
                "try stage '{}' failed and '{id}' has no catch: {}",
                self.p.stages[*s].id, e.message
            )),
            _ => None,
        };
        let duration = self.duration_ms(t);
        match failure {
            None => {
                let outcome = if caught.is_some() {
                    "caught"
                } else {
                    "succeeded"
                };
                let output = json!({"outcome": outcome, "error": caught.unwrap_or(Value::Null)});
                self.settle_succeeded(t, output, 1, duration);
            }
            Some(message) => {
                let kind = state
                    .catch_failed
                    .as_ref()
                    .or(state.finally_failed.as_ref())
                    .or(state.try_failed.as_ref())
                    .map_or(ErrorKind::Internal, |(_, e)| e.kind);
                let mut err = StageError::new(kind, message).retryable(false);
                err.output =
                    Some(json!({"outcome": "failed", "error": caught.unwrap_or(Value::Null)}));
                self.settle_failed(t, err, 1, duration);
            }
        }
    }

    fn duration_ms(&self, i: usize) -> u64 {
        self.started_at[i].map_or(0, |s| {
            u64::try_from(s.elapsed().as_millis()).unwrap_or(u64::MAX)
        })
    }

    fn on_settled(&mut self, i: usize, settled: Option<Settled>) {
        self.aborts[i] = None;
        let duration = self.duration_ms(i);
        match settled {
            Some(Settled::Succeeded { output, attempts }) => {
                self.settle_succeeded(i, output, attempts, duration)
            }
            Some(Settled::Failed { error, attempts }) => {
                self.settle_failed(i, error, attempts, duration)
            }
            None => {
                self.note_interrupted_try(i, true);
                self.settle_cancelled(i, Some(duration), self.cancel_reason(i))
            }
        }
    }

    fn cancel_reason(&self, i: usize) -> String {
        let cause = self.stop_state.as_ref().map_or("", |s| s.cause.as_str());
        match (self.stop, self.stop_state.as_ref().map(|s| s.phase)) {
            (Some(_), Some(Err(Cleanup::TimedOut))) => {
                "the run's cleanup time ran out before this stage finished".into()
            }
            (Some(_), Some(Err(Cleanup::Abandoned))) => "the run's cleanup was abandoned".into(),
            (Some(Stop::TimedOut), _) => format!("the run timed out ({cause})"),
            (Some(Stop::Cancelled), _) => format!("the run was cancelled ({cause})"),
            (Some(Stop::Failed), _) => "another stage failed and the run stopped".into(),
            (None, _) => match self.p.stages[i].scope {
                Some(m) => format!(
                    "another try stage of '{}' failed",
                    self.p.stages[m.trycatch].id
                ),
                None => "cancelled".into(),
            },
        }
    }

    fn set_view(&self, i: usize, view: StageView) {
        let cell: &OnceLock<StageView> = &self.shared().views[i];
        let _ = cell.set(view);
    }

    fn settle_succeeded(&mut self, i: usize, output: Value, attempts: u32, duration_ms: u64) {
        self.status[i] = StageStatus::Succeeded;
        self.set_view(
            i,
            StageView {
                output: Some(output.clone()),
                status: Value::from("succeeded"),
                error: Value::Null,
                duration_ms: Value::from(duration_ms),
                attempts: Value::from(attempts),
            },
        );
        if let Control::Router { targets } = &self.p.stages[i].control {
            let selected: Vec<&str> = output
                .get("selected")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let route = output
                .get("route")
                .and_then(Value::as_str)
                .unwrap_or("none");
            for &t in targets {
                if !selected.contains(&self.p.stages[t].id.as_str()) {
                    self.route_skipped[t] = Some(format!(
                        "router '{}' chose route '{route}'",
                        self.p.stages[i].id
                    ));
                }
            }
        }
        self.emitter.emit(EventKind::StageSucceeded {
            stage: self.p.stages[i].id.clone(),
            output,
            attempts,
            duration_ms,
        });
        self.after_settle(i);
    }

    fn settle_failed(&mut self, i: usize, error: StageError, attempts: u32, duration_ms: u64) {
        self.status[i] = StageStatus::Failed;
        let stage = &self.p.stages[i];
        self.set_view(
            i,
            StageView {
                output: None,
                status: Value::from("failed"),
                error: json!({"kind": error.kind.as_str(), "message": error.message}),
                duration_ms: Value::from(duration_ms),
                attempts: Value::from(attempts),
            },
        );
        // Who handles the failure: the stage itself (continue), its trycatch, or the run.
        let fatal = match (stage.on_error, stage.scope) {
            (OnError::Continue, _) => false,
            (OnError::Fail, Some(m)) => {
                if let Some(tc) = self.trycatch[m.trycatch].as_mut() {
                    let slot = match m.role {
                        ScopeRole::Try => &mut tc.try_failed,
                        ScopeRole::Catch => &mut tc.catch_failed,
                        ScopeRole::Finally => &mut tc.finally_failed,
                    };
                    if slot.is_none() {
                        *slot = Some((i, error.clone()));
                    }
                }
                if m.role == ScopeRole::Try {
                    self.abort_try_siblings(m.trycatch, i, &error);
                }
                false
            }
            (OnError::Fail, None) => true,
        };
        self.emitter.emit(EventKind::StageFailed {
            stage: stage.id.clone(),
            error: error.clone(),
            attempts,
            duration_ms,
            fatal,
        });
        if fatal {
            // Nothing more is considered from here; the run loop then stops the run (after
            // collecting the failures of the same instant), giving cleanup time if it acted.
            self.fatal.push((i, error));
            if self.stop.is_none() {
                self.stop = Some(Stop::Failed);
            }
        }
        self.after_settle(i);
    }

    /// A try stage failed: the trycatch's error becomes visible to its catch stages and the
    /// other try stages still running are cancelled.
    fn abort_try_siblings(&mut self, t: usize, failed: usize, error: &StageError) {
        let err = json!({"stage": self.p.stages[failed].id, "message": error.message, "kind": error.kind.as_str()});
        if let Some(slot) = self.shared().provisional.get(t) {
            if let Ok(mut g) = slot.lock() {
                *g = Some(json!({"outcome": "caught", "error": err}));
            }
        }
        if let Control::TryCatch { try_stages, .. } = &self.p.stages[t].control {
            for &s in try_stages {
                if s != failed {
                    if let Some(h) = &self.aborts[s] {
                        h.abort();
                    }
                }
            }
        }
    }

    fn settle_skipped(&mut self, i: usize, reason: SkipReason) {
        self.status[i] = StageStatus::Skipped;
        self.set_view(
            i,
            StageView {
                output: None,
                status: Value::from("skipped"),
                error: Value::Null,
                duration_ms: Value::from(0),
                attempts: Value::from(0),
            },
        );
        self.emitter.emit(EventKind::StageSkipped {
            stage: self.p.stages[i].id.clone(),
            reason,
        });
        // A skipped trycatch skips its whole scope.
        if matches!(self.p.stages[i].control, Control::TryCatch { .. }) {
            self.after_scope_change(i);
        }
        self.after_settle(i);
    }

    fn settle_cancelled(&mut self, i: usize, duration_ms: Option<u64>, reason: String) {
        self.status[i] = StageStatus::Cancelled;
        self.set_view(
            i,
            StageView {
                output: None,
                status: Value::from("cancelled"),
                error: json!({"kind": "cancelled", "message": reason}),
                duration_ms: Value::from(duration_ms.unwrap_or(0)),
                attempts: Value::from(0),
            },
        );
        self.emitter.emit(EventKind::StageCancelled {
            stage: self.p.stages[i].id.clone(),
            duration_ms,
            reason,
        });
        self.after_settle(i);
    }

    /// Wakes everything whose decision may depend on stage `i`.
    fn after_settle(&mut self, i: usize) {
        if self.stop.is_some() && !self.cleanup_open() {
            return;
        }
        if let Control::Router { targets } = &self.p.stages[i].control {
            for &t in targets {
                self.consider(t);
            }
        }
        if let Some(m) = self.p.stages[i].scope {
            self.after_scope_change(m.trycatch);
        }
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.consider(d);
        }
    }

    fn finish(mut self) -> DriverResult {
        // A cleanup that ran out of work has completed.
        if let Some(s) = self.stop_state.as_mut() {
            if s.phase.is_ok() {
                s.phase = Err(Cleanup::Completed);
            }
        }
        // Whatever has not settled now never will: the run stopped.
        for i in self.p.topo_order.clone() {
            if !self.status[i].is_terminal() {
                let started = self.started_at[i].map(|_| self.duration_ms(i));
                let reason = match (self.stop, started) {
                    (None, _) => "never became ready (internal scheduling error)".to_owned(),
                    (_, Some(_)) => self.cancel_reason(i),
                    (Some(_), None) => format!("not started: {}", self.cancel_reason(i)),
                };
                if self.stop.is_none() {
                    self.fatal
                        .push((i, StageError::new(ErrorKind::Internal, reason.clone())));
                }
                self.settle_cancelled(i, started, reason);
            }
        }
        let report = self.stop_report();
        let (status, error) = match self.stop {
            Some(Stop::TimedOut) => (
                RunStatus::TimedOut,
                Some(RunError {
                    stage: None,
                    kind: "timeout".into(),
                    message: self.stop_message("the run timed out", report.as_ref()),
                }),
            ),
            Some(Stop::Cancelled) => (
                RunStatus::Cancelled,
                Some(RunError {
                    stage: None,
                    kind: "cancelled".into(),
                    message: self.stop_message("the run was cancelled", report.as_ref()),
                }),
            ),
            _ if !self.fatal.is_empty() => {
                // Deterministic: the failed stage that comes first in the pipeline file.
                self.fatal.sort_by_key(|(i, _)| *i);
                let (i, e) = &self.fatal[0];
                (
                    RunStatus::Failed,
                    Some(RunError {
                        stage: Some(self.p.stages[*i].id.clone()),
                        kind: e.kind.as_str().to_owned(),
                        message: e.message.clone(),
                    }),
                )
            }
            _ => (RunStatus::Succeeded, None),
        };
        DriverResult {
            status,
            error,
            stop: report,
        }
    }
}

enum Decision {
    Wait,
    Run,
    Skip(SkipReason),
}
