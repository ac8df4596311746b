//! Actions on a held job: what is asked (release, redirect, delete, expire), the request as queued,
//! and the step an action has reached ([`Step`], the write-ahead record the executor keeps).

use time::OffsetDateTime;

use super::words::{TextEnum, text_enum};
use crate::graph::PrintJobConfiguration;

/// The id of an action in the durable queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId(pub i64);

impl std::fmt::Display for ActionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// What an action asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    /// Print on the job's own printer: [PATCH job] then PATCH task `completed`.
    Release,
    /// Print on another printer: POST redirect.
    Redirect,
    /// Abort at a person's request: POST abort then PATCH task `aborted`.
    Delete,
    /// Abort because the hold timeout passed; same calls as [`ActionKind::Delete`].
    Expire,
}
text_enum!(ActionKind { Release => "release", Redirect => "redirect", Delete => "delete", Expire => "expire" });

/// A request to act on a held job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    /// The held job's task.
    pub task_id: String,
    /// What to do.
    pub kind: ActionKind,
    /// The full configuration to send, or `None` to print as submitted.
    pub changes: Option<PrintJobConfiguration>,
    /// The printer to redirect to: required for [`ActionKind::Redirect`], refused otherwise.
    pub destination_printer_id: Option<String>,
    /// The station the request came from, if any.
    pub station_id: Option<String>,
    /// The UPN of the person, or `admin`, or `system` (hold timeout).
    pub requested_by: String,
    /// When it was asked (the injected clock); also the first attempt time.
    pub requested_at: OffsetDateTime,
}

/// An unfinished action, with what the executor needs from its held job.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The action's id.
    pub id: ActionId,
    /// The held job's task.
    pub task_id: String,
    /// The task's definition (PATCH task goes through it).
    pub definition_id: String,
    /// The job's printer.
    pub printer_id: String,
    /// The job's id on that printer.
    pub job_id: String,
    /// What to do.
    pub kind: ActionKind,
    /// The full configuration to send, or `None` to print as submitted.
    pub changes: Option<PrintJobConfiguration>,
    /// The job's configuration at intake: a PATCH is skipped when `changes` equals it.
    pub held_configuration: PrintJobConfiguration,
    /// What Graph holds when it differs from `held_configuration`: a release changed it and then
    /// failed, putting the job back on its owner's list. `None`: Graph holds `held_configuration`.
    pub applied_configuration: Option<Applied>,
    /// The redirect's destination.
    pub destination_printer_id: Option<String>,
    /// The station the request came from, if any.
    pub station_id: Option<String>,
    /// Who asked.
    pub requested_by: String,
    /// When they asked.
    pub requested_at: OffsetDateTime,
    /// The last recorded step (a write-ahead intent or a completed step).
    pub step: Step,
    /// Failed attempts so far (the back-off exponent).
    pub attempts: u32,
    /// Not to be tried before this time.
    pub next_attempt_at: OffsetDateTime,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Graph's request-id of the last successful call.
    pub graph_request_id: Option<String>,
}

/// Where an action stands; persisted (as the word in [`TextEnum`]) in `actions.step`. The executor
/// moves an action through these steps (see `release::steps` for the machine and its paths).
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

/// What Graph holds of a job's configuration after a release changed it and then failed.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// The release's PATCH of this configuration was confirmed.
    Known(Box<PrintJobConfiguration>),
    /// The release's PATCH was sent and its outcome is unknown: counts as different from anything.
    Unknown,
}
