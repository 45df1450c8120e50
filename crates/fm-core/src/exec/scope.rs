//! What templates see during a run: the input, settled stages, secrets, env, execution facts.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

use fm_expr::{Root, Scope, StageField, Value};

/// A settled stage as templates see it. Set once, when the stage settles; read lock-free.
#[derive(Debug)]
pub struct StageView {
    /// `None` when the stage produced no output (skipped, failed, cancelled).
    pub output: Option<Value>,
    pub status: Value,
    pub error: Value,
    pub duration_ms: Value,
    pub attempts: Value,
}

/// Run-wide facts shared by the driver and every running stage.
pub struct RunShared<'p> {
    pub run_id: String,
    pub pipeline: &'p str,
    pub started_at_rfc3339: String,
    pub started: Instant,
    pub input: Value,
    pub index: &'p HashMap<String, usize>,
    pub views: Vec<OnceLock<StageView>>,
    /// A trycatch's output while its scope still runs (`{outcome, error}` for catch stages).
    pub provisional: Vec<Mutex<Option<Value>>>,
    pub secrets: crate::secrets::Secrets,
    pub env: BTreeMap<String, String>,
    pub dry_run: bool,
    /// Per stage: a non-idempotent attempt began (it may have acted). Set by the attempt just
    /// before it executes; read by the driver when the run is stopped.
    pub acted: Vec<AtomicBool>,
    /// `execution.status` and `execution.error`, once the run has ended.
    pub end: OnceLock<(Value, Value)>,
    /// `execution.outcome` and `execution.outcome_reason`, once evaluated.
    pub outcome: OnceLock<(Value, Value)>,
}

impl RunShared<'_> {
    pub fn elapsed_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub fn mark_acted(&self, stage: usize) {
        if let Some(a) = self.acted.get(stage) {
            a.store(true, Ordering::SeqCst);
        }
    }

    pub fn has_acted(&self, stage: usize) -> bool {
        self.acted
            .get(stage)
            .is_some_and(|a| a.load(Ordering::SeqCst))
    }
}

/// The scope of one template evaluation: the run, plus at most one extra variable
/// (`output` in a retry condition, `data` in a json_transform template).
pub struct RunScope<'a, 'p> {
    pub shared: &'a RunShared<'p>,
}

impl Scope for RunScope<'_, '_> {
    fn resolve(&self, root: &Root<'_>) -> Option<Cow<'_, Value>> {
        let s = self.shared;
        match *root {
            Root::Var("input") => Some(Cow::Borrowed(&s.input)),
            Root::Var(_) => None,
            Root::Stage { id, field } => {
                let i = *s.index.get(id)?;
                match s.views[i].get() {
                    Some(view) => match field {
                        StageField::Output => view.output.as_ref().map(Cow::Borrowed),
                        StageField::Status => Some(Cow::Borrowed(&view.status)),
                        StageField::Error => Some(Cow::Borrowed(&view.error)),
                        StageField::DurationMs => Some(Cow::Borrowed(&view.duration_ms)),
                        StageField::Attempts => Some(Cow::Borrowed(&view.attempts)),
                    },
                    None => {
                        let provisional = s.provisional.get(i)?.lock().ok()?.clone()?;
                        match field {
                            StageField::Output => Some(Cow::Owned(provisional)),
                            StageField::Status => Some(Cow::Owned(Value::String("running".into()))),
                            _ => None,
                        }
                    }
                }
            }
            Root::Secret(name) => s
                .secrets
                .get(name)
                .map(|v| Cow::Owned(Value::String(v.to_owned()))),
            Root::Env(name) => s
                .env
                .get(name)
                .map(|v| Cow::Owned(Value::String(v.clone()))),
            Root::Execution(field) => Some(Cow::Owned(match field {
                "id" => Value::String(s.run_id.clone()),
                "pipeline" => Value::String(s.pipeline.to_owned()),
                "started_at" => Value::String(s.started_at_rfc3339.clone()),
                "duration_ms" => Value::from(s.elapsed_ms()),
                "dry_run" => Value::Bool(s.dry_run),
                "status" => s
                    .end
                    .get()
                    .map_or_else(|| Value::String("running".into()), |(st, _)| st.clone()),
                "error" => s.end.get().map_or(Value::Null, |(_, e)| e.clone()),
                "outcome" => s.outcome.get().map_or(Value::Null, |(o, _)| o.clone()),
                "outcome_reason" => s.outcome.get().map_or(Value::Null, |(_, r)| r.clone()),
                _ => return None,
            })),
        }
    }
}

/// A scope with one more variable on top of another scope.
pub struct OverlayScope<'a> {
    pub parent: &'a (dyn Scope + Sync),
    pub name: &'a str,
    pub value: &'a Value,
}

impl Scope for OverlayScope<'_> {
    fn resolve(&self, root: &Root<'_>) -> Option<Cow<'_, Value>> {
        match root {
            Root::Var(n) if *n == self.name => Some(Cow::Borrowed(self.value)),
            _ => self.parent.resolve(root),
        }
    }
}
