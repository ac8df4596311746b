//! The station's routes in one place, split by listener: the kiosk page and the station API (the
//! stations' listener), the admin API (the administrator's); the OpenAPI document on both.
//! The daemon's router (`http`) merges these routers into the listeners'.

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use super::state::StationState;
use super::{admin, api, kiosk, openapi, phone};

/// The stations' routes: the kiosk page, the station API and the OpenAPI document.
pub fn station_router(state: StationState) -> Router {
    Router::new()
        .route("/", get(kiosk::index))
        .route("/kiosk.js", get(kiosk::script))
        .route("/kiosk.css", get(kiosk::style))
        .route("/kiosk-strings.js", get(kiosk::strings))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/station", get(api::station_info))
        .route(
            "/api/v1/sessions",
            post(api::sign_in).layer(DefaultBodyLimit::max(api::MAX_SIGN_IN_BODY)),
        )
        .route(
            "/api/v1/sessions/current",
            get(api::current_session).delete(api::sign_out),
        )
        .route("/api/v1/phone/code", get(phone::code))
        .route("/phone", get(kiosk::phone))
        .route("/phone/start", get(phone::start))
        .route("/phone/callback", get(phone::callback))
        .route("/api/v1/jobs", get(api::list_jobs))
        .route("/api/v1/jobs/release-all", post(api::release_all))
        .route("/api/v1/jobs/{id}", delete(api::delete_job))
        .route("/api/v1/jobs/{id}/options", get(api::job_options))
        .route("/api/v1/jobs/{id}/release", post(api::release_job))
        .with_state(state)
}

/// The administrator's routes: every job, admin release and delete, the audit log, lockouts, and the
/// OpenAPI document.
pub fn admin_router(state: StationState) -> Router {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/admin/jobs", get(admin::all_jobs))
        .route("/api/v1/admin/jobs/{id}", delete(admin::delete))
        .route("/api/v1/admin/jobs/{id}/release", post(admin::release))
        .route("/api/v1/audit", get(admin::audit))
        .route("/api/v1/admin/lockouts/{person}", delete(admin::unlock))
        .with_state(state)
}
