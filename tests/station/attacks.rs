//! The station API attacked as an attacker on the office LAN would, against the whole daemon and the
//! emulator: PIN guessing bursts, card spraying, oversized fields, sessions replayed elsewhere or too
//! late, idle and slow connections, and the separation of the listeners.

use crate::station_support;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use pullprintd::app::AppOptions;
use pullprintd::clock::ManualClock;
use pullprintd::emulator::{Faults, RouteFault};
use serde_json::{Value, json};
use station_support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Budgets large enough that only the per-person lockout is at work.
const LARGE_BUDGETS: &str =
    "[users]\nstation_failure_budget = 10000\nglobal_failure_budget = 10000\n";

async fn status_and_body(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn two_hundred_simultaneous_wrong_pins_get_at_most_five_pin_checks_then_even_the_right_pin_is_refused()
 {
    let bed = Arc::new(Bed::start(LARGE_BUDGETS).await);
    let answers: Vec<u16> = futures::stream::iter(0..200)
        .map(|n| {
            let bed = Arc::clone(&bed);
            async move {
                let key = if n % 2 == 0 { QUEUE_KEY } else { LOBBY_KEY };
                let pin = format!("{:04}", 9000 + n);
                bed.post(key, "/api/v1/sessions", json!({"user": ADA, "pin": pin}))
                    .await
                    .status()
                    .as_u16()
            }
        })
        .buffer_unordered(200)
        .collect()
        .await;
    let checks = bed.metric("pullprintd_pin_checks_total").await;
    let verified = answers.iter().filter(|s| **s == 401).count();
    let refused = answers.iter().filter(|s| **s == 429).count();
    assert!(checks <= 5.0, "{checks} PIN checks ran");
    assert!(verified <= 5, "{verified} answered 401");
    assert_eq!(
        verified + refused,
        200,
        "every other answer is 429: {answers:?}"
    );

    // The lock holds for the right PIN, at any station.
    let (status, body) = status_and_body(
        bed.post(
            LOBBY_KEY,
            "/api/v1/sessions",
            json!({"user": ADA, "pin": ADA_PIN}),
        )
        .await,
    )
    .await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "locked_out");
    assert_eq!(
        bed.metric("pullprintd_pin_checks_total").await,
        checks,
        "a locked person's PIN is not even checked"
    );
    // Another person is not affected; the administrator lifts Ada's lock.
    bed.sign_in(QUEUE_KEY, json!({"user": BOB, "pin": BOB_PIN}))
        .await;
    let lifted = bed
        .delete(ADMIN_KEY, &format!("/api/v1/admin/lockouts/{ADA}"))
        .await;
    assert_eq!(lifted.status(), 200);
    bed.sign_in(QUEUE_KEY, json!({"user": ADA, "pin": ADA_PIN}))
        .await;
    Arc::into_inner(bed).unwrap().stop().await;
}

#[tokio::test]
async fn a_thousand_distinct_unknown_cards_spend_the_station_budget_and_reach_the_directory_at_most_that_often()
 {
    let bed = Arc::new(
        Bed::start("[users]\ndirectory_lookup = true\nstation_failure_budget = 20\n").await,
    );
    bed.emulator.control().reset_call_counts();
    let answers: Vec<(u16, Option<u64>)> = futures::stream::iter(0..1000)
        .map(|n| {
            let bed = Arc::clone(&bed);
            async move {
                let response = bed
                    .post(
                        QUEUE_KEY,
                        "/api/v1/sessions",
                        json!({"card": format!("{:010}", 5_000_000 + n)}),
                    )
                    .await;
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok());
                (response.status().as_u16(), retry_after)
            }
        })
        .buffer_unordered(100)
        .collect()
        .await;
    let failed = answers.iter().filter(|(s, _)| *s == 401).count();
    let refused: Vec<_> = answers.iter().filter(|(s, _)| *s == 429).collect();
    assert!(failed <= 20, "{failed} cards were looked up and refused");
    assert_eq!(failed + refused.len(), 1000, "{answers:?}");
    assert!(
        refused
            .iter()
            .all(|(_, retry)| retry.is_some_and(|r| r > 0 && r <= 600)),
        "429s carry Retry-After"
    );
    let lookups = bed.emulator.control().calls_to("GET /users");
    assert!(lookups <= 20, "{lookups} directory lookups reached Graph");
    assert!(
        bed.metric("pullprintd_sign_ins_total{outcome=\"station_budget\"}")
            .await
            >= 980.0
    );
    // Another station still has its own budget: a real person signs in there.
    bed.sign_in(LOBBY_KEY, json!({"card": ADA_CARD})).await;
    Arc::into_inner(bed).unwrap().stop().await;
}

#[tokio::test]
async fn directory_errors_count_against_the_budget_instead_of_giving_free_guesses() {
    // Graph answers 503 to every lookup; the daemon waits at most DIRECTORY_LOOKUP_WAIT for it.
    let bed = Bed::start("[users]\ndirectory_lookup = true\nstation_failure_budget = 5\n").await;
    bed.emulator.control().set_faults(Faults {
        routes: vec![RouteFault {
            route: "GET /users".into(),
            rate_503: 1.0,
            ..RouteFault::default()
        }],
        ..Faults::default()
    });
    let mut statuses = Vec::new();
    for n in 0..8 {
        let response = bed
            .post(
                QUEUE_KEY,
                "/api/v1/sessions",
                json!({"card": format!("7700{n}")}),
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, vec![503, 503, 503, 503, 503, 429, 429, 429]);
    bed.stop().await;
}

#[tokio::test]
async fn oversized_fields_answer_422_naming_the_field_and_a_large_body_413() {
    let bed = Bed::start("").await;
    for field in ["card", "user", "pin"] {
        let mut request = json!({"user": ADA, "pin": "1234"});
        if field == "card" {
            request = json!({"card": "1".repeat(300)});
        } else {
            request[field] = json!("x".repeat(300));
        }
        let (status, body) =
            status_and_body(bed.post(QUEUE_KEY, "/api/v1/sessions", request).await).await;
        assert_eq!(status, 422, "{field}: {body}");
        assert_eq!(body["error"]["field"], field);
        assert!(body["error"]["message"].as_str().unwrap().contains(field));
    }
    let response = bed
        .post(
            QUEUE_KEY,
            "/api/v1/sessions",
            json!({"user": ADA, "pin": "9".repeat(8000)}),
        )
        .await;
    assert_eq!(response.status(), 413);
    // None of that counted as a guess.
    bed.sign_in(QUEUE_KEY, json!({"user": ADA, "pin": ADA_PIN}))
        .await;
    bed.stop().await;
}

#[tokio::test]
async fn card_guesses_shaped_like_an_address_are_refused_before_any_lookup_and_never_lock_the_person()
 {
    let bed = Bed::start("").await;
    for _ in 0..10 {
        let (status, body) = status_and_body(
            bed.post(QUEUE_KEY, "/api/v1/sessions", json!({"card": ADA}))
                .await,
        )
        .await;
        assert_eq!(status, 422, "{body}");
        assert_eq!(body["error"]["field"], "card");
    }
    // Wrong cards of the right shape lock that card, not Ada's PIN sign-in.
    for _ in 0..6 {
        bed.post(QUEUE_KEY, "/api/v1/sessions", json!({"card": "0000000001"}))
            .await;
    }
    let response = bed
        .post(QUEUE_KEY, "/api/v1/sessions", json!({"card": "0000000001"}))
        .await;
    assert_eq!(response.status(), 429);
    bed.sign_in(QUEUE_KEY, json!({"user": ADA, "pin": ADA_PIN}))
        .await;
    bed.stop().await;
}

#[tokio::test]
async fn with_card_requires_pin_a_card_alone_does_not_sign_in_and_card_with_pin_does() {
    let bed = Bed::start("[users]\ncard_requires_pin = true\n").await;
    let response = bed
        .post(QUEUE_KEY, "/api/v1/sessions", json!({"card": ADA_CARD}))
        .await;
    assert_eq!(response.status(), 400);
    let response = bed
        .post(
            QUEUE_KEY,
            "/api/v1/sessions",
            json!({"card": ADA_CARD, "pin": "0000"}),
        )
        .await;
    assert_eq!(response.status(), 401);
    bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD, "pin": ADA_PIN}))
        .await;
    bed.stop().await;
}

#[tokio::test]
async fn a_session_token_alone_or_with_another_stations_key_is_refused() {
    let bed = Bed::start("").await;
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    assert_eq!(bed.get(&ada, "/api/v1/jobs").await.status(), 200);
    let alone = bed
        .http
        .get(bed.url("/api/v1/jobs"))
        .bearer_auth(&ada)
        .send()
        .await
        .unwrap();
    assert_eq!(alone.status(), 401, "a token alone");
    let elsewhere = bed
        .http
        .get(bed.url("/api/v1/jobs"))
        .bearer_auth(&ada)
        .header("x-station-key", LOBBY_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(elsewhere.status(), 401, "with another station's key");
    let (_, body) = status_and_body(elsewhere).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("another station")
    );
    bed.stop().await;
}

#[tokio::test]
async fn a_session_ends_after_its_absolute_lifetime_however_busy() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let options = AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    };
    let bed = Bed::start_with(
        "[users]\nsession_idle = \"1m\"\nsession_lifetime = \"5m\"\n",
        &[],
        options,
    )
    .await;
    let response = bed
        .post(QUEUE_KEY, "/api/v1/sessions", json!({"card": ADA_CARD}))
        .await;
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["idleSeconds"], 60);
    assert_eq!(created["lifetimeSeconds"], 300);
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    for _ in 0..5 {
        clock.advance(time::Duration::seconds(50));
        assert_eq!(bed.get(&ada, "/api/v1/jobs").await.status(), 200);
    }
    clock.advance(time::Duration::seconds(51));
    assert_eq!(
        bed.get(&ada, "/api/v1/jobs").await.status(),
        401,
        "five minutes after sign-in, however busy"
    );
    bed.stop().await;
}

/// Reads until the server closes the connection; `true` when it did within `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: Duration) -> bool {
    let mut buffer = [0_u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A 408 or similar before the close is fine.
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn idle_and_slow_header_connections_are_closed_after_the_timeout_while_a_kiosk_still_signs_in()
 {
    let bed = Bed::start_with(
        "",
        &[("[api]", "header_read_timeout = \"2s\"")],
        AppOptions::default(),
    )
    .await;
    let mut idle = Vec::new();
    for n in 0..500 {
        let mut stream = tokio::net::TcpStream::connect(bed.addr).await.unwrap();
        if n % 2 == 1 {
            // Half a request line, never finished.
            stream.write_all(b"POST /api/v1/sess").await.unwrap();
        }
        idle.push(stream);
    }
    // The kiosk is still served while 500 connections hang.
    let ada = bed.sign_in(QUEUE_KEY, json!({"card": ADA_CARD})).await;
    assert_eq!(bed.get(&ada, "/api/v1/jobs").await.status(), 200);
    let closes = futures::future::join_all(
        idle.iter_mut()
            .map(|stream| closed_within(stream, Duration::from_secs(30))),
    )
    .await;
    let open = closes.iter().filter(|closed| !**closed).count();
    assert_eq!(open, 0, "{open} of 500 connections were still open");
    bed.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let bed = Bed::start_with(
        "",
        &[(
            "[api]",
            "max_connections = 20\nheader_read_timeout = \"60s\"",
        )],
        AppOptions::default(),
    )
    .await;
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(tokio::net::TcpStream::connect(bed.addr).await.unwrap());
    }
    // Each accepted connection is one permit; wait until the 20 are taken (a request on one of
    // them would be answered, so probe with a new one: it is closed at once once the cap is hit).
    let mut extra = tokio::net::TcpStream::connect(bed.addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(10)).await,
        "the 21st connection is closed"
    );
    drop(held);
    bed.stop().await;
}

#[tokio::test]
async fn the_admin_api_and_metrics_do_not_answer_on_the_station_listener() {
    let bed = Bed::start("").await;
    for path in ["/metrics", "/api/v1/admin/jobs", "/api/v1/audit"] {
        let response = bed
            .http
            .get(bed.station_url(path))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path} on the station listener");
    }
    let metrics = bed.http.get(bed.url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    assert_eq!(metrics.headers()["x-content-type-options"], "nosniff");
    assert_eq!(bed.get(ADMIN_KEY, "/api/v1/admin/jobs").await.status(), 200);
    assert!(bed.admin.ip().is_loopback());
    let kiosk = bed
        .http
        .get(format!("http://{}/", bed.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(
        kiosk.status(),
        404,
        "the kiosk is not on the admin listener"
    );
    bed.stop().await;
}

#[tokio::test]
async fn the_webhook_listener_answers_only_graph_notifications() {
    let bed = Bed::start_with(
        "",
        &[("[intake]", "listen = \"127.0.0.1:0\"")],
        AppOptions::default(),
    )
    .await;
    let webhook = bed.intake_addr.expect("a webhook listener");
    let http = &bed.http;
    let validation = http
        .post(format!(
            "http://{webhook}/graph/notifications?validationToken=hello"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(validation.status(), 200);
    assert_eq!(validation.headers()["x-content-type-options"], "nosniff");
    assert_eq!(validation.text().await.unwrap(), "hello");
    let huge = http
        .post(format!(
            "http://{webhook}/graph/notifications?validationToken={}",
            "a".repeat(2000)
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(huge.status(), 400, "a validationToken over 1 KiB");
    for path in [
        "/",
        "/healthz",
        "/metrics",
        "/api/v1/station",
        "/api/v1/admin/jobs",
    ] {
        let response = http
            .get(format!("http://{webhook}{path}"))
            .bearer_auth(QUEUE_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{path} on the webhook listener");
    }
    let on_stations = http
        .post(bed.station_url("/graph/notifications?validationToken=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        on_stations.status(),
        404,
        "with a webhook listener of its own, the station listener does not take notifications"
    );
    bed.stop().await;
}

/// A throwaway self-signed certificate for 127.0.0.1, made with the openssl command.
fn throwaway_certificate(
    dir: &std::path::Path,
) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args([
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        // A server certificate, not a CA: rustls refuses a CA certificate used as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    made.then_some((cert, key))
}

#[tokio::test]
async fn tls_on_the_station_and_admin_listeners_works_with_a_throwaway_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = throwaway_certificate(dir.path()) else {
        assert!(
            std::env::var("CI").is_err(),
            "openssl is needed for the TLS test under CI"
        );
        eprintln!("skipped: no openssl command to make a throwaway certificate");
        return;
    };
    let api = format!(
        "tls_cert_file = \"{c}\"\ntls_key_file = \"{k}\"\nadmin_tls_cert_file = \"{c}\"\nadmin_tls_key_file = \"{k}\"",
        c = cert.display(),
        k = key.display()
    );
    let bed = Bed::start_with("", &[("[api]", &api)], AppOptions::default()).await;
    let root = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let https = reqwest::Client::builder()
        .add_root_certificate(root)
        .build()
        .unwrap();
    let station = https
        .get(format!("https://{}/api/v1/station", bed.addr))
        .bearer_auth(QUEUE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(station.status(), 200);
    let admin = https
        .get(format!("https://{}/api/v1/admin/jobs", bed.admin))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 200);
    let plain = bed
        .http
        .get(format!("http://{}/healthz", bed.addr))
        .send()
        .await;
    assert!(
        plain.is_err() || plain.is_ok_and(|r| r.status() != 200),
        "plain HTTP is not served on a TLS listener"
    );
    bed.stop().await;
}

#[tokio::test]
async fn readyz_writes_the_store_at_most_once_per_ten_seconds_however_often_it_is_asked() {
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let options = AppOptions {
        clock: clock.clone(),
        ..AppOptions::default()
    };
    let owned = Bed::start_with("", &[], options).await;
    let bed = &owned;
    let probe = move || async move {
        let url = format!(
            "sqlite://{}?mode=ro",
            bed.dir.path().join("state.db").display()
        );
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        let at: Option<String> = sqlx::query_scalar("SELECT checked_at FROM health_probe")
            .fetch_optional(&pool)
            .await
            .unwrap();
        pool.close().await;
        at
    };
    let ready = move |_: u32| async move { bed.http.get(bed.url("/readyz")).send().await.unwrap() };
    ready(0).await;
    let first = probe().await;
    assert!(first.is_some(), "the first /readyz probes the store");
    clock.advance(time::Duration::seconds(5));
    futures::future::join_all((0..100).map(ready)).await;
    assert_eq!(probe().await, first, "100 probes within 10 s write nothing");
    clock.advance(time::Duration::seconds(6));
    ready(0).await;
    assert_ne!(probe().await, first, "after 10 s the store is probed again");
    owned.stop().await;
}

#[tokio::test]
async fn the_failure_that_locks_a_person_is_counted_once_as_a_lockout_and_later_refusals_as_locked_out()
 {
    let bed = Bed::start("").await;
    let mut statuses = Vec::new();
    for n in 0..6 {
        let pin = format!("{:04}", 9000 + n);
        let response = bed
            .post(
                QUEUE_KEY,
                "/api/v1/sessions",
                json!({"user": BOB, "pin": pin}),
            )
            .await;
        statuses.push(response.status().as_u16());
    }
    // Four plain failures, the fifth locks Bob, the sixth is refused before any check.
    assert_eq!(statuses, [401, 401, 401, 401, 429, 429]);
    assert_eq!(bed.metric("pullprintd_sign_in_lockouts_total").await, 1.0);
    assert_eq!(
        bed.metric("pullprintd_sign_ins_total{outcome=\"failed\"}")
            .await,
        4.0
    );
    assert_eq!(
        bed.metric("pullprintd_sign_ins_total{outcome=\"locked_out\"}")
            .await,
        2.0
    );
    bed.stop().await;
}
