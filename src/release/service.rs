//! [`ReleaseService`]: the one way to read and act on held jobs. The station API, the admin API (and
//! so the CLI's `jobs`, `release` and `delete`) and the hold-timeout sweeper all go through it; each
//! kind of action ([`ReleaseService::release`], [`ReleaseService::delete`],
//! [`ReleaseService::admin_release`], [`ReleaseService::admin_delete`], [`ReleaseService::expire`]) is
//! built here and nowhere else, so who asked, from where and when is recorded the same way every time.
//!
//! Invariant (never lie to a person): [`ReleaseService::submit`] answers only after the action is
//! committed to the durable queue, and answers [`Submitted::Done`] only with the outcome the executor
//! recorded after Graph confirmed it. When Graph is slow or down it answers [`Submitted::Queued`]
//! after `confirm_wait`; the queue finishes the action later.

use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;

use super::completions::{ActionOutcome, Completions};
use super::executor::Executor;
use crate::job::{ActionId, ActionKind, HeldJob, JobState, NewAction};
use crate::store::{EnqueueError, Store, StoreError};

/// Who the audit log names for an administrator's action (admin API, CLI).
pub const ADMIN: &str = "admin";

/// Who the audit log names for an expiry.
pub const SYSTEM: &str = "system";

/// Where a person releases or deletes: the station they stand at and the printer it prints on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtStation<'a> {
    /// The station's id (audit log).
    pub station_id: &'a str,
    /// The station's printer: a job held on another printer is redirected there (find-me).
    pub printer_id: &'a str,
}

/// The answer to a submitted action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// The executor finished it within the wait; `outcome` says how (released, redirected, deleted,
    /// or failed with the reason, in which case a release's job is held again).
    Done(ActionOutcome),
    /// Durably queued; Graph has not confirmed yet. The queue retries until it ends.
    Queued {
        /// The action, for later inspection.
        action_id: ActionId,
    },
}

/// Why an action was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The store refused it: unknown job (404), not held (409), invalid (422), or the store failed.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// The store failed while waiting for the outcome; the action is queued all the same.
    #[error("the action is queued, but its outcome could not be read: {0}")]
    Store(#[from] StoreError),
}

/// Lists held jobs and accepts actions on them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReleaseService {
    store: Store,
    executor: Executor,
    completions: Completions,
    confirm_wait: Duration,
}

impl ReleaseService {
    /// A service over the store and executor; `confirm_wait` is `release.confirm_wait`.
    pub fn new(
        store: Store,
        executor: Executor,
        completions: Completions,
        confirm_wait: Duration,
    ) -> Self {
        Self {
            store,
            executor,
            completions,
            confirm_wait,
        }
    }

    /// A person's held jobs (case-insensitive UPN), oldest first.
    pub async fn held_jobs(&self, owner: &str) -> Result<Vec<HeldJob>, StoreError> {
        self.store.held_jobs_for_owner(owner).await
    }

    /// Every job not yet ended (held or being acted on): the administrator's view.
    pub async fn all_held_jobs(&self) -> Result<Vec<HeldJob>, StoreError> {
        self.store.all_held_jobs().await
    }

    /// The job of task `task_id` if it is held (not being acted on, not ended).
    pub async fn held_job(&self, task_id: &str) -> Result<Option<HeldJob>, StoreError> {
        Ok(self
            .store
            .held_job(task_id)
            .await?
            .filter(|job| job.state == JobState::Held))
    }

    /// `owner`'s job of task `task_id` if it is held; another person's job is `None`, exactly like
    /// an unknown one, so ids cannot be probed.
    pub async fn own_held_job(
        &self,
        owner: &str,
        task_id: &str,
    ) -> Result<Option<HeldJob>, StoreError> {
        Ok(self
            .held_job(task_id)
            .await?
            .filter(|job| job.job.owner_upn.eq_ignore_ascii_case(owner)))
    }

    /// Jobs still held that were submitted before `cutoff`: what the hold timeout expires.
    pub async fn held_jobs_submitted_before(
        &self,
        cutoff: OffsetDateTime,
    ) -> Result<Vec<HeldJob>, StoreError> {
        self.store.held_jobs_older_than(cutoff).await
    }

    /// `owner` releases `job` at `station` with `changes` (already checked by the options policy,
    /// `None` to print as submitted): printed there, redirected when held on another printer.
    pub async fn release(
        &self,
        job: &HeldJob,
        station: AtStation<'_>,
        owner: &str,
        changes: Option<Value>,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(release_action(job, station, owner, changes, now))
            .await
    }

    /// `owner` releases each of `jobs` (with its checked changes) at `station`, all at once; the
    /// answers come in the order of `jobs`.
    pub async fn release_all(
        &self,
        jobs: &[(HeldJob, Option<Value>)],
        station: AtStation<'_>,
        owner: &str,
        now: OffsetDateTime,
    ) -> Vec<Result<Submitted, SubmitError>> {
        futures::future::join_all(jobs.iter().map(|(job, changes)| {
            self.submit(release_action(job, station, owner, changes.clone(), now))
        }))
        .await
    }

    /// `owner` deletes (aborts) `job` from `station`.
    pub async fn delete(
        &self,
        job: &HeldJob,
        station_id: &str,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(NewAction {
            task_id: job.job.task_id.clone(),
            kind: ActionKind::Delete,
            changes: None,
            destination_printer_id: None,
            station_id: Some(station_id.to_owned()),
            requested_by: owner.to_owned(),
            requested_at: now,
        })
        .await
    }

    /// An administrator releases `job` on its own printer with `changes` (already checked).
    pub async fn admin_release(
        &self,
        job: &HeldJob,
        changes: Option<Value>,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(NewAction {
            task_id: job.job.task_id.clone(),
            kind: ActionKind::Release,
            changes,
            destination_printer_id: None,
            station_id: None,
            requested_by: ADMIN.to_owned(),
            requested_at: now,
        })
        .await
    }

    /// An administrator deletes (aborts) `job`.
    pub async fn admin_delete(
        &self,
        job: &HeldJob,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(NewAction {
            task_id: job.job.task_id.clone(),
            kind: ActionKind::Delete,
            changes: None,
            destination_printer_id: None,
            station_id: None,
            requested_by: ADMIN.to_owned(),
            requested_at: now,
        })
        .await
    }

    /// Queues an `expire` action for each of `overdue` (not waiting for Graph), then wakes the
    /// executor once; returns how many were queued. A job someone acted on since it was listed is
    /// skipped: nothing to expire.
    pub async fn expire(
        &self,
        overdue: &[HeldJob],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
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

    /// Queues `action` durably, wakes the executor, and waits up to `confirm_wait` for its outcome.
    ///
    /// The daemon's own callers use the named actions above; this is public so tests and benchmarks
    /// can queue any action, including ones the store must refuse.
    pub async fn submit(&self, action: NewAction) -> Result<Submitted, SubmitError> {
        let id = self.store.enqueue(&action).await?;
        let mut done = self.completions.subscribe(id);
        self.executor.wake();
        // The executor may already have taken and finished it (woken by another request) before we
        // subscribed: the store has the last word, and costs one read.
        if let Some(outcome) = self.finished(id).await? {
            self.completions.forget(id);
            return Ok(Submitted::Done(outcome));
        }
        // Cloned out at once: the watch guard is not Send and must not live across the next await
        // (axum handlers, which call this, must be Send).
        let waited = tokio::time::timeout(self.confirm_wait, done.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|outcome| outcome.clone());
        if let Some(outcome) = waited {
            return Ok(Submitted::Done(outcome));
        }
        self.completions.forget(id);
        // It may have finished between the timeout and now.
        match self.finished(id).await? {
            Some(outcome) => Ok(Submitted::Done(outcome)),
            None => Ok(Submitted::Queued { action_id: id }),
        }
    }

    /// How `id` ended, if it has.
    async fn finished(&self, id: ActionId) -> Result<Option<ActionOutcome>, StoreError> {
        Ok(self
            .store
            .action_outcome(id)
            .await?
            .map(|(outcome, detail)| ActionOutcome {
                outcome,
                detail: detail.unwrap_or_default(),
            }))
    }
}

/// The action releasing `job` at `station` for `owner`: a release on the job's own printer, or a
/// redirect to the station's printer (find-me).
fn release_action(
    job: &HeldJob,
    station: AtStation<'_>,
    owner: &str,
    changes: Option<Value>,
    now: OffsetDateTime,
) -> NewAction {
    let find_me = job.job.printer_id != station.printer_id;
    NewAction {
        task_id: job.job.task_id.clone(),
        kind: if find_me {
            ActionKind::Redirect
        } else {
            ActionKind::Release
        },
        changes,
        destination_printer_id: find_me.then(|| station.printer_id.to_owned()),
        station_id: Some(station.station_id.to_owned()),
        requested_by: owner.to_owned(),
        requested_at: now,
    }
}
