//! From an accepted alert to a queued run: the trigger's input mapping, flapping detection,
//! deduplication (in the store, atomically), and the answer the webhook gets.

use std::time::SystemTime;

use fm_core::exec::OverlayScope;
use fm_expr::{Root, Scope, Value};
use fm_store::{AlertIn, AlertOutcome, NewRun};
use serde_json::json;

use crate::alert::{Alert, AlertStatus};
use crate::config::Trigger;
use crate::metrics::{ALERTS_DEDUPLICATED_TOTAL, ALERTS_RECEIVED_TOTAL};
use crate::state::AppState;

/// What happened to one alert; the webhook's 202 body lists these.
#[derive(Debug, serde::Serialize)]
pub struct Disposition {
    pub alert_id: String,
    pub service: String,
    /// `started`, `attached`, `recorded` (resolved alerts start nothing).
    pub disposition: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attached_count: Option<u32>,
    pub flapping: bool,
}

/// Why an alert could not be taken (a 400 or 503 for the sender).
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{0}")]
    Mapping(String),
    #[error("the alert could not be stored: {0}")]
    Store(String),
}

struct Empty;
impl Scope for Empty {
    fn resolve(&self, _root: &Root<'_>) -> Option<std::borrow::Cow<'_, Value>> {
        None
    }
}

/// Records the alert and queues (or attaches to) a run. The alert is durable when this returns.
pub async fn take_alert(
    state: &AppState,
    trigger: &Trigger,
    alert: &Alert,
) -> Result<Disposition, IntakeError> {
    state
        .metrics
        .inc(ALERTS_RECEIVED_TOTAL, &[("source", alert.source)]);
    let alert_value = alert.as_template_value();
    let scope = OverlayScope {
        parent: &Empty,
        name: "alert",
        value: &alert_value,
    };
    let dedup_key = match &trigger.dedup_key {
        Some(t) => t.render_string(&scope).map_err(|e| {
            IntakeError::Mapping(format!("the trigger's dedup_key failed: {}", e.render()))
        })?,
        None => format!("{}:{}", alert.source, alert.id),
    };
    let stored = AlertIn {
        source: alert.source.to_owned(),
        dedup_key: Some(dedup_key.clone()),
        service: Some(alert.service.clone()),
        payload: alert_value.clone(),
        received_at: SystemTime::now(),
    };
    if alert.status == AlertStatus::Resolved {
        state
            .store
            .record_alert_only(stored)
            .await
            .map_err(|e| IntakeError::Store(e.to_string()))?;
        return Ok(Disposition {
            alert_id: alert.id.clone(),
            service: alert.service.clone(),
            disposition: "recorded",
            run_id: None,
            attached_count: None,
            flapping: false,
        });
    }

    // Flapping: this alert would be more than max_alerts within the window.
    let max_alerts = state.config.flapping.max_alerts;
    let recent = state
        .store
        .recent_alert_count(&alert.service, state.config.flapping.window, max_alerts)
        .await
        .map_err(|e| IntakeError::Store(e.to_string()))?;
    let flapping = recent + 1 > max_alerts;

    let mut input = match &trigger.input {
        Some(t) => t.render(&scope).map_err(|e| {
            IntakeError::Mapping(format!("the trigger's input mapping failed: {e}"))
        })?,
        None => alert.as_pipeline_input(),
    };
    if let Value::Object(map) = &mut input {
        for (k, v) in &trigger.input_defaults {
            map.entry(k.clone()).or_insert_with(|| v.clone());
        }
        map.insert("flapping".into(), Value::Bool(flapping));
        map.insert("alert_source".into(), json!(alert.source));
    }
    if let Some(p) = state.pipeline(&trigger.pipeline) {
        fm_core::exec::prepare_input(p, input.clone()).map_err(|e| {
            IntakeError::Mapping(format!(
                "the alert does not fit pipeline '{}': {e}",
                trigger.pipeline
            ))
        })?;
    }
    let run = NewRun {
        id: uuid::Uuid::new_v4().to_string(),
        pipeline: trigger.pipeline.clone(),
        input,
        service: Some(alert.service.clone()),
        dedup_key: Some(dedup_key),
        source: alert.source.to_owned(),
        dry_run: false,
    };
    let outcome = state
        .store
        .accept_alert(stored, run)
        .await
        .map_err(|e| IntakeError::Store(e.to_string()))?;
    Ok(match outcome {
        AlertOutcome::Started { run_id, .. } => {
            state.work_ready.notify_one();
            Disposition {
                alert_id: alert.id.clone(),
                service: alert.service.clone(),
                disposition: "started",
                run_id: Some(run_id),
                attached_count: None,
                flapping,
            }
        }
        AlertOutcome::Attached { run_id, count, .. } => {
            state
                .metrics
                .inc(ALERTS_DEDUPLICATED_TOTAL, &[("source", alert.source)]);
            Disposition {
                alert_id: alert.id.clone(),
                service: alert.service.clone(),
                disposition: "attached",
                run_id: Some(run_id),
                attached_count: Some(count),
                flapping,
            }
        }
    })
}
