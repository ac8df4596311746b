//! The store's exclusive lock: one daemon per store.
//!
//! Two daemons on one store (an overlapping container rollout on the same volume, a second
//! `pullprintd run` by mistake) would both drive the same action queue, and a redirect could be sent
//! twice. So `pullprintd run` takes an exclusive `flock` on a lock file beside the database
//! (`state.db.lock`) before it opens the store, and holds it until it exits. A second daemon fails at
//! once with a message naming the store and the holder's PID (exit 75, `EX_TEMPFAIL`: try again once
//! the other one has stopped).
//!
//! The kernel releases an `flock` when its holder dies, even by `kill -9`, so a crash never leaves a
//! stale lock behind; the PID written into the file is only for the message. Tools that read the
//! store without acting (tests, `doctor`) do not take the lock.

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, flock};
use rustix::io::Errno;

/// Held while the daemon runs; dropping it (or the process dying) releases the lock.
#[derive(Debug)]
pub struct StoreLock {
    /// The locked file: the lock lives as long as this descriptor.
    _file: File,
    path: PathBuf,
}

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds it.
    #[error(
        "the store {store} is in use by another pullprintd (PID {holder}, lock file {lock}): two \
         daemons on one store would both carry out its queue. Stop the other one first, or give \
         this one its own [store] path"
    )]
    Held {
        /// The database file.
        store: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// The holder's PID as it wrote it ("unknown" if unreadable).
        holder: String,
    },
    /// The lock file cannot be created or locked.
    #[error(
        "cannot lock the store {store} through {lock}: {source} (check [store] path and its directory's permissions)"
    )]
    Io {
        /// The database file.
        store: PathBuf,
        /// The lock file.
        lock: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

impl StoreLock {
    /// The lock file of the store at `store`: the same path with `.lock` appended.
    pub fn path_for(store: &Path) -> PathBuf {
        let mut name = store.as_os_str().to_owned();
        name.push(".lock");
        PathBuf::from(name)
    }

    /// Takes the lock of the store at `store` without waiting, and writes our PID into it.
    pub fn acquire(store: &Path) -> Result<StoreLock, LockError> {
        let lock = Self::path_for(store);
        let io = |source| LockError::Io {
            store: store.to_path_buf(),
            lock: lock.clone(),
            source,
        };
        // Not truncated on open: the holder's PID must survive a second process opening the file.
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock)
            .map_err(io)?;
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => {}
            Err(Errno::WOULDBLOCK) => {
                let mut holder = String::new();
                let holder = match file.read_to_string(&mut holder) {
                    Ok(_) if !holder.trim().is_empty() => holder.trim().to_owned(),
                    _ => "unknown".to_owned(),
                };
                return Err(LockError::Held {
                    store: store.to_path_buf(),
                    lock,
                    holder,
                });
            }
            Err(errno) => return Err(io(errno.into())),
        }
        file.set_len(0).map_err(io)?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        writeln!(file, "{}", std::process::id()).map_err(io)?;
        file.flush().map_err(io)?;
        Ok(StoreLock {
            _file: file,
            path: lock,
        })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_store_is_refused_naming_the_holder_and_freed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("state.db");
        let first = StoreLock::acquire(&store).unwrap();
        let refused = StoreLock::acquire(&store).unwrap_err();
        let message = refused.to_string();
        assert!(message.contains(&store.display().to_string()), "{message}");
        assert!(
            message.contains(&format!("PID {}", std::process::id())),
            "{message}"
        );
        drop(first);
        StoreLock::acquire(&store).unwrap();
    }
}
