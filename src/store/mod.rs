//! Durable state in SQLite: held jobs, the action queue, intake dedupe, subscription state, audit log.
//!
//! One [`Store`] (a small connection pool) serves the whole daemon. The tables, described in
//! `migrations/0001_initial.sql`:
//!
//! - `held_jobs` — one row per print task intake learned of ([`held_jobs`](self::held_jobs)); its
//!   `state` goes `held` → `acting` → `ended`, and never back from `ended` (a release Graph refused
//!   while the task is still `processing` returns `acting` → `held`: [`Store::return_to_held`]).
//! - `intake_claims` — short leases so two intake paths do not both look up the same new task.
//! - `actions` — the durable action queue ([`actions`](self::actions)), with the write-ahead step of
//!   [`crate::job::Step`].
//! - `inbox` — change notifications persisted before the webhook answers 202 ([`inbox`](self::inbox)).
//! - `subscription` — our Graph subscription and its `clientState` ([`subscription`](self::subscription)).
//! - `audit` — append-only log of what happened to each job ([`audit`](self::audit)).
//!
//! Beside the database, `pullprintd run` holds an exclusive lock file ([`StoreLock`]): one daemon per
//! store.
//!
//! Invariants the store enforces, in SQL where it can:
//! - at most one unfinished action per task (a partial unique index);
//! - enqueueing an action flips its job from `held` to `acting` in the same transaction, and finishing
//!   it ends the job and appends the audit record in the same transaction: a job is settled once;
//! - every commit is durable before it returns (WAL with `synchronous = FULL`), so an action
//!   acknowledged to a person survives a crash or power loss;
//! - time comes from the caller's injected clock, never from SQLite.
//!
//! The SQL is kept portable (`$n` parameters, `ON CONFLICT`, `RETURNING`, partial indexes) so a
//! PostgreSQL backend can follow; SQLite-only settings live in [`Store::open`] and [`Store::write`].

mod actions;
mod audit;
mod error;
mod fault;
mod held_jobs;
mod inbox;
mod lock;
pub mod model;
mod subscription;
mod timestamp;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use sqlx::Row as _;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};

pub use actions::{Closed, EnqueueError};
pub use error::StoreError;
pub use held_jobs::OurRedirect;
pub use lock::{LockError, StoreLock};
// The job's records are the store's API too: callers may name them from either module.
use crate::graph::PrintJobConfiguration;
pub use crate::job::{
    Action, ActionId, ActionKind, DiscoveredVia, HeldJob, JobState, NewAction, NewHeldJob, Outcome,
    TextEnum,
};
pub use model::{
    AuditEvent, AuditFilter, AuditRecord, InboxItem, Inserted, MarkedGone, Subscription,
};

/// The file name [`Store::open_in`] uses inside a directory.
pub const DEFAULT_FILE_NAME: &str = "pullprintd.db";

/// The durable store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// For error messages.
    path: PathBuf,
    /// The simulated fault of [`Store::simulate_read_only`].
    fault: fault::FaultKnob,
}

impl Store {
    /// Opens (creating it if needed) the store at `path` and brings its schema up to date. The parent
    /// directory must exist: it is not created, so a mistyped `[store] path` is reported, not obeyed.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            // WAL: readers (station lists) never wait for the writer (the executor).
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk before it returns, even across power loss; an action is
            // acknowledged to a person only after its commit.
            .synchronous(SqliteSynchronous::Full)
            // SQLite allows one writer; others wait this long instead of failing at once.
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let fault = fault::FaultKnob::default();
        let (on_connect, on_acquire) = (fault.clone(), fault.clone());
        let pool = SqlitePoolOptions::new()
            // A few readers plus the writer; more would only queue on SQLite's single write lock.
            .max_connections(4)
            .after_connect(move |conn, _| on_connect.apply(conn))
            .before_acquire(move |conn, _| {
                let applied = on_acquire.apply(conn);
                Box::pin(async move { applied.await.map(|()| true) })
            })
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open {
                path: path.clone(),
                source,
            })?;
        sqlx::migrate!()
            .run(&pool)
            .await
            .map_err(|source| StoreError::Migrate {
                path: path.clone(),
                source,
            })?;
        Ok(Self { pool, path, fault })
    }

    /// Makes every later write fail as on a read-only store file (`SQLITE_READONLY`), or clears that.
    /// For the resilience tests and drills: the daemon must refuse new work clearly and lose nothing
    /// already accepted. Connections busy at the call keep their state until they are next handed out.
    #[doc(hidden)]
    pub fn simulate_read_only(&self, read_only: bool) {
        self.fault.set_read_only(read_only);
    }

    /// Opens the store in `dir` under [`DEFAULT_FILE_NAME`]: for tests and the demo.
    pub async fn open_in(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(dir.as_ref().join(DEFAULT_FILE_NAME)).await
    }

    /// The path the store was opened at.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes every connection, waiting for them; for an orderly shutdown.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Proves the store takes writes (readiness): rewrites one probe row in a committed transaction.
    pub async fn check_writable(&self, now: time::OffsetDateTime) -> Result<(), StoreError> {
        let mut tx = self.write("probing that the store is writable").await?;
        sqlx::query(
            "INSERT INTO health_probe (slot, checked_at) VALUES (1, $1) \
             ON CONFLICT (slot) DO UPDATE SET checked_at = excluded.checked_at",
        )
        .bind(timestamp::encode(now))
        .execute(&mut *tx)
        .await
        .map_err(StoreError::db("probing that the store is writable"))?;
        tx.commit()
            .await
            .map_err(StoreError::db("probing that the store is writable"))
    }

    /// Starts a write transaction. `BEGIN IMMEDIATE` (SQLite-specific) takes the write lock up front,
    /// so a transaction that reads then writes waits for the busy timeout instead of failing with
    /// SQLITE_BUSY when another writer got in between.
    async fn write(
        &self,
        doing: &'static str,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(StoreError::db(doing))
    }
}

/// Reading typed columns, reporting a bad value as [`StoreError::Corrupt`] with its column.
pub(crate) trait RowExt {
    /// A non-null TEXT column.
    fn text(&self, column: &'static str) -> Result<String, StoreError>;
    /// A nullable TEXT column.
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError>;
    /// A non-null INTEGER column.
    fn int(&self, column: &'static str) -> Result<i64, StoreError>;
    /// A non-null timestamp column.
    fn time(&self, column: &'static str) -> Result<time::OffsetDateTime, StoreError> {
        timestamp::decode(column, &self.text(column)?)
    }
    /// A nullable timestamp column.
    fn opt_time(&self, column: &'static str) -> Result<Option<time::OffsetDateTime>, StoreError> {
        self.opt_text(column)?
            .map(|text| timestamp::decode(column, &text))
            .transpose()
    }
    /// A nullable JSON column, read as `T` (a print configuration).
    fn opt_json<T: DeserializeOwned>(&self, column: &'static str) -> Result<Option<T>, StoreError> {
        self.opt_text(column)?
            .map(|text| {
                serde_json::from_str(&text).map_err(|err| StoreError::Corrupt {
                    what: format!("{column} that does not parse ({err})"),
                })
            })
            .transpose()
    }
    /// A non-null JSON column, read as `T` (a print configuration).
    fn json<T: DeserializeOwned>(&self, column: &'static str) -> Result<T, StoreError> {
        self.opt_json(column)?.ok_or_else(|| StoreError::Corrupt {
            what: format!("{column} = NULL"),
        })
    }
    /// A non-null word of a [`TextEnum`].
    fn word<E: TextEnum>(&self, column: &'static str) -> Result<E, StoreError> {
        let text = self.text(column)?;
        E::parse(&text).ok_or_else(|| StoreError::Corrupt {
            what: format!("{column} = {text:?}"),
        })
    }
    /// A nullable word of a [`TextEnum`].
    fn opt_word<E: TextEnum>(&self, column: &'static str) -> Result<Option<E>, StoreError> {
        self.opt_text(column)?
            .map(|text| {
                E::parse(&text).ok_or_else(|| StoreError::Corrupt {
                    what: format!("{column} = {text:?}"),
                })
            })
            .transpose()
    }
}

impl RowExt for SqliteRow {
    fn text(&self, column: &'static str) -> Result<String, StoreError> {
        self.try_get(column).map_err(|err| corrupt(column, &err))
    }
    fn opt_text(&self, column: &'static str) -> Result<Option<String>, StoreError> {
        self.try_get(column).map_err(|err| corrupt(column, &err))
    }
    fn int(&self, column: &'static str) -> Result<i64, StoreError> {
        self.try_get(column).map_err(|err| corrupt(column, &err))
    }
}

fn corrupt(column: &str, err: &sqlx::Error) -> StoreError {
    StoreError::Corrupt {
        what: format!("an unreadable {column} ({err})"),
    }
}

/// A print configuration as stored: Graph's `printJobConfiguration` JSON.
pub(crate) fn json_text(configuration: &PrintJobConfiguration) -> String {
    // Cannot fail: every field serialises as a plain JSON value and the map of other properties has
    // string keys; the fallback only keeps this total.
    serde_json::to_string(configuration).unwrap_or_else(|_| "{}".to_owned())
}
