//! The fixed credentials the sandbox hands out and accepts.
//!
//! They are constants (not random) so the files in `inputs/` and any recorded
//! request stay reproducible; none of them is valid anywhere but here.

use axum::http::{header, HeaderMap};

pub const LOGGING_TOKEN: &str = "sbx-logging-token";
pub const K8S_TOKEN: &str = "sbx-k8s-token";
pub const DEPLOY_TOKEN: &str = "sbx-deploy-token";
pub const STATUSPAGE_TOKEN: &str = "sbx-statuspage-token";
/// PagerDuty integration keys are 32 characters; so is this one.
pub const PAGERDUTY_KEY: &str = "fmsandbox0pagerduty0routingkey01";
pub const OPENAI_API_KEY: &str = "sk-fm-sandbox-simulated-not-a-real-key";
/// Statuspage page and component ids (12 lower-case characters, like the real ones).
pub const STATUSPAGE_PAGE_ID: &str = "sbxpage00001";
pub const STATUSPAGE_COMPONENT_ID: &str = "sbxcomp00001";
/// The Slack incoming-webhook path segments (`/slack/webhook/T000/B000/XXXX`).
pub const SLACK_WEBHOOK_PATH: &str = "T000/B000/XXXX";

/// The credential after `scheme` in the Authorization header (scheme compared
/// case-insensitively, as HTTP says), if any.
pub fn credential<'a>(headers: &'a HeaderMap, scheme: &str) -> Option<&'a str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?.trim();
    let (s, rest) = v.split_once(' ')?;
    s.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

/// `Authorization: Bearer <token>` with exactly `token`.
pub fn bearer_is(headers: &HeaderMap, token: &str) -> bool {
    credential(headers, "Bearer") == Some(token)
}
