//! Sign-in guard records shared by the daemons of a PostgreSQL store (table `sign_in_guards`,
//! PostgreSQL migration 0004): a card's or a person's failed guesses, and a station's or all
//! stations' failed sign-ins, count once however many instances they are spread over. A SQLite store
//! has one daemon, which keeps them in memory ([`crate::station::lockout`],
//! [`crate::station::budget`]); these methods are called only on PostgreSQL.
//!
//! The store keeps each subject's record as opaque JSON and changes it under the row's lock, in one
//! transaction: what the record means (failures, reservations, lockouts) is the station's.

use time::OffsetDateTime;

use super::timestamp::encode;
use super::{RowExt as _, Store, StoreError};

impl Store {
    /// Locks the record of `subject`, lets `change` turn it (`None`: none yet) into the record to keep
    /// (`None`: forget it) and an answer, writes that, commits, and returns the answer. Concurrent
    /// callers for one subject, in any daemon, take turns.
    pub async fn sign_in_guard<T>(
        &self,
        subject: &str,
        now: OffsetDateTime,
        change: impl FnOnce(Option<&str>) -> (Option<String>, T),
    ) -> Result<T, StoreError> {
        self.sign_in_guards(&[subject], now, |mut old| {
            let (new, answer) = change(old.pop().flatten().as_deref());
            (vec![new], answer)
        })
        .await
    }

    /// [`Store::sign_in_guard`] for several subjects changed together in one transaction: `change`
    /// receives their records in the order of `subjects` and returns the records to keep in that
    /// order. The rows are locked in one fixed order, so callers naming the same subjects in any order
    /// never deadlock.
    pub async fn sign_in_guards<T>(
        &self,
        subjects: &[&str],
        now: OffsetDateTime,
        change: impl FnOnce(Vec<Option<String>>) -> (Vec<Option<String>>, T),
    ) -> Result<T, StoreError> {
        const DOING: &str = "counting a sign-in attempt";
        let mut order: Vec<&str> = subjects.to_vec();
        order.sort_unstable();
        order.dedup();
        let mut tx = self.pool.begin().await.map_err(StoreError::db(DOING))?;
        let mut records = std::collections::HashMap::new();
        for subject in &order {
            // The row must exist before it can be locked: two daemons inserting it at once would
            // both read "none" otherwise.
            sqlx::query(
                "INSERT INTO sign_in_guards (subject, record, updated_at) VALUES ($1, '', $2) \
                 ON CONFLICT (subject) DO NOTHING",
            )
            .bind(*subject)
            .bind(encode(now))
            .execute(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?;
            let row =
                sqlx::query("SELECT record FROM sign_in_guards WHERE subject = $1 FOR UPDATE")
                    .bind(*subject)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(StoreError::db(DOING))?;
            let record = row.text("record")?;
            records.insert(*subject, Some(record).filter(|r| !r.is_empty()));
        }
        let old = subjects
            .iter()
            .map(|s| records.get(s).cloned().flatten())
            .collect();
        let (new, answer) = change(old);
        let mut written = std::collections::HashSet::new();
        for (subject, record) in subjects.iter().zip(new) {
            if !written.insert(*subject) {
                continue;
            }
            match record {
                Some(record) => {
                    sqlx::query(
                        "UPDATE sign_in_guards SET record = $2, updated_at = $3 WHERE subject = $1",
                    )
                    .bind(*subject)
                    .bind(record)
                    .bind(encode(now))
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(DOING))?;
                }
                None => {
                    sqlx::query("DELETE FROM sign_in_guards WHERE subject = $1")
                        .bind(*subject)
                        .execute(&mut *tx)
                        .await
                        .map_err(StoreError::db(DOING))?;
                }
            }
        }
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(answer)
    }

    /// Forgets the records of `subjects` (`pullprintd unlock`); whether any was kept.
    pub async fn sign_in_guard_remove(&self, subjects: &[String]) -> Result<bool, StoreError> {
        let mut removed = false;
        for subject in subjects {
            let done = sqlx::query("DELETE FROM sign_in_guards WHERE subject = $1")
                .bind(subject)
                .execute(&self.pool)
                .await
                .map_err(StoreError::db("lifting a sign-in lockout"))?;
            removed |= done.rows_affected() > 0;
        }
        Ok(removed)
    }
}
