//! `setup` and `doctor` against the emulator: the configuration points `base_url` and `login_url` at
//! it, exactly as an operator's file would, and the device-code sign-in is approved through the
//! emulator's control API when setup hands over the prompt.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::extract::Query;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use pullprintd::admin::doctor::{Verdict, doctor};
use pullprintd::admin::setup::{
    DEFINITION_DISPLAY_NAME, DefinitionOutcome, SetupError, SetupReport, TriggerOutcome, setup,
};
use pullprintd::admin::triggers::{self, TriggersError, TriggersReport};
use pullprintd::config::Settings;
use pullprintd::emulator::{
    AppRegistration, DAEMON_DELEGATED_PERMISSIONS, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, Emulator,
    EmulatorOptions, NewJob, NewPrinter,
};
use pullprintd::graph::{DeviceCodePrompt, GraphClient};
use tokio::sync::oneshot;

const ADMIN: &str = "admin@contoso.com";
const LIMITED_APP: &str = "limited-app-0000";
const LIMITED_SECRET: &str = "limited-secret";

struct Bed {
    emulator: Emulator,
}

impl Bed {
    /// An emulator with the demo app and an app holding only `limited_roles`; device codes polled
    /// every second so a sign-in costs one second.
    async fn start(limited_roles: &[&str]) -> Self {
        let limited = AppRegistration {
            client_id: LIMITED_APP.to_owned(),
            client_secret: Some(LIMITED_SECRET.to_owned()),
            certificate_pem: None,
            application_permissions: limited_roles.iter().map(|r| (*r).to_owned()).collect(),
            delegated_permissions: DAEMON_DELEGATED_PERMISSIONS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            redirect_uris: Vec::new(),
        };
        let options = EmulatorOptions {
            apps: vec![AppRegistration::demo(), limited],
            device_code_interval: Duration::from_secs(1),
            ..EmulatorOptions::default()
        };
        Self {
            emulator: Emulator::start(options).await.expect("emulator starts"),
        }
    }

    /// The emulator's root without the trailing slash: the token scope is `{base}/.default`.
    fn base(&self) -> String {
        self.emulator
            .url()
            .as_str()
            .trim_end_matches('/')
            .to_owned()
    }

    fn printer(&self, name: &str) -> String {
        let printer = self
            .emulator
            .control()
            .create_printer(NewPrinter {
                display_name: name.to_owned(),
                ..NewPrinter::default()
            })
            .unwrap();
        printer["id"].as_str().unwrap().to_owned()
    }

    /// A configuration for the demo app (`client`/`secret` override it) with extra TOML appended.
    fn settings_as(&self, client: &str, secret: &str, printing: &str, extra: &str) -> Settings {
        let text = format!(
            r#"
            [graph]
            tenant_id = "{tenant}"
            client_id = "{client}"
            client_secret = "{secret}"
            base_url = "{base}"
            login_url = "{base}"
            request_timeout = "10s"

            [printing]
            {printing}

            {extra}
            "#,
            tenant = self.emulator.tenant_id(),
            base = self.base(),
        );
        Settings::from_toml(&text).expect("valid test configuration")
    }

    fn settings(&self, printing: &str) -> Settings {
        self.settings_as(DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, printing, "")
    }

    fn client(settings: &Settings) -> GraphClient {
        let mut options = settings.graph.client_options().unwrap();
        // Fail fast: the emulator is local, and a test must not wait through back-off.
        options.retry.max_attempts = 2;
        GraphClient::new(options).unwrap()
    }

    /// Runs setup, approving the device code as a Printer Administrator when the prompt arrives.
    async fn setup(&self, settings: &Settings, dry_run: bool) -> Result<SetupReport, SetupError> {
        let (prompt_tx, prompt_rx) = oneshot::channel::<DeviceCodePrompt>();
        let client = Self::client(settings);
        let control = self.emulator.control();
        let approve = async move {
            // No prompt (setup failed or needed no sign-in): nothing to approve.
            if let Ok(prompt) = prompt_rx.await {
                control
                    .approve_device_code(&prompt.user_code, ADMIN, true)
                    .expect("the prompted code is pending");
            }
        };
        let run = setup(&client, &settings.printing, dry_run, move |prompt| {
            let _ = prompt_tx.send(prompt.clone());
        });
        let (report, ()) = tokio::join!(run, approve);
        report
    }

    /// Submits a job and returns the definition of the task holding it (None: not held).
    fn held_by(&self, printer: &str) -> Option<String> {
        self.emulator
            .control()
            .submit_job(NewJob {
                printer_id: printer.to_owned(),
                user_principal_name: "ada@contoso.com".to_owned(),
                ..NewJob::default()
            })
            .unwrap()
            .task_definition_id
    }

    fn creations(&self) -> u64 {
        let control = self.emulator.control();
        control.calls_to("POST /print/taskDefinitions")
            + control.calls_to("POST /print/printers/{id}/taskTriggers")
            + control.calls_to("DELETE /print/printers/{id}/taskTriggers/{id}")
    }
}

impl Bed {
    /// Runs `triggers remove` or `restore` with `record`, approving the sign-in as an administrator.
    async fn triggers(
        &self,
        settings: &Settings,
        record: &std::path::Path,
        remove: bool,
    ) -> Result<TriggersReport, TriggersError> {
        let (prompt_tx, prompt_rx) = oneshot::channel::<DeviceCodePrompt>();
        let client = Self::client(settings);
        let control = self.emulator.control();
        let approve = async move {
            if let Ok(prompt) = prompt_rx.await {
                control
                    .approve_device_code(&prompt.user_code, ADMIN, true)
                    .expect("the prompted code is pending");
            }
        };
        let on_prompt = move |prompt: &DeviceCodePrompt| {
            let _ = prompt_tx.send(prompt.clone());
        };
        let run = async {
            if remove {
                triggers::remove(&client, &settings.printing, record, on_prompt).await
            } else {
                triggers::restore(&client, record, on_prompt).await
            }
        };
        let (report, ()) = tokio::join!(run, approve);
        report
    }
}

fn queue(printers: &[&str]) -> String {
    let quoted: Vec<String> = printers.iter().map(|p| format!("\"{p}\"")).collect();
    format!("queue_printers = [{}]", quoted.join(", "))
}

// ---- setup ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_client_built_from_the_configuration_asks_for_the_emulators_exact_scope() {
    let bed = Bed::start(&[]).await;
    let client = Bed::client(&bed.settings(""));
    assert_eq!(client.endpoints().scope, format!("{}/.default", bed.base()));
    assert!(!client.app_token_roles().await.unwrap().is_empty());
}

#[tokio::test]
async fn setup_creates_the_definition_and_the_trigger_so_jobs_are_held_for_it() {
    let bed = Bed::start(&[]).await;
    let printer = bed.printer("Lobby");
    assert_eq!(
        bed.held_by(&printer),
        None,
        "no trigger yet: prints at once"
    );

    let report = bed
        .setup(&bed.settings(&queue(&[&printer])), false)
        .await
        .unwrap();

    let DefinitionOutcome::Created { id: definition } = &report.definition else {
        panic!("expected a created definition: {report:?}");
    };
    assert!(matches!(
        report.printers[0].trigger,
        TriggerOutcome::Created { .. }
    ));
    assert_eq!(report.exit_code(), 0);
    assert_eq!(bed.creations(), 2, "one definition, one trigger");
    let text = report.to_string();
    assert!(
        text.contains(&format!("task_definition_id = \"{definition}\"")),
        "{text}"
    );
    assert_eq!(
        bed.held_by(&printer).as_deref(),
        Some(definition.as_str()),
        "a new job is held by a task of our definition"
    );
}

#[tokio::test]
async fn a_second_run_creates_nothing_and_finds_what_the_first_created() {
    let bed = Bed::start(&[]).await;
    let printer = bed.printer("Lobby");
    let first = bed
        .setup(&bed.settings(&queue(&[&printer])), false)
        .await
        .unwrap();
    let definition = first.definition.id().unwrap().to_owned();
    bed.emulator.control().reset_call_counts();

    let by_name = bed
        .setup(&bed.settings(&queue(&[&printer])), false)
        .await
        .unwrap();
    assert_eq!(
        by_name.definition,
        DefinitionOutcome::Found {
            id: definition.clone()
        }
    );
    let configured = bed
        .setup(
            &bed.settings(&format!(
                "task_definition_id = \"{definition}\"\n{}",
                queue(&[&printer])
            )),
            false,
        )
        .await
        .unwrap();
    assert_eq!(
        configured.definition,
        DefinitionOutcome::Configured {
            id: definition.clone()
        }
    );
    for report in [&by_name, &configured] {
        assert!(!report.created_anything(), "{report:?}");
        assert!(
            matches!(report.printers[0].trigger, TriggerOutcome::Ours { .. }),
            "{report:?}"
        );
        assert_eq!(report.exit_code(), 0);
    }
    assert_eq!(bed.creations(), 0, "no POST or DELETE on a second run");
    assert_eq!(bed.held_by(&printer).as_deref(), Some(definition.as_str()));
}

#[tokio::test]
async fn a_dry_run_reads_only_and_says_what_it_would_create() {
    let bed = Bed::start(&[]).await;
    let printer = bed.printer("Lobby");
    let report = bed
        .setup(&bed.settings(&queue(&[&printer])), true)
        .await
        .unwrap();
    assert!(report.dry_run);
    assert_eq!(report.definition, DefinitionOutcome::WouldCreate);
    assert_eq!(report.printers[0].trigger, TriggerOutcome::WouldCreate);
    assert!(report.configuration_lines().is_none());
    assert!(report.to_string().contains("would create"), "{report}");
    assert_eq!(bed.creations(), 0);
    assert_eq!(bed.held_by(&printer), None, "still no trigger");
}

#[tokio::test]
async fn a_printer_bound_to_another_definition_is_reported_and_left_alone() {
    let bed = Bed::start(&[]).await;
    let printer = bed.printer("Lobby");
    let control = bed.emulator.control();
    let other = control.create_task_definition(Some(LIMITED_APP), "Badge release");
    control.create_trigger(&printer, &other).unwrap();

    let report = bed
        .setup(&bed.settings(&queue(&[&printer])), false)
        .await
        .unwrap();

    assert!(
        matches!(
            report.printers[0].trigger,
            TriggerOutcome::BoundElsewhere { .. }
        ),
        "{report:?}"
    );
    assert_eq!(report.exit_code(), 78);
    let text = report.to_string();
    assert!(text.contains("BOUND ELSEWHERE"), "{text}");
    assert!(text.contains("administrator's decision"), "{text}");
    assert_eq!(
        control.calls_to("DELETE /print/printers/{id}/taskTriggers/{id}"),
        0
    );
    assert_eq!(
        control.calls_to("POST /print/printers/{id}/taskTriggers"),
        0
    );
    assert_eq!(
        bed.held_by(&printer).as_deref(),
        Some(other.as_str()),
        "the other workflow's trigger still holds the printer's jobs"
    );
}

#[tokio::test]
async fn a_queue_printer_that_does_not_exist_stops_setup_before_anything_is_created() {
    let bed = Bed::start(&[]).await;
    let error = bed
        .setup(&bed.settings(&queue(&["no-such-printer"])), false)
        .await
        .unwrap_err();
    assert!(
        matches!(error, SetupError::PrinterNotFound { .. }),
        "{error}"
    );
    assert_eq!(error.exit_code(), 78);
    assert!(error.to_string().contains("no-such-printer"), "{error}");
    assert_eq!(bed.creations(), 0);
}

#[tokio::test]
async fn a_missing_permission_is_named_with_exit_code_78() {
    let bed = Bed::start(&["Printer.Read.All"]).await;
    let printer = bed.printer("Lobby");
    let settings = bed.settings_as(LIMITED_APP, LIMITED_SECRET, &queue(&[&printer]), "");
    let error = bed.setup(&settings, false).await.unwrap_err();
    assert!(matches!(error, SetupError::Forbidden { .. }), "{error}");
    assert_eq!(error.exit_code(), 78);
    assert!(
        error
            .to_string()
            .contains("PrintTaskDefinition.ReadWrite.All"),
        "{error}"
    );
}

#[tokio::test]
async fn a_declined_sign_in_creates_no_trigger_and_exits_69() {
    let bed = Bed::start(&[]).await;
    let printer = bed.printer("Lobby");
    let settings = bed.settings(&queue(&[&printer]));
    let client = Bed::client(&settings);
    let (prompt_tx, prompt_rx) = oneshot::channel::<DeviceCodePrompt>();
    let control = bed.emulator.control();
    let decline = async move {
        if let Ok(prompt) = prompt_rx.await {
            control.decline_device_code(&prompt.user_code).unwrap();
        }
    };
    let run = setup(&client, &settings.printing, false, move |prompt| {
        let _ = prompt_tx.send(prompt.clone());
    });
    let (outcome, ()) = tokio::join!(run, decline);
    let error = outcome.unwrap_err();
    assert_eq!(error.exit_code(), 69, "{error}");
    assert!(error.to_string().contains("declined"), "{error}");
    assert_eq!(
        bed.emulator
            .control()
            .calls_to("POST /print/printers/{id}/taskTriggers"),
        0
    );
}

// ---- doctor --------------------------------------------------------------------------------------

/// A stand-in for the daemon's webhook: echoes `validationToken` as text/plain (or, when `echo` is
/// false, answers 202 without it). Returns the public URL.
async fn webhook(echo: bool) -> String {
    #[derive(serde::Deserialize)]
    struct Handshake {
        #[serde(rename = "validationToken")]
        validation_token: Option<String>,
    }
    let app = axum::Router::new().route(
        "/graph/notifications",
        axum::routing::post(move |Query(handshake): Query<Handshake>| async move {
            match handshake.validation_token {
                Some(token) if echo => {
                    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], token).into_response()
                }
                _ => axum::http::StatusCode::ACCEPTED.into_response(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/graph/notifications")
}

/// The demo tenant fully set up: a definition, a queue printer and a station printer elsewhere.
async fn provisioned(bed: &Bed, public_url: Option<&str>) -> Settings {
    let queue_printer = bed.printer("Queue");
    let station_printer = bed.printer("Lobby");
    let definition = bed
        .emulator
        .control()
        .create_task_definition(None, DEFINITION_DISPLAY_NAME);
    let intake = public_url.map_or(String::new(), |url| {
        format!("[intake]\npublic_url = \"{url}\"\n")
    });
    bed.settings_as(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        &format!(
            "task_definition_id = \"{definition}\"\n{}",
            queue(&[&queue_printer])
        ),
        &format!(
            "{intake}\n[[stations]]\nid = \"lobby\"\nprinter_id = \"{station_printer}\"\n\
             key = \"station-key-0123456789abcdef\"\n"
        ),
    )
}

#[tokio::test]
async fn doctor_passes_with_every_permission_the_definition_the_printers_and_the_webhook() {
    let bed = Bed::start(&[]).await;
    let url = webhook(true).await;
    let settings = provisioned(&bed, Some(&url)).await;
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    assert!(report.passed(), "{text}");
    assert_eq!(report.exit_code(), 0);
    for check in &report.checks {
        assert_eq!(check.verdict, Verdict::Ok, "{text}");
    }
    assert_eq!(
        report.checks.len(),
        1 + 7 + 1 + 2 + 1,
        "token, seven permissions (PullPrintPrinter.Read.All optional), definition, two printers, webhook: {text}"
    );
    assert!(
        report
            .check(&format!("webhook {url}"))
            .is_some_and(|c| c.verdict == Verdict::Ok),
        "{text}"
    );
}

#[tokio::test]
async fn doctor_names_each_missing_permission_and_what_it_is_for() {
    // ReadWrite.All satisfies ReadWriteBasic.All; Manage.All is needed (the station prints elsewhere).
    let bed = Bed::start(&["Printer.Read.All", "PrintJob.ReadWrite.All"]).await;
    let mut settings = provisioned(&bed, None).await;
    settings.graph = bed.settings_as(LIMITED_APP, LIMITED_SECRET, "", "").graph;
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let verdict = |name: &str| {
        report
            .check(&format!("permission {name}"))
            .map(|c| (c.verdict, c.required))
    };
    assert_eq!(
        verdict("PrintTaskDefinition.ReadWrite.All"),
        Some((Verdict::Missing, true)),
        "{text}"
    );
    assert_eq!(verdict("Printer.Read.All"), Some((Verdict::Ok, true)));
    assert_eq!(
        verdict("PrintJob.ReadWriteBasic.All"),
        Some((Verdict::Ok, true)),
        "satisfied by ReadWrite.All: {text}"
    );
    assert_eq!(
        verdict("PrintJob.Manage.All"),
        Some((Verdict::Missing, true))
    );
    assert_eq!(verdict("User.Read.All"), Some((Verdict::Missing, false)));
    assert!(
        text.contains("MISSING permission PrintTaskDefinition.ReadWrite.All: not granted; needed for the task definition"),
        "{text}"
    );
    assert!(text.contains("find-me release"), "{text}");
    assert!(text.contains("User.Read.All (optional)"), "{text}");
    assert!(!report.passed());
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn redirect_permission_is_optional_when_every_station_prints_on_a_queue_printer() {
    let bed = Bed::start(&[
        "PrintTaskDefinition.ReadWrite.All",
        "Printer.Read.All",
        "PrintJob.ReadWriteBasic.All",
    ])
    .await;
    let printer = bed.printer("Queue");
    let definition = bed
        .emulator
        .control()
        .create_task_definition(Some(LIMITED_APP), DEFINITION_DISPLAY_NAME);
    let settings = bed.settings_as(
        LIMITED_APP,
        LIMITED_SECRET,
        &format!(
            "task_definition_id = \"{definition}\"\n{}",
            queue(&[&printer])
        ),
        &format!(
            "[[stations]]\nid = \"lobby\"\nprinter_id = \"{printer}\"\nkey = \"station-key-0123456789abcdef\"\n"
        ),
    );
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let manage = report.check("permission PrintJob.Manage.All").unwrap();
    assert_eq!((manage.verdict, manage.required), (Verdict::Missing, false));
    assert!(report.passed(), "{text}");
}

#[tokio::test]
async fn doctor_with_a_wrong_secret_says_so_with_the_aadsts_reason() {
    let bed = Bed::start(&[]).await;
    let settings = bed.settings_as(DEMO_CLIENT_ID, "wrong-secret", "", "");
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let token = report.check("app token").unwrap();
    assert_eq!(token.verdict, Verdict::Fail, "{text}");
    assert!(token.detail.contains("AADSTS"), "{text}");
    assert!(token.detail.to_lowercase().contains("secret"), "{text}");
    assert_eq!(report.checks.len(), 1, "Graph checks are skipped: {text}");
    assert_eq!(report.exit_code(), 1);
}

#[tokio::test]
async fn doctor_reports_missing_printers_a_missing_definition_and_a_webhook_that_does_not_echo() {
    let bed = Bed::start(&[]).await;
    let url = webhook(false).await;
    let settings = bed.settings_as(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        "task_definition_id = \"gone\"\nqueue_printers = [\"no-such-printer\"]",
        &format!("[intake]\npublic_url = \"{url}\"\n"),
    );
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let verdict = |subject: &str| report.check(subject).map(|c| c.verdict);
    assert_eq!(verdict("task definition"), Some(Verdict::Missing), "{text}");
    assert_eq!(
        verdict("printer no-such-printer"),
        Some(Verdict::Missing),
        "{text}"
    );
    assert_eq!(
        verdict(&format!("webhook {url}")),
        Some(Verdict::Fail),
        "{text}"
    );
    assert!(text.contains("pullprintd setup"), "{text}");
    assert_eq!(report.exit_code(), 1);
}

// ---- triggers remove | restore (break-glass) -------------------------------------------------------

#[tokio::test]
async fn triggers_remove_lets_jobs_print_directly_and_restore_puts_exactly_those_triggers_back() {
    let bed = Bed::start(&[]).await;
    let lobby = bed.printer("Lobby");
    let other = bed.printer("Other workflow's printer");
    let foreign = bed
        .emulator
        .control()
        .create_task_definition(None, "Other workflow");
    bed.emulator
        .control()
        .create_trigger(&other, &foreign)
        .unwrap();
    let report = bed
        .setup(&bed.settings(&queue(&[&lobby])), false)
        .await
        .unwrap();
    let definition = report.definition.id().unwrap().to_owned();
    let settings = bed.settings(&format!(
        "task_definition_id = \"{definition}\"\n{}",
        queue(&[&lobby, &other])
    ));
    assert_eq!(bed.held_by(&lobby).as_deref(), Some(definition.as_str()));
    let dir = tempfile::tempdir().unwrap();
    let record = triggers::record_path(&dir.path().join("state.db"));

    let removed = bed.triggers(&settings, &record, true).await.unwrap();
    let text = removed.to_string();
    assert!(text.contains("REMOVED"), "{text}");
    assert!(
        text.contains("left alone"),
        "the other workflow's trigger stays: {text}"
    );
    assert_eq!(
        bed.held_by(&lobby),
        None,
        "without our trigger a job prints at once"
    );
    assert_eq!(
        bed.held_by(&other).as_deref(),
        Some(foreign.as_str()),
        "another workflow's trigger is not touched"
    );
    let recorded = std::fs::read_to_string(&record).unwrap();
    assert!(
        recorded.contains(&lobby) && !recorded.contains(&other),
        "{recorded}"
    );

    let restored = bed.triggers(&settings, &record, false).await.unwrap();
    assert!(restored.to_string().contains("RESTORED"), "{restored}");
    assert_eq!(
        bed.held_by(&lobby).as_deref(),
        Some(definition.as_str()),
        "jobs are held for our definition again"
    );
    assert!(!record.exists(), "an exact restore leaves no record behind");

    let again = bed.triggers(&settings, &record, false).await.unwrap_err();
    assert!(again.to_string().contains("nothing to restore"), "{again}");
}

#[tokio::test]
async fn doctor_checks_each_rules_forced_options_against_its_printers() {
    let bed = Bed::start(&[]).await;
    let mut settings = provisioned(&bed, None).await;
    let queue_printer = &settings.printing.queue_printers[0];
    let rules: toml::Table = toml::from_str(&format!(
        "[[rules]]\nname = \"grayscale\"\naction = \"release\"\nmatch.owners = [\"a@b\"]\n\
         force.color_mode = \"grayscale\"\n\
         [[rules]]\nname = \"a hundred and fifty copies\"\naction = \"release\"\n\
         match.printers = [\"{queue_printer}\"]\nforce.copies = 150\n"
    ))
    .unwrap();
    settings.rules = match &rules["rules"] {
        toml::Value::Array(list) => list
            .iter()
            .map(|rule| rule.as_table().unwrap().clone())
            .collect(),
        other => panic!("{other}"),
    };
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let ok = report
        .check(&format!("rule 0 \"grayscale\" on printer {queue_printer}"))
        .unwrap();
    assert_eq!(ok.verdict, Verdict::Ok, "{text}");
    let refused = report
        .check(&format!(
            "rule 1 \"a hundred and fifty copies\" on printer {queue_printer}"
        ))
        .unwrap();
    assert_eq!(refused.verdict, Verdict::Fail, "{text}");
    assert!(refused.detail.contains("force.copies 150"), "{text}");
    assert!(!report.passed(), "{text}");
}

#[tokio::test]
async fn doctor_checks_that_each_group_a_rule_names_exists() {
    let bed = Bed::start(&[]).await;
    let mut settings = provisioned(&bed, None).await;
    let staff = "0e7c3f1a-5b2d-4c8e-9f10-2a3b4c5d6e7f";
    let gone = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
    bed.emulator
        .control()
        .add_group(pullprintd::emulator::DirectoryGroup {
            id: staff.to_owned(),
            display_name: "Staff".to_owned(),
            members: Vec::new(),
        });
    let rules: toml::Table = toml::from_str(&format!(
        "[[rules]]\nname = \"staff\"\naction = \"hold\"\nmatch.groups = [\"{staff}\"]\n\
         [[rules]]\nname = \"deleted group\"\naction = \"hold\"\nmatch.groups = [\"{gone}\"]\n"
    ))
    .unwrap();
    settings.rules = match &rules["rules"] {
        toml::Value::Array(list) => list
            .iter()
            .map(|rule| rule.as_table().unwrap().clone())
            .collect(),
        other => panic!("{other}"),
    };
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let found = report
        .check(&format!("rule 0 \"staff\" group {staff}"))
        .unwrap();
    assert_eq!(found.verdict, Verdict::Ok, "{text}");
    assert!(found.detail.contains("Staff"), "{text}");
    let missing = report
        .check(&format!("rule 1 \"deleted group\" group {gone}"))
        .unwrap();
    assert_eq!(missing.verdict, Verdict::Missing, "{text}");
    assert!(missing.detail.contains("rules[1].match.groups"), "{text}");
    let permission = report.check("permission GroupMember.Read.All").unwrap();
    assert_eq!(
        (permission.verdict, permission.required),
        (Verdict::Ok, true)
    );
    assert!(!report.passed(), "{text}");
}

#[tokio::test]
async fn doctor_checks_that_each_delegate_group_of_the_users_file_exists() {
    let bed = Bed::start(&[]).await;
    let mut settings = provisioned(&bed, None).await;
    let assistants = "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d";
    let gone = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
    bed.emulator
        .control()
        .add_group(pullprintd::emulator::DirectoryGroup {
            id: assistants.to_owned(),
            display_name: "Assistants".to_owned(),
            members: Vec::new(),
        });
    let dir = tempfile::tempdir().unwrap();
    let users = dir.path().join("users.toml");
    std::fs::write(
        &users,
        format!(
            "[[user]]\nupn = \"ada@contoso.com\"\ndisplay_name = \"Ada\"\ncard = \"0001\"\n\
             delegate_group = \"{assistants}\"\n\
             [[user]]\nupn = \"bob@contoso.com\"\ndisplay_name = \"Bob\"\ncard = \"0002\"\n\
             delegate_group = \"{gone}\"\n"
        ),
    )
    .unwrap();
    settings.users.file = Some(users);
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let found = report
        .check(&format!("delegate group {assistants}"))
        .unwrap();
    assert_eq!(found.verdict, Verdict::Ok, "{text}");
    assert!(found.detail.contains("Assistants"), "{text}");
    let missing = report.check(&format!("delegate group {gone}")).unwrap();
    assert_eq!(missing.verdict, Verdict::Missing, "{text}");
    assert!(missing.detail.contains("delegate_group"), "{text}");
    let permission = report.check("permission GroupMember.Read.All").unwrap();
    assert!(permission.required, "{text}");
    assert!(!report.passed(), "{text}");
}

#[tokio::test]
async fn doctor_checks_each_pull_printer_and_that_every_stations_printer_is_one_of_its_members() {
    let bed = Bed::start(&[]).await;
    let member = bed.printer("Lobby MFP");
    let outsider = bed.printer("Basement MFP");
    bed.emulator
        .control()
        .create_pull_printer(pullprintd::emulator::NewPullPrinter {
            id: Some("follow-me".to_owned()),
            display_name: "Follow me".to_owned(),
            include_all_printers: false,
            members: vec![member.clone()],
        })
        .unwrap();
    let stations = format!(
        "[phone]\nenabled = true\npublic_url = \"https://print.example.org\"\n\n\
         [[stations]]\nid = \"lobby\"\nprinter_id = \"{member}\"\nkey = \"lobby-key-0123456789abcdef\"\n\n\
         [[stations]]\nid = \"basement\"\nprinter_id = \"{outsider}\"\nkey = \"basement-key-0123456789abcd\"\n"
    );
    let settings = bed.settings_as(
        DEMO_CLIENT_ID,
        DEMO_CLIENT_SECRET,
        "pull_printers = [\"follow-me\", \"gone\"]",
        &stations,
    );
    let report = doctor(&Bed::client(&settings), &settings).await;
    let text = report.to_string();
    let verdict = |subject: &str| {
        report
            .check(subject)
            .unwrap_or_else(|| panic!("no check `{subject}`: {text}"))
            .verdict
    };
    assert_eq!(
        verdict("permission PullPrintPrinter.Read.All"),
        Verdict::Ok,
        "{text}"
    );
    assert_eq!(verdict("pull printer follow-me"), Verdict::Ok, "{text}");
    assert_eq!(
        verdict("pull printer follow-me at station lobby"),
        Verdict::Ok,
        "{text}"
    );
    assert_eq!(
        verdict("pull printer follow-me at station basement"),
        Verdict::Missing,
        "{text}"
    );
    assert!(text.contains("is not a member printer"), "{text}");
    assert_eq!(verdict("pull printer gone"), Verdict::Missing, "{text}");
    assert!(!report.passed(), "{text}");
}
