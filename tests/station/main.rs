//! The station's integration tests, in one test binary: the station API (and the same API under
//! attack) and the admin CLI against the whole daemon and the emulator, the kiosk page in headless
//! Chromium, and `setup` / `doctor`.
#![allow(clippy::unwrap_used)]

#[path = "../support/graph_schema.rs"]
mod graph_schema;
#[path = "../support/station.rs"]
mod station_support;

mod api;
mod attacks;
mod cli;
mod delegation;
mod kiosk_browser;
mod phone;
mod phone_browser;
mod printer_status;
mod rules;
mod setup_doctor;
