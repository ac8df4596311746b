//! Printers: creating them through the control API, `GET /print/printers` and the printer's JSON, and
//! the jobs each printer printed (what the tests check a release against).

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
            "isAcceptingJobs": true,
            "location": null,
            "status": {"state": "idle", "details": [], "description": ""},
        });
        if full {
            v["capabilities"] = printer.capabilities.clone();
            v["defaults"] = printer.defaults.clone();
        }
        v
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
