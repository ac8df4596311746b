//! [`Metrics`]: the daemon's Prometheus metrics, one registry for the whole process, rendered as text
//! by the `/metrics` handler.
//!
//! What is measured, and who reports it:
//! - the Graph client, through [`GraphObserver`]: requests by operation and status, latency by
//!   operation, retries, 429 answers, app token refreshes;
//! - the release engine, through plain methods: actions by kind and outcome, notifications received /
//!   forged / duplicate, held jobs, the action queue's depth and oldest age, the subscription's
//!   expiry, the time from task creation to release;
//! - the stations: sign-ins by outcome, lockouts, PIN checks (argon2 runs);
//! - the build: `pullprintd_build_info{version}`.
//!
//! Invariants: labels only ever carry bounded values (operation names are `&'static str` chosen by the
//! Graph client, kinds and outcomes are the engine's words, HTTP statuses are numbers): never a job id,
//! user or printer, which would grow the series without bound. Recording never blocks on I/O and never
//! fails; [`Metrics`] is cheap to clone (an `Arc` inside), so every task holds its own handle.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use time::OffsetDateTime;

use crate::graph::GraphObserver;

/// Labels of the action counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ActionLabels {
    /// `release`, `redirect`, `delete`…
    kind: String,
    /// `ok`, `failed`, `retried`…
    outcome: String,
}

/// Labels of the Graph request counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// The Graph client's short operation name (`get_job`…).
    operation: &'static str,
    /// The HTTP status, or `none` when no response arrived.
    status: String,
}

/// Labels of the per-operation families (latency, retries, 429s).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    /// The Graph client's short operation name.
    operation: &'static str,
}

/// Labels of the notification counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NotificationLabels {
    /// `received`, `forged` or `duplicate`.
    kind: String,
}

/// Labels of the build information gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    /// The crate version.
    version: &'static str,
}

/// The outcomes of a station sign-in, each a label value of `pullprintd_sign_ins_total`.
const SIGN_IN_OUTCOMES: [&str; 7] = [
    "ok",
    "failed",
    "locked_out",
    "busy",
    "station_budget",
    "global_budget",
    "invalid",
];

/// Labels of the sign-in counter.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SignInLabels {
    /// One of [`SIGN_IN_OUTCOMES`].
    outcome: &'static str,
}

/// The seconds buckets of Graph latency: 25 ms to ~51 s, doubling (Graph answers in tens of
/// milliseconds when healthy, seconds when throttled; a 30 s timeout is the default ceiling).
fn graph_latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.025, 2.0, 12))
}

/// The seconds buckets from task creation to release: 5 s to ~11 h, tripling (people walk to the
/// printer in a minute, or release the next morning; the hold timeout is hours).
fn release_latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(5.0, 3.0, 9))
}

/// The seconds buckets of the webhook's answers: 1 ms to ~4 s, doubling (a stored notification is
/// answered in milliseconds; Graph counts an answer after 2.9 s as slow, and throttles an endpoint
/// when 10 % of its answers are).
fn webhook_answer_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}

struct Inner {
    /// Behind a std mutex: only `render` locks it (registration happens once, in `new`).
    registry: std::sync::Mutex<Registry>,
    held_jobs: Gauge,
    actions: Family<ActionLabels, Counter>,
    graph_requests: Family<RequestLabels, Counter>,
    graph_latency: Family<OperationLabels, Histogram, fn() -> Histogram>,
    graph_retries: Family<OperationLabels, Counter>,
    graph_throttled: Family<OperationLabels, Counter>,
    notifications: Family<NotificationLabels, Counter>,
    subscription_expiry: Gauge,
    token_refreshes: Counter,
    release_latency: Histogram,
    webhook_answer: Histogram,
    action_queue_depth: Gauge,
    action_queue_oldest: Gauge<f64, std::sync::atomic::AtomicU64>,
    sign_ins: Family<SignInLabels, Counter>,
    lockouts: Counter,
    pin_checks: Counter,
    leader: Gauge,
    leadership_changes: Counter,
}

/// The process's metrics. Cheap to clone; every clone records into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh registry with every family registered. Families without labels, and the notification
    /// kinds (a fixed set), are exported as 0 from the start, so alerts can tell "none yet" from "not
    /// exported"; a labelled family shows a series once its first label set is used (the encoder
    /// skips empty families).
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("pullprintd");
        let held_jobs = Gauge::default();
        registry.register(
            "held_jobs",
            "Jobs held and waiting for their owner at a release station",
            held_jobs.clone(),
        );
        let actions = Family::<ActionLabels, Counter>::default();
        registry.register(
            "actions",
            "Release actions (release, redirect, delete) finished, by kind and outcome",
            actions.clone(),
        );
        let graph_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "graph_requests",
            "Microsoft Graph attempts, by operation and HTTP status (none: no response)",
            graph_requests.clone(),
        );
        let graph_latency =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                graph_latency_histogram,
            );
        registry.register(
            "graph_request_duration_seconds",
            "Microsoft Graph attempt latency, by operation",
            graph_latency.clone(),
        );
        let graph_retries = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graph_retries",
            "Microsoft Graph attempts repeated after a transient failure, by operation",
            graph_retries.clone(),
        );
        let graph_throttled = Family::<OperationLabels, Counter>::default();
        registry.register(
            "graph_throttled",
            "Microsoft Graph 429 Too Many Requests answers, by operation",
            graph_throttled.clone(),
        );
        let notifications = Family::<NotificationLabels, Counter>::default();
        registry.register(
            "notifications",
            "Graph change notifications: received, forged (wrong clientState), duplicate, retried \
             (a lookup failed and was put off) or dead_letter (given up, see the audit log)",
            notifications.clone(),
        );
        for kind in ["received", "forged", "duplicate", "retried", "dead_letter"] {
            // Creating the series is the point; the read guard is dropped at once.
            drop(notifications.get_or_create(&NotificationLabels {
                kind: kind.to_owned(),
            }));
        }
        let subscription_expiry = Gauge::default();
        registry.register(
            "subscription_expiry_timestamp_seconds",
            "When the Graph subscription expires (Unix time, seconds); 0 without a subscription",
            subscription_expiry.clone(),
        );
        let token_refreshes = Counter::default();
        registry.register(
            "token_refreshes",
            "App-only tokens requested from Entra ID",
            token_refreshes.clone(),
        );
        let release_latency = release_latency_histogram();
        registry.register(
            "release_latency_seconds",
            "Time from the print task's creation to the job's release",
            release_latency.clone(),
        );
        let webhook_answer = webhook_answer_histogram();
        registry.register(
            "webhook_answer_seconds",
            "Time from a notification delivery's arrival to the webhook's answer (Graph counts over 2.9 s as slow)",
            webhook_answer.clone(),
        );
        let build_info = Family::<BuildLabels, Gauge>::default();
        registry.register(
            "build_info",
            "Always 1; the label says which pullprintd version runs",
            build_info.clone(),
        );
        build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        let action_queue_depth = Gauge::default();
        registry.register(
            "action_queue_depth",
            "Release actions accepted and not yet finished (waiting for Graph)",
            action_queue_depth.clone(),
        );
        let action_queue_oldest = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register(
            "action_queue_oldest_age_seconds",
            "How long ago the oldest unfinished release action was accepted; 0 when the queue is empty",
            action_queue_oldest.clone(),
        );
        let sign_ins = Family::<SignInLabels, Counter>::default();
        registry.register(
            "sign_ins",
            "Station sign-ins, by outcome: ok, failed (unknown card, user or PIN), locked_out \
             (refused during a lockout), busy (every PIN check permit taken), station_budget and \
             global_budget (too many failures recently), invalid (a malformed request)",
            sign_ins.clone(),
        );
        for outcome in SIGN_IN_OUTCOMES {
            drop(sign_ins.get_or_create(&SignInLabels { outcome }));
        }
        let lockouts = Counter::default();
        registry.register(
            "sign_in_lockouts",
            "Cards or people locked out after repeated failed sign-ins",
            lockouts.clone(),
        );
        let pin_checks = Counter::default();
        registry.register(
            "pin_checks",
            "PIN verifications run (argon2); bounded by the lockout however many guesses arrive",
            pin_checks.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this instance leads (runs the poller, the sweeper and the subscription), else \
             0; with several instances on one PostgreSQL store exactly one reports 1",
            leader.clone(),
        );
        let leadership_changes = Counter::default();
        registry.register(
            "leadership_changes",
            "Times this instance took or lost the leadership",
            leadership_changes.clone(),
        );
        Self {
            inner: Arc::new(Inner {
                registry: std::sync::Mutex::new(registry),
                held_jobs,
                actions,
                graph_requests,
                graph_latency,
                graph_retries,
                graph_throttled,
                notifications,
                subscription_expiry,
                token_refreshes,
                release_latency,
                webhook_answer,
                action_queue_depth,
                action_queue_oldest,
                sign_ins,
                lockouts,
                pin_checks,
                leader,
                leadership_changes,
            }),
        }
    }

    /// Every family in the Prometheus text exposition format (OpenMetrics, ending in `# EOF`).
    pub fn render(&self) -> String {
        let registry = self
            .inner
            .registry
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut text = String::new();
        // Writing into a String cannot fail; an encoder error would be a bug in a metric, so say so in
        // the output rather than answer `/metrics` with an error.
        if let Err(error) = prometheus_client::encoding::text::encode(&mut text, &registry) {
            text.push_str(&format!("# encoding error: {error}\n"));
        }
        text
    }

    /// A release action finished: `kind` (`release`, `redirect`, `delete`…), `outcome` (`ok`,
    /// `failed`…). Both must come from a small fixed set.
    pub fn action_finished(&self, kind: &str, outcome: &str) {
        self.inner
            .actions
            .get_or_create(&ActionLabels {
                kind: kind.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    /// A station sign-in ended with `outcome` (a word from the fixed set of [`SignInLabels`]).
    pub fn sign_in(&self, outcome: &'static str) {
        self.inner
            .sign_ins
            .get_or_create(&SignInLabels { outcome })
            .inc();
    }

    /// One PIN verification (argon2) ran.
    pub fn pin_checked(&self) {
        self.inner.pin_checks.inc();
    }

    /// PIN verifications run so far.
    pub fn pin_checks(&self) -> u64 {
        self.inner.pin_checks.get()
    }

    /// A change notification: `kind` is `received`, `forged` or `duplicate`.
    pub fn notification(&self, kind: &str) {
        self.inner
            .notifications
            .get_or_create(&NotificationLabels {
                kind: kind.to_owned(),
            })
            .inc();
    }

    /// How many jobs are held now.
    pub fn set_held_jobs(&self, count: u64) {
        self.inner
            .held_jobs
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// When the Graph subscription expires (`None`: no subscription, exported as 0).
    pub fn set_subscription_expiry(&self, expiry: Option<OffsetDateTime>) {
        self.inner
            .subscription_expiry
            .set(expiry.map_or(0, OffsetDateTime::unix_timestamp));
    }

    /// The action queue: unfinished actions, and the age of the oldest in seconds (`None`: empty).
    pub fn set_action_queue(&self, depth: u64, oldest_age: Option<f64>) {
        self.inner
            .action_queue_depth
            .set(i64::try_from(depth).unwrap_or(i64::MAX));
        self.inner
            .action_queue_oldest
            .set(oldest_age.unwrap_or(0.0).max(0.0));
    }

    /// This instance took (`true`) or lost (`false`) the leadership.
    pub fn set_leader(&self, leading: bool) {
        self.inner.leader.set(i64::from(leading));
        self.inner.leadership_changes.inc();
    }

    /// A card or person was locked out.
    pub fn lockout(&self) {
        self.inner.lockouts.inc();
    }

    /// The webhook answered a notification delivery `seconds` after it arrived.
    pub fn observe_webhook_answer(&self, seconds: f64) {
        self.inner.webhook_answer.observe(seconds.max(0.0));
    }

    /// A job was released `seconds` after its print task was created.
    pub fn observe_release_latency(&self, seconds: f64) {
        self.inner.release_latency.observe(seconds.max(0.0));
    }
}

impl GraphObserver for Metrics {
    fn on_response(
        &self,
        operation: &'static str,
        status: Option<u16>,
        latency: Duration,
        _attempt: u32,
    ) {
        let inner = &self.inner;
        inner
            .graph_requests
            .get_or_create(&RequestLabels {
                operation,
                status: status.map_or_else(|| "none".to_owned(), |s| s.to_string()),
            })
            .inc();
        inner
            .graph_latency
            .get_or_create(&OperationLabels { operation })
            .observe(latency.as_secs_f64());
        if status == Some(429) {
            inner
                .graph_throttled
                .get_or_create(&OperationLabels { operation })
                .inc();
        }
    }

    fn on_retry(&self, operation: &'static str, _attempt: u32, _delay: Duration) {
        self.inner
            .graph_retries
            .get_or_create(&OperationLabels { operation })
            .inc();
    }

    fn on_token_refresh(&self) {
        self.inner.token_refreshes.inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `prefix` (name and labels), if any.
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn build_info_queue_age_and_sign_in_outcomes_are_exported() {
        let metrics = Metrics::new();
        metrics.set_action_queue(3, Some(42.5));
        metrics.sign_in("failed");
        metrics.sign_in("failed");
        metrics.sign_in("ok");
        metrics.lockout();
        let text = metrics.render();
        let version = env!("CARGO_PKG_VERSION");
        assert_eq!(
            sample(
                &text,
                &format!("pullprintd_build_info{{version=\"{version}\"}}")
            ),
            Some(1.0),
            "{text}"
        );
        assert_eq!(sample(&text, "pullprintd_action_queue_depth "), Some(3.0));
        assert_eq!(
            sample(&text, "pullprintd_action_queue_oldest_age_seconds "),
            Some(42.5)
        );
        assert_eq!(
            sample(&text, r#"pullprintd_sign_ins_total{outcome="failed"}"#),
            Some(2.0)
        );
        assert_eq!(
            sample(&text, r#"pullprintd_sign_ins_total{outcome="locked_out"}"#),
            Some(0.0)
        );
        assert_eq!(
            sample(&text, "pullprintd_sign_in_lockouts_total "),
            Some(1.0)
        );
        // An empty queue has no oldest action: its age reads 0, not the last value.
        metrics.set_action_queue(0, None);
        assert_eq!(
            sample(
                &metrics.render(),
                "pullprintd_action_queue_oldest_age_seconds "
            ),
            Some(0.0)
        );
    }

    #[test]
    fn render_lists_the_unlabelled_families_and_notification_kinds_from_the_start() {
        let text = Metrics::new().render();
        for family in [
            "pullprintd_held_jobs",
            "pullprintd_notifications",
            "pullprintd_subscription_expiry_timestamp_seconds",
            "pullprintd_token_refreshes",
            "pullprintd_release_latency_seconds",
            "pullprintd_webhook_answer_seconds",
            "pullprintd_build_info",
            "pullprintd_action_queue_depth",
            "pullprintd_action_queue_oldest_age_seconds",
            "pullprintd_sign_ins",
            "pullprintd_sign_in_lockouts",
            "pullprintd_pin_checks",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing from:\n{text}"
            );
        }
        assert_eq!(
            sample(&text, r#"pullprintd_notifications_total{kind="forged"}"#),
            Some(0.0)
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn render_contains_every_family_once_each_was_used() {
        let metrics = Metrics::new();
        metrics.on_response("get_job", Some(429), Duration::from_millis(5), 1);
        metrics.on_retry("get_job", 1, Duration::from_secs(1));
        metrics.action_finished("release", "ok");
        let text = metrics.render();
        for family in [
            "pullprintd_held_jobs",
            "pullprintd_actions",
            "pullprintd_graph_requests",
            "pullprintd_graph_request_duration_seconds",
            "pullprintd_graph_retries",
            "pullprintd_graph_throttled",
            "pullprintd_notifications",
            "pullprintd_subscription_expiry_timestamp_seconds",
            "pullprintd_token_refreshes",
            "pullprintd_release_latency_seconds",
            "pullprintd_webhook_answer_seconds",
            "pullprintd_build_info",
            "pullprintd_action_queue_depth",
            "pullprintd_action_queue_oldest_age_seconds",
            "pullprintd_sign_ins",
            "pullprintd_sign_in_lockouts",
            "pullprintd_pin_checks",
        ] {
            assert!(
                text.contains(&format!("# TYPE {family} ")),
                "{family} missing from:\n{text}"
            );
        }
    }

    #[test]
    fn the_graph_observer_counts_requests_by_operation_and_status() {
        let metrics = Metrics::new();
        let observer: &dyn GraphObserver = &metrics;
        observer.on_response("get_job", Some(200), Duration::from_millis(40), 1);
        observer.on_response("get_job", Some(200), Duration::from_millis(60), 1);
        observer.on_response("get_job", Some(429), Duration::from_millis(10), 1);
        observer.on_response("list_tasks", None, Duration::from_secs(30), 1);
        observer.on_retry("get_job", 1, Duration::from_secs(2));
        observer.on_token_refresh();
        let text = metrics.render();
        let at = |prefix: &str| sample(&text, prefix);
        assert_eq!(
            at(r#"pullprintd_graph_requests_total{operation="get_job",status="200"}"#),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            at(r#"pullprintd_graph_requests_total{operation="get_job",status="429"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pullprintd_graph_requests_total{operation="list_tasks",status="none"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pullprintd_graph_throttled_total{operation="get_job"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pullprintd_graph_retries_total{operation="get_job"}"#),
            Some(1.0)
        );
        assert_eq!(at("pullprintd_token_refreshes_total"), Some(1.0));
        assert_eq!(
            at(r#"pullprintd_graph_request_duration_seconds_count{operation="get_job"}"#),
            Some(3.0)
        );
        let sum = at(r#"pullprintd_graph_request_duration_seconds_sum{operation="get_job"}"#)
            .expect("latency sum");
        assert!((sum - 0.11).abs() < 1e-9, "{sum}");
    }

    #[test]
    fn the_engine_methods_set_gauges_and_count_actions_and_notifications() {
        let metrics = Metrics::new();
        metrics.set_held_jobs(7);
        metrics.set_subscription_expiry(Some(
            OffsetDateTime::from_unix_timestamp(1_790_000_000).expect("valid timestamp"),
        ));
        metrics.action_finished("release", "ok");
        metrics.action_finished("release", "ok");
        metrics.action_finished("delete", "failed");
        metrics.notification("received");
        metrics.notification("duplicate");
        metrics.notification("duplicate");
        metrics.observe_release_latency(90.0);
        let text = metrics.render();
        let at = |prefix: &str| sample(&text, prefix);
        assert_eq!(at("pullprintd_held_jobs "), Some(7.0), "{text}");
        assert_eq!(
            at("pullprintd_subscription_expiry_timestamp_seconds "),
            Some(1_790_000_000.0)
        );
        assert_eq!(
            at(r#"pullprintd_actions_total{kind="release",outcome="ok"}"#),
            Some(2.0)
        );
        assert_eq!(
            at(r#"pullprintd_actions_total{kind="delete",outcome="failed"}"#),
            Some(1.0)
        );
        assert_eq!(
            at(r#"pullprintd_notifications_total{kind="duplicate"}"#),
            Some(2.0)
        );
        assert_eq!(at("pullprintd_release_latency_seconds_count "), Some(1.0));

        metrics.set_subscription_expiry(None);
        assert_eq!(
            sample(
                &metrics.render(),
                "pullprintd_subscription_expiry_timestamp_seconds "
            ),
            Some(0.0)
        );
    }
}
