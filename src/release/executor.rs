//! The executor: drives every queued action through [`super::steps`] against Graph until it ends.
//!
//! Invariants:
//! - one action per job at a time (the store allows one unfinished action per task, and the executor
//!   never drives the same action twice at once: `running`);
//! - at most `max_concurrent` actions are driven at once (a [`Semaphore`]); the Graph client bounds
//!   requests in flight on top of that;
//! - before any call that may take effect its intent is committed ([`Store::record_step`]); after it,
//!   the completed step. A restart (even after `kill -9`) therefore resumes at the recorded step and
//!   settles an intent by reading the job first: a redirect is never sent twice;
//! - it wakes on [`Executor::wake`] (something was enqueued), when a drive ends, and on a timer for
//!   the earliest rescheduled action, never by polling the store in a tight loop;
//! - the loop never waits for a free slot: due actions beyond the free slots wait for the next turn.
//!   So the watchdog's heartbeat judges progress, not the loop's position: it beats when a drive
//!   records a step, and on each turn unless actions wait for a slot while no Graph request is
//!   under way within its bounds (then the drives holding the slots are stuck, not waiting on Graph);
//! - several daemons may share one queue (a PostgreSQL store): an action is driven only after this
//!   daemon claimed it ([`Store::claim_actions`]), its lease is renewed every [`LEASE`] / 3 while it
//!   is driven, and a daemon that dies loses it after [`LEASE`]; another then claims it and resumes
//!   at the recorded step, settling an intent by reading first. A daemon that lost its lease (it
//!   stalled past it) finds its writes refused and stops driving;
//! - on cancellation it starts nothing new and lets the actions under way finish their current call
//!   (bounded by the caller's drain time); what is cut off stays a recorded intent, settled on restart.
//!
//! ## Test hook: `PULLPRINTD_TEST_CRASH_AT`
//! When this environment variable names a step (`patch_job_sending`, `redirect_sending`,
//! `abort_done`…, the words of [`Step`]), the process calls `std::process::abort()` right after that
//! step is committed: the crash tests kill the real binary at each step deterministically and restart
//! it on the same store. Unset in production; it has no other effect.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use rand::RngExt as _;
use tokio::sync::{Notify, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::calls;
use super::completions::{ActionOutcome, Completions};
use super::steps::{self, Advance, Failure, NextStep, Step, TaskState};
use crate::clock::SharedClock;
use crate::graph::GraphClient;
use crate::job::Applied;
use crate::metrics::Metrics;
use crate::notify::Heartbeat;
use crate::store::{Action, ActionId, ActionKind, Outcome, Store, StoreError, TextEnum};

/// The longest the executor sleeps without looking at the queue: the injected clock may jump (tests,
/// a suspended laptop), and a timer computed from it would then be too late.
const MAX_NAP: StdDuration = StdDuration::from_secs(1);

/// The longest an action is put off, whatever Graph's `Retry-After` asked for (see
/// [`crate::graph::retry::RETRY_AFTER_CEILING`]).
pub const MAX_RETRY_DELAY: time::Duration = time::Duration::hours(1);

/// How many due actions are read per round, beyond those already running.
const BATCH: u32 = 64;

/// How long a claim on an action holds without renewal: another daemon takes over a dead one's
/// action this long after its last renewal at most.
pub const LEASE: time::Duration = time::Duration::seconds(30);

/// How often a claim is renewed while its action is driven: three renewals fit in one lease, so
/// one slow store write does not lose it.
const RENEW_EVERY: StdDuration = StdDuration::from_secs(10);

/// The environment variable of the crash test hook (see the module docs).
pub const CRASH_AT_ENV: &str = "PULLPRINTD_TEST_CRASH_AT";

/// The executor's bookkeeping of its drives.
#[derive(Debug, Default)]
struct Running {
    /// Actions being driven now.
    now: HashSet<ActionId>,
    /// Actions whose drive ended since the last claim began: the claim may have read one of them
    /// before its drive recorded its last step, so that copy is read again before a new drive.
    ended_since_claim: HashSet<ActionId>,
}

/// Drives queued actions. Cheap to clone.
#[derive(Clone)]
pub struct Executor {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    graph: GraphClient,
    clock: SharedClock,
    completions: Completions,
    wake: Notify,
    permits: Arc<Semaphore>,
    /// Actions being driven now, and those whose drive ended since the last claim began; a std
    /// mutex, held only for set operations.
    running: Mutex<Running>,
    /// The abort reason of an expired job, worded from `release.hold_timeout`.
    expire_reason: String,
    /// The step after which to abort the process (test hook).
    crash_at: Option<Step>,
    /// Actions by kind and outcome, time from submission to release.
    metrics: Metrics,
    /// Beaten on progress (see the module docs); the systemd watchdog pings only while it is fresh.
    heartbeat: Arc<Heartbeat>,
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor").finish_non_exhaustive()
    }
}

/// Who watches the executor work: the metrics registry and the watchdog's heartbeat.
#[derive(Debug, Clone, Default)]
pub struct Observers {
    /// Actions by kind and outcome, time from submission to release.
    pub metrics: Metrics,
    /// Beaten on progress: a step recorded, or a turn of the loop that is not stuck.
    pub heartbeat: Arc<Heartbeat>,
}

/// What one round of [`Executor::start_due`] did.
enum Started {
    /// Every due action is running.
    All,
    /// Some due actions wait for a free slot.
    SlotsFull,
}

/// How one drive of an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Driven {
    /// The action finished (or its job went back to held); waiters were told.
    Finished(ActionOutcome),
    /// It was put off until a later attempt.
    Rescheduled,
}

impl Executor {
    /// An executor over `store` and `graph`, driving at most `max_concurrent` actions at once.
    /// `hold_timeout` words the abort reason of expired jobs.
    pub fn new(
        store: Store,
        graph: GraphClient,
        clock: SharedClock,
        completions: Completions,
        max_concurrent: usize,
        hold_timeout: StdDuration,
        observers: Observers,
    ) -> Self {
        let Observers { metrics, heartbeat } = observers;
        let crash_at = std::env::var(CRASH_AT_ENV)
            .ok()
            .and_then(|word| Step::parse(word.trim()));
        Self {
            inner: Arc::new(Inner {
                store,
                graph,
                clock,
                completions,
                wake: Notify::new(),
                permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
                running: Mutex::new(Running::default()),
                expire_reason: expire_reason(hold_timeout),
                crash_at,
                metrics,
                heartbeat,
            }),
        }
    }

    /// Tells the executor that an action was enqueued.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Runs until `shutdown`, then waits up to `drain` for the actions under way.
    /// The first round drives every unfinished action, due or not: a restart resumes them all.
    pub async fn run(self, shutdown: CancellationToken, drain: StdDuration) {
        let mut tasks = JoinSet::new();
        let mut first = true;
        loop {
            if shutdown.is_cancelled() {
                break;
            }
            // The loop turns at least every MAX_NAP. It is alive if it keeps up with the queue, or
            // if what holds the slots is waiting on Graph (slow or throttling, not us).
            let mut store_failed = false;
            match self.start_due(&mut tasks, first, &shutdown).await {
                Ok(Started::All) => {
                    first = false;
                    self.inner.heartbeat.beat();
                }
                Ok(Started::SlotsFull) => {
                    if self.inner.graph.waiting_on_graph() {
                        self.inner.heartbeat.beat();
                    }
                }
                Err(error) => {
                    store_failed = true;
                    tracing::error!(%error, "cannot read the action queue; retrying");
                }
            }
            // Reap finished drives so the set does not grow; one that ended is a reason to look
            // again at once, as is a wake that came while this turn ran.
            let mut reaped = false;
            while tasks.try_join_next().is_some() {
                reaped = true;
            }
            let woken = self.inner.wake.notified();
            tokio::pin!(woken);
            // `enable` first: it takes a pending wake, which this next turn answers.
            let pending = woken.as_mut().enable();
            if (reaped || pending) && !store_failed {
                // Under load the loop turns once per ended drive or new action: reading when the
                // next action is due would be a store round trip whose answer is not used.
                continue;
            }
            let nap = self.nap().await;
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = &mut woken => {}
                () = tokio::time::sleep(nap) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }
        if !tasks.is_empty() {
            tracing::info!(in_flight = tasks.len(), "waiting for the actions under way");
            if tokio::time::timeout(drain, async { while tasks.join_next().await.is_some() {} })
                .await
                .is_err()
            {
                tracing::warn!(
                    "actions still under way at shutdown are left at their recorded step; the next start settles them"
                );
                tasks.abort_all();
            }
        }
    }

    /// How long to sleep before looking at the queue again.
    async fn nap(&self) -> StdDuration {
        match self.inner.store.next_action_due().await {
            Ok(Some(due)) => {
                let wait = due - self.inner.clock.now();
                StdDuration::try_from(wait)
                    .unwrap_or(StdDuration::ZERO)
                    .clamp(StdDuration::from_millis(10), MAX_NAP)
            }
            _ => MAX_NAP,
        }
    }

    /// Starts a drive for each due action not already running, as free slots allow; never waits for
    /// a slot (a drive ending wakes the loop).
    async fn start_due(
        &self,
        tasks: &mut JoinSet<()>,
        all: bool,
        shutdown: &CancellationToken,
    ) -> Result<Started, StoreError> {
        // Claims only what free slots can start: an action claimed but left waiting here would be
        // kept from the other daemons sharing the queue for a whole lease. One more than the free
        // slots tells a full house from an empty queue. The actions being driven are left out (their
        // drives renew their leases): reading them again on every turn cost more than the claim.
        let free = self.inner.permits.available_permits().min(BATCH as usize);
        let limit = u32::try_from(free + 1).unwrap_or(u32::MAX);
        let running: Vec<ActionId> = {
            let mut running = self.lock_running();
            running.ended_since_claim.clear();
            running.now.iter().copied().collect()
        };
        let actions = self
            .inner
            .store
            .claim_actions_except(self.inner.clock.now(), LEASE, limit, all, &running)
            .await?;
        for action in actions {
            if shutdown.is_cancelled() {
                return Ok(Started::All);
            }
            let Some(stale) = self.mark_running(action.id) else {
                continue;
            };
            let Ok(permit) = Arc::clone(&self.inner.permits).try_acquire_owned() else {
                self.unmark_running(action.id);
                return Ok(Started::SlotsFull);
            };
            let executor = self.clone();
            tasks.spawn(async move {
                let id = action.id;
                // The claim may have read this action before its previous drive ended: then it is
                // read again, so a drive never starts from a step another drive has moved past (a
                // stale intent step would cost a needless `GET job` to settle), nor drives a
                // finished or rescheduled action. Otherwise the claim's copy is current: no drive
                // of it ended since the claim began, and none was running (marked above).
                let action = if stale {
                    match executor.inner.store.action(id).await {
                        Ok(Some(fresh))
                            if all || fresh.next_attempt_at <= executor.inner.clock.now() =>
                        {
                            fresh
                        }
                        Ok(_) => {
                            executor.unmark_running(id);
                            drop(permit);
                            return;
                        }
                        // The drive meets the store's failure itself and pauses.
                        Err(_) => action,
                    }
                } else {
                    action
                };
                match executor.drive_leased(action).await {
                    Ok(_) => {}
                    Err(StoreError::ActionNotPending(_)) => {
                        tracing::warn!(action = %id, "the action was finished or taken over by another instance; this one stops driving it");
                    }
                    Err(error) => {
                        tracing::error!(action = %id, %error, "cannot record an action's progress; it is retried");
                        // The action stays due; without a pause a failing store would be retried
                        // in a tight loop.
                        tokio::time::sleep(MAX_NAP).await;
                    }
                }
                executor.unmark_running(id);
                drop(permit);
                // Another round may find more work now that a permit is free.
                executor.wake();
            });
        }
        Ok(Started::All)
    }

    /// Marks `id` as driven: `None` when it already is, else whether the claim's copy of it may be
    /// stale (a drive of it ended since the claim began).
    fn mark_running(&self, id: ActionId) -> Option<bool> {
        let mut running = self.lock_running();
        running
            .now
            .insert(id)
            .then(|| running.ended_since_claim.contains(&id))
    }

    fn unmark_running(&self, id: ActionId) {
        let mut running = self.lock_running();
        running.now.remove(&id);
        running.ended_since_claim.insert(id);
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, Running> {
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`Executor::drive`], renewing this daemon's lease on the action every [`RENEW_EVERY`] until
    /// the drive ends. A renewal that finds the lease gone stops renewing; the drive's next write
    /// is then refused and ends it.
    async fn drive_leased(&self, action: Action) -> Result<Driven, StoreError> {
        let id = action.id;
        let drive = self.drive(action);
        tokio::pin!(drive);
        let mut renew = tokio::time::interval(RENEW_EVERY);
        // The claim was just taken: the first renewal is due one period from now.
        renew.reset();
        let mut renewing = true;
        loop {
            tokio::select! {
                driven = &mut drive => return driven,
                _ = renew.tick(), if renewing => {
                    let until = self.inner.clock.now() + LEASE;
                    match self.inner.store.renew_lease(id, until).await {
                        Ok(true) => {}
                        Ok(false) => {
                            tracing::warn!(action = %id, "lost the lease on an action under way");
                            renewing = false;
                        }
                        Err(error) => {
                            tracing::warn!(action = %id, %error, "cannot renew the lease on an action under way");
                        }
                    }
                }
            }
        }
    }

    /// Drives one action until it finishes or is rescheduled (the loop of [`super::steps`]' docs).
    pub async fn drive(&self, mut action: Action) -> Result<Driven, StoreError> {
        let store = &self.inner.store;
        // Whether the last read of the job showed our task `processing`: a release that failed then
        // goes back to `held` instead of ending.
        let mut still_processing = false;
        let mut todo = steps::next(&action);
        loop {
            todo = match todo {
                NextStep::Call(call) => {
                    let intent = call.intent();
                    store.record_step(action.id, intent, None).await?;
                    // Progress: the watchdog's heartbeat.
                    self.inner.heartbeat.beat();
                    self.crash_point(intent);
                    action.step = intent;
                    let reason = (action.kind == ActionKind::Expire)
                        .then_some(self.inner.expire_reason.as_str());
                    match calls::send(&self.inner.graph, &action, &call, reason).await {
                        Ok(()) => match steps::after_success(&action, &call) {
                            Advance::Record(step) => {
                                store.record_step(action.id, step, None).await?;
                                self.crash_point(step);
                                action.step = step;
                                steps::next(&action)
                            }
                            Advance::Done(finish) => NextStep::Done(finish),
                        },
                        Err(failure) => {
                            if let Failure::Permanent { reason } = &failure {
                                tracing::warn!(action = %action.id, task = %action.task_id, %reason, "Graph refused a call; reading the job to settle it");
                            }
                            steps::after_failure(&action, &call, failure)
                        }
                    }
                }
                NextStep::Settle(probe) => match calls::probe(&self.inner.graph, &action).await {
                    Ok(observation) => {
                        still_processing = matches!(
                            &observation,
                            steps::Observation::Found(job) if job.task_state == Some(TaskState::Processing)
                        );
                        steps::after_probe(&action, &probe, &observation)
                    }
                    Err(failure) => steps::after_probe_failure(&action, failure),
                },
                NextStep::Retry {
                    resume_from,
                    error,
                    retry_after,
                } => {
                    store.record_step(action.id, resume_from, None).await?;
                    let jitter = rand::rng().random::<f64>();
                    // Graph's Retry-After is honoured up to the queue's ceiling, and the date
                    // arithmetic saturates: a server-given delay never panics the daemon.
                    let delay = steps::retry_delay(action.attempts, jitter, retry_after)
                        .min(MAX_RETRY_DELAY);
                    let at = self.inner.clock.now().saturating_add(delay);
                    store.reschedule(action.id, at, &error).await?;
                    tracing::info!(action = %action.id, task = %action.task_id, step = %resume_from, %error, retry_at = %at, "action put off");
                    return Ok(Driven::Rescheduled);
                }
                NextStep::Done(finish) => {
                    let now = self.inner.clock.now();
                    let back_to_held = finish.outcome == Outcome::Failed
                        && matches!(action.kind, ActionKind::Release | ActionKind::Redirect)
                        && still_processing;
                    let closed = if back_to_held {
                        tracing::warn!(action = %action.id, task = %action.task_id, detail = %finish.detail, "release failed; the job is held again");
                        // What Graph holds now, if this action changed it: recorded so that the
                        // next release re-applies whatever differs from the person's choice.
                        let applied = match action.step {
                            Step::PatchJobDone | Step::CompleteTaskSending => {
                                steps::configuration_to_patch(&action)
                                    .map(|c| Applied::Known(Box::new(c)))
                            }
                            Step::PatchJobSending => Some(Applied::Unknown),
                            _ => None,
                        };
                        store
                            .return_to_held(action.id, &finish.detail, applied.as_ref(), now)
                            .await?
                    } else {
                        if finish.outcome == Outcome::Failed {
                            tracing::error!(action = %action.id, task = %action.task_id, kind = %action.kind, detail = %finish.detail, "action failed");
                        } else {
                            tracing::info!(action = %action.id, task = %action.task_id, outcome = %finish.outcome, "action finished");
                        }
                        store
                            .finish(action.id, finish.outcome, &finish.detail, now)
                            .await?
                    };
                    self.observe_finish(&action, finish.outcome, closed.submitted_at, now);
                    let outcome = ActionOutcome {
                        outcome: finish.outcome,
                        detail: finish.detail,
                    };
                    self.inner.completions.publish(action.id, outcome.clone());
                    return Ok(Driven::Finished(outcome));
                }
            };
        }
    }

    /// Counts the finished action; for a job that printed, how long it waited since submission.
    fn observe_finish(
        &self,
        action: &Action,
        outcome: Outcome,
        submitted_at: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) {
        let metrics = &self.inner.metrics;
        metrics.action_finished(action.kind.as_str(), outcome.as_str());
        if matches!(outcome, Outcome::Released | Outcome::Redirected) {
            metrics.observe_release_latency((now - submitted_at).as_seconds_f64().max(0.0));
        }
    }

    /// The crash test hook (see the module docs).
    fn crash_point(&self, step: Step) {
        if self.inner.crash_at == Some(step) {
            eprintln!(
                "{CRASH_AT_ENV}={}: aborting after recording it",
                step.as_str()
            );
            std::process::abort();
        }
    }
}

/// "Not released within 4h": the abort reason of an expired job.
pub fn expire_reason(hold_timeout: StdDuration) -> String {
    format!(
        "Not released within {}",
        crate::config::HumanDuration(hold_timeout)
    )
}
