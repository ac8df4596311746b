//! Logging, set up first so that even configuration errors are reported properly.
//!
//! Human-readable text by default, one JSON object per line on request (for log shippers). The level
//! comes from `RUST_LOG` when set, else from the configuration (`[log] level`), else `info`. Under
//! systemd, stderr goes to journald, which adds its own timestamps; `[log] format = "journald"` drops ours.
//! Secrets never reach a log line: they are `SecretString`s whose `Debug` prints `[REDACTED]`.

use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt, reload, util::SubscriberInitExt};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable text with timestamps.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
    /// Text without timestamps or colours, for journald (which timestamps lines itself).
    Journald,
}

/// A handle that lets the configuration change the log level and format once it has been read.
pub struct Telemetry {
    filter: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
}

/// Installs a text subscriber at `info` (or `RUST_LOG`) and returns a handle to adjust it later.
///
/// Call once, first thing in `main`. Calling it twice (as tests may) leaves the first subscriber.
pub fn init() -> Telemetry {
    init_with(LogFormat::Text)
}

/// Installs the subscriber with the given format.
pub fn init_with(format: LogFormat) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    // A second initialisation (tests) fails harmlessly; the first subscriber stays.
    let _ = match format {
        LogFormat::Text => registry.with(fmt::layer().with_writer(std::io::stderr)).try_init(),
        LogFormat::Json => registry
            .with(fmt::layer().json().with_writer(std::io::stderr))
            .try_init(),
        LogFormat::Journald => registry
            .with(fmt::layer().without_time().with_ansi(false).with_writer(std::io::stderr))
            .try_init(),
    };
    Telemetry { filter: handle }
}

impl Telemetry {
    /// Applies the configured level unless `RUST_LOG` is set (the environment wins, for debugging).
    pub fn set_level(&self, level: &str) {
        if std::env::var_os("RUST_LOG").is_some() {
            return;
        }
        match EnvFilter::try_new(level) {
            Ok(filter) => {
                let _ = self.filter.reload(filter);
            }
            Err(err) => tracing::warn!(%level, %err, "ignoring the configured log level"),
        }
    }
}
