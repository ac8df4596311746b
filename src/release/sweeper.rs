//! The hold-timeout sweeper and the store's housekeeping.
//!
//! - A job still `held` longer than `release.hold_timeout` (judged by the injected clock against the
//!   job's submission time) gets an `expire` action: the executor aborts it with the reason "Not
//!   released within 4h" and closes its task, so no job blocks a printer forever.
//! - Once a day (by the injected clock) audit records older than `store.audit_retention` and
//!   processed notifications older than [`INBOX_RETENTION`] are pruned.
//!
//! Invariant: the sweeper only enqueues; a job someone is releasing at the same moment is refused by
//! the store (one unfinished action per job), which is the right answer either way.

use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};
use tokio_util::sync::CancellationToken;

use super::executor::Executor;
use crate::clock::SharedClock;
use crate::store::{ActionKind, EnqueueError, NewAction, Store, StoreError};

/// How long processed notifications are kept (for diagnosis) before they are pruned.
pub const INBOX_RETENTION: Duration = Duration::days(7);

/// Who the audit log names for an expiry.
pub const SYSTEM: &str = "system";

/// Expires held jobs and prunes old records.
#[derive(Debug, Clone)]
pub struct Sweeper {
    store: Store,
    executor: Executor,
    clock: SharedClock,
    hold_timeout: Duration,
    audit_retention: Duration,
}

impl Sweeper {
    /// A sweeper with the `release.hold_timeout` and `store.audit_retention` settings.
    pub fn new(
        store: Store,
        executor: Executor,
        clock: SharedClock,
        hold_timeout: StdDuration,
        audit_retention: StdDuration,
    ) -> Self {
        Self {
            store,
            executor,
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

    /// Enqueues an `expire` action for every job held longer than the hold timeout; returns how many.
    pub async fn expire_overdue(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let overdue = self
            .store
            .held_jobs_older_than(now.checked_sub(self.hold_timeout).unwrap_or(now))
            .await?;
        let mut queued = 0;
        for job in overdue {
            let action = NewAction {
                task_id: job.job.task_id.clone(),
                kind: ActionKind::Expire,
                changes: None,
                destination_printer_id: None,
                station_id: None,
                requested_by: SYSTEM.to_owned(),
                requested_at: now,
            };
            match self.store.enqueue(&action).await {
                Ok(_) => queued += 1,
                // Someone acted on it (or it ended) since the query: nothing to expire.
                Err(EnqueueError::NotHeld { .. } | EnqueueError::UnknownTask { .. }) => {}
                Err(EnqueueError::Store(error)) => return Err(error),
                Err(EnqueueError::Invalid(why)) => {
                    tracing::error!(task = %job.job.task_id, %why, "cannot expire a held job");
                }
            }
        }
        if queued > 0 {
            tracing::info!(queued, "held jobs expired by the hold timeout");
            self.executor.wake();
        }
        Ok(queued)
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
