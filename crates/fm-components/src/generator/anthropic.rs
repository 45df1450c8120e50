//! Anthropic messages (`POST {base}/v1/messages`, `anthropic-version: 2023-06-01`). This API
//! version has no JSON mode: for `json` or a schema the system prompt asks for a JSON object.

use fm_expr::Value;
use serde_json::{json, Map};

use super::openai::join_system;
use super::provider::{LlmReply, LlmRequest, Provider, ProviderKind, Usage};
use super::reply::json_instruction;
use super::ResponseFormat;

pub(crate) struct Anthropic;

pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Anthropic requires `max_tokens`; this is sent when the stage gives none.
pub const DEFAULT_MAX_TOKENS: u64 = 1024;

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn endpoint(&self, base: &str) -> String {
        format!("{base}/v1/messages")
    }

    fn headers(&self, api_key: Option<&str>) -> Vec<(&'static str, String)> {
        let mut h = vec![("anthropic-version", ANTHROPIC_VERSION.to_owned())];
        if let Some(k) = api_key {
            h.push(("x-api-key", k.to_owned()));
        }
        h
    }

    fn body(&self, req: &LlmRequest<'_>) -> Value {
        let mut system = req.system.map(str::to_owned);
        if !matches!(req.format, ResponseFormat::Text) {
            system = Some(join_system(system, &json_instruction(req.format)));
        }
        let mut body = Map::new();
        body.insert("model".into(), Value::String(req.model.to_owned()));
        body.insert(
            "max_tokens".into(),
            json!(req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS)),
        );
        if let Some(s) = system.filter(|s| !s.is_empty()) {
            body.insert("system".into(), Value::String(s));
        }
        body.insert(
            "messages".into(),
            json!([{"role": "user", "content": req.prompt}]),
        );
        if let Some(t) = req.temperature {
            body.insert("temperature".into(), json!(t));
        }
        Value::Object(body)
    }

    fn parse_reply(&self, body: &Value) -> Result<LlmReply, String> {
        let blocks = body
            .get("content")
            .and_then(Value::as_array)
            .ok_or("it has no content list")?;
        let content = blocks
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("");
        let usage = body.get("usage");
        let n = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64);
        let (input, output) = (n("input_tokens"), n("output_tokens"));
        Ok(LlmReply {
            content,
            model: body.get("model").and_then(Value::as_str).map(str::to_owned),
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
                total_tokens: input.zip(output).map(|(a, b)| a + b),
            },
            stop_reason: body
                .get("stop_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn body_shape() {
        let f = ResponseFormat::Json;
        let b = Anthropic.body(&LlmRequest {
            model: "claude-3-5-sonnet-latest",
            system: Some("You are an SRE."),
            prompt: "triage",
            temperature: None,
            max_tokens: None,
            format: &f,
        });
        assert_eq!(b["max_tokens"], 1024);
        assert_eq!(
            b["messages"],
            json!([{"role": "user", "content": "triage"}])
        );
        let sys = b["system"].as_str().unwrap();
        assert!(
            sys.starts_with("You are an SRE.") && sys.contains("JSON object"),
            "{sys}"
        );
        assert!(b.get("temperature").is_none());
    }

    #[test]
    fn reply_joins_text_blocks() {
        let body = json!({"model": "claude", "content": [{"type": "text", "text": "a"}, {"type": "tool_use"}, {"type": "text", "text": "b"}],
                          "usage": {"input_tokens": 5, "output_tokens": 2}, "stop_reason": "end_turn"});
        let r = Anthropic.parse_reply(&body).unwrap();
        assert_eq!(r.content, "ab");
        assert_eq!(r.usage.total_tokens, Some(7));
        let err = json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        assert_eq!(Anthropic.error_message(&err).as_deref(), Some("Overloaded"));
    }
}
