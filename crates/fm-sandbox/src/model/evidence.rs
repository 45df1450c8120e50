//! Pulls evidence out of a prompt: the log lines, metric series and deploy
//! records the pipeline pasted in (as JSON, anywhere in the text), plus notes
//! about context that is visibly missing (`null`, an error object, "unavailable").
//!
//! The prompt is split into sections at headings (`## Recent Logs`, `Recent
//! deploys: [...]`); a section's heading tells what it should contain, so an
//! empty or failed section can be reported as missing context.

use serde_json::Value;

use crate::time::{parse_rfc3339, unix_secs};

#[derive(Debug, Clone, Default)]
pub(crate) struct Log {
    pub message: String,
    pub pod: Option<String>,
    pub service: Option<String>,
    pub ts: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub name: String,
    pub service: Option<String>,
    /// (Unix seconds, value), in time order.
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Deploy {
    pub id: Option<String>,
    pub version: String,
    pub service: Option<String>,
    pub author: Option<String>,
    /// Minutes since the deploy (from `age_minutes`, else from `deployed_at`).
    pub age_minutes: Option<f64>,
    pub deployed_at: Option<f64>,
}

#[derive(Debug, Default)]
pub(crate) struct Evidence {
    pub logs: Vec<Log>,
    /// A log result (possibly empty) was present.
    pub logs_seen: bool,
    pub series: Vec<Series>,
    pub metrics_seen: bool,
    pub deploys: Vec<Deploy>,
    pub deploys_seen: bool,
    /// Human-readable notes about context that is missing or failed.
    pub missing_logs: Option<String>,
    pub missing_metrics: Option<String>,
    pub missing_deploys: Option<String>,
    /// An earlier analysis pasted into the prompt (e.g. for a postmortem).
    pub analysis: Option<Value>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Logs,
    Metrics,
    Deploys,
    Other,
}

fn kind_of_heading(h: &str) -> Kind {
    let h = h.to_ascii_lowercase();
    if h.contains("log") {
        Kind::Logs
    } else if h.contains("metric") || h.contains("prometheus") {
        Kind::Metrics
    } else if h.contains("deploy") {
        Kind::Deploys
    } else {
        Kind::Other
    }
}

/// Splits text into (heading kind, heading, body) sections.
fn sections(text: &str) -> Vec<(Kind, String, String)> {
    let mut out: Vec<(Kind, String, String)> = vec![(Kind::Other, String::new(), String::new())];
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') {
            out.push((kind_of_heading(trimmed), trimmed.to_string(), String::new()));
            continue;
        }
        // "Recent deploys: [...]" / "Logs:" style headings.
        if let Some((key, rest)) = trimmed.split_once(':') {
            let key_ok = !key.is_empty()
                && key.len() <= 60
                && key
                    .chars()
                    .all(|c| c.is_alphanumeric() || " ()_/".contains(c));
            if key_ok && kind_of_heading(key) != Kind::Other {
                out.push((
                    kind_of_heading(key),
                    key.to_string(),
                    rest.trim().to_string(),
                ));
                continue;
            }
        }
        if let Some(last) = out.last_mut() {
            last.2.push_str(line);
            last.2.push('\n');
        }
    }
    out
}

/// Every JSON object/array embedded in `text`, outermost only.
pub(crate) fn embedded_json(text: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if bytes[i] == b'{' || bytes[i] == b'[' {
            let mut stream = serde_json::Deserializer::from_str(&text[i..]).into_iter::<Value>();
            if let Some(Ok(v)) = stream.next() {
                let consumed = stream.byte_offset();
                out.push(v);
                i += consumed.max(1);
                continue;
            }
        }
        i += 1;
    }
    out
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn time_of(v: &Value) -> Option<f64> {
    match v {
        Value::String(s) => parse_rfc3339(s).or_else(|| s.parse().ok()),
        Value::Number(n) => n.as_f64().map(|x| if x > 1e12 { x / 1000.0 } else { x }),
        _ => None,
    }
}

fn str_field(o: &serde_json::Map<String, Value>, k: &str) -> Option<String> {
    o.get(k).and_then(Value::as_str).map(str::to_string)
}

fn failure_note(v: &Value) -> Option<String> {
    let o = v.as_object()?;
    let err = o.get("error").or_else(|| o.get("errors"))?;
    if o.get("status").and_then(Value::as_str) == Some("success") {
        return None;
    }
    let text = match err {
        Value::String(s) => s.clone(),
        Value::Null => return None,
        other => other.to_string(),
    };
    Some(text.chars().take(160).collect())
}

impl Evidence {
    fn walk(&mut self, v: &Value, section: Kind, now: f64) {
        match v {
            Value::Array(items) => {
                if items.is_empty() {
                    match section {
                        Kind::Logs => self.logs_seen = true,
                        Kind::Deploys => self.deploys_seen = true,
                        Kind::Metrics => self.metrics_seen = true,
                        Kind::Other => {}
                    }
                }
                for item in items {
                    self.walk(item, section, now);
                }
            }
            Value::Object(o) => {
                if let (Some(Value::Object(metric)), Some(vals)) =
                    (o.get("metric"), o.get("values").or_else(|| o.get("value")))
                {
                    let pairs: Vec<&Value> = match vals.as_array() {
                        Some(a) if a.first().is_some_and(Value::is_array) => a.iter().collect(),
                        Some(_) => vec![vals],
                        None => vec![],
                    };
                    let points = pairs
                        .iter()
                        .filter_map(|p| {
                            let p = p.as_array()?;
                            Some((num(p.first()?)?, num(p.get(1)?)?))
                        })
                        .collect();
                    self.metrics_seen = true;
                    self.series.push(Series {
                        name: metric
                            .get("__name__")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                        service: metric
                            .get("service")
                            .or_else(|| metric.get("job"))
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        points,
                    });
                    return;
                }
                if let Some(msg) = o.get("message").and_then(Value::as_str) {
                    if ["level", "timestamp", "pod", "severity", "ts"]
                        .iter()
                        .any(|k| o.contains_key(*k))
                    {
                        self.logs_seen = true;
                        self.logs.push(Log {
                            message: msg.to_string(),
                            pod: str_field(o, "pod").or_else(|| str_field(o, "host")),
                            service: str_field(o, "service"),
                            ts: o.get("timestamp").or_else(|| o.get("ts")).and_then(time_of),
                        });
                        return;
                    }
                }
                if let Some(version) = o.get("version").and_then(Value::as_str) {
                    if o.contains_key("deployed_at") || o.contains_key("age_minutes") {
                        let deployed_at = o.get("deployed_at").and_then(time_of);
                        let age = o
                            .get("age_minutes")
                            .and_then(num)
                            .or_else(|| deployed_at.map(|d| (now - d) / 60.0));
                        self.deploys_seen = true;
                        self.deploys.push(Deploy {
                            id: str_field(o, "id"),
                            version: version.to_string(),
                            service: str_field(o, "service"),
                            author: str_field(o, "author"),
                            age_minutes: age,
                            deployed_at,
                        });
                        return;
                    }
                }
                if o.contains_key("root_cause") && o.contains_key("issue_type") {
                    self.analysis = Some(v.clone());
                    return;
                }
                if o.get("status").and_then(Value::as_str) == Some("error")
                    && o.contains_key("errorType")
                {
                    let e = o
                        .get("error")
                        .and_then(Value::as_str)
                        .unwrap_or("query failed");
                    self.missing_metrics = Some(format!("metrics query failed ({e})"));
                    return;
                }
                if let Some(note) = failure_note(v) {
                    match section {
                        Kind::Logs => {
                            self.missing_logs = Some(format!("log query failed ({note})"))
                        }
                        Kind::Metrics => {
                            self.missing_metrics = Some(format!("metrics query failed ({note})"))
                        }
                        Kind::Deploys => {
                            self.missing_deploys = Some(format!("deploy query failed ({note})"))
                        }
                        Kind::Other => {}
                    }
                }
                if let Some(logs) = o.get("logs") {
                    if logs.is_null() {
                        self.missing_logs
                            .get_or_insert_with(|| "logs are null in the prompt".into());
                    } else if logs.is_array() {
                        self.logs_seen = true;
                    }
                }
                if o.contains_key("resultType") {
                    self.metrics_seen = true;
                }
                for child in o.values() {
                    self.walk(child, section, now);
                }
            }
            _ => {}
        }
    }
}

/// Words that mark a section's content as a failure rather than data.
const FAILURE_WORDS: &[&str] = &[
    "unavailable",
    "timed out",
    "timeout",
    "failed",
    "error",
    "could not",
    "not available",
    "n/a",
];

pub(crate) fn extract(text: &str) -> Evidence {
    let now = unix_secs(std::time::SystemTime::now());
    let mut ev = Evidence::default();
    for (kind, heading, body) in sections(text) {
        let (logs0, series0, deploys0) = (ev.logs.len(), ev.series.len(), ev.deploys.len());
        let (ls, ms, ds) = (ev.logs_seen, ev.metrics_seen, ev.deploys_seen);
        for v in embedded_json(&body) {
            ev.walk(&v, kind, now);
        }
        let found = match kind {
            Kind::Logs => ev.logs.len() > logs0 || (ev.logs_seen && !ls),
            Kind::Metrics => ev.series.len() > series0 || (ev.metrics_seen && !ms),
            Kind::Deploys => ev.deploys.len() > deploys0 || (ev.deploys_seen && !ds),
            Kind::Other => true,
        };
        if found {
            continue;
        }
        let trimmed = body.trim();
        let lower = trimmed.to_ascii_lowercase();
        let what = match kind {
            Kind::Logs => "logs",
            Kind::Metrics => "metrics",
            _ => "deploys",
        };
        let empty = matches!(
            lower.as_str(),
            "" | "null" | "none" | "undefined" | "nil" | "{}" | "\"\""
        );
        let note = if empty {
            Some(format!(
                "{what} missing: the prompt shows {} under {:?}",
                if trimmed.is_empty() {
                    "nothing"
                } else {
                    trimmed
                },
                heading.trim_matches('#').trim()
            ))
        } else if FAILURE_WORDS.iter().any(|w| lower.contains(w))
            && (kind != Kind::Logs || (lower.len() < 300 && !lower.contains('\n')))
        {
            // For logs, only a short one-line note counts as a failure: real
            // plain-text log lines mention "error" all the time.
            let snippet: String = trimmed.chars().take(120).collect();
            Some(format!("{what} unavailable: {snippet}"))
        } else {
            None
        };
        match (kind, note) {
            (Kind::Logs, Some(n)) => {
                ev.missing_logs.get_or_insert(n);
            }
            (Kind::Metrics, Some(n)) => {
                ev.missing_metrics.get_or_insert(n);
            }
            (Kind::Deploys, Some(n)) => {
                ev.missing_deploys.get_or_insert(n);
            }
            (Kind::Logs, None) => {
                // Plain-text logs: one line per entry.
                for line in trimmed.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    ev.logs_seen = true;
                    ev.logs.push(Log {
                        message: line.to_string(),
                        ..Log::default()
                    });
                }
            }
            _ => {}
        }
    }
    // Data that did arrive outweighs a failure note from another section.
    if !ev.logs.is_empty() {
        ev.missing_logs = None;
    }
    if !ev.series.is_empty() {
        ev.missing_metrics = None;
    }
    if !ev.deploys.is_empty() {
        ev.missing_deploys = None;
    }
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_json_in_sections() {
        let text = "Incident triage for x:\n\n## Recent Logs (errors):\n[{\"timestamp\":\"2024-01-15T03:40:00Z\",\"level\":\"error\",\"pod\":\"p1\",\"message\":\"boom\"}]\n\n## Metrics (last 30 min):\nnull\n\n## Recent Deployments:\n[]\n";
        let ev = extract(text);
        assert_eq!(ev.logs.len(), 1);
        assert_eq!(ev.logs[0].pod.as_deref(), Some("p1"));
        assert!(ev.missing_metrics.is_some());
        assert!(ev.deploys_seen && ev.deploys.is_empty());
        assert!(ev.missing_logs.is_none());
    }

    #[test]
    fn prometheus_errors_are_missing_metrics() {
        let text = "## Metrics:\n{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":\"invalid parameter\"}\n";
        let ev = extract(text);
        assert!(ev
            .missing_metrics
            .is_some_and(|m| m.contains("invalid parameter")));
    }
}
