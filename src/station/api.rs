//! The station API (`/api/v1/sessions`, `/api/v1/jobs…`, `/api/v1/station`): sign-in at a station,
//! the signed-in person's held jobs, and releasing or deleting them.
//!
//! Invariants:
//! - a person sees, releases and deletes only their own jobs; another person's job id answers 404,
//!   exactly like an unknown id, so ids cannot be probed. The exception is delegation: a person named
//!   in someone's `delegates` (users file), or a member of their `delegate_group`, also sees and releases that person's jobs (not deletes
//!   them, and not in release-all), bound by the same policy and hold-rule terms as the owner; the
//!   audit log records the owner and the delegate who released;
//! - a job's id here is its print task id (stable for the job's whole hold, opaque to clients);
//! - `200 released` is answered only when the executor recorded Graph's confirmation within
//!   `release.confirm_wait`, `202 queued` when the action is durably queued but not yet confirmed;
//! - releases are checked against the *station's* printer (where the paper comes out): a job held on
//!   another printer is redirected there (find-me);
//! - a release to a printer whose status says it cannot print (jammed, paused, stopped, offline…)
//!   queues nothing: it answers 409 `printer_not_ready` with the reason and the printers of the
//!   other stations of the group that can print, and the job stays held;
//! - a PIN is checked with argon2 on the blocking pool, never on the async workers, holding one of a
//!   bounded number of permits, and only after a failure-budget slot and a lockout attempt were
//!   reserved for it (see [`sign_in`]);
//! - session calls need the session token and the key of the station that made it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};

use std::sync::Arc;

use super::error::{Alternative, ApiError, ErrorBody};
use super::lockout::{LockedOut, Subject};
use super::pull;
use super::state::{SignInRules, Station, StationState};
use super::users::User;
use crate::graph::PrintJobConfiguration;
use crate::job::options::{self, Choices, ReleaseOptions};
use crate::job::{HeldJob, Outcome, TextEnum};
use crate::release::service::{AtStation, SubmitError, Submitted};
use crate::store::EnqueueError;

/// `POST /api/v1/sessions` body: a card number (with the PIN when `[users] card_requires_pin`), or
/// a user and PIN. Each field is at most 256 bytes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The card number the reader typed.
    #[serde(default)]
    pub card: Option<String>,
    /// The user's UPN (with `pin`).
    #[serde(default)]
    pub user: Option<String>,
    /// The user's PIN (with `user`, or with `card`).
    #[serde(default)]
    pub pin: Option<String>,
}

/// The signed-in person.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionUser {
    /// User principal name.
    pub upn: String,
    /// Name to greet them with.
    pub display_name: String,
}

/// `201` answer to a sign-in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionCreated {
    /// The session token: send it as `Authorization: Bearer` on the job calls.
    pub token: String,
    /// Who signed in.
    pub user: SessionUser,
    /// When the session ends unless used (each call extends it).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Seconds of inactivity after which the session ends (each call starts them again). Relative,
    /// so a station with a wrong clock still signs out on time.
    pub idle_seconds: u64,
    /// Seconds until the session ends however busy (`[users] session_lifetime`).
    pub lifetime_seconds: u64,
}

/// `GET /api/v1/sessions/current`: the session the token belongs to, and its station.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CurrentSession {
    /// Who is signed in.
    pub user: SessionUser,
    /// The station the session is for (where releases print).
    pub station: StationInfo,
    /// Seconds of inactivity after which the session ends.
    pub idle_seconds: u64,
    /// Seconds until the session ends however busy.
    pub lifetime_seconds: u64,
    /// Made by a phone's sign-in (the token is accepted without a station key).
    pub phone: bool,
}

/// `GET /api/v1/station`: the station the key belongs to.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationInfo {
    /// The station id.
    pub id: String,
    /// The printer its releases print on.
    pub printer_id: String,
    /// That printer's display name (its id when Graph is unreachable).
    pub printer_name: String,
    /// What a person may choose here, said before they choose ("black and white only").
    pub policy: StationPolicy,
}

/// What releases at a station may ask for: the `[release]` policy within the printer's
/// capabilities, for a job sent with no options (a job's own choices are at `/jobs/{id}/options`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StationPolicy {
    /// The most copies of a job.
    pub max_copies: i32,
    /// Only paper- and toner-saving changes (`[release] saving_only`).
    pub saving_only: bool,
    /// The colour modes the printer offers (no `color` or `auto`: black and white only).
    pub color_modes: Vec<String>,
    /// The sides the printer offers (only `oneSided`: one-sided only).
    pub duplex_modes: Vec<String>,
}

/// A held job as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// The job's id in this API (its print task id).
    pub id: String,
    /// The printer that holds it.
    pub printer_id: String,
    /// That printer's display name, when Graph told it (the kiosk shows it instead of the id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printer_name: Option<String>,
    /// The document name.
    pub name: String,
    /// The owner's UPN.
    pub owner: String,
    /// When it was printed.
    #[serde(with = "time::serde::rfc3339")]
    pub submitted_at: OffsetDateTime,
    /// Graph's `printJobConfiguration` as submitted.
    #[schema(value_type = Object)]
    pub configuration: PrintJobConfiguration,
    /// `held`, or `acting` while a release or delete is under way (admin view).
    pub state: String,
    /// A job waiting on a pull-print printer (`[printing] pull_printers`): its options cannot be
    /// changed at release.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fixed_options: bool,
}

impl JobView {
    /// The view of a stored held job.
    pub fn of(job: &HeldJob) -> Self {
        Self {
            id: job.job.task_id.clone(),
            printer_id: job.job.printer_id.clone(),
            printer_name: None,
            name: job.job.name.clone(),
            owner: job.job.owner_upn.clone(),
            submitted_at: job.job.submitted_at,
            configuration: job.job.configuration.clone(),
            state: job.state.as_str().to_owned(),
            fixed_options: false,
        }
    }
}

/// A list of held jobs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// Oldest first.
    pub jobs: Vec<JobView>,
    /// The admin listing only: more jobs follow; ask again with `after` set to this cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

/// The answer to a release or delete.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActionAnswer {
    /// `released` (Graph confirmed; also after a find-me redirect), `deleted`, or `queued` (the
    /// durable queue finishes it; Graph is slow or down).
    pub status: String,
    /// How it went, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One job's outcome in a release-all.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobResult {
    /// The job's id.
    pub id: String,
    /// The document name.
    pub name: String,
    /// `released`, `queued`, or `failed`.
    pub status: String,
    /// For `failed`: the error's stable code (as in an error answer), for the page to translate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Why it failed, or how it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `POST /api/v1/jobs/release-all` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReleaseAllAnswer {
    /// One entry per job that was held (empty: nothing to print).
    pub results: Vec<JobResult>,
}

/// Parses a JSON body; an empty body is `T::default()`. Unknown fields and wrong types are 400.
pub(crate) fn parse_body<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    parse_required(body)
}

fn parse_required<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("the request body is not valid: {error}")))
}

/// The longest `card`, `user` or `pin` accepted (bytes); longer ones answer 422 naming the field.
pub const MAX_FIELD_BYTES: usize = 256;

/// The longest card number accepted, whatever `[users] card_pattern` says.
pub const MAX_CARD_CHARS: usize = 64;

/// The largest sign-in body accepted (bytes); larger ones answer 413.
pub const MAX_SIGN_IN_BODY: usize = 4096;

/// How long a card sign-in waits for the directory (Graph retries a failing lookup for longer):
/// the person at the kiosk gets a 503 and can sign in with user and PIN instead.
pub const DIRECTORY_LOOKUP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How long a sign-in waits for a PIN-check permit before answering 429 `busy`.
pub const PIN_CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A sign-in request, checked for shape and size.
enum Credential {
    Card(String),
    CardAndPin(String, String),
    UserAndPin(String, String),
}

fn capped(field: &'static str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.len() > MAX_FIELD_BYTES => Err(ApiError::bad_field(
            field,
            format!("`{field}` is longer than {MAX_FIELD_BYTES} bytes"),
        )),
        other => Ok(other),
    }
}

impl Credential {
    fn from_request(request: SignInRequest, rules: &SignInRules) -> Result<Self, ApiError> {
        let card = capped("card", request.card)?.map(|c| c.trim().to_owned());
        let user = capped("user", request.user)?.map(|u| u.trim().to_lowercase());
        let pin = capped("pin", request.pin)?;
        if let Some(card) = &card
            && (card.chars().count() > MAX_CARD_CHARS || !rules.card_pattern.is_match(card))
        {
            return Err(ApiError::bad_field(
                "card",
                "this is not a card number this station accepts; swipe the card again or sign in \
                 with user and PIN",
            ));
        }
        match (card, user, pin) {
            (Some(_), None, None) if rules.card_requires_pin => Err(ApiError::bad_request(
                "this station needs the card and the PIN: send {\"card\":\"…\",\"pin\":\"…\"}",
            )),
            (Some(card), None, None) => Ok(Self::Card(card)),
            (Some(card), None, Some(pin)) => Ok(Self::CardAndPin(card, pin)),
            (None, Some(user), Some(pin)) if !user.is_empty() => Ok(Self::UserAndPin(user, pin)),
            _ => Err(ApiError::bad_request(
                "send {\"card\":\"…\"}, {\"card\":\"…\",\"pin\":\"…\"} or \
                 {\"user\":\"name@domain\",\"pin\":\"…\"}",
            )),
        }
    }
}

/// Why a sign-in did not produce a session.
enum Refused {
    /// The credential was checked and is wrong; `locked` when this failure (or one meanwhile)
    /// locked the subject.
    Failed(Option<LockedOut>),
    /// Refused before any check: locked out, or every remaining attempt is under way.
    Locked(LockedOut),
    /// Every PIN-check permit is taken.
    Busy,
    /// The directory lookup failed (counted as a failure: an attacker must not get free guesses by
    /// making Graph slow).
    DirectoryDown,
    /// A bug (a panicked PIN check).
    Internal(ApiError),
}

impl Refused {
    /// Whether the station's and the global failure budgets are charged.
    fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_) | Self::DirectoryDown)
    }

    fn outcome(&self) -> &'static str {
        match self {
            Self::Failed(None) | Self::DirectoryDown | Self::Internal(_) => "failed",
            Self::Failed(Some(_)) | Self::Locked(_) => "locked_out",
            Self::Busy => "busy",
        }
    }

    fn into_error(self) -> ApiError {
        match self {
            Self::Failed(Some(locked)) | Self::Locked(locked) => {
                ApiError::locked_out(locked.retry_after_secs)
            }
            Self::Failed(None) => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "sign_in_failed",
                "this card, user or PIN is not known; try again or ask the administrator",
            ),
            Self::Busy => ApiError::too_many(
                "busy",
                "the daemon is busy checking other sign-ins; try again in a moment",
                1,
            ),
            Self::DirectoryDown => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "directory_unavailable",
                "this card cannot be looked up right now; sign in with user and PIN, or try again shortly",
            ),
            Self::Internal(error) => error,
        }
    }
}

/// Signs a person in at the station whose key is the bearer token.
///
/// Order (each step bounds the next): the station key; the body's size, shape and field lengths;
/// the card format; a slot in the station's and the global failure budgets; a reserved attempt for
/// the card or person (lockout); a PIN-check permit; then the lookup and the argon2 check.
#[utoipa::path(
    post, path = "/api/v1/sessions", tag = "station",
    request_body = SignInRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Signed in", body = SessionCreated),
        (status = 400, description = "Neither a card nor a user and PIN", body = ErrorBody),
        (status = 401, description = "Unknown station key, card, user or wrong PIN", body = ErrorBody),
        (status = 413, description = "The body is larger than 4 KiB"),
        (status = 422, description = "A field is too long, or the card number has the wrong format", body = ErrorBody),
        (status = 429, description = "Locked out, the station's failure budget is spent, or busy (see Retry-After)", body = ErrorBody),
        (status = 503, description = "The directory card lookup is unavailable", body = ErrorBody),
    )
)]
pub async fn sign_in(
    State(state): State<StationState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let station = state.station_by_key(&headers)?.clone();
    let metrics = state.metrics().clone();
    let credential = parse_required(&body)
        .and_then(|request| Credential::from_request(request, state.sign_in_rules()))
        .inspect_err(|_| metrics.sign_in("invalid"))?;
    let slot = state.budget().reserve_guarded(&station.id).await.map_err(|exhausted| {
        metrics.sign_in(exhausted.scope.as_str());
        ApiError::too_many(
            "sign_in_budget",
            format!(
                "too many failed sign-ins here recently; try again in {} (or ask the administrator)",
                humantime::format_duration(std::time::Duration::from_secs(
                    exhausted.retry_after_secs
                ))
            ),
            exhausted.retry_after_secs,
        )
    })?;
    let user = match authenticate(&state, credential).await {
        Ok(user) => {
            slot.succeeded().await;
            user
        }
        Err(refused) => {
            if refused.is_failure() {
                slot.failed().await;
            } else {
                slot.succeeded().await;
            }
            metrics.sign_in(refused.outcome());
            if matches!(refused, Refused::Failed(Some(_))) {
                // This failure reached the limit (or met a lockout set meanwhile).
                metrics.lockout();
            }
            if matches!(refused, Refused::Failed(_)) {
                tracing::info!(station = %station.id, "a sign-in failed");
            }
            return Err(refused.into_error());
        }
    };
    metrics.sign_in("ok");
    let (token, session) = state
        .sessions()
        .create(&user.upn, &user.display_name, &station.id)
        .await
        .map_err(|e| ApiError::store_unavailable("signing in", &e))?;
    tracing::info!(station = %station.id, user = %user.upn, "signed in");
    let idle = state.sessions().idle_timeout();
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            token,
            user: SessionUser {
                upn: session.upn,
                display_name: session.display_name,
            },
            expires_at: session.expires_at,
            idle_seconds: u64::try_from(idle.whole_seconds()).unwrap_or(0),
            lifetime_seconds: u64::try_from((session.ends_at - state.now()).whole_seconds())
                .unwrap_or(0),
        }),
    ))
}

/// Checks a credential; the caller holds a budget slot.
async fn authenticate(state: &StationState, credential: Credential) -> Result<User, Refused> {
    let lockout = state.lockout();
    match credential {
        Credential::Card(card) => {
            let attempt = lockout
                .reserve_guarded(Subject::Card(&card))
                .await
                .map_err(Refused::Locked)?;
            match find_card(state, &card).await {
                Ok(Some(user)) => match attempt.succeeded().await {
                    Ok(()) => Ok(user),
                    Err(locked) => Err(Refused::Locked(locked)),
                },
                Ok(None) => Err(Refused::Failed(attempt.failed().await.err())),
                Err(()) => {
                    let _ = attempt.failed().await;
                    Err(Refused::DirectoryDown)
                }
            }
        }
        Credential::CardAndPin(card, pin) => {
            let attempt = lockout
                .reserve_guarded(Subject::Card(&card))
                .await
                .map_err(Refused::Locked)?;
            match find_card(state, &card).await {
                Ok(Some(user)) => {
                    // A real card: what is guessed now is the person's PIN, counted against them.
                    attempt.cancel().await;
                    check_pin(state, user.upn, pin).await
                }
                Ok(None) => Err(Refused::Failed(attempt.failed().await.err())),
                Err(()) => {
                    let _ = attempt.failed().await;
                    Err(Refused::DirectoryDown)
                }
            }
        }
        Credential::UserAndPin(upn, pin) => check_pin(state, upn, pin).await,
    }
}

/// Reserves an attempt for `upn` and a PIN-check permit, then checks the PIN on the blocking pool.
/// The attempt is settled after the check; a client that hangs up mid-check still pays for its
/// guess (an attempt dropped unsettled counts as a failure).
async fn check_pin(state: &StationState, upn: String, pin: String) -> Result<User, Refused> {
    let attempt = state
        .lockout()
        .reserve_guarded(Subject::Upn(&upn))
        .await
        .map_err(Refused::Locked)?;
    // A short wait for a permit smooths a morning rush at many kiosks; beyond it, 429 at once.
    let permit = tokio::time::timeout(
        PIN_CHECK_WAIT,
        Arc::clone(state.pin_checks()).acquire_owned(),
    )
    .await;
    let Ok(Ok(permit)) = permit else {
        attempt.cancel().await;
        return Err(Refused::Busy);
    };
    let users = state.users();
    let metrics = state.metrics().clone();
    let min_length = state.sign_in_rules().pin_min_length;
    let checked = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        // A PIN shorter than any PIN can be is wrong without costing an argon2 run.
        if pin.chars().count() < min_length {
            None
        } else {
            metrics.pin_checked();
            users.verify_pin(&upn, &pin).cloned()
        }
    })
    .await;
    match checked {
        Ok(Some(user)) => attempt
            .succeeded()
            .await
            .map(|()| user)
            .map_err(Refused::Locked),
        Ok(None) => Err(Refused::Failed(attempt.failed().await.err())),
        Err(e) => {
            // The check itself broke: it still counts (a crash is not a free guess).
            let _ = attempt.failed().await;
            Err(Refused::Internal(ApiError::internal(
                "checking the PIN",
                &e,
            )))
        }
    }
}

/// The users file first, then (if enabled) the directory; `Err` when the directory failed.
async fn find_card(state: &StationState, card: &str) -> Result<Option<User>, ()> {
    if let Some(user) = state.users().by_card(card) {
        return Ok(Some(user.clone()));
    }
    let Some(directory) = state.directory() else {
        return Ok(None);
    };
    match tokio::time::timeout(DIRECTORY_LOOKUP_WAIT, directory.by_card(card)).await {
        Ok(Ok(user)) => Ok(user),
        Ok(Err(error)) => {
            tracing::warn!(%error, "the directory card lookup failed");
            Err(())
        }
        Err(_) => {
            tracing::warn!("the directory card lookup took too long; answering 503");
            Err(())
        }
    }
}

/// Signs out (the session token is the bearer token). Unknown tokens are ignored.
#[utoipa::path(
    delete, path = "/api/v1/sessions/current", tag = "station",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Signed out"),
        (status = 401, description = "No bearer token", body = ErrorBody),
    )
)]
pub async fn sign_out(
    State(state): State<StationState>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let token = state.session_token(&headers)?;
    if let Some(phone) = state.phone() {
        phone.forget(token);
    }
    state
        .sessions()
        .remove(token)
        .await
        .map_err(|e| ApiError::store_unavailable("signing out", &e))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The station the key belongs to (the kiosk's set-up check).
#[utoipa::path(
    get, path = "/api/v1/station", tag = "station",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The station", body = StationInfo),
        (status = 401, description = "Unknown station key", body = ErrorBody),
    )
)]
pub async fn station_info(
    State(state): State<StationState>,
    headers: HeaderMap,
) -> Result<Json<StationInfo>, ApiError> {
    let station = state.station_by_key(&headers)?.clone();
    Ok(Json(describe_station(&state, station).await))
}

/// The session of the bearer token (with the station key, or alone from a phone), extended.
#[utoipa::path(
    get, path = "/api/v1/sessions/current", tag = "station",
    security(("bearer" = [], "stationKey" = [])),
    responses(
        (status = 200, description = "The session and its station", body = CurrentSession),
        (status = 401, description = "No valid session", body = ErrorBody),
    )
)]
pub async fn current_session(
    State(state): State<StationState>,
    headers: HeaderMap,
) -> Result<Json<CurrentSession>, ApiError> {
    let (session, station) = state.session(&headers).await?;
    let station = station.clone();
    let now = state.now();
    let seconds = |d: time::Duration| u64::try_from(d.whole_seconds()).unwrap_or(0);
    Ok(Json(CurrentSession {
        user: SessionUser {
            upn: session.upn.clone(),
            display_name: session.display_name.clone(),
        },
        station: describe_station(&state, station).await,
        idle_seconds: seconds(state.sessions().idle_timeout()),
        lifetime_seconds: seconds(session.ends_at - now),
        phone: session.phone,
    }))
}

async fn describe_station(state: &StationState, station: Station) -> StationInfo {
    let printer = state.printer(&station.printer_id).await;
    let policy = state.policy();
    let choices = options::choices(&PrintJobConfiguration::default(), printer.as_ref(), policy);
    let printer_name = printer
        .map(|p| p.display_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| station.printer_id.clone());
    StationInfo {
        id: station.id,
        printer_id: station.printer_id,
        printer_name,
        policy: StationPolicy {
            max_copies: choices.max_copies,
            saving_only: policy.saving_only,
            color_modes: choices.color_modes,
            duplex_modes: choices.duplex_modes,
        },
    }
}

/// The signed-in person's held jobs.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "station",
    security(("bearer" = [], "stationKey" = [])),
    responses(
        (status = 200, description = "The person's held jobs, and those of the people who named them a delegate, oldest first", body = JobList),
        (status = 401, description = "No valid session", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<StationState>,
    headers: HeaderMap,
) -> Result<Json<JobList>, ApiError> {
    let (session, _) = state.session(&headers).await?;
    let mut jobs = state
        .release()
        .held_jobs(&session.upn)
        .await
        .map_err(|e| ApiError::internal("listing held jobs", &e))?;
    // A delegate also sees the jobs of the people who named them (or their group).
    for owner in &state.delegators_of(&session.upn).await {
        let theirs = state
            .release()
            .held_jobs(owner)
            .await
            .map_err(|e| ApiError::internal("listing held jobs", &e))?;
        jobs.extend(theirs);
    }
    jobs.sort_by_key(|job| job.job.submitted_at);
    // Printer names come from the capabilities cache (one GET per printer per ten minutes), so a
    // person sees "Floor 2 MFP" rather than a GUID; a printer Graph cannot describe keeps its id.
    let mut names = std::collections::HashMap::new();
    for job in &jobs {
        if !names.contains_key(&job.job.printer_id) {
            let name = state
                .printer(&job.job.printer_id)
                .await
                .map(|p| p.display_name)
                .filter(|n| !n.is_empty());
            names.insert(job.job.printer_id.clone(), name);
        }
    }
    let mut views: Vec<JobView> = jobs
        .iter()
        .map(|job| JobView {
            printer_name: names.get(&job.job.printer_id).cloned().flatten(),
            ..JobView::of(job)
        })
        .collect();
    // Signed in with Entra ID: their jobs waiting on pull-print printers too, in time order.
    let pulled = pull::list(&state, state.session_token(&headers)?, &session).await;
    if !pulled.is_empty() {
        views.extend(pulled);
        views.sort_by_key(|view| view.submitted_at);
    }
    Ok(Json(JobList {
        next: None,
        jobs: views,
    }))
}

/// The person's own held job `id`, or 404.
async fn own_job(state: &StationState, upn: &str, id: &str) -> Result<HeldJob, ApiError> {
    state
        .release()
        .own_held_job(upn, id)
        .await
        .map_err(|e| ApiError::internal("reading a held job", &e))?
        .ok_or_else(|| ApiError::job_not_found(id))
}

/// The held job `id` if it is the person's own or one of someone who named them a delegate, or 404.
async fn releasable_job(state: &StationState, upn: &str, id: &str) -> Result<HeldJob, ApiError> {
    if let Some(job) = state
        .release()
        .own_held_job(upn, id)
        .await
        .map_err(|e| ApiError::internal("reading a held job", &e))?
    {
        return Ok(job);
    }
    for owner in &state.delegators_of(upn).await {
        if let Some(job) = state
            .release()
            .own_held_job(owner, id)
            .await
            .map_err(|e| ApiError::internal("reading a held job", &e))?
        {
            return Ok(job);
        }
    }
    Err(ApiError::job_not_found(id))
}

/// What the person may choose for job `id` at this station's printer.
#[utoipa::path(
    get, path = "/api/v1/jobs/{id}/options", tag = "station",
    params(("id" = String, Path, description = "The job's id")),
    security(("bearer" = [], "stationKey" = [])),
    responses(
        (status = 200, description = "The allowed choices and the current configuration", body = Choices),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 404, description = "No such held job of yours", body = ErrorBody),
    )
)]
pub async fn job_options(
    State(state): State<StationState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Choices>, ApiError> {
    let (session, station) = state.session(&headers).await?;
    if id.starts_with(pull::PREFIX) {
        let token = state.session_token(&headers)?;
        return Ok(Json(pull::options(&state, token, &session, &id).await?));
    }
    let job = releasable_job(&state, &session.upn, &id).await?;
    let printer = state.printer(&station.printer_id).await;
    // A hold rule's saving_only bounds the choices as it bounds the release.
    let policy = match hold_terms(&state, &job).await? {
        Some(terms) => terms.policy(state.policy()),
        None => state.policy(),
    };
    Ok(Json(options::choices(
        &job.job.configuration,
        printer.as_ref(),
        policy,
    )))
}

/// The terms a hold rule kept with `job`, if any.
async fn hold_terms(
    state: &StationState,
    job: &HeldJob,
) -> Result<Option<crate::job::HoldTerms>, ApiError> {
    state
        .release()
        .hold_terms(job)
        .await
        .map_err(|error| ApiError::store_unavailable("reading the job's rule", &error))
}

/// The changes releasing `job` at `station` with `options` sends (checked against the station's
/// printer and the policy), or a 422.
async fn checked_changes(
    state: &StationState,
    job: &HeldJob,
    station: &Station,
    options: &ReleaseOptions,
) -> Result<Option<PrintJobConfiguration>, ApiError> {
    let terms = hold_terms(state, job).await?;
    checked_changes_under(state, job, terms, station, options).await
}

/// [`checked_changes`] with the job's hold-rule terms already read.
async fn checked_changes_under(
    state: &StationState,
    job: &HeldJob,
    terms: Option<crate::job::HoldTerms>,
    station: &Station,
    options: &ReleaseOptions,
) -> Result<Option<PrintJobConfiguration>, ApiError> {
    let printer = state.printer(&station.printer_id).await;
    // A hold rule's forced options win over the person's choices, within its saving_only.
    let (options, policy) = match terms {
        Some(terms) => {
            let held = job.job.configuration.clone();
            (
                terms.release_options(options, &held),
                terms.policy(state.policy()),
            )
        }
        None => (options.clone(), state.policy()),
    };
    options::apply(&options, &job.job.configuration, printer.as_ref(), policy)
        .map_err(ApiError::refused)
}

/// `Ok` when `station`'s printer can print (or nothing says it cannot); otherwise the 409 naming
/// why and the printers of the station's group that can.
async fn ready(state: &StationState, station: &Station) -> Result<(), ApiError> {
    let Some(not_ready) = state.not_ready(&station.printer_id).await else {
        return Ok(());
    };
    let name = |printer_id: &str, printer: Option<crate::graph::model::Printer>| {
        printer
            .map(|p| p.display_name)
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| printer_id.to_owned())
    };
    let mut alternatives = Vec::new();
    for other in state.group_stations(station) {
        if state.not_ready(&other.printer_id).await.is_none() {
            alternatives.push(Alternative {
                station_id: other.id.clone(),
                printer_id: other.printer_id.clone(),
                printer_name: name(&other.printer_id, state.printer(&other.printer_id).await),
            });
        }
    }
    let here = name(
        &station.printer_id,
        state.printer(&station.printer_id).await,
    );
    tracing::info!(station = %station.id, printer_id = %station.printer_id, reason = %not_ready.reason, "a release was refused: the printer cannot print");
    Err(ApiError::printer_not_ready(&here, not_ready, alternatives))
}

/// Where a person at `station` releases: `target`'s printer (the station's own, or one of its
/// group's that a `printer_not_ready` answer offered); the audit names the station they stood at.
fn at<'a>(station: &'a Station, target: &'a Station) -> AtStation<'a> {
    AtStation {
        station_id: &station.id,
        printer_id: &target.printer_id,
    }
}

/// `?at=`: release at another station's printer of this station's group.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReleaseAt {
    /// The id of another station of this station's group (one of the `alternatives` a
    /// `printer_not_ready` answer listed): the job prints on that station's printer instead, for a
    /// person who will walk there. Without it, on this station's printer.
    #[serde(default)]
    pub at: Option<String>,
}

/// The station whose printer a release asked with `query` prints on: this one, or the station of
/// its group that `?at=` names.
fn target_station(
    state: &StationState,
    station: &Station,
    query: Result<Query<ReleaseAt>, axum::extract::rejection::QueryRejection>,
) -> Result<Station, ApiError> {
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(format!(
            "{e}; the only query parameter is `at` (a station id of this station's group)"
        ))
    })?;
    let Some(wanted) = query.at.filter(|id| *id != station.id) else {
        return Ok(station.clone());
    };
    state
        .group_stations(station)
        .into_iter()
        .find(|other| other.id == wanted)
        .cloned()
        .ok_or_else(|| ApiError::not_an_alternative(&wanted))
}

/// Turns the release service's answer into the API's, without ever claiming more than happened.
pub(crate) fn answer(
    id: &str,
    result: Result<Submitted, SubmitError>,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    let ok = |status: StatusCode, word: &str, detail: String| {
        Ok((
            status,
            Json(ActionAnswer {
                status: word.to_owned(),
                detail: Some(detail).filter(|d| !d.is_empty()),
            }),
        ))
    };
    match result {
        Ok(Submitted::Done(done)) => match done.outcome {
            Outcome::Released | Outcome::Redirected => ok(StatusCode::OK, "released", done.detail),
            Outcome::Deleted | Outcome::Expired => ok(StatusCode::OK, "deleted", done.detail),
            Outcome::Gone => Err(ApiError::new(
                StatusCode::GONE,
                "gone",
                format!(
                    "the job is no longer held (it was printed or deleted elsewhere): {}",
                    done.detail
                ),
            )),
            Outcome::Failed => Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "graph_refused",
                format!("Universal Print refused: {}", done.detail),
            )),
        },
        Ok(Submitted::Queued { .. }) => ok(
            StatusCode::ACCEPTED,
            "queued",
            "Universal Print has not confirmed yet; the job will print shortly".to_owned(),
        ),
        Err(SubmitError::Enqueue(EnqueueError::UnknownTask { .. })) => {
            Err(ApiError::job_not_found(id))
        }
        Err(SubmitError::Enqueue(EnqueueError::NotHeld { .. })) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_held",
            "this job is already being released or deleted, or has ended; refresh the list",
        )),
        Err(SubmitError::Enqueue(EnqueueError::Invalid(message))) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_action",
            message,
        )),
        // The store could not record it (read-only, full disk): a 503 naming the store, not a 500;
        // nothing was accepted, so nothing is lost and the person may try again.
        Err(SubmitError::Enqueue(EnqueueError::Store(error))) => {
            Err(ApiError::store_unavailable("queueing the action", &error))
        }
        // The action was committed; only reading its outcome failed.
        Err(SubmitError::Store(error)) => {
            tracing::warn!(%error, "an action was queued but its outcome could not be read");
            ok(StatusCode::ACCEPTED, "queued", String::new())
        }
    }
}

/// Releases the person's job `id` on this station's printer, with optional changed options.
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/release", tag = "station",
    params(("id" = String, Path, description = "The job's id"), ReleaseAt),
    request_body(content = ReleaseOptions, description = "Optional: the options to change (Graph's printJobConfiguration names)"),
    security(("bearer" = [], "stationKey" = [])),
    responses(
        (status = 200, description = "Graph confirmed: printing", body = ActionAnswer),
        (status = 202, description = "Queued: Graph is slow or down; it will print shortly", body = ActionAnswer),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 404, description = "No such held job of yours (or of someone who named you a delegate)", body = ErrorBody),
        (status = 409, description = "Already being released or deleted (`not_held`), or the station's printer cannot print now (`printer_not_ready`: `details` says why, `alternatives` lists the printers of the station's group that can); the job stays held", body = ErrorBody),
        (status = 410, description = "No longer held", body = ErrorBody),
        (status = 422, description = "An option the printer or the policy does not allow, or `at` names a station outside this station's group (`not_an_alternative`)", body = ErrorBody),
        (status = 502, description = "Universal Print refused the release", body = ErrorBody),
        (status = 503, description = "The store cannot take writes (read-only, disk full): nothing was changed", body = ErrorBody),
    )
)]
pub async fn release_job(
    State(state): State<StationState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    query: Result<Query<ReleaseAt>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    let (session, station) = state.session(&headers).await?;
    let station = station.clone();
    let target = target_station(&state, &station, query)?;
    let options: ReleaseOptions = parse_body(&body)?;
    if id.starts_with(pull::PREFIX) {
        // Released at this station's printer: `at=` alternatives are for held jobs.
        let token = state.session_token(&headers)?;
        return pull::release(&state, token, &session, &station, &id, &options).await;
    }
    let job = releasable_job(&state, &session.upn, &id).await?;
    let changes = checked_changes(&state, &job, &target, &options).await?;
    ready(&state, &target).await?;
    if !job.job.owner_upn.eq_ignore_ascii_case(&session.upn) {
        tracing::info!(owner = %job.job.owner_upn, delegate = %session.upn, task = %id, "a delegate releases a job");
    }
    let result = state
        .release()
        .release(
            &job,
            at(&station, &target),
            &session.upn,
            changes,
            state.now(),
        )
        .await;
    answer(&id, result)
}

/// Releases every held job of the person with the same options, and (after an Entra ID sign-in) their
/// jobs waiting on pull-print printers as they were sent; lists each job's outcome.
#[utoipa::path(
    post, path = "/api/v1/jobs/release-all", tag = "station",
    params(ReleaseAt),
    request_body(content = ReleaseOptions, description = "Optional: the options for every job"),
    security(("bearer" = [], "stationKey" = [])),
    responses(
        (status = 200, description = "Each job's outcome (empty: nothing to print)", body = ReleaseAllAnswer),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 409, description = "The station's printer cannot print now (`printer_not_ready`, with `details` and `alternatives`); nothing was released", body = ErrorBody),
        (status = 422, description = "An option not allowed for one of the jobs, or `at` names a station outside this station's group (`not_an_alternative`); nothing was released", body = ErrorBody),
    )
)]
pub async fn release_all(
    State(state): State<StationState>,
    headers: HeaderMap,
    query: Result<Query<ReleaseAt>, axum::extract::rejection::QueryRejection>,
    body: Bytes,
) -> Result<Json<ReleaseAllAnswer>, ApiError> {
    let (session, station) = state.session(&headers).await?;
    let station = station.clone();
    let target = target_station(&state, &station, query)?;
    let options: ReleaseOptions = parse_body(&body)?;
    // The jobs and their hold rules' terms in one read: a read per job held a crowd's print-alls
    // in the store's queue for seconds.
    let jobs = state
        .release()
        .held_jobs_and_terms(&session.upn)
        .await
        .map_err(|e| ApiError::internal("listing held jobs", &e))?;
    // Every job is checked before any is released: a refused choice releases nothing.
    let mut checked = Vec::with_capacity(jobs.len());
    for (job, terms) in jobs {
        let changes = checked_changes_under(&state, &job, terms, &target, &options).await?;
        checked.push((job, changes));
    }
    if !checked.is_empty() {
        ready(&state, &target).await?;
    }
    let submitted = state
        .release()
        .release_all(&checked, at(&station, &target), &session.upn, state.now())
        .await;
    let mut results: Vec<JobResult> = checked
        .iter()
        .map(|(job, _)| job)
        .zip(submitted)
        .map(|(job, result)| {
            let id = job.job.task_id.clone();
            let (status, code, message) = match answer(&id, result) {
                Ok((_, Json(a))) => (a.status, None, a.detail),
                Err(error) => (
                    "failed".to_owned(),
                    Some(error.code().to_owned()),
                    Some(error.message().to_owned()),
                ),
            };
            JobResult {
                id,
                name: job.job.name.clone(),
                status,
                code,
                message,
            }
        })
        .collect();
    // Signed in with Entra ID: the jobs waiting on pull-print printers too, one release each (each
    // recorded and settled on its own), at the same printer.
    let token = state.session_token(&headers)?;
    for (id, name, outcome) in pull::release_all(&state, token, &session, &target, &options).await {
        let (status, code, message) = match outcome {
            Ok((_, Json(a))) => (a.status, None, a.detail),
            Err(error) => (
                "failed".to_owned(),
                Some(error.code().to_owned()),
                Some(error.message().to_owned()),
            ),
        };
        results.push(JobResult {
            id,
            name,
            status,
            code,
            message,
        });
    }
    Ok(Json(ReleaseAllAnswer { results }))
}

/// Deletes (aborts) the person's job `id`.
#[utoipa::path(
    delete, path = "/api/v1/jobs/{id}", tag = "station",
    params(("id" = String, Path, description = "The job's id")),
    security(("bearer" = [], "stationKey" = [])),
    responses(
        (status = 200, description = "Graph confirmed: deleted", body = ActionAnswer),
        (status = 202, description = "Queued: Graph is slow or down", body = ActionAnswer),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 404, description = "No such held job of yours", body = ErrorBody),
        (status = 409, description = "Already being released or deleted", body = ErrorBody),
        (status = 503, description = "The store cannot take writes (read-only, disk full): nothing was changed", body = ErrorBody),
    )
)]
pub async fn delete_job(
    State(state): State<StationState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    let (session, station) = state.session(&headers).await?;
    let station_id = station.id.clone();
    if id.starts_with(pull::PREFIX) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_action",
            "a job waiting in Microsoft's pull print queue is cancelled from the computer that sent it, not here",
        ));
    }
    let job = own_job(&state, &session.upn, &id).await?;
    let result = state
        .release()
        .delete(&job, &station_id, &session.upn, state.now())
        .await;
    answer(&id, result)
}
