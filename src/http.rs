//! The HTTP surface of the daemon on `api.listen`: one axum [`Router`] assembled from the parts
//! that own each route.
//!
//! - `POST /graph/notifications` — [`crate::intake::webhook`];
//! - `GET /healthz`, `GET /readyz`, `GET /metrics` — [`crate::health`];
//! - `GET /` (the kiosk page), `/api/v1/…` (station and admin API, OpenAPI document) —
//!   [`crate::station::routes`].
//!
//! This file stays the single map of what listens: a new route family is merged in [`router`].

use axum::Router;

use crate::health::Health;
use crate::intake::webhook::Webhook;
use crate::station::state::StationState;

/// Everything the routes need.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The Graph notification receiver.
    pub webhook: Webhook,
    /// Liveness, readiness and metrics.
    pub health: Health,
    /// The release stations: kiosk page, station and admin API.
    pub station: StationState,
}

/// The daemon's router.
pub fn router(state: &HttpState) -> Router {
    Router::new()
        .merge(state.health.router())
        .merge(state.webhook.router())
        .merge(crate::station::routes::router(state.station.clone()))
}
