//! What a person watching a run sees on stderr, and `--events` on stdout.
//!
//! - On a terminal: one line per stage, redrawn in place as it runs, retries (with a short
//!   reason) and settles; log lines and warnings print above.
//! - `--progress always` without a terminal: one line per stage when it settles (and per retry),
//!   never twice.
//! - Otherwise: only log lines and warnings.
//!
//! The run's final lines (status, outcome) are not printed here but once by `fm run`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use fm_core::events::{Event, EventKind, EventSink};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn in place (a terminal).
    Live,
    /// A line per settled stage.
    Lines,
    /// Logs and warnings only.
    Off,
}

pub struct Progress {
    mode: Mode,
    /// Also print each event as a JSON line on stdout (`--events`).
    events_json: bool,
    /// Width of the stage-id column.
    width: usize,
    live: Option<Live>,
    out: Mutex<()>,
}

struct Live {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    running: ProgressStyle,
    done: ProgressStyle,
}

impl Progress {
    pub fn new(mode: Mode, events_json: bool, width: usize) -> Self {
        let live = (mode == Mode::Live).then(|| Live {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10)),
            bars: Mutex::new(HashMap::new()),
            running: ProgressStyle::with_template("  {spinner} {prefix}  {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner())
                .tick_chars("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏ "),
            done: ProgressStyle::with_template("  {prefix}  {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        });
        Progress {
            mode,
            events_json,
            width: width.clamp(8, 40),
            live,
            out: Mutex::new(()),
        }
    }

    fn id(&self, stage: &str) -> String {
        format!("{stage:<w$}", w = self.width)
    }

    /// A line above the live display (or plain on stderr).
    fn print_line(&self, line: &str) {
        match &self.live {
            Some(l) => {
                if l.multi.println(line).is_err() {
                    errln!("{line}");
                }
            }
            None => errln!("{line}"),
        }
    }

    fn live_bar(&self, stage: &str) -> Option<ProgressBar> {
        let l = self.live.as_ref()?;
        let mut bars = l.bars.lock().ok()?;
        let bar = bars.entry(stage.to_owned()).or_insert_with(|| {
            let b = l.multi.add(ProgressBar::new_spinner());
            b.set_style(l.running.clone());
            b.set_prefix(self.id(stage));
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        Some(bar.clone())
    }

    /// A stage reached its final state: its line says so (redrawn, or printed once).
    fn settled(&self, stage: &str, mark: &str, text: String) {
        match self.mode {
            Mode::Live => {
                if let (Some(bar), Some(l)) = (self.live_bar(stage), &self.live) {
                    bar.set_style(l.done.clone());
                    bar.set_prefix(format!("{mark} {}", self.id(stage)));
                    bar.finish_with_message(text);
                }
            }
            Mode::Lines => errln!("  {mark} {}  {text}", self.id(stage)),
            Mode::Off => {}
        }
    }

    fn handle(&self, e: &Event) {
        match &e.kind {
            EventKind::Log {
                stage,
                level,
                message,
                ..
            } => {
                let who = stage.as_deref().unwrap_or("run");
                self.print_line(&format!("  [{}] {who}: {message}", level.as_str()));
            }
            EventKind::Warning { stage, message } => {
                let who = stage.as_deref().unwrap_or("run");
                self.print_line(&format!("  warning: {who}: {message}"));
            }
            _ if self.mode == Mode::Off => {}
            EventKind::RunStarted {
                run_id,
                pipeline,
                dry_run,
                ..
            } => {
                let dry = if *dry_run {
                    format!("  [DRY RUN: {}]", fm_core::DRY_RUN_RULE)
                } else {
                    String::new()
                };
                self.print_line(&format!("▶ {pipeline} (run {run_id}){dry}"));
            }
            EventKind::StageStarted { stage, attempt, .. } => {
                if self.mode == Mode::Live {
                    if let Some(bar) = self.live_bar(stage) {
                        bar.set_message(if *attempt == 1 {
                            "running".to_owned()
                        } else {
                            format!("running (attempt {attempt})")
                        });
                    }
                }
            }
            EventKind::StageRetrying {
                stage,
                attempt,
                delay_ms,
                reason,
                output,
            } => {
                let text = format!(
                    "retrying: attempt {attempt} {}; next in {}",
                    short_reason(reason, output.as_ref()),
                    human_ms(*delay_ms)
                );
                match self.mode {
                    Mode::Live => {
                        if let Some(bar) = self.live_bar(stage) {
                            bar.set_message(text);
                        }
                    }
                    _ => errln!("  ↻ {}  {text}", self.id(stage)),
                }
            }
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
                self.settled(
                    stage,
                    "✓",
                    format!("succeeded  {}{tries}{dry}", human_ms(*duration_ms)),
                );
            }
            EventKind::StageFailed {
                stage,
                error,
                duration_ms,
                fatal,
                ..
            } => {
                let handled = if *fatal { "" } else { " (handled)" };
                self.settled(
                    stage,
                    "✗",
                    format!(
                        "failed  {}{handled}: {}",
                        human_ms(*duration_ms),
                        clip(first_line(&error.message), 160)
                    ),
                );
            }
            EventKind::StageSkipped { stage, reason } => {
                self.settled(stage, "–", format!("skipped  ({})", reason.message));
            }
            EventKind::StageCancelled { stage, reason, .. } => {
                self.settled(stage, "■", format!("cancelled  ({reason})"));
            }
            EventKind::RunStopping {
                cause,
                acted,
                cleanup_scopes,
                cleanup_ms,
                ..
            } => {
                let line = if cleanup_scopes.is_empty() {
                    format!("■ stopping ({cause}): nothing more starts")
                } else {
                    format!(
                        "■ stopping ({cause}): {} may have acted, so the catch and finally stages of {} run to tell people (up to {})",
                        acted.join(", "),
                        cleanup_scopes.join(", "),
                        human_ms(*cleanup_ms)
                    )
                };
                self.print_line(&line);
            }
            EventKind::RunFinished { .. } => {
                if let Some(l) = &self.live {
                    // Bars of stages that never reported back would spin forever.
                    if let Ok(bars) = l.bars.lock() {
                        for b in bars.values().filter(|b| !b.is_finished()) {
                            b.abandon();
                        }
                    }
                }
            }
        }
    }
}

/// Why an attempt is retried, in a few words: the HTTP status it got, or the first line of its
/// error (a retry condition's source can be hundreds of characters: not shown here).
fn short_reason(reason: &str, output: Option<&serde_json::Value>) -> String {
    if let Some(code) = output
        .and_then(|o| o.get("status_code"))
        .and_then(serde_json::Value::as_u64)
    {
        return format!("got HTTP {code}");
    }
    if reason.starts_with("retry condition") {
        return "met the retry condition".to_owned();
    }
    format!("failed: {}", clip(first_line(reason), 80))
}

fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

fn clip(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

impl EventSink for Progress {
    fn emit(&self, e: &Event) {
        let _guard = self.out.lock();
        if self.events_json {
            if let Ok(line) = serde_json::to_string(e) {
                outln!("{line}");
            }
        }
        self.handle(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_reasons_are_short() {
        let cond = format!("retry condition {{{{ {} }}}} holds", "x".repeat(240));
        assert_eq!(
            short_reason(&cond, Some(&serde_json::json!({"status_code": 503}))),
            "got HTTP 503"
        );
        assert_eq!(short_reason(&cond, None), "met the retry condition");
        let long = "connection refused ".repeat(20);
        assert!(short_reason(&long, None).chars().count() <= 90);
    }
}
