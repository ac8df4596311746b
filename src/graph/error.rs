//! [`GraphError`]: every way a Graph or Entra ID call can fail, with what callers must tell apart.
//!
//! Callers decide by kind, never by message: [`GraphError::is_transient`] (try again later),
//! [`GraphError::is_not_found`], [`GraphError::is_forbidden`] (missing permission or consent),
//! [`GraphError::is_conflict_or_invalid_state`] (the job has no `processing` task of ours any more) and
//! [`GraphError::OutcomeUnknown`] (the request may have taken effect: settle it by reading state).
//! Every error that came from a response keeps Graph's `request-id` and our `client-request-id`, so a
//! support case can be opened from one log line. Errors never contain tokens or secrets.

use std::fmt;
use std::time::Duration;

/// An error answer from Graph (an HTTP status ≥ 400 with Graph's `{"error":{…}}` body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// Our short name of the operation (`get_job`, `redirect_job`…).
    pub operation: &'static str,
    /// The HTTP status.
    pub status: u16,
    /// Graph's `error.code` (e.g. `itemNotFound`); empty if the body had none.
    pub code: String,
    /// Graph's `error.message`.
    pub message: String,
    /// Graph's `request-id` (response header, else `innerError`).
    pub request_id: Option<String>,
    /// The `client-request-id` we sent with the last attempt.
    pub client_request_id: String,
    /// The `Retry-After` Graph asked for, if any.
    pub retry_after: Option<Duration>,
    /// How many attempts were made.
    pub attempts: u32,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = if self.code.is_empty() {
            "(no code)"
        } else {
            &self.code
        };
        write!(
            f,
            "{} failed: HTTP {} {}: {}",
            self.operation, self.status, code, self.message
        )?;
        write!(
            f,
            " (request-id {}, client-request-id {}",
            self.request_id.as_deref().unwrap_or("none"),
            self.client_request_id
        )?;
        if self.attempts > 1 {
            write!(f, ", after {} attempts", self.attempts)?;
        }
        f.write_str(")")
    }
}

/// An error answer from the Entra ID token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The HTTP status.
    pub status: u16,
    /// OAuth `error` (e.g. `invalid_client`).
    pub error: String,
    /// The `AADSTS…` code from `error_description`, if any.
    pub aadsts: Option<String>,
    /// The first line of `error_description`.
    pub description: String,
    /// What to do about it.
    pub fix: &'static str,
    /// Entra's `trace_id`, for support.
    pub trace_id: Option<String>,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Entra ID refused the token request (HTTP {} {}",
            self.status, self.error
        )?;
        if let Some(code) = &self.aadsts {
            write!(f, ", {code}")?;
        }
        write!(f, "): {}. Fix: {}", self.description, self.fix)?;
        if let Some(trace) = &self.trace_id {
            write!(f, " (trace-id {trace})")?;
        }
        Ok(())
    }
}

/// Why a Graph or Entra ID call failed.
#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error status.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// The request may or may not have taken effect (timeout or broken connection after it was sent, or
    /// a 5xx answer to a non-repeatable request). Read the resource to settle it.
    #[error(
        "{operation}: outcome unknown, the request may have taken effect: {detail} (request-id {}, \
         client-request-id {client_request_id}); read the resource's state to settle it",
        request_id.as_deref().unwrap_or("none")
    )]
    OutcomeUnknown {
        /// The operation.
        operation: &'static str,
        /// What happened.
        detail: String,
        /// Graph's `request-id`, when a response arrived.
        request_id: Option<String>,
        /// Our `client-request-id`.
        client_request_id: String,
    },
    /// Graph (or Entra ID) could not be reached, or the connection failed, and retrying did not help.
    #[error(
        "{operation}: could not reach Microsoft Graph or Entra ID: {detail} (client-request-id \
         {client_request_id}); check network access, proxy and DNS"
    )]
    Transport {
        /// The operation.
        operation: &'static str,
        /// The underlying error.
        detail: String,
        /// Our `client-request-id`.
        client_request_id: String,
        /// True when the request timed out.
        timed_out: bool,
    },
    /// A success status with a body we could not read.
    #[error(
        "{operation}: unexpected response (HTTP {status}): {detail} (client-request-id {client_request_id})"
    )]
    InvalidResponse {
        /// The operation.
        operation: &'static str,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
        /// Our `client-request-id`.
        client_request_id: String,
    },
    /// Entra ID refused to issue a token.
    #[error("{0}")]
    Token(Box<TokenError>),
    /// The administrator declined the device-code sign-in.
    #[error("the sign-in was declined; run the command again and approve the request")]
    DeviceCodeDeclined,
    /// The device code expired before anyone signed in.
    #[error(
        "the sign-in code expired before anyone signed in; run the command again and enter the code sooner"
    )]
    DeviceCodeExpired,
    /// A lookup expected at most one result and found several.
    #[error("{operation}: {detail}")]
    Ambiguous {
        /// The operation.
        operation: &'static str,
        /// What was ambiguous and how to fix it.
        detail: String,
    },
    /// A print task's `parentUrl` is not a printer job URL.
    #[error("cannot read the job from parentUrl {url:?}: {problem}")]
    InvalidParentUrl {
        /// The URL as received.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// The client is configured wrongly (cloud, URL, certificate or key); the message says how to fix it.
    #[error("Graph client configuration: {0}")]
    Configuration(String),
}

/// Graph error codes (400) that mean "the job is not in a state that allows this": for print, the job
/// has no `processing` task of our trigger (already released, aborted or redirected). The exact code
/// Universal Print uses is undocumented; these are Graph's generic state codes.
const INVALID_STATE_CODES: [&str; 4] =
    ["notAllowed", "invalidState", "resourceModified", "conflict"];

impl GraphError {
    /// The HTTP status, when Graph answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api(api) => Some(api.status),
            Self::InvalidResponse { status, .. } => Some(*status),
            Self::Token(token) => Some(token.status),
            _ => None,
        }
    }

    /// Graph's error code, when Graph answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(api) if !api.code.is_empty() => Some(&api.code),
            Self::Token(token) => Some(&token.error),
            _ => None,
        }
    }

    /// Graph's `request-id`, when a response arrived.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Api(api) => api.request_id.as_deref(),
            Self::OutcomeUnknown { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// True when trying again later may succeed: throttling, server errors, unreachable network.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Api(api) => matches!(api.status, 408 | 429 | 500..=599),
            Self::Token(token) => token.status == 429 || token.status >= 500,
            Self::Transport { .. } => true,
            _ => false,
        }
    }

    /// True for 404: the job, task or subscription no longer exists.
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::Api(api) if api.status == 404)
    }

    /// True for 403: a permission is missing or not consented, or the caller is not allowed.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Api(api) if api.status == 403)
    }

    /// True when Graph refused because the resource is not in a state that allows the request: 409,
    /// 412, 423, or 400 with a state code. For jobs: no `processing` task of ours any more (already
    /// released, aborted or redirected); settle by reading the job.
    pub fn is_conflict_or_invalid_state(&self) -> bool {
        match self {
            Self::Api(api) => {
                matches!(api.status, 409 | 412 | 423)
                    || (api.status == 400
                        && INVALID_STATE_CODES
                            .iter()
                            .any(|code| code.eq_ignore_ascii_case(&api.code)))
            }
            _ => false,
        }
    }

    /// True when the request may have taken effect; see [`GraphError::OutcomeUnknown`].
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }
}

impl From<ApiError> for GraphError {
    fn from(api: ApiError) -> Self {
        Self::Api(Box::new(api))
    }
}

impl From<TokenError> for GraphError {
    fn from(token: TokenError) -> Self {
        Self::Token(Box::new(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> GraphError {
        ApiError {
            operation: "update_job_configuration",
            status,
            code: code.to_owned(),
            message: "The print job is not in a valid state.".to_owned(),
            request_id: Some("req-1".to_owned()),
            client_request_id: "cli-1".to_owned(),
            retry_after: None,
            attempts: 1,
        }
        .into()
    }

    #[test]
    fn an_api_error_displays_operation_status_code_message_and_ids_on_one_line() {
        let text = api(409, "conflict").to_string();
        assert_eq!(
            text,
            "update_job_configuration failed: HTTP 409 conflict: The print job is not in a valid state. \
             (request-id req-1, client-request-id cli-1)"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn kinds_are_told_apart_by_status_and_code() {
        assert!(api(429, "TooManyRequests").is_transient());
        assert!(api(503, "serviceNotAvailable").is_transient());
        assert!(!api(400, "invalidRequest").is_transient());
        assert!(api(404, "itemNotFound").is_not_found());
        assert!(api(403, "accessDenied").is_forbidden());
        assert!(api(409, "").is_conflict_or_invalid_state());
        assert!(api(400, "NotAllowed").is_conflict_or_invalid_state());
        assert!(!api(400, "invalidRequest").is_conflict_or_invalid_state());
    }
}
