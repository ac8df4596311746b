//! The release state machine: what to do next with a queued action. Pure: no I/O, no clock.
//!
//! Paths (the release path through the modules is in `ARCHITECTURE.md`), with the step recorded in `actions.step` before (`…Sending`) and after
//! (`…Done`) each Graph call that may take effect:
//!
//! ```text
//! release  (same printer)  Queued ─[PatchJobSending → PatchJobDone]─ CompleteTaskSending ─► released
//!                          (the PATCH job only when `changes` differs from the held configuration)
//! redirect (find-me)       Queued ─ RedirectSending ─► redirected   (Graph completes the task itself)
//! delete / expire          Queued ─ AbortSending → AbortDone ─ AbortTaskSending ─► deleted / expired
//! ```
//!
//! Invariants:
//! - A `…Sending` step is a write-ahead intent: the call may or may not have taken effect. Before
//!   anything else, such an action is *settled* by reading the job and its tasks ([`Probe`]); only
//!   then is a call repeated. This is what makes a redirect never go out twice: it is sent again only
//!   while the probe shows the job still held (our task `processing`, no `redirectedTo`).
//! - Every path ends: a task that left `processing` without us ends the action as
//!   [`Outcome::Gone`], a refusal Graph will repeat ends it as [`Outcome::Failed`] with the reason;
//!   only failures that may pass (throttling, outages, timeouts) are retried, with capped back-off.
//!
//! ## How the executor drives it
//!
//! ```text
//! let mut todo = next(&action);
//! loop {
//!     match todo {
//!         Call(call)  => record_step(call.intent()); send call;
//!                        Ok  → match after_success(..) { Record(step) → record_step(step);
//!                                                        action.step = step; todo = next(&action),
//!                                                        Done(finish) → todo = Done(finish) }
//!                        Err → todo = after_failure(&action, &call, failure)
//!         Settle(probe) => GET job?$expand=tasks;
//!                        Ok  → todo = after_probe(&action, &probe, &observation)
//!                        Err → todo = after_probe_failure(&action, failure)
//!         Retry { resume_from, .. } => record_step(resume_from); reschedule(retry_delay(..)); stop
//!         Done(finish) => store.finish(..); stop
//!     }
//! }
//! ```

use time::Duration;

use crate::graph::PrintJobConfiguration;
pub use crate::job::Step;
use crate::job::{Action, ActionKind, Applied, Outcome};

/// A Graph call the executor makes for an action.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphCall {
    /// `PATCH /print/printers/{printer}/jobs/{job}` with `{"configuration": configuration}`.
    PatchJob {
        /// The full configuration to set.
        configuration: PrintJobConfiguration,
    },
    /// `PATCH /print/taskDefinitions/{definition}/tasks/{task}` with state `completed`.
    CompleteTask,
    /// `POST /print/printers/{printer}/jobs/{job}/redirect`.
    Redirect {
        /// `destinationPrinterId`.
        destination_printer_id: String,
        /// `configuration`: the requested one, or the held one when nothing changed (so the
        /// destination prints what the user saw at the station).
        configuration: PrintJobConfiguration,
    },
    /// `POST /print/printers/{printer}/jobs/{job}/abort` with `{"reason": reason}`.
    Abort {
        /// Shown by Universal Print as the job's abort reason.
        reason: String,
    },
    /// `PATCH /print/taskDefinitions/{definition}/tasks/{task}` with state `aborted`.
    AbortTask,
}

impl GraphCall {
    /// The intent to record before sending this call.
    pub fn intent(&self) -> Step {
        match self {
            Self::PatchJob { .. } => Step::PatchJobSending,
            Self::CompleteTask => Step::CompleteTaskSending,
            Self::Redirect { .. } => Step::RedirectSending,
            Self::Abort { .. } => Step::AbortSending,
            Self::AbortTask => Step::AbortTaskSending,
        }
    }
}

/// A read that settles an intent of unknown effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// `GET /print/printers/{printer}/jobs/{job}?$expand=tasks`, after a restart or a call whose
    /// outcome is unknown: if the intent did not take effect and the job is still held, it is sent again.
    GetJobWithTasks,
    /// The same read after Graph refused the call: the refusal may only mean the call had already
    /// taken effect (or the task ended elsewhere); if the probe shows neither, the action fails with
    /// `reason`.
    GetJobWithTasksAfterRefusal {
        /// What Graph said.
        reason: String,
    },
}

/// Our task's state, from the job's `tasks` (printTaskProcessingState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskState {
    /// `pending`.
    Pending,
    /// `processing`: the job is held and PATCH/abort/redirect are allowed.
    Processing,
    /// `completed`.
    Completed,
    /// `aborted`.
    Aborted,
    /// Any other value (`unknownFutureValue`, or one added later).
    Other,
}

/// The job's state (printJobProcessingState).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// `pending`.
    Pending,
    /// `processing`.
    Processing,
    /// `paused` (how a held job looks).
    Paused,
    /// `stopped`.
    Stopped,
    /// `completed`.
    Completed,
    /// `canceled`.
    Canceled,
    /// `aborted`.
    Aborted,
    /// `unknown` or any other value.
    Unknown,
}

impl JobState {
    /// Whether the job was stopped for good (aborted or canceled).
    fn is_abandoned(self) -> bool {
        matches!(self, Self::Aborted | Self::Canceled)
    }
}

/// What a [`Probe`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedJob {
    /// The job's state.
    pub job_state: JobState,
    /// Our task's state; `None` when the job no longer lists it.
    pub task_state: Option<TaskState>,
    /// The job's `redirectedTo`, when set.
    pub redirected_to: Option<String>,
}

/// The answer to a [`Probe`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation {
    /// Graph returned the job.
    Found(ObservedJob),
    /// Graph answered 404: the job no longer exists.
    JobNotFound,
}

/// Why a call failed, as the executor classifies Graph's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The call certainly did not take effect and may succeed later (429, 503, connection refused).
    Transient {
        /// What happened.
        error: String,
        /// Graph's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// Graph refused and will refuse again (400, 403, 404, 409).
    Permanent {
        /// What Graph said, kept in the action's detail and the audit log.
        reason: String,
    },
    /// The call may or may not have taken effect (timeout, connection lost after sending).
    Unknown {
        /// What happened.
        error: String,
    },
}

/// How an action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    /// The outcome for the action, the held job and the audit log.
    pub outcome: Outcome,
    /// How or why, for people.
    pub detail: String,
}

/// What the executor does next.
#[derive(Debug, Clone, PartialEq)]
#[allow(
    clippy::large_enum_variant,
    reason = "a short-lived answer, made once per step next to a Graph call; boxing the configuration buys nothing"
)]
pub enum NextStep {
    /// Record [`GraphCall::intent`], then make the call.
    Call(GraphCall),
    /// Read the job, then ask [`after_probe`].
    Settle(Probe),
    /// Record `resume_from`, then reschedule the action with [`retry_delay`].
    Retry {
        /// The step to resume from: the one before the failed call when it certainly did not take
        /// effect, the intent itself when that is unknown (so the next attempt settles it first).
        resume_from: Step,
        /// Kept as the action's last error.
        error: String,
        /// Graph's `Retry-After`, the minimum delay.
        retry_after: Option<Duration>,
    },
    /// Finish the action (and the held job, with an audit record).
    Done(Finish),
}

/// What a successful call means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Advance {
    /// Record this step, then ask [`next`] again.
    Record(Step),
    /// The action is finished.
    Done(Finish),
}

/// The next thing to do for `action`, from its recorded step alone.
pub fn next(action: &Action) -> NextStep {
    if let Some(finish) = inconsistent(action) {
        return NextStep::Done(finish);
    }
    if action.step.is_intent() {
        return NextStep::Settle(Probe::GetJobWithTasks);
    }
    match (action.kind, action.step) {
        (ActionKind::Release, Step::Queued) => match configuration_to_patch(action) {
            Some(configuration) => NextStep::Call(GraphCall::PatchJob { configuration }),
            None => NextStep::Call(GraphCall::CompleteTask),
        },
        (ActionKind::Release, Step::PatchJobDone) => NextStep::Call(GraphCall::CompleteTask),
        (ActionKind::Redirect, Step::Queued) => NextStep::Call(redirect_call(action)),
        (ActionKind::Delete | ActionKind::Expire, Step::Queued) => {
            NextStep::Call(GraphCall::Abort {
                reason: abort_reason(action),
            })
        }
        (ActionKind::Delete | ActionKind::Expire, Step::AbortDone) => {
            NextStep::Call(GraphCall::AbortTask)
        }
        // `inconsistent` above has ruled every other pair out.
        (kind, step) => NextStep::Done(mismatch(kind, step)),
    }
}

/// What a successful `call` means for `action`.
pub fn after_success(action: &Action, call: &GraphCall) -> Advance {
    match call {
        GraphCall::PatchJob { .. } => Advance::Record(Step::PatchJobDone),
        GraphCall::CompleteTask => Advance::Done(Finish {
            outcome: Outcome::Released,
            detail: "released: the task is completed and the job prints".to_owned(),
        }),
        GraphCall::Redirect {
            destination_printer_id,
            ..
        } => Advance::Done(Finish {
            outcome: Outcome::Redirected,
            detail: format!("redirected to printer {destination_printer_id}"),
        }),
        GraphCall::Abort { .. } => Advance::Record(Step::AbortDone),
        GraphCall::AbortTask => Advance::Done(abort_finished(action, "the job is aborted")),
    }
}

/// What to do after `call` failed.
pub fn after_failure(action: &Action, call: &GraphCall, failure: Failure) -> NextStep {
    match failure {
        Failure::Transient { error, retry_after } => NextStep::Retry {
            resume_from: step_before(action, call),
            error,
            retry_after,
        },
        Failure::Unknown { error } => NextStep::Retry {
            resume_from: call.intent(),
            error,
            retry_after: None,
        },
        Failure::Permanent { reason } => {
            NextStep::Settle(Probe::GetJobWithTasksAfterRefusal { reason })
        }
    }
}

/// What to do after the probe itself failed.
pub fn after_probe_failure(action: &Action, failure: Failure) -> NextStep {
    match failure {
        Failure::Transient { error, retry_after } => NextStep::Retry {
            resume_from: action.step,
            error,
            retry_after,
        },
        Failure::Unknown { error } => NextStep::Retry {
            resume_from: action.step,
            error,
            retry_after: None,
        },
        // A read refused for good (403: missing permission) will not settle by waiting; the intent
        // is not repeated blind, so the action ends here with the reason visible.
        Failure::Permanent { reason } => NextStep::Done(Finish {
            outcome: Outcome::Failed,
            detail: format!(
                "cannot read the job to settle step {}: {reason}",
                action.step
            ),
        }),
    }
}

/// What to do once the probe has read the job.
pub fn after_probe(action: &Action, probe: &Probe, observation: &Observation) -> NextStep {
    if let Some(finish) = inconsistent(action) {
        return NextStep::Done(finish);
    }
    let refusal = match probe {
        Probe::GetJobWithTasks => None,
        Probe::GetJobWithTasksAfterRefusal { reason } => Some(reason.as_str()),
    };
    let job = match observation {
        Observation::Found(job) => job,
        Observation::JobNotFound => return NextStep::Done(job_not_found(action)),
    };
    // "Task gone, job still paused", no redirect named: evidence of nothing (a lagging read, or a
    // task closed a moment ago). Concluding "ended elsewhere" would leave a held job forgotten and
    // its task processing; concluding "done" could lose a release. Read again later.
    if job.task_state.is_none() && job.job_state == JobState::Paused && job.redirected_to.is_none()
    {
        return NextStep::Retry {
            resume_from: action.step,
            error: "an ambiguous read: our task is no longer listed but the job is still paused; \
                    reading it again later"
                .to_owned(),
            retry_after: None,
        };
    }
    let processing = job.task_state == Some(TaskState::Processing);
    // Repeats the intent while the job is still held, unless Graph has just refused it.
    let again = |call: GraphCall| match refusal {
        Some(reason) => NextStep::Done(Finish {
            outcome: Outcome::Failed,
            detail: format!("Graph refused {}: {reason}", call_name(&call)),
        }),
        None => NextStep::Call(call),
    };
    match action.step {
        Step::Queued | Step::PatchJobDone | Step::AbortDone => {
            if processing {
                match (refusal, next(action)) {
                    (Some(_), NextStep::Call(call)) => again(call),
                    (_, todo) => todo,
                }
            } else {
                NextStep::Done(ended_elsewhere(job))
            }
        }
        Step::PatchJobSending => match configuration_to_patch(action) {
            Some(configuration) if processing => again(GraphCall::PatchJob { configuration }),
            // The changes equal the held configuration: nothing to patch, go on to the task.
            None if processing => again(GraphCall::CompleteTask),
            _ => NextStep::Done(ended_elsewhere(job)),
        },
        Step::CompleteTaskSending => match job.task_state {
            Some(TaskState::Completed) => NextStep::Done(Finish {
                outcome: Outcome::Released,
                detail: "released: the task is completed (confirmed by reading it back)".to_owned(),
            }),
            Some(TaskState::Processing) => again(GraphCall::CompleteTask),
            Some(TaskState::Aborted) => NextStep::Done(ended_elsewhere(job)),
            // Our task is no longer listed: the job's own state is the evidence left.
            None | Some(TaskState::Pending | TaskState::Other) => {
                if matches!(job.job_state, JobState::Processing | JobState::Completed) {
                    NextStep::Done(Finish {
                        outcome: Outcome::Released,
                        detail: format!(
                            "released: the job is {:?} after the task was completed",
                            job.job_state
                        ),
                    })
                } else {
                    NextStep::Done(ended_elsewhere(job))
                }
            }
        },
        Step::RedirectSending => {
            if let Some(to) = &job.redirected_to {
                return NextStep::Done(Finish {
                    outcome: Outcome::Redirected,
                    detail: format!("redirected to {to} (confirmed by reading the job back)"),
                });
            }
            if processing {
                // Still held and not redirected: the redirect did not happen; sending it is safe.
                return again(redirect_call(action));
            }
            // The task left `processing` after we may have redirected: it happened (Graph completes
            // the task itself), unless the job was aborted. Never send a redirect again here.
            if job.task_state == Some(TaskState::Aborted) || job.job_state.is_abandoned() {
                NextStep::Done(ended_elsewhere(job))
            } else if job.task_state == Some(TaskState::Completed)
                || matches!(job.job_state, JobState::Completed | JobState::Processing)
            {
                NextStep::Done(Finish {
                    outcome: Outcome::Redirected,
                    detail: "redirected: the task left processing after the redirect was sent"
                        .to_owned(),
                })
            } else {
                // "Task gone, job still paused", no redirect named: proof of neither. Assuming
                // the redirect happened could leave the job never printed; sending it again could
                // print it twice. Read again later.
                NextStep::Retry {
                    resume_from: Step::RedirectSending,
                    error: format!(
                        "cannot tell whether the redirect happened: the job is {:?}, our task is \
                         {}, and it names no redirect; reading it again later",
                        job.job_state,
                        task_word(job)
                    ),
                    retry_after: None,
                }
            }
        }
        Step::AbortSending => {
            if job.job_state.is_abandoned() {
                // Our abort took effect; close the task if it is still open.
                if processing {
                    NextStep::Call(GraphCall::AbortTask)
                } else {
                    NextStep::Done(abort_finished(action, "the job is aborted"))
                }
            } else if processing {
                again(GraphCall::Abort {
                    reason: abort_reason(action),
                })
            } else {
                NextStep::Done(ended_elsewhere(job))
            }
        }
        Step::AbortTaskSending => {
            if processing {
                again(GraphCall::AbortTask)
            } else {
                // The job was aborted (AbortDone preceded this intent); however the task closed, the
                // job will not print.
                NextStep::Done(abort_finished(
                    action,
                    &format!("the job is aborted and its task is {}", task_word(job)),
                ))
            }
        }
    }
}

/// How long to wait before attempt `attempts + 1`: exponential from 2 s, capped at 10 min, then
/// scaled by `jitter` (clamped to 0..=1) into the upper half, so retries of many actions spread out
/// while never waiting less than half the exponential delay; never less than Graph's `Retry-After`.
pub fn retry_delay(attempts: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
    const BASE_SECONDS: f64 = 2.0;
    const CAP_SECONDS: f64 = 600.0;
    // 2^9 * 2 s already exceeds the cap; limiting the exponent keeps the float finite.
    let exponential = (BASE_SECONDS * 2f64.powi(attempts.min(16) as i32)).min(CAP_SECONDS);
    let jitter = if jitter.is_nan() {
        0.0
    } else {
        jitter.clamp(0.0, 1.0)
    };
    let delay = Duration::seconds_f64(exponential * (0.5 + 0.5 * jitter));
    match retry_after {
        Some(after) if after > delay => after,
        _ => delay,
    }
}

/// The configuration to PATCH onto the job: the person's choice (the requested changes, or the held
/// configuration when they print as shown), if it differs from what Graph holds. Graph may hold
/// something else than the held configuration: a release that changed it and then failed
/// (`applied_configuration`; unknown counts as different).
pub fn configuration_to_patch(action: &Action) -> Option<PrintJobConfiguration> {
    let chosen = action
        .changes
        .as_ref()
        .unwrap_or(&action.held_configuration);
    let differs = match &action.applied_configuration {
        None => *chosen != action.held_configuration,
        Some(Applied::Known(on_graph)) => chosen != &**on_graph,
        Some(Applied::Unknown) => true,
    };
    differs.then(|| chosen.clone())
}

fn redirect_call(action: &Action) -> GraphCall {
    GraphCall::Redirect {
        destination_printer_id: action.destination_printer_id.clone().unwrap_or_default(),
        configuration: action
            .changes
            .clone()
            .unwrap_or_else(|| action.held_configuration.clone()),
    }
}

fn abort_reason(action: &Action) -> String {
    match (action.kind, &action.station_id) {
        (ActionKind::Expire, _) => "Not released within the hold time".to_owned(),
        (_, Some(station)) => format!("Deleted at release station {station}"),
        (_, None) => format!("Deleted by {}", action.requested_by),
    }
}

/// The step to resume from when `call` certainly did not take effect.
fn step_before(action: &Action, call: &GraphCall) -> Step {
    match call {
        GraphCall::PatchJob { .. } | GraphCall::Redirect { .. } | GraphCall::Abort { .. } => {
            Step::Queued
        }
        GraphCall::CompleteTask => {
            if configuration_to_patch(action).is_some() {
                Step::PatchJobDone
            } else {
                Step::Queued
            }
        }
        GraphCall::AbortTask => Step::AbortDone,
    }
}

fn abort_finished(action: &Action, how: &str) -> Finish {
    match action.kind {
        ActionKind::Expire => Finish {
            outcome: Outcome::Expired,
            detail: format!("expired: {how}"),
        },
        _ => Finish {
            outcome: Outcome::Deleted,
            detail: format!("deleted: {how}"),
        },
    }
}

/// Graph no longer has the job.
fn job_not_found(action: &Action) -> Finish {
    match action.step {
        // We had aborted it: a removed job is what the person asked for.
        Step::AbortDone | Step::AbortTaskSending => abort_finished(
            action,
            "the job is aborted and Universal Print has removed it",
        ),
        Step::CompleteTaskSending | Step::RedirectSending => Finish {
            outcome: Outcome::Gone,
            detail: format!(
                "the job no longer exists in Universal Print; whether the {} sent before the \
                 interruption took effect is unknown",
                if action.step == Step::RedirectSending {
                    "redirect"
                } else {
                    "release"
                }
            ),
        },
        _ => Finish {
            outcome: Outcome::Gone,
            detail: "the job no longer exists in Universal Print (deleted by its owner or expired)"
                .to_owned(),
        },
    }
}

/// Our task left `processing` without us.
fn ended_elsewhere(job: &ObservedJob) -> Finish {
    Finish {
        outcome: Outcome::Gone,
        detail: format!(
            "the task is {} and the job {:?}: it was settled outside pullprintd",
            task_word(job),
            job.job_state
        ),
    }
}

fn task_word(job: &ObservedJob) -> &'static str {
    match job.task_state {
        Some(TaskState::Pending) => "pending",
        Some(TaskState::Processing) => "processing",
        Some(TaskState::Completed) => "completed",
        Some(TaskState::Aborted) => "aborted",
        Some(TaskState::Other) => "in an unknown state",
        None => "no longer listed",
    }
}

fn call_name(call: &GraphCall) -> &'static str {
    match call {
        GraphCall::PatchJob { .. } => "the job configuration update",
        GraphCall::CompleteTask => "completing the task",
        GraphCall::Redirect { .. } => "the redirect",
        GraphCall::Abort { .. } => "the abort",
        GraphCall::AbortTask => "aborting the task",
    }
}

/// A step that does not belong to the action's path: the store was written by something else.
fn inconsistent(action: &Action) -> Option<Finish> {
    let fits = match action.kind {
        ActionKind::Release => matches!(
            action.step,
            Step::Queued | Step::PatchJobSending | Step::PatchJobDone | Step::CompleteTaskSending
        ),
        ActionKind::Redirect => {
            matches!(action.step, Step::Queued | Step::RedirectSending)
                && action.destination_printer_id.is_some()
        }
        ActionKind::Delete | ActionKind::Expire => matches!(
            action.step,
            Step::Queued | Step::AbortSending | Step::AbortDone | Step::AbortTaskSending
        ),
    };
    (!fits).then(|| mismatch(action.kind, action.step))
}

fn mismatch(kind: ActionKind, step: Step) -> Finish {
    Finish {
        outcome: Outcome::Failed,
        detail: format!(
            "a {kind} action cannot be at step {step} (or lacks its destination); it was not \
             continued, to avoid printing twice"
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::job::{ActionId, TextEnum};
    use serde_json::json;
    use time::macros::datetime;

    fn held_configuration() -> PrintJobConfiguration {
        serde_json::from_value(json!({"copies": 1, "colorMode": "color"})).unwrap()
    }

    fn changed() -> PrintJobConfiguration {
        serde_json::from_value(json!({"copies": 2, "colorMode": "color"})).unwrap()
    }

    fn action(kind: ActionKind, step: Step, changes: Option<PrintJobConfiguration>) -> Action {
        Action {
            id: ActionId(1),
            task_id: "task".to_owned(),
            definition_id: "def".to_owned(),
            printer_id: "printer-a".to_owned(),
            job_id: "job".to_owned(),
            kind,
            changes,
            held_configuration: held_configuration(),
            applied_configuration: None,
            destination_printer_id: (kind == ActionKind::Redirect)
                .then(|| "printer-lobby".to_owned()),
            station_id: Some("lobby".to_owned()),
            requested_by: "ada@example.org".to_owned(),
            requested_at: datetime!(2026-03-02 08:00 UTC),
            step,
            attempts: 0,
            next_attempt_at: datetime!(2026-03-02 08:00 UTC),
            last_error: None,
            graph_request_id: None,
        }
    }

    fn seen(job_state: JobState, task_state: Option<TaskState>) -> Observation {
        Observation::Found(ObservedJob {
            job_state,
            task_state,
            redirected_to: None,
        })
    }

    /// Held: the job paused, our task processing.
    fn still_held() -> Observation {
        seen(JobState::Paused, Some(TaskState::Processing))
    }

    fn outcome(todo: &NextStep) -> Option<Outcome> {
        match todo {
            NextStep::Done(finish) => Some(finish.outcome),
            _ => None,
        }
    }

    fn redirect_call() -> GraphCall {
        GraphCall::Redirect {
            destination_printer_id: "printer-lobby".to_owned(),
            configuration: changed(),
        }
    }

    use ActionKind::{Delete, Expire, Redirect, Release};

    #[test]
    fn each_path_starts_with_its_first_call() {
        let cases = [
            (Release, None, GraphCall::CompleteTask),
            // Asked for what the job already has: no PATCH job.
            (Release, Some(held_configuration()), GraphCall::CompleteTask),
            (
                Release,
                Some(changed()),
                GraphCall::PatchJob {
                    configuration: changed(),
                },
            ),
            (Redirect, Some(changed()), redirect_call()),
            (
                Redirect,
                None,
                GraphCall::Redirect {
                    destination_printer_id: "printer-lobby".to_owned(),
                    configuration: held_configuration(),
                },
            ),
            (
                Delete,
                None,
                GraphCall::Abort {
                    reason: "Deleted at release station lobby".to_owned(),
                },
            ),
            (
                Expire,
                None,
                GraphCall::Abort {
                    reason: "Not released within the hold time".to_owned(),
                },
            ),
        ];
        for (kind, changes, call) in cases {
            let a = action(kind, Step::Queued, changes.clone());
            assert_eq!(next(&a), NextStep::Call(call), "{kind} with {changes:?}");
        }
    }

    #[test]
    fn after_each_completed_step_comes_the_next_call() {
        let cases = [
            (Release, Step::PatchJobDone, GraphCall::CompleteTask),
            (Delete, Step::AbortDone, GraphCall::AbortTask),
            (Expire, Step::AbortDone, GraphCall::AbortTask),
        ];
        for (kind, step, call) in cases {
            assert_eq!(
                next(&action(kind, step, Some(changed()))),
                NextStep::Call(call)
            );
        }
    }

    #[test]
    fn every_intent_is_settled_by_reading_the_job_before_anything_else() {
        let cases = [
            (Release, Step::PatchJobSending),
            (Release, Step::CompleteTaskSending),
            (Redirect, Step::RedirectSending),
            (Delete, Step::AbortSending),
            (Delete, Step::AbortTaskSending),
            (Expire, Step::AbortSending),
            (Expire, Step::AbortTaskSending),
        ];
        for (kind, step) in cases {
            assert_eq!(
                next(&action(kind, step, Some(changed()))),
                NextStep::Settle(Probe::GetJobWithTasks),
                "{kind} at {step}"
            );
        }
    }

    #[test]
    fn a_step_from_another_path_fails_instead_of_guessing() {
        for (kind, step) in [
            (Release, Step::RedirectSending),
            (Redirect, Step::PatchJobDone),
            (Delete, Step::CompleteTaskSending),
        ] {
            let a = action(kind, step, None);
            assert_eq!(
                outcome(&next(&a)),
                Some(Outcome::Failed),
                "{kind} at {step}"
            );
            assert_eq!(
                outcome(&after_probe(&a, &Probe::GetJobWithTasks, &still_held())),
                Some(Outcome::Failed)
            );
        }
        let mut no_destination = action(Redirect, Step::Queued, None);
        no_destination.destination_printer_id = None;
        assert_eq!(outcome(&next(&no_destination)), Some(Outcome::Failed));
    }

    #[test]
    fn a_successful_call_records_its_step_or_finishes_the_action() {
        let release = action(Release, Step::PatchJobSending, Some(changed()));
        assert_eq!(
            after_success(
                &release,
                &GraphCall::PatchJob {
                    configuration: changed()
                }
            ),
            Advance::Record(Step::PatchJobDone)
        );
        let finished = |a: &Action, call: &GraphCall| match after_success(a, call) {
            Advance::Done(finish) => Some(finish.outcome),
            Advance::Record(_) => None,
        };
        assert_eq!(
            finished(&release, &GraphCall::CompleteTask),
            Some(Outcome::Released)
        );
        let redirect = action(Redirect, Step::RedirectSending, None);
        assert_eq!(
            finished(&redirect, &redirect_call()),
            Some(Outcome::Redirected)
        );
        let delete = action(Delete, Step::AbortSending, None);
        assert_eq!(
            after_success(
                &delete,
                &GraphCall::Abort {
                    reason: "x".to_owned()
                }
            ),
            Advance::Record(Step::AbortDone)
        );
        assert_eq!(
            finished(&delete, &GraphCall::AbortTask),
            Some(Outcome::Deleted)
        );
        let expire = action(Expire, Step::AbortTaskSending, None);
        assert_eq!(
            finished(&expire, &GraphCall::AbortTask),
            Some(Outcome::Expired)
        );
    }

    #[test]
    fn a_transient_failure_resumes_before_the_call_and_an_unknown_one_at_the_intent() {
        let transient = || Failure::Transient {
            error: "429".to_owned(),
            retry_after: Some(Duration::seconds(7)),
        };
        let unknown = || Failure::Unknown {
            error: "timed out".to_owned(),
        };
        let cases = [
            (
                action(Release, Step::PatchJobSending, Some(changed())),
                GraphCall::PatchJob {
                    configuration: changed(),
                },
                Step::Queued,
            ),
            (
                action(Release, Step::CompleteTaskSending, Some(changed())),
                GraphCall::CompleteTask,
                Step::PatchJobDone,
            ),
            (
                action(Release, Step::CompleteTaskSending, None),
                GraphCall::CompleteTask,
                Step::Queued,
            ),
            (
                action(Redirect, Step::RedirectSending, Some(changed())),
                redirect_call(),
                Step::Queued,
            ),
            (
                action(Delete, Step::AbortSending, None),
                GraphCall::Abort {
                    reason: "x".to_owned(),
                },
                Step::Queued,
            ),
            (
                action(Delete, Step::AbortTaskSending, None),
                GraphCall::AbortTask,
                Step::AbortDone,
            ),
        ];
        for (a, call, before) in cases {
            assert_eq!(
                after_failure(&a, &call, transient()),
                NextStep::Retry {
                    resume_from: before,
                    error: "429".to_owned(),
                    retry_after: Some(Duration::seconds(7)),
                },
                "{call:?}"
            );
            assert_eq!(
                after_failure(&a, &call, unknown()),
                NextStep::Retry {
                    resume_from: call.intent(),
                    error: "timed out".to_owned(),
                    retry_after: None,
                },
                "{call:?}"
            );
        }
    }

    #[test]
    fn a_refusal_is_settled_by_a_probe_and_fails_when_the_job_is_still_held() {
        let a = action(Release, Step::PatchJobSending, Some(changed()));
        let call = GraphCall::PatchJob {
            configuration: changed(),
        };
        let todo = after_failure(
            &a,
            &call,
            Failure::Permanent {
                reason: "403 Forbidden".to_owned(),
            },
        );
        let NextStep::Settle(probe) = todo else {
            panic!("a refusal is settled first, got {todo:?}");
        };
        let failed = after_probe(&a, &probe, &still_held());
        assert_eq!(outcome(&failed), Some(Outcome::Failed));
        let NextStep::Done(finish) = failed else {
            unreachable!()
        };
        assert!(finish.detail.contains("403 Forbidden"), "{}", finish.detail);
    }

    #[test]
    fn a_refused_task_patch_on_a_task_already_in_its_target_state_is_settled_not_failed() {
        let refused = Probe::GetJobWithTasksAfterRefusal {
            reason: "400 task is not processing".to_owned(),
        };
        let release = action(Release, Step::CompleteTaskSending, None);
        assert_eq!(
            outcome(&after_probe(
                &release,
                &refused,
                &seen(JobState::Processing, Some(TaskState::Completed))
            )),
            Some(Outcome::Released)
        );
        let delete = action(Delete, Step::AbortTaskSending, None);
        assert_eq!(
            outcome(&after_probe(
                &delete,
                &refused,
                &seen(JobState::Aborted, Some(TaskState::Aborted))
            )),
            Some(Outcome::Deleted)
        );
    }

    /// Every crash point of every path: the recorded step after a restart, what the probe reads,
    /// and what must follow.
    #[test]
    fn every_crash_point_settles_to_the_right_next_step() {
        let completed = || seen(JobState::Processing, Some(TaskState::Completed));
        let aborted_elsewhere = || seen(JobState::Paused, Some(TaskState::Aborted));
        let job_aborted_task_open = || seen(JobState::Aborted, Some(TaskState::Processing));
        let job_aborted_task_closed = || seen(JobState::Aborted, Some(TaskState::Aborted));
        let redirected = || {
            Observation::Found(ObservedJob {
                job_state: JobState::Completed,
                task_state: Some(TaskState::Completed),
                redirected_to: Some("https://graph/printers/printer-lobby/jobs/9".to_owned()),
            })
        };
        let redirected_task_still_listed_processing = || {
            Observation::Found(ObservedJob {
                job_state: JobState::Paused,
                task_state: Some(TaskState::Processing),
                redirected_to: Some("https://graph/printers/printer-lobby/jobs/9".to_owned()),
            })
        };
        let gone = || Observation::JobNotFound;
        let patch = || GraphCall::PatchJob {
            configuration: changed(),
        };
        let abort = || GraphCall::Abort {
            reason: "Deleted at release station lobby".to_owned(),
        };

        #[allow(clippy::large_enum_variant, reason = "test cases, built once")]
        enum Then {
            Call(GraphCall),
            Done(Outcome),
        }
        /// (what happened, kind, recorded step, changes, what the probe reads, what must follow)
        type Case = (
            &'static str,
            ActionKind,
            Step,
            Option<PrintJobConfiguration>,
            Observation,
            Then,
        );
        let c = || Some(changed());
        let same = || Some(held_configuration());
        #[rustfmt::skip]
        let cases: Vec<Case> = vec![
            // Release, same printer.
            ("patch intent, job held", Release, Step::PatchJobSending, c(), still_held(), Then::Call(patch())),
            ("patch intent, changes equal the job", Release, Step::PatchJobSending, same(), still_held(), Then::Call(GraphCall::CompleteTask)),
            ("patch intent, task completed elsewhere", Release, Step::PatchJobSending, c(), completed(), Then::Done(Outcome::Gone)),
            ("patch intent, task aborted elsewhere", Release, Step::PatchJobSending, c(), aborted_elsewhere(), Then::Done(Outcome::Gone)),
            ("patch intent, job deleted", Release, Step::PatchJobSending, c(), gone(), Then::Done(Outcome::Gone)),
            ("complete intent, not yet applied", Release, Step::CompleteTaskSending, c(), still_held(), Then::Call(GraphCall::CompleteTask)),
            ("complete intent, applied before the crash", Release, Step::CompleteTaskSending, c(), completed(), Then::Done(Outcome::Released)),
            ("complete intent, task unlisted, job printing", Release, Step::CompleteTaskSending, None, seen(JobState::Processing, None), Then::Done(Outcome::Released)),
            ("complete intent, aborted elsewhere", Release, Step::CompleteTaskSending, None, aborted_elsewhere(), Then::Done(Outcome::Gone)),
            ("complete intent, job deleted", Release, Step::CompleteTaskSending, None, gone(), Then::Done(Outcome::Gone)),
            // Redirect (find-me): never sent twice.
            ("redirect intent, job still held", Redirect, Step::RedirectSending, c(), still_held(), Then::Call(redirect_call())),
            ("redirect intent, job already redirected", Redirect, Step::RedirectSending, c(), redirected(), Then::Done(Outcome::Redirected)),
            ("redirect intent, redirectedTo set, task listed processing", Redirect, Step::RedirectSending, c(), redirected_task_still_listed_processing(), Then::Done(Outcome::Redirected)),
            ("redirect intent, task completed, no redirectedTo", Redirect, Step::RedirectSending, c(), completed(), Then::Done(Outcome::Redirected)),
            ("redirect intent, task no longer listed", Redirect, Step::RedirectSending, c(), seen(JobState::Completed, None), Then::Done(Outcome::Redirected)),
            ("redirect intent, aborted elsewhere", Redirect, Step::RedirectSending, c(), aborted_elsewhere(), Then::Done(Outcome::Gone)),
            ("redirect intent, job deleted", Redirect, Step::RedirectSending, c(), gone(), Then::Done(Outcome::Gone)),
            // Delete / expire.
            ("abort intent, not applied", Delete, Step::AbortSending, None, still_held(), Then::Call(abort())),
            ("abort intent, applied, task open", Delete, Step::AbortSending, None, job_aborted_task_open(), Then::Call(GraphCall::AbortTask)),
            ("abort intent, applied, task closed by the service", Delete, Step::AbortSending, None, job_aborted_task_closed(), Then::Done(Outcome::Deleted)),
            ("abort intent, released elsewhere first", Delete, Step::AbortSending, None, completed(), Then::Done(Outcome::Gone)),
            ("abort intent, job deleted", Delete, Step::AbortSending, None, gone(), Then::Done(Outcome::Gone)),
            ("abort-task intent, not applied", Delete, Step::AbortTaskSending, None, job_aborted_task_open(), Then::Call(GraphCall::AbortTask)),
            ("abort-task intent, applied", Delete, Step::AbortTaskSending, None, job_aborted_task_closed(), Then::Done(Outcome::Deleted)),
            ("abort-task intent, service completed the task", Expire, Step::AbortTaskSending, None, seen(JobState::Aborted, Some(TaskState::Completed)), Then::Done(Outcome::Expired)),
            ("abort-task intent, job removed", Expire, Step::AbortTaskSending, None, gone(), Then::Done(Outcome::Expired)),
            ("expire abort intent, not applied", Expire, Step::AbortSending, None, still_held(), Then::Call(GraphCall::Abort { reason: "Not released within the hold time".to_owned() })),
        ];
        for (name, kind, step, changes, observed, then) in cases {
            let a = action(kind, step, changes);
            assert_eq!(next(&a), NextStep::Settle(Probe::GetJobWithTasks), "{name}");
            let todo = after_probe(&a, &Probe::GetJobWithTasks, &observed);
            match then {
                Then::Call(call) => assert_eq!(todo, NextStep::Call(call), "{name}"),
                Then::Done(expected) => {
                    assert_eq!(outcome(&todo), Some(expected), "{name}: {todo:?}");
                }
            }
        }
    }

    #[test]
    fn task_gone_job_still_paused_is_read_again_later_at_every_step() {
        for (kind, step) in [
            (Release, Step::Queued),
            (Release, Step::PatchJobSending),
            (Release, Step::PatchJobDone),
            (Release, Step::CompleteTaskSending),
            (Delete, Step::AbortSending),
            (Delete, Step::AbortDone),
            (Expire, Step::AbortTaskSending),
        ] {
            let a = action(kind, step, Some(changed()));
            let todo = after_probe(&a, &Probe::GetJobWithTasks, &seen(JobState::Paused, None));
            assert!(
                matches!(&todo, NextStep::Retry { resume_from, .. } if *resume_from == step),
                "{kind} at {step}: {todo:?}"
            );
        }
    }

    #[test]
    fn task_gone_job_still_paused_after_a_redirect_is_read_again_later_never_assumed() {
        let a = action(Redirect, Step::RedirectSending, None);
        for probe in [
            Probe::GetJobWithTasks,
            Probe::GetJobWithTasksAfterRefusal {
                reason: "no processing task".to_owned(),
            },
        ] {
            let todo = after_probe(&a, &probe, &seen(JobState::Paused, None));
            assert!(
                matches!(
                    &todo,
                    NextStep::Retry {
                        resume_from: Step::RedirectSending,
                        ..
                    }
                ),
                "{probe:?}: {todo:?}"
            );
        }
    }

    #[test]
    fn a_redirect_intent_with_the_job_already_redirected_never_sends_a_second_redirect() {
        let a = action(Redirect, Step::RedirectSending, Some(changed()));
        let observed = Observation::Found(ObservedJob {
            job_state: JobState::Completed,
            task_state: Some(TaskState::Completed),
            redirected_to: Some("https://graph/printers/printer-lobby/jobs/9".to_owned()),
        });
        let todo = after_probe(&a, &Probe::GetJobWithTasks, &observed);
        assert!(
            !matches!(todo, NextStep::Call(_)),
            "no second redirect: {todo:?}"
        );
        assert_eq!(outcome(&todo), Some(Outcome::Redirected));
    }

    #[test]
    fn a_probe_that_cannot_read_the_job_retries_at_the_intent_or_fails_when_refused() {
        let a = action(Redirect, Step::RedirectSending, None);
        assert_eq!(
            after_probe_failure(
                &a,
                Failure::Unknown {
                    error: "timeout".to_owned()
                }
            ),
            NextStep::Retry {
                resume_from: Step::RedirectSending,
                error: "timeout".to_owned(),
                retry_after: None
            }
        );
        assert_eq!(
            outcome(&after_probe_failure(
                &a,
                Failure::Permanent {
                    reason: "403".to_owned()
                }
            )),
            Some(Outcome::Failed)
        );
    }

    #[test]
    fn the_retry_delay_grows_exponentially_up_to_a_cap_and_honours_retry_after() {
        assert_eq!(retry_delay(0, 1.0, None), Duration::seconds(2));
        assert_eq!(retry_delay(3, 1.0, None), Duration::seconds(16));
        assert_eq!(retry_delay(3, 0.0, None), Duration::seconds(8));
        assert_eq!(retry_delay(30, 1.0, None), Duration::minutes(10));
        assert_eq!(retry_delay(u32::MAX, 1.0, None), Duration::minutes(10));
        assert_eq!(retry_delay(3, f64::NAN, None), Duration::seconds(8));
        assert_eq!(retry_delay(3, 7.0, None), Duration::seconds(16));
        assert_eq!(
            retry_delay(0, 1.0, Some(Duration::seconds(30))),
            Duration::seconds(30)
        );
        assert_eq!(
            retry_delay(9, 1.0, Some(Duration::seconds(30))),
            Duration::minutes(10)
        );
    }

    #[test]
    fn every_step_round_trips_through_its_stored_word() {
        for (step, word) in Step::MEMBERS {
            assert_eq!(step.as_str(), *word);
            assert_eq!(Step::parse(word), Some(*step));
        }
        assert_eq!(Step::parse("redirected_twice"), None);
    }
}
