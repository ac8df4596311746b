//! The Universal Print emulator: a faithful stand-in for the Graph print API subset and the Entra ID
//! token endpoint, for the demo (`pullprintd demo`), the integration tests and the benchmarks.
//!
//! It follows Microsoft's *documented* rules (the Universal Print pages of the Microsoft Graph v1.0
//! reference, <https://learn.microsoft.com/graph/api/resources/print>, and the print subset of Graph's
//! schema kept in `tests/data/graph/`), not the daemon's convenience; where the docs are silent it
//! picks the stricter plausible behaviour and says so in the module that owns the rule:
//! - [`identity`](self) — token endpoint (secret, certificate assertion, device code), token checks,
//!   app-only vs delegated, least-privileged permissions;
//! - `oidc` — OpenID Connect sign-in: discovery, the signing keys, the authorization endpoint and its
//!   sign-in page (`signin_page`), authorization codes with PKCE, ID tokens, refresh tokens;
//! - `state` — printers, pull printers, definitions, triggers, jobs, tasks and their rules;
//! - `print_api` — the `/v1.0` routes and the request pipeline;
//! - `subscriptions` — subscriptions, validation handshake, notification delivery;
//! - `faults` — deterministic fault injection; `record` — the request log; `control` — the control API;
//! - [`scenario`] — ready-made worlds and daemon configurations for the demo, benchmarks and tests.
//!
//! ## Addresses
//! Graph is at `{url}/v1.0`, Entra at `{url}/{tenant}/oauth2/v2.0/token` and `…/devicecode`, and the
//! token audience and `.default` scope resource are `{url}` itself (scope `{url}/.default`). The
//! emulator is also the login host: `{url}/{tenant}/v2.0/.well-known/openid-configuration`,
//! `{url}/{tenant}/oauth2/v2.0/authorize` and `{url}/{tenant}/discovery/v2.0/keys`, with the issuer
//! `{url}/{tenant}/v2.0` ([`Emulator::issuer`], [`Emulator::authorize_url`], [`Emulator::jwks_url`]).
//!
//! ## Control API (JSON, no authentication)
//! | Method and path | Body → answer |
//! |---|---|
//! | `POST /_emulator/printers` | [`NewPrinter`] → 201 printer |
//! | `GET /_emulator/printers/{id}/printed` | → `[PrintedJob]` |
//! | `PUT /_emulator/printers/{id}/status` | [`PrinterStatusChange`] → 204 |
//! | `POST /_emulator/printers/{id}/trigger` | `{"definitionId"}` → 201 `{"id"}` |
//! | `POST /_emulator/task-definitions` | `{"displayName","appId"?}` → 201 `{"id"}` |
//! | `POST /_emulator/jobs` | [`NewJob`] → 201 [`SubmittedJob`] |
//! | `GET /_emulator/jobs/{id}` | → [`JobView`] |
//! | `POST /_emulator/pull-printers` | [`NewPullPrinter`] → 201 pull printer |
//! | `POST /_emulator/pull-jobs` | [`NewJob`] (`printerId` names the pull printer) → 201 `{"jobId"}` |
//! | `GET /_emulator/pull-jobs/{id}` | → [`PullJobView`] |
//! | `GET /_emulator/release-refusals` | → `{"appOnly"}`: release calls refused for an app-only token |
//! | `GET /_emulator/tasks` | → `[TaskView]` |
//! | `POST /_emulator/users` | [`DirectoryUser`] → 201 user |
//! | `POST /_emulator/groups` | [`DirectoryGroup`] → 201 group |
//! | `GET`/`PUT /_emulator/faults` | [`Faults`] ↔ [`Faults`] |
//! | `PUT /_emulator/token-lifetime` | `{"seconds"}` |
//! | `GET /_emulator/clock`, `POST /_emulator/clock/advance` | `{"seconds"}` → `{"now"}` |
//! | `POST /_emulator/device-codes/{userCode}/approve` | `{"userPrincipalName","printerAdmin"}` |
//! | `POST /_emulator/device-codes/{userCode}/decline` | — |
//! | `POST /_emulator/apps/{clientId}/redirect-uris` | `{"uri"}` → 204 (registers a redirect URI) |
//! | `POST /_emulator/id-tokens` | `{"claims", "key": "emulator" \| "other"}` → `{"idToken"}` (forged) |
//! | `GET /_emulator/subscriptions` | → `[SubscriptionView]` |
//! | `POST /_emulator/subscriptions/{id}/lifecycle` | → 202 (sends `reauthorizationRequired`) |
//! | `GET /_emulator/deliveries` | → `[DeliveryRecord]` |
//! | `GET`/`DELETE /_emulator/calls` | → [`CallCounts`] / reset |

//!
//! ## What Graph does not promise, on a switch
//! The daemon must survive behaviour Microsoft allows or leaves open; each is off by default:
//! - `Faults::list_omission_rate` — a task-list page leaves items out (lists are eventually
//!   consistent); a direct `GET` of the item still finds it.
//! - `RouteFault::path_contains` — a fault for the requests whose path contains a text: one "poison"
//!   job whose reads always fail (503) while every other job is served.
//! - `RouteFault::retry_after_secs` / `retry_after_503_secs` take any `u64`: a `Retry-After` of a day
//!   or of 10^15 seconds.
//! - [`Control::set_redirect_holds_again`] — a job redirected onto a printer that carries a trigger is
//!   held there again with a new `processing` task (and notified), instead of printing at once.

mod configuration;
mod control;
mod faults;
mod graph_error;
mod identity;
mod oidc;
mod print_api;
mod record;
pub mod scenario;
mod signin_page;
mod state;
mod subscriptions;

pub use control::{CallCounts, Control, ForgeKey};
pub use faults::{AfterEffect, Faults, NotificationFaults, RouteFault};
pub use identity::PRINTER_ADMINISTRATOR_ROLE;
pub use state::{
    DirectoryGroup, DirectoryUser, JobView, NewJob, NewPrinter, NewPullPrinter, PrintedJob,
    PrinterStatusChange, PullJobView, SubmittedJob, TaskView,
};
pub use subscriptions::{DeliveryRecord, MAX_LIFETIME_MINUTES, SubscriptionView};

use axum::Router;
use axum::routing::{any, get, post};
use rand::Rng as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::clock::{OffsetClock, SharedClock};
use faults::FaultEngine;
use record::Recorder;
use state::World;

/// The demo tenant's id.
pub const DEMO_TENANT_ID: &str = "7d2a5c1e-0b5f-4c1a-9e6d-3f2b8a9c4e10";
/// The demo app registration's client id.
pub const DEMO_CLIENT_ID: &str = "3c8e5b0a-6f4d-4e2b-a1c7-9d0e2f4b6a85";
/// The demo app registration's client secret (emulator only; worthless elsewhere).
pub const DEMO_CLIENT_SECRET: &str = "emulator-demo-secret-not-for-production";

/// Application permissions the daemon needs (granted to the demo app).
pub const DAEMON_APPLICATION_PERMISSIONS: &[&str] = &[
    "PrintTaskDefinition.ReadWrite.All",
    "Printer.Read.All",
    "PrintJob.ReadWriteBasic.All",
    "PrintJob.Manage.All",
    "User.Read.All",
    "GroupMember.Read.All",
    // Reading pull printers and the jobs waiting on them (native pull printing).
    "PullPrintPrinter.Read.All",
];
/// Delegated permissions consented for the demo app: the one-time admin setup's, and
/// `PrintJob.ReadWriteBasic` for a person who signs in to release their own waiting jobs (release is
/// delegated only).
pub const DAEMON_DELEGATED_PERMISSIONS: &[&str] = &[
    "Printer.ReadWrite.All",
    "Printer.Read.All",
    "PrintJob.ReadBasic",
    "PrintJob.ReadWriteBasic",
];

/// An app registration in the emulated tenant.
#[derive(Debug, Clone)]
pub struct AppRegistration {
    /// Client (application) id.
    pub client_id: String,
    /// Client secret, if the app has one.
    pub client_secret: Option<String>,
    /// PEM certificate whose key signs client assertions, if the app has one.
    pub certificate_pem: Option<String>,
    /// Application permissions granted (admin-consented), e.g. `PrintJob.Manage.All`.
    pub application_permissions: Vec<String>,
    /// Delegated permissions consented, e.g. `Printer.ReadWrite.All`.
    pub delegated_permissions: Vec<String>,
    /// Redirect URIs registered for the authorization code flow (more can be added at run time with
    /// [`Control::add_redirect_uri`], when the daemon's port is known only then).
    pub redirect_uris: Vec<String>,
}

impl AppRegistration {
    /// The demo app: secret [`DEMO_CLIENT_SECRET`], every permission the daemon needs.
    pub fn demo() -> Self {
        Self {
            client_id: DEMO_CLIENT_ID.to_owned(),
            client_secret: Some(DEMO_CLIENT_SECRET.to_owned()),
            certificate_pem: None,
            application_permissions: DAEMON_APPLICATION_PERMISSIONS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            delegated_permissions: DAEMON_DELEGATED_PERMISSIONS
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            redirect_uris: Vec::new(),
        }
    }
}

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Address to listen on (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The tenant id in token URLs and claims.
    pub tenant_id: String,
    /// Registered apps.
    pub apps: Vec<AppRegistration>,
    /// Lifetime of issued tokens (changeable at run time).
    pub token_lifetime: Duration,
    /// Items per page of the tasks and jobs lists.
    pub page_size: usize,
    /// Append every Graph request to this JSON-lines file.
    pub record_path: Option<PathBuf>,
    /// Seed of every random fault decision.
    pub seed: u64,
    /// The clock; the control API can move the emulator ahead of it.
    pub clock: SharedClock,
    /// Faults in force from the start.
    pub faults: Faults,
    /// Put `parentUrl` into notifications' `resourceData` (as Microsoft's sample shows).
    pub notification_parent_url: bool,
    /// Device-code polling interval.
    pub device_code_interval: Duration,
    /// How long a validation handshake may take (Graph: 10 s).
    pub validation_timeout: Duration,
    /// How long a notification POST may take (Graph: 3 s).
    pub notification_timeout: Duration,
    /// Delivery attempts per notification.
    pub notification_attempts: u32,
    /// Wait before the first retry of a notification (doubles each time).
    pub notification_retry_delay: Duration,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant_id: DEMO_TENANT_ID.to_owned(),
            apps: vec![AppRegistration::demo()],
            token_lifetime: Duration::from_secs(3599),
            page_size: 100,
            record_path: None,
            seed: 0x5eed,
            clock: OffsetClock::new(),
            faults: Faults::default(),
            notification_parent_url: true,
            device_code_interval: Duration::from_secs(5),
            validation_timeout: Duration::from_secs(10),
            notification_timeout: Duration::from_secs(3),
            notification_attempts: 4,
            notification_retry_delay: Duration::from_millis(200),
        }
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {source} (pick another address or port 0)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
    /// The request log could not be opened.
    #[error(
        "cannot open the request log {path}: {source} (check the directory exists and is writable)"
    )]
    Record {
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The server stopped with an error.
    #[error("the emulator's server failed: {0}")]
    Serve(std::io::Error),
    /// A control request was refused.
    #[error("{0}")]
    Control(String),
}

/// State shared by every handler.
pub(crate) struct Shared {
    /// `http://host:port`, no trailing slash: token audience and scope resource.
    pub base: String,
    pub tenant_id: String,
    pub apps: Vec<AppRegistration>,
    pub page_size: usize,
    pub notification_parent_url: bool,
    pub device_code_interval: Duration,
    pub validation_timeout: Duration,
    pub notification_timeout: Duration,
    pub notification_attempts: u32,
    pub notification_retry_delay: Duration,
    clock: SharedClock,
    /// How far control has moved the emulator ahead of `clock`.
    pub clock_offset: Mutex<time::Duration>,
    // std mutexes: every critical section is short, synchronous, and never held across an await.
    world: Mutex<World>,
    faults: Mutex<FaultEngine>,
    pub token_key: Vec<u8>,
    /// The RSA keys that sign ID tokens: drawn at the first sign-in request, not at start-up, so the
    /// many emulators that never sign anyone in pay nothing for RSA key generation.
    pub signing_keys: oidc::SigningKeys,
    pub token_lifetime: Mutex<Duration>,
    pub http: reqwest::Client,
    pub recorder: Option<Recorder>,
}

impl Shared {
    /// The emulator's time: the injected clock plus the control offset.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
            + *self
                .clock_offset
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The Graph root, `{url}/v1.0`.
    pub fn root(&self) -> String {
        format!("{}/v1.0", self.base)
    }

    /// The world, locked.
    pub fn world(&self) -> MutexGuard<'_, World> {
        self.world
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The fault engine, locked.
    pub fn fault_engine(&self) -> MutexGuard<'_, FaultEngine> {
        self.faults
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The issuer of ID tokens, `{url}/{tenant}/v2.0`.
    pub fn issuer(&self) -> String {
        format!("{}/{}/v2.0", self.base, self.tenant_id)
    }

    /// Lifetime of tokens issued now.
    pub fn token_lifetime(&self) -> Duration {
        *self
            .token_lifetime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The background task serving HTTP; taken (once) by shutdown.
type ServerTask = JoinHandle<Result<(), std::io::Error>>;

/// A running emulator (cheap-clone handle).
#[derive(Clone)]
pub struct Emulator {
    shared: Arc<Shared>,
    url: url::Url,
    cancel: CancellationToken,
    server: Arc<tokio::sync::Mutex<Option<ServerTask>>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1.0", any(print_api::handle))
        .route("/v1.0/{*rest}", any(print_api::handle))
        .route("/{tenant}/oauth2/v2.0/token", post(identity::token))
        .route(
            "/{tenant}/oauth2/v2.0/devicecode",
            post(identity::devicecode),
        )
        .route(
            "/{tenant}/oauth2/v2.0/authorize",
            get(oidc::authorize_page).post(oidc::authorize_sign_in),
        )
        .route(
            "/{tenant}/v2.0/.well-known/openid-configuration",
            get(oidc::openid_configuration),
        )
        .route("/{tenant}/discovery/v2.0/keys", get(oidc::keys))
        .merge(control::router())
        .fallback(print_api::not_found)
        .with_state(shared)
}

impl Emulator {
    /// Binds `options.listen` and serves in the background until [`Emulator::shutdown`].
    pub async fn start(options: EmulatorOptions) -> Result<Emulator, EmulatorError> {
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(|source| EmulatorError::Bind {
                addr: options.listen,
                source,
            })?;
        let addr = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind {
                addr: options.listen,
                source,
            })?;
        let base = format!("http://{addr}");
        let url = url::Url::parse(&base)
            .map_err(|e| EmulatorError::Control(format!("bad listen address {addr}: {e}")))?;
        let recorder = match &options.record_path {
            Some(path) => Some(
                Recorder::open(path).map_err(|source| EmulatorError::Record {
                    path: path.clone(),
                    source,
                })?,
            ),
            None => None,
        };
        let mut token_key = vec![0u8; 32];
        rand::rng().fill_bytes(&mut token_key);
        let shared = Arc::new(Shared {
            base,
            tenant_id: options.tenant_id,
            apps: options.apps,
            page_size: options.page_size.max(1),
            notification_parent_url: options.notification_parent_url,
            device_code_interval: options.device_code_interval,
            validation_timeout: options.validation_timeout,
            notification_timeout: options.notification_timeout,
            notification_attempts: options.notification_attempts,
            notification_retry_delay: options.notification_retry_delay,
            clock: options.clock,
            clock_offset: Mutex::new(time::Duration::ZERO),
            world: Mutex::new(World::default()),
            faults: Mutex::new(FaultEngine::new(options.faults, options.seed)),
            token_key,
            signing_keys: oidc::SigningKeys::default(),
            token_lifetime: Mutex::new(options.token_lifetime),
            http: reqwest::Client::new(),
            recorder,
        });
        let cancel = CancellationToken::new();
        let app = router(Arc::clone(&shared));
        let stop = cancel.clone();
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        });
        tracing::info!(url = %url, "emulator listening");
        Ok(Emulator {
            shared,
            url,
            cancel,
            server: Arc::new(tokio::sync::Mutex::new(Some(server))),
        })
    }

    /// The emulator's root URL, e.g. `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> url::Url {
        self.url.clone()
    }

    /// The Graph root, `{url}v1.0`.
    pub fn graph_url(&self) -> String {
        self.shared.root()
    }

    /// The tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.shared.tenant_id
    }

    /// The token endpoint, `{url}{tenant}/oauth2/v2.0/token`.
    pub fn token_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/token",
            self.shared.base, self.shared.tenant_id
        )
    }

    /// The ID tokens' issuer, `{url}{tenant}/v2.0` (also the OpenID Connect discovery base).
    pub fn issuer(&self) -> String {
        self.shared.issuer()
    }

    /// The OpenID Connect discovery document, `{issuer}/.well-known/openid-configuration`.
    pub fn openid_configuration_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.shared.issuer())
    }

    /// The authorization endpoint, `{url}{tenant}/oauth2/v2.0/authorize`.
    pub fn authorize_url(&self) -> String {
        format!(
            "{}/{}/oauth2/v2.0/authorize",
            self.shared.base, self.shared.tenant_id
        )
    }

    /// The signing keys (JWKS), `{url}{tenant}/discovery/v2.0/keys`.
    pub fn jwks_url(&self) -> String {
        format!(
            "{}/{}/discovery/v2.0/keys",
            self.shared.base, self.shared.tenant_id
        )
    }

    /// In-process control.
    pub fn control(&self) -> Control {
        Control::new(Arc::clone(&self.shared))
    }

    /// Stops serving and waits for the server to finish.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        if let Some(server) = self.server.lock().await.take()
            && let Ok(Err(error)) = server.await
        {
            tracing::warn!(%error, "emulator server stopped with an error");
        }
    }
}

/// `pullprintd emulator`: starts, prints one line with the URL, tenant, client id and secret, and
/// serves until `shutdown` is cancelled.
pub async fn run(
    options: EmulatorOptions,
    shutdown: CancellationToken,
) -> Result<(), EmulatorError> {
    let client = options.apps.first().map(|a| {
        (
            a.client_id.clone(),
            a.client_secret.clone().unwrap_or_default(),
        )
    });
    let emulator = Emulator::start(options).await?;
    let (client_id, secret) = client.unwrap_or_default();
    println!(
        "emulator listening on {} tenant={} client_id={} client_secret={}",
        emulator.url(),
        emulator.tenant_id(),
        client_id,
        secret
    );
    shutdown.cancelled().await;
    emulator.shutdown().await;
    Ok(())
}
