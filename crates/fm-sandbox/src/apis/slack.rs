//! Slack incoming webhook: `POST /slack/webhook/{T}/{B}/{secret}`.
//!
//! Answers like Slack: 200 text `ok`; 400 `invalid_payload` (not JSON),
//! `no_text` (neither `text` nor `blocks`), `invalid_blocks` (Block Kit
//! limits broken); 404 `no_service` for a webhook that does not exist.
//! Accepts a JSON body or a form body with a `payload` field, as Slack does.

use std::time::SystemTime;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::AppState;
use crate::auth;
use crate::time::rfc3339_millis;
use crate::util::{parse_form, text};

/// Block Kit limits the sandbox enforces (from Slack's reference).
const MAX_BLOCKS: usize = 50;
const MAX_HEADER_TEXT: usize = 150;
const MAX_SECTION_TEXT: usize = 3000;
const MAX_SECTION_FIELDS: usize = 10;
const MAX_FIELD_TEXT: usize = 2000;
const KNOWN_BLOCKS: &[&str] = &[
    "section",
    "header",
    "divider",
    "context",
    "actions",
    "image",
    "input",
    "rich_text",
    "file",
    "video",
    "markdown",
];

/// The first Block Kit rule `blocks` breaks, if any.
fn check_blocks(blocks: &Value) -> Result<(), String> {
    let Some(blocks) = blocks.as_array() else {
        return Err("blocks must be an array".into());
    };
    if blocks.len() > MAX_BLOCKS {
        return Err(format!("more than {MAX_BLOCKS} blocks"));
    }
    for (i, b) in blocks.iter().enumerate() {
        let ty = b.get("type").and_then(Value::as_str).unwrap_or("");
        if !KNOWN_BLOCKS.contains(&ty) {
            return Err(format!("blocks[{i}]: unknown block type {ty:?}"));
        }
        let text_of = |t: &Value| {
            t.get("text")
                .and_then(Value::as_str)
                .map(|s| s.chars().count())
        };
        match ty {
            "header" => {
                let t = b
                    .get("text")
                    .ok_or(format!("blocks[{i}]: header needs text"))?;
                if t.get("type").and_then(Value::as_str) != Some("plain_text") {
                    return Err(format!("blocks[{i}]: header text must be plain_text"));
                }
                match text_of(t) {
                    Some(n) if n <= MAX_HEADER_TEXT => {}
                    Some(n) => {
                        return Err(format!(
                            "blocks[{i}].text: {n} characters, max {MAX_HEADER_TEXT}"
                        ))
                    }
                    None => return Err(format!("blocks[{i}].text.text must be a string")),
                }
            }
            "section" => {
                let t = b.get("text");
                let f = b.get("fields");
                if t.is_none() && f.is_none() {
                    return Err(format!("blocks[{i}]: section needs text or fields"));
                }
                if let Some(t) = t {
                    match text_of(t) {
                        Some(n) if n <= MAX_SECTION_TEXT => {}
                        Some(n) => {
                            return Err(format!(
                                "blocks[{i}].text: {n} characters, max {MAX_SECTION_TEXT}"
                            ))
                        }
                        None => return Err(format!("blocks[{i}].text.text must be a string")),
                    }
                }
                if let Some(f) = f {
                    let fields = f
                        .as_array()
                        .ok_or(format!("blocks[{i}].fields must be an array"))?;
                    if fields.len() > MAX_SECTION_FIELDS {
                        return Err(format!(
                            "blocks[{i}].fields: {} items, max {MAX_SECTION_FIELDS}",
                            fields.len()
                        ));
                    }
                    for (j, field) in fields.iter().enumerate() {
                        match field.get("type").and_then(Value::as_str) {
                            Some("mrkdwn" | "plain_text") => {}
                            _ => {
                                return Err(format!(
                                    "blocks[{i}].fields[{j}].type must be mrkdwn or plain_text"
                                ))
                            }
                        }
                        match text_of(field) {
                            Some(n) if n <= MAX_FIELD_TEXT => {}
                            Some(n) => {
                                return Err(format!(
                                    "blocks[{i}].fields[{j}]: {n} characters, max {MAX_FIELD_TEXT}"
                                ))
                            }
                            None => {
                                return Err(format!(
                                    "blocks[{i}].fields[{j}].text must be a string"
                                ))
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

pub(crate) async fn webhook(
    State(sh): State<AppState>,
    Path((a, b, c)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    sh.pause(sh.latencies.slack).await;
    if format!("{a}/{b}/{c}") != auth::SLACK_WEBHOOK_PATH {
        return text(StatusCode::NOT_FOUND, "no_service");
    }
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"));
    let raw = if is_form {
        parse_form(&String::from_utf8_lossy(&body))
            .into_iter()
            .find(|(k, _)| k == "payload")
            .map(|(_, v)| v)
            .unwrap_or_default()
    } else {
        String::from_utf8_lossy(&body).into_owned()
    };
    let mut w = sh.world();
    let msg: Value = match serde_json::from_str(&raw) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            w.count("slack.rejected");
            return text(StatusCode::BAD_REQUEST, "invalid_payload");
        }
    };
    let has_text = msg
        .get("text")
        .and_then(Value::as_str)
        .is_some_and(|t| !t.trim().is_empty());
    let blocks = msg.get("blocks").filter(|b| !b.is_null());
    if !has_text && blocks.is_none_or(|b| b.as_array().is_some_and(Vec::is_empty)) {
        w.count("slack.rejected");
        return text(StatusCode::BAD_REQUEST, "no_text");
    }
    if let Some(blocks) = blocks {
        if let Err(why) = check_blocks(blocks) {
            tracing::debug!(%why, "slack: invalid_blocks");
            w.count("slack.rejected");
            return text(StatusCode::BAD_REQUEST, "invalid_blocks");
        }
    }
    w.count("slack.messages");
    w.slack_messages
        .push(json!({"received_at": rfc3339_millis(SystemTime::now()), "message": msg}));
    text(StatusCode::OK, "ok")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_limits() {
        let ok = json!([{"type": "header", "text": {"type": "plain_text", "text": "Incident Auto-Resolved"}},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Service:*\npayment-service"}]}]);
        assert!(check_blocks(&ok).is_ok());
        let long =
            json!([{"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}]);
        assert!(check_blocks(&long).is_err());
        let fields: Vec<Value> = (0..11)
            .map(|_| json!({"type": "mrkdwn", "text": "a"}))
            .collect();
        assert!(check_blocks(&json!([{"type": "section", "fields": fields}])).is_err());
        let big =
            json!([{"type": "section", "fields": [{"type": "mrkdwn", "text": "y".repeat(2001)}]}]);
        assert!(check_blocks(&big).is_err());
    }
}
