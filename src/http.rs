//! The HTTP surface of the daemon on `api.listen`: one axum [`Router`] assembled from the parts
//! that own each route.
//!
//! - `POST /graph/notifications` — [`crate::intake::webhook`];
//! - `GET /healthz` — the process is up and serving (liveness; it asks nothing of Graph or the store);
//! - `GET /` (the kiosk page), `/api/v1/…` (station and admin API, OpenAPI document) —
//!   [`crate::station::routes`].
//!
//! The station API (`/api/v1/…`), the kiosk page and `/metrics` are merged here by their owners: add
//! them in [`router`] next to the webhook (e.g. `.merge(crate::station::api::router(..))`), so that this
//! file stays the single map of what listens.

use axum::Router;
use axum::routing::get;

use crate::intake::webhook::Webhook;
use crate::station::state::StationState;

/// Everything the routes need.
#[derive(Debug, Clone)]
pub struct HttpState {
    /// The Graph notification receiver.
    pub webhook: Webhook,
    /// The release stations: kiosk page, station and admin API.
    pub station: StationState,
}

/// The daemon's router.
pub fn router(state: &HttpState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(state.webhook.router())
        .merge(crate::station::routes::router(state.station.clone()))
}

async fn healthz() -> &'static str {
    "ok\n"
}
