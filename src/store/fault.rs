//! A store fault simulated on the daemon's own connections: the resilience tests (and a drill on a
//! test system) make the store refuse every write, then clear the fault, without special privileges
//! (no read-only mount, no `chattr`, no full disk needed).
//!
//! On SQLite the fault is its own `PRAGMA query_only`: every write then fails with `SQLITE_READONLY`,
//! the very error a read-only file gives, so the daemon goes through the same error paths as in the
//! field. On PostgreSQL it is `default_transaction_read_only`, the setting of a read-only standby.
//! Either is per connection, so it is applied whenever the pool hands a connection out
//! (`after_connect` for new ones, `before_acquire` for idle ones). Until the knob is first used, the
//! hooks cost one atomic load and send nothing to SQLite.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use futures::future::BoxFuture;
use sqlx::AnyConnection;

use super::Backend;

// 0, the initial state: the knob has never been turned and connections are left as they are.
/// Writes are refused.
const READ_ONLY: u8 = 1;
/// Writes are accepted again (connections that were made read-only must be switched back).
const CLEARED: u8 = 2;

/// The simulated fault, shared by the store's clones and its pool hooks.
#[derive(Debug, Clone)]
pub(crate) struct FaultKnob {
    state: Arc<AtomicU8>,
    backend: Backend,
}

impl FaultKnob {
    /// A knob never turned, for a store on `backend`.
    pub fn new(backend: Backend) -> Self {
        Self {
            state: Arc::default(),
            backend,
        }
    }

    /// Refuse every write from now on (`true`), or accept them again (`false`).
    pub fn set_read_only(&self, read_only: bool) {
        let state = if read_only { READ_ONLY } else { CLEARED };
        self.state.store(state, Ordering::SeqCst);
    }

    /// Brings `conn` in line with the knob; the pool calls this before handing a connection out.
    pub fn apply<'c>(&self, conn: &'c mut AnyConnection) -> BoxFuture<'c, Result<(), sqlx::Error>> {
        let pragma = match (self.state.load(Ordering::SeqCst), self.backend) {
            (READ_ONLY, Backend::Sqlite) => Some("PRAGMA query_only = ON"),
            (CLEARED, Backend::Sqlite) => Some("PRAGMA query_only = OFF"),
            (READ_ONLY, Backend::Postgres) => Some("SET default_transaction_read_only = on"),
            (CLEARED, Backend::Postgres) => Some("SET default_transaction_read_only = off"),
            _untouched => None,
        };
        Box::pin(async move {
            if let Some(pragma) = pragma {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
            Ok(())
        })
    }
}
