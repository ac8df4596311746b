//! The station API against the whole daemon and the emulator: sign-in, isolation between people,
//! lockout, the options policy, release (same printer and find-me), release-all, delete, the admin
//! endpoints and the audit log.
#![allow(clippy::unwrap_used)]

use crate::station_support;

use std::time::{Duration, Instant};

use pullprintd::emulator::{DirectoryUser, Faults, RouteFault};
use serde_json::{Value, json};
use station_support::*;

async fn body(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn an_unknown_or_missing_station_key_answers_401_with_the_error_shape() {
    let bed = Bed::start("").await;
    let response = bed
        .post(
            "not-a-station-key",
            "/api/v1/sessions",
            json!({"card": ADA_CARD}),
        )
        .await;
    assert_eq!(response.status(), 401);
    let error = body(response).await;
    assert_eq!(error["error"]["code"], "unauthorized");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("station key")
    );
    let response = bed
        .http
        .post(bed.url("/api/v1/sessions"))
        .json(&json!({"card": ADA_CARD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        bed.get(QUEUE_KEY, "/api/v1/jobs").await.status(),
        401,
        "a station key is not a session"
    );
    bed.stop().await;
}

#[tokio::test]
async fn a_person_sees_and_touches_only_their_own_jobs() {
    let bed = Bed::start("").await;
    let (ada_job, _) = bed
        .held_job(ADA, "ada-report.pdf", json!({"copies": 1}))
        .await;
    let (bob_job, bob_print_job) = bed
        .held_job(BOB, "bob-secret.pdf", json!({"copies": 1}))
        .await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;

    let jobs = body(bed.get(&ada, "/api/v1/jobs").await).await;
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![ada_job.as_str()]);
    assert_eq!(jobs["jobs"][0]["name"], "ada-report.pdf");
    assert_eq!(jobs["jobs"][0]["owner"], ADA);
    assert_eq!(jobs["jobs"][0]["printerId"], bed.queue.as_str());
    assert_eq!(
        jobs["jobs"][0]["printerName"], "Queue",
        "people see the printer's name, not its id"
    );

    for response in [
        bed.get(&ada, &format!("/api/v1/jobs/{bob_job}/options"))
            .await,
        bed.post(&ada, &format!("/api/v1/jobs/{bob_job}/release"), json!({}))
            .await,
        bed.delete(&ada, &format!("/api/v1/jobs/{bob_job}")).await,
        bed.post(&ada, "/api/v1/jobs/no-such-job/release", json!({}))
            .await,
    ] {
        assert_eq!(
            response.status(),
            404,
            "another person's job looks like no job at all"
        );
        assert_eq!(body(response).await["error"]["code"], "not_found");
    }
    let bob_print = bed.emulator.control().job(&bob_print_job).unwrap();
    assert_eq!(
        bob_print.state, "paused",
        "Bob's job is still held: {bob_print:?}"
    );
    let bob = bed
        .sign_in(QUEUE_KEY, json!({"user": BOB, "pin": BOB_PIN}))
        .await;
    let jobs = body(bed.get(&bob, "/api/v1/jobs").await).await;
    assert_eq!(jobs["jobs"][0]["id"], bob_job.as_str());
    bed.stop().await;
}

#[tokio::test]
async fn repeated_bad_pins_lock_the_user_out_with_retry_after() {
    let bed = Bed::start("").await;
    for attempt in 1..=4 {
        let response = bed
            .post(
                QUEUE_KEY,
                "/api/v1/sessions",
                json!({"user": ADA, "pin": "0000"}),
            )
            .await;
        assert_eq!(response.status(), 401, "attempt {attempt}");
        assert_eq!(body(response).await["error"]["code"], "sign_in_failed");
    }
    let response = bed
        .post(
            QUEUE_KEY,
            "/api/v1/sessions",
            json!({"user": ADA, "pin": "0000"}),
        )
        .await;
    assert_eq!(response.status(), 429, "the fifth failure locks out");
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 300, "{retry_after}");
    let response = bed
        .post(
            LOBBY_KEY,
            "/api/v1/sessions",
            json!({"user": ADA, "pin": ADA_PIN}),
        )
        .await;
    assert_eq!(
        response.status(),
        429,
        "even the right PIN, even at another station"
    );
    assert_eq!(body(response).await["error"]["code"], "locked_out");
    bed.sign_in(QUEUE_KEY, json!({"user": BOB, "pin": BOB_PIN}))
        .await;
    bed.stop().await;
}

#[tokio::test]
async fn a_malformed_sign_in_is_400_and_signing_out_ends_the_session() {
    let bed = Bed::start("").await;
    let response = bed
        .post(
            QUEUE_KEY,
            "/api/v1/sessions",
            json!({"card": ADA_CARD, "user": ADA}),
        )
        .await;
    assert_eq!(response.status(), 400, "a card and a user at once");
    let response = bed
        .post(QUEUE_KEY, "/api/v1/sessions", json!({"badge": ADA_CARD}))
        .await;
    assert_eq!(response.status(), 400);
    assert!(
        body(response).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("badge")
    );
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    assert_eq!(bed.get(&ada, "/api/v1/jobs").await.status(), 200);
    assert_eq!(
        bed.delete(&ada, "/api/v1/sessions/current").await.status(),
        204
    );
    assert_eq!(bed.get(&ada, "/api/v1/jobs").await.status(), 401);
    bed.stop().await;
}

#[tokio::test]
async fn a_release_with_changed_options_patches_the_job_and_completes_the_task() {
    let bed = Bed::start("").await;
    let (job, print_job) = bed
        .held_job(
            ADA,
            "slides.pdf",
            json!({"copies": 1, "duplexMode": "oneSided", "colorMode": "color"}),
        )
        .await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let options = body(bed.get(&ada, &format!("/api/v1/jobs/{job}/options")).await).await;
    assert!(
        options["duplexModes"]
            .as_array()
            .unwrap()
            .contains(&json!("flipOnLongEdge")),
        "{options}"
    );
    let response = bed
        .post(
            &ada,
            &format!("/api/v1/jobs/{job}/release"),
            json!({"copies": 2, "duplexMode": "flipOnLongEdge"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["status"], "released");
    let printed = bed.emulator.control().job(&print_job).unwrap();
    assert_eq!(printed.configuration["copies"], 2);
    assert_eq!(printed.configuration["duplexMode"], "flipOnLongEdge");
    assert_eq!(
        printed.configuration["colorMode"], "color",
        "unchanged options are kept"
    );
    let task = bed
        .emulator
        .control()
        .tasks()
        .into_iter()
        .find(|t| t.id == job)
        .unwrap();
    assert_eq!(task.state, "completed");
    let jobs = body(bed.get(&ada, "/api/v1/jobs").await).await;
    assert_eq!(jobs["jobs"], json!([]), "a released job leaves the list");
    bed.stop().await;
}

#[tokio::test]
async fn a_refused_option_is_422_naming_it_and_an_unknown_field_is_400() {
    let bed = Bed::start("[release]\nmax_copies = 5\nsaving_only = true\n").await;
    let (job, print_job) = bed
        .held_job(
            ADA,
            "thesis.pdf",
            json!({"copies": 1, "duplexMode": "flipOnLongEdge", "colorMode": "grayscale"}),
        )
        .await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let path = format!("/api/v1/jobs/{job}/release");
    for (choice, option) in [
        (json!({"copies": 6}), "copies"),
        (json!({"duplexMode": "oneSided"}), "duplexMode"),
        (json!({"colorMode": "color"}), "colorMode"),
        (json!({"duplexMode": "sideways"}), "duplexMode"),
    ] {
        let response = bed.post(&ada, &path, choice.clone()).await;
        assert_eq!(response.status(), 422, "{choice}");
        let error = body(response).await;
        assert_eq!(error["error"]["code"], "option_refused");
        assert_eq!(error["error"]["option"], option, "{error}");
    }
    let response = bed
        .post(&ada, &path, json!({"copies": 2, "staple": true}))
        .await;
    assert_eq!(response.status(), 400);
    assert!(
        body(response).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("staple")
    );
    assert_eq!(
        bed.emulator.control().job(&print_job).unwrap().state,
        "paused",
        "nothing was released"
    );
    bed.stop().await;
}

#[tokio::test]
async fn find_me_redirects_a_job_to_the_printer_of_the_station() {
    let bed = Bed::start("").await;
    let (job, print_job) = bed
        .held_job(
            ADA,
            "poster.pdf",
            json!({"copies": 1, "colorMode": "color"}),
        )
        .await;
    let ada = bed.sign_in(LOBBY_KEY, json!({"card": ADA_CARD})).await;
    let path = format!("/api/v1/jobs/{job}/release");
    let response = bed.post(&ada, &path, json!({"colorMode": "color"})).await;
    assert_eq!(response.status(), 422, "the lobby printer has no colour");
    assert_eq!(
        body(response).await["error"]["allowed"],
        json!(["blackAndWhite", "grayscale"])
    );
    let response = bed
        .post(&ada, &path, json!({"colorMode": "blackAndWhite"}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["status"], "released");
    let original = bed.emulator.control().job(&print_job).unwrap();
    assert!(
        original
            .redirected_to
            .as_deref()
            .is_some_and(|to| to.contains(&bed.lobby)),
        "{original:?}"
    );
    let audit = body(bed.get(ADMIN_KEY, "/api/v1/audit?outcome=redirected").await).await;
    assert_eq!(
        audit["records"][0]["destinationPrinterId"],
        bed.lobby.as_str()
    );
    assert_eq!(audit["records"][0]["stationId"], "lobby");
    bed.stop().await;
}

#[tokio::test]
async fn release_all_releases_each_of_the_persons_jobs_and_lists_the_outcomes() {
    let bed = Bed::start("").await;
    let (first, _) = bed.held_job(ADA, "one.pdf", json!({"copies": 1})).await;
    let (second, _) = bed.held_job(ADA, "two.pdf", json!({"copies": 1})).await;
    let (bob_job, bob_print_job) = bed.held_job(BOB, "bob.pdf", json!({"copies": 1})).await;
    let ada = bed
        .sign_in(QUEUE_KEY, json!({"user": ADA, "pin": ADA_PIN}))
        .await;
    let response = bed
        .post(&ada, "/api/v1/jobs/release-all", json!({"copies": 3}))
        .await;
    assert_eq!(response.status(), 200);
    let answer = body(response).await;
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{answer}");
    for (result, id) in results.iter().zip([&first, &second]) {
        assert_eq!(result["id"], id.as_str());
        assert_eq!(result["status"], "released", "{result}");
    }
    assert!(!results.iter().any(|r| r["id"] == bob_job.as_str()));
    assert_eq!(
        bed.emulator.control().job(&bob_print_job).unwrap().state,
        "paused"
    );
    let again = body(bed.post(&ada, "/api/v1/jobs/release-all", json!({})).await).await;
    assert_eq!(again["results"], json!([]), "nothing to print");
    bed.stop().await;
}

#[tokio::test]
async fn deleting_a_job_aborts_it() {
    let bed = Bed::start("").await;
    let (job, print_job) = bed.held_job(ADA, "draft.pdf", json!({"copies": 1})).await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    let response = bed.delete(&ada, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(body(response).await["status"], "deleted");
    assert_eq!(
        bed.emulator.control().job(&print_job).unwrap().state,
        "aborted"
    );
    let response = bed.delete(&ada, &format!("/api/v1/jobs/{job}")).await;
    assert_eq!(response.status(), 404, "a deleted job is no longer there");
    bed.stop().await;
}

#[tokio::test]
async fn a_slow_graph_answers_202_queued_and_the_queue_finishes_the_release() {
    let bed = Bed::start("[release]\nconfirm_wait = \"300ms\"\n").await;
    let (job, _) = bed.held_job(ADA, "late.pdf", json!({"copies": 1})).await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            route: "updateTask".into(),
            latency_ms: 1500,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let response = bed
        .post(&ada, &format!("/api/v1/jobs/{job}/release"), json!({}))
        .await;
    assert_eq!(response.status(), 202);
    assert_eq!(body(response).await["status"], "queued");
    // The emulator is an external party here: poll its state with a bounded deadline.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let task = bed
            .emulator
            .control()
            .tasks()
            .into_iter()
            .find(|t| t.id == job)
            .unwrap();
        if task.state == "completed" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queued release never completed: {task:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bed.stop().await;
}

#[tokio::test]
async fn the_admin_lists_releases_and_deletes_any_job_and_reads_the_audit_log() {
    let bed = Bed::start("").await;
    let (ada_job, ada_print) = bed.held_job(ADA, "a.pdf", json!({"copies": 1})).await;
    let (bob_job, bob_print) = bed.held_job(BOB, "b.pdf", json!({"copies": 1})).await;
    assert_eq!(
        bed.get("wrong-admin-key-0123456789", "/api/v1/admin/jobs")
            .await
            .status(),
        401
    );
    assert_eq!(
        bed.get(QUEUE_KEY, "/api/v1/admin/jobs").await.status(),
        401,
        "a station key is not the admin key"
    );
    let all = body(bed.get(ADMIN_KEY, "/api/v1/admin/jobs").await).await;
    assert_eq!(all["jobs"].as_array().unwrap().len(), 2);
    let response = bed
        .post(
            ADMIN_KEY,
            &format!("/api/v1/admin/jobs/{ada_job}/release"),
            json!({"copies": 2}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        bed.emulator
            .control()
            .job(&ada_print)
            .unwrap()
            .configuration["copies"],
        2
    );
    let response = bed
        .delete(ADMIN_KEY, &format!("/api/v1/admin/jobs/{bob_job}"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        bed.emulator.control().job(&bob_print).unwrap().state,
        "aborted"
    );

    let audit = body(
        bed.get(
            ADMIN_KEY,
            &format!("/api/v1/audit?user={BOB}&outcome=deleted"),
        )
        .await,
    )
    .await;
    let records = audit["records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{audit}");
    assert_eq!(records[0]["requestedBy"], "admin");
    let csv = bed
        .http
        .get(bed.url("/api/v1/audit?since=2000-01-01T00:00:00Z"))
        .bearer_auth(ADMIN_KEY)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("id,at,event,"), "{csv}");
    assert!(
        csv.contains(",released,") && csv.contains(",deleted,"),
        "{csv}"
    );
    let response = bed.get(ADMIN_KEY, "/api/v1/audit?outcome=printed").await;
    assert_eq!(response.status(), 400);
    assert!(
        body(response).await["error"]["message"]
            .as_str()
            .unwrap()
            .contains("released")
    );
    bed.stop().await;
}

#[tokio::test]
async fn an_unknown_card_is_looked_up_in_the_directory_when_enabled() {
    let bed = Bed::start("[users]\ndirectory_lookup = true\ndirectory_cache = \"5m\"\n").await;
    bed.emulator.control().add_user(DirectoryUser {
        id: String::new(),
        user_principal_name: "eve@contoso.com".into(),
        display_name: "Eve Example".into(),
        employee_id: Some("77001".into()),
    });
    let response = bed
        .post(QUEUE_KEY, "/api/v1/sessions", json!({"card": "77001"}))
        .await;
    assert_eq!(response.status(), 201);
    let created = body(response).await;
    assert_eq!(created["user"]["upn"], "eve@contoso.com");
    assert_eq!(created["user"]["displayName"], "Eve Example");
    let response = bed
        .post(QUEUE_KEY, "/api/v1/sessions", json!({"card": "77002"}))
        .await;
    assert_eq!(response.status(), 401);
    bed.stop().await;
}

#[tokio::test]
async fn the_openapi_document_describes_every_station_route() {
    let bed = Bed::start("").await;
    let doc = body(
        bed.http
            .get(bed.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    for path in [
        "/api/v1/sessions",
        "/api/v1/sessions/current",
        "/api/v1/jobs",
        "/api/v1/jobs/{id}/release",
        "/api/v1/jobs/release-all",
        "/api/v1/jobs/{id}",
        "/api/v1/admin/jobs",
        "/api/v1/admin/jobs/{id}/release",
        "/api/v1/audit",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let page = bed.http.get(bed.url("/")).send().await.unwrap();
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert!(page.text().await.unwrap().contains("Print release"));
    bed.stop().await;
}

/// `count` jobs held (each with its `held` audit record), stored straight into the daemon's store.
async fn many_held_jobs(bed: &Bed, count: usize) -> Vec<String> {
    use pullprintd::store::{DiscoveredVia, NewHeldJob};
    // Submitted now: the hold-timeout sweeper would end jobs submitted hours ago.
    let t0 = time::OffsetDateTime::now_utc();
    let mut tasks = Vec::new();
    for n in 0..count {
        let task = format!("paged-{n:05}");
        let job = NewHeldJob {
            task_id: task.clone(),
            definition_id: "def".to_owned(),
            printer_id: bed.queue.clone(),
            job_id: format!("job-{task}"),
            owner_upn: ADA.to_owned(),
            owner_name: None,
            owner_id: None,
            name: format!("{task}.pdf"),
            configuration: serde_json::from_value(json!({"copies": 1})).unwrap(),
            // Pairs share a submission time: the cursor orders them by task id.
            submitted_at: t0 + time::Duration::seconds(i64::try_from(n / 2).unwrap()),
            // Found "later" than any poll under way: the daemon's start-up reconciliation, which
            // ends held jobs whose tasks Graph does not list (these are made up), leaves a job
            // alone unless it was stored before the list was read.
            discovered_at: time::OffsetDateTime::now_utc() + time::Duration::days(1),
            discovered_via: DiscoveredVia::Poll,
        };
        bed.store.insert_held_job(&job).await.unwrap();
        tasks.push(task);
    }
    tasks
}

#[tokio::test]
async fn the_admin_listing_comes_in_pages_that_follow_one_another_without_gaps_or_repeats() {
    let bed = Bed::start("").await;
    let tasks = many_held_jobs(&bed, 1234).await;
    let first = body(bed.get(ADMIN_KEY, "/api/v1/admin/jobs").await).await;
    assert_eq!(
        first["jobs"].as_array().unwrap().len(),
        500,
        "500 a page by default"
    );
    let mut listed = Vec::new();
    let mut path = "/api/v1/admin/jobs?limit=300".to_owned();
    let mut pages = 0;
    loop {
        let page = body(bed.get(ADMIN_KEY, &path).await).await;
        assert!(pages < 10, "the pages end");
        pages += 1;
        for job in page["jobs"].as_array().unwrap() {
            listed.push(job["id"].as_str().unwrap().to_owned());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/admin/jobs?limit=300&after={next}"),
            None => break,
        }
    }
    assert_eq!(pages, 5, "1,234 jobs in pages of 300");
    assert_eq!(listed, tasks, "every job once, oldest first");

    for (query, fix) in [
        ("limit=0", "1 to 5000"),
        ("limit=5001", "1 to 5000"),
        ("after=not-a-cursor", "`next`"),
        ("after=%FF", "`next`"),
        ("page=2", "unknown field"),
    ] {
        let response = bed
            .get(ADMIN_KEY, &format!("/api/v1/admin/jobs?{query}"))
            .await;
        assert_eq!(response.status(), 400, "{query}");
        let message = body(response).await["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.contains(fix), "{query}: {message}");
    }
    bed.stop().await;
}

#[tokio::test]
async fn the_audit_log_pages_as_json_and_streams_every_record_as_csv() {
    let bed = Bed::start("").await;
    let tasks = many_held_jobs(&bed, 2500).await;
    let first = body(bed.get(ADMIN_KEY, "/api/v1/audit?outcome=held").await).await;
    let records = first["records"].as_array().unwrap();
    assert_eq!(records.len(), 1000, "1,000 a page by default");
    assert_eq!(records[0]["job"], json!(tasks[2499]), "newest first");
    let next = first["next"].as_i64().unwrap();
    let second = body(
        bed.get(
            ADMIN_KEY,
            &format!("/api/v1/audit?outcome=held&limit=1500&before={next}"),
        )
        .await,
    )
    .await;
    let records = second["records"].as_array().unwrap();
    assert_eq!(records.len(), 1500);
    assert_eq!(
        records[0]["job"],
        json!(tasks[1499]),
        "right after the first page"
    );
    assert_eq!(records[1499]["job"], json!(tasks[0]));
    assert!(
        second["next"].is_null(),
        "the last page: {}",
        second["next"]
    );

    let csv = bed
        .http
        .get(bed.url("/api/v1/audit?outcome=held"))
        .bearer_auth(ADMIN_KEY)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines.len(),
        2501,
        "the header and every record, past the chunk size"
    );
    let jobs: Vec<&str> = lines[1..]
        .iter()
        .map(|line| line.split(',').nth(6).unwrap())
        .collect();
    let mut newest_first: Vec<&str> = tasks.iter().map(String::as_str).collect();
    newest_first.reverse();
    assert_eq!(jobs, newest_first, "each record once, newest first");
    let some = bed
        .http
        .get(bed.url("/api/v1/audit?outcome=held&limit=1001"))
        .bearer_auth(ADMIN_KEY)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(some.lines().count(), 1002, "a limit on the export is kept");
    assert_eq!(
        bed.get(ADMIN_KEY, "/api/v1/audit?limit=5001")
            .await
            .status(),
        400
    );
    bed.stop().await;
}
