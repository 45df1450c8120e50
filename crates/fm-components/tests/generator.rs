//! generator against stand-in OpenAI and Anthropic servers: request shapes, replies with and
//! without JSON, response formats, provider errors and retries, and the API key's secrecy.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{error_kind, error_message, output, problems, run, serve, start_error, Opts, Reply};
use fm_components::generator::RetryTuning;
use fm_components::{Generator, LlmEnv};
use fm_core::{ErrorKind, LogLevel, Registry, RunRecord, RunStatus, StageStatus};
use serde_json::{json, Value};

const KEY: &str = "sk-test-SECRET-0123456789";

fn fast_retry() -> RetryTuning {
    RetryTuning {
        max_tries: 4,
        base_delay: Duration::from_millis(5),
        max_total_wait: Duration::from_secs(60),
    }
}

fn registry(env: LlmEnv) -> Registry {
    let mut r = fm_components::registry_with(env.clone());
    r.register(Arc::new(Generator::with_env(env).with_retry(fast_retry())));
    r
}

fn openai_env(base: &str) -> LlmEnv {
    LlmEnv {
        openai_api_key: Some(KEY.into()),
        openai_base_url: Some(format!("{base}/v1")),
        ..Default::default()
    }
}

fn anthropic_env(base: &str) -> LlmEnv {
    LlmEnv {
        anthropic_api_key: Some(KEY.into()),
        anthropic_base_url: Some(base.to_owned()),
        ..Default::default()
    }
}

fn chat(content: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4-0613",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    })
}

fn message(text: &str) -> Value {
    json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-3-5-sonnet-20241022",
        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 7}
    })
}

fn gen(config: Value) -> Value {
    json!({"id": "analyze", "component": "generator", "config": config})
}

fn assert_no_key(rec: &RunRecord) {
    let text = serde_json::to_string(rec).unwrap();
    assert!(!text.contains(KEY), "the API key leaked into the record");
}

const TRIAGE: &str = "{\"issue_type\": \"OOM\", \"confidence\": \"high\", \"root_cause\": \"leak\", \"content\": \"not the reply\", \"model\": \"nope\"}";

#[tokio::test]
async fn openai_request_shape_and_fields_at_top_level() {
    let srv = serve(|_, _| Reply::json(200, chat(TRIAGE))).await;
    let rec = run(
        json!([
            gen(json!({
                "model": "gpt-4", "temperature": 0.2, "max_tokens": 300,
                "system_prompt": "You are an SRE. Format as JSON.",
                "prompt": "Incident triage for {{input.service}}:\nAlert: {{input.summary}}"
            })),
            {"id": "route", "component": "logger", "depends_on": ["analyze"],
             "config": {"message": "{{stages.analyze.output.issue_type}}/{{stages.analyze.output.confidence}}"}}
        ]),
        Opts::default()
            .input(json!({"service": "payment-service", "summary": "High memory"}))
            .registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.only();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(
        seen.header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.json(),
        json!({
            "model": "gpt-4",
            "messages": [
                {"role": "system", "content": "You are an SRE. Format as JSON."},
                {"role": "user", "content": "Incident triage for payment-service:\nAlert: High memory"}
            ],
            "temperature": 0.2,
            "max_tokens": 300
        })
    );
    let out = output(&rec, "analyze");
    assert_eq!(out["content"], TRIAGE);
    assert_eq!(out["json"]["issue_type"], "OOM");
    assert_eq!(out["model"], "gpt-4-0613");
    assert_eq!(out["provider"], "openai");
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 10, "output_tokens": 5, "total_tokens": 15})
    );
    // The reply's fields, without replacing the generator's own keys.
    assert_eq!(out["issue_type"], "OOM");
    assert_eq!(out["root_cause"], "leak");
    assert_eq!(output(&rec, "route")["message"], "OOM/high");
    assert_no_key(&rec);
}

#[tokio::test]
async fn openai_response_formats() {
    let srv = serve(|s, _| {
        let body = s.json();
        if body["response_format"]["type"] == "json_schema" {
            Reply::json(
                200,
                chat("{\"issue_type\": \"OOM\", \"confidence\": \"high\"}"),
            )
        } else {
            Reply::json(200, chat("{\"ok\": true}"))
        }
    })
    .await;
    let schema = json!({"type": "object", "required": ["issue_type"], "properties": {"issue_type": {"type": "string"}}});
    let rec = run(
        json!([
            {"id": "j", "component": "generator", "config": {"model": "gpt-4o", "prompt": "hi", "response_format": "json"}},
            {"id": "s", "component": "generator", "config": {"model": "gpt-4o", "prompt": "hi", "response_format": schema}},
            {"id": "t", "component": "generator", "config": {"model": "gpt-4o", "prompt": "hi", "response_format": "text"}}
        ]),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.seen();
    let by_format = |t: Option<&str>| {
        seen.iter()
            .map(|s| s.json())
            .find(|b| b["response_format"]["type"].as_str() == t)
            .unwrap()
    };
    let j = by_format(Some("json_object"));
    // JSON mode needs the word JSON in the messages: a system message says it.
    assert_eq!(j["messages"][0]["role"], "system");
    assert!(j["messages"][0]["content"]
        .as_str()
        .unwrap()
        .contains("JSON"));
    let s = by_format(Some("json_schema"));
    assert_eq!(
        s["response_format"],
        json!({"type": "json_schema", "json_schema": {"name": "response", "schema": schema, "strict": false}})
    );
    let t = by_format(None);
    assert_eq!(t["messages"], json!([{"role": "user", "content": "hi"}]));
    assert_eq!(output(&rec, "s")["issue_type"], "OOM");
    assert_eq!(output(&rec, "j")["json"], json!({"ok": true}));
}

#[tokio::test]
async fn anthropic_request_shape_and_fenced_json() {
    let srv = serve(|_, _| {
        Reply::json(
            200,
            message("Here is the triage:\n```json\n{\"issue_type\": \"connection_pool_exhausted\", \"confidence\": \"medium\"}\n```"),
        )
    })
    .await;
    let rec = run(
        gen(json!({
            "provider": "anthropic", "model": "claude-3-5-sonnet-latest", "temperature": 0.3,
            "system_prompt": "You are an SRE.", "prompt": "Triage {{input.service}}", "response_format": "json"
        })),
        Opts::default()
            .input(json!({"service": "api"}))
            .registry(registry(anthropic_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.only();
    assert_eq!(seen.path, "/v1/messages");
    assert_eq!(seen.header("x-api-key"), Some(KEY));
    assert_eq!(seen.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(seen.header("authorization"), None);
    let body = seen.json();
    assert_eq!(body["model"], "claude-3-5-sonnet-latest");
    assert_eq!(body["max_tokens"], 1024);
    assert_eq!(body["temperature"], 0.3);
    assert_eq!(
        body["messages"],
        json!([{"role": "user", "content": "Triage api"}])
    );
    let system = body["system"].as_str().unwrap();
    assert!(
        system.starts_with("You are an SRE.") && system.contains("only a JSON object"),
        "{system}"
    );
    assert!(body.get("response_format").is_none());

    let out = output(&rec, "analyze");
    assert_eq!(out["provider"], "anthropic");
    assert_eq!(out["model"], "claude-3-5-sonnet-20241022");
    assert_eq!(
        out["usage"],
        json!({"input_tokens": 12, "output_tokens": 7, "total_tokens": 19})
    );
    assert_eq!(out["issue_type"], "connection_pool_exhausted");
    assert_eq!(out["json"]["confidence"], "medium");
    assert_no_key(&rec);
}

#[tokio::test]
async fn anthropic_schema_is_put_in_the_system_prompt() {
    let srv = serve(|_, _| Reply::json(200, message("{\"issue_type\": \"OOM\"}"))).await;
    let schema = json!({"type": "object", "required": ["issue_type"]});
    let rec = run(
        gen(json!({"provider": "anthropic", "model": "claude", "prompt": "p", "max_tokens": 50, "response_format": schema})),
        Opts::default().registry(registry(anthropic_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let body = srv.only().json();
    assert_eq!(body["max_tokens"], 50);
    assert!(body["system"]
        .as_str()
        .unwrap()
        .contains("\"required\":[\"issue_type\"]"));
}

#[tokio::test]
async fn text_reply_without_json() {
    let srv = serve(|_, _| {
        Reply::json(
            200,
            chat("## Postmortem\n\nThe service ran out of memory {maybe}."),
        )
    })
    .await;
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "Create postmortem"})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let out = output(&rec, "analyze");
    assert_eq!(out["json"], Value::Null);
    assert!(out["content"]
        .as_str()
        .unwrap()
        .starts_with("## Postmortem"));
    assert_eq!(
        out.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["content", "json", "model", "provider", "usage"]
    );
}

#[tokio::test]
async fn json_embedded_in_prose_is_found() {
    let srv = serve(|_, _| {
        Reply::json(200, chat("Analysis: the pool is exhausted. {\"issue_type\": \"connection_pool_exhausted\"} Let me know."))
    })
    .await;
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p"})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(
        output(&rec, "analyze")["issue_type"],
        "connection_pool_exhausted"
    );
}

#[tokio::test]
async fn json_format_with_prose_reply_fails() {
    let srv = serve(|_, _| Reply::json(200, chat("I think it is a memory leak."))).await;
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p", "response_format": "json"})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Failed);
    assert_eq!(error_kind(&rec, "analyze"), ErrorKind::InvalidResponse);
    let err = rec.stage("analyze").unwrap().error.clone().unwrap();
    assert!(err.retryable);
    assert!(
        err.message
            .contains("not JSON: I think it is a memory leak."),
        "{}",
        err.message
    );
    // What the model said is kept for whoever reads the record.
    assert_eq!(
        output(&rec, "analyze")["content"],
        "I think it is a memory leak."
    );
}

#[tokio::test]
async fn schema_violation_fails_with_the_reason() {
    let srv =
        serve(|_, _| Reply::json(200, chat("{\"issue_type\": 42, \"confidence\": \"high\"}")))
            .await;
    let schema = json!({"type": "object", "required": ["issue_type", "root_cause"],
                        "properties": {"issue_type": {"type": "string"}}});
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p", "response_format": schema})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(error_kind(&rec, "analyze"), ErrorKind::InvalidResponse);
    let msg = error_message(&rec, "analyze");
    assert!(
        msg.contains("does not match the response_format schema"),
        "{msg}"
    );
    assert!(
        msg.contains("root_cause") && msg.contains("at /issue_type"),
        "{msg}"
    );
}

#[tokio::test]
async fn rate_limit_honours_retry_after_then_succeeds() {
    let srv = serve(|_, i| {
        if i == 0 {
            Reply::json(
                429,
                json!({"error": {"message": "Rate limit reached for gpt-4", "type": "requests"}}),
            )
            .header("retry-after", "1")
        } else {
            Reply::json(200, chat("{\"issue_type\": \"OOM\"}"))
        }
    })
    .await;
    let started = Instant::now();
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p"})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(srv.seen().len(), 2);
    // One stage attempt: the retry happened inside the component.
    assert_eq!(rec.stage("analyze").unwrap().attempts, 1);
    let warn = rec.logs.iter().find(|l| l.level == LogLevel::Warn).unwrap();
    assert!(
        warn.message
            .contains("openai answered 429 Too Many Requests: Rate limit reached for gpt-4")
            && warn.message.contains("trying again in 1000 ms"),
        "{}",
        warn.message
    );
}

#[tokio::test]
async fn anthropic_overloaded_is_retried() {
    let srv = serve(|_, i| {
        if i < 2 {
            Reply::json(529, json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}))
        } else {
            Reply::json(200, message("fine"))
        }
    })
    .await;
    let rec = run(
        gen(json!({"model": "claude", "prompt": "p"})),
        Opts::default().registry(registry(anthropic_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    assert_eq!(srv.seen().len(), 3);
    assert_eq!(
        rec.logs
            .iter()
            .filter(|l| l.level == LogLevel::Warn)
            .count(),
        2
    );
    assert_eq!(output(&rec, "analyze")["content"], "fine");
}

#[tokio::test]
async fn server_error_fails_with_the_provider_message() {
    let srv = serve(|_, _| {
        Reply::json(500, json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}))
    })
    .await;
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p"})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Failed);
    assert_eq!(rec.stage("analyze").unwrap().status, StageStatus::Failed);
    assert_eq!(error_kind(&rec, "analyze"), ErrorKind::Provider);
    assert_eq!(
        error_message(&rec, "analyze"),
        "openai answered 500 Internal Server Error: The server had an error while processing your request. (gave up after 4 tries)"
    );
    assert_eq!(srv.seen().len(), 4);
    assert_eq!(
        rec.logs
            .iter()
            .filter(|l| l.level == LogLevel::Warn)
            .count(),
        3
    );
}

#[tokio::test]
async fn client_errors_are_not_retried_and_the_key_is_masked() {
    let srv = serve(|_, _| {
        Reply::json(
            401,
            json!({"error": {"message": format!("Incorrect API key provided: {KEY}. You can find your API key at https://platform.openai.com."), "code": "invalid_api_key"}}),
        )
    })
    .await;
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p"})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(srv.seen().len(), 1);
    let err = rec.stage("analyze").unwrap().error.clone().unwrap();
    assert_eq!(err.kind, ErrorKind::Provider);
    assert!(!err.retryable);
    assert!(
        err.message
            .starts_with("openai answered 401 Unauthorized: Incorrect API key provided: ***."),
        "{}",
        err.message
    );
    assert_no_key(&rec);
}

#[tokio::test]
async fn malformed_and_empty_replies_fail() {
    let srv = serve(|s, _| match s.json()["model"].as_str().unwrap() {
        "not-json" => Reply::text(200, "<html>gateway</html>"),
        "no-choices" => Reply::json(200, json!({"choices": []})),
        _ => Reply::json(
            200,
            json!({"model": "m", "choices": [{"message": {"role": "assistant", "content": ""}, "finish_reason": "length"}]}),
        ),
    })
    .await;
    let st = |id: &str| json!({"id": id, "component": "generator", "on_error": "continue", "config": {"model": id, "prompt": "p"}});
    let rec = run(
        json!([st("not-json"), st("no-choices"), st("empty")]),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    for id in ["not-json", "no-choices", "empty"] {
        assert_eq!(error_kind(&rec, id), ErrorKind::InvalidResponse, "{id}");
        assert!(
            rec.stage(id).unwrap().error.as_ref().unwrap().retryable,
            "{id}"
        );
    }
    assert!(error_message(&rec, "not-json").contains("answer is not JSON: <html>gateway</html>"));
    assert!(error_message(&rec, "no-choices").contains("no choices[0]"));
    assert_eq!(
        error_message(&rec, "empty"),
        "openai returned an empty reply (stop reason: length)"
    );
}

#[tokio::test]
async fn slow_provider_times_out() {
    let srv = serve(|_, _| Reply::json(200, chat("late")).after(Duration::from_secs(3))).await;
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p", "timeout": 200})),
        Opts::default().registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(error_kind(&rec, "analyze"), ErrorKind::Timeout);
    let msg = error_message(&rec, "analyze");
    assert!(
        msg.starts_with("openai (POST ") && msg.ends_with("no answer within 200 ms"),
        "{msg}"
    );
}

#[tokio::test]
async fn no_provider_fails_before_the_run() {
    let msg = start_error(
        gen(json!({"model": "gpt-4", "prompt": "p"})),
        Opts::default().registry(registry(LlmEnv::default())),
    );
    assert!(msg.contains("stage 'analyze' cannot run"), "{msg}");
    assert!(
        msg.contains("OPENAI_API_KEY")
            && msg.contains("ANTHROPIC_API_KEY")
            && msg.contains("--sandbox"),
        "{msg}"
    );
    let msg = start_error(
        gen(json!({"provider": "anthropic", "model": "claude", "prompt": "p"})),
        Opts::default().registry(registry(LlmEnv {
            openai_api_key: Some(KEY.into()),
            ..Default::default()
        })),
    );
    assert!(msg.contains("ANTHROPIC_API_KEY is not set"), "{msg}");
    assert!(!msg.contains(KEY));
}

#[tokio::test]
async fn keyless_openai_compatible_server() {
    let srv = serve(|_, _| Reply::json(200, chat("local answer"))).await;
    let rec = run(
        gen(json!({"model": "llama3.1", "prompt": "p", "base_url": format!("{}/v1", srv.base)})),
        Opts::default().registry(registry(LlmEnv::default())),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded, "{rec:#?}");
    let seen = srv.only();
    assert_eq!(seen.path, "/v1/chat/completions");
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(output(&rec, "analyze")["content"], "local answer");
}

#[tokio::test]
async fn generators_run_in_dry_runs() {
    let srv = serve(|_, _| Reply::json(200, chat("ok"))).await;
    let rec = run(
        gen(json!({"model": "gpt-4", "prompt": "p"})),
        Opts::default()
            .dry_run()
            .registry(registry(openai_env(&srv.base))),
    )
    .await;
    assert_eq!(rec.status, RunStatus::Succeeded);
    assert_eq!(srv.seen().len(), 1);
}

#[tokio::test]
async fn config_problems() {
    let ps = problems(json!([
        {"id": "a", "component": "generator", "config": {"provider": "opnai", "model": "m", "prompt": "p"}},
        {"id": "b", "component": "generator", "config": {"model": "m", "prompt": "p", "response_format": "yaml"}},
        {"id": "c", "component": "generator", "config": {"model": "m"}},
        {"id": "d", "component": "generator", "config": {"model": "m", "prompt": "p", "temperature": 7}},
        {"id": "e", "component": "generator", "config": {"model": "m", "prompt": "p", "response_format": {"type": 12}}},
        {"id": "f", "component": "generator", "config": {"model": "m", "prompt": "p", "max_token": 5}}
    ]));
    let find = |stage: &str| {
        ps.iter()
            .find(|p| p.stage.as_deref() == Some(stage))
            .unwrap_or_else(|| panic!("no problem for {stage}: {ps:#?}"))
    };
    assert_eq!(find("a").hint.as_deref(), Some("did you mean 'openai'?"));
    assert!(find("b").message.contains("unknown response_format 'yaml'"));
    assert_eq!(find("c").code, "missing_key");
    assert!(find("d").message.contains("between 0 and 2"));
    assert_eq!(find("e").code, "invalid_schema");
    assert_eq!(
        find("f").hint.as_deref(),
        Some("did you mean 'max_tokens'?")
    );
}
