//! A crash between intake and a rule's auto-release: the real `pullprintd run` stores the job and
//! its rule's action in one transaction, then dies (`PULLPRINTD_TEST_CRASH_AT`, an `abort()` like
//! `kill -9`) right after the executor records its first intent; started again on the same store,
//! it prints the job exactly once, with the rule's forced options.
#![allow(clippy::unwrap_used)]

use crate::engine_crash::daemon;
use crate::engine_support;

use std::time::Duration;

use engine_support::Bed;
use pullprintd::store::{JobState, Outcome, Store};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auto_release_crashed_after_intake_prints_exactly_once_in_grayscale() {
    let bed = Bed::default().await;
    for step in ["patch_job_sending", "complete_task_sending"] {
        let submitted = bed
            .emulator
            .control()
            .submit_job(pullprintd::emulator::NewJob {
                printer_id: bed.queue.clone(),
                user_principal_name: "ada@contoso.example".to_owned(),
                user_display_name: None,
                document_name: Some(format!("{step}.pdf")),
                configuration: Some(json!({"copies": 1, "colorMode": "color"})),
            })
            .unwrap();
        let task = submitted.task_id.unwrap();
        let store_file = format!("rules-{step}.db");
        let config = bed.dir.path().join(format!("rules-{step}.toml"));
        // Poll mode, polling only at start-up: the start-up reconcile is the intake.
        let text = format!(
            "{}\n[[rules]]\nname = \"S2S grayscale\"\naction = \"release\"\n\
             match.printers = [\"{}\"]\nforce.color_mode = \"grayscale\"\n",
            bed.settings_toml("mode = \"poll\"\npoll_interval = \"1h\"", &store_file),
            bed.queue
        );
        std::fs::write(&config, text).unwrap();

        let status =
            tokio::time::timeout(Duration::from_secs(30), daemon(&config, Some(step)).wait())
                .await
                .expect("the daemon crashes at the step")
                .unwrap();
        assert!(!status.success(), "{step}: the daemon aborted");
        let store = Store::open(bed.dir.path().join(&store_file)).await.unwrap();
        let held = store.held_job(&task).await.unwrap().unwrap();
        assert_eq!(
            held.state,
            JobState::Acting,
            "{step}: stored with its action"
        );
        let unfinished = store.unfinished_actions().await.unwrap();
        assert_eq!(unfinished.len(), 1, "{step}");
        assert_eq!(unfinished[0].step.to_string(), step);
        assert_eq!(unfinished[0].requested_by, "rule 0 \"S2S grayscale\"");

        let mut restarted = daemon(&config, None);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let job = store.held_job(&task).await.unwrap().unwrap();
            if job.state == JobState::Ended {
                assert_eq!(job.outcome, Some(Outcome::Released), "{step}");
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{step}: the restart finishes the auto-release"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        restarted.kill().await.unwrap();
        store.close().await;
        let printed: Vec<_> = bed
            .emulator
            .control()
            .printed(&bed.queue)
            .into_iter()
            .filter(|p| p.job_id == submitted.job_id)
            .collect();
        assert_eq!(printed.len(), 1, "{step}: printed once");
        assert_eq!(printed[0].configuration["colorMode"], "grayscale", "{step}");
    }
    assert!(
        bed.emulator
            .control()
            .tasks()
            .iter()
            .all(|t| t.state != "processing")
    );
}
