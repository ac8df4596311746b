//! Start-up reconciliation: before notifications are trusted, read Graph once.
//!
//! While the daemon was down, tasks were created (their notifications are lost) and tasks ended
//! elsewhere. One poll of the task list (recorded as `reconcile`) stores the first and ends the second;
//! the executor's first round resumes every unfinished action at its recorded step
//! ([`crate::release::executor::Executor::run`]). A failed reconciliation is not fatal: the poller (or,
//! without one, the next notification) catches up.

use super::poller::{PollReport, Poller};
use crate::store::{DiscoveredVia, Store};

/// Runs the start-up reconciliation; returns what the poll found, `None` when Graph could not be read.
pub async fn reconcile(poller: &Poller, store: &Store) -> Option<PollReport> {
    match store.unfinished_actions().await {
        Ok(actions) if !actions.is_empty() => {
            tracing::info!(
                unfinished = actions.len(),
                "resuming unfinished actions at their recorded steps"
            );
        }
        Ok(_) => {}
        Err(error) => tracing::error!(%error, "cannot read unfinished actions"),
    }
    match poller.poll(DiscoveredVia::Reconcile).await {
        Ok(report) => {
            tracing::info!(?report, "start-up reconciliation done");
            Some(report)
        }
        Err(error) => {
            tracing::warn!(%error, "start-up reconciliation could not read the task list; polling catches up");
            None
        }
    }
}
