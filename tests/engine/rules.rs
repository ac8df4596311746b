//! `[[rules]]` against the emulator: each match kind and each action, forced options refused by the
//! policy or by the printer (the job is held instead), the Graph calls of an auto-release (3 with a
//! change, 2 without, from a notification with `parentUrl`), and auto-release exactly once under the
//! fault storm.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::sync::Arc;
use std::time::Duration;

use engine_support::{Bed, Engine, RunningApp, eventually};
use pullprintd::app::AppOptions;
use pullprintd::clock::SystemClock;
use pullprintd::emulator::scenario::{PrinterSpec, Scenario};
use pullprintd::emulator::{EmulatorOptions, Faults, NewJob, RouteFault};
use pullprintd::graph::RetryPolicy;
use pullprintd::intake::poller::Poller;
use pullprintd::job::{ReleasePolicy, RuleSet};
use pullprintd::store::{AuditEvent, AuditFilter, AuditRecord, DiscoveredVia, JobState, Outcome};
use serde_json::{Value, json};

const LIST: &str = "GET /print/taskDefinitions/{id}/tasks";
const GET_JOB: &str = "GET /print/printers/{id}/jobs/{id}";
const PATCH_JOB: &str = "PATCH /print/printers/{id}/jobs/{id}";
const PATCH_TASK: &str = "PATCH /print/taskDefinitions/{id}/tasks/{id}";
const REDIRECT: &str = "POST /print/printers/{id}/jobs/{id}/redirect";
const ABORT: &str = "POST /print/printers/{id}/jobs/{id}/abort";
const GET_PRINTER: &str = "GET /print/printers/{id}";

/// The `[[rules]]` tables of `text`, with `{queue}` and `{lobby}` replaced by the bed's printer ids.
fn tables(bed: &Bed, text: &str) -> Vec<toml::Table> {
    let text = text
        .replace("{queue}", &bed.queue)
        .replace("{lobby}", &bed.lobby);
    let mut file: toml::Table = toml::from_str(&text).unwrap();
    match file.remove("rules") {
        Some(toml::Value::Array(rules)) => rules
            .into_iter()
            .map(|rule| match rule {
                toml::Value::Table(table) => table,
                other => panic!("a rule is a table: {other}"),
            })
            .collect(),
        other => panic!("no [[rules]]: {other:?}"),
    }
}

/// The hand-wired engine, its intake deciding by `rules`.
async fn engine_with(bed: &Bed, rules: &str, retry: RetryPolicy) -> Engine {
    let mut engine = Engine::start(bed, SystemClock::shared(), retry, 16).await;
    let set = RuleSet::compile(&tables(bed, rules)).unwrap();
    engine.intake = engine.intake.clone().with_rules(
        Arc::new(set),
        engine.service.clone(),
        ReleasePolicy {
            max_copies: 10,
            saving_only: false,
        },
    );
    engine.poller = Poller::new(engine.intake.clone());
    engine
}

/// Submits a job to `printer` as `upn` with `configuration`; returns its task id and job id.
fn submit(
    bed: &Bed,
    printer: &str,
    upn: &str,
    name: &str,
    configuration: Value,
) -> (String, String) {
    let job = bed
        .emulator
        .control()
        .submit_job(NewJob {
            printer_id: printer.to_owned(),
            user_principal_name: upn.to_owned(),
            user_display_name: None,
            document_name: Some(name.to_owned()),
            configuration: Some(configuration),
        })
        .unwrap();
    (job.task_id.unwrap(), job.job_id)
}

/// Waits until the job of `task` is no longer acting (ended, or held again), and returns its state.
async fn settled(engine: &Engine, task: &str) -> (JobState, Option<Outcome>) {
    let store = engine.store.clone();
    eventually(Duration::from_secs(60), "the rule's action settled", || {
        let store = store.clone();
        let task = task.to_owned();
        async move {
            store
                .held_job(&task)
                .await
                .unwrap()
                .is_some_and(|job| job.state != JobState::Acting)
        }
    })
    .await;
    let job = engine.store.held_job(task).await.unwrap().unwrap();
    (job.state, job.outcome)
}

async fn audit(engine: &Engine, task: &str) -> Vec<AuditRecord> {
    let mut records = engine
        .store
        .audit_query(&AuditFilter::default())
        .await
        .unwrap();
    records.retain(|record| record.task_id == task);
    records.reverse();
    records
}

const S2S: &str = r#"
[[rules]]
name = "S2S grayscale"
action = "release"
match.printers = ["{queue}"]
force.color_mode = "grayscale"
"#;

#[tokio::test]
async fn a_release_rule_prints_at_once_in_grayscale_with_one_patch_job_and_one_patch_task() {
    let bed = Bed::default().await;
    let engine = engine_with(&bed, S2S, RetryPolicy::default()).await;
    let (task, job) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "a.pdf",
        json!({"copies": 1, "colorMode": "color"}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(
        settled(&engine, &task).await,
        (JobState::Ended, Some(Outcome::Released))
    );
    let control = bed.emulator.control();
    assert_eq!(control.calls_to(GET_JOB), 1);
    assert_eq!(
        (control.calls_to(PATCH_JOB), control.calls_to(PATCH_TASK)),
        (1, 1)
    );
    let printed = control.printed(&bed.queue);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0].job_id, job);
    assert_eq!(printed[0].configuration["colorMode"], "grayscale");
    let records = audit(&engine, &task).await;
    assert_eq!(records[0].event, AuditEvent::Held);
    assert!(
        records[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("rule 0 \"S2S grayscale\": release"),
        "{:?}",
        records[0].detail
    );
    assert_eq!(records[1].event, AuditEvent::Released);
    assert_eq!(
        records[1].requested_by.as_deref(),
        Some("rule 0 \"S2S grayscale\"")
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_release_rule_with_nothing_to_change_completes_the_task_without_patching_the_job() {
    let bed = Bed::default().await;
    let engine = engine_with(&bed, S2S, RetryPolicy::default()).await;
    let (task, _) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "a.pdf",
        json!({"copies": 1, "colorMode": "grayscale"}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(
        settled(&engine, &task).await,
        (JobState::Ended, Some(Outcome::Released))
    );
    let control = bed.emulator.control();
    assert_eq!(
        (control.calls_to(PATCH_JOB), control.calls_to(PATCH_TASK)),
        (0, 1)
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_deny_rule_aborts_the_job_and_the_audit_log_gives_the_reason() {
    let bed = Bed::default().await;
    let rules = r#"
[[rules]]
name = "no colour posters"
action = "deny"
reason = "Colour posters go to the print room, not the office printer"
match.name = "*poster*"
match.color_modes = ["color"]
"#;
    let engine = engine_with(&bed, rules, RetryPolicy::default()).await;
    let (task, job) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "Summer POSTER.pdf",
        json!({"colorMode": "color"}),
    );
    let (kept, _) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "Summer poster.pdf",
        json!({"colorMode": "grayscale"}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(
        settled(&engine, &task).await,
        (JobState::Ended, Some(Outcome::Deleted))
    );
    let control = bed.emulator.control();
    assert_eq!(
        (control.calls_to(ABORT), control.calls_to(PATCH_TASK)),
        (1, 1)
    );
    assert_eq!(control.job(&job).unwrap().state, "aborted");
    let records = audit(&engine, &task).await;
    assert!(
        records[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("Colour posters go to the print room"),
        "{:?}",
        records[0].detail
    );
    assert_eq!(records[1].event, AuditEvent::Deleted);
    assert_eq!(
        engine.store.held_job(&kept).await.unwrap().unwrap().state,
        JobState::Held,
        "a grayscale poster does not match and is held"
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_redirect_rule_prints_on_the_named_printer_with_its_forced_options() {
    let bed = Bed::default().await;
    let rules = r#"
[[rules]]
name = "big copy jobs to the lobby"
action = "redirect"
printer = "{lobby}"
match.min_copies = 5
force.duplex_mode = "flipOnLongEdge"
"#;
    let engine = engine_with(&bed, rules, RetryPolicy::default()).await;
    let (task, _) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "handout.pdf",
        json!({"copies": 6, "duplexMode": "oneSided"}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(
        settled(&engine, &task).await,
        (JobState::Ended, Some(Outcome::Redirected))
    );
    let control = bed.emulator.control();
    assert_eq!(control.calls_to(REDIRECT), 1);
    let printed = control.printed(&bed.lobby);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0].configuration["duplexMode"], "flipOnLongEdge");
    assert!(control.printed(&bed.queue).is_empty());
    engine.stop().await;
}

#[tokio::test]
async fn a_hold_rule_and_no_matching_rule_both_hold_the_job_without_a_graph_call() {
    let bed = Bed::default().await;
    let rules = r#"
[[rules]]
name = "the board prints on hold"
action = "hold"
match.owners = ["CEO@contoso.example"]
[[rules]]
name = "small mono jobs print at once"
action = "release"
match.color_modes = ["blackAndWhite"]
"#;
    let engine = engine_with(&bed, rules, RetryPolicy::default()).await;
    let (ceo, _) = submit(
        &bed,
        &bed.queue,
        "ceo@contoso.example",
        "board.pdf",
        json!({"colorMode": "blackAndWhite"}),
    );
    let (other, _) = submit(
        &bed,
        &bed.queue,
        "bob@contoso.example",
        "b.pdf",
        json!({"colorMode": "color"}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    bed.emulator.control().reset_call_counts();
    for task in [&ceo, &other] {
        assert_eq!(
            engine.store.held_job(task).await.unwrap().unwrap().state,
            JobState::Held
        );
    }
    assert!(
        audit(&engine, &ceo).await[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("rule 0 \"the board prints on hold\": hold")
    );
    assert_eq!(bed.emulator.control().total_calls(), 0);
    engine.stop().await;
}

#[tokio::test]
async fn each_match_kind_picks_its_rule_against_the_emulator() {
    let bed = Bed::default().await;
    let now = bed.emulator.control().now();
    let hour = now.hour();
    // A window around now, and one that certainly excludes it (both in UTC, each an hour wide).
    let inside = format!(
        "{{ from = \"{:02}:00\", to = \"{:02}:00\", zone = \"UTC\" }}",
        hour,
        (hour + 1) % 24
    );
    let outside = format!(
        "{{ from = \"{:02}:00\", to = \"{:02}:00\", zone = \"UTC\" }}",
        (hour + 3) % 24,
        (hour + 4) % 24
    );
    let rules = format!(
        r#"
[[rules]]
name = "outside the window"
action = "hold"
match.owners = ["time@contoso.example"]
match.time = {outside}
[[rules]]
name = "inside the window"
action = "release"
match.owners = ["time@contoso.example"]
match.time = {inside}
[[rules]]
name = "by owner"
action = "release"
match.owners = ["OWNER@contoso.example"]
[[rules]]
name = "by name"
action = "release"
match.name = "invoice-*.pdf"
[[rules]]
name = "by size"
action = "release"
match.owners = ["size@contoso.example"]
match.min_size = 100000
match.max_size = 1000000
[[rules]]
name = "too small"
action = "deny"
reason = "never"
match.owners = ["tiny@contoso.example"]
match.max_size = 10
[[rules]]
name = "by duplex"
action = "release"
match.duplex_modes = ["flipOnShortEdge"]
[[rules]]
name = "by printer"
action = "release"
match.printers = ["{{lobby}}"]
"#
    );
    let engine = engine_with(&bed, &rules, RetryPolicy::default()).await;
    let plain = json!({"copies": 1, "colorMode": "color", "duplexMode": "oneSided"});
    let cases = [
        (
            "time@contoso.example",
            "t.pdf",
            plain.clone(),
            Some("inside the window"),
        ),
        (
            "owner@contoso.example",
            "o.pdf",
            plain.clone(),
            Some("by owner"),
        ),
        (
            "x@contoso.example",
            "Invoice-2026.PDF",
            plain.clone(),
            Some("by name"),
        ),
        (
            "size@contoso.example",
            "s.pdf",
            plain.clone(),
            Some("by size"),
        ),
        ("tiny@contoso.example", "s.pdf", plain.clone(), None),
        (
            "y@contoso.example",
            "d.pdf",
            json!({"duplexMode": "flipOnShortEdge"}),
            Some("by duplex"),
        ),
        ("z@contoso.example", "z.pdf", plain.clone(), None),
    ];
    let mut tasks = Vec::new();
    for (upn, name, configuration, _) in &cases {
        tasks.push(submit(&bed, &bed.queue, upn, name, configuration.clone()).0);
    }
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    for (task, (upn, _, _, rule)) in tasks.iter().zip(&cases) {
        let (state, outcome) = settled(&engine, task).await;
        let held = audit(&engine, task).await[0].detail.clone().unwrap();
        match rule {
            Some(rule) => {
                assert_eq!(
                    (state, outcome),
                    (JobState::Ended, Some(Outcome::Released)),
                    "{upn}: {held}"
                );
                assert!(
                    held.contains(&format!("\"{rule}\": release")),
                    "{upn}: {held}"
                );
            }
            None => {
                assert_eq!(state, JobState::Held, "{upn}: {held}");
                assert!(!held.contains("rule"), "{upn}: {held}");
            }
        }
    }
    engine.stop().await;
}

#[tokio::test]
async fn a_forced_value_the_policy_refuses_holds_the_job_with_the_refusal_audited() {
    let bed = Bed::default().await;
    let rules = r#"
[[rules]]
name = "twenty copies"
action = "release"
force.copies = 20
"#;
    let engine = engine_with(&bed, rules, RetryPolicy::default()).await;
    let (task, _) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "a.pdf",
        json!({"copies": 1}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    bed.emulator.control().reset_call_counts();
    assert_eq!(
        engine.store.held_job(&task).await.unwrap().unwrap().state,
        JobState::Held
    );
    let detail = audit(&engine, &task).await[0].detail.clone().unwrap();
    assert!(
        detail.contains("refused") && detail.contains("held instead"),
        "{detail}"
    );
    assert_eq!(bed.emulator.control().total_calls(), 0);
    assert!(bed.emulator.control().printed(&bed.queue).is_empty());
    engine.stop().await;
}

fn jammed() -> pullprintd::emulator::PrinterStatusChange {
    pullprintd::emulator::PrinterStatusChange {
        state: "stopped".to_owned(),
        details: vec!["mediaJam".to_owned()],
        description: String::new(),
        is_accepting_jobs: None,
    }
}

#[tokio::test]
async fn a_release_rule_holds_a_job_whose_printer_is_jammed_and_the_audit_says_why() {
    let bed = Bed::default().await;
    let engine = engine_with(&bed, S2S, RetryPolicy::default()).await;
    let control = bed.emulator.control();
    control.set_printer_status(&bed.queue, &jammed()).unwrap();
    let (task, _) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "a.pdf",
        json!({"copies": 1, "colorMode": "color"}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    let held = engine.store.held_job(&task).await.unwrap().unwrap();
    assert_eq!((held.state, held.outcome), (JobState::Held, None));
    let records = audit(&engine, &task).await;
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].event, AuditEvent::Held);
    let detail = records[0].detail.clone().unwrap();
    assert!(
        detail.contains("rule 0 \"S2S grayscale\": release held")
            && detail.contains("cannot print now (paper is jammed)"),
        "{detail}"
    );
    assert_eq!(
        (control.calls_to(PATCH_JOB), control.calls_to(PATCH_TASK)),
        (0, 0),
        "nothing sent to a jammed printer"
    );
    assert!(control.printed(&bed.queue).is_empty());
    engine.stop().await;
}

#[tokio::test]
async fn a_redirect_rule_holds_the_job_when_its_destination_cannot_print() {
    let bed = Bed::default().await;
    let rules = r#"
[[rules]]
name = "everything to the lobby"
action = "redirect"
printer = "{lobby}"
"#;
    let engine = engine_with(&bed, rules, RetryPolicy::default()).await;
    let control = bed.emulator.control();
    // The queue printer is fine; the destination is paused.
    control
        .set_printer_status(
            &bed.lobby,
            &pullprintd::emulator::PrinterStatusChange {
                state: "idle".to_owned(),
                details: vec!["paused".to_owned()],
                ..jammed()
            },
        )
        .unwrap();
    let (task, _) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "a.pdf",
        json!({"copies": 1}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    let held = engine.store.held_job(&task).await.unwrap().unwrap();
    assert_eq!(held.state, JobState::Held);
    let detail = audit(&engine, &task).await[0].detail.clone().unwrap();
    assert!(
        detail.contains("redirect held")
            && detail.contains(&bed.lobby)
            && detail.contains("it is paused"),
        "{detail}"
    );
    assert_eq!(control.calls_to(REDIRECT), 0);
    engine.stop().await;
}

#[tokio::test]
async fn a_forced_value_the_printer_refuses_holds_the_job_again_never_printing_it() {
    // A black-and-white printer that holds jobs: grayscale is not among its colour modes.
    let tenant = Scenario::queue_and_lobby()
        .printer_spec(PrinterSpec {
            name: "Mono".to_owned(),
            holds_jobs: true,
            capabilities: Some(json!({
                "colorModes": ["blackAndWhite"],
                "duplexModes": ["oneSided"],
                "copiesPerJob": {"start": 1, "end": 99}
            })),
        })
        .start()
        .await
        .unwrap();
    let mono = tenant.printer("Mono").to_owned();
    let bed = Bed {
        emulator: tenant.emulator.clone(),
        queue: tenant.printer("Queue").to_owned(),
        lobby: tenant.printer("Lobby").to_owned(),
        definition: tenant.definition.clone(),
        tenant,
        dir: tempfile::tempdir().unwrap(),
    };
    let rules = S2S.replace("{queue}", &mono);
    let engine = engine_with(&bed, &rules, RetryPolicy::default()).await;
    let (task, _) = submit(
        &bed,
        &mono,
        "ada@contoso.example",
        "a.pdf",
        json!({"copies": 1, "colorMode": "blackAndWhite"}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(settled(&engine, &task).await, (JobState::Held, None));
    let records = audit(&engine, &task).await;
    assert_eq!(
        records.last().unwrap().event,
        AuditEvent::Failed,
        "{records:?}"
    );
    assert!(bed.emulator.control().printed(&mono).is_empty());
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_429_503_storm_every_auto_release_prints_exactly_once() {
    const JOBS: usize = 60;
    let bed = Bed::start(EmulatorOptions {
        token_lifetime: Duration::from_secs(20),
        ..EmulatorOptions::default()
    })
    .await;
    let mut tasks = Vec::new();
    for i in 0..JOBS {
        tasks.push(submit(
            &bed,
            &bed.queue,
            &format!("user{}@contoso.example", i % 5),
            &format!("doc-{i}.pdf"),
            json!({"copies": 1, "colorMode": "color"}),
        ));
    }
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            rate_429: 0.3,
            retry_after_secs: 1,
            rate_503: 0.1,
            retry_after_503_secs: None,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let retry = RetryPolicy {
        max_attempts: 4,
        max_elapsed: Duration::from_secs(10),
        min_delay: Duration::from_millis(100),
        max_delay: Duration::from_secs(1),
    };
    let engine = engine_with(&bed, S2S, retry).await;
    // Counted in the store: a poll whose later page fails still stores the jobs of the pages it
    // read (it reports the failure, not what it stored).
    let mut stored = 0;
    for _ in 0..30 {
        let _ = engine.poller.poll(DiscoveredVia::Poll).await;
        stored = 0;
        for (task, _) in &tasks {
            if engine.store.task_known(task).await.unwrap() {
                stored += 1;
            }
        }
        if stored == JOBS {
            break;
        }
    }
    assert_eq!(stored, JOBS, "every task is looked up despite the storm");
    for (task, _) in &tasks {
        assert_eq!(
            settled(&engine, task).await,
            (JobState::Ended, Some(Outcome::Released))
        );
    }
    bed.emulator.control().set_faults(Faults::default());
    // Polls after the storm find nothing new and queue nothing twice.
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    let printed = bed.emulator.control().printed(&bed.queue);
    assert_eq!(printed.len(), JOBS, "each job printed once");
    let mut ids: Vec<&str> = printed.iter().map(|p| p.job_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), JOBS, "no job printed twice");
    assert!(
        printed
            .iter()
            .all(|p| p.configuration["colorMode"] == "grayscale")
    );
    assert!(
        bed.emulator
            .control()
            .tasks()
            .iter()
            .all(|t| t.state == "completed")
    );
    engine.stop().await;
}

use engine_support::free_port;

/// The whole daemon in webhook mode with `rules`, once its subscription and start-up polls are
/// done; the call counts start from zero.
async fn webhook_app_with(bed: &Bed, rules: &str) -> RunningApp {
    let port = free_port();
    let mut settings = bed.settings(
        &format!(
            "mode = \"webhook\"\npublic_url = \"http://127.0.0.1:{port}/graph/notifications\""
        ),
        "rules.db",
    );
    settings.api.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    settings.rules = tables(bed, rules);
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

/// The Graph calls of one auto-release from a notification: `GET job`, `PATCH job`, `PATCH task`,
/// the total of those three and any other call but the printer's status, and `GET printer` (read
/// before a rule prints, cached: one per printer per 10 s, however many jobs).
async fn auto_released_through_the_webhook(configuration: Value) -> (u64, u64, u64, u64, u64) {
    let bed = Bed::default().await;
    let app = webhook_app_with(&bed, S2S).await;
    let (task, _) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "a.pdf",
        configuration,
    );
    let store = app.store.clone();
    eventually(Duration::from_secs(20), "the auto-release", || {
        let store = store.clone();
        let task = task.clone();
        async move {
            store
                .held_job(&task)
                .await
                .unwrap()
                .is_some_and(|job| job.outcome == Some(Outcome::Released))
        }
    })
    .await;
    let control = bed.emulator.control();
    let counts = (
        control.calls_to(GET_JOB),
        control.calls_to(PATCH_JOB),
        control.calls_to(PATCH_TASK),
        control.total_calls() - control.calls_to(GET_PRINTER),
        control.calls_to(GET_PRINTER),
    );
    app.stop().await;
    counts
}

#[tokio::test]
async fn an_auto_release_from_a_notification_costs_three_graph_calls_with_a_change() {
    assert_eq!(
        auto_released_through_the_webhook(json!({"copies": 1, "colorMode": "color"})).await,
        (1, 1, 1, 3, 1)
    );
}

#[tokio::test]
async fn an_auto_release_from_a_notification_costs_two_graph_calls_without_a_change() {
    assert_eq!(
        auto_released_through_the_webhook(json!({"copies": 1, "colorMode": "grayscale"})).await,
        (1, 0, 1, 2, 1)
    );
}

#[tokio::test]
async fn a_task_stored_twice_with_its_rules_action_queues_the_action_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = pullprintd::store::Store::open_in(dir.path()).await.unwrap();
    let now = time::OffsetDateTime::now_utc();
    let job = pullprintd::job::NewHeldJob {
        task_id: "task-1".to_owned(),
        definition_id: "definition".to_owned(),
        printer_id: "printer".to_owned(),
        job_id: "1".to_owned(),
        owner_upn: "ada@contoso.example".to_owned(),
        owner_name: None,
        owner_id: None,
        name: "a.pdf".to_owned(),
        configuration: engine_support::configuration(json!({"colorMode": "color"})),
        submitted_at: now,
        discovered_at: now,
        discovered_via: DiscoveredVia::Webhook,
    };
    let set = RuleSet::compile(&tables_of(S2S.replace("{queue}", "printer").as_str())).unwrap();
    let decision = set.decide(&pullprintd::job::JobFacts {
        printer_id: "printer",
        owner_upn: "ada@contoso.example",
        name: "a.pdf",
        size: None,
        configuration: &Default::default(),
        at: now,
        groups: None,
    });
    let policy = ReleasePolicy {
        max_copies: 10,
        saving_only: false,
    };
    let ruling =
        pullprintd::release::service::ReleaseService::by_rule(&job, &decision, policy, now);
    let action = ruling.action.expect("the S2S rule releases");
    for expected in [
        pullprintd::store::Inserted::New,
        pullprintd::store::Inserted::AlreadyKnown,
    ] {
        let inserted = store
            .insert_held_job_then(&job, ruling.note.as_deref(), Some(&action), None)
            .await
            .unwrap();
        assert_eq!(inserted, expected);
    }
    let unfinished = store.unfinished_actions().await.unwrap();
    assert_eq!(
        unfinished.len(),
        1,
        "one action however often the task is stored"
    );
    assert_eq!(
        unfinished[0].changes,
        Some(engine_support::configuration(
            json!({"colorMode": "grayscale"})
        ))
    );
    store.close().await;
}

/// The `[[rules]]` tables of `text` (no printer placeholders).
fn tables_of(text: &str) -> Vec<toml::Table> {
    let mut file: toml::Table = toml::from_str(text).unwrap();
    match file.remove("rules") {
        Some(toml::Value::Array(rules)) => rules
            .into_iter()
            .map(|rule| rule.as_table().unwrap().clone())
            .collect(),
        other => panic!("no [[rules]]: {other:?}"),
    }
}

#[tokio::test]
async fn a_group_rule_matches_members_through_nested_groups_and_holds_when_its_group_does_not_exist()
 {
    use pullprintd::emulator::{DirectoryGroup, DirectoryUser};
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    for upn in ["ada@contoso.example", "bob@contoso.example"] {
        control.add_user(DirectoryUser {
            id: String::new(),
            user_principal_name: upn.to_owned(),
            display_name: upn.to_owned(),
            employee_id: None,
        });
    }
    let staff = "0e7c3f1a-5b2d-4c8e-9f10-2a3b4c5d6e7f";
    let floor = "5a6b7c8d-1e2f-4a3b-9c4d-5e6f7a8b9c0d";
    let gone = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
    control.add_group(DirectoryGroup {
        id: staff.to_owned(),
        display_name: "Print staff".to_owned(),
        members: vec![floor.to_owned()],
    });
    control.add_group(DirectoryGroup {
        id: floor.to_owned(),
        display_name: "Floor 2".to_owned(),
        members: vec!["ada@contoso.example".to_owned()],
    });
    let rules = format!(
        r#"
[[rules]]
name = "contractors"
action = "deny"
reason = "Contractors print at the print room"
match.owners = ["carol@contoso.example"]
match.groups = ["{gone}"]

[[rules]]
name = "staff print at once"
action = "release"
match.groups = ["{staff}"]
force.color_mode = "grayscale"
"#
    );
    let engine = engine_with(&bed, &rules, RetryPolicy::default()).await;
    let (ada, ada_job) = submit(
        &bed,
        &bed.queue,
        "ada@contoso.example",
        "a.pdf",
        json!({"colorMode": "color"}),
    );
    let (bob, _) = submit(&bed, &bed.queue, "bob@contoso.example", "b.pdf", json!({}));
    let (carol, _) = submit(
        &bed,
        &bed.queue,
        "carol@contoso.example",
        "c.pdf",
        json!({}),
    );
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(
        settled(&engine, &ada).await,
        (JobState::Ended, Some(Outcome::Released)),
        "a member through a nested group"
    );
    assert_eq!(
        control.job(&ada_job).unwrap().configuration["colorMode"],
        "grayscale"
    );
    assert_eq!(settled(&engine, &bob).await, (JobState::Held, None));
    assert_eq!(settled(&engine, &carol).await, (JobState::Held, None));
    let records = audit(&engine, &carol).await;
    let note = records[0].detail.as_deref().unwrap_or_default();
    assert!(
        note.contains("rule 0 \"contractors\"")
            && note.contains(&format!("group {gone} does not exist"))
            && note.contains("held"),
        "{note}"
    );
    assert_eq!(
        control.calls_to("POST /users/{id}/checkMemberGroups"),
        3,
        "one membership read per owner"
    );
}

#[tokio::test]
async fn a_burst_of_auto_releases_from_notifications_costs_exactly_three_graph_calls_a_job() {
    // 200 jobs at once with 20 ms per Graph call: the executor keeps starting drives while earlier
    // ones end, and must never start one from a step an ended drive already moved past (that read
    // the job a second time for about one job in fifteen).
    const JOBS: usize = 200;
    let bed = Bed::default().await;
    let app = webhook_app_with(&bed, S2S).await;
    let control = bed.emulator.control();
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "*".to_owned(),
            latency_ms: 20,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    for n in 0..JOBS {
        submit(
            &bed,
            &bed.queue,
            "ada@contoso.example",
            &format!("s2s-{n}.pdf"),
            json!({"copies": 1, "colorMode": "color"}),
        );
    }
    let watched = control.clone();
    eventually(Duration::from_secs(60), "every task completed", || {
        let control = watched.clone();
        async move {
            control
                .tasks()
                .iter()
                .filter(|t| t.state == "completed")
                .count()
                == JOBS
        }
    })
    .await;
    let jobs = JOBS as u64;
    assert_eq!(
        (
            control.calls_to(GET_JOB),
            control.calls_to(PATCH_JOB),
            control.calls_to(PATCH_TASK)
        ),
        (jobs, jobs, jobs),
        "{:?}",
        control.call_counts()
    );
    // The printer's status, read before the rule prints, is shared by the whole burst (one read per
    // 10 s at most; the burst takes a few seconds).
    assert!(
        control.calls_to(GET_PRINTER) <= 2,
        "{:?}",
        control.call_counts()
    );
    app.stop().await;
}
