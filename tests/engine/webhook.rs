//! Notification intake through the whole daemon: the emulator's subscription posts to the App's real
//! listener on 127.0.0.1; handshake, clientState, duplicates, the minimum Graph calls, and an
//! acknowledgement that never waits on Graph.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::time::{Duration, Instant};

use engine_support::{Bed, RunningApp, eventually};
use pullprintd::app::AppOptions;
use pullprintd::emulator::{EmulatorOptions, Faults, NotificationFaults, RouteFault};
use pullprintd::store::DiscoveredVia;
use secrecy::ExposeSecret;
use serde_json::json;

const LIST: &str = "GET /print/taskDefinitions/{id}/tasks";
const GET_JOB: &str = "GET /print/printers/{id}/jobs/{id}";
const GET_TASK: &str = "GET /print/taskDefinitions/{id}/tasks/{id}";

use engine_support::free_port;

/// Starts the daemon in webhook-only mode and waits until its subscription exists and the polls it
/// triggers (start-up reconciliation, then the one after creating the subscription) are over.
async fn webhook_app(bed: &Bed) -> RunningApp {
    let port = free_port();
    let mut settings = bed.settings(
        &format!(
            "mode = \"webhook\"\npublic_url = \"http://127.0.0.1:{port}/graph/notifications\""
        ),
        "webhook.db",
    );
    settings.api.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let app = RunningApp::start(settings, AppOptions::default()).await;
    let control = bed.emulator.control();
    eventually(
        Duration::from_secs(10),
        "the subscription and its polls",
        || {
            let control = control.clone();
            async move { control.subscriptions().len() == 1 && control.calls_to(LIST) >= 2 }
        },
    )
    .await;
    control.reset_call_counts();
    app
}

async fn held_via(app: &RunningApp, task: &str) -> Option<DiscoveredVia> {
    app.store
        .held_job(task)
        .await
        .unwrap()
        .map(|held| held.job.discovered_via)
}

#[tokio::test]
async fn the_validation_handshake_echoes_the_decoded_token_as_plain_text() {
    let bed = Bed::default().await;
    let app = webhook_app(&bed).await;
    let response = reqwest::Client::new()
        .post(format!(
            "http://{}/graph/notifications?validationToken=Validation%3A%20a%2Bb%26c",
            app.addr
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(response.text().await.unwrap(), "Validation: a+b&c");
    app.stop().await;
}

#[tokio::test]
async fn a_notification_with_parent_url_costs_one_get_job() {
    let bed = Bed::default().await;
    let app = webhook_app(&bed).await;
    let task = bed
        .submit("ada@contoso.example", "report.pdf")
        .task_id
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the job held via the webhook",
        || {
            let app = &app;
            let task = task.clone();
            async move { held_via(app, &task).await.is_some() }
        },
    )
    .await;
    assert_eq!(held_via(&app, &task).await, Some(DiscoveredVia::Webhook));
    let control = bed.emulator.control();
    assert_eq!(control.calls_to(GET_JOB), 1);
    assert_eq!(control.total_calls(), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_notification_without_parent_url_costs_get_task_then_get_job() {
    let bed = Bed::start(EmulatorOptions {
        notification_parent_url: false,
        ..EmulatorOptions::default()
    })
    .await;
    let app = webhook_app(&bed).await;
    let task = bed
        .submit("ada@contoso.example", "report.pdf")
        .task_id
        .unwrap();
    eventually(
        Duration::from_secs(10),
        "the job held via the webhook",
        || {
            let app = &app;
            let task = task.clone();
            async move { held_via(app, &task).await.is_some() }
        },
    )
    .await;
    let control = bed.emulator.control();
    assert_eq!(
        (control.calls_to(GET_TASK), control.calls_to(GET_JOB)),
        (1, 1)
    );
    assert_eq!(control.total_calls(), 2);
    app.stop().await;
}

#[tokio::test]
async fn duplicated_notifications_cause_no_second_lookup() {
    let bed = Bed::start(EmulatorOptions {
        faults: Faults {
            notifications: NotificationFaults {
                duplicate_rate: 1.0,
                ..NotificationFaults::default()
            },
            ..Faults::default()
        },
        ..EmulatorOptions::default()
    })
    .await;
    let app = webhook_app(&bed).await;
    let task = bed
        .submit("ada@contoso.example", "report.pdf")
        .task_id
        .unwrap();
    let webhook = app.webhook.clone();
    eventually(Duration::from_secs(10), "both copies accepted", || {
        let webhook = webhook.clone();
        async move { webhook.accepted() >= 2 }
    })
    .await;
    eventually(Duration::from_secs(10), "the job held", || {
        let app = &app;
        let task = task.clone();
        async move { held_via(app, &task).await.is_some() }
    })
    .await;
    // Both copies are processed before the inbox is empty.
    eventually(Duration::from_secs(10), "the inbox drained", || {
        let store = app.store.clone();
        async move { store.inbox_pending(10).await.unwrap().is_empty() }
    })
    .await;
    assert_eq!(bed.emulator.control().calls_to(GET_JOB), 1);
    app.stop().await;
}

#[tokio::test]
async fn a_forged_notification_is_dropped_without_any_graph_call() {
    let bed = Bed::default().await;
    let app = webhook_app(&bed).await;
    // A real held task, so a lookup would succeed if the forgery were believed.
    let submitted = bed.submit("ada@contoso.example", "report.pdf");
    let control = bed.emulator.control();
    // The genuine notification may be on its way: wait for it, then count from zero.
    let task = submitted.task_id.unwrap();
    eventually(Duration::from_secs(10), "the genuine notification", || {
        let app = &app;
        let task = task.clone();
        async move { held_via(app, &task).await.is_some() }
    })
    .await;
    control.reset_call_counts();
    let forged = json!({"value": [{
        "subscriptionId": "s", "clientState": "guessed", "changeType": "created",
        "resource": format!("print/taskDefinitions/{}/tasks/forged-task", bed.definition),
        "resourceData": {"id": "forged-task",
            "parentUrl": format!("{}/print/printers/{}/jobs/{}", bed.emulator.graph_url(), bed.queue, submitted.job_id)}
    }]});
    let response = reqwest::Client::new()
        .post(format!("http://{}/graph/notifications", app.addr))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert_eq!(app.webhook.forged(), 1);
    // Nothing of the forgery was stored (the genuine notification may still be on its way through
    // the inbox: its job was held by whichever path came first).
    assert!(
        app.store
            .inbox_pending(100)
            .await
            .unwrap()
            .iter()
            .all(|item| !item.payload.contains("forged-task"))
    );
    assert!(!app.store.task_known("forged-task").await.unwrap());
    assert_eq!(control.total_calls(), 0);
    app.stop().await;
}

#[tokio::test]
async fn the_acknowledgement_never_waits_on_a_slow_graph() {
    let bed = Bed::default().await;
    let app = webhook_app(&bed).await;
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            latency_ms: 3_000,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let client_state = app
        .store
        .client_state_or_create(|| unreachable!("the App created it"))
        .await
        .unwrap();
    let notification = json!({"value": [{
        "subscriptionId": "s", "clientState": client_state.expose_secret(), "changeType": "created",
        "resource": format!("print/taskDefinitions/{}/tasks/t-slow", bed.definition),
        "resourceData": {"id": "t-slow"}
    }]});
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("http://{}/graph/notifications", app.addr))
        .json(&notification)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(response.status(), 202);
    assert!(
        took < Duration::from_millis(1_000),
        "answered in {took:?} although Graph takes 3 s"
    );
    // The lookup it caused is still waiting on Graph: proof the answer did not.
    assert_eq!(bed.emulator.control().calls_to(GET_TASK), 0);
    app.stop().await;
}

#[tokio::test]
async fn every_deliverys_answer_time_is_in_the_metrics_whatever_it_carried_and_the_handshake_is_not()
 {
    let bed = Bed::default().await;
    let app = webhook_app(&bed).await;
    let client = reqwest::Client::new();
    let webhook = format!("http://{}/graph/notifications", app.addr);
    let forged = json!({"value": [{"subscriptionId": "s", "clientState": "guessed",
        "changeType": "created", "resource": "print/taskDefinitions/d/tasks/t"}]});
    let answers = [
        client.post(&webhook).json(&forged).send().await.unwrap(),
        client.post(&webhook).body("not json").send().await.unwrap(),
        client
            .post(format!("{webhook}?validationToken=abc"))
            .send()
            .await
            .unwrap(),
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert_eq!(statuses, [202, 400, 200]);
    let metrics = client
        .get(format!("http://{}/metrics", app.admin_addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // No job was submitted, so the emulator delivered nothing: the two deliveries above are all.
    assert!(
        metrics.contains("pullprintd_webhook_answer_seconds_count 2\n"),
        "{metrics}"
    );
    app.stop().await;
}
