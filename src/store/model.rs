//! The records only the store keeps (audit log, inbox, subscription) and the store's answers.
//!
//! The job's own records (held jobs, actions and their words) live in [`crate::job`]; the store saves
//! them. Every enum here is stored as the lower-case TEXT value named in `migrations/0001_initial.sql`
//! through [`TextEnum`], so a value the code cannot read is reported as a
//! [`StoreError::Corrupt`](super::StoreError::Corrupt), never guessed.

use time::OffsetDateTime;

use crate::graph::PrintJobConfiguration;
use crate::job::{Outcome, TextEnum, text_enum};

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
    /// An Entra ID sign-in at a station was refused (an expired, used or forged code, a tampered
    /// state, an ID token that failed a check…); the detail says why. No job is involved.
    SignInRefused,
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
    SignInRefused => "sign_in_refused",
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

/// A change notification waiting in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    /// Its id, for [`Store::inbox_done`](super::Store::inbox_done).
    pub id: i64,
    /// When the webhook received it.
    pub received_at: OffsetDateTime,
    /// The JSON text of one changeNotification.
    pub payload: String,
    /// Failed tries so far (the inbox worker backs off between them).
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
    pub configuration_before: Option<PrintJobConfiguration>,
    /// The configuration sent with the release, if it changed.
    pub configuration_after: Option<PrintJobConfiguration>,
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
    /// Only records older than this id (the last id of the page before: the cursor of a paged read).
    pub before_id: Option<i64>,
    /// At most this many records, newest first (`None`: all).
    pub limit: Option<u32>,
}

/// Where a page of held jobs starts: after this job in the order of submission. Clients see it as an
/// opaque token ([`JobCursor::token`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobCursor {
    /// The last listed job's submission time.
    pub submitted_at: OffsetDateTime,
    /// The last listed job's task id (ties of submission time are ordered by it).
    pub task_id: String,
}

impl JobCursor {
    /// The cursor after `job`.
    pub fn after(job: &crate::job::HeldJob) -> Self {
        Self {
            submitted_at: job.job.submitted_at,
            task_id: job.job.task_id.clone(),
        }
    }

    /// The cursor as a URL-safe token.
    pub fn token(&self) -> String {
        use base64::Engine as _;
        let text = format!(
            "{}\n{}",
            super::timestamp::encode(self.submitted_at),
            self.task_id
        );
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }

    /// The cursor a [`JobCursor::token`] names; `None` when it is not one.
    pub fn parse(token: &str) -> Option<Self> {
        use base64::Engine as _;
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(token)
            .ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (at, task_id) = text.split_once('\n')?;
        Some(Self {
            submitted_at: super::timestamp::decode("cursor", at).ok()?,
            task_id: task_id.to_owned(),
        })
    }
}
