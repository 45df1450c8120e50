//! OpenAI chat completions (`POST {base}/chat/completions`), also spoken by local
//! OpenAI-compatible servers (Ollama, vLLM, llama.cpp, LM Studio).

use fm_expr::Value;
use serde_json::{json, Map};

use super::provider::{LlmReply, LlmRequest, Provider, ProviderKind, Usage};
use super::reply::json_instruction;
use super::ResponseFormat;

pub(crate) struct OpenAi;

impl Provider for OpenAi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::OpenAi
    }

    fn endpoint(&self, base: &str) -> String {
        format!("{base}/chat/completions")
    }

    fn headers(&self, api_key: Option<&str>) -> Vec<(&'static str, String)> {
        api_key
            .map(|k| vec![("authorization", format!("Bearer {k}"))])
            .unwrap_or_default()
    }

    fn body(&self, req: &LlmRequest<'_>) -> Value {
        let mut system = req.system.map(str::to_owned);
        // JSON mode requires the word "JSON" in the messages; say it when the prompts do not.
        if matches!(req.format, ResponseFormat::Json) {
            let mentions = |s: &str| s.to_ascii_lowercase().contains("json");
            if !mentions(req.prompt) && !system.as_deref().is_some_and(mentions) {
                system = Some(join_system(system, &json_instruction(req.format)));
            }
        }
        let mut messages = Vec::new();
        if let Some(s) = system {
            messages.push(json!({"role": "system", "content": s}));
        }
        messages.push(json!({"role": "user", "content": req.prompt}));
        let mut body = Map::new();
        body.insert("model".into(), Value::String(req.model.to_owned()));
        body.insert("messages".into(), Value::Array(messages));
        if let Some(t) = req.temperature {
            body.insert("temperature".into(), json!(t));
        }
        if let Some(n) = req.max_tokens {
            body.insert("max_tokens".into(), json!(n));
        }
        match req.format {
            ResponseFormat::Text => {}
            ResponseFormat::Json => {
                body.insert("response_format".into(), json!({"type": "json_object"}));
            }
            ResponseFormat::Schema { schema, .. } => {
                body.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": false}}),
                );
            }
        }
        Value::Object(body)
    }

    fn parse_reply(&self, body: &Value) -> Result<LlmReply, String> {
        let choice = body
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|c| c.first())
            .ok_or("it has no choices[0]")?;
        let message = choice.get("message").ok_or("choices[0] has no message")?;
        let content = match message.get("content") {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => match message.get("refusal").and_then(Value::as_str) {
                Some(r) => return Err(format!("the model refused: {r}")),
                None => String::new(),
            },
            Some(other) => return Err(format!("choices[0].message.content is not text: {other}")),
        };
        let usage = body.get("usage");
        let n = |k: &str| usage.and_then(|u| u.get(k)).and_then(Value::as_u64);
        Ok(LlmReply {
            content,
            model: body.get("model").and_then(Value::as_str).map(str::to_owned),
            usage: Usage {
                input_tokens: n("prompt_tokens"),
                output_tokens: n("completion_tokens"),
                total_tokens: n("total_tokens"),
            },
            stop_reason: choice
                .get("finish_reason")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }
}

pub(crate) fn join_system(system: Option<String>, extra: &str) -> String {
    match system {
        Some(s) if !s.trim().is_empty() => format!("{s}\n\n{extra}"),
        _ => extra.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn req<'a>(
        format: &'a ResponseFormat,
        system: Option<&'a str>,
        prompt: &'a str,
    ) -> LlmRequest<'a> {
        LlmRequest {
            model: "gpt-4",
            system,
            prompt,
            temperature: Some(0.2),
            max_tokens: None,
            format,
        }
    }

    #[test]
    fn json_mode_mentions_json() {
        let f = ResponseFormat::Json;
        let b = OpenAi.body(&req(&f, Some("Be brief."), "hi"));
        assert_eq!(b["response_format"], json!({"type": "json_object"}));
        assert!(b["messages"][0]["content"]
            .as_str()
            .unwrap()
            .contains("JSON"));
        assert!(b.get("max_tokens").is_none());
        let b = OpenAi.body(&req(&f, Some("Format as JSON."), "hi"));
        assert_eq!(b["messages"][0]["content"], "Format as JSON.");
    }

    #[test]
    fn reply_parsing() {
        let body = json!({"model": "gpt-4-0613", "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
                          "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}});
        let r = OpenAi.parse_reply(&body).unwrap();
        assert_eq!(r.content, "hi");
        assert_eq!(r.usage.total_tokens, Some(4));
        assert!(OpenAi.parse_reply(&json!({"choices": []})).is_err());
        let refusal = json!({"choices": [{"message": {"content": null, "refusal": "no"}}]});
        assert!(OpenAi
            .parse_reply(&refusal)
            .unwrap_err()
            .contains("refused"));
    }
}
