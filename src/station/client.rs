//! The admin client the CLI (`pullprintd jobs`, `release`, `delete`) uses: the local API on
//! `api.listen`, authenticated with the admin key from the same configuration file.
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
        let mut addr = settings.api.listen;
        // A daemon listening on every address is reached through the loopback one.
        if addr.ip().is_unspecified() {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| fail(exit::SOFTWARE, format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            base: format!("http://{addr}"),
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

    /// Every held job.
    pub async fn jobs(&self) -> Result<Vec<JobView>, ClientError> {
        let (_, body) = self
            .send(self.http.get(format!("{}/api/v1/admin/jobs", self.base)))
            .await?;
        serde_json::from_value::<JobList>(body)
            .map(|list| list.jobs)
            .map_err(|e| {
                fail(
                    exit::SOFTWARE,
                    format!("unexpected answer from pullprintd: {e}"),
                )
            })
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
            job.id, job.state, job.owner, submitted, job.name
        ));
    }
    out
}
