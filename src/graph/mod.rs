//! Microsoft Graph print client: Entra ID authentication, national clouds, retries, typed model.
//!
//! Map of the module (one concept per file):
//! - [`clouds`] — the national clouds and the URLs/scope they resolve to (China is refused clearly);
//! - [`auth`] — client credentials (secret or certificate assertion) and the app token cache;
//! - [`device_code`] — the administrator's device-code sign-in for creating task triggers;
//! - [`pull_print`] — native pull-print printers and the delegated-only `release`;
//! - [`sign_in`] — a person's Entra ID sign-in at a station (OpenID Connect code flow with PKCE);
//! - [`client`] — [`GraphClient`] and its single `send` path (tokens, ids, retries, observer);
//! - [`retry`] — what is retried, after how long, and what must never be repeated;
//! - [`operations`] — the typed Graph operations the daemon calls;
//! - [`model`] and [`enums`] — Graph's print resources, with open enums;
//! - [`error`] — [`GraphError`] and the kinds callers must tell apart;
//! - [`observer`] — the hook for metrics.
//!
//! Invariants: every request carries a fresh `client-request-id`; tokens and secrets are never logged;
//! a redirect is never repeated once it may have reached Graph (see [`retry`]).

mod activity;
pub mod auth;
pub mod client;
pub mod clouds;
pub mod device_code;
pub mod enums;
pub mod error;
pub mod model;
pub mod observer;
pub mod operations;
pub mod pull_print;
pub mod retry;
pub mod sign_in;
#[cfg(test)]
mod test_support;

pub use auth::Credential;
pub use client::{GraphClient, GraphOptions};
pub use clouds::{Cloud, Endpoints};
pub use device_code::{DelegatedToken, DeviceCodePrompt};
pub use error::{ApiError, GraphError, TokenError};
pub use model::*;
pub use observer::GraphObserver;
pub use retry::{RetryPolicy, Sleeper, tokio_sleeper};

/// How many pieces of work that make Graph calls (action drives, a poll's job lookups, the inbox's
/// notification lookups) run at once per Graph request slot (`graph.max_concurrent_requests`):
/// each spends part of its time on store writes between its calls, and meanwhile the others' calls
/// keep the slots busy. The Graph client still bounds the requests in flight.
pub const WORK_PER_SLOT: usize = 8;
