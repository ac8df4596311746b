//! Leadership among daemons sharing a PostgreSQL store: exactly one campaign leads, its leader-only
//! work runs in terms, and when the leader stops another campaign takes over within one try,
//! counted in the metrics. And the station sessions those instances share.

use std::time::Duration;

use crate::engine_support::{Backend, TestDatabase, eventually};
use pullprintd::leadership::{TRY_EVERY, campaign};
use pullprintd::metrics::Metrics;
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
