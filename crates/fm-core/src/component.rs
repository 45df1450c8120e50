//! The Component trait: what a stage type is, how it reads its config, and how it runs.
//!
//! A component is one file: a config struct read through [`ConfigReader`] (so unknown keys are
//! reported with a suggestion), validation, and an `execute` function. Adding a component is that
//! file plus one line in a registry.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use fm_expr::{Scope, Value};
use futures::future::BoxFuture;
use serde::Serialize;

use crate::events::LogLevel;
use crate::model::reader::ConfigReader;

/// A stage type. Implementations hold shared resources (an HTTP client, provider settings) and
/// compile a stage's config into a [`StageRuntime`].
pub trait Component: Send + Sync {
    /// Canonical name, snake_case: `http_request`.
    fn name(&self) -> &'static str;
    /// Other spellings that name this component (`http-request`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }
    /// One line for `fm components` and the docs.
    fn summary(&self) -> &'static str;
    /// Whether the component calls a model, so a FlowMason stage's `provider`, `model` and
    /// `llm_settings` are merged into its config.
    fn takes_llm_settings(&self) -> bool {
        false
    }
    /// Reads the stage's `config` object. Returns `None` when the config has problems (they are
    /// recorded in the reader); the reader's `finish` is called by the caller.
    fn compile(&self, config: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>>;
}

/// A compiled stage, ready to execute any number of times.
pub trait StageRuntime: Send + Sync + fmt::Debug {
    /// Whether running it twice is harmless (crash-resume re-runs only idempotent stages).
    /// A stage's `idempotent` key overrides this.
    fn idempotent(&self) -> bool;

    /// Runs one attempt. Cancellation is by dropping the future.
    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>>;

    /// Checks done before a run starts (e.g. an LLM provider is configured). Errors fail the run
    /// before any stage executes.
    fn preflight(&self) -> Result<(), String> {
        Ok(())
    }

    /// Control-flow role, for the executor (only router and trycatch have one).
    fn control(&self) -> Option<&dyn std::any::Any> {
        None
    }
}

/// What a running stage can see and do.
pub struct StageContext<'a> {
    pub run_id: &'a str,
    pub pipeline: &'a str,
    pub stage_id: &'a str,
    /// 1-based attempt number.
    pub attempt: u32,
    pub scope: &'a (dyn Scope + Sync),
    /// `fm run --dry-run`: read-only work goes ahead, mutating requests are described, not sent.
    pub dry_run: bool,
    /// The stage's effective `idempotent` flag (its own key, else the component's default). A
    /// stage explicitly marked idempotent is read-only by its author's word: dry runs send it.
    pub idempotent: bool,
    /// Where a stage may write files that belong to the run (postmortems, reports).
    pub artifacts_dir: Option<&'a std::path::Path>,
    pub(crate) emit_log: &'a (dyn Fn(LogLevel, String, Option<Value>) + Send + Sync),
    pub(crate) emit_warning: &'a (dyn Fn(String) + Send + Sync),
}

impl StageContext<'_> {
    /// A log line attributed to this stage: shown on stderr and kept in the run record.
    pub fn log(&self, level: LogLevel, message: impl Into<String>, data: Option<Value>) {
        (self.emit_log)(level, message.into(), data);
    }

    /// A warning event: something went wrong that did not fail the stage.
    pub fn warn(&self, message: impl Into<String>) {
        (self.emit_warning)(message.into());
    }
}

/// Why a stage attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// A template failed to render (missing key, type error).
    Template,
    /// The remote answered with a status the stage does not accept.
    HttpStatus,
    /// Could not connect (refused, unreachable).
    Connection,
    /// Name resolution failed.
    Dns,
    /// TLS handshake or certificate failure.
    Tls,
    /// The stage or a request ran out of time.
    Timeout,
    /// The remote's reply could not be understood.
    InvalidResponse,
    /// An LLM provider reported an error.
    Provider,
    /// The stage's config is unusable at run time (e.g. a rendered URL is not a URL).
    Config,
    /// The stage's retry condition still held after the last attempt.
    RetryExhausted,
    /// A remediation budget refused the action.
    BudgetExceeded,
    /// The stage was in flight when the process died and is not safe to repeat.
    OutcomeUnknown,
    /// The run was cancelled while the stage ran.
    Cancelled,
    /// The stage's input data was not what it needed (e.g. JMESPath over the wrong shape).
    Data,
    /// A bug or an unexpected internal state.
    Internal,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Template => "template",
            ErrorKind::HttpStatus => "http_status",
            ErrorKind::Connection => "connection",
            ErrorKind::Dns => "dns",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::InvalidResponse => "invalid_response",
            ErrorKind::Provider => "provider",
            ErrorKind::Config => "config",
            ErrorKind::RetryExhausted => "retry_exhausted",
            ErrorKind::BudgetExceeded => "budget_exceeded",
            ErrorKind::OutcomeUnknown => "outcome_unknown",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Data => "data",
            ErrorKind::Internal => "internal",
        }
    }
}

/// A failed attempt. `output` carries what the stage did produce (an HTTP response with a bad
/// status) so that retry conditions and the run record can see it.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StageError {
    pub kind: ErrorKind,
    pub message: String,
    /// Whether another attempt could succeed (the stage's retry policy decides if there is one).
    pub retryable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    /// Wait at least this long before retrying (from a Retry-After header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl StageError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        StageError {
            kind,
            message: message.into(),
            retryable: matches!(
                kind,
                ErrorKind::Connection
                    | ErrorKind::Dns
                    | ErrorKind::Timeout
                    | ErrorKind::HttpStatus
                    | ErrorKind::InvalidResponse
                    | ErrorKind::Provider
            ),
            output: None,
            retry_after_ms: None,
        }
    }

    pub fn retryable(mut self, yes: bool) -> Self {
        self.retryable = yes;
        self
    }

    pub fn with_output(mut self, output: Value) -> Self {
        self.output = Some(output);
        self
    }

    pub fn template(e: &crate::model::value_template::RenderError, what: &str) -> Self {
        StageError::new(ErrorKind::Template, format!("{what}: {e}")).retryable(false)
    }
}

impl fmt::Display for StageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.kind.as_str())
    }
}

/// The set of components a pipeline may use, by name and alias.
#[derive(Default, Clone)]
pub struct Registry {
    by_name: BTreeMap<&'static str, Arc<dyn Component>>,
    canonical: Vec<&'static str>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a component under its name and aliases. Later registrations replace earlier ones.
    pub fn register(&mut self, component: Arc<dyn Component>) -> &mut Self {
        let name = component.name();
        if !self.canonical.contains(&name) {
            self.canonical.push(name);
        }
        for alias in component.aliases() {
            self.by_name.insert(alias, component.clone());
        }
        self.by_name.insert(name, component);
        self
    }

    /// Looks a component up; `http-request` and `http_request` are the same name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Component>> {
        self.by_name
            .get(name)
            .or_else(|| self.by_name.get(name.replace('-', "_").as_str()))
    }

    /// Canonical names, in registration order.
    pub fn names(&self) -> &[&'static str] {
        &self.canonical
    }

    pub fn all_spellings(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.by_name.keys().copied()
    }
}
