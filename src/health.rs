//! Health: `GET /healthz` (alive) and `GET /readyz` (able to do its job), and `GET /metrics`.
//!
//! Ready means: the store takes writes (probed at most once per 10 s) (a full disk or read-only file would lose releases), a Graph
//! app token was obtained and is still valid (the credential works), and — when Graph notifications
//! are configured — the subscription exists and has not expired. Not ready answers 503 with a short
//! JSON reason per failed check, so a load balancer or container runtime can say why.
//!
//! Graph's availability is a *reason*, never a start condition: the daemon tells systemd READY once
//! the store and the listener are up, and releases queue while Entra ID or Graph are away. Why no
//! token could be had (unreachable, or the credential refused) is kept in [`GraphStatus`] and shown
//! here and on systemd's status line.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::clock::SharedClock;
use crate::graph::GraphClient;
use crate::metrics::Metrics;
use crate::store::Store;
use time::OffsetDateTime;

/// Why the last attempt to get a Graph token failed, if it did; shared by the token task and
/// readiness. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct GraphStatus {
    // A std mutex: a short string copied in and out, never held across an await.
    problem: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl GraphStatus {
    /// Records why no token could be had (`None`: a token was obtained).
    pub fn set(&self, problem: Option<String>) {
        *self
            .problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = problem;
    }

    /// The last recorded problem.
    pub fn get(&self) -> Option<String> {
        self.problem
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// What readiness looks at. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Health {
    /// The store, probed with a write.
    pub store: Store,
    /// The Graph client, for its token's expiry (never waits on Graph).
    pub graph: GraphClient,
    /// The injected clock.
    pub clock: SharedClock,
    /// Whether a Graph subscription is expected (webhook intake configured).
    pub expects_subscription: bool,
    /// The metrics registry rendered at `/metrics`.
    pub metrics: Metrics,
    /// Why the last token request failed (unreachable, or refused).
    pub graph_status: GraphStatus,
    /// The last store write probe, reused for [`STORE_PROBE_EVERY`].
    pub store_probe: StoreProbe,
}

/// How long one store write probe answers for: `/readyz` is unauthenticated, and each probe is a
/// write and an fsync, so a flood of probes must not become a flood of disk writes.
pub const STORE_PROBE_EVERY: time::Duration = time::Duration::seconds(10);

/// The outcome of the last store write probe, shared by every `/readyz` (at most one write per
/// [`STORE_PROBE_EVERY`]; concurrent probes wait for the one under way).
#[derive(Debug, Clone, Default)]
pub struct StoreProbe {
    last: std::sync::Arc<tokio::sync::Mutex<Option<ProbeOutcome>>>,
}

/// When the store was last probed, and its problem then (if any).
type ProbeOutcome = (OffsetDateTime, Option<String>);

impl StoreProbe {
    /// The store's problem, if any: from the last probe when it is recent, else from a new one.
    pub async fn check(&self, store: &Store, now: OffsetDateTime) -> Option<String> {
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = &*last
            && now - *at < STORE_PROBE_EVERY
            && now >= *at
        {
            return outcome.clone();
        }
        let outcome = store.check_writable(now).await.err().map(|e| e.to_string());
        *last = Some((now, outcome.clone()));
        outcome
    }
}

impl Health {
    /// The failed checks, each a short sentence; empty when ready.
    pub async fn problems(&self) -> Vec<String> {
        let now = self.clock.now();
        let mut problems = Vec::new();
        if let Some(error) = self.store_probe.check(&self.store, now).await {
            problems.push(format!("the store does not take writes: {error}"));
        }
        match self.graph.token_expires_at() {
            None => problems.push(self.graph_status.get().unwrap_or_else(|| {
                "no Graph token has been obtained yet (releases are queued meanwhile)".to_owned()
            })),
            Some(expiry) if expiry <= now => problems.push(format!(
                "the Graph token expired at {expiry} and none was obtained since"
            )),
            Some(_) => {}
        }
        if self.expects_subscription {
            match self.store.subscription().await {
                Ok(Some(subscription)) if subscription.expires_at > now => {}
                Ok(Some(subscription)) => problems.push(format!(
                    "the Graph subscription expired at {}",
                    subscription.expires_at
                )),
                Ok(None) => problems.push("no Graph subscription for notifications".to_owned()),
                Err(error) => problems.push(format!("cannot read the subscription: {error}")),
            }
        }
        problems
    }

    /// `/healthz` and `/readyz` (every listener but the webhook's).
    pub fn probes(&self) -> Router {
        Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .with_state(self.clone())
    }

    /// `/metrics` (the administrator's listener only).
    pub fn metrics_route(&self) -> Router {
        Router::new()
            .route("/metrics", get(metrics))
            .with_state(self.clone())
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(health): State<Health>) -> Response {
    let problems = health.problems().await;
    if problems.is_empty() {
        (StatusCode::OK, axum::Json(json!({"ready": true}))).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"ready": false, "reasons": problems})),
        )
            .into_response()
    }
}

async fn metrics(State(health): State<Health>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        health.metrics.render(),
    )
        .into_response()
}
