//! The Graph subscription's lifecycle, when `intake.public_url` is set and the mode is `webhook` or
//! `both`.
//!
//! - On start: renew the stored subscription (which also proves it still exists) or create one, with
//!   our `clientState` (generated once, kept in the store) and `lifecycleNotificationUrl` = the same
//!   URL. Graph validates the URL with a handshake, so the API listener must already be serving.
//! - Renewal: print subscriptions live at most 4,230 minutes; we ask for [`LIFETIME`] and renew when
//!   less than half of it is left, checked every `check_every` against the injected clock.
//! - Lost (renew → 404, or a `subscriptionRemoved` lifecycle event): recreate.
//! - `reauthorizationRequired`: reauthorize (renew when that fails), then poll, because notifications
//!   during the pause are lost. After creating, poll too, for the same reason.
//!
//! Failures are logged and retried at the next check; intake by polling (mode `both`) carries on.

use std::time::Duration as StdDuration;

use secrecy::SecretString;
use time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Intake;
use super::poller::Poller;
use crate::graph::{GraphError, LifecycleEvent, NewSubscription};
use crate::store::{StoreError, Subscription};

/// The lifetime asked for: under Graph's 4,230-minute cap for print tasks, with room for clock skew.
pub const LIFETIME: Duration = Duration::minutes(4200);

/// Why a subscription step failed.
#[derive(Debug, thiserror::Error)]
pub enum SubscriptionError {
    /// Graph refused or failed.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates, renews and repairs our subscription.
#[derive(Debug)]
pub struct SubscriptionManager {
    intake: Intake,
    notification_url: String,
    client_state: SecretString,
    poller: Poller,
    events: mpsc::UnboundedReceiver<LifecycleEvent>,
}

impl SubscriptionManager {
    /// A manager for notifications to `notification_url`; lifecycle events arrive on `events`.
    pub fn new(
        intake: Intake,
        notification_url: impl Into<String>,
        client_state: SecretString,
        poller: Poller,
        events: mpsc::UnboundedReceiver<LifecycleEvent>,
    ) -> Self {
        Self {
            intake,
            notification_url: notification_url.into(),
            client_state,
            poller,
            events,
        }
    }

    /// Ensures the subscription, then checks it every `check_every` and answers lifecycle events,
    /// until `shutdown`. May run again afterwards (a new leadership term). After a failed attempt
    /// the next one comes sooner (1 s, doubling, at most `check_every`): a subscription that failed
    /// once at start-up (the validation handshake timed out on a busy machine, Graph answered 503)
    /// must not keep the daemon unready for a whole check interval, or several.
    pub async fn run(&mut self, check_every: StdDuration, shutdown: CancellationToken) {
        let mut failures = 0;
        let mut ensured = self.report(self.ensure().await, &mut failures);
        loop {
            let wait = if ensured {
                check_every
            } else {
                retry_delay(failures, check_every)
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(wait) => {
                    let result = if ensured {
                        self.renew_if_due().await
                    } else {
                        self.ensure().await
                    };
                    ensured = self.report(result, &mut failures);
                }
                Some(event) = self.events.recv() => {
                    let result = self.on_lifecycle(&event).await;
                    ensured = self.report(result, &mut failures);
                }
            }
        }
    }

    fn report(&self, result: Result<(), SubscriptionError>, failures: &mut u32) -> bool {
        match result {
            Ok(()) => {
                *failures = 0;
                true
            }
            Err(error) => {
                *failures = failures.saturating_add(1);
                tracing::warn!(%error, failures = *failures, "subscription upkeep failed; trying again soon");
                false
            }
        }
    }

    /// Renews the stored subscription, or creates one when there is none (or it is gone).
    pub async fn ensure(&self) -> Result<(), SubscriptionError> {
        match self.intake.store.subscription().await? {
            Some(current)
                if current.expires_at > self.intake.clock.now()
                    && current.notification_url == self.notification_url =>
            {
                self.renew(&current).await
            }
            _ => self.create().await,
        }
    }

    /// Renews when less than half of [`LIFETIME`] is left.
    pub async fn renew_if_due(&self) -> Result<(), SubscriptionError> {
        match self.intake.store.subscription().await? {
            Some(current) => {
                if current.expires_at - self.intake.clock.now() < LIFETIME / 2 {
                    self.renew(&current).await
                } else {
                    Ok(())
                }
            }
            None => self.create().await,
        }
    }

    async fn on_lifecycle(&self, event: &LifecycleEvent) -> Result<(), SubscriptionError> {
        let result = match event {
            LifecycleEvent::ReauthorizationRequired => {
                match self.intake.store.subscription().await? {
                    Some(current) => {
                        match self
                            .intake
                            .graph
                            .reauthorize_subscription(&current.id)
                            .await
                        {
                            Ok(()) => {
                                tracing::info!(subscription = %current.id, "subscription reauthorized");
                                Ok(())
                            }
                            Err(error) => {
                                tracing::warn!(%error, "reauthorizing failed; renewing instead");
                                self.renew(&current).await
                            }
                        }
                    }
                    None => self.create().await,
                }
            }
            LifecycleEvent::SubscriptionRemoved => {
                self.intake.store.delete_subscription().await?;
                self.create().await
            }
            _ => Ok(()),
        };
        // Notifications may have been lost meanwhile.
        self.poller.poll_now();
        result
    }

    async fn renew(&self, current: &Subscription) -> Result<(), SubscriptionError> {
        let expiration = self.intake.clock.now() + LIFETIME;
        match self
            .intake
            .graph
            .renew_subscription(&current.id, expiration)
            .await
        {
            Ok(renewed) => {
                self.intake
                    .store
                    .save_subscription(&Subscription {
                        expires_at: renewed.expiration_date_time,
                        ..current.clone()
                    })
                    .await?;
                tracing::info!(subscription = %current.id, expires_at = %renewed.expiration_date_time, "subscription renewed");
                Ok(())
            }
            Err(error) if error.is_not_found() => {
                tracing::warn!(subscription = %current.id, "the subscription is gone at Graph; creating a new one");
                self.intake.store.delete_subscription().await?;
                self.create().await
            }
            Err(error) => Err(error.into()),
        }
    }

    async fn create(&self) -> Result<(), SubscriptionError> {
        let now = self.intake.clock.now();
        let resource = format!("print/taskDefinitions/{}/tasks", self.intake.definition_id);
        let created = self
            .intake
            .graph
            .create_subscription(&NewSubscription {
                change_type: "created".to_owned(),
                notification_url: self.notification_url.clone(),
                lifecycle_notification_url: Some(self.notification_url.clone()),
                resource: resource.clone(),
                expiration_date_time: now + LIFETIME,
                client_state: self.client_state.clone(),
            })
            .await?;
        self.intake
            .store
            .save_subscription(&Subscription {
                id: created.id.clone(),
                resource,
                notification_url: self.notification_url.clone(),
                expires_at: created.expiration_date_time,
                created_at: now,
            })
            .await?;
        tracing::info!(subscription = %created.id, expires_at = %created.expiration_date_time, "subscription created");
        // Tasks created before the subscription existed were never notified.
        self.poller.poll_now();
        Ok(())
    }
}

/// How long to wait after the `failures`-th failed attempt in a row: 1 s, doubling, capped at the
/// regular check interval.
fn retry_delay(failures: u32, check_every: StdDuration) -> StdDuration {
    let doubled = StdDuration::from_secs(1).saturating_mul(1 << failures.saturating_sub(1).min(16));
    doubled.min(check_every)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_start_after_a_second_double_and_never_wait_longer_than_the_regular_check() {
        let check = StdDuration::from_secs(60);
        let delays: Vec<u64> = (1..=8)
            .map(|failures| retry_delay(failures, check).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(retry_delay(u32::MAX, check), check);
    }
}
