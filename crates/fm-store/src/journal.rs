//! A start journal bound to one worker's lease.

use std::sync::Arc;

use fm_core::durability::StartJournal;
use futures::future::BoxFuture;

use crate::RunStore;

/// Journals stage starts only while `worker_id` holds the run's lease. A worker that stalled
/// past its lease (a long pause, a partition) and whose run another worker took over is refused
/// before its stage acts, so the two never both execute a remediation.
pub struct LeasedJournal {
    store: Arc<dyn RunStore>,
    worker_id: String,
}

/// The journal a worker hands to the executor for a run it claimed.
pub fn leased_journal(
    store: Arc<dyn RunStore>,
    worker_id: impl Into<String>,
) -> Arc<dyn StartJournal> {
    Arc::new(LeasedJournal {
        store,
        worker_id: worker_id.into(),
    })
}

impl StartJournal for LeasedJournal {
    fn stage_starting<'a>(
        &'a self,
        run_id: &'a str,
        stage: &'a str,
        attempt: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.store
                .journal_stage_start(run_id, stage, attempt, Some(&self.worker_id))
                .await
                .map_err(|e| e.to_string())
        })
    }
}
