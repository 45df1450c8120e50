//! The real thing: `fm serve` against the sandbox, alerts sent under load, the server SIGKILLed
//! in the middle and started again. Every accepted alert must end in a settled run, and the
//! sandbox's request log must show no remediation sent twice for one alert.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fm_sandbox::{Latencies, Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

const SIGNING: &str = "crash-test-signing-secret";
const TOKEN: &str = "crash-test-token";
const ALERTS: usize = 40;

/// A remediation pipeline in miniature: restart (tagged with the alert id so the sandbox's log
/// tells which alert each PATCH belongs to), then verify.
fn pipeline() -> Value {
    json!({"name": "restart", "stages": [
        {"id": "receive-alert", "component": "json_transform",
         "config": {"expression": "{alert_id: id, service: payload.source}"}},
        {"id": "restart", "component": "http_request", "depends_on": ["receive-alert"],
         "config": {"url": "{{input.k8s_api}}/apis/apps/v1/namespaces/production/deployments/{{stages.receive-alert.output.service}}",
                    "method": "PATCH",
                    "headers": {"Authorization": "Bearer {{secrets.K8S_TOKEN}}", "Content-Type": "application/strategic-merge-patch+json"},
                    "body": {"spec": {"template": {"metadata": {"annotations": {
                        "kubectl.kubernetes.io/restartedAt": "{{now() | rfc3339}}",
                        "fm.dev/alert": "{{stages.receive-alert.output.alert_id}}"}}}}}}},
        {"id": "verify", "component": "http_request", "depends_on": ["restart"],
         "retry": {"max_attempts": 20, "delay_ms": 100, "condition": "{{output.status_code != 200}}"},
         "config": {"url": "{{input.health_api}}/{{stages.receive-alert.output.service}}/health"}}
    ]})
}

fn spawn_server(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_fm"))
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(config.parent().unwrap())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    while Instant::now() < until {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_run_then_restart_settles_every_alert_and_never_repeats_a_remediation() {
    let sandbox = Sandbox::start(SandboxOptions {
        scenario: Scenario::Oom,
        port: 0,
        latencies: Latencies {
            k8s_patch: Duration::from_millis(300),
            health: Duration::from_millis(20),
            ..Latencies::zero()
        },
        recovery_delay: Duration::from_millis(200),
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("p.pipeline.json"), pipeline().to_string()).unwrap();
    let mut secrets: String = sandbox
        .secrets()
        .iter()
        .map(|(k, v)| format!("{k}={v}\n"))
        .collect();
    secrets.push_str(&format!("PD_SIGNING={SIGNING}\nAPI_TOKEN={TOKEN}\n"));
    std::fs::write(d.join("secrets.env"), secrets).unwrap();
    let overrides = sandbox.input_overrides();
    let port = free_port();
    let config = format!(
        r#"listen = "127.0.0.1:{port}"
store = "sqlite://{}/fm.db"
concurrency = 8
lease = "1s"
secrets_file = "secrets.env"
api_token_secrets = ["API_TOKEN"]
allowed_hosts = ["127.0.0.1"]
[flapping]
max_alerts = 100000
window = "1m"
[[pipelines]]
name = "restart"
file = "p.pipeline.json"
[[triggers]]
source = "pagerduty"
pipeline = "restart"
signing_secrets = ["PD_SIGNING"]
[triggers.input_defaults]
k8s_api = "{}"
health_api = "{}"
"#,
        d.display(),
        overrides["k8s_api"].as_str().unwrap(),
        overrides["health_api"].as_str().unwrap()
    );
    std::fs::write(d.join("fm.toml"), config).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();

    let mut server = spawn_server(&d.join("fm.toml"));
    wait_ready(&client, &base).await;

    // Send the alerts; kill the server while runs are in flight.
    let mut accepted = Vec::new();
    for i in 0..ALERTS {
        let body = json!({"event": {"id": format!("ev{i}"), "event_type": "incident.triggered", "resource_type": "incident",
            "data": {"id": format!("PINC{i:03}"), "title": "payment-service: High memory usage", "urgency": "high",
                     "created_at": "2026-11-26T03:42:00Z", "service": {"id": "P1", "summary": "payment-service"}}}})
        .to_string();
        let resp = client
            .post(format!("{base}/v1/webhooks/pagerduty"))
            .header(
                "x-pagerduty-signature",
                fm_server::webhooks::pagerduty::sign(body.as_bytes(), SIGNING),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 202);
        let v: Value = resp.json().await.unwrap();
        accepted.push(v["run_ids"][0].as_str().unwrap().to_owned());
        if i == ALERTS / 2 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            server.kill().unwrap(); // SIGKILL: no graceful anything
            server.wait().unwrap();
            server = spawn_server(&d.join("fm.toml"));
            wait_ready(&client, &base).await;
        }
    }

    // Every accepted alert ends in a settled run.
    let until = Instant::now() + Duration::from_secs(90);
    let mut statuses: HashMap<String, String> = HashMap::new();
    let mut errors: HashMap<String, usize> = HashMap::new();
    while Instant::now() < until {
        statuses.clear();
        errors.clear();
        for id in &accepted {
            let run: Value = client
                .get(format!("{base}/v1/runs/{id}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            statuses.insert(id.clone(), run["status"].as_str().unwrap_or("?").to_owned());
            if let Some(kind) = run["error"]["kind"].as_str() {
                *errors.entry(kind.to_owned()).or_default() += 1;
            }
        }
        if statuses
            .values()
            .all(|s| !matches!(s.as_str(), "queued" | "running"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.kill().unwrap();
    let _ = server.wait();
    let unsettled: Vec<_> = statuses
        .iter()
        .filter(|(_, s)| matches!(s.as_str(), "queued" | "running"))
        .collect();
    assert!(unsettled.is_empty(), "runs not settled: {unsettled:?}");
    assert_eq!(statuses.len(), ALERTS);

    // No remediation sent twice for one alert.
    let mut patches: HashMap<String, usize> = HashMap::new();
    for r in sandbox.requests().iter().filter(|r| r.method == "PATCH") {
        let alert = r
            .body
            .pointer("/spec/template/metadata/annotations/fm.dev~1alert")
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_owned();
        *patches.entry(alert).or_default() += 1;
    }
    let repeated: Vec<_> = patches.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "remediations repeated: {repeated:?}");
    assert!(
        patches.len() >= ALERTS / 2,
        "most alerts were remediated: {}",
        patches.len()
    );
    let succeeded = statuses.values().filter(|s| *s == "succeeded").count();
    eprintln!(
        "crash test: {ALERTS} alerts accepted, {} restarts sent (each once), {succeeded} runs succeeded; failures by kind: {errors:?}",
        patches.len()
    );
    // A run that failed did so because its restart's outcome was unknown after the kill.
    assert!(errors.keys().all(|k| k == "outcome_unknown"), "{errors:?}");
    sandbox.shutdown().await;
}

/// SIGTERM: the server stops taking work, gives in-flight runs until its deadline, then hands
/// them back to the queue; the next server resumes them at once (long before their leases
/// would have expired).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_hands_unfinished_runs_back_and_the_next_server_finishes_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pipeline = json!({"name": "slow", "stages": [
        {"id": "receive-alert", "component": "json_transform", "config": {"expression": "{alert_id: id}"}},
        {"id": "work", "component": "delay", "depends_on": ["receive-alert"], "config": {"ms": 2500}},
        {"id": "done", "component": "logger", "depends_on": ["work"], "config": {"message": "done {{stages.receive-alert.output.alert_id}}"}}
    ]});
    std::fs::write(d.join("p.pipeline.json"), pipeline.to_string()).unwrap();
    std::fs::write(
        d.join("secrets.env"),
        format!("PD_SIGNING={SIGNING}\nAPI_TOKEN={TOKEN}\n"),
    )
    .unwrap();
    let port = free_port();
    let config = format!(
        "listen = \"127.0.0.1:{port}\"\nstore = \"sqlite://{}/fm.db\"\nlease = \"60s\"\nshutdown_deadline = \"300ms\"\nsecrets_file = \"secrets.env\"\napi_token_secrets = [\"API_TOKEN\"]\n[[pipelines]]\nname = \"slow\"\nfile = \"p.pipeline.json\"\n[[triggers]]\nsource = \"pagerduty\"\npipeline = \"slow\"\nsigning_secrets = [\"PD_SIGNING\"]\n",
        d.display()
    );
    std::fs::write(d.join("fm.toml"), config).unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let server = spawn_server(&d.join("fm.toml"));
    wait_ready(&client, &base).await;
    let body = json!({"event": {"event_type": "incident.triggered",
        "data": {"id": "PTERM1", "title": "t", "service": {"summary": "svc"}}}})
    .to_string();
    let resp: Value = client
        .post(format!("{base}/v1/webhooks/pagerduty"))
        .header(
            "x-pagerduty-signature",
            fm_server::webhooks::pagerduty::sign(body.as_bytes(), SIGNING),
        )
        .body(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run_id = resp["run_ids"][0].as_str().unwrap().to_owned();
    let get = |client: reqwest::Client, base: String, id: String| async move {
        client
            .get(format!("{base}/v1/runs/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap()
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        get(client.clone(), base.clone(), run_id.clone()).await["status"],
        "running"
    );

    let began = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = server.wait_with_output().unwrap();
    assert!(out.status.success(), "a graceful stop exits 0");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "the deadline bounds the stop"
    );

    let server = spawn_server(&d.join("fm.toml"));
    wait_ready(&client, &base).await;
    let until = Instant::now() + Duration::from_secs(20);
    let run = loop {
        let run = get(client.clone(), base.clone(), run_id.clone()).await;
        if run["status"] == "succeeded" || Instant::now() > until {
            break run;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut server = server;
    server.kill().unwrap();
    let _ = server.wait();
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["claims"], 2, "claimed once by each server: {run}");
    assert!(
        began.elapsed() < Duration::from_secs(15),
        "resumed long before the 60 s lease would expire"
    );
}
