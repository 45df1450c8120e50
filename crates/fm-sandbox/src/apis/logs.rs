//! `POST /logs/query`: a log-search API in the style of Datadog/Loki-backed
//! internal tools. Request `{query: "service:<svc> level:error", from: "-30m",
//! to?, limit: 100}`; response `{"logs": [{timestamp, level, service, pod,
//! message}], "total": N}`, newest first, `total` counting every match before
//! `limit`. Requires `Authorization: Bearer <LOGGING_TOKEN>`.
//!
//! In the flaky-context scenario the first two authorised queries fail with
//! HTTP 500, as a log store under load does.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::AppState;
use crate::auth;
use crate::signals;
use crate::time::{parse_time_expr, rfc3339_millis};
use crate::util::json;

/// A parsed query: `key:value` terms (value may be quoted) and free-text words.
#[derive(Default, Debug)]
struct Query {
    service: Option<String>,
    level: Option<String>,
    pod: Option<String>,
    words: Vec<String>,
}

fn parse_query(q: &str) -> Query {
    let mut out = Query::default();
    let mut rest = q.trim();
    while !rest.is_empty() {
        // One token: up to whitespace, but a quoted value may contain spaces.
        let mut end = rest.len();
        let mut in_quotes = false;
        for (i, c) in rest.char_indices() {
            if c == '"' {
                in_quotes = !in_quotes;
            } else if c.is_whitespace() && !in_quotes {
                end = i;
                break;
            }
        }
        let token = &rest[..end];
        rest = rest[end..].trim_start();
        match token.split_once(':') {
            Some((k, v))
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.') =>
            {
                let v = v.trim_matches('"').to_string();
                match k.to_ascii_lowercase().as_str() {
                    "service" | "app" | "service.name" => out.service = Some(v),
                    "level" | "status" | "severity" => out.level = Some(v.to_ascii_lowercase()),
                    "pod" | "host" => out.pod = Some(v),
                    _ => out.words.push(token.to_ascii_lowercase()),
                }
            }
            _ => {
                let w = token.trim_matches('"').to_ascii_lowercase();
                if !w.is_empty() && w != "and" {
                    out.words.push(w);
                }
            }
        }
    }
    out
}

fn bad_request(message: String) -> Response {
    json(
        StatusCode::BAD_REQUEST,
        json!({"error": "bad_request", "message": message}),
    )
}

pub(crate) async fn query(State(sh): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    if !auth::bearer_is(&headers, auth::LOGGING_TOKEN) {
        return json(
            StatusCode::UNAUTHORIZED,
            json!({"error": "unauthorized", "message": "missing or invalid bearer token"}),
        );
    }
    sh.pause(sh.latencies.logs).await;
    {
        let mut w = sh.world();
        w.count("logs.queries");
        if w.logs_failures_left > 0 {
            w.logs_failures_left -= 1;
            w.count("logs.injected_failures");
            return json(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "internal_error", "message": "log store shard unavailable, try again (simulated transient failure)"}),
            );
        }
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        Ok(_) => return bad_request("request body must be a JSON object".into()),
        Err(e) => return bad_request(format!("request body is not valid JSON: {e}")),
    };
    let Some(q) = req.get("query").and_then(Value::as_str) else {
        return bad_request(
            "\"query\" (string) is required, e.g. \"service:payment-service level:error\"".into(),
        );
    };
    let now = SystemTime::now();
    let time_field = |name: &str, default: SystemTime| -> Result<SystemTime, Response> {
        match req.get(name) {
            None | Some(Value::Null) => Ok(default),
            Some(Value::String(s)) => parse_time_expr(s, now).ok_or_else(|| {
                bad_request(format!(
                    "invalid \"{name}\": {s:?} (use -30m, RFC 3339 or Unix seconds)"
                ))
            }),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(crate::time::from_unix_secs)
                .ok_or_else(|| bad_request(format!("invalid \"{name}\""))),
            Some(_) => Err(bad_request(format!("invalid \"{name}\""))),
        }
    };
    let from = match time_field("from", now - std::time::Duration::from_secs(15 * 60)) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let to = match time_field("to", now) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let limit = match req.get("limit") {
        None | Some(Value::Null) => 100,
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(n) => n.min(1000) as usize,
            None => return bad_request("\"limit\" must be a non-negative integer".into()),
        },
    };
    let query = parse_query(q);
    let mut matched = Vec::new();
    {
        let w = sh.world();
        for (name, s) in &w.services {
            if query.service.as_ref().is_some_and(|want| want != name) {
                continue;
            }
            let (anchor, _) = w.anchor(name, now);
            let entries = signals::logs(
                s.profile,
                (&s.pod, &s.other_pod),
                anchor,
                w.bad_deploy_at(name),
            );
            for e in entries {
                let level_ok = query.level.as_ref().is_none_or(|l| {
                    l == e.level || (l == "error" && matches!(e.level, "fatal" | "critical"))
                });
                let pod_ok = query.pod.as_ref().is_none_or(|p| *p == e.pod);
                let text = e.message.to_ascii_lowercase();
                let words_ok = query.words.iter().all(|word| text.contains(word.as_str()));
                if level_ok && pod_ok && words_ok && e.ts >= from && e.ts <= to {
                    matched.push((name.clone(), e));
                }
            }
        }
    }
    matched.sort_by_key(|m| std::cmp::Reverse(m.1.ts));
    let total = matched.len();
    let logs: Vec<Value> = matched
        .into_iter()
        .take(limit)
        .map(|(service, e)| {
            json!({
                "timestamp": rfc3339_millis(e.ts),
                "level": e.level,
                "service": service,
                "pod": e.pod,
                "message": e.message,
            })
        })
        .collect();
    json(StatusCode::OK, json!({"logs": logs, "total": total}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_service_level_and_words() {
        let q = parse_query("service:payment-service level:error \"heap space\" OOM");
        assert_eq!(q.service.as_deref(), Some("payment-service"));
        assert_eq!(q.level.as_deref(), Some("error"));
        assert_eq!(q.words, vec!["heap space".to_string(), "oom".to_string()]);
        let q = parse_query("service:\"orders-service\"");
        assert_eq!(q.service.as_deref(), Some("orders-service"));
    }
}
