//! Station sessions: an opaque random token per sign-in, bound to the station it was made at,
//! ending after a period of inactivity or, however busy, after an absolute lifetime.
//!
//! Only the SHA-256 of a token is kept, so a memory dump does not hand out live sessions, and the
//! map lookup (not constant-time) only ever compares digests of 256-bit random values. A token is
//! accepted only together with its station's key ([`super::state::StationState::session`]).
//!
//! Where they live: in memory on a SQLite store (one daemon; a restart signs everyone out, which at a
//! printer is harmless); in the database on a PostgreSQL store ([`Store::session_create`]), so that
//! any of the daemons behind a load balancer accepts a session another one made. The rules (idle
//! timeout, absolute end, one station) are the same, decided here.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::secrets::{random_token, token_digest};
use crate::store::{Backend, Store, StoreError, StoredSession};

/// A signed-in user at a station.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The user's UPN.
    pub upn: String,
    /// The name shown at the station.
    pub display_name: String,
    /// The station the session was made at; it is valid only there.
    pub station_id: String,
    /// When the session ends unless used again (never after `ends_at`).
    pub expires_at: OffsetDateTime,
    /// When the session ends however busy (sign-in + `[users] session_lifetime`).
    pub ends_at: OffsetDateTime,
    /// Made by an Entra ID sign-in from a phone (the kiosk's QR code): its token is accepted
    /// without a station key, since the phone has none; the single-use code bound it to its station.
    pub phone: bool,
}

/// How a session token was presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented<'a> {
    /// With the key of this station (a kiosk or a station client).
    AtStation(&'a str),
    /// Alone, from a phone: only a phone session is accepted so.
    Phone,
}

/// Why a session token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    /// Unknown, signed out, or expired.
    #[error("the session is unknown or has expired; sign in again")]
    Invalid,
    /// Valid, but made at another station.
    #[error("the session belongs to another station; sign in at this one")]
    OtherStation,
    /// A station's session presented without its station key.
    #[error("send the station key as `X-Station-Key` together with the session token")]
    NeedsStationKey,
}

/// All live sessions.
#[derive(Debug)]
pub struct Sessions {
    idle_timeout: Duration,
    lifetime: Duration,
    clock: SharedClock,
    by_digest: Mutex<HashMap<String, Session>>,
    /// The shared store, when sessions live in the database (PostgreSQL).
    shared: Option<Store>,
}

impl Sessions {
    /// Sessions that end after `idle_timeout` without use, and `lifetime` after sign-in.
    pub fn new(idle_timeout: Duration, lifetime: Duration, clock: SharedClock) -> Self {
        Self {
            idle_timeout,
            lifetime,
            clock,
            by_digest: Mutex::new(HashMap::new()),
            shared: None,
        }
    }

    /// Keeps the sessions in `store` when several daemons may share it (PostgreSQL); in memory
    /// otherwise.
    #[must_use]
    pub fn shared_through(mut self, store: &Store) -> Self {
        self.shared = (store.backend() == Backend::Postgres).then(|| store.clone());
        self
    }

    /// How long a session lasts without use.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Signs a user in at a station; returns the token to hand to the station and the session.
    pub async fn create(
        &self,
        upn: &str,
        display_name: &str,
        station_id: &str,
    ) -> Result<(String, Session), StoreError> {
        self.make(upn, display_name, station_id, false).await
    }

    /// Signs a user in from their phone for `station_id` (after an Entra ID sign-in that a code
    /// of that station's kiosk started).
    pub async fn create_phone(
        &self,
        upn: &str,
        display_name: &str,
        station_id: &str,
    ) -> Result<(String, Session), StoreError> {
        self.make(upn, display_name, station_id, true).await
    }

    async fn make(
        &self,
        upn: &str,
        display_name: &str,
        station_id: &str,
        phone: bool,
    ) -> Result<(String, Session), StoreError> {
        let token = random_token();
        let now = self.clock.now();
        let ends_at = now + self.lifetime;
        let session = Session {
            upn: upn.to_owned(),
            display_name: display_name.to_owned(),
            station_id: station_id.to_owned(),
            expires_at: (now + self.idle_timeout).min(ends_at),
            ends_at,
            phone,
        };
        if let Some(store) = &self.shared {
            let stored = StoredSession {
                upn: session.upn.clone(),
                display_name: session.display_name.clone(),
                station_id: session.station_id.clone(),
                expires_at: session.expires_at,
                ends_at: session.ends_at,
                phone,
            };
            store
                .session_create(&token_digest(&token), &stored, now)
                .await?;
            return Ok((token, session));
        }
        let mut map = self
            .by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, s| s.expires_at > now);
        map.insert(token_digest(&token), session.clone());
        Ok((token, session))
    }

    /// Checks a token presented by `station_id` and extends the session (never past its end). The
    /// outer error is the shared store failing; the inner one the session being refused.
    pub async fn touch(
        &self,
        token: &str,
        station_id: &str,
    ) -> Result<Result<Session, SessionError>, StoreError> {
        self.touch_as(token, Presented::AtStation(station_id)).await
    }

    /// Checks a token presented as `presented` and extends the session: a station's session
    /// only with its own station's key, a phone's session alone or with its station's key.
    pub async fn touch_as(
        &self,
        token: &str,
        presented: Presented<'_>,
    ) -> Result<Result<Session, SessionError>, StoreError> {
        let now = self.clock.now();
        if let Some(store) = &self.shared {
            let digest = token_digest(token);
            let Some(stored) = store.session_get(&digest).await? else {
                return Ok(Err(SessionError::Invalid));
            };
            if stored.expires_at <= now {
                store.session_remove(&digest).await?;
                return Ok(Err(SessionError::Invalid));
            }
            if let Err(refused) = admits(presented, &stored.station_id, stored.phone) {
                return Ok(Err(refused));
            }
            let expires_at = (now + self.idle_timeout).min(stored.ends_at);
            store.session_extend(&digest, expires_at).await?;
            return Ok(Ok(Session {
                upn: stored.upn,
                display_name: stored.display_name,
                station_id: stored.station_id,
                expires_at,
                ends_at: stored.ends_at,
                phone: stored.phone,
            }));
        }
        Ok(self.touch_in_memory(token, presented, now))
    }

    fn touch_in_memory(
        &self,
        token: &str,
        presented: Presented<'_>,
        now: OffsetDateTime,
    ) -> Result<Session, SessionError> {
        let mut map = self
            .by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let digest = token_digest(token);
        let Some(session) = map.get_mut(&digest) else {
            return Err(SessionError::Invalid);
        };
        if session.expires_at <= now {
            map.remove(&digest);
            return Err(SessionError::Invalid);
        }
        admits(presented, &session.station_id, session.phone)?;
        session.expires_at = (now + self.idle_timeout).min(session.ends_at);
        Ok(session.clone())
    }

    /// Signs out; unknown tokens are ignored.
    pub async fn remove(&self, token: &str) -> Result<(), StoreError> {
        if let Some(store) = &self.shared {
            return store.session_remove(&token_digest(token)).await;
        }
        self.by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&token_digest(token));
        Ok(())
    }
}

/// Whether a session of `station_id` (a phone's or not) may be used as presented.
fn admits(presented: Presented<'_>, station_id: &str, phone: bool) -> Result<(), SessionError> {
    match presented {
        Presented::AtStation(at) if at != station_id => Err(SessionError::OtherStation),
        Presented::AtStation(_) => Ok(()),
        Presented::Phone if phone => Ok(()),
        Presented::Phone => Err(SessionError::NeedsStationKey),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;

    fn setup() -> (std::sync::Arc<ManualClock>, Sessions) {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        (
            clock.clone(),
            Sessions::new(Duration::seconds(60), Duration::seconds(300), clock),
        )
    }

    #[tokio::test]
    async fn a_session_is_valid_at_its_station_and_extended_by_use() {
        let (clock, sessions) = setup();
        let (token, _) = sessions
            .create("ada@contoso.com", "Ada", "lobby")
            .await
            .unwrap();
        clock.advance(Duration::seconds(50));
        assert_eq!(
            sessions.touch(&token, "lobby").await.unwrap().unwrap().upn,
            "ada@contoso.com"
        );
        clock.advance(Duration::seconds(50));
        assert!(
            sessions.touch(&token, "lobby").await.unwrap().is_ok(),
            "use extends the session"
        );
    }

    #[tokio::test]
    async fn a_session_expires_after_inactivity() {
        let (clock, sessions) = setup();
        let (token, _) = sessions
            .create("ada@contoso.com", "Ada", "lobby")
            .await
            .unwrap();
        clock.advance(Duration::seconds(61));
        assert_eq!(
            sessions.touch(&token, "lobby").await.unwrap(),
            Err(SessionError::Invalid)
        );
    }

    #[tokio::test]
    async fn a_session_is_refused_at_another_station() {
        let (_clock, sessions) = setup();
        let (token, _) = sessions
            .create("ada@contoso.com", "Ada", "lobby")
            .await
            .unwrap();
        assert_eq!(
            sessions.touch(&token, "floor2").await.unwrap(),
            Err(SessionError::OtherStation)
        );
    }

    #[tokio::test]
    async fn a_session_ends_after_its_lifetime_however_busy() {
        let (clock, sessions) = setup();
        let (token, created) = sessions
            .create("ada@contoso.com", "Ada", "lobby")
            .await
            .unwrap();
        assert_eq!(created.ends_at - created.expires_at, Duration::seconds(240));
        for _ in 0..5 {
            clock.advance(Duration::seconds(50));
            assert!(sessions.touch(&token, "lobby").await.unwrap().is_ok());
        }
        clock.advance(Duration::seconds(50));
        assert_eq!(
            sessions.touch(&token, "lobby").await.unwrap(),
            Err(SessionError::Invalid)
        );
    }

    #[tokio::test]
    async fn signing_out_ends_the_session_and_forged_tokens_are_refused() {
        let (_clock, sessions) = setup();
        let (token, _) = sessions
            .create("ada@contoso.com", "Ada", "lobby")
            .await
            .unwrap();
        sessions.remove(&token).await.unwrap();
        assert_eq!(
            sessions.touch(&token, "lobby").await.unwrap(),
            Err(SessionError::Invalid)
        );
        assert_eq!(
            sessions.touch("forged", "lobby").await.unwrap(),
            Err(SessionError::Invalid)
        );
    }
}
