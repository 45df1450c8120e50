//! Shared helpers for the sandbox's integration tests: one sandbox per test,
//! ephemeral port, zero latencies, a short recovery delay.
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use fm_sandbox::{Latencies, Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

pub const RECOVERY: Duration = Duration::from_millis(300);

pub async fn start(scenario: Scenario) -> Sandbox {
    Sandbox::start(SandboxOptions {
        scenario,
        port: 0,
        latencies: Latencies::zero(),
        recovery_delay: RECOVERY,
    })
    .await
    .unwrap()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn secret(sb: &Sandbox, k: &str) -> String {
    sb.secrets()[k].clone()
}

pub fn input(sb: &Sandbox, k: &str) -> String {
    sb.input_overrides()[k].as_str().unwrap().to_string()
}

/// POST /logs/query as the pipeline does.
pub async fn fetch_logs(sb: &Sandbox, service: &str) -> reqwest::Response {
    client()
        .post(format!("{}/query", input(sb, "logging_api")))
        .bearer_auth(secret(sb, "LOGGING_TOKEN"))
        .json(&json!({"query": format!("service:{service} level:error"), "from": "-30m", "limit": 100}))
        .send()
        .await
        .unwrap()
}

pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

pub const ALL_METRICS: &str =
    "up|process_memory_percent|db_pool_utilization_percent|db_pool_wait_seconds|http_requests_error_ratio";

/// The metrics the incident pipeline fetches: all five, last 2 hours, step 60.
pub async fn fetch_metrics(sb: &Sandbox, service: &str) -> Value {
    let now = now_secs().floor();
    let query = format!("{{__name__=~\"{ALL_METRICS}\",service=\"{service}\"}}");
    let start = (now - 7200.0).to_string();
    let end = now.to_string();
    client()
        .post(format!("{}/api/v1/query_range", input(sb, "metrics_api")))
        .form(&[
            ("query", query.as_str()),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("step", "60"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn fetch_deploys(sb: &Sandbox, service: &str) -> Value {
    client()
        .get(format!("{}/deployments", input(sb, "deploy_api")))
        .query(&[("service", service), ("since", "-7d"), ("limit", "5")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

pub async fn health(sb: &Sandbox, service: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}/{service}/health", input(sb, "health_api")))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// The reference's analysis prompt, filled with what the sandbox served.
pub fn triage_prompt(
    service: &str,
    summary: &str,
    logs: &Value,
    metrics: &Value,
    deploys: &Value,
) -> String {
    format!(
        "Incident triage for {service}:\n\nAlert: {summary}\nSeverity: critical\n\n## Recent Logs (errors):\n{}\n\n## Metrics (last 30 min):\n{}\n\n## Recent Deployments:\n{}\n\nProvide your analysis:",
        serde_json::to_string(logs).unwrap(),
        serde_json::to_string(metrics).unwrap(),
        serde_json::to_string(deploys).unwrap(),
    )
}

pub const TRIAGE_SYSTEM: &str = "You are an expert SRE performing incident triage. Analyze the provided data and determine:\n1. Root cause (be specific)\n2. Severity (critical/high/medium/low)\n3. Is this a known issue pattern? (OOM, connection pool, rate limit, etc.)\n4. Recommended immediate action\n5. Confidence level (high/medium/low)\n\nFormat as JSON.";

/// Sends a chat completion and returns the whole response body.
pub async fn chat(sb: &Sandbox, system: &str, prompt: &str, extra: Value) -> Value {
    let mut body = json!({
        "model": "gpt-4",
        "temperature": 0.2,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
    });
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            b.insert(k.clone(), v.clone());
        }
    }
    let r = client()
        .post(format!(
            "{}/chat/completions",
            secret(sb, "OPENAI_BASE_URL")
        ))
        .bearer_auth(secret(sb, "OPENAI_API_KEY"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// The analysis JSON inside a chat completion.
pub fn content_json(completion: &Value) -> Value {
    serde_json::from_str(
        completion["choices"][0]["message"]["content"]
            .as_str()
            .unwrap(),
    )
    .unwrap()
}

/// Polls health until 200 or the deadline.
pub async fn wait_healthy(sb: &Sandbox, service: &str, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    while tokio::time::Instant::now() < deadline {
        if health(sb, service).await.0 == 200 {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}
