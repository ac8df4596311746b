//! Printers: creating them through the control API, `GET /print/printers` and the printer's JSON
//! (with its `status`, which tests change through the control API), and the jobs each printer
//! printed (what the tests check a release against).
//!
//! A printer's `status` is served as `printerStatus` is documented: `state` a
//! `printerProcessingState` member, `details` a list of `printerProcessingStateDetail` members,
//! `description` a string. A status set through the control API must use a known `state`; its
//! `details` are checked for shape only (lowerCamelCase words): Graph's list has hundreds of members
//! and grows, and the daemon must tolerate ones it does not know. Jobs released onto a stopped
//! printer are still accepted and printed, as Universal Print queues them for the device [U].

use super::*;

/// A printer to create through the control API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewPrinter {
    /// Printer id; a GUID is generated when absent.
    pub id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// `printerCapabilities`; a realistic A4 office printer when absent.
    pub capabilities: Option<Value>,
    /// `printerDefaults`; matching defaults when absent.
    pub defaults: Option<Value>,
}

/// A printer's status, as the control API sets it (`PUT /_emulator/printers/{id}/status`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrinterStatusChange {
    /// `printerProcessingState`: `unknown`, `idle`, `processing`, `stopped`.
    pub state: String,
    /// `printerProcessingStateDetail` members, e.g. `["mediaJam"]`.
    #[serde(default)]
    pub details: Vec<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// `isAcceptingJobs` (unchanged when absent).
    #[serde(default)]
    pub is_accepting_jobs: Option<bool>,
}

/// A job a printer printed, with the configuration it printed with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PrintedJob {
    /// Job id (on this printer).
    pub job_id: String,
    /// Owner.
    pub user_principal_name: String,
    /// Document name.
    pub document_name: String,
    /// The configuration it printed with.
    pub configuration: Value,
    /// Source job URL when it came by redirect.
    pub redirected_from: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Printer {
    pub id: String,
    pub display_name: String,
    pub capabilities: Value,
    pub defaults: Value,
    pub trigger_id: Option<String>,
    pub printed: Vec<PrintedJob>,
    pub registered: OffsetDateTime,
    /// `printerStatus` as served.
    pub status: Value,
    pub accepting_jobs: bool,
}

impl World {
    /// Creates a printer (control API).
    pub fn create_printer(
        &mut self,
        new: NewPrinter,
        now: OffsetDateTime,
    ) -> Result<Value, String> {
        let id = new.id.filter(|id| !id.is_empty()).unwrap_or_else(new_id);
        if self.printers.contains_key(&id) {
            return Err(format!("a printer with id '{id}' already exists"));
        }
        let printer = Printer {
            id: id.clone(),
            display_name: if new.display_name.is_empty() {
                format!("Printer {id}")
            } else {
                new.display_name
            },
            capabilities: new
                .capabilities
                .unwrap_or_else(configuration::default_capabilities),
            defaults: new.defaults.unwrap_or_else(configuration::default_defaults),
            trigger_id: None,
            printed: Vec::new(),
            registered: now,
            status: json!({"state": "idle", "details": [], "description": ""}),
            accepting_jobs: true,
        };
        let view = Self::printer_json(&printer, true);
        self.printers.insert(id, printer);
        Ok(view)
    }

    pub(super) fn printer_json(printer: &Printer, full: bool) -> Value {
        let mut v = json!({
            "id": printer.id,
            "displayName": printer.display_name,
            "manufacturer": "Emulated",
            "model": "Universal Print Emulator",
            "registeredDateTime": graph_time(printer.registered),
            "isShared": true,
            "hasPhysicalDevice": true,
            "isAcceptingJobs": printer.accepting_jobs,
            "location": null,
            "status": printer.status,
        });
        if full {
            v["capabilities"] = printer.capabilities.clone();
            v["defaults"] = printer.defaults.clone();
        }
        v
    }

    /// Sets a printer's status (control API).
    pub fn set_printer_status(
        &mut self,
        id: &str,
        change: &PrinterStatusChange,
    ) -> Result<(), String> {
        use crate::graph::enums::PrinterProcessingState;
        if !PrinterProcessingState::MEMBERS.contains(&change.state.as_str())
            || change.state == "unknownFutureValue"
        {
            return Err(format!(
                "'{}' is not a printerProcessingState; use unknown, idle, processing or stopped",
                change.state
            ));
        }
        if let Some(bad) = change.details.iter().find(|d| {
            !d.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                || !d.chars().all(|c| c.is_ascii_alphanumeric())
        }) {
            return Err(format!(
                "'{bad}' is not a printerProcessingStateDetail member (lowerCamelCase, e.g. mediaJam)"
            ));
        }
        let printer = self
            .printers
            .get_mut(id)
            .ok_or_else(|| format!("no printer '{id}'"))?;
        printer.status = json!({
            "state": change.state,
            "details": change.details,
            "description": change.description,
        });
        if let Some(accepting) = change.is_accepting_jobs {
            printer.accepting_jobs = accepting;
        }
        Ok(())
    }

    pub(super) fn printer(&self, id: &str) -> Result<&Printer, GraphError> {
        self.printers
            .get(id)
            .ok_or_else(|| GraphError::not_found(format!("The printer '{id}' was not found.")))
    }

    /// `GET /print/printers/{id}` (with capabilities and defaults).
    pub fn get_printer(&self, root: &str, id: &str) -> Result<Value, GraphError> {
        let mut v = Self::printer_json(self.printer(id)?, true);
        v["@odata.context"] = json!(format!("{root}/$metadata#print/printers/$entity"));
        Ok(v)
    }

    /// `GET /print/printers` (list omits capabilities and defaults, as documented).
    pub fn list_printers(&self, root: &str) -> Value {
        let value: Vec<Value> = self
            .printers
            .values()
            .map(|p| Self::printer_json(p, false))
            .collect();
        json!({"@odata.context": format!("{root}/$metadata#print/printers"), "value": value})
    }
}
