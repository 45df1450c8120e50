//! `GET /services/{service}/health`: what a service's own health endpoint
//! says. 200 `{"status":"ok"}` when healthy; 503 `{"status":"unhealthy","reason"}`
//! while the incident lasts, while replicas are 0, and until the right fix has
//! had `recovery_delay` to take effect.

use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::AppState;
use crate::time::rfc3339_millis;
use crate::util::json;

pub(crate) async fn check(State(sh): State<AppState>, Path(service): Path<String>) -> Response {
    sh.pause(sh.latencies.health).await;
    let now = SystemTime::now();
    let mut w = sh.world();
    w.count("health.checks");
    let Some(s) = w.services.get(&service) else {
        return json(
            StatusCode::NOT_FOUND,
            json!({"status": "unknown", "service": service, "error": "no such service"}),
        );
    };
    let (version, replicas) = (s.version.clone(), s.replicas);
    match w.health(&service, now) {
        Ok(()) => json(
            StatusCode::OK,
            json!({
                "status": "ok",
                "service": service,
                "version": version,
                "replicas": replicas,
                "ready_replicas": replicas,
                "checked_at": rfc3339_millis(now),
            }),
        ),
        Err(reason) => {
            w.count("health.unhealthy");
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({
                    "status": "unhealthy",
                    "service": service,
                    "reason": reason,
                    "checked_at": rfc3339_millis(now),
                }),
            )
        }
    }
}
