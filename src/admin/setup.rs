//! `pullprintd setup`: idempotent provisioning of what Universal Print needs before jobs can be held.
//!
//! 1. The task definition (app-only): the configured `printing.task_definition_id` if Graph knows it,
//!    else one of this app's definitions named [`DEFINITION_DISPLAY_NAME`], else a new one.
//! 2. Each queue printer must exist (`GET printer`), checked before anything is created, so a typo in
//!    the configuration creates nothing.
//! 3. The task trigger of each queue printer: listing and creating triggers is delegated-only, so a
//!    Printer Administrator signs in once with the device code flow, with the same client id that
//!    created the definition (Graph refuses a trigger from another app).
//!
//! Invariants:
//! - A trigger bound to another definition is reported (which one, when Graph says) and left alone:
//!   one printer carries one trigger, and deleting another workflow's trigger is the admin's decision.
//! - `dry_run` sends only reads (GETs and the sign-in), and says what it would create.
//! - A second run creates nothing: every step looks before it creates.
//! - When our definition did not exist before this run, any trigger already on a printer is not ours,
//!   even when Graph does not name its definition.

use std::fmt::{self, Write as _};

use crate::config::PrintingSettings;
use crate::exit;
use crate::graph::{
    DelegatedToken, DeviceCodePrompt, GraphClient, GraphError, PrintTaskTrigger, Printer,
};

/// The display name of the task definition `setup` creates and looks for.
pub const DEFINITION_DISPLAY_NAME: &str = "pullprintd";

/// What is needed for the task definition operations (application permission).
const DEFINITION_PERMISSION: &str = "the application permission PrintTaskDefinition.ReadWrite.All \
     (Entra admin center → App registrations → API permissions → Grant admin consent)";
/// What is needed to read printers (application permission).
const PRINTER_PERMISSION: &str = "the application permission Printer.Read.All \
     (Entra admin center → App registrations → API permissions → Grant admin consent)";
/// What is needed for the task trigger operations (delegated, and an administrator signed in).
pub(crate) const TRIGGER_PERMISSION: &str = "the delegated permission Printer.ReadWrite.All consented for this app, \
     and a signed-in user with the Printer Administrator role";

/// How the task definition was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DefinitionOutcome {
    /// `printing.task_definition_id` exists.
    Configured {
        /// Its id.
        id: String,
    },
    /// One of this app's definitions named [`DEFINITION_DISPLAY_NAME`].
    Found {
        /// Its id.
        id: String,
    },
    /// Created by this run.
    Created {
        /// Its id.
        id: String,
    },
    /// Dry run: none exists, one would be created.
    WouldCreate,
}

impl DefinitionOutcome {
    /// The definition's id, unless a dry run would create it.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Configured { id } | Self::Found { id } | Self::Created { id } => Some(id),
            Self::WouldCreate => None,
        }
    }
}

/// The task definition another trigger is bound to, as far as Graph said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForeignDefinition {
    /// Its id.
    pub id: String,
    /// Its display name (may be empty).
    pub display_name: String,
}

/// How a queue printer's trigger was settled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TriggerOutcome {
    /// The printer already carries our trigger.
    Ours {
        /// The trigger id.
        trigger_id: String,
    },
    /// Created by this run.
    Created {
        /// The trigger id.
        trigger_id: String,
    },
    /// Dry run: the printer has no trigger; one would be created.
    WouldCreate,
    /// The printer's one trigger starts another definition: its jobs are not held for pullprintd.
    BoundElsewhere {
        /// The trigger id.
        trigger_id: String,
        /// The other definition, when Graph named it.
        definition: Option<ForeignDefinition>,
    },
    /// A trigger exists, our definition existed before, and Graph did not say which definition the
    /// trigger starts: most likely ours from an earlier run, but not proven.
    Unverified {
        /// The trigger id.
        trigger_id: String,
    },
}

/// One queue printer's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrinterReport {
    /// The printer id.
    pub printer_id: String,
    /// Its display name.
    pub display_name: String,
    /// What happened to its trigger.
    pub trigger: TriggerOutcome,
}

/// Everything `setup` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupReport {
    /// True when nothing was created on purpose.
    pub dry_run: bool,
    /// The task definition.
    pub definition: DefinitionOutcome,
    /// The queue printers, in configuration order.
    pub printers: Vec<PrinterReport>,
    /// Warnings worth reading (a configured id that does not exist, several candidate definitions).
    pub notes: Vec<String>,
}

impl SetupReport {
    /// True when this run created something in the tenant.
    pub fn created_anything(&self) -> bool {
        matches!(self.definition, DefinitionOutcome::Created { .. })
            || self
                .printers
                .iter()
                .any(|p| matches!(p.trigger, TriggerOutcome::Created { .. }))
    }

    /// The printers whose trigger belongs to another definition.
    pub fn blocked_printers(&self) -> impl Iterator<Item = &PrinterReport> {
        self.printers
            .iter()
            .filter(|p| matches!(p.trigger, TriggerOutcome::BoundElsewhere { .. }))
    }

    /// The process exit code: 0, or 78 when a queue printer is bound to another definition (the
    /// configuration names a printer pullprintd cannot hold jobs on until an admin decides).
    pub fn exit_code(&self) -> u8 {
        if self.blocked_printers().next().is_some() {
            exit::CONFIG
        } else {
            exit::OK
        }
    }

    /// The exact lines to put in the configuration, when the definition's id is known.
    pub fn configuration_lines(&self) -> Option<String> {
        let id = self.definition.id()?;
        Some(format!(
            "[printing]\ntask_definition_id = \"{id}\"\n# or in the environment: \
             PULLPRINTD__PRINTING__TASK_DEFINITION_ID={id}\n"
        ))
    }
}

impl fmt::Display for SetupReport {
    /// The human report: what was found, created (or would be), and the configuration lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        if self.dry_run {
            out.push_str("Dry run: nothing is created.\n");
        }
        let _ = match &self.definition {
            DefinitionOutcome::Configured { id } => {
                writeln!(
                    out,
                    "task definition {id}: found (printing.task_definition_id)"
                )
            }
            DefinitionOutcome::Found { id } => writeln!(
                out,
                "task definition {id}: found by its name \"{DEFINITION_DISPLAY_NAME}\""
            ),
            DefinitionOutcome::Created { id } => writeln!(
                out,
                "task definition {id}: CREATED (\"{DEFINITION_DISPLAY_NAME}\")"
            ),
            DefinitionOutcome::WouldCreate => writeln!(
                out,
                "task definition: none found; would create \"{DEFINITION_DISPLAY_NAME}\""
            ),
        };
        for printer in &self.printers {
            let name = if printer.display_name.is_empty() {
                printer.printer_id.clone()
            } else {
                format!("{} ({})", printer.printer_id, printer.display_name)
            };
            let _ = match &printer.trigger {
                TriggerOutcome::Ours { trigger_id } => {
                    writeln!(out, "printer {name}: trigger {trigger_id} found (ours)")
                }
                TriggerOutcome::Created { trigger_id } => {
                    writeln!(out, "printer {name}: trigger {trigger_id} CREATED")
                }
                TriggerOutcome::WouldCreate => {
                    writeln!(out, "printer {name}: no trigger; would create one")
                }
                TriggerOutcome::Unverified { trigger_id } => writeln!(
                    out,
                    "printer {name}: trigger {trigger_id} found; Graph did not say which task \
                     definition it starts (most likely ours from an earlier setup). If jobs on this \
                     printer are not held for pullprintd, the trigger belongs to another workflow"
                ),
                TriggerOutcome::BoundElsewhere {
                    trigger_id,
                    definition,
                } => {
                    let which = match definition {
                        Some(d) if d.display_name.is_empty() => {
                            format!("task definition {}", d.id)
                        }
                        Some(d) => format!("task definition {} (\"{}\")", d.id, d.display_name),
                        None => "another task definition (Graph did not say which)".to_owned(),
                    };
                    writeln!(
                        out,
                        "printer {name}: BOUND ELSEWHERE: its trigger {trigger_id} starts {which}. A \
                         printer carries one trigger, so its jobs are not held for pullprintd. \
                         Deleting that trigger is the administrator's decision (it belongs to another \
                         workflow); pullprintd never deletes it. Either remove this printer from \
                         printing.queue_printers, or delete the trigger and run setup again"
                    )
                }
            };
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        match self.configuration_lines() {
            Some(lines) => {
                out.push_str("\nPut this in the configuration:\n\n");
                out.push_str(&lines);
            }
            None => out.push_str(
                "\nRun setup without --dry-run to create the definition and get its id.\n",
            ),
        }
        f.write_str(&out)
    }
}

/// Why `setup` stopped.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Graph refused for lack of a permission (403).
    #[error("{step}: access denied; this needs {permission}. Graph said: {source}")]
    Forbidden {
        /// What was being done.
        step: &'static str,
        /// The permission (and role) that is missing.
        permission: &'static str,
        /// Graph's answer.
        source: GraphError,
    },
    /// A queue printer does not exist.
    #[error(
        "printer {printer_id} (printing.queue_printers) does not exist in Universal Print: check the id \
         in the Universal Print portal (Printers → the printer → Printer ID). Graph said: {source}"
    )]
    PrinterNotFound {
        /// The configured id.
        printer_id: String,
        /// Graph's answer.
        source: GraphError,
    },
    /// Any other failure of a step.
    #[error("{step}: {source}")]
    Graph {
        /// What was being done.
        step: &'static str,
        /// The cause.
        source: GraphError,
    },
}

impl SetupError {
    /// The process exit code: 78 for what the configuration or the tenant's grants must fix, 69 when
    /// Graph or Entra ID was unavailable or the sign-in did not complete (try again).
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Forbidden { .. } | Self::PrinterNotFound { .. } => exit::CONFIG,
            Self::Graph { source, .. } => match source {
                GraphError::Configuration(_) => exit::CONFIG,
                GraphError::Token(_) if !source.is_transient() => exit::CONFIG,
                _ => exit::UNAVAILABLE,
            },
        }
    }
}

/// Wraps a step's error, naming the permission when Graph answered 403.
pub(crate) fn failed(
    step: &'static str,
    permission: &'static str,
) -> impl FnOnce(GraphError) -> SetupError {
    move |source| {
        if source.is_forbidden() {
            SetupError::Forbidden {
                step,
                permission,
                source,
            }
        } else {
            SetupError::Graph { step, source }
        }
    }
}

/// Runs setup. `on_prompt` receives the device-code prompt (the CLI prints it; tests approve it);
/// the sign-in happens once, when there is at least one queue printer.
pub async fn setup(
    client: &GraphClient,
    printing: &PrintingSettings,
    dry_run: bool,
    on_prompt: impl FnOnce(&DeviceCodePrompt),
) -> Result<SetupReport, SetupError> {
    let mut notes = Vec::new();
    let existing = find_definition(client, printing, &mut notes).await?;

    // Every printer is read before anything is created: a wrong id must not leave a half setup.
    let mut printers = Vec::with_capacity(printing.queue_printers.len());
    for printer_id in &printing.queue_printers {
        let printer = client.get_printer(printer_id).await.map_err(|source| {
            if source.is_not_found() {
                SetupError::PrinterNotFound {
                    printer_id: printer_id.clone(),
                    source,
                }
            } else {
                failed("reading printer", PRINTER_PERMISSION)(source)
            }
        })?;
        printers.push(printer);
    }

    let definition_existed = existing.is_some();
    let definition = match existing {
        Some(found) => found,
        None if dry_run => DefinitionOutcome::WouldCreate,
        None => create_definition(client).await?,
    };

    let mut reports = Vec::with_capacity(printers.len());
    if !printers.is_empty() {
        let admin = client
            .sign_in_with_device_code(on_prompt)
            .await
            .map_err(failed("administrator sign-in", TRIGGER_PERMISSION))?;
        if !printing.pull_printers.is_empty() {
            notes.extend(release_scope_note(&admin.scopes));
        }
        for printer in printers {
            let trigger = settle_trigger(
                client,
                &admin,
                &printer,
                definition.id(),
                definition_existed,
                dry_run,
            )
            .await?;
            reports.push(PrinterReport {
                printer_id: printer.id,
                display_name: printer.display_name,
                trigger,
            });
        }
    }
    Ok(SetupReport {
        dry_run,
        definition,
        printers: reports,
        notes,
    })
}

/// The delegated scopes that let a signed-in person release their own pull-print job (Microsoft's
/// table for `release`: least privileged first).
pub const RELEASE_SCOPES: &[&str] = &[
    "PrintJob.ReadWriteBasic",
    "PrintJob.ReadWrite",
    "PrintJob.ReadWriteBasic.All",
    "PrintJob.ReadWrite.All",
];

/// A note when the app's consented delegated permissions (as the administrator's sign-in was
/// granted them) do not let people release their pull-print jobs.
pub fn release_scope_note(granted: &[String]) -> Option<String> {
    if granted.is_empty()
        || RELEASE_SCOPES
            .iter()
            .any(|s| granted.iter().any(|g| g == s))
    {
        return None;
    }
    Some(format!(
        "the app registration's delegated permissions ({}) do not include PrintJob.ReadWriteBasic: people who \
         sign in with Microsoft ([phone]) cannot release jobs waiting on pull-print printers. Fix: API \
         permissions → Add a permission → Microsoft Graph → Delegated → PrintJob.ReadWriteBasic, then \
         Grant admin consent",
        granted.join(" ")
    ))
}

/// The configured definition if Graph knows it, else ours by name; `None` when there is none.
async fn find_definition(
    client: &GraphClient,
    printing: &PrintingSettings,
    notes: &mut Vec<String>,
) -> Result<Option<DefinitionOutcome>, SetupError> {
    let configured = printing.task_definition_id.trim();
    if !configured.is_empty() {
        match client.get_task_definition(configured).await {
            Ok(definition) => {
                return Ok(Some(DefinitionOutcome::Configured { id: definition.id }));
            }
            // Graph shows an app only its own definitions: 404 means gone, or another app's.
            Err(error) if error.is_not_found() => notes.push(format!(
                "printing.task_definition_id = \"{configured}\" does not exist for this app (deleted, \
                 or created by another app registration); looked for \"{DEFINITION_DISPLAY_NAME}\" instead"
            )),
            Err(error) => {
                return Err(failed("reading the task definition", DEFINITION_PERMISSION)(error));
            }
        }
    }
    let definitions = client
        .list_task_definitions()
        .await
        .map_err(failed("listing task definitions", DEFINITION_PERMISSION))?;
    let mut ours: Vec<_> = definitions
        .into_iter()
        .filter(|d| d.display_name == DEFINITION_DISPLAY_NAME)
        .collect();
    // Deterministic choice when an earlier interrupted run left two.
    ours.sort_by(|a, b| a.id.cmp(&b.id));
    if ours.len() > 1 {
        let ids: Vec<&str> = ours.iter().map(|d| d.id.as_str()).collect();
        notes.push(format!(
            "several task definitions are named \"{DEFINITION_DISPLAY_NAME}\" ({}); using the first. \
             Set printing.task_definition_id to choose one",
            ids.join(", ")
        ));
    }
    Ok(ours
        .into_iter()
        .next()
        .map(|d| DefinitionOutcome::Found { id: d.id }))
}

/// Creates the definition; an uncertain outcome is settled by listing (never by creating twice).
async fn create_definition(client: &GraphClient) -> Result<DefinitionOutcome, SetupError> {
    let step = "creating the task definition";
    match client.create_task_definition(DEFINITION_DISPLAY_NAME).await {
        Ok(definition) => Ok(DefinitionOutcome::Created { id: definition.id }),
        Err(error) if error.is_outcome_unknown() => {
            let definitions = client
                .list_task_definitions()
                .await
                .map_err(failed(step, DEFINITION_PERMISSION))?;
            definitions
                .into_iter()
                .find(|d| d.display_name == DEFINITION_DISPLAY_NAME)
                .map(|d| DefinitionOutcome::Created { id: d.id })
                .ok_or(SetupError::Graph {
                    step,
                    source: error,
                })
        }
        Err(error) => Err(failed(step, DEFINITION_PERMISSION)(error)),
    }
}

/// Looks at the printer's trigger and creates ours when there is none.
async fn settle_trigger(
    client: &GraphClient,
    admin: &DelegatedToken,
    printer: &Printer,
    definition_id: Option<&str>,
    definition_existed: bool,
    dry_run: bool,
) -> Result<TriggerOutcome, SetupError> {
    let step = "listing the printer's task triggers";
    let triggers = client
        .list_task_triggers(admin, &printer.id)
        .await
        .map_err(failed(step, TRIGGER_PERMISSION))?;
    if let Some(trigger) = triggers.first() {
        return Ok(classify(trigger, definition_id, definition_existed));
    }
    let Some(definition_id) = definition_id.filter(|_| !dry_run) else {
        return Ok(TriggerOutcome::WouldCreate);
    };
    let step = "creating the printer's task trigger";
    match client
        .create_task_trigger(admin, &printer.id, definition_id)
        .await
    {
        Ok(trigger) => Ok(TriggerOutcome::Created {
            trigger_id: trigger.id,
        }),
        // Uncertain, or someone else was faster (409: one trigger per printer): look again.
        Err(error) if error.is_outcome_unknown() || error.status() == Some(409) => {
            let triggers = client
                .list_task_triggers(admin, &printer.id)
                .await
                .map_err(failed(step, TRIGGER_PERMISSION))?;
            match triggers.first() {
                Some(trigger) if error.is_outcome_unknown() => Ok(TriggerOutcome::Created {
                    trigger_id: trigger.id.clone(),
                }),
                Some(trigger) => Ok(classify(trigger, Some(definition_id), true)),
                None => Err(SetupError::Graph {
                    step,
                    source: error,
                }),
            }
        }
        Err(error) => Err(failed(step, TRIGGER_PERMISSION)(error)),
    }
}

/// Whose is this trigger? Decided by the definition Graph names; without it, a trigger that existed
/// before our definition did cannot be ours.
pub fn classify(
    trigger: &PrintTaskTrigger,
    our_definition_id: Option<&str>,
    definition_existed: bool,
) -> TriggerOutcome {
    let trigger_id = trigger.id.clone();
    match (&trigger.definition, our_definition_id) {
        (Some(definition), Some(ours)) if definition.id == ours => {
            TriggerOutcome::Ours { trigger_id }
        }
        (Some(definition), _) => TriggerOutcome::BoundElsewhere {
            trigger_id,
            definition: Some(ForeignDefinition {
                id: definition.id.clone(),
                display_name: definition.display_name.clone(),
            }),
        },
        (None, _) if !definition_existed => TriggerOutcome::BoundElsewhere {
            trigger_id,
            definition: None,
        },
        (None, _) => TriggerOutcome::Unverified { trigger_id },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{PrintEvent, PrintTaskDefinition};

    fn trigger(definition: Option<&str>) -> PrintTaskTrigger {
        PrintTaskTrigger {
            id: "t1".to_owned(),
            event: PrintEvent::JobStarted,
            definition: definition.map(|id| PrintTaskDefinition {
                id: id.to_owned(),
                display_name: "Other workflow".to_owned(),
                created_by: None,
                tasks: None,
            }),
        }
    }

    #[test]
    fn a_trigger_naming_our_definition_is_ours() {
        assert_eq!(
            classify(&trigger(Some("d1")), Some("d1"), true),
            TriggerOutcome::Ours {
                trigger_id: "t1".to_owned()
            }
        );
    }

    #[test]
    fn a_trigger_naming_another_definition_is_bound_elsewhere_with_its_name() {
        let TriggerOutcome::BoundElsewhere { definition, .. } =
            classify(&trigger(Some("d9")), Some("d1"), true)
        else {
            panic!("expected bound elsewhere");
        };
        let definition = definition.expect("named");
        assert_eq!(definition.id, "d9");
        assert_eq!(definition.display_name, "Other workflow");
    }

    #[test]
    fn an_unnamed_trigger_older_than_our_definition_is_not_ours() {
        assert!(matches!(
            classify(&trigger(None), Some("d1"), false),
            TriggerOutcome::BoundElsewhere {
                definition: None,
                ..
            }
        ));
        assert!(matches!(
            classify(&trigger(None), None, false),
            TriggerOutcome::BoundElsewhere { .. }
        ));
    }

    #[test]
    fn an_unnamed_trigger_with_an_existing_definition_is_unverified() {
        assert!(matches!(
            classify(&trigger(None), Some("d1"), true),
            TriggerOutcome::Unverified { .. }
        ));
    }

    #[test]
    fn the_report_gives_the_configuration_lines_and_blocks_on_a_foreign_trigger() {
        let report = SetupReport {
            dry_run: false,
            definition: DefinitionOutcome::Created {
                id: "def-1".to_owned(),
            },
            printers: vec![PrinterReport {
                printer_id: "p1".to_owned(),
                display_name: "Lobby".to_owned(),
                trigger: classify(&trigger(Some("d9")), Some("def-1"), true),
            }],
            notes: Vec::new(),
        };
        let text = report.to_string();
        assert!(text.contains("task_definition_id = \"def-1\""), "{text}");
        assert!(text.contains("BOUND ELSEWHERE"), "{text}");
        assert!(text.contains("d9"), "{text}");
        assert_eq!(report.exit_code(), exit::CONFIG);
    }
}
