//! What every request handler and worker shares.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use fm_core::{CancelSignal, Pipeline, SecretSource};
use fm_store::RunStore;
use tokio::sync::Notify;

use crate::config::ServerConfig;
use crate::metrics::Metrics;

pub struct AppState {
    pub config: ServerConfig,
    pub store: Arc<dyn RunStore>,
    /// Compiled once at start, by name.
    pub pipelines: HashMap<String, Arc<Pipeline>>,
    pub secrets: SecretSource,
    /// Bearer tokens the API accepts (values, resolved from the secrets at start).
    pub api_tokens: Vec<String>,
    /// Signing secrets per trigger index (values).
    pub signing_secrets: Vec<Vec<String>>,
    pub metrics: Metrics,
    /// This process's identity in leases.
    pub worker_id: String,
    /// Woken when a run is queued here, so idle workers start it at once.
    pub work_ready: Notify,
    /// Set when shutdown begins: no new work is accepted or claimed.
    pub shutting_down: AtomicBool,
    /// Runs executing here, by run id, with the worker holding each lease: handed back to the
    /// queue if shutdown's deadline passes before they finish.
    pub in_flight: std::sync::Mutex<HashMap<String, String>>,
    /// The cancel signals of the runs executing here, by run id: a cancel request reaches its
    /// run at once (see `worker::spawn_cancel_dispatch`).
    pub cancels: std::sync::Mutex<HashMap<String, CancelSignal>>,
}

impl AppState {
    pub fn pipeline(&self, name: &str) -> Option<&Arc<Pipeline>> {
        self.pipelines.get(name)
    }
}

pub type Shared = Arc<AppState>;
