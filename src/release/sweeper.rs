//! The hold-timeout sweeper and the store's housekeeping.
//!
//! - A job still `held` longer than `release.hold_timeout` (judged by the injected clock against the
//!   job's submission time) gets an `expire` action: the executor aborts it with the reason "Not
//!   released within 4h" and closes its task, so no job blocks a printer forever.
//! - Once a day (by the injected clock) audit records older than `store.audit_retention` and
//!   processed notifications older than [`INBOX_RETENTION`] are pruned.
//!
//! Invariant: the sweeper only enqueues, through [`ReleaseService::expire`]; a job someone is releasing at the same moment is refused by
//! the store (one unfinished action per job), which is the right answer either way.

use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};
use tokio_util::sync::CancellationToken;

use super::service::ReleaseService;
use crate::clock::SharedClock;
use crate::store::{Store, StoreError};

pub use super::service::SYSTEM;

/// How long processed notifications are kept (for diagnosis) before they are pruned.
pub const INBOX_RETENTION: Duration = Duration::days(7);

/// Expires held jobs and prunes old records.
#[derive(Debug, Clone)]
pub struct Sweeper {
    store: Store,
    release: ReleaseService,
    clock: SharedClock,
    hold_timeout: Duration,
    audit_retention: Duration,
}

impl Sweeper {
    /// A sweeper with the `release.hold_timeout` and `store.audit_retention` settings; it expires
    /// through `release` and prunes `store`.
    pub fn new(
        store: Store,
        release: ReleaseService,
        clock: SharedClock,
        hold_timeout: StdDuration,
        audit_retention: StdDuration,
    ) -> Self {
        Self {
            store,
            release,
            clock,
            hold_timeout: Duration::try_from(hold_timeout).unwrap_or(Duration::MAX),
            audit_retention: Duration::try_from(audit_retention).unwrap_or(Duration::MAX),
        }
    }

    /// Sweeps every `every` (tokio time) until `shutdown`.
    pub async fn run(self, every: StdDuration, shutdown: CancellationToken) {
        let mut last_prune: Option<OffsetDateTime> = None;
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticks.tick() => {}
            }
            if let Err(error) = self.expire_overdue().await {
                tracing::error!(%error, "hold-timeout sweep failed; retrying at the next tick");
            }
            let now = self.clock.now();
            if last_prune.is_none_or(|at| now - at >= Duration::days(1)) {
                match self.prune(now).await {
                    Ok(()) => last_prune = Some(now),
                    Err(error) => tracing::error!(%error, "pruning the store failed"),
                }
            }
        }
    }

    /// Expires every job held longer than the hold timeout, through the release service; returns
    /// how many were queued.
    pub async fn expire_overdue(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let overdue = self
            .release
            .held_jobs_submitted_before(now.checked_sub(self.hold_timeout).unwrap_or(now))
            .await?;
        self.release.expire(&overdue, now).await
    }

    /// Drops audit records past retention and old processed notifications.
    pub async fn prune(&self, now: OffsetDateTime) -> Result<(), StoreError> {
        let audit = self
            .store
            .prune_audit(now.checked_sub(self.audit_retention).unwrap_or(now))
            .await?;
        let inbox = self.store.inbox_prune(now - INBOX_RETENTION).await?;
        tracing::debug!(audit, inbox, "pruned the store");
        Ok(())
    }
}
