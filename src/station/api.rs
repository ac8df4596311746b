//! The station API (`/api/v1/sessions`, `/api/v1/jobs…`, `/api/v1/station`): sign-in at a station,
//! the signed-in person's held jobs, and releasing or deleting them.
//!
//! Invariants:
//! - a person sees, releases and deletes only their own jobs; another person's job id answers 404,
//!   exactly like an unknown id, so ids cannot be probed;
//! - a job's id here is its print task id (stable for the job's whole hold, opaque to clients);
//! - `200 released` is answered only when the executor recorded Graph's confirmation within
//!   `release.confirm_wait`, `202 queued` when the action is durably queued but not yet confirmed;
//! - releases are checked against the *station's* printer (where the paper comes out): a job held on
//!   another printer is redirected there (find-me);
//! - a PIN is checked with argon2 on the blocking pool, never on the async workers.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use utoipa::ToSchema;

use super::error::{ApiError, ErrorBody};
use super::state::{Station, StationState};
use super::users::User;
use crate::job::options::{self, Choices, ReleaseOptions};
use crate::job::{HeldJob, Outcome, TextEnum};
use crate::release::service::{AtStation, SubmitError, Submitted};
use crate::store::EnqueueError;

/// `POST /api/v1/sessions` body: a card number, or a user and PIN.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    /// The card number the reader typed.
    #[serde(default)]
    pub card: Option<String>,
    /// The user's UPN (with `pin`).
    #[serde(default)]
    pub user: Option<String>,
    /// The user's PIN (with `user`).
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
    pub configuration: Value,
    /// `held`, or `acting` while a release or delete is under way (admin view).
    pub state: String,
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
        }
    }
}

/// A list of held jobs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobList {
    /// Oldest first.
    pub jobs: Vec<JobView>,
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

/// Signs a person in at the station whose key is the bearer token.
#[utoipa::path(
    post, path = "/api/v1/sessions", tag = "station",
    request_body = SignInRequest,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Signed in", body = SessionCreated),
        (status = 400, description = "Neither a card nor a user and PIN", body = ErrorBody),
        (status = 401, description = "Unknown station key, card, user or wrong PIN", body = ErrorBody),
        (status = 429, description = "Locked out after repeated failures (see Retry-After)", body = ErrorBody),
        (status = 503, description = "The directory card lookup is unavailable", body = ErrorBody),
    )
)]
pub async fn sign_in(
    State(state): State<StationState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<SessionCreated>), ApiError> {
    let station = state.station_by_key(&headers)?.clone();
    let request: SignInRequest = parse_required(&body)?;
    let (subject, user) = match request {
        SignInRequest {
            card: Some(card),
            user: None,
            pin: None,
        } if !card.trim().is_empty() => {
            let card = card.trim().to_owned();
            state.lockout().check(&card).map_err(|l| {
                state.metrics().sign_in("locked_out");
                ApiError::locked_out(l.retry_after_secs)
            })?;
            let user = find_card(&state, &card).await?;
            (card, user)
        }
        SignInRequest {
            card: None,
            user: Some(upn),
            pin: Some(pin),
        } if !upn.trim().is_empty() => {
            let upn = upn.trim().to_lowercase();
            state.lockout().check(&upn).map_err(|l| {
                state.metrics().sign_in("locked_out");
                ApiError::locked_out(l.retry_after_secs)
            })?;
            let users = state.users();
            let subject = upn.clone();
            let user = tokio::task::spawn_blocking(move || users.verify_pin(&upn, &pin).cloned())
                .await
                .map_err(|e| ApiError::internal("checking the PIN", &e))?;
            (subject, user)
        }
        _ => {
            return Err(ApiError::bad_request(
                "send {\"card\":\"…\"} or {\"user\":\"name@domain\",\"pin\":\"…\"}",
            ));
        }
    };
    let Some(user) = user else {
        tracing::info!(station = %station.id, "a sign-in failed");
        state.metrics().sign_in("failed");
        if let Some(locked) = state.lockout().fail(&subject) {
            state.metrics().lockout();
            return Err(ApiError::locked_out(locked.retry_after_secs));
        }
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "sign_in_failed",
            "this card, user or PIN is not known; try again or ask the administrator",
        ));
    };
    state.lockout().succeed(&subject);
    state.metrics().sign_in("ok");
    let (token, session) = state
        .sessions()
        .create(&user.upn, &user.display_name, &station.id);
    tracing::info!(station = %station.id, user = %user.upn, "signed in");
    Ok((
        StatusCode::CREATED,
        Json(SessionCreated {
            token,
            user: SessionUser {
                upn: session.upn,
                display_name: session.display_name,
            },
            expires_at: session.expires_at,
        }),
    ))
}

/// The users file first, then (if enabled) the directory.
async fn find_card(state: &StationState, card: &str) -> Result<Option<User>, ApiError> {
    if let Some(user) = state.users().by_card(card) {
        return Ok(Some(user.clone()));
    }
    let Some(directory) = state.directory() else {
        return Ok(None);
    };
    directory.by_card(card).await.map_err(|error| {
        tracing::warn!(%error, "the directory card lookup failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "directory_unavailable",
            "this card cannot be looked up right now; sign in with user and PIN, or try again shortly",
        )
    })
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
    state.sessions().remove(token);
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
    let printer_name = state
        .printer(&station.printer_id)
        .await
        .map(|p| p.display_name)
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| station.printer_id.clone());
    Ok(Json(StationInfo {
        id: station.id,
        printer_id: station.printer_id,
        printer_name,
    }))
}

/// The signed-in person's held jobs.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "station",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The person's held jobs, oldest first", body = JobList),
        (status = 401, description = "No valid session", body = ErrorBody),
    )
)]
pub async fn list_jobs(
    State(state): State<StationState>,
    headers: HeaderMap,
) -> Result<Json<JobList>, ApiError> {
    let (session, _) = state.session(&headers)?;
    let jobs = state
        .release()
        .held_jobs(&session.upn)
        .await
        .map_err(|e| ApiError::internal("listing held jobs", &e))?;
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
    Ok(Json(JobList {
        jobs: jobs
            .iter()
            .map(|job| JobView {
                printer_name: names.get(&job.job.printer_id).cloned().flatten(),
                ..JobView::of(job)
            })
            .collect(),
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

/// What the person may choose for job `id` at this station's printer.
#[utoipa::path(
    get, path = "/api/v1/jobs/{id}/options", tag = "station",
    params(("id" = String, Path, description = "The job's id")),
    security(("bearer" = [])),
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
    let (session, station) = state.session(&headers)?;
    let job = own_job(&state, &session.upn, &id).await?;
    let printer = state.printer(&station.printer_id).await;
    Ok(Json(options::choices(
        &job.job.configuration,
        printer.as_ref(),
        state.policy(),
    )))
}

/// The changes releasing `job` at `station` with `options` sends (checked against the station's
/// printer and the policy), or a 422.
async fn checked_changes(
    state: &StationState,
    job: &HeldJob,
    station: &Station,
    options: &ReleaseOptions,
) -> Result<Option<Value>, ApiError> {
    let printer = state.printer(&station.printer_id).await;
    options::apply(
        options,
        &job.job.configuration,
        printer.as_ref(),
        state.policy(),
    )
    .map_err(ApiError::refused)
}

/// Where `station` releases.
fn at(station: &Station) -> AtStation<'_> {
    AtStation {
        station_id: &station.id,
        printer_id: &station.printer_id,
    }
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
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = ReleaseOptions, description = "Optional: the options to change (Graph's printJobConfiguration names)"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Graph confirmed: printing", body = ActionAnswer),
        (status = 202, description = "Queued: Graph is slow or down; it will print shortly", body = ActionAnswer),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 404, description = "No such held job of yours", body = ErrorBody),
        (status = 409, description = "Already being released or deleted", body = ErrorBody),
        (status = 410, description = "No longer held", body = ErrorBody),
        (status = 422, description = "An option the printer or the policy does not allow", body = ErrorBody),
        (status = 502, description = "Universal Print refused the release", body = ErrorBody),
        (status = 503, description = "The store cannot take writes (read-only, disk full): nothing was changed", body = ErrorBody),
    )
)]
pub async fn release_job(
    State(state): State<StationState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    let (session, station) = state.session(&headers)?;
    let station = station.clone();
    let options: ReleaseOptions = parse_body(&body)?;
    let job = own_job(&state, &session.upn, &id).await?;
    let changes = checked_changes(&state, &job, &station, &options).await?;
    let result = state
        .release()
        .release(&job, at(&station), &session.upn, changes, state.now())
        .await;
    answer(&id, result)
}

/// Releases every held job of the person with the same options; lists each job's outcome.
#[utoipa::path(
    post, path = "/api/v1/jobs/release-all", tag = "station",
    request_body(content = ReleaseOptions, description = "Optional: the options for every job"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Each job's outcome (empty: nothing to print)", body = ReleaseAllAnswer),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "No valid session", body = ErrorBody),
        (status = 422, description = "An option not allowed for one of the jobs; nothing was released", body = ErrorBody),
    )
)]
pub async fn release_all(
    State(state): State<StationState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ReleaseAllAnswer>, ApiError> {
    let (session, station) = state.session(&headers)?;
    let station = station.clone();
    let options: ReleaseOptions = parse_body(&body)?;
    let jobs = state
        .release()
        .held_jobs(&session.upn)
        .await
        .map_err(|e| ApiError::internal("listing held jobs", &e))?;
    // Every job is checked before any is released: a refused choice releases nothing.
    let mut checked = Vec::with_capacity(jobs.len());
    for job in jobs {
        let changes = checked_changes(&state, &job, &station, &options).await?;
        checked.push((job, changes));
    }
    let submitted = state
        .release()
        .release_all(&checked, at(&station), &session.upn, state.now())
        .await;
    let results = checked
        .iter()
        .map(|(job, _)| job)
        .zip(submitted)
        .map(|(job, result)| {
            let id = job.job.task_id.clone();
            let (status, message) = match answer(&id, result) {
                Ok((_, Json(a))) => (a.status, a.detail),
                Err(error) => ("failed".to_owned(), Some(error.message().to_owned())),
            };
            JobResult {
                id,
                name: job.job.name.clone(),
                status,
                message,
            }
        })
        .collect();
    Ok(Json(ReleaseAllAnswer { results }))
}

/// Deletes (aborts) the person's job `id`.
#[utoipa::path(
    delete, path = "/api/v1/jobs/{id}", tag = "station",
    params(("id" = String, Path, description = "The job's id")),
    security(("bearer" = [])),
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
    let (session, station) = state.session(&headers)?;
    let station_id = station.id.clone();
    let job = own_job(&state, &session.upn, &id).await?;
    let result = state
        .release()
        .delete(&job, &station_id, &session.upn, state.now())
        .await;
    answer(&id, result)
}
