//! Stopping a run from outside: Ctrl-C, SIGTERM, the API, a lease lost to another worker.
//!
//! A cancel has two levels. The first stops new work; if a stage that may have acted had
//! started, the catch and finally stages of the running trycatch scopes still get their cleanup
//! time to tell people (see `driver.rs`). The second abandons that cleanup at once.

use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Why a run is being cancelled, and (optionally) the outcome to record if it had not acted:
/// a server cancelling a run because its incident resolved records `resolved_before_action`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelRequest {
    /// In words, for the record: `Ctrl-C`, `SIGTERM`, `cancel requested through the API`.
    pub reason: String,
    /// Recorded as the run's outcome when the run stops before anything acted.
    pub outcome: Option<String>,
}

impl CancelRequest {
    pub fn because(reason: impl Into<String>) -> Self {
        CancelRequest {
            reason: reason.into(),
            outcome: None,
        }
    }

    pub fn with_outcome(mut self, outcome: impl Into<String>) -> Self {
        self.outcome = Some(outcome.into());
        self
    }
}

/// Cancels a run from outside. Cloneable; the first request's reason is kept.
#[derive(Clone, Debug)]
pub struct CancelSignal {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// 0: running; 1: cancelled (cleanup allowed); 2: cleanup abandoned.
    level: watch::Sender<u8>,
    request: Mutex<Option<CancelRequest>>,
}

impl Default for CancelSignal {
    fn default() -> Self {
        Self::new()
    }
}

impl CancelSignal {
    pub fn new() -> Self {
        CancelSignal {
            inner: Arc::new(Inner {
                level: watch::channel(0).0,
                request: Mutex::new(None),
            }),
        }
    }

    /// Cancels with a generic reason.
    pub fn cancel(&self) {
        self.cancel_with(CancelRequest::because("cancel requested"));
    }

    /// Cancels; the first request's reason and outcome are the ones kept.
    pub fn cancel_with(&self, request: CancelRequest) {
        if let Ok(mut r) = self.inner.request.lock() {
            if r.is_none() {
                *r = Some(request);
            }
        }
        self.inner.level.send_if_modified(|l| {
            if *l == 0 {
                *l = 1;
                true
            } else {
                false
            }
        });
    }

    /// Stops at once, without the cleanup time a cancel gives catch and finally stages.
    pub fn abandon_cleanup(&self) {
        self.cancel_with(CancelRequest::because("cancel requested"));
        self.inner.level.send_if_modified(|l| {
            if *l < 2 {
                *l = 2;
                true
            } else {
                false
            }
        });
    }

    pub fn is_cancelled(&self) -> bool {
        *self.inner.level.borrow() >= 1
    }

    pub fn is_abandoned(&self) -> bool {
        *self.inner.level.borrow() >= 2
    }

    /// The request that cancelled the run, if any.
    pub fn request(&self) -> Option<CancelRequest> {
        self.inner.request.lock().ok().and_then(|r| r.clone())
    }

    pub async fn cancelled(&self) {
        self.reached(1).await
    }

    pub async fn abandoned(&self) {
        self.reached(2).await
    }

    async fn reached(&self, level: u8) {
        let mut rx = self.inner.level.subscribe();
        let _ = rx.wait_for(|l| *l >= level).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_request_is_kept_and_levels_only_rise() {
        let c = CancelSignal::new();
        assert!(!c.is_cancelled());
        c.cancel_with(CancelRequest::because("SIGTERM").with_outcome("resolved_before_action"));
        c.cancel_with(CancelRequest::because("Ctrl-C"));
        assert!(c.is_cancelled() && !c.is_abandoned());
        let r = c.request().unwrap_or_default();
        assert_eq!(r.reason, "SIGTERM");
        assert_eq!(r.outcome.as_deref(), Some("resolved_before_action"));
        c.abandon_cleanup();
        assert!(c.is_abandoned());
        c.cancel();
        assert!(c.is_abandoned());
    }
}
