//! The HTTP server: shared state, the router, and the [`Sandbox`] handle.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::auth;
use crate::options::{Latencies, SandboxOptions};
use crate::recorder::{self, RecordedRequest};
use crate::scenarios::Scenario;
use crate::state::World;

/// State shared by every handler.
pub(crate) struct Shared {
    world: Mutex<World>,
    requests: Mutex<Vec<RecordedRequest>>,
    next_seq: AtomicU64,
    pub latencies: Latencies,
    pub scenario: Scenario,
    pub started: Instant,
    /// Flips to true on shutdown, so simulated latencies and hangs end at once
    /// instead of holding the graceful shutdown hostage.
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    /// The world, locked. Handlers hold it briefly and never across an await.
    /// A poisoned lock (a handler panicked) still yields the data: the
    /// sandbox should keep answering rather than cascade the failure.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.requests.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn push_request(&self, mut rec: RecordedRequest) -> u64 {
        let seq = self.next_seq.fetch_add(1, Ordering::SeqCst) + 1;
        rec.seq = seq;
        self.log().push(rec);
        seq
    }

    pub fn finish_request(&self, seq: u64, status: u16, duration_ms: u64) {
        if let Some(r) = self.log().iter_mut().rev().find(|r| r.seq == seq) {
            r.status = Some(status);
            r.duration_ms = Some(duration_ms);
        }
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.log().clone()
    }

    pub fn clear_requests(&self) {
        self.log().clear();
    }

    /// Simulated latency. Returns early (false) if the sandbox is shutting down.
    pub async fn pause(&self, d: Duration) -> bool {
        if d.is_zero() {
            return true;
        }
        let mut rx = self.shutdown.clone();
        if *rx.borrow() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => true,
            _ = rx.wait_for(|v| *v) => false,
        }
    }
}

/// A running sandbox. Dropping it asks the server to stop; [`Sandbox::shutdown`]
/// also waits for it.
pub struct Sandbox {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown_tx: watch::Sender<bool>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Sandbox {
    /// Binds 127.0.0.1:`opts.port` and serves on the current tokio runtime.
    pub async fn start(opts: SandboxOptions) -> std::io::Result<Sandbox> {
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            world: Mutex::new(World::new(
                opts.scenario,
                opts.recovery_delay,
                SystemTime::now(),
            )),
            requests: Mutex::new(Vec::new()),
            next_seq: AtomicU64::new(0),
            latencies: opts.latencies,
            scenario: opts.scenario,
            started: Instant::now(),
            shutdown: shutdown_rx.clone(),
        });
        let app = router(shared.clone());
        let mut stop = shutdown_rx;
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|v| *v).await;
                })
                .await
        });
        tracing::debug!(%addr, scenario = opts.scenario.name(), "fm sandbox listening");
        Ok(Sandbox {
            addr,
            shared,
            shutdown_tx,
            task,
        })
    }

    /// `http://127.0.0.1:PORT`
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn scenario(&self) -> Scenario {
        self.shared.scenario
    }

    /// Input keys that point the incident pipeline at this sandbox.
    pub fn input_overrides(&self) -> Map<String, Value> {
        input_overrides_for(&self.base_url())
    }

    /// Secrets the pipeline needs, accepted by this sandbox.
    pub fn secrets(&self) -> BTreeMap<String, String> {
        secrets_for(&self.base_url())
    }

    /// Every request received so far (except `/_sandbox/...`), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.requests()
    }

    /// Forgets the recorded requests.
    pub fn clear_requests(&self) {
        self.shared.clear_requests()
    }

    /// The same JSON as `GET /_sandbox/state`.
    pub fn state(&self) -> Value {
        self.shared.world().to_json(SystemTime::now())
    }

    /// Serves until `signal` completes (e.g. ctrl-c), then shuts down.
    /// Returns early with the error if the server itself fails.
    pub async fn run_until<F: std::future::Future>(mut self, signal: F) -> std::io::Result<()> {
        tokio::select! {
            _ = signal => {}
            r = &mut self.task => {
                return match r {
                    Ok(r) => r,
                    Err(e) => Err(std::io::Error::other(e)),
                };
            }
        }
        self.shutdown().await;
        Ok(())
    }

    /// Stops the server: in-flight simulated latencies end at once; waits up
    /// to 2 s for connections to close, then aborts.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if tokio::time::timeout(Duration::from_secs(2), &mut self.task)
            .await
            .is_err()
        {
            self.task.abort();
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
    }
}

/// Starts a sandbox for a long-lived `fm sandbox` process. Same as
/// [`Sandbox::start`] (prints nothing); pass [`crate::DEFAULT_PORT`] as the port
/// so the files in `inputs/` work, then `run_until(tokio::signal::ctrl_c())`.
pub async fn serve_forever(opts: SandboxOptions) -> std::io::Result<Sandbox> {
    Sandbox::start(opts).await
}

/// [`Sandbox::input_overrides`] for a sandbox at `base_url` (e.g. to write input files).
pub fn input_overrides_for(base_url: &str) -> Map<String, Value> {
    let base = base_url.trim_end_matches('/');
    let mut m = Map::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), Value::String(v));
    };
    put("logging_api", format!("{base}/logs"));
    put("metrics_api", format!("{base}/prometheus"));
    put("deploy_api", format!("{base}/deploy"));
    put("k8s_api", format!("{base}/k8s"));
    put("health_api", format!("{base}/services"));
    put(
        "statuspage_api",
        format!("{base}/statuspage/v1/pages/{}", auth::STATUSPAGE_PAGE_ID),
    );
    put(
        "statuspage_component_id",
        auth::STATUSPAGE_COMPONENT_ID.to_string(),
    );
    m
}

/// [`Sandbox::secrets`] for a sandbox at `base_url`.
pub fn secrets_for(base_url: &str) -> BTreeMap<String, String> {
    let base = base_url.trim_end_matches('/');
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_string(), v);
    };
    put("LOGGING_TOKEN", auth::LOGGING_TOKEN.into());
    put("K8S_TOKEN", auth::K8S_TOKEN.into());
    put("DEPLOY_TOKEN", auth::DEPLOY_TOKEN.into());
    put("STATUSPAGE_TOKEN", auth::STATUSPAGE_TOKEN.into());
    put("PAGERDUTY_KEY", auth::PAGERDUTY_KEY.into());
    put(
        "PAGERDUTY_EVENTS_URL",
        format!("{base}/pagerduty/v2/enqueue"),
    );
    put(
        "SLACK_WEBHOOK",
        format!("{base}/slack/webhook/{}", auth::SLACK_WEBHOOK_PATH),
    );
    put("OPENAI_API_KEY", auth::OPENAI_API_KEY.into());
    put("OPENAI_BASE_URL", format!("{base}/openai/v1"));
    m
}

fn router(shared: Arc<Shared>) -> Router {
    crate::apis::routes()
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            recorder::record,
        ))
        .with_state(shared)
}
