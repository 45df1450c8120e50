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
    RunFinished {
        status: RunStatus,
        #[serde(skip_serializing_if = "Option::is_none")]
        output: Option<Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<RunError>,
        duration_ms: u64,
    },
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
