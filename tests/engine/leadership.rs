//! Leadership among daemons sharing a PostgreSQL store: exactly one campaign leads, its leader-only
//! work runs in terms, and when the leader stops another campaign takes over within one try,
//! counted in the metrics.

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
