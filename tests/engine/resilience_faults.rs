//! The fault matrix: for each fault the emulator can inject, a batch of held jobs of mixed release /
//! delete / find-me (redirect) actions must all end exactly once, checked on the emulator rather than
//! on the daemon's word: every job printed at most once, with the configuration its owner chose, no
//! redirect carried out twice, no task left `processing`, nothing left held.
//!
//! One table, one pass per row (each on a fresh emulator and store), so adding a fault is one line.
//! The figures (jobs, time, Graph answers that were faults) are printed for the README's Reliability
//! section (`cargo test --test engine resilience_faults:: -- --nocapture`).
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use engine_support::{Bed, Engine, RunningApp, action, configuration, eventually};
use futures::future::join_all;
use pullprintd::app::AppOptions;
use pullprintd::clock::SystemClock;
use pullprintd::emulator::scenario::StationSpec;
use pullprintd::emulator::{
    AfterEffect, EmulatorOptions, Faults, NewJob, NewPrinter, NotificationFaults, RouteFault,
};
use pullprintd::graph::RetryPolicy;
use pullprintd::store::{ActionKind, DiscoveredVia, JobState, Outcome};
use serde_json::{Value, json};

/// Jobs per row of the matrix.
const JOBS: usize = 24;

/// One row: a fault and how the emulator starts.
struct Case {
    name: &'static str,
    faults: Faults,
    /// Lifetime of the emulator's tokens (short: they expire during the run).
    token_lifetime: Duration,
    /// Move the emulator's clock ahead by this much once the actions are under way (expires every
    /// token the daemon holds, as a suspended host or a skewed clock would).
    clock_jump: Option<time::Duration>,
    /// Keep expiring the daemon's token while the actions run (the emulator's clock moves an hour
    /// ahead every 20 ms), so the client goes back to the token endpoint again and again.
    churn_tokens: bool,
}

fn on_every_route(rule: RouteFault) -> Faults {
    Faults {
        routes: vec![rule],
        ..Faults::default()
    }
}

fn matrix() -> Vec<Case> {
    let case = |name, faults| Case {
        name,
        faults,
        token_lifetime: Duration::from_secs(3599),
        clock_jump: None,
        churn_tokens: false,
    };
    vec![
        case(
            "429 storm with Retry-After",
            on_every_route(RouteFault {
                rate_429: 0.4,
                retry_after_secs: 1,
                ..RouteFault::default()
            }),
        ),
        case(
            "503 with Retry-After",
            on_every_route(RouteFault {
                rate_503: 0.3,
                retry_after_503_secs: Some(1),
                ..RouteFault::default()
            }),
        ),
        case(
            "503 without Retry-After",
            on_every_route(RouteFault {
                rate_503: 0.3,
                retry_after_503_secs: None,
                ..RouteFault::default()
            }),
        ),
        case(
            "connection reset before the effect",
            on_every_route(RouteFault {
                rate_reset: 0.3,
                ..RouteFault::default()
            }),
        ),
        case(
            "connection reset after the effect",
            on_every_route(RouteFault {
                fail_after_effect_rate: 0.3,
                after_effect: AfterEffect::Reset,
                ..RouteFault::default()
            }),
        ),
        case(
            "504 after the effect",
            on_every_route(RouteFault {
                fail_after_effect_rate: 0.3,
                after_effect: AfterEffect::GatewayTimeout,
                ..RouteFault::default()
            }),
        ),
        // Tokens expiring all through the run send the client back to the token endpoint again and
        // again, so its refusals meet intake and every kind of action.
        Case {
            name: "token endpoint failures (30 %, tokens expiring all along)",
            faults: Faults {
                token_failure_rate: 0.3,
                ..Faults::default()
            },
            token_lifetime: Duration::from_secs(3599),
            clock_jump: None,
            churn_tokens: true,
        },
        Case {
            name: "expired tokens (2 s lifetime, clock jump)",
            faults: Faults::default(),
            token_lifetime: Duration::from_secs(2),
            clock_jump: Some(time::Duration::hours(2)),
            churn_tokens: false,
        },
    ]
}

/// What a row measured.
struct Figures {
    jobs: usize,
    elapsed: Duration,
    calls: u64,
    faulted: u64,
}

/// The configuration a release of job `i` asks for, if it changes any (every other release does).
fn chosen(i: usize) -> Option<Value> {
    i.is_multiple_of(2)
        .then(|| json!({"copies": 2, "colorMode": "blackAndWhite"}))
}

fn kind_of(i: usize) -> ActionKind {
    match i % 3 {
        0 => ActionKind::Release,
        1 => ActionKind::Delete,
        _ => ActionKind::Redirect,
    }
}

async fn run(case: &Case) -> Figures {
    let started = Instant::now();
    let bed = Bed::start(EmulatorOptions {
        token_lifetime: case.token_lifetime,
        seed: 0x0f_a017,
        ..EmulatorOptions::default()
    })
    .await;
    let jobs: Vec<(String, String)> = (0..JOBS)
        .map(|i| {
            let job = bed.submit(
                &format!("user{}@contoso.example", i % 5),
                &format!("{i}.pdf"),
            );
            (job.task_id.unwrap(), job.job_id)
        })
        .collect();
    // The fault starts before intake: the lookups live through it too.
    let control = bed.emulator.control();
    control.set_faults(case.faults.clone());
    let retry = RetryPolicy {
        max_attempts: 4,
        max_elapsed: Duration::from_secs(10),
        min_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(500),
    };
    let engine = Engine::start(&bed, SystemClock::shared(), retry, 8).await;
    // Counted in the store: a poll whose later page fails still holds the jobs of the pages it
    // read (it reports the failure, not what it stored).
    let mut stored = 0;
    for _ in 0..40 {
        let _ = engine.poller.poll(DiscoveredVia::Poll).await;
        stored = usize::try_from(engine.store.count_held_jobs().await.unwrap()).unwrap();
        if stored == JOBS {
            break;
        }
    }
    assert_eq!(stored, JOBS, "{}: every task is looked up", case.name);

    if let Some(jump) = case.clock_jump {
        control.advance_clock(jump);
    }
    let churning = case.churn_tokens.then(|| {
        let control = control.clone();
        tokio::spawn(async move {
            loop {
                control.advance_clock(time::Duration::hours(1));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    });
    let outcomes = join_all(jobs.iter().enumerate().map(|(i, (task, _))| {
        let kind = kind_of(i);
        let changes = (kind == ActionKind::Release)
            .then(|| chosen(i))
            .flatten()
            .map(configuration);
        let to = (kind == ActionKind::Redirect).then_some(bed.lobby.as_str());
        engine.act(action(task, kind, changes, to))
    }))
    .await;
    if let Some(churning) = churning {
        churning.abort();
    }
    let counts = control.call_counts();
    let (_, tokens_refused) = control.token_requests();
    control.set_faults(Faults::default());

    // Where every job printed, by source job id.
    let mut printed: HashMap<String, Vec<Value>> = HashMap::new();
    for job in control.printed(&bed.queue) {
        printed
            .entry(job.job_id)
            .or_default()
            .push(job.configuration);
    }
    for job in control.printed(&bed.lobby) {
        let from = job.redirected_from.unwrap_or_default();
        let source = from.rsplit('/').next().unwrap_or_default().to_owned();
        printed.entry(source).or_default().push(job.configuration);
    }
    for (i, ((task, job), outcome)) in jobs.iter().zip(&outcomes).enumerate() {
        let kind = kind_of(i);
        let expected = match kind {
            ActionKind::Release => Outcome::Released,
            ActionKind::Delete => Outcome::Deleted,
            _ => Outcome::Redirected,
        };
        let name = case.name;
        assert_eq!(
            outcome.outcome, expected,
            "{name}: task {task} ({kind}): {}",
            outcome.detail
        );
        let copies = printed.get(job).map(Vec::as_slice).unwrap_or_default();
        if kind == ActionKind::Delete {
            assert!(copies.is_empty(), "{name}: deleted job {job} printed");
            assert_eq!(control.job(job).unwrap().state, "aborted", "{name}");
            continue;
        }
        assert_eq!(copies.len(), 1, "{name}: job {job} ({kind}) printed once");
        let want = chosen(i)
            .filter(|_| kind == ActionKind::Release)
            .unwrap_or_else(|| json!({"copies": 1, "colorMode": "color"}));
        assert_eq!(copies[0]["copies"], want["copies"], "{name}: job {job}");
        assert_eq!(
            copies[0]["colorMode"], want["colorMode"],
            "{name}: job {job}"
        );
    }
    assert!(
        control.tasks().iter().all(|t| t.state != "processing"),
        "{}: no task is left processing",
        case.name
    );
    let redirects_performed = control
        .printed(&bed.lobby)
        .iter()
        .filter(|p| p.redirected_from.is_some())
        .count();
    let redirects = (0..JOBS)
        .filter(|i| kind_of(*i) == ActionKind::Redirect)
        .count();
    assert_eq!(
        redirects_performed, redirects,
        "{}: no redirect carried out twice",
        case.name
    );
    assert!(engine.store.all_held_jobs().await.unwrap().is_empty());
    for (route, by_status) in &counts {
        assert!(
            !by_status.contains_key(&500),
            "{}: the emulator answered 500 on {route}",
            case.name
        );
    }
    engine.stop().await;
    let calls = counts.values().flat_map(|by| by.values()).sum();
    let faulted: u64 = counts
        .values()
        .flat_map(|by| by.iter())
        .filter(|(status, _)| matches!(**status, 0 | 401 | 429 | 503 | 504))
        .map(|(_, n)| n)
        .sum();
    // The row tested its fault only if the fault fired (token endpoint refusals are not counted
    // among the Graph calls; an expired token shows as a 401 that the client answered by refreshing).
    let faulted = faulted + tokens_refused;
    if !case.faults.routes.is_empty() || case.clock_jump.is_some() || tokens_refused > 0 {
        assert!(faulted > 0, "{}: the fault never fired", case.name);
    }
    if case.faults.token_failure_rate > 0.0 {
        assert!(
            tokens_refused > 0,
            "{}: no token request was refused",
            case.name
        );
    }
    Figures {
        jobs: JOBS,
        elapsed: started.elapsed(),
        calls,
        faulted,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_every_fault_each_held_job_ends_exactly_once_with_the_chosen_configuration() {
    let mut table = String::from("| fault | jobs | Graph calls | faulted answers | time |\n");
    for case in matrix() {
        let figures = run(&case).await;
        table.push_str(&format!(
            "| {} | {} | {} | {} | {:.1} s |\n",
            case.name,
            figures.jobs,
            figures.calls,
            figures.faulted,
            figures.elapsed.as_secs_f64()
        ));
    }
    eprintln!("{table}");
}

use engine_support::free_port;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_dropped_duplicated_delayed_or_forged_still_hold_each_job_once() {
    let started = Instant::now();
    let bed = Bed::start(EmulatorOptions {
        seed: 0x0071_f1ed,
        ..EmulatorOptions::default()
    })
    .await;
    let port = free_port();
    let mut settings = bed.settings(
        &format!(
            "mode = \"both\"\npoll_interval = \"1h\"\npublic_url = \"http://127.0.0.1:{port}/graph/notifications\""
        ),
        "notify.db",
    );
    settings.api.listen = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let app = RunningApp::start(settings, AppOptions::default()).await;
    let control = bed.emulator.control();
    eventually(Duration::from_secs(10), "the subscription", || {
        let control = control.clone();
        async move { control.subscriptions().len() == 1 }
    })
    .await;
    control.set_faults(Faults {
        notifications: NotificationFaults {
            drop_rate: 0.3,
            duplicate_rate: 0.3,
            delay_rate: 0.3,
            delay_ms: 300,
        },
        ..Faults::default()
    });
    let jobs: Vec<(String, String)> = (0..JOBS)
        .map(|i| {
            let job = bed.submit("ada@contoso.example", &format!("n{i}.pdf"));
            (job.task_id.unwrap(), job.job_id)
        })
        .collect();
    // Forged notifications naming real tasks (a wrong clientState): dropped, never looked up.
    let forged = json!({"value": jobs.iter().map(|(task, _)| json!({
        "subscriptionId": "00000000-0000-0000-0000-000000000000",
        "clientState": "not-the-secret",
        "changeType": "created",
        "resource": format!("print/taskDefinitions/{}/tasks/{task}", bed.definition),
        "resourceData": {"id": task},
        "tenantId": bed.emulator.tenant_id(),
    })).collect::<Vec<_>>()});
    let answer = reqwest::Client::new()
        .post(format!("http://{}/graph/notifications", app.addr))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 202, "forged items are dropped silently");
    assert_eq!(app.webhook.forged(), JOBS as u64);

    // Every delivery the emulator meant to make has been made (delays included) before the backstop.
    eventually(
        Duration::from_secs(15),
        "the notifications delivered",
        || {
            let control = control.clone();
            async move { control.deliveries().len() >= JOBS }
        },
    )
    .await;
    // The poll is the backstop for the dropped ones.
    app.poller.poll(DiscoveredVia::Poll).await.unwrap();
    // Lookups the inbox had claimed before the poll finish on their own.
    eventually(Duration::from_secs(15), "every job held", || {
        let store = app.store.clone();
        async move { store.all_held_jobs().await.unwrap().len() == JOBS }
    })
    .await;
    let held = app.store.all_held_jobs().await.unwrap();
    let vias: Vec<DiscoveredVia> = held.iter().map(|h| h.job.discovered_via).collect();
    let by_poll = vias.iter().filter(|v| **v == DiscoveredVia::Poll).count();

    let outcomes = join_all(jobs.iter().enumerate().map(|(i, (task, _))| {
        let kind = kind_of(i);
        let changes = (kind == ActionKind::Release)
            .then(|| chosen(i))
            .flatten()
            .map(configuration);
        let to = (kind == ActionKind::Redirect).then_some(bed.lobby.as_str());
        let service = app.service.clone();
        let store = app.store.clone();
        async move {
            match service
                .submit(action(task, kind, changes, to))
                .await
                .unwrap()
            {
                pullprintd::release::service::Submitted::Done(done) => done.outcome,
                pullprintd::release::service::Submitted::Queued { action_id } => {
                    // The executor runs inside the App: poll the store with a deadline.
                    let deadline = Instant::now() + Duration::from_secs(60);
                    loop {
                        if let Some((outcome, _)) = store.action_outcome(action_id).await.unwrap() {
                            break outcome;
                        }
                        assert!(Instant::now() < deadline, "action {action_id} ends");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            }
        }
    }))
    .await;
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = match kind_of(i) {
            ActionKind::Release => Outcome::Released,
            ActionKind::Delete => Outcome::Deleted,
            _ => Outcome::Redirected,
        };
        assert_eq!(*outcome, expected, "job {i}");
    }
    let on_queue = control.printed(&bed.queue).len();
    let on_lobby = control.printed(&bed.lobby).len();
    let releases = (0..JOBS)
        .filter(|i| kind_of(*i) == ActionKind::Release)
        .count();
    let redirects = (0..JOBS)
        .filter(|i| kind_of(*i) == ActionKind::Redirect)
        .count();
    assert_eq!((on_queue, on_lobby), (releases, redirects));
    assert!(control.tasks().iter().all(|t| t.state != "processing"));
    eprintln!(
        "notifications: {JOBS} jobs, {} deliveries recorded, {} forged dropped, {by_poll} held by the backstop poll, {:.1} s",
        control.deliveries().len(),
        app.webhook.forged(),
        started.elapsed().as_secs_f64()
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_printer_without_capabilities_prints_or_refuses_clearly_never_a_5xx() {
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    let printer = |name: &str, capabilities: Value| {
        control
            .create_printer(NewPrinter {
                display_name: name.into(),
                capabilities: Some(capabilities),
                ..NewPrinter::default()
            })
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let bare = printer("Bare", json!({}));
    let null = printer("Null", Value::Null);
    control.create_trigger(&bare, &bed.definition).unwrap();
    control.create_trigger(&null, &bed.definition).unwrap();
    let engine = Engine::default(&bed).await;

    let mut checked = 0;
    let mut refused = Vec::new();
    for source in [&bare, &null] {
        for (n, (kind, to)) in [
            (ActionKind::Release, None),
            (ActionKind::Redirect, Some(bed.lobby.as_str())),
            (
                ActionKind::Redirect,
                Some(if source == &bare {
                    null.as_str()
                } else {
                    bare.as_str()
                }),
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let submitted = control
                .submit_job(NewJob {
                    printer_id: source.clone(),
                    user_principal_name: "ada@contoso.example".into(),
                    user_display_name: None,
                    document_name: Some(format!("caps-{n}.pdf")),
                    configuration: Some(json!({"copies": 1})),
                })
                .unwrap();
            let task = submitted.task_id.expect("the printer carries our trigger");
            engine.poller.poll(DiscoveredVia::Poll).await.unwrap();
            let changes = Some(configuration(
                json!({"copies": 3, "duplexMode": "flipOnLongEdge"}),
            ));
            let outcome = engine.act(action(&task, kind, changes, to)).await;
            match outcome.outcome {
                Outcome::Released | Outcome::Redirected => {
                    let on = to.unwrap_or(source);
                    let copies: Vec<_> = control
                        .printed(on)
                        .into_iter()
                        .filter(|p| {
                            p.job_id == submitted.job_id
                                || p.redirected_from.as_deref().is_some_and(|f| {
                                    f.ends_with(&format!("/jobs/{}", submitted.job_id))
                                })
                        })
                        .collect();
                    assert_eq!(copies.len(), 1, "printed once");
                    if kind == ActionKind::Release {
                        assert_eq!(copies[0].configuration["copies"], 3, "the chosen copies");
                    }
                }
                Outcome::Failed => {
                    assert!(!outcome.detail.is_empty(), "a refusal says why");
                    // Refused, not lost: the job is held again for another try.
                    let held = engine.store.held_job(&task).await.unwrap().unwrap();
                    assert_eq!(held.state, JobState::Held, "{}", outcome.detail);
                    refused.push(format!("{kind} from {source}: {}", outcome.detail));
                }
                other => panic!("unexpected outcome {other:?}: {}", outcome.detail),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 6);
    for (route, by_status) in control.call_counts() {
        assert!(
            by_status.keys().all(|s| *s < 500),
            "no 5xx on {route}: {by_status:?}"
        );
    }
    eprintln!("capabilities: {checked} actions, refused: {refused:#?}");
    engine.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_station_on_a_printer_without_capabilities_options_and_releases_answer_without_a_500()
{
    const KEY: &str = "bare-station-key-0123456789";
    let bed = Bed::default().await;
    let control = bed.emulator.control();
    let mut answers = Vec::new();
    for (name, capabilities) in [("Bare", json!({})), ("Null", Value::Null)] {
        let printer = control
            .create_printer(NewPrinter {
                display_name: name.into(),
                capabilities: Some(capabilities),
                ..NewPrinter::default()
            })
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        control.create_trigger(&printer, &bed.definition).unwrap();
        let users = bed.dir.path().join(format!("{name}-users.toml"));
        std::fs::write(
            &users,
            "[[user]]\nupn = \"ada@contoso.example\"\ndisplay_name = \"Ada\"\ncard = \"0004521337\"\n",
        )
        .unwrap();
        let mut config = bed.config(
            "mode = \"poll\"\npoll_interval = \"1h\"",
            &format!("{name}.db"),
        );
        config.stations = vec![StationSpec {
            id: name.to_owned(),
            printer_id: printer.clone(),
            key: KEY.to_owned(),
        }];
        config.users_file = Some(users);
        let settings = config.settings().unwrap();
        let app = RunningApp::start(settings, AppOptions::default()).await;
        let http = reqwest::Client::new();
        let url = |path: &str| format!("http://{}{path}", app.addr);
        let session: Value = http
            .post(url("/api/v1/sessions"))
            .bearer_auth(KEY)
            .json(&json!({"card": "0004521337"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = session["token"].as_str().expect("signed in").to_owned();
        for (n, options) in [
            json!({}),
            json!({"copies": 3, "duplexMode": "flipOnLongEdge"}),
        ]
        .into_iter()
        .enumerate()
        {
            let task = control
                .submit_job(NewJob {
                    printer_id: printer.clone(),
                    user_principal_name: "ada@contoso.example".into(),
                    user_display_name: None,
                    document_name: Some(format!("{name}-{n}.pdf")),
                    configuration: Some(json!({"copies": 1})),
                })
                .unwrap()
                .task_id
                .unwrap();
            app.poller.poll(DiscoveredVia::Poll).await.unwrap();
            eventually(Duration::from_secs(10), "the job held", || {
                let store = app.store.clone();
                let task = task.clone();
                async move { store.held_job(&task).await.unwrap().is_some() }
            })
            .await;
            let choices = http
                .get(url(&format!("/api/v1/jobs/{task}/options")))
                .bearer_auth(&token)
                .header("x-station-key", KEY)
                .send()
                .await
                .unwrap();
            assert_eq!(choices.status(), 200, "{name}: the kiosk's choices");
            let release = http
                .post(url(&format!("/api/v1/jobs/{task}/release")))
                .bearer_auth(&token)
                .header("x-station-key", KEY)
                .json(&options)
                .send()
                .await
                .unwrap();
            let status = release.status().as_u16();
            let answer: Value = release.json().await.unwrap();
            if status >= 400 {
                // Refused by the policy (422) or, when the printer lists nothing to check against, by
                // Graph itself: the documented 502 `graph_refused` carrying Graph's reason. Never a 500.
                let code = answer["error"]["code"].as_str().unwrap_or_default();
                assert!(
                    status == 422 || (status == 502 && code == "graph_refused"),
                    "{name} {options}: {status} {answer}"
                );
                let message = answer["error"]["message"].as_str().unwrap_or_default();
                assert!(message.contains("copies"), "{name} {options}: says why");
                let held = app.store.held_job(&task).await.unwrap().unwrap();
                assert_eq!(
                    held.state,
                    JobState::Held,
                    "{name}: held again for another try"
                );
            } else {
                assert!(matches!(status, 200 | 202), "{name} {options}: {status}");
            }
            answers.push(format!("{name} {options}: {status} {answer}"));
        }
        app.stop().await;
    }
    eprintln!("station on a printer without capabilities: {answers:#?}");
}

#[tokio::test]
async fn the_emulated_connection_reset_gives_the_client_no_answer_at_all() {
    let bed = Bed::default().await;
    bed.emulator
        .control()
        .set_faults(on_every_route(RouteFault {
            rate_reset: 1.0,
            ..RouteFault::default()
        }));
    // The reset is decided before authentication: no token is needed to meet it.
    let url = format!(
        "{}/print/printers/{}/jobs/1",
        bed.emulator.graph_url(),
        bed.queue
    );
    let answer = async { reqwest::get(&url).await?.bytes().await }.await;
    let error = answer.expect_err("no complete answer arrives");
    eprintln!("the client saw: {error:?}");
    // The emulator still serves the next connection.
    bed.emulator.control().set_faults(Faults::default());
    let status = reqwest::get(&url).await.expect("served again").status();
    assert_eq!(
        status, 401,
        "an ordinary answer (no token) once the fault is gone"
    );
}
