//! OpenAI-compatible `POST /openai/v1/chat/completions`, answered by the
//! rule-based stand-in in `model/` — a real `chat.completion` object whose
//! `system_fingerprint` is `fm-sandbox-simulated` and whose content says
//! `"simulated": true` (JSON) or starts with a banner (Markdown).
//!
//! Auth and validation errors use OpenAI's `{"error": {message, type, param, code}}` shape.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::{json, Value};

use super::AppState;
use crate::auth;
use crate::model::{self, ReplyKind};
use crate::util::json;

fn error(code: StatusCode, message: &str, param: Option<&str>, err_code: Option<&str>) -> Response {
    json(
        code,
        json!({"error": {"message": message, "type": "invalid_request_error", "param": param, "code": err_code}}),
    )
}

/// Rough token count: ~4/3 tokens per word, as a tokenizer would give for English.
fn tokens(text: &str) -> u64 {
    let words = text.split_whitespace().count() as u64;
    (words * 4).div_ceil(3)
}

fn validate(req: &Value) -> Result<(), Response> {
    let bad = |m: &str, p: &str| Err(error(StatusCode::BAD_REQUEST, m, Some(p), None));
    if req
        .get("model")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return bad("you must provide a model parameter", "model");
    }
    let Some(msgs) = req.get("messages") else {
        return bad("Missing required parameter: 'messages'.", "messages");
    };
    let Some(msgs) = msgs.as_array() else {
        return bad(
            "Invalid type for 'messages': expected an array of objects.",
            "messages",
        );
    };
    if msgs.is_empty() {
        return bad(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
        );
    }
    for (i, m) in msgs.iter().enumerate() {
        let role = m.get("role").and_then(Value::as_str);
        if !matches!(
            role,
            Some("system" | "developer" | "user" | "assistant" | "tool")
        ) {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("Invalid value for 'messages[{i}].role'."),
                Some(&format!("messages[{i}].role")),
                Some("invalid_value"),
            ));
        }
        if m.get("content").is_none() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("Missing required parameter: 'messages[{i}].content'."),
                Some(&format!("messages[{i}].content")),
                Some("missing_required_parameter"),
            ));
        }
    }
    if let Some(t) = req.get("temperature").filter(|t| !t.is_null()) {
        match t.as_f64() {
            Some(v) if (0.0..=2.0).contains(&v) => {}
            _ => {
                return bad(
                    "Invalid 'temperature': must be a number between 0 and 2.",
                    "temperature",
                )
            }
        }
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        return bad(
            "The fm sandbox model does not stream; send stream=false.",
            "stream",
        );
    }
    if let Some(rf) = req.pointer("/response_format/type").and_then(Value::as_str) {
        if !matches!(rf, "text" | "json_object" | "json_schema") {
            return bad(
                "Invalid value for 'response_format.type': expected 'text', 'json_object' or 'json_schema'.",
                "response_format.type",
            );
        }
    }
    Ok(())
}

pub(crate) async fn chat_completions(
    State(sh): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match auth::credential(&headers, "Bearer") {
        None => {
            return error(
                StatusCode::UNAUTHORIZED,
                "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                None,
                None,
            )
        }
        Some(k) if k != auth::OPENAI_API_KEY => {
            let shown: String = k.chars().take(6).collect();
            return error(
                StatusCode::UNAUTHORIZED,
                &format!("Incorrect API key provided: {shown}***. The fm sandbox accepts only its own OPENAI_API_KEY."),
                None,
                Some("invalid_api_key"),
            );
        }
        Some(_) => {}
    }
    let req: Value = match serde_json::from_slice(&body) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)",
                None,
                None,
            )
        }
    };
    if let Err(r) = validate(&req) {
        return r;
    }
    // The rules are cheap; the latency is the simulation of a model thinking.
    let reply = model::respond(&req);
    let latency = match reply.kind {
        ReplyKind::Analysis => sh.latencies.model_analysis,
        ReplyKind::Postmortem => sh.latencies.model_postmortem,
    };
    sh.pause(latency).await;
    let model_name = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let prompt_text: String = req
        .get("messages")
        .and_then(Value::as_array)
        .map(|m| {
            m.iter()
                .map(|m| m.get("content").map(|c| c.to_string()).unwrap_or_default())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let (prompt_tokens, completion_tokens) = (tokens(&prompt_text), tokens(&reply.content));
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let n = {
        let mut w = sh.world();
        let n = w.next_id();
        w.count("openai.completions");
        w.model_calls.push(json!({
            "kind": if reply.kind == ReplyKind::Analysis { "analysis" } else { "postmortem" },
            "model": model_name,
            "issue_type": reply.issue_type,
        }));
        n
    };
    let body = json!({
        "id": format!("chatcmpl-fmsandbox{n:08}"),
        "object": "chat.completion",
        "created": created,
        "model": model_name,
        "system_fingerprint": "fm-sandbox-simulated",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": reply.content, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    });
    let mut resp = json(StatusCode::OK, body);
    resp.headers_mut()
        .insert("x-fm-sandbox-simulated", HeaderValue::from_static("true"));
    resp
}
