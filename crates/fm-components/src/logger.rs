//! `logger`: a line in the run's log (stderr during the run, and the run record). `message` is a
//! template; `level` is debug, info, warn or error; `data` is any JSON (templates allowed).
//! Output: `{message, level, data}` as logged.

use std::sync::Arc;

use fm_core::model::{ConfigReader, ValueTemplate};
use fm_core::{Component, LogLevel, StageContext, StageError, StageRuntime};
use fm_expr::{Template, Value};
use futures::future::BoxFuture;
use serde_json::json;

pub struct Logger;

#[derive(Debug)]
pub struct LoggerRuntime {
    message: Template,
    level: LogLevel,
    data: Option<ValueTemplate>,
}

impl Component for Logger {
    fn name(&self) -> &'static str {
        "logger"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["log"]
    }

    fn summary(&self) -> &'static str {
        "Write a log line (and structured data) to the run's log"
    }

    fn compile(&self, r: &mut ConfigReader<'_, '_>) -> Option<Arc<dyn StageRuntime>> {
        let message = r.template("message", &[]);
        if !r.has("message", &[]) {
            r.missing("message");
        }
        let level = match r.string("level", &[]) {
            None => LogLevel::Info,
            Some(l) => match LogLevel::parse(&l) {
                Some(level) => level,
                None => {
                    let p = r.key_path("level");
                    r.problem_with_hint(
                        "invalid_value",
                        p,
                        format!("unknown log level '{l}'"),
                        "use debug, info, warn or error",
                    );
                    return None;
                }
            },
        };
        let data = r.value_template("data", &[]);
        Some(Arc::new(LoggerRuntime {
            message: message?,
            level,
            data,
        }))
    }
}

impl StageRuntime for LoggerRuntime {
    fn idempotent(&self) -> bool {
        true
    }

    fn execute<'a>(&'a self, cx: &'a StageContext<'a>) -> BoxFuture<'a, Result<Value, StageError>> {
        Box::pin(async move {
            let message = self.message.render_string(cx.scope).map_err(|e| {
                StageError::new(
                    fm_core::ErrorKind::Template,
                    format!("config.message: {}", e.render()),
                )
                .retryable(false)
            })?;
            let data = match &self.data {
                Some(d) => Some(
                    d.render(cx.scope)
                        .map_err(|e| StageError::template(&e, "config.data"))?,
                ),
                None => None,
            };
            cx.log(self.level, message.clone(), data.clone());
            Ok(json!({"message": message, "level": self.level.as_str(), "data": data}))
        })
    }
}
