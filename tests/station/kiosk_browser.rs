//! The kiosk page end to end in headless Chromium (through chromedriver's WebDriver protocol, spoken
//! with plain reqwest calls) against the real daemon and the emulator: set up the station key, sign in
//! by card, see only one's own job, change copies and duplex, release, and check on the emulator that
//! the job's configuration and task changed; "Print all" signs out; the idle countdown; and a daemon
//! unreachable behind a proxy (502) does not make the kiosk forget its station key. A screenshot of
//! each step is saved under `target/kiosk-screenshots/`.
//!
//! Chromium is an external process: waiting for the page polls its state with a bounded deadline.
//! Without Chromium the test is skipped with a message, except under `CI=true`, where it fails.
#![allow(clippy::unwrap_used)]

use crate::station_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use station_support::*;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const ENTER: &str = "\u{E007}";

fn find_binary(candidates: &[&str]) -> Option<PathBuf> {
    candidates.iter().map(PathBuf::from).find(|p| p.is_file())
}

/// chromedriver, killed when dropped.
struct Driver {
    child: Child,
    url: String,
    http: reqwest::Client,
    session: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start(chromium: &Path, chromedriver: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        while http.get(format!("{url}/status")).send().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "chromedriver did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--window-size=1024,900".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let created: Value = http
            .post(format!("{url}/session"))
            .json(&json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {"binary": chromium, "args": args}
            }}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {created}"))
            .to_owned();
        Driver {
            child,
            url,
            http,
            session,
            _profile: profile,
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.url, self.session);
        let mut request = self.http.request(method, url);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The element matching `css`, waiting for it to exist and be displayed.
    async fn element(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let found = self
                .call(
                    reqwest::Method::POST,
                    "/element",
                    Some(json!({"using": "css selector", "value": css})),
                )
                .await;
            if let Some(id) = found[ELEMENT].as_str() {
                let shown = self
                    .call(
                        reqwest::Method::GET,
                        &format!("/element/{id}/displayed"),
                        None,
                    )
                    .await;
                if shown == json!(true) {
                    return id.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "no visible element matches `{css}`"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn elements(&self, css: &str) -> Vec<String> {
        let found = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        found
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e[ELEMENT].as_str().unwrap().to_owned())
            .collect()
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn text(&self, css: &str) -> String {
        let id = self.element(css).await;
        let text = self
            .call(reqwest::Method::GET, &format!("/element/{id}/text"), None)
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until the element's text contains `expected`.
    async fn wait_text(&self, css: &str, expected: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = self.text(css).await;
            if text.contains(expected) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` says `{text}`, not `{expected}`"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn screenshot(&self, name: &str) {
        let png = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }

    async fn quit(&self) {
        self.http
            .delete(format!("{}/session/{}", self.url, self.session))
            .send()
            .await
            .unwrap();
    }
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("kiosk-screenshots")
}

#[tokio::test]
async fn a_person_releases_their_job_from_the_kiosk_page_with_changed_copies_and_duplex() {
    let chromium = find_binary(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"]);
    let chromedriver = find_binary(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Chromium and chromedriver are required under CI: apt-get install -y chromium chromium-driver"
        );
        eprintln!(
            "SKIPPED: the kiosk browser test needs chromium and chromium-driver (apt-get install -y chromium chromium-driver)"
        );
        return;
    };
    let bed = Bed::start("").await;
    let (job, print_job) = bed
        .held_job(
            ADA,
            "quarterly-report.pdf",
            json!({"copies": 1, "duplexMode": "oneSided", "colorMode": "color"}),
        )
        .await;
    bed.held_job(BOB, "bob-private.pdf", json!({"copies": 1}))
        .await;
    let driver = Driver::start(&chromium, &chromedriver).await;

    driver.goto(&bed.url("/")).await;
    driver.element("#station-key").await;
    driver.screenshot("01-setup").await;
    driver
        .type_into("#station-key", &format!("{QUEUE_KEY}{ENTER}"))
        .await;

    driver.element("#card").await;
    driver.wait_text("#station-name", "Queue").await;
    driver.screenshot("02-sign-in").await;
    driver
        .type_into("#card", &format!("{ADA_CARD}{ENTER}"))
        .await;

    driver.wait_text("#user-name", "Ada Lovelace").await;
    let list = driver.wait_text("#job-list", "quarterly-report.pdf").await;
    assert!(
        !list.contains("bob-private.pdf"),
        "another person's job is shown: {list}"
    );
    assert_eq!(driver.elements("li.job").await.len(), 1);
    driver.screenshot("03-jobs").await;

    driver.type_into("li.job .copies", "2").await;
    driver
        .click("li.job select.duplex option[value=flipOnLongEdge]")
        .await;
    driver.screenshot("04-options-changed").await;
    driver.click("li.job button.release").await;
    driver.wait_text("#status", "Released").await;
    driver.wait_text("#no-jobs", "Nothing to print").await;
    driver.screenshot("05-released").await;

    let printed = bed.emulator.control().job(&print_job).unwrap();
    assert_eq!(printed.configuration["copies"], 2);
    assert_eq!(printed.configuration["duplexMode"], "flipOnLongEdge");
    assert_eq!(printed.configuration["colorMode"], "color");
    let task = bed
        .emulator
        .control()
        .tasks()
        .into_iter()
        .find(|t| t.id == job)
        .unwrap();
    assert_eq!(task.state, "completed");

    driver.click("#signout").await;
    driver.element("#card").await;
    driver.wait_text("#status", "Signed out").await;
    driver.screenshot("06-signed-out").await;
    driver.quit().await;
    bed.stop().await;
}

#[tokio::test]
async fn the_kiosk_prints_all_after_a_pin_sign_in_then_signs_out_and_shows_a_countdown_when_idle() {
    let chromium = find_binary(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"]);
    let chromedriver = find_binary(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Chromium and chromedriver are required under CI: apt-get install -y chromium chromium-driver"
        );
        eprintln!("SKIPPED: the kiosk browser test needs chromium and chromium-driver");
        return;
    };
    // The shortest idle time the configuration allows: the page signs out when it passes.
    let bed = Bed::start("[users]\nsession_idle = \"10s\"\n").await;
    let (_, first) = bed.held_job(ADA, "one.pdf", json!({"copies": 1})).await;
    let (_, second) = bed.held_job(ADA, "two.pdf", json!({"copies": 1})).await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.goto(&bed.url("/")).await;
    driver
        .type_into("#station-key", &format!("{QUEUE_KEY}{ENTER}"))
        .await;
    driver.type_into("#upn", ADA).await;
    driver.type_into("#pin", &format!("{ADA_PIN}{ENTER}")).await;
    driver.wait_text("#job-list", "two.pdf").await;
    driver.wait_text("#countdown", "Signing out in").await;
    driver.click("#release-all").await;
    // Print all ends the session: the next person finds the sign-in screen, not Ada's jobs.
    driver.wait_text("#status", "Released 2").await;
    driver.wait_text("#status", "Signed out").await;
    driver.element("#card").await;
    driver.screenshot("07-printed-all-signed-out").await;
    for job in [first, second] {
        assert_eq!(
            bed.emulator.control().job(&job).unwrap().state,
            "completed",
            "{job}"
        );
    }

    // Left idle: the countdown runs down (by the page's own clock, from the server's relative idle
    // time) and the page signs out by itself.
    bed.held_job(ADA, "three.pdf", json!({"copies": 1})).await;
    driver.type_into("#upn", ADA).await;
    driver.type_into("#pin", &format!("{ADA_PIN}{ENTER}")).await;
    driver.wait_text("#job-list", "three.pdf").await;
    let shown = driver.wait_text("#countdown", "Signing out in").await;
    let seconds: u64 = shown
        .trim_start_matches("Signing out in ")
        .trim_end_matches(" s")
        .parse()
        .unwrap();
    assert!((1..=10).contains(&seconds), "{shown}");
    driver.screenshot("08-countdown").await;
    let deadline = Instant::now() + Duration::from_secs(25);
    loop {
        if driver
            .text("#status")
            .await
            .contains("Signed out after inactivity")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the kiosk did not sign out by itself"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    driver.element("#card").await;
    driver.screenshot("09-signed-out-idle").await;
    driver.quit().await;
    bed.stop().await;
}

/// A reverse proxy in front of the daemon that answers 502 while `down`, as nginx does while the
/// daemon restarts.
async fn flaky_proxy(upstream: String, down: Arc<AtomicBool>) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let http = reqwest::Client::new();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (http, upstream, down) = (http.clone(), upstream.clone(), down.clone());
        async move {
            use axum::response::IntoResponse;
            if down.load(Ordering::SeqCst) {
                return (axum::http::StatusCode::BAD_GATEWAY, "502 Bad Gateway").into_response();
            }
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20)
                .await
                .unwrap_or_default();
            let url = format!(
                "{upstream}{}",
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            );
            let mut forwarded = http.request(parts.method, url).body(body);
            for (name, value) in &parts.headers {
                if name != axum::http::header::HOST {
                    forwarded = forwarded.header(name, value);
                }
            }
            match forwarded.send().await {
                Ok(answer) => {
                    let status = answer.status();
                    let headers = answer.headers().clone();
                    let bytes = answer.bytes().await.unwrap_or_default();
                    let mut response = (status, bytes).into_response();
                    for (name, value) in &headers {
                        if name != axum::http::header::CONTENT_LENGTH
                            && name != axum::http::header::TRANSFER_ENCODING
                        {
                            response.headers_mut().insert(name, value.clone());
                        }
                    }
                    response
                }
                Err(_) => (axum::http::StatusCode::BAD_GATEWAY, "502 Bad Gateway").into_response(),
            }
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

#[tokio::test]
async fn the_kiosk_keeps_its_station_key_while_the_daemon_is_unreachable_and_carries_on_after() {
    let chromium = find_binary(&["/usr/lib/chromium/chromium", "/usr/bin/chromium"]);
    let chromedriver = find_binary(&["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]);
    let (Some(chromium), Some(chromedriver)) = (chromium, chromedriver) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Chromium and chromedriver are required under CI: apt-get install -y chromium chromium-driver"
        );
        eprintln!("SKIPPED: the kiosk browser test needs chromium and chromium-driver");
        return;
    };
    let bed = Bed::start("").await;
    let down = Arc::new(AtomicBool::new(false));
    let proxy = flaky_proxy(format!("http://{}", bed.addr), Arc::clone(&down)).await;
    let driver = Driver::start(&chromium, &chromedriver).await;
    driver.goto(&format!("http://{proxy}/")).await;
    driver
        .type_into("#station-key", &format!("{QUEUE_KEY}{ENTER}"))
        .await;
    driver.wait_text("#station-name", "Queue").await;

    // The daemon restarts behind the proxy: the kiosk's station check meets a 502.
    down.store(true, Ordering::SeqCst);
    driver
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "checkStation(); return null;", "args": []})),
        )
        .await;
    driver
        .wait_text("#status", "Waiting for the print server")
        .await;
    driver.screenshot("10-daemon-unreachable").await;
    let kept = driver
        .call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": "return localStorage.getItem('pullprintd.stationKey');", "args": []})),
        )
        .await;
    assert_eq!(
        kept,
        json!(QUEUE_KEY),
        "a 502 does not un-configure the kiosk"
    );

    // Back up: the kiosk retries by itself and people sign in as before.
    down.store(false, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(20);
    while driver.text("#status").await.contains("Waiting") {
        assert!(Instant::now() < deadline, "the kiosk did not retry");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    driver
        .type_into("#card", &format!("{ADA_CARD}{ENTER}"))
        .await;
    driver.wait_text("#user-name", "Ada Lovelace").await;
    driver.quit().await;
    bed.stop().await;
}
