//! The in-memory world of the emulator and the documented rules that govern it.
//!
//! Everything lives in one [`World`] behind one mutex (see `Shared`): every operation is a short,
//! synchronous critical section, so the rules below hold atomically.
//!
//! Invariants and decisions ([U] = undocumented, the stricter plausible behaviour was chosen):
//! - A printer has at most one task trigger; a second one is refused with **409 `conflict`** [V rule,
//!   status U].
//! - A job submitted to a printer with a trigger is held: `paused`, "The job is not a candidate for
//!   processing yet.", details `releaseWait`, with one printTask `processing` under the trigger's
//!   definition. A job on a printer without a trigger prints at once.
//! - PATCH job, abort and redirect need a `processing` task of a trigger created by the caller's
//!   app; otherwise **400 `invalidRequest`** (the errors page's code for a broken precondition) [U].
//! - PATCH job replaces the **whole** `configuration` object (no merge) [U]; any property other
//!   than `configuration` → 400.
//! - Task → `completed` releases the job (it prints with its configuration at that moment); task →
//!   `aborted` aborts a job still held [U]. A `completed`/`aborted` task cannot move to another state
//!   (400); PATCHing it to the state it already has is answered 200 (idempotent).
//! - Job abort aborts the job; its task stays as it is until PATCHed [U].
//! - Redirect creates a new job (new id) on the destination, which prints it at once (the redirect
//!   is the release; it is not held again even if the destination has a trigger [U]); the source job
//!   becomes `completed` without printing, with `redirectedTo`, and its task becomes `completed`.
//!   Redirecting to the same printer or to an unknown printer → 400 [U]. Microsoft does not say
//!   whether a job redirected onto a printer that carries a trigger gets a new task, so the other
//!   behaviour is a switch (`redirect_holds_again`, [`super::Control::set_redirect_holds_again`]):
//!   then the new job is held on the destination (`paused`, with `redirectedFrom`) with a new
//!   `processing` task of the destination's trigger, notified like any new task.
//! - Task definitions, and their tasks, are visible only to the app that created them (Graph lists
//!   the definitions "that the requesting app defined"); others get 404.
//! - Pull printers and the jobs waiting on them have their own rules, in `pull_printers`.

mod definitions;
mod jobs;
mod odata;
mod printers;
mod pull_printers;
mod tasks;
mod users;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::configuration;
use super::graph_error::GraphError;
use super::identity::DeviceCode;
use super::oidc::{AuthCode, RefreshGrant};
use super::subscriptions::Subscription;

pub(crate) use definitions::{Definition, Trigger};
pub(crate) use jobs::{Job, JobState};
pub use jobs::{JobView, NewJob, SubmittedJob};
pub(crate) use odata::{Expand, graph_time, parse_eq_filter, refuse_query_options};
pub(crate) use printers::Printer;
pub use printers::{NewPrinter, PrintedJob, PrinterStatusChange};
pub(crate) use pull_printers::PullPrinter;
pub use pull_printers::{NewPullPrinter, PullJobView};
pub use tasks::TaskView;
pub(crate) use tasks::{Task, TaskCreated};
pub use users::{DirectoryGroup, DirectoryUser};

/// The whole emulated tenant.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub printers: BTreeMap<String, Printer>,
    pub definitions: BTreeMap<String, Definition>,
    pub triggers: BTreeMap<String, Trigger>,
    pub jobs: BTreeMap<String, Job>,
    pub tasks: BTreeMap<String, Task>,
    pub users: Vec<DirectoryUser>,
    pub groups: Vec<DirectoryGroup>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub deliveries: Vec<super::subscriptions::DeliveryRecord>,
    /// Graph calls by route key, then by status.
    pub calls: BTreeMap<String, BTreeMap<u16, u64>>,
    pub device_codes: HashMap<String, DeviceCode>,
    /// Authorization codes issued by the sign-in page, by code.
    pub auth_codes: HashMap<String, AuthCode>,
    /// Refresh tokens issued with `offline_access`, by token.
    pub refresh_tokens: HashMap<String, RefreshGrant>,
    /// An ID token to hand out instead of the right one at the next code redemption (tests of a
    /// relying party's checks: [`crate::emulator::Control::replace_next_id_token`]).
    pub next_id_token: Option<String>,
    /// Redirect URIs registered at run time, by client id (beside each app's own).
    pub redirect_uris: BTreeMap<String, Vec<String>>,
    pub pull_printers: BTreeMap<String, PullPrinter>,
    /// Release calls refused because the token was app-only (release is delegated only).
    pub refused_app_only_releases: u64,
    next_job_id: u64,
    next_seq: u64,
    /// The switch of the module docs: a job redirected onto a printer with a trigger is held again.
    pub redirect_holds_again: bool,
    /// Tasks created by redirects, for the caller to notify once the world lock is released.
    pub created_by_redirect: Vec<TaskCreated>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl World {
    /// Counts one Graph call.
    pub fn count(&mut self, route_key: &str, status: u16) {
        *self
            .calls
            .entry(route_key.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// The URL of a job, as `parentUrl`, `redirectedTo` and notifications carry it.
    pub fn job_url(root: &str, printer_id: &str, job_id: &str) -> String {
        format!("{root}/print/printers/{printer_id}/jobs/{job_id}")
    }
}
