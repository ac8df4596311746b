//! [`ReleaseService`]: the one entry point for releasing and deleting held jobs, used by the station
//! API and the CLI.
//!
//! Invariant (never lie to a person): [`ReleaseService::submit`] answers only after the action is
//! committed to the durable queue, and answers [`Submitted::Done`] only with the outcome the executor
//! recorded after Graph confirmed it. When Graph is slow or down it answers [`Submitted::Queued`]
//! after `confirm_wait`; the queue finishes the action later.

use std::time::Duration;

use super::completions::{ActionOutcome, Completions};
use super::executor::Executor;
use crate::store::{ActionId, EnqueueError, HeldJob, NewAction, Store, StoreError};

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
    pub async fn held_jobs_for(&self, upn: &str) -> Result<Vec<HeldJob>, StoreError> {
        self.store.held_jobs_for_owner(upn).await
    }

    /// Every job not yet ended (held or being acted on): the administrator's view.
    pub async fn all_held_jobs(&self) -> Result<Vec<HeldJob>, StoreError> {
        self.store.all_held_jobs().await
    }

    /// Queues `action` durably, wakes the executor, and waits up to `confirm_wait` for its outcome.
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
