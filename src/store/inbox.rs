//! The notification inbox: change notifications persisted by the webhook before it answers 202.
//!
//! Invariant: a batch is stored in one transaction (all of it or none, so Graph's retry of a failed
//! delivery does not half-duplicate it) and an item stays pending until [`Store::inbox_done`].
//! Processing is idempotent downstream (intake dedupes by task id), so an item processed twice after
//! a crash costs nothing.

use time::OffsetDateTime;

use super::model::InboxItem;
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

    /// Up to `limit` unprocessed notifications, oldest first.
    pub async fn inbox_pending(&self, limit: u32) -> Result<Vec<InboxItem>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, received_at, payload FROM inbox WHERE processed_at IS NULL \
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(StoreError::db("reading the notification inbox"))?;
        rows.iter()
            .map(|row| {
                Ok(InboxItem {
                    id: row.int("id")?,
                    received_at: row.time("received_at")?,
                    payload: row.text("payload")?,
                })
            })
            .collect()
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
