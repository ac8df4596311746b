//! Shared test bed of the station tests: an in-process emulator with a held printer ("Queue", carrying
//! our trigger) and a second one ("Lobby", a find-me destination), a users file with two people, and
//! the whole daemon ([`App`]) serving the station API on a free port, with two stations (one at each
//! printer) and an admin key.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use pullprintd::app::{App, AppOptions};
use pullprintd::emulator::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorOptions, NewJob, NewPrinter,
};
use pullprintd::intake::poller::Poller;
use pullprintd::store::DiscoveredVia;
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub const QUEUE_KEY: &str = "queue-station-key-0123456789";
pub const LOBBY_KEY: &str = "lobby-station-key-0123456789";
pub const ADMIN_KEY: &str = "admin-key-0123456789abcdef";
pub const ADA: &str = "ada@contoso.com";
pub const ADA_CARD: &str = "0004521337";
pub const ADA_PIN: &str = "2468";
pub const BOB: &str = "bob@contoso.com";
pub const BOB_CARD: &str = "0009990001";
pub const BOB_PIN: &str = "1357";

/// The running daemon and emulator.
pub struct Bed {
    pub emulator: Emulator,
    pub dir: TempDir,
    pub queue: String,
    pub lobby: String,
    pub addr: SocketAddr,
    /// The admin API and `/metrics` listener.
    pub admin: SocketAddr,
    /// The webhook's own listener, when `[intake] listen` was given.
    pub intake_addr: Option<SocketAddr>,
    pub http: reqwest::Client,
    /// Session token → the key of the station it was made at (sent as `X-Station-Key`).
    sessions: std::sync::Mutex<std::collections::HashMap<String, String>>,
    poller: Poller,
    pub store: pullprintd::store::Store,
    stop: CancellationToken,
    running: JoinHandle<()>,
}

impl Bed {
    /// Starts everything; `extra` is TOML appended to the configuration (e.g. `[release]` keys).
    pub async fn start(extra: &str) -> Bed {
        Self::start_with(extra, &[], AppOptions::default()).await
    }

    /// Like [`Bed::start`], with lines added to sections of the configuration (`("[api]", "…")`,
    /// `("[intake]", "…")`) and the daemon's options (an injected clock).
    pub async fn start_with(extra: &str, sections: &[(&str, &str)], options: AppOptions) -> Bed {
        let emulator = Emulator::start(EmulatorOptions::default())
            .await
            .expect("emulator starts");
        let control = emulator.control();
        let printer = |name: &str, capabilities: Option<Value>| {
            control
                .create_printer(NewPrinter {
                    display_name: name.into(),
                    capabilities,
                    ..NewPrinter::default()
                })
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let queue = printer("Queue", None);
        let lobby = printer(
            "Lobby",
            Some(json!({
                "copiesPerJob": {"start": 1, "end": 10},
                "duplexModes": ["oneSided", "flipOnLongEdge"],
                "colorModes": ["blackAndWhite", "grayscale"],
                "mediaSizes": ["A4"]
            })),
        );
        let definition = control.create_task_definition(None, "Pull printing");
        control.create_trigger(&queue, &definition).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.toml");
        let ada_hash = pullprintd::station::users::hash_pin(ADA_PIN).unwrap();
        let bob_hash = pullprintd::station::users::hash_pin(BOB_PIN).unwrap();
        std::fs::write(
            &users,
            format!(
                "[[user]]\nupn = \"{ADA}\"\ndisplay_name = \"Ada Lovelace\"\ncard = \"{ADA_CARD}\"\npin_hash = \"{ada_hash}\"\n\n\
                 [[user]]\nupn = \"{BOB}\"\ndisplay_name = \"Bob Baker\"\ncard = \"{BOB_CARD}\"\npin_hash = \"{bob_hash}\"\n"
            ),
        )
        .unwrap();
        let root = emulator.url().as_str().trim_end_matches('/').to_owned();
        let text = format!(
            r#"
[graph]
tenant_id = "{tenant}"
client_id = "{DEMO_CLIENT_ID}"
client_secret = "{DEMO_CLIENT_SECRET}"
base_url = "{root}"
login_url = "{root}"
request_timeout = "5s"

[printing]
task_definition_id = "{definition}"
queue_printers = ["{queue}"]

[intake]
mode = "poll"
poll_interval = "1h"

[[stations]]
id = "queue"
printer_id = "{queue}"
key = "{QUEUE_KEY}"

[[stations]]
id = "lobby"
printer_id = "{lobby}"
key = "{LOBBY_KEY}"

[api]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
admin_key = "{ADMIN_KEY}"

[store]
path = "{store}"
{extra}
"#,
            tenant = emulator.tenant_id(),
            store = dir.path().join("state.db").display(),
        );
        let mut text = text;
        for (header, lines) in sections {
            text = text.replacen(
                &format!("\n{header}\n"),
                &format!("\n{header}\n{lines}\n"),
                1,
            );
        }
        // `[users]` and `[release]` come last so tests can override them through `extra`.
        let text = if extra.contains("[users]") {
            text.replace(
                "[users]",
                &format!("[users]\nfile = \"{}\"", users.display()),
            )
        } else {
            format!("{text}\n[users]\nfile = \"{}\"\n", users.display())
        };
        let settings = pullprintd::config::Settings::from_toml(&text).unwrap();
        let app = App::build(settings, options).await.unwrap();
        let intake_addr = app.intake_addr();
        let addr = app.local_addr();
        let admin = app.admin_addr();
        let poller = app.poller();
        let store = app.store();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let running = tokio::spawn(async move {
            app.run_until_stopped(token).await.unwrap();
        });
        Bed {
            emulator,
            dir,
            queue,
            lobby,
            addr,
            admin,
            intake_addr,
            http: reqwest::Client::new(),
            sessions: std::sync::Mutex::default(),
            poller,
            store,
            stop,
            running,
        }
    }

    /// The URL of `path` on the listener that serves it: the admin API, the audit log and
    /// `/metrics` on the admin listener, everything else on the stations' listener.
    pub fn url(&self, path: &str) -> String {
        let admin = ["/api/v1/admin", "/api/v1/audit", "/metrics"]
            .iter()
            .any(|p| path.starts_with(p));
        let addr = if admin { self.admin } else { self.addr };
        format!("http://{addr}{path}")
    }

    /// The URL of `path` on the stations' listener, whatever the path.
    pub fn station_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A sample of the admin listener's `/metrics` (0 when the series is absent).
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .http
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find_map(|line| {
                let rest = line.strip_prefix(series)?;
                rest.strip_prefix(' ')?.trim().parse().ok()
            })
            .unwrap_or(0.0)
    }

    /// Submits a job as `upn` on the queue printer and waits until intake holds it; returns its API id
    /// (the task id).
    pub async fn held_job(&self, upn: &str, name: &str, configuration: Value) -> (String, String) {
        let submitted = self
            .emulator
            .control()
            .submit_job(NewJob {
                printer_id: self.queue.clone(),
                user_principal_name: upn.into(),
                user_display_name: None,
                document_name: Some(name.into()),
                configuration: Some(configuration),
            })
            .unwrap();
        let task = submitted
            .task_id
            .expect("the queue printer has our trigger");
        self.poller.poll(DiscoveredVia::Poll).await.unwrap();
        // The daemon's own start-up reconciliation may have claimed the task first; then this poll
        // skips it and the reconciliation stores it a moment later. Wait for the job to be held.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.store.held_job(&task).await.unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the job is held within 10 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        (task, submitted.job_id)
    }

    /// Signs in at the station with `key`; returns the session token.
    pub async fn sign_in(&self, key: &str, body: Value) -> String {
        let response = self.post(key, "/api/v1/sessions", body).await;
        assert_eq!(response.status(), 201, "sign-in answers 201");
        let created: Value = response.json().await.unwrap();
        let token = created["token"].as_str().unwrap().to_owned();
        self.sessions
            .lock()
            .unwrap()
            .insert(token.clone(), key.to_owned());
        token
    }

    /// The request with `bearer`, and its station's key when `bearer` is a session token.
    fn authorised(
        &self,
        request: reqwest::RequestBuilder,
        bearer: &str,
    ) -> reqwest::RequestBuilder {
        let request = request.bearer_auth(bearer);
        match self.sessions.lock().unwrap().get(bearer) {
            Some(key) => request.header("x-station-key", key),
            None => request,
        }
    }

    pub async fn post(&self, bearer: &str, path: &str, body: Value) -> reqwest::Response {
        self.authorised(self.http.post(self.url(path)), bearer)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, bearer: &str, path: &str) -> reqwest::Response {
        self.authorised(self.http.get(self.url(path)), bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn delete(&self, bearer: &str, path: &str) -> reqwest::Response {
        self.authorised(self.http.delete(self.url(path)), bearer)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.running.await.unwrap();
        self.emulator.shutdown().await;
    }
}
