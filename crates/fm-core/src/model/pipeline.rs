//! The compiled pipeline: what a run sees. Built only by [`crate::model::compile`]; every
//! template is compiled, every reference resolved to an index, the DAG checked for cycles.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use fm_expr::{Template, Value};

use crate::component::StageRuntime;
use crate::model::value_template::ValueTemplate;

#[derive(Debug)]
pub struct Pipeline {
    pub name: String,
    /// The file's dialect: where the reference format and FlowMason 1.x differ, its meaning.
    pub dialect: crate::model::dialect::Dialect,
    /// FlowMason's gallery and documentation keys (`category`, `tags`, `metadata`,
    /// `sample_input`, `example_input`, ..., and its human `name` as `title`), kept as written.
    pub metadata: serde_json::Map<String, Value>,
    pub version: Option<String>,
    pub description: Option<String>,
    /// The input's JSON Schema, checked before any stage runs.
    pub input_schema: Option<InputSchema>,
    pub output: OutputSpec,
    /// `outcome`: what the run achieved, in the pipeline's own words (`escalated`,
    /// `auto_remediated`, ...), evaluated when the run ends, whatever its status.
    pub outcome: Option<OutcomeSpec>,
    pub stages: Vec<Stage>,
    pub index: HashMap<String, usize>,
    /// Stage indexes in an order where every stage comes after everything it waits for.
    pub topo_order: Vec<usize>,
    /// Secret names the pipeline's templates read (the only ones the engine looks up).
    pub secrets: BTreeSet<String>,
    /// Environment variables the pipeline's templates read.
    pub env: BTreeSet<String>,
}

pub struct InputSchema {
    pub raw: Value,
    pub validator: jsonschema::Validator,
}

impl std::fmt::Debug for InputSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InputSchema")
            .field("raw", &self.raw)
            .finish()
    }
}

/// The pipeline's `outcome` declaration.
#[derive(Debug)]
pub struct OutcomeSpec {
    /// Renders to a string (the outcome) or null (none: the status says it all).
    pub value: Template,
    /// Why, in a sentence: shown beside the outcome (`outcome: escalated — <reason>`).
    pub reason: Option<Template>,
    /// The values `value` may take, when declared: anything else is recorded as no outcome,
    /// with a warning (dashboards and alerts count on a closed set).
    pub values: Option<Vec<String>>,
}

#[derive(Debug)]
pub enum OutputSpec {
    /// `output`: a template object evaluated when the run ends.
    Template(ValueTemplate),
    /// FlowMason's `output_stage_id`: that stage's output.
    Stage(usize),
    /// Neither: the outputs of the terminal stages, keyed by id.
    TerminalStages,
}

#[derive(Debug)]
pub struct Stage {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Canonical component name.
    pub component: &'static str,
    pub runtime: Arc<dyn StageRuntime>,
    /// Explicit `depends_on`, as indexes.
    pub depends_on: Vec<usize>,
    pub trigger: Trigger,
    pub on_error: OnError,
    pub timeout: Option<Duration>,
    pub retry: Option<RetryPolicy>,
    pub idempotent: bool,
    pub control: Control,
    /// The innermost trycatch whose try/catch/finally list names this stage.
    pub scope: Option<ScopeMembership>,
    /// Routers that name this stage in one of their routes.
    pub routed_by: Vec<usize>,
    pub budget: Option<BudgetSpec>,
    /// Editor position, kept and unused.
    pub position: Option<Value>,
    /// FlowMason's stage `metadata` and `component_package`, kept as written.
    pub metadata: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeMembership {
    pub trycatch: usize,
    pub role: ScopeRole,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeRole {
    Try,
    Catch,
    Finally,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    None,
    /// Every stage named in any route or the default, as indexes.
    Router {
        targets: Vec<usize>,
    },
    TryCatch {
        try_stages: Vec<usize>,
        catch_stages: Vec<usize>,
        finally_stages: Vec<usize>,
    },
}

/// When a stage runs, given how its dependencies ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Every dependency succeeded (the default).
    #[default]
    AllSuccess,
    /// Every dependency settled, however it ended.
    AllDone,
    /// At least one dependency succeeded.
    AnySuccess,
    /// No dependency failed (skips are fine).
    NoneFailed,
}

impl Trigger {
    pub const NAMES: [&'static str; 4] = ["all_success", "all_done", "any_success", "none_failed"];

    pub fn parse(s: &str) -> Option<Trigger> {
        Some(match s {
            "all_success" => Trigger::AllSuccess,
            "all_done" => Trigger::AllDone,
            "any_success" => Trigger::AnySuccess,
            "none_failed" => Trigger::NoneFailed,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnError {
    /// A failure fails the run (unless a trycatch catches it).
    #[default]
    Fail,
    /// A failure is recorded; dependents decide by their trigger rule.
    Continue,
}

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Total attempts including the first.
    pub max_attempts: u32,
    pub delay: Duration,
    pub backoff: Backoff,
    /// Retry while this holds over the attempt's `output` (the stage also retries when it errors).
    pub condition: Option<Template>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Backoff {
    Fixed,
    /// delay * factor^(attempt-1) (factor 2 unless FlowMason's `backoff_multiplier` says
    /// otherwise), capped at `max_delay`, with "full jitter" on the upper half.
    Exponential {
        max_delay: Duration,
        jitter: bool,
        factor: f64,
    },
}

impl RetryPolicy {
    /// The wait before attempt `next_attempt` (2 for the first retry).
    pub fn delay_before(&self, next_attempt: u32) -> Duration {
        match self.backoff {
            Backoff::Fixed => self.delay,
            Backoff::Exponential {
                max_delay,
                jitter,
                factor,
            } => {
                let exp = next_attempt.saturating_sub(2).min(30);
                let scaled = self.delay.as_secs_f64() * factor.powi(exp as i32);
                let base = if scaled.is_finite() && scaled < max_delay.as_secs_f64() {
                    Duration::from_secs_f64(scaled)
                } else {
                    max_delay
                };
                if jitter {
                    // Half fixed, half random: spreads retries without ever retrying instantly.
                    let half = base / 2;
                    half + half.mul_f64(fastrand::f64())
                } else {
                    base
                }
            }
        }
    }
}

/// A remediation budget: at most `max` executions per `per` window for the rendered `key`.
#[derive(Debug, Clone)]
pub struct BudgetSpec {
    pub key: Template,
    pub max: u32,
    pub per: Duration,
}

impl Pipeline {
    pub fn stage(&self, id: &str) -> Option<&Stage> {
        self.index.get(id).map(|&i| &self.stages[i])
    }

    /// Stages that nothing depends on (explicitly or through a trycatch scope).
    pub fn terminal_stages(&self) -> Vec<usize> {
        let mut has_dependent = vec![false; self.stages.len()];
        for s in &self.stages {
            for &d in &s.depends_on {
                has_dependent[d] = true;
            }
        }
        // Scope members are settled by their trycatch; the trycatch reports for them.
        (0..self.stages.len())
            .filter(|&i| !has_dependent[i] && self.stages[i].scope.is_none())
            .collect()
    }
}
