//! How a sandbox is configured: scenario, port, per-endpoint latencies, recovery delay.

use std::time::Duration;

use crate::scenarios::Scenario;

/// The port `fm sandbox` listens on when none is given; the files in `inputs/`
/// point at it.
pub const DEFAULT_PORT: u16 = 8089;

/// Options for [`crate::Sandbox::start`].
#[derive(Clone, Debug)]
pub struct SandboxOptions {
    pub scenario: Scenario,
    /// 0 = an ephemeral port (tests).
    pub port: u16,
    pub latencies: Latencies,
    /// How long after the right fix the service reports healthy again.
    pub recovery_delay: Duration,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        SandboxOptions {
            scenario: Scenario::Oom,
            port: 0,
            latencies: Latencies::default(),
            recovery_delay: Duration::from_secs(2),
        }
    }
}

/// Artificial response latency per endpoint, so a demo run has the shape of
/// the reference's Execution Timeline (scaled by 1/10) and benchmarks can turn
/// it off ([`Latencies::zero`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Latencies {
    /// `POST /logs/query` (reference: fetch-logs 4.9 s).
    pub logs: Duration,
    /// Prometheus queries (reference: fetch-metrics 2.9 s).
    pub metrics: Duration,
    /// Deploy API, list and rollback (reference: fetch-deploys 1.9 s).
    pub deploys: Duration,
    /// Chat completion that is an incident analysis (reference: analyze-incident 3 s).
    pub model_analysis: Duration,
    /// Chat completion that is a postmortem / free text (reference: create-postmortem 3 s).
    pub model_postmortem: Duration,
    /// Kubernetes PATCH/PUT (reference: auto-restart 6.9 s).
    pub k8s_patch: Duration,
    /// Kubernetes GET.
    pub k8s_read: Duration,
    /// `GET /services/{service}/health`.
    pub health: Duration,
    /// Statuspage (reference: update-status 1 s).
    pub statuspage: Duration,
    /// Slack webhook (reference: notify-team 1 s).
    pub slack: Duration,
    /// PagerDuty Events API.
    pub pagerduty: Duration,
}

impl Latencies {
    /// No artificial latency anywhere (benchmarks, most tests). The
    /// flaky-context scenario's 60 s metrics hang still applies: it is the
    /// scenario, not a latency.
    pub fn zero() -> Latencies {
        Latencies {
            logs: Duration::ZERO,
            metrics: Duration::ZERO,
            deploys: Duration::ZERO,
            model_analysis: Duration::ZERO,
            model_postmortem: Duration::ZERO,
            k8s_patch: Duration::ZERO,
            k8s_read: Duration::ZERO,
            health: Duration::ZERO,
            statuspage: Duration::ZERO,
            slack: Duration::ZERO,
            pagerduty: Duration::ZERO,
        }
    }
}

impl Default for Latencies {
    /// The reference's Execution Timeline scaled by 1/10.
    fn default() -> Self {
        let ms = Duration::from_millis;
        Latencies {
            logs: ms(490),
            metrics: ms(290),
            deploys: ms(190),
            model_analysis: ms(300),
            model_postmortem: ms(300),
            k8s_patch: ms(690),
            k8s_read: ms(50),
            health: ms(50),
            statuspage: ms(100),
            slack: ms(100),
            pagerduty: ms(100),
        }
    }
}
