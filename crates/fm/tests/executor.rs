//! Executor behaviour that depends on time or repetition, beyond the fixtures: no wave barrier,
//! concurrency, cancellation, deterministic failure reports, the event stream.
#![allow(clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use fm_core::{CancelSignal, Event, EventKind, EventSink, RunOptions, RunStatus, SecretSource};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stage_starts_when_its_own_dependencies_settle_not_a_whole_wave() {
    // fast -> after-fast; slow runs alongside. after-fast must start long before slow ends.
    let doc = json!({"name": "w", "stages": [
        {"id": "fast", "component": "delay", "config": {"ms": 10}},
        {"id": "slow", "component": "delay", "config": {"ms": 400}},
        {"id": "after-fast", "component": "delay", "depends_on": ["fast"], "config": {"ms": 10}},
    ]});
    let r = support::run_doc(&doc, json!({}), RunOptions::default()).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    let started = r.stage("after-fast").unwrap().started_at_ms.unwrap();
    let slow_end = r.stage("slow").unwrap().started_at_ms.unwrap()
        + r.stage("slow").unwrap().duration_ms.unwrap();
    assert!(
        started + 200 < slow_end,
        "after-fast started at {started} ms, slow ended at {slow_end} ms"
    );
    // Independent stages overlap: the run takes about as long as the slowest, not the sum.
    assert!(r.duration_ms < 400 + 300, "run took {} ms", r.duration_ms);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_concurrency_limit_is_respected() {
    let stages: Vec<_> = (0..6)
        .map(|i| json!({"id": format!("s{i}"), "component": "delay", "config": {"ms": 100}}))
        .collect();
    let doc = json!({"name": "c", "stages": stages});
    let opts = RunOptions {
        concurrency: 2,
        ..RunOptions::default()
    };
    let r = support::run_doc(&doc, json!({}), opts).await;
    assert_eq!(r.status, RunStatus::Succeeded);
    // 6 stages of 100 ms, 2 at a time: at least 3 rounds.
    assert!(
        r.duration_ms >= 290,
        "6 x 100 ms with concurrency 2 took only {} ms",
        r.duration_ms
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_stops_running_stages_and_starts_nothing_new() {
    let doc = json!({"name": "c", "stages": [
        {"id": "long", "component": "delay", "config": {"ms": 10000}},
        {"id": "next", "component": "logger", "depends_on": ["long"], "config": {"message": "never"}},
    ]});
    let cancel = CancelSignal::new();
    let c2 = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        c2.cancel();
    });
    let opts = RunOptions {
        cancel,
        ..RunOptions::default()
    };
    let began = std::time::Instant::now();
    let r = support::run_doc(&doc, json!({}), opts).await;
    assert!(
        began.elapsed() < Duration::from_secs(2),
        "cancellation must be prompt"
    );
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(
        r.stage("long").unwrap().status,
        fm_core::StageStatus::Cancelled
    );
    let next = r.stage("next").unwrap();
    assert_eq!(next.status, fm_core::StageStatus::Cancelled);
    assert_eq!(
        next.attempts, 0,
        "a stage that never started is not counted as run"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reported_failure_is_the_same_every_time() {
    // Many stages fail at the same moment; the report must not depend on polling order.
    let mut stages = vec![json!({"id": "gate", "component": "delay", "config": {"ms": 5}})];
    for i in (0..8).rev() {
        stages.push(json!({"id": format!("fail-{i}"), "component": "test_flaky", "depends_on": ["gate"], "config": {"kind": "data"}}));
    }
    let doc = json!({"name": "d", "stages": stages});
    for _ in 0..20 {
        let r = support::run_doc(&doc, json!({}), RunOptions::default()).await;
        let e = r.error.unwrap();
        assert_eq!(
            e.stage.as_deref(),
            Some("fail-7"),
            "the first failing stage in file order"
        );
    }
}

struct Collect(Arc<Mutex<Vec<Event>>>);
impl EventSink for Collect {
    fn emit(&self, e: &Event) {
        self.0.lock().unwrap().push(e.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_are_numbered_in_order_and_the_record_is_their_fold() {
    let doc = json!({"name": "e", "stages": [
        {"id": "a", "component": "test_flaky", "retry": {"max_attempts": 2, "delay_ms": 1}, "config": {"succeed_on_attempt": 2}},
        {"id": "b", "component": "logger", "depends_on": ["a"], "config": {"message": "hi {{stages.a.attempts}}"}},
    ]});
    let p = support::compile(&doc).unwrap();
    let prepared = fm_core::prepare(&p, json!({}), &SecretSource::empty()).unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let r = fm_core::run(
        &p,
        prepared,
        RunOptions::default(),
        &Collect(events.clone()),
    )
    .await;
    let events = events.lock().unwrap();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64);
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| match &e.kind {
            EventKind::RunStarted { .. } => "run_started",
            EventKind::StageStarted { .. } => "stage_started",
            EventKind::StageRetrying { .. } => "stage_retrying",
            EventKind::StageSucceeded { .. } => "stage_succeeded",
            EventKind::Log { .. } => "log",
            EventKind::RunFinished { .. } => "run_finished",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "run_started",
            "stage_started",
            "stage_retrying",
            "stage_started",
            "stage_succeeded",
            "stage_started",
            "log",
            "stage_succeeded",
            "run_finished"
        ]
    );
    assert_eq!(r.stage("a").unwrap().attempts, 2);
    assert_eq!(r.logs[0].message, "hi 2");
}

#[test]
fn input_schema_violations_are_all_listed_before_anything_runs() {
    let doc = json!({"name": "s",
        "input": {"type": "object", "required": ["id", "payload"], "properties": {
            "id": {"type": "string"}, "retries": {"type": "integer", "default": 2}}},
        "stages": [{"id": "a", "component": "logger", "config": {"message": "{{input.retries}}"}}]});
    let p = support::compile(&doc).unwrap();
    let err = fm_core::prepare(&p, json!({"id": 5}), &SecretSource::empty())
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("payload"), "{text}");
    assert!(text.contains("input.id"), "{text}");
    let ok = fm_core::prepare(
        &p,
        json!({"id": "x", "payload": {}}),
        &SecretSource::empty(),
    )
    .unwrap();
    assert_eq!(ok.input["retries"], 2, "schema defaults are filled in");
}
