//! Inbound alert formats.

pub mod alertmanager;
pub mod pagerduty;

/// A webhook body that is not what its endpoint expects: answered with 400 and this message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

impl PayloadError {
    pub fn new(m: impl Into<String>) -> Self {
        PayloadError(m.into())
    }
}
