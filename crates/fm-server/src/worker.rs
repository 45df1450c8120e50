//! Workers: claim a run from the store (with a lease), run it with its journal and budgets in
//! the store, heartbeat while it runs, finish it. A run whose lease expired (its server died) is
//! claimed again and resumed from its journal.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fm_core::durability::BudgetLedger;
use fm_core::events::{Event, EventKind, EventSink};
use fm_core::{CancelRequest, CancelSignal, ErrorKind, RunOptions};
use fm_store::{leased_journal, ClaimedRun};

use crate::metrics::{
    BUDGET_REFUSALS_TOTAL, REMEDIATIONS_TOTAL, RUNS_IN_PROGRESS, RUNS_TOTAL, STAGE_DURATION,
};
use crate::state::Shared;

/// Starts `n` workers; each stops claiming when shutdown begins and ends when its run does.
pub fn spawn_workers(state: Shared, n: usize) -> Vec<tokio::task::JoinHandle<()>> {
    (0..n)
        .map(|i| {
            let state = state.clone();
            tokio::spawn(async move { worker_loop(state, i).await })
        })
        .collect()
}

/// After shutdown's deadline: the runs still executing here go back to the queue, so another
/// server (or this one, restarted) resumes them from their journals at once instead of after
/// their leases expire. Their workers must have been stopped first.
pub async fn hand_back_in_flight(state: &Shared) {
    let runs: Vec<(String, String)> = state
        .in_flight
        .lock()
        .map(|m| m.iter().map(|(r, w)| (r.clone(), w.clone())).collect())
        .unwrap_or_default();
    for (run_id, worker_id) in runs {
        match state.store.release(&run_id, &worker_id).await {
            Ok(true) => {
                tracing::warn!(run = %run_id, "handed back to the queue unfinished; it resumes from its journal")
            }
            Ok(false) => {}
            Err(e) => {
                tracing::error!(run = %run_id, error = %e, "handing the run back failed; its lease will expire")
            }
        }
    }
}

async fn worker_loop(state: Shared, slot: usize) {
    let worker_id = format!("{}/{slot}", state.worker_id);
    loop {
        if state.shutting_down.load(Ordering::SeqCst) {
            return;
        }
        match state.store.claim_next(&worker_id, state.config.lease).await {
            Ok(Some(run)) => execute(&state, &worker_id, run).await,
            Ok(None) => {
                // Woken at once for runs queued here; other servers' runs are found by polling.
                let _ =
                    tokio::time::timeout(Duration::from_millis(500), state.work_ready.notified())
                        .await;
            }
            Err(e) => {
                tracing::error!(error = %e, "claiming a run failed; retrying in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Forwards a run's events to the store (batched, in order) and to the metrics.
struct StoreSink {
    writer: crate::recorder::WriterSink,
    state: Shared,
    pipeline: String,
    remediations: Vec<String>,
}

impl StoreSink {
    /// Duration histogram and, for remediation stages, the outcome counter.
    fn stage_settled(&self, stage: &str, duration_ms: u64, outcome: &str) {
        let m = &self.state.metrics;
        m.observe(
            STAGE_DURATION,
            &[("pipeline", &self.pipeline), ("stage", stage)],
            duration_ms as f64 / 1000.0,
        );
        if self.remediations.iter().any(|r| r == stage) {
            m.inc(
                REMEDIATIONS_TOTAL,
                &[("action", stage), ("outcome", outcome)],
            );
        }
    }
}

impl EventSink for StoreSink {
    fn emit(&self, e: &Event) {
        self.writer.emit(e);
        match &e.kind {
            EventKind::StageSucceeded {
                stage, duration_ms, ..
            } => self.stage_settled(stage, *duration_ms, "succeeded"),
            EventKind::StageFailed {
                stage,
                error,
                duration_ms,
                ..
            } => {
                self.stage_settled(stage, *duration_ms, error.kind.as_str());
                if error.kind == ErrorKind::BudgetExceeded {
                    self.state
                        .metrics
                        .inc(BUDGET_REFUSALS_TOTAL, &[("stage", stage)]);
                }
            }
            EventKind::RunFinished {
                status, outcome, ..
            } => {
                self.state.metrics.inc(
                    RUNS_TOTAL,
                    &[
                        ("pipeline", &self.pipeline),
                        ("status", status.as_str()),
                        ("outcome", outcome.as_deref().unwrap_or("none")),
                    ],
                );
            }
            _ => {}
        }
    }
}

async fn execute(state: &Shared, worker_id: &str, run: ClaimedRun) {
    let Some(pipeline) = state.pipeline(&run.pipeline).cloned() else {
        tracing::error!(run = %run.id, pipeline = %run.pipeline, "claimed a run of a pipeline this server does not have; handing it back");
        let _ = state.store.release(&run.id, worker_id).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        return;
    };
    tracing::info!(run = %run.id, pipeline = %run.pipeline, claims = run.claims, resumed = run.resume.is_some(), "run claimed");
    if let Ok(mut m) = state.in_flight.lock() {
        m.insert(run.id.clone(), worker_id.to_owned());
    }
    state.metrics.add(RUNS_IN_PROGRESS, &[], 1.0);

    let writer = crate::recorder::EventWriter::start(state.store.clone(), run.id.clone());
    let remediations = pipeline
        .stages
        .iter()
        .filter(|s| s.budget.is_some())
        .map(|s| s.id.clone())
        .collect();
    let sink = StoreSink {
        writer: writer.sink(),
        state: state.clone(),
        pipeline: run.pipeline.clone(),
        remediations,
    };

    // Registered before the cancel flag is read, so a request made in between is not missed.
    let cancel = CancelSignal::new();
    if let Ok(mut m) = state.cancels.lock() {
        m.insert(run.id.clone(), cancel.clone());
    }
    if run.cancel_requested {
        cancel_from_store(state, &run.id, &cancel).await;
    }
    let watcher = tokio::spawn(watch_for_cancel(
        state.clone(),
        run.id.clone(),
        cancel.clone(),
    ));
    let lease_lost = Arc::new(Mutex::new(false));
    let heartbeat = {
        let state = state.clone();
        let cancel = cancel.clone();
        let run_id = run.id.clone();
        let worker_id = worker_id.to_owned();
        let lost = lease_lost.clone();
        tokio::spawn(async move {
            let every = state.config.lease / 3;
            loop {
                tokio::time::sleep(every).await;
                match state
                    .store
                    .heartbeat(&run_id, &worker_id, state.config.lease)
                    .await
                {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(run = %run_id, "lease lost: another worker owns the run now; stopping here");
                        if let Ok(mut l) = lost.lock() {
                            *l = true;
                        }
                        // The new owner resumes the run (and its catch and finally stages):
                        // nothing more runs here, cleanup included.
                        cancel.cancel_with(CancelRequest::because(
                            "the lease was lost to another worker",
                        ));
                        cancel.abandon_cleanup();
                        return;
                    }
                    Err(e) => tracing::warn!(run = %run_id, error = %e, "heartbeat failed"),
                }
            }
        })
    };

    let budgets: Arc<dyn BudgetLedger> = state.store.clone();
    let record = match fm_core::prepare(&pipeline, run.input.clone(), &state.secrets) {
        Ok(prepared) => {
            let opts = RunOptions {
                run_id: Some(run.id.clone()),
                concurrency: fm_core::exec::DEFAULT_CONCURRENCY,
                timeout: None,
                cleanup_timeout: state.config.cleanup_timeout,
                dry_run: run.dry_run,
                artifacts_dir: Some(std::path::PathBuf::from(".fm").join("runs").join(&run.id)),
                cancel: cancel.clone(),
                resume: run.resume.clone(),
                budgets: Some(budgets),
                journal: Some(leased_journal(state.store.clone(), worker_id)),
            };
            Some(fm_core::run(&pipeline, prepared, opts, &sink).await)
        }
        Err(e) => {
            tracing::error!(run = %run.id, error = %e, "the run cannot start");
            None
        }
    };
    heartbeat.abort();
    watcher.abort();
    if let Ok(mut m) = state.cancels.lock() {
        m.remove(&run.id);
    }
    drop(sink);
    writer.flush().await;
    let lost = lease_lost.lock().map(|l| *l).unwrap_or(false);
    match record {
        Some(record) if !lost => {
            if let Err(e) = state.store.finish_run(&run.id, &record).await {
                tracing::error!(run = %run.id, error = %e, "storing the finished run failed");
            }
            tracing::info!(run = %run.id, status = record.status.as_str(), duration_ms = record.duration_ms, "run finished");
        }
        Some(_) => {}
        None => {
            let _ = state.store.request_cancel(&run.id).await;
        }
    }
    if let Ok(mut m) = state.in_flight.lock() {
        m.remove(&run.id);
    }
    state.metrics.add(RUNS_IN_PROGRESS, &[], -1.0);
}

/// How often a running run's cancel flag is read, besides the notifications: a request that a
/// notification missed (another process on SQLite, a PostgreSQL connection being re-made)
/// still stops the run within this time.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Cancels the run when its cancel is requested: announced by the store (at once) or found by
/// polling its flag.
async fn watch_for_cancel(state: Shared, run_id: String, cancel: CancelSignal) {
    loop {
        tokio::time::sleep(CANCEL_POLL).await;
        match state.store.cancel_request(&run_id).await {
            Ok(Some(request)) => {
                tracing::info!(run = %run_id, reason = %request.reason, "cancel requested");
                cancel.cancel_with(request);
                return;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(run = %run_id, error = %e, "reading the cancel flag failed"),
        }
    }
}

/// Reads the run's cancel request (reason, outcome) and cancels with it.
async fn cancel_from_store(state: &Shared, run_id: &str, cancel: &CancelSignal) {
    let request = match state.store.cancel_request(run_id).await {
        Ok(Some(r)) => r,
        _ => CancelRequest::because("cancel requested"),
    };
    tracing::info!(run = %run_id, reason = %request.reason, "cancel requested");
    cancel.cancel_with(request);
}

/// One task per server: forwards the store's cancel announcements to the runs executing here.
pub fn spawn_cancel_dispatch(state: Shared) -> tokio::task::JoinHandle<()> {
    let mut heard = state.store.cancel_notifications();
    tokio::spawn(async move {
        loop {
            let run_id = match heard.recv().await {
                Ok(id) => id,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let signal = state
                .cancels
                .lock()
                .ok()
                .and_then(|m| m.get(&run_id).cloned());
            if let Some(cancel) = signal {
                cancel_from_store(&state, &run_id, &cancel).await;
            }
        }
    })
}
