//! Records every request the simulated systems receive, for tests and for
//! `GET /_sandbox/requests`: what the pipeline actually sent, on the wire.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::server::Shared;
use crate::util::parse_form;

/// One request as received. Authorization header values are replaced by `***`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RecordedRequest {
    /// 1, 2, 3, ... in arrival order (not reset by clearing the log).
    pub seq: u64,
    /// Milliseconds since the sandbox started, at arrival.
    pub elapsed_ms: u64,
    /// logs | prometheus | deploy | k8s | health | pagerduty | statuspage | slack | openai | other
    pub system: String,
    pub method: String,
    pub path: String,
    /// Decoded query parameters (last value wins for repeated keys).
    pub query: BTreeMap<String, String>,
    pub content_type: Option<String>,
    /// Request headers, lower-case names; `authorization` masked as `***`.
    pub headers: BTreeMap<String, String>,
    /// The body parsed as JSON when it is JSON, else the raw text (Null when empty).
    pub body: Value,
    /// Response status, once the response has been produced.
    pub status: Option<u16>,
    /// Time spent producing the response (includes simulated latency).
    pub duration_ms: Option<u64>,
}

/// Which simulated system a path belongs to.
pub fn system_of(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "logs" => "logs",
        "prometheus" => "prometheus",
        "deploy" => "deploy",
        "k8s" => "k8s",
        "services" => "health",
        "pagerduty" => "pagerduty",
        "statuspage" => "statuspage",
        "slack" => "slack",
        "openai" => "openai",
        _ => "other",
    }
}

/// Largest body the sandbox accepts (chat prompts with pasted logs can be big).
const MAX_BODY: usize = 16 * 1024 * 1024;

/// Middleware: buffer the body, record the request, run the handler, record the status.
pub(crate) async fn record(
    State(shared): State<Arc<Shared>>,
    req: Request,
    next: Next,
) -> Response {
    if req.uri().path().starts_with("/_sandbox") {
        return next.run(req).await;
    }
    let arrived = Instant::now();
    let (parts, body) = req.into_parts();
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response(),
    };
    let mut headers = BTreeMap::new();
    for (name, value) in &parts.headers {
        let v = if name == header::AUTHORIZATION {
            "***".to_string()
        } else {
            String::from_utf8_lossy(value.as_bytes()).into_owned()
        };
        headers.insert(name.as_str().to_string(), v);
    }
    let text = String::from_utf8_lossy(&bytes);
    let body_value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(text.into_owned()))
    };
    let path = parts.uri.path().to_string();
    let rec = RecordedRequest {
        seq: 0,
        elapsed_ms: shared.started.elapsed().as_millis() as u64,
        system: system_of(&path).to_string(),
        method: parts.method.to_string(),
        query: parse_form(parts.uri.query().unwrap_or(""))
            .into_iter()
            .collect(),
        path,
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned()),
        headers,
        body: body_value,
        status: None,
        duration_ms: None,
    };
    let seq = shared.push_request(rec);
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    shared.finish_request(
        seq,
        resp.status().as_u16(),
        arrived.elapsed().as_millis() as u64,
    );
    resp
}
