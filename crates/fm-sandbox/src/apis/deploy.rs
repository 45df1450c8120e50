//! The deploy tool's API (a generic internal deploy service, like the
//! reference's `deploy.internal.company.com`):
//!
//! - `GET /deploy/deployments?service=&since=&limit=`: JSON array, newest first,
//!   of `{id, service, version, deployed_at, age_minutes, author, description, status}`.
//!   `age_minutes` is computed from now. Reads need no token (the reference
//!   sends none), but a wrong token is still rejected.
//! - `GET /deploy/deployments/{id}`
//! - `POST /deploy/deployments/{id}/rollback` (Bearer DEPLOY_TOKEN): the
//!   service's current version reverts to the previous deploy's; the rollback
//!   is itself recorded as a new deployment, and the rolled-back one gets
//!   status `rolled_back`.

use std::time::SystemTime;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::AppState;
use crate::auth;
use crate::state::RollbackError;
use crate::time::parse_time_expr;
use crate::util::{json, parse_form};

fn unauthorized() -> Response {
    json(
        StatusCode::UNAUTHORIZED,
        json!({"error": "unauthorized", "message": "invalid or missing bearer token"}),
    )
}

/// Reads are anonymous, but a token that is present must be right.
fn read_auth_ok(headers: &HeaderMap) -> bool {
    headers.get(axum::http::header::AUTHORIZATION).is_none()
        || auth::bearer_is(headers, auth::DEPLOY_TOKEN)
}

pub(crate) async fn list(
    State(sh): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
) -> Response {
    if !read_auth_ok(&headers) {
        return unauthorized();
    }
    sh.pause(sh.latencies.deploys).await;
    let now = SystemTime::now();
    let params = parse_form(q.as_deref().unwrap_or(""));
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    };
    let service = get("service").filter(|s| !s.is_empty());
    let since = match get("since").filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match parse_time_expr(s, now) {
            Some(t) => Some(t),
            None => {
                return json(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "bad_request", "message": format!("invalid since {s:?}: use -24h, RFC 3339 or Unix seconds")}),
                )
            }
        },
    };
    let limit = match get("limit").filter(|s| !s.is_empty()) {
        None => 20,
        Some(l) => match l.parse::<usize>() {
            Ok(n) => n.min(500),
            Err(_) => {
                return json(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "bad_request", "message": format!("invalid limit {l:?}")}),
                )
            }
        },
    };
    let mut w = sh.world();
    w.count("deploy.lists");
    let out: Vec<Value> = w
        .deploys_for(service)
        .into_iter()
        .filter(|d| since.is_none_or(|s| d.deployed_at >= s))
        .take(limit)
        .map(|d| d.to_json(now))
        .collect();
    json(StatusCode::OK, Value::Array(out))
}

pub(crate) async fn show(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !read_auth_ok(&headers) {
        return unauthorized();
    }
    sh.pause(sh.latencies.deploys).await;
    let w = sh.world();
    match w.deploys.iter().find(|d| d.id == id) {
        Some(d) => json(StatusCode::OK, d.to_json(SystemTime::now())),
        None => json(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "message": format!("deployment {id} not found")}),
        ),
    }
}

pub(crate) async fn rollback(
    State(sh): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !auth::bearer_is(&headers, auth::DEPLOY_TOKEN) {
        return unauthorized();
    }
    sh.pause(sh.latencies.deploys).await;
    let mut w = sh.world();
    match w.rollback(&id, SystemTime::now()) {
        Ok(v) => json(StatusCode::OK, v),
        Err(RollbackError::NotFound) => json(
            StatusCode::NOT_FOUND,
            json!({"error": "not_found", "message": format!("deployment {id} not found")}),
        ),
        Err(RollbackError::Conflict(m)) => json(
            StatusCode::CONFLICT,
            json!({"error": "conflict", "message": m}),
        ),
    }
}
