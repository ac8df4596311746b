//! Leadership among daemons sharing a PostgreSQL store: exactly one campaign leads, its leader-only
//! work runs in terms, and when the leader stops another campaign takes over within one try,
//! counted in the metrics. And the station sessions, sign-in lockouts and failure budgets those
//! instances share.

use std::time::Duration;

use crate::engine_support::{Backend, TestDatabase, eventually};
use pullprintd::leadership::{TRY_EVERY, campaign};
use pullprintd::metrics::Metrics;
use pullprintd::store::Store;
use tokio_util::sync::CancellationToken;

fn leads(metrics: &Metrics) -> bool {
    metrics
        .render()
        .lines()
        .any(|line| line == "pullprintd_leader 1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_stops_another_instance_takes_over_within_one_try_and_its_term_begins() {
    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let (first_stop, second_stop) = (CancellationToken::new(), CancellationToken::new());
    let (first_metrics, second_metrics) = (Metrics::new(), Metrics::new());
    let (_first, run) = campaign(
        database.open().await,
        first_metrics.clone(),
        first_stop.clone(),
    );
    let first = tokio::spawn(run);
    eventually(Duration::from_secs(10), "the first instance leads", || {
        let m = first_metrics.clone();
        async move { leads(&m) }
    })
    .await;
    let (mut second, run) = campaign(
        database.open().await,
        second_metrics.clone(),
        second_stop.clone(),
    );
    let second_run = tokio::spawn(run);
    tokio::time::sleep(TRY_EVERY + Duration::from_secs(1)).await;
    assert!(
        !leads(&second_metrics),
        "one leader at a time: {}",
        second_metrics.render()
    );

    first_stop.cancel();
    first.await.unwrap();
    let started = std::time::Instant::now();
    let term = tokio::time::timeout(TRY_EVERY * 3, second.next_term(&second_stop))
        .await
        .expect("the second instance leads within its next tries")
        .expect("a term");
    eprintln!("took over after {:?}", started.elapsed());
    assert!(leads(&second_metrics));
    assert!(
        second_metrics
            .render()
            .lines()
            .any(|line| line == "pullprintd_leadership_changes_total 1")
    );
    assert!(!term.is_cancelled());
    second_stop.cancel();
    second_run.await.unwrap();
    assert!(term.is_cancelled(), "a term ends when the daemon stops");
}

/// Two daemons' sessions on one PostgreSQL store: a kiosk signed in through one instance is served
/// by the other (behind a load balancer without sticky sessions), with the same rules.
#[tokio::test]
async fn a_session_made_at_one_instance_is_accepted_by_another_with_the_same_rules() {
    use pullprintd::clock::ManualClock;
    use pullprintd::station::sessions::{SessionError, Sessions};
    use time::Duration as TimeDuration;

    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
    let instance = |store: &pullprintd::store::Store| {
        Sessions::new(
            TimeDuration::seconds(60),
            TimeDuration::seconds(300),
            clock.clone(),
        )
        .shared_through(store)
    };
    let (one, two) = (
        instance(&database.open().await),
        instance(&database.open().await),
    );

    let (token, _) = one.create("ada@contoso.com", "Ada", "lobby").await.unwrap();
    clock.advance(TimeDuration::seconds(50));
    let seen = two.touch(&token, "lobby").await.unwrap().unwrap();
    assert_eq!(seen.upn, "ada@contoso.com");
    // The use at the second extended it for the first too.
    clock.advance(TimeDuration::seconds(50));
    assert!(one.touch(&token, "lobby").await.unwrap().is_ok());
    assert_eq!(
        two.touch(&token, "floor2").await.unwrap(),
        Err(SessionError::OtherStation)
    );
    assert_eq!(
        two.touch("forged", "lobby").await.unwrap(),
        Err(SessionError::Invalid)
    );
    // Signing out at one ends it everywhere.
    two.remove(&token).await.unwrap();
    assert_eq!(
        one.touch(&token, "lobby").await.unwrap(),
        Err(SessionError::Invalid)
    );
    // And an idle session expires everywhere.
    let (idle, _) = one.create("bob@contoso.com", "Bob", "lobby").await.unwrap();
    clock.advance(TimeDuration::seconds(61));
    assert_eq!(
        two.touch(&idle, "lobby").await.unwrap(),
        Err(SessionError::Invalid)
    );
}

/// One `T` for each of three daemons, each on its own connection to one PostgreSQL store.
async fn three<T>(database: &TestDatabase, make: impl Fn(&Store) -> T) -> Vec<std::sync::Arc<T>> {
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(std::sync::Arc::new(make(&database.open().await)));
    }
    made
}

/// Three daemons' lockouts on one PostgreSQL store.
async fn three_lockouts(
    database: &TestDatabase,
    clock: std::sync::Arc<pullprintd::clock::ManualClock>,
) -> Vec<std::sync::Arc<pullprintd::station::lockout::Lockout>> {
    use pullprintd::station::lockout::{Lockout, LockoutPolicy};
    three(database, |store| {
        Lockout::new(LockoutPolicy::default(), clock.clone()).shared_through(store)
    })
    .await
}

/// 200 wrong PINs for one person at once, spread over three daemons behind a load balancer: at most
/// five are checked in all (not five per daemon), and then the person is locked out at every one,
/// even with the right PIN.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_simultaneous_guesses_spread_over_three_instances_get_five_checks_in_all() {
    use pullprintd::clock::ManualClock;
    use pullprintd::station::lockout::Subject;

    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
    let lockouts = three_lockouts(&database, clock.clone()).await;
    let guesses: Vec<_> = (0..200)
        .map(|n| {
            let lockout = std::sync::Arc::clone(&lockouts[n % 3]);
            tokio::spawn(async move {
                match lockout
                    .reserve_guarded(Subject::Upn("ada@contoso.com"))
                    .await
                {
                    // Reserved: the PIN is checked, and it is wrong.
                    Ok(attempt) => {
                        let _ = attempt.failed().await;
                        true
                    }
                    Err(_) => false,
                }
            })
        })
        .collect();
    let mut checked = 0;
    for guess in guesses {
        if guess.await.unwrap() {
            checked += 1;
        }
    }
    assert!(
        (1..=5).contains(&checked),
        "{checked} PIN checks over three instances"
    );
    for lockout in &lockouts {
        let refused = lockout
            .reserve_guarded(Subject::Upn("ADA@contoso.com"))
            .await
            .unwrap_err();
        assert!(
            refused.retry_after_secs > 60,
            "locked out for minutes: {refused:?}"
        );
    }
    // The administrator's unlock at one instance lifts it at all.
    assert!(
        lockouts[2]
            .unlock_everywhere("ada@contoso.com")
            .await
            .unwrap()
    );
    let attempt = lockouts[0]
        .reserve_guarded(Subject::Upn("ada@contoso.com"))
        .await
        .unwrap();
    attempt.succeeded().await.unwrap();
}

/// A daemon killed mid-check leaves its reservations in the store: they stop counting after the
/// reservation time to live, so the person is not locked out for good.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reservations_of_a_daemon_killed_mid_check_lapse() {
    use pullprintd::clock::ManualClock;
    use pullprintd::station::lockout::{RESERVATION_TTL, Subject};

    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
    let lockouts = three_lockouts(&database, clock.clone()).await;
    for _ in 0..5 {
        let attempt = lockouts[0]
            .reserve_guarded(Subject::Card("0042"))
            .await
            .unwrap();
        // The process dies: nothing settles the attempt.
        std::mem::forget(attempt);
    }
    let waiting = lockouts[1]
        .reserve_guarded(Subject::Card("0042"))
        .await
        .unwrap_err();
    assert_eq!(waiting.retry_after_secs, 1, "five attempts under way");
    clock.advance(RESERVATION_TTL + time::Duration::seconds(1));
    let attempt = lockouts[1]
        .reserve_guarded(Subject::Card("0042"))
        .await
        .unwrap();
    attempt.succeeded().await.unwrap();
}

/// 300 sign-ins with distinct unknown cards at one station, spread over three daemons: the station's
/// failure budget is spent once in all (not once per daemon), and then every daemon refuses that
/// station while another station still has its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spraying_cards_over_three_instances_spends_one_station_budget() {
    use pullprintd::clock::ManualClock;
    use pullprintd::station::budget::{BudgetPolicy, FailureBudget, Scope};

    let Some(database) = TestDatabase::new(Backend::Postgres).await else {
        return;
    };
    let clock = ManualClock::new(time::macros::datetime!(2026-03-01 08:00 UTC));
    let budgets = three(&database, |store| {
        FailureBudget::new(
            BudgetPolicy {
                per_station: 20,
                global: 100,
                window: time::Duration::minutes(10),
            },
            clock.clone(),
        )
        .shared_through(store)
    })
    .await;
    let sprays: Vec<_> = (0..300)
        .map(|n| {
            let budget = std::sync::Arc::clone(&budgets[n % 3]);
            tokio::spawn(async move {
                match budget.reserve_guarded("lobby").await {
                    // Reserved: the card is looked up, and it is unknown.
                    Ok(slot) => {
                        slot.failed().await;
                        true
                    }
                    Err(_) => false,
                }
            })
        })
        .collect();
    let mut looked_up = 0;
    for spray in sprays {
        if spray.await.unwrap() {
            looked_up += 1;
        }
    }
    assert_eq!(looked_up, 20, "card look-ups over three instances");
    for budget in &budgets {
        let refused = budget.reserve_guarded("lobby").await.unwrap_err();
        assert_eq!(refused.scope, Scope::Station);
        assert!(refused.retry_after_secs > 500, "{refused:?}");
    }
    let elsewhere = budgets[1].reserve_guarded("library").await.unwrap();
    elsewhere.succeeded().await;
    clock.advance(time::Duration::minutes(10));
    let recovered = budgets[2].reserve_guarded("lobby").await.unwrap();
    recovered.succeeded().await;
}
