//! One leader among the daemons sharing a store: the work that must run once, not once per daemon
//! (the task-list poller and start-up reconcile, the hold-timeout sweeper, the Graph subscription),
//! runs only on the leader. Every daemon serves stations, the webhook and the action queue.
//!
//! [`campaign`] holds or seeks the store's leader lock ([`Store::try_lead`]): a follower tries every
//! [`TRY_EVERY`], so a dead leader is replaced within that plus the time the database takes to see
//! its connection close (at once for a killed process); the leader checks every [`TRY_EVERY`] that
//! its lock is still held and stops its leader-only work the moment it is not. Each change is logged
//! and counted (`pullprintd_leader`, `pullprintd_leadership_changes_total`). On SQLite the daemon
//! always leads: its lock file already makes it the only one.
//!
//! Leader-only work runs in terms ([`Leadership::next_term`]): a term's token is cancelled when the
//! leadership is lost or the daemon stops, and the work starts again in the next term.

use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::Store;

/// How often a follower tries to take the leadership, and the leader checks it still holds it.
pub const TRY_EVERY: Duration = Duration::from_secs(5);

/// Whether this daemon leads now, for the tasks that run only on the leader. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Leadership {
    leading: watch::Receiver<bool>,
}

impl Leadership {
    /// Waits until this daemon leads, and returns a token cancelled when it stops leading or at
    /// `shutdown`; `None` once `shutdown` is cancelled.
    pub async fn next_term(&mut self, shutdown: &CancellationToken) -> Option<CancellationToken> {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            led = self.leading.wait_for(|leading| *leading) => {
                if led.is_err() {
                    // The campaign ended: the daemon is stopping.
                    return None;
                }
            }
        }
        let term = shutdown.child_token();
        let ends = term.clone();
        let mut leading = self.leading.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = ends.cancelled() => {}
                _ = leading.wait_for(|leading| !*leading) => ends.cancel(),
            }
        });
        Some(term)
    }
}

/// Seeks and holds the leadership until `shutdown`; returns the [`Leadership`] the leader-only
/// tasks follow, and the campaign to run.
pub fn campaign(
    store: Store,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> (Leadership, impl Future<Output = ()>) {
    let (tell, leading) = watch::channel(false);
    let run = async move {
        let mut held = None;
        loop {
            match held.as_mut() {
                None => match store.try_lead().await {
                    Ok(Some(lock)) => {
                        held = Some(lock);
                        tracing::info!(
                            instance = store.instance(),
                            "this instance now leads: it runs the poller, the sweeper and the subscription"
                        );
                        metrics.set_leader(true);
                        tell.send_replace(true);
                    }
                    Ok(None) => {}
                    Err(error) => {
                        tracing::warn!(%error, "cannot seek the leadership; trying again");
                    }
                },
                Some(lock) => {
                    if !lock.still_held().await {
                        held = None;
                        tracing::warn!(
                            instance = store.instance(),
                            "this instance lost the leadership (its database session broke): \
                             the poller, the sweeper and the subscription stop here"
                        );
                        metrics.set_leader(false);
                        tell.send_replace(false);
                    }
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(TRY_EVERY) => {}
            }
        }
        tell.send_replace(false);
        if let Some(lock) = held {
            // Handed over at once, so another instance takes over within its next try.
            lock.release().await;
            tracing::info!(
                instance = store.instance(),
                "gave up the leadership: stopping"
            );
        }
    };
    (Leadership { leading }, run)
}
