//! The hold-timeout sweeper and the store's housekeeping.
//!
//! - A job still `held` longer than `release.hold_timeout` (judged by the injected clock against the
//!   job's submission time) gets an `expire` action: the executor aborts it with the reason "Not
//!   released within 4h" and closes its task, so no job blocks a printer forever.
//! - It expires a job within a second of its deadline: it keeps the next deadline (the oldest held
//!   job's submission plus the hold timeout) and sleeps until then, looking at the injected clock at
//!   least every [`MAX_NAP`] (a clock that jumps, in tests or after a suspend, is noticed at once)
//!   without asking the store. Intake wakes it when a job is stored (a job found late may be overdue
//!   already), and it reads the deadline again after each sweep and every `every` as a backstop.
//! - Once a day (by the injected clock) audit records older than `store.audit_retention` and
//!   processed notifications older than [`INBOX_RETENTION`] are pruned.
//!
//! Invariant: the sweeper only enqueues, through [`ReleaseService::expire`]; a job someone is
//! releasing at the same moment is refused by the store (one unfinished action per job), which is the
//! right answer either way.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::service::ReleaseService;
use crate::clock::SharedClock;
use crate::store::{Store, StoreError};

pub use super::service::SYSTEM;

/// How long processed notifications are kept (for diagnosis) before they are pruned.
pub const INBOX_RETENTION: Duration = Duration::days(7);

/// The longest the sweeper sleeps without looking at the injected clock: the precision of expiry.
pub const MAX_NAP: StdDuration = StdDuration::from_secs(1);

/// The shortest nap: at the deadline itself the job is not overdue yet, and a clock that does not
/// move (tests) must not make the loop spin.
const MIN_NAP: StdDuration = StdDuration::from_millis(10);

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

    /// Expires each held job at its deadline (within [`MAX_NAP`]), re-reading the deadline when
    /// `new_jobs` is notified and at least every `every`; prunes once a day; until `shutdown`.
    pub async fn run(self, every: StdDuration, new_jobs: Arc<Notify>, shutdown: CancellationToken) {
        let mut last_prune: Option<OffsetDateTime> = None;
        // `None`: read it from the store at the top of the loop.
        let mut deadline: Option<Option<OffsetDateTime>> = None;
        let mut last_read = tokio::time::Instant::now();
        loop {
            if deadline.is_none() || last_read.elapsed() >= every {
                deadline = match self.next_deadline().await {
                    Ok(next) => Some(next),
                    Err(error) => {
                        tracing::error!(%error, "cannot read the next hold deadline; retrying");
                        Some(Some(self.clock.now()))
                    }
                };
                last_read = tokio::time::Instant::now();
            }
            let now = self.clock.now();
            // "Held longer than the hold timeout": strictly past the deadline, as the store's query.
            if deadline.flatten().is_some_and(|at| at < now) {
                if let Err(error) = self.expire_overdue().await {
                    tracing::error!(%error, "hold-timeout sweep failed; retrying shortly");
                }
                deadline = None;
            }
            if last_prune.is_none_or(|at| now - at >= Duration::days(1)) {
                match self.prune(now).await {
                    Ok(()) => last_prune = Some(now),
                    Err(error) => tracing::error!(%error, "pruning the store failed"),
                }
            }
            let nap = deadline
                .flatten()
                .and_then(|at| StdDuration::try_from(at - now).ok())
                .unwrap_or(MAX_NAP)
                .clamp(MIN_NAP, MAX_NAP);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = new_jobs.notified() => deadline = None,
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// When the oldest held job reaches the hold timeout; `None` when nothing is held.
    pub async fn next_deadline(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        Ok(self
            .store
            .oldest_held_submission()
            .await?
            .map(|submitted| submitted.saturating_add(self.hold_timeout)))
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
