//! The leader lock: which one of the daemons sharing a store runs the work only one may do (the
//! poller, the sweeper, the subscription; see [`crate::leadership`]).
//!
//! On PostgreSQL it is a session advisory lock (`pg_try_advisory_lock`) on a connection of its own,
//! outside the pool: the server releases it when that session ends, so a leader that dies, even by
//! `kill -9`, frees it as soon as the server sees its connection close, with no lease to wait out.
//! On SQLite the store's lock file already makes this daemon the only one: it always leads.

use std::time::Duration;

use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, ConnectOptions as _, Connection as _};

use super::{Backend, RowExt as _, Store, StoreError, StoreLocation};

/// The advisory lock's key: "pullprintd leader" in a number (advisory locks are per database, so
/// stores in different databases of one server do not contend).
const LEADER_KEY: i64 = 0x7075_6c6c_6c65_6164;

/// How long the leader's check of its own session may take before it counts as lost.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// Held while this daemon leads; dropping it gives the leadership up.
#[derive(Debug)]
pub struct LeaderLock {
    /// The session holding the advisory lock; `None` on SQLite.
    session: Option<AnyConnection>,
}

impl Store {
    /// Takes the leadership if no other daemon holds it: `Some` when this daemon now leads.
    pub async fn try_lead(&self) -> Result<Option<LeaderLock>, StoreError> {
        let StoreLocation::Server(url) = &self.location else {
            return Ok(Some(LeaderLock { session: None }));
        };
        debug_assert_eq!(self.backend, Backend::Postgres);
        const DOING: &str = "taking the leadership";
        let options = AnyConnectOptions::from_url(url.url()).map_err(StoreError::db(DOING))?;
        let mut session = options.connect().await.map_err(StoreError::db(DOING))?;
        let row = sqlx::query(
            "SELECT CAST(CASE WHEN pg_try_advisory_lock($1) THEN 1 ELSE 0 END AS BIGINT) AS taken",
        )
        .bind(LEADER_KEY)
        .fetch_one(&mut session)
        .await
        .map_err(StoreError::db(DOING))?;
        if row.int("taken")? == 1 {
            Ok(Some(LeaderLock {
                session: Some(session),
            }))
        } else {
            let _ = session.close().await;
            Ok(None)
        }
    }
}

impl LeaderLock {
    /// Whether the lock is still held: its session still answers. A leader whose session broke
    /// (the server restarted, the network went) must stop leading at once, since the server may
    /// already have given the lock to another daemon.
    pub async fn still_held(&mut self) -> bool {
        let Some(session) = self.session.as_mut() else {
            return true;
        };
        matches!(
            tokio::time::timeout(CHECK_TIMEOUT, session.ping()).await,
            Ok(Ok(()))
        )
    }

    /// Gives the leadership up at once (an orderly shutdown), rather than when the session ends.
    /// The lock is unlocked explicitly before the session closes: the server answers the unlock
    /// once the lock is free, while closing returns before the server's session has ended, so
    /// another daemon asking right after could still find the lock taken.
    pub async fn release(self) {
        if let Some(mut session) = self.session {
            let _ = sqlx::query("SELECT pg_advisory_unlock($1)")
                .bind(LEADER_KEY)
                .execute(&mut session)
                .await;
            let _ = session.close().await;
        }
    }
}
