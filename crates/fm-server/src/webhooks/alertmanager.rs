//! Prometheus Alertmanager webhooks (`version: "4"`): each alert in `alerts` is one alert; the
//! fingerprint identifies it; resolved alerts start no runs.

use serde_json::{json, Value};

use crate::alert::{normalize_severity, Alert, AlertStatus};
use crate::webhooks::PayloadError;

pub fn parse(body: &Value) -> Result<Vec<Alert>, PayloadError> {
    let alerts = body
        .get("alerts")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            PayloadError::new("missing 'alerts' list: not an Alertmanager webhook payload")
        })?;
    alerts
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let labels = a.get("labels").and_then(Value::as_object);
            let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
            let annotation = |k: &str| a.pointer(&format!("/annotations/{k}")).and_then(Value::as_str);
            let status = match a.get("status").and_then(Value::as_str) {
                Some("firing") => AlertStatus::Firing,
                Some("resolved") => AlertStatus::Resolved,
                other => {
                    return Err(PayloadError::new(format!(
                        "alerts[{i}].status is {other:?}; expected \"firing\" or \"resolved\""
                    )))
                }
            };
            let fingerprint = a
                .get("fingerprint")
                .and_then(Value::as_str)
                .ok_or_else(|| PayloadError::new(format!("alerts[{i}] has no 'fingerprint'")))?;
            let service = label("service")
                .or_else(|| label("app"))
                .or_else(|| label("job"))
                .ok_or_else(|| {
                    PayloadError::new(format!(
                        "alerts[{i}] has no 'service', 'app' or 'job' label to tell which service it is about"
                    ))
                })?;
            let alertname = label("alertname").unwrap_or("alert");
            Ok(Alert {
                source: "alertmanager",
                id: fingerprint.to_owned(),
                status,
                service: service.to_owned(),
                summary: annotation("summary")
                    .or_else(|| annotation("description"))
                    .map_or_else(|| format!("{service}: {alertname}"), str::to_owned),
                severity: normalize_severity(label("severity").unwrap_or("error")).to_owned(),
                triggered_at: a.get("startsAt").and_then(Value::as_str).unwrap_or_default().to_owned(),
                details: json!({
                    "alertname": alertname,
                    "labels": a.get("labels"),
                    "annotations": a.get("annotations"),
                    "generator_url": a.get("generatorURL"),
                    "group_key": body.get("groupKey"),
                }),
            })
        })
        .collect()
}
