//! The inbox worker: turns the notifications the webhook stored into held jobs.
//!
//! For a task notification: a known task costs nothing; otherwise `resourceData.parentUrl` names the
//! job and one `GET job` follows; without it, `GET task` first: the fewest calls that find the job.
//! Lifecycle notifications go to the subscription manager, and a poll is asked for when notifications
//! may have been lost (`missed`, `reauthorizationRequired`, `subscriptionRemoved`).
//!
//! Invariants:
//! - an item is marked done only once it is settled (stored, known, or refused for good);
//! - an item whose lookup failed for a reason that may pass is put off on its own schedule
//!   (exponential from [`FIRST_RETRY`] up to [`MAX_RETRY_DELAY`], by the injected clock) and is not
//!   read again before then, so a poison notification never holds up newer ones; items are looked up
//!   several at a time ([`CONCURRENCY`] unless told otherwise), so a slow one does not either;
//! - after [`MAX_TRIES`] failed tries, or at once when it cannot be read or Graph refuses it for good,
//!   an item is dead-lettered: kept with the reason, recorded in the audit log (`dead_letter`), counted
//!   (`pullprintd_notifications_total{kind="dead_letter"}`), and a poll is asked for, the backstop for
//!   its task;
//! - processing twice (after a crash) is harmless: intake dedupes by task id.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::poller::Poller;
use super::{Intake, IntakeError};
use crate::graph::{ChangeNotification, LifecycleEvent, parse_parent_url};
use crate::store::{DiscoveredVia, InboxItem, StoreError};

/// How long the worker waits before retrying after the inbox itself could not be read, and the
/// longest it sleeps while an item is put off (the injected clock may jump).
pub const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// The delay before an item's second try; it doubles with each failed try.
pub const FIRST_RETRY: time::Duration = time::Duration::seconds(2);

/// The longest an item is put off between two tries.
pub const MAX_RETRY_DELAY: time::Duration = time::Duration::minutes(5);

/// Tries of one item before it is dead-lettered: with the delays above, about 15 minutes of failures.
pub const MAX_TRIES: u32 = 10;

/// How many items are looked up at once, unless told otherwise ([`InboxWorker::with_lookups`]; the
/// daemon gives `graph.max_concurrent_requests` × [`crate::graph::WORK_PER_SLOT`], as for a poll).
pub const CONCURRENCY: usize = 16;

/// How many items are read per round. A round waits for its slowest lookup before the next starts,
/// so few large rounds keep the Graph slots busy through a burst (rounds of 100 held 1,000
/// notifications at 20 ms to 474 jobs/s; rounds of 500 reach about 560).
const BATCH: u32 = 500;

/// How one try of an item ended.
enum Tried {
    /// Settled: mark it done.
    Done,
    /// Failed for a reason that may pass.
    Failed(String),
    /// Can never succeed: dead-letter it now.
    Poison(String),
}

/// The inbox worker.
#[derive(Debug, Clone)]
pub struct InboxWorker {
    intake: Intake,
    wake: Arc<Notify>,
    poller: Poller,
    lifecycle: Option<mpsc::UnboundedSender<LifecycleEvent>>,
    lookups: usize,
}

impl InboxWorker {
    /// A worker woken by `wake` (the webhook's), asking `poller` for a poll and telling `lifecycle`
    /// (the subscription manager, when there is one) about lifecycle events.
    pub fn new(
        intake: Intake,
        wake: Arc<Notify>,
        poller: Poller,
        lifecycle: Option<mpsc::UnboundedSender<LifecycleEvent>>,
    ) -> Self {
        Self {
            intake,
            wake,
            poller,
            lifecycle,
            lookups: CONCURRENCY,
        }
    }

    /// The same worker, looking up at most `lookups` items at once (at least one).
    pub fn with_lookups(mut self, lookups: usize) -> Self {
        self.lookups = lookups.max(1);
        self
    }

    /// Works through the inbox whenever woken, and when a put-off item is due, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let nap = match self.drain().await {
                Ok(()) => match self.intake.store.inbox_next_retry().await {
                    Ok(Some(_)) => RETRY_PAUSE,
                    Ok(None) => Duration::from_secs(3600),
                    Err(error) => {
                        tracing::error!(%error, "cannot read the notification inbox");
                        RETRY_PAUSE
                    }
                },
                Err(error) => {
                    tracing::error!(%error, "cannot read the notification inbox");
                    RETRY_PAUSE
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Processes every item due now; items that failed are put off or dead-lettered.
    pub async fn drain(&self) -> Result<(), StoreError> {
        let store = &self.intake.store;
        loop {
            let items = store.inbox_due(BATCH, self.intake.clock.now()).await?;
            if items.is_empty() {
                return Ok(());
            }
            let tried: Vec<(InboxItem, Tried)> = futures::stream::iter(items)
                .map(|item| async move {
                    let tried = self.try_item(&item).await;
                    (item, tried)
                })
                .buffer_unordered(self.lookups)
                .collect()
                .await;
            let mut done = Vec::with_capacity(tried.len());
            for (item, tried) in tried {
                match tried {
                    Tried::Done => done.push(item.id),
                    Tried::Failed(error) => self.put_off(&item, &error).await?,
                    Tried::Poison(reason) => self.dead_letter(&item, &reason).await?,
                }
            }
            store.inbox_done(&done, self.intake.clock.now()).await?;
        }
    }

    async fn try_item(&self, item: &InboxItem) -> Tried {
        match serde_json::from_str::<ChangeNotification>(&item.payload) {
            Ok(notification) => match self.handle(&notification).await {
                Ok(()) => Tried::Done,
                Err(error) if error.is_transient() => Tried::Failed(error.to_string()),
                Err(error) => Tried::Poison(format!("Graph refused its lookup: {error}")),
            },
            Err(error) => Tried::Poison(format!("not a change notification: {error}")),
        }
    }

    /// Records a failed try: put off with back-off, or dead-lettered after [`MAX_TRIES`].
    async fn put_off(&self, item: &InboxItem, error: &str) -> Result<(), StoreError> {
        let attempts = item.attempts.saturating_add(1);
        if attempts >= MAX_TRIES {
            let reason = format!("its lookup failed {attempts} times; last: {error}");
            return self.dead_letter(item, &reason).await;
        }
        let delay = retry_delay(attempts);
        let at = self.intake.clock.now().saturating_add(delay);
        tracing::warn!(notification = item.id, attempts, %error, retry_at = %at, "a notification's lookup failed; put off");
        self.intake.metrics().notification("retried");
        self.intake.store.inbox_retry(item.id, attempts, at).await
    }

    async fn dead_letter(&self, item: &InboxItem, reason: &str) -> Result<(), StoreError> {
        let task_id = serde_json::from_str::<ChangeNotification>(&item.payload)
            .ok()
            .and_then(|notification| {
                let data = notification.resource_data.unwrap_or_default();
                data.id
                    .or_else(|| task_id_of(notification.resource.as_deref()))
            });
        tracing::error!(notification = item.id, task = ?task_id, %reason, "a notification is dead-lettered; the task-list poll is its backstop");
        self.intake
            .store
            .inbox_dead_letter(item.id, task_id.as_deref(), reason, self.intake.clock.now())
            .await?;
        self.intake.metrics().notification("dead_letter");
        self.poller.poll_now();
        Ok(())
    }

    async fn handle(&self, notification: &ChangeNotification) -> Result<(), IntakeError> {
        if let Some(event) = &notification.lifecycle_event {
            tracing::info!(event = %event, subscription = %notification.subscription_id, "lifecycle notification");
            if let Some(lifecycle) = &self.lifecycle {
                let _ = lifecycle.send(event.clone());
            }
            if *event == LifecycleEvent::Missed {
                self.poller.poll_now();
            }
            return Ok(());
        }
        let data = notification.resource_data.clone().unwrap_or_default();
        let Some(task_id) = data
            .id
            .clone()
            .or_else(|| task_id_of(notification.resource.as_deref()))
        else {
            tracing::warn!("a notification names no task; ignored");
            return Ok(());
        };
        if self.intake.store.task_known(&task_id).await? {
            self.intake.metrics().notification("duplicate");
            return Ok(());
        }
        match data.parent_url.as_deref().map(parse_parent_url) {
            Some(Ok(job)) => self
                .intake
                .lookup(&task_id, &job, DiscoveredVia::Webhook)
                .await
                .map(|_| ()),
            Some(Err(error)) => Err(error.into()),
            None => self
                .intake
                .lookup_task(&task_id, DiscoveredVia::Webhook)
                .await
                .map(|_| ()),
        }
    }
}

/// The delay after the `attempts`-th failed try: [`FIRST_RETRY`] doubling, at most
/// [`MAX_RETRY_DELAY`].
pub fn retry_delay(attempts: u32) -> time::Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    (FIRST_RETRY * 2_i32.pow(doublings)).min(MAX_RETRY_DELAY)
}

/// The task id at the end of `print/taskDefinitions/{d}/tasks/{t}`.
fn task_id_of(resource: Option<&str>) -> Option<String> {
    let resource = resource?;
    let mut segments = resource.trim_end_matches('/').rsplit('/');
    let id = segments.next()?;
    (segments.next()?.eq_ignore_ascii_case("tasks") && !id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_items_retry_delay_doubles_from_two_seconds_up_to_five_minutes() {
        assert_eq!(retry_delay(1), time::Duration::seconds(2));
        assert_eq!(retry_delay(2), time::Duration::seconds(4));
        assert_eq!(retry_delay(8), time::Duration::seconds(256));
        assert_eq!(retry_delay(9), MAX_RETRY_DELAY);
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_DELAY);
    }

    #[test]
    fn the_task_id_is_read_from_the_resource_path_when_resource_data_lacks_it() {
        assert_eq!(
            task_id_of(Some("print/taskDefinitions/d/tasks/t1")).as_deref(),
            Some("t1")
        );
        assert_eq!(task_id_of(Some("print/taskDefinitions/d")), None);
        assert_eq!(task_id_of(None), None);
    }
}
