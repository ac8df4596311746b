//! Shared test bed of the engine tests: an in-process emulator with a held printer ("Queue", carrying
//! our trigger) and a plain one ("Lobby", the find-me destination), a store in a tempdir, and either
//! the engine's parts wired by hand (deterministic: no background poll) or the whole [`App`].
#![allow(dead_code, clippy::unwrap_used)]

use std::time::Duration;

use pullprintd::app::{App, AppOptions};
use pullprintd::clock::{SharedClock, SystemClock};
use pullprintd::config::Settings;
use pullprintd::emulator::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator, EmulatorOptions, NewJob, NewPrinter, SubmittedJob,
};
use pullprintd::graph::{Cloud, Credential, GraphClient, GraphOptions, RetryPolicy};
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

/// An emulator with our printers and task definition.
pub struct Bed {
    pub emulator: Emulator,
    pub dir: TempDir,
    pub queue: String,
    pub lobby: String,
    pub definition: String,
}

impl Bed {
    pub async fn start(options: EmulatorOptions) -> Bed {
        let emulator = Emulator::start(options).await.expect("emulator starts");
        let control = emulator.control();
        let printer = |name: &str| {
            control
                .create_printer(NewPrinter {
                    display_name: name.into(),
                    ..NewPrinter::default()
                })
                .unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        let queue = printer("Queue");
        let lobby = printer("Lobby");
        let definition = control.create_task_definition(None, "Pull printing");
        control.create_trigger(&queue, &definition).unwrap();
        Bed {
            emulator,
            dir: tempfile::tempdir().unwrap(),
            queue,
            lobby,
            definition,
        }
    }

    pub async fn default() -> Bed {
        Bed::start(EmulatorOptions::default()).await
    }

    /// The emulator's root without the trailing slash: the token scope is `{this}/.default`.
    pub fn root(&self) -> String {
        self.emulator
            .url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
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

    /// The daemon's settings for this bed; `extra` is appended TOML (e.g. `[intake]` keys).
    pub fn settings(&self, intake: &str, store_file: &str) -> Settings {
        Settings::from_toml(&self.settings_toml(intake, store_file)).unwrap()
    }

    /// The TOML text of [`Bed::settings`], for the real binary.
    pub fn settings_toml(&self, intake: &str, store_file: &str) -> String {
        format!(
            r#"
[graph]
tenant_id = "{tenant}"
client_id = "{client}"
client_secret = "{secret}"
base_url = "{root}"
login_url = "{root}"
request_timeout = "5s"

[printing]
task_definition_id = "{definition}"
queue_printers = ["{queue}"]

[intake]
{intake}

[release]
confirm_wait = "10s"

[api]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"

[store]
path = "{store}"
"#,
            tenant = self.emulator.tenant_id(),
            client = DEMO_CLIENT_ID,
            secret = DEMO_CLIENT_SECRET,
            root = self.root(),
            definition = self.definition,
            queue = self.queue,
            store = self.dir.path().join(store_file).display(),
        )
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

/// A release/delete/redirect request by the job's owner.
pub fn action(
    task_id: &str,
    kind: ActionKind,
    changes: Option<Value>,
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
pub struct RunningApp {
    pub addr: std::net::SocketAddr,
    pub store: Store,
    pub service: ReleaseService,
    pub webhook: pullprintd::intake::webhook::Webhook,
    pub poller: Poller,
    stop: CancellationToken,
    running: JoinHandle<Result<(), pullprintd::app::AppError>>,
}

impl RunningApp {
    pub async fn start(settings: Settings, options: AppOptions) -> RunningApp {
        let app = App::build(settings, options).await.expect("the app builds");
        let stop = CancellationToken::new();
        RunningApp {
            addr: app.local_addr(),
            store: app.store(),
            service: app.service(),
            webhook: app.webhook(),
            poller: app.poller(),
            stop: stop.clone(),
            running: tokio::spawn(app.run_until_stopped(stop)),
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.running.await.unwrap().expect("the app stops cleanly");
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
        .then(|| serde_json::json!({"copies": 3, "colorMode": "color"}));
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
