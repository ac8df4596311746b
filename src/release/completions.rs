//! Per-action completion signals: how a waiting station request learns, without polling, that the
//! executor has finished its action.
//!
//! Invariant: a signal only ever carries what the store already committed (the executor publishes
//! after `finish`/`return_to_held` returned), so an answer built from it never runs ahead of the
//! durable state. An outcome published before anyone subscribed (the executor may take an action
//! between its commit and the waiter's registration) is kept among the last [`RECENT`] such
//! outcomes, and a late subscriber finds it there without a store read. One pushed out of that
//! window, or finished by another instance, reaches its waiter through the store read after
//! `confirm_wait` (see [`super::service::ReleaseService::submit`]), so no completion is lost.

use std::collections::{HashMap, VecDeque};
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

/// How many outcomes published with nobody waiting are kept for a subscriber that comes late: a
/// release-all queues a person's jobs at once and subscribes to each as its commit returns, so the
/// window only needs to cover the actions finished meanwhile. A few hundred bytes each.
pub const RECENT: usize = 4096;

/// The registry of waiters, keyed by action id. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Completions {
    // A std mutex: every critical section is a map insert or remove, never held across an await.
    inner: Arc<Mutex<Registry>>,
}

#[derive(Debug, Default)]
struct Registry {
    waiters: HashMap<ActionId, watch::Sender<Option<ActionOutcome>>>,
    /// Outcomes published while nobody waited, and their order (oldest first) for eviction.
    unclaimed: HashMap<ActionId, ActionOutcome>,
    unclaimed_order: VecDeque<ActionId>,
}

impl Completions {
    /// Registers interest in `id`; the receiver sees `Some(outcome)` once the executor finished it,
    /// at once when it already did so recently.
    pub fn subscribe(&self, id: ActionId) -> watch::Receiver<Option<ActionOutcome>> {
        let mut registry = self.lock();
        if let Some(outcome) = registry.unclaimed.remove(&id) {
            // Its place in the order is left behind and skipped when it comes up for eviction.
            return watch::channel(Some(outcome)).1;
        }
        registry
            .waiters
            .entry(id)
            .or_insert_with(|| watch::channel(None).0)
            .subscribe()
    }

    /// Tells every waiter of `id` how it ended, and forgets `id`; with nobody waiting yet, keeps
    /// the outcome for a late subscriber (the last [`RECENT`]).
    pub fn publish(&self, id: ActionId, outcome: ActionOutcome) {
        let mut registry = self.lock();
        if let Some(sender) = registry.waiters.remove(&id) {
            // No receiver left (the waiter gave up and answered "queued") is fine.
            let _ = sender.send(Some(outcome));
            return;
        }
        registry.unclaimed.insert(id, outcome);
        registry.unclaimed_order.push_back(id);
        while registry.unclaimed_order.len() > RECENT {
            if let Some(oldest) = registry.unclaimed_order.pop_front() {
                registry.unclaimed.remove(&oldest);
            }
        }
    }

    /// Forgets `id` without an outcome (its waiter gave up).
    pub fn forget(&self, id: ActionId) {
        let mut registry = self.lock();
        registry.waiters.remove(&id);
        registry.unclaimed.remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.inner
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

    fn released() -> ActionOutcome {
        ActionOutcome {
            outcome: Outcome::Released,
            detail: "released".to_owned(),
        }
    }

    #[test]
    fn an_outcome_published_before_its_waiter_subscribed_is_found_at_once() {
        let completions = Completions::default();
        completions.publish(ActionId(7), released());
        let late = completions.subscribe(ActionId(7));
        assert_eq!(
            late.borrow().as_ref().map(|done| done.outcome),
            Some(Outcome::Released)
        );
        // Taken once: a second subscriber waits (and falls back to the store after its wait).
        assert!(completions.subscribe(ActionId(7)).borrow().is_none());
    }

    #[test]
    fn only_the_most_recent_unclaimed_outcomes_are_kept() {
        let completions = Completions::default();
        for id in 0..=i64::try_from(RECENT).expect("small") {
            completions.publish(ActionId(id), released());
        }
        assert!(completions.subscribe(ActionId(0)).borrow().is_none());
        assert!(completions.subscribe(ActionId(1)).borrow().is_some());
        assert!(
            completions.lock().unclaimed.len() < RECENT,
            "the registry stays bounded"
        );
    }
}
