//! `pullprintd triggers remove|restore`: the break-glass switch for a long pullprintd outage.
//!
//! A printer carrying our task trigger holds every job until pullprintd settles its task; while
//! pullprintd is down, nothing prints there. `remove` deletes our trigger on every queue printer, so
//! new jobs print at once (without release); `restore` puts exactly those triggers back.
//!
//! Invariants:
//! - Only triggers proven ours (Graph names our task definition) are removed; another workflow's
//!   trigger, or one Graph does not say the definition of, is reported and left alone.
//! - Every removal is written to the record (next to the store, `removed-triggers.json`) before the
//!   next one starts, through a temporary file and a rename: an interrupted run leaves an exact record.
//! - A second `remove` adds to the record; `restore` re-creates each recorded trigger for the recorded
//!   definition, skips a printer that already carries ours, reports one bound elsewhere and keeps it
//!   in the record; the record is deleted once empty.
//! - Jobs already held stay held (their tasks stay `processing`) until pullprintd runs again.
//!
//! Triggers are delegated-only in Graph: both directions need a Printer Administrator's device-code
//! sign-in, like `setup`.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::setup::{TRIGGER_PERMISSION, TriggerOutcome, classify, failed};
use crate::config::PrintingSettings;
use crate::exit;
use crate::graph::{DeviceCodePrompt, GraphClient};

/// The record's file name, in the store's folder.
pub const RECORD_FILE: &str = "removed-triggers.json";

/// Where the record of removed triggers is kept for a store at `store_path`.
pub fn record_path(store_path: &Path) -> PathBuf {
    store_path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(RECORD_FILE)
}

/// One removed trigger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemovedTrigger {
    /// The printer it was on.
    pub printer_id: String,
    /// The printer's display name (for people reading the record).
    #[serde(default)]
    pub printer_name: String,
    /// The trigger's id when it was removed.
    pub trigger_id: String,
    /// The task definition it started.
    pub definition_id: String,
}

/// What `remove` took away and `restore` puts back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The removed triggers, in the order they were removed.
    pub removed: Vec<RemovedTrigger>,
}

impl Record {
    fn load(path: &Path) -> Result<Option<Self>, TriggersError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).map(Some).map_err(|err| {
                TriggersError::Record(format!(
                    "{} is not a record of removed triggers ({err}); fix or move it away",
                    path.display()
                ))
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(TriggersError::Record(format!(
                "cannot read {}: {err}",
                path.display()
            ))),
        }
    }

    /// Writes the record through a temporary file and a rename; removes the file when empty.
    fn save(&self, path: &Path) -> Result<(), TriggersError> {
        let failed = |err: std::io::Error| {
            TriggersError::Record(format!("cannot write {}: {err}", path.display()))
        };
        if self.removed.is_empty() {
            return match std::fs::remove_file(path) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(failed(err)),
                _ => Ok(()),
            };
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(failed)?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|err| TriggersError::Record(err.to_string()))?;
        let temporary = path.with_extension("json.tmp");
        std::fs::write(&temporary, text + "\n").map_err(failed)?;
        std::fs::rename(&temporary, path).map_err(failed)
    }
}

/// Why `triggers` stopped.
#[derive(Debug, thiserror::Error)]
pub enum TriggersError {
    /// The configuration does not say which definition is ours.
    #[error("{0}")]
    Config(String),
    /// The record could not be read or written.
    #[error("{0}")]
    Record(String),
    /// Graph refused or failed (with the permission when it was a 403).
    #[error(transparent)]
    Graph(#[from] super::setup::SetupError),
}

impl TriggersError {
    /// The process exit code: 78 configuration or permission, 73 record, 69 Graph unavailable.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) => exit::CONFIG,
            Self::Record(_) => exit::CANTCREAT,
            Self::Graph(error) => error.exit_code(),
        }
    }
}

/// What one run did, printer by printer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TriggersReport {
    /// One line per printer.
    pub lines: Vec<String>,
    /// The closing advice.
    pub advice: String,
}

impl fmt::Display for TriggersReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for line in &self.lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = writeln!(out, "{}", self.advice);
        f.write_str(&out)
    }
}

/// Removes our trigger from every queue printer, recording each removal at `record` first.
pub async fn remove(
    client: &GraphClient,
    printing: &PrintingSettings,
    record: &Path,
    on_prompt: impl FnOnce(&DeviceCodePrompt),
) -> Result<TriggersReport, TriggersError> {
    let definition_id = printing.task_definition_id.trim();
    if definition_id.is_empty() {
        return Err(TriggersError::Config(
            "printing.task_definition_id is empty: without it no trigger can be proven ours"
                .to_owned(),
        ));
    }
    let mut kept = Record::load(record)?.unwrap_or_default();
    let admin = client
        .sign_in_with_device_code(on_prompt)
        .await
        .map_err(failed("administrator sign-in", TRIGGER_PERMISSION))?;
    let mut report = TriggersReport::default();
    for printer_id in &printing.queue_printers {
        let printer_name = client
            .get_printer(printer_id)
            .await
            .map(|p| p.display_name)
            .unwrap_or_default();
        let triggers = client
            .list_task_triggers(&admin, printer_id)
            .await
            .map_err(failed(
                "listing the printer's task triggers",
                TRIGGER_PERMISSION,
            ))?;
        let mut removed_here = false;
        for trigger in &triggers {
            match classify(trigger, Some(definition_id), true) {
                TriggerOutcome::Ours { trigger_id } => {
                    client
                        .delete_task_trigger(&admin, printer_id, &trigger_id)
                        .await
                        .map_err(failed("deleting the printer's task trigger", TRIGGER_PERMISSION))?;
                    kept.removed.push(RemovedTrigger {
                        printer_id: printer_id.clone(),
                        printer_name: printer_name.clone(),
                        trigger_id: trigger_id.clone(),
                        definition_id: definition_id.to_owned(),
                    });
                    kept.save(record)?;
                    report
                        .lines
                        .push(format!("printer {printer_id} ({printer_name}): trigger {trigger_id} REMOVED"));
                    removed_here = true;
                }
                other => report.lines.push(format!(
                    "printer {printer_id} ({printer_name}): trigger {} left alone (not proven ours)",
                    match other {
                        TriggerOutcome::BoundElsewhere { trigger_id, .. }
                        | TriggerOutcome::Unverified { trigger_id }
                        | TriggerOutcome::Created { trigger_id } => trigger_id,
                        _ => String::new(),
                    }
                )),
            }
        }
        if triggers.is_empty() && !removed_here {
            report
                .lines
                .push(format!("printer {printer_id} ({printer_name}): no trigger"));
        }
    }
    report.advice = format!(
        "New jobs on these printers now print at once, without release. Jobs already held stay held \
         until pullprintd runs again. Record: {}. Put the triggers back with `pullprintd triggers restore`.",
        record.display()
    );
    Ok(report)
}

/// Re-creates every trigger the record at `record` lists.
pub async fn restore(
    client: &GraphClient,
    record: &Path,
    on_prompt: impl FnOnce(&DeviceCodePrompt),
) -> Result<TriggersReport, TriggersError> {
    let Some(kept) = Record::load(record)? else {
        return Err(TriggersError::Record(format!(
            "nothing to restore: there is no record at {} (`pullprintd triggers remove` writes it; \
             `pullprintd setup` creates missing triggers too)",
            record.display()
        )));
    };
    let admin = client
        .sign_in_with_device_code(on_prompt)
        .await
        .map_err(failed("administrator sign-in", TRIGGER_PERMISSION))?;
    let mut report = TriggersReport::default();
    let mut left = Vec::new();
    for (index, entry) in kept.removed.iter().cloned().enumerate() {
        let name = format!("printer {} ({})", entry.printer_id, entry.printer_name);
        let triggers = client
            .list_task_triggers(&admin, &entry.printer_id)
            .await
            .map_err(failed(
                "listing the printer's task triggers",
                TRIGGER_PERMISSION,
            ))?;
        match triggers
            .first()
            .map(|t| classify(t, Some(&entry.definition_id), true))
        {
            Some(TriggerOutcome::Ours { trigger_id }) => {
                report
                    .lines
                    .push(format!("{name}: trigger {trigger_id} already there"));
            }
            Some(_) => {
                report.lines.push(format!(
                    "{name}: carries another trigger now; not restored (kept in the record)"
                ));
                left.push(entry);
            }
            None => {
                let created = client
                    .create_task_trigger(&admin, &entry.printer_id, &entry.definition_id)
                    .await
                    .map_err(failed(
                        "creating the printer's task trigger",
                        TRIGGER_PERMISSION,
                    ))?;
                report
                    .lines
                    .push(format!("{name}: trigger {} RESTORED", created.id));
            }
        }
        // Saved after each printer: an interrupted restore leaves only what is still to do.
        let remaining = Record {
            removed: left
                .iter()
                .chain(&kept.removed[index + 1..])
                .cloned()
                .collect(),
        };
        remaining.save(record)?;
    }
    report.advice = if left.is_empty() {
        "Every removed trigger is back: jobs on these printers are held for release again."
            .to_owned()
    } else {
        format!(
            "{} trigger(s) could not be restored; they stay in {}",
            left.len(),
            record.display()
        )
    };
    Ok(report)
}
