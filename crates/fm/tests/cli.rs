//! The real `fm` binary: exit codes, output channels, validation of the reference pipeline,
//! and secret redaction on every channel.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fm() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fm"));
    c.current_dir(repo());
    c
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn validate_names_exactly_the_five_undefined_stages_of_the_reference_pipeline() {
    let out = fm()
        .args([
            "validate",
            "tests/fixtures/seed-verbatim.pipeline.json",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let problems = report["files"][0]["problems"].as_array().unwrap();
    let mut undefined: Vec<&str> = problems
        .iter()
        .map(|p| {
            assert_eq!(p["code"], "undefined_stage", "nothing spurious: {p}");
            assert!(p["line"].is_u64(), "each problem has a line: {p}");
            p["message"].as_str().unwrap().split('\'').nth(1).unwrap()
        })
        .collect();
    undefined.sort_unstable();
    assert_eq!(
        undefined,
        [
            "auto-rollback",
            "auto-scale-connections",
            "execute-remediation",
            "log-remediation-attempt",
            "remediation-failed-escalate"
        ]
    );
}

#[test]
fn validate_exit_codes_and_text_format() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.pipeline.json",
        r#"{"name": "g", "stages": [{"id": "a", "component": "logger", "config": {"message": "hi"}}]}"#,
    );
    let out = fm().arg("validate").arg(&good).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    assert!(text(&out).0.contains("ok (1 stages)"));

    let bad = write(
        dir.path(),
        "bad.pipeline.json",
        "{\"name\": \"b\",\n \"stages\": [{\"id\": \"a\", \"component\": \"logger\", \"config\": {\"mesage\": \"hi\"}}]}",
    );
    let out = fm().arg("validate").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("error[unknown_key] stages[0].config.mesage"),
        "{stdout}"
    );
    assert!(
        stdout.contains("bad.pipeline.json:2:"),
        "line:column shown: {stdout}"
    );
    assert!(stdout.contains("hint: did you mean 'message'?"), "{stdout}");

    let out = fm()
        .args(["validate", "does-not-exist.json"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unreadable file is a usage error"
    );
    let out = fm().arg("validate").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "no file given is a usage error");
}

#[test]
fn run_prints_output_json_and_exit_codes_follow_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "p.pipeline.json",
        r#"{"name": "p", "stages": [
            {"id": "shape", "component": "json_transform", "config": {"expression": "{svc: payload.source}"}}],
           "output": {"service": "{{stages.shape.output.svc}}", "n": "{{input.n}}"}}"#,
    );
    let out = fm()
        .arg("run")
        .arg(&p)
        .args([
            "--input",
            r#"{"payload": {"source": "payment-service"}}"#,
            "--set",
            "n=3",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v, serde_json::json!({"service": "payment-service", "n": 3}));

    let failing = write(
        dir.path(),
        "f.pipeline.json",
        r#"{"name": "f", "stages": [{"id": "x", "component": "logger", "config": {"message": "{{input.nope}}"}}]}"#,
    );
    let out = fm().arg("run").arg(&failing).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out).1.contains("stage 'x'"), "{:?}", text(&out));

    let invalid = write(
        dir.path(),
        "i.pipeline.json",
        r#"{"name": "i", "stages": [{"id": "x"}]}"#,
    );
    let out = fm().arg("run").arg(&invalid).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "validation errors are exit 2");
    assert!(text(&out).1.contains("'component' is required"));
}

#[test]
fn json_record_and_event_stream() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "p.pipeline.json",
        r#"{"name": "p", "stages": [
            {"id": "a", "component": "logger", "config": {"message": "one"}},
            {"id": "b", "component": "logger", "depends_on": ["a"], "config": {"message": "two"}}]}"#,
    );
    let out = fm().arg("run").arg(&p).arg("--json").output().unwrap();
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["status"], "succeeded");
    assert!(rec["run_id"].as_str().unwrap().len() >= 32);
    assert_eq!(rec["stages"][1]["id"], "b");
    assert_eq!(rec["stages"][1]["attempts"], 1);
    assert!(rec["stages"][1]["duration_ms"].is_u64());
    assert!(rec["duration_ms"].is_u64());

    let out = fm().arg("run").arg(&p).arg("--events").output().unwrap();
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(events.first().unwrap()["event"], "run_started");
    assert_eq!(events.last().unwrap()["event"], "run_finished");
    assert!(events
        .iter()
        .any(|e| e["event"] == "log" && e["message"] == "two"));
    // Logger lines also appear on stderr during the run.
    assert!(text(&out).1.contains("[info] b: two"));
}

#[test]
fn secrets_never_appear_on_any_channel() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-T0KEN-value";
    let secrets = write(dir.path(), "secrets.env", &format!("API_TOKEN={secret}\n"));
    let p = write(
        dir.path(),
        "p.pipeline.json",
        r#"{"name": "p", "stages": [
            {"id": "log", "component": "logger", "config": {"message": "token is {{secrets.API_TOKEN}}", "data": {"auth": "Bearer {{secrets.API_TOKEN}}"}}},
            {"id": "echo", "component": "json_transform", "depends_on": ["log"], "config": {"template": {"header": "Bearer {{secrets.API_TOKEN}}"}}},
            {"id": "bad", "component": "delay", "depends_on": ["echo"], "config": {"ms": "{{secrets.API_TOKEN}}"}}],
           "output": {"h": "{{stages.echo.output.header}}"}}"#,
    );
    for extra in [
        &["--json"][..],
        &["--events"][..],
        &["--progress", "always"][..],
        &[][..],
    ] {
        let out = fm()
            .arg("run")
            .arg(&p)
            .arg("--secrets")
            .arg(&secrets)
            .args(extra)
            .output()
            .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "the delay stage fails on the rendered secret"
        );
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "leak with {extra:?}:\n{stdout}\n{stderr}"
        );
        assert!(
            stdout.contains("***") || stderr.contains("***"),
            "masked, not dropped ({extra:?})"
        );
    }
    // The error message itself (record) carries the masked value.
    let out = fm()
        .arg("run")
        .arg(&p)
        .arg("--secrets")
        .arg(&secrets)
        .arg("--json")
        .output()
        .unwrap();
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let msg = rec["error"]["message"].as_str().unwrap();
    assert!(msg.contains("***"), "{msg}");

    // A secret the pipeline needs but nobody provides stops the run before it starts.
    let out = fm()
        .arg("run")
        .arg(&p)
        .env_remove("API_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("API_TOKEN"));
}

#[test]
fn graph_shows_router_branches_and_trycatch_scopes() {
    // The fixture file wraps the pipeline; graph needs a pipeline file, so write one.
    let dir = tempfile::tempdir().unwrap();
    let case: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("tests/pipelines/trycatch-inside-router-branch.json"))
            .unwrap(),
    )
    .unwrap();
    let p = write(dir.path(), "g.pipeline.json", &case["pipeline"].to_string());
    let out = fm().arg("graph").arg(&p).output().unwrap();
    let (mermaid, _) = text(&out);
    assert!(mermaid.starts_with("flowchart TD"));
    assert!(
        mermaid.contains("subgraph scope_remediate_restart"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("route -. \"restart\" .-> remediate_restart"),
        "{mermaid}"
    );
    let out = fm()
        .arg("graph")
        .arg(&p)
        .args(["--format", "dot"])
        .output()
        .unwrap();
    let (dot, _) = text(&out);
    assert!(dot.contains("cluster_remediate-rollback"), "{dot}");
    assert!(dot.contains("label=\"catch\""), "{dot}");
}

#[test]
fn ctrl_c_cancels_a_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let p = write(
        dir.path(),
        "slow.pipeline.json",
        r#"{"name": "slow", "stages": [
            {"id": "wait", "component": "delay", "config": {"ms": 20000}},
            {"id": "after", "component": "logger", "depends_on": ["wait"], "config": {"message": "never"}}]}"#,
    );
    let child = fm()
        .arg("run")
        .arg(&p)
        .args(["--no-store", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(400));
    let began = std::time::Instant::now();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        began.elapsed() < std::time::Duration::from_secs(3),
        "cancellation must be prompt"
    );
    assert_eq!(out.status.code(), Some(1));
    let rec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rec["status"], "cancelled");
    assert_eq!(rec["stages"][0]["status"], "cancelled");
    assert_eq!(rec["stages"][1]["status"], "cancelled");
    assert_eq!(rec["stages"][1]["attempts"], 0);
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"));
}
