//! Our Graph subscription and its `clientState` secret.
//!
//! Invariant: one row (slot 1). The `clientState` is generated once and kept for the life of the
//! store, across subscriptions, so a notification Graph delivers late for an old subscription still
//! validates; deleting the subscription keeps it.

use super::model::Subscription;
use super::timestamp::encode;
use super::{RowExt, Store, StoreError};
use secrecy::SecretString;

impl Store {
    /// The `clientState` secret, generating it with `generate` (and storing it) the first time.
    pub async fn client_state_or_create(
        &self,
        generate: impl FnOnce() -> String,
    ) -> Result<SecretString, StoreError> {
        const DOING: &str = "reading the subscription's clientState";
        let mut tx = self.write(DOING).await?;
        let existing = sqlx::query("SELECT client_state FROM subscription WHERE slot = 1")
            .fetch_optional(&mut *tx)
            .await
            .map_err(StoreError::db(DOING))?
            .map(|row| row.opt_text("client_state"))
            .transpose()?
            .flatten();
        if let Some(state) = existing {
            return Ok(SecretString::from(state));
        }
        let state = generate();
        sqlx::query(
            "INSERT INTO subscription (slot, client_state) VALUES (1, $1) \
             ON CONFLICT (slot) DO UPDATE SET client_state = excluded.client_state",
        )
        .bind(&state)
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db(DOING))?;
        tx.commit().await.map_err(StoreError::db(DOING))?;
        Ok(SecretString::from(state))
    }

    /// The current subscription, if one was saved.
    pub async fn subscription(&self) -> Result<Option<Subscription>, StoreError> {
        let row = sqlx::query(
            "SELECT subscription_id, resource, notification_url, expires_at, created_at \
             FROM subscription WHERE slot = 1 AND subscription_id IS NOT NULL",
        )
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading the subscription"))?;
        row.map(|row| {
            Ok(Subscription {
                id: row.text("subscription_id")?,
                resource: row.text("resource")?,
                notification_url: row.text("notification_url")?,
                expires_at: row.time("expires_at")?,
                created_at: row.time("created_at")?,
            })
        })
        .transpose()
    }

    /// Saves (creates or replaces) the subscription, keeping the `clientState`.
    pub async fn save_subscription(&self, subscription: &Subscription) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO subscription (slot, subscription_id, resource, notification_url, \
             expires_at, created_at) VALUES (1, $1, $2, $3, $4, $5) \
             ON CONFLICT (slot) DO UPDATE SET subscription_id = excluded.subscription_id, \
             resource = excluded.resource, notification_url = excluded.notification_url, \
             expires_at = excluded.expires_at, created_at = excluded.created_at",
        )
        .bind(&subscription.id)
        .bind(&subscription.resource)
        .bind(&subscription.notification_url)
        .bind(encode(subscription.expires_at))
        .bind(encode(subscription.created_at))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("saving the subscription"))?;
        Ok(())
    }

    /// Forgets the subscription (it was deleted or expired at Graph), keeping the `clientState`.
    pub async fn delete_subscription(&self) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE subscription SET subscription_id = NULL, resource = NULL, \
             notification_url = NULL, expires_at = NULL, created_at = NULL WHERE slot = 1",
        )
        .execute(&self.pool)
        .await
        .map_err(StoreError::db("deleting the subscription"))?;
        Ok(())
    }
}
