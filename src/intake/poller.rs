//! The task-list poller: every `intake.poll_interval`, list our task definition's tasks (all pages),
//! look up each `processing` task not yet known (pipelined: a page's lookups start when it arrives,
//! while the next pages are read), and end held jobs whose task left `processing` without us.
//!
//! Invariants:
//! - a known task costs nothing beyond its share of the list pages;
//! - a held job is marked gone only if it was stored *before* the list was read (a job stored by the
//!   webhook while the list was in flight is not in it, and is not gone), is still `held` (a job
//!   an action owns is settled by the executor from Graph's answer, see [`crate::store::MarkedGone`]),
//!   and a direct read of its task confirms it (`404`, or a state other than `processing`): Graph's
//!   task list is eventually consistent and a page can miss an item, so absence from the list alone
//!   proves nothing. A read that fails leaves the job held; the next poll asks again. This costs one
//!   `GET task` per job that left the list, none for the others;
//! - a poll can be requested at once ([`Poller::poll_now`]): after a `reauthorizationRequired` or
//!   `missed` lifecycle notification, notifications may have been lost.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Intake, IntakeError, Looked};
use crate::graph::{JobRef, PrintTaskProcessingState, parse_parent_url};
use crate::store::{DiscoveredVia, MarkedGone};

/// How many lookups one poll runs at once, unless told otherwise ([`Poller::with_lookups`]; the
/// daemon gives `graph.max_concurrent_requests` × [`crate::graph::WORK_PER_SLOT`], so a burst of
/// new jobs keeps every Graph slot busy while lookups store their jobs).
pub const LOOKUP_CONCURRENCY: usize = 16;

/// What one poll did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Tasks listed as `processing`.
    pub processing: usize,
    /// New held jobs stored.
    pub stored: usize,
    /// Held jobs ended as gone.
    pub gone: usize,
    /// Held jobs missing from the list whose task, read directly, is still `processing`.
    pub missing_from_list: usize,
    /// Lookups that failed (retried at the next poll).
    pub failed: usize,
}

/// Polls the task list. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Poller {
    intake: Intake,
    now: Arc<Notify>,
    lookups: usize,
}

impl Poller {
    /// A poller over `intake`.
    pub fn new(intake: Intake) -> Self {
        Self {
            intake,
            now: Arc::new(Notify::new()),
            lookups: LOOKUP_CONCURRENCY,
        }
    }

    /// The same poller, running at most `lookups` job lookups at once (at least one).
    pub fn with_lookups(mut self, lookups: usize) -> Self {
        self.lookups = lookups.max(1);
        self
    }

    /// Asks for a poll as soon as possible (coalesced with one already asked for).
    pub fn poll_now(&self) {
        self.now.notify_one();
    }

    /// Polls every `interval` (never on a timer when `None`: mode `webhook`) and on
    /// [`Poller::poll_now`], until `shutdown`.
    pub async fn run(self, interval: Option<Duration>, shutdown: CancellationToken) {
        loop {
            let nap = interval.unwrap_or(Duration::from_secs(86_400));
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(nap), if interval.is_some() => {}
                () = self.now.notified() => {}
            }
            if let Err(error) = self.poll(DiscoveredVia::Poll).await {
                tracing::warn!(%error, "polling the task list failed; trying again at the next interval");
            }
        }
    }

    /// One poll: list, look up what is new, end what is gone. The lookups of a page's new tasks
    /// start as soon as that page arrives, while the next pages are read: a long list does not
    /// delay the first release. Jobs are marked gone only after every page was read.
    pub async fn poll(&self, via: DiscoveredVia) -> Result<PollReport, IntakeError> {
        let intake = &self.intake;
        let started = intake.clock.now();
        // Bounded: when lookups fall behind, reading further pages waits for them.
        let (mut found, queue) = futures::channel::mpsc::channel::<(String, JobRef)>(self.lookups);
        let listing = async move {
            let mut processing = HashSet::new();
            let mut unreadable = 0;
            let mut pages = std::pin::pin!(intake.graph.task_pages(&intake.definition_id));
            while let Some(page) = pages.next().await {
                let page = page?;
                // One store read per page, not per task: the next page waits for this loop.
                let ids: Vec<&str> = page
                    .iter()
                    .filter(|task| task.status.state == PrintTaskProcessingState::Processing)
                    .map(|task| task.id.as_str())
                    .collect();
                let known = intake.store.known_tasks(&ids).await?;
                for task in page {
                    if task.status.state != PrintTaskProcessingState::Processing {
                        continue;
                    }
                    processing.insert(task.id.clone());
                    if known.contains(&task.id) {
                        continue;
                    }
                    match parse_parent_url(&task.parent_url) {
                        Ok(job) => {
                            // The lookups end only after this sender is dropped: a send never
                            // fails while they run.
                            let _ = found.send((task.id.clone(), job)).await;
                        }
                        Err(error) => {
                            tracing::warn!(task = %task.id, %error, "a processing task does not name a printer job; skipped");
                            unreadable += 1;
                        }
                    }
                }
            }
            Ok::<_, IntakeError>((processing, unreadable))
        };
        // A burst of new jobs is looked up a few at a time: one slow or throttled GET does not hold
        // up the rest, and the Graph client's own bound keeps the burst polite.
        let looking = async {
            let mut report = PollReport::default();
            let mut lookups = queue
                .map(|(task_id, job): (String, JobRef)| {
                    let intake = intake.clone();
                    async move {
                        let looked = intake.lookup(&task_id, &job, via).await;
                        (task_id, looked)
                    }
                })
                .buffer_unordered(self.lookups);
            while let Some((task_id, looked)) = lookups.next().await {
                match looked {
                    Ok(Looked::Stored) => report.stored += 1,
                    Ok(Looked::Skipped) => {}
                    Err(error) => {
                        tracing::warn!(task = %task_id, %error, "cannot look up a held job; the next poll tries again");
                        report.failed += 1;
                    }
                }
            }
            report
        };
        // A page that cannot be read ends the poll with its error once the lookups already started
        // have finished (what they stored is held; nothing is marked gone from a partial list).
        let (listed, mut report) = tokio::join!(listing, looking);
        let (processing, unreadable) = listed?;
        report.processing = processing.len();
        report.failed += unreadable;
        for held in intake.store.all_held_jobs().await? {
            let gone = held.state == crate::store::JobState::Held
                && held.job.discovered_at < started
                && !processing.contains(&held.job.task_id);
            if gone && !self.confirmed_gone(&held.job.task_id, &mut report).await {
                continue;
            }
            if gone {
                let ended = intake
                    .store
                    .mark_gone(
                        &held.job.task_id,
                        intake.clock.now(),
                        "the task is no longer processing: it was completed or aborted outside \
                         pullprintd, or the job was deleted",
                    )
                    .await?;
                if ended == MarkedGone::Ended {
                    tracing::info!(task = %held.job.task_id, "held job gone: its task left processing elsewhere");
                    report.gone += 1;
                }
            }
        }
        tracing::debug!(?report, "task list polled");
        Ok(report)
    }

    /// Whether a direct read of the task confirms that it left `processing` (or no longer exists).
    async fn confirmed_gone(&self, task_id: &str, report: &mut PollReport) -> bool {
        let intake = &self.intake;
        match intake.graph.get_task(&intake.definition_id, task_id).await {
            Ok(task) if task.status.state == PrintTaskProcessingState::Processing => {
                tracing::info!(
                    task = task_id,
                    "a held job's task is missing from the task list but still processing; kept"
                );
                report.missing_from_list += 1;
                false
            }
            Ok(_) => true,
            Err(error) if error.is_not_found() => true,
            Err(error) => {
                tracing::warn!(task = task_id, %error, "cannot confirm that a held job's task is gone; the next poll asks again");
                report.failed += 1;
                false
            }
        }
    }
}
