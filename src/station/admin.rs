//! The admin API (admin key as bearer): every held job, release and delete on anyone's behalf (the
//! CLI's `jobs`, `release`, `delete`), and the audit log as JSON or CSV.
//!
//! Invariants: an admin release prints on the job's own printer, checked against that printer's
//! capabilities and the same `[release]` policy as a person's, with the forced options of the hold
//! rule that kept the job (as for its owner); every action is recorded with
//! `requested_by = "admin"`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::{IntoParams, ToSchema};

use super::api::{ActionAnswer, JobList, JobView, answer, parse_body};
use super::error::{ApiError, ErrorBody};
use super::state::StationState;
use crate::graph::PrintJobConfiguration;
use crate::job::options::{self, ReleaseOptions};
use crate::job::{HeldJob, TextEnum};
use crate::store::{AuditEvent, AuditFilter, AuditRecord, JobCursor};

/// Who admin actions are recorded as.
pub use crate::release::service::ADMIN;

/// Jobs in one page of the admin listing unless `limit` says otherwise.
pub const DEFAULT_PAGE: u32 = 500;
/// The largest page of the admin listing and of the audit log's JSON.
pub const MAX_PAGE: u32 = 5000;
/// Audit records in one JSON page unless `limit` says otherwise.
pub const DEFAULT_AUDIT_PAGE: u32 = 1000;
/// Audit records read from the store at a time while the CSV export streams.
const CSV_CHUNK: u32 = 1000;

/// `GET /api/v1/admin/jobs` paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct JobsQuery {
    /// At most this many jobs (1 to 5000; default 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The `next` cursor of the page before.
    #[serde(default)]
    pub after: Option<String>,
}

/// A page size from `limit`: `default` when absent; 400 outside 1..=[`MAX_PAGE`].
fn page_size(limit: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::bad_request(format!(
            "limit {n} is out of range; ask for 1 to {MAX_PAGE} and follow `next` for more"
        ))),
    }
}

/// Every job not yet ended, oldest first, a page at a time.
#[utoipa::path(
    get, path = "/api/v1/admin/jobs", tag = "admin",
    params(JobsQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Held jobs (and those being acted on), oldest first; `next` when more follow", body = JobList),
        (status = 400, description = "`limit` out of range, or `after` is not a cursor this listing gave", body = ErrorBody),
        (status = 401, description = "Wrong or missing admin key", body = ErrorBody),
    )
)]
pub async fn all_jobs(
    State(state): State<StationState>,
    headers: HeaderMap,
    query: Result<Query<JobsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<JobList>, ApiError> {
    state.admin(&headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let limit = page_size(query.limit, DEFAULT_PAGE)?;
    let after = query
        .after
        .as_deref()
        .map(|token| {
            JobCursor::parse(token).ok_or_else(|| {
                ApiError::bad_request(
                    "after is not a cursor of this listing; pass the `next` of the page before, \
                     or leave it out for the first page",
                )
            })
        })
        .transpose()?;
    let mut jobs = state
        .release()
        .held_jobs_page(after.as_ref(), limit + 1)
        .await
        .map_err(|e| ApiError::internal("listing held jobs", &e))?;
    // One more than asked for says whether another page follows.
    let more = jobs.len() > limit as usize;
    jobs.truncate(limit as usize);
    let next = more
        .then(|| jobs.last().map(|job| JobCursor::after(job).token()))
        .flatten();
    Ok(Json(JobList {
        jobs: jobs.iter().map(JobView::of).collect(),
        next,
    }))
}

/// The held job `id`, or 404.
async fn held_job(state: &StationState, id: &str) -> Result<HeldJob, ApiError> {
    match state
        .release()
        .held_job(id)
        .await
        .map_err(|e| ApiError::internal("reading a held job", &e))?
    {
        Some(job) => Ok(job),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no held job `{id}`; list them with `pullprintd jobs`"),
        )),
    }
}

/// Releases job `id` on its own printer.
#[utoipa::path(
    post, path = "/api/v1/admin/jobs/{id}/release", tag = "admin",
    params(("id" = String, Path, description = "The job's id")),
    request_body(content = ReleaseOptions, description = "Optional: the options to change"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Graph confirmed: printing", body = ActionAnswer),
        (status = 202, description = "Queued: Graph is slow or down", body = ActionAnswer),
        (status = 400, description = "Malformed body or unknown field", body = ErrorBody),
        (status = 401, description = "Wrong or missing admin key", body = ErrorBody),
        (status = 404, description = "No such held job", body = ErrorBody),
        (status = 409, description = "Already being released or deleted", body = ErrorBody),
        (status = 422, description = "An option the printer or the policy does not allow", body = ErrorBody),
        (status = 503, description = "The store cannot take writes (read-only, disk full): nothing was changed", body = ErrorBody),
    )
)]
pub async fn release(
    State(state): State<StationState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    state.admin(&headers)?;
    let options: ReleaseOptions = parse_body(&body)?;
    let job = held_job(&state, &id).await?;
    let printer = state.printer(&job.job.printer_id).await;
    // A hold rule's forced options and saving_only bind the administrator as they bind the owner:
    // the rule is the site's policy for these jobs, whoever presses release.
    let terms = state
        .release()
        .hold_terms(&job)
        .await
        .map_err(|error| ApiError::store_unavailable("reading the job's rule", &error))?;
    let (options, policy) = match terms {
        Some(terms) => (
            terms.release_options(&options, &job.job.configuration),
            terms.policy(state.policy()),
        ),
        None => (options, state.policy()),
    };
    let changes = options::apply(&options, &job.job.configuration, printer.as_ref(), policy)
        .map_err(ApiError::refused)?;
    let result = state
        .release()
        .admin_release(&job, changes, state.now())
        .await;
    answer(&id, result)
}

/// Deletes (aborts) job `id`.
#[utoipa::path(
    delete, path = "/api/v1/admin/jobs/{id}", tag = "admin",
    params(("id" = String, Path, description = "The job's id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Graph confirmed: deleted", body = ActionAnswer),
        (status = 202, description = "Queued: Graph is slow or down", body = ActionAnswer),
        (status = 401, description = "Wrong or missing admin key", body = ErrorBody),
        (status = 404, description = "No such held job", body = ErrorBody),
        (status = 409, description = "Already being released or deleted", body = ErrorBody),
        (status = 503, description = "The store cannot take writes (read-only, disk full): nothing was changed", body = ErrorBody),
    )
)]
pub async fn delete(
    State(state): State<StationState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<ActionAnswer>), ApiError> {
    state.admin(&headers)?;
    let job = held_job(&state, &id).await?;
    let result = state.release().admin_delete(&job, state.now()).await;
    answer(&id, result)
}

/// `GET /api/v1/audit` filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only records at or after this time (RFC 3339, e.g. `2026-03-01T00:00:00Z`).
    #[serde(default)]
    pub since: Option<String>,
    /// Only records for this owner (UPN, case-insensitive).
    #[serde(default)]
    pub user: Option<String>,
    /// Only this event: `held`, `released`, `redirected`, `deleted`, `expired`, `failed`, `gone`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// At most this many records, newest first: a JSON page holds 1 to 5000 (default 1000); the CSV
    /// export streams every matching record unless this is set.
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only records older than this id: the `next` of the JSON page before.
    #[serde(default)]
    pub before: Option<i64>,
}

/// One audit record.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditView {
    /// Increases with time.
    pub id: i64,
    /// When it happened.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// What happened (`held`, `released`, `redirected`, `deleted`, `expired`, `failed`, `gone`).
    pub event: String,
    /// The station, if any.
    pub station_id: Option<String>,
    /// Who asked (UPN, `admin`, `system`).
    pub requested_by: Option<String>,
    /// The job's owner.
    pub user: Option<String>,
    /// The job's id (its print task id).
    pub job: String,
    /// The job's printer.
    pub printer_id: String,
    /// The Graph print job id.
    pub print_job_id: String,
    /// The find-me destination, if any.
    pub destination_printer_id: Option<String>,
    /// The configuration at intake.
    #[schema(value_type = Option<Object>)]
    pub configuration_before: Option<PrintJobConfiguration>,
    /// The configuration sent, if it changed.
    #[schema(value_type = Option<Object>)]
    pub configuration_after: Option<PrintJobConfiguration>,
    /// How or why.
    pub detail: Option<String>,
    /// Graph's request-id of the settling call.
    pub graph_request_id: Option<String>,
}

impl AuditView {
    fn of(record: AuditRecord) -> Self {
        Self {
            id: record.id,
            at: record.at,
            event: record.event.as_str().to_owned(),
            station_id: record.station_id,
            requested_by: record.requested_by,
            user: record.user_upn,
            job: record.task_id,
            printer_id: record.printer_id,
            print_job_id: record.job_id,
            destination_printer_id: record.destination_printer_id,
            configuration_before: record.configuration_before,
            configuration_after: record.configuration_after,
            detail: record.detail,
            graph_request_id: record.graph_request_id,
        }
    }
}

/// `GET /api/v1/audit` JSON answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    /// Newest first.
    pub records: Vec<AuditView>,
    /// More records follow: ask again with `before` set to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next: Option<i64>,
}

/// The audit log, as JSON or (with `Accept: text/csv`) CSV.
#[utoipa::path(
    get, path = "/api/v1/audit", tag = "admin",
    params(AuditQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Audit records, newest first, a page at a time with `next` (with `Accept: text/csv`: every matching record, streamed)", content(
            (AuditList = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, description = "A filter is malformed, or `limit` is out of range", body = ErrorBody),
        (status = 401, description = "Wrong or missing admin key", body = ErrorBody),
    )
)]
pub async fn audit(
    State(state): State<StationState>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    state.admin(&headers)?;
    let Query(query) = query.map_err(|e| ApiError::bad_request(format!("{e}")))?;
    let since = query
        .since
        .as_deref()
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|e| {
                ApiError::bad_request(format!(
                    "since `{s}` is not an RFC 3339 time ({e}); write it like 2026-03-01T00:00:00Z"
                ))
            })
        })
        .transpose()?;
    let event = query
        .outcome
        .as_deref()
        .map(|o| {
            AuditEvent::parse(o).ok_or_else(|| {
                let known: Vec<_> = AuditEvent::MEMBERS.iter().map(|(_, w)| *w).collect();
                ApiError::bad_request(format!(
                    "outcome `{o}` is not known; use one of: {}",
                    known.join(", ")
                ))
            })
        })
        .transpose()?;
    let mut filter = AuditFilter {
        since,
        until: None,
        user: query.user.filter(|u| !u.trim().is_empty()),
        event,
        before_id: query.before,
        limit: None,
    };
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        if query.limit == Some(0) {
            return Err(ApiError::bad_request(
                "limit 0 exports nothing; leave it out to export every matching record",
            ));
        }
        return Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            axum::body::Body::from_stream(csv_export(state.store().clone(), filter, query.limit)),
        )
            .into_response());
    }
    let limit = page_size(query.limit, DEFAULT_AUDIT_PAGE)?;
    filter.limit = Some(limit + 1);
    let mut records = state
        .store()
        .audit_query(&filter)
        .await
        .map_err(|e| ApiError::internal("reading the audit log", &e))?;
    // One more than asked for says whether another page follows.
    let more = records.len() > limit as usize;
    records.truncate(limit as usize);
    let next = more.then(|| records.last().map(|r| r.id)).flatten();
    let views: Vec<AuditView> = records.into_iter().map(AuditView::of).collect();
    Ok(Json(AuditList {
        records: views,
        next,
    })
    .into_response())
}

const CSV_HEADER: &str = "id,at,event,station_id,requested_by,user,job,printer_id,print_job_id,destination_printer_id,detail,graph_request_id\r\n";

/// Where a streaming CSV export stands.
struct Export {
    store: crate::store::Store,
    filter: AuditFilter,
    /// Records still wanted (`None`: all).
    left: Option<u32>,
    done: bool,
}

/// The audit records matching `filter`, newest first, as a CSV body read from the store
/// [`CSV_CHUNK`] records at a time: memory stays flat however long the log is. A store error
/// mid-export ends the body with an error, so the client sees a cut-off download, never a
/// silently short one.
fn csv_export(
    store: crate::store::Store,
    filter: AuditFilter,
    limit: Option<u32>,
) -> impl futures::Stream<Item = Result<String, std::io::Error>> + Send + 'static {
    let start = Export {
        store,
        filter,
        left: limit,
        done: false,
    };
    let header = futures::stream::once(async { Ok(CSV_HEADER.to_owned()) });
    let records = futures::stream::unfold(start, |mut export| async move {
        if export.done {
            return None;
        }
        let chunk = export.left.map_or(CSV_CHUNK, |left| left.min(CSV_CHUNK));
        if chunk == 0 {
            return None;
        }
        export.filter.limit = Some(chunk);
        match export.store.audit_query(&export.filter).await {
            Ok(records) => {
                let last = records.last()?.id;
                export.done = records.len() < chunk as usize;
                export.filter.before_id = Some(last);
                if let Some(left) = &mut export.left {
                    *left = left.saturating_sub(u32::try_from(records.len()).unwrap_or(u32::MAX));
                }
                let views: Vec<AuditView> = records.into_iter().map(AuditView::of).collect();
                Some((Ok(csv_lines(&views)), export))
            }
            Err(error) => {
                tracing::error!(%error, "the audit export stopped: the store cannot be read");
                export.done = true;
                Some((Err(std::io::Error::other(error.to_string())), export))
            }
        }
    });
    futures::StreamExt::chain(header, records)
}

/// The audit records as CSV lines (RFC 4180), without the header line ([`CSV_HEADER`]).
fn csv_lines(records: &[AuditView]) -> String {
    let mut out = String::new();
    for r in records {
        let at = r.at.format(&Rfc3339).unwrap_or_default();
        let fields = [
            r.id.to_string(),
            at,
            r.event.clone(),
            r.station_id.clone().unwrap_or_default(),
            r.requested_by.clone().unwrap_or_default(),
            r.user.clone().unwrap_or_default(),
            r.job.clone(),
            r.printer_id.clone(),
            r.print_job_id.clone(),
            r.destination_printer_id.clone().unwrap_or_default(),
            r.detail.clone().unwrap_or_default(),
            r.graph_request_id.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Quotes a CSV field when needed, and defuses spreadsheet formulas: a document name such as
/// `=HYPERLINK(…)` comes from whoever printed it and must not run in the administrator's spreadsheet.
fn csv_field(value: &str) -> String {
    let value = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

/// `DELETE /api/v1/admin/lockouts/{person}` answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnlockAnswer {
    /// Whether the person (or card) had failures or a lockout that were cleared.
    pub cleared: bool,
}

/// Lifts the sign-in lockout of a person (UPN) or card number, and forgets its failures and its
/// escalation level (`pullprintd unlock PERSON`).
#[utoipa::path(
    delete, path = "/api/v1/admin/lockouts/{person}", tag = "admin",
    params(("person" = String, Path, description = "The person's UPN, or a card number")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Cleared (or nothing was recorded)", body = UnlockAnswer),
        (status = 401, description = "Wrong or missing admin key", body = ErrorBody),
    )
)]
pub async fn unlock(
    State(state): State<StationState>,
    headers: HeaderMap,
    Path(person): Path<String>,
) -> Result<Json<UnlockAnswer>, ApiError> {
    state.admin(&headers)?;
    let cleared = state
        .lockout()
        .unlock_everywhere(&person)
        .await
        .map_err(|e| ApiError::store_unavailable("lifting the lockout", &e))?;
    Ok(Json(UnlockAnswer { cleared }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("\t=1+1"), "'\t=1+1");
        assert_eq!(csv_field("\r=1+1"), "\"'\r=1+1\"");
    }
}
