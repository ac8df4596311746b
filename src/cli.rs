//! The command line: sub-commands, their arguments, and the exit code each outcome maps to.
//!
//! Names are part of the public interface (unit files, scripts and the README use them): `run`, `demo`,
//! `emulator`, `check-config`, `setup`, `doctor`, `hash-pin`, `healthcheck`, `jobs`, `release`, `delete`,
//! `unlock`, `triggers`, `man`, `completions`, `rules test`.
//!
//! Each command reads only the secrets it uses ([`SecretNeeds`]): `jobs` the admin key, `setup` and
//! `doctor` the Graph credential; so they work from a root shell while the service is stopped.
//! Exit codes follow [`crate::exit`].

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{SecretNeeds, Settings};
use crate::exit;
use crate::telemetry::Telemetry;

/// Pull printing (secure release) for Microsoft Universal Print.
#[derive(Debug, Parser)]
#[command(name = "pullprintd", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The `--config FILE` argument every command that reads the configuration takes.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigFile {
    /// The configuration file.
    #[arg(
        long = "config",
        short = 'c',
        value_name = "FILE",
        env = "PULLPRINTD_CONFIG",
        default_value = "/etc/pullprintd/pullprintd.toml"
    )]
    pub path: PathBuf,
}

/// The sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a configuration file and print the effective settings, secrets redacted.
    CheckConfig {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Run the Universal Print emulator alone (for trying pullprintd without a Microsoft tenant).
    Emulator {
        /// Where to listen.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: std::net::SocketAddr,
        /// Append every Graph request received as a JSON line to this file.
        #[arg(long)]
        record: Option<PathBuf>,
    },
    /// Try pullprintd with no Microsoft account: the daemon and its kiosk page against the built-in
    /// Universal Print emulator, with sample printers, people and jobs. Ctrl-C stops it.
    Demo {
        /// Where the kiosk page and the station API listen.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// How often a new sample job arrives.
        #[arg(long, default_value = "45s", value_parser = humantime::parse_duration)]
        job_every: std::time::Duration,
    },
    /// Read a PIN on standard input and print its argon2id PHC string for the users file.
    HashPin,
    /// Provision Universal Print: the task definition and each queue printer's task trigger (an
    /// administrator signs in with a device code). Idempotent; prints the configuration lines.
    /// Exit: 0 ok, 78 configuration or permission to fix, 69 Graph unavailable or sign-in not completed.
    Setup {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
        /// Only read, and say what would be created.
        #[arg(long)]
        dry_run: bool,
    },
    /// Check a deployment: credential, permissions, task definition, printers, webhook. One line per
    /// check. Exit: 0 when every required check passes, 1 otherwise, 78 for an invalid configuration.
    Doctor {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Run the daemon: intake, the release queue, the API, until SIGINT or SIGTERM.
    Run {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Probe a health endpoint (the container HEALTHCHECK: slim images have no curl). Exit 0 on a 2xx
    /// answer within 5 s, else 1.
    Healthcheck {
        /// The URL to GET.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: url::Url,
    },
    /// List every held job (through the local API, with the admin key of the configuration).
    Jobs {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Release a held job on its own printer, optionally changing options.
    Release {
        /// The job's id, as `pullprintd jobs` lists it.
        job: String,
        /// Number of copies.
        #[arg(long)]
        copies: Option<i32>,
        /// Graph's duplexMode: oneSided, flipOnLongEdge, flipOnShortEdge.
        #[arg(long)]
        duplex: Option<String>,
        /// Graph's colorMode: color, grayscale, blackAndWhite, auto.
        #[arg(long)]
        color: Option<String>,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Try the `[[rules]]`: which rule a job would match, and why (no Graph call, no secret read).
    /// Exit: 0 answered, 78 the rules are invalid, 65 the job described is invalid.
    Rules {
        /// What to do with the rules.
        #[command(subcommand)]
        command: RulesCommand,
    },
    /// Lift the sign-in lockout of a person (UPN) or card number after repeated failures.
    Unlock {
        /// The person's UPN, or a card number.
        person: String,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Break-glass: remove pullprintd's task triggers so jobs print at once while pullprintd is
    /// down for long, and put them back afterwards. An administrator signs in with a device code.
    Triggers {
        /// `remove` or `restore`.
        #[command(subcommand)]
        action: TriggersAction,
    },
    /// Write the man pages (pullprintd.1 and one per sub-command) into a folder.
    Man {
        /// The folder to write into (created when missing).
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Delete (abort) a held job.
    Delete {
        /// The job's id, as `pullprintd jobs` lists it.
        job: String,
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
}

/// `pullprintd rules …`.
#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Print which rule matches a job, and why.
    Test {
        /// The configuration file (only `[[rules]]` and `[release]` are read).
        #[command(flatten)]
        config: ConfigFile,
        /// The queue printer's id the job is sent to.
        #[arg(long)]
        printer: String,
        /// The owner's UPN.
        #[arg(long)]
        owner: Option<String>,
        /// The document name.
        #[arg(long)]
        name: Option<String>,
        /// The documents' size in bytes.
        #[arg(long)]
        size: Option<u64>,
        /// Requested copies.
        #[arg(long)]
        copies: Option<i32>,
        /// Graph's colorMode: color, grayscale, blackAndWhite, auto.
        #[arg(long)]
        color: Option<String>,
        /// Graph's duplexMode: oneSided, flipOnLongEdge, flipOnShortEdge.
        #[arg(long)]
        duplex: Option<String>,
        /// When it was submitted, RFC 3339 (default: now).
        #[arg(long)]
        at: Option<String>,
        /// An Entra ID group (object id) the owner is a member of, for rules with
        /// `match.groups` (repeat it; Graph is not asked).
        #[arg(long = "member-of", value_name = "GROUP_ID")]
        member_of: Vec<String>,
        /// A printJob as Graph returns it (`GET …/jobs/{id}?$expand=documents`); the flags above
        /// override its fields.
        #[arg(long, value_name = "JOB.json")]
        job: Option<PathBuf>,
    },
}

/// What `pullprintd triggers` does.
#[derive(Debug, Clone, Subcommand)]
pub enum TriggersAction {
    /// Delete pullprintd's trigger on every queue printer (jobs then print at once) and record
    /// what was removed next to the store.
    Remove {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
    /// Re-create exactly the triggers `remove` recorded.
    Restore {
        /// The configuration file.
        #[command(flatten)]
        config: ConfigFile,
    },
}

impl TriggersAction {
    fn config(&self) -> &ConfigFile {
        match self {
            Self::Remove { config } | Self::Restore { config } => config,
        }
    }
}

/// Parses the command line and runs the chosen command; returns the process exit code.
pub fn main(telemetry: &Telemetry) -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            // --help and --version are not errors; everything else is a usage error (64), not clap's 2.
            let code = if err.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(run(cli, telemetry))
}

fn run(cli: Cli, telemetry: &Telemetry) -> u8 {
    match cli.command {
        Command::CheckConfig { config } => check_config(&config.path, telemetry),
        Command::Man { out } => {
            crate::admin::docs::write_man_pages(<Cli as clap::CommandFactory>::command(), &out)
        }
        Command::Completions { shell } => {
            crate::admin::docs::print_completions(<Cli as clap::CommandFactory>::command(), shell)
        }
        Command::Triggers { action } => {
            match load_settings(&action.config().path, SecretNeeds::GRAPH, telemetry) {
                Ok(settings) => block_on(triggers(settings, action)),
                Err(code) => code,
            }
        }
        Command::HashPin => hash_pin(),
        Command::Demo { listen, job_every } => block_on(demo(listen, job_every)),
        Command::Emulator { listen, record } => block_on(emulator(listen, record)),
        Command::Setup { config, dry_run } => block_on(setup(config.path, dry_run, telemetry)),
        Command::Doctor { config } => block_on(doctor(config.path, telemetry)),
        Command::Healthcheck { url } => block_on(healthcheck(url)),
        Command::Run { config } => match load_settings(&config.path, SecretNeeds::ALL, telemetry) {
            Ok(settings) => block_on(run_daemon(settings)),
            Err(code) => code,
        },
        Command::Jobs { config } => {
            match load_settings(&config.path, SecretNeeds::ADMIN, telemetry) {
                Ok(settings) => block_on(admin_jobs(settings)),
                Err(code) => code,
            }
        }
        Command::Release {
            job,
            copies,
            duplex,
            color,
            config,
        } => match load_settings(&config.path, SecretNeeds::ADMIN, telemetry) {
            Ok(settings) => {
                let options = crate::job::options::ReleaseOptions {
                    copies,
                    duplex_mode: duplex.as_deref().map(Into::into),
                    color_mode: color.as_deref().map(Into::into),
                    ..Default::default()
                };
                block_on(admin_release(settings, job, options))
            }
            Err(code) => code,
        },
        Command::Rules {
            command:
                RulesCommand::Test {
                    config,
                    printer,
                    owner,
                    name,
                    size,
                    copies,
                    color,
                    duplex,
                    at,
                    member_of,
                    job,
                },
        } => rules_test(
            &config.path,
            &crate::admin::rules_test::TryJob {
                printer,
                owner,
                name,
                size,
                copies,
                color,
                duplex,
                at,
                member_of,
                job_file: job,
            },
        ),
        Command::Unlock { person, config } => {
            match load_settings(&config.path, SecretNeeds::ADMIN, telemetry) {
                Ok(settings) => block_on(admin_unlock(settings, person)),
                Err(code) => code,
            }
        }
        Command::Delete { job, config } => {
            match load_settings(&config.path, SecretNeeds::ADMIN, telemetry) {
                Ok(settings) => block_on(admin_delete(settings, job)),
                Err(code) => code,
            }
        }
    }
}

/// Loads the configuration, reading only the secrets the command needs, or reports why not (exit 78).
pub fn load_settings(
    path: &std::path::Path,
    needs: SecretNeeds,
    telemetry: &Telemetry,
) -> Result<Settings, u8> {
    match Settings::load_for(path, needs) {
        Ok(settings) => {
            telemetry.configure(&settings.log.level, settings.log.format);
            Ok(settings)
        }
        Err(err) => {
            eprintln!("pullprintd: {}: {err}", path.display());
            Err(exit::CONFIG)
        }
    }
}

fn check_config(path: &std::path::Path, telemetry: &Telemetry) -> u8 {
    match load_settings(path, SecretNeeds::ALL, telemetry) {
        Ok(settings) => {
            // A PostgreSQL store is checked as the daemon would find it: reachable, the login
            // accepted, and not upgraded by a newer version. (A SQLite file is created on start.)
            if let crate::store::StoreLocation::Server(url) = settings.store.location() {
                let checked = block_on(async {
                    match crate::store::Store::check_server(&url).await {
                        Ok(()) => exit::OK,
                        Err(err) => {
                            eprintln!("pullprintd: {}: {err}", path.display());
                            crate::app::AppError::from(err).exit_code()
                        }
                    }
                });
                if checked != exit::OK {
                    return checked;
                }
            }
            println!(
                "# {}: valid. Effective settings (secrets redacted):\n",
                path.display()
            );
            print!("{}", settings.to_redacted_toml());
            exit::OK
        }
        Err(code) => code,
    }
}

fn rules_test(path: &std::path::Path, job: &crate::admin::rules_test::TryJob) -> u8 {
    use crate::admin::rules_test::RulesTestError;
    match crate::admin::rules_test::rules_test(path, job) {
        Ok(report) => {
            print!("{report}");
            exit::OK
        }
        Err(RulesTestError::Config(problem)) => {
            eprintln!("pullprintd rules test: {}: {problem}", path.display());
            exit::CONFIG
        }
        Err(RulesTestError::Job(problem)) => {
            eprintln!("pullprintd rules test: {problem}");
            exit::DATAERR
        }
    }
}

fn hash_pin() -> u8 {
    let mut line = String::new();
    if let Err(err) = std::io::stdin().read_line(&mut line) {
        eprintln!("pullprintd hash-pin: cannot read the PIN from standard input: {err}");
        return exit::DATAERR;
    }
    match crate::station::users::hash_pin(&line) {
        Ok(hash) => {
            println!("{hash}");
            exit::OK
        }
        Err(err) => {
            eprintln!("pullprintd hash-pin: {err}");
            exit::DATAERR
        }
    }
}

/// Runs an async command on a multi-threaded runtime.
fn block_on(command: impl std::future::Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(command),
        Err(err) => {
            eprintln!("pullprintd: cannot start the async runtime: {err}");
            exit::SOFTWARE
        }
    }
}

async fn emulator(listen: std::net::SocketAddr, record: Option<PathBuf>) -> u8 {
    let options = crate::emulator::EmulatorOptions {
        listen,
        record_path: record,
        ..Default::default()
    };
    match crate::emulator::run(options, crate::shutdown::on_signals()).await {
        Ok(()) => exit::OK,
        Err(err) => {
            eprintln!("pullprintd emulator: {err}");
            exit::UNAVAILABLE
        }
    }
}

/// Builds the Graph client from `[graph]`, or reports why not (exit 78).
fn graph_client(settings: &Settings, command: &str) -> Result<crate::graph::GraphClient, u8> {
    settings
        .graph
        .client_options()
        .and_then(crate::graph::GraphClient::new)
        .map_err(|err| {
            eprintln!("pullprintd {command}: {err}");
            exit::CONFIG
        })
}

async fn setup(config: PathBuf, dry_run: bool, telemetry: &Telemetry) -> u8 {
    let settings = match load_settings(&config, SecretNeeds::GRAPH, telemetry) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let client = match graph_client(&settings, "setup") {
        Ok(client) => client,
        Err(code) => return code,
    };
    let on_prompt = |prompt: &crate::graph::DeviceCodePrompt| {
        println!(
            "A Printer Administrator must sign in to list and create task triggers.\n{}\n\
             Waiting for the sign-in (the code expires in {})…",
            prompt.message,
            humantime::format_duration(prompt.expires_in)
        );
    };
    // The sign-in can wait up to 15 minutes: Ctrl-C must stop it.
    let shutdown = crate::shutdown::on_signals();
    let outcome = tokio::select! {
        outcome = crate::admin::setup::setup(&client, &settings.printing, dry_run, on_prompt) => outcome,
        () = shutdown.cancelled() => {
            eprintln!("pullprintd setup: interrupted; what was reported above as created stays created");
            return exit::UNAVAILABLE;
        }
    };
    match outcome {
        Ok(report) => {
            print!("{report}");
            report.exit_code()
        }
        Err(err) => {
            eprintln!("pullprintd setup: {err}");
            err.exit_code()
        }
    }
}

async fn doctor(config: PathBuf, telemetry: &Telemetry) -> u8 {
    let settings = match load_settings(&config, SecretNeeds::GRAPH, telemetry) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let client = match graph_client(&settings, "doctor") {
        Ok(client) => client,
        Err(code) => return code,
    };
    let report = crate::admin::doctor::doctor(&client, &settings).await;
    print!("{report}");
    report.exit_code()
}

async fn healthcheck(url: url::Url) -> u8 {
    let client = match reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(err) => {
            eprintln!("pullprintd healthcheck: cannot build an HTTP client: {err}");
            return 1;
        }
    };
    match client.get(url.clone()).send().await {
        Ok(response) if response.status().is_success() => exit::OK,
        Ok(response) => {
            eprintln!(
                "pullprintd healthcheck: {url} answered {}",
                response.status()
            );
            1
        }
        Err(err) => {
            eprintln!("pullprintd healthcheck: {url}: {}", err.without_url());
            1
        }
    }
}

/// `pullprintd run`: builds the [`crate::app::App`] and runs it until SIGINT or SIGTERM.
async fn run_daemon(settings: Settings) -> u8 {
    let result = match crate::app::App::build(settings, crate::app::AppOptions::default()).await {
        Ok(app) => app.run_until_stopped(crate::shutdown::on_signals()).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(()) => exit::OK,
        Err(error) => {
            tracing::error!(%error, "pullprintd stopped");
            eprintln!("pullprintd run: {error}");
            error.exit_code()
        }
    }
}

async fn demo(listen: std::net::SocketAddr, job_every: std::time::Duration) -> u8 {
    let options = crate::demo::DemoOptions { listen, job_every };
    match crate::demo::run(options, crate::shutdown::on_signals()).await {
        Ok(()) => exit::OK,
        Err(err) => {
            eprintln!("pullprintd demo: {err}");
            err.exit_code()
        }
    }
}

/// `pullprintd jobs`: every held job, as a table.
async fn admin_jobs(settings: Settings) -> u8 {
    use crate::station::client::{AdminClient, jobs_table};
    let result = match AdminClient::new(&settings) {
        Ok(client) => client.jobs().await,
        Err(error) => Err(error),
    };
    match result {
        Ok(jobs) => {
            print!("{}", jobs_table(&jobs));
            exit::OK
        }
        Err(error) => {
            eprintln!("pullprintd jobs: {error}");
            error.code
        }
    }
}

/// `pullprintd release JOB [--copies N --duplex MODE --color MODE]`.
async fn admin_release(
    settings: Settings,
    job: String,
    options: crate::job::options::ReleaseOptions,
) -> u8 {
    use crate::station::client::AdminClient;
    let result = match AdminClient::new(&settings) {
        Ok(client) => client.release(&job, &options).await,
        Err(error) => Err(error),
    };
    report_action("release", &job, result)
}

/// `pullprintd unlock PERSON`.
async fn admin_unlock(settings: Settings, person: String) -> u8 {
    use crate::station::client::AdminClient;
    let result = match AdminClient::new(&settings) {
        Ok(client) => client.unlock(&person).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(true) => {
            println!("{person}: sign-in lockout lifted");
            exit::OK
        }
        Ok(false) => {
            println!("{person}: no failures or lockout were recorded");
            exit::OK
        }
        Err(error) => {
            eprintln!("pullprintd unlock: {error}");
            error.code
        }
    }
}

/// `pullprintd delete JOB`.
async fn admin_delete(settings: Settings, job: String) -> u8 {
    use crate::station::client::AdminClient;
    let result = match AdminClient::new(&settings) {
        Ok(client) => client.delete(&job).await,
        Err(error) => Err(error),
    };
    report_action("delete", &job, result)
}

fn report_action(
    command: &str,
    job: &str,
    result: Result<crate::station::api::ActionAnswer, crate::station::client::ClientError>,
) -> u8 {
    match result {
        Ok(answer) => {
            match answer.status.as_str() {
                "queued" => println!(
                    "{job}: queued; Universal Print has not confirmed yet, the daemon finishes it"
                ),
                status => println!("{job}: {status}"),
            }
            exit::OK
        }
        Err(error) => {
            eprintln!("pullprintd {command}: {error}");
            error.code
        }
    }
}

/// `pullprintd triggers remove|restore`.
async fn triggers(settings: Settings, action: TriggersAction) -> u8 {
    let client = match graph_client(&settings, "triggers") {
        Ok(client) => client,
        Err(code) => return code,
    };
    let on_prompt = |prompt: &crate::graph::DeviceCodePrompt| {
        println!(
            "A Printer Administrator must sign in to change task triggers.\n{}\n\
             Waiting for the sign-in (the code expires in {})…",
            prompt.message,
            humantime::format_duration(prompt.expires_in)
        );
    };
    let record = crate::admin::triggers::record_path(&settings.store.state_file_base());
    let shutdown = crate::shutdown::on_signals();
    let work = async {
        match action {
            TriggersAction::Remove { .. } => {
                crate::admin::triggers::remove(&client, &settings.printing, &record, on_prompt)
                    .await
            }
            TriggersAction::Restore { .. } => {
                crate::admin::triggers::restore(&client, &record, on_prompt).await
            }
        }
    };
    let outcome = tokio::select! {
        outcome = work => outcome,
        () = shutdown.cancelled() => {
            eprintln!("pullprintd triggers: interrupted; the record at {} says what was done", record.display());
            return exit::UNAVAILABLE;
        }
    };
    match outcome {
        Ok(report) => {
            print!("{report}");
            exit::OK
        }
        Err(error) => {
            eprintln!("pullprintd triggers: {error}");
            error.exit_code()
        }
    }
}

#[cfg(test)]
mod man_page_tests {
    #![allow(clippy::unwrap_used)]
    use super::Cli;
    use crate::admin::docs::write_man_pages;
    use crate::exit;
    use clap::CommandFactory as _;

    #[test]
    fn man_pages_are_written_for_the_command_and_its_sub_commands() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(write_man_pages(Cli::command(), dir.path()), exit::OK);
        let main = std::fs::read_to_string(dir.path().join("pullprintd.1")).unwrap();
        assert!(main.contains("pullprintd"), "{main}");
        assert!(dir.path().join("pullprintd-setup.1").exists());
        assert!(dir.path().join("pullprintd-triggers.1").exists());
    }
}
