//! Resume from a journal (never act twice) and remediation budgets, at the engine level.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use fm_core::durability::{JournaledStage, MemoryLedger, ResumeState};
use fm_core::model::ConfigReader;
use fm_core::{
    CompileOptions, Component, ErrorKind, RunOptions, RunStatus, SecretSource, Source,
    StageContext, StageError, StageRuntime, StageStatus,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};

/// `test_act`: counts its executions (an "action" with a side effect); not idempotent unless
/// the stage says so.
struct Act(Arc<AtomicUsize>);

#[derive(Debug)]
struct ActRuntime(Arc<AtomicUsize>);

impl Component for Act {
    fn name(&self) -> &'static str {
        "test_act"
    }
    fn summary(&self) -> &'static str {
        "test"
    }
    fn compile(&self, _r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        Some(Arc::new(ActRuntime(self.0.clone())))
    }
}

impl StageRuntime for ActRuntime {
    fn idempotent(&self) -> bool {
        false
    }
    fn execute<'a>(
        &'a self,
        _cx: &'a StageContext<'a>,
    ) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(json!({"executions": n}))
        })
    }
}

async fn run(doc: &Value, counter: &Arc<AtomicUsize>, opts: RunOptions) -> fm_core::RunRecord {
    let mut registry = support::registry();
    registry.register(Arc::new(Act(counter.clone())));
    let source = Source::from_text("p.pipeline.json", doc.to_string());
    let p = fm_core::load(
        &source,
        &CompileOptions {
            registry: &registry,
            secret_available: None,
        },
    )
    .unwrap();
    let prepared = fm_core::prepare(
        &p,
        json!({"service": "payment-service"}),
        &SecretSource::empty(),
    )
    .unwrap();
    fm_core::run(&p, prepared, opts, &support::Quiet).await
}

fn remediation() -> Value {
    json!({"name": "r", "stages": [
        {"id": "analyze", "component": "json_transform", "config": {"template": {"issue": "OOM"}}},
        {"id": "remediate", "component": "trycatch", "depends_on": ["analyze"],
         "config": {"try": ["restart", "verify"], "catch": ["escalate"]}},
        {"id": "restart", "component": "test_act", "budget": {"key": "restart:{{input.service}}", "max": 1, "per": "1h"}, "config": {}},
        {"id": "verify", "component": "logger", "depends_on": ["restart"], "config": {"message": "verify"}},
        {"id": "escalate", "component": "logger", "config": {"message": "escalate: {{stages.remediate.output.error.kind}}"}},
    ]})
}

#[tokio::test]
async fn a_non_idempotent_stage_in_flight_at_a_crash_is_never_run_again() {
    let counter = Arc::new(AtomicUsize::new(0));
    let resume = ResumeState {
        settled: HashMap::from([(
            "analyze".to_owned(),
            JournaledStage {
                succeeded: true,
                output: Some(json!({"issue": "OOM"})),
                error: None,
                attempts: 1,
                duration_ms: 3,
            },
        )]),
        in_flight: HashSet::from(["restart".to_owned()]),
    };
    let r = run(
        &remediation(),
        &counter,
        RunOptions {
            resume: Some(resume),
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(
        counter.load(Ordering::SeqCst),
        0,
        "the restart must not be sent again"
    );
    let restart = r.stage("restart").unwrap();
    assert_eq!(restart.status, StageStatus::Failed);
    assert_eq!(
        restart.error.as_ref().unwrap().kind,
        ErrorKind::OutcomeUnknown
    );
    assert_eq!(
        r.stage("escalate").unwrap().status,
        StageStatus::Succeeded,
        "the catch escalates"
    );
    assert_eq!(r.logs.last().unwrap().message, "escalate: outcome_unknown");
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(
        r.stage("analyze").unwrap().output,
        Some(json!({"issue": "OOM"}))
    );
}

#[tokio::test]
async fn settled_stages_are_restored_and_idempotent_in_flight_ones_rerun() {
    let counter = Arc::new(AtomicUsize::new(0));
    let doc = json!({"name": "r", "stages": [
        {"id": "act", "component": "test_act", "config": {}},
        {"id": "check", "component": "test_act", "idempotent": true, "depends_on": ["act"], "config": {}},
        {"id": "report", "component": "logger", "depends_on": ["check"], "config": {"message": "act ran {{stages.act.output.executions}}x"}},
    ]});
    let resume = ResumeState {
        settled: HashMap::from([(
            "act".to_owned(),
            JournaledStage {
                succeeded: true,
                output: Some(json!({"executions": 1})),
                error: None,
                attempts: 1,
                duration_ms: 1,
            },
        )]),
        in_flight: HashSet::from(["check".to_owned()]),
    };
    let r = run(
        &doc,
        &counter,
        RunOptions {
            resume: Some(resume),
            ..RunOptions::default()
        },
    )
    .await;
    assert_eq!(r.status, RunStatus::Succeeded);
    assert_eq!(
        counter.load(Ordering::SeqCst),
        1,
        "only the idempotent in-flight stage ran again"
    );
    assert_eq!(r.logs[0].message, "act ran 1x");
}

#[tokio::test]
async fn a_budget_refuses_the_action_once_used_up_and_the_catch_escalates() {
    let counter = Arc::new(AtomicUsize::new(0));
    let ledger = Arc::new(MemoryLedger::default());
    let opts = || RunOptions {
        budgets: Some(ledger.clone()),
        ..RunOptions::default()
    };
    let first = run(&remediation(), &counter, opts()).await;
    assert_eq!(
        first.stage("restart").unwrap().status,
        StageStatus::Succeeded
    );
    let second = run(&remediation(), &counter, opts()).await;
    let restart = second.stage("restart").unwrap();
    assert_eq!(
        restart.error.as_ref().unwrap().kind,
        ErrorKind::BudgetExceeded
    );
    assert!(restart
        .error
        .as_ref()
        .unwrap()
        .message
        .contains("restart:payment-service"));
    assert_eq!(
        counter.load(Ordering::SeqCst),
        1,
        "the second restart was never executed"
    );
    assert_eq!(
        second.logs.last().unwrap().message,
        "escalate: budget_exceeded"
    );
}
