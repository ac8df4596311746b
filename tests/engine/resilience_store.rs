//! Store faults through the whole daemon: while the store refuses writes (as a read-only file or a
//! full disk does), the station API refuses new releases and deletes with a 503 that names the store,
//! never a 500 or a panic; a release accepted before the fault is not lost, and finishes once the
//! fault is cleared.
//!
//! The first test's fault is the store's test knob ([`pullprintd::store::Store::simulate_read_only`]: SQLite's
//! `query_only`, which fails writes with `SQLITE_READONLY`), so the test needs no privileges, no
//! `chattr` and no mount, and runs the same in CI as root or not. The second fills a real (tiny tmpfs)
//! disk where the run may mount one (root with CAP_SYS_ADMIN), and says it skipped otherwise.
#![allow(clippy::unwrap_used)]

use crate::engine_support;
use crate::station_support;

use std::time::{Duration, Instant};

use pullprintd::emulator::{Faults, RouteFault};
use pullprintd::store::{JobState, Outcome};
use serde_json::{Value, json};
use station_support::{ADA, ADA_CARD, Bed, QUEUE_KEY};

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// Polls the daemon's store (its executor works in the background) with a bounded deadline.
async fn until_ended(bed: &Bed, task: &str) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let held = bed.store.held_job(task).await.unwrap().unwrap();
        if held.state == JobState::Ended {
            return held.outcome.unwrap();
        }
        assert!(Instant::now() < deadline, "{task} never ended: {held:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_refuses_new_releases_with_a_503_and_loses_nothing_accepted() {
    let bed = Bed::start("[release]\nconfirm_wait = \"300ms\"\n").await;
    let (accepted, accepted_job) = bed
        .held_job(ADA, "accepted.pdf", json!({"copies": 1}))
        .await;
    let (refused, refused_job) = bed.held_job(ADA, "refused.pdf", json!({"copies": 1})).await;
    let (kept, _) = bed.held_job(ADA, "kept.pdf", json!({"copies": 1})).await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;

    // Graph is slow: the first release is accepted (202, queued) and still under way when the store
    // stops taking writes.
    let control = bed.emulator.control();
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "updateTask".into(),
            latency_ms: 1500,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let response = bed
        .post(
            &ada,
            &format!("/api/v1/jobs/{accepted}/release"),
            json!({"copies": 2}),
        )
        .await;
    assert_eq!(response.status(), 202, "accepted and queued");
    bed.store.simulate_read_only(true);

    for response in [
        bed.post(&ada, &format!("/api/v1/jobs/{refused}/release"), json!({}))
            .await,
        bed.delete(&ada, &format!("/api/v1/jobs/{kept}")).await,
    ] {
        assert_eq!(response.status(), 503, "a 503, not a 500");
        assert!(response.headers().contains_key("retry-after"));
        let error = body(response).await;
        assert_eq!(error["error"]["code"], "store_unavailable");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("store"), "names the store: {message}");
        assert!(message.contains("read-only"), "says what to fix: {message}");
    }
    // Reading still works: the person sees their jobs.
    let list = bed.get(&ada, "/api/v1/jobs").await;
    assert_eq!(list.status(), 200);

    // The fault lasts past the slow call: the executor cannot record the release's end and keeps it.
    control.set_faults(Faults::default());
    let held = bed.store.held_job(&accepted).await.unwrap().unwrap();
    assert_ne!(
        held.state,
        JobState::Ended,
        "not ended while the store is read-only"
    );

    bed.store.simulate_read_only(false);
    assert_eq!(until_ended(&bed, &accepted).await, Outcome::Released);
    let printed: Vec<_> = control
        .printed(&bed.queue)
        .into_iter()
        .filter(|p| p.job_id == accepted_job)
        .collect();
    assert_eq!(printed.len(), 1, "printed once");
    assert_eq!(
        printed[0].configuration["copies"], 2,
        "with the chosen copies"
    );

    // The refused ones were never acted on, and can be released now.
    assert!(
        control
            .printed(&bed.queue)
            .iter()
            .all(|p| p.job_id != refused_job)
    );
    let response = bed
        .post(&ada, &format!("/api/v1/jobs/{refused}/release"), json!({}))
        .await;
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        bed.store.held_job(&kept).await.unwrap().unwrap().state,
        JobState::Held
    );
    bed.stop().await;
}

/// A small tmpfs mounted for one test and unmounted (lazily, even if the test fails) when dropped.
struct SmallDisk {
    path: std::path::PathBuf,
}

impl SmallDisk {
    /// `None` where mounting needs privileges this run lacks (CI without CAP_SYS_ADMIN): the
    /// simulated fault above covers those machines.
    fn mount(path: &std::path::Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status();
        matches!(status, Ok(s) if s.success()).then(|| Self {
            path: path.to_owned(),
        })
    }

    /// Writes a filler file until the disk is full; returns its path (delete it to free the space).
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let filler = self.path.join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 16 * 1024];
        while file
            .write_all(&block)
            .and_then(|()| file.sync_all())
            .is_ok()
        {}
        // The last partial block: byte by byte until nothing more fits.
        while file.write_all(&[0]).and_then(|()| file.sync_all()).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_new_actions_and_the_accepted_one_finishes_once_space_is_freed() {
    use pullprintd::release::service::{SubmitError, Submitted};
    use pullprintd::store::{ActionKind, DiscoveredVia, EnqueueError};

    let bed = engine_support::Bed::default().await;
    let Some(disk) = SmallDisk::mount(&bed.dir.path().join("disk"), "4m") else {
        eprintln!(
            "skipped: this run cannot mount a tmpfs; the simulated read-only store covers it"
        );
        return;
    };
    let settings = bed.settings("mode = \"poll\"\npoll_interval = \"1h\"", "disk/state.db");
    let app =
        engine_support::RunningApp::start(settings, pullprintd::app::AppOptions::default()).await;
    let jobs: Vec<_> = ["accepted", "refused"]
        .iter()
        .map(|name| bed.submit("ada@contoso.example", &format!("{name}.pdf")))
        .collect();
    app.poller.poll(DiscoveredVia::Poll).await.unwrap();
    let (accepted, refused) = (
        jobs[0].task_id.clone().unwrap(),
        jobs[1].task_id.clone().unwrap(),
    );
    let control = bed.emulator.control();
    control.set_faults(Faults {
        routes: vec![RouteFault {
            route: "updateTask".into(),
            latency_ms: 2000,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let changes = Some(json!({"copies": 2, "colorMode": "color"}));
    let service = app.service.clone();
    let release = engine_support::action(&accepted, ActionKind::Release, changes, None);
    let first = tokio::spawn(async move { service.submit(release).await });
    // The release is accepted and its task call is stalled; then the disk fills up.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !app
        .store
        .unfinished_actions()
        .await
        .unwrap()
        .iter()
        .any(|a| a.task_id == accepted && a.step.to_string() == "complete_task_sending")
    {
        assert!(
            Instant::now() < deadline,
            "the release reaches its task call"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let filler = disk.fill();

    let error = app
        .service
        .submit(engine_support::action(
            &refused,
            ActionKind::Release,
            None,
            None,
        ))
        .await
        .expect_err("a full disk refuses new work");
    let message = error.to_string();
    eprintln!("{message}");
    assert!(
        matches!(error, SubmitError::Enqueue(EnqueueError::Store(_))),
        "{message}"
    );
    assert!(message.contains("full"), "says the disk is full: {message}");

    control.set_faults(Faults::default());
    std::fs::remove_file(filler).unwrap();
    match first
        .await
        .unwrap()
        .expect("the first release was accepted")
    {
        Submitted::Done(done) => assert_eq!(done.outcome, Outcome::Released, "{}", done.detail),
        Submitted::Queued { action_id } => {
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some((outcome, _)) = app.store.action_outcome(action_id).await.unwrap() {
                    assert_eq!(outcome, Outcome::Released);
                    break;
                }
                assert!(Instant::now() < deadline, "the accepted release finishes");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let printed: Vec<_> = control
        .printed(&bed.queue)
        .into_iter()
        .filter(|p| p.job_id == jobs[0].job_id)
        .collect();
    assert_eq!(printed.len(), 1, "printed once");
    assert_eq!(
        printed[0].configuration["copies"], 2,
        "with the chosen copies"
    );
    assert!(
        control
            .printed(&bed.queue)
            .iter()
            .all(|p| p.job_id != jobs[1].job_id),
        "the refused release never happened"
    );
    app.stop().await;
    drop(disk);
}
