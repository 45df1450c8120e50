//! Each simulated API answers in the real API's shapes, and rejects bad auth.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use fm_sandbox::Scenario;
use serde_json::{json, Value};

#[tokio::test]
async fn logs_shape_limit_and_auth() {
    let sb = start(Scenario::Oom).await;
    let r = fetch_logs(&sb, "payment-service").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let logs = body["logs"].as_array().unwrap();
    assert_eq!(
        body["total"], 23,
        "14 OOM + 6 GC + 3 timeouts at level error"
    );
    assert_eq!(logs.len(), 23);
    for l in logs {
        for k in ["timestamp", "level", "service", "pod", "message"] {
            assert!(l[k].is_string(), "{k} missing in {l}");
        }
        assert_eq!(l["service"], "payment-service");
        assert_eq!(l["level"], "error");
    }
    let oom = logs
        .iter()
        .filter(|l| {
            l["message"].as_str().unwrap().contains("OutOfMemoryError")
                && l["pod"] == "payment-service-abc123"
        })
        .count();
    assert_eq!(oom, 14);
    // Newest first.
    let ts: Vec<&str> = logs
        .iter()
        .map(|l| l["timestamp"].as_str().unwrap())
        .collect();
    assert!(ts.windows(2).all(|w| w[0] >= w[1]));

    // limit is honoured; total still counts every match.
    let r: Value = client()
        .post(format!("{}/query", input(&sb, "logging_api")))
        .bearer_auth(secret(&sb, "LOGGING_TOKEN"))
        .json(&json!({"query": "service:payment-service level:error", "from": "-30m", "limit": 5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["logs"].as_array().unwrap().len(), 5);
    assert_eq!(r["total"], 23);

    // A healthy service has no error logs.
    let r: Value = fetch_logs(&sb, "orders-service")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r, json!({"logs": [], "total": 0}));

    // Auth.
    let r = client()
        .post(format!("{}/query", input(&sb, "logging_api")))
        .json(&json!({"query": "service:payment-service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = client()
        .post(format!("{}/query", input(&sb, "logging_api")))
        .bearer_auth("wrong")
        .json(&json!({"query": "service:payment-service"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    sb.shutdown().await;
}

#[tokio::test]
async fn prometheus_query_range_matrix_and_errors() {
    let sb = start(Scenario::Oom).await;
    let body = fetch_metrics(&sb, "payment-service").await;
    assert_eq!(body["status"], "success");
    assert_eq!(body["data"]["resultType"], "matrix");
    let result = body["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 5);
    let mem = result
        .iter()
        .find(|s| s["metric"]["__name__"] == "process_memory_percent")
        .unwrap();
    assert_eq!(mem["metric"]["service"], "payment-service");
    let values = mem["values"].as_array().unwrap();
    assert_eq!(values.len(), 121);
    assert!(values[0][0].is_number() && values[0][1].is_string());
    assert_eq!(values[0][1], "45");
    assert_eq!(values[120][1], "94");

    // GET with the reference's exact selector and float timestamps.
    let now = now_secs();
    let r: Value = client()
        .get(format!("{}/api/v1/query_range", input(&sb, "metrics_api")))
        .query(&[
            ("query", "up{service=\"payment-service\"}".to_string()),
            ("start", format!("{:.3}", now - 1800.0)),
            ("end", format!("{now:.3}")),
            ("step", "60".into()),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let result = r["data"]["result"].as_array().unwrap();
    assert_eq!(result.len(), 1);
    assert_eq!(result[0]["metric"]["__name__"], "up");
    assert!(result[0]["values"]
        .as_array()
        .unwrap()
        .iter()
        .all(|v| v[1] == "1"));

    // RFC 3339 times work too.
    let r = client()
        .get(format!("{}/api/v1/query_range", input(&sb, "metrics_api")))
        .query(&[
            (
                "query",
                "process_memory_percent{service=\"payment-service\"}",
            ),
            ("start", "2024-01-15T01:42:00Z"),
            ("end", "2024-01-15T03:42:00.000Z"),
            ("step", "15m"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Bad params: Prometheus' error shape.
    let r = client()
        .get(format!("{}/api/v1/query_range", input(&sb, "metrics_api")))
        .query(&[
            ("query", "up"),
            ("start", "yesterday"),
            ("end", "1"),
            ("step", "60"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["status"], "error");
    assert_eq!(e["errorType"], "bad_data");
    assert!(e["error"]
        .as_str()
        .unwrap()
        .contains("invalid parameter \"start\""));

    // A JSON body is not how Prometheus takes parameters.
    let r = client()
        .post(format!("{}/api/v1/query_range", input(&sb, "metrics_api")))
        .json(&json!({"query": "up", "start": "1", "end": "2", "step": "60"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().contains_key("x-fm-sandbox-hint"));

    // Instant query.
    let r: Value = client()
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
    assert_eq!(r["data"]["resultType"], "vector");
    assert_eq!(r["data"]["result"][0]["value"][1], "94");
    sb.shutdown().await;
}

#[tokio::test]
async fn deploys_newest_first_with_ages() {
    let sb = start(Scenario::BadDeploy).await;
    let list = fetch_deploys(&sb, "checkout-service").await;
    let list = list.as_array().unwrap();
    assert_eq!(
        list.len(),
        2,
        "since -7d: v2.14.0 (20 min) and v2.13.2 (2 days)"
    );
    let d = &list[0];
    for k in [
        "id",
        "service",
        "version",
        "deployed_at",
        "author",
        "description",
        "status",
    ] {
        assert!(d[k].is_string(), "{k}");
    }
    assert_eq!(d["version"], "v2.14.0");
    assert_eq!(d["age_minutes"], 20);
    assert!(d["age_minutes"].is_i64());
    assert_eq!(list[1]["version"], "v2.13.2");

    let sb2 = start(Scenario::Oom).await;
    let all: Value = client()
        .get(format!(
            "{}/deployments?service=payment-service",
            input(&sb2, "deploy_api")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(all[0]["version"], "v2.8.3");
    assert_eq!(all[0]["age_minutes"], 3 * 24 * 60);
    // The reference's since=-24h sees nothing for the oom service.
    let day: Value = client()
        .get(format!(
            "{}/deployments?service=payment-service&since=-24h&limit=5",
            input(&sb2, "deploy_api")
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(day, json!([]));
    sb.shutdown().await;
    sb2.shutdown().await;
}

#[tokio::test]
async fn kubernetes_objects_and_errors() {
    let sb = start(Scenario::Oom).await;
    let url = format!(
        "{}/apis/apps/v1/namespaces/production/deployments/payment-service",
        input(&sb, "k8s_api")
    );
    let token = secret(&sb, "K8S_TOKEN");
    let d: Value = client()
        .get(&url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["apiVersion"], "apps/v1");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["metadata"]["name"], "payment-service");
    assert_eq!(d["metadata"]["namespace"], "production");
    assert!(d["metadata"]["resourceVersion"].is_string());
    assert!(d["metadata"]["generation"].is_i64());
    assert!(d["metadata"]["annotations"].is_object());
    assert_eq!(d["spec"]["replicas"], 3);
    assert!(d["spec"]["template"]["metadata"]["annotations"].is_object());
    for k in [
        "replicas",
        "readyReplicas",
        "updatedReplicas",
        "availableReplicas",
        "observedGeneration",
    ] {
        assert!(d["status"][k].is_i64(), "status.{k}");
    }

    let s: Value = client()
        .get(format!("{url}/scale"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(s["apiVersion"], "autoscaling/v1");
    assert_eq!(s["kind"], "Scale");
    assert_eq!(s["spec"]["replicas"], 3);
    assert_eq!(s["status"]["selector"], "app=payment-service");

    // 401 without a token, as a Status.
    let r = client().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.json::<Value>().await.unwrap()["kind"], "Status");

    // 404 Status for an unknown deployment.
    let r = client()
        .get(format!(
            "{}/apis/apps/v1/namespaces/production/deployments/x",
            input(&sb, "k8s_api")
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"deployments.apps \"x\" not found","reason":"NotFound","details":{"name":"x","group":"apps","kind":"deployments"},"code":404})
    );

    // 415 for a plain JSON PATCH.
    let r = client()
        .patch(&url)
        .bearer_auth(&token)
        .json(&json!({"spec": {"replicas": 4}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert_eq!(
        r.json::<Value>().await.unwrap()["reason"],
        "UnsupportedMediaType"
    );

    // A string replica count is rejected, as the API server's decoder does.
    let r = client()
        .patch(format!("{url}/scale"))
        .bearer_auth(&token)
        .header("content-type", "application/merge-patch+json")
        .body(r#"{"spec":{"replicas":"3"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // PUT the scale subresource.
    let r = client()
        .put(format!("{url}/scale"))
        .bearer_auth(&token)
        .json(&json!({"apiVersion": "autoscaling/v1", "kind": "Scale", "metadata": {"name": "payment-service", "namespace": "production"}, "spec": {"replicas": 5}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["spec"]["replicas"], 5);
    sb.shutdown().await;
}

#[tokio::test]
async fn health_shapes() {
    let sb = start(Scenario::Oom).await;
    let (code, body) = health(&sb, "payment-service").await;
    assert_eq!(code, 503);
    assert_eq!(body["status"], "unhealthy");
    assert!(body["reason"].as_str().unwrap().contains("memory"));
    let (code, body) = health(&sb, "orders-service").await;
    assert_eq!(code, 200);
    assert_eq!(body["status"], "ok");
    assert_eq!(health(&sb, "nope").await.0, 404);
    sb.shutdown().await;
}

#[tokio::test]
async fn pagerduty_events_v2() {
    let sb = start(Scenario::Unknown).await;
    let url = secret(&sb, "PAGERDUTY_EVENTS_URL");
    let key = secret(&sb, "PAGERDUTY_KEY");
    assert_eq!(key.len(), 32);
    let ok = client()
        .post(&url)
        .json(&json!({
            "routing_key": key,
            "event_action": "trigger",
            "payload": {"summary": "[NEEDS HUMAN] x", "source": "notification-service", "severity": "error"},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 202);
    let body: Value = ok.json().await.unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["message"], "Event processed");
    assert_eq!(body["dedup_key"].as_str().unwrap().len(), 32);

    // The reference's escalation body has no payload.source: PagerDuty rejects it.
    let r = client()
        .post(&url)
        .json(&json!({
            "routing_key": key,
            "event_action": "trigger",
            "payload": {"summary": "[NEEDS HUMAN] x", "severity": "critical", "custom_details": {}},
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"status": "invalid event", "message": "Event object is invalid", "errors": ["'payload.source' is missing or blank"]})
    );

    // Bad severity, bad action, short key, resolve without dedup_key.
    for (body, needle) in [
        (
            json!({"routing_key": key, "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "high"}}),
            "payload.severity",
        ),
        (
            json!({"routing_key": key, "event_action": "page"}),
            "event_action",
        ),
        (
            json!({"routing_key": "abc", "event_action": "resolve", "dedup_key": "d"}),
            "routing_key",
        ),
        (
            json!({"routing_key": key, "event_action": "resolve"}),
            "dedup_key",
        ),
    ] {
        let r = client().post(&url).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["errors"][0].as_str().unwrap().contains(needle), "{e}");
    }
    let st = sb.state();
    assert_eq!(st["pagerduty_events"].as_array().unwrap().len(), 1);
    sb.shutdown().await;
}

#[tokio::test]
async fn statuspage_incidents() {
    let sb = start(Scenario::Oom).await;
    let base = input(&sb, "statuspage_api");
    let comp = input(&sb, "statuspage_component_id");
    let auth = format!("OAuth {}", secret(&sb, "STATUSPAGE_TOKEN"));
    let r = client()
        .post(format!("{base}/incidents"))
        .header("authorization", &auth)
        .json(&json!({"incident": {
            "name": "payment-service - OOM",
            "status": "resolved",
            "body": "Auto-remediated by FlowMason.",
            "component_ids": [comp],
        }}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inc: Value = r.json().await.unwrap();
    for k in ["id", "name", "status", "shortlink", "created_at", "page_id"] {
        assert!(inc[k].is_string(), "{k}");
    }
    assert_eq!(inc["status"], "resolved");
    assert!(inc["resolved_at"].is_string());
    assert_eq!(
        inc["incident_updates"][0]["body"],
        "Auto-remediated by FlowMason."
    );
    assert_eq!(inc["components"][0]["id"], comp.as_str());

    // PATCH adds an update.
    let id = inc["id"].as_str().unwrap();
    let r = client()
        .patch(format!("{base}/incidents/{id}"))
        .header("authorization", &auth)
        .json(&json!({"incident": {"body": "Postmortem to follow."}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let upd: Value = r.json().await.unwrap();
    assert_eq!(upd["incident_updates"].as_array().unwrap().len(), 2);

    // Bearer is not how Statuspage authenticates.
    let r = client()
        .post(format!("{base}/incidents"))
        .bearer_auth(secret(&sb, "STATUSPAGE_TOKEN"))
        .json(&json!({"incident": {"name": "x"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Missing name.
    let r = client()
        .post(format!("{base}/incidents"))
        .header("authorization", &auth)
        .json(&json!({"incident": {"status": "resolved"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    sb.shutdown().await;
}

#[tokio::test]
async fn slack_webhook() {
    let sb = start(Scenario::Oom).await;
    let url = secret(&sb, "SLACK_WEBHOOK");
    let post = |body: String| {
        let url = url.clone();
        async move {
            let r = client()
                .post(&url)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let fields: Vec<Value> = (0..5)
        .map(|i| json!({"type": "mrkdwn", "text": format!("*F{i}:*\nv")}))
        .collect();
    let good = json!({"blocks": [
        {"type": "header", "text": {"type": "plain_text", "text": "Incident Auto-Resolved"}},
        {"type": "section", "fields": fields},
    ]});
    assert_eq!(post(good.to_string()).await, (200, "ok".to_string()));
    assert_eq!(
        post("not json".into()).await,
        (400, "invalid_payload".to_string())
    );
    assert_eq!(post("{}".into()).await, (400, "no_text".to_string()));
    let long_header = json!({"blocks": [{"type": "header", "text": {"type": "plain_text", "text": "x".repeat(151)}}]});
    assert_eq!(
        post(long_header.to_string()).await,
        (400, "invalid_blocks".to_string())
    );
    let eleven: Vec<Value> = (0..11)
        .map(|_| json!({"type": "mrkdwn", "text": "a"}))
        .collect();
    let too_many = json!({"blocks": [{"type": "section", "fields": eleven}]});
    assert_eq!(
        post(too_many.to_string()).await,
        (400, "invalid_blocks".to_string())
    );
    let long_field = json!({"blocks": [{"type": "section", "fields": [{"type": "mrkdwn", "text": "y".repeat(2001)}]}]});
    assert_eq!(
        post(long_field.to_string()).await,
        (400, "invalid_blocks".to_string())
    );
    assert_eq!(
        post(json!({"text": "hi"}).to_string()).await,
        (200, "ok".to_string())
    );
    let wrong = client()
        .post(format!("{}/slack/webhook/T1/B1/nope", sb.base_url()))
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 404);
    assert_eq!(sb.state()["slack_messages"].as_array().unwrap().len(), 2);
    sb.shutdown().await;
}

#[tokio::test]
async fn openai_completion_shape_and_auth() {
    let sb = start(Scenario::Oom).await;
    let c = chat(
        &sb,
        TRIAGE_SYSTEM,
        "Incident triage for payment-service:\nno data",
        json!({"model": "gpt-4o-mini"}),
    )
    .await;
    assert_eq!(c["object"], "chat.completion");
    assert!(c["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert!(c["created"].is_u64());
    assert_eq!(c["model"], "gpt-4o-mini");
    assert_eq!(c["system_fingerprint"], "fm-sandbox-simulated");
    assert_eq!(c["choices"][0]["message"]["role"], "assistant");
    assert_eq!(c["choices"][0]["finish_reason"], "stop");
    let u = &c["usage"];
    assert_eq!(
        u["total_tokens"].as_u64().unwrap(),
        u["prompt_tokens"].as_u64().unwrap() + u["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(content_json(&c)["simulated"], true);

    let url = format!("{}/chat/completions", secret(&sb, "OPENAI_BASE_URL"));
    let body = json!({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]});
    let r = client().post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let r = client()
        .post(&url)
        .bearer_auth("sk-wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_api_key"
    );
    let r = client()
        .post(&url)
        .bearer_auth(secret(&sb, "OPENAI_API_KEY"))
        .json(&json!({"model": "gpt-4", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    sb.shutdown().await;
}

#[tokio::test]
async fn introspection_endpoints() {
    let sb = start(Scenario::ConnectionPool).await;
    let d: Value = client()
        .get(format!("{}/_sandbox", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["scenario"], "connection-pool");
    assert!(d["endpoints"].as_array().unwrap().len() > 10);
    let st: Value = client()
        .get(format!("{}/_sandbox/state", sb.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["deployments"]["orders-service"]["replicas"], 4);
    assert_eq!(st["health"]["orders-service"]["healthy"], false);
    assert_eq!(st["health"]["payment-service"]["healthy"], true);
    let nf = client()
        .get(format!("{}/nowhere", sb.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(nf.status(), 404);
    sb.shutdown().await;
}
