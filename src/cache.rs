//! A small time-to-live cache in front of a Graph lookup: printer capabilities and status (`GET
//! printer`), group memberships (`checkMemberGroups`) and group existence, directory card lookups (`GET users?$filter=employeeId eq …`).
//!
//! Invariants:
//! - a value younger than the time to live is served without calling Graph;
//! - when a refresh fails and an older value is known, the older value is served (and the failure
//!   logged): a printer's capabilities or a person's card rarely change, and a kiosk that stops working
//!   because Graph hiccups is worse than one that is a few minutes out of date;
//! - failures themselves are never cached, so the next call tries again;
//! - with a capacity, the map never holds more entries: expired ones go first, then the oldest.
//!
//! - callers missing the same key at once share one fetch: the first fetches, the others wait for
//!   it and take its value (a burst of 200 rule-released jobs at one printer costs one `GET
//!   printer`, not 200); the map's lock (a std mutex) stays out of every await, and only the
//!   per-key turn is held across the fetch.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use time::{Duration, OffsetDateTime};

use crate::clock::SharedClock;
use crate::graph::GraphError;

/// Fetches the value for a key from Graph.
pub type Fetch<T> = Arc<dyn Fn(String) -> BoxFuture<'static, Result<T, GraphError>> + Send + Sync>;

/// Values per key, fetched on a miss and kept for `ttl`.
pub struct TtlCache<T> {
    what: &'static str,
    ttl: Duration,
    clock: SharedClock,
    fetch: Fetch<T>,
    capacity: usize,
    entries: Mutex<HashMap<String, (OffsetDateTime, T)>>,
    /// One turn per key being fetched; removed when nobody waits for it any more.
    fetching: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

/// A caller's place in the queue for one key's fetch; leaves the map clean however the caller ends
/// (answered, failed, or its future dropped by a timeout).
struct Turn<'a> {
    fetching: &'a Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: &'a str,
    gate: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut fetching = self
            .fetching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // The map's copy and ours: nobody else is waiting (others clone under this same lock).
        if Arc::strong_count(&self.gate) == 2 {
            fetching.remove(self.key);
        }
    }
}

impl<T> std::fmt::Debug for TtlCache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TtlCache")
            .field("what", &self.what)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl<T: Clone + Send + 'static> TtlCache<T> {
    /// A cache of `what` (for logs) that keeps values for `ttl`.
    pub fn new(what: &'static str, ttl: Duration, clock: SharedClock, fetch: Fetch<T>) -> Self {
        Self {
            what,
            ttl,
            clock,
            fetch,
            capacity: usize::MAX,
            entries: Mutex::new(HashMap::new()),
            fetching: Mutex::new(HashMap::new()),
        }
    }

    /// Keeps at most `capacity` entries (at least one).
    #[must_use]
    pub fn with_capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// How many entries are held (tests: memory stays bounded).
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached value for `key` if it is younger than `max_age` (and the time to live).
    fn fresh(&self, key: &str, max_age: Duration) -> Option<T> {
        let (at, value) = self.cached(key)?;
        (self.clock.now() - at < max_age.min(self.ttl)).then_some(value)
    }

    fn cached(&self, key: &str) -> Option<(OffsetDateTime, T)> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// The value for `key`: cached while fresh, fetched otherwise (stale when the fetch fails).
    pub async fn get(&self, key: &str) -> Result<T, GraphError> {
        self.get_within(key, self.ttl).await
    }

    /// Like [`TtlCache::get`], with a shorter time to live for this one read: what changes often
    /// (a printer's status) shares the entry with what rarely does (its capabilities), so one
    /// `GET printer` serves both.
    pub async fn get_within(&self, key: &str, max_age: Duration) -> Result<T, GraphError> {
        if let Some(value) = self.fresh(key, max_age) {
            return Ok(value);
        }
        let turn = Turn {
            fetching: &self.fetching,
            key,
            gate: Arc::clone(
                self.fetching
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(key.to_owned())
                    .or_default(),
            ),
        };
        // Declared after `turn`, so dropped before it.
        let _fetching = Arc::clone(&turn.gate).lock_owned().await;
        // Whoever held the turn before us may have fetched it.
        if let Some(value) = self.fresh(key, max_age) {
            return Ok(value);
        }
        let cached = self.cached(key);
        match (self.fetch)(key.to_owned()).await {
            Ok(value) => {
                let now = self.clock.now();
                let mut entries = self
                    .entries
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if entries.len() >= self.capacity && !entries.contains_key(key) {
                    entries.retain(|_, (at, _)| now - *at < self.ttl);
                    if entries.len() >= self.capacity
                        && let Some(oldest) = entries
                            .iter()
                            .min_by_key(|(_, (at, _))| *at)
                            .map(|(k, _)| k.clone())
                    {
                        entries.remove(&oldest);
                    }
                }
                entries.insert(key.to_owned(), (now, value.clone()));
                Ok(value)
            }
            Err(error) => match cached {
                Some((_, stale)) => {
                    tracing::warn!(what = self.what, %error, "refresh failed; serving the last known value");
                    Ok(stale)
                }
                None => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    fn failure() -> GraphError {
        GraphError::Transport {
            operation: "get_printer",
            detail: "connection refused".to_owned(),
            client_request_id: "x".to_owned(),
            timed_out: false,
        }
    }

    /// A fetch that counts its calls and fails while `fail` is set.
    fn counting(calls: Arc<AtomicU32>, fail: Arc<std::sync::atomic::AtomicBool>) -> Fetch<String> {
        Arc::new(move |key: String| {
            let calls = calls.clone();
            let fail = fail.clone();
            Box::pin(async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                if fail.load(Ordering::SeqCst) {
                    Err(failure())
                } else {
                    Ok(format!("{key}#{n}"))
                }
            })
        })
    }

    fn setup() -> (
        Arc<ManualClock>,
        Arc<AtomicU32>,
        Arc<std::sync::atomic::AtomicBool>,
        TtlCache<String>,
    ) {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        let calls = Arc::new(AtomicU32::new(0));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let cache = TtlCache::new(
            "test",
            Duration::minutes(10),
            clock.clone(),
            counting(calls.clone(), fail.clone()),
        );
        (clock, calls, fail, cache)
    }

    #[tokio::test]
    async fn a_fresh_value_is_served_without_calling_graph_again() {
        let (clock, calls, _fail, cache) = setup();
        assert_eq!(cache.get("p1").await.unwrap(), "p1#1");
        clock.advance(Duration::minutes(9));
        assert_eq!(cache.get("p1").await.unwrap(), "p1#1");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_read_with_a_shorter_max_age_refreshes_sooner_and_shares_the_entry() {
        let (clock, calls, _fail, cache) = setup();
        cache.get("p1").await.unwrap();
        clock.advance(Duration::seconds(5));
        assert_eq!(
            cache.get_within("p1", Duration::seconds(10)).await.unwrap(),
            "p1#1"
        );
        clock.advance(Duration::seconds(5));
        assert_eq!(
            cache.get_within("p1", Duration::seconds(10)).await.unwrap(),
            "p1#2"
        );
        assert_eq!(cache.get("p1").await.unwrap(), "p1#2", "one entry for both");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_old_value_is_refreshed() {
        let (clock, calls, _fail, cache) = setup();
        cache.get("p1").await.unwrap();
        clock.advance(Duration::minutes(10));
        assert_eq!(cache.get("p1").await.unwrap(), "p1#2");
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_failed_refresh_serves_the_last_known_value_and_is_not_cached() {
        let (clock, calls, fail, cache) = setup();
        cache.get("p1").await.unwrap();
        clock.advance(Duration::minutes(11));
        fail.store(true, Ordering::SeqCst);
        assert_eq!(cache.get("p1").await.unwrap(), "p1#1");
        assert!(cache.get("p2").await.is_err(), "nothing known for p2");
        fail.store(false, Ordering::SeqCst);
        assert_eq!(cache.get("p1").await.unwrap(), "p1#4");
        assert_eq!(calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test]
    async fn a_cache_with_a_capacity_evicts_expired_then_oldest_entries() {
        let (clock, _calls, _fail, cache) = setup();
        let cache = cache.with_capacity(3);
        for key in ["a", "b", "c"] {
            cache.get(key).await.unwrap();
            clock.advance(Duration::minutes(1));
        }
        cache.get("d").await.unwrap();
        assert_eq!(cache.len(), 3);
        assert!(cache.cached("a").is_none(), "the oldest went");
        clock.advance(Duration::minutes(20));
        cache.get("e").await.unwrap();
        assert_eq!(cache.len(), 1, "expired entries go first");
    }

    /// A fetch that counts its calls and waits for `open` before answering, so callers overlap.
    fn gated(calls: Arc<AtomicU32>, open: Arc<tokio::sync::Semaphore>) -> Fetch<String> {
        Arc::new(move |key: String| {
            let calls = calls.clone();
            let open = open.clone();
            Box::pin(async move {
                let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                let _permit = open.acquire().await;
                Ok(format!("{key}#{n}"))
            })
        })
    }

    #[tokio::test]
    async fn callers_missing_the_same_key_at_once_share_one_fetch() {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        let calls = Arc::new(AtomicU32::new(0));
        let open = Arc::new(tokio::sync::Semaphore::new(0));
        let cache = Arc::new(TtlCache::new(
            "test",
            Duration::minutes(10),
            clock,
            gated(calls.clone(), open.clone()),
        ));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.get_within("p1", Duration::seconds(10)).await })
            })
            .collect();
        // Every caller has reached the cache (the first is inside the fetch, the rest wait).
        while calls.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        open.add_permits(1000);
        for caller in callers {
            assert_eq!(caller.await.unwrap().unwrap(), "p1#1");
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1, "one GET for fifty callers");
        assert!(
            cache.fetching.lock().unwrap().is_empty(),
            "no turn left behind"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_caller_that_gives_up_mid_fetch_does_not_block_the_key() {
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        let calls = Arc::new(AtomicU32::new(0));
        let open = Arc::new(tokio::sync::Semaphore::new(0));
        let cache = TtlCache::new(
            "test",
            Duration::minutes(10),
            clock,
            gated(calls.clone(), open.clone()),
        );
        // A station's read times out while Graph is slow: its future is dropped mid-fetch.
        let gave_up = tokio::time::timeout(std::time::Duration::from_secs(2), cache.get("p1"));
        assert!(gave_up.await.is_err());
        assert!(
            cache.fetching.lock().unwrap().is_empty(),
            "its turn is gone"
        );
        open.add_permits(1000);
        assert_eq!(cache.get("p1").await.unwrap(), "p1#2");
    }
}
