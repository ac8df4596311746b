//! Releasing held jobs: turning a person's (or the hold-timeout's) decision into Graph calls.
//!
//! - [`service`] — [`ReleaseService`](service::ReleaseService), the one entry point: lists held jobs,
//!   queues actions durably and waits (briefly) for Graph's confirmation;
//! - [`executor`] — drives each queued action through the step machine against Graph, recording a
//!   write-ahead intent before every call, retrying with back-off, resuming after a restart;
//! - [`steps`] — the pure state machine: from an action's recorded step (and, after an interruption,
//!   what Graph says about the job now) to the next Graph call, probe, retry or final outcome. No I/O;
//! - [`calls`] — the step machine's calls and probes sent through the Graph client, errors classified;
//! - [`completions`] — per-action signals that tell a waiting request its action is done;
//! - [`sweeper`] — the hold timeout (expire actions) and the store's retention.

pub mod calls;
pub mod completions;
pub mod executor;
pub mod service;
pub mod steps;
pub mod sweeper;
