//! The inbox worker: turns the notifications the webhook stored into held jobs.
//!
//! For a task notification: a known task costs nothing; otherwise `resourceData.parentUrl` names the
//! job and one `GET job` follows; without it, `GET task` first: the fewest calls that find the job.
//! Lifecycle notifications go to the subscription manager, and a poll is asked for when notifications
//! may have been lost (`missed`, `reauthorizationRequired`, `subscriptionRemoved`).
//!
//! Invariants: an item is marked done only once it is settled (stored, known, or refused for good);
//! an item whose lookup failed for a reason that may pass stays pending and is tried again after
//! [`RETRY_PAUSE`]. Processing twice (after a crash) is harmless: intake dedupes by task id.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::poller::Poller;
use super::{Intake, IntakeError};
use crate::graph::{ChangeNotification, LifecycleEvent, parse_parent_url};
use crate::store::DiscoveredVia;

/// How long the worker waits before retrying items whose lookup failed transiently.
pub const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// How many items are read per round.
const BATCH: u32 = 100;

/// The inbox worker.
#[derive(Debug, Clone)]
pub struct InboxWorker {
    intake: Intake,
    wake: Arc<Notify>,
    poller: Poller,
    lifecycle: Option<mpsc::UnboundedSender<LifecycleEvent>>,
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
        }
    }

    /// Works through the inbox whenever woken, until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let pause = match self.drain().await {
                Ok(true) => Some(RETRY_PAUSE),
                Ok(false) => None,
                Err(error) => {
                    tracing::error!(%error, "cannot read the notification inbox");
                    Some(RETRY_PAUSE)
                }
            };
            let nap = pause.unwrap_or(Duration::from_secs(3600));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    /// Processes every pending item; `Ok(true)` when some must be tried again later.
    pub async fn drain(&self) -> Result<bool, crate::store::StoreError> {
        let store = &self.intake.store;
        loop {
            let items = store.inbox_pending(BATCH).await?;
            if items.is_empty() {
                return Ok(false);
            }
            let mut done = Vec::with_capacity(items.len());
            let mut retry_later = false;
            for item in &items {
                match serde_json::from_str::<ChangeNotification>(&item.payload) {
                    Ok(notification) => match self.handle(&notification).await {
                        Ok(()) => done.push(item.id),
                        Err(error) if error.is_transient() => {
                            tracing::warn!(%error, "a notification's lookup failed; retrying shortly");
                            retry_later = true;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "a notification's task cannot be looked up; dropped (the poll is the backstop)");
                            done.push(item.id);
                        }
                    },
                    Err(error) => {
                        tracing::warn!(%error, "an unreadable notification was dropped");
                        done.push(item.id);
                    }
                }
            }
            store.inbox_done(&done, self.intake.clock.now()).await?;
            if retry_later {
                return Ok(true);
            }
        }
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

/// The task id at the end of `print/taskDefinitions/{d}/tasks/{t}`.
fn task_id_of(resource: Option<&str>) -> Option<String> {
    let resource = resource?;
    let mut segments = resource.trim_end_matches('/').rsplit('/');
    let id = segments.next()?;
    (segments.next()?.eq_ignore_ascii_case("tasks") && !id.is_empty()).then(|| id.to_owned())
}

#[cfg(test)]
mod tests {
    use super::task_id_of;

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
