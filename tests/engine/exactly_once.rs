//! Exactly once, second pass: the faults the first resilience suite did not try. One test (or a few)
//! per case, each failing on the code before its fix:
//!
//! 1. the watchdog judges the engine by progress, not by the loop waiting for a Graph slot;
//! 2. a server-given delay (`Retry-After`, `expires_in`) has a ceiling and never panics;
//! 3. after a release changed the configuration and failed, the next release re-applies what differs;
//! 4. a redirect answered 503 (even with `Retry-After`) is settled by reading, not sent again;
//! 5. a held job is marked gone only after a direct read of its task confirms it;
//! 6. a poison notification is retried with back-off a bounded number of times, then dead-lettered,
//!    and never delays the others;
//! 8. the sweeper expires a job within a second of its deadline;
//! 9. a find-me release onto a printer that holds it again is completed at once.
//!
//! Case 7 (two processes on one store) and the seeded chaos test drive real binaries:
//! `tests/process/store_lock.rs`, `tests/process/chaos.rs`.

use crate::engine_support;

use std::time::Duration;

use engine_support::{Bed, Engine, RunningApp, action, eventually};
use pullprintd::app::AppOptions;
use pullprintd::clock::{Clock as _, ManualClock, SharedClock, SystemClock};
use pullprintd::emulator::{Faults, RouteFault};
use pullprintd::graph::{PrintTaskProcessingState, RetryPolicy};
use pullprintd::intake::Intake;
use pullprintd::intake::inbox::InboxWorker;
use pullprintd::intake::poller::Poller;
use pullprintd::notify::ServiceManager;
use pullprintd::release::completions::Completions;
use pullprintd::release::executor::{Driven, Executor, MAX_RETRY_DELAY, Observers};
use pullprintd::release::sweeper::Sweeper;
use pullprintd::store::{ActionKind, AuditEvent, AuditFilter, DiscoveredVia, JobState, Store};

/// A job held in a fresh store, with the executor's parts wired by hand over `clock`.
struct Held {
    store: Store,
    task: String,
    executor: Executor,
}

async fn hold_one(bed: &Bed, clock: SharedClock, retry: RetryPolicy) -> Held {
    let submitted = bed.submit("ada@contoso.example", "report.pdf");
    let task = submitted.task_id.clone().unwrap();
    let store = Store::open_in(bed.dir.path()).await.unwrap();
    let graph = bed.graph(clock.clone(), retry);
    let intake = Intake::new(store.clone(), graph.clone(), clock.clone(), &bed.definition);
    let job = pullprintd::graph::parse_parent_url(&format!(
        "{}/print/printers/{}/jobs/{}",
        bed.emulator.graph_url(),
        bed.queue,
        submitted.job_id
    ))
    .unwrap();
    intake
        .lookup(&task, &job, DiscoveredVia::Poll)
        .await
        .unwrap();
    let executor = Executor::new(
        store.clone(),
        graph,
        clock,
        Completions::default(),
        4,
        Duration::from_secs(3600),
        Observers::default(),
    );
    Held {
        store,
        task,
        executor,
    }
}

#[tokio::test]
async fn a_retry_after_of_a_billion_seconds_puts_a_release_off_for_an_hour_at_most_without_panicking()
 {
    let bed = Bed::default().await;
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let held = hold_one(&bed, clock.clone(), RetryPolicy::none()).await;
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            route: "updateTask".into(),
            rate_429: 1.0,
            retry_after_secs: 1_000_000_000_000_000,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let id = held
        .store
        .enqueue(&action(&held.task, ActionKind::Release, None, None))
        .await
        .unwrap();
    let queued = held.store.action(id).await.unwrap().unwrap();
    let driven = held.executor.drive(queued).await.unwrap();
    assert_eq!(driven, Driven::Rescheduled);
    let later = held.store.action(id).await.unwrap().unwrap();
    let wait = later.next_attempt_at - clock.now();
    assert!(
        wait > time::Duration::ZERO && wait <= MAX_RETRY_DELAY,
        "put off by {wait}"
    );
}

/// Records when each watchdog ping was sent.
#[derive(Debug, Default)]
struct Pings(std::sync::Mutex<Vec<tokio::time::Instant>>);

impl pullprintd::notify::NotifySink for Pings {
    fn send(&self, state: &[sd_notify::NotifyState<'_>]) {
        if state
            .iter()
            .any(|s| matches!(s, sd_notify::NotifyState::Watchdog))
        {
            self.0.lock().unwrap().push(tokio::time::Instant::now());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_keeps_pinging_while_fifty_due_actions_wait_on_a_graph_that_answers_after_sixty_seconds()
 {
    const WATCHDOG: Duration = Duration::from_secs(2);
    let bed = Bed::default().await;
    let tasks: Vec<String> = (0..50)
        .map(|n| {
            bed.submit("ada@contoso.example", &format!("slow-{n}.pdf"))
                .task_id
                .unwrap()
        })
        .collect();
    let mut settings = bed.settings("mode = \"poll\"\npoll_interval = \"1h\"", "state.db");
    settings.graph.request_timeout = pullprintd::config::HumanDuration(Duration::from_secs(90));
    let pings = std::sync::Arc::new(Pings::default());
    let app = RunningApp::start(
        settings,
        AppOptions {
            service_manager: ServiceManager::new(pings.clone(), Some(WATCHDOG)),
            drain: Duration::from_millis(200),
            ..AppOptions::default()
        },
    )
    .await;
    let store = app.store.clone();
    eventually(Duration::from_secs(30), "the 50 jobs are held", || {
        let store = store.clone();
        async move { store.count_held_jobs().await.unwrap() == 50 }
    })
    .await;
    // From now on Graph answers every call after 60 s.
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            latency_ms: 60_000,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    for task in &tasks {
        let changes = Some(engine_support::configuration(
            serde_json::json!({"copies": 2}),
        ));
        app.store
            .enqueue(&action(task, ActionKind::Release, changes, None))
            .await
            .unwrap();
    }
    let watched = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(12)).await;
    let sent: Vec<_> = pings
        .0
        .lock()
        .unwrap()
        .iter()
        .copied()
        .filter(|at| *at >= watched)
        .collect();
    let mut gaps = vec![sent.first().map_or(Duration::MAX, |first| *first - watched)];
    gaps.extend(sent.windows(2).map(|pair| pair[1] - pair[0]));
    gaps.push(tokio::time::Instant::now() - sent.last().copied().unwrap_or(watched));
    let longest = gaps.into_iter().max().unwrap();
    assert!(
        longest < WATCHDOG,
        "a watchdog gap of {longest:?} (WatchdogSec={WATCHDOG:?}) would restart the daemon"
    );
    assert!(
        bed.emulator.control().printed(&bed.queue).is_empty(),
        "Graph has not answered yet"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_held_job_missing_from_one_task_list_page_is_not_marked_gone_while_its_task_is_processing()
 {
    let bed = Bed::default().await;
    let engine = Engine::default(&bed).await;
    let task = bed
        .submit("ada@contoso.example", "report.pdf")
        .task_id
        .unwrap();
    assert_eq!(
        engine
            .poller
            .poll(DiscoveredVia::Poll)
            .await
            .unwrap()
            .stored,
        1
    );
    bed.emulator.control().set_faults(Faults {
        list_omission_rate: 1.0,
        ..Faults::default()
    });
    let report = engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(
        (report.gone, report.missing_from_list),
        (0, 1),
        "{report:?}"
    );
    let held = engine.store.held_job(&task).await.unwrap().unwrap();
    assert_eq!(held.state, JobState::Held);

    // Once the task really leaves `processing` elsewhere, the direct read confirms it.
    bed.emulator.control().set_faults(Faults::default());
    let graph = bed.graph(SystemClock::shared(), RetryPolicy::default());
    graph
        .update_task_status(
            &bed.definition,
            &task,
            &PrintTaskProcessingState::Aborted,
            "withdrawn elsewhere",
        )
        .await
        .unwrap();
    bed.emulator.control().set_faults(Faults {
        list_omission_rate: 1.0,
        ..Faults::default()
    });
    let report = engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    assert_eq!(report.gone, 1, "{report:?}");
    engine.stop().await;
}

/// A task notification for `task` whose job is `job` on the queue printer.
fn notification(bed: &Bed, task: &str, job: &str) -> String {
    serde_json::json!({
        "subscriptionId": "s1",
        "changeType": "created",
        "resource": format!("print/taskDefinitions/{}/tasks/{task}", bed.definition),
        "resourceData": {
            "id": task,
            "parentUrl": format!("{}/print/printers/{}/jobs/{job}", bed.emulator.graph_url(), bed.queue),
        }
    })
    .to_string()
}

#[tokio::test]
async fn poison_notifications_are_put_off_then_dead_lettered_and_never_delay_a_newer_one() {
    let bed = Bed::default().await;
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let store = Store::open_in(bed.dir.path()).await.unwrap();
    // One attempt per lookup: the worker's own back-off is what is tried here.
    let graph = bed.graph(clock.clone(), RetryPolicy::none());
    let intake = Intake::new(store.clone(), graph, clock.clone(), &bed.definition);
    let worker = InboxWorker::new(
        intake.clone(),
        std::sync::Arc::new(tokio::sync::Notify::new()),
        Poller::new(intake.clone()),
        None,
    );
    // Every read of a "poison" job fails as if Graph could not serve it; other jobs are served.
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            route: "getJob".into(),
            path_contains: Some("poison".into()),
            rate_503: 1.0,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let poison: Vec<String> = (0..150)
        .map(|n| notification(&bed, &format!("poison-task-{n}"), &format!("poison-{n}")))
        .collect();
    store.inbox_push(&poison, clock.now()).await.unwrap();
    let good = bed.submit("ada@contoso.example", "urgent.pdf");
    let good_task = good.task_id.clone().unwrap();
    store
        .inbox_push(&[notification(&bed, &good_task, &good.job_id)], clock.now())
        .await
        .unwrap();

    worker.drain().await.unwrap();
    assert!(
        store.task_known(&good_task).await.unwrap(),
        "the newer notification is not held up by 150 poison ones"
    );

    let mut rounds = 0;
    while !store.inbox_pending(1000).await.unwrap().is_empty() {
        rounds += 1;
        assert!(rounds <= 20, "the poison notifications are given up");
        clock.advance(pullprintd::intake::inbox::MAX_RETRY_DELAY);
        worker.drain().await.unwrap();
    }
    assert_eq!(rounds, pullprintd::intake::inbox::MAX_TRIES as usize - 1);
    let dead: Vec<_> = store
        .audit_query(&AuditFilter::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|record| record.event == AuditEvent::DeadLetter)
        .collect();
    assert_eq!(dead.len(), 150);
    let detail = dead[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("failed 10 times") && detail.contains("503"),
        "{detail}"
    );
    let metrics = intake.metrics().render();
    assert!(
        metrics.contains(r#"pullprintd_notifications_total{kind="dead_letter"} 150"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_sweeper_expires_a_held_job_within_a_second_of_its_deadline() {
    let bed = Bed::default().await;
    let clock = ManualClock::new(bed.emulator.control().now());
    let shared: SharedClock = clock.clone();
    let engine = Engine::start(&bed, shared.clone(), RetryPolicy::default(), 4).await;
    let task = bed
        .submit("ada@contoso.example", "report.pdf")
        .task_id
        .unwrap();
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    let submitted = engine
        .store
        .held_job(&task)
        .await
        .unwrap()
        .unwrap()
        .job
        .submitted_at;
    let hold_timeout = Duration::from_secs(60);
    let sweeper = Sweeper::new(
        engine.store.clone(),
        engine.service.clone(),
        shared,
        hold_timeout,
        Duration::from_secs(400 * 86_400),
    );
    let stop = tokio_util::sync::CancellationToken::new();
    // The backstop re-read is an hour away: only the deadline can wake the sweeper in time.
    let sweeping = tokio::spawn(sweeper.run(
        Duration::from_secs(3600),
        engine.intake.new_jobs(),
        stop.clone(),
    ));
    clock.set(submitted + time::Duration::seconds(59));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let state =
        |store: Store, task: String| async move { store.held_job(&task).await.unwrap().unwrap() };
    assert_eq!(
        state(engine.store.clone(), task.clone()).await.state,
        JobState::Held,
        "not before the deadline"
    );
    clock.set(submitted + time::Duration::milliseconds(60_001));
    // The sweeper looks at the clock at least every second.
    eventually(Duration::from_millis(1500), "the job is expired", || {
        let (store, task) = (engine.store.clone(), task.clone());
        async move { state(store, task).await.state != JobState::Held }
    })
    .await;
    eventually(Duration::from_secs(10), "the expiry carried out", || {
        let (store, task) = (engine.store.clone(), task.clone());
        async move { state(store, task).await.outcome == Some(pullprintd::store::Outcome::Expired) }
    })
    .await;
    stop.cancel();
    sweeping.await.unwrap();
    engine.stop().await;
}

/// A find-me release onto a lobby printer that carries our trigger too, with the emulator holding a
/// redirected job there again (`holds_again`) or printing it at once.
async fn find_me_onto_a_queue_printer(holds_again: bool) {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    control.create_trigger(&bed.lobby, &bed.definition).unwrap();
    control.set_redirect_holds_again(holds_again);
    let engine = Engine::default(&bed).await;
    let task = bed
        .submit("ada@contoso.example", "report.pdf")
        .task_id
        .unwrap();
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    let chosen = serde_json::json!({"copies": 3, "colorMode": "grayscale"});
    let outcome = engine
        .act(action(
            &task,
            ActionKind::Redirect,
            Some(engine_support::configuration(chosen.clone())),
            Some(&bed.lobby),
        ))
        .await;
    assert_eq!(outcome.outcome, pullprintd::store::Outcome::Redirected);
    // The destination's task (if any) reaches the daemon as any new task does.
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    eventually(Duration::from_secs(20), "no task left processing", || {
        let control = control.clone();
        async move { control.tasks().iter().all(|t| t.state != "processing") }
    })
    .await;
    let printed = control.printed(&bed.lobby);
    assert_eq!(printed.len(), 1, "printed once at the lobby: {printed:?}");
    assert_eq!(printed[0].configuration["copies"], chosen["copies"]);
    assert_eq!(printed[0].configuration["colorMode"], chosen["colorMode"]);
    let store = engine.store.clone();
    eventually(Duration::from_secs(10), "nothing held", || {
        let store = store.clone();
        async move {
            store
                .all_held_jobs()
                .await
                .unwrap()
                .iter()
                .all(|h| h.state == JobState::Ended)
        }
    })
    .await;
    engine.stop().await;
}

#[tokio::test]
async fn a_find_me_release_onto_a_printer_that_holds_it_again_is_completed_at_once_with_the_chosen_configuration()
 {
    find_me_onto_a_queue_printer(true).await;
}

#[tokio::test]
async fn a_find_me_release_onto_a_printer_that_prints_it_at_once_needs_nothing_more() {
    find_me_onto_a_queue_printer(false).await;
}

#[tokio::test]
async fn a_redirect_answered_503_with_retry_after_after_it_took_effect_is_settled_by_reading_not_resent()
 {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    let engine = Engine::default(&bed).await;
    let task = bed
        .submit("ada@contoso.example", "report.pdf")
        .task_id
        .unwrap();
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    // Graph redirects, then its front end answers 503 with Retry-After.
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "redirectJob".into(),
            fail_after_effect_rate: 1.0,
            after_effect: pullprintd::emulator::AfterEffect::Unavailable {
                retry_after_secs: 0,
            },
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let outcome = engine
        .act(action(&task, ActionKind::Redirect, None, Some(&bed.lobby)))
        .await;
    assert_eq!(
        outcome.outcome,
        pullprintd::store::Outcome::Redirected,
        "{}",
        outcome.detail
    );
    assert_eq!(control.printed(&bed.lobby).len(), 1, "printed once");
    assert_eq!(
        control.calls_to("POST /print/printers/{id}/jobs/{id}/redirect"),
        1,
        "the redirect was sent once"
    );
    engine.stop().await;
}

#[tokio::test]
async fn after_a_release_applied_50_copies_and_was_refused_printing_as_shown_prints_what_was_submitted()
 {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    let engine = Engine::default(&bed).await;
    let submitted = bed.submit("ada@contoso.example", "report.pdf");
    let task = submitted.task_id.clone().unwrap();
    engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
    // The configuration is applied, then completing the task is refused for good.
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "updateTask".into(),
            rate_403: 1.0,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let fifty = serde_json::json!({"copies": 50, "colorMode": "color"});
    let refused = engine
        .act(action(
            &task,
            ActionKind::Release,
            Some(engine_support::configuration(fifty)),
            None,
        ))
        .await;
    assert_eq!(refused.outcome, pullprintd::store::Outcome::Failed);
    assert_eq!(
        control.job(&submitted.job_id).unwrap().configuration["copies"],
        50
    );
    let held = engine.store.held_job(&task).await.unwrap().unwrap();
    assert_eq!(held.state, JobState::Held, "back on the person's list");

    control.set_faults(Faults::default());
    let released = engine
        .act(action(&task, ActionKind::Release, None, None))
        .await;
    assert_eq!(
        released.outcome,
        pullprintd::store::Outcome::Released,
        "{}",
        released.detail
    );
    let printed = control.printed(&bed.queue);
    assert_eq!(printed.len(), 1);
    assert_eq!(
        printed[0].configuration["copies"], 1,
        "printed as submitted, not with the 50 copies Graph held"
    );
    engine.stop().await;
}

#[tokio::test]
async fn task_gone_and_job_paused_after_an_uncertain_redirect_is_read_again_later_not_taken_as_redirected()
 {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let held = hold_one(&bed, clock.clone(), RetryPolicy::none()).await;
    let id = held
        .store
        .enqueue(&action(
            &held.task,
            ActionKind::Redirect,
            None,
            Some(&bed.lobby),
        ))
        .await
        .unwrap();
    let drive = || async {
        let queued = held.store.action(id).await.unwrap().unwrap();
        held.executor.drive(queued).await.unwrap()
    };
    // The connection breaks before Graph acts: the outcome is unknown to the daemon.
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "redirectJob".into(),
            rate_reset: 1.0,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    assert_eq!(drive().await, Driven::Rescheduled);
    // The settling read is ambiguous: task gone, job paused, no redirect named.
    control.set_faults(Faults {
        ambiguous_read_rate: 1.0,
        ..Faults::default()
    });
    assert_eq!(drive().await, Driven::Rescheduled, "not assumed redirected");
    assert!(control.printed(&bed.lobby).is_empty());
    // A clear read shows the job still held: the redirect is sent, once.
    control.set_faults(Faults::default());
    let Driven::Finished(outcome) = drive().await else {
        panic!("the redirect finishes once the read is clear");
    };
    assert_eq!(outcome.outcome, pullprintd::store::Outcome::Redirected);
    assert_eq!(control.printed(&bed.lobby).len(), 1, "printed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_engine_with_work_due_and_graph_idle_still_stops_the_heartbeat() {
    use sqlx::Connection as _;
    let bed = Bed::default().await;
    let store = Store::open_in(bed.dir.path()).await.unwrap();
    let graph = bed.graph(SystemClock::shared(), RetryPolicy::default());
    let intake = Intake::new(
        store.clone(),
        graph.clone(),
        SystemClock::shared(),
        &bed.definition,
    );
    for n in 0..3 {
        bed.submit("ada@contoso.example", &format!("stuck-{n}.pdf"));
    }
    assert_eq!(
        Poller::new(intake)
            .poll(DiscoveredVia::Poll)
            .await
            .unwrap()
            .stored,
        3
    );
    for held in store.all_held_jobs().await.unwrap() {
        store
            .enqueue(&action(&held.job.task_id, ActionKind::Delete, None, None))
            .await
            .unwrap();
    }
    // Another process holds the store's write lock: every drive hangs on its first write, while
    // Graph is idle and answers at once. One slot, three due actions.
    let mut blocker = sqlx::SqliteConnection::connect(&format!(
        "sqlite://{}",
        bed.dir
            .path()
            .join(pullprintd::store::DEFAULT_FILE_NAME)
            .display()
    ))
    .await
    .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut blocker)
        .await
        .unwrap();
    let heartbeat = pullprintd::notify::Heartbeat::new();
    let executor = Executor::new(
        store.clone(),
        graph,
        SystemClock::shared(),
        Completions::default(),
        1,
        Duration::from_secs(3600),
        Observers {
            metrics: Default::default(),
            heartbeat: heartbeat.clone(),
        },
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let running = tokio::spawn(executor.run(stop.clone(), Duration::from_millis(100)));
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        !heartbeat.is_fresh(Duration::from_secs(2)),
        "a stuck engine must let the watchdog restart the daemon"
    );
    // Once the store takes writes again the engine progresses and the heartbeat is fresh again.
    sqlx::query("ROLLBACK").execute(&mut blocker).await.unwrap();
    eventually(Duration::from_secs(20), "the heartbeat beats again", || {
        let heartbeat = heartbeat.clone();
        async move { heartbeat.is_fresh(Duration::from_secs(2)) }
    })
    .await;
    stop.cancel();
    running.await.unwrap();
}
