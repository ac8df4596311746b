//! The Graph client against the Universal Print emulator: every operation the daemon uses, checked
//! against Microsoft's official request schemas, and the client's resilience to throttling, outages and
//! expiring tokens.
#![allow(clippy::unwrap_used)]

#[path = "../support/graph_schema.rs"]
mod graph_schema;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pullprintd::emulator::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorOptions, Faults, NewJob, NewPrinter,
    RouteFault,
};
use pullprintd::graph::{
    Cloud, Credential, Expand, GraphClient, GraphObserver, GraphOptions, NewSubscription,
    PrintColorMode, PrintDuplexMode, PrintJobConfiguration, PrintTaskProcessingState, RetryPolicy,
    parse_parent_url,
};
use secrecy::SecretString;
use serde_json::json;
use url::Url;

/// Counts what the client reports, to prove tokens were refreshed and requests retried.
#[derive(Debug, Default)]
struct Counts {
    token_refreshes: AtomicU32,
    retries: AtomicU32,
}

impl GraphObserver for Counts {
    fn on_retry(&self, _op: &'static str, _attempt: u32, _delay: Duration) {
        self.retries.fetch_add(1, Ordering::Relaxed);
    }
    fn on_token_refresh(&self) {
        self.token_refreshes.fetch_add(1, Ordering::Relaxed);
    }
}

fn root(emulator: &Emulator) -> Url {
    Url::parse(emulator.url().as_str().trim_end_matches('/')).unwrap()
}

fn client(emulator: &Emulator, retry: RetryPolicy, observer: Option<Arc<Counts>>) -> GraphClient {
    let mut options = GraphOptions::new(
        Cloud::Global,
        emulator.tenant_id(),
        DEMO_CLIENT_ID,
        Credential::ClientSecret(SecretString::from(DEMO_CLIENT_SECRET)),
    );
    options.base_url = Some(root(emulator));
    options.login_url = Some(root(emulator));
    options.retry = retry;
    options.observer = observer.map(|o| o as Arc<dyn GraphObserver>);
    GraphClient::new(options).unwrap()
}

/// A printer with our trigger, and the definition it is bound to.
async fn queue_printer(emulator: &Emulator, client: &GraphClient) -> (String, String) {
    let definition = client.create_task_definition("pullprintd").await.unwrap();
    let printer = emulator
        .control()
        .create_printer(NewPrinter {
            display_name: "Floor 2".into(),
            ..Default::default()
        })
        .unwrap();
    let printer_id = printer["id"].as_str().unwrap().to_owned();
    emulator
        .control()
        .create_trigger(&printer_id, &definition.id)
        .unwrap();
    (printer_id, definition.id)
}

fn submit(emulator: &Emulator, printer_id: &str, upn: &str, name: &str) -> (String, String) {
    let job = emulator
        .control()
        .submit_job(NewJob {
            printer_id: printer_id.into(),
            user_principal_name: upn.into(),
            document_name: Some(name.into()),
            ..Default::default()
        })
        .unwrap();
    (job.job_id, job.task_id.expect("a held job has a task"))
}

/// A tiny receiver that answers Graph's validation handshake, for subscriptions.
async fn notification_receiver() -> String {
    use axum::extract::Query;
    use std::collections::HashMap;
    let app = axum::Router::new().route(
        "/graph/notifications",
        axum::routing::post(|Query(q): Query<HashMap<String, String>>| async move {
            match q.get("validationToken") {
                Some(token) => (
                    axum::http::StatusCode::OK,
                    [(axum::http::header::CONTENT_TYPE, "text/plain")],
                    token.clone(),
                ),
                None => (
                    axum::http::StatusCode::ACCEPTED,
                    [(axum::http::header::CONTENT_TYPE, "text/plain")],
                    String::new(),
                ),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/graph/notifications")
}

#[tokio::test]
async fn every_request_the_client_sends_is_valid_against_the_official_graph_schema() {
    let record = Path::new(env!("CARGO_TARGET_TMPDIR")).join("graph-client-requests.jsonl");
    let _ = std::fs::remove_file(&record);
    let emulator = Emulator::start(EmulatorOptions {
        record_path: Some(record.clone()),
        device_code_interval: Duration::from_secs(1),
        ..Default::default()
    })
    .await
    .unwrap();
    let graph = client(&emulator, RetryPolicy::default(), None);

    // Task definitions, as `setup` uses them.
    let definition = graph.create_task_definition("pullprintd").await.unwrap();
    assert!(
        graph
            .list_task_definitions()
            .await
            .unwrap()
            .iter()
            .any(|d| d.id == definition.id)
    );
    graph.get_task_definition(&definition.id).await.unwrap();

    // Triggers need a Printer Administrator's delegated token (device code).
    let printer = emulator
        .control()
        .create_printer(NewPrinter {
            display_name: "Lobby".into(),
            ..Default::default()
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let destination = emulator
        .control()
        .create_printer(NewPrinter {
            display_name: "Floor 3".into(),
            ..Default::default()
        })
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let control = emulator.control();
    let admin = graph
        .sign_in_with_device_code(|prompt| {
            control
                .approve_device_code(&prompt.user_code, "admin@contoso.com", true)
                .unwrap();
        })
        .await
        .unwrap();
    let trigger = graph
        .create_task_trigger(&admin, &printer, &definition.id)
        .await
        .unwrap();
    assert_eq!(
        graph
            .list_task_triggers(&admin, &printer)
            .await
            .unwrap()
            .len(),
        1
    );
    graph.get_printer(&printer).await.unwrap();

    // Held jobs: list tasks, look up, patch, complete; abort; redirect.
    let (released, released_task) = submit(&emulator, &printer, "ada@contoso.com", "Report.pdf");
    let (deleted, deleted_task) = submit(&emulator, &printer, "ada@contoso.com", "Draft.pdf");
    let (moved, _) = submit(&emulator, &printer, "grace@contoso.com", "Slides.pdf");
    let tasks = graph.list_tasks(&definition.id).await.unwrap();
    assert_eq!(tasks.len(), 3);
    let task = graph
        .get_task(&definition.id, &released_task)
        .await
        .unwrap();
    assert_eq!(parse_parent_url(&task.parent_url).unwrap().job_id, released);
    let job = graph
        .get_job(&printer, &released, &[Expand::Documents])
        .await
        .unwrap();
    graph
        .get_job(&printer, &released, &[Expand::Tasks])
        .await
        .unwrap();
    assert_eq!(
        graph
            .list_jobs(&printer, Some("ada@contoso.com"))
            .await
            .unwrap()
            .len(),
        2
    );
    let mut configuration = job.configuration.clone();
    configuration.copies = Some(2);
    configuration.duplex_mode = Some(PrintDuplexMode::FlipOnLongEdge);
    configuration.color_mode = Some(PrintColorMode::BlackAndWhite);
    graph
        .update_job_configuration(&printer, &released, &configuration)
        .await
        .unwrap();
    graph
        .update_task_status(
            &definition.id,
            &released_task,
            &PrintTaskProcessingState::Completed,
            "Released at the lobby station",
        )
        .await
        .unwrap();
    graph
        .abort_job(&printer, &deleted, Some("Deleted by its owner"))
        .await
        .unwrap();
    graph
        .update_task_status(
            &definition.id,
            &deleted_task,
            &PrintTaskProcessingState::Aborted,
            "Deleted by its owner",
        )
        .await
        .unwrap();
    graph
        .redirect_job(
            &printer,
            &moved,
            &destination,
            Some(&PrintJobConfiguration {
                copies: Some(1),
                ..Default::default()
            }),
        )
        .await
        .unwrap();

    // Subscriptions.
    let url = notification_receiver().await;
    let expiry = emulator.control().now() + time::Duration::minutes(4_000);
    let subscription = graph
        .create_subscription(&NewSubscription {
            change_type: "created".into(),
            notification_url: url.clone(),
            lifecycle_notification_url: Some(url),
            resource: format!("print/taskDefinitions/{}/tasks", definition.id),
            expiration_date_time: expiry,
            client_state: SecretString::from("a-client-state-of-ours"),
        })
        .await
        .unwrap();
    graph
        .renew_subscription(&subscription.id, expiry + time::Duration::minutes(60))
        .await
        .unwrap();
    graph
        .reauthorize_subscription(&subscription.id)
        .await
        .unwrap();
    graph.delete_subscription(&subscription.id).await.unwrap();
    graph
        .delete_task_trigger(&admin, &printer, &trigger.id)
        .await
        .unwrap();

    // The emulator printed what was released, as it was configured.
    let printed = emulator.control().printed(&printer);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0].configuration["copies"], json!(2));
    assert_eq!(emulator.control().printed(&destination).len(), 1);

    emulator.shutdown().await;
    let report = graph_schema::GraphSchema::load().check_log(&record);
    println!("{report}");
    // scripts/test.sh shows the figure in its log.
    std::fs::write(record.with_extension("summary"), format!("{report}\n")).unwrap();
    assert!(
        report.all_valid(),
        "recorded Graph requests are not all valid against Microsoft's schema:\n{report}"
    );
    // One request per operation above: 21 distinct Graph calls.
    assert_eq!(report.total, 21, "every operation was recorded once");
}

#[tokio::test]
async fn every_call_succeeds_through_a_throttling_and_outage_storm_with_expiring_tokens() {
    let emulator = Emulator::start(EmulatorOptions {
        seed: 7,
        ..Default::default()
    })
    .await
    .unwrap();
    let counts = Arc::new(Counts::default());
    // Generous bounds: with 40 % of requests refused, eight attempts in a row fail once in 1,500 calls.
    let retry = RetryPolicy {
        max_attempts: 40,
        max_elapsed: Duration::from_secs(120),
        min_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
    };
    let graph = client(&emulator, retry, Some(counts.clone()));
    let (printer, definition) = queue_printer(&emulator, &graph).await;
    let jobs: Vec<(String, String)> = (0..30)
        .map(|i| submit(&emulator, &printer, "ada@contoso.com", &format!("Doc {i}")))
        .collect();

    emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            route: "*".into(),
            rate_429: 0.3,
            retry_after_secs: 1,
            rate_503: 0.1,
            ..Default::default()
        }],
        ..Default::default()
    });
    emulator
        .control()
        .set_token_lifetime(Duration::from_secs(2));

    let tasks = graph.list_tasks(&definition).await.unwrap();
    assert_eq!(tasks.len(), jobs.len());
    let mut work = tokio::task::JoinSet::new();
    for (index, (job_id, task_id)) in jobs.iter().cloned().enumerate() {
        let graph = graph.clone();
        let printer = printer.clone();
        let definition = definition.clone();
        let emulator_control = emulator.control();
        work.spawn(async move {
            let job = graph.get_job(&printer, &job_id, &[]).await.unwrap();
            let mut configuration = job.configuration;
            configuration.copies = Some(3);
            graph
                .update_job_configuration(&printer, &job_id, &configuration)
                .await
                .unwrap();
            if index == 10 {
                // Every token issued so far is now expired: the next calls get 401 and refresh.
                emulator_control.advance_clock(time::Duration::hours(2));
            }
            graph
                .update_task_status(
                    &definition,
                    &task_id,
                    &PrintTaskProcessingState::Completed,
                    "Released",
                )
                .await
                .unwrap();
        });
    }
    while let Some(done) = work.join_next().await {
        done.unwrap();
    }

    let printed = emulator.control().printed(&printer);
    assert_eq!(printed.len(), jobs.len(), "every job printed exactly once");
    assert!(
        printed
            .iter()
            .all(|p| p.configuration["copies"] == json!(3))
    );
    let calls = emulator.control().call_counts();
    let refused: u64 = calls
        .values()
        .flat_map(|by_status| by_status.iter())
        .filter(|(status, _)| matches!(**status, 429 | 503 | 401))
        .map(|(_, n)| *n)
        .sum();
    assert!(refused > 10, "the storm refused only {refused} requests");
    assert!(counts.retries.load(Ordering::Relaxed) > 10);
    assert!(
        counts.token_refreshes.load(Ordering::Relaxed) >= 2,
        "tokens were refreshed as they expired"
    );
    emulator.shutdown().await;
}

#[tokio::test]
async fn a_printers_status_set_by_a_test_is_served_by_get_printer_as_graph_documents_it() {
    let emulator = Emulator::start(EmulatorOptions::default()).await.unwrap();
    let client = client(&emulator, RetryPolicy::default(), None);
    let (printer_id, _) = queue_printer(&emulator, &client).await;
    let idle = client.get_printer(&printer_id).await.unwrap();
    assert_eq!(idle.status.unwrap().state.as_str(), "idle");
    emulator
        .control()
        .set_printer_status(
            &printer_id,
            &pullprintd::emulator::PrinterStatusChange {
                state: "stopped".into(),
                details: vec!["mediaJam".into(), "coverOpen".into()],
                description: "Paper jam in tray 2".into(),
                is_accepting_jobs: Some(false),
            },
        )
        .unwrap();
    let jammed = client.get_printer(&printer_id).await.unwrap();
    let status = jammed.status.unwrap();
    assert_eq!(status.state.as_str(), "stopped");
    assert_eq!(status.details, ["mediaJam", "coverOpen"]);
    assert_eq!(status.description.as_deref(), Some("Paper jam in tray 2"));
    assert_eq!(jammed.is_accepting_jobs, Some(false));
    let refused = reqwest::Client::new()
        .put(format!(
            "{}_emulator/printers/{printer_id}/status",
            emulator.url()
        ))
        .json(&json!({"state": "jammed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "not a printerProcessingState member");
    emulator.shutdown().await;
}
