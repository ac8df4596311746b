//! Per-action completion signals: how a waiting station request learns, without polling, that the
//! executor has finished its action.
//!
//! Invariant: a signal only ever carries what the store already committed (the executor publishes
//! after `finish`/`return_to_held` returned), so an answer built from it never runs ahead of the
//! durable state. A waiter that registers after the executor published reads the store instead (see
//! [`super::service::ReleaseService::submit`]), so no completion is lost to the race.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use crate::store::{ActionId, Outcome};

/// How an action ended, as told to whoever waits for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionOutcome {
    /// The outcome recorded for the action.
    pub outcome: Outcome,
    /// How or why, for people.
    pub detail: String,
}

/// The registry of waiters, keyed by action id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Completions {
    // A std mutex: every critical section is a map insert or remove, never held across an await.
    waiters: Arc<Mutex<HashMap<ActionId, watch::Sender<Option<ActionOutcome>>>>>,
}

impl Completions {
    /// Registers interest in `id`; the receiver sees `Some(outcome)` once the executor finished it.
    pub fn subscribe(&self, id: ActionId) -> watch::Receiver<Option<ActionOutcome>> {
        let mut waiters = self.lock();
        waiters
            .entry(id)
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Tells every waiter of `id` how it ended, and forgets `id`.
    pub fn publish(&self, id: ActionId, outcome: ActionOutcome) {
        if let Some(sender) = self.lock().remove(&id) {
            // No receiver left (the waiter gave up and answered "queued") is fine.
            let _ = sender.send(Some(outcome));
        }
    }

    /// Forgets `id` without an outcome (its waiter gave up).
    pub fn forget(&self, id: ActionId) {
        self.lock().remove(&id);
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<ActionId, watch::Sender<Option<ActionOutcome>>>> {
        self.waiters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiter_receives_the_outcome_published_for_its_action_only() {
        let completions = Completions::default();
        let mut mine = completions.subscribe(ActionId(1));
        let other = completions.subscribe(ActionId(2));
        completions.publish(
            ActionId(1),
            ActionOutcome {
                outcome: Outcome::Released,
                detail: "released".to_owned(),
            },
        );
        mine.changed().await.expect("the sender published");
        assert_eq!(
            mine.borrow().as_ref().map(|done| done.outcome),
            Some(Outcome::Released)
        );
        assert!(other.borrow().is_none());
    }
}
