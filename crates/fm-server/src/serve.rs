//! Starting and stopping the server: config, store, pipelines, workers, HTTP; graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use fm_core::{CompileOptions, Problem, SecretSource, Source};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::config::ServerConfig;
use crate::metrics::Metrics;
use crate::state::{AppState, Shared};

/// Why the server refused to start. Every problem is listed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{}", render(.0))]
    Problems(Vec<Problem>),
    #[error("{0}")]
    Other(String),
}

fn render(problems: &[Problem]) -> String {
    let mut s = format!(
        "the server configuration has {} problem(s):",
        problems.len()
    );
    for p in problems {
        s.push_str(&format!("\n  - {p}"));
    }
    s
}

/// A started server: its address, and how to stop it.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Shared,
    stop: Arc<Notify>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Begins a graceful shutdown and waits for it to finish.
    pub async fn shutdown(self) {
        self.stop.notify_one();
        let _ = self.done.await;
    }

    /// Waits until the server stops by itself (SIGTERM / Ctrl-C handled by the caller).
    pub async fn wait(self) {
        let _ = self.done.await;
    }

    pub fn stopper(&self) -> Arc<Notify> {
        self.stop.clone()
    }
}

/// Validates everything, opens the store, compiles the pipelines, binds, and starts the workers.
pub async fn start(config: ServerConfig) -> Result<Running, StartError> {
    let mut problems = Vec::new();
    let secrets = match &config.secrets_file {
        Some(f) => SecretSource::from_file(f).map_err(|e| StartError::Other(e.to_string()))?,
        None => SecretSource::from_env(),
    };
    let lookup =
        |names: &[String], what: &str, path: &str, problems: &mut Vec<Problem>| -> Vec<String> {
            names
                .iter()
                .filter_map(|n| {
                    let v = secrets.get(n);
                    if v.is_none() {
                        problems.push(
                            Problem::new(
                                "missing_secret",
                                path,
                                format!("{what} secret '{n}' is not provided"),
                            )
                            .with_hint(format!("put {n} in the secrets file or the environment")),
                        );
                    }
                    v
                })
                .collect()
        };
    let api_tokens = lookup(
        &config.api_token_secrets,
        "API token",
        "api_token_secrets",
        &mut problems,
    );
    let signing_secrets: Vec<Vec<String>> = config
        .triggers
        .iter()
        .enumerate()
        .map(|(i, t)| {
            lookup(
                &t.signing_secrets,
                "signing",
                &format!("triggers[{i}].signing_secrets"),
                &mut problems,
            )
        })
        .collect();
    let addr: SocketAddr = match config.listen.parse() {
        Ok(a) => a,
        Err(e) => {
            problems.push(Problem::new(
                "invalid_value",
                "listen",
                format!("'{}' is not an address: {e}", config.listen),
            ));
            SocketAddr::from(([127, 0, 0, 1], 0))
        }
    };
    if api_tokens.is_empty() && !addr.ip().is_loopback() && problems.is_empty() {
        problems.push(
            Problem::new("missing_key", "api_token_secrets", "the API would be open on a non-loopback address")
                .with_hint("name at least one secret holding a bearer token in api_token_secrets, or listen on 127.0.0.1"),
        );
    }

    // Pipelines: compiled once, with outbound requests restricted to allowed_hosts.
    let allow = if config.allowed_hosts.is_empty() {
        fm_components::http::allow::HostAllowlist::any()
    } else {
        fm_components::http::allow::HostAllowlist::only(config.allowed_hosts.clone())
    };
    let registry =
        fm_components::registry_with_options(fm_components::LlmEnv::from_process_env(), allow);
    let check = |n: &str| secrets.has(n);
    let mut pipelines = HashMap::new();
    for (i, entry) in config.pipelines.iter().enumerate() {
        let source = match Source::read(&entry.file) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem::new(
                    "unreadable",
                    format!("pipelines[{i}].file"),
                    format!("cannot read {}: {e}", entry.file.display()),
                ));
                continue;
            }
        };
        let opts = CompileOptions {
            registry: &registry,
            secret_available: Some(&check),
        };
        match fm_core::load(&source, &opts) {
            Ok(p) => {
                // A server checks every stage, routed or not: better refused at start than at 3 a.m.
                for (stage, m) in fm_core::exec::preflight_failures(&p, true) {
                    problems.push(Problem::new(
                        "preflight",
                        format!("pipelines[{i}]"),
                        format!("pipeline '{}', stage '{stage}': {m}", entry.name),
                    ));
                }
                pipelines.insert(entry.name.clone(), Arc::new(p));
            }
            Err(ps) => {
                for mut p in ps {
                    p.message = format!("{}: {}", entry.file.display(), p.message);
                    problems.push(p);
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(StartError::Problems(problems));
    }

    let options = fm_store::StoreOptions {
        connections: Some(config.store_connections),
    };
    let store = fm_store::open_with(&config.store, options)
        .await
        .map_err(|e| StartError::Other(e.to_string()))?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| StartError::Other(format!("cannot listen on {addr}: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StartError::Other(e.to_string()))?;
    let concurrency = config.concurrency;
    let deadline = config.shutdown_deadline;
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "fm".into());
    let state: Shared = Arc::new(AppState {
        config,
        store,
        pipelines,
        secrets,
        api_tokens,
        signing_secrets,
        metrics: Metrics::default(),
        worker_id: format!(
            "{host}-{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().to_string()[..8]
        ),
        work_ready: Notify::new(),
        shutting_down: AtomicBool::new(false),
        in_flight: std::sync::Mutex::new(HashMap::new()),
    });
    let stop = Arc::new(Notify::new());
    let app = crate::routes::router(state.clone());
    let workers = crate::worker::spawn_workers(state.clone(), concurrency);
    let done = {
        let state = state.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let http_stop = Arc::new(Notify::new());
            let http = {
                let http_stop = http_stop.clone();
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { http_stop.notified().await })
                        .await;
                })
            };
            stop.notified().await;
            tracing::info!("shutting down: no new alerts or claims; finishing in-flight runs");
            state.shutting_down.store(true, Ordering::SeqCst);
            state.work_ready.notify_waiters();
            // In-flight runs get until the deadline; after it they are stopped where they are
            // and handed back to the queue, to be resumed from their journals.
            let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
            if tokio::time::timeout(deadline, futures::future::join_all(workers))
                .await
                .is_err()
            {
                tracing::warn!(
                    deadline_s = deadline.as_secs(),
                    "in-flight runs did not finish in time"
                );
                for a in aborts {
                    a.abort();
                }
                crate::worker::hand_back_in_flight(&state).await;
            }
            http_stop.notify_one();
            let _ = http.await;
            state.store.close().await;
        })
    };
    tracing::info!(%addr, store = state.store.backend(), pipelines = state.pipelines.len(), "fm server listening");
    Ok(Running {
        addr,
        state,
        stop,
        done,
    })
}

/// Loads `fm.toml` and starts.
pub async fn start_from_file(path: &Path) -> Result<Running, StartError> {
    let config = crate::config::load(path).map_err(StartError::Problems)?;
    start(config).await
}

/// For the binary: starts, then shuts down gracefully on SIGTERM or Ctrl-C.
pub async fn run_until_signal(config: ServerConfig) -> Result<(), StartError> {
    let running = start(config).await?;
    let stopper = running.stopper();
    tokio::spawn(async move {
        wait_for_signal().await;
        stopper.notify_one();
    });
    running.wait().await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
