//! Release stations: who may sign in where, and what they may see and do.
//!
//! - [`users`] — the users file (UPN, display name, card number, argon2id PIN hash) and PIN checks.
//! - [`lockout`] — repeated sign-in failures lock a card or user out, for longer each time.
//! - [`budget`] — per-station and global failure budgets against card and person spraying.
//! - [`sessions`] — opaque session tokens bound to a station, expiring after inactivity.
//! - [`directory`] — unknown cards looked up in Entra ID as `employeeId`s, cached.
//! - [`state`] — what the handlers share, and the station, session and admin credential checks.
//! - [`api`] — the station API: sign-in, the person's jobs, release (find-me), release-all, delete.
//! - [`admin`] — the admin API: every job, admin release and delete, the audit log (JSON or CSV).
//! - [`kiosk`] — the kiosk page, embedded (also the phone's page); [`openapi`] — the generated OpenAPI document.
//! - [`phone`] — Entra ID sign-in: the kiosk's single-use QR codes, the phone's sign-in and callback.
//! - [`client`] — the admin client behind `pullprintd jobs`, `release` and `delete`.
//! - [`error`] — the API's error answers; [`routes`] — every route in one router.

pub mod admin;
pub mod api;
pub mod budget;
pub mod client;
pub mod directory;
pub mod error;
pub mod kiosk;
pub mod lockout;
pub mod openapi;
pub mod phone;
pub mod pull;
pub mod routes;
pub mod sessions;
pub mod state;
pub mod users;
