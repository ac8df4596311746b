//! The assembled daemon: poll-only intake to release end to end, `/healthz`, and start-up errors
//! mapped to their exit codes.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::time::Duration;

use engine_support::{Bed, RunningApp, action, eventually};
use pullprintd::app::{App, AppOptions};
use pullprintd::release::service::Submitted;
use pullprintd::store::{ActionKind, DiscoveredVia, Outcome};

#[tokio::test]
async fn in_poll_mode_a_job_is_held_by_polling_and_released_through_the_service() {
    let bed = Bed::default().await;
    let settings = bed.settings("mode = \"poll\"\npoll_interval = \"1s\"", "poll.db");
    let app = RunningApp::start(settings, AppOptions::default()).await;
    let health = reqwest::get(format!("http://{}/healthz", app.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);

    let submitted = bed.submit("ada@contoso.example", "report.pdf");
    let task = submitted.task_id.unwrap();
    eventually(Duration::from_secs(10), "the job held by a poll", || {
        let service = app.service.clone();
        async move {
            !service
                .held_jobs("ADA@contoso.example")
                .await
                .unwrap()
                .is_empty()
        }
    })
    .await;
    let held = app.store.held_job(&task).await.unwrap().unwrap();
    assert!(matches!(
        held.job.discovered_via,
        DiscoveredVia::Poll | DiscoveredVia::Reconcile
    ));
    assert!(
        bed.emulator.control().subscriptions().is_empty(),
        "no subscription in poll mode"
    );

    let answer = app
        .service
        .submit(action(&task, ActionKind::Release, None, None))
        .await
        .unwrap();
    match answer {
        Submitted::Done(done) => assert_eq!(done.outcome, Outcome::Released, "{}", done.detail),
        Submitted::Queued { .. } => panic!("Graph is fast here: the answer is the outcome"),
    }
    assert_eq!(bed.emulator.control().printed(&bed.queue).len(), 1);
    assert!(app.service.all_held_jobs().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_missing_task_definition_is_a_configuration_error_and_a_busy_port_is_unavailable() {
    let bed = Bed::default().await;
    let mut settings = bed.settings("mode = \"poll\"", "errors.db");
    settings.printing.task_definition_id = String::new();
    let error = App::build(settings, AppOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.exit_code(), pullprintd::exit::CONFIG);
    assert!(error.to_string().contains("pullprintd setup"), "{error}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut settings = bed.settings("mode = \"poll\"", "errors.db");
    settings.api.listen = taken.local_addr().unwrap();
    let error = App::build(settings, AppOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.exit_code(), pullprintd::exit::UNAVAILABLE);
}

#[tokio::test]
async fn a_store_in_a_missing_directory_is_a_configuration_error() {
    let bed = Bed::default().await;
    let mut settings = bed.settings("mode = \"poll\"", "x.db");
    settings.store.path = Some(bed.dir.path().join("missing").join("state.db"));
    let error = App::build(settings, AppOptions::default())
        .await
        .unwrap_err();
    assert_eq!(error.exit_code(), pullprintd::exit::CONFIG, "{error}");
}
