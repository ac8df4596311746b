//! Station sessions shared by the daemons of a PostgreSQL store (table `sessions`, PostgreSQL
//! migration 0003): any instance behind a load balancer accepts a session another one made. A SQLite
//! store has one daemon, which keeps its sessions in memory ([`crate::station::sessions`]); these
//! methods are called only on PostgreSQL.
//!
//! Rows are keyed by the SHA-256 of the token, never the token itself; the station's rules (idle
//! timeout, absolute end, bound to one station) are decided by the caller and only recorded here.

use time::OffsetDateTime;

use super::timestamp::encode;
use super::{RowExt as _, Store, StoreError};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// The user's UPN.
    pub upn: String,
    /// The name shown at the station.
    pub display_name: String,
    /// The station it was made at.
    pub station_id: String,
    /// When it ends unless used again.
    pub expires_at: OffsetDateTime,
    /// When it ends however busy.
    pub ends_at: OffsetDateTime,
    /// Made by a phone's Entra ID sign-in (PostgreSQL migration 0006).
    pub phone: bool,
}

impl Store {
    /// Records a new session under `digest`, dropping the sessions expired at `now`.
    pub async fn session_create(
        &self,
        digest: &str,
        session: &StoredSession,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const DOING: &str = "recording a session";
        sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(encode(now))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(DOING))?;
        sqlx::query(
            "INSERT INTO sessions (digest, upn, display_name, station_id, expires_at, ends_at, phone) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(digest)
        .bind(&session.upn)
        .bind(&session.display_name)
        .bind(&session.station_id)
        .bind(encode(session.expires_at))
        .bind(encode(session.ends_at))
        .bind(i64::from(session.phone))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(DOING))?;
        Ok(())
    }

    /// The session under `digest`, if any (expired or not: the caller decides).
    pub async fn session_get(&self, digest: &str) -> Result<Option<StoredSession>, StoreError> {
        let row = sqlx::query(
            "SELECT upn, display_name, station_id, expires_at, ends_at, phone FROM sessions \
             WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("reading a session"))?;
        row.map(|row| {
            Ok(StoredSession {
                upn: row.text("upn")?,
                display_name: row.text("display_name")?,
                station_id: row.text("station_id")?,
                expires_at: row.time("expires_at")?,
                ends_at: row.time("ends_at")?,
                phone: row.int("phone")? != 0,
            })
        })
        .transpose()
    }

    /// Moves the session's idle expiry to `expires_at` (used again).
    pub async fn session_extend(
        &self,
        digest: &str,
        expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET expires_at = $2 WHERE digest = $1")
            .bind(digest)
            .bind(encode(expires_at))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("extending a session"))?;
        Ok(())
    }

    /// Ends the session under `digest` (signed out, or found expired).
    pub async fn session_remove(&self, digest: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE digest = $1")
            .bind(digest)
            .execute(&self.pool)
            .await
            .map_err(StoreError::db("ending a session"))?;
        Ok(())
    }
}
