//! Journaling a run's events into the store from a synchronous event sink: events are queued in
//! order and written in batches by one task, so the executor never waits on the database
//! (stage *starts* are written synchronously, through the start journal, before a stage acts).

use std::sync::Arc;

use fm_core::events::{Event, EventSink};
use fm_store::RunStore;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// How long events are gathered before a write.
const BATCH_WINDOW: std::time::Duration = std::time::Duration::from_millis(50);

pub struct EventWriter {
    tx: mpsc::UnboundedSender<Event>,
    task: JoinHandle<()>,
}

impl EventWriter {
    pub fn start(store: Arc<dyn RunStore>, run_id: String) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Event>();
        let task = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                // Gather for a moment: one transaction for a burst of events instead of one
                // each. Stage starts that must be durable before acting do not wait for this
                // (they go through the start journal).
                let mut batch = vec![first];
                let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
                while let Ok(Some(e)) = tokio::time::timeout_at(deadline, rx.recv()).await {
                    batch.push(e);
                }
                if let Err(e) = store.append_events(&run_id, &batch).await {
                    tracing::error!(run = %run_id, error = %e, "journaling events failed");
                }
            }
        });
        EventWriter { tx, task }
    }

    /// A sink that queues events for this writer.
    pub fn sink(&self) -> WriterSink {
        WriterSink(self.tx.clone())
    }

    /// Waits until every queued event is written.
    pub async fn flush(self) {
        drop(self.tx);
        let _ = self.task.await;
    }
}

pub struct WriterSink(mpsc::UnboundedSender<Event>);

impl EventSink for WriterSink {
    fn emit(&self, e: &Event) {
        let _ = self.0.send(e.clone());
    }
}
