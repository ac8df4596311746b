//! A `hold` rule's terms at the station: the job waits for its owner, and when they release it the
//! rule's forced options win over their choices.
#![allow(clippy::unwrap_used)]

use crate::station_support;

use pullprintd::store::{AuditEvent, AuditFilter};
use serde_json::json;
use station_support::*;

#[tokio::test]
async fn a_hold_rule_forces_its_options_when_the_owner_releases_the_job() {
    let bed = Bed::start(&format!(
        "[[rules]]\nname = \"Ada prints in grayscale\"\naction = \"hold\"\n\
         match.owners = [\"{ADA}\"]\nforce.color_mode = \"grayscale\"\nforce.max_copies = 2\n"
    ))
    .await;
    let (job, print_job) = bed
        .held_job(
            ADA,
            "slides.pdf",
            json!({"copies": 1, "colorMode": "color"}),
        )
        .await;
    let held = bed
        .store
        .audit_query(&AuditFilter {
            event: Some(AuditEvent::Held),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert!(
        held[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("rule 0 \"Ada prints in grayscale\": hold; at release"),
        "{:?}",
        held[0].detail
    );
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let response = bed
        .post(
            &ada,
            &format!("/api/v1/jobs/{job}/release"),
            json!({"copies": 5, "colorMode": "color", "duplexMode": "flipOnLongEdge"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let printed = bed.emulator.control().job(&print_job).unwrap();
    assert_eq!(
        printed.configuration["colorMode"], "grayscale",
        "the rule's colour wins"
    );
    assert_eq!(
        printed.configuration["copies"], 2,
        "copies are capped by the rule"
    );
    assert_eq!(
        printed.configuration["duplexMode"], "flipOnLongEdge",
        "what the rule leaves alone is the person's choice"
    );
    bed.stop().await;
}

#[tokio::test]
async fn an_admin_release_applies_the_hold_rules_forced_options() {
    let bed = Bed::start(&format!(
        "[[rules]]\nname = \"Ada prints in grayscale\"\naction = \"hold\"\n\
         match.owners = [\"{ADA}\"]\nforce.color_mode = \"grayscale\"\nforce.max_copies = 2\n"
    ))
    .await;
    let (job, print_job) = bed
        .held_job(
            ADA,
            "poster.pdf",
            json!({"copies": 1, "colorMode": "color"}),
        )
        .await;
    let response = bed
        .post(
            ADMIN_KEY,
            &format!("/api/v1/admin/jobs/{job}/release"),
            json!({"copies": 4}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let printed = bed.emulator.control().job(&print_job).unwrap();
    assert_eq!(printed.configuration["colorMode"], "grayscale");
    assert_eq!(printed.configuration["copies"], 2);
    bed.stop().await;
}

#[tokio::test]
async fn print_all_forces_each_jobs_hold_rule_and_leaves_the_others_to_the_persons_choice() {
    let bed = Bed::start(&format!(
        "[[rules]]\nname = \"Ada's slides in grayscale\"\naction = \"hold\"\n\
         match.owners = [\"{ADA}\"]\nmatch.name = \"slides*\"\n\
         force.color_mode = \"grayscale\"\nforce.max_copies = 2\n"
    ))
    .await;
    let (_, slides) = bed
        .held_job(
            ADA,
            "slides.pdf",
            json!({"copies": 1, "colorMode": "color"}),
        )
        .await;
    let (_, photo) = bed
        .held_job(ADA, "photo.png", json!({"copies": 1, "colorMode": "color"}))
        .await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let response = bed
        .post(
            &ada,
            "/api/v1/jobs/release-all",
            json!({"copies": 3, "colorMode": "color"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let slides = bed.emulator.control().job(&slides).unwrap();
    assert_eq!(slides.configuration["colorMode"], "grayscale");
    assert_eq!(slides.configuration["copies"], 2);
    let photo = bed.emulator.control().job(&photo).unwrap();
    assert_eq!(
        photo.configuration["colorMode"], "color",
        "no rule holds it"
    );
    assert_eq!(photo.configuration["copies"], 3);
    bed.stop().await;
}
