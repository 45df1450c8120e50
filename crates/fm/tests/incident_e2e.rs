//! The incident-response pipeline end to end: for every sandbox scenario, the real `fm` binary
//! runs pipelines/devops-incident-response.pipeline.json against a sandbox started in this test
//! process, and the tests assert the run's output and what the sandbox actually received: which
//! remediation was called (exactly once), PagerDuty trigger vs resolve and its dedup key, Slack,
//! the status page, the postmortem artifact. Every scenario also runs under `--dry-run` (nothing
//! mutating reaches the sandbox, the output says what would have been done), and the guardrails get their own runs (rules-only mode without
//! any model, no model configured, a flapping service).
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fm_sandbox::{Latencies, RecordedRequest, Sandbox, SandboxOptions, Scenario};
use serde_json::{json, Value};

const PIPELINE: &str = "pipelines/devops-incident-response.pipeline.json";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Clone, Copy, Default)]
struct How {
    dry_run: bool,
    /// `--set analysis_mode=rules_only`.
    rules_only: bool,
    /// No LLM provider in the environment at all.
    no_llm: bool,
    /// `--set flapping=true`.
    flapping: bool,
}

struct Run {
    code: Option<i32>,
    record: Value,
    stderr: String,
    requests: Vec<RecordedRequest>,
    state: Value,
    input: Value,
    _dir: tempfile::TempDir,
    artifacts: PathBuf,
}

impl Run {
    fn output(&self) -> &Value {
        &self.record["output"]
    }

    fn stage(&self, id: &str) -> &Value {
        self.record["stages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap_or_else(|| panic!("no stage {id} in the record"))
    }

    fn reqs(&self, system: &str) -> Vec<&RecordedRequest> {
        self.requests
            .iter()
            .filter(|r| r.system == system)
            .collect()
    }

    fn alert_id(&self) -> &str {
        self.input["id"].as_str().unwrap()
    }

    fn pagerduty_actions(&self) -> Vec<String> {
        self.reqs("pagerduty")
            .iter()
            .map(|r| r.body["event_action"].as_str().unwrap_or("?").to_owned())
            .collect()
    }

    fn summary(&self) -> String {
        let reqs: Vec<String> = self
            .requests
            .iter()
            .map(|r| format!("{} {} -> {:?}", r.method, r.path, r.status))
            .collect();
        format!(
            "exit {:?}\noutput: {:#}\nrequests:\n  {}\nstderr:\n{}",
            self.code,
            self.output(),
            reqs.join("\n  "),
            self.stderr
        )
    }
}

async fn run(scenario: Scenario, how: How) -> Run {
    let sb = Sandbox::start(SandboxOptions {
        scenario,
        port: 0,
        latencies: Latencies::zero(),
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
    let input_file = dir.path().join("input.json");
    std::fs::write(&input_file, serde_json::to_string(&input).unwrap()).unwrap();
    let secrets: BTreeMap<String, String> = sb.secrets();
    // The model's settings are read from the secrets file too: without a model, leave them out.
    let file_secrets: BTreeMap<&String, &String> = secrets
        .iter()
        .filter(|(k, _)| !(how.no_llm && k.starts_with("OPENAI_")))
        .collect();
    let secrets_file = dir.path().join("secrets.json");
    std::fs::write(&secrets_file, serde_json::to_string(&file_secrets).unwrap()).unwrap();
    let artifacts = dir.path().join("artifacts");

    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fm"));
    cmd.current_dir(repo())
        .arg("run")
        .arg(PIPELINE)
        .arg("--input")
        .arg(&input_file)
        .arg("--secrets")
        .arg(&secrets_file)
        .arg("--artifacts")
        .arg(&artifacts)
        .args(["--json", "--progress", "never"]);
    if how.dry_run {
        cmd.arg("--dry-run");
    }
    if how.rules_only {
        cmd.args(["--set", "analysis_mode=rules_only"]);
    }
    if how.flapping {
        cmd.args(["--set", "flapping=true"]);
    }
    for var in [
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
        "FM_LLM_PROVIDER",
        "FM_LLM_MODEL",
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_BASE_URL",
    ] {
        cmd.env_remove(var);
    }
    // Its own store: runs and remediation budgets never leak between tests (or into .fm/).
    cmd.env(
        "FM_STORE",
        format!("sqlite://{}", dir.path().join("fm.db").display()),
    );
    if !how.no_llm {
        cmd.env("OPENAI_API_KEY", &secrets["OPENAI_API_KEY"])
            .env("OPENAI_BASE_URL", &secrets["OPENAI_BASE_URL"])
            .env("FM_LLM_PROVIDER", "openai");
    }
    // The binary talks to the sandbox served by this runtime: wait for it off the runtime.
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let record: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json output does not parse ({e}):\n{}\nstderr:\n{stderr}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    let requests = sb.requests();
    let state = sb.state();
    sb.shutdown().await;
    Run {
        code: out.status.code(),
        record,
        stderr,
        requests,
        state,
        input,
        _dir: dir,
        artifacts,
    }
}

// ---------------------------------------------------------------------------------------------
// Shared assertions

/// A verified automatic fix: status page, Slack "auto-resolved", PagerDuty resolved with the
/// alert's dedup key, a postmortem written among the artifacts and printed on stderr.
fn assert_auto_resolved(r: &Run, action: &str, known_issue: &str, issue_type: &str) {
    let s = r.summary();
    let out = r.output();
    assert_eq!(r.code, Some(0), "{s}");
    assert_eq!(r.record["status"], "succeeded", "{s}");
    assert_eq!(r.record["dry_run"], false);
    assert_eq!(out["resolution"]["type"], "auto-remediated", "{s}");
    assert_eq!(out["resolution"]["action"], action, "{s}");
    assert_eq!(out["resolution"]["success"], true, "{s}");
    assert_eq!(out["analysis"]["issue_type"], issue_type, "{s}");
    assert_eq!(out["analysis"]["confidence"], "high", "{s}");
    assert_eq!(out["decision"]["known_issue"], known_issue, "{s}");
    assert_eq!(out["decision"]["auto_remediate"], true, "{s}");
    assert_eq!(
        out["notifications"],
        json!({"status_page": "updated", "slack": "sent", "pagerduty": "resolved"}),
        "{s}"
    );

    // PagerDuty: one resolve with the alert's dedup key, no trigger.
    assert_eq!(r.pagerduty_actions(), ["resolve"], "{s}");
    let pd = r.reqs("pagerduty")[0];
    assert_eq!(pd.body["dedup_key"], r.alert_id(), "{s}");
    assert_eq!(pd.status, Some(202), "{s}");

    // Slack: one Block Kit message, the auto-resolved one.
    let slack = r.reqs("slack");
    assert_eq!(slack.len(), 1, "{s}");
    assert_eq!(
        slack[0].body["blocks"][0]["text"]["text"],
        "Incident Auto-Resolved"
    );
    assert_eq!(slack[0].status, Some(200), "{s}");

    // Status page: one resolved incident for the service.
    let sp: Vec<_> = r
        .reqs("statuspage")
        .into_iter()
        .filter(|q| q.method == "POST")
        .collect();
    assert_eq!(sp.len(), 1, "{s}");
    assert_eq!(sp[0].body["incident"]["status"], "resolved");
    assert_eq!(sp[0].status, Some(201), "{s}");
    let service = out["service"].as_str().unwrap();
    assert!(sp[0].body["incident"]["name"]
        .as_str()
        .unwrap()
        .starts_with(service));

    // Health was verified (and recovered) after the fix.
    assert_eq!(r.stage("verify-health")["status"], "succeeded");
    assert_eq!(r.state["health"][service]["healthy"], true, "{}", r.state);
    assert_eq!(r.state["outages"], json!([]), "no downtime: {}", r.state);

    // The postmortem: a Markdown file among the artifacts, the same text as in the output, and
    // its path on stderr.
    let path = out["postmortem_path"].as_str().unwrap();
    assert!(
        Path::new(path).starts_with(&r.artifacts),
        "{path} is not under {}",
        r.artifacts.display()
    );
    assert!(path.ends_with("postmortem.md"));
    let text = std::fs::read_to_string(path).unwrap();
    assert_eq!(out["postmortem_draft"].as_str().unwrap(), text);
    assert!(text.contains("Root Cause"), "{text}");
    assert!(
        r.stderr.contains(&format!("artifact written: {path}")),
        "{}",
        r.stderr
    );
}

/// Escalated to a human: a PagerDuty trigger carrying the alert's dedup key and the analysis,
/// Slack told, nothing resolved, no status page, no postmortem.
fn assert_escalated<'r>(r: &'r Run, action: &str) -> &'r RecordedRequest {
    let s = r.summary();
    let out = r.output();
    assert_eq!(r.code, Some(0), "{s}");
    assert_eq!(out["resolution"]["type"], "escalated", "{s}");
    assert_eq!(out["resolution"]["action"], action, "{s}");
    assert_eq!(out["resolution"]["success"], false, "{s}");
    assert_eq!(
        out["notifications"],
        json!({"status_page": "not updated", "slack": "sent", "pagerduty": "escalated"}),
        "{s}"
    );
    assert_eq!(r.pagerduty_actions(), ["trigger"], "{s}");
    let pd = r.reqs("pagerduty")[0];
    assert_eq!(pd.status, Some(202), "{s}");
    assert_eq!(pd.body["dedup_key"], r.alert_id());
    assert_eq!(pd.body["payload"]["source"], out["service"]);
    let slack = r.reqs("slack");
    assert_eq!(slack.len(), 1, "{s}");
    assert_eq!(
        slack[0].body["blocks"][0]["text"]["text"],
        "Incident escalated to on-call"
    );
    assert!(r.reqs("statuspage").is_empty(), "{s}");
    assert_eq!(out["postmortem_path"], Value::Null);
    assert!(!r.stderr.contains("artifact written"), "{}", r.stderr);
    pd
}

/// Nothing was changed anywhere: no Kubernetes write, no rollback, no remediation recorded.
fn assert_nothing_remediated(r: &Run) {
    let s = r.summary();
    assert!(
        r.reqs("k8s").iter().all(|q| q.method == "GET"),
        "no Kubernetes write: {s}"
    );
    assert!(
        r.reqs("deploy").iter().all(|q| q.method == "GET"),
        "no rollback: {s}"
    );
    assert_eq!(r.state["remediations"], json!([]), "{}", r.state);
    assert_eq!(r.state["rollbacks"], json!([]), "{}", r.state);
}

fn k8s_writes(r: &Run) -> Vec<&RecordedRequest> {
    r.reqs("k8s")
        .into_iter()
        .filter(|q| q.method != "GET")
        .collect()
}

fn is_rolling_restart(q: &RecordedRequest) -> bool {
    q.body["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
        .is_string()
}

// ---------------------------------------------------------------------------------------------
// The scenarios

#[tokio::test]
async fn oom_is_fixed_by_one_rolling_restart_then_resolved_and_documented() {
    let r = run(Scenario::Oom, How::default()).await;
    assert_auto_resolved(&r, "service_restart", "jvm-heap-exhaustion", "OOM");
    let s = r.summary();
    let writes = k8s_writes(&r);
    assert_eq!(writes.len(), 1, "exactly one Kubernetes write: {s}");
    let w = writes[0];
    assert_eq!(w.method, "PATCH");
    assert_eq!(
        w.path,
        "/k8s/apis/apps/v1/namespaces/production/deployments/payment-service"
    );
    assert!(is_rolling_restart(w), "a restartedAt patch: {}", w.body);
    assert_eq!(
        w.content_type.as_deref(),
        Some("application/strategic-merge-patch+json")
    );
    assert!(
        w.body["spec"].get("replicas").is_none(),
        "never scales: {}",
        w.body
    );
    assert!(r.reqs("deploy").iter().all(|q| q.method == "GET"));
    assert_eq!(r.state["deployments"]["payment-service"]["restarts"], 1);
    assert_eq!(r.state["deployments"]["payment-service"]["replicas"], 3);
    // The model was asked twice: the analysis and the postmortem.
    assert_eq!(r.reqs("openai").len(), 2, "{s}");
    assert!(r.output()["postmortem_draft"]
        .as_str()
        .unwrap()
        .contains("Simulated model"));
    // The known-issue match and the AI agreed, and the record shows which conditions held.
    let m = &r.stage("match-known-issue")["output"];
    assert_eq!(m["pattern"]["id"], "jvm-heap-exhaustion");
    assert_eq!(m["pattern"]["held_conditions"].as_array().unwrap().len(), 3);
    // Only the incident's service was touched.
    assert!(r
        .requests
        .iter()
        .filter(|q| q.system == "k8s" || q.system == "health")
        .all(|q| q.path.contains("payment-service")));
}

#[tokio::test]
async fn connection_pool_reads_the_replicas_then_scales_out_once() {
    let r = run(Scenario::ConnectionPool, How::default()).await;
    assert_auto_resolved(
        &r,
        "scale_connections",
        "db-connection-pool-exhausted",
        "connection_pool_exhausted",
    );
    let s = r.summary();
    let scale_path = "/k8s/apis/apps/v1/namespaces/production/deployments/orders-service/scale";
    let k8s = r.reqs("k8s");
    let read = k8s
        .iter()
        .position(|q| q.method == "GET" && q.path == scale_path)
        .unwrap_or_else(|| panic!("the replica count is read first: {s}"));
    let writes = k8s_writes(&r);
    assert_eq!(writes.len(), 1, "exactly one Kubernetes write: {s}");
    let w = writes[0];
    assert_eq!((w.method.as_str(), w.path.as_str()), ("PATCH", scale_path));
    assert!(
        k8s.iter().position(|q| q.seq == w.seq).unwrap() > read,
        "read, then scale: {s}"
    );
    // 4 replicas read, scale_out_by 2.
    assert_eq!(w.body["spec"]["replicas"], 6, "{}", w.body);
    assert_eq!(r.state["deployments"]["orders-service"]["replicas"], 6);
    assert!(!is_rolling_restart(w));
    assert!(r.reqs("deploy").iter().all(|q| q.method == "GET"));
}

#[tokio::test]
async fn bad_deploy_is_rolled_back_once() {
    let r = run(Scenario::BadDeploy, How::default()).await;
    assert_auto_resolved(&r, "rollback_deploy", "bad-deploy-regression", "bad_deploy");
    let s = r.summary();
    let newest = &r.stage("fetch-recent-deploys")["output"]["body"][0];
    assert!(newest["age_minutes"].as_i64().unwrap() < 60);
    let writes: Vec<_> = r
        .reqs("deploy")
        .into_iter()
        .filter(|q| q.method != "GET")
        .collect();
    assert_eq!(writes.len(), 1, "exactly one rollback: {s}");
    assert_eq!(writes[0].method, "POST");
    assert_eq!(
        writes[0].path,
        format!(
            "/deploy/deployments/{}/rollback",
            newest["id"].as_str().unwrap()
        )
    );
    assert_eq!(writes[0].status, Some(200));
    assert!(k8s_writes(&r).is_empty(), "no Kubernetes write: {s}");
    assert_eq!(r.state["rollbacks"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn unknown_issue_is_escalated_and_nothing_is_remediated() {
    let r = run(Scenario::Unknown, How::default()).await;
    let pd = assert_escalated(&r, "escalate");
    assert_nothing_remediated(&r);
    let details = &pd.body["payload"]["custom_details"];
    assert!(pd.body["payload"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("[NEEDS HUMAN]"));
    assert!(!details["ai_analysis"].as_str().unwrap().is_empty());
    assert_eq!(details["confidence"], "low");
    assert!(
        details["why_not_auto"]
            .as_str()
            .unwrap()
            .contains("no known issue matches"),
        "{details}"
    );
    assert_eq!(r.output()["decision"]["known_issue"], Value::Null);
    assert_eq!(r.output()["analysis"]["issue_type"], "unknown");
    // Only the analysis was asked of the model: no postmortem for an open incident.
    assert_eq!(r.reqs("openai").len(), 1);
}

#[tokio::test]
async fn a_fix_that_does_not_heal_is_caught_and_escalated_with_the_failed_stage() {
    let r = run(Scenario::RemediationFails, How::default()).await;
    let pd = assert_escalated(&r, "service_restart");
    let s = r.summary();
    // The restart was attempted exactly once, as a rolling restart.
    let writes = k8s_writes(&r);
    assert_eq!(writes.len(), 1, "{s}");
    assert!(is_rolling_restart(writes[0]));
    // Verification retried with a bound, then gave up.
    let checks = r.reqs("health").len();
    assert!((2..=8).contains(&checks), "{checks} health checks: {s}");
    assert_eq!(r.stage("verify-health")["status"], "failed");
    assert_eq!(r.stage("auto-remediate")["status"], "succeeded");
    assert_eq!(
        r.stage("auto-remediate")["output"]["outcome"],
        "caught",
        "{s}"
    );
    assert_eq!(
        r.stage("remediation-failed-escalate")["status"],
        "succeeded"
    );
    assert_eq!(r.stage("log-remediation-attempt")["status"], "succeeded");
    assert_eq!(r.stage("escalate-to-human")["status"], "skipped");
    // The PagerDuty trigger came from the catch path and names what failed.
    assert!(pd.body["payload"]["summary"]
        .as_str()
        .unwrap()
        .starts_with("[AUTO-REMEDIATION FAILED]"));
    let details = &pd.body["payload"]["custom_details"];
    assert_eq!(details["failed_stage"], "verify-health", "{details}");
    assert_eq!(details["attempted_action"], "service_restart");
    assert_eq!(details["known_issue"], "jvm-heap-exhaustion");
    assert!(
        details["error"]
            .as_str()
            .unwrap()
            .contains("stayed unhealthy after the fix"),
        "{details}"
    );
    assert_eq!(r.state["health"]["payment-service"]["healthy"], false);
}

#[tokio::test]
async fn flaky_context_retries_logs_and_escalates_on_partial_context() {
    let r = run(Scenario::FlakyContext, How::default()).await;
    let s = r.summary();
    // The logs API failed twice and was retried until it answered.
    let logs = r.reqs("logs");
    assert_eq!(logs.len(), 3, "{s}");
    assert_eq!(
        logs.iter().map(|q| q.status).collect::<Vec<_>>(),
        [Some(500), Some(500), Some(200)]
    );
    assert_eq!(r.stage("fetch-logs")["status"], "succeeded");
    assert_eq!(r.stage("fetch-logs")["attempts"], 3);
    // The metrics API never answered: the stage timed out, the run went on.
    assert_eq!(r.stage("fetch-metrics")["status"], "failed");
    assert_eq!(r.stage("fetch-metrics")["error"]["kind"], "timeout");
    // The analysis ran on partial context and says so; confidence is capped at medium...
    let analysis = &r.output()["analysis"];
    assert_eq!(analysis["issue_type"], "OOM");
    assert_eq!(analysis["confidence"], "medium");
    assert!(
        analysis["supporting_evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("Partial context")),
        "{analysis}"
    );
    // ...and the known-issue match cannot confirm memory without metrics: a human decides.
    let reason = r.output()["decision"]["reason"].as_str().unwrap();
    assert!(reason.contains("metrics unavailable"), "{reason}");
    assert_eq!(
        r.stage("match-known-issue")["output"]["available"]["metrics"],
        false
    );
    let pd = assert_escalated(&r, "escalate");
    assert_nothing_remediated(&r);
    assert_eq!(pd.body["payload"]["custom_details"]["confidence"], "medium");
}

// ---------------------------------------------------------------------------------------------
// --dry-run: every scenario, nothing mutating reaches the sandbox

/// The requests a dry run may send: reads (GET/HEAD), the model's completions (generators run in
/// dry runs; a completion changes nothing) and the logs search, a POST marked `read_only` in the
/// pipeline.
fn allowed_in_dry_run(q: &RecordedRequest) -> bool {
    matches!(q.method.as_str(), "GET" | "HEAD")
        || (q.method == "POST" && q.path.starts_with("/openai/"))
        || (q.method == "POST" && q.path == "/logs/query")
}

/// `would`: the route the dry run shows it would take (`None`: it would escalate).
async fn dry_run(scenario: Scenario, would: Option<&str>) {
    let r = run(
        scenario,
        How {
            dry_run: true,
            ..How::default()
        },
    )
    .await;
    let s = r.summary();
    assert_eq!(r.code, Some(0), "{s}");
    assert_eq!(r.record["dry_run"], true);
    let sent: Vec<_> = r
        .requests
        .iter()
        .filter(|q| !allowed_in_dry_run(q))
        .collect();
    assert!(
        sent.is_empty(),
        "mutating requests in a dry run: {sent:?}\n{s}"
    );
    // Nothing changed in the simulated world.
    assert_nothing_remediated(&r);
    for key in ["pagerduty_events", "slack_messages", "statuspage_incidents"] {
        assert_eq!(r.state[key], json!([]), "{key}: {}", r.state);
    }
    let service = r.output()["service"].as_str().unwrap().to_owned();
    assert_eq!(r.state["deployments"][&service]["restarts"], 0);
    // The context was gathered for real (the logs search too), so the decision is the one a
    // real run would make; the actions are described instead of sent.
    assert!(!r.reqs("logs").is_empty(), "{s}");
    assert!(!r.reqs("deploy").is_empty(), "{s}");
    let out = r.output();
    let not_sent = json!("not sent (dry run)");
    assert_eq!(out["notifications"]["pagerduty"], not_sent, "{s}");
    assert_eq!(out["notifications"]["slack"], not_sent, "{s}");
    assert_eq!(out["resolution"]["success"], false, "{s}");
    match would {
        Some(route) => {
            assert_eq!(
                out["resolution"]["type"], "dry run: would auto-remediate",
                "{s}"
            );
            assert_eq!(out["resolution"]["action"], route, "{s}");
            assert_eq!(out["notifications"]["status_page"], not_sent, "{s}");
            let fix = match route {
                "service_restart" => "auto-restart-service",
                "scale_connections" => "auto-scale-connections",
                _ => "auto-rollback",
            };
            let described = &r.stage(fix)["output"];
            assert_eq!(described["dry_run"], true, "{described}");
            assert_eq!(described["sent"], false, "{described}");
            // No retries on a fix that was never applied: one health check, accepted.
            assert_eq!(r.stage("verify-health")["attempts"], 1, "{s}");
            assert_eq!(r.stage("resolve-pagerduty")["output"]["sent"], false);
            // Analysis and postmortem: the model's POSTs are the only ones besides the search.
            assert_eq!(r.reqs("openai").len(), 2, "{s}");
        }
        None => {
            assert_eq!(out["resolution"]["type"], "dry run: would escalate", "{s}");
            assert_eq!(r.stage("escalate-to-human")["output"]["sent"], false, "{s}");
            assert_eq!(r.reqs("openai").len(), 1, "{s}");
        }
    }
}

#[tokio::test]
async fn dry_run_oom() {
    dry_run(Scenario::Oom, Some("service_restart")).await;
}

#[tokio::test]
async fn dry_run_connection_pool() {
    dry_run(Scenario::ConnectionPool, Some("scale_connections")).await;
}

#[tokio::test]
async fn dry_run_bad_deploy() {
    dry_run(Scenario::BadDeploy, Some("rollback_deploy")).await;
}

#[tokio::test]
async fn dry_run_unknown() {
    dry_run(Scenario::Unknown, None).await;
}

#[tokio::test]
async fn dry_run_remediation_fails() {
    dry_run(Scenario::RemediationFails, Some("service_restart")).await;
}

#[tokio::test]
async fn dry_run_flaky_context() {
    dry_run(Scenario::FlakyContext, None).await;
}

// ---------------------------------------------------------------------------------------------
// Guardrails

#[tokio::test]
async fn rules_only_mode_without_any_model_remediates_a_high_confidence_known_issue() {
    let r = run(
        Scenario::Oom,
        How {
            rules_only: true,
            no_llm: true,
            ..How::default()
        },
    )
    .await;
    assert_auto_resolved(&r, "service_restart", "jvm-heap-exhaustion", "OOM");
    let s = r.summary();
    assert!(r.reqs("openai").is_empty(), "no model call: {s}");
    assert_eq!(r.stage("analyze-incident")["status"], "skipped");
    assert_eq!(r.stage("create-postmortem")["status"], "skipped");
    assert_eq!(r.output()["decision"]["mode"], "rules_only");
    assert_eq!(k8s_writes(&r).len(), 1);
    assert!(is_rolling_restart(k8s_writes(&r)[0]));
    // The postmortem was drafted from the run's facts.
    let draft = r.output()["postmortem_draft"].as_str().unwrap();
    assert!(draft.contains("Drafted by fm"), "{draft}");
    assert!(draft.contains("jvm-heap-exhaustion"), "{draft}");
}

#[tokio::test]
async fn rules_only_mode_still_escalates_an_unknown_issue() {
    let r = run(
        Scenario::Unknown,
        How {
            rules_only: true,
            no_llm: true,
            ..How::default()
        },
    )
    .await;
    let pd = assert_escalated(&r, "escalate");
    assert_nothing_remediated(&r);
    assert!(r.reqs("openai").is_empty());
    assert!(pd.body["payload"]["custom_details"]["ai_analysis"]
        .as_str()
        .unwrap()
        .contains("rules_only"));
}

#[tokio::test]
async fn a_known_issue_without_the_ai_agreeing_is_not_remediated() {
    // AI mode, but no model configured: the analysis fails, the known issue matches alone, and
    // that is not enough.
    let r = run(
        Scenario::Oom,
        How {
            no_llm: true,
            ..How::default()
        },
    )
    .await;
    assert_eq!(
        r.stage("analyze-incident")["status"],
        "failed",
        "{}",
        r.summary()
    );
    assert_eq!(
        r.stage("match-known-issue")["output"]["pattern"]["id"],
        "jvm-heap-exhaustion"
    );
    assert_escalated(&r, "escalate");
    assert_nothing_remediated(&r);
    let reason = r.output()["decision"]["reason"].as_str().unwrap();
    assert!(reason.contains("AI analysis is unavailable"), "{reason}");
}

#[tokio::test]
async fn a_flapping_service_is_never_auto_remediated() {
    let r = run(
        Scenario::Oom,
        How {
            flapping: true,
            ..How::default()
        },
    )
    .await;
    let pd = assert_escalated(&r, "escalate");
    assert_nothing_remediated(&r);
    assert!(pd.body["payload"]["custom_details"]["why_not_auto"]
        .as_str()
        .unwrap()
        .contains("flapping"));
}
