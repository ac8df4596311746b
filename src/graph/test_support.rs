//! Test helpers shared by the graph module's unit tests: a client pointed at a wiremock server, and a
//! recorder that observes attempts and replaces sleeping by recording the delay (wiremock serves on
//! real sockets, so tokio's paused time would fire request timeouts early; recording the chosen delay
//! tests the same decision without waiting).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use secrecy::SecretString;
use url::Url;
use wiremock::MockServer;

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
