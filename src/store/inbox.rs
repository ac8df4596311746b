//! The notification inbox: change notifications persisted by the webhook before it answers 202.
//!
//! Invariant: a batch is stored in one transaction (all of it or none, so Graph's retry of a failed
//! delivery does not half-duplicate it) and an item stays pending until [`Store::inbox_done`].
//! Processing is idempotent downstream (intake dedupes by task id), so an item processed twice after
//! a crash costs nothing. An item that keeps failing is put off on its own schedule
//! ([`Store::inbox_retry`]: it is not due again until then, so it never holds up newer ones) and
//! finally dead-lettered ([`Store::inbox_dead_letter`]): processed, with the reason kept on the item
//! and in the audit log.
//!
//! The webhook writes through an [`InboxWriter`]: deliveries that arrive while a commit is under
//! way are stored together in the next one (group commit), so a burst of Graph's deliveries costs a
//! few transactions, not one each, and none is answered before its own commit.

use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use super::audit::{self, NewAudit};
use super::model::{AuditEvent, InboxItem};
use super::timestamp::encode;
use super::{RowExt, Store, StoreError};

/// Stores the webhook's deliveries with group commit: each [`InboxWriter::push`] returns once a
/// transaction holding its payloads (and those of the deliveries that waited with it) has committed.
/// A failed commit fails every delivery in it (Graph retries each), so a delivery is still stored all
/// or none. Cheap to clone; the writing task ends when the last clone is dropped.
#[derive(Debug, Clone)]
pub struct InboxWriter {
    queue: mpsc::Sender<Push>,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// One delivery waiting for its commit.
#[derive(Debug)]
struct Push {
    payloads: Vec<String>,
    received_at: OffsetDateTime,
    answer: oneshot::Sender<Result<Vec<i64>, StoreError>>,
}

/// At most this many payloads in one transaction: a bounded commit, so the first delivery of a huge
/// burst is not kept waiting for the last.
const MAX_BATCH_PAYLOADS: usize = 1000;

/// Notifications stored by one `INSERT` statement (two parameters each, well within both
/// databases' limits).
const INSERT_ROWS: usize = 200;

/// Deliveries waiting beyond this make the webhook wait for room (back-pressure onto Graph's
/// connections, not unbounded memory).
const QUEUE: usize = 4096;

impl InboxWriter {
    /// The writer for `store`'s inbox, with its writing task spawned on the current runtime.
    pub fn spawn(store: Store) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        let commits = std::sync::Arc::default();
        tokio::spawn(write_batches(
            store,
            waiting,
            std::sync::Arc::clone(&commits),
        ));
        Self { queue, commits }
    }

    /// How many transactions have committed deliveries so far.
    pub fn commits(&self) -> u64 {
        self.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stores `payloads` (one changeNotification's JSON text each) in one transaction, possibly
    /// shared with other deliveries; returns their ids in order once it has committed.
    pub async fn push(
        &self,
        payloads: Vec<String>,
        received_at: OffsetDateTime,
    ) -> Result<Vec<i64>, StoreError> {
        const DOING: &str = "storing change notifications";
        let (answer, answered) = oneshot::channel();
        let push = Push {
            payloads,
            received_at,
            answer,
        };
        let gone = || StoreError::Database {
            doing: DOING,
            source: sqlx::Error::PoolClosed,
        };
        self.queue.send(push).await.map_err(|_| gone())?;
        answered.await.map_err(|_| gone())?
    }
}

/// The writing task: takes every delivery waiting (up to [`MAX_BATCH_PAYLOADS`]), commits them in
/// one transaction, answers each.
async fn write_batches(
    store: Store,
    mut waiting: mpsc::Receiver<Push>,
    commits: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    while let Some(first) = waiting.recv().await {
        let mut batch = vec![first];
        let mut payloads = batch[0].payloads.len();
        while payloads < MAX_BATCH_PAYLOADS {
            match waiting.try_recv() {
                Ok(push) => {
                    payloads += push.payloads.len();
                    batch.push(push);
                }
                Err(_) => break,
            }
        }
        let items: Vec<(&str, OffsetDateTime)> = batch
            .iter()
            .flat_map(|push| {
                push.payloads
                    .iter()
                    .map(|payload| (payload.as_str(), push.received_at))
            })
            .collect();
        match store.inbox_insert(&items).await {
            Ok(ids) => {
                commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let mut ids = ids.into_iter();
                for push in batch {
                    let own: Vec<i64> = ids.by_ref().take(push.payloads.len()).collect();
                    // A webhook request that gave up (its connection closed) no longer listens.
                    let _ = push.answer.send(Ok(own));
                }
            }
            Err(error) => {
                let detail = error.to_string();
                let mut batch = batch.into_iter();
                if let Some(first) = batch.next() {
                    let _ = first.answer.send(Err(error));
                }
                for push in batch {
                    let _ = push.answer.send(Err(StoreError::Database {
                        doing: "storing change notifications",
                        source: sqlx::Error::Protocol(detail.clone()),
                    }));
                }
            }
        }
    }
}

impl Store {
    /// Stores every payload (the JSON text of one changeNotification each) in one transaction;
    /// returns their ids in order.
    pub async fn inbox_push<S: AsRef<str>>(
        &self,
        payloads: &[S],
        received_at: OffsetDateTime,
    ) -> Result<Vec<i64>, StoreError> {
        let items: Vec<(&str, OffsetDateTime)> = payloads
            .iter()
            .map(|payload| (payload.as_ref(), received_at))
            .collect();
        self.inbox_insert(&items).await
    }

    /// Stores `(payload, received_at)` pairs in one transaction; their ids in order. Rows go in
    /// [`INSERT_ROWS`] to a statement: a burst costs a few round trips to the database, not one a
    /// notification.
    async fn inbox_insert(&self, items: &[(&str, OffsetDateTime)]) -> Result<Vec<i64>, StoreError> {
        const DOING: &str = "storing change notifications";
        let mut tx = self.write(DOING).await?;
        let mut ids = Vec::with_capacity(items.len());
        for chunk in items.chunks(INSERT_ROWS) {
            let values: Vec<String> = (0..chunk.len())
                .map(|n| format!("(${}, ${})", 2 * n + 1, 2 * n + 2))
                .collect();
            let sql = format!(
                "INSERT INTO inbox (received_at, payload) VALUES {} RETURNING id",
                values.join(", ")
            );
            // Only numbered placeholders are formatted into the text; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (payload, received_at) in chunk {
                query = query.bind(encode(*received_at)).bind(*payload);
            }
            let rows = query
                .fetch_all(&mut *tx)
                .await
                .map_err(StoreError::db(DOING))?;
            let mut chunk_ids = rows
                .iter()
                .map(|row| row.int("id"))
                .collect::<Result<Vec<i64>, StoreError>>()?;
            // Both databases number the rows of one INSERT in the order of its VALUES; RETURNING
            // need not list them in that order.
            chunk_ids.sort_unstable();
            if chunk_ids.len() != chunk.len() {
                return Err(StoreError::Corrupt {
                    what: format!(
                        "storing {} notifications returned {} ids",
                        chunk.len(),
                        chunk_ids.len()
                    ),
                });
            }
            ids.extend(chunk_ids);
        }
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(ids)
    }

    /// Up to `limit` unprocessed notifications, oldest first, whether due or put off.
    pub async fn inbox_pending(&self, limit: u32) -> Result<Vec<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, payload, attempts FROM inbox WHERE processed_at IS NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading the notification inbox"))?;
        rows.iter().map(inbox_item).collect()
    }

    /// Up to `limit` unprocessed notifications due at `now` (not put off past it), oldest first.
    pub async fn inbox_due(
        &self,
        limit: u32,
        now: OffsetDateTime,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, payload, attempts FROM inbox WHERE processed_at IS NULL \
             AND (next_attempt_at IS NULL OR next_attempt_at <= $2) ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .bind(encode(now))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading the notification inbox"))?;
        rows.iter().map(inbox_item).collect()
    }

    /// When the earliest put-off notification is due again; `None` when none is put off.
    pub async fn inbox_next_retry(&self) -> Result<Option<OffsetDateTime>, StoreError> {
        let row = sqlx::query(
            "SELECT next_attempt_at FROM inbox WHERE processed_at IS NULL \
             AND next_attempt_at IS NOT NULL ORDER BY next_attempt_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading the notification inbox"))?;
        row.map(|row| row.time("next_attempt_at")).transpose()
    }

    /// Records a failed try of notification `id`: `attempts` so far, not due again before `at`.
    pub async fn inbox_retry(
        &self,
        id: i64,
        attempts: u32,
        at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE inbox SET attempts = $2, next_attempt_at = $3 \
             WHERE id = $1 AND processed_at IS NULL",
        )
        .bind(id)
        .bind(i64::from(attempts))
        .bind(encode(at))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("putting a notification off"))?;
        Ok(())
    }

    /// Gives notification `id` up: processed, with `reason` kept on it and appended to the audit log
    /// (naming `task_id` when the notification named one), in one transaction.
    pub async fn inbox_dead_letter(
        &self,
        id: i64,
        task_id: Option<&str>,
        reason: &str,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const DOING: &str = "dead-lettering a notification";
        let mut tx = self.write(DOING).await?;
        let updated = sqlx::query(
            "UPDATE inbox SET processed_at = $2, dead_letter = $3 \
             WHERE id = $1 AND processed_at IS NULL",
        )
        .bind(id)
        .bind(encode(now))
        .bind(reason)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?;
        if updated.rows_affected() > 0 {
            let detail = format!("notification {id} dead-lettered: {reason}");
            audit::append(
                &mut tx,
                &NewAudit {
                    at: now,
                    event: AuditEvent::DeadLetter,
                    station_id: None,
                    requested_by: None,
                    user_upn: None,
                    task_id: task_id.unwrap_or_default(),
                    printer_id: "",
                    job_id: "",
                    destination_printer_id: None,
                    configuration_before: None,
                    configuration_after: None,
                    detail: Some(&detail),
                    graph_request_id: None,
                },
            )
            .await?;
        }
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(())
    }

    /// Marks notifications processed, in one transaction.
    pub async fn inbox_done(&self, ids: &[i64], now: OffsetDateTime) -> Result<(), StoreError> {
        const DOING: &str = "marking notifications processed";
        let mut tx = self.write(DOING).await?;
        for id in ids {
            sqlx::query(
                "UPDATE inbox SET processed_at = $2 WHERE id = $1 AND processed_at IS NULL",
            )
            .bind(id)
            .bind(encode(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
        }
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(())
    }

    /// Deletes notifications processed before `older_than`; returns how many.
    pub async fn inbox_prune(&self, older_than: OffsetDateTime) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM inbox WHERE processed_at < $1")
            .bind(encode(older_than))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("pruning the notification inbox"))?;
        Ok(done.rows_affected())
    }
}

fn inbox_item(row: &sqlx::any::AnyRow) -> Result<InboxItem, StoreError> {
    Ok(InboxItem {
        id: row.int("id")?,
        received_at: row.time("received_at")?,
        payload: row.text("payload")?,
        attempts: u32::try_from(row.int("attempts")?).unwrap_or(u32::MAX),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn a_burst_of_deliveries_shares_a_few_commits_and_each_is_stored_before_its_answer() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let writer = InboxWriter::spawn(store.clone());
        let now = OffsetDateTime::now_utc();
        let deliveries: Vec<_> = (0..200)
            .map(|n| {
                let writer = writer.clone();
                let store = store.clone();
                tokio::spawn(async move {
                    let payloads = vec![
                        format!("{{\"n\":{n},\"i\":0}}"),
                        format!("{{\"n\":{n},\"i\":1}}"),
                    ];
                    let ids = writer.push(payloads.clone(), now).await.unwrap();
                    // Answered only once committed: a fresh read finds both, under their ids.
                    let pending = store.inbox_pending(10_000).await.unwrap();
                    for (id, payload) in ids.iter().zip(&payloads) {
                        assert!(
                            pending
                                .iter()
                                .any(|item| item.id == *id && item.payload == *payload),
                            "{payload} stored as {id} before the answer"
                        );
                    }
                    ids
                })
            })
            .collect();
        let mut all = Vec::new();
        for delivery in deliveries {
            let ids = delivery.await.unwrap();
            assert_eq!(ids.len(), 2);
            assert!(ids[0] < ids[1], "a delivery's payloads keep their order");
            all.extend(ids);
        }
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 400, "every payload stored once");
        assert!(
            writer.commits() < 200,
            "200 simultaneous deliveries took {} commits",
            writer.commits()
        );
    }

    #[tokio::test]
    async fn a_delivery_to_a_closed_store_fails_instead_of_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_in(dir.path()).await.unwrap();
        let writer = InboxWriter::spawn(store.clone());
        store.close().await;
        let failed = writer
            .push(vec!["{}".to_owned()], OffsetDateTime::now_utc())
            .await;
        assert!(failed.is_err());
        assert_eq!(writer.commits(), 0);
    }
}
