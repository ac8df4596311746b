//! Test helpers shared by the graph module's unit tests: a client pointed at a wiremock server, and a
//! recorder that observes attempts and replaces sleeping by recording the delay (wiremock serves on
//! real sockets, so tokio's paused time would fire request timeouts early; recording the chosen delay
//! tests the same decision without waiting).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use serde_json::json;
use url::Url;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request as Received, ResponseTemplate};

use super::auth::Credential;
use super::client::{GraphClient, GraphOptions};
use super::clouds::Cloud;
use super::observer::GraphObserver;
use super::retry::Sleeper;
use crate::clock::ManualClock;

/// One observed attempt: operation, status (if a response came) and attempt number.
pub(crate) type Attempt = (&'static str, Option<u16>, u32);

/// Records sleeps, token refreshes and attempts.
#[derive(Debug, Clone, Default)]
pub(crate) struct Recorder {
    sleeps: Arc<Mutex<Vec<Duration>>>,
    refreshes: Arc<Mutex<u32>>,
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl Recorder {
    pub(crate) fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().expect("not poisoned").clone()
    }

    pub(crate) fn refreshes(&self) -> u32 {
        *self.refreshes.lock().expect("not poisoned")
    }

    pub(crate) fn attempts(&self) -> Vec<Attempt> {
        self.attempts.lock().expect("not poisoned").clone()
    }

    pub(crate) fn sleeper(&self) -> Sleeper {
        let sleeps = self.sleeps.clone();
        Arc::new(move |delay| {
            sleeps.lock().expect("not poisoned").push(delay);
            Box::pin(async {})
        })
    }
}

impl GraphObserver for Recorder {
    fn on_response(
        &self,
        operation: &'static str,
        status: Option<u16>,
        _latency: Duration,
        attempt: u32,
    ) {
        self.attempts
            .lock()
            .expect("not poisoned")
            .push((operation, status, attempt));
    }

    fn on_token_refresh(&self) {
        *self.refreshes.lock().expect("not poisoned") += 1;
    }
}

/// Options for a client talking to `server` for both Graph and login (`/login/tenant/…`).
pub(crate) fn options_for(server: &MockServer, recorder: &Recorder) -> GraphOptions {
    let base = Url::parse(&server.uri()).expect("wiremock gives a URL");
    let mut options = GraphOptions::new(
        Cloud::Global,
        "tenant",
        "client-1",
        Credential::ClientSecret(SecretString::from("s3cret")),
    );
    options.login_url = Some(base.join("/login").expect("a path joins"));
    options.base_url = Some(base);
    options.request_timeout = Duration::from_secs(5);
    options.clock = ManualClock::new(time::macros::datetime!(2026-03-01 12:00 UTC));
    options.observer = Some(Arc::new(recorder.clone()));
    options.sleeper = recorder.sleeper();
    options
}

pub(crate) fn client_for(server: &MockServer, recorder: &Recorder) -> GraphClient {
    GraphClient::new(options_for(server, recorder)).expect("test options are valid")
}

/// The token endpoint's path under the mock server (tenant `tenant`).
pub(crate) const TOKEN_PATH: &str = "/login/tenant/oauth2/v2.0/token";
/// The path of job `j1` on printer `p1`.
pub(crate) const JOB_PATH: &str = "/v1.0/print/printers/p1/jobs/j1";

/// A token endpoint answer with `access_token`, valid `expires_in` seconds.
pub(crate) fn token(access_token: &str, expires_in: u64) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(
        json!({"token_type": "Bearer", "expires_in": expires_in, "access_token": access_token}),
    )
}

/// Mounts the token endpoint, expected to be called `expected_calls` times.
pub(crate) async fn token_endpoint(server: &MockServer, expected_calls: u64) {
    Mock::given(method("POST"))
        .and(path(TOKEN_PATH))
        .respond_with(token("app-token", 3600))
        .expect(expected_calls)
        .mount(server)
        .await;
}

/// A held printJob as Graph returns it.
pub(crate) fn job_json() -> serde_json::Value {
    json!({"id": "j1", "createdDateTime": "2026-03-01T11:00:00Z", "configuration": {"copies": 1},
           "createdBy": {"userPrincipalName": "ada@contoso.com"},
           "status": {"state": "paused", "description": "held", "details": ["releaseWait"]},
           "documents": [{"id": "d1", "displayName": "report.pdf", "contentType": "application/pdf", "size": 10}]})
}

/// A Graph error answer with `code`, a `request-id` header and an `innerError`.
pub(crate) fn graph_error(status: u16, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("request-id", "req-42")
        .set_body_json(json!({"error": {"code": code, "message": "Please retry again later.",
                              "innerError": {"request-id": "inner-42", "date": "2026-03-01T12:00:00"}}}))
}

/// The `client-request-id` header a request carried.
pub(crate) fn client_request_id(request: &Received) -> String {
    request
        .headers
        .get("client-request-id")
        .expect("every request carries a client-request-id")
        .to_str()
        .expect("the client-request-id is ASCII")
        .to_owned()
}

/// The requests that reached Graph (not the token endpoint), in order.
pub(crate) async fn graph_requests(server: &MockServer) -> Vec<Received> {
    let all = server
        .received_requests()
        .await
        .expect("wiremock records requests");
    all.into_iter()
        .filter(|request| request.url.path().starts_with("/v1.0/"))
        .collect()
}
