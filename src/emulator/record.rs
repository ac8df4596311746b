//! The request log: every Graph request (not control, not token) as one JSON line
//! `{"method","url","body"}`, so recorded flows can be checked against Graph's OpenAPI description.
//!
//! Invariant: the URL is the full URL the client used (path and query) and the body is what the
//! client sent, parsed as JSON, or `null` when there was none (a non-JSON body is kept as a string).

use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Appends request lines to a file.
#[derive(Debug)]
pub(crate) struct Recorder {
    // A std mutex: one short blocking write per request, never held across an await.
    file: Mutex<File>,
}

impl Recorder {
    /// Opens (creating or appending to) the log at `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(Self {
            file: Mutex::new(file),
        })
    }

    /// Appends one request. A failed write is logged, never fatal: the log is a test aid.
    pub fn record(&self, method: &str, url: &str, body: &[u8]) {
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
        };
        let line = json!({"method": method, "url": url, "body": body}).to_string();
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Err(error) = writeln!(file, "{line}") {
            tracing::warn!(%error, "emulator: could not append to the request log");
        }
    }
}
