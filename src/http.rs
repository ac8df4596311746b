//! The HTTP surface of the daemon: one axum [`Router`] per listener, assembled from the parts that
//! own each route. This file stays the single map of what listens where.
//!
//! - `[api] listen` (stations, office LAN): `GET /` (the kiosk page), the station API
//!   (`/api/v1/sessions`, `/api/v1/station`, `/api/v1/jobs…`) and its OpenAPI document — both from
//!   [`crate::station::routes`] — and `GET /healthz`, `GET /readyz` ([`crate::health`]); also
//!   `POST /graph/notifications` while `[intake] listen` is unset.
//! - `[api] admin_listen` (loopback by default): the admin API (`/api/v1/admin/…`, `/api/v1/audit`),
//!   the OpenAPI document, `GET /metrics`, `GET /healthz`, `GET /readyz`.
//! - `[intake] listen` (what a reverse proxy publishes to the internet): only
//!   `POST /graph/notifications` ([`crate::intake::webhook`]).

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

/// The stations' listener; with the webhook when it has no listener of its own.
pub fn station_router(state: &HttpState, with_webhook: bool) -> Router {
    let router =
        Router::new()
            .merge(state.health.probes())
            .merge(crate::station::routes::station_router(
                state.station.clone(),
            ));
    if with_webhook {
        router.merge(state.webhook.router())
    } else {
        router
    }
}

/// The administrator's listener.
pub fn admin_router(state: &HttpState) -> Router {
    Router::new()
        .merge(state.health.probes())
        .merge(state.health.metrics_route())
        .merge(crate::station::routes::admin_router(state.station.clone()))
}

/// The webhook's own listener: `/graph/notifications` and nothing else.
pub fn webhook_router(state: &HttpState) -> Router {
    state.webhook.router()
}
