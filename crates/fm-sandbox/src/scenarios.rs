//! The incident scenarios the sandbox can stage, and the fixed cast of services
//! every scenario shares.
//!
//! A scenario decides three things: which service is on fire (and how: its
//! [`Profile`] shapes its logs and metrics in `signals.rs`), which remediation
//! counts as the right fix, and whether the fix can work at all. Everything the
//! model stand-in concludes must come from the logs/metrics/deploys those choices
//! produce — never from the scenario name.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

/// The incidents the sandbox can stage. See `docs/sandbox.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scenario {
    /// The reference's sample: payment-service leaks memory (45% -> 94% over 2 h).
    /// Right fix: a rolling restart.
    Oom,
    /// orders-service exhausted its database connection pool. Right fix: scale out.
    ConnectionPool,
    /// checkout-service got a bad deploy (v2.14.0) 20 minutes ago. Right fix: roll it back.
    BadDeploy,
    /// notification-service fails with TLS/DNS errors matching no known pattern.
    /// Nothing should be remediated; a human must look.
    Unknown,
    /// Like `Oom`, but the service never becomes healthy again, whatever is done.
    RemediationFails,
    /// Like `Oom`, but the logs API fails (HTTP 500) twice before answering and
    /// the metrics API hangs for 60 s, so callers' timeouts fire.
    FlakyContext,
}

impl Scenario {
    /// The scenario's command-line / file name (`oom`, `connection-pool`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Oom => "oom",
            Scenario::ConnectionPool => "connection-pool",
            Scenario::BadDeploy => "bad-deploy",
            Scenario::Unknown => "unknown",
            Scenario::RemediationFails => "remediation-fails",
            Scenario::FlakyContext => "flaky-context",
        }
    }

    /// Every scenario, in documentation order.
    pub fn all() -> &'static [Scenario] {
        &[
            Scenario::Oom,
            Scenario::ConnectionPool,
            Scenario::BadDeploy,
            Scenario::Unknown,
            Scenario::RemediationFails,
            Scenario::FlakyContext,
        ]
    }

    /// Looks a scenario up by [`Scenario::name`] (also accepts `_` for `-`, any case).
    pub fn from_name(name: &str) -> Option<Scenario> {
        let wanted = name.trim().to_ascii_lowercase().replace('_', "-");
        Scenario::all().iter().copied().find(|s| s.name() == wanted)
    }

    /// One line for `GET /_sandbox` and `fm sandbox --help`.
    pub fn description(self) -> &'static str {
        match self {
            Scenario::Oom => "payment-service leaks memory (45% -> 94% over 2 h, OutOfMemoryError logs, last deploy 3 days ago); right fix: rolling restart",
            Scenario::ConnectionPool => "orders-service exhausted its DB connection pool (100% utilization, 'timeout acquiring connection' logs); right fix: scale out",
            Scenario::BadDeploy => "checkout-service deploy v2.14.0 20 minutes ago, NullPointerException/500s since; right fix: roll back that deploy",
            Scenario::Unknown => "notification-service fails with TLS certificate / DNS errors matching no known pattern; nothing should be remediated",
            Scenario::RemediationFails => "like oom, but the service never recovers whatever is done",
            Scenario::FlakyContext => "like oom, but the logs API answers HTTP 500 twice and the metrics API hangs 60 s",
        }
    }

    /// The service this scenario's incident is about.
    pub fn incident_service(self) -> &'static str {
        match self {
            Scenario::Oom | Scenario::RemediationFails | Scenario::FlakyContext => {
                "payment-service"
            }
            Scenario::ConnectionPool => "orders-service",
            Scenario::BadDeploy => "checkout-service",
            Scenario::Unknown => "notification-service",
        }
    }

    /// How the incident service misbehaves.
    pub(crate) fn profile(self) -> Profile {
        match self {
            Scenario::Oom | Scenario::RemediationFails | Scenario::FlakyContext => Profile::Oom,
            Scenario::ConnectionPool => Profile::PoolExhausted,
            Scenario::BadDeploy => Profile::BadDeploy,
            Scenario::Unknown => Profile::Unknown,
        }
    }

    /// Whether the right fix brings the service back (false: it never recovers).
    pub(crate) fn fix_can_work(self) -> bool {
        !matches!(self, Scenario::RemediationFails | Scenario::Unknown)
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scenario::from_name(s).ok_or_else(|| {
            let names: Vec<&str> = Scenario::all().iter().map(|s| s.name()).collect();
            format!(
                "unknown scenario {s:?} (expected one of: {})",
                names.join(", ")
            )
        })
    }
}

/// How a service behaves, which shapes its logs and metric series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Profile {
    Healthy,
    Oom,
    PoolExhausted,
    BadDeploy,
    Unknown,
}

/// The remediations the sandbox recognises.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FixKind {
    /// `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]` changed.
    RollingRestart,
    /// Replicas went 0 -> n: every pod was recreated (after an outage).
    Recreate,
    /// Replicas raised above the original count.
    ScaleOut,
    /// A deploy was rolled back.
    Rollback,
}

impl FixKind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            FixKind::RollingRestart => "rolling_restart",
            FixKind::Recreate => "recreate",
            FixKind::ScaleOut => "scale_out",
            FixKind::Rollback => "rollback",
        }
    }
}

impl Profile {
    /// Does `fix` address this failure? (A leak is cleared by fresh pods,
    /// however they came about; a pool needs more capacity; a bad deploy
    /// needs the rollback of the bad deploy, checked by the caller.)
    pub(crate) fn fixed_by(self, fix: FixKind) -> bool {
        match self {
            Profile::Oom => matches!(fix, FixKind::RollingRestart | FixKind::Recreate),
            Profile::PoolExhausted => fix == FixKind::ScaleOut,
            Profile::BadDeploy => fix == FixKind::Rollback,
            Profile::Healthy | Profile::Unknown => false,
        }
    }
}

/// One service of the simulated fleet.
pub(crate) struct ServiceSpec {
    pub name: &'static str,
    pub replicas: i64,
    /// The pod most log lines come from (the reference's `payment-service-abc123`).
    pub pod: &'static str,
    pub other_pod: &'static str,
    /// Deploy history, newest last: (seconds before the sandbox started, version, author, description).
    pub deploys: &'static [(u64, &'static str, &'static str, &'static str)],
}

const DAY: u64 = 86_400;

/// How long before the sandbox started the bad deploy went out.
pub(crate) const BAD_DEPLOY_AGE_SECS: u64 = 20 * 60;
pub(crate) const BAD_DEPLOY_VERSION: &str = "v2.14.0";

/// The fleet. Every scenario has all four services (so the sandbox can show
/// that the pipeline touched only the right one); only the incident service misbehaves.
pub(crate) fn fleet(s: Scenario) -> Vec<ServiceSpec> {
    let checkout_deploys: &'static [(u64, &str, &str, &str)] = if s == Scenario::BadDeploy {
        &[
            (
                9 * DAY,
                "v2.13.1",
                "maria.chen",
                "Tune checkout retry budget",
            ),
            (
                2 * DAY,
                "v2.13.2",
                "maria.chen",
                "Fix rounding of tax lines",
            ),
            (
                BAD_DEPLOY_AGE_SECS,
                BAD_DEPLOY_VERSION,
                "dev.patel",
                "Apply promo-code discounts at checkout (new DiscountService)",
            ),
        ]
    } else {
        &[
            (
                9 * DAY,
                "v2.13.1",
                "maria.chen",
                "Tune checkout retry budget",
            ),
            (
                2 * DAY,
                "v2.13.2",
                "maria.chen",
                "Fix rounding of tax lines",
            ),
        ]
    };
    vec![
        ServiceSpec {
            name: "payment-service",
            replicas: 3,
            pod: "payment-service-abc123",
            other_pod: "payment-service-def456",
            deploys: &[
                (
                    24 * DAY,
                    "v2.8.1",
                    "sam.okafor",
                    "Add idempotency keys to refunds",
                ),
                (
                    10 * DAY,
                    "v2.8.2",
                    "sam.okafor",
                    "Upgrade card-network client",
                ),
                (
                    3 * DAY,
                    "v2.8.3",
                    "lena.novak",
                    "Batch settlement writes to the ledger",
                ),
            ],
        },
        ServiceSpec {
            name: "orders-service",
            replicas: 4,
            pod: "orders-service-7d9f8b-x2k9p",
            other_pod: "orders-service-7d9f8b-q8m3z",
            deploys: &[
                (13 * DAY, "v5.2.0", "ivan.petrov", "Paginate order history"),
                (6 * DAY, "v5.2.1", "ivan.petrov", "Index orders by customer"),
            ],
        },
        ServiceSpec {
            name: "checkout-service",
            replicas: 3,
            pod: "checkout-service-5c7d9-h4t2w",
            other_pod: "checkout-service-5c7d9-m9v6b",
            deploys: checkout_deploys,
        },
        ServiceSpec {
            name: "notification-service",
            replicas: 2,
            pod: "notification-service-6b8c-p3l7d",
            other_pod: "notification-service-6b8c-z5k1f",
            deploys: &[
                (12 * DAY, "v1.9.3", "ana.silva", "Template cache"),
                (
                    5 * DAY,
                    "v1.9.4",
                    "ana.silva",
                    "Retry partner webhooks with jitter",
                ),
            ],
        },
    ]
}

/// The alert a scenario starts from, shaped like the reference's Sample Input
/// (a PagerDuty webhook: `id`, `payload{source, severity, summary, triggered_at,
/// custom_details}`). `triggered_at` is now (whole seconds): the incident is
/// happening as the sandbox runs.
pub fn scenario_alert(s: Scenario) -> Value {
    let now = SystemTime::now();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    alert_at(
        s,
        &crate::time::rfc3339(UNIX_EPOCH + std::time::Duration::from_secs(secs)),
    )
}

/// [`scenario_alert`] with a fixed `triggered_at` (used for the files in `inputs/`).
pub fn scenario_alert_at(s: Scenario, triggered_at: &str) -> Value {
    alert_at(s, triggered_at)
}

fn alert_at(s: Scenario, triggered_at: &str) -> Value {
    let (id, severity, summary, details) = match s {
        Scenario::Oom => (
            "incident-12345",
            "critical",
            "payment-service: High memory usage (>90%)",
            json!({"memory_percent": 94, "pod": "payment-service-abc123", "namespace": "production", "original_replicas": 3}),
        ),
        Scenario::ConnectionPool => (
            "incident-12346",
            "critical",
            "orders-service: 25% of requests failing (HTTP 503)",
            json!({"error_ratio": 0.25, "pod": "orders-service-7d9f8b-x2k9p", "namespace": "production", "original_replicas": 4}),
        ),
        Scenario::BadDeploy => (
            "incident-12347",
            "critical",
            "checkout-service: HTTP 5xx rate above 30%",
            json!({"error_ratio": 0.35, "pod": "checkout-service-5c7d9-h4t2w", "namespace": "production", "original_replicas": 3}),
        ),
        Scenario::Unknown => (
            "incident-12348",
            "error",
            "notification-service: Elevated delivery failures (40%)",
            json!({"error_ratio": 0.4, "pod": "notification-service-6b8c-p3l7d", "namespace": "production", "original_replicas": 2}),
        ),
        Scenario::RemediationFails => (
            "incident-12349",
            "critical",
            "payment-service: High memory usage (>90%)",
            json!({"memory_percent": 94, "pod": "payment-service-abc123", "namespace": "production", "original_replicas": 3}),
        ),
        Scenario::FlakyContext => (
            "incident-12350",
            "critical",
            "payment-service: High memory usage (>90%)",
            json!({"memory_percent": 94, "pod": "payment-service-abc123", "namespace": "production", "original_replicas": 3}),
        ),
    };
    json!({
        "id": id,
        "payload": {
            "source": s.incident_service(),
            "severity": severity,
            "summary": summary,
            "triggered_at": triggered_at,
            "custom_details": details,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Scenario::all() {
            assert_eq!(Scenario::from_name(s.name()), Some(*s));
            assert_eq!(s.name().parse::<Scenario>(), Ok(*s));
        }
        assert_eq!(
            Scenario::from_name("Connection_Pool"),
            Some(Scenario::ConnectionPool)
        );
        assert!(Scenario::from_name("nope").is_none());
    }

    #[test]
    fn alerts_name_the_incident_service() {
        for s in Scenario::all() {
            let a = scenario_alert(*s);
            assert_eq!(a["payload"]["source"], s.incident_service());
            assert!(fleet(*s).iter().any(|f| f.name == s.incident_service()));
        }
    }
}
