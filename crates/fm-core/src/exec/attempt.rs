//! One stage from its first attempt to its last: timeout per attempt, retry condition over the
//! attempt's `output`, backoff between attempts (honouring Retry-After).

use std::time::Instant;

use fm_expr::{is_truthy, Value};

use crate::component::{ErrorKind, StageContext, StageError};
use crate::events::{EventKind, LogLevel};
use crate::exec::emit::Emitter;
use crate::exec::scope::{OverlayScope, RunScope, RunShared};
use crate::model::Stage;

/// How a stage ended after all its attempts.
pub enum Settled {
    Succeeded { output: Value, attempts: u32 },
    Failed { error: StageError, attempts: u32 },
}

pub struct AttemptEnv<'a, 'p> {
    pub shared: &'a RunShared<'p>,
    pub emitter: &'a Emitter<'a>,
    pub dry_run: bool,
    pub artifacts_dir: Option<&'a std::path::Path>,
    pub budgets: &'a dyn crate::durability::BudgetLedger,
    pub journal: Option<&'a dyn crate::durability::StartJournal>,
}

pub async fn run_stage(stage: &Stage, env: &AttemptEnv<'_, '_>) -> Settled {
    let policy = stage.retry.as_ref();
    let max = policy.map_or(1, |p| p.max_attempts.max(1));
    let scope = RunScope { shared: env.shared };
    let id = stage.id.as_str();
    let emit_log = |level: LogLevel, message: String, data: Option<Value>| {
        env.emitter.emit(EventKind::Log {
            stage: Some(id.to_owned()),
            level,
            message,
            data,
        });
    };
    let emit_warning = |message: String| {
        env.emitter.emit(EventKind::Warning {
            stage: Some(id.to_owned()),
            message,
        });
    };
    let mut attempt = 1;
    loop {
        env.emitter.emit(EventKind::StageStarted {
            stage: id.to_owned(),
            attempt,
            started_at: humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
        });
        let cx = StageContext {
            run_id: &env.shared.run_id,
            pipeline: env.shared.pipeline,
            stage_id: id,
            attempt,
            scope: &scope,
            dry_run: env.dry_run,
            idempotent: stage.idempotent,
            artifacts_dir: env.artifacts_dir,
            emit_log: &emit_log,
            emit_warning: &emit_warning,
        };
        let began = Instant::now();
        // Only a stage that must not run twice needs its start on record before it acts: an
        // idempotent one that was in flight at a crash is simply run again.
        if let Some(journal) = env.journal.filter(|_| !stage.idempotent) {
            if let Err(e) = journal
                .stage_starting(&env.shared.run_id, id, attempt)
                .await
            {
                // Acting without a durable trace could repeat the action after a crash.
                let error = StageError::new(
                    ErrorKind::Internal,
                    format!("could not record the start of stage '{id}' in the store ({e}); not acting without it"),
                )
                .retryable(false);
                return Settled::Failed {
                    error,
                    attempts: attempt,
                };
            }
        }
        if let Err(error) = consume_budget(stage, env, &scope, &cx).await {
            return Settled::Failed {
                error,
                attempts: attempt,
            };
        }
        // From here the stage may change something outside: a stop must now give the run's
        // catch and finally stages their chance to tell people (dry runs change nothing).
        if !stage.idempotent && !env.dry_run {
            if let Some(&i) = env.shared.index.get(id) {
                env.shared.mark_acted(i);
            }
        }
        let result = match stage.timeout {
            Some(limit) => match tokio::time::timeout(limit, stage.runtime.execute(&cx)).await {
                Ok(r) => r,
                Err(_) => Err(StageError::new(
                    ErrorKind::Timeout,
                    format!(
                        "stage '{id}' timed out after {} ms (its 'timeout')",
                        limit.as_millis()
                    ),
                )),
            },
            None => stage.runtime.execute(&cx).await,
        };
        let _ = began;

        // Decide: done, or another attempt (and why).
        let (reason, failure) = match result {
            // A request described but not sent (dry run) has no result to judge: nothing to retry.
            Ok(output) if env.dry_run && output.get("dry_run") == Some(&Value::Bool(true)) => {
                return Settled::Succeeded {
                    output,
                    attempts: attempt,
                };
            }
            Ok(output) => match policy.and_then(|p| p.condition.as_ref()) {
                None => {
                    return Settled::Succeeded {
                        output,
                        attempts: attempt,
                    }
                }
                Some(cond) => match condition_holds(cond, &scope, &output) {
                    Ok(false) => {
                        return Settled::Succeeded {
                            output,
                            attempts: attempt,
                        }
                    }
                    Ok(true) => (
                        format!("retry condition {} holds", cond.source()),
                        StageError::new(
                            ErrorKind::RetryExhausted,
                            format!(
                                "retry condition {} still held after {attempt} attempt{}",
                                cond.source(),
                                if attempt == 1 { "" } else { "s" }
                            ),
                        )
                        .with_output(output),
                    ),
                    Err(e) => {
                        return Settled::Failed {
                            error: e,
                            attempts: attempt,
                        }
                    }
                },
            },
            Err(error) => {
                if !error.retryable {
                    return Settled::Failed {
                        error,
                        attempts: attempt,
                    };
                }
                // A failed attempt with a recorded output (an HTTP reply with a bad status) is
                // retried only if the retry condition, when there is one, holds for it.
                if let (Some(cond), Some(out)) =
                    (policy.and_then(|p| p.condition.as_ref()), &error.output)
                {
                    match condition_holds(cond, &scope, out) {
                        Ok(true) => {}
                        Ok(false) => {
                            return Settled::Failed {
                                error,
                                attempts: attempt,
                            }
                        }
                        Err(e) => {
                            return Settled::Failed {
                                error: e,
                                attempts: attempt,
                            }
                        }
                    }
                }
                (error.message.clone(), error)
            }
        };
        if attempt >= max {
            let mut error = failure;
            if max > 1 && error.kind != ErrorKind::RetryExhausted {
                error.message = format!("{} (gave up after {attempt} attempts)", error.message);
            }
            return Settled::Failed {
                error,
                attempts: attempt,
            };
        }
        let mut delay = policy
            .map(|p| p.delay_before(attempt + 1))
            .unwrap_or_default();
        if let Some(ms) = failure.retry_after_ms {
            delay = delay.max(std::time::Duration::from_millis(ms));
        }
        env.emitter.emit(EventKind::StageRetrying {
            stage: id.to_owned(),
            attempt,
            delay_ms: u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            reason,
            output: failure.output.clone(),
        });
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

fn condition_holds(
    cond: &fm_expr::Template,
    scope: &RunScope<'_, '_>,
    output: &Value,
) -> Result<bool, StageError> {
    let overlay = OverlayScope {
        parent: scope,
        name: "output",
        value: output,
    };
    cond.render(&overlay).map(|v| is_truthy(&v)).map_err(|e| {
        StageError::new(
            ErrorKind::Template,
            format!("retry condition failed to evaluate: {}", e.render()),
        )
        .retryable(false)
        .with_output(output.clone())
    })
}

/// Checks and consumes the stage's remediation budget before an attempt acts. Dry runs send no
/// mutating request, so they consume nothing.
async fn consume_budget(
    stage: &Stage,
    env: &AttemptEnv<'_, '_>,
    scope: &RunScope<'_, '_>,
    cx: &StageContext<'_>,
) -> Result<(), StageError> {
    let Some(budget) = &stage.budget else {
        return Ok(());
    };
    let key = budget.key.render_string(scope).map_err(|e| {
        StageError::new(ErrorKind::Template, format!("budget.key: {}", e.render())).retryable(false)
    })?;
    if env.dry_run {
        cx.log(
            LogLevel::Info,
            format!("dry run: budget '{key}' not consumed"),
            None,
        );
        return Ok(());
    }
    let per = humantime::format_duration(budget.per);
    match env
        .budgets
        .try_consume(&key, budget.max, budget.per, &env.shared.run_id, &stage.id)
        .await
    {
        Ok(crate::durability::BudgetDecision::Allowed { used }) => {
            cx.log(
                LogLevel::Info,
                format!("budget '{key}': {used} of {} per {per} used", budget.max),
                None,
            );
            Ok(())
        }
        Ok(crate::durability::BudgetDecision::Exceeded { used }) => Err(StageError::new(
            ErrorKind::BudgetExceeded,
            format!(
                "budget '{key}' exceeded: {used} of {} per {per} already used; not acting again automatically",
                budget.max
            ),
        )
        .retryable(false)),
        Err(e) => Err(StageError::new(
            ErrorKind::BudgetExceeded,
            format!("budget '{key}' could not be checked ({e}); refusing to act without it"),
        )
        .retryable(false)),
    }
}
