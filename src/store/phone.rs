//! Entra ID sign-in at a station (`[phone]`, tables `phone_codes` and `phone_logins`: SQLite
//! migration 0020, PostgreSQL 0006), on both backends, so a phone's callback may reach another
//! daemon than the one that sent it to Entra ID.
//!
//! A code is used at most once: using it is one conditional `UPDATE` (not yet used, not expired),
//! so two phones scanning the same code at once get one sign-in between them. A sign-in under way
//! is taken by one `DELETE … RETURNING`, so a callback replayed (or raced) finds nothing the second
//! time. Keys are SHA-256 digests of the codes, states and cookies, never the values.

use time::{Duration, OffsetDateTime};

use super::timestamp::encode;
use super::{RowExt as _, Store, StoreError};

/// How long a used or expired code is remembered, so a late scan is told why it failed.
const REMEMBER_CODES: Duration = Duration::hours(1);

/// What became of an attempt to use a code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeUse {
    /// The code was valid and is now used: the sign-in is for this station.
    Valid {
        /// The station whose kiosk showed it.
        station_id: String,
    },
    /// It was used before.
    Used,
    /// It is past its lifetime.
    Expired,
    /// No kiosk showed it (forged, or forgotten long ago).
    Unknown,
}

/// A sign-in under way, between the authorize redirect and the callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The station it is for.
    pub station_id: String,
    /// SHA-256 of the cookie of the browser that started it.
    pub browser: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier.
    pub verifier: String,
    /// Started at the kiosk ("Sign in with Microsoft"), not from a phone.
    pub at_kiosk: bool,
    /// When it can no longer complete.
    pub expires_at: OffsetDateTime,
}

impl Store {
    /// Records a code a kiosk shows, valid until `expires_at`; forgets codes long past.
    pub async fn phone_code_issue(
        &self,
        digest: &str,
        station_id: &str,
        expires_at: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const DOING: &str = "recording a sign-in code";
        sqlx::query("DELETE FROM phone_codes WHERE expires_at <= $1")
            .bind(encode(now - REMEMBER_CODES))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(DOING))?;
        sqlx::query("INSERT INTO phone_codes (digest, station_id, expires_at) VALUES ($1, $2, $3)")
            .bind(digest)
            .bind(station_id)
            .bind(encode(expires_at))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(DOING))?;
        Ok(())
    }

    /// Uses the code under `digest` if it is valid at `now` and unused.
    pub async fn phone_code_use(
        &self,
        digest: &str,
        now: OffsetDateTime,
    ) -> Result<CodeUse, StoreError> {
        const DOING: &str = "using a sign-in code";
        let used = sqlx::query(
            "UPDATE phone_codes SET used_at = $2 \
             WHERE digest = $1 AND used_at IS NULL AND expires_at > $2 RETURNING station_id",
        )
        .bind(digest)
        .bind(encode(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db(DOING))?;
        if let Some(row) = used {
            return Ok(CodeUse::Valid {
                station_id: row.text("station_id")?,
            });
        }
        let row = sqlx::query("SELECT used_at FROM phone_codes WHERE digest = $1")
            .bind(digest)
            .fetch_optional(&self.pool)
            .await
            .map_err(StoreError::db(DOING))?;
        Ok(match row {
            None => CodeUse::Unknown,
            Some(row) if row.opt_text("used_at")?.is_some() => CodeUse::Used,
            Some(_) => CodeUse::Expired,
        })
    }

    /// Records a sign-in under way under the digest of its `state`; forgets those expired.
    pub async fn phone_login_begin(
        &self,
        digest: &str,
        login: &PendingLogin,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        const DOING: &str = "recording a sign-in under way";
        sqlx::query("DELETE FROM phone_logins WHERE expires_at <= $1")
            .bind(encode(now))
            .execute(&self.pool)
            .await
            .map_err(StoreError::db(DOING))?;
        sqlx::query(
            "INSERT INTO phone_logins \
             (digest, station_id, browser, nonce, verifier, at_kiosk, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(digest)
        .bind(&login.station_id)
        .bind(&login.browser)
        .bind(&login.nonce)
        .bind(&login.verifier)
        .bind(i64::from(login.at_kiosk))
        .bind(encode(login.expires_at))
        .execute(&self.pool)
        .await
        .map_err(StoreError::db(DOING))?;
        Ok(())
    }

    /// Takes (and forgets) the sign-in under way under `digest`, expired or not: the caller decides.
    pub async fn phone_login_take(&self, digest: &str) -> Result<Option<PendingLogin>, StoreError> {
        let row = sqlx::query(
            "DELETE FROM phone_logins WHERE digest = $1 \
             RETURNING station_id, browser, nonce, verifier, at_kiosk, expires_at",
        )
        .bind(digest)
        .fetch_optional(&self.pool)
        .await
        .map_err(StoreError::db("taking a sign-in under way"))?;
        row.map(|row| {
            Ok(PendingLogin {
                station_id: row.text("station_id")?,
                browser: row.text("browser")?,
                nonce: row.text("nonce")?,
                verifier: row.text("verifier")?,
                at_kiosk: row.int("at_kiosk")? != 0,
                expires_at: row.time("expires_at")?,
            })
        })
        .transpose()
    }
}
