//! `pattern_match` (known-issue matching) and `write_artifact`, through the real compiler and
//! executor: library problems are validation problems, conditions see normalised evidence,
//! ambiguity and partial evidence never produce a match, artifacts never leave their directory.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use fm_core::{CompileOptions, Pipeline, Problem, RunOptions, RunRecord, SecretSource};
use serde_json::{json, Value};

/// The shipped library, relative to this crate (tests run in the crate's directory).
const LIBRARY: &str = "../../runbooks/known-issues.json";

fn compile(stages: Value) -> Result<Pipeline, Vec<Problem>> {
    let r = fm_components::registry_with(fm_components::LlmEnv::default());
    let doc = json!({"name": "t", "stages": stages});
    fm_core::compile(
        &doc,
        &CompileOptions {
            registry: &r,
            secret_available: None,
        },
    )
}

fn problems(stages: Value) -> Vec<Problem> {
    match compile(stages) {
        Ok(_) => panic!("expected problems"),
        Err(p) => p,
    }
}

async fn run_with(stages: Value, input: Value, artifacts: Option<PathBuf>) -> RunRecord {
    let p = compile(stages).unwrap_or_else(|p| panic!("does not compile: {p:#?}"));
    let prepared = fm_core::prepare(&p, input, &SecretSource::empty()).unwrap();
    let opts = RunOptions {
        artifacts_dir: artifacts,
        ..RunOptions::default()
    };
    let sink = |_: &fm_core::Event| {};
    fm_core::run(&p, prepared, opts, &sink).await
}

/// One pattern_match stage over `input.evidence`.
async fn matched(config: Value, evidence: Value) -> Value {
    let mut config = config;
    config["evidence"] = json!({
        "logs": "{{input.evidence.logs | default(none)}}",
        "metrics": "{{input.evidence.metrics | default(none)}}",
        "deploys": "{{input.evidence.deploys | default(none)}}",
    });
    let rec = run_with(
        json!([{"id": "m", "component": "pattern_match", "config": config}]),
        json!({"evidence": evidence}),
        None,
    )
    .await;
    let stage = rec.stages.iter().find(|s| s.id == "m").unwrap();
    assert_eq!(
        stage.status.as_str(),
        "succeeded",
        "{:?}",
        serde_json::to_value(stage).unwrap()
    );
    stage.output.clone().unwrap()
}

fn prometheus(series: &[(&str, &[f64])]) -> Value {
    json!({"status": "success", "data": {"resultType": "matrix", "result": series.iter().map(|(name, values)| json!({
        "metric": {"__name__": name, "service": "payment-service"},
        "values": values.iter().enumerate().map(|(i, v)| json!([1_700_000_000 + 60 * i, v.to_string()])).collect::<Vec<_>>(),
    })).collect::<Vec<_>>()}})
}

fn oom_logs(n: usize) -> Value {
    let mut logs: Vec<Value> = (0..n)
        .map(|i| json!({"level": "error", "message": format!("java.lang.OutOfMemoryError: Java heap space (batch {i})")}))
        .collect();
    logs.push(json!({"level": "error", "message": "Settlement batch aborted: request timed out"}));
    Value::Array(logs)
}

#[tokio::test]
async fn the_shipped_library_recognises_a_memory_leak() {
    let out = matched(
        json!({"library": LIBRARY}),
        json!({
            "logs": {"logs": oom_logs(14), "total": 15},
            "metrics": prometheus(&[("process_memory_percent", &[81.7, 88.0, 94.0])]),
            "deploys": [{"id": "dep-1", "version": "v2.8.3", "age_minutes": 4320}],
        }),
    )
    .await;
    assert_eq!(out["matched"], true, "{out:#}");
    assert_eq!(out["pattern"]["id"], "jvm-heap-exhaustion");
    assert_eq!(out["pattern"]["issue_type"], "OOM");
    assert_eq!(out["pattern"]["remediation"], "service_restart");
    assert_eq!(out["pattern"]["confidence"], "high");
    assert_eq!(out["signals"]["oom"], 14);
    assert_eq!(out["ambiguous"], false);
    let candidates = out["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 4, "every pattern is reported");
    assert!(candidates[1..].iter().all(|c| c["matched"] == false));
}

#[tokio::test]
async fn a_fresh_deploy_blocks_the_restart_pattern() {
    let out = matched(
        json!({"library": LIBRARY}),
        json!({
            "logs": oom_logs(5),
            "metrics": prometheus(&[("process_memory_percent", &[60.0, 95.0])]),
            "deploys": [{"id": "dep-9", "version": "v3.0.0", "age_minutes": 12}],
        }),
    )
    .await;
    assert_eq!(out["matched"], false, "{out:#}");
    let oom = &out["candidates"][0];
    assert_eq!(oom["held"], 2);
    assert_eq!(oom["conditions"][2]["held"], false);
    assert!(out["summary"]
        .as_str()
        .unwrap()
        .contains("closest: 'jvm-heap-exhaustion', 2 of 3"));
}

#[tokio::test]
async fn missing_metrics_mean_no_match_and_the_summary_says_why() {
    let out = matched(
        json!({"library": LIBRARY}),
        json!({"logs": oom_logs(20), "metrics": null, "deploys": []}),
    )
    .await;
    assert_eq!(out["matched"], false);
    assert_eq!(
        out["available"],
        json!({"logs": true, "metrics": false, "deploys": true})
    );
    let memory = &out["candidates"][0]["conditions"][1];
    assert_eq!(memory["held"], false);
    assert!(memory["error"].is_string(), "{memory}");
    assert!(out["summary"]
        .as_str()
        .unwrap()
        .ends_with("(partial evidence: metrics unavailable)"));
}

#[tokio::test]
async fn patterns_that_disagree_on_the_issue_type_are_ambiguous() {
    let config = json!({
        "log_signals": {"oom": ["OutOfMemoryError"]},
        "patterns": [
            {"id": "a", "issue_type": "OOM", "conditions": ["evidence.log_counts.oom > 0"], "remediation": "service_restart", "confidence": "high"},
            {"id": "b", "issue_type": "bad_deploy", "conditions": ["evidence.deploys | length > 0"], "remediation": "rollback_deploy", "confidence": "high"},
            {"id": "c", "issue_type": "OOM", "conditions": ["evidence.log_messages | length > 0"], "confidence": "low"}
        ]
    });
    let out = matched(
        config.clone(),
        json!({"logs": oom_logs(1), "deploys": [{"id": "d", "age_minutes": 5}]}),
    )
    .await;
    assert_eq!(out["matched"], false);
    assert_eq!(out["ambiguous"], true);
    assert_eq!(out["pattern"], Value::Null);
    // Without the deploy, 'a' and 'c' agree on OOM: the first in file order wins.
    let out = matched(config, json!({"logs": oom_logs(1), "deploys": []})).await;
    assert_eq!(out["matched"], true);
    assert_eq!(out["pattern"]["id"], "a");
}

#[tokio::test]
async fn min_conditions_and_templates_with_braces() {
    let config = json!({"patterns": [{
        "id": "p", "issue_type": "x", "confidence": "medium", "min_conditions": 2,
        "conditions": [
            {"name": "many lines", "expr": "{{ evidence.logs | length >= 3 }}"},
            "evidence.metric_stats.up.min == 0",
            "'timed out' in evidence.log_text"
        ]
    }]});
    let out = matched(config, json!({"logs": oom_logs(3)})).await;
    assert_eq!(out["matched"], true, "{out:#}");
    assert_eq!(out["candidates"][0]["held"], 2);
    assert_eq!(
        out["pattern"]["held_conditions"],
        json!(["many lines", "'timed out' in evidence.log_text"])
    );
}

fn one_problem(stages: Value) -> Problem {
    let mut p = problems(stages);
    assert_eq!(p.len(), 1, "{p:#?}");
    p.remove(0)
}

fn stage(config: Value) -> Value {
    json!([{"id": "m", "component": "pattern_match", "config": config}])
}

#[test]
fn a_missing_library_is_a_validation_problem() {
    let p = one_problem(stage(
        json!({"library": "runbooks/nope.json", "evidence": {"logs": "{{input}}"}}),
    ));
    assert_eq!(p.code, "invalid_library");
    assert_eq!(p.path, "stages[0].config.library");
    assert!(p.message.contains("runbooks/nope.json"), "{}", p.message);
    assert!(p.hint.unwrap().contains("current directory"));
}

#[test]
fn broken_patterns_are_validation_problems_with_their_location() {
    let problems = problems(stage(json!({
        "evidence": {"logs": "{{input}}"},
        "log_signals": {"oom": ["OutOfMemoryError"]},
        "patterns": [
            {"id": "syntax", "issue_type": "x", "confidence": "high", "conditions": ["evidence.logs | length >"]},
            {"id": "reads-input", "issue_type": "x", "confidence": "high", "conditions": ["input.flapping"]},
            {"id": "signal", "issue_type": "x", "confidence": "high", "conditions": ["evidence.log_counts.omm > 1"]},
            {"id": "key", "issue_type": "x", "confidence": "high", "conditions": ["evidence.metric_stat.up.max > 1"]},
            {"id": "conf", "issue_type": "x", "confidence": "sure", "conditions": ["true"], "remedation": "x"}
        ]
    })));
    let text: Vec<String> = problems
        .iter()
        .map(|p| format!("{} {}", p.path, p.message))
        .collect();
    let all = text.join("\n");
    assert!(
        all.contains("stages[0].config.patterns[0].conditions[0]"),
        "{all}"
    );
    assert!(
        all.contains("may read only `evidence`, not `input`"),
        "{all}"
    );
    assert!(
        all.contains("log signal 'omm' is not defined in log_signals; did you mean 'oom'?"),
        "{all}"
    );
    assert!(
        all.contains(
            "`evidence.metric_stat` is not part of the evidence; did you mean 'metric_stats'?"
        ),
        "{all}"
    );
    assert!(
        all.contains("confidence 'sure' is not one of high, medium, low"),
        "{all}"
    );
    assert!(
        all.contains("unknown key 'remedation' (did you mean 'remediation'?)"),
        "{all}"
    );
}

#[test]
fn evidence_is_required_and_must_be_an_object() {
    let p = one_problem(stage(json!({"library": LIBRARY})));
    assert_eq!(p.code, "missing_key");
    let p = one_problem(stage(json!({"library": LIBRARY, "evidence": "{{input}}"})));
    assert_eq!(p.code, "wrong_type");
}

#[test]
fn the_shipped_pipeline_validates() {
    let r = fm_components::registry_with(fm_components::LlmEnv::default());
    // The library path in the pipeline is relative to the repository root.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let text =
        std::fs::read_to_string(root.join("pipelines/devops-incident-response.pipeline.json"))
            .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let library = root.join("runbooks/known-issues.json");
    let mut doc = doc;
    for s in doc["stages"].as_array_mut().unwrap() {
        if s["component"] == "pattern_match" {
            s["config"]["library"] = json!(library.display().to_string());
        }
    }
    let compiled = fm_core::compile(
        &doc,
        &CompileOptions {
            registry: &r,
            secret_available: None,
        },
    );
    assert!(compiled.is_ok(), "{:#?}", compiled.err());
}

// ---------------------------------------------------------------------------------------------
// write_artifact

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "fm-artifact-test-{name}-{}-{}",
        std::process::id(),
        fastrand::u64(..)
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[tokio::test]
async fn write_artifact_writes_inside_the_artifacts_directory() {
    let dir = temp_dir("ok");
    let rec = run_with(
        json!([{"id": "w", "component": "write_artifact", "config": {
            "path": "reports/{{input.id}}.md", "content": "# {{input.title}}\n"}}]),
        json!({"id": "incident-1", "title": "Hello"}),
        Some(dir.join("run")),
    )
    .await;
    let out = rec.stages[0].output.clone().unwrap();
    let path = dir.join("run/reports/incident-1.md");
    assert_eq!(out["path"], path.display().to_string());
    assert_eq!(out["file"], "reports/incident-1.md");
    assert_eq!(out["bytes"], 8);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "# Hello\n");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn write_artifact_refuses_a_path_that_leaves_the_directory() {
    let dir = temp_dir("traversal");
    let rec = run_with(
        json!([{"id": "w", "component": "file", "on_error": "continue", "config": {
            "path": "{{input.id}}.md", "content": "x"}}]),
        json!({"id": "../../escaped"}),
        Some(dir.join("run")),
    )
    .await;
    let s = &rec.stages[0];
    assert_eq!(s.status.as_str(), "failed");
    let e = serde_json::to_value(s).unwrap();
    assert_eq!(e["error"]["kind"], "config", "{e}");
    assert!(
        e["error"]["message"].as_str().unwrap().contains("'..'"),
        "{e}"
    );
    assert!(!dir.join("escaped.md").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn a_literal_bad_artifact_path_is_a_validation_problem() {
    let p = one_problem(
        json!([{"id": "w", "component": "write_artifact", "config": {
        "path": "/etc/passwd", "content": "x"}}]),
    );
    assert_eq!(p.code, "invalid_value");
    assert_eq!(p.path, "stages[0].config.path");
}
