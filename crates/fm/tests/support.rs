//! Shared helpers for the fm crate's tests: a registry with deterministic test components, and
//! running a pipeline in-process.
#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;

use fm_core::model::ConfigReader;
use fm_core::{
    CompileOptions, Component, ErrorKind, EventSink, RunOptions, RunRecord, SecretSource, Source,
    StageContext, StageError, StageRuntime,
};
use futures::future::BoxFuture;
use serde_json::{json, Value};

/// `test_flaky`: fails until attempt `succeed_on_attempt` (0 = always fails), with `kind`
/// (`connection` retryable by default; `data` not retryable). Deterministic: it depends only on
/// the attempt number.
pub struct Flaky;

#[derive(Debug)]
struct FlakyRuntime {
    succeed_on: u64,
    kind: ErrorKind,
    output: Option<Value>,
}

impl Component for Flaky {
    fn name(&self) -> &'static str {
        "test_flaky"
    }
    fn summary(&self) -> &'static str {
        "test component"
    }
    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let succeed_on = r.u64("succeed_on_attempt", &[]).unwrap_or(0);
        let kind = match r.string("kind", &[]).as_deref() {
            Some("data") => ErrorKind::Data,
            _ => ErrorKind::Connection,
        };
        let output = r.raw("output", &[]).map(|(_, v)| v.clone());
        Some(Arc::new(FlakyRuntime {
            succeed_on,
            kind,
            output,
        }))
    }
}

impl StageRuntime for FlakyRuntime {
    fn idempotent(&self) -> bool {
        true
    }
    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            if self.succeed_on != 0 && u64::from(cx.attempt) >= self.succeed_on {
                Ok(self
                    .output
                    .clone()
                    .unwrap_or_else(|| json!({"attempt": cx.attempt})))
            } else {
                Err(StageError::new(
                    self.kind,
                    format!("simulated failure on attempt {}", cx.attempt),
                ))
            }
        })
    }
}

pub fn registry() -> fm_core::Registry {
    let mut r = fm_components::builtin_registry();
    r.register(Arc::new(Flaky));
    r
}

pub fn compile(doc: &Value) -> Result<fm_core::Pipeline, Vec<fm_core::Problem>> {
    let registry = registry();
    let source = Source::from_text(
        "test.pipeline.json",
        serde_json::to_string_pretty(doc).unwrap(),
    );
    fm_core::load(
        &source,
        &CompileOptions {
            registry: &registry,
            secret_available: None,
        },
    )
}

pub struct Quiet;
impl EventSink for Quiet {
    fn emit(&self, _e: &fm_core::Event) {}
}

pub async fn run_doc(doc: &Value, input: Value, opts: RunOptions) -> RunRecord {
    let p = compile(doc).unwrap_or_else(|problems| {
        panic!("pipeline did not compile: {problems:#?}");
    });
    let prepared = fm_core::prepare(&p, input, &SecretSource::empty()).unwrap();
    fm_core::run(&p, prepared, opts, &Quiet).await
}

/// The parts of a record that do not depend on timing: what a fixture asserts.
pub fn normalize(r: &RunRecord) -> Value {
    let stages: serde_json::Map<String, Value> = r
        .stages
        .iter()
        .map(|s| {
            let mut o = json!({"status": s.status, "attempts": s.attempts});
            if let Some(out) = &s.output {
                o["output"] = out.clone();
            }
            if let Some(e) = &s.error {
                o["error"] = json!({"kind": e.kind, "message": e.message});
            }
            if let Some(sk) = &s.skip_reason {
                o["skipped"] = json!({"code": sk.code, "message": sk.message});
            }
            (s.id.clone(), o)
        })
        .collect();
    json!({
        "status": r.status,
        "error": r.error,
        "output": r.output,
        "stages": stages,
        "logs": r.logs.iter().map(|l| format!("[{}] {}: {}", l.level.as_str(), l.stage.as_deref().unwrap_or("-"), l.message)).collect::<Vec<_>>(),
        "warnings": r.warnings.iter().map(|w| format!("{}: {}", w.stage.as_deref().unwrap_or("-"), w.message)).collect::<Vec<_>>(),
    })
}
