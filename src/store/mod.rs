//! Durable state: held jobs, the action queue, intake dedupe, subscription state, audit log, in
//! SQLite (the embedded default: one daemon) or PostgreSQL (several daemons on one database).
//!
//! One [`Store`] (a small connection pool) serves the whole daemon, whichever database is behind it:
//! the backend is chosen when the store is opened ([`Store::open`] for a SQLite file,
//! [`Store::connect`] for a PostgreSQL URL, [`Store::open_location`] for what `[store]` says) and the
//! rest of the daemon never asks which. The tables, described in `migrations/0001_initial.sql`
//! (PostgreSQL: `migrations/postgres/`, the same tables):
//!
//! - `held_jobs` — one row per print task intake learned of ([`held_jobs`](self::held_jobs)); its
//!   `state` goes `held` → `acting` → `ended`, and never back from `ended` (a release Graph refused
//!   while the task is still `processing` returns `acting` → `held`: [`Store::return_to_held`]).
//! - `intake_claims` — short leases so two intake paths do not both look up the same new task.
//! - `actions` — the durable action queue ([`actions`](self::actions)), with the write-ahead step of
//!   [`crate::job::Step`].
//! - `inbox` — change notifications persisted before the webhook answers 202 ([`inbox`](self::inbox)).
//! - `subscription` — our Graph subscription and its `clientState` ([`subscription`](self::subscription)).
//! - `audit` — append-only log of what happened to each job ([`audit`](self::audit)), and of refused
//!   Entra ID sign-ins (`sign_in_refused`, no job).
//! - `phone_codes`, `phone_logins` — the kiosks' single-use QR codes and the Entra ID sign-ins under way
//!   ([`phone`](self::phone)), on both backends, so a phone's callback may reach another daemon.
//! - `pull_releases` — releases of jobs waiting on pull-print printers, recorded before the call and
//!   settled after it ([`pull`](self::pull)).
//! - `sessions`, `sign_in_guards` — on PostgreSQL only: the stations' sessions and lockout counts.
//!
//! Beside a SQLite database, `pullprintd run` holds an exclusive lock file ([`StoreLock`]): one daemon
//! per store. A PostgreSQL store has no lock file: several daemons share it by design.
//!
//! Invariants the store enforces, in SQL where it can:
//! - at most one unfinished action per task (a partial unique index);
//! - enqueueing an action flips its job from `held` to `acting` in the same transaction, and finishing
//!   it ends the job and appends the audit record in the same transaction: a job is settled once;
//! - write transactions run one at a time, on either backend ([`Store::write`]), so a transaction
//!   that reads then writes sees no other writer in between;
//! - every commit is durable before it returns (SQLite: WAL with `synchronous = FULL`; PostgreSQL:
//!   its default `synchronous_commit`), so an action acknowledged to a person survives a crash;
//! - time comes from the caller's injected clock, never from the database.
//!
//! The SQL is portable (`$n` parameters, `ON CONFLICT`, `RETURNING`, partial indexes, timestamps as
//! fixed-width text) and runs unchanged on both backends through sqlx's `Any` driver; what differs
//! (connection settings, how a write transaction starts, the simulated fault) is in this module and
//! [`fault`], keyed on [`Backend`].

mod actions;
mod audit;
mod error;
mod fault;
mod group_commit;
mod held_jobs;
mod inbox;
mod leader;
mod lock;
pub mod model;
mod phone;
mod pull;
pub mod scratch;
mod sessions;
mod sign_in;
mod subscription;
mod timestamp;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use sqlx::AnyPool;
use sqlx::Row as _;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions as _, Connection as _};

pub use actions::{Closed, EnqueueError};
pub use error::StoreError;
pub use held_jobs::OurRedirect;
pub use inbox::InboxWriter;
pub use leader::LeaderLock;
pub use lock::{LockError, StoreLock};
pub use phone::{CodeUse, PendingLogin};
pub use pull::{PullBegin, PullRelease};
pub use sessions::StoredSession;
// The job's records are the store's API too: callers may name them from either module.
pub use crate::config::{DatabaseUrl, StoreLocation};
use crate::graph::PrintJobConfiguration;
pub use crate::job::{
    Action, ActionId, ActionKind, DiscoveredVia, HeldJob, JobState, NewAction, NewHeldJob, Outcome,
    TextEnum,
};
pub use model::{
    AuditEvent, AuditFilter, AuditRecord, InboxItem, Inserted, JobCursor, MarkedGone, Subscription,
};

/// The file name [`Store::open_in`] uses inside a directory.
pub const DEFAULT_FILE_NAME: &str = "pullprintd.db";

/// The SQLite schema's migrations.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("./migrations");
/// The PostgreSQL schema's migrations: the same tables, in PostgreSQL's types.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("./migrations/postgres");

/// A transaction on the store's database, whichever backend it is.
pub(crate) type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Which database is behind a [`Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file: the embedded default, one daemon.
    Sqlite,
    /// A PostgreSQL database: several daemons may share it.
    Postgres,
}

/// The durable store. Cheap to clone: clones share one connection pool.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    /// Where it is, for error messages.
    location: StoreLocation,
    backend: Backend,
    /// This daemon's name on action leases ([`Store::claim_actions`]).
    instance: Arc<str>,
    /// The simulated fault of [`Store::simulate_read_only`].
    fault: fault::FaultKnob,
    /// SQLite: the executor's step and close writes, committed in groups ([`group_commit`]).
    group: Option<Arc<group_commit::GroupCommit>>,
}

/// The lease owner of every SQLite store: one daemon holds its lock file, so every lease is its own,
/// including those a previous run of it left behind (a restart resumes them at once).
const SQLITE_INSTANCE: &str = "local";

impl Store {
    /// Opens (creating it if needed) the SQLite store at `path` and brings its schema up to date.
    /// The parent directory must exist: it is not created, so a mistyped `[store] path` is
    /// reported, not obeyed.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let path = path.as_ref().to_path_buf();
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // The file name travels as a URL to the Any driver; the settings SqliteConnectOptions
        // would apply itself are pragmas run on every new connection instead (`SQLITE_SETUP`).
        let url = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .to_url_lossy();
        let options = AnyConnectOptions::from_url(&url).map_err(open_error)?;
        let fault = fault::FaultKnob::new(Backend::Sqlite);
        let pool = pool_options(Backend::Sqlite, &fault)
            // A few readers plus the writer; more would only queue on SQLite's single write lock.
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_error)?;
        let location = StoreLocation::File(path);
        migrate(&SQLITE_MIGRATIONS, &pool, &location).await?;
        Ok(Self {
            pool,
            location,
            backend: Backend::Sqlite,
            instance: Arc::from(SQLITE_INSTANCE),
            fault,
            group: Some(group_commit::GroupCommit::new()),
        })
    }

    /// Connects to the PostgreSQL database at `url` and brings its schema up to date (creating it
    /// in an empty database). Several daemons may do this at once: migrations take PostgreSQL's
    /// advisory lock.
    pub async fn connect(url: &DatabaseUrl) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let connect_error = |source| StoreError::Connect {
            url: url.redacted(),
            source,
        };
        let options = AnyConnectOptions::from_url(url.url()).map_err(connect_error)?;
        // One plain connection first: the pool retries a refused connection until its timeout and
        // then reports only the timeout, while this says at once whether the server is reachable,
        // the credentials are right and the database exists.
        sqlx::AnyConnection::connect_with(&options)
            .await
            .map_err(connect_error)?
            .close()
            .await
            .map_err(connect_error)?;
        let fault = fault::FaultKnob::new(Backend::Postgres);
        let pool = pool_options(Backend::Postgres, &fault)
            // Readers, the executor's concurrent actions and the webhook; the server takes many.
            .max_connections(10)
            .connect_with(options)
            .await
            .map_err(connect_error)?;
        let location = StoreLocation::Server(url.clone());
        migrate(&POSTGRES_MIGRATIONS, &pool, &location).await?;
        // Unique per process and per open: a restarted daemon does not mistake its predecessor's
        // leases for its own (they lapse; the action is then settled by reading first).
        let instance = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Ok(Self {
            pool,
            location,
            backend: Backend::Postgres,
            instance: Arc::from(instance),
            fault,
            group: None,
        })
    }

    /// Checks the PostgreSQL database at `url` without changing it (`pullprintd check-config`): that
    /// the server answers, takes the login, has the database, and that no newer pullprintd has
    /// upgraded its schema. The same errors as [`Store::connect`].
    pub async fn check_server(url: &DatabaseUrl) -> Result<(), StoreError> {
        sqlx::any::install_default_drivers();
        let connect_error = |source| StoreError::Connect {
            url: url.redacted(),
            source,
        };
        let options = AnyConnectOptions::from_url(url.url()).map_err(connect_error)?;
        let mut conn = sqlx::AnyConnection::connect_with(&options)
            .await
            .map_err(connect_error)?;
        let newest = sqlx::query(
            "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version DESC LIMIT 1",
        )
        .fetch_optional(&mut conn)
        .await;
        let _ = conn.close().await;
        let known = POSTGRES_MIGRATIONS
            .iter()
            .map(|m| m.version)
            .max()
            .unwrap_or(0);
        match newest {
            Ok(Some(row)) => {
                let version = row.int("version")?;
                if version > known {
                    return Err(StoreError::Newer {
                        store: url.redacted(),
                        version,
                        known,
                    });
                }
                Ok(())
            }
            // No table yet: an empty database, which the daemon prepares on its first start.
            Ok(None) => Ok(()),
            Err(err) if error::is_undefined_table(&err) => Ok(()),
            Err(source) => Err(StoreError::Database {
                doing: "reading the schema's version",
                source,
            }),
        }
    }

    /// Opens the store `[store]` names: [`Store::open`] or [`Store::connect`].
    pub async fn open_location(location: &StoreLocation) -> Result<Self, StoreError> {
        match location {
            StoreLocation::File(path) => Self::open(path).await,
            StoreLocation::Server(url) => Self::connect(url).await,
        }
    }

    /// Makes every later write fail as on a read-only store (SQLite: `SQLITE_READONLY`; PostgreSQL: a
    /// read-only transaction), or clears that. For the resilience tests and drills: the daemon must
    /// refuse new work clearly and lose nothing already accepted. Connections busy at the call keep
    /// their state until they are next handed out.
    #[doc(hidden)]
    pub fn simulate_read_only(&self, read_only: bool) {
        self.fault.set_read_only(read_only);
    }

    /// Opens the SQLite store in `dir` under [`DEFAULT_FILE_NAME`]: for tests and the demo.
    pub async fn open_in(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open(dir.as_ref().join(DEFAULT_FILE_NAME)).await
    }

    /// The SQLite file the store was opened at; `None` for a PostgreSQL store.
    pub fn path(&self) -> Option<&Path> {
        match &self.location {
            StoreLocation::File(path) => Some(path),
            StoreLocation::Server(_) => None,
        }
    }

    /// Where the store is.
    pub fn location(&self) -> &StoreLocation {
        &self.location
    }

    /// Which database is behind the store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// This daemon's name on the leases it takes (`local` on SQLite).
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// This store without group commit: what the writing task and every single write use.
    fn alone(&self) -> Self {
        Self {
            group: None,
            ..self.clone()
        }
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

    /// Starts a write transaction; write transactions run one at a time.
    ///
    /// SQLite: `BEGIN IMMEDIATE` takes the write lock up front, so a transaction that reads then
    /// writes waits for the busy timeout instead of failing with SQLITE_BUSY when another writer got
    /// in between. PostgreSQL: the transaction first locks the one row of `write_turn`, which gives
    /// every daemon on the database the same one-writer-at-a-time rule SQLite has, so no transaction
    /// here needs a retry loop for serialisation failures (writes are a few per job: the lock is
    /// never the bottleneck).
    async fn write(&self, doing: &'static str) -> Result<Tx, StoreError> {
        match self.backend {
            Backend::Sqlite => self
                .pool
                .begin_with("BEGIN IMMEDIATE")
                .await
                .map_err(StoreError::db(doing)),
            Backend::Postgres => {
                let mut tx = self.pool.begin().await.map_err(StoreError::db(doing))?;
                sqlx::query("SELECT slot FROM write_turn WHERE slot = 1 FOR UPDATE")
                    .execute(&mut *tx)
                    .await
                    .map_err(StoreError::db(doing))?;
                Ok(tx)
            }
        }
    }
}

/// The pool settings common to both backends: the per-connection setup and the fault hooks.
fn pool_options(backend: Backend, fault: &fault::FaultKnob) -> AnyPoolOptions {
    let (on_connect, on_acquire) = (fault.clone(), fault.clone());
    AnyPoolOptions::new()
        // A database that does not answer fails a request after this, rather than hanging it.
        .acquire_timeout(Duration::from_secs(10))
        .after_connect(move |conn, _| {
            let on_connect = on_connect.clone();
            Box::pin(async move {
                if backend == Backend::Sqlite {
                    for pragma in SQLITE_SETUP {
                        sqlx::query(pragma).execute(&mut *conn).await?;
                    }
                }
                on_connect.apply(conn).await
            })
        })
        .before_acquire(move |conn, _| {
            let applied = on_acquire.apply(conn);
            Box::pin(async move { applied.await.map(|()| true) })
        })
}

/// Run on every new SQLite connection.
const SQLITE_SETUP: [&str; 4] = [
    // SQLite allows one writer; others wait this long instead of failing at once.
    "PRAGMA busy_timeout = 10000",
    // WAL: readers (station lists) never wait for the writer (the executor).
    "PRAGMA journal_mode = WAL",
    // FULL: a commit is on disk before it returns, even across power loss; an action is
    // acknowledged to a person only after its commit.
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
];

/// Brings the schema at `location` up to date with `migrator`. A database that has a migration
/// this binary does not know was written by a newer pullprintd: that is said as such.
async fn migrate(
    migrator: &Migrator,
    pool: &AnyPool,
    location: &StoreLocation,
) -> Result<(), StoreError> {
    match migrator.run(pool).await {
        Ok(()) => Ok(()),
        Err(MigrateError::VersionMissing(version)) => Err(StoreError::Newer {
            store: location_text(location),
            version,
            known: migrator.iter().map(|m| m.version).max().unwrap_or(0),
        }),
        Err(source) => Err(StoreError::Migrate {
            store: location_text(location),
            source,
        }),
    }
}

/// `location` for a message: the file, or the URL without its password.
fn location_text(location: &StoreLocation) -> String {
    match location {
        StoreLocation::File(path) => path.display().to_string(),
        StoreLocation::Server(url) => url.redacted(),
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

impl RowExt for AnyRow {
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

/// `$from, $from+1, …`: the numbered parameters of `count` values bound from `$from` on, for an
/// `IN (…)` list or a multi-row `VALUES` (both backends number parameters this way through sqlx's
/// `Any` driver).
pub(crate) fn placeholders(from: usize, count: usize) -> String {
    (from..from + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A print configuration as stored: Graph's `printJobConfiguration` JSON.
pub(crate) fn json_text(configuration: &PrintJobConfiguration) -> String {
    // Cannot fail: every field serialises as a plain JSON value and the map of other properties has
    // string keys; the fallback only keeps this total.
    serde_json::to_string(configuration).unwrap_or_else(|_| "{}".to_owned())
}
