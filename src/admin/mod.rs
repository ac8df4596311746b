//! Administration commands that talk to Microsoft Graph once, outside the daemon's loop:
//! - [`setup`] — idempotent provisioning: the task definition (app-only) and the task trigger on each
//!   queue printer (a Printer Administrator's device-code sign-in); prints the configuration lines.
//! - [`doctor`] — checks a deployment: credential, granted permissions, definition, printers, webhook.
//! - [`triggers`] — break-glass: remove our task triggers (jobs print at once while pullprintd is
//!   down) and restore exactly those later.
//! - [`docs`] — man pages and shell completions generated from the command line's own definition.
//!
//! Both take a ready [`crate::graph::GraphClient`] (built from `[graph]`), so tests point them at the
//! emulator; both return a report value that the CLI prints, never `println!` themselves.

pub mod docs;
pub mod doctor;
pub mod setup;
pub mod triggers;
