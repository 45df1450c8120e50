//! Turning state changes into events: numbered, timed, secrets redacted, sent to the sink.

use std::sync::Mutex;
use std::time::Instant;

use crate::events::{Event, EventKind, EventSink};
use crate::secrets::Redactor;

pub struct Emitter<'a> {
    sink: &'a dyn EventSink,
    redactor: Redactor,
    started: Instant,
    /// Held while an event is built and delivered, so sequence numbers match delivery order.
    seq: Mutex<u64>,
}

impl<'a> Emitter<'a> {
    pub fn new(sink: &'a dyn EventSink, redactor: Redactor, started: Instant) -> Self {
        Emitter {
            sink,
            redactor,
            started,
            seq: Mutex::new(0),
        }
    }

    pub fn emit(&self, kind: EventKind) {
        let kind = redact(kind, &self.redactor);
        let mut seq = match self.seq.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let event = Event {
            seq: *seq,
            at_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            kind,
        };
        *seq += 1;
        self.sink.emit(&event);
    }
}

/// Masks every secret value anywhere in an event: outputs, errors, messages, log data.
pub fn redact(kind: EventKind, r: &Redactor) -> EventKind {
    if r.is_empty() {
        return kind;
    }
    let s = |x: String| r.redact_str(&x);
    let v = |mut x: fm_expr::Value| {
        r.redact_value(&mut x);
        x
    };
    let err = |mut e: crate::component::StageError| {
        e.message = r.redact_str(&e.message);
        if let Some(o) = e.output.as_mut() {
            r.redact_value(o);
        }
        e
    };
    match kind {
        EventKind::RunStarted {
            run_id,
            pipeline,
            started_at,
            input,
            dry_run,
        } => EventKind::RunStarted {
            run_id,
            pipeline,
            started_at,
            input: v(input),
            dry_run,
        },
        EventKind::StageRetrying {
            stage,
            attempt,
            delay_ms,
            reason,
            output,
        } => EventKind::StageRetrying {
            stage,
            attempt,
            delay_ms,
            reason: s(reason),
            output: output.map(v),
        },
        EventKind::StageSucceeded {
            stage,
            output,
            attempts,
            duration_ms,
        } => EventKind::StageSucceeded {
            stage,
            output: v(output),
            attempts,
            duration_ms,
        },
        EventKind::StageFailed {
            stage,
            error,
            attempts,
            duration_ms,
            fatal,
        } => EventKind::StageFailed {
            stage,
            error: err(error),
            attempts,
            duration_ms,
            fatal,
        },
        EventKind::StageCancelled {
            stage,
            duration_ms,
            reason,
        } => EventKind::StageCancelled {
            stage,
            duration_ms,
            reason: s(reason),
        },
        EventKind::StageSkipped { stage, mut reason } => {
            reason.message = s(reason.message);
            EventKind::StageSkipped { stage, reason }
        }
        EventKind::Log {
            stage,
            level,
            message,
            data,
        } => EventKind::Log {
            stage,
            level,
            message: s(message),
            data: data.map(v),
        },
        EventKind::Warning { stage, message } => EventKind::Warning {
            stage,
            message: s(message),
        },
        EventKind::RunStopping {
            status,
            cause,
            acted,
            cleanup_scopes,
            cleanup_ms,
        } => EventKind::RunStopping {
            status,
            cause: s(cause),
            acted,
            cleanup_scopes,
            cleanup_ms,
        },
        EventKind::RunFinished {
            status,
            output,
            error,
            duration_ms,
            outcome,
            outcome_reason,
            stop,
        } => EventKind::RunFinished {
            status,
            output: output.map(v),
            error: error.map(|mut e| {
                e.message = r.redact_str(&e.message);
                e
            }),
            duration_ms,
            outcome,
            outcome_reason: outcome_reason.map(s),
            stop: stop.map(|mut st| {
                st.cause = r.redact_str(&st.cause);
                st
            }),
        },
        other @ EventKind::StageStarted { .. } => other,
    }
}
