//! PagerDuty v3 webhooks: signature verification and the incident payload.
//!
//! `X-PagerDuty-Signature: v1=<hex HMAC-SHA256 of the raw body>[,v1=<…>]`; several signatures
//! appear while a signing secret is being rotated, and one valid signature from any configured
//! secret is enough.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::alert::{Alert, AlertStatus};
use crate::webhooks::PayloadError;

/// Whether `header` carries a valid signature of `body` for one of `secrets`.
pub fn verify_signature(body: &[u8], header: Option<&str>, secrets: &[String]) -> bool {
    let Some(header) = header else { return false };
    let signatures: Vec<Vec<u8>> = header
        .split(',')
        .filter_map(|s| s.trim().strip_prefix("v1="))
        .filter_map(|hexsig| hex::decode(hexsig).ok())
        .collect();
    secrets.iter().any(|secret| {
        signatures.iter().any(|sig| {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(body);
            // Constant-time comparison.
            mac.verify_slice(sig).is_ok()
        })
    })
}

/// The signature PagerDuty would send (tests, docs).
pub fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Parses a v3 webhook: `{"event": {"event_type": "incident.triggered", "data": {incident}}}`.
/// Returns `None` for event types that are not about an incident starting or ending
/// (acknowledged, annotated, ...): they are accepted and recorded, but start nothing.
pub fn parse(body: &Value) -> Result<Option<Alert>, PayloadError> {
    let event = body
        .get("event")
        .ok_or_else(|| PayloadError::new("missing 'event': not a PagerDuty v3 webhook payload"))?;
    let event_type = event
        .get("event_type")
        .and_then(Value::as_str)
        .ok_or_else(|| PayloadError::new("missing 'event.event_type'"))?;
    let status = match event_type {
        "incident.triggered" | "incident.reopened" => AlertStatus::Firing,
        "incident.resolved" => AlertStatus::Resolved,
        _ => return Ok(None),
    };
    let data = event
        .get("data")
        .ok_or_else(|| PayloadError::new("missing 'event.data' (the incident)"))?;
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let id = text(data.get("id"))
        .ok_or_else(|| PayloadError::new("missing 'event.data.id' (the incident id)"))?;
    let service = text(data.pointer("/service/summary"))
        .or_else(|| text(data.pointer("/service/name")))
        .ok_or_else(|| {
            PayloadError::new("missing 'event.data.service.summary' (the service name)")
        })?;
    let summary = text(data.get("title")).unwrap_or_else(|| format!("PagerDuty incident {id}"));
    // PagerDuty incidents have an urgency, not a severity; a priority name refines it.
    let severity = match (
        data.pointer("/priority/summary").and_then(Value::as_str),
        data.get("urgency").and_then(Value::as_str),
    ) {
        (Some(p), _) => crate::alert::normalize_severity(p),
        (None, Some("high")) => "critical",
        (None, Some("low")) => "warning",
        _ => "error",
    };
    let triggered_at = text(data.get("created_at"))
        .or_else(|| text(event.get("occurred_at")))
        .unwrap_or_default();
    Ok(Some(Alert {
        source: "pagerduty",
        id,
        status,
        service,
        summary,
        severity: severity.to_owned(),
        triggered_at,
        details: json!({
            "event_id": event.get("id"),
            "event_type": event_type,
            "incident_number": data.get("number"),
            "html_url": data.get("html_url"),
            "urgency": data.get("urgency"),
            "incident_key": data.get("incident_key"),
        }),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_of_several_signatures_from_any_secret_verifies() {
        let body = br#"{"event":{}}"#;
        let good = sign(body, "new-secret");
        let header = format!("v1=deadbeef,{good}");
        assert!(verify_signature(
            body,
            Some(&header),
            &["old".into(), "new-secret".into()]
        ));
        assert!(!verify_signature(
            body,
            Some("v1=deadbeef"),
            &["new-secret".into()]
        ));
        assert!(!verify_signature(body, None, &["new-secret".into()]));
        assert!(!verify_signature(
            b"tampered",
            Some(&good),
            &["new-secret".into()]
        ));
    }
}
