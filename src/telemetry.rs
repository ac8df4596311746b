//! Logging, set up first so that even configuration errors are reported properly.
//!
//! Human-readable text by default, one JSON object per line on request (for log shippers). The level
//! comes from `RUST_LOG` when set, else from the configuration (`[log] level`), else `info`. Under
//! systemd, stderr goes to journald, which adds its own timestamps; `[log] format = "journald"` drops ours
//! and starts each line with its syslog priority (`<3>` error … `<7>` debug), which journald reads
//! (`SyslogLevelPrefix=`, on by default), so `journalctl -p err` shows pullprintd's errors.
//! Secrets never reach a log line: they are `SecretString`s whose `Debug` prints `[REDACTED]`.

use tracing::{Level, Subscriber};
use tracing_subscriber::fmt::format::{DefaultFields, Format, Full, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
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
                .event_format(SyslogPrefix(fmt::format().without_time().with_ansi(false)))
                .fmt_fields(DefaultFields::new())
                .with_writer(std::io::stderr),
        ),
    }
}

/// The syslog priority journald reads from a `<N>` line prefix (sd-daemon(3)).
pub fn syslog_priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        Level::DEBUG | Level::TRACE => 7,
    }
}

/// Formats an event as `<N>` followed by tracing's own line, N being its syslog priority.
struct SyslogPrefix(Format<Full, ()>);

impl<S, N> FormatEvent<S, N> for SyslogPrefix
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        write!(writer, "<{}>", syslog_priority(event.metadata().level()))?;
        self.0.format_event(ctx, writer, event)
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
