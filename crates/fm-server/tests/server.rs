//! The server in-process against a temporary SQLite store: webhooks (signatures, malformed and
//! oversized bodies), dedup, flapping, the runs API, SSE, cancel, metrics, readiness.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use fm_server::webhooks::pagerduty::sign;
use serde_json::{json, Value};

const SIGNING: &str = "pd-signing-secret";
const TOKEN: &str = "api-token-1";

struct Harness {
    base: String,
    running: Option<fm_server::Running>,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(pipeline: Value, extra: &str) -> Harness {
        Self::start_on(pipeline, extra, None).await
    }

    async fn start_on(pipeline: Value, extra: &str, store: Option<&str>) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let store = store.map_or_else(|| format!("sqlite://{}/fm.db", d.display()), str::to_owned);
        std::fs::write(d.join("p.pipeline.json"), pipeline.to_string()).unwrap();
        std::fs::write(
            d.join("secrets.env"),
            format!("PD_SIGNING={SIGNING}\nAPI_TOKEN={TOKEN}\n"),
        )
        .unwrap();
        let toml = format!(
            r#"
listen = "127.0.0.1:0"
store = "{store}"
concurrency = 4
lease = "2s"
secrets_file = "secrets.env"
api_token_secrets = ["API_TOKEN"]
max_body_bytes = 65536
{extra}

[[pipelines]]
name = "incident"
file = "p.pipeline.json"

[[triggers]]
source = "pagerduty"
pipeline = "incident"
signing_secrets = ["PD_SIGNING"]

[[triggers]]
source = "alertmanager"
pipeline = "incident"
"#
        );
        std::fs::write(d.join("fm.toml"), toml).unwrap();
        let running = fm_server::start_from_file(&d.join("fm.toml"))
            .await
            .unwrap();
        Harness {
            base: format!("http://{}", running.addr),
            running: Some(running),
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    async fn pd(&self, body: &Value, signature: Option<String>) -> (u16, Value) {
        let raw = body.to_string();
        let mut req = self
            .client
            .post(format!("{}/v1/webhooks/pagerduty", self.base))
            .body(raw.clone());
        if let Some(sig) = signature.or_else(|| Some(sign(raw.as_bytes(), SIGNING))) {
            req = req.header("x-pagerduty-signature", sig);
        }
        let resp = req
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn wait_finished(&self, run_id: &str) -> Value {
        for _ in 0..200 {
            let (_, run) = self.get(&format!("/v1/runs/{run_id}")).await;
            let status = run["status"].as_str().unwrap_or("");
            if !matches!(status, "queued" | "running" | "") {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("run {run_id} did not finish");
    }

    async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

fn pd_event(incident: &str, service: &str, event_type: &str) -> Value {
    json!({"event": {"id": format!("ev-{incident}-{event_type}"), "event_type": event_type, "resource_type": "incident",
        "occurred_at": "2026-11-26T03:42:00Z",
        "data": {"id": incident, "type": "incident", "number": 42, "status": "triggered", "title": format!("{service}: High memory usage (>90%)"),
                 "created_at": "2026-11-26T03:42:00Z", "urgency": "high",
                 "service": {"id": "PSVC", "summary": service, "type": "service_reference"}}}})
}

fn simple_pipeline(delay_ms: u64) -> Value {
    json!({"name": "incident", "input": {"type": "object", "required": ["id", "payload"]},
        "stages": [
            {"id": "receive-alert", "component": "json_transform", "config": {"expression": "{alert_id: id, service: payload.source, flapping: flapping}"}},
            {"id": "work", "component": "delay", "depends_on": ["receive-alert"], "config": {"ms": delay_ms}},
        ],
        "output": {"incident": "{{stages.receive-alert.output.alert_id}}", "flapping": "{{stages.receive-alert.output.flapping}}"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_pagerduty_alert_is_stored_run_and_shown() {
    let h = Harness::start(simple_pipeline(10), "").await;
    let (status, body) = h
        .pd(
            &pd_event("PINC1", "payment-service", "incident.triggered"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let run_id = body["run_ids"][0].as_str().unwrap().to_owned();
    let run = h.wait_finished(&run_id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["output"]["incident"], "PINC1");
    assert_eq!(run["source"], "pagerduty");
    assert_eq!(run["service"], "payment-service");
    let stages = run["stages"].as_array().unwrap();
    assert!(stages
        .iter()
        .any(|s| s["stage_id"] == "work" && s["duration_ms"].as_u64().unwrap() >= 10));

    let (status, list) = h
        .get("/v1/runs?status=succeeded&service=payment-service")
        .await;
    assert_eq!(status, 200);
    assert_eq!(list["runs"][0]["id"], run_id.as_str());

    // The event stream replays the whole run, ending with run_finished.
    let text = h
        .client
        .get(format!("{}/v1/runs/{run_id}/events", h.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("event: run_event"), "{text}");
    assert!(text.contains("\"event\":\"run_started\""));
    assert!(text.trim_end().ends_with('}') && text.contains("\"event\":\"run_finished\""));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_and_nothing_is_stored() {
    let h = Harness::start(simple_pipeline(1), "").await;
    let ev = pd_event("PINC2", "payment-service", "incident.triggered");
    let (status, body) = h.pd(&ev, Some("v1=00ff".into())).await;
    assert_eq!(status, 401, "{body}");
    let resp = h
        .client
        .post(format!("{}/v1/webhooks/pagerduty", h.base))
        .body(ev.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401, "unsigned");
    let (status, body) = h
        .pd(
            &json!({"event": {"event_type": "incident.triggered"}}),
            None,
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("event.data"),
        "{body}"
    );
    let resp = h
        .client
        .post(format!("{}/v1/webhooks/pagerduty", h.base))
        .header("x-pagerduty-signature", sign(b"not json", SIGNING))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let big = "x".repeat(100_000);
    let resp = h
        .client
        .post(format!("{}/v1/webhooks/pagerduty", h.base))
        .header("x-pagerduty-signature", sign(big.as_bytes(), SIGNING))
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    let resp = h
        .client
        .post(format!("{}/v1/pipelines/nope/runs", h.base))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    let resp = h
        .client
        .post(format!("{}/v1/pipelines/incident/runs", h.base))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        401,
        "the API needs the bearer token"
    );
    let resp = h
        .client
        .post(format!("{}/v1/pipelines/incident/runs", h.base))
        .bearer_auth(TOKEN)
        .json(&json!({"no": "payload"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        400,
        "input schema violations are a 400"
    );
    let (_, list) = h.get("/v1/runs").await;
    assert_eq!(
        list["runs"].as_array().unwrap().len(),
        0,
        "nothing was stored as a run: {list}"
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_alerts_attach_to_the_active_run_and_flapping_is_flagged() {
    let h = Harness::start(
        simple_pipeline(600),
        "[flapping]\nmax_alerts = 2\nwindow = \"10m\"\n",
    )
    .await;
    let ev = pd_event("PINC3", "orders-service", "incident.triggered");
    let (_, first) = h.pd(&ev, None).await;
    let (_, second) = h.pd(&ev, None).await;
    assert_eq!(first["alerts"][0]["disposition"], "started");
    assert_eq!(second["alerts"][0]["disposition"], "attached", "{second}");
    assert_eq!(second["run_ids"][0], first["run_ids"][0]);
    let run = h.wait_finished(first["run_ids"][0].as_str().unwrap()).await;
    assert_eq!(run["attached_alerts"], 1);
    assert_eq!(run["output"]["flapping"], false);
    // Third alert for the service within the window: a new run, flagged as flapping.
    let (_, third) = h
        .pd(
            &pd_event("PINC4", "orders-service", "incident.triggered"),
            None,
        )
        .await;
    assert_eq!(third["alerts"][0]["disposition"], "started");
    assert_eq!(third["alerts"][0]["flapping"], true, "{third}");
    let run = h.wait_finished(third["run_ids"][0].as_str().unwrap()).await;
    assert_eq!(run["output"]["flapping"], true);
    // A resolved incident is recorded and starts nothing.
    let (status, resolved) = h
        .pd(
            &pd_event("PINC4", "orders-service", "incident.resolved"),
            None,
        )
        .await;
    assert_eq!(status, 202);
    assert_eq!(resolved["alerts"][0]["disposition"], "recorded");
    assert_eq!(resolved["run_ids"].as_array().unwrap().len(), 0);

    let metrics = h
        .client
        .get(format!("{}/metrics", h.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("fm_alerts_deduplicated_total{source=\"pagerduty\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(
            "fm_runs_total{pipeline=\"incident\",status=\"succeeded\",outcome=\"none\"} 2"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("fm_stage_duration_seconds_bucket"));
    assert!(metrics.contains("fm_queue_depth 0"));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_firing_alerts_start_runs_and_resolved_ones_do_not() {
    let h = Harness::start(simple_pipeline(1), "").await;
    let payload = json!({"version": "4", "groupKey": "{}:{alertname=\"HighMemory\"}", "status": "firing", "receiver": "fm",
        "alerts": [
            {"status": "firing", "labels": {"alertname": "HighMemory", "service": "payment-service", "severity": "critical"},
             "annotations": {"summary": "payment-service memory > 90%"}, "startsAt": "2026-11-26T03:42:00Z", "fingerprint": "abc123"},
            {"status": "resolved", "labels": {"alertname": "HighCPU", "service": "orders-service"},
             "annotations": {}, "startsAt": "2026-11-26T03:00:00Z", "fingerprint": "def456"}]});
    let resp = h
        .client
        .post(format!("{}/v1/webhooks/alertmanager", h.base))
        .bearer_auth(TOKEN)
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["run_ids"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["alerts"][1]["disposition"], "recorded");
    let run = h.wait_finished(body["run_ids"][0].as_str().unwrap()).await;
    assert_eq!(run["output"]["incident"], "abc123");
    let bad = h
        .client
        .post(format!("{}/v1/webhooks/alertmanager", h.base))
        .bearer_auth(TOKEN)
        .json(&json!({"alerts": [{"status": "firing", "labels": {}, "fingerprint": "x"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_runs_can_be_cancelled_and_operations_endpoints_answer() {
    let h = Harness::start(simple_pipeline(10_000), "").await;
    let resp = h
        .client
        .post(format!("{}/v1/pipelines/incident/runs", h.base))
        .bearer_auth(TOKEN)
        .json(&json!({"id": "manual-1", "payload": {"source": "svc"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let id = resp.json::<Value>().await.unwrap()["run_ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let resp = h
        .client
        .post(format!("{}/v1/runs/{id}/cancel", h.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let run = h.wait_finished(&id).await;
    assert_eq!(run["status"], "cancelled", "{run}");

    let (status, ready) = h.get("/readyz").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("ready")));
    let (status, spec) = h.get("/v1/openapi.json").await;
    assert_eq!(status, 200);
    assert_eq!(spec["openapi"], "3.1.0");
    assert!(spec["paths"]["/v1/webhooks/pagerduty"]["post"].is_object());
    h.stop().await;
}

#[tokio::test]
async fn a_bad_config_is_refused_with_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("fm.toml"),
        "listen = \"0.0.0.0:0\"\n[[pipelines]]\nname = \"p\"\nfile = \"missing.json\"\n[[triggers]]\nsource = \"pagerduty\"\npipeline = \"p\"\nsigning_secrets = [\"NOPE_NOT_SET\"]\n",
    )
    .unwrap();
    let err = fm_server::start_from_file(&dir.path().join("fm.toml"))
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("NOPE_NOT_SET"), "{err}");
    assert!(err.contains("missing.json"), "{err}");
}

/// The same intake, dedup and run path on PostgreSQL (in a schema of its own, dropped after).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_works_on_postgres() {
    let Some(url) = fm_testkit::services::postgres_url() else {
        return;
    };
    let schema = format!("fm_srv_{}", uuid::Uuid::new_v4().simple());
    let admin = fm_store::PostgresStore::open_in_schema(&url, &schema)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store_url = format!("{url}{sep}options[search_path]={schema}");
    let h = Harness::start_on(simple_pipeline(300), "", Some(&store_url)).await;
    let ev = pd_event("PGINC1", "payment-service", "incident.triggered");
    let (status, first) = h.pd(&ev, None).await;
    assert_eq!(status, 202, "{first}");
    let (_, second) = h.pd(&ev, None).await;
    assert_eq!(second["alerts"][0]["disposition"], "attached");
    let run = h.wait_finished(first["run_ids"][0].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded");
    assert_eq!(run["attached_alerts"], 1);
    let (_, ready) = h.get("/readyz").await;
    assert_eq!(ready["store"], "postgres");
    h.stop().await;
    // The schema name is ours (a UUID), not input.
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(admin.pool())
    .await
    .unwrap();
}
