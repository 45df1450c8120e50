//! An alert as the server sees it, whatever sent it: the webhook parsers produce this, triggers
//! map it to a pipeline's input.

use fm_expr::Value;
use serde::Serialize;
use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// `pagerduty`, `alertmanager`, `api`.
    pub source: &'static str,
    /// The sender's id for this alert (PagerDuty incident id, Alertmanager fingerprint).
    pub id: String,
    pub status: AlertStatus,
    pub service: String,
    pub summary: String,
    /// PagerDuty Events v2 severities: critical, error, warning, info.
    pub severity: String,
    /// RFC 3339.
    pub triggered_at: String,
    pub details: Value,
}

impl Alert {
    /// The shape the reference pipeline's input has (a PagerDuty-like alert), which the default
    /// input mapping produces.
    pub fn as_pipeline_input(&self) -> Value {
        json!({
            "id": self.id,
            "payload": {
                "source": self.service,
                "severity": self.severity,
                "summary": self.summary,
                "triggered_at": self.triggered_at,
                "custom_details": self.details,
            }
        })
    }

    /// What templates in a trigger's `input` and `dedup_key` see as `alert`.
    pub fn as_template_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Maps a free-form severity to one of PagerDuty's four.
pub fn normalize_severity(s: &str) -> &'static str {
    match s.to_ascii_lowercase().as_str() {
        "critical" | "crit" | "page" | "p1" | "high" | "fatal" | "emergency" => "critical",
        "error" | "err" | "major" | "p2" => "error",
        "warning" | "warn" | "minor" | "p3" | "low" => "warning",
        _ => "info",
    }
}
