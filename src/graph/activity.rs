//! Whether the daemon is waiting on Graph: the Graph requests under way and when each began.
//!
//! The systemd watchdog judges the release engine by its progress. An engine whose every slot is
//! taken by a Graph call that Graph is slow to answer (throttling, an outage, 60 s per answer) is
//! waiting, not stuck, and must not be restarted: a restart would stall the same way and drop every
//! session. So the client reports whether a request is under way that began recently enough to still
//! be within its bounds (the retry budget plus two attempt timeouts): one older than that means
//! something in the daemon hangs, and the watchdog should see it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// The requests under way. Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Activity {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Start of each request under way, by a sequence number. A std mutex: held for a map operation.
    started: Mutex<(u64, BTreeMap<u64, Instant>)>,
    /// How long one request may legitimately take, retries included.
    bound: Duration,
}

/// Marks one request under way until dropped.
#[derive(Debug)]
pub(crate) struct Underway {
    activity: Activity,
    id: u64,
}

impl Activity {
    /// Tracks requests that take at most `bound` each, retries included.
    pub(crate) fn new(bound: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Mutex::new((0, BTreeMap::new())),
                bound,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, BTreeMap<u64, Instant>)> {
        self.inner
            .started
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a request as under way until the returned guard is dropped.
    pub(crate) fn begin(&self) -> Underway {
        let mut started = self.lock();
        started.0 += 1;
        let id = started.0;
        started.1.insert(id, Instant::now());
        Underway {
            activity: self.clone(),
            id,
        }
    }

    /// Whether a request is under way that began within its bound.
    pub(crate) fn waiting_on_graph(&self) -> bool {
        self.lock()
            .1
            .values()
            .any(|began| began.elapsed() <= self.inner.bound)
    }
}

impl Drop for Underway {
    fn drop(&mut self) {
        self.activity.lock().1.remove(&self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_request_under_way_counts_as_waiting_until_its_bound_then_as_hanging() {
        let activity = Activity::new(Duration::from_secs(150));
        assert!(!activity.waiting_on_graph());
        let underway = activity.begin();
        tokio::time::advance(Duration::from_secs(60)).await;
        assert!(activity.waiting_on_graph(), "slow, within bounds");
        tokio::time::advance(Duration::from_secs(100)).await;
        assert!(
            !activity.waiting_on_graph(),
            "past any retry budget: hanging"
        );
        drop(underway);
        assert!(!activity.waiting_on_graph());
    }
}
