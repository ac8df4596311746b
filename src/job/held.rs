//! Held-job records: a job intake found held by our print task, and where it is in its life.

use serde_json::Value;
use time::OffsetDateTime;

use super::words::{TextEnum, text_enum};

/// How intake learned of a task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscoveredVia {
    /// The task list poll.
    Poll,
    /// A Graph change notification.
    Webhook,
    /// The start-up reconciliation.
    Reconcile,
}
text_enum!(DiscoveredVia { Poll => "poll", Webhook => "webhook", Reconcile => "reconcile" });

/// Where a held job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its owner at a station; listed to them.
    Held,
    /// An action (release, redirect, delete, expire) is queued or under way; no second one is accepted.
    Acting,
    /// Settled; `outcome` says how. Kept so late notifications for the task are recognised.
    Ended,
}
text_enum!(JobState { Held => "held", Acting => "acting", Ended => "ended" });

/// How a held job (and the action that ended it) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Printed on its own printer: task completed.
    Released,
    /// Printed on another printer (find-me): redirected.
    Redirected,
    /// Aborted at its owner's (or an administrator's) request.
    Deleted,
    /// Aborted because nobody released it within the hold timeout.
    Expired,
    /// Graph refused for a reason pullprintd cannot fix by retrying; the detail says why.
    Failed,
    /// The task left `processing` without us (completed or aborted elsewhere, or the job was deleted).
    Gone,
}
text_enum!(Outcome {
    Released => "released",
    Redirected => "redirected",
    Deleted => "deleted",
    Expired => "expired",
    Failed => "failed",
    Gone => "gone",
});

/// A job intake found held by our task, as it is first stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHeldJob {
    /// The printTask id; the primary key.
    pub task_id: String,
    /// The printTaskDefinition the task belongs to.
    pub definition_id: String,
    /// The printer the job was sent to.
    pub printer_id: String,
    /// The printJob id on that printer.
    pub job_id: String,
    /// The owner's UPN as Graph spelled it.
    pub owner_upn: String,
    /// The owner's display name, when Graph gave one.
    pub owner_name: Option<String>,
    /// The owner's Entra object id, when Graph gave one.
    pub owner_id: Option<String>,
    /// The document's display name.
    pub name: String,
    /// The job's printJobConfiguration at intake.
    pub configuration: Value,
    /// When the user submitted the job (createdDateTime).
    pub submitted_at: OffsetDateTime,
    /// When intake stored it.
    pub discovered_at: OffsetDateTime,
    /// Which intake path found it.
    pub discovered_via: DiscoveredVia,
}

/// A held job as stored, with where it is in its life.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldJob {
    /// What intake stored.
    pub job: NewHeldJob,
    /// Held, acting or ended.
    pub state: JobState,
    /// How it ended, once ended.
    pub outcome: Option<Outcome>,
    /// When it ended, once ended.
    pub ended_at: Option<OffsetDateTime>,
}
