//! Print jobs: submitting one as a user (held when the printer carries a trigger), their status and
//! JSON, PATCHing the configuration, abort, cancel and redirect, and the control API's view of a job.
//! Jobs waiting on a pull printer are jobs too (their `printer_id` is the pull printer's); the rules
//! that are theirs alone live in `pull_printers`.

use super::odata::next_link;
use super::*;

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
    /// The member printer a pull-print job was released on.
    pub released_on: Option<String>,
}

pub(super) fn job_status(job: &Job) -> Value {
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

pub(super) fn job_state_name(state: JobState) -> &'static str {
    match state {
        JobState::Paused => "paused",
        JobState::Processing => "processing",
        JobState::Completed => "completed",
        JobState::Aborted => "aborted",
        JobState::Canceled => "canceled",
    }
}

impl World {
    /// Who submits a job: the directory's person with that UPN (their id and name), or a person
    /// made up from the UPN and the given name.
    pub(crate) fn submitter(&self, upn: String, display_name: Option<String>) -> DirectoryUser {
        let directory = self
            .users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(&upn))
            .cloned();
        DirectoryUser {
            id: directory.as_ref().map_or_else(new_id, |u| u.id.clone()),
            display_name: display_name
                .or_else(|| directory.as_ref().map(|u| u.display_name.clone()))
                .unwrap_or_else(|| upn.clone()),
            user_principal_name: upn,
            employee_id: None,
        }
    }

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
        let user = self.submitter(new.user_principal_name, new.user_display_name);
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
            released_on: None,
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
    pub(super) fn print(&mut self, job_id: &str) {
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

    pub(super) fn job_on(&self, printer_id: &str, job_id: &str) -> Result<&Job, GraphError> {
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

    pub(super) fn task_json(&self, root: &str, task: &Task) -> Value {
        json!({"id": task.id, "parentUrl": Self::job_url(root, &task.printer_id, &task.job_id),
            "status": {"state": task.state, "description": task.description}})
    }

    pub(super) fn job_json(
        &self,
        root: &str,
        job: &Job,
        expand_tasks: bool,
        expand_documents: bool,
    ) -> Value {
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
        self.job_entity(
            root,
            job,
            &format!("print/printers('{printer_id}')/jobs"),
            expand,
            owner,
        )
    }

    /// A job as its own entity, under the collection `context` (for `@odata.context`); another
    /// person's job is not found when `owner` is set.
    pub(super) fn job_entity(
        &self,
        root: &str,
        job: &Job,
        context: &str,
        expand: &Expand,
        owner: Option<&str>,
    ) -> Result<Value, GraphError> {
        if owner.is_some_and(|upn| !job.user.user_principal_name.eq_ignore_ascii_case(upn)) {
            return Err(GraphError::not_found(format!(
                "The print job '{}' was not found.",
                job.id
            )));
        }
        let mut v = self.job_json(root, job, expand.tasks, expand.documents);
        v["@odata.context"] = json!(format!("{root}/$metadata#{context}/$entity"));
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
        Ok(self.jobs_page(
            root,
            printer_id,
            &format!("print/printers('{printer_id}')/jobs"),
            upn_filter,
            expand,
            after,
            page_size,
            self_link,
        ))
    }

    /// One page of the jobs on `holder` (a printer's or a pull printer's id), oldest first.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn jobs_page(
        &self,
        root: &str,
        holder: &str,
        context: &str,
        upn_filter: Option<&str>,
        expand: &Expand,
        after: Option<u64>,
        page_size: usize,
        self_link: &str,
    ) -> Value {
        let mut matching: Vec<(u64, &Job)> = self
            .jobs
            .values()
            .filter(|j| j.printer_id == holder)
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
        let mut v =
            json!({"@odata.context": format!("{root}/$metadata#{context}"), "value": value});
        if more && let Some((last, _)) = page.last() {
            v["@odata.nextLink"] = json!(next_link(self_link, *last));
        }
        v
    }

    /// The job's `processing` task of a trigger created by `app_id`, if any.
    pub(super) fn releasable_task(&self, job: &Job, app_id: &str) -> Option<String> {
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

    pub(super) fn require_releasable(
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
            released_on: None,
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
}
