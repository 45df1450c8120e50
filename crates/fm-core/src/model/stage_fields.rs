//! Reading the engine-level keys of a stage: retry, timeout, trigger, on_error, budget.

use std::time::Duration;

use fm_expr::Value;

use crate::model::pipeline::{Backoff, BudgetSpec, OnError, RetryPolicy, Trigger};
use crate::model::reader::ConfigReader;
use crate::problem::did_you_mean;

/// Reads a retry object (`max_attempts`, `delay_seconds`|`delay_ms`, `backoff`, `max_delay_ms`,
/// `jitter`, `condition`). Its condition may read `output`: the attempt's output.
pub fn read_retry(r: &mut ConfigReader<'_, '_>) -> Option<RetryPolicy> {
    let max_attempts = r.u64("max_attempts", &["attempts", "max_retries_total"]);
    let delay_s = r.f64("delay_seconds", &[]);
    let delay_ms = r.u64("delay_ms", &[]);
    let backoff = r.string("backoff", &[]);
    let max_delay_ms = r.u64("max_delay_ms", &[]);
    let jitter = r.bool("jitter", &[]);
    let condition = r.condition("condition", &["retry_if", "while"]);
    let path = r.path().to_owned();

    let max_attempts = match max_attempts {
        Some(0) => {
            r.problem(
                "invalid_value",
                format!("{path}.max_attempts"),
                "max_attempts must be at least 1",
            );
            1
        }
        Some(n) if n > 100 => {
            r.problem_with_hint(
                "invalid_value",
                format!("{path}.max_attempts"),
                format!("max_attempts {n} is more than 100"),
                "a stage that needs more than 100 attempts should poll with a longer delay",
            );
            100
        }
        Some(n) => n as u32,
        None => 3,
    };
    let delay = match (delay_s, delay_ms) {
        (Some(_), Some(_)) => {
            r.problem(
                "conflicting_keys",
                path.clone(),
                "give delay_seconds or delay_ms, not both",
            );
            Duration::ZERO
        }
        (Some(s), None) if s >= 0.0 && s.is_finite() && s < 86_400.0 => Duration::from_secs_f64(s),
        (Some(s), None) => {
            r.problem(
                "invalid_value",
                format!("{path}.delay_seconds"),
                format!("delay_seconds must be between 0 and 86400, got {s}"),
            );
            Duration::ZERO
        }
        (None, Some(ms)) => Duration::from_millis(ms),
        (None, None) => Duration::from_secs(1),
    };
    let backoff = match backoff.as_deref() {
        None | Some("fixed") | Some("constant") => Backoff::Fixed,
        Some("exponential") => Backoff::Exponential {
            max_delay: Duration::from_millis(max_delay_ms.unwrap_or(60_000)),
            jitter: jitter.unwrap_or(true),
            factor: 2.0,
        },
        Some(other) => {
            let hint = did_you_mean(other, ["fixed", "exponential"])
                .map_or("use 'fixed' or 'exponential'".to_owned(), |s| {
                    format!("did you mean '{s}'?")
                });
            r.problem_with_hint(
                "invalid_value",
                format!("{path}.backoff"),
                format!("unknown backoff '{other}'"),
                hint,
            );
            Backoff::Fixed
        }
    };
    Some(RetryPolicy {
        max_attempts,
        delay,
        backoff,
        condition,
    })
}

/// A duration in milliseconds: a number, or a string like "30s", "500ms", "2m".
pub fn read_duration_ms(r: &mut ConfigReader<'_, '_>, key: &'static str) -> Option<Duration> {
    let (path, v) = r.raw(key, &[])?;
    parse_duration(v).or_else(|| {
        r.problem_with_hint(
            "invalid_value",
            path,
            format!("'{key}' must be milliseconds (a number) or a duration like \"30s\""),
            "for example 15000 or \"15s\"",
        );
        None
    })
}

pub fn parse_duration(v: &Value) -> Option<Duration> {
    match v {
        Value::Number(n) => n.as_u64().map(Duration::from_millis).or_else(|| {
            n.as_f64()
                .filter(|f| *f >= 0.0 && f.is_finite() && *f < 1e12)
                .map(|f| Duration::from_secs_f64(f / 1000.0))
        }),
        Value::String(s) => humantime::parse_duration(s.trim()).ok(),
        _ => None,
    }
}

pub fn read_trigger(r: &mut ConfigReader<'_, '_>) -> Trigger {
    let Some(s) = r.string("trigger", &["trigger_rule"]) else {
        return Trigger::default();
    };
    Trigger::parse(&s).unwrap_or_else(|| {
        let path = r.key_path("trigger");
        let hint = did_you_mean(&s, Trigger::NAMES)
            .map_or(format!("one of: {}", Trigger::NAMES.join(", ")), |x| {
                format!("did you mean '{x}'?")
            });
        r.problem_with_hint(
            "invalid_value",
            path,
            format!("unknown trigger '{s}'"),
            hint,
        );
        Trigger::default()
    })
}

pub fn read_on_error(r: &mut ConfigReader<'_, '_>) -> OnError {
    match r.string("on_error", &[]).as_deref() {
        // `propagate` is FlowMason's name for the default.
        None | Some("fail") | Some("propagate") => OnError::Fail,
        Some("continue") => OnError::Continue,
        Some(other) => {
            let path = r.key_path("on_error");
            r.problem_with_hint(
                "invalid_value",
                path,
                format!("unknown on_error '{other}'"),
                "use 'fail' (the default; FlowMason writes 'propagate') or 'continue'",
            );
            OnError::Fail
        }
    }
}

/// `budget: {key, max, per}`: at most `max` executions of this stage per `per` for the key.
pub fn read_budget(r: &mut ConfigReader<'_, '_>) -> Option<BudgetSpec> {
    let mut b = r.object("budget", &[])?;
    let key = b.template("key", &[]);
    let max = b.u64("max", &[]);
    let per = read_duration_ms(&mut b, "per");
    let path = b.path().to_owned();
    if key.is_none() {
        b.missing("key");
    }
    if max.is_none() {
        b.missing("max");
    }
    if per.is_none() && !b.has("per", &[]) {
        b.missing("per");
    }
    b.finish();
    let _ = path;
    Some(BudgetSpec {
        key: key?,
        max: u32::try_from(max?).unwrap_or(u32::MAX),
        per: per?,
    })
}
