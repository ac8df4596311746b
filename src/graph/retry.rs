//! When a failed Graph request is tried again, after how long, and when it must not be.
//!
//! Rules (Graph's throttling and best-practice pages):
//! - 429, 503 and 504 are retried, and so is a connection that failed before the request was sent.
//!   `Retry-After` (delta-seconds or an HTTP date) is honoured up to a ceiling; without it the delay is
//!   exponential with jitter (backon's `ExponentialBuilder`, driven by our own loop in `client.rs`
//!   because the loop also refreshes tokens and switches connections).
//! - After a 503 (or 504, or a broken connection) the next attempt goes over a NEW connection: Graph
//!   says to "always make new retry requests over a new HTTP connection" after a 503, because the
//!   pooled connection may be pinned to the unhealthy front end.
//! - Retries are bounded by count and by total time ([`RetryPolicy`]); when Graph asks to wait longer
//!   than the remaining budget we give up at once with that error, and the durable action queue of
//!   the caller takes over.
//! - Every server-given delay has a ceiling, and all arithmetic on it is checked: a `Retry-After` is
//!   read as at most [`RETRY_AFTER_CEILING`] (1 h, what the durable action queue honours at most; a
//!   value beyond it, up to `u64::MAX` seconds or a date in the year 9999, is a server mistake, not
//!   a reason to park a release for a day), and one wait inside a request's retries is at most
//!   [`MAX_CLIENT_WAIT`] (5 min). Negative or unreadable values count as absent (back-off applies).
//!
//! Idempotency decides what happens when the outcome is uncertain:
//! - GET, PATCH (absolute values), DELETE, subscription reauthorize and job **abort** are
//!   [`Idempotency::Repeatable`]. Abort counts as repeatable because repeating it cannot do harm: a
//!   second abort of an aborted job fails with a 4xx (no processing task) which the caller settles by
//!   reading the job.
//! - POST **redirect** (and the creating POSTs: task definition, trigger, subscription) are
//!   [`Idempotency::NotRepeatable`]: a second redirect could print the job twice or fail confusingly.
//!   They are retried only when Graph certainly did not act: a connection that never got established,
//!   and a 429 (throttling rejects before the request is processed). A 503 proves nothing, even with
//!   `Retry-After`: a front end can time out on a back end that went on to act. So a 503, a timeout
//!   after sending, a connection broken mid-response, or any other 5xx returns
//!   [`super::GraphError::OutcomeUnknown`], settled only by reading. The daemon settles a
//!   redirect by re-reading the source job: `redirectedTo` set, or our task no longer `processing`,
//!   means the redirect happened; a job still held with its task `processing` means it did not and the
//!   redirect can be sent again.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};
use futures::future::BoxFuture;
use time::OffsetDateTime;

/// The longest `Retry-After` honoured anywhere (the durable action queue's ceiling): larger values,
/// and dates further ahead, are read as this.
pub const RETRY_AFTER_CEILING: Duration = Duration::from_secs(3600);

/// The longest single wait between two attempts of one request, whatever Graph asked for.
pub const MAX_CLIENT_WAIT: Duration = Duration::from_secs(300);

/// Bounds and shape of retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (8 by default).
    pub max_attempts: u32,
    /// Total time budget from the first attempt, waits included (2 minutes by default).
    pub max_elapsed: Duration,
    /// First back-off delay when Graph gives no `Retry-After`.
    pub min_delay: Duration,
    /// Longest back-off delay when Graph gives no `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 8,
            max_elapsed: Duration::from_secs(120),
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// No retries at all: one attempt.
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }
}

/// Sleeps between attempts. Injected so tests can record the delays instead of waiting; the daemon
/// uses [`tokio_sleeper`].
pub type Sleeper = Arc<dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync>;

/// The real sleeper: `tokio::time::sleep`.
pub fn tokio_sleeper() -> Sleeper {
    Arc::new(|delay| Box::pin(tokio::time::sleep(delay)))
}

/// Whether repeating a request can do harm (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to send again.
    Repeatable,
    /// Must not be sent again once it may have reached Graph.
    NotRepeatable,
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Try again (over a new connection if asked).
    Retry {
        /// Use a connection that is not from the pool.
        fresh_connection: bool,
    },
    /// Return the error.
    Fail,
    /// Return [`super::GraphError::OutcomeUnknown`].
    OutcomeUnknown,
}

/// Judges an HTTP error status.
pub(crate) fn classify_status(status: u16, idempotency: Idempotency) -> Verdict {
    let repeatable = idempotency == Idempotency::Repeatable;
    match status {
        429 => Verdict::Retry {
            fresh_connection: false,
        },
        503 if repeatable => Verdict::Retry {
            fresh_connection: true,
        },
        504 if repeatable => Verdict::Retry {
            fresh_connection: true,
        },
        500..=599 if !repeatable => Verdict::OutcomeUnknown,
        _ => Verdict::Fail,
    }
}

/// Judges a transport error (no HTTP status).
pub(crate) fn classify_transport(error: &reqwest::Error, idempotency: Idempotency) -> Verdict {
    if error.is_builder() {
        Verdict::Fail
    } else if error.is_connect() || idempotency == Idempotency::Repeatable {
        // A connect error means nothing was sent, so even a redirect may go again.
        Verdict::Retry {
            fresh_connection: true,
        }
    } else {
        Verdict::OutcomeUnknown
    }
}

/// Parses `Retry-After`: delta-seconds or an HTTP date (relative to `now`; a past date means 0),
/// capped at [`RETRY_AFTER_CEILING`]. Negative numbers and anything unreadable give `None`.
pub fn parse_retry_after(value: &str, now: OffsetDateTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|byte| byte.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time", not garbage.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(seconds).min(RETRY_AFTER_CEILING));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let now: std::time::SystemTime = now.into();
    Some(
        at.duration_since(now)
            .unwrap_or(Duration::ZERO)
            .min(RETRY_AFTER_CEILING),
    )
}

/// The delays of one request's retries.
pub(crate) struct Schedule {
    policy: RetryPolicy,
    backoff: ExponentialBackoff,
    started: tokio::time::Instant,
    attempts: u32,
}

impl Schedule {
    pub(crate) fn new(policy: RetryPolicy) -> Self {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(policy.min_delay)
            .with_max_delay(policy.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(policy.max_attempts.saturating_sub(1) as usize)
            .build();
        Self {
            policy,
            backoff,
            started: tokio::time::Instant::now(),
            attempts: 0,
        }
    }

    /// Records a failed attempt; the delay before the next one, or `None` to give up.
    pub(crate) fn next_delay(&mut self, retry_after: Option<Duration>) -> Option<Duration> {
        self.attempts += 1;
        if self.attempts >= self.policy.max_attempts {
            return None;
        }
        // Always advance the back-off, so a later attempt without Retry-After still backs off further.
        let backoff = self.backoff.next();
        let delay = retry_after.or(backoff)?.min(MAX_CLIENT_WAIT);
        let total = self.started.elapsed().checked_add(delay)?;
        (total <= self.policy.max_elapsed).then_some(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn retry_after_is_read_as_seconds_or_as_an_http_date() {
        let now = datetime!(2026-03-01 12:00:00 UTC);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 12:00:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Mar 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn a_retry_after_of_a_day_or_of_u64_max_seconds_is_read_as_the_one_hour_ceiling() {
        let now = datetime!(2026-03-01 12:00:00 UTC);
        for huge in [
            "86400",
            "1000000000000000",
            "18446744073709551615",
            "99999999999999999999999999",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            assert_eq!(
                parse_retry_after(huge, now),
                Some(RETRY_AFTER_CEILING),
                "{huge}"
            );
        }
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(
            parse_retry_after("Thu, 01 Jan 1970 00:00:00 GMT", now),
            Some(Duration::ZERO)
        );
    }

    #[tokio::test]
    async fn one_wait_inside_a_request_never_exceeds_five_minutes() {
        let policy = RetryPolicy {
            max_elapsed: Duration::MAX,
            ..RetryPolicy::default()
        };
        let mut schedule = Schedule::new(policy);
        assert_eq!(
            schedule.next_delay(Some(Duration::MAX)),
            Some(MAX_CLIENT_WAIT)
        );
    }

    proptest::proptest! {
        #[test]
        fn any_retry_after_text_gives_a_bounded_delay_or_none(value in ".{0,40}", seconds in proptest::num::i128::ANY, year in 1i32..=9999) {
            let now = datetime!(2026-03-01 12:00:00 UTC);
            for text in [value, seconds.to_string(), format!("Mon, 01 Jan {year:04} 00:00:00 GMT")] {
                if let Some(delay) = parse_retry_after(&text, now) {
                    proptest::prop_assert!(delay <= RETRY_AFTER_CEILING, "{text}: {delay:?}");
                }
            }
        }

        #[test]
        fn the_schedule_never_overflows_whatever_the_retry_after(secs in proptest::num::u64::ANY, nanos in 0u32..1_000_000_000) {
            let policy = RetryPolicy { max_elapsed: Duration::MAX, ..RetryPolicy::default() };
            let mut schedule = Schedule::new(policy);
            let delay = schedule.next_delay(Some(Duration::new(secs, nanos)));
            proptest::prop_assert!(delay.is_none_or(|delay| delay <= MAX_CLIENT_WAIT));
        }
    }

    #[test]
    fn a_redirect_is_retried_only_when_graph_certainly_did_not_act() {
        let once = Idempotency::NotRepeatable;
        assert!(matches!(classify_status(429, once), Verdict::Retry { .. }));
        assert_eq!(
            classify_status(503, once),
            Verdict::OutcomeUnknown,
            "a 503 with Retry-After may still have been acted on: settled by reading"
        );
        assert_eq!(classify_status(500, once), Verdict::OutcomeUnknown);
        assert_eq!(classify_status(409, once), Verdict::Fail);
    }

    #[test]
    fn repeatable_requests_retry_429_503_504_but_not_500() {
        let safe = Idempotency::Repeatable;
        for status in [429, 503, 504] {
            assert!(
                matches!(classify_status(status, safe), Verdict::Retry { .. }),
                "{status}"
            );
        }
        assert_eq!(classify_status(500, safe), Verdict::Fail);
        assert_eq!(classify_status(404, safe), Verdict::Fail);
    }

    #[tokio::test]
    async fn the_schedule_is_bounded_by_attempts_and_by_total_time() {
        let policy = RetryPolicy {
            max_attempts: 3,
            ..RetryPolicy::default()
        };
        let mut schedule = Schedule::new(policy);
        assert!(schedule.next_delay(None).is_some());
        assert_eq!(
            schedule.next_delay(Some(Duration::from_secs(1))),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            schedule.next_delay(None),
            None,
            "the third failure is the last attempt"
        );

        let mut schedule = Schedule::new(RetryPolicy::default());
        assert_eq!(
            schedule.next_delay(Some(Duration::from_secs(121))),
            None,
            "beyond the 2-minute budget"
        );
    }

    #[tokio::test]
    async fn back_off_without_retry_after_grows_and_stays_within_the_maximum() {
        let policy = RetryPolicy {
            max_attempts: 20,
            max_elapsed: Duration::from_secs(3600),
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let mut schedule = Schedule::new(policy);
        let delays: Vec<Duration> = (0..10).filter_map(|_| schedule.next_delay(None)).collect();
        assert_eq!(delays.len(), 10);
        assert!(delays[0] >= Duration::from_millis(100), "{delays:?}");
        // backon's jitter adds up to the current delay again.
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(2)),
            "{delays:?}"
        );
        assert!(delays[9] >= Duration::from_secs(1), "{delays:?}");
    }
}

/// The retry rules as a whole Graph call meets them (against wiremock): which answers are retried,
/// after which delay, how often, and which calls are never retried because their outcome is unknown.
#[cfg(test)]
mod client_calls {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::client::GraphClient;
    use crate::graph::model::PrintJobConfiguration;
    use crate::graph::test_support::{
        JOB_PATH, Recorder, client_for, client_request_id, graph_error, graph_requests, job_json,
        options_for, token_endpoint,
    };
    use serde_json::json;
    use wiremock::matchers::{body_json, method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn every_attempt_carries_a_new_client_request_id() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(graph_error(503, "serviceNotAvailable"))
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        client_for(&server, &recorder)
            .get_job("p1", "j1", &[])
            .await
            .unwrap();
        let sent = graph_requests(&server).await;
        assert_eq!(sent.len(), 2, "the 503 is retried");
        assert_ne!(client_request_id(&sent[0]), client_request_id(&sent[1]));
        assert_eq!(
            recorder.attempts(),
            [("get_job", Some(503), 1), ("get_job", Some(200), 2)]
        );
    }

    #[tokio::test]
    async fn a_429_with_retry_after_2_is_retried_after_the_retry_after_delay() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(graph_error(429, "TooManyRequests").insert_header("Retry-After", "2"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .with_priority(2)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        client_for(&server, &recorder)
            .get_job("p1", "j1", &[])
            .await
            .unwrap();
        assert_eq!(recorder.sleeps(), [Duration::from_secs(2)]);
    }

    #[tokio::test]
    async fn a_retry_after_http_date_is_honoured_relative_to_the_injected_clock() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        // The test clock reads 2026-03-01 12:00:00 UTC.
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(
                graph_error(503, "serviceNotAvailable")
                    .insert_header("Retry-After", "Sun, 01 Mar 2026 12:00:09 GMT"),
            )
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .with_priority(2)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        client_for(&server, &recorder)
            .get_job("p1", "j1", &[])
            .await
            .unwrap();
        assert_eq!(recorder.sleeps(), [Duration::from_secs(9)]);
    }

    #[tokio::test]
    async fn retries_are_bounded_and_the_last_error_is_returned() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(graph_error(503, "serviceNotAvailable"))
            .expect(4)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let mut options = options_for(&server, &recorder);
        options.retry = RetryPolicy {
            max_attempts: 4,
            ..RetryPolicy::default()
        };
        let error = GraphClient::new(options)
            .unwrap()
            .get_job("p1", "j1", &[])
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(503));
        assert!(error.is_transient());
        assert_eq!(error.request_id(), Some("req-42"));
        assert!(error.to_string().contains("after 4 attempts"), "{error}");
        assert_eq!(recorder.sleeps().len(), 3);
    }

    #[tokio::test]
    async fn a_retry_after_beyond_the_time_budget_gives_up_at_once() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(graph_error(429, "TooManyRequests").insert_header("Retry-After", "600"))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let error = client_for(&server, &recorder)
            .get_job("p1", "j1", &[])
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(429));
        assert!(recorder.sleeps().is_empty());
    }

    #[tokio::test]
    async fn a_redirect_that_times_out_is_not_retried_and_its_outcome_is_unknown() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("POST"))
            .and(path("/v1.0/print/printers/p1/jobs/j1/redirect"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(job_json())
                    .set_delay(Duration::from_secs(3)),
            )
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let mut options = options_for(&server, &recorder);
        options.request_timeout = Duration::from_millis(200);
        let error = GraphClient::new(options)
            .unwrap()
            .redirect_job("p1", "j1", "p2", None)
            .await
            .unwrap_err();
        assert!(error.is_outcome_unknown(), "{error}");
        assert!(recorder.sleeps().is_empty());
    }

    #[tokio::test]
    async fn a_redirect_answered_with_500_has_an_unknown_outcome() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("POST"))
            .and(path("/v1.0/print/printers/p1/jobs/j1/redirect"))
            .respond_with(graph_error(500, "generalException"))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let error = client_for(&server, &recorder)
            .redirect_job("p1", "j1", "p2", None)
            .await
            .unwrap_err();
        assert!(error.is_outcome_unknown(), "{error}");
        assert_eq!(error.request_id(), Some("req-42"));
    }

    #[tokio::test]
    async fn a_throttled_redirect_is_retried_and_sends_destination_and_configuration() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        let redirect = || {
            Mock::given(method("POST"))
                .and(path("/v1.0/print/printers/p1/jobs/j1/redirect"))
                .and(body_json(
                    json!({"destinationPrinterId": "p2", "configuration": {"copies": 3}}),
                ))
        };
        redirect()
            .respond_with(graph_error(429, "TooManyRequests").insert_header("Retry-After", "1"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        redirect()
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"id": "24123", "status": {"state": "processing"}})),
            )
            .with_priority(2)
            .mount(&server)
            .await;
        let configuration = PrintJobConfiguration {
            copies: Some(3),
            ..PrintJobConfiguration::default()
        };
        let recorder = Recorder::default();
        let job = client_for(&server, &recorder)
            .redirect_job("p1", "j1", "p2", Some(&configuration))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, "24123");
        assert_eq!(recorder.sleeps(), [Duration::from_secs(1)]);
    }
}
