//! Shared test bed of the station tests: an in-process emulator with a held printer ("Queue", carrying
//! our trigger) and a second one ("Lobby", a find-me destination), a users file with two people, and
//! the whole daemon (`App`) serving the station API on a free port, with two stations (one at each
//! printer) and an admin key. The world and the configuration come from the emulator's scenario
//! builder (`pullprintd::emulator::scenario`).
#![allow(dead_code, clippy::unwrap_used)]

use std::net::SocketAddr;

use pullprintd::app::AppOptions;
use pullprintd::emulator::scenario::{
    Person, PrinterSpec, RunningDaemon, Scenario, StationSpec, write_users_file,
};
use pullprintd::emulator::{Emulator, NewJob};
use pullprintd::intake::poller::Poller;
use pullprintd::store::DiscoveredVia;
use serde_json::{Value, json};
use tempfile::TempDir;

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
    daemon: RunningDaemon,
}

impl Bed {
    /// Starts everything; `extra` is TOML appended to the configuration (e.g. `[release]` keys).
    pub async fn start(extra: &str) -> Bed {
        Self::start_with(extra, &[], AppOptions::default()).await
    }

    /// Like [`Bed::start`], with lines added to sections of the configuration (`("[api]", "…")`,
    /// `("[intake]", "…")`) and the daemon's options (an injected clock).
    pub async fn start_with(extra: &str, sections: &[(&str, &str)], options: AppOptions) -> Bed {
        Self::start_full(extra, sections, options, &[], &[]).await
    }

    /// Like [`Bed::start`], with Entra ID sign-in on (`[phone]`, its public address the stations'
    /// listener, on a port chosen first) and the redirect URI registered on the emulator's app.
    pub async fn start_phone(extra: &str) -> Bed {
        Self::start_phone_with(extra, AppOptions::default()).await
    }

    /// Like [`Bed::start_phone`], with one pull-print printer (`pull_id`, the queue printer its
    /// member) in `[printing] pull_printers`.
    pub async fn start_phone_with_pull(pull_id: &str) -> Bed {
        let pull = format!("pull_printers = [\"{pull_id}\"]");
        let bed = Self::start_phone_full("", &[("[printing]", &pull)], AppOptions::default()).await;
        bed.emulator
            .control()
            .create_pull_printer(pullprintd::emulator::NewPullPrinter {
                id: Some(pull_id.to_owned()),
                display_name: "Follow-me".to_owned(),
                include_all_printers: false,
                members: vec![bed.queue.clone()],
            })
            .unwrap();
        bed
    }

    /// Like [`Bed::start_phone`], with the daemon's options (an injected clock).
    pub async fn start_phone_with(extra: &str, options: AppOptions) -> Bed {
        Self::start_phone_full(extra, &[], options).await
    }

    async fn start_phone_full(extra: &str, sections: &[(&str, &str)], options: AppOptions) -> Bed {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let public = format!("http://127.0.0.1:{port}");
        let extra = format!("{extra}\n[phone]\nenabled = true\npublic_url = \"{public}\"\n");
        let bed = Self::start_inner(&extra, sections, options, &[], &[], Some(port)).await;
        bed.emulator
            .control()
            .add_redirect_uri(
                pullprintd::emulator::DEMO_CLIENT_ID,
                &format!("{public}/phone/callback"),
            )
            .unwrap();
        bed
    }

    /// Like [`Bed::start`], with delegations in the users file: `(owner, delegate)` pairs.
    pub async fn start_with_delegates(extra: &str, delegates: &[(&str, &str)]) -> Bed {
        Self::start_full(extra, &[], AppOptions::default(), delegates, &[]).await
    }

    /// Like [`Bed::start`], with `delegate_group`s in the users file: `(owner, group id)` pairs.
    pub async fn start_with_delegate_groups(groups: &[(&str, &str)]) -> Bed {
        Self::start_full("", &[], AppOptions::default(), &[], groups).await
    }

    async fn start_full(
        extra: &str,
        sections: &[(&str, &str)],
        options: AppOptions,
        delegates: &[(&str, &str)],
        delegate_groups: &[(&str, &str)],
    ) -> Bed {
        Self::start_inner(extra, sections, options, delegates, delegate_groups, None).await
    }

    async fn start_inner(
        extra: &str,
        sections: &[(&str, &str)],
        options: AppOptions,
        delegates: &[(&str, &str)],
        delegate_groups: &[(&str, &str)],
        port: Option<u16>,
    ) -> Bed {
        let dir = tempfile::tempdir().unwrap();
        let mut scenario = Scenario::default();
        if port.is_some() {
            // Entra ID sign-in beds record every Graph request, to check them against Microsoft's schema.
            scenario.options.record_path = Some(dir.path().join("graph-requests.jsonl"));
        }
        let tenant = scenario
            // In the directory too: an Entra ID sign-in ([phone]) finds them there.
            .person(ADA, "Ada Lovelace")
            .person(BOB, "Bob Baker")
            .printer("Queue", true)
            .printer_spec(PrinterSpec {
                name: "Lobby".to_owned(),
                holds_jobs: false,
                capabilities: Some(json!({
                    "copiesPerJob": {"start": 1, "end": 10},
                    "duplexModes": ["oneSided", "flipOnLongEdge"],
                    "colorModes": ["blackAndWhite", "grayscale"],
                    "mediaSizes": ["A4"]
                })),
            })
            .start()
            .await
            .expect("emulator starts");
        let queue = tenant.printer("Queue").to_owned();
        let lobby = tenant.printer("Lobby").to_owned();
        let users = dir.path().join("users.toml");
        let person = |upn: &str, name: &str, card: &str, pin: &str| Person {
            upn: upn.to_owned(),
            display_name: name.to_owned(),
            card: card.to_owned(),
            pin: Some(pin.to_owned()),
            delegates: delegates
                .iter()
                .filter(|(owner, _)| *owner == upn)
                .map(|(_, delegate)| (*delegate).to_owned())
                .collect(),
            delegate_group: delegate_groups
                .iter()
                .find(|(owner, _)| *owner == upn)
                .map(|(_, group)| (*group).to_owned()),
        };
        write_users_file(
            &users,
            "",
            &[
                person(ADA, "Ada Lovelace", ADA_CARD, ADA_PIN),
                person(BOB, "Bob Baker", BOB_CARD, BOB_PIN),
            ],
        )
        .unwrap();
        let mut config = tenant.daemon_config(&dir.path().join("state.db"));
        config.request_timeout = Some("5s".to_owned());
        config.intake = "mode = \"poll\"\npoll_interval = \"1h\"".to_owned();
        config.stations = vec![
            StationSpec {
                id: "queue".to_owned(),
                printer_id: queue.clone(),
                key: QUEUE_KEY.to_owned(),
            },
            StationSpec {
                id: "lobby".to_owned(),
                printer_id: lobby.clone(),
                key: LOBBY_KEY.to_owned(),
            },
        ];
        config.admin_key = Some(ADMIN_KEY.to_owned());
        if let Some(port) = port {
            config.listen = format!("127.0.0.1:{port}");
        }
        // `[users]` and `[release]` come last so tests can set their keys through `extra`.
        config.extra = if extra.contains("[users]") {
            extra.replace(
                "[users]",
                &format!("[users]\nfile = \"{}\"", users.display()),
            )
        } else {
            config.users_file = Some(users);
            extra.to_owned()
        };
        let mut text = config.to_toml();
        for (header, lines) in sections {
            text = text.replacen(
                &format!("\n{header}\n"),
                &format!("\n{header}\n{lines}\n"),
                1,
            );
        }
        let settings = pullprintd::config::Settings::from_toml(&text).unwrap();
        let daemon = RunningDaemon::start(settings, options).await.unwrap();
        Bed {
            emulator: tenant.emulator.clone(),
            dir,
            queue,
            lobby,
            addr: daemon.addr,
            admin: daemon.admin_addr,
            intake_addr: daemon.intake_addr,
            http: reqwest::Client::new(),
            sessions: std::sync::Mutex::default(),
            poller: daemon.poller.clone(),
            store: daemon.store.clone(),
            daemon,
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

    /// The Graph requests an Entra ID sign-in bed recorded so far (its emulator's request log).
    pub fn graph_request_log(&self) -> std::path::PathBuf {
        self.dir.path().join("graph-requests.jsonl")
    }

    /// An app-only Graph token of the daemon's app registration, from the emulator.
    pub async fn app_token(&self) -> String {
        let answer: Value = self
            .http
            .post(self.emulator.token_url())
            .form(&[
                ("client_id", pullprintd::emulator::DEMO_CLIENT_ID),
                ("client_secret", pullprintd::emulator::DEMO_CLIENT_SECRET),
                ("grant_type", "client_credentials"),
                (
                    "scope",
                    &format!(
                        "{}/.default",
                        self.emulator.graph_url().trim_end_matches("/v1.0")
                    ),
                ),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["access_token"].as_str().unwrap().to_owned()
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
        self.daemon.stop().await.unwrap();
        self.emulator.shutdown().await;
    }
}
