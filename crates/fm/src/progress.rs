//! What a person watching a run sees on stderr: a line per stage state change (when enabled),
//! and always the run's log lines and warnings.

use std::io::Write;
use std::sync::Mutex;

use fm_core::events::{Event, EventKind, EventSink};

pub struct Progress {
    /// Stage state lines (live progress); log lines and warnings are always shown.
    pub show_stages: bool,
    /// Also print each event as a JSON line on stdout (`--events`).
    pub events_json: bool,
    /// Width of the stage-id column.
    pub width: usize,
    out: Mutex<()>,
}

impl Progress {
    pub fn new(show_stages: bool, events_json: bool, width: usize) -> Self {
        Progress {
            show_stages,
            events_json,
            width: width.clamp(8, 40),
            out: Mutex::new(()),
        }
    }

    fn stage_line(&self, mark: &str, stage: &str, state: &str, detail: &str) -> String {
        format!("  {mark} {stage:<w$}  {state}{detail}\n", w = self.width)
    }

    fn render(&self, e: &Event) -> Option<String> {
        let line = match &e.kind {
            EventKind::Log {
                stage,
                level,
                message,
                ..
            } => {
                let who = stage.as_deref().unwrap_or("run");
                return Some(format!("  [{}] {who}: {message}\n", level.as_str()));
            }
            EventKind::Warning { stage, message } => {
                let who = stage.as_deref().unwrap_or("run");
                return Some(format!("  warning: {who}: {message}\n"));
            }
            _ if !self.show_stages => return None,
            EventKind::RunStarted {
                run_id,
                pipeline,
                dry_run,
                ..
            } => {
                let dry = if *dry_run {
                    "  [DRY RUN: only GET/HEAD requests are sent; every other request is described, not sent]"
                } else {
                    ""
                };
                format!("▶ {pipeline} (run {run_id}){dry}\n")
            }
            EventKind::StageStarted { stage, attempt, .. } if *attempt == 1 => {
                self.stage_line("…", stage, "running", "")
            }
            EventKind::StageStarted { .. } => return None,
            EventKind::StageRetrying {
                stage,
                attempt,
                delay_ms,
                reason,
                ..
            } => self.stage_line(
                "↻",
                stage,
                "retrying",
                &format!(
                    " (attempt {attempt} failed: {}; next in {delay_ms} ms)",
                    first_line(reason)
                ),
            ),
            EventKind::StageSucceeded {
                stage,
                attempts,
                duration_ms,
                output,
            } => {
                let dry = if output.get("dry_run").and_then(|v| v.as_bool()) == Some(true) {
                    "  [dry run: not sent]"
                } else {
                    ""
                };
                let tries = if *attempts > 1 {
                    format!(", {attempts} attempts")
                } else {
                    String::new()
                };
                self.stage_line(
                    "✓",
                    stage,
                    "succeeded",
                    &format!("  {duration_ms} ms{tries}{dry}"),
                )
            }
            EventKind::StageFailed {
                stage,
                error,
                duration_ms,
                fatal,
                ..
            } => {
                let handled = if *fatal { "" } else { " (handled)" };
                self.stage_line(
                    "✗",
                    stage,
                    "failed",
                    &format!(
                        "  {duration_ms} ms{handled}: {}",
                        first_line(&error.message)
                    ),
                )
            }
            EventKind::StageSkipped { stage, reason } => {
                self.stage_line("–", stage, "skipped", &format!("  ({})", reason.message))
            }
            EventKind::StageCancelled { stage, reason, .. } => {
                self.stage_line("■", stage, "cancelled", &format!("  ({reason})"))
            }
            EventKind::RunFinished {
                status,
                duration_ms,
                error,
                ..
            } => {
                let mark = if *status == fm_core::RunStatus::Succeeded {
                    "✓"
                } else {
                    "✗"
                };
                let why = error
                    .as_ref()
                    .map(|e| match &e.stage {
                        Some(s) => format!(": stage '{s}' failed: {}", first_line(&e.message)),
                        None => format!(": {}", first_line(&e.message)),
                    })
                    .unwrap_or_default();
                format!(
                    "{mark} {} in {:.2} s{why}\n",
                    status.as_str(),
                    *duration_ms as f64 / 1000.0
                )
            }
        };
        Some(line)
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

impl EventSink for Progress {
    fn emit(&self, e: &Event) {
        let _guard = self.out.lock();
        if self.events_json {
            if let Ok(line) = serde_json::to_string(e) {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{line}");
            }
        }
        if let Some(text) = self.render(e) {
            let _ = std::io::stderr().lock().write_all(text.as_bytes());
        }
    }
}
