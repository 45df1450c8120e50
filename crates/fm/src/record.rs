//! `fm run` records its run in the local store, as a server would: the run, its events and
//! stage journal, its final record; and budgets are checked there, so they hold across runs.

use std::sync::Arc;
use std::time::Duration;

use fm_core::RunRecord;
use fm_server::recorder::{EventWriter, WriterSink};
use fm_store::{NewRun, RunStore};
use serde_json::Value;

pub struct Recording {
    pub store: Arc<dyn RunStore>,
    pub worker_id: String,
    run_id: String,
    writer: EventWriter,
    heartbeat: tokio::task::JoinHandle<()>,
}

const LEASE: Duration = Duration::from_secs(30);

/// Opens the store and registers the run as running under this process's lease. A store that
/// cannot be opened is reported and the run goes on unrecorded: the run matters more.
pub async fn begin(
    url: &str,
    run_id: &str,
    pipeline: &str,
    input: &Value,
    dry_run: bool,
) -> Option<Recording> {
    let store = match fm_store::open(url).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("warning: the run is not recorded ({e}); use --no-store to silence this");
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
        eprintln!("warning: the run is not recorded ({e}); use --no-store to silence this");
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
    let writer = EventWriter::start(store.clone(), run_id.to_owned());
    Some(Recording {
        store,
        worker_id,
        run_id: run_id.to_owned(),
        writer,
        heartbeat,
    })
}

impl Recording {
    pub fn writer_sink(&self) -> WriterSink {
        self.writer.sink()
    }

    pub async fn finish(self, record: &RunRecord) {
        self.heartbeat.abort();
        self.writer.flush().await;
        if let Err(e) = self.store.finish_run(&self.run_id, record).await {
            eprintln!("warning: the finished run could not be recorded: {e}");
        }
        self.store.close().await;
    }
}
