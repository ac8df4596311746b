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

#[tokio::test]
async fn a_person_at_a_jammed_printer_releases_at_an_offered_alternative_from_the_same_kiosk() {
    let bed = Bed::start("").await;
    // Sent to the queue printer; Ada stands at the lobby station, whose printer is jammed.
    let (job, _) = bed.held_job(ADA, "report.pdf", json!({"copies": 1})).await;
    let control = bed.emulator.control();
    control
        .set_printer_status(&bed.lobby, &status("stopped", &["mediaJam"]))
        .unwrap();
    let ada = bed.sign_in(LOBBY_KEY, json!({"card": ADA_CARD})).await;
    let refused = bed
        .post(&ada, &format!("/api/v1/jobs/{job}/release"), json!({}))
        .await;
    assert_eq!(refused.status(), 409);
    let offered: Value = refused.json().await.unwrap();
    let other = offered["error"]["alternatives"][0]["stationId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(other, "queue");

    // A station outside the group, and a query the API does not know, are refused; nothing prints.
    let outside = bed
        .post(
            &ada,
            &format!("/api/v1/jobs/{job}/release?at=basement"),
            json!({}),
        )
        .await;
    assert_eq!(outside.status(), 422);
    let outside: Value = outside.json().await.unwrap();
    assert_eq!(outside["error"]["code"], "not_an_alternative");
    assert!(
        outside["error"]["message"]
            .as_str()
            .unwrap()
            .contains("station `basement` is not another station of this station's group"),
        "{outside}"
    );
    let unknown = bed
        .post(
            &ada,
            &format!("/api/v1/jobs/{job}/release?printer={}", bed.queue),
            json!({}),
        )
        .await;
    assert_eq!(unknown.status(), 400);
    assert!(control.printed(&bed.queue).is_empty());

    // The offered station: the job prints on its printer, with the options Ada chose, once.
    let released = bed
        .post(
            &ada,
            &format!("/api/v1/jobs/{job}/release?at={other}"),
            json!({"copies": 2}),
        )
        .await;
    assert_eq!(released.status(), 200);
    let printed = control.printed(&bed.queue);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0].configuration["copies"], 2);
    assert!(control.printed(&bed.lobby).is_empty());
    let audit: Value = bed
        .get(ADMIN_KEY, "/api/v1/audit?outcome=released")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit["records"][0]["stationId"], "lobby",
        "the audit names the kiosk Ada stood at"
    );
    bed.stop().await;
}

#[tokio::test]
async fn release_all_at_an_offered_alternative_prints_every_job_there() {
    let bed = Bed::start("").await;
    bed.held_job(ADA, "a.pdf", json!({"copies": 1})).await;
    bed.held_job(ADA, "b.pdf", json!({"copies": 1})).await;
    let control = bed.emulator.control();
    control
        .set_printer_status(&bed.queue, &status("idle", &["paused"]))
        .unwrap();
    // At the queue station (paused), everything goes to the lobby printer instead.
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let answer = bed
        .post(&ada, "/api/v1/jobs/release-all?at=lobby", json!({}))
        .await;
    assert_eq!(answer.status(), 200);
    let answer: Value = answer.json().await.unwrap();
    let statuses: Vec<&str> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["released", "released"], "{answer}");
    assert_eq!(control.printed(&bed.lobby).len(), 2);
    assert!(control.printed(&bed.queue).is_empty());
    bed.stop().await;
}
