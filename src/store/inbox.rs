//! The notification inbox: change notifications persisted by the webhook before it answers 202.
//!
//! Invariant: a batch is stored in one transaction (all of it or none, so Graph's retry of a failed
//! delivery does not half-duplicate it) and an item stays pending until [`Store::inbox_done`].
//! Processing is idempotent downstream (intake dedupes by task id), so an item processed twice after
//! a crash costs nothing. An item that keeps failing is put off on its own schedule
//! ([`Store::inbox_retry`]: it is not due again until then, so it never holds up newer ones) and
//! finally dead-lettered ([`Store::inbox_dead_letter`]): processed, with the reason kept on the item
//! and in the audit log.

use time::OffsetDateTime;

use super::audit::{self, NewAudit};
use super::model::{AuditEvent, InboxItem};
use super::timestamp::encode;
use super::{RowExt, Store, StoreError};

impl Store {
    /// Stores every payload (the JSON text of one changeNotification each) in one transaction;
    /// returns their ids in order.
    pub async fn inbox_push<S: AsRef<str>>(
        &self,
        payloads: &[S],
        received_at: OffsetDateTime,
    ) -> Result<Vec<i64>, StoreError> {
        const DOING: &str = "storing change notifications";
        let mut tx = self.write(DOING).await?;
        let mut ids = Vec::with_capacity(payloads.len());
        for payload in payloads {
            let row = sqlx::query(
                "INSERT INTO inbox (received_at, payload) VALUES ($1, $2) RETURNING id",
            )
            .bind(encode(received_at))
            .bind(payload.as_ref())
            .fetch_one(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
            ids.push(row.int("id")?);
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
