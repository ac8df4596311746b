//! Fault injection: latency, throttling, unavailability, failures after the effect, token endpoint
//! failures and notification drops, duplicates and delays.
//!
//! Deterministic given the seed: every decision draws from one seeded [`StdRng`] in the order the
//! requests arrive, so a single-threaded test sees the same faults on every run.
//!
//! A 429/503/504 decided *before* an operation means Graph refused it: nothing happened. The
//! "fail after effect" fault is the other case the daemon must survive: the operation IS performed,
//! then the caller gets a 504, an answer so late that its client has timed out, or no answer at all.
//!
//! Connection resets come in the same two orders: `rate_reset` drops the connection *before* the
//! operation (nothing happened), [`AfterEffect::Reset`] drops it *after* the operation took effect.
//! Either way the client sees its connection closed without a (complete) answer: the handler answers
//! with a body stream that fails, and hyper closes the connection when a body stream yields an error.
//! Only that one connection goes; the server keeps serving.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// All faults, as set at start-up and replaced at run time through the control API.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct Faults {
    /// Per-route faults; the first rule whose `route` matches a request applies.
    pub routes: Vec<RouteFault>,
    /// Share (0–1) of token requests answered 503 `temporarily_unavailable`.
    pub token_failure_rate: f64,
    /// Faults in change-notification delivery.
    pub notifications: NotificationFaults,
    /// Share (0–1) of items left out of a task-list page. Graph's lists are eventually consistent and
    /// a page can miss an item that exists; a direct `GET` of the item still finds it.
    pub list_omission_rate: f64,
    /// Share (0–1) of job reads answered ambiguously, as a lagging replica might: the job `paused`,
    /// no `tasks`, no `redirectedTo`, whatever really happened ("task gone, job paused").
    pub ambiguous_read_rate: f64,
}

/// Faults of the Graph routes a rule matches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct RouteFault {
    /// `*` for every route, an operation name (`redirectJob`, `updateTask`, …) or a route key as the
    /// call counts show it (`POST /print/printers/{id}/jobs/{id}/redirect`); case-insensitive.
    pub route: String,
    /// When set, the rule applies only to requests whose path contains this text (a job id: a
    /// "poison" job whose reads always fail, while every other job is served).
    pub path_contains: Option<String>,
    /// Added before the request is handled.
    pub latency_ms: u64,
    /// Share (0–1) of requests refused with 429 `TooManyRequests`.
    pub rate_429: f64,
    /// `Retry-After` seconds sent with a 429.
    pub retry_after_secs: u64,
    /// Share (0–1) of requests refused with 503 `serviceNotAvailable`.
    pub rate_503: f64,
    /// `Retry-After` seconds sent with a 503, if any.
    pub retry_after_503_secs: Option<u64>,
    /// Share (0–1) of requests refused with 504 `gatewayTimeout` (not performed).
    pub rate_504: f64,
    /// Share (0–1) of requests refused for good with 403 `accessDenied` (not performed): a refusal
    /// that will not change, e.g. completing a task after a permission was withdrawn.
    pub rate_403: f64,
    /// Share (0–1) of requests whose connection is closed without an answer, before the operation
    /// (not performed).
    pub rate_reset: f64,
    /// Share (0–1) of requests that are performed and then fail as `after_effect` says.
    pub fail_after_effect_rate: f64,
    /// How a "fail after effect" request fails.
    pub after_effect: AfterEffect,
}

impl Default for RouteFault {
    fn default() -> Self {
        Self {
            route: "*".to_owned(),
            path_contains: None,
            latency_ms: 0,
            rate_429: 0.0,
            retry_after_secs: 1,
            rate_503: 0.0,
            retry_after_503_secs: None,
            rate_504: 0.0,
            rate_403: 0.0,
            rate_reset: 0.0,
            fail_after_effect_rate: 0.0,
            after_effect: AfterEffect::GatewayTimeout,
        }
    }
}

/// How an operation that was performed reports failure.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum AfterEffect {
    /// Answer 504 `gatewayTimeout` although the operation happened.
    GatewayTimeout,
    /// Hold the (successful) answer back this long, past the client's timeout.
    Delay {
        /// Milliseconds to wait before answering.
        ms: u64,
    },
    /// Close the connection without sending the (successful) answer.
    Reset,
    /// Answer 503 `serviceNotAvailable` with this `Retry-After` although the operation happened: a
    /// front end that timed out on a back end that went on to act. A 503 proves nothing.
    Unavailable {
        /// The `Retry-After` seconds sent.
        retry_after_secs: u64,
    },
}

/// Faults of change-notification delivery.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase")]
pub struct NotificationFaults {
    /// Share (0–1) of notifications never sent.
    pub drop_rate: f64,
    /// Share (0–1) of notifications sent twice.
    pub duplicate_rate: f64,
    /// Share (0–1) of notifications held back by `delay_ms`.
    pub delay_rate: f64,
    /// How long a delayed notification waits.
    pub delay_ms: u64,
}

/// What the fault engine decided for one Graph request.
#[derive(Debug, Default)]
pub(crate) struct RouteDecision {
    /// Sleep this long first.
    pub latency: Duration,
    /// Refuse the request without performing it: (status, Retry-After).
    pub refuse: Option<(u16, Option<u64>)>,
    /// Close the connection without performing it or answering.
    pub reset: bool,
    /// Perform it, then fail like this.
    pub after_effect: Option<AfterEffect>,
}

/// What the fault engine decided for one notification.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NotificationDecision {
    /// Never send it.
    pub drop: bool,
    /// Send it twice.
    pub duplicate: bool,
    /// Wait this long before sending.
    pub delay: Duration,
}

/// The faults in force and the seeded random source behind every decision.
#[derive(Debug)]
pub(crate) struct FaultEngine {
    /// The faults in force.
    pub faults: Faults,
    rng: StdRng,
    /// Token requests decided so far, and how many of them the fault refused (for tests' figures:
    /// the token endpoint is not among the Graph call counts).
    pub token_requests: (u64, u64),
}

/// True with probability `p`; never panics (a NaN or negative rate is "never", ≥ 1 is "always").
fn roll(rng: &mut StdRng, p: f64) -> bool {
    p > 0.0 && rng.random::<f64>() < p
}

impl FaultEngine {
    /// An engine with `faults`, drawing from a generator seeded with `seed`.
    pub fn new(faults: Faults, seed: u64) -> Self {
        Self {
            faults,
            rng: StdRng::seed_from_u64(seed),
            token_requests: (0, 0),
        }
    }

    /// Decides the faults of one Graph request, by operation name and route key.
    #[cfg(test)]
    pub fn decide_route(&mut self, operation: &str, route_key: &str) -> RouteDecision {
        self.decide_request(operation, route_key, "")
    }

    /// Decides the faults of one Graph request, by operation name, route key and path.
    pub fn decide_request(
        &mut self,
        operation: &str,
        route_key: &str,
        path: &str,
    ) -> RouteDecision {
        let Some(rule) = self
            .faults
            .routes
            .iter()
            .find(|r| {
                (r.route == "*"
                    || r.route.eq_ignore_ascii_case(operation)
                    || r.route.eq_ignore_ascii_case(route_key))
                    && r.path_contains
                        .as_deref()
                        .is_none_or(|text| path.contains(text))
            })
            .cloned()
        else {
            return RouteDecision::default();
        };
        let mut decision = RouteDecision {
            latency: Duration::from_millis(rule.latency_ms),
            ..RouteDecision::default()
        };
        if roll(&mut self.rng, rule.rate_429) {
            decision.refuse = Some((429, Some(rule.retry_after_secs)));
        } else if roll(&mut self.rng, rule.rate_503) {
            decision.refuse = Some((503, rule.retry_after_503_secs));
        } else if roll(&mut self.rng, rule.rate_504) {
            decision.refuse = Some((504, None));
        } else if roll(&mut self.rng, rule.rate_403) {
            decision.refuse = Some((403, None));
        } else if roll(&mut self.rng, rule.rate_reset) {
            decision.reset = true;
        } else if roll(&mut self.rng, rule.fail_after_effect_rate) {
            decision.after_effect = Some(rule.after_effect);
        }
        decision
    }

    /// Leaves items out of one task-list page (`list_omission_rate`).
    pub fn omit_listed(&mut self, page: &mut serde_json::Value) {
        let rate = self.faults.list_omission_rate;
        if let Some(items) = page
            .get_mut("value")
            .and_then(serde_json::Value::as_array_mut)
        {
            items.retain(|_| !roll(&mut self.rng, rate));
        }
    }

    /// Answers one job read ambiguously (`ambiguous_read_rate`): paused, no tasks, no redirect.
    pub fn ambiguate_job(&mut self, job: &mut serde_json::Value) {
        if !roll(&mut self.rng, self.faults.ambiguous_read_rate) {
            return;
        }
        job["status"] = serde_json::json!({
            "state": "paused",
            "description": "The job is not a candidate for processing yet.",
            "details": ["releaseWait"],
            "isAcquiredByPrinter": false,
        });
        job["redirectedTo"] = serde_json::Value::Null;
        if job.get("tasks").is_some() {
            job["tasks"] = serde_json::json!([]);
        }
    }

    /// Decides whether one token request fails.
    pub fn token_fails(&mut self) -> bool {
        let rate = self.faults.token_failure_rate;
        let fails = roll(&mut self.rng, rate);
        self.token_requests.0 += 1;
        self.token_requests.1 += u64::from(fails);
        fails
    }

    /// Decides the fate of one notification.
    pub fn decide_notification(&mut self) -> NotificationDecision {
        let f = self.faults.notifications.clone();
        NotificationDecision {
            drop: roll(&mut self.rng, f.drop_rate),
            duplicate: roll(&mut self.rng, f.duplicate_rate),
            delay: if roll(&mut self.rng, f.delay_rate) {
                Duration::from_millis(f.delay_ms)
            } else {
                Duration::ZERO
            },
        }
    }

    /// A random value for ids and codes (deterministic given the seed).
    pub fn next_u64(&mut self) -> u64 {
        self.rng.random()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let faults = Faults {
            routes: vec![RouteFault {
                rate_429: 0.5,
                ..RouteFault::default()
            }],
            ..Faults::default()
        };
        let run = |seed| {
            let mut engine = FaultEngine::new(faults.clone(), seed);
            (0..64)
                .map(|_| engine.decide_route("getJob", "GET x").refuse.is_some())
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert!(run(7).contains(&true) && run(7).contains(&false));
    }

    #[test]
    fn a_rule_for_another_route_does_not_apply() {
        let faults = Faults {
            routes: vec![RouteFault {
                route: "redirectJob".to_owned(),
                rate_503: 1.0,
                ..RouteFault::default()
            }],
            ..Faults::default()
        };
        let mut engine = FaultEngine::new(faults, 1);
        assert!(
            engine
                .decide_route("getJob", "GET /print/printers/{id}/jobs/{id}")
                .refuse
                .is_none()
        );
        assert_eq!(
            engine.decide_route("redirectJob", "x").refuse,
            Some((503, None))
        );
    }

    #[test]
    fn a_reset_before_the_effect_neither_refuses_nor_performs() {
        let faults = Faults {
            routes: vec![RouteFault {
                rate_reset: 1.0,
                ..RouteFault::default()
            }],
            ..Faults::default()
        };
        let mut engine = FaultEngine::new(faults, 3);
        let decision = engine.decide_route("redirectJob", "x");
        assert!(decision.reset);
        assert!(decision.refuse.is_none() && decision.after_effect.is_none());
    }
}
