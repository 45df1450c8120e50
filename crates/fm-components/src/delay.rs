//! `delay`: wait, then succeed. For pipelines that must give a system time to settle (wait
//! before a first health check), and for tests of timing behaviour. `ms` is milliseconds or a
//! duration string ("30s"); a template is allowed.

use std::sync::Arc;
use std::time::Duration;

use fm_core::model::stage_fields::parse_duration;
use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, ErrorKind, StageContext, StageError, StageRuntime};
use fm_expr::Value;
use futures::future::BoxFuture;
use serde_json::json;

pub struct Delay;

#[derive(Debug)]
pub struct DelayRuntime {
    duration: ValueTemplate,
}

/// A day: longer waits belong in a scheduler, not a run.
const MAX_DELAY: Duration = Duration::from_secs(86_400);

impl Component for Delay {
    fn name(&self) -> &'static str {
        "delay"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["sleep", "wait"]
    }

    fn summary(&self) -> &'static str {
        "Wait for a duration, then succeed"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let duration = r.value_template("ms", &["duration"]);
        if duration.is_none() && !r.has("ms", &["duration"]) {
            r.missing("ms");
        }
        let duration = duration?;
        if let ValueTemplate::Literal(v) = &duration {
            if parse_duration(v).is_none_or(|d| d > MAX_DELAY) {
                let p = r.key_path("ms");
                r.problem_with_hint(
                    "invalid_value",
                    p,
                    "'ms' must be milliseconds or a duration like \"30s\", at most a day",
                    "for example 500 or \"2s\"",
                );
                return None;
            }
        }
        Some(Arc::new(DelayRuntime { duration }))
    }
}

impl StageRuntime for DelayRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let v = self
                .duration
                .render(cx.scope)
                .map_err(|e| StageError::template(&e, "config.ms"))?;
            let d =
                parse_duration(&v)
                    .filter(|d| *d <= MAX_DELAY)
                    .ok_or_else(|| {
                        StageError::new(
                    ErrorKind::Config,
                    format!("config.ms rendered to {v}, which is not a duration of at most a day"),
                )
                .retryable(false)
                    })?;
            tokio::time::sleep(d).await;
            Ok(json!({ "slept_ms": u64::try_from(d.as_millis()).unwrap_or(u64::MAX) }))
        })
    }
}
