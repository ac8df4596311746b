//! The admin client the CLI (`pullprintd jobs`, `release`, `delete`, `unlock`) uses: the admin API
//! on `api.admin_listen` (https when `api.admin_tls_cert_file` is set, trusting that certificate),
//! authenticated with the admin key from the same configuration file.
//!
//! Every failure maps to a sysexits code and a message that says what to do: the daemon not
//! running (69), a wrong or missing admin key (78), an unknown job or refused option (65).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use super::api::{ActionAnswer, JobList, JobView};
use crate::config::Settings;
use crate::exit;
use crate::job::ReleaseOptions;

/// A failed admin call: what to print and the exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ClientError {
    /// The sysexits code.
    pub code: u8,
    /// What went wrong and what to do.
    pub message: String,
}

fn fail(code: u8, message: impl Into<String>) -> ClientError {
    ClientError {
        code,
        message: message.into(),
    }
}

/// Talks to the local admin API.
#[derive(Debug)]
pub struct AdminClient {
    base: String,
    key: String,
    http: reqwest::Client,
}

impl AdminClient {
    /// A client for the daemon configured by `settings`.
    pub fn new(settings: &Settings) -> Result<Self, ClientError> {
        let key = settings.api.admin_key.as_ref().ok_or_else(|| {
            fail(
                exit::CONFIG,
                "no admin key: set [api] admin_key_file in the configuration (the daemon reads the same file)",
            )
        })?;
        let mut addr = settings.api.admin_addr();
        // A daemon listening on every address is reached through the loopback one.
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let mut builder = reqwest::Client::builder().timeout(Duration::from_secs(60));
        let mut scheme = "http";
        // With TLS on the admin listener, its own certificate is the one trusted root: a
        // self-signed certificate for the loopback address works without a CA.
        if let Some(cert) = &settings.api.admin_tls_cert_file {
            let pem = std::fs::read(cert).map_err(|e| {
                fail(
                    exit::CONFIG,
                    format!(
                        "cannot read api.admin_tls_cert_file {}: {e}",
                        cert.display()
                    ),
                )
            })?;
            let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                fail(
                    exit::CONFIG,
                    format!("api.admin_tls_cert_file {} is not PEM: {e}", cert.display()),
                )
            })?;
            for root in roots {
                builder = builder.add_root_certificate(root);
            }
            scheme = "https";
        }
        let http = builder
            .build()
            .map_err(|e| fail(exit::SOFTWARE, format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base: format!("{scheme}://{addr}"),
            key: key.expose().to_owned(),
            http,
        })
    }

    async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<(StatusCode, Value), ClientError> {
        let response = request.bearer_auth(&self.key).send().await.map_err(|e| {
            fail(
                exit::UNAVAILABLE,
                format!("cannot reach pullprintd at {}: {e}; is `pullprintd run` running with this configuration?", self.base),
            )
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok((status, body));
        }
        let message = body["error"]["message"]
            .as_str()
            .map_or_else(|| format!("HTTP {status}"), ToOwned::to_owned);
        let code = match status {
            StatusCode::UNAUTHORIZED => exit::CONFIG,
            s if s.is_server_error() => exit::UNAVAILABLE,
            _ => exit::DATAERR,
        };
        Err(fail(code, message))
    }

    /// Every held job, following the listing's pages.
    pub async fn jobs(&self) -> Result<Vec<JobView>, ClientError> {
        let mut jobs = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut request = self.http.get(format!("{}/api/v1/admin/jobs", self.base));
            if let Some(cursor) = &after {
                request = request.query(&[("after", cursor)]);
            }
            let (_, body) = self.send(request).await?;
            let page = serde_json::from_value::<JobList>(body).map_err(|e| {
                fail(
                    exit::SOFTWARE,
                    format!("unexpected answer from pullprintd: {e}"),
                )
            })?;
            jobs.extend(page.jobs);
            match page.next {
                Some(next) if Some(&next) != after.as_ref() => after = Some(next),
                _ => return Ok(jobs),
            }
        }
    }

    /// Releases job `id` with `options`; the answer says released or queued.
    pub async fn release(
        &self,
        id: &str,
        options: &ReleaseOptions,
    ) -> Result<ActionAnswer, ClientError> {
        let url = format!("{}/api/v1/admin/jobs/{}/release", self.base, encode(id));
        let (_, body) = self.send(self.http.post(url).json(options)).await?;
        Self::answer(body)
    }

    /// Deletes job `id`.
    pub async fn delete(&self, id: &str) -> Result<ActionAnswer, ClientError> {
        let url = format!("{}/api/v1/admin/jobs/{}", self.base, encode(id));
        let (_, body) = self.send(self.http.delete(url)).await?;
        Self::answer(body)
    }

    /// Lifts the sign-in lockout of `person` (a UPN or card number); whether anything was cleared.
    pub async fn unlock(&self, person: &str) -> Result<bool, ClientError> {
        let url = format!("{}/api/v1/admin/lockouts/{}", self.base, encode(person));
        let (_, body) = self.send(self.http.delete(url)).await?;
        Ok(body["cleared"].as_bool().unwrap_or(false))
    }

    fn answer(body: Value) -> Result<ActionAnswer, ClientError> {
        serde_json::from_value(body).map_err(|e| {
            fail(
                exit::SOFTWARE,
                format!("unexpected answer from pullprintd: {e}"),
            )
        })
    }
}

/// A job id as one URL path segment.
fn encode(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// The jobs as a table for people.
pub fn jobs_table(jobs: &[JobView]) -> String {
    if jobs.is_empty() {
        return "No held jobs.\n".to_owned();
    }
    let mut out = format!(
        "{:<38} {:<8} {:<28} {:<20} NAME\n",
        "ID", "STATE", "OWNER", "SUBMITTED"
    );
    for job in jobs {
        let submitted = job
            .submitted_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        out.push_str(&format!(
            "{:<38} {:<8} {:<28} {:<20} {}\n",
            printable(&job.id),
            printable(&job.state),
            printable(&job.owner),
            submitted,
            printable(&job.name)
        ));
    }
    out
}

/// `text` without terminal control characters: a document name comes from whoever printed it, and
/// an escape sequence in it must not rewrite the administrator's terminal (or hide a line).
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_control_characters_in_a_document_name_are_replaced() {
        assert_eq!(printable("report.pdf"), "report.pdf");
        assert_eq!(
            printable("a\u{1b}[2J\u{1b}]0;pwned\u{7}b\r\nc\u{9b}d"),
            "a\u{FFFD}[2J\u{FFFD}]0;pwned\u{FFFD}b\u{FFFD}\u{FFFD}c\u{FFFD}d"
        );
    }
}
