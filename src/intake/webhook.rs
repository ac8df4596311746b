//! `POST /graph/notifications`: Graph's change notifications (and lifecycle notifications) arrive here.
//!
//! - Validation handshake: a POST with `?validationToken=…` is answered `200 text/plain` with the
//!   URL-decoded token at once (Graph allows 10 s); a token over 1 KiB answers 400.
//! - Refusals (forged items, bodies that are not JSON) are counted in the metrics and logged at most
//!   once a minute, so a flood of forgeries is not a flood of log lines.
//! - A notification batch: each item's `clientState` is compared in constant time with ours; items that
//!   do not match are *forged* and dropped without any Graph call (counted: [`Webhook::forged`]). The
//!   genuine items are committed to the inbox in one transaction and THEN the answer is `202`, within
//!   milliseconds: the handler never waits on Graph (Graph's budget is 3 s and it throttles slow
//!   endpoints). The inbox worker ([`super::inbox`]) does the lookups.
//! - Every delivery's answer time (not the handshake's) goes to the `webhook_answer_seconds`
//!   histogram, so an administrator sees how far the answers stay from Graph's 2.9-second mark.
//! - Answers: `202` also when every item was forged. Graph only looks at 2xx vs not; a 4xx would teach
//!   a forger nothing useful but would make Graph retry a genuine batch we failed to read, and Graph
//!   never sends a wrong `clientState` itself. A body that is not JSON is `400`. A store that cannot be
//!   written is `503`, so Graph retries the delivery (no notification is acknowledged unless stored).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Notify;

use crate::clock::SharedClock;
use crate::log_throttle::Throttle;
use crate::metrics::Metrics;
use crate::secrets::constant_time_eq;
use crate::store::{InboxWriter, Store};

/// The webhook's path, relative to the API listener; `intake.public_url` must end with it.
pub const PATH: &str = "/graph/notifications";

/// The longest `validationToken` echoed (bytes); longer ones answer 400.
pub const MAX_VALIDATION_TOKEN: usize = 1024;

/// The webhook's state. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Webhook {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The inbox, written with group commit: a burst of deliveries shares its transactions.
    inbox_writer: InboxWriter,
    clock: SharedClock,
    client_state: SecretString,
    /// Woken after items were stored.
    inbox: Arc<Notify>,
    forged: AtomicU64,
    accepted: AtomicU64,
    metrics: Metrics,
    /// One warning a minute about refused notifications, however many arrive.
    refusals: Throttle,
}

impl Webhook {
    /// A webhook that accepts notifications carrying `client_state` and wakes `inbox` after storing.
    pub fn new(
        store: Store,
        clock: SharedClock,
        client_state: SecretString,
        inbox: Arc<Notify>,
        metrics: Metrics,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                inbox_writer: InboxWriter::spawn(store),
                clock,
                client_state,
                inbox,
                forged: AtomicU64::new(0),
                accepted: AtomicU64::new(0),
                metrics,
                refusals: Throttle::new(std::time::Duration::from_secs(60)),
            }),
        }
    }

    /// Notifications dropped because their `clientState` was wrong or missing.
    pub fn forged(&self) -> u64 {
        self.inner.forged.load(Ordering::Relaxed)
    }

    /// Notifications stored in the inbox.
    pub fn accepted(&self) -> u64 {
        self.inner.accepted.load(Ordering::Relaxed)
    }

    /// The route, ready to merge into the API router.
    pub fn router(&self) -> Router {
        Router::new()
            .route(PATH, post(receive))
            .with_state(self.clone())
    }
}

async fn receive(
    State(webhook): State<Webhook>,
    Query(query): Query<HashMap<String, String>>,
    body: Bytes,
) -> Response {
    if let Some(token) = query.get("validationToken") {
        return handshake(token);
    }
    // A monotonic measure, not the injected clock: it only ever feeds the metric, which shows an
    // administrator how close the answers come to Graph's 2.9-second "slow" mark.
    let arrived = std::time::Instant::now();
    let answer = deliver(&webhook, &body).await;
    webhook
        .inner
        .metrics
        .observe_webhook_answer(arrived.elapsed().as_secs_f64());
    answer
}

/// The validation handshake's answer: the decoded token as plain text.
fn handshake(token: &str) -> Response {
    // Graph's tokens are short opaque strings; echoing anything larger would make this endpoint a
    // reflector of attacker-chosen bulk.
    if token.len() > MAX_VALIDATION_TOKEN {
        return (
            StatusCode::BAD_REQUEST,
            "validationToken is longer than 1024 bytes; Graph never sends such tokens",
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        token.to_owned(),
    )
        .into_response()
}

/// Answers one notification delivery: its genuine items stored, then 202.
async fn deliver(webhook: &Webhook, body: &[u8]) -> Response {
    let batch: Value = match serde_json::from_slice(body) {
        Ok(batch) => batch,
        Err(error) => {
            if let Some(suppressed) = webhook.inner.refusals.allow() {
                tracing::warn!(%error, suppressed, "a notification body that is not JSON was refused");
            }
            return (
                StatusCode::BAD_REQUEST,
                "the body is not a JSON changeNotificationCollection",
            )
                .into_response();
        }
    };
    let items = match batch.get("value") {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    let inner = &webhook.inner;
    let expected = inner.client_state.expose_secret();
    let mut genuine = Vec::with_capacity(items.len());
    for item in items {
        let state = item
            .get("clientState")
            .and_then(Value::as_str)
            .unwrap_or("");
        inner.metrics.notification("received");
        if constant_time_eq(state, expected) {
            genuine.push(item.to_string());
        } else {
            inner.forged.fetch_add(1, Ordering::Relaxed);
            inner.metrics.notification("forged");
            if let Some(suppressed) = inner.refusals.allow() {
                tracing::warn!(
                    suppressed,
                    "a notification with a wrong clientState was dropped (forged?); see the \
                     pullprintd_notifications{{kind=\"forged\"}} metric for the count"
                );
            }
        }
    }
    if !genuine.is_empty() {
        let count = genuine.len() as u64;
        if let Err(error) = inner.inbox_writer.push(genuine, inner.clock.now()).await {
            tracing::error!(%error, "cannot store notifications; answering 503 so Graph retries");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
        inner.accepted.fetch_add(count, Ordering::Relaxed);
        inner.inbox.notify_one();
    }
    StatusCode::ACCEPTED.into_response()
}
