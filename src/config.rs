//! Configuration: the typed settings tree, read from a TOML file and then `PULLPRINTD__SECTION__KEY`
//! environment variables (the environment wins).
//!
//! Invariants once [`Settings::load`] returns:
//! - every key was known (`deny_unknown_fields`: a typo is an error, not a silent default);
//! - every secret has been read from its `*_file` (preferred: works with systemd `LoadCredential`), the
//!   environment, or inline, and lives in a [`Secret`] that prints as `[REDACTED]`;
//! - the values make sense together (one credential kind, a known cloud, stations with keys…).
//!
//! Errors name the key, the bad value and the fix; `main` turns them into exit code 78.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::graph::{Cloud, Credential, GraphError, GraphOptions};
use crate::telemetry::LogFormat;

/// Prefix of the environment variables that override the file: `PULLPRINTD__GRAPH__TENANT_ID`.
pub const ENV_PREFIX: &str = "PULLPRINTD";

/// A configuration problem, said so that an administrator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file or the environment could not be read or parsed.
    #[error("cannot read the configuration: {0}")]
    Load(String),
    /// A value is wrong.
    #[error("configuration key `{key}`: {problem}")]
    Invalid {
        /// The dotted key, e.g. `graph.cloud`.
        key: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

fn invalid(key: &str, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

/// A secret value: deserialised from a string, serialised and debug-printed as `[REDACTED]`.
#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Self(SecretString::from(value.into()))
    }

    /// The secret itself; call only where it is sent or compared.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The inner [`SecretString`].
    pub fn secret_string(&self) -> SecretString {
        self.0.clone()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[REDACTED]")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("[REDACTED]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

/// Reads a secret or key file, trimming surrounding whitespace (`echo KEY > file` must work).
/// A permission problem is reported as one, naming the path and the running user.
pub fn read_secret_file(key: &str, path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        let problem = match err.kind() {
            std::io::ErrorKind::PermissionDenied => permission_problem(path, key),
            std::io::ErrorKind::NotFound => match std::env::var_os(CREDENTIALS_DIRECTORY) {
                Some(dir) if path.starts_with(&dir) => format!(
                    "the credential {} was not passed to the service: add a LoadCredential= line \
                     for it to the unit (`systemctl edit pullprintd`), or name the file with an \
                     absolute path",
                    path.display()
                ),
                _ => format!(
                    "{} does not exist. Check the path (a relative name is read from \
                     $CREDENTIALS_DIRECTORY under systemd, else from the configuration file's folder)",
                    path.display()
                ),
            },
            _ => format!("cannot read {}: {err}", path.display()),
        };
        invalid(key, problem)
    })?;
    let value = text.trim();
    if value.is_empty() {
        return Err(invalid(key, format!("{} is empty", path.display())));
    }
    Ok(Secret::new(value))
}

/// Where a secret's `*_file` setting is read from.
///
/// An absolute path is read as it is. A relative name (`client-secret`, `secrets/admin.key`) is a
/// *credential*:
/// - under systemd, when the unit passes credentials (`$CREDENTIALS_DIRECTORY` is set), it is read
///   from that folder, with `/` turned into `_`: this is how systemd names the files of a folder given
///   to `LoadCredential=ID:FOLDER` (`LoadCredential=secrets:/etc/pullprintd/secrets` makes
///   `secrets/admin.key` the credential `secrets_admin.key`), and a flat name is the `ID` of a
///   `LoadCredential=ID:FILE` line;
/// - otherwise (a root shell, a container, a test) it is read relative to the configuration file's
///   folder: `secrets/admin.key` is `/etc/pullprintd/secrets/admin.key`, the very file systemd loads.
///
/// So one configuration works both in the running service (which cannot read root-only secrets
/// itself) and for `setup`, `doctor` or `jobs` from a root shell while the service is stopped.
#[derive(Debug, Clone, Default)]
pub struct SecretPaths {
    /// systemd's credential folder of the running unit (`$CREDENTIALS_DIRECTORY`).
    pub credentials_directory: Option<PathBuf>,
    /// The folder of the configuration file.
    pub config_dir: Option<PathBuf>,
}

/// The environment variable systemd sets when a unit has credentials.
pub const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

impl SecretPaths {
    /// From `$CREDENTIALS_DIRECTORY` and the configuration file's folder.
    pub fn from_env(config_file: Option<&Path>) -> Self {
        Self {
            credentials_directory: std::env::var_os(CREDENTIALS_DIRECTORY)
                .filter(|dir| !dir.is_empty())
                .map(PathBuf::from),
            config_dir: config_file
                .and_then(Path::parent)
                .filter(|dir| !dir.as_os_str().is_empty())
                .map(Path::to_path_buf),
        }
    }

    /// The file a `*_file` setting names.
    pub fn resolve(&self, name: &Path) -> PathBuf {
        if name.is_absolute() {
            return name.to_path_buf();
        }
        if let Some(dir) = &self.credentials_directory {
            let id = name.to_string_lossy().replace('/', "_");
            return dir.join(id);
        }
        match &self.config_dir {
            Some(dir) => dir.join(name),
            None => name.to_path_buf(),
        }
    }
}

/// Which secrets a command reads: each command reads only what it uses, so `pullprintd jobs` works
/// with only the admin key readable, and `doctor` with only the Graph credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretNeeds {
    /// The Graph credential (client secret, or certificate and key).
    pub graph: bool,
    /// The station keys.
    pub stations: bool,
    /// The admin key.
    pub admin: bool,
}

impl SecretNeeds {
    /// Every secret (`run`, `check-config`).
    pub const ALL: Self = Self {
        graph: true,
        stations: true,
        admin: true,
    };
    /// Only the Graph credential (`setup`, `doctor`, `triggers`).
    pub const GRAPH: Self = Self {
        graph: true,
        stations: false,
        admin: false,
    };
    /// Only the admin key (`jobs`, `release`, `delete`, `unlock`).
    pub const ADMIN: Self = Self {
        graph: false,
        stations: false,
        admin: true,
    };
}

/// The running user, for messages about permissions: `pullprintd (uid 998)`.
pub fn running_user() -> String {
    use std::os::unix::fs::MetadataExt as _;
    // /proc/self belongs to the process's effective uid; no libc call (and no unsafe) needed.
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "this user".to_owned();
    };
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?;
                (id == uid.to_string()).then(|| name.to_owned())
            })
        });
    match name {
        Some(name) => format!("user {name} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// Says which part of `path` the running user may not pass, and how to fix it, after an `EACCES`:
/// a folder on the way that cannot be entered, or the file itself that cannot be read.
pub fn permission_problem(path: &Path, what: &str) -> String {
    let user = running_user();
    let mut ancestors: Vec<&Path> = path
        .ancestors()
        .skip(1)
        .filter(|a| !a.as_os_str().is_empty())
        .collect();
    ancestors.reverse();
    for folder in ancestors {
        if let Err(err) = std::fs::metadata(folder.join("."))
            && err.kind() == std::io::ErrorKind::PermissionDenied
        {
            return format!(
                "permission denied: {user} cannot enter the folder {folder} on the way to {path} \
                 ({what}). Let the pullprintd group in: `chgrp pullprintd {folder} && chmod g+x {folder}`",
                folder = folder.display(),
                path = path.display(),
            );
        }
    }
    format!(
        "permission denied: {user} cannot read {path} ({what}). Make it group-readable by \
         pullprintd (`chgrp pullprintd {path} && chmod g+r {path}`), or for a secret give it to the \
         service with systemd's LoadCredential= and name it relatively (see README, Configure)",
        path = path.display(),
    )
}

/// A duration written for people: `30s`, `5m`, `4h`, `1h 30m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|err| {
                serde::de::Error::custom(format!(
                    "`{text}` is not a duration ({err}); write it like \"30s\", \"5m\" or \"4h\""
                ))
            })
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl fmt::Display for HumanDuration {
    /// The largest whole unit that says it exactly (`400d`, `4h`, `90s`): humantime's own rendering
    /// of 400 days ("1year 1month 4days 7h 26m 24s") is exact but unreadable.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        if self.0.subsec_nanos() != 0 || secs == 0 {
            return write!(f, "{}", humantime::format_duration(self.0));
        }
        for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60)] {
            if secs.is_multiple_of(size) {
                return write!(f, "{}{unit}", secs / size);
            }
        }
        write!(f, "{secs}s")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Microsoft Graph and Entra ID.
    pub graph: GraphSettings,
    /// Which print task definition and printers are ours.
    #[serde(default)]
    pub printing: PrintingSettings,
    /// How held jobs are learned of.
    #[serde(default)]
    pub intake: IntakeSettings,
    /// Release stations (kiosks, card readers).
    #[serde(default)]
    pub stations: Vec<StationSettings>,
    /// Release rules: hold timeout, policy.
    #[serde(default)]
    pub release: ReleaseSettings,
    /// The people who release jobs.
    #[serde(default)]
    pub users: UsersSettings,
    /// The local HTTP API (stations, kiosk, webhook, health, metrics).
    #[serde(default)]
    pub api: ApiSettings,
    /// The store: a SQLite file or a PostgreSQL database.
    #[serde(default)]
    pub store: StoreSettings,
    /// Logging.
    #[serde(default)]
    pub log: LogSettings,
    /// Release from the phone (QR code) and "Sign in with Microsoft" at the kiosk.
    #[serde(default)]
    pub phone: PhoneSettings,
    /// `[[rules]]`, as written: checked at load by [`crate::job::RuleSet::compile`], which names a
    /// bad rule by index and name (a typed list would only report a line number).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<toml::Table>,
}

/// `graph.cloud`: parsed (and China refused) when the file is read, naming the key, because the
/// loader does not say which key a custom error came from.
fn cloud<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Cloud, D::Error> {
    let name = String::deserialize(deserializer)?;
    name.parse()
        .map_err(|problem: String| serde::de::Error::custom(invalid("graph.cloud", problem)))
}

/// `[graph]`: the app registration and where Graph is.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GraphSettings {
    /// `global`, `usgov` (GCC High, L4) or `dod` (L5); parsed (and China refused) when read.
    #[serde(default, deserialize_with = "cloud")]
    pub cloud: Cloud,
    /// The Entra ID tenant (GUID or domain).
    #[serde(default)]
    pub tenant_id: String,
    /// The application (client) id of the app registration.
    #[serde(default)]
    pub client_id: String,
    /// A file holding the client secret (preferred).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_file: Option<PathBuf>,
    /// The client secret inline or from `PULLPRINTD__GRAPH__CLIENT_SECRET`; filled from
    /// `client_secret_file` by [`Settings::load`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    /// A PEM certificate registered on the app (certificate credential).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_file: Option<PathBuf>,
    /// The PEM private key of that certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
    /// Overrides the Graph root (emulator, tests); `/v1.0` is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<url::Url>,
    /// Overrides the Entra ID login host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub login_url: Option<url::Url>,
    /// How long one Graph request may take before it is abandoned.
    #[serde(default = "default_request_timeout")]
    pub request_timeout: HumanDuration,
    /// The most Graph requests in flight at once (Graph throttles bursts).
    #[serde(default = "default_max_concurrent_requests")]
    pub max_concurrent_requests: usize,
}

impl GraphSettings {
    /// The Graph client's options from these settings: the cloud, ids, overrides and timeout, and the
    /// credential (the secret, or the certificate and key files, read now).
    pub fn client_options(&self) -> Result<GraphOptions, GraphError> {
        let settings = self;
        let cloud = settings.cloud;
        let credential = match (
            &settings.client_secret,
            &settings.certificate_file,
            &settings.private_key_file,
        ) {
            (Some(secret), _, _) => Credential::ClientSecret(secret.secret_string()),
            (None, Some(certificate), Some(key)) => {
                let certificate_pem = std::fs::read_to_string(certificate).map_err(|error| {
                    GraphError::Configuration(format!(
                        "graph.certificate_file: cannot read {}: {error}",
                        certificate.display()
                    ))
                })?;
                let private_key = read_secret_file("graph.private_key_file", key)
                    .map_err(|error| GraphError::Configuration(error.to_string()))?;
                Credential::Certificate {
                    certificate_pem,
                    private_key_pem: private_key.secret_string(),
                }
            }
            _ => {
                return Err(GraphError::Configuration(
                    "no credential: set graph.client_secret_file, or graph.certificate_file and \
                     graph.private_key_file"
                        .to_owned(),
                ));
            }
        };
        let mut options = GraphOptions::new(
            cloud,
            settings.tenant_id.trim(),
            settings.client_id.trim(),
            credential,
        );
        options.base_url = settings.base_url.clone();
        options.login_url = settings.login_url.clone();
        options.request_timeout = settings.request_timeout.0;
        options.max_concurrent_requests = settings.max_concurrent_requests;
        Ok(options)
    }
}

fn default_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_max_concurrent_requests() -> usize {
    16
}

/// `[printing]`: our task definition and the printers whose jobs are held.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PrintingSettings {
    /// The print task definition (found or created by `pullprintd setup`).
    #[serde(default)]
    pub task_definition_id: String,
    /// Printers that carry our task trigger.
    #[serde(default)]
    pub queue_printers: Vec<String>,
    /// Universal Print's native pull-print printers: a person signed in with Entra ID (`[phone]`)
    /// sees their jobs waiting there beside their held jobs, and releases them at the station's
    /// printer with their own delegated token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pull_printers: Vec<String>,
}

/// `[phone]`: people sign in with Entra ID (OpenID Connect, the app registration of `[graph]`),
/// from their phone by the QR code each kiosk shows, or at the kiosk itself.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PhoneSettings {
    /// Offers the QR code and "Sign in with Microsoft".
    #[serde(default)]
    pub enabled: bool,
    /// The address phones open (the stations' listener as people's phones reach it, usually
    /// through the reverse proxy); the app registration's redirect URI is
    /// `{public_url}/phone/callback`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<url::Url>,
    /// How long a kiosk's QR code can be used; the kiosk shows a new one every half of it.
    #[serde(default = "default_code_lifetime")]
    pub code_lifetime: HumanDuration,
}

fn default_code_lifetime() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}

impl Default for PhoneSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            public_url: None,
            code_lifetime: default_code_lifetime(),
        }
    }
}

impl PhoneSettings {
    /// The redirect URI registered on the app: `{public_url}/phone/callback`.
    pub fn redirect_uri(&self) -> Option<url::Url> {
        let base = self.public_url.as_ref()?;
        let mut url = base.clone();
        let path = format!("{}/phone/callback", base.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);
        Some(url)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !self.enabled {
            return Ok(());
        }
        let Some(url) = &self.public_url else {
            return Err(invalid(
                "phone.public_url",
                "enabled = true needs public_url, the https:// address phones open to reach the stations' \
                 listener (its /phone/callback is the redirect URI of the app registration)",
            ));
        };
        let loopback = url
            .host_str()
            .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
        if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
            return Err(invalid(
                "phone.public_url",
                "must be https:// (Entra ID accepts plain http only for localhost): publish the \
                 stations' listener through the reverse proxy with TLS",
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(invalid(
                "phone.public_url",
                "must not carry a query or fragment: give the base address, e.g. https://print.example.org",
            ));
        }
        let lifetime = self.code_lifetime.0;
        if lifetime < Duration::from_secs(10) || lifetime > Duration::from_secs(600) {
            return Err(invalid(
                "phone.code_lifetime",
                "must be between 10s and 10m: shorter codes expire while a phone opens them, longer ones \
                 can be photographed and used from elsewhere (60s is a good start)",
            ));
        }
        Ok(())
    }
}

/// How held jobs reach the daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IntakeMode {
    /// Change notifications only (needs a public HTTPS address).
    Webhook,
    /// Polling the task list only (branch offices without a public address).
    Poll,
    /// Notifications as the fast path, polling as the backstop.
    Both,
}

/// `[intake]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct IntakeSettings {
    /// `webhook`, `poll` or `both`.
    #[serde(default = "default_mode")]
    pub mode: IntakeMode,
    /// How often the task list is polled.
    #[serde(default = "default_poll_interval")]
    pub poll_interval: HumanDuration,
    /// The public HTTPS URL Graph posts notifications to (ends in `/graph/notifications`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_url: Option<url::Url>,
    /// A listener serving only `/graph/notifications` (what a reverse proxy publishes to the
    /// internet). Unset: the webhook is served on `[api] listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS on `listen`; read again on SIGHUP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for TLS on `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
}

fn default_mode() -> IntakeMode {
    IntakeMode::Both
}
fn default_poll_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for IntakeSettings {
    fn default() -> Self {
        Self {
            mode: default_mode(),
            poll_interval: default_poll_interval(),
            public_url: None,
            listen: None,
            tls_cert_file: None,
            tls_key_file: None,
        }
    }
}

/// `[[stations]]`: one release station.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StationSettings {
    /// A short name, shown in the audit log.
    pub id: String,
    /// The printer this station's releases print on (jobs held elsewhere are redirected here).
    pub printer_id: String,
    /// Stations people can walk between (a floor, a building): when this station's printer cannot
    /// print, a release names the printers of the other stations of the group that can. Stations
    /// without a group form one group together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// A file holding the station's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// The key inline (filled from `key_file` by [`Settings::load`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<Secret>,
}

/// `[release]`: what may be released, and for how long jobs are held.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSettings {
    /// Jobs not released within this time are aborted.
    #[serde(default = "default_hold_timeout")]
    pub hold_timeout: HumanDuration,
    /// The most copies a user may ask for.
    #[serde(default = "default_max_copies")]
    pub max_copies: u32,
    /// Users may only save paper and toner: one-sided → two-sided and colour → black and white, never back.
    #[serde(default)]
    pub saving_only: bool,
    /// How long a release call waits for Graph before answering `202 queued`.
    #[serde(default = "default_confirm_wait")]
    pub confirm_wait: HumanDuration,
}

impl ReleaseSettings {
    /// The options policy these settings set for every release.
    pub fn policy(&self) -> crate::job::ReleasePolicy {
        crate::job::ReleasePolicy {
            max_copies: self.max_copies,
            saving_only: self.saving_only,
        }
    }
}

fn default_hold_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(4 * 3600))
}
fn default_max_copies() -> u32 {
    99
}
fn default_confirm_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(3))
}

impl Default for ReleaseSettings {
    fn default() -> Self {
        Self {
            hold_timeout: default_hold_timeout(),
            max_copies: default_max_copies(),
            saving_only: false,
            confirm_wait: default_confirm_wait(),
        }
    }
}

/// `[users]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSettings {
    /// The users file: `[[user]]` upn, display_name, card, pin_hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Look cards the users file does not know up in Entra ID as a user's `employeeId`
    /// (needs the `User.Read.All` application permission).
    #[serde(default)]
    pub directory_lookup: bool,
    /// How long a directory card lookup (found or not) is remembered.
    #[serde(default = "default_directory_cache")]
    pub directory_cache: HumanDuration,
    /// A station session ends after this long without use (the kiosk signs out).
    #[serde(default = "default_session_idle")]
    pub session_idle: HumanDuration,
    /// A station session ends this long after sign-in, however busy.
    #[serde(default = "default_session_lifetime")]
    pub session_lifetime: HumanDuration,
    /// What a card number looks like (a regular expression the whole number must match, checked
    /// before any lookup; at most 64 characters are ever accepted).
    #[serde(default = "default_card_pattern")]
    pub card_pattern: String,
    /// A card alone does not sign in: the person also types their PIN.
    #[serde(default)]
    pub card_requires_pin: bool,
    /// The shortest PIN accepted.
    #[serde(default = "default_pin_min_length")]
    pub pin_min_length: usize,
    /// Failed sign-ins one station may have within `failure_window` before it answers 429.
    #[serde(default = "default_station_failure_budget")]
    pub station_failure_budget: u32,
    /// Failed sign-ins all stations together may have within `failure_window`.
    #[serde(default = "default_global_failure_budget")]
    pub global_failure_budget: u32,
    /// The sliding window of the failure budgets.
    #[serde(default = "default_failure_window")]
    pub failure_window: HumanDuration,
    /// The most directory card lookups remembered at once.
    #[serde(default = "default_directory_cache_size")]
    pub directory_cache_size: usize,
}

fn default_directory_cache() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_session_idle() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_session_lifetime() -> HumanDuration {
    HumanDuration(Duration::from_secs(15 * 60))
}
fn default_card_pattern() -> String {
    "[0-9A-Za-z]{1,64}".to_owned()
}
fn default_pin_min_length() -> usize {
    4
}
fn default_station_failure_budget() -> u32 {
    20
}
fn default_global_failure_budget() -> u32 {
    100
}
fn default_failure_window() -> HumanDuration {
    HumanDuration(Duration::from_secs(10 * 60))
}
fn default_directory_cache_size() -> usize {
    10_000
}

impl Default for UsersSettings {
    fn default() -> Self {
        Self {
            file: None,
            directory_lookup: false,
            directory_cache: default_directory_cache(),
            session_idle: default_session_idle(),
            session_lifetime: default_session_lifetime(),
            card_pattern: default_card_pattern(),
            card_requires_pin: false,
            pin_min_length: default_pin_min_length(),
            station_failure_budget: default_station_failure_budget(),
            global_failure_budget: default_global_failure_budget(),
            failure_window: default_failure_window(),
            directory_cache_size: default_directory_cache_size(),
        }
    }
}

/// `[api]`: the HTTP listeners of the stations and of the administrator.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    /// Where the kiosk page and the station API listen (and `/healthz`, `/readyz`; and the webhook
    /// while `[intake] listen` is unset).
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Where the admin API (`pullprintd jobs`, `release`, `delete`, `unlock`), the audit log and
    /// `/metrics` listen; loopback by default. With `listen` on port 0 (tests), the default takes a
    /// free port too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_listen: Option<SocketAddr>,
    /// PEM certificate chain for TLS on `listen` (with `tls_key_file`); read again on SIGHUP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key for TLS on `listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<PathBuf>,
    /// PEM certificate chain for TLS on `admin_listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_tls_cert_file: Option<PathBuf>,
    /// PEM private key for TLS on `admin_listen`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_tls_key_file: Option<PathBuf>,
    /// A connection must send a complete request head within this (idle ones are closed after it).
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// A request must be answered within this (408 otherwise).
    #[serde(default = "default_http_request_timeout")]
    pub request_timeout: HumanDuration,
    /// The most connections open at once, per listener; more are closed at once.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A file holding the admin key (CLI and admin endpoints).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key_file: Option<PathBuf>,
    /// The admin key inline (filled from `admin_key_file`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_key: Option<Secret>,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_http_request_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}
fn default_max_connections() -> usize {
    512
}

/// `[api] admin_listen` when unset: loopback port 9090 (a free port when `listen` asks for one).
pub const DEFAULT_ADMIN_PORT: u16 = 9090;

impl ApiSettings {
    /// Where the admin API listens: `admin_listen`, or loopback on [`DEFAULT_ADMIN_PORT`] (port 0
    /// when `listen` asked for port 0, so parallel test daemons do not collide).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_listen.unwrap_or_else(|| {
            let port = if self.listen.port() == 0 {
                0
            } else {
                DEFAULT_ADMIN_PORT
            };
            SocketAddr::from(([127, 0, 0, 1], port))
        })
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            admin_tls_cert_file: None,
            admin_tls_key_file: None,
            header_read_timeout: default_header_read_timeout(),
            request_timeout: default_http_request_timeout(),
            max_connections: default_max_connections(),
            admin_key_file: None,
            admin_key: None,
        }
    }
}

/// `[store]`: exactly one of `path` (SQLite, the default) and `url` (PostgreSQL).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    /// The SQLite database file; `/var/lib/pullprintd/state.db` when neither it nor `url` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// A PostgreSQL database (`postgres://user@host/database`), shared by several instances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<DatabaseUrl>,
    /// How long audit records are kept.
    #[serde(default = "default_audit_retention")]
    pub audit_retention: HumanDuration,
}

/// Where the store lives, as `[store]` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file: one daemon, holding the store's lock file.
    File(PathBuf),
    /// A PostgreSQL database: any number of daemons.
    Server(DatabaseUrl),
}

impl StoreSettings {
    /// The store `[store]` names: `url` when set, else `path`, else the default file.
    pub fn location(&self) -> StoreLocation {
        match (&self.url, &self.path) {
            (Some(url), _) => StoreLocation::Server(url.clone()),
            (None, Some(path)) => StoreLocation::File(path.clone()),
            (None, None) => StoreLocation::File(default_store_path()),
        }
    }

    /// The folder for files kept beside the store (the record of removed triggers): the SQLite
    /// file's folder, or the default state folder when the store is a database server.
    pub fn state_file_base(&self) -> PathBuf {
        self.path.clone().unwrap_or_else(default_store_path)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.path.is_some() && self.url.is_some() {
            return Err(invalid(
                "store.url",
                "both [store] path and [store] url are set: use path for a SQLite file (one \
                 instance) or url for PostgreSQL (several instances), not both",
            ));
        }
        Ok(())
    }
}

/// A PostgreSQL connection URL. Its password never prints: `Debug`, `Display` and the rendered
/// settings show `[REDACTED]` in its place.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(url::Url);

impl DatabaseUrl {
    /// Parses `text`, which must be a `postgres://` or `postgresql://` URL.
    pub fn parse(text: &str) -> Result<Self, String> {
        let url = url::Url::parse(text.trim()).map_err(|err| {
            format!("not a URL ({err}): write it as postgres://USER:PASSWORD@HOST:PORT/DATABASE")
        })?;
        match url.scheme() {
            "postgres" | "postgresql" => {}
            other => {
                return Err(format!(
                    "the scheme is {other:?}, but only PostgreSQL is supported here: write \
                     postgres://USER:PASSWORD@HOST:PORT/DATABASE, or use [store] path for a SQLite file"
                ));
            }
        }
        if url.host_str().is_none_or(str::is_empty) && !url.query_pairs().any(|(k, _)| k == "host")
        {
            return Err(
                "names no host: write postgres://USER:PASSWORD@HOST:PORT/DATABASE".to_owned(),
            );
        }
        Ok(Self(url))
    }

    /// The URL itself, password included; only for connecting.
    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The URL with its password replaced, for messages and logs.
    pub fn redacted(&self) -> String {
        let mut url = self.0.clone();
        if url.password().is_some() {
            // Cannot fail: the URL has a host (checked at parse), so it can carry a password.
            let _ = url.set_password(Some("[REDACTED]"));
        }
        url.to_string()
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.redacted())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

fn default_store_path() -> PathBuf {
    PathBuf::from("/var/lib/pullprintd/state.db")
}
fn default_audit_retention() -> HumanDuration {
    HumanDuration(Duration::from_secs(400 * 86_400))
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            path: None,
            url: None,
            audit_retention: default_audit_retention(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// A tracing filter: `info`, `debug`, `pullprintd=debug,info`… `RUST_LOG` wins when set.
    #[serde(default = "default_level")]
    pub level: String,
    /// `text`, `json` or `journald`.
    #[serde(default)]
    pub format: LogFormat,
}

fn default_level() -> String {
    "info".to_owned()
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: default_level(),
            format: LogFormat::default(),
        }
    }
}

impl Settings {
    /// Reads `path` (TOML), applies `PULLPRINTD__…` overrides, reads every secret file, validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        Self::load_for(path, SecretNeeds::ALL)
    }

    /// Like [`Settings::load`], reading only the secrets `needs` names (the others are checked to be
    /// configured, not read): `pullprintd jobs` needs only the admin key.
    pub fn load_for(path: &Path, needs: SecretNeeds) -> Result<Self, ConfigError> {
        // Opened first so that a permission problem is said as one: `Path::exists` answers false
        // for a file the user may not see, which read as "does not exist".
        if let Err(err) = std::fs::File::open(path) {
            return Err(ConfigError::Load(match err.kind() {
                std::io::ErrorKind::NotFound => format!(
                    "{} does not exist; copy config/pullprintd.toml from the distribution and edit it",
                    path.display()
                ),
                std::io::ErrorKind::PermissionDenied => {
                    permission_problem(path, "the configuration file")
                }
                _ => format!("cannot open {}: {err}", path.display()),
            }));
        }
        let source = config::Config::builder()
            .add_source(config::File::from(path).format(config::FileFormat::Toml))
            .add_source(environment());
        Self::from_builder(source, &SecretPaths::from_env(Some(path)), needs)
    }

    fn from_builder(
        builder: config::ConfigBuilder<config::builder::DefaultState>,
        paths: &SecretPaths,
        needs: SecretNeeds,
    ) -> Result<Self, ConfigError> {
        let raw = builder
            .build()
            .map_err(|err| ConfigError::Load(err.to_string()))?;
        let mut settings: Settings = raw
            .try_deserialize()
            .map_err(|err| ConfigError::Load(explain_serde(&err.to_string())))?;
        settings.resolve_secrets(paths, needs)?;
        settings.validate(needs)?;
        Ok(settings)
    }

    /// Parses TOML text (tests, and `check-config` on standard input), with the same validation;
    /// relative secret names are read from `$CREDENTIALS_DIRECTORY` or the current folder.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        Self::from_toml_with(text, &SecretPaths::from_env(None), SecretNeeds::ALL)
    }

    /// [`Settings::from_toml`] with explicit secret locations and needs.
    pub fn from_toml_with(
        text: &str,
        paths: &SecretPaths,
        needs: SecretNeeds,
    ) -> Result<Self, ConfigError> {
        Self::from_builder(
            config::Config::builder()
                .add_source(config::File::from_str(text, config::FileFormat::Toml)),
            paths,
            needs,
        )
    }

    fn resolve_secrets(
        &mut self,
        paths: &SecretPaths,
        needs: SecretNeeds,
    ) -> Result<(), ConfigError> {
        let graph = &mut self.graph;
        if let Some(path) = &graph.client_secret_file {
            if graph.client_secret.is_some() {
                return Err(invalid(
                    "graph.client_secret",
                    "both client_secret and client_secret_file are set; keep only client_secret_file",
                ));
            }
            if needs.graph {
                let path = paths.resolve(path);
                graph.client_secret = Some(read_secret_file("graph.client_secret_file", &path)?);
                graph.client_secret_file = Some(path);
            }
        }
        if needs.graph {
            // The Graph client reads these two when it is built; here they only get their real place.
            for file in [&mut graph.certificate_file, &mut graph.private_key_file] {
                if let Some(path) = file.as_mut() {
                    *path = paths.resolve(path);
                }
            }
        }
        for (index, station) in self.stations.iter_mut().enumerate() {
            if let Some(path) = &station.key_file {
                if station.key.is_some() {
                    return Err(invalid(
                        &format!("stations[{index}].key"),
                        "both key and key_file are set; keep only key_file",
                    ));
                }
                if needs.stations {
                    let path = paths.resolve(path);
                    station.key = Some(read_secret_file(
                        &format!("stations[{index}].key_file"),
                        &path,
                    )?);
                    station.key_file = Some(path);
                }
            }
        }
        if let Some(path) = &self.api.admin_key_file {
            if self.api.admin_key.is_some() {
                return Err(invalid(
                    "api.admin_key",
                    "both admin_key and admin_key_file are set; keep only admin_key_file",
                ));
            }
            if needs.admin {
                let path = paths.resolve(path);
                self.api.admin_key = Some(read_secret_file("api.admin_key_file", &path)?);
                self.api.admin_key_file = Some(path);
            }
        }
        Ok(())
    }

    fn validate(&self, needs: SecretNeeds) -> Result<(), ConfigError> {
        self.store.validate()?;
        self.phone.validate()?;
        if !self.printing.pull_printers.is_empty() && !self.phone.enabled {
            return Err(invalid(
                "printing.pull_printers",
                "jobs on pull-print printers can only be released with the person's own Entra ID sign-in: \
                 set [phone] enabled = true and public_url, or remove pull_printers",
            ));
        }
        let graph = &self.graph;
        if graph.tenant_id.trim().is_empty() {
            return Err(invalid(
                "graph.tenant_id",
                "missing: set it to your Entra ID tenant id (Entra admin center → Overview → Tenant ID)",
            ));
        }
        if graph.client_id.trim().is_empty() {
            return Err(invalid(
                "graph.client_id",
                "missing: set it to the Application (client) ID of the pullprintd app registration",
            ));
        }
        let has_secret = graph.client_secret.is_some() || graph.client_secret_file.is_some();
        let has_cert = graph.certificate_file.is_some() || graph.private_key_file.is_some();
        match (has_secret, has_cert) {
            (true, true) => {
                return Err(invalid(
                    "graph.client_secret",
                    "both a client secret and a certificate are set; use one credential: \
                     remove client_secret(_file) or certificate_file/private_key_file",
                ));
            }
            (false, false) => {
                return Err(invalid(
                    "graph.client_secret_file",
                    "no credential: set client_secret_file (or PULLPRINTD__GRAPH__CLIENT_SECRET), \
                     or certificate_file and private_key_file",
                ));
            }
            (false, true) => {
                for (key, path) in [
                    ("graph.certificate_file", &graph.certificate_file),
                    ("graph.private_key_file", &graph.private_key_file),
                ] {
                    let Some(path) = path else {
                        return Err(invalid(
                            key,
                            "missing: a certificate credential needs both certificate_file and private_key_file",
                        ));
                    };
                    if needs.graph {
                        read_secret_file(key, path)?;
                    }
                }
            }
            (true, false) => {}
        }
        if graph.max_concurrent_requests == 0 {
            return Err(invalid(
                "graph.max_concurrent_requests",
                "must be at least 1 (16 is a good start)",
            ));
        }
        if self.intake.poll_interval.0 < Duration::from_secs(1) {
            return Err(invalid(
                "intake.poll_interval",
                "must be at least 1s; Graph throttles tighter loops (30s is a good start)",
            ));
        }
        if self.intake.mode == IntakeMode::Webhook && self.intake.public_url.is_none() {
            return Err(invalid(
                "intake.public_url",
                "mode = \"webhook\" needs public_url, the HTTPS address Graph posts to \
                 (https://print.example.org/graph/notifications); or use mode = \"poll\"",
            ));
        }
        if let Some(url) = &self.intake.public_url {
            let loopback = url
                .host_str()
                .is_some_and(|h| h == "localhost" || h.starts_with("127.") || h == "[::1]");
            if url.scheme() != "https" && !loopback {
                return Err(invalid(
                    "intake.public_url",
                    format!(
                        "`{url}` is not HTTPS; Graph only delivers notifications to https:// URLs"
                    ),
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for (index, station) in self.stations.iter().enumerate() {
            let key = format!("stations[{index}]");
            if station.id.trim().is_empty() {
                return Err(invalid(
                    &format!("{key}.id"),
                    "empty; give the station a short name",
                ));
            }
            if !seen.insert(station.id.as_str()) {
                return Err(invalid(
                    &format!("{key}.id"),
                    format!(
                        "`{}` is used by two stations; ids must be unique",
                        station.id
                    ),
                ));
            }
            if station.printer_id.trim().is_empty() {
                return Err(invalid(
                    &format!("{key}.printer_id"),
                    "empty; set the Universal Print printer id where this station's releases print",
                ));
            }
            match &station.key {
                None if station.key_file.is_some() && !needs.stations => {}
                None => {
                    return Err(invalid(
                        &format!("{key}.key_file"),
                        format!(
                            "station `{}` has no key; create one with `openssl rand -hex 32 > FILE` and set key_file",
                            station.id
                        ),
                    ));
                }
                Some(secret) if secret.expose().len() < 16 => {
                    return Err(invalid(
                        &format!("{key}.key_file"),
                        format!(
                            "the key of station `{}` is shorter than 16 characters; use `openssl rand -hex 32`",
                            station.id
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        if let Some(admin) = &self.api.admin_key
            && admin.expose().len() < 16
        {
            return Err(invalid(
                "api.admin_key_file",
                "the admin key is shorter than 16 characters; use `openssl rand -hex 32`",
            ));
        }
        if self.users.session_idle.0 < Duration::from_secs(10) {
            return Err(invalid(
                "users.session_idle",
                "must be at least 10s, or nobody can finish choosing options (60s is usual)",
            ));
        }
        self.validate_users()?;
        self.validate_listeners()?;
        self.validate_keys()?;
        if self.release.max_copies == 0 {
            return Err(invalid("release.max_copies", "must be at least 1"));
        }
        self.rule_set()?;
        if self.release.hold_timeout.0 < Duration::from_secs(60) {
            return Err(invalid(
                "release.hold_timeout",
                "must be at least 1m (4h is usual)",
            ));
        }
        Ok(())
    }

    /// The `[[rules]]`, checked and ready to match.
    pub fn rule_set(&self) -> Result<crate::job::RuleSet, ConfigError> {
        crate::job::RuleSet::compile(&self.rules)
            .map_err(|error| invalid(&error.key, error.problem))
    }

    fn validate_listeners(&self) -> Result<(), ConfigError> {
        let api = &self.api;
        for (cert_key, cert, key_key, key) in [
            (
                "api.tls_cert_file",
                &api.tls_cert_file,
                "api.tls_key_file",
                &api.tls_key_file,
            ),
            (
                "api.admin_tls_cert_file",
                &api.admin_tls_cert_file,
                "api.admin_tls_key_file",
                &api.admin_tls_key_file,
            ),
            (
                "intake.tls_cert_file",
                &self.intake.tls_cert_file,
                "intake.tls_key_file",
                &self.intake.tls_key_file,
            ),
        ] {
            match (cert, key) {
                (Some(_), None) => {
                    return Err(invalid(
                        key_key,
                        format!("missing: {cert_key} is set; TLS needs both"),
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        cert_key,
                        format!("missing: {key_key} is set; TLS needs both"),
                    ));
                }
                _ => {}
            }
        }
        if self.intake.tls_cert_file.is_some() && self.intake.listen.is_none() {
            return Err(invalid(
                "intake.listen",
                "missing: intake.tls_cert_file is set but the webhook has no listener of its own",
            ));
        }
        let mut addrs = vec![
            ("api.listen", api.listen),
            ("api.admin_listen", api.admin_addr()),
        ];
        if let Some(listen) = self.intake.listen {
            addrs.push(("intake.listen", listen));
        }
        for (i, (a_key, a)) in addrs.iter().enumerate() {
            for (b_key, b) in &addrs[i + 1..] {
                if a.port() != 0 && a == b {
                    return Err(invalid(
                        b_key,
                        format!("`{b}` is also {a_key}; every listener needs its own address"),
                    ));
                }
            }
        }
        if api.header_read_timeout.0 < Duration::from_secs(1) {
            return Err(invalid(
                "api.header_read_timeout",
                "must be at least 1s (10s is usual)",
            ));
        }
        if api.request_timeout.0 < Duration::from_secs(1) {
            return Err(invalid(
                "api.request_timeout",
                "must be at least 1s (30s is usual)",
            ));
        }
        if api.max_connections == 0 {
            return Err(invalid(
                "api.max_connections",
                "must be at least 1 (512 is usual)",
            ));
        }
        Ok(())
    }

    /// Station keys are unique and none is the admin key (either would let one credential act as
    /// another); secret files readable by other users are warned about.
    fn validate_keys(&self) -> Result<(), ConfigError> {
        let admin = self.api.admin_key.as_ref();
        for (index, station) in self.stations.iter().enumerate() {
            let Some(key) = &station.key else { continue };
            if admin.is_some_and(|a| crate::secrets::constant_time_eq(a.expose(), key.expose())) {
                return Err(invalid(
                    &format!("stations[{index}].key_file"),
                    format!(
                        "the key of station `{}` is the admin key; give each its own (`openssl rand -hex 32`)",
                        station.id
                    ),
                ));
            }
            for other in &self.stations[..index] {
                if other
                    .key
                    .as_ref()
                    .is_some_and(|o| crate::secrets::constant_time_eq(o.expose(), key.expose()))
                {
                    return Err(invalid(
                        &format!("stations[{index}].key_file"),
                        format!(
                            "stations `{}` and `{}` have the same key; give each its own (`openssl rand -hex 32`)",
                            other.id, station.id
                        ),
                    ));
                }
            }
        }
        let mut files: Vec<(&str, &Path)> = Vec::new();
        files.extend(
            self.graph
                .client_secret_file
                .as_deref()
                .map(|p| ("graph.client_secret_file", p)),
        );
        files.extend(
            self.graph
                .private_key_file
                .as_deref()
                .map(|p| ("graph.private_key_file", p)),
        );
        files.extend(
            self.api
                .admin_key_file
                .as_deref()
                .map(|p| ("api.admin_key_file", p)),
        );
        files.extend(
            self.api
                .tls_key_file
                .as_deref()
                .map(|p| ("api.tls_key_file", p)),
        );
        files.extend(
            self.api
                .admin_tls_key_file
                .as_deref()
                .map(|p| ("api.admin_tls_key_file", p)),
        );
        files.extend(
            self.intake
                .tls_key_file
                .as_deref()
                .map(|p| ("intake.tls_key_file", p)),
        );
        for station in &self.stations {
            files.extend(
                station
                    .key_file
                    .as_deref()
                    .map(|p| ("stations.key_file", p)),
            );
        }
        for (key, path) in files {
            warn_if_readable_by_others(key, path);
        }
        Ok(())
    }

    fn validate_users(&self) -> Result<(), ConfigError> {
        let users = &self.users;
        if users.session_lifetime.0 < users.session_idle.0 {
            return Err(invalid(
                "users.session_lifetime",
                "is shorter than users.session_idle; make it longer (15m is usual)",
            ));
        }
        card_pattern(&users.card_pattern).map_err(|e| invalid("users.card_pattern", e))?;
        if users.pin_min_length == 0 || users.pin_min_length > 64 {
            return Err(invalid(
                "users.pin_min_length",
                "must be between 1 and 64 (4 is usual; 6 is better)",
            ));
        }
        for (key, value) in [
            ("users.station_failure_budget", users.station_failure_budget),
            ("users.global_failure_budget", users.global_failure_budget),
        ] {
            if value == 0 {
                return Err(invalid(
                    key,
                    "must be at least 1, or nobody can ever mistype (20 per station and 100 in all are usual)",
                ));
            }
        }
        if users.failure_window.0 < Duration::from_secs(1) {
            return Err(invalid(
                "users.failure_window",
                "must be at least 1s (10m is usual)",
            ));
        }
        if users.directory_cache_size == 0 {
            return Err(invalid(
                "users.directory_cache_size",
                "must be at least 1 (10000 is usual)",
            ));
        }
        Ok(())
    }

    /// The effective settings as TOML, with every secret shown as `[REDACTED]`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|err| format!("# cannot render: {err}\n"))
    }
}

/// Logs a warning when a secret file may be read by users other than its owner and group.
fn warn_if_readable_by_others(key: &str, path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o004 != 0
        {
            tracing::warn!(
                setting = key,
                path = %path.display(),
                "a secret file is readable by every user on this machine; run `chmod o-rwx {}`",
                path.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = (key, path);
}

/// `[users] card_pattern` compiled to match a whole card number.
pub fn card_pattern(pattern: &str) -> Result<regex::Regex, String> {
    if pattern.trim().is_empty() {
        return Err("empty; describe what the card reader types, e.g. \"[0-9]{8,10}\"".to_owned());
    }
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|error| {
        format!("`{pattern}` is not a regular expression ({error}); e.g. \"[0-9]{{8,10}}\"")
    })
}

fn environment() -> config::Environment {
    config::Environment::with_prefix(ENV_PREFIX)
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("printing.queue_printers")
}

/// serde's messages say "unknown field `tenant`, expected one of …"; add the fix.
fn explain_serde(message: &str) -> String {
    if message.contains("unknown field") {
        format!("{message}. Check the spelling against config/pullprintd.toml")
    } else if message.contains("missing field") {
        format!("{message}. Add it to the configuration file (see config/pullprintd.toml)")
    } else {
        message.to_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const MINIMAL: &str = r#"
        [graph]
        tenant_id = "contoso.onmicrosoft.com"
        client_id = "00000000-0000-0000-0000-000000000001"
        client_secret = "s3cret-value"
    "#;

    fn err(text: &str) -> String {
        Settings::from_toml(text).unwrap_err().to_string()
    }

    fn stations(first: &str, second: &str) -> String {
        format!(
            "{MINIMAL}\n[[stations]]\nid = \"a\"\nprinter_id = \"p\"\nkey = \"{first}\"\n\
             [[stations]]\nid = \"b\"\nprinter_id = \"p\"\nkey = \"{second}\"\n"
        )
    }

    #[test]
    fn two_stations_with_one_key_or_a_station_with_the_admin_key_are_refused() {
        let e = err(&stations("0123456789abcdef-one", "0123456789abcdef-one"));
        assert!(
            e.contains("stations[1].key_file") && e.contains("same key"),
            "{e}"
        );
        let e = err(&format!(
            "{}\n[api]\nadmin_key = \"0123456789abcdef-one\"\n",
            stations("0123456789abcdef-one", "0123456789abcdef-two")
        ));
        assert!(
            e.contains("stations[0].key_file") && e.contains("admin key"),
            "{e}"
        );
        assert!(
            Settings::from_toml(&stations("0123456789abcdef-one", "0123456789abcdef-two")).is_ok()
        );
    }

    #[test]
    fn listeners_need_their_own_addresses_and_tls_needs_both_files() {
        let e = err(&format!(
            "{MINIMAL}\n[api]\nlisten = \"127.0.0.1:8080\"\nadmin_listen = \"127.0.0.1:8080\"\n"
        ));
        assert!(e.contains("api.admin_listen"), "{e}");
        let e = err(&format!("{MINIMAL}\n[api]\ntls_cert_file = \"/x.crt\"\n"));
        assert!(e.contains("api.tls_key_file"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[intake]\ntls_cert_file = \"/x.crt\"\ntls_key_file = \"/x.key\"\n"
        ));
        assert!(e.contains("intake.listen"), "{e}");
        let s = Settings::from_toml(MINIMAL).unwrap();
        assert_eq!(s.api.admin_addr().to_string(), "127.0.0.1:9090");
        assert!(
            s.intake.listen.is_none(),
            "the webhook stays on api.listen by default"
        );
    }

    #[test]
    fn a_card_pattern_that_is_not_a_regular_expression_is_refused_with_an_example() {
        let e = err(&format!("{MINIMAL}\n[users]\ncard_pattern = \"[0-9\"\n"));
        assert!(
            e.contains("users.card_pattern") && e.contains("[0-9]{8,10}"),
            "{e}"
        );
        let pattern = card_pattern("[0-9]{4,10}").unwrap();
        assert!(pattern.is_match("0004521337"));
        assert!(!pattern.is_match("ada@contoso.com"));
        assert!(
            !pattern.is_match("12345678901"),
            "the whole number must match"
        );
    }

    #[test]
    fn rules_load_through_the_configuration_and_a_bad_one_is_named() {
        let good = format!(
            "{MINIMAL}\n[[rules]]\nname = \"S2S grayscale\"\naction = \"release\"\n\
             match.printers = [\"p1\"]\nforce.color_mode = \"grayscale\"\n\
             match.time = {{ from = \"07:00\", to = \"19:00\", zone = \"Europe/Berlin\" }}\n"
        );
        let settings = Settings::from_toml(&good).unwrap();
        assert_eq!(settings.rule_set().unwrap().len(), 1);
        assert!(settings.to_redacted_toml().contains("S2S grayscale"));
        let bad = format!(
            "{MINIMAL}\n[[rules]]\nname = \"S2S\"\naction = \"release\"\n\
             force.duplex_mode = \"twoSidedLongEdge\"\n"
        );
        let message = err(&bad);
        assert!(
            message.contains("rules[0].force.duplex_mode") && message.contains("rule 0 \"S2S\""),
            "{message}"
        );
    }

    #[test]
    fn a_minimal_file_gets_the_documented_defaults() {
        let s = Settings::from_toml(MINIMAL).unwrap();
        assert_eq!(s.graph.cloud, Cloud::Global);
        assert_eq!(s.intake.mode, IntakeMode::Both);
        assert_eq!(s.intake.poll_interval.0, Duration::from_secs(30));
        assert_eq!(s.release.hold_timeout.0, Duration::from_secs(4 * 3600));
        assert_eq!(s.api.listen, default_listen());
    }

    #[test]
    fn the_store_is_a_sqlite_file_by_default_and_a_postgresql_database_when_a_url_is_given() {
        let s = Settings::from_toml(MINIMAL).unwrap();
        assert_eq!(
            s.store.location(),
            StoreLocation::File(PathBuf::from("/var/lib/pullprintd/state.db"))
        );
        let s = Settings::from_toml(&format!(
            "{MINIMAL}\n[store]\nurl = \"postgres://pullprintd:hunter2@db.example.org:5432/print\"\n"
        ))
        .unwrap();
        let StoreLocation::Server(url) = s.store.location() else {
            panic!("a url names a database server");
        };
        assert_eq!(url.url().password(), Some("hunter2"));
        let shown = s.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("db.example.org"), "{shown}");
        assert!(!format!("{url:?} {url}").contains("hunter2"));
    }

    #[test]
    fn a_store_with_both_a_path_and_a_url_or_a_url_of_another_database_is_refused_naming_the_fix() {
        let both = err(&format!(
            "{MINIMAL}\n[store]\npath = \"/var/lib/pullprintd/state.db\"\n\
             url = \"postgres://db.example.org/print\"\n"
        ));
        assert!(
            both.contains("store.url") && both.contains("not both"),
            "{both}"
        );
        let mysql = err(&format!(
            "{MINIMAL}\n[store]\nurl = \"mysql://db.example.org/print\"\n"
        ));
        assert!(
            mysql.contains("postgres://") && mysql.contains("[store] path"),
            "{mysql}"
        );
        let hostless = err(&format!(
            "{MINIMAL}\n[store]\nurl = \"postgres:///print\"\n"
        ));
        assert!(hostless.contains("no host"), "{hostless}");
    }

    #[test]
    fn the_example_configuration_knows_only_real_keys() {
        let example = include_str!("../config/pullprintd.toml").replace(
            "client_secret_file = \"secrets/client-secret\"",
            "client_secret = \"from-the-environment\"",
        );
        let s = Settings::from_toml(&example).unwrap();
        assert_eq!(s.store.audit_retention.0, Duration::from_secs(400 * 86_400));
    }

    #[test]
    fn durations_print_in_their_largest_exact_unit() {
        let shown = |secs| HumanDuration(Duration::from_secs(secs)).to_string();
        assert_eq!(shown(400 * 86_400), "400d");
        assert_eq!(shown(4 * 3_600), "4h");
        assert_eq!(shown(90), "90s");
        assert_eq!(shown(120), "2m");
    }

    #[test]
    fn human_durations_are_understood() {
        let s = Settings::from_toml(&format!(
            "{MINIMAL}\n[intake]\nmode = \"poll\"\npoll_interval = \"1m 30s\"\n[release]\nhold_timeout = \"2h\"\n"
        ))
        .unwrap();
        assert_eq!(s.intake.poll_interval.0, Duration::from_secs(90));
        assert_eq!(s.release.hold_timeout.0, Duration::from_secs(7200));
    }

    #[test]
    fn a_bad_duration_names_the_value_and_the_expected_form() {
        let e = err(&format!("{MINIMAL}\n[intake]\npoll_interval = \"soon\"\n"));
        assert!(e.contains("`soon` is not a duration"), "{e}");
        assert!(e.contains("\"30s\""), "{e}");
    }

    #[test]
    fn a_misspelt_key_is_an_error_not_a_silent_default() {
        let e = err(&format!("{MINIMAL}\n[intake]\npol_interval = \"30s\"\n"));
        assert!(e.contains("pol_interval"), "{e}");
    }

    #[test]
    fn a_missing_tenant_says_where_to_find_it() {
        let e = err("[graph]\nclient_id = \"x\"\nclient_secret = \"y\"\n");
        assert!(e.contains("graph.tenant_id"), "{e}");
        assert!(e.contains("Tenant ID"), "{e}");
    }

    #[test]
    fn the_china_cloud_is_refused_with_the_reason() {
        let e = err(&format!("{MINIMAL}\n").replace("[graph]", "[graph]\ncloud = \"china\""));
        assert!(
            e.contains("not available in the China cloud operated by 21Vianet"),
            "{e}"
        );
    }

    #[test]
    fn an_unknown_cloud_lists_the_known_ones() {
        let e = err(&MINIMAL.replace("[graph]", "[graph]\ncloud = \"mars\""));
        assert!(e.contains("unknown cloud \"mars\""), "{e}");
        assert!(
            e.contains("\"global\", \"usgov\" (GCC High, L4) or \"dod\""),
            "{e}"
        );
    }

    #[test]
    fn a_secret_and_a_certificate_together_are_refused() {
        let e = err(&format!(
            "{MINIMAL}certificate_file = \"/x.pem\"\nprivate_key_file = \"/y.pem\"\n"
        ));
        assert!(e.contains("use one credential"), "{e}");
    }

    #[test]
    fn no_credential_at_all_is_refused_with_the_choices() {
        let e = err("[graph]\ntenant_id = \"t\"\nclient_id = \"c\"\n");
        assert!(e.contains("no credential"), "{e}");
    }

    #[test]
    fn an_unreadable_key_file_is_named() {
        let e = err(&format!(
            "{MINIMAL}\n[[stations]]\nid = \"lobby\"\nprinter_id = \"p\"\nkey_file = \"/nonexistent/lobby.key\"\n"
        ));
        assert!(e.contains("stations[0].key_file"), "{e}");
        assert!(e.contains("/nonexistent/lobby.key"), "{e}");
    }

    #[test]
    fn secret_files_are_read_with_surrounding_whitespace_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "  the-secret-value\n").unwrap();
        let text = format!(
            "[graph]\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret_file = \"{}\"\n",
            secret.display()
        );
        let s = Settings::from_toml(&text).unwrap();
        assert_eq!(s.graph.client_secret.unwrap().expose(), "the-secret-value");
    }

    #[test]
    fn secrets_never_appear_in_the_printed_settings_or_debug_output() {
        let text = format!(
            "{MINIMAL}\n[[stations]]\nid = \"lobby\"\nprinter_id = \"p\"\nkey = \"station-key-0123456789\"\n"
        );
        let s = Settings::from_toml(&text).unwrap();
        let printed = s.to_redacted_toml();
        let debug = format!("{s:?}");
        for shown in [&printed, &debug] {
            assert!(!shown.contains("s3cret-value"), "{shown}");
            assert!(!shown.contains("station-key-0123456789"), "{shown}");
            assert!(shown.contains("[REDACTED]"), "{shown}");
        }
    }

    #[test]
    fn a_relative_secret_name_is_a_credential_under_systemd_and_a_file_beside_the_configuration_else()
     {
        let shell = SecretPaths {
            credentials_directory: None,
            config_dir: Some(PathBuf::from("/etc/pullprintd")),
        };
        let service = SecretPaths {
            credentials_directory: Some(PathBuf::from("/run/credentials/pullprintd.service")),
            ..shell.clone()
        };
        let name = Path::new("secrets/admin.key");
        assert_eq!(
            shell.resolve(name),
            Path::new("/etc/pullprintd/secrets/admin.key")
        );
        assert_eq!(
            service.resolve(name),
            Path::new("/run/credentials/pullprintd.service/secrets_admin.key")
        );
        let absolute = Path::new("/srv/keys/admin.key");
        assert_eq!(shell.resolve(absolute), absolute);
        assert_eq!(service.resolve(absolute), absolute);
    }

    #[test]
    fn only_the_secrets_a_command_needs_are_read() {
        let text = "[graph]\ntenant_id = \"t\"\nclient_id = \"c\"\n\
                    client_secret_file = \"/nonexistent/client-secret\"\n\
                    [[stations]]\nid = \"lobby\"\nprinter_id = \"p\"\nkey_file = \"/nonexistent/lobby.key\"\n";
        let paths = SecretPaths::default();
        let settings = Settings::from_toml_with(text, &paths, SecretNeeds::ADMIN).unwrap();
        assert!(settings.graph.client_secret.is_none());
        let e = Settings::from_toml_with(text, &paths, SecretNeeds::GRAPH)
            .unwrap_err()
            .to_string();
        assert!(e.contains("graph.client_secret_file"), "{e}");
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn a_short_station_key_is_refused() {
        let e = err(&format!(
            "{MINIMAL}\n[[stations]]\nid = \"lobby\"\nprinter_id = \"p\"\nkey = \"short\"\n"
        ));
        assert!(e.contains("shorter than 16"), "{e}");
    }

    #[test]
    fn webhook_mode_without_a_public_url_is_refused() {
        let e = err(&format!("{MINIMAL}\n[intake]\nmode = \"webhook\"\n"));
        assert!(e.contains("intake.public_url"), "{e}");
    }

    #[test]
    fn phone_release_needs_an_https_public_url_without_a_query_and_a_sane_code_lifetime() {
        let e = err(&format!("{MINIMAL}\n[phone]\nenabled = true\n"));
        assert!(
            e.contains("phone.public_url") && e.contains("needs public_url"),
            "{e}"
        );
        let e = err(&format!(
            "{MINIMAL}\n[phone]\nenabled = true\npublic_url = \"http://print.example.org\"\n"
        ));
        assert!(e.contains("phone.public_url") && e.contains("https"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[phone]\nenabled = true\npublic_url = \"https://print.example.org/?a=b\"\n"
        ));
        assert!(e.contains("query"), "{e}");
        let e = err(&format!(
            "{MINIMAL}\n[phone]\nenabled = true\npublic_url = \"https://print.example.org\"\ncode_lifetime = \"2s\"\n"
        ));
        assert!(e.contains("phone.code_lifetime"), "{e}");
        let settings = Settings::from_toml(&format!(
            "{MINIMAL}\n[phone]\nenabled = true\npublic_url = \"https://print.example.org/pull/\"\n"
        ))
        .unwrap();
        assert_eq!(
            settings.phone.redirect_uri().unwrap().as_str(),
            "https://print.example.org/pull/phone/callback"
        );
        // Loopback may be plain http (the demo, a test).
        Settings::from_toml(&format!(
            "{MINIMAL}\n[phone]\nenabled = true\npublic_url = \"http://127.0.0.1:8080\"\n"
        ))
        .unwrap();
    }

    #[test]
    fn pull_printers_without_phone_sign_in_are_refused_with_the_reason() {
        let e = err(&format!(
            "{MINIMAL}\n[printing]\npull_printers = [\"p1\"]\n"
        ));
        assert!(
            e.contains("printing.pull_printers") && e.contains("[phone] enabled"),
            "{e}"
        );
    }

    #[test]
    fn a_plain_http_public_url_is_refused() {
        let e = err(&format!(
            "{MINIMAL}\n[intake]\npublic_url = \"http://print.example.org/graph/notifications\"\n"
        ));
        assert!(e.contains("not HTTPS"), "{e}");
    }

    #[test]
    fn the_graph_client_options_are_built_from_the_graph_settings() {
        let settings: GraphSettings = toml::from_str(
            r#"
            cloud = "usgov"
            tenant_id = "contoso.onmicrosoft.us"
            client_id = "c1"
            client_secret = "s"
            request_timeout = "10s"
            max_concurrent_requests = 4
            "#,
        )
        .unwrap();
        let options = settings.client_options().unwrap();
        assert_eq!(options.cloud, crate::graph::Cloud::UsGov);
        assert_eq!(options.request_timeout, std::time::Duration::from_secs(10));
        assert_eq!(options.max_concurrent_requests, 4);
        assert!(matches!(
            options.credential,
            crate::graph::Credential::ClientSecret(_)
        ));

        let error = toml::from_str::<GraphSettings>("cloud = \"china\"\nclient_secret = \"s\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("not available"), "{error}");
    }
}
