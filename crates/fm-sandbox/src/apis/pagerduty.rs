//! PagerDuty Events API v2: `POST /pagerduty/v2/enqueue`.
//!
//! Validates as PagerDuty does and answers in its shapes: 202
//! `{"status":"success","message":"Event processed","dedup_key"}`, or 400
//! `{"status":"invalid event","message":"Event object is invalid","errors":[...]}`.
//! Rules: `routing_key` present and 32 characters (and, here, the sandbox's
//! key); `event_action` one of trigger|acknowledge|resolve; a trigger needs
//! `payload.summary`, `payload.source` and `payload.severity` in
//! critical|error|warning|info; acknowledge/resolve need `dedup_key`.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{json, Value};

use super::AppState;
use crate::auth;
use crate::time::rfc3339_millis;
use crate::util::json;

fn invalid(errors: Vec<String>) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": errors}),
    )
}

fn blank(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        _ => false,
    }
}

/// The validation errors PagerDuty would report for this event.
fn validate(ev: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let rk = ev.get("routing_key");
    if blank(rk) {
        errors.push("'routing_key' is missing or blank".to_string());
    } else if let Some(k) = rk.and_then(Value::as_str) {
        if k.chars().count() != 32 {
            errors
                .push("Length of 'routing_key' is incorrect (should be 32 characters)".to_string());
        } else if k != auth::PAGERDUTY_KEY {
            errors.push(
                "Invalid routing key (the fm sandbox accepts only its own PAGERDUTY_KEY)"
                    .to_string(),
            );
        }
    } else {
        errors.push("'routing_key' must be a string".to_string());
    }
    let action = ev.get("event_action").and_then(Value::as_str).unwrap_or("");
    match action {
        "" => errors.push("'event_action' is missing or blank".to_string()),
        "trigger" => {
            let payload = ev.get("payload");
            if !payload.is_some_and(Value::is_object) {
                errors.push("'payload' is missing or blank".to_string());
            } else {
                for field in ["summary", "source", "severity"] {
                    if blank(payload.and_then(|p| p.get(field))) {
                        errors.push(format!("'payload.{field}' is missing or blank"));
                    }
                }
                let sev = payload.and_then(|p| p.get("severity")).and_then(Value::as_str);
                if let Some(sev) = sev.filter(|s| !s.trim().is_empty()) {
                    if !matches!(sev, "critical" | "error" | "warning" | "info") {
                        errors.push("'payload.severity' is invalid (must be one of the following: 'critical', 'warning', 'error' or 'info')".to_string());
                    }
                }
            }
        }
        "acknowledge" | "resolve" => {
            if blank(ev.get("dedup_key")) {
                errors.push("'dedup_key' is missing or blank".to_string());
            }
        }
        _ => errors.push(
            "'event_action' is invalid (must be one of the following: 'trigger', 'acknowledge' or 'resolve')".to_string(),
        ),
    }
    errors
}

pub(crate) async fn enqueue(State(sh): State<AppState>, body: Bytes) -> Response {
    sh.pause(sh.latencies.pagerduty).await;
    let ev: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => return invalid(vec!["Event object is not valid JSON".to_string()]),
    };
    let errors = validate(&ev);
    let mut w = sh.world();
    if !errors.is_empty() {
        w.count("pagerduty.rejected");
        return invalid(errors);
    }
    let dedup_key = match ev
        .get("dedup_key")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        Some(k) => k.to_string(),
        None => {
            // PagerDuty generates a 32-hex-digit key when the caller gives none.
            let n = w.next_id();
            format!("{:016x}{:016x}", 0x5b5d_b0c5_f00d_u64 ^ (n << 20), n)
        }
    };
    let action = ev
        .get("event_action")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    w.count(&format!("pagerduty.{action}"));
    w.pagerduty_events.push(json!({
        "received_at": rfc3339_millis(SystemTime::now()),
        "event_action": action,
        "dedup_key": dedup_key,
        "summary": ev.pointer("/payload/summary"),
        "severity": ev.pointer("/payload/severity"),
        "source": ev.pointer("/payload/source"),
        "custom_details": ev.pointer("/payload/custom_details"),
    }));
    json(
        StatusCode::ACCEPTED,
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_without_source_is_invalid() {
        let ev = json!({
            "routing_key": auth::PAGERDUTY_KEY,
            "event_action": "trigger",
            "payload": {"summary": "x", "severity": "critical"},
        });
        assert_eq!(
            validate(&ev),
            vec!["'payload.source' is missing or blank".to_string()]
        );
        let ev = json!({"routing_key": "short", "event_action": "explode"});
        assert_eq!(validate(&ev).len(), 2);
    }
}
