//! Fixture tests: every file in tests/pipelines/ is a case with a pipeline, an input, and the
//! expected (timing-free) run record. Adding a case is adding a file; `UPDATE_FIXTURES=1`
//! rewrites the expectations (review the diff!).
#![allow(clippy::unwrap_used)]

mod support;

use std::path::PathBuf;
use std::time::Duration;

use fm_core::RunOptions;
use serde_json::Value;

fn cases_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/pipelines")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_pipeline_fixture_runs_as_expected() {
    let update = std::env::var_os("UPDATE_FIXTURES").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the fixture folder to hold the cases"
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let mut case: Value = serde_json::from_str(&text).unwrap();
        let input = case
            .get("input")
            .cloned()
            .unwrap_or_else(|| serde_json::json!({}));
        let mut opts = RunOptions::default();
        if let Some(ms) = case.pointer("/options/timeout_ms").and_then(Value::as_u64) {
            opts.timeout = Some(Duration::from_millis(ms));
        }
        if let Some(c) = case.pointer("/options/concurrency").and_then(Value::as_u64) {
            opts.concurrency = c as usize;
        }
        let record = support::run_doc(&case["pipeline"], input, opts).await;
        let got = support::normalize(&record);
        if update {
            case["expect"] = got;
            std::fs::write(file, serde_json::to_string_pretty(&case).unwrap() + "\n").unwrap();
        } else if case.get("expect") != Some(&got) {
            failures.push(format!(
                "{}:\n  expected: {}\n  got:      {}",
                file.display(),
                case.get("expect").map(Value::to_string).unwrap_or_default(),
                got
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
