//! Inbound alerts. Each is stored before the 202 goes out; a malformed one gets a 400 and
//! nothing is stored as a run.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::config::Source;
use crate::intake::{take_alert, IntakeError};
use crate::routes::auth::check_bearer;
use crate::routes::ApiError;
use crate::state::Shared;
use crate::webhooks::{alertmanager, pagerduty};

fn parse_json(body: &Bytes) -> Result<Value, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))
}

fn refuse_if_shutting_down(state: &Shared) -> Result<(), ApiError> {
    if state.shutting_down.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is shutting down; send the alert again (another server or after restart)",
        ));
    }
    Ok(())
}

fn intake_error(e: IntakeError) -> ApiError {
    match e {
        IntakeError::Mapping(m) => ApiError::bad_request(m),
        IntakeError::Store(m) => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

pub async fn pagerduty(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    refuse_if_shutting_down(&state)?;
    let signature = headers
        .get("x-pagerduty-signature")
        .and_then(|v| v.to_str().ok());
    // The first PagerDuty trigger whose signing secrets verify the body.
    let trigger = state
        .config
        .triggers
        .iter()
        .enumerate()
        .filter(|(_, t)| t.source == Source::PagerDuty)
        .find(|(i, _)| pagerduty::verify_signature(&body, signature, &state.signing_secrets[*i]))
        .map(|(_, t)| t);
    let Some(trigger) = trigger else {
        let why = if signature.is_none() {
            "missing X-PagerDuty-Signature"
        } else {
            "X-PagerDuty-Signature does not match any configured signing secret"
        };
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, why));
    };
    let payload = parse_json(&body)?;
    let alert = pagerduty::parse(&payload).map_err(|e| ApiError::bad_request(e.0))?;
    let Some(alert) = alert else {
        return Ok((
            StatusCode::ACCEPTED,
            Json(json!({"accepted": true, "alerts": [], "note": "this event type starts nothing"})),
        ));
    };
    let d = take_alert(&state, trigger, &alert)
        .await
        .map_err(intake_error)?;
    let run_ids: Vec<&String> = d.run_id.iter().collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "run_ids": run_ids, "alerts": [d]})),
    ))
}

pub async fn alertmanager(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    refuse_if_shutting_down(&state)?;
    check_bearer(&state, &headers)?;
    let Some(trigger) = state
        .config
        .triggers
        .iter()
        .find(|t| t.source == Source::Alertmanager)
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no alertmanager trigger is configured on this server",
        ));
    };
    let payload = parse_json(&body)?;
    // Parse every alert before storing any: a malformed payload stores nothing.
    let alerts = alertmanager::parse(&payload).map_err(|e| ApiError::bad_request(e.0))?;
    let mut dispositions = Vec::with_capacity(alerts.len());
    for alert in &alerts {
        dispositions.push(
            take_alert(&state, trigger, alert)
                .await
                .map_err(intake_error)?,
        );
    }
    let run_ids: Vec<&String> = dispositions
        .iter()
        .filter_map(|d| d.run_id.as_ref())
        .collect();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"accepted": true, "run_ids": run_ids, "alerts": dispositions})),
    ))
}
