//! # pullprintd — pull printing for Microsoft Universal Print
//!
//! Users print to a Universal Print printer that carries our task trigger; Universal Print holds the
//! job with a print task in `processing`. pullprintd learns of the task, shows the job to its owner at
//! a release station, and on their word patches the job and completes the task (or redirects the job to
//! the station's printer, or aborts it). Every held job ends exactly once in `completed` or `aborted`.
//!
//! ## Map of the modules, in the order a print job meets them
//!
//! `ARCHITECTURE.md` at the repository root says what each module owns and must not know, and follows
//! a release request and a notification through them.
//!
//! - [`cli`] — the command line and its exit codes; [`demo`] — everything on one machine, no account.
//! - [`config`] — the typed configuration: TOML file, then `PULLPRINTD__SECTION__KEY` environment.
//! - [`telemetry`] — logging (text or JSON) set up before anything else can fail.
//! - [`graph`] — the Microsoft Graph client: Entra ID tokens (secret, certificate, device code),
//!   national clouds, retries that honour `Retry-After`, and the typed print model.
//! - [`groups`] — a person's membership of the Entra ID groups rules and delegations name, cached.
//! - [`intake`] — learning of held print tasks: webhook, inbox, poller, subscription, reconcile.
//! - [`job`] — the job's vocabulary, free of I/O: held-job records, action kinds and steps, release
//!   options and the policy that checks them against the printer and `[release]`.
//! - [`store`] — SQLite on disk: held jobs, the durable action queue, intake dedupe, audit log.
//! - [`release`] — what happens to a held job: [`ReleaseService`](release::service::ReleaseService),
//!   the only way to act on one, the durable queue's executor, the step machine that settles each
//!   action exactly once, and the hold-timeout sweeper.
//! - [`app`] — the daemon assembled and run until stopped; [`http`] — its listeners' routers;
//!   [`serve`] — serving them with timeouts and a connection cap; [`tls`] — their optional TLS;
//!   [`health`] — `/healthz`, `/readyz` and `/metrics`.
//! - [`station`] — release stations: the station and admin API, the kiosk page, sign-in by card or PIN,
//!   sessions and lockout, the OpenAPI document and the admin CLI client.
//! - [`admin`] — one-time provisioning (`setup`) and the health check of a deployment (`doctor`).
//! - [`metrics`] — the Prometheus metrics behind `/metrics`, fed by the Graph client and the engine.
//! - [`secrets`] — random tokens and constant-time comparison of secrets; [`log_throttle`] — one log
//!   line per interval for events an attacker can repeat.
//! - [`emulator`] — a Universal Print emulator that enforces Microsoft's documented rules; the demo,
//!   the tests and the benchmarks run against it.
//! - [`clock`] — injected time, so tests can move days ahead without waiting; [`cache`] — a
//!   time-to-live cache in front of Graph reads (printers, card lookups, group memberships).
//! - [`notify`] — systemd READY / WATCHDOG (only while the engine makes progress) / STOPPING.
//! - [`exit`] — sysexits-style process exit codes; [`shutdown`] — the cancellation passed to every loop.

pub mod admin;
pub mod app;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod config;
pub mod demo;
pub mod emulator;
pub mod exit;
pub mod graph;
pub mod groups;
pub mod health;
pub mod http;
pub mod intake;
pub mod job;
pub mod leadership;
pub mod log_throttle;
pub mod metrics;
pub mod notify;
pub mod release;
pub mod secrets;
pub mod serve;
pub mod shutdown;
pub mod station;
pub mod store;
pub mod telemetry;
pub mod tls;
