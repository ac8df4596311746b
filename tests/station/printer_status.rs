//! Printer-aware release: a release to a printer whose Graph status says it cannot print (jammed,
//! paused, stopped) answers 409 `printer_not_ready` with the reason and the other printers of the
//! station's group, queues nothing, and goes through once the printer is back.
#![allow(clippy::unwrap_used)]

use crate::station_support;

use pullprintd::app::AppOptions;
use pullprintd::clock::ManualClock;
use pullprintd::emulator::PrinterStatusChange;
use serde_json::{Value, json};
use station_support::*;

fn status(state: &str, details: &[&str]) -> PrinterStatusChange {
    PrinterStatusChange {
        state: state.to_owned(),
        details: details.iter().map(|d| (*d).to_owned()).collect(),
        description: String::new(),
        is_accepting_jobs: None,
    }
}

#[tokio::test]
async fn a_release_to_a_jammed_printer_answers_409_with_the_other_printers_and_prints_once_resumed()
{
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let bed = Bed::start_with(
        "",
        &[],
        AppOptions {
            clock: clock.clone(),
            ..AppOptions::default()
        },
    )
    .await;
    let (job, _) = bed.held_job(ADA, "report.pdf", json!({"copies": 1})).await;
    let control = bed.emulator.control();
    control
        .set_printer_status(&bed.lobby, &status("stopped", &["mediaJam", "tonerLow"]))
        .unwrap();
    let ada = bed.sign_in(LOBBY_KEY, json!({"card": ADA_CARD})).await;
    let response = bed
        .post(&ada, &format!("/api/v1/jobs/{job}/release"), json!({}))
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    let error = &body["error"];
    assert_eq!(error["code"], "printer_not_ready");
    assert_eq!(
        error["details"],
        json!(["mediaJam"]),
        "warnings are left out"
    );
    assert_eq!(
        error["alternatives"],
        json!([{"stationId": "queue", "printerId": bed.queue, "printerName": "Queue"}])
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("Lobby cannot print right now: paper is jammed")
            && message.contains("release it at Queue (station queue)"),
        "{message}"
    );
    assert!(control.printed(&bed.lobby).is_empty(), "nothing was sent");
    let listed: Value = bed.get(&ada, "/api/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed["jobs"][0]["state"], "held", "the job stays held");
    // Release-all refuses as a whole, too.
    let all = bed.post(&ada, "/api/v1/jobs/release-all", json!({})).await;
    assert_eq!(all.status(), 409);

    // The jam is cleared; the status is read again once the short cache has aged.
    control
        .set_printer_status(&bed.lobby, &status("idle", &[]))
        .unwrap();
    clock.advance(time::Duration::seconds(11));
    let response = bed
        .post(&ada, &format!("/api/v1/jobs/{job}/release"), json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(control.printed(&bed.lobby).len(), 1);
    bed.stop().await;
}

#[tokio::test]
async fn a_paused_printer_with_no_other_printer_ready_offers_none() {
    let bed = Bed::start("").await;
    let (job, _) = bed.held_job(ADA, "memo.pdf", json!({"copies": 1})).await;
    let control = bed.emulator.control();
    control
        .set_printer_status(&bed.queue, &status("idle", &["paused"]))
        .unwrap();
    control
        .set_printer_status(
            &bed.lobby,
            &PrinterStatusChange {
                is_accepting_jobs: Some(false),
                ..status("idle", &[])
            },
        )
        .unwrap();
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let response = bed
        .post(&ada, &format!("/api/v1/jobs/{job}/release"), json!({}))
        .await;
    assert_eq!(response.status(), 409);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["details"], json!(["paused"]));
    assert!(
        body["error"].get("alternatives").is_none() || body["error"]["alternatives"] == json!([])
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("it is paused. Your job is still held; try again when it is ready"),
        "{body}"
    );
    bed.stop().await;
}
