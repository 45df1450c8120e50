//! Running a compiled pipeline: input checks, secrets, preflight, the driver, the run's output.

mod attempt;
mod cancel;
mod driver;
mod emit;
mod outcome;
mod reach;
pub mod scope;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use fm_expr::Value;
use serde_json::Map;

use crate::events::{EventKind, EventSink, RunError};
use crate::model::{OutputSpec, Pipeline};
use crate::record::{RecordBuilder, RunRecord};
use crate::secrets::{SecretProblems, SecretSource, Secrets};
use crate::state::RunStatus;

pub use cancel::{CancelRequest, CancelSignal};
pub use emit::redact;
pub use scope::OverlayScope;

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Generated when `None`.
    pub run_id: Option<String>,
    /// At most this many stages execute at once.
    pub concurrency: usize,
    /// The whole run's time limit.
    pub timeout: Option<Duration>,
    /// After a stop (cancel, time limit, uncaught failure) that comes once a non-idempotent
    /// stage has started: how long the catch and finally stages of the running trycatch scopes
    /// get to run (to tell people) before everything is stopped. Zero: no cleanup.
    pub cleanup_timeout: Duration,
    pub dry_run: bool,
    pub artifacts_dir: Option<PathBuf>,
    pub cancel: CancelSignal,
    /// Continue an interrupted run from its journal instead of starting afresh.
    pub resume: Option<crate::durability::ResumeState>,
    /// Where remediation budgets are checked and consumed. Without one, budgets hold within
    /// this process only.
    pub budgets: Option<Arc<dyn crate::durability::BudgetLedger>>,
    /// Durable record of stage starts, awaited before a stage acts.
    pub journal: Option<Arc<dyn crate::durability::StartJournal>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            run_id: None,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: None,
            cleanup_timeout: DEFAULT_CLEANUP_TIMEOUT,
            dry_run: false,
            artifacts_dir: None,
            cancel: CancelSignal::new(),
            resume: None,
            budgets: None,
            journal: None,
        }
    }
}

pub const DEFAULT_CONCURRENCY: usize = 32;

/// The default [`RunOptions::cleanup_timeout`]: enough for a page and a chat message through a
/// slow network, short enough that a stuck notification does not hold a stopping run for long.
pub const DEFAULT_CLEANUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a run could not start. Nothing was executed.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("the input does not match the pipeline's input schema:\n{}", .0.join("\n"))]
    InvalidInput(Vec<String>),
    /// Secrets not provided, or too short to mask safely. Callers add where secrets come from
    /// in their configuration (`--secrets`, `secrets_file`).
    #[error("{0}")]
    Secrets(SecretProblems),
    #[error("stage '{stage}' cannot run: {message}")]
    Preflight { stage: String, message: String },
}

/// Fills JSON-Schema `default`s into the input (objects, recursively), then validates it,
/// listing every violation.
pub fn prepare_input(p: &Pipeline, mut input: Value) -> Result<Value, StartError> {
    let Some(schema) = &p.input_schema else {
        return Ok(input);
    };
    apply_defaults(&schema.raw, &mut input);
    let errors: Vec<String> = schema
        .validator
        .iter_errors(&input)
        .map(|e| {
            let at = e.instance_path().to_string();
            let at = if at.is_empty() {
                "input".to_owned()
            } else {
                format!("input{}", at.replace('/', "."))
            };
            format!("  - {at}: {e}")
        })
        .collect();
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(StartError::InvalidInput(errors))
    }
}

fn apply_defaults(schema: &Value, value: &mut Value) {
    let (Some(props), Value::Object(obj)) =
        (schema.get("properties").and_then(Value::as_object), value)
    else {
        return;
    };
    for (k, sub) in props {
        if !obj.contains_key(k) {
            if let Some(d) = sub.get("default") {
                obj.insert(k.clone(), d.clone());
            }
        }
        if let Some(child) = obj.get_mut(k) {
            apply_defaults(sub, child);
        }
    }
}

/// Everything a run needs besides the pipeline and input, resolved before it starts.
pub struct Prepared {
    pub input: Value,
    pub secrets: Secrets,
    pub env: BTreeMap<String, String>,
}

/// Input defaults and validation, secrets (only the referenced names), env, component preflight.
pub fn prepare(p: &Pipeline, input: Value, source: &SecretSource) -> Result<Prepared, StartError> {
    let input = prepare_input(p, input)?;
    let secrets = source.resolve(&p.secrets).map_err(StartError::Secrets)?;
    let env = p
        .env
        .iter()
        .filter_map(|name| std::env::var(name).ok().map(|v| (name.clone(), v)))
        .collect();
    if let Some((stage, message)) = preflight_failures(p, false).into_iter().next() {
        return Err(StartError::Preflight { stage, message });
    }
    Ok(Prepared {
        input,
        secrets,
        env,
    })
}

/// The input as a run would see it: JSON-Schema `default`s filled in (objects, recursively).
pub fn input_with_defaults(p: &Pipeline, mut input: Value) -> Value {
    if let Some(schema) = &p.input_schema {
        apply_defaults(&schema.raw, &mut input);
    }
    input
}

/// [`preflight_failures`] for a server whose runs start from known inputs (a trigger's
/// `input_defaults`, with the schema's defaults): a stage that a router reading only the input
/// leaves out for every one of them is not checked (the incident pipeline's model stages when
/// every trigger sets `analysis_mode = "rules_only"`). With no inputs, every stage is checked.
pub fn preflight_failures_for_inputs(p: &Pipeline, inputs: &[Value]) -> Vec<(String, String)> {
    if inputs.is_empty() {
        return preflight_failures(p, true);
    }
    let mut reachable = vec![false; p.stages.len()];
    for input in inputs {
        let input = input_with_defaults(p, input.clone());
        for (i, r) in reach::reachable_given(p, &input).into_iter().enumerate() {
            reachable[i] |= r;
        }
    }
    p.stages
        .iter()
        .enumerate()
        .filter(|(i, _)| reachable[*i])
        .filter_map(|(_, s)| s.runtime.preflight().err().map(|m| (s.id.clone(), m)))
        .collect()
}

/// Components' own pre-run checks (an LLM provider is configured, ...), as (stage, message).
/// Without `include_routed`, a stage only a router can start is left out: it may never run (the
/// incident pipeline's model stages in its rules-only mode), and if it does, its attempt fails.
pub fn preflight_failures(p: &Pipeline, include_routed: bool) -> Vec<(String, String)> {
    p.stages
        .iter()
        .filter(|s| include_routed || s.routed_by.is_empty())
        .filter_map(|s| s.runtime.preflight().err().map(|m| (s.id.clone(), m)))
        .collect()
}

/// Runs a prepared pipeline to the end. Every state change goes to `sink`; the returned record
/// is the fold of those same events.
pub async fn run(
    p: &Pipeline,
    prepared: Prepared,
    opts: RunOptions,
    sink: &dyn EventSink,
) -> RunRecord {
    let started = Instant::now();
    let run_id = opts
        .run_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let started_at = humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string();
    let builder = Mutex::new(RecordBuilder::new(p));
    let fan = |e: &crate::events::Event| {
        if let Ok(mut b) = builder.lock() {
            b.apply(e);
        }
        sink.emit(e);
    };
    let emitter = emit::Emitter::new(&fan, prepared.secrets.redactor().clone(), started);
    emitter.emit(EventKind::RunStarted {
        run_id: run_id.clone(),
        pipeline: p.name.clone(),
        started_at: started_at.clone(),
        input: prepared.input.clone(),
        dry_run: opts.dry_run,
    });
    let shared = scope::RunShared {
        run_id,
        pipeline: &p.name,
        started_at_rfc3339: started_at,
        started,
        input: prepared.input,
        index: &p.index,
        views: (0..p.stages.len()).map(|_| OnceLock::new()).collect(),
        provisional: (0..p.stages.len()).map(|_| Mutex::new(None)).collect(),
        secrets: prepared.secrets,
        env: prepared.env,
        dry_run: opts.dry_run,
        acted: (0..p.stages.len())
            .map(|_| AtomicBool::new(false))
            .collect(),
        end: OnceLock::new(),
        outcome: OnceLock::new(),
    };
    let ledger: Arc<dyn crate::durability::BudgetLedger> = opts
        .budgets
        .clone()
        .unwrap_or_else(|| Arc::new(crate::durability::MemoryLedger::default()));
    let env = attempt::AttemptEnv {
        shared: &shared,
        emitter: &emitter,
        dry_run: opts.dry_run,
        artifacts_dir: opts.artifacts_dir.as_deref(),
        budgets: ledger.as_ref(),
        journal: opts.journal.as_deref(),
    };
    let limits = driver::Limits {
        deadline: opts.timeout.map(|t| started + t),
        timeout_cause: opts.timeout.map_or_else(String::new, |t| {
            format!(
                "its time limit of {} elapsed",
                humantime::format_duration(t)
            )
        }),
        cleanup: opts.cleanup_timeout,
    };
    let result = driver::Driver::new(p, &env, &emitter, opts.concurrency, opts.resume.clone())
        .run(limits, &opts.cancel)
        .await;

    // The outcome is evaluated over the run as it ended (the output may read it).
    let error_value = result
        .error
        .as_ref()
        .and_then(|e| serde_json::to_value(e).ok())
        .unwrap_or(Value::Null);
    let _ = shared
        .end
        .set((Value::from(result.status.as_str()), error_value));
    let acted = result.stop.as_ref().map_or_else(
        || (0..p.stages.len()).any(|i| shared.has_acted(i)),
        |s| !s.acted.is_empty(),
    );
    let cancel_request = opts.cancel.request();
    let outcome = outcome::evaluate(
        p,
        &shared,
        &emitter,
        result.status,
        cancel_request.as_ref(),
        acted,
    );
    let _ = shared.outcome.set((
        outcome.value.clone().map_or(Value::Null, Value::String),
        outcome.reason.clone().map_or(Value::Null, Value::String),
    ));

    let (status, output, error) = match result.status {
        RunStatus::Succeeded => match evaluate_output(p, &shared) {
            Ok(out) => (RunStatus::Succeeded, Some(out), None),
            Err(message) => (
                RunStatus::Failed,
                None,
                Some(RunError {
                    stage: None,
                    kind: "output".into(),
                    message,
                }),
            ),
        },
        other => (other, None, result.error),
    };
    emitter.emit(EventKind::RunFinished {
        status,
        output,
        error,
        duration_ms: shared.elapsed_ms(),
        outcome: outcome.value,
        outcome_reason: outcome.reason,
        stop: result.stop,
    });
    drop(emitter);
    match builder.into_inner() {
        Ok(b) => b.finish(),
        Err(poisoned) => poisoned.into_inner().finish(),
    }
}

fn evaluate_output(p: &Pipeline, shared: &scope::RunShared<'_>) -> Result<Value, String> {
    let view_output = |i: usize| shared.views[i].get().and_then(|v| v.output.clone());
    match &p.output {
        OutputSpec::Template(t) => t
            .render(&scope::RunScope { shared })
            .map_err(|e| format!("the pipeline's output could not be evaluated: {e}")),
        OutputSpec::Stage(i) => Ok(view_output(*i).unwrap_or(Value::Null)),
        OutputSpec::TerminalStages => {
            let mut out = Map::new();
            for i in p.terminal_stages() {
                if let Some(v) = view_output(i) {
                    out.insert(p.stages[i].id.clone(), v);
                }
            }
            Ok(Value::Object(out))
        }
    }
}
