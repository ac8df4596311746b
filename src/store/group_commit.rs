//! Group commit of the executor's hot writes on SQLite: the write-ahead step before each Graph call
//! ([`Store::record_step`]) and the close of a finished action with its job and audit record
//! ([`Store::finish`]).
//!
//! SQLite takes one writer at a time, and each commit is an `fsync` plus a hand-off to the
//! connection's thread and back for every statement. With many actions under way those writes
//! queue behind each other one commit each. Here they go to one writing task, which takes whatever
//! has arrived meanwhile and writes it in one transaction: one set-based statement per kind of
//! write, one commit. Each caller is answered after the commit that holds its write, so the promise
//! is unchanged: an intent is durable before its call, a close before anyone hears of it.
//!
//! A person's "print all" ([`Store::enqueue_all`]) is written by the same task, in its own
//! transaction, taking turns with the grouped writes: two hundred people pressing it at once
//! otherwise held the pool's connections and the write lock until the last of them was queued, and
//! no release started before (1.4 s at the start of the burst benchmark).
//!
//! Invariants:
//! - a batch commits only if every write in it did exactly what it would have done alone (each step
//!   found its action unfinished and ours; each close found its action unfinished and its job
//!   `acting`); otherwise it is rolled back and each write runs on its own, so every caller gets
//!   the answer the single write gives (`ActionNotPending`, a database error…);
//! - a write that cannot reach the writing task (none running on this runtime any more) runs on
//!   its own: nothing waits on a task that is gone.
//!
//! PostgreSQL does not use it: several daemons share the database, its commits do not serialise
//! on one file lock, and the grouping measured slower there (docs/performance.md, section 8).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, OnceLock};

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::actions::{Closed, EnqueueError};
use super::model::AuditEvent;
use super::timestamp::encode;
use super::{RowExt, Store, StoreError};
use crate::job::{ActionId, NewAction, Outcome, Step, TextEnum};

/// Most writes one transaction carries. Batches are padded up to a power of two so that a few
/// statement shapes serve every size (prepared once, kept in the connection's cache).
const MAX_BATCH: usize = 64;

/// One of the writes the writing task groups.
#[derive(Debug)]
pub(crate) enum Write {
    /// [`Store::record_step`].
    Step {
        id: ActionId,
        step: Step,
        graph_request_id: Option<String>,
    },
    /// [`Store::finish`].
    Finish {
        id: ActionId,
        outcome: Outcome,
        detail: String,
        now: OffsetDateTime,
    },
    /// [`Store::enqueue_all`]: its own transaction, taking turns with the grouped writes.
    EnqueueAll(Vec<NewAction>),
}

/// What a write did.
#[derive(Debug)]
pub(crate) enum Written {
    Step,
    Finish(Closed),
    EnqueueAll(Vec<Result<ActionId, EnqueueError>>),
}

struct Pending {
    write: Write,
    answer: oneshot::Sender<Result<Written, StoreError>>,
}

/// The handle a SQLite [`Store`] keeps: where its writes are sent, once the writing task runs.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    sender: OnceLock<mpsc::UnboundedSender<Pending>>,
}

impl GroupCommit {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Writes `write` in the next group, starting the writing task on first use (on the caller's
    /// runtime). `alone` is the store without grouping, which the task and every fallback use.
    pub(crate) async fn write(&self, alone: &Store, write: Write) -> Result<Written, StoreError> {
        let sender = self.sender.get_or_init(|| {
            let (sender, receiver) = mpsc::unbounded_channel();
            tokio::spawn(run(alone.clone(), receiver));
            sender
        });
        let (answer, answered) = oneshot::channel();
        if let Err(mpsc::error::SendError(pending)) = sender.send(Pending { write, answer }) {
            return write_alone(alone, pending.write).await;
        }
        match answered.await {
            Ok(result) => result,
            // The task went away (with the runtime that started it) holding this write, which
            // may or may not have been committed: an error, so the executor pauses and drives
            // the action again from what the store holds.
            Err(_) => Err(StoreError::Corrupt {
                what: "the store's writing task stopped before answering".to_owned(),
            }),
        }
    }
}

/// The writing task: takes every write waiting and writes the steps and closes among them (up to
/// [`MAX_BATCH`]) together, then one waiting "print all", in turns: a crowd of them queues behind
/// each other but not in front of the releases already under way.
async fn run(store: Store, mut receiver: mpsc::UnboundedReceiver<Pending>) {
    let mut grouped: VecDeque<Pending> = VecDeque::new();
    let mut batches: VecDeque<Pending> = VecDeque::new();
    loop {
        if grouped.is_empty() && batches.is_empty() {
            match receiver.recv().await {
                Some(first) => sort(first, &mut grouped, &mut batches),
                None => return,
            }
        }
        while let Ok(more) = receiver.try_recv() {
            sort(more, &mut grouped, &mut batches);
        }
        let take = grouped.len().min(MAX_BATCH);
        let mut batch: Vec<Pending> = grouped.drain(..take).collect();
        if batch.len() == 1 {
            let pending = batch.pop().expect("one write");
            let result = write_alone(&store, pending.write).await;
            let _ = pending.answer.send(result);
        } else if !batch.is_empty() {
            match write_together(&store, &batch).await {
                Some(written) => {
                    for (pending, written) in batch.into_iter().zip(written) {
                        let _ = pending.answer.send(Ok(written));
                    }
                }
                None => {
                    for pending in batch {
                        let result = write_alone(&store, pending.write).await;
                        let _ = pending.answer.send(result);
                    }
                }
            }
        }
        if let Some(pending) = batches.pop_front() {
            let result = write_alone(&store, pending.write).await;
            let _ = pending.answer.send(result);
        }
    }
}

fn sort(pending: Pending, grouped: &mut VecDeque<Pending>, batches: &mut VecDeque<Pending>) {
    match pending.write {
        Write::EnqueueAll(_) => batches.push_back(pending),
        Write::Step { .. } | Write::Finish { .. } => grouped.push_back(pending),
    }
}

/// One write in a transaction of its own: what the store does without grouping, and what tells
/// each caller of a batch that was rolled back its exact answer.
async fn write_alone(store: &Store, write: Write) -> Result<Written, StoreError> {
    match write {
        Write::Step {
            id,
            step,
            graph_request_id,
        } => store
            .record_step_alone(id, step, graph_request_id.as_deref())
            .await
            .map(|()| Written::Step),
        Write::Finish {
            id,
            outcome,
            detail,
            now,
        } => store
            .finish_alone(id, outcome, &detail, now)
            .await
            .map(Written::Finish),
        Write::EnqueueAll(actions) => {
            Ok(Written::EnqueueAll(store.enqueue_all_alone(&actions).await))
        }
    }
}

/// Writes the whole batch in one transaction; `None` when any write did not do what it would have
/// done alone, or the database failed (nothing is kept then).
async fn write_together(store: &Store, batch: &[Pending]) -> Option<Vec<Written>> {
    const DOING: &str = "writing a group of action steps";
    let steps: Vec<(ActionId, Step, Option<&str>)> = batch
        .iter()
        .filter_map(|p| match &p.write {
            Write::Step {
                id,
                step,
                graph_request_id,
            } => Some((*id, *step, graph_request_id.as_deref())),
            Write::Finish { .. } | Write::EnqueueAll(_) => None,
        })
        .collect();
    let finishes: Vec<(ActionId, Outcome, &str, OffsetDateTime)> = batch
        .iter()
        .filter_map(|p| match &p.write {
            Write::Finish {
                id,
                outcome,
                detail,
                now,
            } => Some((*id, *outcome, detail.as_str(), *now)),
            Write::Step { .. } | Write::EnqueueAll(_) => None,
        })
        .collect();
    let mut tx = store.write(DOING).await.ok()?;
    if !steps.is_empty() {
        let size = steps.len().next_power_of_two();
        // $1 = this daemon; then (id, step, request id) per write, NULLs padding the batch.
        let (mut step_arms, mut request_arms) = (String::new(), String::new());
        for k in 0..size {
            let at = 2 + 3 * k;
            step_arms.push_str(&format!(" WHEN ${at} THEN ${}", at + 1));
            request_arms.push_str(&format!(" WHEN ${at} THEN ${}", at + 2));
        }
        let ids = id_list(size, 3);
        let sql = format!(
            "UPDATE actions SET step = CASE id{step_arms} END, \
             graph_request_id = COALESCE(CASE id{request_arms} END, graph_request_id) \
             WHERE id IN ({ids}) AND finished_at IS NULL \
             AND (lease_owner IS NULL OR lease_owner = $1) RETURNING id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(store.instance());
        for k in 0..size {
            match steps.get(k) {
                Some((id, step, request)) => {
                    query = query.bind(id.0).bind(step.as_str()).bind(*request);
                }
                None => {
                    query = query
                        .bind(None::<i64>)
                        .bind(None::<&str>)
                        .bind(None::<&str>);
                }
            }
        }
        let rows = query.fetch_all(&mut *tx).await.ok()?;
        let mut written = rows
            .iter()
            .map(|row| row.int("id"))
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        written.sort_unstable();
        let mut asked: Vec<i64> = steps.iter().map(|(id, ..)| id.0).collect();
        asked.sort_unstable();
        if written != asked {
            return None;
        }
    }
    let mut closed: HashMap<i64, Closed> = HashMap::new();
    if !finishes.is_empty() {
        let size = finishes.len().next_power_of_two();
        // $1 = this daemon; then (id, finished at, outcome, detail, audit event) per write.
        let mut arms = [String::new(), String::new(), String::new(), String::new()];
        for k in 0..size {
            let at = 2 + 5 * k;
            for (column, arm) in arms.iter_mut().enumerate() {
                arm.push_str(&format!(" WHEN ${at} THEN ${}", at + 1 + column));
            }
        }
        let [finished_at, outcome, detail, event] = &arms;
        let ids = id_list(size, 5);
        // The job takes the outcome and time its action was just given; the audit record is built
        // from the rows, as `close_action` builds it.
        let sql = format!(
            "UPDATE actions SET finished_at = CASE id{finished_at} END, \
             outcome = CASE id{outcome} END, detail = CASE id{detail} END, \
             lease_owner = NULL, lease_until = NULL \
             WHERE id IN ({ids}) AND finished_at IS NULL \
             AND (lease_owner IS NULL OR lease_owner = $1) \
             RETURNING 'action' AS part, id, task_id; \
             UPDATE held_jobs SET state = 'ended', \
             outcome = (SELECT a.outcome FROM actions a WHERE a.task_id = held_jobs.task_id \
             AND a.id IN ({ids})), \
             ended_at = (SELECT a.finished_at FROM actions a WHERE a.task_id = held_jobs.task_id \
             AND a.id IN ({ids})) \
             WHERE task_id IN (SELECT task_id FROM actions WHERE id IN ({ids})) \
             AND state = 'acting' RETURNING 'job' AS part, task_id, submitted_at; \
             INSERT INTO audit (at, event, station_id, requested_by, user_upn, user_key, task_id, \
             printer_id, job_id, destination_printer_id, configuration_before, \
             configuration_after, detail, graph_request_id) \
             SELECT a.finished_at, CASE a.id{event} END, a.station_id, a.requested_by, \
             h.owner_upn, h.owner_key, a.task_id, h.printer_id, h.job_id, \
             a.destination_printer_id, h.configuration, a.changes, a.detail, a.graph_request_id \
             FROM actions a JOIN held_jobs h ON h.task_id = a.task_id \
             WHERE a.id IN ({ids}) ORDER BY a.id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(store.instance());
        for k in 0..size {
            match finishes.get(k) {
                Some((id, outcome, detail, now)) => {
                    query = query
                        .bind(id.0)
                        .bind(encode(*now))
                        .bind(outcome.as_str())
                        .bind(*detail)
                        .bind(AuditEvent::from(*outcome).as_str());
                }
                None => {
                    query = query
                        .bind(None::<i64>)
                        .bind(None::<&str>)
                        .bind(None::<&str>)
                        .bind(None::<&str>)
                        .bind(None::<&str>);
                }
            }
        }
        let rows = query.fetch_all(&mut *tx).await.ok()?;
        let mut task_of: HashMap<String, i64> = HashMap::new();
        let mut jobs: Vec<(String, OffsetDateTime)> = Vec::new();
        for row in &rows {
            match row.text("part").ok()?.as_str() {
                "action" => {
                    task_of.insert(row.text("task_id").ok()?, row.int("id").ok()?);
                }
                "job" => jobs.push((row.text("task_id").ok()?, row.time("submitted_at").ok()?)),
                _ => return None,
            }
        }
        for (task_id, submitted_at) in jobs {
            let id = task_of.get(&task_id)?;
            closed.insert(*id, Closed { submitted_at });
        }
        if task_of.len() != finishes.len() || closed.len() != finishes.len() {
            return None;
        }
    }
    // Every answer is known before the commit: after it, nothing may fall back to writing again.
    let answers = batch
        .iter()
        .map(|p| match &p.write {
            Write::Step { .. } => Some(Written::Step),
            Write::Finish { id, .. } => closed.remove(&id.0).map(Written::Finish),
            Write::EnqueueAll(_) => None,
        })
        .collect::<Option<Vec<_>>>()?;
    tx.commit().await.ok()?;
    Some(answers)
}

/// `$2, $2+width, …`: the ids of `size` writes of `width` parameters each, numbered after `$1`.
fn id_list(size: usize, width: usize) -> String {
    (0..size)
        .map(|k| format!("${}", 2 + width * k))
        .collect::<Vec<_>>()
        .join(", ")
}
