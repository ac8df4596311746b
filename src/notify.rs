//! systemd service notifications (`Type=notify`): `READY=1` once the store and the listener are up
//! (with a `STATUS=` line naming what is not ready yet, such as Graph), `WATCHDOG=1` only
//! while the release engine makes progress, `STOPPING=1` when the drain starts.
//!
//! The watchdog is tied to a [`Heartbeat`] that the executor beats on progress: each step it
//! records, and each turn of its loop (at least every second) unless due actions wait for a slot
//! while no Graph request is under way within its bounds. Waiting on a slow or throttling Graph is
//! not a hang (a restart would stall the same way and drop every session); slots held by drives that
//! neither progress nor wait on Graph are. A hung engine stops beating, the pings stop, and systemd
//! restarts the service after `WatchdogSec=`; a restart is safe because every accepted action is in
//! the store and resumes. Outside systemd (`NOTIFY_SOCKET` unset) every call is a no-op.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sd_notify::NotifyState;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Where notifications go: systemd's socket in production, a recorder in tests.
pub trait NotifySink: Send + Sync + std::fmt::Debug {
    /// Sends one notification.
    fn send(&self, state: &[NotifyState<'_>]);
}

/// The real sink: the datagram socket named by `NOTIFY_SOCKET`.
#[derive(Debug, Default)]
pub struct SystemdSocket;

impl NotifySink for SystemdSocket {
    fn send(&self, state: &[NotifyState<'_>]) {
        if let Err(err) = sd_notify::notify(state) {
            tracing::warn!(%err, "cannot notify systemd");
        }
    }
}

/// The last time the engine made progress.
#[derive(Debug)]
pub struct Heartbeat {
    // A std mutex: a copy of an Instant, never held across an await.
    last: Mutex<Instant>,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            last: Mutex::new(Instant::now()),
        }
    }
}

impl Heartbeat {
    /// A heartbeat that has just beaten.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Records progress.
    pub fn beat(&self) {
        *self
            .last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Instant::now();
    }

    /// Whether the last beat is more recent than `within`.
    pub fn is_fresh(&self, within: Duration) -> bool {
        self.last
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .elapsed()
            < within
    }
}

/// The service manager, as the daemon talks to it.
#[derive(Debug, Clone)]
pub struct ServiceManager {
    sink: Arc<dyn NotifySink>,
    watchdog: Option<Duration>,
}

impl ServiceManager {
    /// systemd, as the environment describes it (`NOTIFY_SOCKET`, `WATCHDOG_USEC`).
    pub fn from_env() -> Self {
        Self {
            sink: Arc::new(SystemdSocket),
            watchdog: sd_notify::watchdog_enabled(),
        }
    }

    /// A service manager with an explicit sink and watchdog interval (tests).
    pub fn new(sink: Arc<dyn NotifySink>, watchdog: Option<Duration>) -> Self {
        Self { sink, watchdog }
    }

    /// The daemon serves: store open, listener bound (Graph may still be away; `status` says so).
    pub fn ready(&self, status: &str) {
        self.sink
            .send(&[NotifyState::Ready, NotifyState::Status(status)]);
    }

    /// A new status line (`systemctl status` shows it).
    pub fn status(&self, status: &str) {
        self.sink.send(&[NotifyState::Status(status)]);
    }

    /// The drain has begun.
    pub fn stopping(&self) {
        self.sink
            .send(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    }

    /// Pings the watchdog at half its interval while `heartbeat` stays fresher than the interval;
    /// returns when `shutdown` is cancelled. Does nothing when the watchdog is off.
    pub async fn run_watchdog(&self, heartbeat: Arc<Heartbeat>, shutdown: CancellationToken) {
        let Some(interval) = self.watchdog else {
            return;
        };
        let mut ticker = tokio::time::interval(interval / 2);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut warned = false;
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = ticker.tick() => {}
            }
            if heartbeat.is_fresh(interval) {
                self.sink.send(&[NotifyState::Watchdog]);
                warned = false;
            } else if !warned {
                tracing::error!(
                    "the release engine has made no progress for {interval:?}; \
                     withholding the watchdog ping so systemd restarts pullprintd"
                );
                warned = true;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl NotifySink for Recorder {
        fn send(&self, state: &[NotifyState<'_>]) {
            let mut sent = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sent.extend(state.iter().map(ToString::to_string));
        }
    }

    impl Recorder {
        fn watchdog_pings(&self) -> usize {
            let sent = self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            sent.iter().filter(|s| *s == "WATCHDOG=1").count()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_watchdog_is_pinged_while_the_engine_beats_and_stops_when_it_stalls() {
        let recorder = Arc::new(Recorder::default());
        let manager = ServiceManager::new(recorder.clone(), Some(Duration::from_secs(10)));
        let heartbeat = Heartbeat::new();
        let shutdown = CancellationToken::new();
        let watchdog = tokio::spawn({
            let (manager, heartbeat, shutdown) =
                (manager.clone(), heartbeat.clone(), shutdown.clone());
            async move { manager.run_watchdog(heartbeat, shutdown).await }
        });
        // Healthy: the engine beats every 2 s for 30 s.
        for _ in 0..15 {
            tokio::time::sleep(Duration::from_secs(2)).await;
            heartbeat.beat();
        }
        let healthy = recorder.watchdog_pings();
        assert!(
            healthy >= 5,
            "pinged {healthy} times in 30 s at a 5 s period"
        );
        // Stalled: no beats for 60 s; pings stop once the last beat is 10 s old.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let stalled = recorder.watchdog_pings() - healthy;
        assert!(stalled <= 2, "{stalled} pings after the engine stalled");
        shutdown.cancel();
        watchdog.await.expect("watchdog task ends on shutdown");
    }

    #[tokio::test]
    async fn without_a_watchdog_interval_nothing_is_pinged() {
        let recorder = Arc::new(Recorder::default());
        let manager = ServiceManager::new(recorder.clone(), None);
        manager
            .run_watchdog(Heartbeat::new(), CancellationToken::new())
            .await;
        manager.ready("ready");
        manager.stopping();
        let sent = recorder
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        assert_eq!(
            sent,
            ["READY=1", "STATUS=ready", "STOPPING=1", "STATUS=draining"]
        );
    }
}
