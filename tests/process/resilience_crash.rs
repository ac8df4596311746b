//! The crash suite with a real `kill -9`: the real `pullprintd run` is killed with SIGKILL while a
//! call is in flight (the emulator stalls that route), in both orders — the emulator already performed
//! it and only the answer is outstanding, or it has not performed it yet — then started again on the
//! same store. The job must end exactly once, with the person's configuration, as the emulator sees it.
//!
//! `engine_crash` covers the deterministic points between calls (the abort hook right after
//! each recorded step); this file covers the moments in the middle of a call, which no hook can reach.
#![allow(clippy::unwrap_used)]

use crate::engine_support;

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use engine_support::{Bed, QueuedForBinary, queue_for_binary};
use pullprintd::emulator::{AfterEffect, Control, EmulatorOptions, Faults, RouteFault};
use pullprintd::release::executor::CRASH_AT_ENV;
use pullprintd::store::{ActionKind, Outcome};
use tokio::process::{Child, Command};

/// How long the stalled call is held: long enough to kill the daemon in the middle of it.
const STALL_MS: u64 = 2500;

fn daemon(config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_pullprintd"))
        .arg("run")
        .arg("--config")
        .arg(config)
        .env_remove("PULLPRINTD_CONFIG")
        .env_remove(CRASH_AT_ENV)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the binary starts")
}

/// Whether the emulator had performed the stalled call when the daemon was killed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Order {
    /// Killed after the emulator performed it, while the answer was held back.
    Performed,
    /// Killed while the request waited before being performed.
    NotYet,
}

/// Polls `condition` (another process's store or the emulator) every 20 ms for up to 20 s.
async fn until(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What the emulator shows once the call on `operation` took effect on `job`/`task`.
fn performed(control: &Control, operation: &str, bed: &Bed, job: &str, task: &str) -> bool {
    let task_state = || {
        control
            .tasks()
            .into_iter()
            .find(|t| t.id == task)
            .map(|t| t.state)
            .unwrap_or_default()
    };
    match operation {
        "updateJob" => control
            .job(job)
            .is_some_and(|j| j.configuration["copies"] == 3),
        "updateTask" => task_state() != "processing",
        "redirectJob" => control.printed(&bed.lobby).iter().any(|p| {
            p.redirected_from
                .as_deref()
                .is_some_and(|f| f.ends_with(&format!("/jobs/{job}")))
        }),
        "abortJob" => control.job(job).is_some_and(|j| j.state == "aborted"),
        other => panic!("no effect check for {other}"),
    }
}

/// The method and URL ending of the call `operation` makes for `job` / `task`.
fn request_of(operation: &str, job: &str, task: &str) -> (&'static str, String) {
    match operation {
        "updateJob" => ("PATCH", format!("/jobs/{job}")),
        "updateTask" => ("PATCH", format!("/tasks/{task}")),
        "redirectJob" => ("POST", format!("/jobs/{job}/redirect")),
        "abortJob" => ("POST", format!("/jobs/{job}/abort")),
        other => panic!("no request shape for {other}"),
    }
}

/// Whether the emulator's request log shows `method` on a URL ending with `suffix`.
fn arrived(bed: &Bed, method: &str, suffix: &str) -> bool {
    let log = std::fs::read_to_string(log_path(bed)).unwrap_or_default();
    log.lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .any(|r| r["method"] == method && r["url"].as_str().is_some_and(|u| u.ends_with(suffix)))
}

/// The emulator's request log, beside the bed's stores.
fn log_path(bed: &Bed) -> std::path::PathBuf {
    bed.dir.path().join("requests.jsonl")
}

/// Holds a new job, queues `kind` on it, stalls `operation` in `order`, kills the daemon with SIGKILL
/// in the middle of that call, restarts it and returns (job id, outcome).
async fn kill_during(
    bed: &Bed,
    case: &str,
    kind: ActionKind,
    operation: &str,
    intent: &str,
    order: Order,
) -> (String, Outcome) {
    let control = bed.emulator.control();
    control.set_faults(Faults::default());
    let QueuedForBinary {
        task,
        job_id,
        store,
        config,
        action: id,
    } = queue_for_binary(bed, case, kind).await;

    let stall = match order {
        Order::Performed => RouteFault {
            route: operation.to_owned(),
            fail_after_effect_rate: 1.0,
            after_effect: AfterEffect::Delay { ms: STALL_MS },
            ..RouteFault::default()
        },
        Order::NotYet => RouteFault {
            route: operation.to_owned(),
            latency_ms: STALL_MS,
            ..RouteFault::default()
        },
    };
    control.set_faults(Faults {
        routes: vec![stall],
        ..Faults::default()
    });
    let mut first = daemon(&config);
    until(
        &format!("{case}: the intent {intent} recorded"),
        async || {
            store
                .action(id)
                .await
                .unwrap()
                .is_some_and(|a| a.step.to_string() == intent)
        },
    )
    .await;
    match order {
        Order::Performed => {
            until(&format!("{case}: the emulator performed it"), async || {
                performed(&control, operation, bed, &job_id, &task)
            })
            .await;
        }
        Order::NotYet => {
            // The request reached the emulator (its request log is written on arrival, before the
            // stall), and the stall holds it for STALL_MS: it is in flight and not performed.
            let (method, suffix) = request_of(operation, &job_id, &task);
            until(&format!("{case}: the call in flight"), async || {
                arrived(bed, method, &suffix)
            })
            .await;
            assert!(
                !performed(&control, operation, bed, &job_id, &task),
                "{case}: not performed yet"
            );
        }
    }
    first.start_kill().expect("SIGKILL is sent");
    let status = first.wait().await.unwrap();
    assert!(!status.success(), "{case}: killed");
    assert!(
        store.action_outcome(id).await.unwrap().is_none(),
        "{case}: nothing finished before the kill"
    );
    // The restart runs without the stall. In the "not yet" order the first daemon's request may
    // still be performed by the emulator after the restart has settled the action: that is the real
    // world's race too, and the checks below must hold either way.
    control.set_faults(Faults::default());
    let mut restarted = daemon(&config);
    let mut outcome = None;
    until(
        &format!("{case}: the restart finishes the action"),
        async || {
            outcome = store.action_outcome(id).await.unwrap().map(|o| o.0);
            outcome.is_some()
        },
    )
    .await;
    restarted.start_kill().unwrap();
    let _ = restarted.wait().await;
    store.close().await;
    (job_id, outcome.unwrap())
}

/// A bed whose emulator logs every request on arrival (in a directory of its own, since the bed's
/// directory is made after the emulator starts; the log is then found through a link beside the
/// stores). The log's directory lives as long as the returned guard.
async fn bed() -> (Bed, tempfile::TempDir) {
    let logs = tempfile::tempdir().unwrap();
    let log = logs.path().join("requests.jsonl");
    let bed = Bed::start(EmulatorOptions {
        record_path: Some(log.clone()),
        ..EmulatorOptions::default()
    })
    .await;
    std::os::unix::fs::symlink(&log, log_path(&bed)).unwrap();
    (bed, logs)
}

/// Every copy of `job` printed anywhere (its own printer or redirected to the lobby).
fn prints_of(bed: &Bed, job: &str) -> Vec<serde_json::Value> {
    let control = bed.emulator.control();
    let mut prints: Vec<_> = control
        .printed(&bed.queue)
        .into_iter()
        .filter(|p| p.job_id == job)
        .map(|p| p.configuration)
        .collect();
    prints.extend(
        control
            .printed(&bed.lobby)
            .into_iter()
            .filter(|p| {
                p.redirected_from
                    .as_deref()
                    .is_some_and(|f| f.ends_with(&format!("/jobs/{job}")))
            })
            .map(|p| p.configuration),
    );
    prints
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_killed_during_either_patch_prints_once_with_the_chosen_copies() {
    let (bed, _logs) = bed().await;
    for (operation, intent) in [
        ("updateJob", "patch_job_sending"),
        ("updateTask", "complete_task_sending"),
    ] {
        for order in [Order::NotYet, Order::Performed] {
            let case = format!("release-{operation}-{order:?}");
            let (job, outcome) =
                kill_during(&bed, &case, ActionKind::Release, operation, intent, order).await;
            assert_eq!(outcome, Outcome::Released, "{case}");
            let prints = prints_of(&bed, &job);
            assert_eq!(prints.len(), 1, "{case}: printed once");
            assert_eq!(prints[0]["copies"], 3, "{case}: with the chosen copies");
        }
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
async fn a_find_me_killed_during_the_redirect_call_is_redirected_exactly_once() {
    let (bed, _logs) = bed().await;
    for order in [Order::NotYet, Order::Performed] {
        let case = format!("redirect-{order:?}");
        let (job, outcome) = kill_during(
            &bed,
            &case,
            ActionKind::Redirect,
            "redirectJob",
            "redirect_sending",
            order,
        )
        .await;
        // In the "not yet" order the first daemon's stalled request may still reach the emulator's
        // handler after the restart settled the action (or be dropped with its connection): no signal
        // exists for "a request that may never be performed", so the check waits the stall out.
        tokio::time::sleep(Duration::from_millis(STALL_MS + 500)).await;
        assert_eq!(outcome, Outcome::Redirected, "{case}");
        assert_eq!(prints_of(&bed, &job).len(), 1, "{case}: redirected once");
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
async fn a_delete_killed_during_the_abort_or_the_task_close_ends_aborted_once() {
    let (bed, _logs) = bed().await;
    for (operation, intent) in [
        ("abortJob", "abort_sending"),
        ("updateTask", "abort_task_sending"),
    ] {
        for order in [Order::NotYet, Order::Performed] {
            let case = format!("delete-{operation}-{order:?}");
            let (job, outcome) =
                kill_during(&bed, &case, ActionKind::Delete, operation, intent, order).await;
            assert_eq!(outcome, Outcome::Deleted, "{case}");
            let control = bed.emulator.control();
            assert_eq!(control.job(&job).unwrap().state, "aborted", "{case}");
            assert!(prints_of(&bed, &job).is_empty(), "{case}: never printed");
        }
    }
    assert!(
        bed.emulator
            .control()
            .tasks()
            .iter()
            .all(|t| t.state != "processing")
    );
}
