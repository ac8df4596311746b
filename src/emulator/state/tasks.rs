//! Print tasks: the task a trigger creates for each held job, listing and reading them under their
//! definition, and the state changes that release (`completed`) or abort a held job.

use super::odata::next_link;
use super::*;

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

impl World {
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

    pub(super) fn task_under(
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

    /// How many tasks are in `state`.
    pub fn count_tasks_in(&self, state: &str) -> usize {
        self.tasks.values().filter(|t| t.state == state).count()
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

pub(super) fn default_task_description(state: &str) -> &'static str {
    match state {
        "completed" => "Task execution has completed.",
        "aborted" => "Task execution was aborted.",
        "processing" => "The task is being processed.",
        _ => "Task execution is pending.",
    }
}
