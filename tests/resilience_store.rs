//! Store faults through the whole daemon: while the store refuses writes (as a read-only file or a
//! full disk does), the station API refuses new releases and deletes with a 503 that names the store,
//! never a 500 or a panic; a release accepted before the fault is not lost, and finishes once the
//! fault is cleared.
//!
//! The fault is the store's test knob ([`pullprintd::store::Store::simulate_read_only`]: SQLite's
//! `query_only`, which fails writes with `SQLITE_READONLY`), so the test needs no privileges, no
//! `chattr` and no mount, and runs the same in CI as root or not.
#![allow(clippy::unwrap_used)]

mod station_support;

use std::time::{Duration, Instant};

use pullprintd::emulator::{Faults, RouteFault};
use pullprintd::store::{JobState, Outcome};
use serde_json::{Value, json};
use station_support::{ADA, ADA_CARD, Bed, QUEUE_KEY};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// Polls the daemon's store (its executor works in the background) with a bounded deadline.
async fn until_ended(bed: &Bed, task: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = bed.store.held_job(task).await.unwrap().unwrap();
        if held.state == JobState::Ended {
            return held.outcome.unwrap();
        }
        assert!(Instant::now() < deadline, "{task} never ended: {held:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_refuses_new_releases_with_a_503_and_loses_nothing_accepted() {
    let bed = Bed::start("[release]\nconfirm_wait = \"300ms\"\n").await;
    let (accepted, accepted_job) = bed
        .held_job(ADA, "accepted.pdf", json!({"copies": 1}))
        .await;
    let (refused, refused_job) = bed.held_job(ADA, "refused.pdf", json!({"copies": 1})).await;
    let (kept, _) = bed.held_job(ADA, "kept.pdf", json!({"copies": 1})).await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;

    // Graph is slow: the first release is accepted (202, queued) and still under way when the store
    // stops taking writes.
    let control = bed.emulator.control();
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "updateTask".into(),
            latency_ms: 1500,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let response = bed
        .post(
            &ada,
            &format!("/api/v1/jobs/{accepted}/release"),
            json!({"copies": 2}),
        )
        .await;
    assert_eq!(response.status(), 202, "accepted and queued");
    bed.store.simulate_read_only(true);

    for response in [
        bed.post(&ada, &format!("/api/v1/jobs/{refused}/release"), json!({}))
            .await,
        bed.delete(&ada, &format!("/api/v1/jobs/{kept}")).await,
    ] {
        assert_eq!(response.status(), 503, "a 503, not a 500");
        assert!(response.headers().contains_key("retry-after"));
        let error = body(response).await;
        assert_eq!(error["error"]["code"], "store_unavailable");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("store"), "names the store: {message}");
        assert!(message.contains("read-only"), "says what to fix: {message}");
    }
    // Reading still works: the person sees their jobs.
    let list = bed.get(&ada, "/api/v1/jobs").await;
    assert_eq!(list.status(), 200);

    // The fault lasts past the slow call: the executor cannot record the release's end and keeps it.
    control.set_faults(Faults::default());
    let held = bed.store.held_job(&accepted).await.unwrap().unwrap();
    assert_ne!(
        held.state,
        JobState::Ended,
        "not ended while the store is read-only"
    );

    bed.store.simulate_read_only(false);
    assert_eq!(until_ended(&bed, &accepted).await, Outcome::Released);
    let printed: Vec<_> = control
        .printed(&bed.queue)
        .into_iter()
        .filter(|p| p.job_id == accepted_job)
        .collect();
    assert_eq!(printed.len(), 1, "printed once");
    assert_eq!(
        printed[0].configuration["copies"], 2,
        "with the chosen copies"
    );

    // The refused ones were never acted on, and can be released now.
    assert!(
        control
            .printed(&bed.queue)
            .iter()
            .all(|p| p.job_id != refused_job)
    );
    let response = bed
        .post(&ada, &format!("/api/v1/jobs/{refused}/release"), json!({}))
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        bed.store.held_job(&kept).await.unwrap().unwrap().state,
        JobState::Held
    );
    bed.stop().await;
}
