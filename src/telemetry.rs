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

type Filtered = tracing_subscriber::layer::Layered<
    reload::Layer<EnvFilter, tracing_subscriber::Registry>,
    tracing_subscriber::Registry,
>;
type FormatLayer = Box<dyn tracing_subscriber::Layer<Filtered> + Send + Sync>;

/// A handle that lets the configuration change the log level and format once it has been read.
pub struct Telemetry {
    filter: reload::Handle<EnvFilter, tracing_subscriber::Registry>,
    format: reload::Handle<FormatLayer, Filtered>,
}

fn format_layer(format: LogFormat) -> FormatLayer {
    match format {
        LogFormat::Text => Box::new(fmt::layer().with_writer(std::io::stderr)),
        LogFormat::Json => Box::new(fmt::layer().json().with_writer(std::io::stderr)),
        LogFormat::Journald => Box::new(
            fmt::layer()
                .without_time()
                .with_ansi(false)
                .with_writer(std::io::stderr),
        ),
    }
}

/// Installs a text subscriber at `info` (or `RUST_LOG`) on stderr and returns a handle to adjust it
/// once the configuration is known.
///
/// Call once, first thing in `main`. A second call (as tests may make) leaves the first subscriber.
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, filter_handle) = reload::Layer::new(filter);
    let (format, format_handle) = reload::Layer::new(format_layer(LogFormat::Text));
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(format)
        .try_init();
    Telemetry {
        filter: filter_handle,
        format: format_handle,
    }
}

impl Telemetry {
    /// Applies the configured level and format. `RUST_LOG`, when set, wins over the level.
    pub fn configure(&self, level: &str, format: LogFormat) {
        if format != LogFormat::Text {
            let _ = self.format.reload(format_layer(format));
        }
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
