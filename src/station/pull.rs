//! Jobs waiting on Universal Print's pull-print printers (`[printing] pull_printers`), shown to a
//! person signed in with Entra ID beside their held jobs and released at the station's printer
//! with the person's own delegated token (Graph offers `release` to delegated callers only).
//!
//! Their ids in the station API are `pull~{pull printer id}~{job id}`, so they never collide with
//! a held job's (a print task id). Their options cannot be changed (the `release` call carries only
//! the job id): the choices offered are the job's own, and a release asking for others is refused.
//!
//! Exactly once: the release is recorded before the Graph call and settled after it
//! ([`crate::store::PullBegin`]); an uncertain outcome (timeout, 5xx) is settled by reading the job
//! (still waiting: not released). A release recorded but never settled (the daemon died mid-call,
//! or the job could not be read) is settled by reading after [`UNSETTLED_AFTER`]: by
//! [`settle_unsettled_until`], which every daemon runs at start and every [`SETTLE_EVERY`], or at
//! once when someone releases the job again.
//! Only the signed-in person's own jobs are shown or released, even should Graph list others.

use std::time::Duration as StdDuration;

use axum::Json;
use axum::http::StatusCode;
use time::Duration;

use super::api::{ActionAnswer, JobView};
use super::error::ApiError;
use super::sessions::Session;
use super::state::{Station, StationState};
use crate::graph::model::PrintJob;
use crate::graph::pull_print::waits_for_release;
use crate::graph::{DelegatedToken, GraphError, PrintJobConfiguration};
use crate::job::options::{Choices, ReleaseOptions};
use crate::store::PullBegin;

/// How a pull job's id starts in the station API.
pub const PREFIX: &str = "pull~";
/// How long a person's pull jobs may take to list before the list is shown without them.
const LIST_WAIT: StdDuration = StdDuration::from_secs(5);
/// After this long, a release recorded but never settled is settled by reading the job.
pub const UNSETTLED_AFTER: Duration = Duration::minutes(2);

/// `(pull printer, job)` of a pull job's API id.
pub fn parse_id(id: &str) -> Option<(&str, &str)> {
    let rest = id.strip_prefix(PREFIX)?;
    let (printer, job) = rest.split_once('~')?;
    (!printer.is_empty() && !job.is_empty()).then_some((printer, job))
}

fn api_id(pull_printer: &str, job: &str) -> String {
    format!("{PREFIX}{pull_printer}~{job}")
}

fn owned_by(job: &PrintJob, upn: &str) -> bool {
    job.created_by
        .as_ref()
        .and_then(|c| c.user_principal_name.as_deref())
        .is_some_and(|owner| owner.eq_ignore_ascii_case(upn))
}

fn name_of(job: &PrintJob) -> String {
    job.documents
        .as_ref()
        .and_then(|d| d.first())
        .and_then(|d| d.display_name.clone())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| format!("Print job {}", job.id))
}

/// The person's delegated token, when they signed in with Entra ID and pull printers are set.
fn token(state: &StationState, session_token: &str) -> Option<DelegatedToken> {
    if state.pull_printers().is_empty() {
        return None;
    }
    state.phone()?.delegated(session_token)
}

/// The person's jobs waiting on the pull printers, each with its pull printer, read once with
/// their token. A pull printer Graph cannot list now is left out (with a warning): the held jobs
/// are still shown.
async fn waiting(
    state: &StationState,
    token: &DelegatedToken,
    upn: &str,
) -> Vec<(String, PrintJob)> {
    let mut waiting = Vec::new();
    for pull_printer in state.pull_printers() {
        let listed =
            tokio::time::timeout(LIST_WAIT, state.graph().list_pull_jobs(token, pull_printer))
                .await;
        let jobs = match listed {
            Ok(Ok(jobs)) => jobs,
            Ok(Err(error)) => {
                tracing::warn!(%error, pull_printer, "the person's pull-print jobs could not be listed");
                continue;
            }
            Err(_) => {
                tracing::warn!(
                    pull_printer,
                    "listing the person's pull-print jobs took too long"
                );
                continue;
            }
        };
        waiting.extend(
            jobs.into_iter()
                .filter(|job| owned_by(job, upn) && waits_for_release(job))
                .map(|job| (pull_printer.clone(), job)),
        );
    }
    waiting
}

/// The person's jobs waiting on the pull printers, as the API shows them.
pub async fn list(state: &StationState, session_token: &str, session: &Session) -> Vec<JobView> {
    let Some(token) = token(state, session_token) else {
        return Vec::new();
    };
    let mut views = Vec::new();
    for (pull_printer, job) in waiting(state, &token, &session.upn).await {
        let name = state
            .pull_printer_name(&pull_printer)
            .await
            .unwrap_or_else(|| pull_printer.clone());
        views.push(JobView {
            id: api_id(&pull_printer, &job.id),
            printer_id: pull_printer,
            printer_name: Some(name),
            name: name_of(&job),
            owner: session.upn.clone(),
            submitted_at: job.created_date_time.unwrap_or_else(|| state.now()),
            configuration: job.configuration,
            state: "held".to_owned(),
            fixed_options: true,
        });
    }
    views
}

/// The person's own waiting job `job_id` on `pull_printer`, or 404.
async fn own_job(
    state: &StationState,
    token: &DelegatedToken,
    upn: &str,
    id: &str,
    pull_printer: &str,
    job_id: &str,
) -> Result<PrintJob, ApiError> {
    if !state.pull_printers().iter().any(|p| p == pull_printer) {
        return Err(ApiError::job_not_found(id));
    }
    let jobs = state
        .graph()
        .list_pull_jobs(token, pull_printer)
        .await
        .map_err(|e| graph_unavailable(&e))?;
    jobs.into_iter()
        .find(|job| job.id == job_id && owned_by(job, upn))
        .ok_or_else(|| ApiError::job_not_found(id))
}

fn graph_unavailable(error: &GraphError) -> ApiError {
    tracing::warn!(%error, "a pull-print call to Graph failed");
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "graph_refused",
        "Universal Print did not answer about this job; try again in a moment",
    )
}

fn needs_entra(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!(
            "no held job `{id}` of yours here; jobs waiting in Microsoft's pull print queue need a sign-in with Microsoft"
        ),
    )
}

/// The choices for a pull job: its own settings only (they cannot be changed at release).
pub async fn options(
    state: &StationState,
    session_token: &str,
    session: &Session,
    id: &str,
) -> Result<Choices, ApiError> {
    let (pull_printer, job_id) = parse_id(id).ok_or_else(|| ApiError::job_not_found(id))?;
    let token = token(state, session_token).ok_or_else(|| needs_entra(id))?;
    let job = own_job(state, &token, &session.upn, id, pull_printer, job_id).await?;
    Ok(fixed_choices(job.configuration))
}

fn fixed_choices(current: PrintJobConfiguration) -> Choices {
    let copies = current.copies.unwrap_or(1).max(1);
    let word = |value: Option<String>| value.into_iter().collect::<Vec<_>>();
    Choices {
        min_copies: copies,
        max_copies: copies,
        duplex_modes: word(current.duplex_mode.as_ref().map(|m| m.as_str().to_owned())),
        color_modes: word(current.color_mode.as_ref().map(|m| m.as_str().to_owned())),
        orientations: word(current.orientation.as_ref().map(|m| m.as_str().to_owned())),
        pages_per_sheet: current.pages_per_sheet.into_iter().collect(),
        media_sizes: word(current.media_size.clone()),
        qualities: word(current.quality.as_ref().map(|m| m.as_str().to_owned())),
        page_ranges: false,
        current,
    }
}

/// Whether `options` ask for anything other than the job's own settings.
fn changes_anything(
    options: &ReleaseOptions,
    current: &PrintJobConfiguration,
) -> Option<&'static str> {
    let json = serde_json::to_value(options).unwrap_or_default();
    let now = serde_json::to_value(current).unwrap_or_default();
    let object = json.as_object()?;
    object
        .iter()
        .filter(|(_, value)| !value.is_null())
        .find(|(key, value)| now.get(key.as_str()) != Some(value))
        .map(|(key, _)| match key.as_str() {
            "copies" => "copies",
            "duplexMode" => "duplexMode",
            "colorMode" => "colorMode",
            _ => "configuration",
        })
}

/// Releases the person's pull job `id` at `station`'s printer.
pub async fn release(
    state: &StationState,
    session_token: &str,
    session: &Session,
    station: &Station,
    id: &str,
    options: &ReleaseOptions,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    let (pull_printer, job_id) = parse_id(id).ok_or_else(|| ApiError::job_not_found(id))?;
    let token = token(state, session_token).ok_or_else(|| needs_entra(id))?;
    let job = own_job(state, &token, &session.upn, id, pull_printer, job_id).await?;
    release_listed(state, &token, session, station, pull_printer, &job, options).await
}

/// Releases every job of the person waiting on the pull printers at `station`'s printer (their part
/// of "Print all"): listed once, then each released on its own. `(id, name, outcome)` each.
pub async fn release_all(
    state: &StationState,
    session_token: &str,
    session: &Session,
    station: &Station,
    options: &ReleaseOptions,
) -> Vec<(
    String,
    String,
    Result<(StatusCode, Json<ActionAnswer>), ApiError>,
)> {
    let Some(token) = token(state, session_token) else {
        return Vec::new();
    };
    let mut outcomes = Vec::new();
    for (pull_printer, job) in waiting(state, &token, &session.upn).await {
        let outcome = release_listed(
            state,
            &token,
            session,
            station,
            &pull_printer,
            &job,
            options,
        )
        .await;
        outcomes.push((api_id(&pull_printer, &job.id), name_of(&job), outcome));
    }
    outcomes
}

/// Releases `job`, the person's own, read just now from `pull_printer`.
async fn release_listed(
    state: &StationState,
    token: &DelegatedToken,
    session: &Session,
    station: &Station,
    pull_printer: &str,
    job: &PrintJob,
    options: &ReleaseOptions,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    let (job_id, id) = (job.id.as_str(), api_id(pull_printer, &job.id));
    let id = id.as_str();
    if !waits_for_release(job) {
        return Err(not_held(id));
    }
    if let Some(option) = changes_anything(options, &job.configuration) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "option_refused",
            format!(
                "`{option}` cannot be changed on a job waiting in Microsoft's pull print queue; release it as it was sent"
            ),
        ));
    }
    let store = state.store();
    let now = state.now();
    let begun = store
        .pull_release_begin(
            pull_printer,
            job_id,
            &station.printer_id,
            &station.id,
            &session.upn,
            now,
        )
        .await
        .map_err(|e| ApiError::store_unavailable("recording a pull-print release", &e))?;
    let release_id = match begun {
        PullBegin::Started(release_id) => release_id,
        PullBegin::Exists(existing)
            if existing.state == "sending" && now - existing.requested_at >= UNSETTLED_AFTER =>
        {
            // A release that was never settled (its daemon died mid-call): settle it by reading,
            // then this one may go ahead if the job still waits.
            settle_by_reading(state, existing.id, pull_printer, job_id).await?;
            return Err(not_held(id));
        }
        PullBegin::Exists(_) => return Err(not_held(id)),
    };
    let sent = state
        .graph()
        .release_pull_job(token, &station.printer_id, job_id)
        .await;
    match sent {
        Ok(()) => {
            settle(
                state,
                release_id,
                true,
                "released at the station's printer with the person's delegated token",
            )
            .await?;
            Ok(released(id))
        }
        Err(error) if definite(&error) => {
            let detail = format!("Universal Print refused the release: {error}");
            settle(state, release_id, false, &detail).await?;
            Err(ApiError::new(
                StatusCode::BAD_GATEWAY,
                "graph_refused",
                format!(
                    "Universal Print refused to release this job here: {}",
                    error
                        .status()
                        .map_or_else(String::new, |s| format!("HTTP {s}"))
                ),
            ))
        }
        Err(error) => {
            tracing::warn!(%error, "a pull-print release had an uncertain outcome; reading the job");
            match settle_by_reading(state, release_id, pull_printer, job_id).await? {
                Some(true) => Ok(released(id)),
                Some(false) => Err(graph_unavailable(&error)),
                None => Ok((
                    StatusCode::ACCEPTED,
                    Json(ActionAnswer {
                        status: "queued".to_owned(),
                        detail: Some(format!(
                            "job `{id}`: Universal Print did not confirm the release yet; it is settled by reading the job"
                        )),
                    }),
                )),
            }
        }
    }
}

fn not_held(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "not_held",
        format!("job `{id}` is already being released, or has been"),
    )
}

fn released(id: &str) -> (StatusCode, Json<ActionAnswer>) {
    (
        StatusCode::OK,
        Json(ActionAnswer {
            status: "released".to_owned(),
            detail: Some(format!("job `{id}` prints at this station's printer")),
        }),
    )
}

/// A refusal Graph made knowingly (4xx other than throttling and timeouts): nothing was released.
fn definite(error: &GraphError) -> bool {
    error
        .status()
        .is_some_and(|s| (400..500).contains(&s) && s != 408 && s != 429)
}

async fn settle(
    state: &StationState,
    release_id: i64,
    released: bool,
    detail: &str,
) -> Result<(), ApiError> {
    state
        .store()
        .pull_release_settle(release_id, released, detail, state.now())
        .await
        .map(|_| ())
        .map_err(|e| ApiError::store_unavailable("settling a pull-print release", &e))
}

/// Reads the job (app token) and settles the release: `Some(true)` released (the job no longer
/// waits), `Some(false)` not released (it still waits), `None` unknown (left under way).
async fn settle_by_reading(
    state: &StationState,
    release_id: i64,
    pull_printer: &str,
    job_id: &str,
) -> Result<Option<bool>, ApiError> {
    match state.graph().get_pull_job(pull_printer, job_id).await {
        Ok(Some(job)) if waits_for_release(&job) => {
            settle(
                state,
                release_id,
                false,
                "not released: the job still waits (read after an uncertain outcome)",
            )
            .await?;
            Ok(Some(false))
        }
        Ok(_) => {
            settle(
                state,
                release_id,
                true,
                "released: the job no longer waits (read after an uncertain outcome)",
            )
            .await?;
            Ok(Some(true))
        }
        Err(error) => {
            tracing::warn!(%error, "a pull-print job could not be read to settle its release");
            Ok(None)
        }
    }
}

/// How often releases left unsettled by a daemon that died mid-call are looked for.
pub const SETTLE_EVERY: StdDuration = StdDuration::from_secs(60);

/// Settles, by reading each job with the app token, the releases recorded more than
/// [`UNSETTLED_AFTER`] ago and never settled (their daemon died between recording and settling):
/// gone or no longer waiting means released, still waiting means not. Returns how many it settled.
/// Any daemon may run it: settling is one conditional update, so two never settle one release twice.
pub async fn settle_unsettled(
    store: &crate::store::Store,
    graph: &crate::graph::GraphClient,
    now: time::OffsetDateTime,
) -> Result<usize, crate::store::StoreError> {
    let mut settled = 0;
    for release in store.pull_releases_unsettled(now - UNSETTLED_AFTER).await? {
        let read = graph
            .get_pull_job(&release.pull_printer_id, &release.job_id)
            .await;
        let (released, detail) = match read {
            Ok(Some(job)) if waits_for_release(&job) => (
                false,
                "not released: the job still waits (read after its daemon stopped mid-release)",
            ),
            Ok(_) => (
                true,
                "released: the job no longer waits (read after its daemon stopped mid-release)",
            ),
            Err(error) => {
                tracing::warn!(%error, job = release.job_id, "an unsettled pull-print release could not be read");
                continue;
            }
        };
        if store
            .pull_release_settle(release.id, released, detail, now)
            .await?
        {
            settled += 1;
        }
    }
    Ok(settled)
}

/// Runs [`settle_unsettled`] at start and every [`SETTLE_EVERY`] until `stop`.
pub async fn settle_unsettled_until(
    store: crate::store::Store,
    graph: crate::graph::GraphClient,
    clock: crate::clock::SharedClock,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        match settle_unsettled(&store, &graph, clock.now()).await {
            Ok(0) => {}
            Ok(settled) => tracing::info!(settled, "settled pull-print releases left unsettled"),
            Err(error) => tracing::warn!(%error, "unsettled pull-print releases could not be read"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(SETTLE_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pull_job_id_names_its_printer_and_job() {
        assert_eq!(parse_id("pull~p-1~42"), Some(("p-1", "42")));
        assert_eq!(parse_id("pull~~42"), None);
        assert_eq!(parse_id("pull~p-1~"), None);
        assert_eq!(parse_id("task-1"), None);
        assert_eq!(api_id("p-1", "42"), "pull~p-1~42");
    }
}
