//! The control API: test setup, fault injection, clock and inspection, both as in-process methods
//! on [`Control`] and as JSON over HTTP under `/_emulator/…` (no authentication: the emulator is a
//! test bed and must never face a real network). The HTTP routes are listed in the module docs of
//! [`crate::emulator`].

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

use super::faults::Faults;
use super::identity;
use super::oidc;
use super::print_api::after_task_created;
use super::state::{
    DirectoryGroup, DirectoryUser, JobView, NewJob, NewPrinter, NewPullPrinter, PrintedJob,
    PrinterStatusChange, PullJobView, SubmittedJob, TaskView, graph_time,
};
use super::subscriptions::{self, DeliveryRecord, SubscriptionView};
use super::{EmulatorError, Shared};

/// Graph calls counted by route key (`"PATCH /print/printers/{id}/jobs/{id}"`), then by status.
pub type CallCounts = BTreeMap<String, BTreeMap<u16, u64>>;

/// Which key signs a forged ID token ([`Control::forge_id_token`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ForgeKey {
    /// The emulator's own key, published in its JWKS: the signature verifies.
    #[default]
    Emulator,
    /// A key nobody publishes (the header still names the emulator's `kid`): the signature fails.
    Other,
}

/// In-process access to the emulator's control operations (cheap to clone).
#[derive(Clone)]
pub struct Control {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control")
            .field("url", &self.shared.base)
            .finish_non_exhaustive()
    }
}

impl Control {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Creates a printer; returns it as `GET /print/printers/{id}` would.
    pub fn create_printer(&self, printer: NewPrinter) -> Result<Value, EmulatorError> {
        let now = self.shared.now();
        self.shared
            .world()
            .create_printer(printer, now)
            .map_err(EmulatorError::Control)
    }

    /// Sets a printer's `status` (and `isAcceptingJobs`), as `GET printer` serves it from now on: a
    /// jam, a pause, a printer gone offline.
    pub fn set_printer_status(
        &self,
        printer_id: &str,
        status: &PrinterStatusChange,
    ) -> Result<(), EmulatorError> {
        self.shared
            .world()
            .set_printer_status(printer_id, status)
            .map_err(EmulatorError::Control)
    }

    /// Creates a task definition owned by `app_id` (the first registered app when `None`); returns its id.
    pub fn create_task_definition(&self, app_id: Option<&str>, display_name: &str) -> String {
        let app = app_id.map_or_else(
            || {
                self.shared
                    .apps
                    .first()
                    .map(|a| a.client_id.clone())
                    .unwrap_or_default()
            },
            str::to_owned,
        );
        self.shared
            .world()
            .create_definition_for(&app, display_name)
    }

    /// Creates a trigger on a printer for a definition (setup shortcut: no delegated admin token);
    /// the one-trigger-per-printer rule still applies. Returns the trigger id.
    pub fn create_trigger(
        &self,
        printer_id: &str,
        definition_id: &str,
    ) -> Result<String, EmulatorError> {
        let mut world = self.shared.world();
        let app = world
            .definitions
            .get(definition_id)
            .map(|d| d.app_id.clone())
            .ok_or_else(|| {
                EmulatorError::Control(format!("no task definition '{definition_id}'"))
            })?;
        let trigger = world
            .create_trigger(printer_id, definition_id, &app)
            .map_err(|e| EmulatorError::Control(e.message))?;
        Ok(trigger["id"].as_str().unwrap_or_default().to_owned())
    }

    /// Submits a job as a user; held (with a task) when the printer has a trigger. Notifications for
    /// the new task are sent in the background.
    pub fn submit_job(&self, job: NewJob) -> Result<SubmittedJob, EmulatorError> {
        let now = self.shared.now();
        let (submitted, created) = self
            .shared
            .world()
            .submit_job(job, now)
            .map_err(EmulatorError::Control)?;
        after_task_created(&self.shared, created.as_ref());
        Ok(submitted)
    }

    /// Whether a job redirected onto a printer that carries a trigger is held there again with a new
    /// `processing` task (`true`) or prints at once (`false`, the default): Microsoft does not say,
    /// so the daemon must work either way (see the rules in `state`).
    pub fn set_redirect_holds_again(&self, holds: bool) {
        self.shared.world().redirect_holds_again = holds;
    }

    /// Adds (or replaces, by UPN) a directory user.
    pub fn add_user(&self, user: DirectoryUser) -> DirectoryUser {
        self.shared.world().upsert_user(user)
    }

    /// Adds (or replaces, by id) a directory group; its members are UPNs, user ids or group ids.
    pub fn add_group(&self, group: DirectoryGroup) -> DirectoryGroup {
        self.shared.world().upsert_group(group)
    }

    /// Replaces the faults in force.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.fault_engine().faults = faults;
    }

    /// The faults in force.
    pub fn faults(&self) -> Faults {
        self.shared.fault_engine().faults.clone()
    }

    /// Token requests so far that reached the fault check (client credentials well-formed enough to
    /// name a known tenant), and how many of them `token_failure_rate` refused.
    pub fn token_requests(&self) -> (u64, u64) {
        self.shared.fault_engine().token_requests
    }

    /// Sets the lifetime of tokens issued from now on.
    pub fn set_token_lifetime(&self, lifetime: Duration) {
        *self
            .shared
            .token_lifetime
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = lifetime;
    }

    /// Moves the emulator's clock forward (tokens, subscriptions and device codes expire by it).
    pub fn advance_clock(&self, by: time::Duration) {
        *self
            .shared
            .clock_offset
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) += by;
    }

    /// The emulator's current time.
    pub fn now(&self) -> OffsetDateTime {
        self.shared.now()
    }

    /// Approves a pending device code as a user, with or without the Printer Administrator role.
    pub fn approve_device_code(
        &self,
        user_code: &str,
        user_principal_name: &str,
        printer_admin: bool,
    ) -> Result<(), EmulatorError> {
        identity::settle_device_code(
            &self.shared,
            user_code,
            Some((user_principal_name, printer_admin)),
        )
        .map_err(EmulatorError::Control)
    }

    /// Declines a pending device code.
    pub fn decline_device_code(&self, user_code: &str) -> Result<(), EmulatorError> {
        identity::settle_device_code(&self.shared, user_code, None).map_err(EmulatorError::Control)
    }

    /// Registers a redirect URI for an app's authorization code flow (the daemon's port is known
    /// only at run time). Entra's restrictions apply: `https`, or `http` on a loopback host, no
    /// fragment, at most 256 characters. Registering one twice is not an error.
    pub fn add_redirect_uri(&self, client_id: &str, uri: &str) -> Result<(), EmulatorError> {
        if !self.shared.apps.iter().any(|a| a.client_id == client_id) {
            return Err(EmulatorError::Control(format!(
                "no app registration with client id '{client_id}'"
            )));
        }
        oidc::check_redirect_uri(uri).map_err(EmulatorError::Control)?;
        let mut world = self.shared.world();
        let uris = world.redirect_uris.entry(client_id.to_owned()).or_default();
        if !uris.iter().any(|u| u == uri) {
            uris.push(uri.to_owned());
        }
        Ok(())
    }

    /// The claims of the ID token the emulator would issue now to `client_id` for `upn` (with
    /// `nonce`): a starting point for [`Control::forge_id_token`].
    pub fn id_token_claims(&self, client_id: &str, upn: &str, nonce: Option<&str>) -> Value {
        oidc::id_token_claims(&self.shared, client_id, upn, nonce)
    }

    /// An RS256 ID token with exactly `claims`, signed with the emulator's key or with a key nobody
    /// publishes; its header names the emulator's `kid` either way. For tests of a relying party:
    /// another audience, issuer or tenant, an expired token, a wrong nonce, a wrong signature.
    pub fn forge_id_token(&self, claims: &Value, key: ForgeKey) -> Result<String, EmulatorError> {
        oidc::sign_id_token(&self.shared, claims, key == ForgeKey::Other)
            .map_err(EmulatorError::Control)
    }

    /// Makes the next authorization-code redemption answer `id_token` (e.g. one made by
    /// [`Control::forge_id_token`]) instead of the ID token it would issue.
    pub fn replace_next_id_token(&self, id_token: &str) {
        self.shared.world().next_id_token = Some(id_token.to_owned());
    }

    /// Creates a pull printer whose members are existing printers; returns it as
    /// `GET /print/pullPrintPrinters/{id}` would.
    pub fn create_pull_printer(&self, printer: NewPullPrinter) -> Result<Value, EmulatorError> {
        let now = self.shared.now();
        self.shared
            .world()
            .create_pull_printer(printer, now)
            .map_err(EmulatorError::Control)
    }

    /// Submits a job as a user to a pull printer (`job.printer_id` names it), where it waits for
    /// release at a member printer; returns the job's id.
    pub fn submit_pull_job(&self, job: NewJob) -> Result<String, EmulatorError> {
        let now = self.shared.now();
        self.shared
            .world()
            .submit_pull_job(job, now)
            .map_err(EmulatorError::Control)
    }

    /// A job on a pull printer: whether it still waits, and where it was released.
    pub fn pull_job(&self, job_id: &str) -> Option<PullJobView> {
        self.shared.world().pull_job_view(job_id)
    }

    /// How many release calls were refused because their token was app-only.
    pub fn refused_app_only_releases(&self) -> u64 {
        self.shared.world().refused_app_only_releases
    }

    /// Sends a `reauthorizationRequired` lifecycle notification for a subscription.
    pub fn send_lifecycle_event(&self, subscription_id: &str) -> Result<(), EmulatorError> {
        subscriptions::send_lifecycle(&self.shared, subscription_id).map_err(EmulatorError::Control)
    }

    /// A job's state, configuration, tasks and redirect target.
    pub fn job(&self, job_id: &str) -> Option<JobView> {
        self.shared.world().job_view(job_id)
    }

    /// All tasks, oldest first.
    pub fn tasks(&self) -> Vec<TaskView> {
        self.shared.world().task_views()
    }

    /// How many tasks are in `state`, without copying them: benchmarks wait on this while the
    /// daemon works, and a copy of every task would hold the emulator's lock meanwhile.
    pub fn count_tasks_in(&self, state: &str) -> usize {
        self.shared.world().count_tasks_in(state)
    }

    /// The jobs a printer printed, in order, with the configuration each printed with.
    pub fn printed(&self, printer_id: &str) -> Vec<PrintedJob> {
        self.shared
            .world()
            .printers
            .get(printer_id)
            .map(|p| p.printed.clone())
            .unwrap_or_default()
    }

    /// Live subscriptions (expired ones are deleted first).
    pub fn subscriptions(&self) -> Vec<SubscriptionView> {
        subscriptions::views(&self.shared)
    }

    /// Every notification delivery attempt (and every dropped notification) so far.
    pub fn deliveries(&self) -> Vec<DeliveryRecord> {
        self.shared.world().deliveries.clone()
    }

    /// Graph calls by route key and status since the start or the last reset.
    pub fn call_counts(&self) -> CallCounts {
        self.shared.world().calls.clone()
    }

    /// Total calls of one route key (any status).
    pub fn calls_to(&self, route_key: &str) -> u64 {
        self.shared
            .world()
            .calls
            .get(route_key)
            .map_or(0, |by_status| by_status.values().sum())
    }

    /// Total Graph calls (any route, any status).
    pub fn total_calls(&self) -> u64 {
        self.shared
            .world()
            .calls
            .values()
            .flat_map(BTreeMap::values)
            .sum()
    }

    /// Forgets the call counts.
    pub fn reset_call_counts(&self) {
        self.shared.world().calls.clear();
    }
}

fn control_error(error: &EmulatorError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"code": "badControlRequest", "message": error.to_string()}})),
    )
        .into_response()
}

fn not_found(what: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": {"code": "notFound", "message": what}})),
    )
        .into_response()
}

fn reply<T: Serialize>(result: Result<T, EmulatorError>, status: StatusCode) -> Response {
    match result {
        Ok(v) => (status, Json(v)).into_response(),
        Err(e) => control_error(&e),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DefinitionBody {
    #[serde(default)]
    app_id: Option<String>,
    display_name: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TriggerBody {
    definition_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Seconds {
    seconds: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RedirectUriBody {
    uri: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ForgeBody {
    claims: Value,
    #[serde(default)]
    key: ForgeKey,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Approval {
    user_principal_name: String,
    #[serde(default)]
    printer_admin: bool,
}

/// The `/_emulator` routes.
pub(crate) fn router() -> Router<Arc<Shared>> {
    fn c(shared: &Arc<Shared>) -> Control {
        Control::new(Arc::clone(shared))
    }
    Router::new()
        .route("/_emulator/printers", post(|State(s): State<Arc<Shared>>, Json(b): Json<NewPrinter>| async move { reply(c(&s).create_printer(b), StatusCode::CREATED) }))
        .route("/_emulator/printers/{id}/printed", get(|State(s): State<Arc<Shared>>, Path(id): Path<String>| async move { Json(c(&s).printed(&id)) }))
        .route(
            "/_emulator/printers/{id}/status",
            axum::routing::put(|State(s): State<Arc<Shared>>, Path(id): Path<String>, Json(b): Json<PrinterStatusChange>| async move {
                match c(&s).set_printer_status(&id, &b) {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => control_error(&e),
                }
            }),
        )
        .route(
            "/_emulator/printers/{id}/trigger",
            post(|State(s): State<Arc<Shared>>, Path(id): Path<String>, Json(b): Json<TriggerBody>| async move {
                reply(c(&s).create_trigger(&id, &b.definition_id).map(|id| json!({"id": id})), StatusCode::CREATED)
            }),
        )
        .route(
            "/_emulator/task-definitions",
            post(|State(s): State<Arc<Shared>>, Json(b): Json<DefinitionBody>| async move {
                (StatusCode::CREATED, Json(json!({"id": c(&s).create_task_definition(b.app_id.as_deref(), &b.display_name)})))
            }),
        )
        .route("/_emulator/jobs", post(|State(s): State<Arc<Shared>>, Json(b): Json<NewJob>| async move { reply(c(&s).submit_job(b), StatusCode::CREATED) }))
        .route(
            "/_emulator/jobs/{id}",
            get(|State(s): State<Arc<Shared>>, Path(id): Path<String>| async move {
                c(&s).job(&id).map_or_else(|| not_found(&format!("no job '{id}'")), |j| Json(j).into_response())
            }),
        )
        .route("/_emulator/pull-printers", post(|State(s): State<Arc<Shared>>, Json(b): Json<NewPullPrinter>| async move { reply(c(&s).create_pull_printer(b), StatusCode::CREATED) }))
        .route(
            "/_emulator/pull-jobs",
            post(|State(s): State<Arc<Shared>>, Json(b): Json<NewJob>| async move {
                reply(c(&s).submit_pull_job(b).map(|id| json!({"jobId": id})), StatusCode::CREATED)
            }),
        )
        .route(
            "/_emulator/pull-jobs/{id}",
            get(|State(s): State<Arc<Shared>>, Path(id): Path<String>| async move {
                c(&s).pull_job(&id).map_or_else(|| not_found(&format!("no pull-print job '{id}'")), |j| Json(j).into_response())
            }),
        )
        .route(
            "/_emulator/release-refusals",
            get(|State(s): State<Arc<Shared>>| async move { Json(json!({"appOnly": c(&s).refused_app_only_releases()})) }),
        )
        .route(
            "/_emulator/apps/{client}/redirect-uris",
            post(|State(s): State<Arc<Shared>>, Path(client): Path<String>, Json(b): Json<RedirectUriBody>| async move {
                match c(&s).add_redirect_uri(&client, &b.uri) {
                    Ok(()) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => control_error(&e),
                }
            }),
        )
        .route(
            "/_emulator/id-tokens",
            post(|State(s): State<Arc<Shared>>, Json(b): Json<ForgeBody>| async move {
                reply(c(&s).forge_id_token(&b.claims, b.key).map(|t| json!({"idToken": t})), StatusCode::OK)
            }),
        )
        .route("/_emulator/tasks", get(|State(s): State<Arc<Shared>>| async move { Json(c(&s).tasks()) }))
        .route("/_emulator/users", post(|State(s): State<Arc<Shared>>, Json(b): Json<DirectoryUser>| async move { (StatusCode::CREATED, Json(c(&s).add_user(b))) }))
        .route("/_emulator/groups", post(|State(s): State<Arc<Shared>>, Json(b): Json<DirectoryGroup>| async move { (StatusCode::CREATED, Json(c(&s).add_group(b))) }))
        .route(
            "/_emulator/faults",
            get(|State(s): State<Arc<Shared>>| async move { Json(c(&s).faults()) })
                .put(|State(s): State<Arc<Shared>>, Json(b): Json<Faults>| async move {
                    c(&s).set_faults(b);
                    Json(c(&s).faults())
                }),
        )
        .route(
            "/_emulator/token-lifetime",
            axum::routing::put(|State(s): State<Arc<Shared>>, Json(b): Json<Seconds>| async move {
                c(&s).set_token_lifetime(Duration::from_secs(u64::try_from(b.seconds).unwrap_or(0)));
                Json(json!({"seconds": b.seconds}))
            }),
        )
        .route("/_emulator/clock", get(|State(s): State<Arc<Shared>>| async move { Json(json!({"now": graph_time(c(&s).now())})) }))
        .route(
            "/_emulator/clock/advance",
            post(|State(s): State<Arc<Shared>>, Json(b): Json<Seconds>| async move {
                c(&s).advance_clock(time::Duration::seconds(b.seconds));
                Json(json!({"now": graph_time(c(&s).now())}))
            }),
        )
        .route(
            "/_emulator/device-codes/{code}/approve",
            post(|State(s): State<Arc<Shared>>, Path(code): Path<String>, Json(b): Json<Approval>| async move {
                reply(c(&s).approve_device_code(&code, &b.user_principal_name, b.printer_admin).map(|()| json!({})), StatusCode::OK)
            }),
        )
        .route(
            "/_emulator/device-codes/{code}/decline",
            post(|State(s): State<Arc<Shared>>, Path(code): Path<String>| async move { reply(c(&s).decline_device_code(&code).map(|()| json!({})), StatusCode::OK) }),
        )
        .route("/_emulator/subscriptions", get(|State(s): State<Arc<Shared>>| async move { Json(c(&s).subscriptions()) }))
        .route(
            "/_emulator/subscriptions/{id}/lifecycle",
            post(|State(s): State<Arc<Shared>>, Path(id): Path<String>| async move { reply(c(&s).send_lifecycle_event(&id).map(|()| json!({})), StatusCode::ACCEPTED) }),
        )
        .route("/_emulator/deliveries", get(|State(s): State<Arc<Shared>>| async move { Json(c(&s).deliveries()) }))
        .route(
            "/_emulator/calls",
            get(|State(s): State<Arc<Shared>>| async move { Json(c(&s).call_counts()) }).delete(|State(s): State<Arc<Shared>>| async move {
                c(&s).reset_call_counts();
                StatusCode::NO_CONTENT
            }),
        )
}
