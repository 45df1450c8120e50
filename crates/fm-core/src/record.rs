//! The run record: the fold of a run's events. Whatever shows a run (`--json`, the store, the
//! server) shows this, so it never disagrees with the event stream.

use fm_expr::Value;
use serde::{Deserialize, Serialize};

use crate::component::StageError;
use crate::events::{Event, EventKind, LogLevel, RunError, StopReport};
use crate::model::Pipeline;
use crate::state::{RunStatus, SkipReason, StageStatus};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    pub dry_run: bool,
    pub started_at: String,
    pub duration_ms: u64,
    pub input: Value,
    pub output: Option<Value>,
    pub error: Option<RunError>,
    /// The pipeline's declared outcome (`escalated`, `auto_remediated`, ...), if it declares one.
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub outcome_reason: Option<String>,
    /// How the run was stopped early (cancel, time limit, uncaught failure), if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopReport>,
    /// In pipeline order.
    pub stages: Vec<StageRecord>,
    pub logs: Vec<LogRecord>,
    pub warnings: Vec<WarningRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StageRecord {
    pub id: String,
    pub component: String,
    pub status: StageStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<StageError>,
    pub attempts: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Offset of the first start from the run's start, for timelines and critical paths.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<SkipReason>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogRecord {
    pub at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub level: LogLevel,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WarningRecord {
    pub at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    pub message: String,
}

impl RunRecord {
    pub fn stage(&self, id: &str) -> Option<&StageRecord> {
        self.stages.iter().find(|s| s.id == id)
    }
}

/// Folds events into a record.
pub struct RecordBuilder {
    record: RunRecord,
    index: std::collections::HashMap<String, usize>,
}

impl RecordBuilder {
    pub fn new(p: &Pipeline) -> Self {
        let stages = p
            .stages
            .iter()
            .map(|s| StageRecord {
                id: s.id.clone(),
                component: s.component.to_owned(),
                status: StageStatus::Pending,
                output: None,
                error: None,
                attempts: 0,
                started_at: None,
                duration_ms: None,
                started_at_ms: None,
                skip_reason: None,
            })
            .collect();
        RecordBuilder {
            index: p.index.clone(),
            record: RunRecord {
                run_id: String::new(),
                pipeline: p.name.clone(),
                status: RunStatus::Running,
                dry_run: false,
                started_at: String::new(),
                duration_ms: 0,
                input: Value::Null,
                output: None,
                error: None,
                outcome: None,
                outcome_reason: None,
                stop: None,
                stages,
                logs: Vec::new(),
                warnings: Vec::new(),
            },
        }
    }

    fn stage_mut(&mut self, id: &str) -> Option<&mut StageRecord> {
        let i = *self.index.get(id)?;
        self.record.stages.get_mut(i)
    }

    pub fn apply(&mut self, e: &Event) {
        let at = e.at_ms;
        match &e.kind {
            EventKind::RunStarted {
                run_id,
                started_at,
                input,
                dry_run,
                ..
            } => {
                self.record.run_id = run_id.clone();
                self.record.started_at = started_at.clone();
                self.record.input = input.clone();
                self.record.dry_run = *dry_run;
            }
            EventKind::StageStarted {
                stage,
                attempt,
                started_at,
            } => {
                if let Some(s) = self.stage_mut(stage) {
                    s.status = StageStatus::Running;
                    s.attempts = *attempt;
                    if s.started_at.is_none() {
                        s.started_at = Some(started_at.clone());
                        s.started_at_ms = Some(at);
                    }
                }
            }
            EventKind::StageRetrying { stage, .. } => {
                if let Some(s) = self.stage_mut(stage) {
                    s.status = StageStatus::Retrying;
                }
            }
            EventKind::StageSucceeded {
                stage,
                output,
                attempts,
                duration_ms,
            } => {
                if let Some(s) = self.stage_mut(stage) {
                    s.status = StageStatus::Succeeded;
                    s.output = Some(output.clone());
                    s.attempts = *attempts;
                    s.duration_ms = Some(*duration_ms);
                }
            }
            EventKind::StageFailed {
                stage,
                error,
                attempts,
                duration_ms,
                ..
            } => {
                if let Some(s) = self.stage_mut(stage) {
                    s.status = StageStatus::Failed;
                    s.output = error.output.clone();
                    s.error = Some(error.clone());
                    s.attempts = *attempts;
                    s.duration_ms = Some(*duration_ms);
                }
            }
            EventKind::StageSkipped { stage, reason } => {
                if let Some(s) = self.stage_mut(stage) {
                    s.status = StageStatus::Skipped;
                    s.skip_reason = Some(reason.clone());
                }
            }
            EventKind::StageCancelled {
                stage,
                duration_ms,
                reason,
            } => {
                if let Some(s) = self.stage_mut(stage) {
                    s.status = StageStatus::Cancelled;
                    s.duration_ms = *duration_ms;
                    s.error = Some(
                        StageError::new(crate::component::ErrorKind::Cancelled, reason.clone())
                            .retryable(false),
                    );
                }
            }
            EventKind::Log {
                stage,
                level,
                message,
                data,
            } => self.record.logs.push(LogRecord {
                at_ms: at,
                stage: stage.clone(),
                level: *level,
                message: message.clone(),
                data: data.clone(),
            }),
            EventKind::Warning { stage, message } => self.record.warnings.push(WarningRecord {
                at_ms: at,
                stage: stage.clone(),
                message: message.clone(),
            }),
            EventKind::RunStopping { .. } => {}
            EventKind::RunFinished {
                status,
                output,
                error,
                duration_ms,
                outcome,
                outcome_reason,
                stop,
            } => {
                self.record.status = *status;
                self.record.output = output.clone();
                self.record.error = error.clone();
                self.record.duration_ms = *duration_ms;
                self.record.outcome = outcome.clone();
                self.record.outcome_reason = outcome_reason.clone();
                self.record.stop = stop.clone();
            }
        }
    }

    pub fn finish(self) -> RunRecord {
        self.record
    }
}
