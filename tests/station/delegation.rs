//! Delegation: a person named in someone's `delegates` (users file) sees and releases that person's
//! jobs at a station, within the owner's policy and hold-rule terms; the audit log records both.
#![allow(clippy::unwrap_used)]

use crate::station_support;

use pullprintd::store::{AuditEvent, AuditFilter};
use serde_json::{Value, json};
use station_support::*;

#[tokio::test]
async fn a_delegate_sees_and_releases_the_owners_job_and_the_audit_log_names_both() {
    let bed = Bed::start_with_delegates("", &[(ADA, BOB)]).await;
    let (job, print_job) = bed
        .held_job(ADA, "board minutes.pdf", json!({"copies": 1}))
        .await;
    let bob = bed.sign_in(LOBBY_KEY, json!({"card": BOB_CARD})).await;
    let listed: Value = bed.get(&bob, "/api/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed["jobs"][0]["id"], job.as_str());
    assert_eq!(listed["jobs"][0]["owner"], ADA);
    assert_eq!(
        bed.delete(&bob, &format!("/api/v1/jobs/{job}"))
            .await
            .status(),
        404,
        "a delegate releases, but does not delete"
    );
    let response = bed
        .post(&bob, &format!("/api/v1/jobs/{job}/release"), json!({}))
        .await;
    assert_eq!(response.status(), 200);
    assert!(bed.emulator.control().job(&print_job).is_some());
    let records = bed
        .store
        .audit_query(&AuditFilter {
            event: Some(AuditEvent::Redirected),
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 1, "released at the lobby: redirected there");
    assert_eq!(records[0].user_upn.as_deref(), Some(ADA), "the owner");
    assert_eq!(
        records[0].requested_by.as_deref(),
        Some(BOB),
        "the delegate"
    );
    bed.stop().await;
}

#[tokio::test]
async fn a_delegate_is_bound_by_the_owners_rule_and_others_cannot_see_the_job() {
    let bed = Bed::start_with_delegates(
        &format!(
            "[[rules]]\nname = \"Ada in grayscale\"\naction = \"hold\"\n\
             match.owners = [\"{ADA}\"]\nforce.color_mode = \"grayscale\"\nforce.max_copies = 1\n"
        ),
        &[(ADA, BOB)],
    )
    .await;
    let (job, print_job) = bed
        .held_job(
            ADA,
            "slides.pdf",
            json!({"copies": 1, "colorMode": "color"}),
        )
        .await;
    // Ada named Bob, not the other way round: Ada does not see Bob's jobs.
    let (bobs, _) = bed.held_job(BOB, "bob.pdf", json!({"copies": 1})).await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let listed: Value = bed.get(&ada, "/api/v1/jobs").await.json().await.unwrap();
    assert_eq!(listed["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(
        bed.post(&ada, &format!("/api/v1/jobs/{bobs}/release"), json!({}))
            .await
            .status(),
        404
    );
    let bob = bed.sign_in(QUEUE_KEY, json!({"card": BOB_CARD})).await;
    let response = bed
        .post(
            &bob,
            &format!("/api/v1/jobs/{job}/release"),
            json!({"copies": 3, "colorMode": "color"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let printed = bed.emulator.control().job(&print_job).unwrap();
    assert_eq!(printed.configuration["colorMode"], "grayscale");
    assert_eq!(printed.configuration["copies"], 1);
    bed.stop().await;
}

#[tokio::test]
async fn members_of_the_owners_delegate_group_see_and_release_the_owners_jobs() {
    use pullprintd::emulator::{DirectoryGroup, DirectoryUser};
    let assistants = "3f2e1d0c-9b8a-4765-a432-10fedcba9876";
    let bed = Bed::start_with_delegate_groups(&[(ADA, assistants)]).await;
    let control = bed.emulator.control();
    for upn in [ADA, BOB] {
        control.add_user(DirectoryUser {
            id: String::new(),
            user_principal_name: upn.to_owned(),
            display_name: upn.to_owned(),
            employee_id: None,
        });
    }
    control.add_group(DirectoryGroup {
        id: assistants.to_owned(),
        display_name: "Assistants".to_owned(),
        members: vec![BOB.to_owned()],
    });
    let (job, _) = bed.held_job(ADA, "travel.pdf", json!({"copies": 1})).await;
    let (bobs, _) = bed.held_job(BOB, "bob.pdf", json!({"copies": 1})).await;
    let bob = bed.sign_in(QUEUE_KEY, json!({"card": BOB_CARD})).await;
    let listed: Value = bed.get(&bob, "/api/v1/jobs").await.json().await.unwrap();
    let owners: Vec<&str> = listed["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["owner"].as_str().unwrap())
        .collect();
    assert_eq!(
        owners,
        [ADA, BOB],
        "Ada's job through the group, then his own"
    );
    let response = bed
        .post(&bob, &format!("/api/v1/jobs/{job}/release"), json!({}))
        .await;
    assert_eq!(response.status(), 200);
    // Ada is not in the group: she does not see Bob's job.
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    assert_eq!(
        bed.post(&ada, &format!("/api/v1/jobs/{bobs}/release"), json!({}))
            .await
            .status(),
        404
    );
    bed.stop().await;
}
