//! The always-notify guarantee on the real binary, asserted from what the sandbox received:
//!
//! - Ctrl-C, SIGTERM or `--timeout` after the restart PATCH was sent: the run stops starting
//!   work, the catch escalates to PagerDuty and the finally stage runs; the record says so.
//! - Ctrl-C before anything acted: nothing more is sent.
//! - `POST /v1/runs/{id}/cancel` 0.3 s after queueing a run on `fm serve`: the run stops within
//!   a second and sends nothing.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fm_sandbox::{Latencies, RecordedRequest, Sandbox, SandboxOptions, Scenario};
use fm_testkit::{clean_command, ChildGuard};
use serde_json::{json, Value};

const PIPELINE: &str = "pipelines/devops-incident-response.pipeline.json";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct World {
    sb: Sandbox,
    dir: tempfile::TempDir,
    input: PathBuf,
    secrets: PathBuf,
}

async fn world(scenario: Scenario, latencies: Latencies) -> World {
    let sb = Sandbox::start(SandboxOptions {
        scenario,
        port: 0,
        latencies,
        recovery_delay: Duration::from_millis(200),
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut input: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join(format!("inputs/{}.json", scenario.name()))).unwrap(),
    )
    .unwrap();
    for (k, v) in sb.input_overrides() {
        input[k] = v;
    }
    let input_path = dir.path().join("input.json");
    std::fs::write(&input_path, input.to_string()).unwrap();
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, serde_json::to_string(&sb.secrets()).unwrap()).unwrap();
    World {
        sb,
        dir,
        input: input_path,
        secrets,
    }
}

impl World {
    /// `fm run` on the incident pipeline against this sandbox (the model's settings come from
    /// the secrets file), with its own store and artifacts.
    fn fm_run(&self, extra: &[&str]) -> ChildGuard {
        let d = self.dir.path();
        let mut c = clean_command(env!("CARGO_BIN_EXE_fm"), d);
        c.current_dir(repo())
            .arg("run")
            .arg(PIPELINE)
            .arg("--input")
            .arg(&self.input)
            .arg("--secrets")
            .arg(&self.secrets)
            .arg("--artifacts")
            .arg(d.join("artifacts"))
            .arg("--store")
            .arg(format!("sqlite://{}/fm.db", d.display()))
            .args(["--json", "--progress", "always"])
            .args(extra);
        ChildGuard::spawn("fm-run", c)
    }

    fn requests(&self) -> Vec<RecordedRequest> {
        self.sb.requests()
    }

    /// Waits until the sandbox has received a request matching `what`.
    async fn wait_for_request(&self, what: &str, f: impl Fn(&RecordedRequest) -> bool) {
        fm_testkit::wait::until(what, Duration::from_secs(30), || {
            let found = self.requests().iter().any(&f);
            async move { found.then_some(()) }
        })
        .await;
    }

    fn secret_values(&self) -> Vec<String> {
        self.sb.secrets().into_values().collect()
    }
}

fn is_restart(q: &RecordedRequest) -> bool {
    q.system == "k8s" && q.method == "PATCH"
}

/// A request that changes something or tells someone (anything but reads, the logs search and
/// the model).
fn acts_or_notifies(q: &RecordedRequest) -> bool {
    match q.system.as_str() {
        "pagerduty" | "slack" | "statuspage" => true,
        "k8s" | "deploy" => q.method != "GET",
        _ => false,
    }
}

fn record_of(child: &ChildGuard) -> Value {
    serde_json::from_str(&child.stdout()).unwrap_or_else(|e| {
        panic!(
            "no JSON record on stdout ({e}); stderr:\n{}",
            child.tail(40)
        )
    })
}

fn stage<'a>(rec: &'a Value, id: &str) -> &'a Value {
    rec["stages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap()
}

/// After the restart PATCH was sent, the run is stopped (by `stop`); the catch pages a human,
/// the finally stage runs, nothing else starts, and the record, the output line and the
/// sandbox agree.
async fn stopped_after_the_fix(stop: &str, expected_status: &str) {
    let w = world(Scenario::RemediationFails, Latencies::zero()).await;
    let extra: &[&str] = if stop == "timeout" {
        &["--timeout", "5s"]
    } else {
        &[]
    };
    let mut child = w.fm_run(extra);
    w.wait_for_request("the restart PATCH", is_restart).await;
    // verify-health is now retrying against a service that stays unhealthy.
    w.wait_for_request("a health check", |q| q.system == "health")
        .await;
    if stop != "timeout" {
        child.signal(stop);
    }
    let status = child.wait_exit(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", child.tail(40));
    let rec = record_of(&child);
    let s = child.tail(60);
    assert_eq!(rec["status"], expected_status, "{s}");
    let stop_report = &rec["stop"];
    assert_eq!(stop_report["acted"], json!(["auto-restart-service"]), "{s}");
    assert_eq!(stop_report["cleanup"], "completed", "{s}");
    assert_eq!(
        stop_report["cleanup_scopes"],
        json!(["auto-remediate"]),
        "{s}"
    );
    assert_eq!(
        stop_report["cleanup_stages"],
        json!(["remediation-failed-escalate", "log-remediation-attempt"]),
        "{s}"
    );
    // The catch escalated, from the sandbox's own log: a PagerDuty trigger for this alert.
    let pd: Vec<RecordedRequest> = w
        .requests()
        .into_iter()
        .filter(|q| q.system == "pagerduty")
        .collect();
    assert_eq!(pd.len(), 1, "{s}");
    assert_eq!(pd[0].body["event_action"], "trigger");
    assert!(
        pd[0].body["payload"]["summary"]
            .as_str()
            .unwrap()
            .starts_with("[AUTO-REMEDIATION FAILED]"),
        "{}",
        pd[0].body
    );
    // The model was configured from the secrets file alone (the environment is clean).
    assert_eq!(
        stage(&rec, "analyze-incident")["status"],
        "succeeded",
        "{s}"
    );
    // The finally stage ran; nothing after the scope started (no "resolved" anywhere).
    assert_eq!(
        stage(&rec, "log-remediation-attempt")["status"],
        "succeeded"
    );
    assert_eq!(stage(&rec, "verify-health")["status"], "cancelled");
    for id in ["update-status", "notify-team", "resolve-pagerduty"] {
        assert_eq!(stage(&rec, id)["status"], "cancelled", "{id}: {s}");
    }
    assert!(w.requests().iter().all(|q| q.system != "statuspage"));
    // The outcome says what happened, on stderr too.
    assert_eq!(rec["outcome"], "remediation_failed", "{s}");
    let stderr = child.stderr();
    assert!(
        stderr.contains("outcome: remediation_failed — auto-remediation (service_restart) did not fix it: verify-health was interrupted"),
        "{stderr}"
    );
    assert!(stderr.contains("a human was paged"), "{stderr}");
    let secrets = w.secret_values();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    child.assert_logs_free_of(&secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_after_the_fix_was_sent_escalates_and_runs_finally() {
    stopped_after_the_fix("INT", "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_after_the_fix_was_sent_escalates_and_runs_finally() {
    stopped_after_the_fix("TERM", "cancelled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_after_the_fix_was_sent_escalates_and_runs_finally() {
    stopped_after_the_fix("timeout", "timed_out").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_before_anything_acted_sends_nothing() {
    // With the reference's latencies the run spends seconds fetching context.
    let w = world(Scenario::Oom, Latencies::default()).await;
    let mut child = w.fm_run(&[]);
    w.wait_for_request("the logs search", |q| q.system == "logs")
        .await;
    child.signal("INT");
    let status = child.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(1), "{}", child.tail(40));
    let rec = record_of(&child);
    assert_eq!(rec["status"], "cancelled");
    assert_eq!(rec["stop"]["cleanup"], "not_needed", "{}", rec["stop"]);
    assert_eq!(rec["stop"]["acted"], json!([]));
    assert_eq!(rec["outcome"], Value::Null);
    // Give anything that would still go out the time to arrive: nothing does.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent: Vec<String> = w
        .requests()
        .iter()
        .filter(|q| acts_or_notifies(q))
        .map(|q| format!("{} {}", q.method, q.path))
        .collect();
    assert!(
        sent.is_empty(),
        "sent after a cancel before acting: {sent:?}"
    );
    let stderr = child.stderr();
    assert!(
        stderr.contains("before any stage that changes something had started"),
        "{stderr}"
    );
    // The final message is printed once.
    assert_eq!(stderr.matches("error: run ").count(), 1, "{stderr}");
}

/// `fm serve` (the real binary) with the incident pipeline against the sandbox.
fn fm_serve(w: &World, store: &str) -> (ChildGuard, String) {
    let d = w.dir.path();
    std::fs::write(
        d.join("fm.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\nstore = \"{store}\"\nconcurrency = 2\nsecrets_file = \"{}\"\n\n[[pipelines]]\nname = \"incident\"\nfile = \"{}\"\n",
            w.secrets.display(),
            repo().join(PIPELINE).display()
        ),
    )
    .unwrap();
    let mut c = clean_command(env!("CARGO_BIN_EXE_fm"), d);
    c.current_dir(repo())
        .arg("serve")
        .arg("--config")
        .arg(d.join("fm.toml"));
    let mut child = ChildGuard::spawn("fm-serve", c);
    let addr = child.wait_for_line(
        "the server's address",
        Duration::from_secs(30),
        fm_testkit::fm_serve_addr,
    );
    (child, addr)
}

async fn api_cancel_sends_nothing(store: impl FnOnce(&Path) -> String) {
    let w = world(Scenario::Oom, Latencies::default()).await;
    let (mut server, addr) = fm_serve(&w, &store(w.dir.path()));
    let input: Value = serde_json::from_str(&std::fs::read_to_string(&w.input).unwrap()).unwrap();
    let client = reqwest::Client::new();
    let resp = client
        .post(format!("http://{addr}/v1/pipelines/incident/runs"))
        .json(&input)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let id = resp.json::<Value>().await.unwrap()["run_ids"][0]
        .as_str()
        .unwrap()
        .to_owned();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let asked = Instant::now();
    let resp = client
        .post(format!("http://{addr}/v1/runs/{id}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let run = fm_testkit::wait::until("the run to end", Duration::from_secs(10), || {
        let client = client.clone();
        let url = format!("http://{addr}/v1/runs/{id}");
        async move {
            let run: Value = client.get(url).send().await.ok()?.json().await.ok()?;
            (!matches!(run["status"].as_str(), Some("queued" | "running"))).then_some(run)
        }
    })
    .await;
    let took = asked.elapsed();
    assert_eq!(run["status"], "cancelled", "{run}");
    assert!(
        took < Duration::from_millis(1500),
        "the cancel took {took:?} to stop the run (a heartbeat is 10 s)"
    );
    let stop = &run["record"]["stop"];
    assert_eq!(stop["cleanup"], "not_needed", "{run}");
    assert_eq!(stop["cause"], "cancel requested through the API");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent: Vec<String> = w
        .requests()
        .iter()
        .filter(|q| acts_or_notifies(q))
        .map(|q| format!("{} {}", q.method, q.path))
        .collect();
    assert!(sent.is_empty(), "sent after the cancel: {sent:?}");
    server.signal("TERM");
    server.wait_exit(Duration::from_secs(30));
    let secrets = w.secret_values();
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    server.assert_logs_free_of(&secrets);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_cancel_soon_after_queueing_sends_nothing_on_sqlite() {
    api_cancel_sends_nothing(|d| format!("sqlite://{}/serve.db", d.display())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_cancel_soon_after_queueing_sends_nothing_on_postgres() {
    let Some(url) = fm_testkit::services::postgres_url() else {
        return;
    };
    let schema = format!("fm_cancel_{}", uuid::Uuid::new_v4().simple());
    let admin = fm_store::PostgresStore::open_in_schema(&url, &schema)
        .await
        .unwrap();
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = format!("{url}{sep}options[search_path]={schema}");
    let outcome = tokio::spawn(api_cancel_sends_nothing(move |_| store)).await;
    sqlx_drop(&admin, &schema).await;
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

async fn sqlx_drop(admin: &fm_store::PostgresStore, schema: &str) {
    // The schema name is ours (a UUID), not input.
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE"
    )))
    .execute(admin.pool())
    .await;
}
