//! The release state machine: what to do next with a queued action. Pure: no I/O, no clock.
//!
//! Paths (design.md §1), with the step recorded in `actions.step` before (`…Sending`) and after
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

use serde_json::Value;
use time::Duration;

use crate::store::model::text_enum;
use crate::store::{Action, ActionKind, Outcome, TextEnum};

/// Where an action stands; persisted (as the word in [`TextEnum`]) in `actions.step`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Nothing sent yet.
    Queued,
    /// Intent: PATCH job {configuration} may have been sent.
    PatchJobSending,
    /// The configuration is on the job; the task is still to be completed.
    PatchJobDone,
    /// Intent: PATCH task {state: completed} may have been sent.
    CompleteTaskSending,
    /// Intent: POST redirect may have been sent. Never repeated without a probe.
    RedirectSending,
    /// Intent: POST abort may have been sent.
    AbortSending,
    /// The job is aborted; its task is still to be closed.
    AbortDone,
    /// Intent: PATCH task {state: aborted} may have been sent.
    AbortTaskSending,
}
text_enum!(Step {
    Queued => "queued",
    PatchJobSending => "patch_job_sending",
    PatchJobDone => "patch_job_done",
    CompleteTaskSending => "complete_task_sending",
    RedirectSending => "redirect_sending",
    AbortSending => "abort_sending",
    AbortDone => "abort_done",
    AbortTaskSending => "abort_task_sending",
});

impl Step {
    /// Whether this step is a write-ahead intent whose effect is unknown until settled.
    pub fn is_intent(self) -> bool {
        matches!(
            self,
            Self::PatchJobSending
                | Self::CompleteTaskSending
                | Self::RedirectSending
                | Self::AbortSending
                | Self::AbortTaskSending
        )
    }
}

/// A Graph call the executor makes for an action.
#[derive(Debug, Clone, PartialEq)]
pub enum GraphCall {
    /// `PATCH /print/printers/{printer}/jobs/{job}` with `{"configuration": configuration}`.
    PatchJob {
        /// The full configuration to set.
        configuration: Value,
    },
    /// `PATCH /print/taskDefinitions/{definition}/tasks/{task}` with state `completed`.
    CompleteTask,
    /// `POST /print/printers/{printer}/jobs/{job}/redirect`.
    Redirect {
        /// `destinationPrinterId`.
        destination_printer_id: String,
        /// `configuration`: the requested one, or the held one when nothing changed (so the
        /// destination prints what the user saw at the station).
        configuration: Value,
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
            } else {
                NextStep::Done(Finish {
                    outcome: Outcome::Redirected,
                    detail: "redirected: the task left processing after the redirect was sent"
                        .to_owned(),
                })
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

/// The configuration to PATCH onto the job, if the requested one differs from the held one.
fn configuration_to_patch(action: &Action) -> Option<Value> {
    action
        .changes
        .as_ref()
        .filter(|changes| **changes != action.held_configuration)
        .cloned()
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
