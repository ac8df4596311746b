//! Store errors: each keeps its cause and says what to check.
//!
//! SQLite reports a read-only file, a full disk or an unopenable path through result codes; they are
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
    /// The schema could not be brought up to date.
    #[error("cannot prepare the store at {}: {source}{}", path.display(), hint(source))]
    Migrate {
        /// The configured path.
        path: PathBuf,
        /// What the migration said.
        source: sqlx::migrate::MigrateError,
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
    #[error("action {0} is not in the queue (unknown, or already finished)")]
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
    /// A [`StoreError::Database`] for `doing`; for `map_err`.
    pub(crate) fn db(doing: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { doing, source }
    }
}

/// The SQLite primary result code behind an error, if SQLite reported one.
fn sqlite_code(err: &(dyn std::error::Error + 'static)) -> Option<i64> {
    let mut current = Some(err);
    while let Some(err) = current {
        if let Some(sqlx::Error::Database(db)) = err.downcast_ref::<sqlx::Error>() {
            // sqlx reports SQLite's extended code; its low byte is the primary code.
            return db
                .code()
                .and_then(|code| code.parse::<i64>().ok())
                .map(|c| c & 0xff);
        }
        current = err.source();
    }
    None
}

/// A hint for the SQLite failures a person can fix.
fn hint(err: &(dyn std::error::Error + 'static)) -> &'static str {
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
