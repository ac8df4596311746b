//! Release stations: who may sign in where, and what they may see and do.
//!
//! - [`users`] — the users file (UPN, display name, card number, argon2id PIN hash) and PIN checks.
//! - [`lockout`] — repeated sign-in failures lock a card or user out for a while.
//! - [`sessions`] — opaque session tokens bound to a station, expiring after inactivity.

pub mod lockout;
pub mod sessions;
pub mod users;
