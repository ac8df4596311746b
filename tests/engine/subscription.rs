//! The subscription's lifecycle with injected time: days pass in milliseconds (a ManualClock for the
//! daemon, the emulator's clock moved through its control).
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::time::Duration;

use engine_support::{Bed, RunningApp, eventually};
use pullprintd::app::AppOptions;
use pullprintd::clock::{ManualClock, SystemClock};
use pullprintd::emulator::{Faults, RouteFault};
use pullprintd::graph::RetryPolicy;

const LIST: &str = "GET /print/taskDefinitions/{id}/tasks";
const REAUTHORIZE: &str = "POST /subscriptions/{id}/reauthorize";

#[tokio::test]
async fn the_subscription_is_renewed_reauthorized_and_recreated_when_lost() {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    let clock = ManualClock::new(control.now());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = bed.settings(
        &format!(
            "mode = \"both\"\npoll_interval = \"1h\"\npublic_url = \"http://127.0.0.1:{port}/graph/notifications\""
        ),
        "subscription.db",
    );
    settings.api.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let app = RunningApp::start(
        settings,
        AppOptions {
            clock: clock.clone(),
            subscription_check: Duration::from_millis(50),
            ..AppOptions::default()
        },
    )
    .await;

    eventually(Duration::from_secs(10), "the subscription", || {
        let control = control.clone();
        async move { control.subscriptions().len() == 1 }
    })
    .await;
    let first = control.subscriptions().pop().unwrap();
    assert!(
        first.resource.contains(&bed.definition),
        "{}",
        first.resource
    );
    assert_eq!(
        first.lifecycle_notification_url.as_deref(),
        Some(first.notification_url.as_str())
    );

    // More than half the lifetime passes: the daemon renews before Graph would drop it.
    let days = time::Duration::minutes(2200);
    control.advance_clock(days);
    clock.advance(days);
    eventually(Duration::from_secs(10), "the renewal", || {
        let control = control.clone();
        let before = first.expiration_date_time.clone();
        async move {
            control
                .subscriptions()
                .first()
                .is_some_and(|s| s.expiration_date_time != before)
        }
    })
    .await;
    assert_eq!(control.subscriptions().len(), 1);
    assert_eq!(
        control.subscriptions()[0].id,
        first.id,
        "renewed, not replaced"
    );

    // reauthorizationRequired: reauthorize, then poll (notifications during the pause are lost).
    let lists_before = control.calls_to(LIST);
    control.send_lifecycle_event(&first.id).unwrap();
    eventually(Duration::from_secs(10), "reauthorization and a poll", || {
        let control = control.clone();
        async move { control.calls_to(REAUTHORIZE) == 1 && control.calls_to(LIST) > lists_before }
    })
    .await;

    // Lost (deleted at Graph): the next renewal finds 404 and creates a new one.
    bed.graph(SystemClock::shared(), RetryPolicy::none())
        .delete_subscription(&first.id)
        .await
        .unwrap();
    assert!(control.subscriptions().is_empty());
    control.advance_clock(days);
    clock.advance(days);
    eventually(Duration::from_secs(10), "a new subscription", || {
        let control = control.clone();
        async move { control.subscriptions().len() == 1 }
    })
    .await;
    let new_id = control.subscriptions()[0].id.clone();
    assert_ne!(new_id, first.id);
    // Graph shows the new subscription as soon as it answers the POST; the daemon saves it just after.
    eventually(
        Duration::from_secs(10),
        "the new subscription in the store",
        || {
            let store = app.store.clone();
            let new_id = new_id.clone();
            async move {
                store
                    .subscription()
                    .await
                    .ok()
                    .flatten()
                    .is_some_and(|saved| saved.id == new_id)
            }
        },
    )
    .await;
    app.stop().await;
}

#[tokio::test]
async fn a_subscription_refused_at_start_up_is_tried_again_within_seconds_not_at_the_next_check() {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    // Graph refuses the first creations; the regular check is a minute away (the daemon's default).
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "POST /subscriptions".into(),
            rate_403: 1.0,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut settings = bed.settings(
        &format!(
            "mode = \"both\"\npoll_interval = \"1h\"\npublic_url = \"http://127.0.0.1:{port}/graph/notifications\""
        ),
        "subscription-retry.db",
    );
    settings.api.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let app = RunningApp::start(
        settings,
        AppOptions {
            subscription_check: Duration::from_secs(60),
            ..AppOptions::default()
        },
    )
    .await;
    eventually(Duration::from_secs(10), "a refused creation", || {
        let control = control.clone();
        async move { control.calls_to("POST /subscriptions") >= 1 }
    })
    .await;
    control.set_faults(Faults::default());
    eventually(
        Duration::from_secs(15),
        "the subscription, long before the minute's check",
        || {
            let store = app.store.clone();
            async move { store.subscription().await.ok().flatten().is_some() }
        },
    )
    .await;
    assert_eq!(control.subscriptions().len(), 1);
    app.stop().await;
}
