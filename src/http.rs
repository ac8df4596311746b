//! The HTTP surface of the daemon on `api.listen`: one axum [`Router`] assembled from the parts
//! that own each route.
//!
//! - `POST /graph/notifications` — [`crate::intake::webhook`];
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` — [`crate::health`].
//!
//! The station API (`/api/v1/…`) and the kiosk page are merged here by their owners: add them in
//! [`router`] next to the webhook (e.g. `.merge(crate::station::api::router(..))`), so that this file
//! stays the single map of what listens.

use axum::Router;

use crate::health::Health;
use crate::intake::webhook::Webhook;

/// Everything the routes need.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The Graph notification receiver.
    pub webhook: Webhook,
    /// Liveness, readiness and metrics.
    pub health: Health,
}

/// The daemon's router.
pub fn router(state: &HttpState) -> Router {
    Router::new()
        .merge(state.health.router())
        .merge(state.webhook.router())
    // The station API and the kiosk page are merged here (see the module docs).
}
