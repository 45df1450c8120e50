//! Test harness: stand-in HTTP servers on 127.0.0.1:0 that record what they were sent, and a
//! runner for small pipelines through the real compiler and executor.
#![allow(clippy::unwrap_used, dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::Response;
use fm_core::{CompileOptions, Problem, Registry, RunOptions, RunRecord, SecretSource};
use serde_json::{json, Value};

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query exactly as sent (not decoded).
    pub target: String,
    pub path: String,
    pub query: Option<String>,
    /// Lowercase names; repeated headers joined with ", ".
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What a stand-in answers.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delay: Option<Duration>,
}

impl Reply {
    pub fn json(status: u16, v: Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: serde_json::to_vec(&v).unwrap(),
            delay: None,
        }
    }

    pub fn text(status: u16, s: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "text/plain; charset=utf-8".into())],
            body: s.as_bytes().to_vec(),
            delay: None,
        }
    }

    /// A body with no Content-Type at all.
    pub fn bare(status: u16, s: &str) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: s.as_bytes().to_vec(),
            delay: None,
        }
    }

    pub fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }

    pub fn after(mut self, d: Duration) -> Self {
        self.delay = Some(d);
        self
    }
}

type Handler = dyn Fn(&Seen, usize) -> Reply + Send + Sync;

/// A stand-in server. `base` is `http://127.0.0.1:<port>`.
pub struct StandIn {
    pub base: String,
    pub port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl StandIn {
    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn only(&self) -> Seen {
        let seen = self.seen();
        assert_eq!(seen.len(), 1, "expected exactly one request, got {seen:#?}");
        seen.into_iter().next().unwrap()
    }
}

/// Starts a server whose answer is `handler(request, index)` (0-based index of the request).
pub async fn serve(handler: impl Fn(&Seen, usize) -> Reply + Send + Sync + 'static) -> StandIn {
    let handler: Arc<Handler> = Arc::new(handler);
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let count = Arc::new(AtomicUsize::new(0));
    let (h, s, c) = (handler.clone(), seen.clone(), count.clone());
    let app = axum::Router::new().fallback(move |req: Request| {
        let (h, s, c) = (h.clone(), s.clone(), c.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 64 << 20)
                .await
                .unwrap_or_default();
            let mut headers: BTreeMap<String, String> = BTreeMap::new();
            for (k, v) in &parts.headers {
                let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                headers
                    .entry(k.as_str().to_owned())
                    .and_modify(|e| {
                        e.push_str(", ");
                        e.push_str(&v);
                    })
                    .or_insert(v);
            }
            let seen = Seen {
                method: parts.method.to_string(),
                target: parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().map(str::to_owned),
                headers,
                body: bytes.to_vec(),
            };
            let i = c.fetch_add(1, Ordering::SeqCst);
            s.lock().unwrap().push(seen.clone());
            let reply = h(&seen, i);
            if let Some(d) = reply.delay {
                tokio::time::sleep(d).await;
            }
            let mut b = Response::builder().status(StatusCode::from_u16(reply.status).unwrap());
            for (k, v) in &reply.headers {
                b = b.header(k.as_str(), v.as_str());
            }
            b.body(Body::from(reply.body)).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    StandIn {
        base: format!("http://127.0.0.1:{port}"),
        port,
        seen,
    }
}

/// A port on which nothing listens (bound, then released).
pub async fn dead_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    port
}

/// How to run a test pipeline.
pub struct Opts {
    pub input: Value,
    pub secrets: Vec<(String, String)>,
    pub dry_run: bool,
    pub registry: Option<Registry>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            input: json!({}),
            secrets: Vec::new(),
            dry_run: false,
            registry: None,
        }
    }
}

impl Opts {
    pub fn input(mut self, v: Value) -> Self {
        self.input = v;
        self
    }

    pub fn secret(mut self, k: &str, v: &str) -> Self {
        self.secrets.push((k.into(), v.into()));
        self
    }

    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }

    pub fn registry(mut self, r: Registry) -> Self {
        self.registry = Some(r);
        self
    }
}

fn registry(opts: &Opts) -> Registry {
    opts.registry
        .clone()
        .unwrap_or_else(|| fm_components::registry_with(fm_components::LlmEnv::default()))
}

fn doc(stages: &Value) -> Value {
    let stages = if stages.is_array() {
        stages.clone()
    } else {
        json!([stages])
    };
    json!({"name": "test", "stages": stages})
}

/// Compiles, expecting problems; returns them.
pub fn problems(stages: Value) -> Vec<Problem> {
    let r = registry(&Opts::default());
    match fm_core::compile(
        &doc(&stages),
        &CompileOptions {
            registry: &r,
            secret_available: None,
        },
    ) {
        Ok(_) => panic!("expected the pipeline not to compile"),
        Err(p) => p,
    }
}

/// Compiles and prepares, expecting preflight to fail; returns the message.
pub fn start_error(stages: Value, opts: Opts) -> String {
    let r = registry(&opts);
    let p = fm_core::compile(
        &doc(&stages),
        &CompileOptions {
            registry: &r,
            secret_available: None,
        },
    )
    .unwrap_or_else(|p| panic!("does not compile: {p:#?}"));
    let mut src = SecretSource::empty();
    for (k, v) in &opts.secrets {
        src.set(k.clone(), v.clone());
    }
    match fm_core::prepare(&p, opts.input, &src) {
        Ok(_) => panic!("expected the run not to start"),
        Err(e) => e.to_string(),
    }
}

/// Runs a pipeline of `stages` (one stage object or a list) to the end.
pub async fn run(stages: Value, opts: Opts) -> RunRecord {
    let r = registry(&opts);
    let p = fm_core::compile(
        &doc(&stages),
        &CompileOptions {
            registry: &r,
            secret_available: None,
        },
    )
    .unwrap_or_else(|p| panic!("does not compile: {p:#?}"));
    let mut src = SecretSource::empty();
    for (k, v) in &opts.secrets {
        src.set(k.clone(), v.clone());
    }
    let prepared =
        fm_core::prepare(&p, opts.input, &src).unwrap_or_else(|e| panic!("cannot start: {e}"));
    let run_opts = RunOptions {
        dry_run: opts.dry_run,
        ..RunOptions::default()
    };
    let sink = |_: &fm_core::Event| {};
    fm_core::run(&p, prepared, run_opts, &sink).await
}

/// The output of stage `id` (present for succeeded stages and for failures that carry one).
pub fn output(rec: &RunRecord, id: &str) -> Value {
    rec.stage(id)
        .and_then(|s| s.output.clone())
        .unwrap_or_else(|| panic!("stage {id} has no output: {:#?}", rec.stage(id)))
}

pub fn error_message(rec: &RunRecord, id: &str) -> String {
    rec.stage(id)
        .and_then(|s| s.error.as_ref())
        .map(|e| e.message.clone())
        .unwrap_or_else(|| panic!("stage {id} has no error: {:#?}", rec.stage(id)))
}

pub fn error_kind(rec: &RunRecord, id: &str) -> fm_core::ErrorKind {
    rec.stage(id)
        .and_then(|s| s.error.as_ref())
        .map(|e| e.kind)
        .unwrap_or_else(|| panic!("stage {id} has no error: {:#?}", rec.stage(id)))
}
