//! Card sign-in through Entra ID: a card number the users file does not know is looked up as a
//! user's `employeeId` (`GET /users?$filter=employeeId eq '…'`, needs `User.Read.All`), when
//! `[users] directory_lookup = true`.
//!
//! Answers — "this user" and "nobody" alike — are cached for `[users] directory_cache`, so a queue at
//! the printer costs one Graph call per card, and a guessing attack on card numbers is bounded by the
//! failure budgets ([`super::budget`]) and not passed through to Graph at keyboard speed. The cache
//! holds at most `[users] directory_cache_size` answers. A directory user signs in by card only:
//! there is no PIN to check for them.

use std::sync::Arc;

use time::Duration;

use super::users::User;
use crate::cache::{Fetch, TtlCache};
use crate::clock::SharedClock;
use crate::graph::{GraphClient, GraphError};

/// Looks card numbers up in Entra ID, with a cache.
#[derive(Debug)]
pub struct DirectoryLookup {
    cache: TtlCache<Option<User>>,
}

impl DirectoryLookup {
    /// A lookup through `graph`, keeping at most `capacity` answers for `ttl`.
    pub fn new(graph: GraphClient, ttl: Duration, capacity: usize, clock: SharedClock) -> Self {
        let fetch: Fetch<Option<User>> = Arc::new(move |card: String| {
            let graph = graph.clone();
            Box::pin(async move {
                let found = graph.find_user_by_employee_id(&card).await?;
                Ok(found.and_then(|user| {
                    // A user without a UPN cannot own print jobs: treat as unknown.
                    let upn = user.user_principal_name?;
                    let name = user.display_name.unwrap_or_else(|| upn.clone());
                    Some(User::from_directory(upn, name, card))
                }))
            })
        });
        let mut lookup = Self::with_fetch(fetch, ttl, clock);
        lookup.cache = lookup.cache.with_capacity(capacity);
        lookup
    }

    /// A lookup through any fetch function (tests).
    pub fn with_fetch(fetch: Fetch<Option<User>>, ttl: Duration, clock: SharedClock) -> Self {
        Self {
            cache: TtlCache::new("directory card lookup", ttl, clock, fetch),
        }
    }

    /// The directory user whose `employeeId` is `card`, if any.
    pub async fn by_card(&self, card: &str) -> Result<Option<User>, GraphError> {
        self.cache.get(card.trim()).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;
    use crate::clock::ManualClock;

    #[tokio::test]
    async fn answers_including_nobody_are_cached_per_card() {
        let calls = Arc::new(AtomicU32::new(0));
        let counted = calls.clone();
        let fetch: Fetch<Option<User>> = Arc::new(move |card: String| {
            counted.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                Ok((card == "4711")
                    .then(|| User::from_directory("eve@contoso.com".into(), "Eve".into(), card)))
            })
        });
        let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
        let lookup = DirectoryLookup::with_fetch(fetch, Duration::minutes(5), clock.clone());
        assert_eq!(
            lookup.by_card(" 4711 ").await.unwrap().unwrap().upn,
            "eve@contoso.com"
        );
        assert!(lookup.by_card("4711").await.unwrap().is_some());
        assert!(lookup.by_card("0000").await.unwrap().is_none());
        assert!(lookup.by_card("0000").await.unwrap().is_none());
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        clock.advance(Duration::minutes(5));
        lookup.by_card("4711").await.unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "expired answers are looked up again"
        );
    }
}
