//! The in-memory world of the emulator and the documented rules that govern it.
//!
//! Everything lives in one [`World`] behind one mutex (see `Shared`): every operation is a short,
//! synchronous critical section, so the rules below hold atomically.
//!
//! Invariants and decisions ([U] = undocumented, the stricter plausible behaviour was chosen):
//! - A printer has at most one task trigger; a second one is refused with **409 `conflict`** [V rule,
//!   status U].
//! - A job submitted to a printer with a trigger is held: `paused`, "The job is not a candidate for
//!   processing yet.", details `releaseWait`, with one printTask `processing` under the trigger's
//!   definition. A job on a printer without a trigger prints at once.
//! - PATCH job, abort and redirect need a `processing` task of a trigger created by the caller's
//!   app; otherwise **400 `invalidRequest`** (the errors page's code for a broken precondition) [U].
//! - PATCH job replaces the **whole** `configuration` object (no merge) [U]; any property other
//!   than `configuration` → 400.
//! - Task → `completed` releases the job (it prints with its configuration at that moment); task →
//!   `aborted` aborts a job still held [U]. A `completed`/`aborted` task cannot move to another state
//!   (400); PATCHing it to the state it already has is answered 200 (idempotent).
//! - Job abort aborts the job; its task stays as it is until PATCHed [U].
//! - Redirect creates a new job (new id) on the destination, which prints it at once (the redirect
//!   is the release; it is not held again even if the destination has a trigger [U]); the source job
//!   becomes `completed` without printing, with `redirectedTo`, and its task becomes `completed`.
//!   Microsoft does not say whether a job redirected onto a printer that carries a trigger gets a new
//!   task, so the other behaviour is a switch (`redirect_holds_again`, [`super::Control::set_redirect_holds_again`]):
//!   then the new job is held on the destination (`paused`, with `redirectedFrom`) with a new
//!   `processing` task of the destination's trigger, notified like any new task.
//!   Redirecting to the same printer or to an unknown printer → 400 [U].
//! - Task definitions, and their tasks, are visible only to the app that created them (Graph lists
//!   the definitions "that the requesting app defined"); others get 404.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::configuration;
use super::graph_error::GraphError;
use super::identity::DeviceCode;
use super::subscriptions::Subscription;

/// Formats a time as Graph does (RFC 3339, UTC).
pub(crate) fn graph_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// A user in the emulated directory, for `GET /users?$filter=…` and as job owners.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryUser {
    /// Object id; generated when empty.
    #[serde(default)]
    pub id: String,
    /// Sign-in name, e.g. `adele@contoso.example`.
    pub user_principal_name: String,
    /// Display name.
    pub display_name: String,
    /// HR employee id (badge lookups), if any.
    #[serde(default)]
    pub employee_id: Option<String>,
}

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

/// A job to submit as a user through the control API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewJob {
    /// Printer the user prints to.
    pub printer_id: String,
    /// The user's UPN.
    pub user_principal_name: String,
    /// The user's display name; the directory's (or the UPN) when absent.
    pub user_display_name: Option<String>,
    /// The document name; "Document" when absent.
    pub document_name: Option<String>,
    /// The printJobConfiguration; the printer's defaults when absent.
    pub configuration: Option<Value>,
}

/// What submitting a job produced.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SubmittedJob {
    /// The new job's id.
    pub job_id: String,
    /// The printTask holding it, when the printer has a trigger.
    pub task_id: Option<String>,
    /// The definition of that task.
    pub task_definition_id: Option<String>,
}

/// A job as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Job id.
    pub id: String,
    /// Printer the job is on.
    pub printer_id: String,
    /// `printJobProcessingState` member.
    pub state: String,
    /// Current configuration.
    pub configuration: Value,
    /// Owner.
    pub user_principal_name: String,
    /// Document name.
    pub document_name: String,
    /// Tasks on the job.
    pub task_ids: Vec<String>,
    /// URL of the job this one was redirected to.
    pub redirected_to: Option<String>,
    /// URL of the job this one was redirected from.
    pub redirected_from: Option<String>,
}

/// A task as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// Task id.
    pub id: String,
    /// Definition id.
    pub definition_id: String,
    /// Printer of the job.
    pub printer_id: String,
    /// Job id.
    pub job_id: String,
    /// `printTaskProcessingState` member.
    pub state: String,
    /// Status description.
    pub description: String,
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

#[derive(Debug, Clone)]
pub(crate) struct Definition {
    pub id: String,
    pub display_name: String,
    pub app_id: String,
    pub app_display_name: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Trigger {
    pub id: String,
    pub printer_id: String,
    pub definition_id: String,
    pub app_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum JobState {
    Paused,
    Processing,
    Completed,
    Aborted,
    Canceled,
}

#[derive(Debug, Clone)]
pub(crate) struct Job {
    pub id: String,
    pub printer_id: String,
    pub user: DirectoryUser,
    pub created: OffsetDateTime,
    pub configuration: Value,
    pub state: JobState,
    pub document_id: String,
    pub document_name: String,
    pub redirected_to: Option<String>,
    pub redirected_from: Option<String>,
    pub task_ids: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub id: String,
    pub seq: u64,
    pub definition_id: String,
    pub trigger_id: String,
    pub printer_id: String,
    pub job_id: String,
    pub state: String,
    pub description: String,
}

/// A task just created: what a change notification needs.
#[derive(Debug, Clone)]
pub(crate) struct TaskCreated {
    pub definition_id: String,
    pub task_id: String,
    pub printer_id: String,
    pub job_id: String,
}

/// The whole emulated tenant.
#[derive(Debug, Default)]
pub(crate) struct World {
    pub printers: BTreeMap<String, Printer>,
    pub definitions: BTreeMap<String, Definition>,
    pub triggers: BTreeMap<String, Trigger>,
    pub jobs: BTreeMap<String, Job>,
    pub tasks: BTreeMap<String, Task>,
    pub users: Vec<DirectoryUser>,
    pub subscriptions: BTreeMap<String, Subscription>,
    pub deliveries: Vec<super::subscriptions::DeliveryRecord>,
    /// Graph calls by route key, then by status.
    pub calls: BTreeMap<String, BTreeMap<u16, u64>>,
    pub device_codes: HashMap<String, DeviceCode>,
    next_job_id: u64,
    next_seq: u64,
    /// The switch of the module docs: a job redirected onto a printer with a trigger is held again.
    pub redirect_holds_again: bool,
    /// Tasks created by redirects, for the caller to notify once the world lock is released.
    pub created_by_redirect: Vec<TaskCreated>,
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The unsupported-query-option rule shared by the print list operations.
pub(crate) fn refuse_query_options(
    query: &[(String, String)],
    unsupported: &[&str],
) -> Result<(), GraphError> {
    for (key, _) in query {
        if unsupported.iter().any(|u| u.eq_ignore_ascii_case(key)) {
            return Err(GraphError::invalid_request(format!(
                "The query option '{key}' is not supported by this operation (unsupported: {}).",
                unsupported.join(" ")
            )));
        }
    }
    Ok(())
}

/// Parses `{property} eq 'value'` ('' escapes a quote) for the one property the caller supports.
pub(crate) fn parse_eq_filter(filter: &str, property: &str) -> Option<String> {
    let rest = filter.trim();
    let head = rest.get(..property.len())?;
    if !head.eq_ignore_ascii_case(property) {
        return None;
    }
    let rest = rest[property.len()..].trim_start();
    let rest = rest
        .strip_prefix("eq ")
        .or_else(|| rest.strip_prefix("EQ "))?
        .trim();
    let inner = rest.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

fn job_status(job: &Job) -> Value {
    let (state, description, details, acquired) = match job.state {
        JobState::Paused => (
            "paused",
            "The job is not a candidate for processing yet.",
            json!(["releaseWait"]),
            false,
        ),
        JobState::Processing => (
            "processing",
            "The print job is currently being processed by the printer.",
            json!(["interpreting"]),
            true,
        ),
        JobState::Completed if job.redirected_to.is_some() => (
            "completed",
            "The print job was redirected to another printer.",
            json!(["completedSuccessfully"]),
            false,
        ),
        JobState::Completed => (
            "completed",
            "The print job has completed successfully and no further processing will take place.",
            json!(["completedSuccessfully"]),
            true,
        ),
        JobState::Aborted => (
            "aborted",
            "The print job has been aborted by a user or the printer and no further processing will take place.",
            json!([]),
            false,
        ),
        JobState::Canceled => (
            "canceled",
            "The print job has been canceled by a user and no further processing will take place.",
            json!([]),
            false,
        ),
    };
    json!({"state": state, "description": description, "details": details, "isAcquiredByPrinter": acquired})
}

fn job_state_name(state: JobState) -> &'static str {
    match state {
        JobState::Paused => "paused",
        JobState::Processing => "processing",
        JobState::Completed => "completed",
        JobState::Aborted => "aborted",
        JobState::Canceled => "canceled",
    }
}

impl World {
    /// Counts one Graph call.
    pub fn count(&mut self, route_key: &str, status: u16) {
        *self
            .calls
            .entry(route_key.to_owned())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }

    /// The URL of a job, as `parentUrl`, `redirectedTo` and notifications carry it.
    pub fn job_url(root: &str, printer_id: &str, job_id: &str) -> String {
        format!("{root}/print/printers/{printer_id}/jobs/{job_id}")
    }

    // ---- printers -------------------------------------------------------------------------

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

    fn printer_json(printer: &Printer, full: bool) -> Value {
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

    fn printer(&self, id: &str) -> Result<&Printer, GraphError> {
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

    // ---- task definitions ---------------------------------------------------------------------

    fn definition_json(d: &Definition) -> Value {
        json!({"id": d.id, "displayName": d.display_name,
            "createdBy": {"appId": d.app_id, "displayName": d.app_display_name}})
    }

    fn definition(&self, app_id: &str, id: &str) -> Result<&Definition, GraphError> {
        self.definitions
            .get(id)
            .filter(|d| d.app_id == app_id)
            .ok_or_else(|| {
                GraphError::not_found(format!(
                    "The task definition '{id}' was not found for this app."
                ))
            })
    }

    /// `POST /print/taskDefinitions`.
    pub fn create_definition(
        &mut self,
        root: &str,
        app_id: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let Some(object) = body.as_object() else {
            return Err(GraphError::invalid_request(
                "The body must be a printTaskDefinition object.",
            ));
        };
        for key in object.keys() {
            if !["displayName", "createdBy", "@odata.type"].contains(&key.as_str()) {
                return Err(GraphError::invalid_request(format!(
                    "'{key}' cannot be set on a printTaskDefinition."
                )));
            }
        }
        let Some(display_name) = body["displayName"].as_str().filter(|s| !s.is_empty()) else {
            return Err(GraphError::invalid_request(
                "displayName is required (non-null).",
            ));
        };
        let definition = Definition {
            id: new_id(),
            display_name: display_name.to_owned(),
            app_id: app_id.to_owned(),
            app_display_name: body["createdBy"]["displayName"].as_str().map(str::to_owned),
        };
        let mut v = Self::definition_json(&definition);
        v["@odata.context"] = json!(format!("{root}/$metadata#print/taskDefinitions/$entity"));
        self.definitions.insert(definition.id.clone(), definition);
        Ok(v)
    }

    /// Creates a definition owned by `app_id` (control API shortcut).
    pub fn create_definition_for(&mut self, app_id: &str, display_name: &str) -> String {
        let id = new_id();
        self.definitions.insert(
            id.clone(),
            Definition {
                id: id.clone(),
                display_name: display_name.to_owned(),
                app_id: app_id.to_owned(),
                app_display_name: None,
            },
        );
        id
    }

    /// `GET /print/taskDefinitions`.
    pub fn list_definitions(&self, root: &str, app_id: &str) -> Value {
        let value: Vec<Value> = self
            .definitions
            .values()
            .filter(|d| d.app_id == app_id)
            .map(Self::definition_json)
            .collect();
        json!({"@odata.context": format!("{root}/$metadata#print/taskDefinitions"), "value": value})
    }

    /// `GET /print/taskDefinitions/{id}`.
    pub fn get_definition(&self, root: &str, app_id: &str, id: &str) -> Result<Value, GraphError> {
        let mut v = Self::definition_json(self.definition(app_id, id)?);
        v["@odata.context"] = json!(format!("{root}/$metadata#print/taskDefinitions/$entity"));
        Ok(v)
    }

    /// `PATCH /print/taskDefinitions/{id}`: only displayName.
    pub fn update_definition(
        &mut self,
        app_id: &str,
        id: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        self.definition(app_id, id)?;
        let Some(object) = body.as_object() else {
            return Err(GraphError::invalid_request(
                "The body must be a printTaskDefinition object.",
            ));
        };
        if object.keys().any(|k| k != "displayName") {
            return Err(GraphError::invalid_request(
                "Only displayName of a printTaskDefinition can be updated.",
            ));
        }
        let Some(definition) = self.definitions.get_mut(id) else {
            return Err(GraphError::not_found(format!(
                "The task definition '{id}' was not found."
            )));
        };
        if let Some(name) = body["displayName"].as_str() {
            name.clone_into(&mut definition.display_name);
        }
        Ok(Self::definition_json(definition))
    }

    /// `DELETE /print/taskDefinitions/{id}`: also removes its triggers (a trigger must name a definition).
    pub fn delete_definition(&mut self, app_id: &str, id: &str) -> Result<(), GraphError> {
        self.definition(app_id, id)?;
        self.definitions.remove(id);
        let orphans: Vec<String> = self
            .triggers
            .values()
            .filter(|t| t.definition_id == id)
            .map(|t| t.id.clone())
            .collect();
        for trigger in orphans {
            self.remove_trigger(&trigger);
        }
        Ok(())
    }

    // ---- triggers ---------------------------------------------------------------------------------

    /// A trigger as Graph shows it; its `definition` navigation property only when expanded.
    fn trigger_json(&self, t: &Trigger, expand_definition: bool) -> Value {
        let mut v = json!({"id": t.id, "event": "jobStarted"});
        if expand_definition && let Some(d) = self.definitions.get(&t.definition_id) {
            v["definition"] = Self::definition_json(d);
        }
        v
    }

    fn remove_trigger(&mut self, id: &str) {
        if let Some(trigger) = self.triggers.remove(id)
            && let Some(printer) = self.printers.get_mut(&trigger.printer_id)
        {
            printer.trigger_id = None;
        }
    }

    /// Creates a trigger with the rules but without the delegated-token formalities (control API
    /// shortcut and the body of the Graph operation).
    pub fn create_trigger(
        &mut self,
        printer_id: &str,
        definition_id: &str,
        app_id: &str,
    ) -> Result<Value, GraphError> {
        let printer = self.printer(printer_id)?;
        if printer.trigger_id.is_some() {
            return Err(GraphError::conflict(format!(
                "The printer '{printer_id}' already has a task trigger; only one task trigger can be specified per printer."
            )));
        }
        let Some(definition) = self.definitions.get(definition_id) else {
            return Err(GraphError::invalid_request(format!(
                "The task definition '{definition_id}' does not exist."
            )));
        };
        if definition.app_id != app_id {
            return Err(GraphError::access_denied(format!(
                "The appId used for this token ('{app_id}') is not the appId that created the task definition '{definition_id}' ('{}').",
                definition.app_id
            )));
        }
        let trigger = Trigger {
            id: new_id(),
            printer_id: printer_id.to_owned(),
            definition_id: definition_id.to_owned(),
            app_id: app_id.to_owned(),
        };
        let v = self.trigger_json(&trigger, false);
        if let Some(printer) = self.printers.get_mut(printer_id) {
            printer.trigger_id = Some(trigger.id.clone());
        }
        self.triggers.insert(trigger.id.clone(), trigger);
        Ok(v)
    }

    /// `POST /print/printers/{id}/taskTriggers` with `definition@odata.bind`.
    pub fn create_trigger_from_body(
        &mut self,
        root: &str,
        printer_id: &str,
        app_id: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let Some(object) = body.as_object() else {
            return Err(GraphError::invalid_request(
                "The body must be a printTaskTrigger object.",
            ));
        };
        for key in object.keys() {
            if !["event", "definition@odata.bind", "@odata.type"].contains(&key.as_str()) {
                return Err(GraphError::invalid_request(format!(
                    "'{key}' is not a property of printTaskTrigger."
                )));
            }
        }
        if body["event"].as_str() != Some("jobStarted") {
            return Err(GraphError::invalid_request(
                "event is required and must be 'jobStarted'.",
            ));
        }
        let Some(bind) = body["definition@odata.bind"].as_str() else {
            return Err(GraphError::invalid_request(
                "definition@odata.bind is required: the URL of the printTaskDefinition, e.g. {graph}/v1.0/print/taskDefinitions/{id}.",
            ));
        };
        let lower = bind.to_ascii_lowercase();
        let Some(position) = lower.find("print/taskdefinitions/") else {
            return Err(GraphError::invalid_request(format!(
                "'{bind}' is not a printTaskDefinition URL."
            )));
        };
        let definition_id = bind[position + "print/taskdefinitions/".len()..].trim_end_matches('/');
        self.printer(printer_id)?;
        let mut v = self.create_trigger(printer_id, definition_id, app_id)?;
        v["@odata.context"] = json!(format!(
            "{root}/$metadata#print/printers('{printer_id}')/taskTriggers/$entity"
        ));
        Ok(v)
    }

    /// `GET /print/printers/{id}/taskTriggers`.
    pub fn list_triggers(
        &self,
        root: &str,
        printer_id: &str,
        expand_definition: bool,
    ) -> Result<Value, GraphError> {
        let printer = self.printer(printer_id)?;
        let value: Vec<Value> = printer
            .trigger_id
            .iter()
            .filter_map(|id| self.triggers.get(id))
            .map(|t| self.trigger_json(t, expand_definition))
            .collect();
        Ok(
            json!({"@odata.context": format!("{root}/$metadata#print/printers('{printer_id}')/taskTriggers"), "value": value}),
        )
    }

    fn trigger_on(&self, printer_id: &str, trigger_id: &str) -> Result<&Trigger, GraphError> {
        self.printer(printer_id)?;
        self.triggers
            .get(trigger_id)
            .filter(|t| t.printer_id == printer_id)
            .ok_or_else(|| {
                GraphError::not_found(format!(
                    "The task trigger '{trigger_id}' was not found on this printer."
                ))
            })
    }

    /// `GET /print/printers/{id}/taskTriggers/{id}`.
    pub fn get_trigger(
        &self,
        printer_id: &str,
        trigger_id: &str,
        expand_definition: bool,
    ) -> Result<Value, GraphError> {
        Ok(self.trigger_json(self.trigger_on(printer_id, trigger_id)?, expand_definition))
    }

    /// `DELETE /print/printers/{id}/taskTriggers/{id}`.
    pub fn delete_trigger(&mut self, printer_id: &str, trigger_id: &str) -> Result<(), GraphError> {
        self.trigger_on(printer_id, trigger_id)?;
        self.remove_trigger(trigger_id);
        Ok(())
    }

    // ---- jobs -----------------------------------------------------------------------------------------

    /// Submits a job as a user (control API): held when the printer has a trigger.
    pub fn submit_job(
        &mut self,
        new: NewJob,
        now: OffsetDateTime,
    ) -> Result<(SubmittedJob, Option<TaskCreated>), String> {
        let Some(printer) = self.printers.get(&new.printer_id) else {
            return Err(format!(
                "no printer with id '{}'; create it first",
                new.printer_id
            ));
        };
        if new.user_principal_name.is_empty() {
            return Err("userPrincipalName is required".to_owned());
        }
        let configuration = new
            .configuration
            .unwrap_or_else(|| configuration::configuration_from_defaults(&printer.defaults));
        configuration::validate(&configuration, &printer.capabilities, true)?;
        let directory = self
            .users
            .iter()
            .find(|u| {
                u.user_principal_name
                    .eq_ignore_ascii_case(&new.user_principal_name)
            })
            .cloned();
        let user = DirectoryUser {
            id: directory.as_ref().map_or_else(new_id, |u| u.id.clone()),
            display_name: new
                .user_display_name
                .or_else(|| directory.as_ref().map(|u| u.display_name.clone()))
                .unwrap_or_else(|| new.user_principal_name.clone()),
            user_principal_name: new.user_principal_name,
            employee_id: None,
        };
        let trigger = printer
            .trigger_id
            .as_ref()
            .and_then(|id| self.triggers.get(id))
            .cloned();
        self.next_job_id += 1;
        let job_id = (5000 + self.next_job_id).to_string();
        let mut job = Job {
            id: job_id.clone(),
            printer_id: new.printer_id.clone(),
            user,
            created: now,
            configuration,
            state: JobState::Paused,
            document_id: new_id(),
            document_name: new.document_name.unwrap_or_else(|| "Document".to_owned()),
            redirected_to: None,
            redirected_from: None,
            task_ids: Vec::new(),
        };
        let mut created = None;
        if let Some(trigger) = trigger {
            self.next_seq += 1;
            let task = Task {
                id: new_id(),
                seq: self.next_seq,
                definition_id: trigger.definition_id.clone(),
                trigger_id: trigger.id,
                printer_id: new.printer_id.clone(),
                job_id: job_id.clone(),
                state: "processing".to_owned(),
                description: "The task is being processed.".to_owned(),
            };
            job.task_ids.push(task.id.clone());
            created = Some(TaskCreated {
                definition_id: task.definition_id.clone(),
                task_id: task.id.clone(),
                printer_id: task.printer_id.clone(),
                job_id: job_id.clone(),
            });
            self.tasks.insert(task.id.clone(), task);
            self.jobs.insert(job_id.clone(), job);
        } else {
            self.jobs.insert(job_id.clone(), job);
            self.print(&job_id);
        }
        Ok((
            SubmittedJob {
                job_id,
                task_id: created.as_ref().map(|c| c.task_id.clone()),
                task_definition_id: created.as_ref().map(|c| c.definition_id.clone()),
            },
            created,
        ))
    }

    /// The printer prints the job: `processing`, then `completed`, recorded in its printed list.
    fn print(&mut self, job_id: &str) {
        let Some(job) = self.jobs.get_mut(job_id) else {
            return;
        };
        job.state = JobState::Processing;
        let printed = PrintedJob {
            job_id: job.id.clone(),
            user_principal_name: job.user.user_principal_name.clone(),
            document_name: job.document_name.clone(),
            configuration: job.configuration.clone(),
            redirected_from: job.redirected_from.clone(),
        };
        job.state = JobState::Completed;
        let printer_id = job.printer_id.clone();
        if let Some(printer) = self.printers.get_mut(&printer_id) {
            printer.printed.push(printed);
        }
    }

    fn job_on(&self, printer_id: &str, job_id: &str) -> Result<&Job, GraphError> {
        self.printer(printer_id)?;
        self.jobs
            .get(job_id)
            .filter(|j| j.printer_id == printer_id)
            .ok_or_else(|| {
                GraphError::not_found(format!(
                    "The print job '{job_id}' was not found on printer '{printer_id}'."
                ))
            })
    }

    fn task_json(&self, root: &str, task: &Task) -> Value {
        json!({"id": task.id, "parentUrl": Self::job_url(root, &task.printer_id, &task.job_id),
            "status": {"state": task.state, "description": task.description}})
    }

    fn job_json(&self, root: &str, job: &Job, expand_tasks: bool, expand_documents: bool) -> Value {
        let mut v = json!({
            "id": job.id,
            "createdDateTime": graph_time(job.created),
            "createdBy": {"id": job.user.id, "displayName": job.user.display_name,
                "userPrincipalName": job.user.user_principal_name},
            "configuration": job.configuration,
            "status": job_status(job),
            "redirectedTo": job.redirected_to,
            "redirectedFrom": job.redirected_from,
            "isFetchable": false,
            "acknowledgedDateTime": null,
            "errorCode": null,
        });
        if expand_tasks {
            let tasks: Vec<Value> = job
                .task_ids
                .iter()
                .filter_map(|id| self.tasks.get(id))
                .map(|t| self.task_json(root, t))
                .collect();
            v["tasks"] = json!(tasks);
        }
        if expand_documents {
            v["documents"] = json!([{"id": job.document_id, "displayName": job.document_name,
                "contentType": "application/oxps", "size": 276_604,
                "uploadedDateTime": graph_time(job.created), "downloadedDateTime": null}]);
        }
        v
    }

    /// `GET /print/printers/{p}/jobs/{j}`; `owner` restricts a delegated non-admin caller to own jobs.
    pub fn get_job(
        &self,
        root: &str,
        printer_id: &str,
        job_id: &str,
        expand: &Expand,
        owner: Option<&str>,
    ) -> Result<Value, GraphError> {
        let job = self.job_on(printer_id, job_id)?;
        if owner.is_some_and(|upn| !job.user.user_principal_name.eq_ignore_ascii_case(upn)) {
            return Err(GraphError::not_found(format!(
                "The print job '{job_id}' was not found."
            )));
        }
        let mut v = self.job_json(root, job, expand.tasks, expand.documents);
        v["@odata.context"] = json!(format!(
            "{root}/$metadata#print/printers('{printer_id}')/jobs/$entity"
        ));
        Ok(v)
    }

    /// `GET /print/printers/{p}/jobs` with `$filter=createdBy/userPrincipalName eq '…'`, paged.
    #[allow(clippy::too_many_arguments)]
    pub fn list_jobs(
        &self,
        root: &str,
        printer_id: &str,
        upn_filter: Option<&str>,
        expand: &Expand,
        after: Option<u64>,
        page_size: usize,
        self_link: &str,
    ) -> Result<Value, GraphError> {
        self.printer(printer_id)?;
        let mut matching: Vec<(u64, &Job)> = self
            .jobs
            .values()
            .filter(|j| j.printer_id == printer_id)
            .filter(|j| {
                upn_filter.is_none_or(|u| j.user.user_principal_name.eq_ignore_ascii_case(u))
            })
            .filter_map(|j| j.id.parse::<u64>().ok().map(|n| (n, j)))
            .filter(|(n, _)| after.is_none_or(|a| *n > a))
            .collect();
        matching.sort_by_key(|(n, _)| *n);
        let more = matching.len() > page_size;
        let page = &matching[..matching.len().min(page_size)];
        let value: Vec<Value> = page
            .iter()
            .map(|(_, j)| self.job_json(root, j, expand.tasks, expand.documents))
            .collect();
        let mut v = json!({"@odata.context": format!("{root}/$metadata#print/printers('{printer_id}')/jobs"), "value": value});
        if more && let Some((last, _)) = page.last() {
            v["@odata.nextLink"] = json!(next_link(self_link, *last));
        }
        Ok(v)
    }

    /// The job's `processing` task of a trigger created by `app_id`, if any.
    fn releasable_task(&self, job: &Job, app_id: &str) -> Option<String> {
        job.task_ids.iter().find_map(|id| {
            let task = self.tasks.get(id)?;
            let trigger = self.triggers.get(&task.trigger_id);
            // A deleted trigger still counts by its definition's owner.
            let owner = trigger.map(|t| t.app_id.as_str()).or_else(|| {
                self.definitions
                    .get(&task.definition_id)
                    .map(|d| d.app_id.as_str())
            });
            (task.state == "processing" && owner == Some(app_id)).then(|| id.clone())
        })
    }

    fn require_releasable(
        &self,
        printer_id: &str,
        job_id: &str,
        app_id: &str,
        action: &str,
    ) -> Result<String, GraphError> {
        let job = self.job_on(printer_id, job_id)?;
        self.releasable_task(job, app_id).ok_or_else(|| {
            GraphError::invalid_request(format!(
                "Cannot {action} print job '{job_id}': it has no printTask in the 'processing' state started by a trigger that this app created."
            ))
        })
    }

    /// `PATCH /print/printers/{p}/jobs/{j}`: only `configuration`, replaced whole.
    pub fn update_job(
        &mut self,
        root: &str,
        printer_id: &str,
        job_id: &str,
        app_id: &str,
        body: &Value,
        evolvable_ok: bool,
    ) -> Result<Value, GraphError> {
        self.require_releasable(printer_id, job_id, app_id, "update")?;
        let Some(object) = body.as_object() else {
            return Err(GraphError::invalid_request(
                "The body must be a printJob object.",
            ));
        };
        if let Some(key) = object.keys().find(|k| *k != "configuration") {
            return Err(GraphError::invalid_request(format!(
                "'{key}' cannot be updated: only the configuration property of a printJob can be updated."
            )));
        }
        let Some(configuration) = object.get("configuration") else {
            return Err(GraphError::invalid_request(
                "The body must carry a configuration.",
            ));
        };
        let capabilities = self.printer(printer_id)?.capabilities.clone();
        configuration::validate(configuration, &capabilities, evolvable_ok)
            .map_err(GraphError::invalid_request)?;
        let Some(job) = self.jobs.get_mut(job_id) else {
            return Err(GraphError::not_found(format!(
                "The print job '{job_id}' was not found."
            )));
        };
        job.configuration = configuration.clone();
        let mut v = self.job_json(root, &self.jobs[job_id], false, false);
        v["@odata.context"] = json!(format!(
            "{root}/$metadata#print/printers('{printer_id}')/jobs/$entity"
        ));
        Ok(v)
    }

    /// `POST /print/printers/{p}/jobs/{j}/abort`.
    pub fn abort_job(
        &mut self,
        printer_id: &str,
        job_id: &str,
        app_id: &str,
        body: &Value,
    ) -> Result<(), GraphError> {
        self.require_releasable(printer_id, job_id, app_id, "abort")?;
        if !(body.is_null()
            || body.as_object().is_some_and(|o| {
                o.keys().all(|k| k == "reason")
                    && o.get("reason").is_none_or(|r| r.is_string() || r.is_null())
            }))
        {
            return Err(GraphError::invalid_request(
                "The abort body may only carry a string 'reason'.",
            ));
        }
        if let Some(job) = self.jobs.get_mut(job_id) {
            job.state = JobState::Aborted;
        }
        Ok(())
    }

    /// `POST /print/printers/{p}/jobs/{j}/cancel` (delegated: the owner, or a Printer Administrator).
    pub fn cancel_job(
        &mut self,
        printer_id: &str,
        job_id: &str,
        upn: &str,
        admin: bool,
    ) -> Result<(), GraphError> {
        let job = self.job_on(printer_id, job_id)?;
        if !admin && !job.user.user_principal_name.eq_ignore_ascii_case(upn) {
            return Err(GraphError::access_denied(
                "Only the job's owner or a Printer Administrator can cancel it.",
            ));
        }
        if matches!(
            job.state,
            JobState::Completed | JobState::Aborted | JobState::Canceled
        ) {
            return Err(GraphError::invalid_request(
                "The print job has already finished.",
            ));
        }
        if let Some(job) = self.jobs.get_mut(job_id) {
            job.state = JobState::Canceled;
        }
        Ok(())
    }

    /// `POST /print/printers/{p}/jobs/{j}/redirect`.
    pub fn redirect_job(
        &mut self,
        root: &str,
        printer_id: &str,
        job_id: &str,
        app_id: &str,
        body: &Value,
        evolvable_ok: bool,
    ) -> Result<Value, GraphError> {
        let task_id = self.require_releasable(printer_id, job_id, app_id, "redirect")?;
        let Some(object) = body.as_object() else {
            return Err(GraphError::invalid_request(
                "The body must carry destinationPrinterId.",
            ));
        };
        if let Some(key) = object
            .keys()
            .find(|k| *k != "destinationPrinterId" && *k != "configuration")
        {
            return Err(GraphError::invalid_request(format!(
                "'{key}' is not a parameter of redirect."
            )));
        }
        let Some(destination) = object.get("destinationPrinterId").and_then(Value::as_str) else {
            return Err(GraphError::invalid_request(
                "destinationPrinterId is required (non-null string).",
            ));
        };
        if destination == printer_id {
            return Err(GraphError::invalid_request(
                "destinationPrinterId names the printer the job is already on.",
            ));
        }
        let Some(target) = self.printers.get(destination) else {
            return Err(GraphError::invalid_request(format!(
                "destinationPrinterId '{destination}' does not name a printer."
            )));
        };
        let source = self.jobs[job_id].clone();
        let configuration = match object.get("configuration") {
            Some(c) if !c.is_null() => {
                configuration::validate(c, &target.capabilities, evolvable_ok)
                    .map_err(GraphError::invalid_request)?;
                c.clone()
            }
            _ => source.configuration.clone(),
        };
        self.next_job_id += 1;
        let new_id = (5000 + self.next_job_id).to_string();
        let new_job = Job {
            id: new_id.clone(),
            printer_id: destination.to_owned(),
            user: source.user.clone(),
            created: source.created,
            configuration,
            state: JobState::Processing,
            document_id: source.document_id.clone(),
            document_name: source.document_name,
            redirected_to: None,
            redirected_from: Some(Self::job_url(root, printer_id, job_id)),
            task_ids: Vec::new(),
        };
        let mut response = self.job_json(root, &new_job, false, false);
        response["@odata.context"] = json!(format!(
            "{root}/$metadata#print/printers('{destination}')/jobs/$entity"
        ));
        self.jobs.insert(new_id.clone(), new_job);
        if let Some(job) = self.jobs.get_mut(job_id) {
            job.redirected_to = Some(Self::job_url(root, destination, &new_id));
            job.state = JobState::Completed;
        }
        if let Some(task) = self.tasks.get_mut(&task_id) {
            "completed".clone_into(&mut task.state);
            "The print job was redirected.".clone_into(&mut task.description);
        }
        match self.hold_redirected(&new_id) {
            Some(created) => {
                response["status"] = job_status(&self.jobs[&new_id]);
                self.created_by_redirect.push(created);
            }
            None => self.print(&new_id),
        }
        Ok(response)
    }

    /// With `redirect_holds_again`, holds a redirected job on a destination with a trigger: `paused`,
    /// with a new `processing` task. `None` when it prints at once instead.
    fn hold_redirected(&mut self, job_id: &str) -> Option<TaskCreated> {
        if !self.redirect_holds_again {
            return None;
        }
        let printer_id = self.jobs.get(job_id)?.printer_id.clone();
        let trigger = self
            .printers
            .get(&printer_id)?
            .trigger_id
            .as_ref()
            .and_then(|id| self.triggers.get(id))
            .cloned()?;
        self.next_seq += 1;
        let task = Task {
            id: new_id(),
            seq: self.next_seq,
            definition_id: trigger.definition_id.clone(),
            trigger_id: trigger.id,
            printer_id: printer_id.clone(),
            job_id: job_id.to_owned(),
            state: "processing".to_owned(),
            description: "The task is being processed.".to_owned(),
        };
        let created = TaskCreated {
            definition_id: task.definition_id.clone(),
            task_id: task.id.clone(),
            printer_id,
            job_id: job_id.to_owned(),
        };
        if let Some(job) = self.jobs.get_mut(job_id) {
            job.state = JobState::Paused;
            job.task_ids.push(task.id.clone());
        }
        self.tasks.insert(task.id.clone(), task);
        Some(created)
    }

    // ---- tasks -------------------------------------------------------------------------------------

    /// `GET /print/taskDefinitions/{d}/tasks`, oldest first, `page_size` per page.
    pub fn list_tasks(
        &self,
        root: &str,
        app_id: &str,
        definition_id: &str,
        after: Option<u64>,
        page_size: usize,
        self_link: &str,
    ) -> Result<Value, GraphError> {
        self.definition(app_id, definition_id)?;
        let mut tasks: Vec<&Task> = self
            .tasks
            .values()
            .filter(|t| t.definition_id == definition_id && after.is_none_or(|a| t.seq > a))
            .collect();
        tasks.sort_by_key(|t| t.seq);
        let more = tasks.len() > page_size;
        let page = &tasks[..tasks.len().min(page_size)];
        let value: Vec<Value> = page.iter().map(|t| self.task_json(root, t)).collect();
        let mut v = json!({"@odata.context": format!("{root}/$metadata#Collection(microsoft.graph.printTask)"), "value": value});
        if more && let Some(last) = page.last() {
            v["@odata.nextLink"] = json!(next_link(self_link, last.seq));
        }
        Ok(v)
    }

    fn task_under(
        &self,
        app_id: &str,
        definition_id: &str,
        task_id: &str,
    ) -> Result<&Task, GraphError> {
        self.definition(app_id, definition_id)?;
        self.tasks
            .get(task_id)
            .filter(|t| t.definition_id == definition_id)
            .ok_or_else(|| {
                GraphError::not_found(format!(
                    "The print task '{task_id}' was not found under definition '{definition_id}'."
                ))
            })
    }

    /// `GET /print/taskDefinitions/{d}/tasks/{t}`.
    pub fn get_task(
        &self,
        root: &str,
        app_id: &str,
        definition_id: &str,
        task_id: &str,
    ) -> Result<Value, GraphError> {
        let mut v = self.task_json(root, self.task_under(app_id, definition_id, task_id)?);
        v["@odata.context"] = json!(format!(
            "{root}/$metadata#print/taskDefinitions('{definition_id}')/tasks/$entity"
        ));
        Ok(v)
    }

    /// `PATCH /print/taskDefinitions/{d}/tasks/{t}`: the state machine of a task and its job.
    pub fn update_task(
        &mut self,
        root: &str,
        app_id: &str,
        definition_id: &str,
        task_id: &str,
        body: &Value,
    ) -> Result<Value, GraphError> {
        let task = self.task_under(app_id, definition_id, task_id)?.clone();
        let Some(object) = body.as_object() else {
            return Err(GraphError::invalid_request(
                "The body must be a printTask object.",
            ));
        };
        if let Some(key) = object.keys().find(|k| *k != "status") {
            return Err(GraphError::invalid_request(format!(
                "'{key}' cannot be updated on a printTask; only status can."
            )));
        }
        let Some(status) = object.get("status").and_then(Value::as_object) else {
            return Err(GraphError::invalid_request(
                "status is required: {\"state\": …, \"description\": …}.",
            ));
        };
        if let Some(key) = status.keys().find(|k| *k != "state" && *k != "description") {
            return Err(GraphError::invalid_request(format!(
                "'{key}' is not a property of printTaskStatus."
            )));
        }
        let Some(state) = status.get("state").and_then(Value::as_str) else {
            return Err(GraphError::invalid_request(
                "status.state is required (printTaskProcessingState).",
            ));
        };
        if !configuration::TASK_STATES.contains(&state) {
            return Err(GraphError::invalid_request(format!(
                "'{state}' is not a valid printTaskProcessingState; valid: {}",
                configuration::TASK_STATES.join(", ")
            )));
        }
        if let Some(d) = status.get("description")
            && !(d.is_string() || d.is_null())
        {
            return Err(GraphError::invalid_request(
                "status.description must be a string.",
            ));
        }
        let terminal = |s: &str| s == "completed" || s == "aborted";
        if terminal(&task.state) && state != task.state {
            return Err(GraphError::invalid_request(format!(
                "The print task is already '{}' and cannot change to '{state}'.",
                task.state
            )));
        }
        if state == "pending" && task.state != "pending" {
            return Err(GraphError::invalid_request(
                "A print task cannot go back to 'pending'.",
            ));
        }
        let changed = task.state != state;
        let description = status
            .get("description")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| default_task_description(state).to_owned());
        if let Some(t) = self.tasks.get_mut(task_id) {
            state.clone_into(&mut t.state);
            t.description = description;
        }
        if changed {
            let held = self
                .jobs
                .get(&task.job_id)
                .is_some_and(|j| j.state == JobState::Paused);
            let other_processing = self.jobs.get(&task.job_id).is_some_and(|j| {
                j.task_ids.iter().any(|id| {
                    id != task_id && self.tasks.get(id).is_some_and(|t| t.state == "processing")
                })
            });
            if held && !other_processing {
                match state {
                    "completed" => self.print(&task.job_id),
                    "aborted" => {
                        if let Some(job) = self.jobs.get_mut(&task.job_id) {
                            job.state = JobState::Aborted;
                        }
                    }
                    _ => {}
                }
            }
        }
        let mut v = self.task_json(root, &self.tasks[task_id]);
        v["@odata.context"] = json!(format!(
            "{root}/$metadata#print/taskDefinitions('{definition_id}')/tasks/$entity"
        ));
        Ok(v)
    }

    // ---- users -----------------------------------------------------------------------------------

    /// `GET /users?$filter=employeeId eq '…'` (or `userPrincipalName eq '…'`).
    pub fn list_users(&self, root: &str, filter: Option<&str>) -> Result<Value, GraphError> {
        let Some(filter) = filter else {
            return Err(GraphError::invalid_request(
                "The emulator only supports GET /users with $filter=employeeId eq '…' or userPrincipalName eq '…'.",
            ));
        };
        let users: Vec<&DirectoryUser> = if let Some(id) = parse_eq_filter(filter, "employeeId") {
            self.users
                .iter()
                .filter(|u| u.employee_id.as_deref() == Some(id.as_str()))
                .collect()
        } else if let Some(upn) = parse_eq_filter(filter, "userPrincipalName") {
            self.users
                .iter()
                .filter(|u| u.user_principal_name.eq_ignore_ascii_case(&upn))
                .collect()
        } else {
            return Err(GraphError::invalid_request(format!(
                "Unsupported or invalid filter clause: {filter}"
            )));
        };
        let value: Vec<Value> = users
            .iter()
            .map(|u| json!({"id": u.id, "displayName": u.display_name, "userPrincipalName": u.user_principal_name, "employeeId": u.employee_id}))
            .collect();
        Ok(json!({"@odata.context": format!("{root}/$metadata#users"), "value": value}))
    }

    /// Adds or replaces a directory user (control API).
    pub fn upsert_user(&mut self, mut user: DirectoryUser) -> DirectoryUser {
        if user.id.is_empty() {
            user.id = new_id();
        }
        self.users.retain(|u| {
            !u.user_principal_name
                .eq_ignore_ascii_case(&user.user_principal_name)
        });
        self.users.push(user.clone());
        user
    }

    // ---- inspection ---------------------------------------------------------------------------

    /// A job as the control API shows it.
    pub fn job_view(&self, job_id: &str) -> Option<JobView> {
        self.jobs.get(job_id).map(|j| JobView {
            id: j.id.clone(),
            printer_id: j.printer_id.clone(),
            state: job_state_name(j.state).to_owned(),
            configuration: j.configuration.clone(),
            user_principal_name: j.user.user_principal_name.clone(),
            document_name: j.document_name.clone(),
            task_ids: j.task_ids.clone(),
            redirected_to: j.redirected_to.clone(),
            redirected_from: j.redirected_from.clone(),
        })
    }

    /// Every task, oldest first.
    pub fn task_views(&self) -> Vec<TaskView> {
        let mut tasks: Vec<&Task> = self.tasks.values().collect();
        tasks.sort_by_key(|t| t.seq);
        tasks
            .into_iter()
            .map(|t| TaskView {
                id: t.id.clone(),
                definition_id: t.definition_id.clone(),
                printer_id: t.printer_id.clone(),
                job_id: t.job_id.clone(),
                state: t.state.clone(),
                description: t.description.clone(),
            })
            .collect()
    }
}

fn default_task_description(state: &str) -> &'static str {
    match state {
        "completed" => "Task execution has completed.",
        "aborted" => "Task execution was aborted.",
        "processing" => "The task is being processed.",
        _ => "Task execution is pending.",
    }
}

/// `$expand` options of a job request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Expand {
    pub tasks: bool,
    pub documents: bool,
}

/// The next page's URL: the request's own URL with `$skiptoken` set to the last item's position.
fn next_link(self_link: &str, last: u64) -> String {
    let Ok(mut url) = url::Url::parse(self_link) else {
        return self_link.to_owned();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "$skiptoken")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut pairs = url.query_pairs_mut();
        pairs.clear();
        for (k, v) in kept {
            pairs.append_pair(&k, &v);
        }
        pairs.append_pair("$skiptoken", &last.to_string());
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eq_filter_is_parsed_with_escaped_quotes() {
        assert_eq!(
            parse_eq_filter("employeeId eq 'O''Neil'", "employeeId").as_deref(),
            Some("O'Neil")
        );
        assert_eq!(
            parse_eq_filter(
                "createdBy/userPrincipalName eq 'a@b.c'",
                "createdBy/userPrincipalName"
            )
            .as_deref(),
            Some("a@b.c")
        );
        assert_eq!(parse_eq_filter("displayName eq 'x'", "employeeId"), None);
    }

    #[test]
    fn a_next_link_keeps_the_query_and_sets_the_skiptoken() {
        let link = next_link("http://h/v1.0/x?$filter=a+eq+%27b%27&$skiptoken=3", 9);
        assert!(
            link.contains("skiptoken=9")
                && link.contains("filter")
                && !link.contains("skiptoken=3"),
            "{link}"
        );
    }
}
