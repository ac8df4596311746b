//! The done-criterion: under a 429/503 storm with tokens expiring every 20 s, 200 held jobs of
//! mixed release / delete / find-me all end exactly once — checked on the emulator, not on our word.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::collections::HashMap;
use std::time::Duration;

use engine_support::{Bed, Engine, action, configuration};
use futures::future::join_all;
use pullprintd::clock::SystemClock;
use pullprintd::emulator::{EmulatorOptions, Faults, RouteFault};
use pullprintd::graph::RetryPolicy;
use pullprintd::store::{ActionKind, DiscoveredVia, Outcome};
use serde_json::json;

const JOBS: usize = 200;
const REDIRECT: &str = "POST /print/printers/{id}/jobs/{id}/redirect";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_a_429_503_storm_with_expiring_tokens_every_job_ends_exactly_once() {
    let bed = Bed::start(EmulatorOptions {
        token_lifetime: Duration::from_secs(20),
        ..EmulatorOptions::default()
    })
    .await;
    let mut jobs = Vec::new();
    for i in 0..JOBS {
        let job = bed.submit(
            &format!("user{}@contoso.example", i % 7),
            &format!("doc-{i}.pdf"),
        );
        jobs.push((job.task_id.unwrap(), job.job_id));
    }
    // The storm starts before intake: the lookups live through it too.
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            rate_429: 0.3,
            retry_after_secs: 1,
            rate_503: 0.1,
            // No Retry-After on 503: a redirect refused so is "outcome unknown" and must be settled
            // by reading the job, never by sending it again blind.
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
    let engine = Engine::start(&bed, SystemClock::shared(), retry, 16).await;

    // Counted in the store: a poll whose later page fails still holds the jobs of the pages it
    // read (it reports the failure, not what it stored).
    let mut stored = 0;
    for _ in 0..30 {
        let _ = engine.poller.poll(DiscoveredVia::Poll).await;
        stored = usize::try_from(engine.store.count_held_jobs().await.unwrap()).unwrap();
        if stored == JOBS {
            break;
        }
    }
    assert_eq!(stored, JOBS, "every task is looked up despite the storm");

    let kinds: Vec<ActionKind> = (0..JOBS)
        .map(|i| match i % 3 {
            0 => ActionKind::Release,
            1 => ActionKind::Delete,
            _ => ActionKind::Redirect,
        })
        .collect();
    let outcomes = join_all(
        jobs.iter()
            .zip(&kinds)
            .enumerate()
            .map(|(i, ((task, _), kind))| {
                let changes = (*kind == ActionKind::Release && i % 2 == 0)
                    .then(|| configuration(json!({"copies": 2, "colorMode": "blackAndWhite"})));
                let to = (*kind == ActionKind::Redirect).then_some(bed.lobby.as_str());
                engine.act(action(task, *kind, changes, to))
            }),
    )
    .await;

    let control = bed.emulator.control();
    let mut printed: HashMap<String, usize> = HashMap::new();
    for job in control.printed(&bed.queue) {
        *printed.entry(job.job_id).or_default() += 1;
    }
    for job in control.printed(&bed.lobby) {
        let from = job.redirected_from.unwrap_or_default();
        let source = from.rsplit('/').next().unwrap_or_default().to_owned();
        *printed.entry(source).or_default() += 1;
    }
    for (((task, job), kind), outcome) in jobs.iter().zip(&kinds).zip(&outcomes) {
        let expected = match kind {
            ActionKind::Release => Outcome::Released,
            ActionKind::Delete => Outcome::Deleted,
            _ => Outcome::Redirected,
        };
        assert_eq!(outcome.outcome, expected, "task {task}: {}", outcome.detail);
        let times = printed.get(job).copied().unwrap_or(0);
        let should = usize::from(*kind != ActionKind::Delete);
        assert_eq!(times, should, "job {job} ({kind}) printed {times} times");
    }
    assert!(
        control.tasks().iter().all(|t| t.state != "processing"),
        "no task is left processing"
    );
    let redirects_done: u64 = control
        .call_counts()
        .get(REDIRECT)
        .map(|by| {
            by.iter()
                .filter(|(s, _)| (200..300).contains(*s))
                .map(|(_, n)| n)
                .sum()
        })
        .unwrap_or(0);
    let redirects = kinds.iter().filter(|k| **k == ActionKind::Redirect).count() as u64;
    assert_eq!(
        redirects_done, redirects,
        "no redirect was carried out twice"
    );
    assert!(engine.store.all_held_jobs().await.unwrap().is_empty());
    engine.stop().await;
}
