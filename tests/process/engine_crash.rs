//! Crash at each step: the real `pullprintd run` is made to die right after recording a step
//! (`PULLPRINTD_TEST_CRASH_AT=<step>`, which calls `std::process::abort()`: no destructor, no flush,
//! like `kill -9`), then started again on the same store; the job must end exactly once, as Graph
//! (the emulator) sees it.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::process::Stdio;
use std::time::Duration;

use engine_support::{Bed, QueuedForBinary, queue_for_binary};
use pullprintd::release::executor::CRASH_AT_ENV;
use pullprintd::store::{ActionKind, Outcome};
use tokio::process::{Child, Command};

/// The real binary on `config`, made to abort right after recording `crash_at` when given.
pub(crate) fn daemon(config: &std::path::Path, crash_at: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_pullprintd"));
    command
        .arg("run")
        .arg("--config")
        .arg(config)
        .env_remove("PULLPRINTD_CONFIG")
        .env_remove(CRASH_AT_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(step) = crash_at {
        command.env(CRASH_AT_ENV, step);
    }
    command.spawn().expect("the binary starts")
}

/// Holds a new job in a fresh store, queues `kind` on it, and runs the crash-then-restart cycle;
/// returns (job id, outcome).
async fn crash_and_restart(
    bed: &Bed,
    case: &str,
    kind: ActionKind,
    crash_at: &str,
) -> (String, Outcome) {
    let QueuedForBinary {
        job_id,
        store,
        config,
        action: id,
        ..
    } = queue_for_binary(bed, case, kind).await;

    let status = tokio::time::timeout(
        Duration::from_secs(30),
        daemon(&config, Some(crash_at)).wait(),
    )
    .await
    .expect("the daemon crashes at the step")
    .unwrap();
    assert!(
        !status.success(),
        "{case}: the daemon aborted at {crash_at}"
    );
    assert!(
        store.action_outcome(id).await.unwrap().is_none(),
        "{case}: nothing finished before the crash"
    );
    assert_eq!(
        store.action(id).await.unwrap().unwrap().step.to_string(),
        crash_at,
        "{case}: the crash happened right after recording {crash_at}"
    );

    let mut restarted = daemon(&config, None);
    // The restarted daemon is another process: poll the shared store file, with a deadline.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let outcome = loop {
        if let Some((outcome, _)) = store.action_outcome(id).await.unwrap() {
            break outcome;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{case}: the restart finishes the action"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    restarted.kill().await.unwrap();
    store.close().await;
    (job_id, outcome)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_crashed_at_any_step_prints_exactly_once_with_its_changes() {
    let bed = Bed::default().await;
    for step in [
        "patch_job_sending",
        "patch_job_done",
        "complete_task_sending",
    ] {
        let (job, outcome) =
            crash_and_restart(&bed, &format!("release-{step}"), ActionKind::Release, step).await;
        assert_eq!(outcome, Outcome::Released, "{step}");
        let printed: Vec<_> = bed
            .emulator
            .control()
            .printed(&bed.queue)
            .into_iter()
            .filter(|p| p.job_id == job)
            .collect();
        assert_eq!(printed.len(), 1, "{step}: printed once");
        assert_eq!(printed[0].configuration["copies"], 3, "{step}");
    }
    assert!(
        bed.emulator
            .control()
            .tasks()
            .iter()
            .all(|t| t.state != "processing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_crashed_after_its_intent_is_settled_and_sent_once() {
    let bed = Bed::default().await;
    let (job, outcome) =
        crash_and_restart(&bed, "redirect", ActionKind::Redirect, "redirect_sending").await;
    assert_eq!(outcome, Outcome::Redirected);
    let control = bed.emulator.control();
    let on_lobby = control
        .printed(&bed.lobby)
        .into_iter()
        .filter(|p| {
            p.redirected_from
                .as_deref()
                .is_some_and(|from| from.ends_with(&format!("/jobs/{job}")))
        })
        .count();
    assert_eq!(on_lobby, 1);
    assert_eq!(
        control.calls_to("POST /print/printers/{id}/jobs/{id}/redirect"),
        1,
        "the redirect went out once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_crashed_at_any_step_aborts_the_job_and_closes_its_task() {
    let bed = Bed::default().await;
    for step in ["abort_sending", "abort_done", "abort_task_sending"] {
        let (job, outcome) =
            crash_and_restart(&bed, &format!("delete-{step}"), ActionKind::Delete, step).await;
        assert_eq!(outcome, Outcome::Deleted, "{step}");
        let control = bed.emulator.control();
        assert_eq!(control.job(&job).unwrap().state, "aborted", "{step}");
    }
    let control = bed.emulator.control();
    assert!(control.tasks().iter().all(|t| t.state != "processing"));
    assert!(control.printed(&bed.queue).is_empty());
}
