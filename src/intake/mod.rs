//! Intake: learning of print tasks our trigger holds, and storing each one once as a held job.
//!
//! Three ways in, one lookup (a notification's path through the modules is in `ARCHITECTURE.md`):
//! - [`webhook`] — `POST /graph/notifications`: the validation handshake, the `clientState` check,
//!   persisting what arrived in the inbox, then `202` within milliseconds (it never waits on Graph);
//! - [`inbox`] — the worker that turns stored notifications into held jobs;
//! - [`poller`] — the task list, polled: the backstop for lost notifications, the only way in
//!   without a public URL, and the detector of tasks finished outside pullprintd;
//! - [`reconcile`] — the start-up pass: one poll before anything else runs;
//! - [`subscription`] — the Graph subscription's lifecycle (create, renew, reauthorize, recreate).
//!
//! With `[[rules]]` that name Entra ID groups, the owner's membership is read first
//! ([`crate::groups`], cached).
//!
//! A job that pullprintd itself redirected (find-me) and that the destination holds again with a new
//! task (Graph does not say whether it does; the destination may carry our trigger too) is
//! recognised by its `redirectedFrom` and our record of that redirect, and completed at once with the
//! configuration the redirect carried: the person already released it.
//!
//! Invariants: a task is looked up at most once (the store's `task_known` / `claim_discovery`
//! dedupe), with the fewest Graph calls: `GET job?$expand=documents` when the job's URL is known
//! (from the task list or the notification's `parentUrl`), `GET task` first only when it is not.

pub mod inbox;
pub mod poller;
pub mod reconcile;
pub mod subscription;
pub mod webhook;

use std::sync::Arc;

use time::Duration;
use tokio::sync::Notify;

use crate::cache::TtlCache;
use crate::clock::SharedClock;
use crate::graph::model::Printer;
use crate::graph::{Expand, GraphClient, GraphError, JobRef, PrintJob, parse_parent_url};
use crate::job::{JobFacts, ReleasePolicy, RuleSet};
use crate::metrics::Metrics;
use crate::release::service::ReleaseService;
use crate::store::{
    DiscoveredVia, EnqueueError, Inserted, NewHeldJob, OurRedirect, Store, StoreError,
};

/// How long a lookup claim keeps other intake paths off a task: longer than one lookup with the Graph
/// client's retries, short enough that a lookup lost to a crash is retried by the next poll.
pub const CLAIM_LEASE: Duration = Duration::minutes(3);

/// Why a lookup failed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// Graph failed or refused.
    #[error(transparent)]
    Graph(#[from] GraphError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IntakeError {
    /// Whether trying again later may help (throttling, outages, the store busy).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Graph(error) => error.is_transient() || error.is_outcome_unknown(),
            Self::Store(_) => true,
        }
    }
}

/// What a lookup did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Looked {
    /// A new held job is stored.
    Stored,
    /// The task was known already, or another path is looking it up: no Graph call was made.
    Skipped,
}

/// The shared lookup: task → job → held job. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Intake {
    store: Store,
    graph: GraphClient,
    clock: SharedClock,
    definition_id: String,
    metrics: Metrics,
    rules: Option<Rules>,
    /// Notified whenever a new held job is stored (the sweeper's deadline may have moved).
    new_jobs: Arc<Notify>,
}

/// `[[rules]]` and the release service that turns a rule's decision into a queued action.
#[derive(Debug, Clone)]
struct Rules {
    set: Arc<RuleSet>,
    service: ReleaseService,
    policy: ReleasePolicy,
    /// When a rule names Entra ID groups.
    groups: Option<crate::groups::GroupLookup>,
    /// Printers' status, asked before a rule releases or redirects a job (one `GET printer` per
    /// printer per [`crate::job::readiness::STATUS_MAX_AGE`], shared by a burst).
    printers: Arc<TtlCache<Printer>>,
}

impl Intake {
    /// Intake for the task definition `definition_id`.
    pub fn new(
        store: Store,
        graph: GraphClient,
        clock: SharedClock,
        definition_id: impl Into<String>,
    ) -> Self {
        Self {
            store,
            graph,
            clock,
            definition_id: definition_id.into(),
            metrics: Metrics::new(),
            rules: None,
            new_jobs: Arc::new(Notify::new()),
        }
    }

    /// The same intake, deciding each new job by `rules` (the default without: hold every job).
    /// A rule's action is built by `service` and stored with the job in one transaction; `policy`
    /// (`[release]`) bounds forced options as it bounds a person's.
    pub fn with_rules(
        mut self,
        rules: Arc<RuleSet>,
        service: ReleaseService,
        policy: ReleasePolicy,
    ) -> Self {
        let named = rules.groups();
        let groups = (!named.is_empty()).then(|| {
            crate::groups::GroupLookup::new(self.graph.clone(), self.clock.clone(), named)
        });
        let graph = self.graph.clone();
        let fetch: crate::cache::Fetch<Printer> = Arc::new(move |printer_id: String| {
            let graph = graph.clone();
            Box::pin(async move { graph.get_printer(&printer_id).await })
        });
        let printers = TtlCache::new(
            "printer status",
            crate::job::readiness::STATUS_MAX_AGE,
            self.clock.clone(),
            fetch,
        );
        self.rules = (!rules.is_empty()).then(|| Rules {
            set: rules,
            service,
            policy,
            groups,
            printers: Arc::new(printers),
        });
        self
    }

    /// The same intake, counting into `metrics` (the daemon's registry).
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// The metrics intake counts into.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Notified whenever a new held job is stored.
    pub fn new_jobs(&self) -> Arc<Notify> {
        Arc::clone(&self.new_jobs)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The Graph client.
    pub fn graph(&self) -> &GraphClient {
        &self.graph
    }

    /// The injected clock.
    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Our task definition.
    pub fn definition_id(&self) -> &str {
        &self.definition_id
    }

    /// Looks up a task whose job URL is not known yet (a notification without `parentUrl`):
    /// `GET task`, then [`Intake::lookup`].
    pub async fn lookup_task(
        &self,
        task_id: &str,
        via: DiscoveredVia,
    ) -> Result<Looked, IntakeError> {
        if self.store.task_known(task_id).await? {
            return Ok(Looked::Skipped);
        }
        let task = self.graph.get_task(&self.definition_id, task_id).await?;
        let job = parse_parent_url(&task.parent_url)?;
        self.lookup(task_id, &job, via).await
    }

    /// Stores the task's job as held: claims the task, `GET job?$expand=documents` (one call: the
    /// document's name is the job's name), stores it. Known or claimed tasks cost no Graph call.
    pub async fn lookup(
        &self,
        task_id: &str,
        job: &JobRef,
        via: DiscoveredVia,
    ) -> Result<Looked, IntakeError> {
        if !self
            .store
            .claim_discovery(task_id, via, self.clock.now(), CLAIM_LEASE)
            .await?
        {
            return Ok(Looked::Skipped);
        }
        let fetched = self
            .graph
            .get_job(&job.printer_id, &job.job_id, &[Expand::Documents])
            .await;
        let print_job = match fetched {
            Ok(print_job) => print_job,
            Err(error) => {
                // Let another path (the next poll) try at once rather than after the lease.
                if let Err(store_error) = self.store.release_claim(task_id).await {
                    tracing::warn!(%store_error, task = task_id, "cannot release a lookup claim");
                }
                return Err(error.into());
            }
        };
        // A find-me release onto a printer that carries our trigger may be held there again (Graph
        // does not say whether it is): the person already chose, so it is completed at once, and no
        // rule is asked about it.
        let ours = match print_job.redirected_from.as_deref().map(parse_parent_url) {
            Some(Ok(source)) => {
                self.store
                    .our_redirect_of(&source.printer_id, &source.job_id)
                    .await?
            }
            _ => None,
        };
        let size = print_job.documents.as_ref().map(|documents| {
            documents
                .iter()
                .map(|document| u64::try_from(document.size).unwrap_or(0))
                .sum::<u64>()
        });
        let requested = print_job.configuration.clone();
        let held = self.held_job(task_id, job, print_job, via);
        let inserted = match (&self.rules, &ours) {
            (None, _) | (_, Some(_)) => self.store.insert_held_job(&held).await?,
            (Some(rules), None) => {
                let membership = match &rules.groups {
                    Some(lookup) => Some(lookup.membership(&held.owner_upn).await),
                    None => None,
                };
                let decision = rules.set.decide(&JobFacts {
                    printer_id: &held.printer_id,
                    owner_upn: &held.owner_upn,
                    name: &held.name,
                    size,
                    configuration: &requested,
                    at: held.submitted_at,
                    groups: membership.as_ref(),
                });
                if let Some(problem) = &decision.problem {
                    tracing::warn!(task = task_id, rule = %decision.label(), %problem, "a rule cannot be decided; the job is held");
                }
                // A rule that sends the job to a printer first asks whether that printer can
                // print: a jammed or paused printer keeps the job held (audited) rather than
                // swallowing it.
                let not_ready = match decision.prints_on(&held.printer_id) {
                    Some(printer) => {
                        let read = rules.printers.get(printer);
                        crate::job::readiness::read_within(printer, read).await
                    }
                    None => None,
                };
                let inserted = rules
                    .service
                    .store_by_rule(&held, &decision, rules.policy, not_ready.as_ref())
                    .await
                    .map_err(|error| match error {
                        EnqueueError::Store(error) => IntakeError::Store(error),
                        // The job was just inserted in the same transaction: only a rule the
                        // store refuses (a redirect to the job's own printer is a release, so
                        // none is expected) lands here.
                        other => IntakeError::Store(StoreError::Corrupt {
                            what: other.to_string(),
                        }),
                    })?;
                if inserted == Inserted::New && decision.rule.is_some() {
                    tracing::info!(task = task_id, rule = %decision.label(), action = decision.action.as_str(), "rule applied");
                }
                inserted
            }
        };
        match inserted {
            Inserted::New if ours.is_some() => {
                self.complete_our_redirect(task_id, ours).await?;
                Ok(Looked::Stored)
            }
            Inserted::New => {
                self.new_jobs.notify_one();
                tracing::info!(task = task_id, printer = %held.printer_id, job = %held.job_id, owner = %held.owner_upn, %via, "job held");
                Ok(Looked::Stored)
            }
            Inserted::AlreadyKnown => Ok(Looked::Skipped),
        }
    }

    /// Queues the release of a job we redirected ourselves and the destination holds again, with the
    /// configuration the redirect carried; the executor completes its task.
    async fn complete_our_redirect(
        &self,
        task_id: &str,
        ours: Option<OurRedirect>,
    ) -> Result<(), IntakeError> {
        let Some(ours) = ours else {
            return Ok(());
        };
        let release = ReleaseService::completion_of_our_redirect(task_id, ours, self.clock.now());
        match self.store.enqueue(&release).await {
            Ok(action) => {
                tracing::info!(task = task_id, %action, "a job we redirected is held again on its destination; completing it");
                Ok(())
            }
            Err(EnqueueError::Store(error)) => Err(error.into()),
            Err(error) => {
                tracing::warn!(task = task_id, %error, "cannot complete a job we redirected");
                Ok(())
            }
        }
    }

    fn held_job(
        &self,
        task_id: &str,
        job: &JobRef,
        print_job: PrintJob,
        via: DiscoveredVia,
    ) -> NewHeldJob {
        let now = self.clock.now();
        let owner = print_job.created_by.unwrap_or_default();
        let name = print_job
            .documents
            .unwrap_or_default()
            .into_iter()
            .find_map(|document| document.display_name.filter(|name| !name.trim().is_empty()))
            .unwrap_or_else(|| format!("Print job {}", print_job.id));
        NewHeldJob {
            task_id: task_id.to_owned(),
            definition_id: self.definition_id.clone(),
            printer_id: job.printer_id.clone(),
            job_id: job.job_id.clone(),
            owner_upn: owner.user_principal_name.unwrap_or_default(),
            owner_name: owner.display_name.filter(|name| !name.is_empty()),
            owner_id: owner.id.filter(|id| !id.is_empty()),
            name,
            configuration: print_job.configuration,
            submitted_at: print_job.created_date_time.unwrap_or(now),
            discovered_at: now,
            discovered_via: via,
        }
    }
}
