//! The model stand-in derives its verdict from the evidence the sandbox
//! served, not from the scenario: different logs, different answer.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fm_sandbox::model::{analyze, SIMULATION_NOTICE};
use fm_sandbox::{Sandbox, Scenario};
use serde_json::{json, Value};

/// Fetches context as the pipeline does and builds the reference's prompt.
async fn prompt_for(sb: &Sandbox, service: &str) -> String {
    let logs: Value = fetch_logs(sb, service).await.json().await.unwrap();
    let metrics = fetch_metrics(sb, service).await;
    let deploys = fetch_deploys(sb, service).await;
    triage_prompt(service, "alert", &logs["logs"], &metrics, &deploys)
}

#[tokio::test]
async fn oom_analysis_comes_from_the_evidence() {
    let sb = start(Scenario::Oom).await;
    let prompt = prompt_for(&sb, "payment-service").await;
    let c = chat(&sb, TRIAGE_SYSTEM, &prompt, json!({})).await;
    let a = content_json(&c);
    assert_eq!(a["issue_type"], "OOM");
    assert_eq!(a["confidence"], "high");
    assert_eq!(a["severity"], "critical");
    assert_eq!(a["simulated"], true);
    let ev: Vec<&str> = a["supporting_evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(
        ev.contains(&"Memory grew from 45% to 94% over 2 hours"),
        "{ev:?}"
    );
    assert!(
        ev.contains(&"14 OutOfMemoryError lines in payment-service-abc123"),
        "{ev:?}"
    );
    assert!(
        ev.contains(&"No recent deploys (last deploy 3 days ago)"),
        "{ev:?}"
    );
    for k in ["root_cause", "recommended_action"] {
        assert!(a[k].as_str().unwrap().len() > 10);
    }

    // Same alert, same service, different logs: the verdict changes.
    let other = start(Scenario::ConnectionPool).await;
    let logs: Value = fetch_logs(&other, "orders-service")
        .await
        .json()
        .await
        .unwrap();
    let swapped = triage_prompt(
        "payment-service",
        "alert",
        &logs["logs"],
        &json!(null),
        &fetch_deploys(&sb, "payment-service").await,
    );
    let a2 = content_json(&chat(&sb, TRIAGE_SYSTEM, &swapped, json!({})).await);
    assert_eq!(a2["issue_type"], "connection_pool_exhausted");
    assert_eq!(a2["confidence"], "medium", "logs only, metrics null");
    assert!(a2["supporting_evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e.as_str().unwrap().contains("Partial context: metrics")));
    sb.shutdown().await;
    other.shutdown().await;
}

#[tokio::test]
async fn each_scenario_gets_its_verdict() {
    for (scenario, expected, confidence) in [
        (
            Scenario::ConnectionPool,
            "connection_pool_exhausted",
            "high",
        ),
        (Scenario::BadDeploy, "bad_deploy", "high"),
        (Scenario::Unknown, "unknown", "low"),
    ] {
        let sb = start(scenario).await;
        let svc = scenario.incident_service();
        let prompt = prompt_for(&sb, svc).await;
        let a = content_json(
            &chat(
                &sb,
                TRIAGE_SYSTEM,
                &prompt,
                json!({"response_format": {"type": "json_object"}}),
            )
            .await,
        );
        assert_eq!(a["issue_type"], expected, "{scenario}: {a}");
        assert_eq!(a["confidence"], confidence, "{scenario}: {a}");
        if scenario == Scenario::BadDeploy {
            assert!(a["recommended_action"]
                .as_str()
                .unwrap()
                .contains("v2.14.0"));
        }
        sb.shutdown().await;
    }
}

#[tokio::test]
async fn postmortem_is_labelled_markdown() {
    let sb = start(Scenario::Oom).await;
    let deploys = fetch_deploys(&sb, "payment-service").await;
    let prompt = format!(
        "Create postmortem for:\n\nService: payment-service\nIncident: payment-service: High memory usage (>90%)\nRoot Cause: Memory leak in payment-service - OOM pattern detected\nTriggered: 2024-01-15T03:42:00Z\nResolved: 2024-01-15T03:43:19Z\nAction Taken: Rolling restart of deployment payment-service\nAuto-resolved: Yes\n\nRecent deploys: {deploys}"
    );
    let c = chat(
        &sb,
        "Generate a concise incident postmortem draft with: Summary, Timeline, Root Cause, Resolution, Action Items. Be factual and specific.",
        &prompt,
        json!({"temperature": 0.3}),
    )
    .await;
    let md = c["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(md.starts_with(SIMULATION_NOTICE), "{md}");
    for s in [
        "## Summary",
        "## Timeline",
        "## Root Cause",
        "## Resolution",
        "## Action Items",
    ] {
        assert!(md.contains(s), "{s}");
    }
    assert!(md.contains("Memory leak in payment-service"));
    assert!(md.contains("v2.8.3"));
    sb.shutdown().await;
}

#[test]
fn synthetic_pool_prompt_without_oom_evidence() {
    let prompt = r#"Incident triage for inventory-service:
## Recent Logs (errors):
[{"timestamp":"2024-01-15T03:40:00Z","level":"error","service":"inventory-service","pod":"inv-1","message":"HikariPool-1 - Connection is not available, request timed out after 30000ms"},
 {"timestamp":"2024-01-15T03:40:05Z","level":"error","service":"inventory-service","pod":"inv-1","message":"timeout acquiring connection from pool"},
 {"timestamp":"2024-01-15T03:40:09Z","level":"error","service":"inventory-service","pod":"inv-2","message":"FATAL: too many connections for role \"inv\""}]
## Metrics (last 30 min):
{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"__name__":"process_memory_percent","service":"inventory-service"},"values":[[1705290000,"51"],[1705290600,"52"]]}]}}
## Recent Deployments:
[]"#;
    let a = analyze(prompt);
    assert_eq!(a.issue_type, "connection_pool_exhausted");
    assert_eq!(
        a.confidence, "medium",
        "logs only: memory is normal, no pool metric"
    );
    assert!(
        a.supporting_evidence
            .contains(&"1 'timeout acquiring connection' line in inv-1".to_string()),
        "{:?}",
        a.supporting_evidence
    );
    assert!(a.simulated);
}
