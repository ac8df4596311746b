//! Parsing never panics: arbitrary input to every parser of outside data gives an error or a value.
//!
//! Property tests (proptest) over the webhook handler and the inbox worker (notification payloads),
//! the Graph model's `Deserialize` (printJob, printTask, printer, a page of jobs, notifications), the
//! configuration file (`Settings::from_toml`) and the users file (`UserDirectory::parse`). Inputs are
//! both raw strings and structured values built from the real field names, so the generator reaches
//! past the first syntax error into the typed fields. Case counts are modest to keep the run short.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::sync::Arc;

use engine_support::Bed;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use pullprintd::clock::SystemClock;
use pullprintd::config::Settings;
use pullprintd::graph::RetryPolicy;
use pullprintd::graph::model::{
    ChangeNotification, ChangeNotificationCollection, Page, PrintJob, PrintTask, Printer,
};
use pullprintd::intake::Intake;
use pullprintd::intake::inbox::InboxWorker;
use pullprintd::intake::poller::Poller;
use pullprintd::intake::webhook::Webhook;
use pullprintd::metrics::Metrics;
use pullprintd::station::users::UserDirectory;
use pullprintd::store::Store;
use serde_json::{Map, Value, json};
use tokio::sync::Notify;

const CLIENT_STATE: &str = "the-client-state-0123456789";

/// Field names of the Graph resources and notifications: generated objects use them, so the typed
/// fields see wrong types, missing parts and odd nesting, not only unknown keys.
const KEYS: &[&str] = &[
    "id",
    "state",
    "status",
    "description",
    "details",
    "configuration",
    "copies",
    "colorMode",
    "duplexMode",
    "orientation",
    "mediaSize",
    "pageRanges",
    "margin",
    "dpi",
    "quality",
    "start",
    "end",
    "top",
    "createdDateTime",
    "isFetchable",
    "redirectedFrom",
    "redirectedTo",
    "documents",
    "createdBy",
    "userPrincipalName",
    "displayName",
    "definition",
    "triggers",
    "capabilities",
    "defaults",
    "copiesPerJob",
    "colorModes",
    "duplexModes",
    "mediaSizes",
    "location",
    "isShared",
    "value",
    "@odata.nextLink",
    "@odata.type",
    "subscriptionId",
    "clientState",
    "changeType",
    "resource",
    "resourceData",
    "parentUrl",
    "lifecycleEvent",
    "tenantId",
    "expirationDateTime",
    "task",
    "jobs",
    "processingState",
    "size",
    "contentType",
    "finishings",
    "pagesPerSheet",
];

/// Words the enums and ids use, plus the odd values that break naive code.
const WORDS: &[&str] = &[
    "processing",
    "completed",
    "aborted",
    "pending",
    "paused",
    "canceled",
    "stopped",
    "unknownFutureValue",
    "color",
    "blackAndWhite",
    "grayscale",
    "oneSided",
    "flipOnLongEdge",
    "A4",
    "created",
    "updated",
    "missed",
    "reauthorizationRequired",
    "subscriptionRemoved",
    "2026-01-01T00:00:00Z",
    "not-a-date",
    "",
    " ",
    "\u{0}",
    "é",
    "https://graph.microsoft.com/v1.0/print/printers/p/jobs/1",
    "print/taskDefinitions/d/tasks/t",
    "/print/printers//jobs/",
    "-1",
    "1e309",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,16}".prop_map(Value::String),
        prop::sample::select(WORDS).prop_map(|w| json!(w)),
    ];
    leaf.prop_recursive(4, 48, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

/// Raw text: arbitrary strings, and generated JSON possibly cut short.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,64}",
        json_value().prop_map(|v| v.to_string()),
        (json_value(), any::<prop::sample::Index>()).prop_map(|(v, cut)| {
            let text = v.to_string();
            let at = cut.index(text.len() + 1);
            text.get(..at).unwrap_or(&text).to_owned()
        }),
    ]
}

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        // No regression files written into the source tree; a failure prints its input.
        failure_persistence: None,
        ..Config::default()
    })
}

/// Valid Graph answers (shapes from Microsoft's documentation), the seeds of the mutations below.
fn samples() -> Vec<Value> {
    let job = json!({
        "id": "5182", "isFetchable": false, "redirectedFrom": null, "redirectedTo": null,
        "createdDateTime": "2026-01-02T10:00:00Z", "acknowledgedDateTime": null, "errorCode": null,
        "createdBy": {"id": "u1", "displayName": "Ada", "userPrincipalName": "ada@contoso.com"},
        "status": {"state": "processing", "description": "", "details": ["interpreting"]},
        "configuration": {"copies": 2, "colorMode": "color", "duplexMode": "oneSided",
            "orientation": "portrait", "mediaSize": "A4", "dpi": 600, "quality": "high",
            "pageRanges": [{"start": 1, "end": 3}], "margin": {"top": 0, "bottom": 0, "left": 0, "right": 0},
            "finishings": ["none"], "pagesPerSheet": 1, "fitPdfToPage": false},
        "documents": [{"id": "d1", "displayName": "a.pdf", "contentType": "application/pdf", "size": 1234}],
        "tasks": [{"id": "t1", "parentUrl": "https://graph.microsoft.com/v1.0/print/printers/p/jobs/5182",
            "status": {"state": "processing", "description": "waiting"}}]
    });
    let task = json!({
        "id": "t1", "parentUrl": "https://graph.microsoft.com/v1.0/print/printers/p/jobs/5182",
        "status": {"state": "processing", "description": "Waiting for release"},
        "definition": {"id": "d", "displayName": "Pull printing"},
        "trigger": {"id": "tr", "event": "jobStarted"}
    });
    let printer = json!({
        "id": "p", "displayName": "Queue", "manufacturer": "Contoso", "model": "X", "isShared": true,
        "isAcceptingJobs": true, "status": {"state": "idle", "details": [], "description": ""},
        "location": {"building": "1", "floor": "2"},
        "capabilities": {"copiesPerJob": {"start": 1, "end": 99}, "colorModes": ["color", "grayscale"],
            "duplexModes": ["oneSided"], "mediaSizes": ["A4"], "dpis": [600], "orientations": ["portrait"],
            "qualities": ["high"], "finishings": ["none"], "pagesPerSheet": [1, 2]},
        "defaults": {"copiesPerJob": 1, "colorMode": "color", "duplexMode": "oneSided", "mediaSize": "A4"}
    });
    let page = json!({"value": [job, job], "@odata.nextLink": "https://graph.microsoft.com/v1.0/print/printers/p/jobs?$skiptoken=x"});
    let tasks = json!({"value": [task]});
    let notification = json!({"value": [{
        "subscriptionId": "s", "clientState": CLIENT_STATE, "changeType": "created",
        "resource": "print/taskDefinitions/d/tasks/t1", "tenantId": "x",
        "subscriptionExpirationDateTime": "2026-01-02T10:00:00Z",
        "resourceData": {"@odata.type": "#microsoft.graph.printTask", "id": "t1",
            "parentUrl": "https://graph.microsoft.com/v1.0/print/printers/p/jobs/5182"}
    }, {"subscriptionId": "s", "clientState": CLIENT_STATE, "lifecycleEvent": "missed"}]});
    vec![job, task, printer, page, tasks, notification]
}

/// Every JSON pointer inside `value`, the root included.
fn pointers(value: &Value, at: &str, out: &mut Vec<String>) {
    out.push(at.to_owned());
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                pointers(
                    child,
                    &format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                pointers(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A valid sample with a few parts replaced by anything, removed or nulled.
fn mutated_sample() -> impl Strategy<Value = Value> {
    let step = (any::<prop::sample::Index>(), 0..3u8, json_value());
    (
        prop::sample::select(samples()),
        prop::collection::vec(step, 1..4),
    )
        .prop_map(|(mut value, steps)| {
            for (which, how, replacement) in steps {
                let mut all = Vec::new();
                pointers(&value, "", &mut all);
                let at = which.get(&all).clone();
                let Some((parent, key)) = at.rsplit_once('/') else {
                    value = replacement;
                    continue;
                };
                match (how, value.pointer_mut(parent)) {
                    (0, Some(Value::Object(map))) => {
                        map.remove(&key.replace("~1", "/").replace("~0", "~"));
                    }
                    (1, Some(_)) => {
                        if let Some(slot) = value.pointer_mut(&at) {
                            *slot = Value::Null;
                        }
                    }
                    _ => {
                        if let Some(slot) = value.pointer_mut(&at) {
                            *slot = replacement;
                        }
                    }
                }
            }
            value
        })
}

/// Every Graph type the daemon reads, parsed from `text`; true when any of them accepted it.
fn parse_all(text: &str) -> bool {
    [
        serde_json::from_str::<PrintJob>(text).is_ok(),
        serde_json::from_str::<PrintTask>(text).is_ok(),
        serde_json::from_str::<Printer>(text).is_ok(),
        serde_json::from_str::<Page<PrintJob>>(text).is_ok(),
        serde_json::from_str::<Page<PrintTask>>(text).is_ok(),
        serde_json::from_str::<ChangeNotification>(text).is_ok(),
        serde_json::from_str::<ChangeNotificationCollection>(text).is_ok(),
    ]
    .contains(&true)
}

#[test]
fn the_samples_the_mutations_start_from_are_valid_graph_answers() {
    for sample in samples() {
        assert!(parse_all(&sample.to_string()), "{sample}");
    }
}

#[test]
fn graph_responses_of_any_shape_deserialize_to_a_value_or_an_error() {
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    let input = prop_oneof![json_text(), mutated_sample().prop_map(|v| v.to_string()),];
    runner(768)
        .run(&input, |text| {
            if parse_all(&text) {
                accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    // The mutations reach the typed fields: a fair share still parses, the rest is refused.
    let accepted = accepted.into_inner();
    eprintln!("Graph responses: {accepted} of 768 generated inputs parsed, the rest refused");
    assert!(
        accepted > 50,
        "only {accepted} parsed: the generator misses the types"
    );
}

/// TOML text built from the configuration's real sections and keys with values of any type.
fn settings_text() -> impl Strategy<Value = String> {
    const SECTIONS: &[&str] = &[
        "graph",
        "printing",
        "intake",
        "release",
        "api",
        "store",
        "users",
        "policy",
        "log",
        "[stations]",
    ];
    const SETTING_KEYS: &[&str] = &[
        "tenant_id",
        "client_id",
        "client_secret",
        "certificate_path",
        "cloud",
        "base_url",
        "login_url",
        "request_timeout",
        "task_definition_id",
        "queue_printers",
        "mode",
        "poll_interval",
        "public_url",
        "confirm_wait",
        "hold_timeout",
        "listen",
        "admin_key",
        "path",
        "file",
        "id",
        "printer_id",
        "key",
        "max_concurrent",
        "max_copies",
        "level",
    ];
    let value = prop_oneof![
        "\"[^\"\\\\]{0,12}\"",
        any::<i64>().prop_map(|n| n.to_string()),
        Just("true".to_owned()),
        Just("\"30s\"".to_owned()),
        Just("\"-1s\"".to_owned()),
        Just("\"0s\"".to_owned()),
        Just("\"http://127.0.0.1:1\"".to_owned()),
        Just("[\"a\", 1]".to_owned()),
        Just("{ x = 1 }".to_owned()),
    ];
    let line = (prop::sample::select(SETTING_KEYS), value).prop_map(|(k, v)| format!("{k} = {v}"));
    let section = (
        prop::sample::select(SECTIONS),
        prop::collection::vec(line, 0..6),
    )
        .prop_map(|(name, lines)| format!("[{name}]\n{}\n", lines.join("\n")));
    // A valid minimal file followed by generated sections: reaches the checks past the syntax.
    let minimal = "[graph]\ntenant_id = \"contoso.onmicrosoft.com\"\n\
                   client_id = \"00000000-0000-0000-0000-000000000001\"\nclient_secret = \"s3cret\"\n";
    prop_oneof![
        ".{0,64}",
        prop::collection::vec(section.clone(), 0..6).prop_map(|s| s.concat()),
        prop::collection::vec(section, 0..3).prop_map(move |s| format!("{minimal}{}", s.concat())),
    ]
}

#[test]
fn any_configuration_text_is_read_or_refused_never_a_panic() {
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    runner(256)
        .run(&settings_text(), |text| {
            match Settings::from_toml(&text) {
                Ok(_) => {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
            Ok(())
        })
        .unwrap();
    let accepted = accepted.into_inner();
    eprintln!("configuration: {accepted} of 256 generated files accepted, the rest refused");
    assert!(accepted > 0, "the generator never reaches a valid file");
}

fn users_text() -> impl Strategy<Value = String> {
    const USER_KEYS: &[&str] = &["upn", "display_name", "card", "pin_hash", "printer_admin"];
    let value = prop_oneof![
        "\"[^\"\\\\]{0,16}\"",
        Just("\"ada@contoso.com\"".to_owned()),
        Just("\"$argon2id$v=19$m=19456,t=2,p=1$YWJj$Zm\"".to_owned()),
        Just("\"$argon2id$garbage\"".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("[]".to_owned()),
    ];
    let line = (prop::sample::select(USER_KEYS), value).prop_map(|(k, v)| format!("{k} = {v}"));
    let user = prop::collection::vec(line, 0..6)
        .prop_map(|lines| format!("[[user]]\n{}\n", lines.join("\n")));
    prop_oneof![
        ".{0,64}",
        prop::collection::vec(user, 0..4).prop_map(|u| u.concat()),
    ]
}

#[test]
fn any_users_file_is_read_or_refused_never_a_panic() {
    let accepted = std::sync::atomic::AtomicUsize::new(0);
    runner(256)
        .run(&users_text(), |text| {
            match UserDirectory::parse(&text) {
                Ok(_) => {
                    accepted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(problem) => prop_assert!(!problem.is_empty()),
            }
            Ok(())
        })
        .unwrap();
    let accepted = accepted.into_inner();
    eprintln!("users file: {accepted} of 256 generated files accepted, the rest refused");
    assert!(accepted > 0, "the generator never reaches a valid file");
}

/// A notification batch whose items carry the right clientState (so they reach the inbox) and
/// anything else in any shape; or any text at all.
fn notification_body() -> impl Strategy<Value = String> {
    let item = json_value().prop_map(|v| {
        let mut item = match v {
            Value::Object(map) => map,
            other => Map::from_iter([("resourceData".to_owned(), other)]),
        };
        item.insert("clientState".to_owned(), json!(CLIENT_STATE));
        Value::Object(item)
    });
    prop_oneof![
        json_text(),
        prop::collection::vec(item, 0..4).prop_map(|items| json!({"value": items}).to_string()),
        mutated_sample().prop_map(|v| v.to_string()),
    ]
}

#[test]
fn any_notification_body_is_answered_without_a_5xx_and_the_inbox_drains_it_without_a_panic() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (addr, worker, store) = rt.block_on(async {
        let bed = Box::leak(Box::new(Bed::default().await));
        let store = Store::open_in(bed.dir.path()).await.unwrap();
        let retry = RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        };
        let intake = Intake::new(
            store.clone(),
            bed.graph(SystemClock::shared(), retry),
            SystemClock::shared(),
            &bed.definition,
        );
        let wake = Arc::new(Notify::new());
        let webhook = Webhook::new(
            store.clone(),
            SystemClock::shared(),
            CLIENT_STATE.to_owned().into(),
            wake.clone(),
            Metrics::default(),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, webhook.router()).await });
        let worker = InboxWorker::new(intake.clone(), wake, Poller::new(intake), None);
        (addr, worker, store)
    });
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/graph/notifications");
    let received = std::sync::atomic::AtomicUsize::new(0);
    runner(96)
        .run(&notification_body(), |body| {
            let status = rt.block_on(async {
                let status = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap()
                    .status();
                // The worker parses what was stored: every item ends done or retried, no panic.
                worker.drain().await.unwrap();
                status
            });
            prop_assert!(
                status == 202 || status == 400,
                "the webhook answered {status} to {body}"
            );
            if status == 202 {
                received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Ok(())
        })
        .unwrap();
    assert!(received.into_inner() > 0, "some bodies reached the inbox");
    rt.block_on(store.close());
}
