//! How a run stops (the executor, in-process): what a stop starts and what it cancels before and
//! after a non-idempotent stage has acted, the cleanup's time bound and its abandonment, the
//! outcome a cancel asks for, and the pipeline's outcome declaration.
#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use fm_core::{CancelRequest, CancelSignal, Cleanup, RunOptions, RunRecord, RunStatus};
use serde_json::{json, Value};

/// `gate` (idempotent, `gate_ms`) then a trycatch: try `act` (non-idempotent, quick) then `wait`
/// (long); catch `tell` (`tell_ms`); finally `log`. And `after`, outside, after the trycatch.
fn pipeline(gate_ms: u64, tell_ms: u64) -> Value {
    json!({"name": "stop", "stages": [
        {"id": "gate", "component": "delay", "config": {"ms": gate_ms}},
        {"id": "scope", "component": "trycatch", "depends_on": ["gate"],
         "config": {"try": ["act", "wait"], "catch": ["tell"], "finally": ["log"]}},
        {"id": "act", "component": "delay", "idempotent": false, "config": {"ms": 10}},
        {"id": "wait", "component": "delay", "depends_on": ["act"], "config": {"ms": 10000}},
        {"id": "tell", "component": "delay", "idempotent": false, "config": {"ms": tell_ms}},
        {"id": "log", "component": "logger", "config": {"message": "attempt finished: {{ stages.scope.output.error.kind }}"}},
        {"id": "after", "component": "logger", "depends_on": ["scope"], "config": {"message": "never"}},
    ]})
}

async fn run_and_stop(doc: Value, opts: RunOptions, stop: impl FnOnce(&CancelSignal)) -> RunRecord {
    let cancel = opts.cancel.clone();
    let handle = tokio::spawn(async move { support::run_doc(&doc, json!({}), opts).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop(&cancel);
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .expect("the run ended")
        .unwrap()
}

fn status(r: &RunRecord, id: &str) -> &'static str {
    r.stage(id).unwrap().status.as_str()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_acting_a_cancel_runs_catch_and_finally_and_nothing_else() {
    let r = run_and_stop(pipeline(10, 20), RunOptions::default(), |c| {
        c.cancel_with(CancelRequest::because("test"))
    })
    .await;
    assert_eq!(r.status, RunStatus::Cancelled);
    let stop = r.stop.clone().unwrap();
    assert_eq!(stop.cause, "test");
    assert_eq!(stop.acted, ["act"]);
    assert_eq!(stop.cleanup, Cleanup::Completed);
    assert_eq!(stop.cleanup_stages, ["tell", "log"]);
    assert_eq!(status(&r, "wait"), "cancelled");
    assert_eq!(status(&r, "tell"), "succeeded");
    assert_eq!(status(&r, "log"), "succeeded");
    assert_eq!(status(&r, "scope"), "succeeded", "the catch handled it");
    assert_eq!(
        status(&r, "after"),
        "cancelled",
        "nothing outside the scope starts"
    );
    // The catch saw why: the interrupted try stage and the cause.
    assert_eq!(r.logs[0].message, "attempt finished: cancelled");
    let err = &r.stage("scope").unwrap().output.as_ref().unwrap()["error"];
    assert_eq!(err["stage"], "wait");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .contains("(test) while it ran"));
    assert!(
        r.error.as_ref().unwrap().message.contains("'tell', 'log'"),
        "{:?}",
        r.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_acting_a_cancel_stops_everything_and_records_the_asked_outcome() {
    let r = run_and_stop(pipeline(5000, 20), RunOptions::default(), |c| {
        c.cancel_with(
            CancelRequest::because("the incident resolved").with_outcome("resolved_before_action"),
        )
    })
    .await;
    assert_eq!(r.status, RunStatus::Cancelled);
    let stop = r.stop.clone().unwrap();
    assert_eq!(stop.cleanup, Cleanup::NotNeeded);
    assert!(stop.acted.is_empty());
    for id in ["act", "tell", "log", "after"] {
        assert_eq!(status(&r, id), "cancelled", "{id}");
    }
    assert_eq!(r.outcome.as_deref(), Some("resolved_before_action"));
    assert_eq!(r.outcome_reason.as_deref(), Some("the incident resolved"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cleanup_is_bounded_by_its_time() {
    let opts = RunOptions {
        cleanup_timeout: Duration::from_millis(150),
        ..RunOptions::default()
    };
    let started = std::time::Instant::now();
    let r = run_and_stop(pipeline(10, 10_000), opts, CancelSignal::cancel).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let stop = r.stop.clone().unwrap();
    assert_eq!(stop.cleanup, Cleanup::TimedOut);
    assert_eq!(stop.cleanup_missed, ["tell", "log"], "{stop:?}");
    assert_eq!(status(&r, "tell"), "cancelled");
    assert!(
        r.error.as_ref().unwrap().message.contains("ran out"),
        "{:?}",
        r.error
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_abandons_the_cleanup() {
    let r = run_and_stop(pipeline(10, 10_000), RunOptions::default(), |c| {
        c.cancel();
        std::thread::sleep(Duration::from_millis(100));
        c.abandon_cleanup();
    })
    .await;
    let stop = r.stop.clone().unwrap();
    assert_eq!(stop.cleanup, Cleanup::Abandoned);
    assert_eq!(status(&r, "tell"), "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_time_limit_and_a_failure_elsewhere_give_cleanup_time_too() {
    let opts = RunOptions {
        timeout: Some(Duration::from_millis(200)),
        ..RunOptions::default()
    };
    let r = support::run_doc(&pipeline(10, 20), json!({}), opts).await;
    assert_eq!(r.status, RunStatus::TimedOut);
    assert_eq!(r.stop.as_ref().unwrap().cleanup, Cleanup::Completed);
    assert_eq!(status(&r, "tell"), "succeeded");
    assert_eq!(r.logs[0].message, "attempt finished: timeout");

    let mut doc = pipeline(10, 20);
    doc["stages"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "boom", "component": "test_flaky", "depends_on": ["gate"], "config": {"kind": "data"}}));
    doc["stages"][0]["config"]["ms"] = json!(10);
    let r = support::run_doc(&doc, json!({}), RunOptions::default()).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.error.as_ref().unwrap().stage.as_deref(), Some("boom"));
    let stop = r.stop.clone().unwrap();
    assert_eq!(stop.cause, "stage 'boom' failed");
    // `boom` fails as the scope starts: whether `act` had started by then decides the cleanup.
    if stop.acted.is_empty() {
        assert_eq!(stop.cleanup, Cleanup::NotNeeded);
    } else {
        assert_eq!(stop.cleanup, Cleanup::Completed);
        assert_eq!(status(&r, "tell"), "succeeded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outcome_declaration_is_evaluated_whatever_the_status() {
    let doc = json!({"name": "o",
        "outcome": {"values": ["ok", "broken"],
                    "value": "{{ 'ok' if execution.status == 'succeeded' else ('broken' if execution.status == 'failed' else 'weird') }}",
                    "reason": "{{ execution.error.message if execution.error else 'all good' }}"},
        "stages": [{"id": "x", "component": "test_flaky", "config": {"kind": "data", "succeed_on_attempt": "{{ 1 if input.ok else 0 }}"}}],
        "output": {"o": "{{ execution.outcome }}"}});
    let mut doc_ok = doc.clone();
    doc_ok["stages"][0]["config"]["succeed_on_attempt"] = json!(1);
    let r = support::run_doc(&doc_ok, json!({}), RunOptions::default()).await;
    assert_eq!(r.outcome.as_deref(), Some("ok"));
    assert_eq!(r.outcome_reason.as_deref(), Some("all good"));
    assert_eq!(r.output.as_ref().unwrap()["o"], "ok");
    let mut doc_bad = doc.clone();
    doc_bad["stages"][0]["config"]["succeed_on_attempt"] = json!(0);
    let r = support::run_doc(&doc_bad, json!({}), RunOptions::default()).await;
    assert_eq!(r.status, RunStatus::Failed);
    assert_eq!(r.outcome.as_deref(), Some("broken"));
    assert!(r.outcome_reason.unwrap().contains("simulated failure"));

    // A value outside the declared ones is no outcome, with a warning.
    let cancel = CancelSignal::new();
    cancel.cancel();
    let opts = RunOptions {
        cancel,
        ..RunOptions::default()
    };
    let r = support::run_doc(&doc_ok, json!({}), opts).await;
    assert_eq!(r.status, RunStatus::Cancelled);
    assert_eq!(r.outcome, None);
    assert!(
        r.warnings.iter().any(|w| w
            .message
            .contains("'weird' is not one of its declared values")),
        "{:?}",
        r.warnings
    );
}
