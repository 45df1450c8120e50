//! `fm run` records its run in the local store: the run, the start of every non-idempotent stage
//! before it acts (the start journal), and the final record (every stage, log line and warning,
//! the fold of the run's events); budgets are checked there too, so they hold across runs.
//!
//! Unlike a server, `fm run` does not store the event stream itself: nobody streams a CLI run's
//! events from the store, and writing thousands of rows would make a 2,000-stage run several
//! times slower. Nothing about safety depends on it: if this process dies, the start journal
//! tells a server resuming the run which non-idempotent stages may have acted, and those are
//! never repeated.

use std::sync::Arc;
use std::time::Duration;

use fm_core::{CancelSignal, RunRecord};
use fm_store::{NewRun, RunStore};
use serde_json::Value;

pub struct Recording {
    pub store: Arc<dyn RunStore>,
    pub worker_id: String,
    run_id: String,
    heartbeat: tokio::task::JoinHandle<()>,
    cancel_watch: tokio::task::JoinHandle<()>,
}

const LEASE: Duration = Duration::from_secs(30);

/// How often the run's cancel flag is read (a server sharing the store may cancel it through
/// its API): a cancel reaches the run within this time even where no notification does.
const CANCEL_POLL: Duration = Duration::from_millis(500);

/// Opens the store and registers the run as running under this process's lease. A store that
/// cannot be opened is reported and the run goes on unrecorded: the run matters more. A cancel
/// requested in the store (`POST /v1/runs/{id}/cancel` on a server sharing it) cancels the run.
pub async fn begin(
    url: &str,
    run_id: &str,
    pipeline: &str,
    input: &Value,
    dry_run: bool,
    cancel: CancelSignal,
) -> Option<Recording> {
    let store = match fm_store::open(url).await {
        Ok(s) => s,
        Err(e) => {
            errln!("warning: the run is not recorded ({e}); use --no-store to silence this");
            return None;
        }
    };
    let worker_id = format!("fm-run-{}", std::process::id());
    let service = input
        .pointer("/payload/source")
        .or_else(|| input.get("service"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let new = NewRun {
        id: run_id.to_owned(),
        pipeline: pipeline.to_owned(),
        input: input.clone(),
        service,
        dedup_key: None,
        source: "cli".into(),
        dry_run,
    };
    if let Err(e) = store.begin_run(new, &worker_id, LEASE).await {
        errln!("warning: the run is not recorded ({e}); use --no-store to silence this");
        return None;
    }
    let heartbeat = {
        let store = store.clone();
        let run_id = run_id.to_owned();
        let worker_id = worker_id.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE / 3).await;
                let _ = store.heartbeat(&run_id, &worker_id, LEASE).await;
            }
        })
    };
    let cancel_watch = {
        let store = store.clone();
        let run_id = run_id.to_owned();
        let mut heard = store.cancel_notifications();
        tokio::spawn(async move {
            loop {
                let _ = tokio::time::timeout(CANCEL_POLL, announced(&mut heard, &run_id)).await;
                if let Ok(Some(request)) = store.cancel_request(&run_id).await {
                    cancel.cancel_with(request);
                    return;
                }
            }
        })
    };
    Some(Recording {
        store,
        worker_id,
        run_id: run_id.to_owned(),
        heartbeat,
        cancel_watch,
    })
}

/// Waits until `run_id` is announced (never, once the announcements have ended).
async fn announced(heard: &mut tokio::sync::broadcast::Receiver<String>, run_id: &str) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match heard.recv().await {
            Ok(id) if id == run_id => return,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => std::future::pending::<()>().await,
        }
    }
}

impl Recording {
    pub async fn finish(self, record: &RunRecord) {
        self.heartbeat.abort();
        self.cancel_watch.abort();
        if let Err(e) = self.store.finish_run(&self.run_id, record).await {
            errln!("warning: the finished run could not be recorded: {e}");
        }
        self.store.close().await;
    }
}
