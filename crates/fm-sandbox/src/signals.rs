//! What a service "emits": its error logs and its metric series, as pure
//! functions of its [`Profile`] and of time.
//!
//! Time is measured back from an *anchor*: the moment the incident is "as of".
//! While the incident is ongoing the anchor is now (the incident is always
//! happening, however long the sandbox runs); once the right fix has taken
//! effect the anchor freezes at the recovery time, and samples after it show a
//! healthy service. This keeps logs inside any "-30m" window and metric curves
//! ending where the alert says they are.

use std::time::{Duration, SystemTime};

use crate::scenarios::Profile;
use crate::time::{from_unix_secs, unix_secs};

/// One log line as the logs API returns it.
#[derive(Clone, Debug)]
pub(crate) struct LogEntry {
    pub ts: SystemTime,
    pub level: &'static str,
    pub pod: String,
    pub message: String,
}

/// (how many, level, use the main pod?, message template; `{n}` becomes a per-line number).
type LogTemplate = (usize, &'static str, bool, &'static str);

fn templates(profile: Profile) -> &'static [LogTemplate] {
    match profile {
        Profile::Healthy => &[],
        Profile::Oom => &[
            (14, "error", true, "java.lang.OutOfMemoryError: Java heap space (appending settlement batch {n}) at com.company.payments.ledger.BatchBuffer.append(BatchBuffer.java:88)"),
            (6, "error", false, "GC overhead limit exceeded: 98% of CPU time spent in GC over the last 60s (heap 1.94Gi of 2.00Gi)"),
            (3, "error", false, "Settlement batch {n} aborted: request timed out after 30000ms"),
            (4, "warn", true, "Full GC pause 2.{n}s (heap after GC 1.9Gi of 2.0Gi)"),
        ],
        Profile::PoolExhausted => &[
            (16, "error", true, "timeout acquiring connection from pool orders-db after 5000ms (active=50, idle=0, waiting=1{n})"),
            (5, "error", false, "pool exhausted: rejected GET /api/orders/{n} after waiting 5000ms for a database connection"),
            (2, "error", false, "postgres: FATAL: too many connections for role \"orders\""),
            (3, "warn", true, "slow query 4.{n}s: SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC"),
        ],
        Profile::BadDeploy => &[
            (15, "error", true, "java.lang.NullPointerException: Cannot invoke \"Promotion.discountFor(Cart)\" because \"promo\" is null at com.company.checkout.DiscountService.apply(DiscountService.java:57) [checkout-service v2.14.0]"),
            (9, "error", false, "HTTP 500 POST /api/checkout/complete (cart c-{n}): unhandled exception in DiscountService [checkout-service v2.14.0]"),
            (2, "warn", true, "feature flag promo_codes_v2 enabled by default in v2.14.0"),
        ],
        Profile::Unknown => &[
            (12, "error", true, "TLS handshake with smtp-relay.partner.example:465 failed: x509: certificate has expired or is not yet valid"),
            (7, "error", false, "webhook delivery to hooks.partner.example failed: dial tcp: lookup hooks.partner.example on 10.96.0.10:53: server misbehaving"),
            (2, "warn", true, "delivery queue depth 48{n} (threshold 1000)"),
        ],
    }
}

/// The service's log lines up to `anchor`, newest first. A bad deploy's errors
/// start just after the deploy (`deploy_at`).
pub(crate) fn logs(
    profile: Profile,
    pods: (&str, &str),
    anchor: SystemTime,
    deploy_at: Option<SystemTime>,
) -> Vec<LogEntry> {
    let mut lines: Vec<(&'static str, String, String)> = Vec::new();
    for (count, level, main_pod, template) in templates(profile) {
        for i in 0..*count {
            // Most lines from the main pod; "other pod" lines alternate so two pods show up.
            let pod = if *main_pod || i % 2 == 1 {
                pods.0
            } else {
                pods.1
            };
            let message = template.replace("{n}", &(8800 + i * 7).to_string());
            lines.push((level, pod.to_string(), message));
        }
    }
    let n = lines.len();
    if n == 0 {
        return Vec::new();
    }
    // Interleave the kinds of line deterministically (a fixed stride that is
    // coprime with n), so the newest lines are not all of one kind.
    let stride = (1..n)
        .rev()
        .find(|s| gcd(*s, n) == 1 && *s * 3 < n * 2)
        .unwrap_or(1);
    let end = unix_secs(anchor) - 20.0;
    let mut start = unix_secs(anchor) - 25.0 * 60.0;
    if let Some(d) = deploy_at {
        start = start.max(unix_secs(d) + 45.0);
    }
    let span = (end - start).max(1.0);
    let mut out: Vec<LogEntry> = (0..n)
        .map(|k| {
            let (level, pod, message) = &lines[(k * stride) % n];
            // Older lines first (k = 0 is the oldest); a little irregular spacing.
            let frac = (k as f64 + 0.37 * ((k * 7919) % 11) as f64 / 11.0) / n as f64;
            LogEntry {
                ts: from_unix_secs(start + span * frac),
                level,
                pod: pod.clone(),
                message: message.clone(),
            }
        })
        .collect();
    out.sort_by_key(|e| std::cmp::Reverse(e.ts));
    out
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// The metric names every service exports.
pub(crate) const METRICS: &[&str] = &[
    "db_pool_utilization_percent",
    "db_pool_wait_seconds",
    "http_requests_error_ratio",
    "process_memory_percent",
    "up",
];

/// Everything needed to evaluate a service's series at a time.
pub(crate) struct SeriesContext<'a> {
    pub profile: Profile,
    /// Unix seconds of the anchor (see the module docs).
    pub anchor: f64,
    /// Whether the service recovered at the anchor.
    pub recovered: bool,
    /// Unix seconds of the bad deploy, for [`Profile::BadDeploy`].
    pub deploy_at: Option<f64>,
    /// Windows (Unix seconds, end `None` = ongoing) when the service had 0 replicas.
    pub outages: &'a [(f64, Option<f64>)],
}

/// The value of `metric` at Unix time `t`, or None for an unknown metric.
pub(crate) fn metric_value(ctx: &SeriesContext<'_>, metric: &str, t: f64) -> Option<f64> {
    let down = ctx
        .outages
        .iter()
        .any(|(s, e)| t >= *s && e.is_none_or(|e| t < e));
    let baseline = |m: &str| -> f64 {
        match m {
            "up" => 1.0,
            "process_memory_percent" => round(47.0 + 1.5 * (t / 900.0).sin(), 1),
            "db_pool_utilization_percent" => round(31.0 + 4.0 * (t / 700.0).sin(), 1),
            "db_pool_wait_seconds" => 0.004,
            _ => 0.002,
        }
    };
    if !METRICS.contains(&metric) {
        return None;
    }
    if metric == "up" {
        return Some(if down { 0.0 } else { 1.0 });
    }
    if ctx.recovered && t > ctx.anchor {
        // Fresh pods after the fix: a healthy service, memory low after restart.
        return Some(match metric {
            "process_memory_percent" => round(38.0 + (t / 900.0).sin(), 1),
            m => baseline(m),
        });
    }
    let age = ctx.anchor - t; // seconds before the anchor
    let ramp = |from: f64, to: f64, start_age: f64, end_age: f64| -> f64 {
        // Linear from `from` at start_age to `to` at end_age (ages decrease with time).
        if age >= start_age {
            from
        } else if age <= end_age {
            to
        } else {
            from + (to - from) * (start_age - age) / (start_age - end_age)
        }
    };
    let v = match (ctx.profile, metric) {
        (Profile::Oom, "process_memory_percent") => round(ramp(45.0, 94.0, 7200.0, 0.0), 1),
        (Profile::Oom, "http_requests_error_ratio") => round(ramp(0.002, 0.08, 900.0, 0.0), 4),
        (Profile::PoolExhausted, "db_pool_utilization_percent") => {
            round(ramp(35.0, 100.0, 1500.0, 900.0), 1)
        }
        (Profile::PoolExhausted, "db_pool_wait_seconds") => {
            round(ramp(0.004, 4.8, 1500.0, 900.0), 3)
        }
        (Profile::PoolExhausted, "http_requests_error_ratio") => {
            round(ramp(0.002, 0.25, 1200.0, 900.0), 4)
        }
        (Profile::BadDeploy, "http_requests_error_ratio") => match ctx.deploy_at {
            Some(d) if t >= d + 30.0 => round(0.35 + 0.01 * (t / 120.0).sin(), 4),
            _ => baseline(metric),
        },
        (Profile::BadDeploy, "process_memory_percent") => match ctx.deploy_at {
            Some(d) if t >= d => round(52.0 + (t / 900.0).sin(), 1),
            _ => baseline(metric),
        },
        (Profile::Unknown, "http_requests_error_ratio") => {
            round(ramp(0.002, 0.4, 1260.0, 1200.0), 4)
        }
        (_, m) => baseline(m),
    };
    Some(v)
}

fn round(v: f64, decimals: i32) -> f64 {
    let p = 10f64.powi(decimals);
    (v * p).round() / p
}

/// Prometheus renders sample values with Go's `strconv.FormatFloat(v, 'f', -1, 64)`:
/// shortest representation, no exponent. Rust's `Display` for f64 matches that.
pub(crate) fn format_sample(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v}")
    }
}

/// How far back from the anchor a bad deploy happened.
pub(crate) fn deploy_time(started: SystemTime, secs_before_start: u64) -> SystemTime {
    started
        .checked_sub(Duration::from_secs(secs_before_start))
        .unwrap_or(started)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::{fleet, Scenario};

    #[test]
    fn oom_memory_climbs_45_to_94_over_two_hours() {
        let ctx = SeriesContext {
            profile: Profile::Oom,
            anchor: 10_000.0,
            recovered: false,
            deploy_at: None,
            outages: &[],
        };
        assert_eq!(
            metric_value(&ctx, "process_memory_percent", 10_000.0 - 7200.0),
            Some(45.0)
        );
        assert_eq!(
            metric_value(&ctx, "process_memory_percent", 10_000.0),
            Some(94.0)
        );
        assert_eq!(metric_value(&ctx, "nope", 10_000.0), None);
        assert_eq!(format_sample(94.0), "94");
        assert_eq!(format_sample(0.002), "0.002");
    }

    #[test]
    fn oom_logs_are_newest_first_and_in_window() {
        let fleet = fleet(Scenario::Oom);
        let anchor = SystemTime::now();
        let l = logs(
            Profile::Oom,
            (fleet[0].pod, fleet[0].other_pod),
            anchor,
            None,
        );
        assert_eq!(l.len(), 27);
        assert!(l.windows(2).all(|w| w[0].ts >= w[1].ts));
        let oom = l
            .iter()
            .filter(|e| e.message.contains("OutOfMemoryError") && e.pod == "payment-service-abc123")
            .count();
        assert_eq!(oom, 14);
        let oldest = unix_secs(anchor) - unix_secs(l[l.len() - 1].ts);
        assert!(oldest <= 25.0 * 60.0);
    }
}
