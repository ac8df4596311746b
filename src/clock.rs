//! Time, injected.
//!
//! Everything that decides by the wall clock (token expiry, subscription renewal, hold timeouts,
//! session inactivity, lockouts) asks a [`Clock`] instead of calling `OffsetDateTime::now_utc()`, so
//! tests can move time forward by days without waiting. Sleeping for back-off is left to tokio's
//! timer, which tests control with `tokio::time::pause()`.

use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use time::{Duration, OffsetDateTime};

/// A source of the current UTC time.
pub trait Clock: Send + Sync + Debug {
    /// The current time, in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// A clock shared between the parts of the daemon.
pub type SharedClock = Arc<dyn Clock>;

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

impl SystemClock {
    /// The system clock as a [`SharedClock`].
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

/// A clock that only moves when told to; for tests and the emulator's control API.
#[derive(Debug)]
pub struct ManualClock {
    // A std mutex: the critical section is a copy of 16 bytes and never awaits.
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A manual clock starting at `start`.
    pub fn new(start: OffsetDateTime) -> Arc<Self> {
        Arc::new(Self {
            now: Mutex::new(start),
        })
    }

    /// Moves the clock forward (or backward, with a negative duration).
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *now += by;
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A clock that follows the system clock plus an adjustable offset: the emulator runs on real time
/// but its control API can jump ahead (to expire subscriptions or tokens) without stopping time.
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset: Mutex<Duration>,
}

impl OffsetClock {
    /// A clock that starts at the system time.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Jumps ahead by `by`.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner) += by;
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc() + *self.offset.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::hours(4));
        assert_eq!(clock.now(), start + Duration::hours(4));
    }

    #[test]
    fn an_offset_clock_runs_ahead_of_the_system_clock_by_its_offset() {
        let clock = OffsetClock::new();
        clock.advance(Duration::days(3));
        let ahead = clock.now() - OffsetDateTime::now_utc();
        assert!(ahead > Duration::days(3) - Duration::minutes(1), "{ahead}");
    }
}
