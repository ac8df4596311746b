//! Shared bench bed: an in-process Universal Print emulator on loopback with a held printer ("Queue",
//! carrying our trigger) and a find-me printer ("Lobby"); a users file with `users` people (card
//! sign-in); and the whole daemon (`App`) serving its API on a free port, in poll mode with a poll
//! interval so long that only the benchmark decides when the task list is read. The world and the
//! configuration come from the emulator's scenario builder (`pullprintd::emulator::scenario`).
//!
//! Also the small helpers every benchmark prints its figures with: percentiles, a human table and
//! one JSON line (`BENCH {...}`) a script can pick up.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use pullprintd::app::AppOptions;
use pullprintd::emulator::scenario::{
    Person, RunningDaemon, Scenario, StationSpec, Tenant, write_users_file,
};
use pullprintd::emulator::{Emulator, EmulatorOptions, Faults, NewJob, RouteFault, SubmittedJob};
use pullprintd::intake::poller::Poller;
use pullprintd::store::Store;
use serde_json::{Value, json};
use tempfile::TempDir;

/// The station at the queue printer (same-printer releases).
pub const QUEUE_KEY: &str = "bench-queue-station-key-0123456789";
/// The station at the lobby printer (find-me releases).
pub const LOBBY_KEY: &str = "bench-lobby-station-key-0123456789";
/// The admin key.
pub const ADMIN_KEY: &str = "bench-admin-key-0123456789abcdef";
/// `graph.max_concurrent_requests` in every bench (the default).
pub const MAX_CONCURRENT: usize = 16;

/// The UPN of bench user `i`.
pub fn upn(i: usize) -> String {
    format!("user{i:04}@contoso.example")
}

/// The badge card of bench user `i`.
pub fn card(i: usize) -> String {
    format!("9{i:07}")
}

/// Everything a bench needs, running.
pub struct Bed {
    pub emulator: Emulator,
    pub dir: TempDir,
    pub queue: String,
    pub lobby: String,
    pub definition: String,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    /// Session token → the key of the station it was made at (sent as `X-Station-Key`) and the
    /// instance that made it (sessions live in that instance).
    sessions: std::sync::Mutex<std::collections::HashMap<String, (String, SocketAddr)>>,
    pub poller: Poller,
    pub store: Store,
    daemon: RunningDaemon,
    /// Further instances on the same PostgreSQL store, and every instance's API address (user `i`
    /// signs in at instance `i % n`, as a load balancer keeping kiosks on one instance would).
    others: Vec<RunningDaemon>,
    addrs: Vec<SocketAddr>,
    /// The PostgreSQL database, dropped last.
    _scratch: Option<pullprintd::store::scratch::ScratchDatabase>,
}

/// Where a bench's store lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchStore {
    /// A SQLite file: one instance.
    Sqlite,
    /// A scratch PostgreSQL database shared by this many instances.
    Postgres(usize),
}

/// Faults with only a per-call latency on every Graph route.
pub fn latency(ms: u64) -> Faults {
    Faults {
        routes: vec![RouteFault {
            route: "*".to_owned(),
            latency_ms: ms,
            ..RouteFault::default()
        }],
        ..Faults::default()
    }
}

/// An emulator with the Queue (held) and Lobby printers and our task definition.
pub async fn emulator() -> (Emulator, Ids) {
    let tenant = Scenario::queue_and_lobby()
        .options(EmulatorOptions {
            // 10,000 tasks in 100 pages, as Graph's own default page is about this size.
            page_size: 100,
            ..EmulatorOptions::default()
        })
        .start()
        .await
        .expect("the emulator starts on loopback with our printers and trigger");
    let ids = Ids {
        queue: tenant.printer("Queue").to_owned(),
        lobby: tenant.printer("Lobby").to_owned(),
        definition: tenant.definition.clone(),
        tenant,
    };
    (ids.tenant.emulator.clone(), ids)
}

/// The ids an [`emulator`] was set up with.
#[derive(Debug, Clone)]
pub struct Ids {
    pub tenant: Tenant,
    pub queue: String,
    pub lobby: String,
    pub definition: String,
}

/// The daemon's configuration against the emulator of `ids`, for `users` people; `intake` is the
/// `[intake]` body; the store and users file go into `dir`.
pub fn settings_toml(
    dir: &std::path::Path,
    ids: &Ids,
    users: usize,
    intake: &str,
    listen: &str,
) -> String {
    let users_file = dir.join("users.toml");
    let people: Vec<Person> = (0..users)
        .map(|i| Person {
            upn: upn(i),
            display_name: format!("User {i}"),
            card: card(i),
            pin: None,
            delegates: Vec::new(),
            delegate_group: None,
        })
        .collect();
    write_users_file(&users_file, "", &people).expect("the users file is written");
    let mut config = ids.tenant.daemon_config(&dir.join("state.db"));
    config.max_concurrent_requests = Some(MAX_CONCURRENT);
    config.intake = intake.to_owned();
    config.stations = vec![
        StationSpec {
            id: "queue".to_owned(),
            printer_id: ids.queue.clone(),
            key: QUEUE_KEY.to_owned(),
        },
        StationSpec {
            id: "lobby".to_owned(),
            printer_id: ids.lobby.clone(),
            key: LOBBY_KEY.to_owned(),
        },
    ];
    config.users_file = Some(users_file);
    // A session outlives the longest benchmark; the lifetime may not be shorter than the idle time.
    config.users = "session_idle = \"1h\"\nsession_lifetime = \"2h\"".to_owned();
    config.listen = listen.to_owned();
    config.admin_key = Some(ADMIN_KEY.to_owned());
    config.to_toml()
}

impl Bed {
    /// Starts the emulator and the daemon in this process.
    pub async fn start(users: usize) -> Bed {
        Self::start_on(users, BenchStore::Sqlite)
            .await
            .expect("a SQLite store is always available")
    }

    /// Starts the emulator and the daemon(s) in this process on `store`; `None` (having said why)
    /// when PostgreSQL is not reachable.
    pub async fn start_on(users: usize, store: BenchStore) -> Option<Bed> {
        let (emulator, ids) = emulator().await;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut text = settings_toml(
            dir.path(),
            &ids,
            users,
            "mode = \"poll\"\npoll_interval = \"24h\"",
            "127.0.0.1:0",
        );
        let (scratch, instances) = match store {
            BenchStore::Sqlite => (None, 1),
            BenchStore::Postgres(instances) => {
                let scratch = pullprintd::store::scratch::ScratchDatabase::create().await?;
                let path = format!("path = \"{}\"", dir.path().join("state.db").display());
                text = text.replace(&path, &format!("url = \"{}\"", scratch.url().url()));
                // The schema is made once, before the instances start together.
                Store::connect(scratch.url())
                    .await
                    .expect("the bench database opens")
                    .close()
                    .await;
                (Some(scratch), instances.max(1))
            }
        };
        let settings =
            pullprintd::config::Settings::from_toml(&text).expect("the bench configuration");
        let daemon = RunningDaemon::start(settings.clone(), AppOptions::default())
            .await
            .expect("the daemon builds");
        let mut others = Vec::new();
        for _ in 1..instances {
            others.push(
                RunningDaemon::start(settings.clone(), AppOptions::default())
                    .await
                    .expect("another instance builds"),
            );
        }
        let mut addrs = vec![daemon.addr];
        addrs.extend(others.iter().map(|d| d.addr));
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(512)
            .build()
            .expect("an HTTP client");
        let bed = Bed {
            emulator,
            dir,
            queue: ids.queue,
            lobby: ids.lobby,
            definition: ids.definition,
            addr: daemon.addr,
            http,
            sessions: std::sync::Mutex::default(),
            poller: daemon.poller.clone(),
            store: daemon.store.clone(),
            daemon,
            others,
            addrs,
            _scratch: scratch,
        };
        // The start-up reconciliation polls once; wait for it so it never races a bench's own poll.
        bed.wait_ready().await;
        Some(bed)
    }

    /// Waits until `/readyz` answers 200 (store open, first token issued).
    pub async fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = self.http.get(self.url("/readyz")).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the daemon is ready within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Submits a job of user `i` on the queue printer.
    pub fn submit(&self, user: usize, n: usize) -> SubmittedJob {
        self.emulator
            .control()
            .submit_job(NewJob {
                printer_id: self.queue.clone(),
                user_principal_name: upn(user),
                user_display_name: Some(format!("User {user}")),
                document_name: Some(format!("Document {n}.pdf")),
                configuration: Some(json!({"copies": 1, "colorMode": "color"})),
            })
            .expect("the emulator accepts a job")
    }

    /// Signs user `i` in by card at the station with `key`; returns the session token.
    pub async fn sign_in(&self, key: &str, user: usize) -> String {
        let addr = self.addrs[user % self.addrs.len()];
        let response = self
            .http
            .post(format!("http://{addr}/api/v1/sessions"))
            .bearer_auth(key)
            .json(&json!({"card": card(user)}))
            .send()
            .await
            .expect("the sign-in request is answered");
        assert_eq!(response.status(), 201, "sign-in answers 201");
        let created: Value = response.json().await.expect("a JSON session");
        let token = created["token"]
            .as_str()
            .expect("the session has a token")
            .to_owned();
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.clone(), (key.to_owned(), addr));
        token
    }

    /// The request with `bearer`, and its station's key when `bearer` is a session token.
    pub fn authorised(
        &self,
        request: reqwest::RequestBuilder,
        bearer: &str,
    ) -> reqwest::RequestBuilder {
        let request = request.bearer_auth(bearer);
        match self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(bearer)
        {
            Some((key, _)) => request.header("x-station-key", key),
            None => request,
        }
    }

    /// POSTs `body` with `bearer`.
    pub async fn post(&self, bearer: &str, path: &str, body: &Value) -> reqwest::Response {
        let addr = self
            .sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(bearer)
            .map_or(self.addr, |(_, addr)| *addr);
        let url = format!("http://{addr}{path}");
        self.authorised(self.http.post(url), bearer)
            .json(body)
            .send()
            .await
            .expect("the request is answered")
    }

    /// Sets the per-call latency of every Graph route.
    pub fn set_latency(&self, ms: u64) {
        self.emulator.control().set_faults(latency(ms));
    }

    /// Graph calls since the last reset, without the token endpoint.
    pub fn graph_calls(&self) -> u64 {
        self.emulator
            .control()
            .call_counts()
            .iter()
            .filter(|(route, _)| !route.contains("oauth2"))
            .flat_map(|(_, by_status)| by_status.values())
            .sum()
    }

    /// How many of the emulator's tasks are `completed`.
    pub fn completed_tasks(&self) -> usize {
        self.emulator.control().count_tasks_in("completed")
    }

    pub async fn stop(self) {
        for other in self.others {
            other
                .stop()
                .await
                .expect("an instance runs and stops cleanly");
        }
        self.daemon
            .stop()
            .await
            .expect("the daemon runs and stops cleanly");
        self.emulator.shutdown().await;
    }
}

/// Polls `condition` every `every` until it holds; panics after `limit`.
pub async fn until<F, Fut>(limit: Duration, every: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// The `q`-quantile (0–1) of `sorted` (nearest rank).
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// p50, p99 and max of `samples` (milliseconds), sorted in place.
pub fn summary(samples: &mut [f64]) -> (f64, f64, f64) {
    samples.sort_by(f64::total_cmp);
    (
        quantile(samples, 0.5),
        quantile(samples, 0.99),
        samples.last().copied().unwrap_or(f64::NAN),
    )
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints a table: a title, a header row and rows, columns padded.
pub fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.len());
            }
        }
    }
    println!("\n{title}");
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:>w$}", w = widths.get(i).copied().unwrap_or(0)))
            .collect();
        println!("  {}", padded.join("  "));
    };
    line(header.iter().map(|h| (*h).to_owned()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Prints the one machine-readable line of a benchmark.
pub fn json_line(bench: &str, figures: &Value) {
    println!("BENCH {}", json!({"bench": bench, "figures": figures}));
}

/// Whether the command line (`cargo bench -- NAME…`) selects benchmark `name` (no names: all): a
/// name selects that benchmark alone, `PREFIX*` every benchmark whose name starts with it
/// (`burst*`: the SQLite and the PostgreSQL burst).
pub fn selected(name: &str) -> bool {
    let names: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    names.is_empty()
        || names.iter().any(|n| match n.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == n,
        })
}

/// A figure rounded to 0.01 for the JSON line.
pub fn r2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
