//! Poll intake and every action path against the emulator, with the Graph calls of each counted on the
//! emulator and held to design.md §1's minimum.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use engine_support::{Bed, Engine, action, configuration};
use pullprintd::clock::{Clock as _, ManualClock, SharedClock};
use pullprintd::emulator::{Faults, RouteFault};
use pullprintd::graph::RetryPolicy;
use pullprintd::release::service::SubmitError;
use pullprintd::release::sweeper::Sweeper;
use pullprintd::store::{
    ActionKind, AuditEvent, AuditFilter, DiscoveredVia, EnqueueError, JobState, Outcome,
};
use serde_json::json;
use std::time::Duration;

const LIST: &str = "GET /print/taskDefinitions/{id}/tasks";
const GET_JOB: &str = "GET /print/printers/{id}/jobs/{id}";
const PATCH_JOB: &str = "PATCH /print/printers/{id}/jobs/{id}";
const PATCH_TASK: &str = "PATCH /print/taskDefinitions/{id}/tasks/{id}";
const REDIRECT: &str = "POST /print/printers/{id}/jobs/{id}/redirect";
const ABORT: &str = "POST /print/printers/{id}/jobs/{id}/abort";

/// Lookups start as each page of the task list arrives: when a later page cannot be read, the jobs
/// of the pages already read are held all the same (the poll reports the error, and marks nothing
/// gone from the partial list).
#[tokio::test]
async fn a_poll_looks_up_each_page_as_it_arrives_so_a_later_page_failing_loses_no_earlier_job() {
    let bed = Bed::start(pullprintd::emulator::EmulatorOptions {
        page_size: 2,
        ..pullprintd::emulator::EmulatorOptions::default()
    })
    .await;
    let engine = Engine::default(&bed).await;
    for n in 0..6 {
        bed.submit("ada@contoso.example", &format!("page-{n}.pdf"));
    }
    let control = bed.emulator.control();
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "listTasks".into(),
            // Every page after the first: Graph refuses it for good.
            path_contains: Some("skiptoken".into()),
            rate_403: 1.0,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    assert!(engine.poller.poll(DiscoveredVia::Poll).await.is_err());
    assert_eq!(
        engine.store.count_held_jobs().await.unwrap(),
        2,
        "the first page's jobs are held"
    );
    control.set_faults(Faults::default());
    let report = engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!((report.processing, report.stored), (6, 4));
    assert_eq!(control.calls_to(GET_JOB), 6, "each job looked up once");
    engine.stop().await;
}

#[tokio::test]
async fn a_poll_stores_each_processing_task_once_with_one_get_job_each() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let first = bed.submit("ada@contoso.example", "report.pdf");
    let second = bed.submit("Bob@Contoso.example", "slides.pdf");
    let control = bed.emulator.control();

    let report = engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!((report.processing, report.stored), (2, 2));
    assert_eq!(control.calls_to(LIST), 1);
    assert_eq!(control.calls_to(GET_JOB), 2);

    let held = engine
        .store
        .held_job(first.task_id.as_deref().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(held.job.owner_upn, "ada@contoso.example");
    assert_eq!(
        held.job.owner_name.as_deref(),
        Some("User ada@contoso.example")
    );
    assert_eq!(held.job.name, "report.pdf");
    assert_eq!(held.job.printer_id, bed.queue);
    assert_eq!(held.job.job_id, first.job_id);
    assert_eq!(held.job.configuration.copies, Some(1));
    let bobs = engine
        .service
        .held_jobs("bob@contoso.example")
        .await
        .unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].job.task_id, second.task_id.unwrap());

    control.reset_call_counts();
    let again = engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(again.stored, 0);
    assert_eq!(
        control.total_calls(),
        1,
        "a known task costs only its share of the list"
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_task_finished_outside_pullprintd_ends_the_held_job_as_gone() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let job = bed.submit("ada@contoso.example", "report.pdf");
    let task = job.task_id.unwrap();
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    // Someone else (another tool with the same app) completes the task.
    let graph = bed.graph(
        pullprintd::clock::SystemClock::shared(),
        RetryPolicy::none(),
    );
    graph
        .update_task_status(
            &bed.definition,
            &task,
            &pullprintd::graph::PrintTaskProcessingState::Completed,
            "elsewhere",
        )
        .await
        .unwrap();
    let report = engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(report.gone, 1);
    let held = engine.store.held_job(&task).await.unwrap().unwrap();
    assert_eq!(held.state, JobState::Ended);
    assert_eq!(held.outcome, Some(Outcome::Gone));
    engine.stop().await;
}

/// Holds one job through a poll and returns (task, job).
async fn held(bed: &Bed, engine: &Engine) -> (String, String) {
    let job = bed.submit("ada@contoso.example", "report.pdf");
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    bed.emulator.control().reset_call_counts();
    (job.task_id.unwrap(), job.job_id)
}

#[tokio::test]
async fn a_release_without_changes_completes_the_task_in_one_call() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let (task, job) = held(&bed, &engine).await;
    let same = configuration(json!({"copies": 1, "colorMode": "color"}));
    let done = engine
        .act(action(&task, ActionKind::Release, Some(same), None))
        .await;
    assert_eq!(done.outcome, Outcome::Released, "{}", done.detail);
    let control = bed.emulator.control();
    assert_eq!(control.total_calls(), 1);
    assert_eq!(control.calls_to(PATCH_TASK), 1);
    let printed = control.printed(&bed.queue);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0].job_id, job);
    engine.stop().await;
}

#[tokio::test]
async fn a_release_with_changes_patches_the_whole_configuration_then_the_task() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let (task, _) = held(&bed, &engine).await;
    let changed = configuration(
        json!({"copies": 2, "colorMode": "blackAndWhite", "duplexMode": "flipOnLongEdge"}),
    );
    let done = engine
        .act(action(
            &task,
            ActionKind::Release,
            Some(changed.clone()),
            None,
        ))
        .await;
    assert_eq!(done.outcome, Outcome::Released, "{}", done.detail);
    let control = bed.emulator.control();
    assert_eq!(control.total_calls(), 2);
    assert_eq!(
        (control.calls_to(PATCH_JOB), control.calls_to(PATCH_TASK)),
        (1, 1)
    );
    let printed = control.printed(&bed.queue);
    assert_eq!(printed[0].configuration["copies"], 2);
    assert_eq!(printed[0].configuration["duplexMode"], "flipOnLongEdge");
    let audit = engine
        .store
        .audit_query(&AuditFilter {
            event: Some(AuditEvent::Released),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].configuration_after.as_ref(), Some(&changed));
    engine.stop().await;
}

#[tokio::test]
async fn a_find_me_release_is_one_redirect_and_prints_on_the_station_printer() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let (task, job) = held(&bed, &engine).await;
    let done = engine
        .act(action(&task, ActionKind::Redirect, None, Some(&bed.lobby)))
        .await;
    assert_eq!(done.outcome, Outcome::Redirected, "{}", done.detail);
    let control = bed.emulator.control();
    assert_eq!(control.total_calls(), 1);
    assert_eq!(control.calls_to(REDIRECT), 1);
    let printed = control.printed(&bed.lobby);
    assert_eq!(printed.len(), 1);
    let from = printed[0].redirected_from.clone().unwrap_or_default();
    assert!(from.ends_with(&format!("/jobs/{job}")), "{from}");
    assert!(control.printed(&bed.queue).is_empty());
    engine.stop().await;
}

#[tokio::test]
async fn a_delete_aborts_the_job_then_the_task_in_two_calls() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let (task, job) = held(&bed, &engine).await;
    let done = engine
        .act(action(&task, ActionKind::Delete, None, None))
        .await;
    assert_eq!(done.outcome, Outcome::Deleted, "{}", done.detail);
    let control = bed.emulator.control();
    assert_eq!(control.total_calls(), 2);
    assert_eq!(
        (control.calls_to(ABORT), control.calls_to(PATCH_TASK)),
        (1, 1)
    );
    assert_eq!(control.job(&job).unwrap().state, "aborted");
    assert!(control.tasks().iter().all(|t| t.state != "processing"));
    engine.stop().await;
}

#[tokio::test]
async fn a_release_graph_refuses_puts_the_job_back_to_held_with_the_reason() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let (task, _) = held(&bed, &engine).await;
    // `sepia` is not a colour mode the emulator accepts: Graph refuses the PATCH with a 400.
    let refused = configuration(json!({"copies": 1, "colorMode": "sepia"}));
    let done = engine
        .act(action(&task, ActionKind::Release, Some(refused), None))
        .await;
    assert_eq!(done.outcome, Outcome::Failed);
    let held = engine.store.held_job(&task).await.unwrap().unwrap();
    assert_eq!(held.state, JobState::Held, "the owner sees the job again");
    let failed = engine
        .store
        .audit_query(&AuditFilter {
            event: Some(AuditEvent::Failed),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(failed.len(), 1);
    assert!(bed.emulator.control().printed(&bed.queue).is_empty());
    // And it can be released after all.
    let done = engine
        .act(action(&task, ActionKind::Release, None, None))
        .await;
    assert_eq!(done.outcome, Outcome::Released, "{}", done.detail);
    engine.stop().await;
}

#[tokio::test]
async fn a_job_held_past_the_hold_timeout_is_expired_with_the_reason_from_the_setting() {
    let bed = Bed::default().await;
    let clock = ManualClock::new(bed.emulator.control().now());
    let shared: SharedClock = clock.clone();
    let engine = Engine::start(&bed, shared.clone(), RetryPolicy::default(), 4).await;
    let (task, job) = held(&bed, &engine).await;
    let sweeper = Sweeper::new(
        engine.store.clone(),
        engine.service.clone(),
        shared,
        Duration::from_secs(4 * 3600),
        Duration::from_secs(400 * 86_400),
    );
    assert_eq!(sweeper.expire_overdue().await.unwrap(), 0, "not yet");
    clock.advance(time::Duration::hours(4) + time::Duration::minutes(1));
    assert_eq!(sweeper.expire_overdue().await.unwrap(), 1);
    let action = engine
        .store
        .unfinished_actions()
        .await
        .unwrap()
        .pop()
        .unwrap();
    let done = engine.finished(action.id).await;
    assert_eq!(done.outcome, Outcome::Expired, "{}", done.detail);
    let control = bed.emulator.control();
    assert_eq!(control.job(&job).unwrap().state, "aborted");
    assert!(control.tasks().iter().all(|t| t.state != "processing"));
    assert_eq!(
        engine.store.held_job(&task).await.unwrap().unwrap().outcome,
        Some(Outcome::Expired)
    );
    engine.stop().await;
}

#[tokio::test]
async fn a_redirect_whose_answer_is_lost_is_settled_by_reading_the_job_never_resent() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let (task, _) = held(&bed, &engine).await;
    // Graph performs the redirect, then answers 504: the outcome is unknown to the daemon.
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            route: "redirectJob".to_owned(),
            fail_after_effect_rate: 1.0,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let done = engine
        .act(action(&task, ActionKind::Redirect, None, Some(&bed.lobby)))
        .await;
    assert_eq!(done.outcome, Outcome::Redirected, "{}", done.detail);
    let control = bed.emulator.control();
    assert_eq!(control.calls_to(REDIRECT), 1, "the redirect went out once");
    assert_eq!(control.calls_to(GET_JOB), 1, "one read settled it");
    assert_eq!(control.printed(&bed.lobby).len(), 1);
    engine.stop().await;
}

#[tokio::test]
async fn an_unknown_task_or_a_job_already_acted_on_is_refused_before_any_graph_call() {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let (task, _) = held(&bed, &engine).await;
    let unknown = engine
        .service
        .submit(action("no-such-task", ActionKind::Release, None, None))
        .await;
    assert!(matches!(
        unknown,
        Err(SubmitError::Enqueue(EnqueueError::UnknownTask { .. }))
    ));
    let first = engine
        .act(action(&task, ActionKind::Delete, None, None))
        .await;
    assert_eq!(first.outcome, Outcome::Deleted);
    let calls = bed.emulator.control().total_calls();
    let again = engine
        .service
        .submit(action(&task, ActionKind::Release, None, None))
        .await;
    assert!(matches!(
        again,
        Err(SubmitError::Enqueue(EnqueueError::NotHeld { .. }))
    ));
    assert_eq!(bed.emulator.control().total_calls(), calls);
    engine.stop().await;
}

#[tokio::test]
async fn audit_records_past_retention_are_pruned_by_the_injected_clock() {
    let bed = Bed::default().await;
    let clock = ManualClock::new(bed.emulator.control().now());
    let shared: SharedClock = clock.clone();
    let engine = Engine::start(&bed, shared.clone(), RetryPolicy::default(), 4).await;
    held(&bed, &engine).await;
    let sweeper = Sweeper::new(
        engine.store.clone(),
        engine.service.clone(),
        shared,
        Duration::from_secs(4 * 3600),
        Duration::from_secs(30 * 86_400),
    );
    let all = AuditFilter::default();
    sweeper.prune(clock.now()).await.unwrap();
    assert_eq!(
        engine.store.audit_query(&all).await.unwrap().len(),
        1,
        "kept"
    );
    clock.advance(time::Duration::days(31));
    sweeper.prune(clock.now()).await.unwrap();
    assert!(
        engine.store.audit_query(&all).await.unwrap().is_empty(),
        "pruned"
    );
    engine.stop().await;
}
