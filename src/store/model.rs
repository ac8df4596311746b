//! The records the store keeps, as Rust types, and the words they are stored as.
//!
//! Every enum here is stored as the lower-case TEXT value named in `migrations/0001_initial.sql`; the
//! migration's CHECK constraints and [`TextEnum::parse`] accept exactly the same words, so a value the
//! code cannot read is reported as a [`StoreError::Corrupt`](super::StoreError::Corrupt), never guessed.

use serde_json::Value;
use time::OffsetDateTime;

use crate::release::steps::Step;

/// An enum stored as one fixed word.
pub trait TextEnum: Sized + Copy + 'static {
    /// Every member, with its stored word.
    const MEMBERS: &'static [(Self, &'static str)];

    /// The stored word.
    fn as_str(self) -> &'static str
    where
        Self: PartialEq,
    {
        Self::MEMBERS
            .iter()
            .find(|(member, _)| *member == self)
            .map_or("", |(_, word)| word)
    }

    /// The member stored as `word`, if any.
    fn parse(word: &str) -> Option<Self> {
        Self::MEMBERS
            .iter()
            .find(|(_, w)| *w == word)
            .map(|(member, _)| *member)
    }
}

/// Implements [`TextEnum`] for an enum from a list of `Member => "word"`.
macro_rules! text_enum {
    ($ty:ty { $($member:ident => $word:literal),+ $(,)? }) => {
        impl TextEnum for $ty {
            const MEMBERS: &'static [(Self, &'static str)] = &[$((<$ty>::$member, $word)),+];
        }
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use text_enum;

/// The id of an action in the durable queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ActionId(pub i64);

impl std::fmt::Display for ActionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

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

/// What the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    /// Intake stored a new held job.
    Held,
    /// See [`Outcome::Released`].
    Released,
    /// See [`Outcome::Redirected`].
    Redirected,
    /// See [`Outcome::Deleted`].
    Deleted,
    /// See [`Outcome::Expired`].
    Expired,
    /// See [`Outcome::Failed`].
    Failed,
    /// See [`Outcome::Gone`].
    Gone,
    /// A change notification was given up after its bounded tries (or could not be read at all);
    /// the detail says why. The task-list poll remains the backstop for its task.
    DeadLetter,
}
text_enum!(AuditEvent {
    Held => "held",
    Released => "released",
    Redirected => "redirected",
    Deleted => "deleted",
    Expired => "expired",
    Failed => "failed",
    Gone => "gone",
    DeadLetter => "dead_letter",
});

impl From<Outcome> for AuditEvent {
    fn from(outcome: Outcome) -> Self {
        match outcome {
            Outcome::Released => Self::Released,
            Outcome::Redirected => Self::Redirected,
            Outcome::Deleted => Self::Deleted,
            Outcome::Expired => Self::Expired,
            Outcome::Failed => Self::Failed,
            Outcome::Gone => Self::Gone,
        }
    }
}

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

/// The answer to storing a held job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// A new held job, now listed to its owner.
    New,
    /// The task (or the printer's job) was already known: nothing changed.
    AlreadyKnown,
}

/// The answer to [`Store::mark_gone`](super::Store::mark_gone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkedGone {
    /// The job was held; it is now ended as gone.
    Ended,
    /// The job is unknown, already ended, or an action owns it (the executor settles it by reading
    /// Graph, so a redirect we made is not mistaken for a task finished elsewhere).
    NotHeld,
}

/// A request to act on a held job.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAction {
    /// The held job's task.
    pub task_id: String,
    /// What to do.
    pub kind: ActionKind,
    /// The full configuration to send, or `None` to print as submitted.
    pub changes: Option<Value>,
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
    pub changes: Option<Value>,
    /// The job's configuration at intake: a PATCH is skipped when `changes` equals it.
    pub held_configuration: Value,
    /// What Graph holds when it differs from `held_configuration`: a release changed it and then
    /// failed, putting the job back on its owner's list. `Some(Value::Null)`: unknown (the change may
    /// or may not have been applied). `None`: Graph holds `held_configuration`.
    pub applied_configuration: Option<Value>,
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

/// A change notification waiting in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    /// Its id, for [`Store::inbox_done`](super::Store::inbox_done).
    pub id: i64,
    /// When the webhook received it.
    pub received_at: OffsetDateTime,
    /// The JSON text of one changeNotification.
    pub payload: String,
    /// Failed tries so far (see [`crate::intake::inbox`]).
    pub attempts: u32,
}

/// Our Graph subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The subscription id Graph assigned.
    pub id: String,
    /// The resource subscribed to.
    pub resource: String,
    /// Where Graph delivers notifications.
    pub notification_url: String,
    /// When Graph drops it unless renewed.
    pub expires_at: OffsetDateTime,
    /// When it was created.
    pub created_at: OffsetDateTime,
}

/// One audit log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Its id; increases with time.
    pub id: i64,
    /// When it happened.
    pub at: OffsetDateTime,
    /// What happened.
    pub event: AuditEvent,
    /// The station involved, if any.
    pub station_id: Option<String>,
    /// Who asked (UPN, `admin`, `system`); `None` for intake.
    pub requested_by: Option<String>,
    /// The job's owner.
    pub user_upn: Option<String>,
    /// The task.
    pub task_id: String,
    /// The job's printer.
    pub printer_id: String,
    /// The job.
    pub job_id: String,
    /// The redirect's destination, if any.
    pub destination_printer_id: Option<String>,
    /// The configuration at intake.
    pub configuration_before: Option<Value>,
    /// The configuration sent with the release, if it changed.
    pub configuration_after: Option<Value>,
    /// Why (for failures) or how (for releases).
    pub detail: Option<String>,
    /// Graph's request-id of the call that settled it.
    pub graph_request_id: Option<String>,
}

/// Which audit records to return; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records at or after this time.
    pub since: Option<OffsetDateTime>,
    /// Only records strictly before this time.
    pub until: Option<OffsetDateTime>,
    /// Only records for this owner (case-insensitive).
    pub user: Option<String>,
    /// Only records of this event.
    pub event: Option<AuditEvent>,
    /// At most this many records, newest first (`None`: all).
    pub limit: Option<u32>,
}
