//! Ready-made scenarios: the emulator set up with printers and our task definition, the daemon's
//! configuration pointing at it, a users file, and the whole daemon running in this process.
//!
//! Written once for `pullprintd demo`, the benchmarks and the integration tests, so the world they
//! run in and the configuration they run with cannot drift apart:
//! - [`Scenario`] describes the emulated tenant (printers, which of them hold jobs, the task
//!   definition, pull printers, the people of the directory) and [`Scenario::start`] gives the
//!   running [`Tenant`];
//! - [`DaemonConfig`] is the daemon's configuration as typed fields, prefilled by
//!   [`Tenant::daemon_config`] and rendered to the TOML an administrator would write
//!   ([`DaemonConfig::to_toml`], also what the real binary is started with);
//! - [`write_users_file`] writes the people who sign in at a station;
//! - [`RunningDaemon`] is the whole [`App`] serving on its listener until stopped.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{
    DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DirectoryUser, Emulator, EmulatorError, EmulatorOptions,
    NewPrinter, NewPullPrinter,
};
use crate::app::{App, AppError, AppOptions};
use crate::config::Settings;
use crate::intake::poller::Poller;
use crate::intake::webhook::Webhook;
use crate::release::service::ReleaseService;
use crate::store::Store;

/// A printer of a [`Scenario`].
#[derive(Debug, Clone)]
pub struct PrinterSpec {
    /// Its display name, also how [`Tenant::printer`] finds it.
    pub name: String,
    /// Whether it carries our task trigger, so its jobs are held for release.
    pub holds_jobs: bool,
    /// Its capabilities (the emulator's defaults when `None`).
    pub capabilities: Option<Value>,
}

/// A pull printer of a [`Scenario`] (native pull printing).
#[derive(Debug, Clone)]
pub struct PullPrinterSpec {
    /// Its display name, also how [`Tenant::pull_printer`] finds it.
    pub name: String,
    /// The names of its member printers (printers of the scenario).
    pub members: Vec<String>,
}

/// The emulated tenant to start: emulator options, printers and the task definition.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// How the emulator runs (page size, faults, recording…).
    pub options: EmulatorOptions,
    /// The printers, created in this order.
    pub printers: Vec<PrinterSpec>,
    /// The app that owns the task definition (the emulator's default app when `None`).
    pub definition_app: Option<String>,
    /// The task definition's display name.
    pub definition_name: String,
    /// Pull printers, created after the printers.
    pub pull_printers: Vec<PullPrinterSpec>,
    /// People of the emulated directory (who the sign-in page offers, and job owners).
    pub people: Vec<DirectoryUser>,
}

impl Default for Scenario {
    fn default() -> Self {
        Self {
            options: EmulatorOptions::default(),
            printers: Vec::new(),
            definition_app: None,
            definition_name: "Pull printing".to_owned(),
            pull_printers: Vec::new(),
            people: Vec::new(),
        }
    }
}

impl Scenario {
    /// The usual test world: "Queue", which holds jobs (it carries our trigger), and "Lobby", a plain
    /// printer (the find-me destination).
    pub fn queue_and_lobby() -> Self {
        Self::default()
            .printer("Queue", true)
            .printer("Lobby", false)
    }

    /// Runs the emulator with `options`.
    #[must_use]
    pub fn options(mut self, options: EmulatorOptions) -> Self {
        self.options = options;
        self
    }

    /// Adds a printer with the emulator's default capabilities.
    #[must_use]
    pub fn printer(self, name: &str, holds_jobs: bool) -> Self {
        self.printer_spec(PrinterSpec {
            name: name.to_owned(),
            holds_jobs,
            capabilities: None,
        })
    }

    /// Adds a printer.
    #[must_use]
    pub fn printer_spec(mut self, printer: PrinterSpec) -> Self {
        self.printers.push(printer);
        self
    }

    /// Adds a pull printer whose members are the scenario's printers named `members`.
    #[must_use]
    pub fn pull_printer(mut self, name: &str, members: &[&str]) -> Self {
        self.pull_printers.push(PullPrinterSpec {
            name: name.to_owned(),
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        });
        self
    }

    /// Adds a person to the emulated directory.
    #[must_use]
    pub fn person(mut self, upn: &str, display_name: &str) -> Self {
        self.people.push(DirectoryUser {
            id: String::new(),
            user_principal_name: upn.to_owned(),
            display_name: display_name.to_owned(),
            employee_id: None,
        });
        self
    }

    /// Names the task definition and the app that owns it.
    #[must_use]
    pub fn definition(mut self, app: Option<&str>, name: &str) -> Self {
        self.definition_app = app.map(str::to_owned);
        self.definition_name = name.to_owned();
        self
    }

    /// Starts the emulator on loopback and creates the printers, the definition and the triggers.
    pub async fn start(self) -> Result<Tenant, EmulatorError> {
        let emulator = Emulator::start(self.options).await?;
        let control = emulator.control();
        let mut printers = Vec::with_capacity(self.printers.len());
        for spec in self.printers {
            let created = control.create_printer(NewPrinter {
                display_name: spec.name.clone(),
                capabilities: spec.capabilities,
                ..NewPrinter::default()
            })?;
            let id = created["id"]
                .as_str()
                .ok_or_else(|| EmulatorError::Control("a created printer has no id".to_owned()))?
                .to_owned();
            printers.push((spec.name, id, spec.holds_jobs));
        }
        let definition =
            control.create_task_definition(self.definition_app.as_deref(), &self.definition_name);
        for (_, id, holds_jobs) in &printers {
            if *holds_jobs {
                control.create_trigger(id, &definition)?;
            }
        }
        for person in self.people {
            control.add_user(person);
        }
        let mut pull_printers = Vec::with_capacity(self.pull_printers.len());
        for spec in self.pull_printers {
            let mut members = Vec::with_capacity(spec.members.len());
            for member in &spec.members {
                let id = printers
                    .iter()
                    .find(|(name, _, _)| name == member)
                    .map(|(_, id, _)| id.clone())
                    .ok_or_else(|| {
                        EmulatorError::Control(format!(
                            "the pull printer {:?} names {member:?}, which is no printer of the scenario",
                            spec.name
                        ))
                    })?;
                members.push(id);
            }
            let created = control.create_pull_printer(NewPullPrinter {
                display_name: spec.name.clone(),
                members,
                ..NewPullPrinter::default()
            })?;
            let id = created["id"]
                .as_str()
                .ok_or_else(|| {
                    EmulatorError::Control("a created pull printer has no id".to_owned())
                })?
                .to_owned();
            pull_printers.push((spec.name, id));
        }
        Ok(Tenant {
            emulator,
            printers,
            definition,
            pull_printers,
        })
    }
}

/// A started [`Scenario`]: the emulator and the ids it gave.
#[derive(Debug, Clone)]
pub struct Tenant {
    /// The running emulator.
    pub emulator: Emulator,
    /// Name, id and whether it holds jobs, per printer, in the scenario's order.
    pub printers: Vec<(String, String, bool)>,
    /// Our task definition's id.
    pub definition: String,
    /// Name and id per pull printer, in the scenario's order.
    pub pull_printers: Vec<(String, String)>,
}

impl Tenant {
    /// The id of the printer named `name`.
    ///
    /// # Panics
    /// When the scenario has no such printer: a mistake in the calling code, not input.
    pub fn printer(&self, name: &str) -> &str {
        self.printers
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, id, _)| id.as_str())
            .unwrap_or_else(|| panic!("the scenario has no printer named {name:?}"))
    }

    /// The id of the pull printer named `name`.
    ///
    /// # Panics
    /// When the scenario has no such pull printer: a mistake in the calling code, not input.
    pub fn pull_printer(&self, name: &str) -> &str {
        self.pull_printers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, id)| id.as_str())
            .unwrap_or_else(|| panic!("the scenario has no pull printer named {name:?}"))
    }

    /// The ids of the printers that hold jobs, in the scenario's order.
    pub fn held_printers(&self) -> Vec<String> {
        self.printers
            .iter()
            .filter(|(_, _, holds)| *holds)
            .map(|(_, id, _)| id.clone())
            .collect()
    }

    /// The emulator's root without the trailing slash: `base_url`, `login_url`, and the token
    /// scope's resource (`{root}/.default`).
    pub fn root(&self) -> String {
        self.emulator
            .url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    /// The daemon's configuration against this tenant with the demo app's credentials, every
    /// job-holding printer as a queue printer, and the store at `store`; the rest is left to the
    /// caller.
    pub fn daemon_config(&self, store: &Path) -> DaemonConfig {
        DaemonConfig {
            tenant_id: self.emulator.tenant_id().to_owned(),
            client_id: DEMO_CLIENT_ID.to_owned(),
            client_secret: DEMO_CLIENT_SECRET.to_owned(),
            graph_root: self.root(),
            request_timeout: None,
            max_concurrent_requests: None,
            task_definition_id: self.definition.clone(),
            queue_printers: self.held_printers(),
            pull_printers: Vec::new(),
            intake: String::new(),
            release: String::new(),
            stations: Vec::new(),
            users_file: None,
            users: String::new(),
            listen: "127.0.0.1:0".to_owned(),
            admin_listen: "127.0.0.1:0".to_owned(),
            admin_key: None,
            store: store.to_owned(),
            store_url: None,
            extra: String::new(),
        }
    }
}

/// A station of a [`DaemonConfig`].
#[derive(Debug, Clone)]
pub struct StationSpec {
    /// The station's id.
    pub id: String,
    /// The printer it releases on.
    pub printer_id: String,
    /// Its key.
    pub key: String,
}

/// The daemon's configuration as typed fields; [`DaemonConfig::to_toml`] writes the file.
///
/// Sections whose keys vary from one use to the next (`[intake]`, `[release]`, the rest of
/// `[users]`) are TOML lines, so a scenario can set any key the daemon knows.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    /// `graph.tenant_id`.
    pub tenant_id: String,
    /// `graph.client_id`.
    pub client_id: String,
    /// `graph.client_secret`.
    pub client_secret: String,
    /// `graph.base_url` and `graph.login_url`.
    pub graph_root: String,
    /// `graph.request_timeout` (e.g. `"5s"`).
    pub request_timeout: Option<String>,
    /// `graph.max_concurrent_requests`.
    pub max_concurrent_requests: Option<usize>,
    /// `printing.task_definition_id`.
    pub task_definition_id: String,
    /// `printing.queue_printers`.
    pub queue_printers: Vec<String>,
    /// `printing.pull_printers` (written only when not empty).
    pub pull_printers: Vec<String>,
    /// The lines of `[intake]` (the section is written only when not empty).
    pub intake: String,
    /// The lines of `[release]` (the section is written only when not empty).
    pub release: String,
    /// `[[stations]]`.
    pub stations: Vec<StationSpec>,
    /// `users.file`.
    pub users_file: Option<PathBuf>,
    /// Further lines of `[users]` (the section is written when this or the file is set).
    pub users: String,
    /// `api.listen`.
    pub listen: String,
    /// `api.admin_listen` (any free loopback port by default, so parallel daemons never share one).
    pub admin_listen: String,
    /// `api.admin_key`.
    pub admin_key: Option<String>,
    /// `store.path`.
    pub store: PathBuf,
    /// `store.url`: a PostgreSQL store instead of the file at `store` when set.
    pub store_url: Option<String>,
    /// TOML appended at the end (further sections).
    pub extra: String,
}

impl DaemonConfig {
    /// The configuration file's text.
    pub fn to_toml(&self) -> String {
        let mut text = String::new();
        let _ = write!(
            text,
            "\n[graph]\ntenant_id = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\n\
             base_url = \"{root}\"\nlogin_url = \"{root}\"\n",
            self.tenant_id,
            self.client_id,
            self.client_secret,
            root = self.graph_root,
        );
        if let Some(timeout) = &self.request_timeout {
            let _ = writeln!(text, "request_timeout = \"{timeout}\"");
        }
        if let Some(max) = self.max_concurrent_requests {
            let _ = writeln!(text, "max_concurrent_requests = {max}");
        }
        let queue: Vec<String> = self
            .queue_printers
            .iter()
            .map(|id| format!("\"{id}\""))
            .collect();
        let _ = write!(
            text,
            "\n[printing]\ntask_definition_id = \"{}\"\nqueue_printers = [{}]\n",
            self.task_definition_id,
            queue.join(", ")
        );
        if !self.pull_printers.is_empty() {
            let pull: Vec<String> = self
                .pull_printers
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect();
            let _ = writeln!(text, "pull_printers = [{}]", pull.join(", "));
        }
        if !self.intake.is_empty() {
            let _ = write!(text, "\n[intake]\n{}\n", self.intake.trim_end());
        }
        if !self.release.is_empty() {
            let _ = write!(text, "\n[release]\n{}\n", self.release.trim_end());
        }
        for station in &self.stations {
            let _ = write!(
                text,
                "\n[[stations]]\nid = \"{}\"\nprinter_id = \"{}\"\nkey = \"{}\"\n",
                station.id, station.printer_id, station.key
            );
        }
        if self.users_file.is_some() || !self.users.is_empty() {
            text.push_str("\n[users]\n");
            if let Some(file) = &self.users_file {
                let _ = writeln!(text, "file = \"{}\"", file.display());
            }
            if !self.users.is_empty() {
                let _ = writeln!(text, "{}", self.users.trim_end());
            }
        }
        let _ = write!(
            text,
            "\n[api]\nlisten = \"{}\"\nadmin_listen = \"{}\"\n",
            self.listen, self.admin_listen
        );
        if let Some(key) = &self.admin_key {
            let _ = writeln!(text, "admin_key = \"{key}\"");
        }
        match &self.store_url {
            Some(url) => {
                let _ = write!(text, "\n[store]\nurl = \"{url}\"\n");
            }
            None => {
                let _ = write!(text, "\n[store]\npath = \"{}\"\n", self.store.display());
            }
        }
        if !self.extra.is_empty() {
            let _ = write!(text, "\n{}\n", self.extra.trim_end());
        }
        text
    }

    /// The daemon's [`Settings`], read from [`DaemonConfig::to_toml`] as the daemon reads a file.
    pub fn settings(&self) -> Result<Settings, AppError> {
        Settings::from_toml(&self.to_toml()).map_err(|err| AppError::Config(err.to_string()))
    }
}

/// A person in a users file.
#[derive(Debug, Clone)]
pub struct Person {
    /// User principal name.
    pub upn: String,
    /// Display name.
    pub display_name: String,
    /// Badge card number.
    pub card: String,
    /// The PIN, stored as its argon2id hash; `None` for card-only sign-in.
    pub pin: Option<String>,
    /// People (UPNs) who may see and release this person's jobs.
    pub delegates: Vec<String>,
    /// An Entra ID group (object id) whose members may see and release this person's jobs.
    pub delegate_group: Option<String>,
}

/// Writes a users file with `people` to `path`, after the comment lines of `header` (may be empty).
pub fn write_users_file(path: &Path, header: &str, people: &[Person]) -> std::io::Result<()> {
    let mut text = String::from(header);
    for person in people {
        let _ = write!(
            text,
            "\n[[user]]\nupn = \"{}\"\ndisplay_name = \"{}\"\ncard = \"{}\"\n",
            person.upn, person.display_name, person.card
        );
        if let Some(pin) = &person.pin {
            let hash = crate::station::users::hash_pin(pin).map_err(std::io::Error::other)?;
            let _ = writeln!(text, "pin_hash = \"{hash}\"");
        }
        if !person.delegates.is_empty() {
            let quoted: Vec<String> = person
                .delegates
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect();
            let _ = writeln!(text, "delegates = [{}]", quoted.join(", "));
        }
        if let Some(group) = &person.delegate_group {
            let _ = writeln!(text, "delegate_group = \"{group}\"");
        }
    }
    std::fs::write(path, text)
}

/// The whole daemon ([`App`]) running in this process until [`RunningDaemon::stop`].
pub struct RunningDaemon {
    /// Where the kiosk and the station API (and the webhook, unless it has its own) listen.
    pub addr: SocketAddr,
    /// Where the admin API and `/metrics` listen.
    pub admin_addr: SocketAddr,
    /// The webhook's own listener, when `[intake] listen` is set.
    pub intake_addr: Option<SocketAddr>,
    /// The daemon's store.
    pub store: Store,
    /// The daemon's release service.
    pub service: ReleaseService,
    /// The daemon's webhook.
    pub webhook: Webhook,
    /// The daemon's poller (polling on demand, whatever the poll interval).
    pub poller: Poller,
    stop: CancellationToken,
    running: JoinHandle<Result<(), AppError>>,
}

impl RunningDaemon {
    /// Builds the daemon from `settings` and runs it in the background.
    pub async fn start(settings: Settings, options: AppOptions) -> Result<RunningDaemon, AppError> {
        let app = App::build(settings, options).await?;
        let stop = CancellationToken::new();
        Ok(RunningDaemon {
            addr: app.local_addr(),
            admin_addr: app.admin_addr(),
            intake_addr: app.intake_addr(),
            store: app.store(),
            service: app.service(),
            webhook: app.webhook(),
            poller: app.poller(),
            stop: stop.clone(),
            running: tokio::spawn(app.run_until_stopped(stop)),
        })
    }

    /// `http://{addr}{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the daemon and waits for it; its own error if it stopped with one.
    pub async fn stop(self) -> Result<(), AppError> {
        self.stop.cancel();
        self.running
            .await
            .map_err(|err| AppError::Internal(format!("the daemon's task failed: {err}")))?
    }
}
