//! Shared test bed of the engine tests: an in-process emulator with a held printer ("Queue", carrying
//! our trigger) and a plain one ("Lobby", the find-me destination), a store in a tempdir, and either
//! the engine's parts wired by hand (deterministic: no background poll) or the whole `App`. The world
//! and the configuration come from the emulator's scenario builder (`pullprintd::emulator::scenario`).
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use pullprintd::app::AppOptions;
use pullprintd::clock::{SharedClock, SystemClock};
use pullprintd::config::Settings;
use pullprintd::emulator::scenario::{DaemonConfig, RunningDaemon, Scenario, Tenant};
use pullprintd::emulator::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorOptions, NewJob, SubmittedJob,
};
use pullprintd::graph::{
    Cloud, Credential, GraphClient, GraphOptions, PrintJobConfiguration, RetryPolicy,
};
use pullprintd::intake::Intake;
use pullprintd::intake::poller::Poller;
use pullprintd::release::completions::{ActionOutcome, Completions};
use pullprintd::release::executor::Executor;
use pullprintd::release::service::{ReleaseService, Submitted};
use pullprintd::store::{ActionId, ActionKind, NewAction, Store};
use serde_json::Value;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// An emulator with our printers and task definition (the scenario's "Queue" and "Lobby").
pub struct Bed {
    pub tenant: Tenant,
    pub emulator: Emulator,
    pub dir: TempDir,
    pub queue: String,
    pub lobby: String,
    pub definition: String,
}

impl Bed {
    pub async fn start(options: EmulatorOptions) -> Bed {
        let tenant = Scenario::queue_and_lobby()
            .options(options)
            .start()
            .await
            .expect("emulator starts");
        Bed {
            emulator: tenant.emulator.clone(),
            queue: tenant.printer("Queue").to_owned(),
            lobby: tenant.printer("Lobby").to_owned(),
            definition: tenant.definition.clone(),
            tenant,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub async fn default() -> Bed {
        Bed::start(EmulatorOptions::default()).await
    }

    /// The emulator's root without the trailing slash: the token scope is `{this}/.default`.
    pub fn root(&self) -> String {
        self.tenant.root()
    }

    /// Submits a job to the queue printer as `upn`.
    pub fn submit(&self, upn: &str, name: &str) -> SubmittedJob {
        self.emulator
            .control()
            .submit_job(NewJob {
                printer_id: self.queue.clone(),
                user_principal_name: upn.into(),
                user_display_name: Some(format!("User {upn}")),
                document_name: Some(name.into()),
                configuration: Some(serde_json::json!({"copies": 1, "colorMode": "color"})),
            })
            .unwrap()
    }

    /// A Graph client for the emulator.
    pub fn graph(&self, clock: SharedClock, retry: RetryPolicy) -> GraphClient {
        let mut options = GraphOptions::new(
            Cloud::Global,
            self.emulator.tenant_id(),
            DEMO_CLIENT_ID,
            Credential::ClientSecret(DEMO_CLIENT_SECRET.to_owned().into()),
        );
        options.base_url = Some(url::Url::parse(&self.root()).unwrap());
        options.login_url = Some(url::Url::parse(&self.root()).unwrap());
        options.clock = clock;
        options.retry = retry;
        options.request_timeout = Duration::from_secs(5);
        GraphClient::new(options).unwrap()
    }

    /// The daemon's configuration for this bed: `intake` is the `[intake]` body; the store is
    /// `store_file` in the bed's directory.
    pub fn config(&self, intake: &str, store_file: &str) -> DaemonConfig {
        let mut config = self.tenant.daemon_config(&self.dir.path().join(store_file));
        config.request_timeout = Some("5s".to_owned());
        config.intake = intake.to_owned();
        config.release = "confirm_wait = \"10s\"".to_owned();
        config
    }

    /// The daemon's settings for this bed (see [`Bed::config`]).
    pub fn settings(&self, intake: &str, store_file: &str) -> Settings {
        self.config(intake, store_file).settings().unwrap()
    }

    /// The TOML text of [`Bed::settings`], for the real binary.
    pub fn settings_toml(&self, intake: &str, store_file: &str) -> String {
        self.config(intake, store_file).to_toml()
    }
}

/// The engine's parts wired by hand, with the executor running in the background.
pub struct Engine {
    pub store: Store,
    pub intake: Intake,
    pub poller: Poller,
    pub executor: Executor,
    pub completions: Completions,
    pub service: ReleaseService,
    stop: CancellationToken,
    running: JoinHandle<()>,
}

impl Engine {
    pub async fn start(bed: &Bed, clock: SharedClock, retry: RetryPolicy, max: usize) -> Engine {
        let store = Store::open_in(bed.dir.path()).await.unwrap();
        let graph = bed.graph(clock.clone(), retry);
        let intake = Intake::new(store.clone(), graph.clone(), clock.clone(), &bed.definition);
        let poller = Poller::new(intake.clone());
        let completions = Completions::default();
        let executor = Executor::new(
            store.clone(),
            graph,
            clock,
            completions.clone(),
            max,
            Duration::from_secs(4 * 3600),
            pullprintd::release::executor::Observers::default(),
        );
        let service = ReleaseService::new(
            store.clone(),
            executor.clone(),
            completions.clone(),
            Duration::from_secs(10),
        );
        let stop = CancellationToken::new();
        let running = tokio::spawn(executor.clone().run(stop.clone(), Duration::from_secs(5)));
        Engine {
            store,
            intake,
            poller,
            executor,
            completions,
            service,
            stop,
            running,
        }
    }

    pub async fn default(bed: &Bed) -> Engine {
        Engine::start(bed, SystemClock::shared(), RetryPolicy::default(), 16).await
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.running.await.unwrap();
    }

    /// Waits for `id` to finish (it may already have).
    pub async fn finished(&self, id: ActionId) -> ActionOutcome {
        let mut done = self.completions.subscribe(id);
        if let Some((outcome, detail)) = self.store.action_outcome(id).await.unwrap() {
            return ActionOutcome {
                outcome,
                detail: detail.unwrap_or_default(),
            };
        }
        let outcome =
            tokio::time::timeout(Duration::from_secs(120), done.wait_for(Option::is_some))
                .await
                .expect("the action finishes within two minutes")
                .expect("the executor publishes");
        outcome.clone().unwrap()
    }

    /// Submits and waits for the end, whether the answer was "done" or "queued".
    pub async fn act(&self, action: NewAction) -> ActionOutcome {
        match self.service.submit(action).await.expect("queued") {
            Submitted::Done(outcome) => outcome,
            Submitted::Queued { action_id } => self.finished(action_id).await,
        }
    }
}

/// A print configuration written as Graph's `printJobConfiguration` JSON.
pub fn configuration(json: Value) -> PrintJobConfiguration {
    serde_json::from_value(json).expect("a printJobConfiguration")
}

/// A release/delete/redirect request by the job's owner.
pub fn action(
    task_id: &str,
    kind: ActionKind,
    changes: Option<PrintJobConfiguration>,
    to: Option<&str>,
) -> NewAction {
    NewAction {
        task_id: task_id.to_owned(),
        kind,
        changes,
        destination_printer_id: to.map(str::to_owned),
        station_id: Some("lobby".to_owned()),
        requested_by: "ada@contoso.example".to_owned(),
        requested_at: time::OffsetDateTime::now_utc(),
    }
}

/// The whole daemon, running.
pub struct RunningApp(RunningDaemon);

impl std::ops::Deref for RunningApp {
    type Target = RunningDaemon;

    fn deref(&self) -> &RunningDaemon {
        &self.0
    }
}

impl RunningApp {
    pub async fn start(settings: Settings, options: AppOptions) -> RunningApp {
        RunningApp(
            RunningDaemon::start(settings, options)
                .await
                .expect("the app builds"),
        )
    }

    pub async fn stop(self) {
        self.0.stop().await.expect("the app stops cleanly");
    }
}

/// Polls `condition` every 20 ms until it holds or `limit` passes. For conditions no signal exists
/// for (a notification travelling through the emulator, the webhook, the inbox and the lookup).
pub async fn eventually<F, Fut>(limit: Duration, what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A job held in its own store file with one action queued on it, ready for the real binary
/// (`pullprintd run --config {config}`) to carry out — the crash tests' starting point.
pub struct QueuedForBinary {
    /// The job's print task.
    pub task: String,
    /// The emulator's id of the job.
    pub job_id: String,
    /// The store file, opened by the test to watch the action.
    pub store: Store,
    /// The configuration the binary runs with (poll mode, polling only at start-up).
    pub config: std::path::PathBuf,
    /// The queued action.
    pub action: ActionId,
}

/// Submits a job as Ada, holds it in a fresh store `{case}.db` and queues `kind` on it (a release
/// changes copies and colour; a redirect goes to the lobby printer).
pub async fn queue_for_binary(bed: &Bed, case: &str, kind: ActionKind) -> QueuedForBinary {
    let submitted = bed.submit("ada@contoso.example", &format!("{case}.pdf"));
    let task = submitted.task_id.expect("the queue printer holds the job");
    let store_file = format!("{case}.db");
    let config = bed.dir.path().join(format!("{case}.toml"));
    std::fs::write(
        &config,
        bed.settings_toml("mode = \"poll\"\npoll_interval = \"1h\"", &store_file),
    )
    .expect("the configuration is written");
    let store = Store::open(bed.dir.path().join(&store_file))
        .await
        .expect("the store opens");
    let intake = Intake::new(
        store.clone(),
        bed.graph(SystemClock::shared(), RetryPolicy::default()),
        SystemClock::shared(),
        &bed.definition,
    );
    let job_url = format!(
        "{}/print/printers/{}/jobs/{}",
        bed.emulator.graph_url(),
        bed.queue,
        submitted.job_id
    );
    let job = pullprintd::graph::parse_parent_url(&job_url).expect("a job URL");
    intake
        .lookup(&task, &job, pullprintd::store::DiscoveredVia::Poll)
        .await
        .expect("the job is held");
    let changes = (kind == ActionKind::Release)
        .then(|| configuration(serde_json::json!({"copies": 3, "colorMode": "color"})));
    let to = (kind == ActionKind::Redirect).then_some(bed.lobby.as_str());
    let action = store
        .enqueue(&action(&task, kind, changes, to))
        .await
        .expect("the action is queued");
    QueuedForBinary {
        task,
        job_id: submitted.job_id,
        store,
        config,
        action,
    }
}

/// Which database a store test runs on: the store contract suite runs every test on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database of one test, removed when dropped: a SQLite file in a temporary directory, or a
/// scratch PostgreSQL database (`pullprintd::store::scratch`).
pub struct TestDatabase {
    location: pullprintd::store::StoreLocation,
    _dir: Option<TempDir>,
    _scratch: Option<pullprintd::store::scratch::ScratchDatabase>,
}

impl TestDatabase {
    /// A new empty database on `backend`; `None` (the test skips, having said why) when PostgreSQL
    /// is not reachable outside CI.
    pub async fn new(backend: Backend) -> Option<Self> {
        use pullprintd::store::StoreLocation;
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                Some(Self {
                    location: StoreLocation::File(
                        dir.path().join(pullprintd::store::DEFAULT_FILE_NAME),
                    ),
                    _dir: Some(dir),
                    _scratch: None,
                })
            }
            Backend::Postgres => {
                let scratch = pullprintd::store::scratch::ScratchDatabase::create().await?;
                Some(Self {
                    location: StoreLocation::Server(scratch.url().clone()),
                    _dir: None,
                    _scratch: Some(scratch),
                })
            }
        }
    }

    /// Opens the store on this database (again: a restart opens the same one).
    pub async fn open(&self) -> Store {
        Store::open_location(&self.location)
            .await
            .expect("the test store opens")
    }

    /// Where the database is.
    pub fn location(&self) -> &pullprintd::store::StoreLocation {
        &self.location
    }

    /// A connection pool of its own on the database, bypassing the store: for tests that check what
    /// the schema itself enforces.
    pub async fn raw(&self) -> sqlx::AnyPool {
        use pullprintd::store::StoreLocation;
        sqlx::any::install_default_drivers();
        let url = match &self.location {
            StoreLocation::File(path) => format!("sqlite://{}", path.display()),
            StoreLocation::Server(url) => url.url().to_string(),
        };
        sqlx::AnyPool::connect(&url).await.unwrap()
    }
}

/// Runs each named `async fn(Backend)` as two tests, `sqlite::NAME` and `postgres::NAME`: one
/// contract, two backends.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::engine_support::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    super::$name($crate::engine_support::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// A free loopback port for a daemon that must know its port before it binds it (a webhook's public
/// URL names it). Taken below Linux's ephemeral range (32768–60999), which every `bind(":0")` of the
/// emulator, the clients and other tests draws from: a port handed out here cannot be taken by one of
/// those between this call and the daemon's bind. Each test process starts at its own offset and
/// counts up, so two calls never hand out the same port.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    const FIRST: u16 = 20_000;
    const SPAN: u16 = 12_000;
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let offset = (std::process::id() % u32::from(SPAN / 4)) as u16 * 4;
    for _ in 0..SPAN {
        let port = FIRST + (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SPAN;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free loopback port between {FIRST} and {}", FIRST + SPAN)
}
