//! The station API's errors: one type that every handler returns, rendered as
//! `{"error":{"code":"…","message":"…"}}` with the right status (and `Retry-After` for lockouts).
//!
//! Messages are for the person at the kiosk or the administrator at the CLI: they say what is wrong
//! and what to do. Internal failures are logged in full and answered without internals.
//!
//! The `code` is the stable part: the kiosk page shows its own text for each code in the person's
//! language (the English `message` is its fallback for a code it does not know yet). [`CODES`] lists
//! every code with its meaning; the OpenAPI document publishes that list.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The body of every error answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable machine-readable code (`unauthorized`, `not_found`, `option_refused`…); the list is
    /// in this property's description, from [`CODES`].
    pub code: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// For `option_refused`: the option, by its Graph name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub option: Option<String>,
    /// For `option_refused`: the values that would be accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
    /// For `invalid_field`: the request field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// With a 429 or 503: the seconds to wait before trying again (as the `Retry-After` header),
    /// so a page can say "try again in 5 minutes" in the person's own language.
    #[serde(rename = "retryAfterSeconds", skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u64>,
    /// For `printer_not_ready`: Graph's `printerProcessingStateDetail` members that stop the
    /// printer (e.g. `mediaJam`, `paused`); empty when its `state` (`stopped`) or
    /// `isAcceptingJobs` does.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<String>>,
    /// For `printer_not_ready`: the printers of the other stations of this station's group that
    /// can print now; the job stays held, so the person can release it at one of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alternatives: Option<Vec<Alternative>>,
}

/// A printer to release at instead (`printer_not_ready`).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Alternative {
    /// The station at that printer.
    pub station_id: String,
    /// The printer.
    pub printer_id: String,
    /// Its display name (its id when Graph is unreachable).
    pub printer_name: String,
}

/// Every error code the station API answers with, and what it means. Codes are never renamed or
/// reused: clients (the kiosk page) translate them.
pub const CODES: &[(&str, &str)] = &[
    (
        "bad_request",
        "the request is malformed (body, JSON, missing credentials)",
    ),
    (
        "unauthorized",
        "no or an unknown station key, admin key or session",
    ),
    (
        "invalid_field",
        "a request field is too long or malformed (`field` names it)",
    ),
    ("sign_in_failed", "the card, user or PIN is not known"),
    (
        "locked_out",
        "too many failed sign-ins for this card or person (`retryAfterSeconds`)",
    ),
    (
        "sign_in_budget",
        "too many failed sign-ins at this station or overall (`retryAfterSeconds`)",
    ),
    (
        "busy",
        "the daemon is busy checking other sign-ins (`retryAfterSeconds`)",
    ),
    (
        "directory_unavailable",
        "the directory card lookup is unavailable; sign in with user and PIN",
    ),
    ("not_found", "no such held job of the signed-in person"),
    (
        "not_held",
        "the job is already being released or deleted, or has ended",
    ),
    (
        "gone",
        "the job is no longer held (printed or deleted elsewhere)",
    ),
    (
        "option_refused",
        "an option the printer or the policy does not allow (`option`, `allowed`)",
    ),
    (
        "invalid_action",
        "the release or delete cannot be queued as asked",
    ),
    (
        "printer_not_ready",
        "the station's printer cannot print now (`details`); `alternatives` lists printers that can",
    ),
    (
        "not_an_alternative",
        "`at` names a station that is not in this station's group; release here or at one of the `alternatives`",
    ),
    (
        "graph_refused",
        "Universal Print refused the release or delete",
    ),
    (
        "store_unavailable",
        "the daemon's store cannot take writes; nothing was changed",
    ),
    (
        "internal",
        "a failure inside the daemon; its log has the cause",
    ),
    (
        "phone_disabled",
        "sign-in with Microsoft and release from the phone are off (`[phone] enabled`)",
    ),
];

/// The code of a 422 naming a request field.
const INVALID_FIELD: &str = "invalid_field";

/// `Retry-After` of a 503 for an unwritable store: long enough not to hammer a failing disk.
const STORE_RETRY_AFTER_SECS: u64 = 30;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
    /// The refused option (`option_refused`) or the field at fault (`invalid_field`): one slot, so
    /// the error stays small.
    option: Option<String>,
    allowed: Option<Vec<String>>,
    /// `printer_not_ready`: the blocking details and where to print instead.
    not_ready: Option<Box<(Vec<String>, Vec<Alternative>)>>,
}

impl ApiError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            option: None,
            allowed: None,
            not_ready: None,
        }
    }

    /// 404: Entra ID sign-in (`[phone]`) is off.
    pub fn phone_disabled() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "phone_disabled",
            "sign-in with Microsoft is off; the administrator turns it on with [phone] enabled = true",
        )
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 401: missing or wrong credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 404: no such job, or not one of yours (the same answer, so ids cannot be probed).
    pub fn job_not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("there is no held job `{id}` for you; refresh the list"),
        )
    }

    /// 429 with `Retry-After`.
    pub fn locked_out(retry_after_secs: u64) -> Self {
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "locked_out",
            format!(
                "too many failed sign-ins; try again in {} (or ask the administrator)",
                humantime::format_duration(std::time::Duration::from_secs(retry_after_secs))
            ),
        );
        error.retry_after = Some(retry_after_secs);
        error
    }

    /// 429 with `Retry-After` for a reason other than a lockout (`busy`, `sign_in_budget`).
    pub fn too_many(code: &'static str, message: impl Into<String>, retry_after_secs: u64) -> Self {
        let mut error = Self::new(StatusCode::TOO_MANY_REQUESTS, code, message);
        error.retry_after = Some(retry_after_secs.max(1));
        error
    }

    /// 422 naming a request field that is too long or malformed.
    pub fn bad_field(field: &'static str, message: impl Into<String>) -> Self {
        let mut error = Self::new(StatusCode::UNPROCESSABLE_ENTITY, INVALID_FIELD, message);
        error.option = Some(field.to_owned());
        error
    }

    /// 422: a release option the printer or the policy does not allow.
    pub fn refused(refusal: crate::job::Refusal) -> Self {
        let mut error = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "option_refused",
            refusal.message,
        );
        error.option = Some(refusal.option.to_owned());
        error.allowed = Some(refusal.allowed);
        error
    }

    /// 422 `not_an_alternative`: `?at=` named a station outside this station's group.
    pub fn not_an_alternative(wanted: &str) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_an_alternative",
            format!(
                "station `{wanted}` is not another station of this station's group; release without \
                 `at`, or at one of the `alternatives` a `printer_not_ready` answer listed"
            ),
        )
    }

    /// 409 `printer_not_ready`: the station's printer `name` cannot print now; nothing was queued
    /// and the job stays held. The message says why and where to go instead.
    pub fn printer_not_ready(
        name: &str,
        not_ready: crate::job::readiness::NotReady,
        alternatives: Vec<Alternative>,
    ) -> Self {
        let instead = if alternatives.is_empty() {
            "try again when it is ready, or ask for help".to_owned()
        } else {
            let names: Vec<String> = alternatives
                .iter()
                .map(|a| format!("{} (station {})", a.printer_name, a.station_id))
                .collect();
            format!("release it at {}", names.join(" or "))
        };
        let mut error = Self::new(
            StatusCode::CONFLICT,
            "printer_not_ready",
            format!(
                "{name} cannot print right now: {}. Your job is still held; {instead}.",
                not_ready.reason
            ),
        );
        error.not_ready = Some(Box::new((not_ready.details, alternatives)));
        error
    }

    /// 500: logged in full, answered without internals.
    pub fn internal(context: &str, error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "{context}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("{context} failed; the administrator can find the cause in the daemon's log"),
        )
    }

    /// 503: the store refused to record the request (read-only, disk full, I/O error). Nothing was
    /// accepted, so the person may simply try again; the message names the store and the fix, since
    /// the station's administrator is the one who can act on it. `Retry-After` invites the retry.
    pub fn store_unavailable(context: &str, error: &crate::store::StoreError) -> Self {
        tracing::error!(%error, "{context}");
        let mut refused = Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store_unavailable",
            format!(
                "{context} failed: the daemon's store cannot take writes, so nothing was changed; \
                 try again shortly. For the administrator: {error}"
            ),
        );
        refused.retry_after = Some(STORE_RETRY_AFTER_SECS);
        refused
    }

    /// The stable code (one of [`CODES`]).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The status (tests).
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (option, field) = if self.code == INVALID_FIELD {
            (None, self.option)
        } else {
            (self.option, None)
        };
        let (details, alternatives) = self.not_ready.map(|b| *b).unzip();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                option,
                allowed: self.allowed,
                field,
                retry_after_seconds: self.retry_after,
                details,
                alternatives,
            },
        };
        let mut response = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_code_the_station_answers_with_is_listed_with_its_meaning() {
        // The handlers name their codes as literals: each one must be in CODES, so the OpenAPI
        // document lists it and the kiosk page can translate it.
        let sources = [
            include_str!("api.rs"),
            include_str!("admin.rs"),
            include_str!("state.rs"),
            include_str!("error.rs"),
        ];
        let literal = regex::Regex::new(
            r#"(?:ApiError::new|Self::new|too_many)\(\s*(?:StatusCode::\w+,\s*)?"([a-z_]+)""#,
        )
        .unwrap();
        let mut found = 0;
        for source in sources {
            for code in literal.captures_iter(source) {
                found += 1;
                assert!(
                    CODES.iter().any(|(c, _)| *c == &code[1]),
                    "the code `{}` is not in error::CODES: add it there with its meaning",
                    &code[1]
                );
            }
        }
        assert!(found >= 10, "the scan found only {found} codes");
        assert!(CODES.iter().any(|(c, _)| *c == INVALID_FIELD));
    }

    #[tokio::test]
    async fn a_lockout_says_how_long_to_wait_in_the_body_as_well_as_the_header() {
        let response = ApiError::locked_out(300).into_response();
        assert_eq!(response.headers()[header::RETRY_AFTER], "300");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(json["error"]["code"], "locked_out");
        assert_eq!(json["error"]["retryAfterSeconds"], 300);
    }
}
