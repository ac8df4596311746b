//! `pullprintd demo`: the whole system on one machine, with no Microsoft account.
//!
//! Starts the built-in Universal Print emulator with two printers that carry our trigger (and a pull
//! printer whose members they are, with two jobs waiting, and the demo's people in its directory),
//! writes a users file (three people with badge cards and PINs) and station keys into a fresh
//! directory, starts the real daemon against the emulator, and submits sample jobs: a few at once,
//! then one every little while, so there is always something to release at the kiosk. Everything it
//! made is removed when it stops (Ctrl-C).

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::app::{App, AppOptions};
use crate::emulator::scenario::{
    Person as ScenarioPerson, Scenario, StationSpec, write_users_file,
};
use crate::emulator::{DEMO_CLIENT_ID, Emulator, NewJob};
use crate::secrets::random_token;

/// What `pullprintd demo` can be told.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the kiosk page and the station API listen.
    pub listen: SocketAddr,
    /// How often a new sample job arrives.
    pub job_every: Duration,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            job_every: Duration::from_secs(45),
        }
    }
}

/// A person in the demo.
struct Person {
    upn: &'static str,
    name: &'static str,
    card: &'static str,
    pin: &'static str,
}

const PEOPLE: [Person; 3] = [
    Person {
        upn: "ada.lovelace@contoso.example",
        name: "Ada Lovelace",
        card: "1001",
        pin: "1815",
    },
    Person {
        upn: "grace.hopper@contoso.example",
        name: "Grace Hopper",
        card: "1002",
        pin: "1906",
    },
    Person {
        upn: "alan.turing@contoso.example",
        name: "Alan Turing",
        card: "1003",
        pin: "1912",
    },
];

/// The demo's pull printer (Universal Print's native pull printing).
const PULL_PRINTER: &str = "Follow me";

const DOCUMENTS: [&str; 8] = [
    "Quarterly report.pdf",
    "Boarding pass.pdf",
    "Meeting notes.docx",
    "Invoice 2026-117.pdf",
    "Floor plan.pdf",
    "Slides - all hands.pptx",
    "Expense claim.xlsx",
    "Contract draft v3.docx",
];

/// Why the demo could not run.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The emulator did not start.
    #[error("the emulator did not start: {0}")]
    Emulator(String),
    /// The working directory could not be prepared.
    #[error("cannot prepare the demo directory {path}: {source}")]
    Files {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The daemon did not start or stopped with an error.
    #[error("{0}")]
    Daemon(#[from] crate::app::AppError),
}

impl DemoError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Daemon(err) => err.exit_code(),
            Self::Emulator(_) | Self::Files { .. } => crate::exit::UNAVAILABLE,
        }
    }
}

/// A directory removed when dropped.
struct WorkDir(PathBuf);

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo until `shutdown` is cancelled.
pub async fn run(options: DemoOptions, shutdown: CancellationToken) -> Result<(), DemoError> {
    let mut scenario = Scenario::default()
        .printer("Lobby MFP", true)
        .printer("Floor 2 MFP", true)
        // Native pull printing: a virtual printer whose jobs wait for release at either MFP.
        .pull_printer(PULL_PRINTER, &["Lobby MFP", "Floor 2 MFP"])
        .definition(Some(DEMO_CLIENT_ID), "pullprintd");
    for person in &PEOPLE {
        scenario = scenario.person(person.upn, person.name);
    }
    let tenant = scenario
        .start()
        .await
        .map_err(|err| DemoError::Emulator(err.to_string()))?;
    let emulator = tenant.emulator.clone();
    let lobby = tenant.printer("Lobby MFP").to_owned();
    let floor2 = tenant.printer("Floor 2 MFP").to_owned();

    let dir = std::env::temp_dir().join(format!("pullprintd-demo-{}", std::process::id()));
    let files_error = |source| DemoError::Files {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(files_error)?;
    let work = WorkDir(dir.clone());
    let users = work.0.join("users.toml");
    write_users_file(&users, USERS_HEADER, &people()).map_err(files_error)?;
    let lobby_key = random_token();
    let floor2_key = random_token();
    let admin_key = random_token();
    let graph_root = tenant.root();
    // The phone's sign-in comes back to a fixed address (the redirect URI registered on the app),
    // so a free port is chosen now rather than by the listener.
    let listen = match options.listen.port() {
        0 => std::net::TcpListener::bind(options.listen)
            .and_then(|l| l.local_addr())
            .unwrap_or(options.listen),
        _ => options.listen,
    };
    let mut config = tenant.daemon_config(&work.0.join("state.db"));
    config.intake = format!(
        "mode = \"both\"\npoll_interval = \"10s\"\npublic_url = \"http://{listen}/graph/notifications\""
    );
    config.stations = vec![
        StationSpec {
            id: "lobby".to_owned(),
            printer_id: lobby.clone(),
            key: lobby_key.clone(),
        },
        StationSpec {
            id: "floor2".to_owned(),
            printer_id: floor2.clone(),
            key: floor2_key.clone(),
        },
    ];
    config.users_file = Some(users);
    config.listen = listen.to_string();
    // Release from the phone: the kiosk shows a QR code; "Sign in with Microsoft" signs in at the
    // emulator's Entra ID page, where the pull printer's jobs show beside the held ones.
    config.pull_printers = vec![tenant.pull_printer(PULL_PRINTER).to_owned()];
    config.extra = format!("[phone]\nenabled = true\npublic_url = \"http://{listen}\"\n");
    if let Err(err) = emulator
        .control()
        .add_redirect_uri(DEMO_CLIENT_ID, &format!("http://{listen}/phone/callback"))
    {
        tracing::warn!(%err, "the demo could not register its redirect URI; phone release will not work");
    }
    config.admin_key = Some(admin_key.clone());
    let settings = config.settings()?;
    let app = App::build(settings, AppOptions::default()).await?;
    let kiosk = format!("http://{}/", app.local_addr());
    let admin = format!("http://{}/", app.admin_addr());

    // Two jobs waiting on the pull printer for release at a member printer.
    for (n, person) in PEOPLE.iter().take(2).enumerate() {
        submit_pull(&emulator, tenant.pull_printer(PULL_PRINTER), person, n + 3);
    }
    // A few jobs waiting from the start, then a new one now and then.
    for (i, person) in PEOPLE.iter().enumerate() {
        for j in 0..2 {
            submit(
                &emulator,
                if j == 0 { &lobby } else { &floor2 },
                person,
                i * 2 + j,
            );
        }
    }
    let feeder = tokio::spawn({
        let (emulator, shutdown, printers) = (
            emulator.clone(),
            shutdown.clone(),
            [lobby.clone(), floor2.clone()],
        );
        async move {
            let mut n = PEOPLE.len() * 2;
            let mut ticker = tokio::time::interval(options.job_every);
            ticker.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = ticker.tick() => {}
                }
                submit(&emulator, &printers[n % 2], &PEOPLE[n % PEOPLE.len()], n);
                n += 1;
            }
        }
    });

    let text = banner(
        &kiosk,
        &admin,
        &graph_root,
        &lobby_key,
        &floor2_key,
        &admin_key,
    );
    // One write, and a closed stdout is not fatal: `println!` panics on a broken pipe, and a reader
    // that stops after the first lines (`pullprintd demo | head`, a script waiting for the URL)
    // would otherwise kill the demo it started.
    if let Err(err) = std::io::Write::write_all(
        &mut std::io::stdout().lock(),
        format!("{text}\n").as_bytes(),
    ) {
        tracing::warn!(%err, "could not print the demo's banner to standard output");
    }
    let outcome = app.run_until_stopped(shutdown).await;
    feeder.abort();
    emulator.shutdown().await;
    drop(work);
    outcome.map_err(DemoError::from)
}

fn submit(emulator: &Emulator, printer: &str, person: &Person, n: usize) {
    let job = NewJob {
        printer_id: printer.to_owned(),
        user_principal_name: person.upn.to_owned(),
        user_display_name: Some(person.name.to_owned()),
        document_name: Some(DOCUMENTS[n % DOCUMENTS.len()].to_owned()),
        configuration: None,
    };
    if let Err(err) = emulator.control().submit_job(job) {
        tracing::warn!(%err, "the demo could not submit a sample job");
    }
}

fn submit_pull(emulator: &Emulator, pull_printer: &str, person: &Person, n: usize) {
    let job = NewJob {
        printer_id: pull_printer.to_owned(),
        user_principal_name: person.upn.to_owned(),
        user_display_name: Some(person.name.to_owned()),
        document_name: Some(DOCUMENTS[n % DOCUMENTS.len()].to_owned()),
        configuration: None,
    };
    if let Err(err) = emulator.control().submit_pull_job(job) {
        tracing::warn!(%err, "the demo could not submit a sample pull-print job");
    }
}

/// The first lines of the demo's users file.
const USERS_HEADER: &str =
    "# Demo users; PINs are argon2id hashes made by `pullprintd hash-pin`.\n";

/// The demo's people as a users file lists them.
fn people() -> Vec<ScenarioPerson> {
    PEOPLE
        .iter()
        .map(|person| ScenarioPerson {
            upn: person.upn.to_owned(),
            display_name: person.name.to_owned(),
            card: person.card.to_owned(),
            pin: Some(person.pin.to_owned()),
            delegates: Vec::new(),
            delegate_group: None,
        })
        .collect()
}

fn banner(
    kiosk: &str,
    admin: &str,
    emulator: &str,
    lobby_key: &str,
    floor2_key: &str,
    admin_key: &str,
) -> String {
    let mut text = format!(
        "\npullprintd demo — pull printing against the built-in Universal Print emulator\n\n\
         Kiosk page:   {kiosk}\n\
         Admin API:    {admin}api/v1/admin/jobs  (and {admin}metrics; loopback only)\n\
         Emulator:     {emulator}  (control API under /_emulator/)\n\n\
         Station keys (enter one on the kiosk's setup screen):\n\
         \x20 lobby   (prints on \"Lobby MFP\")    {lobby_key}\n\
         \x20 floor2  (prints on \"Floor 2 MFP\")  {floor2_key}\n\
         Admin key (for `pullprintd jobs|release|delete` and /api/v1/admin): {admin_key}\n\n\
         People (sign in with the card number, or with the e-mail address and PIN):\n"
    );
    for person in &PEOPLE {
        let _ = writeln!(
            text,
            "  {:<14} card {}  PIN {}  {}",
            person.name, person.card, person.pin, person.upn
        );
    }
    text.push_str(
        "\nRelease from the phone: the kiosk's sign-in screen shows a QR code. Here it is also a link: click it to\n\
         open the phone's pages in a new window (narrow it, or use the browser's device mode), pick a person at\n\
         the emulator's Microsoft sign-in, and release. Jobs waiting on the pull printer \"Follow me\" show too.\n",
    );
    text.push_str("\nSample jobs arrive every little while. Press Ctrl-C to stop.\n");
    text
}
