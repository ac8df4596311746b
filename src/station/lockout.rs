//! Sign-in lockout: after repeated failures, a card or user is refused for a while.
//!
//! Keyed by what was tried (a card number, or a lower-cased UPN), not by station, so walking to
//! another kiosk does not reset the count. Kept in memory: a restart forgets lockouts, which is
//! acceptable because argon2 already makes each guess slow and a restart is visible to the
//! administrator. Every lockout is logged (without the PIN).

use std::collections::HashMap;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;

/// How many failures lock out, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures that trigger a lockout.
    pub max_failures: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// How long a lockout lasts.
    pub lockout: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
            lockout: Duration::minutes(5),
        }
    }
}

#[derive(Debug, Default)]
struct Record {
    failures: Vec<OffsetDateTime>,
    locked_until: Option<OffsetDateTime>,
}

/// Counts failures per subject and says who is locked out.
#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    clock: SharedClock,
    // A std mutex: short critical sections, never held across an await.
    records: Mutex<HashMap<String, Record>>,
}

/// The subject is locked out; try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedOut {
    /// Seconds until the lockout ends (at least 1), for `Retry-After`.
    pub retry_after_secs: u64,
}

impl Lockout {
    /// A lockout tracker with the given policy and clock.
    pub fn new(policy: LockoutPolicy, clock: SharedClock) -> Self {
        Self {
            policy,
            clock,
            records: Mutex::new(HashMap::new()),
        }
    }

    fn key(subject: &str) -> String {
        subject.trim().to_lowercase()
    }

    /// Refuses a sign-in attempt before it is checked, while the subject is locked out.
    pub fn check(&self, subject: &str) -> Result<(), LockedOut> {
        let now = self.clock.now();
        let records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match records
            .get(&Self::key(subject))
            .and_then(|r| r.locked_until)
        {
            Some(until) if until > now => Err(LockedOut {
                retry_after_secs: u64::try_from((until - now).whole_seconds())
                    .unwrap_or(0)
                    .max(1),
            }),
            _ => Ok(()),
        }
    }

    /// Records a failed attempt; returns the lockout it caused, if any.
    pub fn fail(&self, subject: &str) -> Option<LockedOut> {
        let now = self.clock.now();
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Forget quiet subjects so the map cannot grow without bound under a guessing attack on
        // many different cards.
        records.retain(|_, r| {
            r.locked_until.is_some_and(|u| u > now)
                || r.failures
                    .last()
                    .is_some_and(|t| now - *t < self.policy.window)
        });
        let record = records.entry(Self::key(subject)).or_default();
        record.failures.retain(|t| now - *t < self.policy.window);
        record.failures.push(now);
        if record.failures.len() >= self.policy.max_failures as usize {
            record.failures.clear();
            let until = now + self.policy.lockout;
            record.locked_until = Some(until);
            tracing::warn!(
                subject = %redact_subject(subject),
                minutes = self.policy.lockout.whole_minutes(),
                "sign-in locked out after repeated failures"
            );
            return Some(LockedOut {
                retry_after_secs: u64::try_from(self.policy.lockout.whole_seconds()).unwrap_or(1),
            });
        }
        None
    }

    /// Clears the failures of a subject that signed in successfully.
    pub fn succeed(&self, subject: &str) {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&Self::key(subject));
    }
}

/// A card number is a credential: logs show only its last four characters.
fn redact_subject(subject: &str) -> String {
    if subject.contains('@') {
        return subject.to_owned();
    }
    let chars: Vec<char> = subject.chars().collect();
    let keep = chars.len().saturating_sub(4);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < keep { '*' } else { *c })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;

    fn setup() -> (std::sync::Arc<ManualClock>, Lockout) {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        let lockout = Lockout::new(LockoutPolicy::default(), clock.clone());
        (clock, lockout)
    }

    #[test]
    fn the_fifth_failure_locks_out_for_five_minutes() {
        let (clock, lockout) = setup();
        for _ in 0..4 {
            assert!(lockout.fail("ada@contoso.com").is_none());
            assert!(lockout.check("ada@contoso.com").is_ok());
        }
        let locked = lockout.fail("ADA@contoso.com").unwrap();
        assert_eq!(locked.retry_after_secs, 300);
        clock.advance(Duration::minutes(2));
        assert_eq!(
            lockout
                .check("ada@contoso.com")
                .unwrap_err()
                .retry_after_secs,
            180
        );
        clock.advance(Duration::minutes(3));
        assert!(lockout.check("ada@contoso.com").is_ok());
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let (clock, lockout) = setup();
        for _ in 0..4 {
            lockout.fail("1234");
        }
        clock.advance(Duration::minutes(16));
        assert!(lockout.fail("1234").is_none());
        assert!(lockout.check("1234").is_ok());
    }

    #[test]
    fn a_success_resets_the_count() {
        let (_clock, lockout) = setup();
        for _ in 0..4 {
            lockout.fail("1234");
        }
        lockout.succeed("1234");
        assert!(lockout.fail("1234").is_none());
    }

    #[test]
    fn one_subject_locked_out_does_not_lock_another() {
        let (_clock, lockout) = setup();
        for _ in 0..5 {
            lockout.fail("1111");
        }
        assert!(lockout.check("1111").is_err());
        assert!(lockout.check("2222").is_ok());
    }

    #[test]
    fn card_numbers_are_redacted_in_logs() {
        assert_eq!(redact_subject("0004521337"), "******1337");
        assert_eq!(redact_subject("ada@contoso.com"), "ada@contoso.com");
    }
}
