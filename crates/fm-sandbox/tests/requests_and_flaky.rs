//! The request log records everything (Authorization masked); the
//! flaky-context scenario fails logs twice and hangs metrics.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use fm_sandbox::Scenario;
use serde_json::{json, Value};

#[tokio::test]
async fn request_log_records_everything_with_auth_masked() {
    let sb = start(Scenario::Oom).await;
    fetch_logs(&sb, "payment-service").await;
    fetch_metrics(&sb, "payment-service").await;
    fetch_deploys(&sb, "payment-service").await;
    health(&sb, "payment-service").await;
    chat(
        &sb,
        TRIAGE_SYSTEM,
        "Incident triage for payment-service:",
        json!({}),
    )
    .await;
    client()
        .post(secret(&sb, "SLACK_WEBHOOK"))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    // Introspection itself is not recorded.
    let over_http: Value = client()
        .get(format!("{}/_sandbox/requests", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reqs = sb.requests();
    assert_eq!(serde_json::to_value(&reqs).unwrap(), over_http);
    let systems: Vec<&str> = reqs.iter().map(|r| r.system.as_str()).collect();
    assert_eq!(
        systems,
        ["logs", "prometheus", "deploy", "health", "openai", "slack"]
    );
    assert_eq!(
        reqs.iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5, 6]
    );

    let logs = &reqs[0];
    assert_eq!(logs.method, "POST");
    assert_eq!(logs.path, "/logs/query");
    assert_eq!(logs.headers["authorization"], "***");
    assert_eq!(logs.body["query"], "service:payment-service level:error");
    assert_eq!(logs.status, Some(200));
    assert!(logs
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("application/json"));

    let prom = &reqs[1];
    assert!(
        prom.body.as_str().unwrap().contains("step=60"),
        "form bodies are kept as text"
    );
    let deploy = &reqs[2];
    assert_eq!(deploy.query["service"], "payment-service");
    assert_eq!(deploy.query["since"], "-7d");
    assert_eq!(reqs[4].headers["authorization"], "***");
    let dump = serde_json::to_string(&over_http).unwrap();
    assert!(!dump.contains(&secret(&sb, "LOGGING_TOKEN")));
    assert!(!dump.contains(&secret(&sb, "OPENAI_API_KEY")));

    // DELETE clears.
    let r = client()
        .delete(format!("{}/_sandbox/requests", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(sb.requests().is_empty());
    sb.shutdown().await;
}

#[tokio::test]
async fn flaky_context_logs_fail_twice_then_answer() {
    let sb = start(Scenario::FlakyContext).await;
    let codes: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(fetch_logs(&sb, "payment-service").await.status().as_u16());
        }
        v
    };
    assert_eq!(codes, [500, 500, 200]);
    let body: Value = fetch_logs(&sb, "payment-service")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"], 23);
    let statuses: Vec<Option<u16>> = sb.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200), Some(200)]);
    sb.shutdown().await;
}

#[tokio::test]
async fn flaky_context_metrics_hang_past_the_timeout() {
    let sb = start(Scenario::FlakyContext).await;
    let started = Instant::now();
    let r = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .get(format!("{}/api/v1/query", input(&sb, "metrics_api")))
        .query(&[("query", "up{service=\"payment-service\"}")])
        .send()
        .await;
    assert!(r.unwrap_err().is_timeout());
    assert!(started.elapsed() < Duration::from_secs(5));
    // Shutdown does not wait for the 60 s hang.
    let t = Instant::now();
    sb.shutdown().await;
    assert!(t.elapsed() < Duration::from_secs(3));
}
