//! Native pull printing (Graph v1.0): pull printers (`pullPrintPrinter`, a virtual printer people
//! print to, "for later release at any member printer"), the jobs waiting on them, and
//! `POST /print/printers/{printerId}/jobs/release`, which prints one at a member printer.
//!
//! Names come from Microsoft's Learn pages (`resources/pullprintprinter`, `print-list-pullprintprinters`,
//! `pullprintprinter-get`, `printjob-release`): the local snapshot of the v1.0 metadata predates
//! `pullPrintPrinter`. Documented: a pull printer inherits `printerBase` (so it has the `jobs`
//! navigation) and adds `includeAllPrinters` (every printer of the tenant is a member) and the member
//! relationship `printers`; reading pull printers takes `PullPrintPrinter.Read.All` (application or
//! delegated, the delegated caller a Printer Administrator); release is delegated only
//! (`PrintJob.ReadWriteBasic`, or `PrintJob.ReadWrite`, `PrintJob.ReadWrite.All`,
//! `PrintJob.ReadWriteBasic.All`) with the body `{"jobId"}`.
//!
//! Emulator choices where the docs are silent [U]:
//! - A waiting job is `paused`, "The job is not a candidate for processing yet.", details
//!   `releaseWait` (the `printJobStateDetail` member for it), like a job held by a task trigger; it
//!   has no task, and the `/print/printers/{id}/jobs/{id}` operations (PATCH, abort, redirect,
//!   cancel) do not find it.
//! - A person's waiting jobs are listed with `GET /print/pullPrintPrinters/{id}/jobs` (and read
//!   with `…/jobs/{jobId}`), the `jobs` navigation of `printerBase`: a delegated caller sees only
//!   their own jobs (a Printer Administrator sees all, as on a printer's list), an app-only caller
//!   needs a PrintJob read permission (any of `PrintJob.ReadBasic.All`, `PrintJob.Read.All`,
//!   `PrintJob.ReadWriteBasic.All`, `PrintJob.ReadWrite.All`) and `PullPrintPrinter.Read.All`, and sees
//!   all. `$filter=createdBy/userPrincipalName eq '…'`, `$expand=documents` and paging work as on a
//!   printer's list. The member list is `GET /print/pullPrintPrinters/{id}/printers`, with the
//!   permissions of reading the pull printer.
//! - Release refusals, in this order: a body other than `{"jobId": "…"}` → 400 `invalidRequest`;
//!   an unknown printer → 404; a job that is not waiting on a pull printer → 404; another person's
//!   job without an `.All` scope → **404** (it looks unknown, as `GET job` makes it look for a
//!   delegated caller); a printer that is not a member of the job's pull printer → **400
//!   `invalidRequest`**; a job no longer waiting (released already, canceled) → **409 `conflict`**.
//!   An app-only token is refused with 403 `accessDenied` before any of these (and counted, see
//!   `Control::refused_app_only_releases`).
//! - A release answers **200 OK with the printJob** as it is after printing (the response of
//!   `printjob-release` was not visible). The member printer prints it at once (its `printed`
//!   list gets the job, same id and configuration); the job stays listed under its pull printer as
//!   `completed` and is not copied into the member printer's `jobs`.
//! - A stopped member printer still accepts a release (as Universal Print queues jobs for the
//!   device; see `printers`).
//! - Lists of pull printers take `$top`; the other documented options (`$count`, `$expand`,
//!   `$filter`, `$orderby`, `$select`) are refused as not emulated rather than silently ignored.

use super::jobs::job_state_name;
use super::*;

/// A pull printer to create through the control API.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct NewPullPrinter {
    /// Its id; a GUID is generated when absent.
    pub id: Option<String>,
    /// Display name.
    pub display_name: String,
    /// Every printer of the tenant is a member (`members` is then not needed).
    pub include_all_printers: bool,
    /// Ids of the member printers (each must exist).
    pub members: Vec<String>,
}

/// A job on a pull printer, as the control API shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PullJobView {
    /// Job id.
    pub id: String,
    /// The pull printer it waits (or waited) on.
    pub pull_printer_id: String,
    /// `printJobProcessingState` member: `paused` while it waits for release.
    pub state: String,
    /// Whether it still waits for release.
    pub waiting: bool,
    /// Owner.
    pub user_principal_name: String,
    /// Document name.
    pub document_name: String,
    /// Its configuration.
    pub configuration: Value,
    /// The member printer it was released on.
    pub released_on: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct PullPrinter {
    pub id: String,
    pub display_name: String,
    pub include_all_printers: bool,
    pub members: Vec<String>,
    pub registered: OffsetDateTime,
    pub capabilities: Value,
    pub defaults: Value,
}

/// The query options of the pull-printer lists: `$top` works, the rest is refused.
fn pull_list_options(query: &[(String, String)]) -> Result<Option<usize>, GraphError> {
    refuse_query_options(query, &["$search", "$skip", "$format"])?;
    if let Some((key, _)) = query.iter().find(|(k, _)| {
        ["$count", "$expand", "$filter", "$orderby", "$select"]
            .iter()
            .any(|o| o.eq_ignore_ascii_case(k))
    }) {
        return Err(GraphError::invalid_request(format!(
            "The query option '{key}' is documented for this operation but not emulated."
        )));
    }
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("$top"))
        .map(|(_, v)| {
            v.parse::<usize>()
                .map_err(|_| GraphError::invalid_request(format!("Invalid $top '{v}'.")))
        })
        .transpose()
}

impl World {
    /// Creates a pull printer (control API); returns it as `GET /print/pullPrintPrinters/{id}` would.
    pub fn create_pull_printer(
        &mut self,
        new: NewPullPrinter,
        now: OffsetDateTime,
    ) -> Result<Value, String> {
        let id = new.id.filter(|id| !id.is_empty()).unwrap_or_else(new_id);
        if self.pull_printers.contains_key(&id) || self.printers.contains_key(&id) {
            return Err(format!(
                "a printer or pull printer with id '{id}' already exists"
            ));
        }
        let mut members: Vec<String> = Vec::new();
        for member in new.members {
            if !self.printers.contains_key(&member) {
                return Err(format!(
                    "no printer with id '{member}' to be a member; create it first"
                ));
            }
            if !members.contains(&member) {
                members.push(member);
            }
        }
        let printer = PullPrinter {
            id: id.clone(),
            display_name: if new.display_name.is_empty() {
                format!("Pull printer {id}")
            } else {
                new.display_name
            },
            include_all_printers: new.include_all_printers,
            members,
            registered: now,
            capabilities: configuration::default_capabilities(),
            defaults: configuration::default_defaults(),
        };
        let view = Self::pull_printer_json(&printer, true);
        self.pull_printers.insert(id, printer);
        Ok(view)
    }

    fn pull_printer_json(printer: &PullPrinter, full: bool) -> Value {
        let mut v = json!({
            "@odata.type": "#microsoft.graph.pullPrintPrinter",
            "id": printer.id,
            "displayName": printer.display_name,
            "manufacturer": null,
            "model": null,
            "isAcceptingJobs": true,
            "registeredDateTime": graph_time(printer.registered),
            "includeAllPrinters": printer.include_all_printers,
            "location": null,
            "status": {"state": "idle", "details": [], "description": ""},
        });
        if full {
            v["capabilities"] = printer.capabilities.clone();
            v["defaults"] = printer.defaults.clone();
        }
        v
    }

    fn pull_printer(&self, id: &str) -> Result<&PullPrinter, GraphError> {
        self.pull_printers.get(id).ok_or_else(|| {
            GraphError::not_found(format!("The pull print printer '{id}' was not found."))
        })
    }

    /// Whether `printer_id` is a member of the pull printer.
    fn is_pull_member(&self, pull: &PullPrinter, printer_id: &str) -> bool {
        self.printers.contains_key(printer_id)
            && (pull.include_all_printers || pull.members.iter().any(|m| m == printer_id))
    }

    /// `GET /print/pullPrintPrinters` (without capabilities and defaults, as a printer list).
    pub fn list_pull_printers(
        &self,
        root: &str,
        query: &[(String, String)],
    ) -> Result<Value, GraphError> {
        let top = pull_list_options(query)?;
        let value: Vec<Value> = self
            .pull_printers
            .values()
            .take(top.unwrap_or(usize::MAX))
            .map(|p| Self::pull_printer_json(p, false))
            .collect();
        Ok(
            json!({"@odata.context": format!("{root}/$metadata#print/pullPrintPrinters"), "value": value}),
        )
    }

    /// `GET /print/pullPrintPrinters/{id}`.
    pub fn get_pull_printer(
        &self,
        root: &str,
        id: &str,
        query: &[(String, String)],
    ) -> Result<Value, GraphError> {
        pull_list_options(query)?;
        let mut v = Self::pull_printer_json(self.pull_printer(id)?, true);
        v["@odata.context"] = json!(format!("{root}/$metadata#print/pullPrintPrinters/$entity"));
        Ok(v)
    }

    /// `GET /print/pullPrintPrinters/{id}/printers`: the member printers (all printers with
    /// `includeAllPrinters`).
    pub fn list_pull_printer_members(
        &self,
        root: &str,
        id: &str,
        query: &[(String, String)],
    ) -> Result<Value, GraphError> {
        let top = pull_list_options(query)?;
        let pull = self.pull_printer(id)?;
        let value: Vec<Value> = self
            .printers
            .values()
            .filter(|p| self.is_pull_member(pull, &p.id))
            .take(top.unwrap_or(usize::MAX))
            .map(|p| Self::printer_json(p, false))
            .collect();
        Ok(json!({
            "@odata.context": format!("{root}/$metadata#print/pullPrintPrinters('{id}')/printers"),
            "value": value,
        }))
    }

    /// Submits a job as a user to a pull printer (control API), where it waits for release; returns
    /// its id.
    pub fn submit_pull_job(&mut self, new: NewJob, now: OffsetDateTime) -> Result<String, String> {
        let Some(pull) = self.pull_printers.get(&new.printer_id) else {
            return Err(format!(
                "no pull printer with id '{}'; create it first",
                new.printer_id
            ));
        };
        if new.user_principal_name.is_empty() {
            return Err("userPrincipalName is required".to_owned());
        }
        let configuration = new
            .configuration
            .unwrap_or_else(|| configuration::configuration_from_defaults(&pull.defaults));
        configuration::validate(&configuration, &pull.capabilities, true)?;
        let user = self.submitter(new.user_principal_name, new.user_display_name);
        self.next_job_id += 1;
        let job_id = (5000 + self.next_job_id).to_string();
        self.jobs.insert(
            job_id.clone(),
            Job {
                id: job_id.clone(),
                printer_id: new.printer_id,
                user,
                created: now,
                configuration,
                state: JobState::Paused,
                document_id: new_id(),
                document_name: new.document_name.unwrap_or_else(|| "Document".to_owned()),
                redirected_to: None,
                redirected_from: None,
                task_ids: Vec::new(),
                released_on: None,
            },
        );
        Ok(job_id)
    }

    /// `GET /print/pullPrintPrinters/{id}/jobs`; `upn_filter` as on a printer's list.
    #[allow(clippy::too_many_arguments)]
    pub fn list_pull_jobs(
        &self,
        root: &str,
        pull_id: &str,
        upn_filter: Option<&str>,
        expand: &Expand,
        after: Option<u64>,
        page_size: usize,
        self_link: &str,
    ) -> Result<Value, GraphError> {
        self.pull_printer(pull_id)?;
        Ok(self.jobs_page(
            root,
            pull_id,
            &format!("print/pullPrintPrinters('{pull_id}')/jobs"),
            upn_filter,
            expand,
            after,
            page_size,
            self_link,
        ))
    }

    /// `GET /print/pullPrintPrinters/{id}/jobs/{jobId}`; `owner` hides other people's jobs.
    pub fn get_pull_job(
        &self,
        root: &str,
        pull_id: &str,
        job_id: &str,
        expand: &Expand,
        owner: Option<&str>,
    ) -> Result<Value, GraphError> {
        self.pull_printer(pull_id)?;
        let job = self
            .jobs
            .get(job_id)
            .filter(|j| j.printer_id == pull_id)
            .ok_or_else(|| {
                GraphError::not_found(format!(
                    "The print job '{job_id}' was not found on pull print printer '{pull_id}'."
                ))
            })?;
        self.job_entity(
            root,
            job,
            &format!("print/pullPrintPrinters('{pull_id}')/jobs"),
            expand,
            owner,
        )
    }

    /// `POST /print/printers/{printerId}/jobs/release` for the signed-in `upn`; `any_owner` when
    /// the token has an `.All` scope. The rules and their order are in the module docs.
    pub fn release_pull_job(
        &mut self,
        root: &str,
        printer_id: &str,
        body: &Value,
        upn: &str,
        any_owner: bool,
    ) -> Result<Value, GraphError> {
        let Some(object) = body.as_object() else {
            return Err(GraphError::invalid_request(
                "The body must carry jobId, the id of the print job to release.",
            ));
        };
        if let Some(key) = object.keys().find(|k| *k != "jobId") {
            return Err(GraphError::invalid_request(format!(
                "'{key}' is not a parameter of release."
            )));
        }
        let Some(job_id) = object
            .get("jobId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        else {
            return Err(GraphError::invalid_request(
                "jobId is required (non-empty string).",
            ));
        };
        self.printer(printer_id)?;
        let unknown = || GraphError::not_found(format!("The print job '{job_id}' was not found."));
        let job = self.jobs.get(job_id).ok_or_else(unknown)?;
        let pull = self
            .pull_printers
            .get(&job.printer_id)
            .ok_or_else(unknown)?;
        if !any_owner && !job.user.user_principal_name.eq_ignore_ascii_case(upn) {
            return Err(unknown());
        }
        if !self.is_pull_member(pull, printer_id) {
            return Err(GraphError::invalid_request(format!(
                "The printer '{printer_id}' is not a member of the pull print printer '{}' the job waits on.",
                pull.id
            )));
        }
        if job.state != JobState::Paused {
            return Err(GraphError::conflict(match &job.released_on {
                Some(on) => {
                    format!("The print job '{job_id}' was already released (on printer '{on}').")
                }
                None => format!(
                    "The print job '{job_id}' is no longer waiting for release (it is {}).",
                    job_state_name(job.state)
                ),
            }));
        }
        let printed = PrintedJob {
            job_id: job.id.clone(),
            user_principal_name: job.user.user_principal_name.clone(),
            document_name: job.document_name.clone(),
            configuration: job.configuration.clone(),
            redirected_from: None,
        };
        if let Some(printer) = self.printers.get_mut(printer_id) {
            printer.printed.push(printed);
        }
        let Some(job) = self.jobs.get_mut(job_id) else {
            return Err(unknown());
        };
        job.state = JobState::Completed;
        job.released_on = Some(printer_id.to_owned());
        let mut v = self.job_json(root, &self.jobs[job_id], false, false);
        v["@odata.context"] = json!(format!("{root}/$metadata#microsoft.graph.printJob"));
        Ok(v)
    }

    /// A job on a pull printer, as the control API shows it.
    pub fn pull_job_view(&self, job_id: &str) -> Option<PullJobView> {
        let job = self.jobs.get(job_id)?;
        self.pull_printers.get(&job.printer_id)?;
        Some(PullJobView {
            id: job.id.clone(),
            pull_printer_id: job.printer_id.clone(),
            state: job_state_name(job.state).to_owned(),
            waiting: job.state == JobState::Paused,
            user_principal_name: job.user.user_principal_name.clone(),
            document_name: job.document_name.clone(),
            configuration: job.configuration.clone(),
            released_on: job.released_on.clone(),
        })
    }
}
