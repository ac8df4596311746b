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
//!
//! On SQLite (one daemon) the budgets are kept in memory. On PostgreSQL
//! ([`FailureBudget::shared_through`]) they live in the store, both changed under their rows' locks in
//! one transaction, so the daemons behind a load balancer spend from one budget: spraying spread over
//! them is refused exactly as at one. A reservation of a daemon that died mid-check is forgotten
//! after [`RESERVATION_TTL`](super::lockout::RESERVATION_TTL).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

use super::lockout::Reservations;
use crate::clock::SharedClock;
use crate::store::{Backend, Store};

/// The shared store's subject of all stations' budget.
const GLOBAL_SUBJECT: &str = "budget:global";

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

#[derive(Debug, Default, Serialize, Deserialize)]
struct Account {
    failures: VecDeque<OffsetDateTime>,
    /// Attempts reserved and not yet settled.
    in_flight: Reservations,
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
            .saturating_add(self.in_flight.len())
    }

    fn retry_after(&self, now: OffsetDateTime, window: Duration) -> u64 {
        self.failures.front().map_or(1, |oldest| {
            u64::try_from((*oldest + window - now).whole_seconds())
                .unwrap_or(0)
                .max(1)
        })
    }

    /// Refuses when the failures and attempts under way reach `limit` (warning once an episode).
    fn check(
        &mut self,
        scope: Scope,
        limit: u32,
        station: &str,
        now: OffsetDateTime,
        window: Duration,
    ) -> Result<(), Exhausted> {
        self.forget_old(now, window);
        if self.used() < limit {
            return Ok(());
        }
        if !self.exhausted {
            self.exhausted = true;
            tracing::warn!(
                station,
                budget = scope.as_str(),
                failures = limit,
                window = %humantime::format_duration(window.unsigned_abs()),
                "failed sign-ins exhausted the budget; refusing sign-ins until the window \
                 moves on (a card or PIN guessing attack, or a misconfigured reader)"
            );
        }
        Err(Exhausted {
            scope,
            retry_after_secs: self.retry_after(now, window),
        })
    }

    fn take(&mut self, now: OffsetDateTime) {
        self.in_flight.reserve(now);
        if self.exhausted && self.failures.is_empty() {
            self.exhausted = false;
        }
    }

    /// Returns the reservation made at `reserved_at` (or, in memory, where they only count, the
    /// oldest), keeping a failure in the window when it failed.
    fn settle(&mut self, reserved_at: Option<OffsetDateTime>, failed: bool, now: OffsetDateTime) {
        self.in_flight.give_back(reserved_at);
        if failed {
            self.failures.push_back(now);
        }
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
    /// PostgreSQL: the accounts live in the store, shared by every daemon.
    shared: Option<Store>,
}

impl FailureBudget {
    /// Budgets of the given sizes.
    pub fn new(policy: BudgetPolicy, clock: SharedClock) -> Self {
        Self {
            policy,
            clock,
            accounts: Mutex::new(Accounts::default()),
            shared: None,
        }
    }

    /// The same budgets, kept in `store` when that is PostgreSQL (several daemons); in memory
    /// otherwise.
    #[must_use]
    pub fn shared_through(mut self, store: &Store) -> Self {
        self.shared = (store.backend() == Backend::Postgres).then(|| store.clone());
        self
    }

    fn accounts(&self) -> MutexGuard<'_, Accounts> {
        self.accounts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reserves one sign-in attempt at `station` against both budgets, or refuses it.
    pub fn reserve(self: &Arc<Self>, station: &str) -> Result<Slot, Exhausted> {
        let now = self.clock.now();
        let mut accounts = self.accounts();
        let Accounts { stations, global } = &mut *accounts;
        let account = stations.entry(station.to_owned()).or_default();
        self.take_both(station, account, global, now)?;
        Ok(Slot {
            budget: Arc::clone(self),
            station: station.to_owned(),
            settled: false,
        })
    }

    /// Checks both accounts, then reserves in both (or in neither).
    fn take_both(
        &self,
        station: &str,
        account: &mut Account,
        global: &mut Account,
        now: OffsetDateTime,
    ) -> Result<(), Exhausted> {
        let window = self.policy.window;
        account.check(
            Scope::Station,
            self.policy.per_station,
            station,
            now,
            window,
        )?;
        global.check(Scope::Global, self.policy.global, station, now, window)?;
        account.take(now);
        global.take(now);
        Ok(())
    }

    /// Reserves one sign-in attempt as [`FailureBudget::reserve`] does, in the store when it is
    /// shared. A store that cannot be reached refuses the attempt (fails closed): no failure goes
    /// uncounted.
    pub async fn reserve_guarded(self: &Arc<Self>, station: &str) -> Result<Spent, Exhausted> {
        let Some(store) = &self.shared else {
            return self.reserve(station).map(Spent::Memory);
        };
        let now = self.clock.now();
        let key = station_subject(station);
        let answer = store
            .sign_in_guards(&[&key, GLOBAL_SUBJECT], now, |old| {
                let [mut account, mut global] = load_pair(old, now);
                let answer = self.take_both(station, &mut account, &mut global, now);
                (save_pair(&account, &global), answer)
            })
            .await;
        match answer {
            Ok(Ok(())) => Ok(Spent::Shared(SharedSlot {
                budget: Arc::clone(self),
                store: store.clone(),
                station: station.to_owned(),
                reserved_at: now,
                settled: false,
            })),
            Ok(Err(exhausted)) => Err(exhausted),
            Err(error) => {
                tracing::error!(%error, "the store cannot count a sign-in attempt; refusing it");
                Err(Exhausted {
                    scope: Scope::Global,
                    retry_after_secs: 5,
                })
            }
        }
    }

    fn settle(&self, station: &str, failed: bool) {
        let now = self.clock.now();
        let mut accounts = self.accounts();
        let Accounts { stations, global } = &mut *accounts;
        let station = stations.entry(station.to_owned()).or_default();
        for account in [station, global] {
            account.settle(None, failed, now);
        }
    }

    async fn settle_shared(
        &self,
        store: &Store,
        station: &str,
        reserved_at: OffsetDateTime,
        failed: bool,
    ) {
        let now = self.clock.now();
        let key = station_subject(station);
        let settled = store
            .sign_in_guards(&[&key, GLOBAL_SUBJECT], now, |old| {
                let [mut account, mut global] = load_pair(old, now);
                for account in [&mut account, &mut global] {
                    account.settle(Some(reserved_at), failed, now);
                }
                (save_pair(&account, &global), ())
            })
            .await;
        if let Err(error) = settled {
            // The reservation lapses after its time to live: the budget heals by itself.
            tracing::error!(%error, "the store cannot settle a sign-in attempt's budget");
        }
    }
}

fn station_subject(station: &str) -> String {
    format!("budget:station:{station}")
}

/// Two accounts read from the shared store: new ones where there are none (or one cannot be read:
/// an account is rewritten whole, so that only loses a count), without reservations older than the
/// time to live.
fn load_pair(old: Vec<Option<String>>, now: OffsetDateTime) -> [Account; 2] {
    let mut old = old.into_iter();
    [(); 2].map(|()| {
        let mut account = old
            .next()
            .flatten()
            .and_then(|text| serde_json::from_str::<Account>(&text).ok())
            .unwrap_or_default();
        account.in_flight.forget_lapsed(now);
        account
    })
}

fn save_pair(account: &Account, global: &Account) -> Vec<Option<String>> {
    vec![
        serde_json::to_string(account).ok(),
        serde_json::to_string(global).ok(),
    ]
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

/// A reserved attempt, counted in memory or in the shared store: settle it with [`Spent::failed`]
/// or [`Spent::succeeded`]; dropped unsettled, it counts as a failure.
#[derive(Debug)]
pub enum Spent {
    /// One daemon: [`Slot`].
    Memory(Slot),
    /// Daemons sharing a PostgreSQL store.
    Shared(SharedSlot),
}

/// An attempt reserved in the shared store.
#[derive(Debug)]
pub struct SharedSlot {
    budget: Arc<FailureBudget>,
    store: Store,
    station: String,
    reserved_at: OffsetDateTime,
    settled: bool,
}

impl Spent {
    /// The sign-in failed: the failure stays in both windows.
    pub async fn failed(self) {
        self.settle(true).await;
    }

    /// The sign-in succeeded (or nothing was checked): the slot is returned.
    pub async fn succeeded(self) {
        self.settle(false).await;
    }

    async fn settle(self, failed: bool) {
        match self {
            Self::Memory(slot) if failed => slot.failed(),
            Self::Memory(slot) => slot.succeeded(),
            Self::Shared(mut slot) => {
                slot.settled = true;
                slot.budget
                    .settle_shared(&slot.store, &slot.station, slot.reserved_at, failed)
                    .await;
            }
        }
    }
}

impl Drop for SharedSlot {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        // An abandoned request is not a free guess: settled as a failure on the runtime (a daemon
        // that dies first leaves a reservation that lapses after its time to live).
        let (budget, store, station, at) = (
            Arc::clone(&self.budget),
            self.store.clone(),
            std::mem::take(&mut self.station),
            self.reserved_at,
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                budget.settle_shared(&store, &station, at, true).await;
            });
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
