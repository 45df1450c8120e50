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

/// What the server checked before starting: the config, its secrets, the compiled pipelines.
pub struct Checked {
    config: ServerConfig,
    secrets: SecretSource,
    api_tokens: Vec<String>,
    signing_secrets: Vec<Vec<String>>,
    addr: SocketAddr,
    pipelines: HashMap<String, Arc<fm_core::Pipeline>>,
}

/// Reads and checks `fm.toml` in one pass: the file's own problems and those of what it names
/// (secrets, pipelines, the model for the stages its triggers can reach), all of them, located
/// in the file they are in.
pub fn check_file(path: &Path) -> Result<Checked, Vec<Problem>> {
    let (config, mut problems) = crate::config::read(path);
    let Some(config) = config else {
        return Err(problems);
    };
    match check(config) {
        Ok(checked) if problems.is_empty() => Ok(checked),
        Ok(_) => Err(problems),
        Err(more) => {
            let mut more = more;
            if let Ok(text) = crate::config::read_text(path) {
                crate::config_locate::locate_all(&text, &mut more);
            }
            problems.extend(more);
            Err(problems)
        }
    }
}

/// Every check that needs no network: secrets, the listen address, the pipelines compiled (with
/// outbound requests restricted to allowed_hosts), the components' pre-flight. All problems.
pub fn check(config: ServerConfig) -> Result<Checked, Vec<Problem>> {
    let mut problems = Vec::new();
    let secrets = match &config.secrets_file {
        Some(f) => match SecretSource::from_file(f) {
            Ok(s) => s,
            Err(e) => {
                problems.push(
                    Problem::new("unreadable", "secrets_file", e.to_string())
                        .with_hint("a JSON object of NAME: value, or KEY=value lines"),
                );
                SecretSource::from_env()
            }
        },
        None => SecretSource::from_env(),
    };
    let secret_hint = |n: &str| {
        match &config.secrets_file {
        Some(f) => format!(
            "put {n} in the secrets file ({}) or the server's environment",
            f.display()
        ),
        None => format!(
            "put {n} in a secrets file named by `secrets_file` in the config, or in the server's environment"
        ),
    }
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
                            .with_hint(secret_hint(n)),
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

    // Pipelines: compiled once, with outbound requests restricted to allowed_hosts. The model
    // settings are read like the pipelines' secrets: secrets file, then environment.
    let allow = if config.allowed_hosts.is_empty() {
        fm_components::http::allow::HostAllowlist::any()
    } else {
        fm_components::http::allow::HostAllowlist::only(config.allowed_hosts.clone())
    };
    let registry =
        fm_components::registry_with_options(fm_components::LlmEnv::from_secrets(&secrets), allow);
    let check = |n: &str| secrets.has(n);
    let mut pipelines = HashMap::new();
    for (i, entry) in config.pipelines.iter().enumerate() {
        let shown = entry.file.display().to_string();
        let source = match Source::read(&entry.file) {
            Ok(s) => s,
            Err(e) => {
                problems.push(Problem::new(
                    "unreadable",
                    format!("pipelines[{i}].file"),
                    format!("cannot read {shown}: {e}"),
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
                for name in &p.secrets {
                    let why = secrets
                        .get(name)
                        .and_then(|v| fm_core::secrets::unsafe_to_mask(&v));
                    if let Some(why) = why {
                        problems.push(
                            Problem::new(
                                "unsafe_secret",
                                format!("pipelines[{i}]"),
                                format!("pipeline '{}': secret {name} is refused: {why}", entry.name),
                            )
                            .with_hint("use the real credential; fm refuses values it cannot mask in its output"),
                        );
                    }
                }
                for (stage, m) in preflight_for_triggers(&p, &entry.name, &config) {
                    problems.push(
                        Problem::new(
                            "preflight",
                            format!("pipelines[{i}]"),
                            format!("pipeline '{}', stage '{stage}': {m}", entry.name),
                        )
                        .with_hint(
                            "configure the model (OPENAI_API_KEY / ANTHROPIC_API_KEY, in secrets_file or the environment), or set input_defaults.analysis_mode = \"rules_only\" on every trigger of this pipeline",
                        ),
                    );
                }
                pipelines.insert(entry.name.clone(), Arc::new(p));
            }
            Err(ps) => {
                for mut p in ps {
                    if let Some(name) = fm_core::model::compile::missing_secret_name(&p) {
                        p.hint = Some(secret_hint(name));
                    }
                    problems.push(p.in_file(shown.clone()));
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Ok(Checked {
        config,
        secrets,
        api_tokens,
        signing_secrets,
        addr,
        pipelines,
    })
}

/// The pre-flight problems of a pipeline, for the stages its runs can reach: a trigger's
/// `input_defaults` fix part of the input (`analysis_mode = "rules_only"` leaves the model
/// stages out). A pipeline no trigger starts (runs through the API only) is checked whole. The
/// stages left out are named in the log: an API run that reaches one fails that stage.
fn preflight_for_triggers(
    p: &fm_core::Pipeline,
    name: &str,
    config: &ServerConfig,
) -> Vec<(String, String)> {
    let inputs: Vec<serde_json::Value> = config
        .triggers
        .iter()
        .filter(|t| t.pipeline == name)
        .map(|t| serde_json::Value::Object(t.input_defaults.clone()))
        .collect();
    let needed = fm_core::exec::preflight_failures_for_inputs(p, &inputs);
    for (stage, m) in fm_core::exec::preflight_failures(p, true) {
        if !needed.iter().any(|(s, _)| *s == stage) {
            tracing::warn!(pipeline = %name, %stage, problem = %m, "no trigger's runs reach this stage; a run started through the API that does will fail it");
        }
    }
    needed
}

/// Validates everything, opens the store, compiles the pipelines, binds, and starts the workers.
pub async fn start(config: ServerConfig) -> Result<Running, StartError> {
    let checked = check(config).map_err(StartError::Problems)?;
    launch(checked).await
}

/// Starts a checked server: opens the store, binds, starts the workers.
pub async fn launch(checked: Checked) -> Result<Running, StartError> {
    let Checked {
        config,
        secrets,
        api_tokens,
        signing_secrets,
        addr,
        pipelines,
    } = checked;
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
        cancels: std::sync::Mutex::new(HashMap::new()),
    });
    let stop = Arc::new(Notify::new());
    let app = crate::routes::router(state.clone());
    let cancel_dispatch = crate::worker::spawn_cancel_dispatch(state.clone());
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
            cancel_dispatch.abort();
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
    launch(check_file(path).map_err(StartError::Problems)?).await
}

/// For the binary: starts, then shuts down gracefully on SIGTERM or Ctrl-C.
pub async fn run_until_signal(checked: Checked) -> Result<(), StartError> {
    let running = launch(checked).await?;
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
