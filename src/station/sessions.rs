//! Station sessions: an opaque random token per sign-in, bound to the station it was made at,
//! ending after a period of inactivity or, however busy, after an absolute lifetime.
//!
//! Only the SHA-256 of a token is kept, so a memory dump does not hand out live sessions, and the
//! map lookup (not constant-time) only ever compares digests of 256-bit random values. A token is
//! accepted only together with its station's key ([`super::state::StationState::session`]). Sessions
//! live in memory: a restart signs everyone out, which at a printer is harmless.

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::secrets::{random_token, token_digest};

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
}

/// All live sessions.
#[derive(Debug)]
pub struct Sessions {
    idle_timeout: Duration,
    lifetime: Duration,
    clock: SharedClock,
    by_digest: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Sessions that end after `idle_timeout` without use, and `lifetime` after sign-in.
    pub fn new(idle_timeout: Duration, lifetime: Duration, clock: SharedClock) -> Self {
        Self {
            idle_timeout,
            lifetime,
            clock,
            by_digest: Mutex::new(HashMap::new()),
        }
    }

    /// How long a session lasts without use.
    pub fn idle_timeout(&self) -> Duration {
        self.idle_timeout
    }

    /// Signs a user in at a station; returns the token to hand to the station and the session.
    pub fn create(&self, upn: &str, display_name: &str, station_id: &str) -> (String, Session) {
        let token = random_token();
        let now = self.clock.now();
        let ends_at = now + self.lifetime;
        let session = Session {
            upn: upn.to_owned(),
            display_name: display_name.to_owned(),
            station_id: station_id.to_owned(),
            expires_at: (now + self.idle_timeout).min(ends_at),
            ends_at,
        };
        let mut map = self
            .by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        map.retain(|_, s| s.expires_at > now);
        map.insert(token_digest(&token), session.clone());
        (token, session)
    }

    /// Checks a token presented by `station_id` and extends the session (never past its end).
    pub fn touch(&self, token: &str, station_id: &str) -> Result<Session, SessionError> {
        let now = self.clock.now();
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
        if session.station_id != station_id {
            return Err(SessionError::OtherStation);
        }
        session.expires_at = (now + self.idle_timeout).min(session.ends_at);
        Ok(session.clone())
    }

    /// Signs out; unknown tokens are ignored.
    pub fn remove(&self, token: &str) {
        self.by_digest
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&token_digest(token));
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

    #[test]
    fn a_session_is_valid_at_its_station_and_extended_by_use() {
        let (clock, sessions) = setup();
        let (token, _) = sessions.create("ada@contoso.com", "Ada", "lobby");
        clock.advance(Duration::seconds(50));
        assert_eq!(
            sessions.touch(&token, "lobby").unwrap().upn,
            "ada@contoso.com"
        );
        clock.advance(Duration::seconds(50));
        assert!(
            sessions.touch(&token, "lobby").is_ok(),
            "use extends the session"
        );
    }

    #[test]
    fn a_session_expires_after_inactivity() {
        let (clock, sessions) = setup();
        let (token, _) = sessions.create("ada@contoso.com", "Ada", "lobby");
        clock.advance(Duration::seconds(61));
        assert_eq!(sessions.touch(&token, "lobby"), Err(SessionError::Invalid));
    }

    #[test]
    fn a_session_is_refused_at_another_station() {
        let (_clock, sessions) = setup();
        let (token, _) = sessions.create("ada@contoso.com", "Ada", "lobby");
        assert_eq!(
            sessions.touch(&token, "floor2"),
            Err(SessionError::OtherStation)
        );
    }

    #[test]
    fn a_session_ends_after_its_lifetime_however_busy() {
        let (clock, sessions) = setup();
        let (token, created) = sessions.create("ada@contoso.com", "Ada", "lobby");
        assert_eq!(created.ends_at - created.expires_at, Duration::seconds(240));
        for _ in 0..5 {
            clock.advance(Duration::seconds(50));
            assert!(sessions.touch(&token, "lobby").is_ok());
        }
        clock.advance(Duration::seconds(50));
        assert_eq!(sessions.touch(&token, "lobby"), Err(SessionError::Invalid));
    }

    #[test]
    fn signing_out_ends_the_session_and_forged_tokens_are_refused() {
        let (_clock, sessions) = setup();
        let (token, _) = sessions.create("ada@contoso.com", "Ada", "lobby");
        sessions.remove(&token);
        assert_eq!(sessions.touch(&token, "lobby"), Err(SessionError::Invalid));
        assert_eq!(
            sessions.touch("forged", "lobby"),
            Err(SessionError::Invalid)
        );
    }
}
