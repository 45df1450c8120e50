//! The run's outcome: the pipeline's `outcome` declaration evaluated when the run ends (every
//! run, whatever its status), or the outcome a cancel asked for when the run stopped before it
//! acted.

use fm_expr::Value;

use crate::events::EventKind;
use crate::exec::cancel::CancelRequest;
use crate::exec::emit::Emitter;
use crate::exec::scope::{RunScope, RunShared};
use crate::model::Pipeline;
use crate::state::RunStatus;

pub(crate) struct Outcome {
    pub value: Option<String>,
    pub reason: Option<String>,
}

pub(crate) fn evaluate(
    p: &Pipeline,
    shared: &RunShared<'_>,
    emitter: &Emitter<'_>,
    status: RunStatus,
    cancel: Option<&CancelRequest>,
    acted: bool,
) -> Outcome {
    // A run cancelled before it acted with an outcome in the request (a server cancelling a
    // queued or early run because its incident resolved): that is what happened.
    if let (RunStatus::Cancelled, false, Some(req)) = (status, acted, cancel) {
        if let Some(o) = &req.outcome {
            return Outcome {
                value: Some(o.clone()),
                reason: Some(req.reason.clone()),
            };
        }
    }
    let Some(spec) = &p.outcome else {
        return Outcome {
            value: None,
            reason: None,
        };
    };
    let scope = RunScope { shared };
    let warn = |message: String| {
        emitter.emit(EventKind::Warning {
            stage: None,
            message,
        })
    };
    let value = match spec.value.render(&scope) {
        Ok(Value::Null) => None,
        Ok(Value::String(s)) if s.is_empty() => None,
        Ok(Value::String(s)) => match &spec.values {
            Some(allowed) if !allowed.contains(&s) => {
                warn(format!(
                    "the pipeline's outcome '{s}' is not one of its declared values ({}); no outcome is recorded",
                    allowed.join(", ")
                ));
                None
            }
            _ => Some(s),
        },
        Ok(other) => {
            warn(format!(
                "the pipeline's outcome must render to a name or none, not {}; no outcome is recorded",
                fm_expr::to_text(&other)
            ));
            None
        }
        Err(e) => {
            warn(format!(
                "the pipeline's outcome could not be evaluated; no outcome is recorded: {}",
                e.render()
            ));
            None
        }
    };
    let reason = match (&value, &spec.reason) {
        (Some(_), Some(t)) => match t.render_string(&scope) {
            Ok(r) if r.trim().is_empty() => None,
            Ok(r) => Some(r),
            Err(e) => {
                warn(format!(
                    "the pipeline's outcome reason could not be evaluated: {}",
                    e.render()
                ));
                None
            }
        },
        _ => None,
    };
    Outcome { value, reason }
}
