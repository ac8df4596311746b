//! The station's routes in one place: the kiosk page, the station API, the admin API and the OpenAPI
//! document. The daemon's HTTP router (`http`) merges this one into its own.

use axum::Router;
use axum::routing::{delete, get, post};

use super::state::StationState;
use super::{admin, api, kiosk, openapi};

/// Every station route, with its state applied.
pub fn router(state: StationState) -> Router {
    Router::new()
        .route("/", get(kiosk::index))
        .route("/kiosk.js", get(kiosk::script))
        .route("/kiosk.css", get(kiosk::style))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/station", get(api::station_info))
        .route("/api/v1/sessions", post(api::sign_in))
        .route("/api/v1/sessions/current", delete(api::sign_out))
        .route("/api/v1/jobs", get(api::list_jobs))
        .route("/api/v1/jobs/release-all", post(api::release_all))
        .route("/api/v1/jobs/{id}", delete(api::delete_job))
        .route("/api/v1/jobs/{id}/options", get(api::job_options))
        .route("/api/v1/jobs/{id}/release", post(api::release_job))
        .route("/api/v1/admin/jobs", get(admin::all_jobs))
        .route("/api/v1/admin/jobs/{id}", delete(admin::delete))
        .route("/api/v1/admin/jobs/{id}/release", post(admin::release))
        .route("/api/v1/audit", get(admin::audit))
        .with_state(state)
}
