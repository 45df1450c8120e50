//! One module per simulated system; this file mounts them under their prefixes.

use std::sync::Arc;

use axum::http::{StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, patch, post};
use axum::Router;
use serde_json::json;

use crate::server::Shared;
use crate::util;

mod deploy;
mod health;
mod introspect;
mod k8s;
mod logs;
mod openai;
mod pagerduty;
mod prometheus;
mod slack;
mod statuspage;

pub(crate) type AppState = Arc<Shared>;

pub(crate) fn routes() -> Router<AppState> {
    const K8S_DEPLOYMENT: &str = "/k8s/apis/apps/v1/namespaces/{ns}/deployments/{name}";
    Router::new()
        .route("/logs/query", post(logs::query))
        .route(
            "/prometheus/api/v1/query_range",
            get(prometheus::query_range).post(prometheus::query_range),
        )
        .route(
            "/prometheus/api/v1/query",
            get(prometheus::query).post(prometheus::query),
        )
        .route("/deploy/deployments", get(deploy::list))
        .route("/deploy/deployments/{id}", get(deploy::show))
        .route("/deploy/deployments/{id}/rollback", post(deploy::rollback))
        .route(
            "/k8s/apis/apps/v1/namespaces/{ns}/deployments",
            get(k8s::list),
        )
        .route(
            K8S_DEPLOYMENT,
            get(k8s::get_deployment).patch(k8s::patch_deployment),
        )
        .route(
            "/k8s/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale",
            get(k8s::get_scale)
                .patch(k8s::patch_scale)
                .put(k8s::put_scale),
        )
        .route("/services/{service}/health", get(health::check))
        .route("/pagerduty/v2/enqueue", post(pagerduty::enqueue))
        .route(
            "/statuspage/v1/pages/{page_id}/incidents",
            post(statuspage::create).get(statuspage::list),
        )
        .route(
            "/statuspage/v1/pages/{page_id}/incidents/{id}",
            patch(statuspage::update).get(statuspage::show),
        )
        .route("/slack/webhook/{a}/{b}/{c}", post(slack::webhook))
        .route(
            "/openai/v1/chat/completions",
            post(openai::chat_completions),
        )
        .route("/_sandbox", get(introspect::describe))
        .route(
            "/_sandbox/requests",
            get(introspect::requests).delete(introspect::clear_requests),
        )
        .route("/_sandbox/state", get(introspect::state))
        .fallback(not_found)
}

async fn not_found(uri: Uri) -> Response {
    util::json(
        StatusCode::NOT_FOUND,
        json!({
            "error": "not found",
            "path": uri.path(),
            "hint": "GET /_sandbox lists the simulated endpoints",
        }),
    )
}
