//! Entra ID sign-in at a station over plain HTTP (the browser's part done by hand, as an attacker
//! would): the kiosk's code, the start, the emulator's sign-in, the callback, and the phone session;
//! every refusal the issue names (a code used twice, expired or forged; a tampered or replayed
//! state; a callback in another browser; ID tokens for another audience or tenant, expired, with
//! another nonce or a bad signature; someone else's job by id), each audited; and the jobs waiting
//! on a pull-print printer, released with the person's own delegated token.
#![allow(clippy::unwrap_used)]

use crate::station_support::*;

use pullprintd::app::AppOptions;
use pullprintd::emulator::{ForgeKey, NewJob};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::{Value, json};

/// A client that does not follow redirects: each step is looked at.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A new code of the station with `key`: the address its QR code says.
async fn code(bed: &Bed, key: &str) -> String {
    let answer: Value = client()
        .get(bed.station_url("/api/v1/phone/code"))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(answer["svg"].as_str().unwrap().starts_with("<svg"));
    answer["url"].as_str().unwrap().to_owned()
}

/// What opening a code's address gave: the authorize URL and the browser cookie.
struct Started {
    authorize: url::Url,
    cookie: String,
}

async fn start(url: &str) -> Result<Started, (StatusCode, String)> {
    let response = client().get(url).send().await.unwrap();
    if response.status() != StatusCode::SEE_OTHER {
        let status = response.status();
        return Err((status, response.text().await.unwrap()));
    }
    let authorize = url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let cookie = response.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    Ok(Started { authorize, cookie })
}

/// Signs `upn` in at the emulator's page; the callback address Entra ID sends the browser to.
async fn sign_in_at_entra(authorize: &url::Url, upn: &str) -> url::Url {
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("upn".to_owned(), upn.to_owned()));
    let mut action = authorize.clone();
    action.set_query(None);
    let response = client().post(action).form(&form).send().await.unwrap();
    if response.status() == StatusCode::FOUND {
        return url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    }
    let status = response.status();
    assert_eq!(
        status,
        StatusCode::FOUND,
        "the emulator redirects back: {}",
        response.text().await.unwrap()
    );
    url::Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap()
}

/// The callback, with `cookie` (the browser's) if any: the session token, or the refusal page.
async fn finish(callback: &url::Url, cookie: Option<&str>) -> Result<String, (StatusCode, String)> {
    let mut request = client().get(callback.clone());
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let response = request.send().await.unwrap();
    if response.status() != StatusCode::SEE_OTHER {
        let status = response.status();
        return Err((status, response.text().await.unwrap()));
    }
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let token = location
        .split_once("#session=")
        .unwrap_or_else(|| panic!("no session in {location}"))
        .1
        .to_owned();
    Ok(token)
}

/// The whole phone sign-in of `upn` at the station with `key`: its session token.
async fn phone_session(bed: &Bed, key: &str, upn: &str) -> String {
    let started = start(&code(bed, key).await).await.unwrap();
    let callback = sign_in_at_entra(&started.authorize, upn).await;
    finish(&callback, Some(&started.cookie)).await.unwrap()
}

async fn get(bed: &Bed, token: &str, path: &str) -> reqwest::Response {
    client()
        .get(bed.station_url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn post(bed: &Bed, token: &str, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(bed.station_url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap()
}

/// The pull-print printer of the pull-printing beds (`Bed::start_phone_with_pull`).
const PULL_PRINTER: &str = "pull-printer-1";

/// A job `upn` sent to [`PULL_PRINTER`], waiting there for release; its id.
fn submit_pull(bed: &Bed, upn: &str, name: &str) -> String {
    bed.emulator
        .control()
        .submit_pull_job(NewJob {
            printer_id: PULL_PRINTER.to_owned(),
            user_principal_name: upn.to_owned(),
            user_display_name: None,
            document_name: Some(name.to_owned()),
            configuration: Some(json!({"copies": 1, "colorMode": "color"})),
        })
        .unwrap()
}

/// Every Graph request the bed's emulator recorded is valid against Microsoft's description (the
/// generated copy, and the pull-printing operations written from Microsoft Learn's pages).
fn graph_requests_are_valid(bed: &Bed) {
    let report = crate::graph_schema::GraphSchema::load().check_log(&bed.graph_request_log());
    assert!(report.total > 0, "requests were recorded");
    assert!(
        report.all_valid(),
        "recorded Graph requests are not all valid against Microsoft's schema:\n{report}"
    );
}

/// The refused Entra ID sign-ins in the audit log.
async fn refusals(bed: &Bed) -> Vec<Value> {
    let list: Value = client()
        .get(bed.url("/api/v1/audit?outcome=sign_in_refused"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    list["records"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_phone_session_sees_only_its_owners_jobs_and_releases_them_at_the_kiosks_station_only() {
    let bed = Bed::start_phone("").await;
    let (own, own_print) = bed.held_job(ADA, "ada.pdf", json!({"copies": 1})).await;
    let (bobs, _) = bed.held_job(BOB, "bob.pdf", json!({"copies": 1})).await;
    let token = phone_session(&bed, QUEUE_KEY, ADA).await;

    let current: Value = get(&bed, &token, "/api/v1/sessions/current")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(current["user"]["upn"], json!(ADA));
    assert_eq!(current["station"]["id"], json!("queue"));
    assert_eq!(current["phone"], json!(true));

    let jobs: Value = get(&bed, &token, "/api/v1/jobs")
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![own.as_str()], "only Ada's job");

    // Bob's job by its id: as unknown as a job that does not exist.
    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/{bobs}/release"),
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    // The phone's token with another station's key: refused (it belongs to the queue station).
    let response = client()
        .get(bed.station_url("/api/v1/jobs"))
        .bearer_auth(&token)
        .header("x-station-key", LOBBY_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/{own}/release"),
        json!({"copies": 2}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let printed = bed.emulator.control().printed(&bed.queue);
    assert_eq!(
        printed.iter().filter(|p| p.job_id == own_print).count(),
        1,
        "printed once at the queue station's printer: {printed:?}"
    );

    // A kiosk's session token is still refused without its station key.
    let kiosk = bed
        .sign_in(QUEUE_KEY, json!({"card": ADA_CARD, "pin": ADA_PIN}))
        .await;
    let response = get(&bed, &kiosk, "/api/v1/jobs").await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // Signed out, the phone's token is dead.
    let response = client()
        .delete(bed.station_url("/api/v1/sessions/current"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        get(&bed, &token, "/api/v1/jobs").await.status(),
        StatusCode::UNAUTHORIZED
    );
    graph_requests_are_valid(&bed);
}

#[tokio::test]
async fn a_code_used_twice_expired_or_forged_gets_a_page_saying_so_never_a_sign_in_and_is_audited()
{
    let clock = pullprintd::clock::ManualClock::new(time::OffsetDateTime::now_utc());
    let bed = Bed::start_phone_with(
        "",
        AppOptions {
            clock: clock.clone(),
            ..AppOptions::default()
        },
    )
    .await;
    let url = code(&bed, QUEUE_KEY).await;
    start(&url).await.unwrap();
    let (status, page) = start(&url).await.err().unwrap();
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("already used"), "{page}");
    // In the phone's language.
    let german = client()
        .get(&url)
        .header("accept-language", "de-DE,de;q=0.9,en;q=0.8")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        german.contains("bereits verwendet") && german.contains("lang=\"de\""),
        "{german}"
    );

    let expiring = code(&bed, QUEUE_KEY).await;
    clock.advance(time::Duration::seconds(61));
    let (status, page) = start(&expiring).await.err().unwrap();
    assert_eq!(status, StatusCode::GONE);
    assert!(page.contains("expired"), "{page}");

    let forged = format!(
        "{}?code=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        bed.station_url("/phone/start")
    );
    let (status, page) = start(&forged).await.err().unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("not valid"), "{page}");

    let (status, _) = start(&bed.station_url("/phone/start")).await.err().unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let audited = refusals(&bed).await;
    assert_eq!(audited.len(), 5, "{audited:?}");
    let details: Vec<&str> = audited
        .iter()
        .map(|r| r["detail"].as_str().unwrap())
        .collect();
    for word in ["second time", "expired", "unknown", "without a code"] {
        assert!(
            details.iter().any(|d| d.contains(word)),
            "{word}: {details:?}"
        );
    }
    // Nothing of a code is kept in the audit log.
    let code_value = url.split("code=").nth(1).unwrap();
    assert!(!details.iter().any(|d| d.contains(code_value)));
}

#[tokio::test]
async fn a_tampered_or_replayed_state_and_a_callback_in_another_browser_are_refused() {
    let bed = Bed::start_phone("").await;
    bed.held_job(ADA, "ada.pdf", json!({"copies": 1})).await;

    // Another browser: the right code and state, without the cookie of the browser that started.
    let started = start(&code(&bed, QUEUE_KEY).await).await.unwrap();
    let callback = sign_in_at_entra(&started.authorize, ADA).await;
    let (status, page) = finish(&callback, None).await.err().unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("another browser"), "{page}");
    // The state was spent by that attempt: even the right browser cannot use it now.
    let (status, _) = finish(&callback, Some(&started.cookie))
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A tampered state.
    let started = start(&code(&bed, QUEUE_KEY).await).await.unwrap();
    let mut callback = sign_in_at_entra(&started.authorize, ADA).await;
    let pairs: Vec<(String, String)> = callback
        .query_pairs()
        .into_owned()
        .map(|(k, v)| {
            if k == "state" {
                (k, format!("{v}x"))
            } else {
                (k, v)
            }
        })
        .collect();
    callback.query_pairs_mut().clear().extend_pairs(pairs);
    let (status, page) = finish(&callback, Some(&started.cookie))
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not valid"), "{page}");

    // A replayed callback: the first completes, the second finds nothing.
    let started = start(&code(&bed, QUEUE_KEY).await).await.unwrap();
    let callback = sign_in_at_entra(&started.authorize, ADA).await;
    finish(&callback, Some(&started.cookie)).await.unwrap();
    let (status, _) = finish(&callback, Some(&started.cookie))
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);

    assert_eq!(refusals(&bed).await.len(), 4);
}

/// A forged ID token: its name, how its claims are changed, the key signing it, and the words the
/// refusal page must say.
type ForgeCase = (
    &'static str,
    Box<dyn Fn(&mut Value)>,
    ForgeKey,
    &'static str,
);

#[tokio::test]
async fn id_tokens_for_another_audience_or_tenant_expired_with_another_nonce_or_badly_signed_are_refused()
 {
    let bed = Bed::start_phone("").await;
    let control = bed.emulator.control();
    let client_id = pullprintd::emulator::DEMO_CLIENT_ID;
    let cases: Vec<ForgeCase> = vec![
        (
            "audience",
            Box::new(|c: &mut Value| c["aud"] = json!("another-app")),
            ForgeKey::Emulator,
            "another app",
        ),
        (
            "tenant",
            Box::new(|c: &mut Value| {
                c["iss"] = json!("https://login.microsoftonline.com/other-tenant/v2.0")
            }),
            ForgeKey::Emulator,
            "another tenant",
        ),
        (
            "expiry",
            Box::new(|c: &mut Value| {
                c["exp"] = json!(1_000_000_000);
                c["iat"] = json!(999_990_000);
                c["nbf"] = json!(999_990_000);
            }),
            ForgeKey::Emulator,
            "expired",
        ),
        (
            "nonce",
            Box::new(|c: &mut Value| c["nonce"] = json!("not-this-sign-ins")),
            ForgeKey::Emulator,
            "nonce",
        ),
        (
            "signature",
            Box::new(|_: &mut Value| {}),
            ForgeKey::Other,
            "signature",
        ),
    ];
    for (name, change, key, words) in cases {
        let started = start(&code(&bed, QUEUE_KEY).await).await.unwrap();
        let nonce = started
            .authorize
            .query_pairs()
            .find(|(k, _)| k == "nonce")
            .map(|(_, v)| v.into_owned());
        let mut claims = control.id_token_claims(client_id, ADA, nonce.as_deref());
        change(&mut claims);
        let forged = control.forge_id_token(&claims, key).unwrap();
        control.replace_next_id_token(&forged);
        let callback = sign_in_at_entra(&started.authorize, ADA).await;
        let (status, page) = finish(&callback, Some(&started.cookie))
            .await
            .err()
            .unwrap();
        assert_eq!(status, StatusCode::FORBIDDEN, "{name}");
        assert!(page.contains(words), "{name}: {page}");
    }
    let audited = refusals(&bed).await;
    assert_eq!(audited.len(), 5, "{audited:?}");
    assert!(
        audited
            .iter()
            .all(|r| r["detail"].as_str().unwrap().contains("ID token"))
    );
}

#[tokio::test]
async fn a_pull_printer_job_is_released_once_with_the_persons_delegated_token_never_the_apps() {
    let pull_id = PULL_PRINTER;
    let bed = Bed::start_phone_with_pull(pull_id).await;
    let control = bed.emulator.control();
    let adas = submit_pull(&bed, ADA, "ada-pull.pdf");
    let bobs = submit_pull(&bed, BOB, "bob-pull.pdf");
    let (held, _) = bed
        .held_job(ADA, "ada-held.pdf", json!({"copies": 1}))
        .await;

    // Signed in with a card at the kiosk: no Entra ID token, so no pull jobs.
    let kiosk = bed
        .sign_in(QUEUE_KEY, json!({"card": ADA_CARD, "pin": ADA_PIN}))
        .await;
    let jobs: Value = bed.get(&kiosk, "/api/v1/jobs").await.json().await.unwrap();
    assert_eq!(jobs["jobs"].as_array().unwrap().len(), 1);

    let token = phone_session(&bed, QUEUE_KEY, ADA).await;
    let jobs: Value = get(&bed, &token, "/api/v1/jobs")
        .await
        .json()
        .await
        .unwrap();
    let listed: Vec<(String, bool)> = jobs["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["id"].as_str().unwrap().to_owned(),
                j["fixedOptions"] == json!(true),
            )
        })
        .collect();
    let pull_api_id = format!("pull~{pull_id}~{adas}");
    assert!(listed.contains(&(held.clone(), false)), "{listed:?}");
    assert!(listed.contains(&(pull_api_id.clone(), true)), "{listed:?}");
    assert_eq!(listed.len(), 2, "not Bob's pull job: {listed:?}");

    // Its options are its own; another colour is refused before anything is sent.
    let choices: Value = get(&bed, &token, &format!("/api/v1/jobs/{pull_api_id}/options"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(choices["minCopies"], choices["maxCopies"]);
    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/{pull_api_id}/release"),
        json!({"colorMode": "grayscale"}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // Bob's pull job by id: unknown.
    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/pull~{pull_id}~{bobs}/release"),
        json!({}),
    )
    .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);

    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/{pull_api_id}/release"),
        json!({}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let job = control.pull_job(&adas).unwrap();
    assert!(!job.waiting, "{job:?}");
    let printed: Vec<_> = control
        .printed(&bed.queue)
        .into_iter()
        .filter(|p| p.document_name == "ada-pull.pdf")
        .collect();
    assert_eq!(printed.len(), 1, "printed once at the station's printer");

    // Again: refused by the daemon without a second call.
    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/{pull_api_id}/release"),
        json!({}),
    )
    .await;
    assert!(
        response.status() == StatusCode::CONFLICT || response.status() == StatusCode::NOT_FOUND
    );
    assert_eq!(
        control
            .printed(&bed.queue)
            .iter()
            .filter(|p| p.document_name == "ada-pull.pdf")
            .count(),
        1
    );

    // The daemon never tried the app's token; the emulator refuses one (Graph: delegated only).
    assert_eq!(control.refused_app_only_releases(), 0);
    let app_token = bed.app_token().await;
    let refused = reqwest::Client::new()
        .post(format!(
            "{}/print/printers/{}/jobs/release",
            bed.emulator.graph_url(),
            bed.queue
        ))
        .bearer_auth(app_token)
        .json(&json!({"jobId": bobs}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(control.refused_app_only_releases(), 1);
    assert!(control.pull_job(&bobs).unwrap().waiting);

    // The release is audited, naming the person, the station and the printer.
    let audit: Value = client()
        .get(bed.url("/api/v1/audit?outcome=released"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let record = audit["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["printJobId"] == json!(adas))
        .cloned()
        .unwrap_or_default();
    assert_eq!(record["stationId"], json!("queue"), "{audit}");
    assert_eq!(record["destinationPrinterId"], json!(bed.queue), "{audit}");
    graph_requests_are_valid(&bed);
}

#[tokio::test]
async fn sign_in_with_microsoft_at_the_kiosk_makes_a_kiosk_session_that_needs_the_station_key() {
    let bed = Bed::start_phone("").await;
    let (own, _) = bed.held_job(ADA, "ada.pdf", json!({"copies": 1})).await;
    let url = format!("{}&at=kiosk", code(&bed, QUEUE_KEY).await);
    let started = start(&url).await.unwrap();
    let prompt = started
        .authorize
        .query_pairs()
        .find(|(k, _)| k == "prompt")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        prompt.as_deref(),
        Some("login"),
        "a shared screen always asks for the password"
    );
    let callback = sign_in_at_entra(&started.authorize, ADA).await;
    let response = client()
        .get(callback)
        .header(COOKIE, &started.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("/#session="),
        "back to the kiosk page: {location}"
    );
    let token = location.trim_start_matches("/#session=");
    // Without the station key, as a phone would send it: refused.
    assert_eq!(
        get(&bed, token, "/api/v1/jobs").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = client()
        .get(bed.station_url("/api/v1/jobs"))
        .bearer_auth(token)
        .header("x-station-key", QUEUE_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jobs: Value = response.json().await.unwrap();
    assert_eq!(jobs["jobs"][0]["id"], json!(own));
}

#[tokio::test]
async fn an_uncertain_pull_print_release_is_settled_by_reading_the_job_so_it_prints_once() {
    use pullprintd::emulator::{Faults, RouteFault};
    let pull_id = PULL_PRINTER;
    let bed = Bed::start_phone_with_pull(pull_id).await;
    let control = bed.emulator.control();
    let (done, refused) = (
        submit_pull(&bed, ADA, "done.pdf"),
        submit_pull(&bed, ADA, "refused.pdf"),
    );
    let token = phone_session(&bed, QUEUE_KEY, ADA).await;
    let release = |job: String| {
        let (bed, token) = (&bed, token.clone());
        async move {
            post(
                bed,
                &token,
                &format!("/api/v1/jobs/pull~{pull_id}~{job}/release"),
                json!({}),
            )
            .await
        }
    };
    let fault = |after_effect: bool| Faults {
        routes: vec![RouteFault {
            route: "releaseJob".to_owned(),
            fail_after_effect_rate: if after_effect { 1.0 } else { 0.0 },
            rate_504: if after_effect { 0.0 } else { 1.0 },
            ..RouteFault::default()
        }],
        ..Faults::default()
    };

    // Graph releases the job, then answers 504: the daemon reads the job, finds it released.
    control.set_faults(fault(true));
    let response = release(done.clone()).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    assert!(!control.pull_job(&done).unwrap().waiting);

    // Graph answers 504 without releasing: the job still waits, so the release is not claimed; once
    // Graph is well again, the person's next tap releases it.
    control.set_faults(fault(false));
    let response = release(refused.clone()).await;
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(control.pull_job(&refused).unwrap().waiting);
    control.set_faults(Faults::default());
    let response = release(refused.clone()).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );

    let printed = control.printed(&bed.queue);
    for name in ["done.pdf", "refused.pdf"] {
        assert_eq!(
            printed.iter().filter(|p| p.document_name == name).count(),
            1,
            "{name} printed once: {printed:?}"
        );
    }
    assert_eq!(
        control.calls_to("POST /print/printers/{id}/jobs/release"),
        3,
        "never sent again on its own"
    );
}

/// A Graph client of the daemon's app registration, against the bed's emulator.
fn graph(bed: &Bed) -> pullprintd::graph::GraphClient {
    use pullprintd::graph::{Cloud, Credential, GraphClient, GraphOptions};
    let mut options = GraphOptions::new(
        Cloud::Global,
        bed.emulator.tenant_id(),
        pullprintd::emulator::DEMO_CLIENT_ID,
        Credential::ClientSecret(pullprintd::emulator::DEMO_CLIENT_SECRET.to_owned().into()),
    );
    let root = url::Url::parse(bed.emulator.graph_url().trim_end_matches("/v1.0")).unwrap();
    options.base_url = Some(root.clone());
    options.login_url = Some(root);
    GraphClient::new(options).unwrap()
}

#[tokio::test]
async fn releases_left_unsettled_by_a_daemon_that_stopped_mid_call_are_settled_by_reading_each_job()
{
    use pullprintd::emulator::{Faults, RouteFault};
    use pullprintd::station::pull::{UNSETTLED_AFTER, settle_unsettled};
    let pull_id = PULL_PRINTER;
    let bed = Bed::start_phone_with_pull(pull_id).await;
    let control = bed.emulator.control();
    let (sent, never_sent) = (
        submit_pull(&bed, ADA, "sent.pdf"),
        submit_pull(&bed, ADA, "never-sent.pdf"),
    );
    let token = phone_session(&bed, QUEUE_KEY, ADA).await;

    // Graph releases the job but the answer is lost, and the job cannot be read back just then: the
    // release stays under way (202), as it would if the daemon had stopped mid-call.
    control.set_faults(Faults {
        routes: vec![
            RouteFault {
                route: "releaseJob".to_owned(),
                fail_after_effect_rate: 1.0,
                ..RouteFault::default()
            },
            RouteFault {
                route: "getPullPrintPrinterJob".to_owned(),
                rate_403: 1.0,
                ..RouteFault::default()
            },
        ],
        ..Faults::default()
    });
    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/pull~{pull_id}~{sent}/release"),
        json!({}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::ACCEPTED,
        "{}",
        response.text().await.unwrap()
    );
    control.set_faults(Faults::default());
    // Another one recorded and never sent: its daemon stopped before the call.
    let now = time::OffsetDateTime::now_utc();
    bed.store
        .pull_release_begin(pull_id, &never_sent, &bed.queue, "queue", ADA, now)
        .await
        .unwrap();

    let graph = graph(&bed);
    assert_eq!(
        settle_unsettled(&bed.store, &graph, now).await.unwrap(),
        0,
        "too young to settle"
    );
    let later = now + UNSETTLED_AFTER + time::Duration::seconds(1);
    assert_eq!(
        settle_unsettled(&bed.store, &graph, later).await.unwrap(),
        2
    );
    assert_eq!(
        settle_unsettled(&bed.store, &graph, later).await.unwrap(),
        0,
        "settled once"
    );

    let audit: Value = client()
        .get(bed.url("/api/v1/audit"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let outcome = |job: &str| {
        audit["records"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["printJobId"] == json!(job))
            .map(|r| r["event"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(outcome(&sent), vec!["released"]);
    assert_eq!(outcome(&never_sent), vec!["failed"]);
    // The one never sent still waits, and can be released now.
    assert!(control.pull_job(&never_sent).unwrap().waiting);
    let response = post(
        &bed,
        &token,
        &format!("/api/v1/jobs/pull~{pull_id}~{never_sent}/release"),
        json!({}),
    )
    .await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    assert_eq!(
        control
            .printed(&bed.queue)
            .iter()
            .filter(|p| p.document_name.ends_with("sent.pdf"))
            .count(),
        2,
        "each printed once"
    );
}

/// A port free now, for a daemon whose address must be known before it starts.
/// The JSON answer of `GET url` with `bearer`, at whichever instance `url` names.
async fn get_json(url: &str, bearer: &str) -> Value {
    client()
        .get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_sign_in_started_at_one_instance_completes_and_releases_at_another_on_postgresql() {
    use pullprintd::emulator::scenario::{
        Person, RunningDaemon, Scenario, StationSpec, write_users_file,
    };
    let Some(scratch) = pullprintd::store::scratch::ScratchDatabase::create().await else {
        return;
    };
    let tenant = Scenario::default()
        .person(ADA, "Ada Lovelace")
        .printer("Queue", true)
        .start()
        .await
        .unwrap();
    let queue = tenant.printer("Queue").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    write_users_file(
        &users,
        "",
        &[Person {
            upn: ADA.to_owned(),
            display_name: "Ada Lovelace".to_owned(),
            card: ADA_CARD.to_owned(),
            pin: None,
            delegates: Vec::new(),
            delegate_group: None,
        }],
    )
    .unwrap();
    // Two instances behind one public address (a load balancer's): the QR code, the redirect URI and
    // the phone's page all name it, whichever instance serves each request.
    let ports = [free_port(), free_port()];
    let public = format!("http://127.0.0.1:{}", ports[0]);
    tenant
        .emulator
        .control()
        .add_redirect_uri(
            pullprintd::emulator::DEMO_CLIENT_ID,
            &format!("{public}/phone/callback"),
        )
        .unwrap();
    let mut daemons = Vec::new();
    for port in ports {
        let mut config = tenant.daemon_config(&dir.path().join("unused.db"));
        config.store_url = Some(scratch.url().url().to_string());
        config.intake = "mode = \"poll\"\npoll_interval = \"1h\"".to_owned();
        config.listen = format!("127.0.0.1:{port}");
        config.stations = vec![StationSpec {
            id: "queue".to_owned(),
            printer_id: queue.clone(),
            key: QUEUE_KEY.to_owned(),
        }];
        config.users_file = Some(users.clone());
        config.extra = format!("[phone]\nenabled = true\npublic_url = \"{public}\"\n");
        let settings = pullprintd::config::Settings::from_toml(&config.to_toml()).unwrap();
        daemons.push(
            RunningDaemon::start(settings, pullprintd::app::AppOptions::default())
                .await
                .unwrap(),
        );
    }
    let at = |n: usize, path: &str| format!("http://{}{path}", daemons[n].addr);
    let submitted = tenant
        .emulator
        .control()
        .submit_job(NewJob {
            printer_id: queue.clone(),
            user_principal_name: ADA.to_owned(),
            user_display_name: None,
            document_name: Some("ha.pdf".to_owned()),
            configuration: Some(json!({"copies": 1})),
        })
        .unwrap();
    let task = submitted.task_id.unwrap();
    daemons[0]
        .poller
        .poll(pullprintd::store::DiscoveredVia::Poll)
        .await
        .unwrap();

    // The code comes from the second instance; the phone's start reaches the second, and the callback
    // comes back through the public address to the first.
    let answer = get_json(&at(1, "/api/v1/phone/code"), QUEUE_KEY).await;
    let url = answer["url"].as_str().unwrap().replace(&public, &at(1, ""));
    let started = start(&url).await.unwrap();
    let callback = sign_in_at_entra(&started.authorize, ADA).await;
    assert!(callback.as_str().starts_with(&public), "{callback}");
    let token = finish(&callback, Some(&started.cookie)).await.unwrap();

    // The phone's session holds at either instance; the release goes through the second.
    for n in [0, 1] {
        let jobs = get_json(&at(n, "/api/v1/jobs"), &token).await;
        assert_eq!(jobs["jobs"][0]["id"], json!(task), "instance {n}: {jobs}");
    }
    let response = client()
        .post(at(1, &format!("/api/v1/jobs/{task}/release")))
        .bearer_auth(&token)
        .json(&json!({"copies": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "{}",
        response.text().await.unwrap()
    );
    let printed = tenant.emulator.control().printed(&queue);
    assert_eq!(
        printed
            .iter()
            .filter(|p| p.job_id == submitted.job_id)
            .count(),
        1
    );
    // The code the phone used is spent at both instances.
    assert_eq!(
        start(&answer["url"].as_str().unwrap().replace(&public, &at(0, "")))
            .await
            .err()
            .unwrap()
            .0,
        StatusCode::GONE
    );
}

#[tokio::test]
async fn print_all_on_a_phone_also_releases_the_persons_pull_print_jobs_each_once() {
    let pull_id = PULL_PRINTER;
    let bed = Bed::start_phone_with_pull(pull_id).await;
    let control = bed.emulator.control();
    let pulled = [
        submit_pull(&bed, ADA, "pull-1.pdf"),
        submit_pull(&bed, ADA, "pull-2.pdf"),
    ];
    let bobs = submit_pull(&bed, BOB, "bob-pull.pdf");
    let (held, held_print) = bed.held_job(ADA, "held.pdf", json!({"copies": 1})).await;
    let token = phone_session(&bed, QUEUE_KEY, ADA).await;

    let answer: Value = post(&bed, &token, "/api/v1/jobs/release-all", json!({}))
        .await
        .json()
        .await
        .unwrap();
    let mut released: Vec<String> = answer["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == json!("released"))
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    released.sort();
    let mut wanted = vec![
        held.clone(),
        format!("pull~{pull_id}~{}", pulled[0]),
        format!("pull~{pull_id}~{}", pulled[1]),
    ];
    wanted.sort();
    assert_eq!(released, wanted, "{answer}");
    let printed = control.printed(&bed.queue);
    for name in ["pull-1.pdf", "pull-2.pdf"] {
        assert_eq!(
            printed.iter().filter(|p| p.document_name == name).count(),
            1,
            "{name}: {printed:?}"
        );
    }
    assert_eq!(printed.iter().filter(|p| p.job_id == held_print).count(), 1);
    assert!(control.pull_job(&bobs).unwrap().waiting, "not Bob's");
}
