//! Remediations change the world: the right fix brings health back after the
//! recovery delay; wrong or impossible fixes do not; scaling to 0 is an outage.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use fm_sandbox::{Sandbox, Scenario};
use serde_json::{json, Value};

fn deployment_url(sb: &Sandbox, name: &str) -> String {
    format!(
        "{}/apis/apps/v1/namespaces/production/deployments/{name}",
        input(sb, "k8s_api")
    )
}

/// `kubectl rollout restart`, as an HTTP PATCH.
async fn rolling_restart(sb: &Sandbox, name: &str, at: &str) -> Value {
    let r = client()
        .patch(deployment_url(sb, name))
        .bearer_auth(secret(sb, "K8S_TOKEN"))
        .header("content-type", "application/strategic-merge-patch+json")
        .body(json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": at}}}}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

async fn scale(sb: &Sandbox, name: &str, replicas: i64) -> Value {
    let r = client()
        .patch(format!("{}/scale", deployment_url(sb, name)))
        .bearer_auth(secret(sb, "K8S_TOKEN"))
        .header("content-type", "application/merge-patch+json")
        .body(json!({"spec": {"replicas": replicas}}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn rolling_restart_fixes_oom_after_the_delay() {
    let sb = start(Scenario::Oom).await;
    let before = sb.state()["deployments"]["payment-service"]["generation"]
        .as_i64()
        .unwrap();
    let d = rolling_restart(&sb, "payment-service", "2024-01-15T03:43:00Z").await;
    assert_eq!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"],
        "2024-01-15T03:43:00Z"
    );
    assert_eq!(d["metadata"]["generation"].as_i64().unwrap(), before + 1);
    let st = sb.state();
    assert_eq!(st["deployments"]["payment-service"]["restarts"], 1);
    assert_eq!(st["remediations"][0]["action"], "rolling_restart");
    assert_eq!(st["remediations"][0]["right_fix"], true);
    // Not yet: the rollout takes the recovery delay.
    assert_eq!(health(&sb, "payment-service").await.0, 503);
    assert!(wait_healthy(&sb, "payment-service", RECOVERY * 4).await);
    let (_, body) = health(&sb, "payment-service").await;
    assert_eq!(body["status"], "ok");

    // Same annotation again: not another restart.
    rolling_restart(&sb, "payment-service", "2024-01-15T03:43:00Z").await;
    assert_eq!(sb.state()["deployments"]["payment-service"]["restarts"], 1);

    // After recovery the memory series drops (instant query at now).
    let m: Value = client()
        .get(format!("{}/api/v1/query", input(&sb, "metrics_api")))
        .query(&[(
            "query",
            "process_memory_percent{service=\"payment-service\"}",
        )])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last: f64 = m["data"]["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(last < 60.0, "memory after restart: {last}");
    sb.shutdown().await;
}

#[tokio::test]
async fn scale_to_zero_is_an_outage() {
    let sb = start(Scenario::Oom).await;
    // The reference's "restart": scale to 0 ...
    let s = scale(&sb, "payment-service", 0).await;
    assert_eq!(s["spec"]["replicas"], 0);
    let (code, body) = health(&sb, "payment-service").await;
    assert_eq!(code, 503);
    assert!(body["reason"].as_str().unwrap().contains("0 replicas"));
    let st = sb.state();
    assert_eq!(st["outages"].as_array().unwrap().len(), 1);
    assert!(st["outages"][0]["ended_ms"].is_null());
    // `up` is 0 while there are no pods.
    let up: Value = client()
        .get(format!("{}/api/v1/query", input(&sb, "metrics_api")))
        .query(&[("query", "up{service=\"payment-service\"}")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(up["data"]["result"][0]["value"][1], "0");
    // ... and back: the pods are recreated (fresh memory), after an outage.
    scale(&sb, "payment-service", 3).await;
    let st = sb.state();
    assert!(st["outages"][0]["ended_ms"].is_u64());
    assert_eq!(st["deployments"]["payment-service"]["recreations"], 1);
    assert!(wait_healthy(&sb, "payment-service", RECOVERY * 4).await);
    sb.shutdown().await;
}

#[tokio::test]
async fn scale_out_fixes_the_connection_pool_but_a_restart_does_not() {
    let sb = start(Scenario::ConnectionPool).await;
    rolling_restart(&sb, "orders-service", "2024-01-15T03:43:00Z").await;
    tokio::time::sleep(RECOVERY * 2).await;
    let (code, body) = health(&sb, "orders-service").await;
    assert_eq!(code, 503);
    assert!(body["reason"]
        .as_str()
        .unwrap()
        .contains("still failing after remediation"));
    assert_eq!(sb.state()["remediations"][0]["right_fix"], false);
    scale(&sb, "orders-service", 8).await;
    assert!(wait_healthy(&sb, "orders-service", RECOVERY * 4).await);
    sb.shutdown().await;
}

#[tokio::test]
async fn rollback_fixes_the_bad_deploy() {
    let sb = start(Scenario::BadDeploy).await;
    let deploys = fetch_deploys(&sb, "checkout-service").await;
    let bad = deploys[0]["id"].as_str().unwrap().to_string();
    assert_eq!(deploys[0]["version"], "v2.14.0");
    let url = format!("{}/deployments/{bad}/rollback", input(&sb, "deploy_api"));

    // Mutations need the deploy token.
    assert_eq!(client().post(&url).send().await.unwrap().status(), 401);

    let r = client()
        .post(&url)
        .bearer_auth(secret(&sb, "DEPLOY_TOKEN"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let rb: Value = r.json().await.unwrap();
    assert_eq!(rb["rolled_back_deployment"], bad.as_str());
    assert_eq!(rb["from_version"], "v2.14.0");
    assert_eq!(rb["to_version"], "v2.13.2");
    let st = sb.state();
    assert_eq!(st["deployments"]["checkout-service"]["version"], "v2.13.2");
    assert_eq!(st["rollbacks"].as_array().unwrap().len(), 1);
    assert!(wait_healthy(&sb, "checkout-service", RECOVERY * 4).await);

    // The deploy list shows the rollback as the newest deploy and the bad one as rolled back.
    let after = fetch_deploys(&sb, "checkout-service").await;
    assert_eq!(after[0]["version"], "v2.13.2");
    assert_eq!(after[1]["status"], "rolled_back");
    // Rolling back twice is a conflict; unknown ids are 404.
    let again = client()
        .post(&url)
        .bearer_auth(secret(&sb, "DEPLOY_TOKEN"))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    let none = client()
        .post(format!(
            "{}/deployments/dep-0/rollback",
            input(&sb, "deploy_api")
        ))
        .bearer_auth(secret(&sb, "DEPLOY_TOKEN"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn remediation_fails_never_recovers() {
    let sb = start(Scenario::RemediationFails).await;
    rolling_restart(&sb, "payment-service", "2024-01-15T03:43:00Z").await;
    assert_eq!(sb.state()["deployments"]["payment-service"]["restarts"], 1);
    assert!(!wait_healthy(&sb, "payment-service", RECOVERY * 3).await);
    let st = sb.state();
    assert_eq!(st["remediations"][0]["right_fix"], true);
    assert_eq!(st["remediations"][0]["will_recover"], false);
    sb.shutdown().await;
}

#[tokio::test]
async fn unknown_scenario_has_no_fix_and_starts_unremediated() {
    let sb = start(Scenario::Unknown).await;
    let st = sb.state();
    assert_eq!(st["remediations"], json!([]));
    assert_eq!(st["health"]["notification-service"]["healthy"], false);
    rolling_restart(&sb, "notification-service", "x").await;
    tokio::time::sleep(RECOVERY + Duration::from_millis(100)).await;
    assert_eq!(health(&sb, "notification-service").await.0, 503);
    sb.shutdown().await;
}
