//! Sign-in lockout: after repeated failures, a card or a person is refused for a while, and for longer
//! each time it happens again.
//!
//! Invariants:
//! - an attempt is **reserved** before its credential is checked ([`Lockout::reserve`]): the failures
//!   counted plus the attempts under way never exceed the limit, so a burst of simultaneous guesses
//!   gets at most `max_failures` PIN checks, however many arrive at once; the rest answer 429;
//! - a success is **re-checked** when it settles: a subject locked meanwhile stays locked;
//! - subjects are keyed by kind (`card:…`, `upn:…`), so card guesses cannot lock a person's PIN
//!   sign-in and the other way round; walking to another kiosk does not reset the count;
//! - lockouts escalate: `first_lockout` at the first lock, doubling at each further lock up to
//!   `max_lockout`; the level is forgotten after a success, `pullprintd unlock`, or `max_lockout` of
//!   quiet;
//! - an attempt dropped without being settled (a cancelled request) counts as a failure;
//! - memory is bounded: quiet subjects are pruned (amortised, not on every failure).
//!
//! On SQLite (one daemon) kept in memory: a restart forgets lockouts, which a restart makes visible
//! to the administrator. On PostgreSQL ([`Lockout::shared_through`]) every subject's record lives in
//! the store and is changed under its row lock, so the daemons behind a load balancer share one count:
//! guesses spread over them are reserved, counted and locked out exactly as at one. A reservation of
//! a daemon that died mid-check is forgotten after [`RESERVATION_TTL`].
//! Every lockout is logged (without the PIN, and with card numbers redacted).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::store::{Backend, Store};

/// How long a reservation kept in a shared store counts without being settled: far longer than any
/// PIN check, so only a daemon that died mid-check leaves one behind.
pub const RESERVATION_TTL: Duration = Duration::minutes(2);

/// The attempts under way on a count (a lockout record, a failure budget): when each was reserved.
/// In memory they only count; in a shared store each is returned by its own time, and one left by a
/// daemon that died mid-check lapses after [`RESERVATION_TTL`].
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(super) struct Reservations(Vec<OffsetDateTime>);

impl Reservations {
    pub(super) fn len(&self) -> u32 {
        u32::try_from(self.0.len()).unwrap_or(u32::MAX)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn reserve(&mut self, now: OffsetDateTime) {
        self.0.push(now);
    }

    /// Returns the reservation made at `at`, or (in memory, or when it lapsed) the oldest one.
    pub(super) fn give_back(&mut self, at: Option<OffsetDateTime>) {
        let index = at
            .and_then(|at| self.0.iter().position(|t| *t == at))
            .or_else(|| (!self.0.is_empty()).then_some(0));
        if let Some(index) = index {
            self.0.remove(index);
        }
    }

    /// Forgets the reservations older than [`RESERVATION_TTL`] (read from a shared store).
    pub(super) fn forget_lapsed(&mut self, now: OffsetDateTime) {
        self.0.retain(|at| now - *at < RESERVATION_TTL);
    }
}

/// How many failures lock out, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    /// Failures that trigger a lockout.
    pub max_failures: u32,
    /// Failures older than this are forgotten.
    pub window: Duration,
    /// How long the first lockout lasts; each further one doubles.
    pub first_lockout: Duration,
    /// The longest a lockout lasts.
    pub max_lockout: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::minutes(15),
            first_lockout: Duration::minutes(5),
            max_lockout: Duration::hours(24),
        }
    }
}

/// What a sign-in attempt names: the lockout key space is split by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// A card number as the reader typed it.
    Card(&'a str),
    /// A user principal name (compared case-insensitively).
    Upn(&'a str),
}

impl Subject<'_> {
    fn key(self) -> String {
        match self {
            Self::Card(card) => format!("card:{}", card.trim()),
            Self::Upn(upn) => format!("upn:{}", upn.trim().to_lowercase()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// Failures within the window (reset when a lockout starts).
    failures: Vec<OffsetDateTime>,
    /// Attempts reserved and not yet settled.
    in_flight: Reservations,
    locked_until: Option<OffsetDateTime>,
    /// How many lockouts so far (the next one lasts `first_lockout × 2^level`).
    level: u32,
    last_activity: OffsetDateTime,
}

impl Record {
    fn new(now: OffsetDateTime) -> Self {
        Self {
            failures: Vec::new(),
            in_flight: Reservations::default(),
            locked_until: None,
            level: 0,
            last_activity: now,
        }
    }
}

/// Counts failures per subject and says who is locked out. Shared behind an [`Arc`] so that an
/// [`Attempt`] can be settled on the blocking pool.
#[derive(Debug)]
pub struct Lockout {
    policy: LockoutPolicy,
    clock: SharedClock,
    // A std mutex: short critical sections, never held across an await.
    records: Mutex<HashMap<String, Record>>,
    prune_at: Mutex<usize>,
    /// PostgreSQL: the records live in the store, shared by every daemon.
    shared: Option<Store>,
}

/// The subject is locked out (or its attempts are all under way); try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockedOut {
    /// Seconds until the lockout ends (at least 1), for `Retry-After`.
    pub retry_after_secs: u64,
}

/// Below this many records, pruning is not worth a scan.
const PRUNE_FLOOR: usize = 1024;

fn seconds_until(until: OffsetDateTime, now: OffsetDateTime) -> u64 {
    u64::try_from((until - now).whole_seconds())
        .unwrap_or(0)
        .max(1)
}

impl Lockout {
    /// A lockout tracker with the given policy and clock.
    pub fn new(policy: LockoutPolicy, clock: SharedClock) -> Self {
        Self {
            policy,
            clock,
            records: Mutex::new(HashMap::new()),
            prune_at: Mutex::new(PRUNE_FLOOR),
            shared: None,
        }
    }

    /// The same lockout, its records kept in `store` when that is PostgreSQL (several daemons);
    /// in memory otherwise.
    #[must_use]
    pub fn shared_through(mut self, store: &Store) -> Self {
        self.shared = (store.backend() == Backend::Postgres).then(|| store.clone());
        self
    }

    /// Reserves one attempt for `subject` as [`Lockout::reserve`] does, in the store when it is
    /// shared. A store that cannot be reached refuses the attempt (fails closed): no guess goes
    /// uncounted.
    pub async fn reserve_guarded(
        self: &Arc<Self>,
        subject: Subject<'_>,
    ) -> Result<Guarded, LockedOut> {
        let Some(store) = &self.shared else {
            return self.reserve(subject).map(Guarded::Memory);
        };
        let key = subject.key();
        let now = self.clock.now();
        let answer = store
            .sign_in_guard(&key, now, |old| {
                let mut record = load(old, now);
                let answer = self.reserve_record(&mut record, now);
                (save(&record), answer)
            })
            .await;
        match answer {
            Ok(Ok(())) => Ok(Guarded::Shared(SharedAttempt {
                lockout: Arc::clone(self),
                store: store.clone(),
                key,
                reserved_at: now,
                settled: false,
            })),
            Ok(Err(locked)) => Err(locked),
            Err(error) => {
                tracing::error!(%error, "the store cannot count a sign-in attempt; refusing it");
                Err(LockedOut {
                    retry_after_secs: 5,
                })
            }
        }
    }

    /// [`Lockout::reserve`]'s decision on one record.
    fn reserve_record(&self, record: &mut Record, now: OffsetDateTime) -> Result<(), LockedOut> {
        if let Some(until) = record.locked_until
            && until > now
        {
            return Err(LockedOut {
                retry_after_secs: seconds_until(until, now),
            });
        }
        record.failures.retain(|t| now - *t < self.policy.window);
        let used = u32::try_from(record.failures.len()).unwrap_or(u32::MAX);
        if used.saturating_add(record.in_flight.len()) >= self.policy.max_failures {
            // Every remaining attempt is already being checked: this one waits for their outcome.
            return Err(LockedOut {
                retry_after_secs: 1,
            });
        }
        record.in_flight.reserve(now);
        record.last_activity = now;
        Ok(())
    }

    fn records(&self) -> MutexGuard<'_, HashMap<String, Record>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves one attempt for `subject` before its credential is checked, or refuses it: while
    /// the subject is locked out, or while the attempts under way could already lock it.
    pub fn reserve(self: &Arc<Self>, subject: Subject<'_>) -> Result<Attempt, LockedOut> {
        let now = self.clock.now();
        let key = subject.key();
        let mut records = self.records();
        self.prune(&mut records, now);
        let record = records
            .entry(key.clone())
            .or_insert_with(|| Record::new(now));
        self.reserve_record(record, now)?;
        Ok(Attempt {
            lockout: Arc::clone(self),
            key,
            settled: false,
        })
    }

    /// Whether `subject` is locked out now (no reservation).
    pub fn check(&self, subject: Subject<'_>) -> Result<(), LockedOut> {
        let now = self.clock.now();
        match self
            .records()
            .get(&subject.key())
            .and_then(|r| r.locked_until)
        {
            Some(until) if until > now => Err(LockedOut {
                retry_after_secs: seconds_until(until, now),
            }),
            _ => Ok(()),
        }
    }

    /// Lifts every lockout and forgets every failure of the person `upn` (and of the card number
    /// `upn`, should an administrator pass one); returns whether anything was recorded.
    pub fn unlock(&self, person: &str) -> bool {
        let mut records = self.records();
        let upn = records.remove(&Subject::Upn(person).key()).is_some();
        let card = records.remove(&Subject::Card(person).key()).is_some();
        if upn || card {
            tracing::warn!(subject = %redact_subject(person), "sign-in lockout lifted by the administrator");
        }
        upn || card
    }

    fn settle(&self, key: &str, failed: bool) -> Result<(), LockedOut> {
        let now = self.clock.now();
        let mut records = self.records();
        let Some(record) = records.get_mut(key) else {
            // Unlocked by the administrator while the attempt was under way.
            return Ok(());
        };
        record.in_flight.give_back(None);
        let (answer, forget) = self.settle_record(key, record, failed, now);
        if forget {
            records.remove(key);
        }
        answer
    }

    /// A settled attempt's effect on its record (its reservation already taken off): the answer,
    /// and whether the record can be forgotten.
    fn settle_record(
        &self,
        key: &str,
        record: &mut Record,
        failed: bool,
        now: OffsetDateTime,
    ) -> (Result<(), LockedOut>, bool) {
        record.last_activity = now;
        let locked = record.locked_until.filter(|until| *until > now);
        if let Some(until) = locked {
            // A lock set meanwhile wins, over a success too (re-checked after the verification).
            return (
                Err(LockedOut {
                    retry_after_secs: seconds_until(until, now),
                }),
                false,
            );
        }
        if !failed {
            if record.in_flight.is_empty() {
                return (Ok(()), true);
            }
            record.failures.clear();
            record.level = 0;
            record.locked_until = None;
            return (Ok(()), false);
        }
        record.failures.retain(|t| now - *t < self.policy.window);
        record.failures.push(now);
        if record.failures.len() < self.policy.max_failures as usize {
            return (Ok(()), false);
        }
        record.failures.clear();
        // 2^20 × any sensible first lockout is far beyond the cap; the shift cannot overflow.
        let factor = 1_i32 << record.level.min(20);
        let length = self
            .policy
            .first_lockout
            .checked_mul(factor)
            .unwrap_or(self.policy.max_lockout)
            .min(self.policy.max_lockout);
        record.level = record.level.saturating_add(1);
        let until = now + length;
        record.locked_until = Some(until);
        let subject = key.split_once(':').map_or(key, |(_, s)| s);
        tracing::warn!(
            subject = %redact_subject(subject),
            kind = key.split_once(':').map_or("", |(k, _)| k),
            minutes = length.whole_minutes(),
            lockouts = record.level,
            "sign-in locked out after repeated failures"
        );
        (
            Err(LockedOut {
                retry_after_secs: seconds_until(until, now),
            }),
            false,
        )
    }

    /// Settles a reservation made at `reserved_at` in the shared store (`None`: only returns it).
    async fn settle_shared(
        &self,
        store: &Store,
        key: &str,
        reserved_at: OffsetDateTime,
        failed: Option<bool>,
    ) -> Result<(), LockedOut> {
        let now = self.clock.now();
        let answer = store
            .sign_in_guard(key, now, |old| {
                let Some(old) = old else {
                    // Unlocked by the administrator while the attempt was under way.
                    return (None, Ok(()));
                };
                let mut record = load(Some(old), now);
                record.in_flight.give_back(Some(reserved_at));
                let Some(failed) = failed else {
                    return (save(&record), Ok(()));
                };
                let (answer, forget) = self.settle_record(key, &mut record, failed, now);
                (if forget { None } else { save(&record) }, answer)
            })
            .await;
        answer.unwrap_or_else(|error| {
            tracing::error!(%error, "the store cannot settle a sign-in attempt; refusing the sign-in");
            Err(LockedOut {
                retry_after_secs: 5,
            })
        })
    }

    /// Lifts `person`'s lockouts (as [`Lockout::unlock`]) in the shared store too.
    pub async fn unlock_everywhere(&self, person: &str) -> Result<bool, crate::store::StoreError> {
        let here = self.unlock(person);
        let Some(store) = &self.shared else {
            return Ok(here);
        };
        let shared = store
            .sign_in_guard_remove(&[Subject::Upn(person).key(), Subject::Card(person).key()])
            .await?;
        if shared {
            tracing::warn!(subject = %redact_subject(person), "sign-in lockout lifted by the administrator");
        }
        Ok(here || shared)
    }

    /// Drops quiet records once the map has grown past a mark, then moves the mark, so the scan
    /// costs O(1) per failure amortised.
    fn prune(&self, records: &mut HashMap<String, Record>, now: OffsetDateTime) {
        let mut mark = self
            .prune_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if records.len() < *mark {
            return;
        }
        let memory = self.policy.max_lockout.max(self.policy.window);
        records.retain(|_, r| {
            !r.in_flight.is_empty()
                || r.locked_until.is_some_and(|u| u > now)
                || now - r.last_activity < memory
        });
        *mark = (records.len() * 2).max(PRUNE_FLOOR);
    }

    /// How many subjects are remembered (tests: memory stays bounded).
    pub fn len(&self) -> usize {
        self.records().len()
    }

    /// Whether no subject is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One reserved sign-in attempt. Settle it with [`Attempt::failed`], [`Attempt::succeeded`] or
/// [`Attempt::cancel`]; dropping it unsettled counts as a failure.
#[derive(Debug)]
pub struct Attempt {
    lockout: Arc<Lockout>,
    key: String,
    settled: bool,
}

impl Attempt {
    /// The credential was wrong; returns the lockout it caused (or that was set meanwhile).
    pub fn failed(mut self) -> Result<(), LockedOut> {
        self.settled = true;
        self.lockout.settle(&self.key, true)
    }

    /// The credential was right; clears the subject's failures and lockout level, unless a lockout
    /// was set while it was being checked (then that lockout stands and the sign-in is refused).
    pub fn succeeded(mut self) -> Result<(), LockedOut> {
        self.settled = true;
        self.lockout.settle(&self.key, false)
    }

    /// Nothing was checked (the server was busy): the reservation is returned without counting.
    pub fn cancel(mut self) {
        self.settled = true;
        let mut records = self.lockout.records();
        if let Some(record) = records.get_mut(&self.key) {
            record.in_flight.give_back(None);
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.settled {
            // A request abandoned mid-check must not be a free guess.
            let _ = self.lockout.settle(&self.key, true);
        }
    }
}

/// A record read from the shared store: a new one when there is none (or it cannot be read: a
/// record is rewritten whole, so that only loses a count), without reservations older than
/// [`RESERVATION_TTL`].
fn load(old: Option<&str>, now: OffsetDateTime) -> Record {
    let mut record = old
        .and_then(|text| serde_json::from_str::<Record>(text).ok())
        .unwrap_or_else(|| Record::new(now));
    record.in_flight.forget_lapsed(now);
    record
}

fn save(record: &Record) -> Option<String> {
    serde_json::to_string(record).ok()
}

/// A reserved attempt, counted in memory or in the shared store: settle it with
/// [`Guarded::failed`], [`Guarded::succeeded`] or [`Guarded::cancel`]; dropped unsettled, it counts
/// as a failure.
#[derive(Debug)]
pub enum Guarded {
    /// One daemon: [`Attempt`].
    Memory(Attempt),
    /// Daemons sharing a PostgreSQL store.
    Shared(SharedAttempt),
}

/// An attempt reserved in the shared store.
#[derive(Debug)]
pub struct SharedAttempt {
    lockout: Arc<Lockout>,
    store: Store,
    key: String,
    reserved_at: OffsetDateTime,
    settled: bool,
}

impl Guarded {
    /// The credential was wrong; returns the lockout it caused (or that was set meanwhile).
    pub async fn failed(self) -> Result<(), LockedOut> {
        match self {
            Self::Memory(attempt) => attempt.failed(),
            Self::Shared(attempt) => attempt.settle(Some(true)).await,
        }
    }

    /// The credential was right; refused when a lockout was set meanwhile.
    pub async fn succeeded(self) -> Result<(), LockedOut> {
        match self {
            Self::Memory(attempt) => attempt.succeeded(),
            Self::Shared(attempt) => attempt.settle(Some(false)).await,
        }
    }

    /// Nothing was checked: the reservation is returned without counting.
    pub async fn cancel(self) {
        match self {
            Self::Memory(attempt) => attempt.cancel(),
            Self::Shared(attempt) => {
                let _ = attempt.settle(None).await;
            }
        }
    }
}

impl SharedAttempt {
    async fn settle(mut self, failed: Option<bool>) -> Result<(), LockedOut> {
        self.settled = true;
        self.lockout
            .settle_shared(&self.store, &self.key, self.reserved_at, failed)
            .await
    }
}

impl Drop for SharedAttempt {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // A request abandoned mid-check must not be a free guess: settled as a failure on the
        // runtime (a daemon that dies first leaves a reservation that lapses after the TTL).
        let (lockout, store, key, at) = (
            Arc::clone(&self.lockout),
            self.store.clone(),
            std::mem::take(&mut self.key),
            self.reserved_at,
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = lockout.settle_shared(&store, &key, at, Some(true)).await;
            });
        }
    }
}

/// A card number is a credential: logs show only its last four characters.
pub fn redact_subject(subject: &str) -> String {
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

    fn setup() -> (Arc<ManualClock>, Arc<Lockout>) {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        let lockout = Arc::new(Lockout::new(LockoutPolicy::default(), clock.clone()));
        (clock, lockout)
    }

    const ADA: Subject<'static> = Subject::Upn("ada@contoso.com");

    fn fail(lockout: &Arc<Lockout>, subject: Subject<'_>) -> Result<(), LockedOut> {
        lockout.reserve(subject)?.failed()
    }

    #[test]
    fn the_fifth_failure_locks_out_for_five_minutes() {
        let (clock, lockout) = setup();
        for _ in 0..4 {
            assert!(fail(&lockout, ADA).is_ok());
            assert!(lockout.check(ADA).is_ok());
        }
        let locked = fail(&lockout, Subject::Upn("ADA@contoso.com")).unwrap_err();
        assert_eq!(locked.retry_after_secs, 300);
        clock.advance(Duration::minutes(2));
        assert_eq!(lockout.check(ADA).unwrap_err().retry_after_secs, 180);
        assert_eq!(lockout.reserve(ADA).unwrap_err().retry_after_secs, 180);
        clock.advance(Duration::minutes(3));
        assert!(lockout.check(ADA).is_ok());
    }

    #[test]
    fn reservations_beyond_the_remaining_attempts_are_refused_before_any_check() {
        let (_clock, lockout) = setup();
        fail(&lockout, ADA).unwrap();
        let attempts: Vec<Attempt> = (0..4).map(|_| lockout.reserve(ADA).unwrap()).collect();
        assert_eq!(
            lockout.reserve(ADA).unwrap_err().retry_after_secs,
            1,
            "four under way plus one failure: no fifth check"
        );
        let mut results: Vec<_> = attempts.into_iter().map(Attempt::failed).collect();
        assert!(results.pop().unwrap().is_err(), "the last failure locks");
        assert!(lockout.reserve(ADA).is_err());
    }

    #[test]
    fn a_success_settled_after_a_lock_was_set_is_refused() {
        let (_clock, lockout) = setup();
        let right = lockout.reserve(ADA).unwrap();
        let wrong: Vec<Attempt> = (0..4).map(|_| lockout.reserve(ADA).unwrap()).collect();
        for attempt in wrong {
            let _ = attempt.failed();
        }
        // Four failures do not lock; the right PIN still signs in and clears them.
        assert!(right.succeeded().is_ok());
        assert!(fail(&lockout, ADA).is_ok(), "the count starts again");
        // A lock set by failures while a check is under way wins over its success.
        for _ in 0..3 {
            fail(&lockout, ADA).unwrap();
        }
        let right = lockout.reserve(ADA).unwrap();
        lockout.settle(&ADA.key(), true).unwrap_err();
        assert!(right.succeeded().is_err());
    }

    #[test]
    fn lockouts_double_up_to_a_day_and_a_success_resets_the_level() {
        let (clock, lockout) = setup();
        let mut lengths = Vec::new();
        for _ in 0..11 {
            let mut last = Ok(());
            for _ in 0..5 {
                last = fail(&lockout, ADA);
            }
            let secs = last.unwrap_err().retry_after_secs;
            lengths.push(secs / 60);
            clock.advance(Duration::seconds(i64::try_from(secs).unwrap()));
        }
        assert_eq!(
            lengths,
            vec![5, 10, 20, 40, 80, 160, 320, 640, 1280, 1440, 1440]
        );
        lockout.reserve(ADA).unwrap().succeeded().unwrap();
        for _ in 0..4 {
            fail(&lockout, ADA).unwrap();
        }
        assert_eq!(fail(&lockout, ADA).unwrap_err().retry_after_secs, 300);
    }

    #[test]
    fn cards_and_people_are_separate_key_spaces() {
        let (_clock, lockout) = setup();
        for _ in 0..5 {
            let _ = fail(&lockout, Subject::Card("ada@contoso.com"));
        }
        assert!(lockout.check(Subject::Card("ada@contoso.com")).is_err());
        assert!(lockout.check(ADA).is_ok(), "card guesses do not lock Ada");
    }

    #[test]
    fn unlock_lifts_the_lock_and_the_level() {
        let (_clock, lockout) = setup();
        for _ in 0..5 {
            let _ = fail(&lockout, ADA);
        }
        assert!(lockout.unlock("Ada@Contoso.com"));
        assert!(lockout.reserve(ADA).is_ok());
        assert!(!lockout.unlock("nobody@contoso.com"));
    }

    #[test]
    fn a_dropped_attempt_counts_as_a_failure_and_a_cancelled_one_does_not() {
        let (_clock, lockout) = setup();
        for _ in 0..4 {
            lockout.reserve(ADA).unwrap().cancel();
        }
        for _ in 0..4 {
            drop(lockout.reserve(ADA).unwrap());
        }
        assert!(
            fail(&lockout, ADA).is_err(),
            "four dropped + one failed lock"
        );
    }

    #[test]
    fn failures_outside_the_window_are_forgotten() {
        let (clock, lockout) = setup();
        for _ in 0..4 {
            fail(&lockout, Subject::Card("1234")).unwrap();
        }
        clock.advance(Duration::minutes(16));
        assert!(fail(&lockout, Subject::Card("1234")).is_ok());
    }

    #[test]
    fn quiet_subjects_are_pruned_so_memory_stays_bounded() {
        let (clock, lockout) = setup();
        for n in 0..5000 {
            let card = n.to_string();
            fail(&lockout, Subject::Card(&card)).unwrap();
            if n % 1000 == 999 {
                clock.advance(Duration::hours(25));
            }
        }
        assert!(lockout.len() <= 2 * PRUNE_FLOOR, "{}", lockout.len());
    }

    #[test]
    fn card_numbers_are_redacted_in_logs() {
        assert_eq!(redact_subject("0004521337"), "******1337");
        assert_eq!(redact_subject("ada@contoso.com"), "ada@contoso.com");
    }
}
