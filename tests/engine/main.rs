//! The engine's integration tests, in one test binary: the emulator's rules, the Graph client against
//! the emulator, the store, intake and every action path (by hand-wired parts and through the whole
//! `App`), and the resilience suites (faults, store faults, parsers).
//!
//! One binary instead of one per file: each integration-test binary links the whole crate, so fewer
//! binaries build and link much faster. Run one suite with `cargo test --test engine resilience_faults::`.
#![allow(clippy::unwrap_used)]

#[path = "../support/engine.rs"]
mod engine_support;
#[path = "../support/station.rs"]
mod station_support;

mod actions;
mod app;
mod emulator_pull_printing;
mod emulator_rules;
mod emulator_sign_in;
mod exactly_once;
mod graph_client_against_emulator;
mod leadership;
mod resilience_faults;
mod resilience_parsing;
mod resilience_store;
mod rules;
mod store;
mod storm;
mod subscription;
mod webhook;
