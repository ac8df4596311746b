//! Store errors: each keeps its cause and says what to check.
//!
//! SQLite reports a read-only file, a full disk or an unopenable path through result codes, and
//! PostgreSQL a refused login, a missing database or a read-only server through SQLSTATEs; they are
//! turned into a sentence a person can act on ([`StoreError`]'s `Display`), and the cause chain is
//! kept for `Debug` and logs.

use std::error::Error as _;
use std::fmt;
use std::path::PathBuf;

use crate::job::ActionId;

/// Everything that can go wrong in the store.
#[derive(thiserror::Error)]
pub enum StoreError {
    /// The database file could not be created or opened.
    #[error(
        "cannot create the store at {}: {source}{} — check [store] path and that the directory is writable",
        path.display(),
        hint(source)
    )]
    Open {
        /// The configured path.
        path: PathBuf,
        /// What SQLite said.
        source: sqlx::Error,
    },
    /// The PostgreSQL database could not be reached or logged into.
    #[error(
        "cannot connect to the store at {url}: {source}{}",
        connect_hint(source)
    )]
    Connect {
        /// The configured URL, without its password.
        url: String,
        /// What the driver said.
        source: sqlx::Error,
    },
    /// The schema could not be brought up to date.
    #[error("cannot prepare the store at {store}: {source}{}", hint(source))]
    Migrate {
        /// The configured path or URL (without its password).
        store: String,
        /// What the migration said.
        source: sqlx::migrate::MigrateError,
    },
    /// The schema has a migration this binary does not know: a newer pullprintd wrote it.
    #[error(
        "the store at {store} was upgraded by a newer pullprintd (it has schema migration {version}; \
         this version knows up to {known}): run that newer version, or restore the backup taken \
         before the upgrade"
    )]
    Newer {
        /// The configured path or URL (without its password).
        store: String,
        /// The unknown migration.
        version: i64,
        /// The newest migration this binary has.
        known: i64,
    },
    /// A read or write failed.
    #[error("the store failed while {doing}: {source}{}", hint(source))]
    Database {
        /// What the store was doing, for the message.
        doing: &'static str,
        /// What SQLite said.
        source: sqlx::Error,
    },
    /// A stored value this version cannot read.
    #[error(
        "the store holds {what}, which this version of pullprintd cannot read — was it written by a newer version?"
    )]
    Corrupt {
        /// The column and value.
        what: String,
    },
    /// The action is unknown or already finished: it cannot be changed any more.
    #[error(
        "action {0} is not in the queue (unknown, already finished, or taken over by another \
         instance after this one's lease lapsed)"
    )]
    ActionNotPending(ActionId),
}

// Debug prints the message and the cause chain, so `main` can log one line that says everything.
impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut cause = self.source();
        while let Some(err) = cause {
            write!(f, "\n  caused by: {err}")?;
            cause = err.source();
        }
        Ok(())
    }
}

impl StoreError {
    /// Whether the store could not be reached at all (the server is down, refuses connections or
    /// does not answer): the daemon cannot start now but may later without a change (exit 69),
    /// unlike a wrong setting (exit 78).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Connect { source, .. } => {
                matches!(
                    source,
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::Tls(_)
                ) || pg_code(source).is_some_and(|code| busy_server(&code))
            }
            _ => false,
        }
    }

    /// A [`StoreError::Database`] for `doing`; for `map_err`.
    pub(crate) fn db(doing: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { doing, source }
    }
}

/// The database's own error behind `err`, if the database reported one.
fn database_error<'e>(
    err: &'e (dyn std::error::Error + 'static),
) -> Option<&'e (dyn sqlx::error::DatabaseError + 'static)> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(sqlx::Error::Database(db)) = err.downcast_ref::<sqlx::Error>() {
            return Some(&**db);
        }
        current = err.source();
    }
    None
}

/// The SQLite primary result code behind an error, if SQLite reported one.
fn sqlite_code(err: &(dyn std::error::Error + 'static)) -> Option<i64> {
    let db = database_error(err)?;
    db.try_downcast_ref::<sqlx::sqlite::SqliteError>()?;
    // sqlx reports SQLite's extended code; its low byte is the primary code.
    db.code()
        .and_then(|code| code.parse::<i64>().ok())
        .map(|c| c & 0xff)
}

/// Whether PostgreSQL said the table does not exist (SQLSTATE 42P01).
pub(crate) fn is_undefined_table(err: &sqlx::Error) -> bool {
    pg_code(err).as_deref() == Some("42P01")
}

/// The SQLSTATE a PostgreSQL server answered with, if it did.
fn pg_code(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let db = database_error(err)?;
    db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()?;
    db.code().map(|code| code.into_owned())
}

/// Whether a SQLSTATE says the server cannot take us now (shutting down, starting, out of
/// connections, connection failure) rather than that a setting is wrong.
fn busy_server(code: &str) -> bool {
    code.starts_with("57P") || code.starts_with("08") || code == "53300"
}

/// A hint for the failures to connect to PostgreSQL a person can fix.
fn connect_hint(err: &(dyn std::error::Error + 'static)) -> &'static str {
    if let Some(sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut) = err.downcast_ref::<sqlx::Error>()
    {
        return " (is PostgreSQL running and reachable from here at the host and port of [store] url? \
                 check the server, the firewall and the URL)";
    }
    match pg_code(err).as_deref() {
        Some("28P01" | "28000") => {
            " (the server refused the login: check the user and password in [store] url, and \
             pg_hba.conf on the server)"
        }
        Some("3D000") => {
            " (the database does not exist: create it, e.g. `createdb -O USER DATABASE`, or fix the \
             database name in [store] url)"
        }
        Some("42501") => {
            " (the user may not use this database: GRANT it CREATE and CONNECT, or use its owner)"
        }
        Some(code) if busy_server(code) => {
            " (the server is shutting down, starting up or out of connections: try again shortly)"
        }
        _ => "",
    }
}

/// A hint for the SQLite (and PostgreSQL) failures a person can fix.
fn hint(err: &(dyn std::error::Error + 'static)) -> &'static str {
    match pg_code(err).as_deref() {
        Some("25006") => {
            return " (the database is read-only: is [store] url pointing at a standby? point it \
                    at the primary)";
        }
        Some("53100") => return " (the database server's disk is full: free space there)",
        Some("42501") => {
            return " (the database user lacks a privilege: GRANT it on the database or use its owner)";
        }
        _ => {}
    }
    const SQLITE_PERM: i64 = 3;
    const SQLITE_READONLY: i64 = 8;
    const SQLITE_IOERR: i64 = 10;
    const SQLITE_CORRUPT: i64 = 11;
    const SQLITE_FULL: i64 = 13;
    const SQLITE_CANTOPEN: i64 = 14;
    const SQLITE_NOTADB: i64 = 26;
    match sqlite_code(err) {
        Some(SQLITE_READONLY | SQLITE_PERM) => {
            " (the store file or its directory is read-only: give the pullprintd user write access)"
        }
        Some(SQLITE_FULL) => " (the disk holding the store is full: free space)",
        Some(SQLITE_IOERR) => " (the disk reported an I/O error)",
        Some(SQLITE_CANTOPEN) => " (the file cannot be opened: does the directory exist?)",
        Some(SQLITE_CORRUPT | SQLITE_NOTADB) => {
            " (the file is not a pullprintd store or is damaged: restore it from a backup)"
        }
        _ => "",
    }
}
