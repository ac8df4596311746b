//! The job: the vocabulary every other module speaks about a held print job.
//!
//! - [`held`] — held-job records ([`NewHeldJob`] as intake stores it, [`HeldJob`] with its state and
//!   outcome);
//! - [`action`] — actions on a held job ([`ActionKind`], the queued request [`NewAction`], the
//!   executor's view [`Action`] and the write-ahead [`Step`] it has reached);
//! - [`options`] — what a person may change when releasing ([`ReleaseOptions`]) and the policy that
//!   checks it against the printer's capabilities and the `[release]` settings;
//! - [`readiness`] — whether a printer can print now, from Graph's `printer.status`;
//! - [`rules`] — `[[rules]]`: what happens to a job when intake finds it (hold, release, deny,
//!   redirect), matched without I/O;
//! - [`words`] — the fixed words these enums are stored as ([`TextEnum`]).
//!
//! This module knows no I/O: not the store (which saves these records), not the executor (which moves
//! actions through their steps), not HTTP (which shows them). Everything else depends on it, and it
//! depends only on the Graph model and the settings.

pub mod action;
pub mod held;
pub mod options;
pub mod readiness;
pub mod rules;
pub mod words;

pub use action::{Action, ActionId, ActionKind, Applied, NewAction, Step};
pub use held::{DiscoveredVia, HeldJob, JobState, NewHeldJob, Outcome};
pub use options::{Choices, PageRange, Refusal, ReleaseOptions, ReleasePolicy};
pub use rules::{Decision, HoldTerms, JobFacts, Membership, RuleAction, RuleSet};
pub use words::TextEnum;
pub(crate) use words::text_enum;
