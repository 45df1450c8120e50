//! The one stream of events that is the truth of a run. The progress display, `--events`, the
//! run record and the store's journal are all built from it; none re-derives state on its own.
//!
//! Every value in an event has already passed through the run's secret redactor.

use fm_expr::Value;
use serde::{Deserialize, Serialize};

use crate::component::StageError;
use crate::state::{RunStatus, SkipReason};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        match s.to_ascii_lowercase().as_str() {
            "debug" | "trace" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" | "critical" => Some(LogLevel::Error),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// One state change or log line, stamped with its order and time since the run started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// 0-based position in the run's stream.
    pub seq: u64,
    /// Milliseconds since the run started.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: EventKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum EventKind {
    RunStarted {
        run_id: String,
        pipeline: String,
        /// RFC 3339.
        started_at: String,
        input: Value,
        dry_run: bool,
    },
    StageStarted {
        stage: String,
        attempt: u32,
        /// Wall-clock start, RFC 3339 (kept on the first attempt in the record).
        started_at: String,
    },
    StageRetrying {
        stage: String,
        /// The attempt that just ended.
        attempt: u32,
        delay_ms: u64,
        reason: String,
        /// What the attempt produced (for a retry condition) or its error's output.
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
    },
    StageSucceeded {
        stage: String,
        output: Value,
        attempts: u32,
        duration_ms: u64,
    },
    StageFailed {
        stage: String,
        error: StageError,
        attempts: u32,
        duration_ms: u64,
        /// Whether the failure stops the run (false when caught or `on_error: continue`).
        fatal: bool,
    },
    StageSkipped {
        stage: String,
        reason: SkipReason,
    },
    StageCancelled {
        stage: String,
        /// Present when the stage had started.
        #[serde(skip_serializing_if = "Option::is_none")]
        duration_ms: Option<u64>,
        reason: String,
    },
    Log {
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
        level: LogLevel,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    },
    Warning {
        #[serde(skip_serializing_if = "Option::is_none")]
        stage: Option<String>,
        message: String,
    },
    /// The run was told to stop (cancel, time limit, an uncaught failure) and stops starting
    /// new work. When a stage that may have acted (non-idempotent) had started, the catch and
    /// finally stages of the running trycatch scopes get `cleanup_ms` to tell people.
    RunStopping {
        /// `cancelled`, `timed_out` or `failed`: how the run will end.
        status: RunStatus,
        /// What stopped it, in words: `Ctrl-C`, `SIGTERM`, `its time limit of 2s elapsed`, ...
        cause: String,
        /// Non-idempotent stages that had started: they may have acted.
        acted: Vec<String>,
        /// Trycatch stages whose catch and finally stages run now (empty: nothing more runs).
        cleanup_scopes: Vec<String>,
        cleanup_ms: u64,
    },
    RunFinished {
        status: RunStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<RunError>,
        duration_ms: u64,
        /// The pipeline's declared outcome (`escalated`, ...), when it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outcome_reason: Option<String>,
        /// How the run was stopped early, if it was.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stop: Option<StopReport>,
    },
}

/// How a run that was stopped early ended: what stopped it, whether anything had acted, and
/// whether the catch and finally stages got to tell people.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StopReport {
    pub cause: String,
    /// When the stop came, in ms since the run started.
    pub at_ms: u64,
    /// Non-idempotent stages that had started before the stop: they may have acted.
    pub acted: Vec<String>,
    pub cleanup: Cleanup,
    /// The trycatch scopes given cleanup time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_scopes: Vec<String>,
    /// Catch and finally stages that ran during the cleanup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_stages: Vec<String>,
    /// Catch and finally stages of those scopes that did not run to the end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cleanup_missed: Vec<String>,
}

/// What happened after a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cleanup {
    /// Nothing had acted: everything stopped at once and nothing more was sent.
    NotNeeded,
    /// Something had acted, but no trycatch scope was running to handle it.
    NoScope,
    /// The catch and finally stages of the running scopes ran to the end.
    Completed,
    /// The cleanup time ran out before they finished.
    TimedOut,
    /// The cleanup was abandoned (a second Ctrl-C).
    Abandoned,
}

impl Cleanup {
    pub fn as_str(self) -> &'static str {
        match self {
            Cleanup::NotNeeded => "not_needed",
            Cleanup::NoScope => "no_scope",
            Cleanup::Completed => "completed",
            Cleanup::TimedOut => "timed_out",
            Cleanup::Abandoned => "abandoned",
        }
    }
}

/// Why a run failed: the stage at the root of it (deterministically the first in pipeline order
/// among the stages that failed) and its error, or a run-level cause.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunError {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub kind: String,
    pub message: String,
}

/// Receives every event of a run, in order. Implementations must be cheap: the executor calls
/// them inline.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn emit(&self, event: &Event) {
        self(event)
    }
}

/// Sends every event to several sinks.
pub struct FanOut(pub Vec<Box<dyn EventSink>>);

impl EventSink for FanOut {
    fn emit(&self, event: &Event) {
        for s in &self.0 {
            s.emit(event);
        }
    }
}
