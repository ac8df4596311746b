//! [`GraphObserver`]: the one hook through which every Graph request, retry and token refresh is seen,
//! so metrics (and tests) can count calls without the client knowing about Prometheus.
//!
//! Invariant: the client calls the observer from its single central `send` path, once per attempt,
//! never with a token or secret.

use std::fmt::Debug;
use std::time::Duration;

/// Receives one event per Graph attempt, retry decision and token refresh. All methods default to
/// doing nothing; implementations must be cheap and must not block.
pub trait GraphObserver: Send + Sync + Debug {
    /// An attempt finished: `status` is `None` when no response arrived (connection error, timeout).
    fn on_response(
        &self,
        operation: &'static str,
        status: Option<u16>,
        latency: Duration,
        attempt: u32,
    ) {
        let _ = (operation, status, latency, attempt);
    }

    /// Attempt `attempt` failed and the next one starts after `delay`.
    fn on_retry(&self, operation: &'static str, attempt: u32, delay: Duration) {
        let _ = (operation, attempt, delay);
    }

    /// A new app token was requested from Entra ID.
    fn on_token_refresh(&self) {}
}
