//! The durable action queue: a person's (or the sweeper's) decision, kept until Graph has carried it
//! out, across restarts.
//!
//! Invariants:
//! - [`Store::enqueue`] flips the job from `held` to `acting` and inserts the action in one
//!   transaction, committed (durably) before it returns: the caller may then tell the person
//!   "queued". A partial unique index refuses a second unfinished action for the same task.
//! - [`Store::finish`] finishes the action, ends the job and appends the audit record in one
//!   transaction, and only once: finishing a finished action is [`StoreError::ActionNotPending`].
//! - The step is the write-ahead intent ([`crate::job::Step`]); the store records it, the executor's
//!   state machine interprets it.
//! - Leases: a daemon drives an action only after claiming it ([`Store::claim_actions`]), and renews
//!   the claim while it drives ([`Store::renew_lease`]). Every later write to the action (step,
//!   reschedule, finish) is fenced by the lease: once another daemon has taken over a lapsed lease,
//!   the late one's writes change nothing and it stops ([`StoreError::ActionNotPending`]). The
//!   taker-over resumes at the recorded step, so an intent is settled by reading Graph first.
//!   A SQLite store has one daemon (its lock file), so there a claim is a read and takes no lease.

use sqlx::any::AnyRow;
use time::OffsetDateTime;

use super::audit::{self, NewAudit};
use super::group_commit::{Write, Written};
use super::model::AuditEvent;
use super::timestamp::encode;
use super::{RowExt, Store, StoreError, json_text, placeholders};
use crate::job::{
    Action, ActionId, ActionKind, Applied, JobState, NewAction, Outcome, Step, TextEnum,
};

/// Why an action was not queued.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// No job with this task id was ever stored (the station maps this to 404).
    #[error("there is no held job with task id {task_id}")]
    UnknownTask {
        /// The task id asked for.
        task_id: String,
    },
    /// The job is being acted on or has ended (the station maps this to 409).
    #[error(
        "the job with task id {task_id} is {state}, not held: it is already being released or deleted, or has ended"
    )]
    NotHeld {
        /// The task id asked for.
        task_id: String,
        /// Where the job is.
        state: JobState,
    },
    /// The request does not make sense (a redirect without a destination, or to the job's own printer).
    #[error("invalid action: {0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The columns [`action`] reads, from `actions a JOIN held_jobs h`.
macro_rules! columns {
    () => {
        "a.id, a.task_id, h.definition_id, h.printer_id, h.job_id, a.kind, a.changes, \
         h.configuration AS held_configuration, h.applied_configuration, \
         a.destination_printer_id, a.station_id, \
         a.requested_by, a.requested_at, a.step, a.attempts, a.next_attempt_at, a.last_error, \
         a.graph_request_id FROM actions a JOIN held_jobs h ON h.task_id = a.task_id"
    };
}

impl Store {
    /// Queues `new` and flips its job to `acting`, durably, in one transaction.
    pub async fn enqueue(&self, new: &NewAction) -> Result<ActionId, EnqueueError> {
        if self.backend == super::Backend::Sqlite
            && let Some(id) = self.enqueue_at_once(new).await?
        {
            return Ok(id);
        }
        let mut tx = self.write(ENQUEUE).await?;
        let id = enqueue_in(&mut tx, new).await?;
        tx.commit().await.map_err(StoreError::db(ENQUEUE))?;
        Ok(id)
    }

    /// Queues each of `actions` as [`Store::enqueue`] does, all in one transaction: one commit for a
    /// person's "print all" instead of one per job. The answers come in the order of `actions`; a
    /// job that cannot be queued (not held, unknown, an invalid action) is refused on its own
    /// without holding the others back. Should the database refuse a write, nothing of the batch
    /// is kept and each action is queued in a transaction of its own instead.
    ///
    /// On SQLite it is written by the same task as the executor's grouped writes, taking turns
    /// with them: otherwise a crowd pressing "print all" at once would hold the connections and
    /// the write lock until the last of them is queued, and no release would start before.
    pub async fn enqueue_all(&self, actions: &[NewAction]) -> Vec<Result<ActionId, EnqueueError>> {
        let Some(group) = &self.group else {
            return self.enqueue_all_alone(actions).await;
        };
        match group
            .write(&self.alone(), Write::EnqueueAll(actions.to_vec()))
            .await
        {
            Ok(Written::EnqueueAll(answers)) => answers,
            Ok(_) | Err(_) => actions
                .iter()
                .map(|_| {
                    Err(EnqueueError::Store(StoreError::Corrupt {
                        what: "the store's writing task gave no answer for a batch".to_owned(),
                    }))
                })
                .collect(),
        }
    }

    /// [`Store::enqueue_all`] without taking turns.
    pub(crate) async fn enqueue_all_alone(
        &self,
        actions: &[NewAction],
    ) -> Vec<Result<ActionId, EnqueueError>> {
        match self.enqueue_batch(actions).await {
            Ok(answers) => answers,
            Err(_) => {
                let mut answers = Vec::with_capacity(actions.len());
                for action in actions {
                    answers.push(self.enqueue(action).await);
                }
                answers
            }
        }
    }

    async fn enqueue_batch(
        &self,
        actions: &[NewAction],
    ) -> Result<Vec<Result<ActionId, EnqueueError>>, EnqueueError> {
        const DOING: &str = ENQUEUE;
        let mut tx = self.write(DOING).await?;
        let mut answers: Vec<Option<Result<ActionId, EnqueueError>>> =
            (0..actions.len()).map(|_| None).collect();
        // Three statements a slice, whatever its size (each statement is a round trip to the
        // database): read the jobs, flip the held ones to `acting`, insert their actions.
        for (slice_no, slice) in actions.chunks(ENQUEUE_SLICE).enumerate() {
            let offset = slice_no * ENQUEUE_SLICE;
            let ids: Vec<&str> = slice.iter().map(|a| a.task_id.as_str()).collect();
            let mut found = std::collections::HashMap::new();
            let mut read = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT task_id, state, printer_id FROM held_jobs WHERE task_id IN ({})",
                placeholders(1, ids.len())
            )));
            for id in &ids {
                read = read.bind(*id);
            }
            for row in read
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(DOING))?
            {
                found.insert(
                    row.text("task_id")?,
                    (row.word::<JobState>("state")?, row.text("printer_id")?),
                );
            }
            let mut accepted: Vec<usize> = Vec::with_capacity(slice.len());
            for (n, action) in slice.iter().enumerate() {
                let job = found
                    .get(&action.task_id)
                    .map(|(state, printer)| (*state, printer.as_str()));
                match refusal(action, job) {
                    Some(refused) => answers[offset + n] = Some(Err(refused)),
                    None => {
                        accepted.push(n);
                        // The same job twice in one batch: the second finds it acting.
                        if let Some(entry) = found.get_mut(&action.task_id) {
                            entry.0 = JobState::Acting;
                        }
                    }
                }
            }
            if accepted.is_empty() {
                continue;
            }
            let mut flip = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE held_jobs SET state = 'acting' WHERE state = 'held' AND task_id IN ({})",
                placeholders(1, accepted.len())
            )));
            for n in &accepted {
                flip = flip.bind(slice[*n].task_id.as_str());
            }
            let flipped = flip
                .execute(&mut *tx)
                .await
                .map_err(StoreError::db(DOING))?;
            if flipped.rows_affected() != accepted.len() as u64 {
                // Cannot happen under the write turn; the transaction is dropped (rolled back)
                // and the caller queues them one by one.
                return Err(StoreError::Corrupt {
                    what: "a held job changed state during a batch enqueue".to_owned(),
                }
                .into());
            }
            let values = (0..accepted.len())
                .map(|row| {
                    // Seven values a row; the seventh (requested_at) is also the first attempt.
                    let first = row * 7 + 1;
                    format!(
                        "({}, '{}', 0, ${})",
                        placeholders(first, 7),
                        Step::Queued.as_str(),
                        first + 6
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            let mut insert = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO actions (task_id, kind, changes, destination_printer_id, station_id, \
                 requested_by, requested_at, step, attempts, next_attempt_at) VALUES {values} \
                 RETURNING id, task_id"
            )));
            for n in &accepted {
                let new = &slice[*n];
                insert = insert
                    .bind(new.task_id.as_str())
                    .bind(new.kind.as_str())
                    .bind(new.changes.as_ref().map(json_text))
                    .bind(new.destination_printer_id.as_deref())
                    .bind(new.station_id.as_deref())
                    .bind(new.requested_by.as_str())
                    .bind(encode(new.requested_at));
            }
            // RETURNING gives no order on SQLite: the rows are matched by task.
            let mut inserted = std::collections::HashMap::new();
            for row in insert
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(DOING))?
            {
                inserted.insert(row.text("task_id")?, ActionId(row.int("id")?));
            }
            for n in accepted {
                let id = inserted.get(&slice[n].task_id).copied().ok_or_else(|| {
                    StoreError::Corrupt {
                        what: format!("no action inserted for task {}", slice[n].task_id),
                    }
                })?;
                answers[offset + n] = Some(Ok(id));
            }
        }
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    Err(StoreError::Corrupt {
                        what: "a batch enqueue left an action unanswered".to_owned(),
                    }
                    .into())
                })
            })
            .collect())
    }

    /// Unfinished actions whose next attempt is due at `now`, earliest first, at most `limit`.
    pub async fn due_actions(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<Action>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " WHERE a.finished_at IS NULL AND a.next_attempt_at <= $1 \
             ORDER BY a.next_attempt_at, a.id LIMIT $2"
        ))
        .bind(encode(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("listing due actions"))?;
        rows.iter().map(action).collect()
    }

    /// Claims up to `limit` unfinished actions for this daemon until `now + lease`, earliest due
    /// first, and returns them: those due at `now` (or every one when `all`: a start resumes them
    /// all), that no other daemon holds a live lease on. Its own claims are renewed. On PostgreSQL
    /// the rows are locked with `FOR UPDATE SKIP LOCKED`, so daemons claiming at the same moment
    /// take different actions instead of waiting for each other. On SQLite, where one daemon owns
    /// the store, a claim is a read and takes no lease.
    pub async fn claim_actions(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
        all: bool,
    ) -> Result<Vec<Action>, StoreError> {
        self.claim_actions_except(now, lease, limit, all, &[]).await
    }

    /// [`Store::claim_actions`], leaving out `running`: the actions this daemon drives now (their
    /// leases are renewed by their drives), which would otherwise be read again on every claim.
    pub async fn claim_actions_except(
        &self,
        now: OffsetDateTime,
        lease: time::Duration,
        limit: u32,
        all: bool,
        running: &[ActionId],
    ) -> Result<Vec<Action>, StoreError> {
        const DOING: &str = "claiming due actions";
        if self.backend == super::Backend::Sqlite {
            return self.due_actions_except(now, limit, all, running).await;
        }
        // PostgreSQL: the row locks below do what the write turn would, without queueing behind
        // writers.
        let mut tx = self.pool.begin().await.map_err(StoreError::db(DOING))?;
        let due_by = due_by(now, all);
        let except = not_among("id", 5, running);
        let mut candidates = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM actions WHERE finished_at IS NULL AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $2 OR lease_owner = $3){except} \
             ORDER BY next_attempt_at, id LIMIT $4 FOR UPDATE SKIP LOCKED"
        )))
        .bind(due_by)
        .bind(encode(now))
        .bind(self.instance())
        .bind(i64::from(limit));
        for id in running {
            candidates = candidates.bind(id.0);
        }
        let candidates = candidates
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
        let ids = candidates
            .iter()
            .map(|row| row.int("id"))
            .collect::<Result<Vec<i64>, _>>()?;
        if ids.is_empty() {
            tx.commit().await.map_err(StoreError::db(DOING))?;
            return Ok(Vec::new());
        }
        // Two statements for the whole claim, whatever its size: each statement is a round trip
        // to the database, and a claim may take dozens of actions.
        let mut update = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE actions SET lease_owner = $1, lease_until = $2 WHERE id IN ({})",
            placeholders(3, ids.len())
        )))
        .bind(self.instance())
        .bind(encode(now + lease));
        for id in &ids {
            update = update.bind(*id);
        }
        update
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
        let mut read = sqlx::query(sqlx::AssertSqlSafe(format!(
            concat!(
                "SELECT ",
                columns!(),
                " WHERE a.id IN ({}) ORDER BY a.next_attempt_at, a.id"
            ),
            placeholders(1, ids.len())
        )));
        for id in &ids {
            read = read.bind(*id);
        }
        let rows = read
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
        tx.commit().await.map_err(StoreError::db(DOING))?;
        rows.iter().map(action).collect()
    }

    /// The claim on SQLite: one read. A SQLite store has one daemon (it holds the lock file), so
    /// every lease would be its own and writing one would protect nothing; leaving the write out
    /// spares a durable commit on every turn of the executor's loop.
    async fn due_actions_except(
        &self,
        now: OffsetDateTime,
        limit: u32,
        all: bool,
        running: &[ActionId],
    ) -> Result<Vec<Action>, StoreError> {
        let due_by = due_by(now, all);
        let except = not_among("a.id", 3, running);
        let mut read = sqlx::query(sqlx::AssertSqlSafe(format!(
            concat!(
                "SELECT ",
                columns!(),
                " WHERE a.finished_at IS NULL AND a.next_attempt_at <= $1{} \
                 ORDER BY a.next_attempt_at, a.id LIMIT $2"
            ),
            except
        )))
        .bind(due_by)
        .bind(i64::from(limit));
        for id in running {
            read = read.bind(id.0);
        }
        let rows = read
            .fetch_all(&self.pool)
            .await
            .map_err(StoreError::db("claiming due actions"))?;
        rows.iter().map(action).collect()
    }

    /// Extends this daemon's lease on action `id` to `until` while it drives it; `false` when the
    /// lease is no longer ours (another daemon took the action over) or the action has finished.
    pub async fn renew_lease(
        &self,
        id: ActionId,
        until: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        // On SQLite the claim takes no lease (see `due_actions_except`): an unclaimed action is
        // this daemon's.
        let sql = match self.backend {
            super::Backend::Sqlite => {
                "UPDATE actions SET lease_until = $2 WHERE id = $1 AND finished_at IS NULL \
                 AND (lease_owner IS NULL OR lease_owner = $3)"
            }
            super::Backend::Postgres => {
                "UPDATE actions SET lease_until = $2 WHERE id = $1 AND finished_at IS NULL \
                 AND lease_owner = $3"
            }
        };
        let done = sqlx::query(sql)
            .bind(id.0)
            .bind(encode(until))
            .bind(self.instance())
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("renewing an action's lease"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Every unfinished action, oldest first: what a restart resumes.
    pub async fn unfinished_actions(&self) -> Result<Vec<Action>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " WHERE a.finished_at IS NULL ORDER BY a.id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("listing unfinished actions"))?;
        rows.iter().map(action).collect()
    }

    /// One unfinished action; `None` when it is unknown or finished.
    pub async fn action(&self, id: ActionId) -> Result<Option<Action>, StoreError> {
        sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " WHERE a.id = $1 AND a.finished_at IS NULL"
        ))
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading an action"))?
        .as_ref()
        .map(action)
        .transpose()
    }

    /// How a finished action ended (outcome and detail); `None` while it is unfinished or unknown.
    pub async fn action_outcome(
        &self,
        id: ActionId,
    ) -> Result<Option<(Outcome, Option<String>)>, StoreError> {
        let row = sqlx::query(
            "SELECT outcome, detail FROM actions WHERE id = $1 AND finished_at IS NOT NULL",
        )
        .bind(id.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading an action's outcome"))?;
        row.map(|row| Ok((row.word::<Outcome>("outcome")?, row.opt_text("detail")?)))
            .transpose()
    }

    /// Records `step` (a write-ahead intent before a call, or a completed step after it), and Graph's
    /// request-id when there is one. Committed durably before it returns.
    /// On SQLite, steps of actions under way at the same moment share one commit.
    pub async fn record_step(
        &self,
        id: ActionId,
        step: Step,
        graph_request_id: Option<&str>,
    ) -> Result<(), StoreError> {
        match &self.group {
            Some(group) => group
                .write(
                    &self.alone(),
                    Write::Step {
                        id,
                        step,
                        graph_request_id: graph_request_id.map(str::to_owned),
                    },
                )
                .await
                .map(|_| ()),
            None => self.record_step_alone(id, step, graph_request_id).await,
        }
    }

    /// [`Store::record_step`] in a transaction of its own.
    pub(crate) async fn record_step_alone(
        &self,
        id: ActionId,
        step: Step,
        graph_request_id: Option<&str>,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE actions SET step = $2, graph_request_id = COALESCE($3, graph_request_id) \
             WHERE id = $1 AND finished_at IS NULL AND (lease_owner IS NULL OR lease_owner = $4)",
        )
        .bind(id.0)
        .bind(step.as_str())
        .bind(graph_request_id)
        .bind(self.instance())
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("recording an action's step"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ActionNotPending(id));
        }
        Ok(())
    }

    /// Puts an action off until `next_attempt_at` after a failed attempt, counting it and keeping
    /// `error` for people.
    pub async fn reschedule(
        &self,
        id: ActionId,
        next_attempt_at: OffsetDateTime,
        error: &str,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            "UPDATE actions SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id = $1 AND finished_at IS NULL AND (lease_owner IS NULL OR lease_owner = $4)",
        )
        .bind(id.0)
        .bind(encode(next_attempt_at))
        .bind(error)
        .bind(self.instance())
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("rescheduling an action"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::ActionNotPending(id));
        }
        Ok(())
    }

    /// When the executor's timer must fire: the earliest `next_attempt_at` of any unfinished action,
    /// or for an action another daemon holds, the end of its lease if that is later (it may be taken
    /// over then).
    pub async fn next_action_due(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let row = sqlx::query(
            "SELECT MIN(CASE WHEN lease_owner <> $1 AND lease_until > next_attempt_at \
             THEN lease_until ELSE next_attempt_at END) AS due \
             FROM actions WHERE finished_at IS NULL",
        )
        .bind(self.instance())
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("reading when the next action is due"))?;
        row.opt_time("due")
    }

    /// The action queue: how many actions are unfinished, and when the oldest of them was requested
    /// (the `pullprintd_action_queue_*` gauges: a queue that grows or ages means Graph is not taking
    /// releases).
    pub async fn action_queue(&self) -> Result<(u64, Option<OffsetDateTime>), StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(requested_at) AS oldest FROM actions WHERE finished_at IS NULL",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(StoreError::db("reading the action queue"))?;
        Ok((
            u64::try_from(row.int("n")?).unwrap_or(0),
            row.opt_time("oldest")?,
        ))
    }

    /// Finishes an action as [`Outcome::Failed`] but puts its job back to `held` (not ended), with a
    /// `failed` audit record, in one transaction: a release or redirect Graph refused while the task is
    /// still `processing` must not leave the job blocked; its owner sees it again and may retry or
    /// delete it. `applied` is the configuration Graph now holds when the action changed it (JSON
    /// null: unknown); it is recorded on the job so a later release re-applies whatever differs from
    /// the person's choice (`None` keeps what was recorded). Finishing twice is
    /// [`StoreError::ActionNotPending`].
    pub async fn return_to_held(
        &self,
        id: ActionId,
        detail: &str,
        applied: Option<&Applied>,
        now: OffsetDateTime,
    ) -> Result<Closed, StoreError> {
        self.close_action(id, Outcome::Failed, detail, now, JobAfter::Held(applied))
            .await
    }

    /// Finishes an action with `outcome`, ends its job with the same outcome and appends the audit
    /// record, in one transaction. Finishing twice is [`StoreError::ActionNotPending`]. On SQLite,
    /// actions finishing at the same moment share one commit.
    pub async fn finish(
        &self,
        id: ActionId,
        outcome: Outcome,
        detail: &str,
        now: OffsetDateTime,
    ) -> Result<Closed, StoreError> {
        match &self.group {
            Some(group) => match group
                .write(
                    &self.alone(),
                    Write::Finish {
                        id,
                        outcome,
                        detail: detail.to_owned(),
                        now,
                    },
                )
                .await?
            {
                Written::Finish(closed) => Ok(closed),
                Written::Step | Written::EnqueueAll(_) => Err(StoreError::Corrupt {
                    what: "a close answered as another write".to_owned(),
                }),
            },
            None => self.finish_alone(id, outcome, detail, now).await,
        }
    }

    /// [`Store::finish`] in a transaction of its own.
    pub(crate) async fn finish_alone(
        &self,
        id: ActionId,
        outcome: Outcome,
        detail: &str,
        now: OffsetDateTime,
    ) -> Result<Closed, StoreError> {
        self.close_action(id, outcome, detail, now, JobAfter::Ended)
            .await
    }

    /// Closes action `id` with `outcome`, moves its job out of `acting` as `after` says and appends
    /// the audit record (`failed` for a job held again, else the outcome), in one transaction.
    async fn close_action(
        &self,
        id: ActionId,
        outcome: Outcome,
        detail: &str,
        now: OffsetDateTime,
        after: JobAfter<'_>,
    ) -> Result<Closed, StoreError> {
        const DOING: &str = "closing an action";
        if self.backend == super::Backend::Sqlite {
            return self
                .close_action_at_once(id, outcome, detail, now, after)
                .await;
        }
        let mut tx = self.write(DOING).await?;
        let Some(done) = sqlx::query(
            "UPDATE actions SET finished_at = $2, outcome = $3, detail = $4, lease_owner = NULL, \
             lease_until = NULL \
             WHERE id = $1 AND finished_at IS NULL AND (lease_owner IS NULL OR lease_owner = $5) \
             RETURNING task_id, changes, destination_printer_id, station_id, requested_by, \
             graph_request_id",
        )
        .bind(id.0)
        .bind(encode(now))
        .bind(outcome.as_str())
        .bind(detail)
        .bind(self.instance())
        .fetch_optional(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?
        else {
            return Err(StoreError::ActionNotPending(id));
        };
        let task_id = done.text("task_id")?;
        let (job_update, event) = match after {
            JobAfter::Ended => (
                sqlx::query(
                    "UPDATE held_jobs SET state = 'ended', outcome = $2, ended_at = $3 \
                     WHERE task_id = $1 AND state = 'acting' \
                     RETURNING printer_id, job_id, owner_upn, configuration, submitted_at",
                )
                .bind(task_id.clone())
                .bind(outcome.as_str())
                .bind(encode(now)),
                AuditEvent::from(outcome),
            ),
            JobAfter::Held(applied) => (
                sqlx::query(
                    "UPDATE held_jobs SET state = 'held', \
                     applied_configuration = COALESCE($2, applied_configuration) \
                     WHERE task_id = $1 AND state = 'acting' \
                     RETURNING printer_id, job_id, owner_upn, configuration, submitted_at",
                )
                .bind(task_id.clone())
                .bind(applied.map(applied_text)),
                AuditEvent::Failed,
            ),
        };
        let job = job_update
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?
            .ok_or_else(|| StoreError::Corrupt {
                what: format!("an unfinished action {id} whose job (task {task_id}) is not acting"),
            })?;
        audit::append(
            &mut tx,
            &NewAudit {
                at: now,
                event,
                station_id: done.opt_text("station_id")?.as_deref(),
                requested_by: Some(&done.text("requested_by")?),
                user_upn: Some(&job.text("owner_upn")?),
                task_id: &task_id,
                printer_id: &job.text("printer_id")?,
                job_id: &job.text("job_id")?,
                destination_printer_id: done.opt_text("destination_printer_id")?.as_deref(),
                configuration_before: Some(&job.text("configuration")?),
                configuration_after: done.opt_text("changes")?.as_deref(),
                detail: Some(detail),
                graph_request_id: done.opt_text("graph_request_id")?.as_deref(),
            },
        )
        .await?;
        let submitted_at = job.time("submitted_at")?;
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(Closed { submitted_at })
    }

    /// [`Store::enqueue`] on SQLite in one round trip inside the transaction: flip the job to
    /// `acting` and insert the action, then check what the flip found before the commit. `None`
    /// when the job was not there to flip (unknown, not held) or the action would be refused:
    /// nothing is kept, and the caller's ordinary path says exactly why.
    async fn enqueue_at_once(&self, new: &NewAction) -> Result<Option<ActionId>, EnqueueError> {
        // A redirect (or anything naming a printer) is checked against the job's printer before
        // any write, on the ordinary path; the schema's own checks would refuse it less clearly.
        if new.kind == ActionKind::Redirect || new.destination_printer_id.is_some() {
            return Ok(None);
        }
        let mut tx = self.write(ENQUEUE).await?;
        let rows = sqlx::query(
            "UPDATE held_jobs SET state = 'acting' WHERE task_id = $1 AND state = 'held' \
             RETURNING 'job' AS part, printer_id; \
             INSERT INTO actions (task_id, kind, changes, destination_printer_id, station_id, \
             requested_by, requested_at, step, attempts, next_attempt_at) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, 0, $7 WHERE changes() = 1 \
             ON CONFLICT DO NOTHING RETURNING 'action' AS part, id",
        );
        let rows = bind_new_action(rows, new)
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(ENQUEUE))?;
        let mut printer_id = None;
        let mut id = None;
        for row in &rows {
            match row.text("part")?.as_str() {
                "job" => printer_id = Some(row.text("printer_id")?),
                "action" => id = Some(ActionId(row.int("id")?)),
                _ => {}
            }
        }
        let queued = match (printer_id, id) {
            (Some(printer_id), Some(id)) => refusal(new, Some((JobState::Held, &printer_id)))
                .is_none()
                .then_some(id),
            _ => None,
        };
        let Some(id) = queued else {
            // Rolled back before the ordinary path looks, so it finds the job as it was.
            tx.rollback().await.map_err(StoreError::db(ENQUEUE))?;
            return Ok(None);
        };
        tx.commit().await.map_err(StoreError::db(ENQUEUE))?;
        Ok(Some(id))
    }

    /// [`Store::close_action`] on SQLite, where one query may hold several statements: the three
    /// writes go to the database in one round trip inside the transaction, instead of one each
    /// (each is a hand-off to the connection's thread and back). Whatever they find is checked
    /// before the commit; a refusal rolls all three back.
    async fn close_action_at_once(
        &self,
        id: ActionId,
        outcome: Outcome,
        detail: &str,
        now: OffsetDateTime,
        after: JobAfter<'_>,
    ) -> Result<Closed, StoreError> {
        const DOING: &str = "closing an action";
        let (job_update, event, applied) = match after {
            JobAfter::Ended => (
                "UPDATE held_jobs SET state = 'ended', outcome = $3, ended_at = $2",
                AuditEvent::from(outcome),
                None,
            ),
            JobAfter::Held(applied) => (
                "UPDATE held_jobs SET state = 'held', \
                 applied_configuration = COALESCE($7, applied_configuration)",
                AuditEvent::Failed,
                Some(applied.map(applied_text)),
            ),
        };
        // The audit record is built from the rows themselves: the held job's configuration is
        // what it was before the action (`configuration` is never rewritten), the action's
        // changes what it asked for.
        let sql = format!(
            "UPDATE actions SET finished_at = $2, outcome = $3, detail = $4, lease_owner = NULL, \
             lease_until = NULL \
             WHERE id = $1 AND finished_at IS NULL AND (lease_owner IS NULL OR lease_owner = $5) \
             RETURNING 'action' AS part, task_id; \
             {job_update} WHERE task_id = (SELECT task_id FROM actions WHERE id = $1) \
             AND state = 'acting' RETURNING 'job' AS part, submitted_at; \
             INSERT INTO audit (at, event, station_id, requested_by, user_upn, user_key, task_id, \
             printer_id, job_id, destination_printer_id, configuration_before, \
             configuration_after, detail, graph_request_id) \
             SELECT $2, $6, a.station_id, a.requested_by, h.owner_upn, h.owner_key, a.task_id, \
             h.printer_id, h.job_id, a.destination_printer_id, h.configuration, a.changes, $4, \
             a.graph_request_id FROM actions a JOIN held_jobs h ON h.task_id = a.task_id \
             WHERE a.id = $1"
        );
        let mut tx = self.write(DOING).await?;
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id.0)
            .bind(encode(now))
            .bind(outcome.as_str())
            .bind(detail)
            .bind(self.instance())
            .bind(event.as_str());
        if let Some(applied) = applied {
            query = query.bind(applied);
        }
        let rows = query
            .fetch_all(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
        let mut task_id = None;
        let mut submitted_at = None;
        for row in &rows {
            match row.text("part")?.as_str() {
                "action" => task_id = Some(row.text("task_id")?),
                "job" => submitted_at = Some(row.time("submitted_at")?),
                _ => {}
            }
        }
        let Some(task_id) = task_id else {
            return Err(StoreError::ActionNotPending(id));
        };
        let Some(submitted_at) = submitted_at else {
            return Err(StoreError::Corrupt {
                what: format!("an unfinished action {id} whose job (task {task_id}) is not acting"),
            });
        };
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(Closed { submitted_at })
    }
}

/// The latest `next_attempt_at` a claim takes: `now`, or every action when `all` (a start).
fn due_by(now: OffsetDateTime, all: bool) -> String {
    if all {
        "9999-12-31T23:59:59.999999999Z".to_owned()
    } else {
        encode(now)
    }
}

/// ` AND column NOT IN ($from, …)` for the actions a claim leaves out (empty when none are).
fn not_among(column: &str, from: usize, running: &[ActionId]) -> String {
    if running.is_empty() {
        String::new()
    } else {
        format!(
            " AND {column} NOT IN ({})",
            placeholders(from, running.len())
        )
    }
}

/// How many actions one statement of [`Store::enqueue_all`] carries (seven parameters each, well
/// under either database's limit).
const ENQUEUE_SLICE: usize = 500;

/// What [`Store::enqueue`] says it is doing.
const ENQUEUE: &str = "queueing an action";

/// Queues `new` and flips its job to `acting` inside the caller's transaction (so intake can store a
/// job and its rule's action in one commit).
pub(crate) async fn enqueue_in(
    tx: &mut super::Tx,
    new: &NewAction,
) -> Result<ActionId, EnqueueError> {
    check_enqueue(tx, new).await?;
    write_enqueue(tx, new).await
}

/// Whether `new` may be queued: its job exists and is held, and the action makes sense. Reads only,
/// so a refusal leaves the transaction as it was.
async fn check_enqueue(tx: &mut super::Tx, new: &NewAction) -> Result<(), EnqueueError> {
    const DOING: &str = ENQUEUE;
    let row = sqlx::query("SELECT state, printer_id FROM held_jobs WHERE task_id = $1")
        .bind(&new.task_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(StoreError::db(DOING))?;
    let found = match row {
        Some(row) => Some((row.word::<JobState>("state")?, row.text("printer_id")?)),
        None => None,
    };
    match refusal(
        new,
        found
            .as_ref()
            .map(|(state, printer)| (*state, printer.as_str())),
    ) {
        Some(refused) => Err(refused),
        None => Ok(()),
    }
}

/// Why `new` cannot be queued on a job found as `found` (its state and printer; `None`: no such
/// job), or `None` when it can.
fn refusal(new: &NewAction, found: Option<(JobState, &str)>) -> Option<EnqueueError> {
    let Some((state, printer_id)) = found else {
        return Some(EnqueueError::UnknownTask {
            task_id: new.task_id.clone(),
        });
    };
    if state != JobState::Held {
        return Some(EnqueueError::NotHeld {
            task_id: new.task_id.clone(),
            state,
        });
    }
    match (new.kind, new.destination_printer_id.as_deref()) {
        (ActionKind::Redirect, None) => Some(EnqueueError::Invalid(
            "a redirect needs a destination printer".to_owned(),
        )),
        (ActionKind::Redirect, Some(destination)) if destination == printer_id => {
            Some(EnqueueError::Invalid(format!(
                "the job is already on printer {destination}: release it instead of redirecting"
            )))
        }
        (ActionKind::Release | ActionKind::Delete | ActionKind::Expire, Some(_)) => {
            Some(EnqueueError::Invalid(format!(
                "a {} action takes no destination printer",
                new.kind
            )))
        }
        _ => None,
    }
}

/// Writes a checked `new`: flips its job to `acting` and inserts the action.
async fn write_enqueue(tx: &mut super::Tx, new: &NewAction) -> Result<ActionId, EnqueueError> {
    const DOING: &str = ENQUEUE;
    sqlx::query("UPDATE held_jobs SET state = 'acting' WHERE task_id = $1 AND state = 'held'")
        .bind(&new.task_id)
        .execute(&mut **tx)
        .await
        .map_err(StoreError::db(DOING))?;
    let inserted = sqlx::query(
        "INSERT INTO actions (task_id, kind, changes, destination_printer_id, station_id, \
             requested_by, requested_at, step, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $7) RETURNING id",
    );
    let inserted = bind_new_action(inserted, new).fetch_one(&mut **tx).await;
    let id = match inserted {
        Ok(row) => row.int("id")?,
        // The partial unique index: another action got in first.
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
            return Err(EnqueueError::NotHeld {
                task_id: new.task_id.clone(),
                state: JobState::Acting,
            });
        }
        Err(source) => {
            return Err(StoreError::Database {
                doing: DOING,
                source,
            }
            .into());
        }
    };
    Ok(ActionId(id))
}

/// Binds `$1`–`$8` of an action's insert: task, kind, changes, destination, station, requester,
/// requested at (also its first attempt, `$7`), and the first step.
fn bind_new_action<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    new: &'q NewAction,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    query
        .bind(&new.task_id)
        .bind(new.kind.as_str())
        .bind(new.changes.as_ref().map(json_text))
        .bind(&new.destination_printer_id)
        .bind(&new.station_id)
        .bind(&new.requested_by)
        .bind(encode(new.requested_at))
        .bind(Step::Queued.as_str())
}

/// What closing an action tells the caller without another read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    /// When the job was submitted (for the time-to-release metric).
    pub submitted_at: OffsetDateTime,
}

/// Where a closed action leaves its job.
#[derive(Debug, Clone, Copy)]
enum JobAfter<'a> {
    /// Ended with the action's outcome.
    Ended,
    /// Back on its owner's list (a release Graph refused while the task still waits), with the
    /// configuration Graph now holds if the action changed it.
    Held(Option<&'a Applied>),
}

fn action(row: &AnyRow) -> Result<Action, StoreError> {
    let attempts = row.int("attempts")?;
    Ok(Action {
        id: ActionId(row.int("id")?),
        task_id: row.text("task_id")?,
        definition_id: row.text("definition_id")?,
        printer_id: row.text("printer_id")?,
        job_id: row.text("job_id")?,
        kind: row.word::<ActionKind>("kind")?,
        changes: row.opt_json("changes")?,
        held_configuration: row.json("held_configuration")?,
        applied_configuration: row
            .opt_text("applied_configuration")?
            .map(|text| match text.as_str() {
                "null" => Ok(Applied::Unknown),
                _ => serde_json::from_str(&text)
                    .map(|c| Applied::Known(Box::new(c)))
                    .map_err(|error| StoreError::Corrupt {
                        what: format!("held_jobs.applied_configuration = {text:?} ({error})"),
                    }),
            })
            .transpose()?,
        destination_printer_id: row.opt_text("destination_printer_id")?,
        station_id: row.opt_text("station_id")?,
        requested_by: row.text("requested_by")?,
        requested_at: row.time("requested_at")?,
        step: row.word::<Step>("step")?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt {
            what: format!("actions.attempts = {attempts}"),
        })?,
        next_attempt_at: row.time("next_attempt_at")?,
        last_error: row.opt_text("last_error")?,
        graph_request_id: row.opt_text("graph_request_id")?,
    })
}

/// `held_jobs.applied_configuration`: the configuration as JSON, or JSON `null` when unknown.
fn applied_text(applied: &Applied) -> String {
    match applied {
        Applied::Known(configuration) => json_text(configuration),
        Applied::Unknown => "null".to_owned(),
    }
}
