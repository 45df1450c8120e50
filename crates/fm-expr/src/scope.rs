//! What a template can read: the `Root` of every path, the `Scope` trait the
//! engine implements, and `JsonScope`, a ready-made scope over one JSON
//! document (tests, benches, `fm` tooling).

use std::borrow::Cow;
use std::collections::HashSet;

use serde_json::Value;

/// Which field of a stage a `stages.<id>.<field>` path reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StageField {
    Output,
    Status,
    Error,
    DurationMs,
    Attempts,
}

impl StageField {
    /// Every field, in documentation order.
    pub const ALL: [StageField; 5] = [
        StageField::Output,
        StageField::Status,
        StageField::Error,
        StageField::DurationMs,
        StageField::Attempts,
    ];

    /// The name as written in templates (`duration_ms`).
    pub fn as_str(self) -> &'static str {
        match self {
            StageField::Output => "output",
            StageField::Status => "status",
            StageField::Error => "error",
            StageField::DurationMs => "duration_ms",
            StageField::Attempts => "attempts",
        }
    }

    pub fn parse(name: &str) -> Option<StageField> {
        StageField::ALL.into_iter().find(|f| f.as_str() == name)
    }
}

/// The fields `execution.<field>` accepts. `status`, `error`, `outcome` and `outcome_reason`
/// are known when the run ends (the pipeline's `outcome` and `output` read them); while it runs
/// they are `running`, none, none, none.
pub const EXECUTION_FIELDS: [&str; 9] = [
    "id",
    "pipeline",
    "started_at",
    "duration_ms",
    "dry_run",
    "status",
    "error",
    "outcome",
    "outcome_reason",
];

/// The first step of a path, as the evaluator asks the scope for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root<'a> {
    /// A bare name: `input`, `output` (retry conditions), `data` (json_transform), ...
    Var(&'a str),
    /// `stages.<id>.<field>`; `upstream.<id>` is `Stage { id, field: Output }`.
    Stage { id: &'a str, field: StageField },
    /// `secrets.<NAME>`
    Secret(&'a str),
    /// `env.<NAME>`
    Env(&'a str),
    /// `execution.<field>`: one of [`EXECUTION_FIELDS`].
    Execution(&'a str),
}

/// What a template can see. Returning `None` means "undefined" (strict error unless guarded).
pub trait Scope {
    fn resolve(&self, root: &Root<'_>) -> Option<Cow<'_, Value>>;
}

/// Options for compiling.
#[derive(Debug, Clone, Copy, Default)]
pub struct CompileOptions<'a> {
    /// Known stage ids, for the hyphen rule. `None`: the maximal `[A-Za-z0-9_-]+` run is the id.
    pub stage_ids: Option<&'a HashSet<String>>,
}

/// A [`Scope`] over one JSON document shaped like
///
/// ```json
/// {"input": {}, "stages": {"<id>": {"output": {}, "status": "..."}},
///  "secrets": {}, "env": {}, "execution": {}, "vars": {}}
/// ```
///
/// A bare name `x` resolves to `vars.x` if present, else to the top-level key
/// `x` (so `input` works), except the reserved keys `stages`, `secrets`,
/// `env`, `execution`, `vars`.
#[derive(Debug, Clone, Default)]
pub struct JsonScope {
    pub context: Value,
}

impl JsonScope {
    pub fn new(context: Value) -> JsonScope {
        JsonScope { context }
    }

    fn section(&self, name: &str, key: &str) -> Option<&Value> {
        self.context.get(name)?.get(key)
    }
}

impl Scope for JsonScope {
    fn resolve(&self, root: &Root<'_>) -> Option<Cow<'_, Value>> {
        let found = match *root {
            Root::Var(name) => self.section("vars", name).or_else(|| {
                if matches!(name, "stages" | "secrets" | "env" | "execution" | "vars") {
                    None
                } else {
                    self.context.get(name)
                }
            }),
            Root::Stage { id, field } => self.section("stages", id)?.get(field.as_str()),
            Root::Secret(name) => self.section("secrets", name),
            Root::Env(name) => self.section("env", name),
            Root::Execution(field) => self.section("execution", field),
        };
        found.map(Cow::Borrowed)
    }
}

/// A scope with nothing in it: every root is undefined.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmptyScope;

impl Scope for EmptyScope {
    fn resolve(&self, _root: &Root<'_>) -> Option<Cow<'_, Value>> {
        None
    }
}
