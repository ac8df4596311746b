//! [`GraphClient`]: one place that sends every Graph request (`send`), with tokens, `client-request-id`,
//! retries, fresh connections after a 503, the 401 refresh and the observer hook.
//!
//! Invariants:
//! - every attempt carries a new `client-request-id` (UUID v4) and is reported once to the observer;
//! - a 401 with an app token triggers one token refresh and one immediate retry, never more;
//! - a request that must not be repeated is never sent twice once it may have reached Graph (see
//!   `retry.rs`); its uncertain failures come back as [`GraphError::OutcomeUnknown`];
//! - tokens and secrets are never logged; logs carry the operation, method, path and both request ids.
//!
//! The client is cheap to clone (an `Arc` inside); clone it into every task that needs Graph.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use url::Url;

use super::activity::Activity;
use super::auth::{AppTokens, Credential};
use super::clouds::{Cloud, Endpoints};
use super::device_code::DelegatedToken;
use super::error::{ApiError, GraphError};
use super::observer::GraphObserver;
use super::retry::{
    Idempotency, RetryPolicy, Schedule, Sleeper, Verdict, classify_status, classify_transport,
    parse_retry_after, tokio_sleeper,
};
use crate::clock::{SharedClock, SystemClock};

/// Everything a [`GraphClient`] is built from. Start from [`GraphOptions::new`] and override fields.
#[derive(Clone)]
pub struct GraphOptions {
    /// The national cloud.
    pub cloud: Cloud,
    /// The Entra ID tenant (GUID or domain).
    pub tenant_id: String,
    /// The app registration's client id.
    pub client_id: String,
    /// The app's credential.
    pub credential: Credential,
    /// Overrides the Graph root (emulator, tests); `/v1.0` is appended and the token scope becomes
    /// `{base_url}/.default`.
    pub base_url: Option<Url>,
    /// Overrides the Entra ID login root (emulator, tests).
    pub login_url: Option<Url>,
    /// How long one attempt may take, response body included.
    pub request_timeout: Duration,
    /// Retry bounds.
    pub retry: RetryPolicy,
    /// The clock that judges token expiry.
    pub clock: SharedClock,
    /// Sees every attempt, retry and token refresh (metrics).
    pub observer: Option<Arc<dyn GraphObserver>>,
    /// Waits between attempts (tests inject one that records the delays).
    pub sleeper: Sleeper,
    /// The most Graph requests in flight at once (Graph throttles bursts); at least 1.
    pub max_concurrent_requests: usize,
}

impl GraphOptions {
    /// Options with the defaults: 30 s per attempt, [`RetryPolicy::default`], the system clock, no
    /// observer, tokio's sleep.
    pub fn new(
        cloud: Cloud,
        tenant_id: impl Into<String>,
        client_id: impl Into<String>,
        credential: Credential,
    ) -> Self {
        Self {
            cloud,
            tenant_id: tenant_id.into(),
            client_id: client_id.into(),
            credential,
            base_url: None,
            login_url: None,
            request_timeout: Duration::from_secs(30),
            retry: RetryPolicy::default(),
            clock: SystemClock::shared(),
            observer: None,
            sleeper: tokio_sleeper(),
            max_concurrent_requests: 16,
        }
    }
}

impl fmt::Debug for GraphOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphOptions")
            .field("cloud", &self.cloud)
            .field("tenant_id", &self.tenant_id)
            .field("client_id", &self.client_id)
            .field("base_url", &self.base_url)
            .field("login_url", &self.login_url)
            .field("request_timeout", &self.request_timeout)
            .field("retry", &self.retry)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish_non_exhaustive()
    }
}

/// The Microsoft Graph print client. Cheap to clone.
#[derive(Clone)]
pub struct GraphClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) endpoints: Endpoints,
    pub(crate) tenant_id: String,
    pub(crate) client_id: String,
    /// Pooled connections: the normal path.
    pooled: reqwest::Client,
    /// No idle connections kept (`pool_max_idle_per_host(0)`), so every request opens a new connection:
    /// used for the attempts after a 503/504 or a broken connection, as Graph asks.
    fresh: reqwest::Client,
    pub(crate) tokens: AppTokens,
    retry: RetryPolicy,
    pub(crate) sleeper: Sleeper,
    observer: Option<Arc<dyn GraphObserver>>,
    pub(crate) clock: SharedClock,
    /// Bounds the attempts in flight (a permit is held per attempt, not across back-off waits).
    in_flight: tokio::sync::Semaphore,
    /// The requests under way (for the watchdog).
    activity: Activity,
}

impl fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphClient")
            .field("graph", &self.inner.endpoints.graph_v1.as_str())
            .field("tenant_id", &self.inner.tenant_id)
            .field("client_id", &self.inner.client_id)
            .finish_non_exhaustive()
    }
}

/// Which token a request carries.
#[derive(Clone, Copy)]
pub(crate) enum Auth<'a> {
    /// The app-only (client-credentials) token.
    App,
    /// A signed-in administrator's token (task triggers).
    Delegated(&'a DelegatedToken),
}

/// One logical Graph request (possibly several attempts).
pub(crate) struct Request<'a> {
    pub(crate) operation: &'static str,
    pub(crate) method: Method,
    pub(crate) url: Url,
    pub(crate) body: Option<serde_json::Value>,
    pub(crate) idempotency: Idempotency,
    pub(crate) auth: Auth<'a>,
}

/// A successful response.
pub(crate) struct Response {
    pub(crate) status: u16,
    pub(crate) body: Vec<u8>,
    pub(crate) client_request_id: String,
}

#[derive(Deserialize)]
struct ErrorEnvelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default, rename = "innerError", alias = "innererror")]
    inner: Option<InnerError>,
}

#[derive(Deserialize)]
struct InnerError {
    #[serde(default, rename = "request-id")]
    request_id: Option<String>,
}

impl GraphClient {
    /// Builds a client; fails on a bad URL, certificate or key (nothing is sent yet).
    pub fn new(options: GraphOptions) -> Result<Self, GraphError> {
        let endpoints = Endpoints::resolve(
            options.cloud,
            options.base_url.as_ref(),
            options.login_url.as_ref(),
        )?;
        let build = |idle: Option<usize>| {
            let mut builder = reqwest::Client::builder()
                .user_agent(concat!("pullprintd/", env!("CARGO_PKG_VERSION")))
                .timeout(options.request_timeout);
            if let Some(idle) = idle {
                builder = builder.pool_max_idle_per_host(idle);
            }
            builder.build().map_err(|error| {
                GraphError::Configuration(format!("cannot build the HTTP client: {error}"))
            })
        };
        let pooled = build(None)?;
        let fresh = build(Some(0))?;
        let tokens = AppTokens::new(
            pooled.clone(),
            endpoints.token_endpoint(&options.tenant_id)?,
            options.client_id.clone(),
            endpoints.scope.clone(),
            &options.credential,
            options.clock.clone(),
            options.observer.clone(),
        )?;
        Ok(Self {
            inner: Arc::new(Inner {
                endpoints,
                tenant_id: options.tenant_id,
                client_id: options.client_id,
                pooled,
                fresh,
                tokens,
                retry: options.retry,
                sleeper: options.sleeper,
                observer: options.observer,
                clock: options.clock,
                in_flight: tokio::sync::Semaphore::new(options.max_concurrent_requests.max(1)),
                activity: Activity::new(
                    options
                        .retry
                        .max_elapsed
                        .saturating_add(options.request_timeout.saturating_mul(2)),
                ),
            }),
        })
    }

    /// The resolved login root, Graph root and scope.
    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// The `roles` claim of the current app token: the application permissions the tenant granted
    /// (for `doctor`). The token is decoded, not verified: it is Graph's to verify.
    pub async fn app_token_roles(&self) -> Result<Vec<String>, GraphError> {
        self.inner.tokens.roles().await
    }

    /// Makes sure an app token is at hand, fetching one if needed: the daemon says READY only once
    /// Entra ID has accepted its credential.
    pub async fn ensure_token(&self) -> Result<(), GraphError> {
        self.inner.tokens.current().await.map(drop)
    }

    /// Whether a Graph request is under way and still within its bounds (retry budget included): the
    /// daemon is waiting on Graph, not stuck (see `activity.rs`).
    pub fn waiting_on_graph(&self) -> bool {
        self.inner.activity.waiting_on_graph()
    }

    /// When the current app token expires; `None` before the first one. Never waits on a refresh.
    pub fn token_expires_at(&self) -> Option<time::OffsetDateTime> {
        self.inner.tokens.expires_at()
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.pooled
    }

    /// A Graph URL from path segments below `/v1.0/`.
    pub(crate) fn url(&self, segments: &[&str]) -> Result<Url, GraphError> {
        self.inner.endpoints.graph_url(segments)
    }

    /// Sends `request` and decodes a JSON body.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        request: Request<'_>,
    ) -> Result<T, GraphError> {
        let operation = request.operation;
        let response = self.send(request).await?;
        serde_json::from_slice(&response.body).map_err(|error| GraphError::InvalidResponse {
            operation,
            status: response.status,
            detail: format!("the body is not the expected JSON: {error}"),
            client_request_id: response.client_request_id,
        })
    }

    /// Sends `request`, ignoring any body.
    pub(crate) async fn send_no_content(&self, request: Request<'_>) -> Result<(), GraphError> {
        self.send(request).await.map(|_| ())
    }

    /// THE request loop: every Graph call goes through here.
    pub(crate) async fn send(&self, request: Request<'_>) -> Result<Response, GraphError> {
        let inner = &self.inner;
        let _underway = inner.activity.begin();
        let operation = request.operation;
        let mut schedule = Schedule::new(inner.retry);
        let mut attempt: u32 = 0;
        let mut fresh_connection = false;
        let mut refreshed_after_401 = false;
        loop {
            attempt += 1;
            let client_request_id = uuid::Uuid::new_v4().to_string();
            let (token, generation) = match request.auth {
                Auth::Delegated(token) => (token.access_token.clone(), None),
                Auth::App => match inner.tokens.current().await {
                    Ok(token) => (token.secret, Some(token.generation)),
                    Err(error) if error.is_transient() => match schedule.next_delay(None) {
                        Some(delay) => {
                            self.pause(operation, attempt, delay).await;
                            continue;
                        }
                        None => return Err(error),
                    },
                    Err(error) => return Err(error),
                },
            };
            let outcome = self
                .attempt(
                    &request,
                    &token,
                    &client_request_id,
                    fresh_connection,
                    attempt,
                )
                .await;
            let (status, headers, body) = match outcome {
                Ok(parts) => parts,
                Err(error) => {
                    let verdict = classify_transport(&error, request.idempotency);
                    let timed_out = error.is_timeout();
                    let detail = error.without_url().to_string();
                    match verdict {
                        Verdict::Retry { .. } => {
                            if let Some(delay) = schedule.next_delay(None) {
                                tracing::debug!(operation, attempt, %client_request_id, %detail, "retrying after a transport error");
                                fresh_connection = true;
                                self.pause(operation, attempt, delay).await;
                                continue;
                            }
                            return Err(GraphError::Transport {
                                operation,
                                detail,
                                client_request_id,
                                timed_out,
                            });
                        }
                        Verdict::OutcomeUnknown => {
                            return Err(GraphError::OutcomeUnknown {
                                operation,
                                detail,
                                request_id: None,
                                client_request_id,
                            });
                        }
                        Verdict::Fail => {
                            return Err(GraphError::Transport {
                                operation,
                                detail,
                                client_request_id,
                                timed_out,
                            });
                        }
                    }
                }
            };
            if (200..300).contains(&status) {
                return Ok(Response {
                    status,
                    body,
                    client_request_id,
                });
            }
            let request_id = header(&headers, "request-id");
            if status == 401
                && let Some(generation) = generation
                && !refreshed_after_401
            {
                tracing::debug!(operation, %client_request_id, ?request_id, "401: refreshing the app token once");
                refreshed_after_401 = true;
                inner.tokens.replace_rejected(generation).await?;
                continue;
            }
            let retry_after = header(&headers, "retry-after")
                .and_then(|value| parse_retry_after(&value, inner.clock.now()));
            let api = api_error(
                operation,
                status,
                &body,
                request_id,
                client_request_id,
                retry_after,
                attempt,
            );
            match classify_status(status, request.idempotency) {
                Verdict::Retry {
                    fresh_connection: fresh,
                } => match schedule.next_delay(retry_after) {
                    Some(delay) => {
                        tracing::debug!(operation, attempt, status, ?delay, client_request_id = %api.client_request_id, request_id = ?api.request_id, "retrying");
                        fresh_connection = fresh;
                        self.pause(operation, attempt, delay).await;
                    }
                    None => return Err(api.into()),
                },
                Verdict::OutcomeUnknown => {
                    return Err(GraphError::OutcomeUnknown {
                        operation,
                        detail: format!("HTTP {} {}: {}", api.status, api.code, api.message),
                        request_id: api.request_id,
                        client_request_id: api.client_request_id,
                    });
                }
                Verdict::Fail => return Err(api.into()),
            }
        }
    }

    /// One attempt: the status, headers and full body, or the transport error.
    async fn attempt(
        &self,
        request: &Request<'_>,
        token: &SecretString,
        client_request_id: &str,
        fresh_connection: bool,
        attempt: u32,
    ) -> Result<(u16, reqwest::header::HeaderMap, Vec<u8>), reqwest::Error> {
        let inner = &self.inner;
        let http = if fresh_connection {
            &inner.fresh
        } else {
            &inner.pooled
        };
        let mut builder = http
            .request(request.method.clone(), request.url.clone())
            .bearer_auth(token.expose_secret())
            .header("client-request-id", client_request_id)
            .header("return-client-request-id", "true");
        builder = match &request.body {
            Some(body) => builder.json(body),
            // Graph wants a Content-Length on bodiless POSTs.
            None if request.method == Method::POST => {
                builder.header(reqwest::header::CONTENT_LENGTH, "0")
            }
            None => builder,
        };
        // The semaphore is never closed, so a failed acquire cannot happen; proceeding is still safe.
        let _permit = inner.in_flight.acquire().await.ok();
        let started = tokio::time::Instant::now();
        let result = async {
            let response = builder.send().await?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await?.to_vec();
            Ok((status, headers, body))
        }
        .await;
        let status = result.as_ref().ok().map(|(status, _, _)| *status);
        tracing::debug!(
            operation = request.operation,
            method = %request.method,
            path = request.url.path(),
            client_request_id,
            attempt,
            ?status,
            "graph request"
        );
        if let Some(observer) = &inner.observer {
            observer.on_response(request.operation, status, started.elapsed(), attempt);
        }
        result
    }

    async fn pause(&self, operation: &'static str, attempt: u32, delay: Duration) {
        if let Some(observer) = &self.inner.observer {
            observer.on_retry(operation, attempt, delay);
        }
        (self.inner.sleeper)(delay).await;
    }
}

fn header(headers: &reqwest::header::HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned)
}

fn api_error(
    operation: &'static str,
    status: u16,
    body: &[u8],
    request_id: Option<String>,
    client_request_id: String,
    retry_after: Option<Duration>,
    attempts: u32,
) -> ApiError {
    let parsed: Option<ErrorEnvelope> = serde_json::from_slice(body).ok();
    let (code, message, inner_request_id) = match parsed {
        Some(ErrorEnvelope { error }) => (
            error.code,
            error.message,
            error.inner.and_then(|inner| inner.request_id),
        ),
        None => {
            let text = String::from_utf8_lossy(body);
            let text: String = text.chars().take(200).collect();
            (
                String::new(),
                if text.is_empty() {
                    "(empty body)".to_owned()
                } else {
                    text
                },
                None,
            )
        }
    };
    ApiError {
        operation,
        status,
        code,
        message,
        request_id: request_id.or(inner_request_id),
        client_request_id,
        retry_after,
        attempts,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::test_support::Recorder;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// Reads one HTTP/1.1 request (head and Content-Length body); `None` when the peer closed.
    async fn read_request(stream: &mut TcpStream) -> Option<String> {
        let mut buffer = Vec::new();
        let mut chunk = [0_u8; 4096];
        loop {
            if let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|line| {
                        line.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().to_owned())
                    })
                    .and_then(|value| value.parse().ok())
                    .unwrap_or(0);
                while buffer.len() < end + 4 + length {
                    let read = stream.read(&mut chunk).await.ok()?;
                    if read == 0 {
                        return None;
                    }
                    buffer.extend_from_slice(&chunk[..read]);
                }
                return Some(head);
            }
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            buffer.extend_from_slice(&chunk[..read]);
        }
    }

    /// A tiny keep-alive HTTP server counting connections: the token endpoint, then one 503, then 200s.
    async fn counting_server() -> (Url, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let graph_calls = Arc::new(AtomicUsize::new(0));
        let counter = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let graph_calls = graph_calls.clone();
                tokio::spawn(async move {
                    while let Some(head) = read_request(&mut stream).await {
                        let (status, body) = if head.contains("/oauth2/v2.0/token") {
                            ("200 OK", r#"{"access_token":"t","expires_in":3600}"#)
                        } else if graph_calls.fetch_add(1, Ordering::SeqCst) == 0 {
                            (
                                "503 Service Unavailable",
                                r#"{"error":{"code":"serviceNotAvailable","message":"busy"}}"#,
                            )
                        } else {
                            ("200 OK", r#"{"id":"j1","status":{"state":"paused"}}"#)
                        };
                        let response = format!(
                            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if stream.write_all(response.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        (url, connections)
    }

    #[tokio::test]
    async fn a_503_is_retried_over_a_new_connection() {
        let (url, connections) = counting_server().await;
        let recorder = Recorder::default();
        let mut options = GraphOptions::new(
            Cloud::Global,
            "tenant",
            "client-1",
            Credential::ClientSecret(SecretString::from("s")),
        );
        options.base_url = Some(url.clone());
        options.login_url = Some(url);
        options.sleeper = recorder.sleeper();
        let client = GraphClient::new(options).unwrap();
        client.get_job("p1", "j1", &[]).await.unwrap();
        // Token request and the 503 share the pooled connection; the retry must open a second one.
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        client.get_job("p1", "j1", &[]).await.unwrap();
        assert_eq!(
            connections.load(Ordering::SeqCst),
            2,
            "later calls go back to the pooled connection"
        );
    }
}
