//! [`App`]: the daemon assembled from its parts — store, Graph client, HTTP listener, intake (poller,
//! webhook, inbox worker, subscription manager), the executor and the sweeper — and run until a
//! cancellation token says stop.
//!
//! Building does everything that can fail for a reason a person must fix (the configuration, the
//! store file, the listen address) before anything runs, so `pullprintd run` exits at once with the
//! right code ([`AppError::exit_code`]): 78 configuration, 69 unavailable, 70 internal, 75 when another
//! daemon holds the store's lock ([`StoreLock`]).
//!
//! Shutdown: on cancellation the listener stops accepting, the loops stop starting new work, and the
//! executor lets the Graph calls under way finish for up to [`AppOptions::drain`]; anything cut off is
//! a recorded intent that the next start settles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::{SharedClock, SystemClock};
use crate::config::{IntakeMode, Settings};
use crate::exit;
use crate::graph::GraphClient;
use crate::health::{GraphStatus, Health};
use crate::http::{self, HttpState};
use crate::intake::Intake;
use crate::intake::inbox::InboxWorker;
use crate::intake::poller::Poller;
use crate::intake::reconcile::reconcile;
use crate::intake::subscription::SubscriptionManager;
use crate::intake::webhook::Webhook;
use crate::metrics::Metrics;
use crate::notify::{Heartbeat, ServiceManager};
use crate::release::completions::Completions;
use crate::release::executor::{Executor, Observers};
use crate::release::service::ReleaseService;
use crate::release::sweeper::Sweeper;
use crate::serve::{self, Limits};
use crate::station::state::{StationDeps, StationState};
use crate::store::{LockError, Store, StoreError, StoreLocation, StoreLock};
use crate::tls::ReloadableTls;

/// What the caller injects; [`AppOptions::default`] is the production daemon.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// The clock every decision by time asks (tokens, renewals, hold timeouts, audit retention).
    pub clock: SharedClock,
    /// How often the subscription's expiry is checked.
    pub subscription_check: Duration,
    /// How often the hold-timeout sweeper re-reads its next deadline from the store as a backstop (it
    /// expires each job at its deadline, and is woken when a job is stored).
    pub sweep_every: Duration,
    /// How long shutdown waits for Graph calls under way.
    pub drain: Duration,
    /// The service manager told READY / WATCHDOG / STOPPING (systemd; a no-op elsewhere).
    pub service_manager: ServiceManager,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            clock: SystemClock::shared(),
            subscription_check: Duration::from_secs(60),
            sweep_every: Duration::from_secs(60),
            drain: Duration::from_secs(10),
            service_manager: ServiceManager::from_env(),
        }
    }
}

/// Why the daemon could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration is wrong (exit 78).
    #[error("configuration: {0}")]
    Config(String),
    /// A resource is unavailable: the listen address, the network (exit 69).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug or a store that cannot be written (exit 70).
    #[error("internal error: {0}")]
    Internal(String),
    /// Another daemon holds the store (exit 75: try again once it has stopped).
    #[error("{0}")]
    Busy(String),
}

impl AppError {
    /// The process exit code (sysexits).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => exit::CONFIG,
            Self::Unavailable(_) => exit::UNAVAILABLE,
            Self::Internal(_) => exit::SOFTWARE,
            Self::Busy(_) => exit::TEMPFAIL,
        }
    }
}

impl From<LockError> for AppError {
    fn from(error: LockError) -> Self {
        match error {
            LockError::Held { .. } => Self::Busy(error.to_string()),
            LockError::Io { .. } => Self::Config(error.to_string()),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            // A database server that is down or does not answer may be back later unchanged.
            StoreError::Connect { .. } if error.is_unreachable() => {
                Self::Unavailable(error.to_string())
            }
            // A path that cannot be opened, a refused login, a missing database, or a store a newer
            // version upgraded are fixed in the configuration (or by running that version).
            StoreError::Open { .. } | StoreError::Connect { .. } | StoreError::Newer { .. } => {
                Self::Config(error.to_string())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The assembled daemon.
#[derive(Debug)]
pub struct App {
    /// One daemon per SQLite store: held until the daemon has stopped. `None` on PostgreSQL, which
    /// several daemons share by design.
    lock: Option<StoreLock>,
    settings: Settings,
    options: AppOptions,
    store: Store,
    listeners: Listeners,
    intake: Intake,
    poller: Poller,
    executor: Executor,
    service: ReleaseService,
    webhook: Webhook,
    station: StationState,
    inbox_wake: Arc<Notify>,
    client_state: SecretString,
    graph: GraphClient,
    metrics: Metrics,
    heartbeat: Arc<Heartbeat>,
}

impl App {
    /// Opens the store, builds the Graph client and binds the API listener; nothing runs yet.
    pub async fn build(settings: Settings, options: AppOptions) -> Result<App, AppError> {
        if settings.printing.task_definition_id.trim().is_empty() {
            return Err(AppError::Config(
                "printing.task_definition_id is empty: run `pullprintd setup` to create the task \
                 definition, then put its id here"
                    .to_owned(),
            ));
        }
        let location = settings.store.location();
        let lock = match &location {
            StoreLocation::File(path) => Some(StoreLock::acquire(path)?),
            StoreLocation::Server(_) => None,
        };
        let store = Store::open_location(&location).await?;
        if lock.is_some() {
            // We alone hold the store: lookup claims left by a process that died mid-lookup would
            // keep intake off their tasks for minutes after a restart. (On a shared database they
            // may be another instance's live claims: those lapse on their own.)
            let stale = store.release_stale_claims().await?;
            if stale > 0 {
                tracing::info!(stale, "released lookup claims left by a previous run");
            }
        }
        let mut graph_options = settings
            .graph
            .client_options()
            .map_err(|error| AppError::Config(error.to_string()))?;
        graph_options.clock = options.clock.clone();
        let metrics = Metrics::new();
        graph_options.observer = Some(Arc::new(metrics.clone()));
        let graph =
            GraphClient::new(graph_options).map_err(|error| AppError::Config(error.to_string()))?;
        let listeners = Listeners::bind(&settings).await?;
        let client_state = store
            .client_state_or_create(crate::secrets::random_token)
            .await?;
        let clock = options.clock.clone();
        let heartbeat = Heartbeat::new();
        let completions = Completions::default();
        let executor = Executor::new(
            store.clone(),
            graph.clone(),
            clock.clone(),
            completions.clone(),
            work_at_once(&settings),
            settings.release.hold_timeout.0,
            Observers {
                metrics: metrics.clone(),
                heartbeat: heartbeat.clone(),
            },
        );
        let service = ReleaseService::new(
            store.clone(),
            executor.clone(),
            completions,
            settings.release.confirm_wait.0,
        );
        let rules = settings
            .rule_set()
            .map_err(|error| AppError::Config(error.to_string()))?;
        let intake = Intake::new(
            store.clone(),
            graph.clone(),
            clock.clone(),
            settings.printing.task_definition_id.trim(),
        )
        .with_metrics(metrics.clone())
        .with_rules(Arc::new(rules), service.clone(), settings.release.policy());
        let poller = Poller::new(intake.clone()).with_lookups(work_at_once(&settings));
        let station = StationState::new(
            &settings,
            StationDeps {
                release: service.clone(),
                store: store.clone(),
                graph: graph.clone(),
                clock: clock.clone(),
                metrics: metrics.clone(),
            },
        )
        .map_err(AppError::Config)?;
        let inbox_wake = Arc::new(Notify::new());
        let webhook = Webhook::new(
            store.clone(),
            clock,
            client_state.clone(),
            Arc::clone(&inbox_wake),
            metrics.clone(),
        );
        Ok(App {
            lock,
            settings,
            options,
            store,
            listeners,
            intake,
            poller,
            executor,
            service,
            webhook,
            station,
            inbox_wake,
            client_state,
            graph,
            metrics,
            heartbeat,
        })
    }

    /// The address the stations' API listens on (the real port when `api.listen` asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listeners.stations.1
    }

    /// The address the admin API and `/metrics` listen on.
    pub fn admin_addr(&self) -> SocketAddr {
        self.listeners.admin.1
    }

    /// The address of the webhook's own listener, when `[intake] listen` is set.
    pub fn intake_addr(&self) -> Option<SocketAddr> {
        self.listeners.intake.as_ref().map(|(_, addr)| *addr)
    }

    /// The release service (stations and the CLI act through it).
    pub fn service(&self) -> ReleaseService {
        self.service.clone()
    }

    /// The store.
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The webhook (its counters).
    pub fn webhook(&self) -> Webhook {
        self.webhook.clone()
    }

    /// The poller (to ask for a poll now).
    pub fn poller(&self) -> Poller {
        self.poller.clone()
    }

    /// Runs everything until `shutdown` is cancelled, then drains.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let App {
            lock,
            settings,
            options,
            store,
            listeners,
            intake,
            poller,
            executor,
            service,
            webhook,
            station,
            inbox_wake,
            client_state,
            graph,
            metrics,
            heartbeat,
        } = self;
        let mut tasks = JoinSet::new();

        let mode = settings.intake.mode;
        let expects_subscription = settings.intake.public_url.is_some() && mode != IntakeMode::Poll;
        let health = Health {
            store: store.clone(),
            graph: graph.clone(),
            clock: options.clock.clone(),
            expects_subscription,
            metrics: metrics.clone(),
            graph_status: GraphStatus::default(),
            store_probe: crate::health::StoreProbe::default(),
        };
        let routes = HttpState {
            webhook,
            health: health.clone(),
            station,
        };
        let server = listeners.serve(&settings, &routes, &shutdown);

        tasks.spawn(executor.clone().run(shutdown.clone(), options.drain));
        tasks.spawn(refresh_gauges(
            store.clone(),
            metrics.clone(),
            options.clock.clone(),
            Duration::from_secs(15),
            shutdown.clone(),
        ));

        // The poller, the sweeper and the subscription run only on the leader (always this daemon
        // on SQLite), each again in every term it leads.
        let (leadership, campaign) =
            crate::leadership::campaign(store.clone(), metrics.clone(), shutdown.clone());
        tasks.spawn(campaign);

        let interval = (mode != IntakeMode::Webhook).then_some(settings.intake.poll_interval.0);
        let reconciling = poller.clone();
        let reconcile_store = store.clone();
        let (mut terms, poll_stop) = (leadership.clone(), shutdown.clone());
        tasks.spawn(async move {
            while let Some(term) = terms.next_term(&poll_stop).await {
                reconcile(&reconciling, &reconcile_store).await;
                reconciling.clone().run(interval, term).await;
            }
        });

        let subscribe = match (&settings.intake.public_url, mode) {
            (Some(url), IntakeMode::Webhook | IntakeMode::Both) => Some(url.to_string()),
            _ => None,
        };
        let lifecycle = match subscribe {
            Some(url) => {
                let (sender, receiver) = mpsc::unbounded_channel();
                let mut manager = SubscriptionManager::new(
                    intake.clone(),
                    url,
                    client_state,
                    poller.clone(),
                    receiver,
                );
                let (mut terms, stop) = (leadership.clone(), shutdown.clone());
                let check = options.subscription_check;
                tasks.spawn(async move {
                    while let Some(term) = terms.next_term(&stop).await {
                        manager.run(check, term).await;
                    }
                });
                Some(sender)
            }
            None => None,
        };
        if !settings.printing.pull_printers.is_empty() {
            tasks.spawn(crate::station::pull::settle_unsettled_until(
                store.clone(),
                graph.clone(),
                options.clock.clone(),
                shutdown.clone(),
            ));
        }
        let new_jobs = intake.new_jobs();
        let worker = InboxWorker::new(intake, inbox_wake, poller, lifecycle)
            .with_lookups(work_at_once(&settings));
        tasks.spawn(worker.run(shutdown.clone()));

        let sweeper = Sweeper::new(
            store.clone(),
            service,
            options.clock.clone(),
            settings.release.hold_timeout.0,
            settings.store.audit_retention.0,
        );
        let (mut terms, stop) = (leadership, shutdown.clone());
        let sweep_every = options.sweep_every;
        tasks.spawn(async move {
            while let Some(term) = terms.next_term(&stop).await {
                sweeper
                    .clone()
                    .run(sweep_every, Arc::clone(&new_jobs), term)
                    .await;
            }
        });

        // READY once the store is open and the listener bound. Entra ID and Graph may be away at boot:
        // that is a readiness reason (/readyz, the status line), not a start condition, and releases
        // queue meanwhile.
        tasks.spawn(first_token(
            graph.clone(),
            health.graph_status.clone(),
            shutdown.clone(),
        ));
        let manager = options.service_manager.clone();
        if !shutdown.is_cancelled() {
            let status = status_line(&health.problems().await);
            tracing::info!(%status, "ready");
            manager.ready(&status);
            let watchdog = manager.clone();
            let (beats, stop) = (heartbeat, shutdown.clone());
            tasks.spawn(async move { watchdog.run_watchdog(beats, stop).await });
            tasks.spawn(report_status(
                health,
                manager.clone(),
                status,
                STATUS_EVERY,
                shutdown.clone(),
            ));
        }

        shutdown.cancelled().await;
        manager.stopping();
        tracing::info!("stopping: draining work under way");
        // The executor bounds its own drain; the other loops stop at once. The extra second covers
        // their last store write.
        let drained = tokio::time::timeout(options.drain + Duration::from_secs(1), async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            tasks.abort_all();
        }
        let served = server.await;
        store.close().await;
        // Only now may another daemon take the store over.
        drop(lock);
        match served {
            Ok(()) => Ok(()),
            Err(error) => Err(AppError::Internal(format!(
                "the API server panicked: {error}"
            ))),
        }
    }
}

/// The bound listeners, each with its address and optional TLS: the stations' (`[api] listen`), the
/// administrator's (`[api] admin_listen`) and the webhook's own (`[intake] listen`, optional).
#[derive(Debug)]
struct Listeners {
    stations: (
        tokio::net::TcpListener,
        SocketAddr,
        Option<Arc<ReloadableTls>>,
    ),
    admin: (
        tokio::net::TcpListener,
        SocketAddr,
        Option<Arc<ReloadableTls>>,
    ),
    intake: Option<(tokio::net::TcpListener, SocketAddr)>,
    intake_tls: Option<Arc<ReloadableTls>>,
}

async fn bind(
    key: &str,
    addr: SocketAddr,
) -> Result<(tokio::net::TcpListener, SocketAddr), AppError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|error| {
        AppError::Unavailable(format!(
            "cannot listen on {key} = {addr}: {error} (is another process using the port?)"
        ))
    })?;
    let local = listener.local_addr().map_err(|error| {
        AppError::Unavailable(format!("the listener {key} has no address: {error}"))
    })?;
    Ok((listener, local))
}

fn tls(
    key: &str,
    cert: Option<&std::path::Path>,
    private_key: Option<&std::path::Path>,
) -> Result<Option<Arc<ReloadableTls>>, AppError> {
    match (cert, private_key) {
        (Some(cert), Some(private_key)) => ReloadableTls::load(key, cert, private_key)
            .map(|t| Some(Arc::new(t)))
            .map_err(AppError::Config),
        _ => Ok(None),
    }
}

impl Listeners {
    async fn bind(settings: &Settings) -> Result<Self, AppError> {
        let api = &settings.api;
        let station_tls = tls(
            "api.tls_cert_file",
            api.tls_cert_file.as_deref(),
            api.tls_key_file.as_deref(),
        )?;
        let admin_tls = tls(
            "api.admin_tls_cert_file",
            api.admin_tls_cert_file.as_deref(),
            api.admin_tls_key_file.as_deref(),
        )?;
        let intake_tls = tls(
            "intake.tls_cert_file",
            settings.intake.tls_cert_file.as_deref(),
            settings.intake.tls_key_file.as_deref(),
        )?;
        let (listener, addr) = bind("api.listen", api.listen).await?;
        let stations = (listener, addr, station_tls);
        let (listener, addr) = bind("api.admin_listen", api.admin_addr()).await?;
        let admin = (listener, addr, admin_tls);
        let intake = match settings.intake.listen {
            Some(listen) => Some(bind("intake.listen", listen).await?),
            None => None,
        };
        Ok(Self {
            stations,
            admin,
            intake,
            intake_tls,
        })
    }

    /// Serves every listener until `shutdown`; reloads their certificates on SIGHUP.
    fn serve(
        self,
        settings: &Settings,
        routes: &HttpState,
        shutdown: &CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let limits = Limits {
            header_read_timeout: settings.api.header_read_timeout.0,
            request_timeout: settings.api.request_timeout.0,
            max_connections: settings.api.max_connections,
        };
        let Listeners {
            stations,
            admin,
            intake,
            intake_tls,
        } = self;
        let separate_webhook = intake.is_some();
        let listeners = 2 + usize::from(separate_webhook);
        let table = serve::reserve_descriptors(
            &stations.0,
            limits.max_connections.saturating_mul(listeners),
        );
        tracing::debug!(
            descriptors = table,
            "descriptor table sized for every listener's connections"
        );
        let mut certificates = Vec::new();
        let mut servers = JoinSet::new();
        let (listener, addr, tls) = stations;
        tracing::info!(%addr, tls = tls.is_some(), webhook = !separate_webhook, "station API listening");
        certificates.extend(tls.clone());
        servers.spawn(serve::serve(
            "stations",
            listener,
            http::station_router(routes, !separate_webhook),
            tls,
            limits,
            shutdown.clone(),
        ));
        let (listener, addr, tls) = admin;
        tracing::info!(%addr, tls = tls.is_some(), "admin API and metrics listening");
        certificates.extend(tls.clone());
        servers.spawn(serve::serve(
            "admin",
            listener,
            http::admin_router(routes),
            tls,
            limits,
            shutdown.clone(),
        ));
        if let Some((listener, addr)) = intake {
            tracing::info!(%addr, tls = intake_tls.is_some(), "Graph notification webhook listening");
            certificates.extend(intake_tls.clone());
            servers.spawn(serve::serve(
                "webhook",
                listener,
                http::webhook_router(routes),
                intake_tls,
                limits,
                shutdown.clone(),
            ));
        }
        if !certificates.is_empty() {
            servers.spawn(reload_on_sighup(certificates, shutdown.clone()));
        }
        tokio::spawn(async move {
            while let Some(done) = servers.join_next().await {
                if let Err(error) = done
                    && error.is_panic()
                {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        })
    }
}

/// Reads every listener's certificate again on SIGHUP (renewal without a restart).
async fn reload_on_sighup(certificates: Vec<Arc<ReloadableTls>>, shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(hangups) => hangups,
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGHUP; certificates are read only at start");
                return;
            }
        };
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                received = hangups.recv() => if received.is_none() { return },
            }
            for certificate in &certificates {
                match certificate.reload() {
                    Ok(()) => tracing::info!("TLS certificate reloaded"),
                    Err(error) => {
                        tracing::error!(%error, "TLS certificate reload failed; the previous one stays in use");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = certificates;
        shutdown.cancelled().await;
    }
}

/// How often the readiness reasons are looked at for systemd's status line.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// systemd's status line: `ready` or `ready; waiting for: REASON; REASON`.
fn status_line(problems: &[String]) -> String {
    if problems.is_empty() {
        "ready: releasing held jobs".to_owned()
    } else {
        format!(
            "ready (releases are queued); not ready for: {}",
            problems.join("; ")
        )
    }
}

/// Keeps systemd's status line equal to the readiness reasons (sent only when they change).
async fn report_status(
    health: Health,
    manager: crate::notify::ServiceManager,
    mut last: String,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let status = status_line(&health.problems().await);
        if status != last {
            tracing::info!(%status, "readiness changed");
            manager.status(&status);
            last = status;
        }
    }
}

/// Gets the first app token, retrying while Entra ID is unreachable (the network may come up after
/// the daemon) every 10 s, and every 60 s while it refuses the credential (consent or a new secret
/// may be granted meanwhile); why it failed is kept for `/readyz` and the status line.
async fn first_token(graph: GraphClient, status: GraphStatus, shutdown: CancellationToken) {
    loop {
        let wait = match graph.ensure_token().await {
            Ok(()) => {
                status.set(None);
                return;
            }
            Err(error) if error.is_transient() => {
                tracing::warn!(%error, "no Graph token yet; trying again in 10 s");
                status.set(Some(format!(
                    "Entra ID cannot be reached for a Graph token: {error}"
                )));
                Duration::from_secs(10)
            }
            Err(error) => {
                tracing::error!(
                    %error,
                    "Entra ID refused the Graph credential; releases are queued until it is fixed"
                );
                status.set(Some(format!(
                    "Entra ID refused the Graph credential: {error}. Fix graph.client_secret_file \
                     (or the certificate) and restart"
                )));
                Duration::from_secs(60)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Keeps the gauges that are read from the store current: held jobs, the action queue's depth and
/// oldest age, subscription expiry.
async fn refresh_gauges(
    store: Store,
    metrics: Metrics,
    clock: SharedClock,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if let Ok(held) = store.count_held_jobs().await {
            metrics.set_held_jobs(held);
        }
        if let Ok((depth, oldest)) = store.action_queue().await {
            let age = oldest.map(|at| (clock.now() - at).as_seconds_f64());
            metrics.set_action_queue(depth, age);
        }
        if let Ok(subscription) = store.subscription().await {
            metrics.set_subscription_expiry(subscription.map(|s| s.expires_at));
        }
    }
}

/// How many pieces of Graph work (action drives, a poll's lookups, the inbox's lookups) run at once:
/// the Graph request slots times [`crate::graph::WORK_PER_SLOT`].
fn work_at_once(settings: &Settings) -> usize {
    settings.graph.max_concurrent_requests * crate::graph::WORK_PER_SLOT
}
