//! Failure budgets: how many failed sign-ins a station, and all stations together, may have within a
//! sliding window before further sign-ins are refused with 429 until the window moves on.
//!
//! The per-subject [`lockout`](super::lockout) stops guessing one person's PIN; it cannot stop
//! *spraying* — trying many different card numbers or people once each. The budget does: every
//! failed sign-in (unknown card, unknown person, wrong PIN, a directory lookup that failed) spends
//! from the station's budget and from the global one.
//!
//! Invariants:
//! - a slot is **reserved** before the card is looked up or the PIN checked, so the failures counted
//!   plus the attempts under way never exceed a budget: a burst of N distinct cards reaches the
//!   directory at most `budget` times;
//! - memory is bounded: one entry per configured station plus the global one, each holding at most
//!   `budget` timestamps;
//! - one warning per exhaustion episode (not one per refused request), and a counter per refusal.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;

/// The budgets' sizes.
#[derive(Debug, Clone, Copy)]
pub struct BudgetPolicy {
    /// Failed sign-ins one station may have within `window`.
    pub per_station: u32,
    /// Failed sign-ins all stations together may have within `window`.
    pub global: u32,
    /// The sliding window.
    pub window: Duration,
}

#[derive(Debug, Default)]
struct Account {
    failures: VecDeque<OffsetDateTime>,
    in_flight: u32,
    /// Set when the budget ran out and the warning was logged; cleared when it recovers.
    exhausted: bool,
}

impl Account {
    fn forget_old(&mut self, now: OffsetDateTime, window: Duration) {
        while self.failures.front().is_some_and(|t| now - *t >= window) {
            self.failures.pop_front();
        }
    }

    fn used(&self) -> u32 {
        u32::try_from(self.failures.len())
            .unwrap_or(u32::MAX)
            .saturating_add(self.in_flight)
    }

    fn retry_after(&self, now: OffsetDateTime, window: Duration) -> u64 {
        self.failures.front().map_or(1, |oldest| {
            u64::try_from((*oldest + window - now).whole_seconds())
                .unwrap_or(0)
                .max(1)
        })
    }
}

/// Which budget ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The station's own.
    Station,
    /// All stations together.
    Global,
}

impl Scope {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Station => "station_budget",
            Self::Global => "global_budget",
        }
    }
}

/// A budget ran out; try again after this many seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exhausted {
    /// Which budget.
    pub scope: Scope,
    /// Seconds until a failure leaves the window (at least 1), for `Retry-After`.
    pub retry_after_secs: u64,
}

#[derive(Debug, Default)]
struct Accounts {
    stations: HashMap<String, Account>,
    global: Account,
}

/// The per-station and global failure budgets.
#[derive(Debug)]
pub struct FailureBudget {
    policy: BudgetPolicy,
    clock: SharedClock,
    accounts: Mutex<Accounts>,
}

impl FailureBudget {
    /// Budgets of the given sizes.
    pub fn new(policy: BudgetPolicy, clock: SharedClock) -> Self {
        Self {
            policy,
            clock,
            accounts: Mutex::new(Accounts::default()),
        }
    }

    fn accounts(&self) -> MutexGuard<'_, Accounts> {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves one sign-in attempt at `station` against both budgets, or refuses it.
    pub fn reserve(self: &Arc<Self>, station: &str) -> Result<Slot, Exhausted> {
        let now = self.clock.now();
        let window = self.policy.window;
        let mut accounts = self.accounts();
        let Accounts { stations, global } = &mut *accounts;
        let account = stations.entry(station.to_owned()).or_default();
        for (scope, account, limit) in [
            (Scope::Station, &mut *account, self.policy.per_station),
            (Scope::Global, &mut *global, self.policy.global),
        ] {
            account.forget_old(now, window);
            if account.used() >= limit {
                if !account.exhausted {
                    account.exhausted = true;
                    tracing::warn!(
                        station,
                        budget = scope.as_str(),
                        failures = limit,
                        window = %humantime::format_duration(window.unsigned_abs()),
                        "failed sign-ins exhausted the budget; refusing sign-ins until the window \
                         moves on (a card or PIN guessing attack, or a misconfigured reader)"
                    );
                }
                return Err(Exhausted {
                    scope,
                    retry_after_secs: account.retry_after(now, window),
                });
            }
        }
        for account in [account, global] {
            account.in_flight += 1;
            if account.exhausted && account.failures.is_empty() {
                account.exhausted = false;
            }
        }
        Ok(Slot {
            budget: Arc::clone(self),
            station: station.to_owned(),
            settled: false,
        })
    }

    fn settle(&self, station: &str, failed: bool) {
        let now = self.clock.now();
        let mut accounts = self.accounts();
        let Accounts { stations, global } = &mut *accounts;
        let station = stations.entry(station.to_owned()).or_default();
        for account in [station, global] {
            account.in_flight = account.in_flight.saturating_sub(1);
            if failed {
                account.failures.push_back(now);
            }
        }
    }
}

/// One reserved attempt. Settle it with [`Slot::failed`] or [`Slot::succeeded`]; dropping it
/// unsettled counts as a failure (an abandoned request is not a free guess).
#[derive(Debug)]
pub struct Slot {
    budget: Arc<FailureBudget>,
    station: String,
    settled: bool,
}

impl Slot {
    /// The sign-in failed: the failure stays in both windows.
    pub fn failed(mut self) {
        self.settled = true;
        self.budget.settle(&self.station, true);
    }

    /// The sign-in succeeded (or nothing was checked): the slot is returned.
    pub fn succeeded(mut self) {
        self.settled = true;
        self.budget.settle(&self.station, false);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if !self.settled {
            self.budget.settle(&self.station, true);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::clock::ManualClock;

    fn setup() -> (Arc<ManualClock>, Arc<FailureBudget>) {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        let budget = Arc::new(FailureBudget::new(
            BudgetPolicy {
                per_station: 3,
                global: 5,
                window: Duration::minutes(10),
            },
            clock.clone(),
        ));
        (clock, budget)
    }

    #[test]
    fn a_station_is_refused_once_its_failures_and_attempts_under_way_reach_the_budget() {
        let (clock, budget) = setup();
        budget.reserve("lobby").unwrap().failed();
        let under_way = [
            budget.reserve("lobby").unwrap(),
            budget.reserve("lobby").unwrap(),
        ];
        let refused = budget.reserve("lobby").unwrap_err();
        assert_eq!(refused.scope, Scope::Station);
        assert_eq!(refused.retry_after_secs, 600);
        for slot in under_way {
            slot.succeeded();
        }
        budget.reserve("lobby").unwrap().failed();
        budget.reserve("lobby").unwrap().failed();
        clock.advance(Duration::minutes(4));
        assert_eq!(budget.reserve("lobby").unwrap_err().retry_after_secs, 360);
        clock.advance(Duration::minutes(6));
        assert!(budget.reserve("lobby").is_ok(), "the window moved on");
    }

    #[test]
    fn the_global_budget_spans_stations() {
        let (_clock, budget) = setup();
        for station in ["a", "a", "a", "b", "b"] {
            budget.reserve(station).unwrap().failed();
        }
        assert_eq!(budget.reserve("c").unwrap_err().scope, Scope::Global);
    }

    #[test]
    fn a_dropped_slot_counts_as_a_failure() {
        let (_clock, budget) = setup();
        for _ in 0..3 {
            drop(budget.reserve("a").unwrap());
        }
        assert!(budget.reserve("a").is_err());
    }
}
