//! `/_sandbox...`: what the sandbox is, what it received, what state it is in.
//! Not part of any simulated API; never recorded.

use std::time::SystemTime;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::AppState;
use crate::util::json;

pub(crate) async fn describe(State(sh): State<AppState>) -> Response {
    let scenario = sh.scenario;
    let endpoints = [
        ("POST", "/logs/query", "logs API (Bearer LOGGING_TOKEN)"),
        (
            "GET|POST",
            "/prometheus/api/v1/query_range",
            "Prometheus range query (query/start/end/step as query or form params)",
        ),
        (
            "GET|POST",
            "/prometheus/api/v1/query",
            "Prometheus instant query",
        ),
        (
            "GET",
            "/deploy/deployments?service=&since=&limit=",
            "deploy history, newest first",
        ),
        (
            "POST",
            "/deploy/deployments/{id}/rollback",
            "roll a deploy back (Bearer DEPLOY_TOKEN)",
        ),
        (
            "GET|PATCH",
            "/k8s/apis/apps/v1/namespaces/{ns}/deployments/{name}",
            "Kubernetes Deployment (Bearer K8S_TOKEN; merge-patch / strategic-merge-patch)",
        ),
        (
            "GET|PATCH|PUT",
            "/k8s/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
            "autoscaling/v1 Scale",
        ),
        (
            "GET",
            "/services/{service}/health",
            "service health (200 ok / 503 unhealthy)",
        ),
        ("POST", "/pagerduty/v2/enqueue", "PagerDuty Events API v2"),
        (
            "POST|GET",
            "/statuspage/v1/pages/{page_id}/incidents",
            "Statuspage incidents (Authorization: OAuth STATUSPAGE_TOKEN)",
        ),
        (
            "PATCH|GET",
            "/statuspage/v1/pages/{page_id}/incidents/{id}",
            "update an incident",
        ),
        (
            "POST",
            "/slack/webhook/T000/B000/XXXX",
            "Slack incoming webhook",
        ),
        (
            "POST",
            "/openai/v1/chat/completions",
            "OpenAI-compatible chat model, SIMULATED by rules (Bearer OPENAI_API_KEY)",
        ),
        (
            "GET|DELETE",
            "/_sandbox/requests",
            "every request received (Authorization masked)",
        ),
        (
            "GET",
            "/_sandbox/state",
            "deployments, health, rollbacks, remediations, counters",
        ),
    ];
    let endpoints: Vec<Value> = endpoints
        .iter()
        .map(|(m, p, d)| json!({"method": m, "path": p, "description": d}))
        .collect();
    json(
        StatusCode::OK,
        json!({
            "name": "fm sandbox",
            "description": "Simulated outside world for the fm incident-response pipeline. Nothing here is real: the model is rules, not an AI.",
            "scenario": scenario.name(),
            "scenario_description": scenario.description(),
            "incident_service": scenario.incident_service(),
            "endpoints": endpoints,
        }),
    )
}

pub(crate) async fn requests(State(sh): State<AppState>) -> Response {
    json(StatusCode::OK, json!(sh.requests()))
}

pub(crate) async fn clear_requests(State(sh): State<AppState>) -> Response {
    sh.clear_requests();
    json(StatusCode::OK, json!({"cleared": true}))
}

pub(crate) async fn state(State(sh): State<AppState>) -> Response {
    json(StatusCode::OK, sh.world().to_json(SystemTime::now()))
}
