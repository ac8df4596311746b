//! Releasing held jobs: turning a person's (or the hold-timeout's) decision into Graph calls.
//!
//! - [`steps`] — the pure state machine: from an action's recorded step (and, after an interruption,
//!   what Graph says about the job now) to the next Graph call, probe, retry or final outcome. No I/O.
//!
//! The executor that drives it against Graph, the station policy and the hold-timeout sweeper build on
//! [`steps`] and on the durable action queue in [`crate::store`].

pub mod steps;
