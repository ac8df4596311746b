//! [`ReleaseService`]: the one way to read and act on held jobs. The station API, the admin API (and
//! so the CLI's `jobs`, `release` and `delete`) and the hold-timeout sweeper all go through it; each
//! kind of action ([`ReleaseService::release`], [`ReleaseService::delete`],
//! [`ReleaseService::admin_release`], [`ReleaseService::admin_delete`], [`ReleaseService::expire`]) is
//! built here and nowhere else, so who asked, from where and when is recorded the same way every time.
//!
//! Invariant (never lie to a person): [`ReleaseService::submit`] answers only after the action is
//! committed to the durable queue, and answers [`Submitted::Done`] only with the outcome the executor
//! recorded after Graph confirmed it. When Graph is slow or down it answers [`Submitted::Queued`]
//! after `confirm_wait`; the queue finishes the action later.

use std::time::Duration;

use time::OffsetDateTime;

use super::completions::{ActionOutcome, Completions};
use super::executor::Executor;
use crate::graph::PrintJobConfiguration;
use crate::job::readiness::NotReady;
use crate::job::rules::Forced;
use crate::job::{
    ActionId, ActionKind, Decision, HeldJob, HoldTerms, JobState, NewAction, NewHeldJob,
    ReleasePolicy, RuleAction,
};
use crate::store::{Backend, EnqueueError, Inserted, OurRedirect, Store, StoreError};

/// Who the audit log names for an administrator's action (admin API, CLI).
pub const ADMIN: &str = "admin";

/// Who the audit log names for an expiry.
pub const SYSTEM: &str = "system";

/// Where a person releases or deletes: the station they stand at and the printer it prints on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AtStation<'a> {
    /// The station's id (audit log).
    pub station_id: &'a str,
    /// The station's printer: a job held on another printer is redirected there (find-me).
    pub printer_id: &'a str,
}

/// The answer to a submitted action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// The executor finished it within the wait; `outcome` says how (released, redirected, deleted,
    /// or failed with the reason, in which case a release's job is held again).
    Done(ActionOutcome),
    /// Durably queued; Graph has not confirmed yet. The queue retries until it ends.
    Queued {
        /// The action, for later inspection.
        action_id: ActionId,
    },
}

/// Why an action was not queued.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The store refused it: unknown job (404), not held (409), invalid (422), or the store failed.
    #[error(transparent)]
    Enqueue(#[from] EnqueueError),
    /// The store failed while waiting for the outcome; the action is queued all the same.
    #[error("the action is queued, but its outcome could not be read: {0}")]
    Store(#[from] StoreError),
}

/// Lists held jobs and accepts actions on them. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReleaseService {
    store: Store,
    executor: Executor,
    completions: Completions,
    confirm_wait: Duration,
}

impl ReleaseService {
    /// A service over the store and executor; `confirm_wait` is `release.confirm_wait`.
    pub fn new(
        store: Store,
        executor: Executor,
        completions: Completions,
        confirm_wait: Duration,
    ) -> Self {
        Self {
            store,
            executor,
            completions,
            confirm_wait,
        }
    }

    /// A person's held jobs (case-insensitive UPN), oldest first.
    pub async fn held_jobs(&self, owner: &str) -> Result<Vec<HeldJob>, StoreError> {
        self.store.held_jobs_for_owner(owner).await
    }

    /// [`ReleaseService::held_jobs`], each with its hold rule's terms ([`ReleaseService::hold_terms`]),
    /// in one read.
    pub async fn held_jobs_and_terms(
        &self,
        owner: &str,
    ) -> Result<Vec<(HeldJob, Option<HoldTerms>)>, StoreError> {
        self.store
            .held_jobs_and_terms_for_owner(owner)
            .await?
            .into_iter()
            .map(|(job, terms)| {
                let terms = terms
                    .map(|terms| hold_terms_from(&job, terms))
                    .transpose()?;
                Ok((job, terms))
            })
            .collect()
    }

    /// Every job not yet ended (held or being acted on): the administrator's view.
    pub async fn all_held_jobs(&self) -> Result<Vec<HeldJob>, StoreError> {
        self.store.all_held_jobs().await
    }

    /// A page of [`ReleaseService::all_held_jobs`]: at most `limit`, after `after`.
    pub async fn held_jobs_page(
        &self,
        after: Option<&crate::store::JobCursor>,
        limit: u32,
    ) -> Result<Vec<HeldJob>, StoreError> {
        self.store.held_jobs_page(after, limit).await
    }

    /// The job of task `task_id` if it is held (not being acted on, not ended).
    pub async fn held_job(&self, task_id: &str) -> Result<Option<HeldJob>, StoreError> {
        Ok(self
            .store
            .held_job(task_id)
            .await?
            .filter(|job| job.state == JobState::Held))
    }

    /// `owner`'s job of task `task_id` if it is held; another person's job is `None`, exactly like
    /// an unknown one, so ids cannot be probed.
    pub async fn own_held_job(
        &self,
        owner: &str,
        task_id: &str,
    ) -> Result<Option<HeldJob>, StoreError> {
        Ok(self
            .held_job(task_id)
            .await?
            .filter(|job| job.job.owner_upn.eq_ignore_ascii_case(owner)))
    }

    /// Jobs still held that were submitted before `cutoff`: what the hold timeout expires.
    pub async fn held_jobs_submitted_before(
        &self,
        cutoff: OffsetDateTime,
    ) -> Result<Vec<HeldJob>, StoreError> {
        self.store.held_jobs_older_than(cutoff).await
    }

    /// `owner` releases `job` at `station` with `changes` (already checked by the options policy,
    /// `None` to print as submitted): printed there, redirected when held on another printer.
    pub async fn release(
        &self,
        job: &HeldJob,
        station: AtStation<'_>,
        owner: &str,
        changes: Option<PrintJobConfiguration>,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(release_action(job, station, owner, changes, now))
            .await
    }

    /// `owner` releases each of `jobs` (with its checked changes) at `station`, all at once; the
    /// answers come in the order of `jobs`.
    pub async fn release_all(
        &self,
        jobs: &[(HeldJob, Option<PrintJobConfiguration>)],
        station: AtStation<'_>,
        owner: &str,
        now: OffsetDateTime,
    ) -> Vec<Result<Submitted, SubmitError>> {
        let actions: Vec<NewAction> = jobs
            .iter()
            .map(|(job, changes)| release_action(job, station, owner, changes.clone(), now))
            .collect();
        // One commit queues them all; each is then waited for on its own.
        let queued = self.store.enqueue_all(&actions).await;
        self.executor.wake();
        futures::future::join_all(queued.into_iter().map(|queued| async move {
            match queued {
                Ok(id) => self.wait_for(id).await,
                Err(refused) => Err(refused.into()),
            }
        }))
        .await
    }

    /// `owner` deletes (aborts) `job` from `station`.
    pub async fn delete(
        &self,
        job: &HeldJob,
        station_id: &str,
        owner: &str,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(NewAction {
            task_id: job.job.task_id.clone(),
            kind: ActionKind::Delete,
            changes: None,
            destination_printer_id: None,
            station_id: Some(station_id.to_owned()),
            requested_by: owner.to_owned(),
            requested_at: now,
        })
        .await
    }

    /// An administrator releases `job` on its own printer with `changes` (already checked).
    pub async fn admin_release(
        &self,
        job: &HeldJob,
        changes: Option<PrintJobConfiguration>,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(NewAction {
            task_id: job.job.task_id.clone(),
            kind: ActionKind::Release,
            changes,
            destination_printer_id: None,
            station_id: None,
            requested_by: ADMIN.to_owned(),
            requested_at: now,
        })
        .await
    }

    /// An administrator deletes (aborts) `job`.
    pub async fn admin_delete(
        &self,
        job: &HeldJob,
        now: OffsetDateTime,
    ) -> Result<Submitted, SubmitError> {
        self.submit(NewAction {
            task_id: job.job.task_id.clone(),
            kind: ActionKind::Delete,
            changes: None,
            destination_printer_id: None,
            station_id: None,
            requested_by: ADMIN.to_owned(),
            requested_at: now,
        })
        .await
    }

    /// Queues an `expire` action for each of `overdue` (not waiting for Graph), then wakes the
    /// executor once; returns how many were queued. A job someone acted on since it was listed is
    /// skipped: nothing to expire.
    pub async fn expire(
        &self,
        overdue: &[HeldJob],
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut queued = 0;
        for job in overdue {
            let action = NewAction {
                task_id: job.job.task_id.clone(),
                kind: ActionKind::Expire,
                changes: None,
                destination_printer_id: None,
                station_id: None,
                requested_by: SYSTEM.to_owned(),
                requested_at: now,
            };
            match self.store.enqueue(&action).await {
                Ok(_) => queued += 1,
                // Someone acted on it (or it ended) since the query: nothing to expire.
                Err(EnqueueError::NotHeld { .. } | EnqueueError::UnknownTask { .. }) => {}
                Err(EnqueueError::Store(error)) => return Err(error),
                Err(EnqueueError::Invalid(why)) => {
                    tracing::error!(task = %job.job.task_id, %why, "cannot expire a held job");
                }
            }
        }
        if queued > 0 {
            tracing::info!(queued, "held jobs expired by the hold timeout");
            self.executor.wake();
        }
        Ok(queued)
    }

    /// The release that completes a job the daemon redirected itself and the destination (a queue
    /// printer) holds again as task `task_id`: the person already chose, so it prints at once with
    /// the configuration the redirect carried, in the name of whoever released it.
    pub fn completion_of_our_redirect(
        task_id: &str,
        ours: OurRedirect,
        now: OffsetDateTime,
    ) -> NewAction {
        NewAction {
            task_id: task_id.to_owned(),
            kind: ActionKind::Release,
            changes: Some(ours.configuration),
            destination_printer_id: None,
            station_id: ours.station_id,
            requested_by: ours.requested_by,
            requested_at: now,
        }
    }

    /// The action a rule's `decision` asks for on `job` (`None` to hold it), and the audit note;
    /// the only place a rule's action is built.
    pub fn by_rule(
        job: &NewHeldJob,
        decision: &Decision,
        policy: ReleasePolicy,
        now: OffsetDateTime,
    ) -> Ruling {
        by_rule(job, decision, policy, None, now)
    }

    /// Stores `job`, found by intake, with what `decision` says: held, or held and its action
    /// queued in the same transaction; wakes the executor when an action was queued. A task already
    /// stored changes nothing and queues nothing (exactly once). `not_ready` says why the printer
    /// the decision prints on cannot print now: the job is then held, and the held record says why.
    pub async fn store_by_rule(
        &self,
        job: &NewHeldJob,
        decision: &Decision,
        policy: ReleasePolicy,
        not_ready: Option<&NotReady>,
    ) -> Result<Inserted, EnqueueError> {
        let ruling = by_rule(job, decision, policy, not_ready, job.discovered_at);
        let inserted = self
            .store
            .insert_held_job_then(
                job,
                ruling.note.as_deref(),
                ruling.action.as_ref(),
                ruling
                    .terms
                    .as_ref()
                    .and_then(|terms| serde_json::to_value(terms).ok())
                    .as_ref(),
            )
            .await?;
        if inserted == Inserted::New && ruling.action.is_some() {
            self.executor.wake();
        }
        Ok(inserted)
    }

    /// The terms a hold rule kept with `job` (forced options, `saving_only`) for its release, if any.
    pub async fn hold_terms(&self, job: &HeldJob) -> Result<Option<HoldTerms>, StoreError> {
        self.store
            .held_job_terms(&job.job.task_id)
            .await?
            .map(|terms| hold_terms_from(job, terms))
            .transpose()
    }

    /// Queues `action` durably, wakes the executor, and waits up to `confirm_wait` for its outcome.
    ///
    /// The daemon's own callers use the named actions above; this is public so tests and benchmarks
    /// can queue any action, including ones the store must refuse.
    pub async fn submit(&self, action: NewAction) -> Result<Submitted, SubmitError> {
        let id = self.store.enqueue(&action).await?;
        self.executor.wake();
        self.wait_for(id).await
    }

    /// Waits up to `confirm_wait` for queued action `id` to finish.
    async fn wait_for(&self, id: ActionId) -> Result<Submitted, SubmitError> {
        // This daemon's executor may already have taken and finished it (woken by another request)
        // before this subscribes: the registry keeps such an outcome for a late subscriber. Another
        // daemon sharing the queue publishes nothing here, so on a shared store the store has the
        // last word at once (one read); the read after the wait covers the rest.
        let mut done = self.completions.subscribe(id);
        if self.store.backend() == Backend::Postgres
            && let Some(outcome) = self.finished(id).await?
        {
            self.completions.forget(id);
            return Ok(Submitted::Done(outcome));
        }
        // Cloned out at once: the watch guard is not Send and must not live across the next await
        // (axum handlers, which call this, must be Send).
        let waited = tokio::time::timeout(self.confirm_wait, done.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|outcome| outcome.clone());
        if let Some(outcome) = waited {
            return Ok(Submitted::Done(outcome));
        }
        self.completions.forget(id);
        // It may have finished between the timeout and now.
        match self.finished(id).await? {
            Some(outcome) => Ok(Submitted::Done(outcome)),
            None => Ok(Submitted::Queued { action_id: id }),
        }
    }

    /// How `id` ended, if it has.
    async fn finished(&self, id: ActionId) -> Result<Option<ActionOutcome>, StoreError> {
        Ok(self
            .store
            .action_outcome(id)
            .await?
            .map(|(outcome, detail)| ActionOutcome {
                outcome,
                detail: detail.unwrap_or_default(),
            }))
    }
}

/// What a rule's decision comes to for a job intake has just found.
#[derive(Debug, Clone, PartialEq)]
pub struct Ruling {
    /// The action to queue with the job (release, redirect, deny), or `None` to hold it.
    pub action: Option<NewAction>,
    /// A hold rule's forced options, kept with the job and applied when its owner releases it.
    pub terms: Option<HoldTerms>,
    /// What the `held` audit record says about the decision; `None` when no rule matched.
    pub note: Option<String>,
}

/// The action `decision` asks for on `job`, with its forced options checked by the same policy as a
/// person's release (`policy`; the rule's `saving_only` overrides `[release] saving_only`). A forced
/// value the policy refuses makes the job held instead, with the refusal in the note (audited); a
/// value the printer refuses is refused by Graph at the PATCH, and the executor holds the job again
/// with a `failed` audit record. Either way it is never printed with settings nobody chose.
fn by_rule(
    job: &NewHeldJob,
    decision: &Decision,
    policy: ReleasePolicy,
    not_ready: Option<&NotReady>,
    now: OffsetDateTime,
) -> Ruling {
    let label = decision.label();
    if let Some(problem) = &decision.problem {
        return Ruling {
            action: None,
            note: Some(format!("{label}: cannot be decided ({problem}): held")),
            terms: None,
        };
    }
    if decision.rule.is_none() {
        return Ruling {
            action: None,
            note: None,
            terms: None,
        };
    }
    let action = |kind, changes, destination: Option<&String>| NewAction {
        task_id: job.task_id.clone(),
        kind,
        changes,
        destination_printer_id: destination.cloned(),
        station_id: None,
        requested_by: label.clone(),
        requested_at: now,
    };
    match decision.action {
        RuleAction::Hold => {
            let terms = (decision.force != Forced::default() || decision.saving_only.is_some())
                .then(|| HoldTerms {
                    rule: label.clone(),
                    force: decision.force.clone(),
                    saving_only: decision.saving_only,
                });
            Ruling {
                action: None,
                note: Some(match &terms {
                    Some(terms) => format!(
                        "{label}: hold; at release: {}",
                        serde_json::to_string(terms).unwrap_or_default()
                    ),
                    None => format!("{label}: hold"),
                }),
                terms,
            }
        }
        RuleAction::Deny => Ruling {
            terms: None,
            action: Some(action(ActionKind::Delete, None, None)),
            note: Some(format!(
                "{label}: denied: {}",
                decision.reason.as_deref().unwrap_or("no reason given")
            )),
        },
        RuleAction::Release | RuleAction::Redirect if not_ready.is_some() => {
            let printer = decision
                .prints_on(&job.printer_id)
                .unwrap_or(&job.printer_id);
            let reason = not_ready.map_or("", |n| n.reason.as_str());
            Ruling {
                action: None,
                terms: None,
                note: Some(format!(
                    "{label}: {} held: printer {printer} cannot print now ({reason})",
                    decision.action.as_str()
                )),
            }
        }
        RuleAction::Release | RuleAction::Redirect => {
            let requested = &job.configuration;
            let options = decision.force.options_for(requested);
            let policy = ReleasePolicy {
                saving_only: decision.saving_only.unwrap_or(policy.saving_only),
                ..policy
            };
            let changes =
                match crate::job::options::apply(&options, &job.configuration, None, policy) {
                    Ok(changes) => changes,
                    Err(refusal) => {
                        return Ruling {
                            action: None,
                            terms: None,
                            note: Some(format!(
                                "{label}: {} refused ({}): held instead",
                                decision.action.as_str(),
                                refusal.message
                            )),
                        };
                    }
                };
            let shown = changes
                .as_ref()
                .map_or_else(|| "as submitted".to_owned(), crate::store::json_text);
            match (decision.action, decision.printer.as_ref()) {
                (RuleAction::Redirect, Some(printer)) if *printer != job.printer_id => Ruling {
                    terms: None,
                    action: Some(action(ActionKind::Redirect, changes, Some(printer))),
                    note: Some(format!("{label}: redirect to {printer}, {shown}")),
                },
                // A redirect to the job's own printer is a release there.
                _ => Ruling {
                    terms: None,
                    action: Some(action(ActionKind::Release, changes, None)),
                    note: Some(format!("{label}: release, {shown}")),
                },
            }
        }
    }
}

/// The action releasing `job` at `station` for `owner`: a release on the job's own printer, or a
/// redirect to the station's printer (find-me).
fn release_action(
    job: &HeldJob,
    station: AtStation<'_>,
    owner: &str,
    changes: Option<PrintJobConfiguration>,
    now: OffsetDateTime,
) -> NewAction {
    let find_me = job.job.printer_id != station.printer_id;
    NewAction {
        task_id: job.job.task_id.clone(),
        kind: if find_me {
            ActionKind::Redirect
        } else {
            ActionKind::Release
        },
        changes,
        destination_printer_id: find_me.then(|| station.printer_id.to_owned()),
        station_id: Some(station.station_id.to_owned()),
        requested_by: owner.to_owned(),
        requested_at: now,
    }
}

/// A hold rule's terms as the store keeps them for `job` (JSON), read back.
fn hold_terms_from(job: &HeldJob, terms: serde_json::Value) -> Result<HoldTerms, StoreError> {
    serde_json::from_value(terms).map_err(|error| StoreError::Corrupt {
        what: format!("held_job_rules.terms of task {}: {error}", job.job.task_id),
    })
}
