//! `fm-sandbox`: the simulated outside world the incident-response pipeline
//! talks to in the demo, the tests and the benchmarks.
//!
//! One axum server on 127.0.0.1 hosts stand-ins for every system the pipeline
//! calls — a logs API, Prometheus, a deploy tool, the Kubernetes apps/v1 API,
//! service health checks, PagerDuty Events v2, Statuspage, a Slack incoming
//! webhook and an OpenAI-compatible chat model — each speaking the real API's
//! request and response shapes. A [`Scenario`] decides what is broken and
//! which remediation fixes it; `GET /_sandbox/requests` and
//! [`Sandbox::requests`] show exactly what the pipeline sent.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use fm_sandbox::{Sandbox, SandboxOptions, Scenario, Latencies};
//! let sb = Sandbox::start(SandboxOptions {
//!     scenario: Scenario::Oom,
//!     latencies: Latencies::zero(),
//!     ..Default::default()
//! }).await?;
//! let inputs = sb.input_overrides();   // logging_api, metrics_api, ... -> this sandbox
//! let secrets = sb.secrets();          // tokens the sandbox accepts
//! # let _ = (inputs, secrets);
//! sb.shutdown().await;
//! # Ok(()) }
//! ```

// Handlers short-circuit with ready-made HTTP responses (`Result<_, Response>`);
// the error path is cold and boxing every response would only add noise.
#![allow(clippy::result_large_err)]

mod apis;
mod auth;
pub mod model;
mod options;
mod recorder;
mod scenarios;
mod server;
mod signals;
mod state;
mod time;
mod util;

pub use options::{Latencies, SandboxOptions, DEFAULT_PORT};
pub use recorder::RecordedRequest;
pub use scenarios::{scenario_alert, scenario_alert_at, Scenario};
pub use server::{input_overrides_for, secrets_for, serve_forever, Sandbox};

/// The credentials the sandbox accepts (also returned by [`Sandbox::secrets`]).
pub mod credentials {
    pub use crate::auth::{
        DEPLOY_TOKEN, K8S_TOKEN, LOGGING_TOKEN, OPENAI_API_KEY, PAGERDUTY_KEY, SLACK_WEBHOOK_PATH,
        STATUSPAGE_COMPONENT_ID, STATUSPAGE_PAGE_ID, STATUSPAGE_TOKEN,
    };
}
