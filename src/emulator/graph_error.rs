//! Graph's error body and the helpers that build it.
//!
//! Every refusal of a Graph route is a [`GraphError`]: an HTTP status, a `code` (what clients branch
//! on, per Microsoft's errors page) and a `message` for people. The body is always
//! `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`, the shape
//! Graph documents, so the daemon's error parsing is exercised as it will be in production.

use axum::http::StatusCode;
use serde_json::{Value, json};

/// A refusal of a Graph request, rendered as Graph's error body.
#[derive(Debug, Clone)]
pub(crate) struct GraphError {
    /// HTTP status of the response.
    pub status: StatusCode,
    /// Graph's machine-readable `error.code`.
    pub code: String,
    /// Graph's human-readable `error.message`.
    pub message: String,
    /// Seconds for a `Retry-After` header (throttling, unavailability).
    pub retry_after: Option<u64>,
}

impl GraphError {
    /// An error with any status and code.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_owned(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `invalidRequest`: the client broke a documented rule.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalidRequest", message)
    }

    /// 404 `itemNotFound`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "itemNotFound", message)
    }

    /// 403 `accessDenied`.
    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "accessDenied", message)
    }

    /// 401 `InvalidAuthenticationToken`.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    }

    /// 409 `conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// Adds a `Retry-After` header.
    pub fn with_retry_after(mut self, seconds: Option<u64>) -> Self {
        self.retry_after = seconds;
        self
    }

    /// The JSON body, carrying the request ids Graph puts in `innerError`.
    pub fn body(&self, date: &str, request_id: &str, client_request_id: &str) -> Value {
        let mut inner = json!({
            "date": date,
            "request-id": request_id,
            "client-request-id": client_request_id,
        });
        // Graph's throttling sample carries the status in innerError too.
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            inner["code"] = json!("429");
            inner["status"] = json!("429");
            inner["message"] = json!("Please retry after");
        }
        json!({"error": {"code": self.code, "message": self.message, "innerError": inner}})
    }
}
