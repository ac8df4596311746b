//! Task definitions and task triggers: the app-scoped definitions (visible only to the app that
//! created them) and the one trigger a printer may carry, which is what makes a printer hold its jobs.

use super::*;

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

impl World {
    pub(super) fn definition_json(d: &Definition) -> Value {
        json!({"id": d.id, "displayName": d.display_name,
            "createdBy": {"appId": d.app_id, "displayName": d.app_display_name}})
    }

    pub(super) fn definition(&self, app_id: &str, id: &str) -> Result<&Definition, GraphError> {
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

    /// A trigger as Graph shows it; its `definition` navigation property only when expanded.
    pub(super) fn trigger_json(&self, t: &Trigger, expand_definition: bool) -> Value {
        let mut v = json!({"id": t.id, "event": "jobStarted"});
        if expand_definition && let Some(d) = self.definitions.get(&t.definition_id) {
            v["definition"] = Self::definition_json(d);
        }
        v
    }

    pub(super) fn remove_trigger(&mut self, id: &str) {
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

    pub(super) fn trigger_on(
        &self,
        printer_id: &str,
        trigger_id: &str,
    ) -> Result<&Trigger, GraphError> {
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
}
