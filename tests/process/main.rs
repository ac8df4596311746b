//! Tests of the real `pullprintd` binary as a process: its command line, `demo`, the daemon under a
//! stand-in for systemd, the shipped unit, the shipped nginx example in front of the webhook, and the
//! crash suites (abort at each step, `kill -9` in the middle of a call).
#![allow(clippy::unwrap_used)]

#[path = "../support/engine.rs"]
mod engine_support;

mod chaos;
mod cli;
mod daemon_systemd;
mod demo;
mod descriptors;
mod engine_crash;
mod high_availability;
mod postgres_store;
mod resilience_crash;
mod reverse_proxy;
mod rules_crash;
mod store_lock;
mod systemd_unit;
