//! The Graph operations the daemon uses, each a typed method with a stable short name (the first
//! argument of every `Request`, used in errors, logs and metrics).
//!
//! App-only token unless noted; the task trigger operations take a [`DelegatedToken`] because Graph
//! offers them to signed-in Printer Administrators only. Path segments are percent-encoded; collections
//! follow `@odata.nextLink` as given, but only within the Graph root the client was built for (a token
//! must never be sent to another host).

use reqwest::Method;
use serde_json::json;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use url::Url;

use super::client::{Auth, GraphClient, Request};
use super::device_code::DelegatedToken;
use super::error::GraphError;
use super::model::{
    Expand, NewSubscription, Page, PrintJob, PrintJobConfiguration, PrintTask, PrintTaskDefinition,
    PrintTaskProcessingState, PrintTaskTrigger, Printer, Subscription, User,
};
use super::retry::Idempotency;

/// Quotes a string literal for an OData `$filter` (single quotes doubled).
fn odata_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// Percent-encodes a query value with `%20` for spaces (OData does not promise to read `+` as space).
fn query_value(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

fn with_query(mut url: Url, pairs: &[(&str, &str)]) -> Url {
    let query: Vec<String> = pairs
        .iter()
        .map(|(name, value)| format!("{name}={}", query_value(value)))
        .collect();
    if !query.is_empty() {
        url.set_query(Some(&query.join("&")));
    }
    url
}

/// The most group ids one `checkMemberGroups` call takes (Microsoft's documented limit).
const CHECK_MEMBER_GROUPS_MAX: usize = 20;

fn get(operation: &'static str, url: Url) -> Request<'static> {
    Request {
        operation,
        method: Method::GET,
        url,
        body: None,
        idempotency: Idempotency::Repeatable,
        auth: Auth::App,
    }
}

impl GraphClient {
    /// Reads every page of a collection.
    pub(super) async fn list_all<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        first: Url,
        auth: Auth<'_>,
    ) -> Result<Vec<T>, GraphError> {
        let mut items = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next.take() {
            let (page, link) = self.page(operation, url, auth).await?;
            items.extend(page);
            next = link;
        }
        Ok(items)
    }

    /// One page of a collection, and the next page's URL (checked: within the Graph root, not the
    /// same page again).
    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        operation: &'static str,
        url: Url,
        auth: Auth<'_>,
    ) -> Result<(Vec<T>, Option<Url>), GraphError> {
        let page: Page<T> = self
            .send_json(Request {
                auth,
                ..get(operation, url.clone())
            })
            .await?;
        let Some(link) = page.next_link else {
            return Ok((page.value, None));
        };
        let link_url = Url::parse(&link).map_err(|error| GraphError::InvalidResponse {
            operation,
            status: 200,
            detail: format!("@odata.nextLink {link:?} is not an absolute URL: {error}"),
            client_request_id: "n/a".to_owned(),
        })?;
        if link_url.origin() != self.inner.endpoints.graph_v1.origin() || link_url == url {
            return Err(GraphError::InvalidResponse {
                operation,
                status: 200,
                detail: format!(
                    "@odata.nextLink {link:?} leaves the Graph root or repeats the page"
                ),
                client_request_id: "n/a".to_owned(),
            });
        }
        Ok((page.value, Some(link_url)))
    }

    /// `list_tasks` a page at a time, as each page arrives: a caller can act on the first page while
    /// the next is read. The stream ends after the last page, or with the first error.
    pub fn task_pages(
        &self,
        definition_id: &str,
    ) -> impl futures::Stream<Item = Result<Vec<PrintTask>, GraphError>> + Send + '_ {
        let first = self.url(&["print", "taskDefinitions", definition_id, "tasks"]);
        futures::stream::try_unfold(Some(first), move |next| async move {
            let Some(url) = next else {
                return Ok(None);
            };
            let (page, link) = self.page("list_tasks", url?, Auth::App).await?;
            Ok(Some((page, link.map(Ok))))
        })
    }

    /// `list_task_definitions`: the task definitions this app created in the tenant.
    pub async fn list_task_definitions(&self) -> Result<Vec<PrintTaskDefinition>, GraphError> {
        let url = self.url(&["print", "taskDefinitions"])?;
        self.list_all("list_task_definitions", url, Auth::App).await
    }

    /// `get_task_definition`.
    pub async fn get_task_definition(
        &self,
        definition_id: &str,
    ) -> Result<PrintTaskDefinition, GraphError> {
        let url = self.url(&["print", "taskDefinitions", definition_id])?;
        self.send_json(get("get_task_definition", url)).await
    }

    /// `create_task_definition`: not repeated when the outcome is uncertain (it would create a second
    /// definition); `setup` settles by listing definitions.
    pub async fn create_task_definition(
        &self,
        display_name: &str,
    ) -> Result<PrintTaskDefinition, GraphError> {
        let url = self.url(&["print", "taskDefinitions"])?;
        self.send_json(Request {
            operation: "create_task_definition",
            method: Method::POST,
            url,
            body: Some(
                json!({"displayName": display_name, "createdBy": {"displayName": display_name}}),
            ),
            idempotency: Idempotency::NotRepeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `list_tasks`: running and recently completed tasks of a definition, all pages (the pages of
    /// [`GraphClient::task_pages`], gathered).
    pub async fn list_tasks(&self, definition_id: &str) -> Result<Vec<PrintTask>, GraphError> {
        futures::TryStreamExt::try_concat(self.task_pages(definition_id)).await
    }

    /// `get_task`.
    pub async fn get_task(
        &self,
        definition_id: &str,
        task_id: &str,
    ) -> Result<PrintTask, GraphError> {
        let url = self.url(&["print", "taskDefinitions", definition_id, "tasks", task_id])?;
        self.send_json(get("get_task", url)).await
    }

    /// `update_task_status`: PATCH `{"status":{"state","description"}}`; `completed` releases the job,
    /// `aborted` ends a deleted one.
    pub async fn update_task_status(
        &self,
        definition_id: &str,
        task_id: &str,
        state: &PrintTaskProcessingState,
        description: &str,
    ) -> Result<(), GraphError> {
        let url = self.url(&["print", "taskDefinitions", definition_id, "tasks", task_id])?;
        self.send_no_content(Request {
            operation: "update_task_status",
            method: Method::PATCH,
            url,
            body: Some(json!({"status": {"state": state, "description": description}})),
            idempotency: Idempotency::Repeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `get_job`, optionally expanding tasks and/or documents (the document's name is the job's name).
    pub async fn get_job(
        &self,
        printer_id: &str,
        job_id: &str,
        expand: &[Expand],
    ) -> Result<PrintJob, GraphError> {
        let url = self.url(&["print", "printers", printer_id, "jobs", job_id])?;
        let expand: Vec<&str> = expand.iter().map(|item| item.as_str()).collect();
        let url = if expand.is_empty() {
            url
        } else {
            with_query(url, &[("$expand", &expand.join(","))])
        };
        self.send_json(get("get_job", url)).await
    }

    /// `list_jobs` of a printer, all pages, optionally only those of `owner_upn`.
    pub async fn list_jobs(
        &self,
        printer_id: &str,
        owner_upn: Option<&str>,
    ) -> Result<Vec<PrintJob>, GraphError> {
        let url = self.url(&["print", "printers", printer_id, "jobs"])?;
        let url = match owner_upn {
            Some(upn) => with_query(
                url,
                &[(
                    "$filter",
                    &format!("createdBy/userPrincipalName eq {}", odata_literal(upn)),
                )],
            ),
            None => url,
        };
        self.list_all("list_jobs", url, Auth::App).await
    }

    /// `update_job_configuration`: PATCH `{"configuration":{…}}` with only the options that are set.
    /// Needs our task to be `processing`.
    pub async fn update_job_configuration(
        &self,
        printer_id: &str,
        job_id: &str,
        configuration: &PrintJobConfiguration,
    ) -> Result<(), GraphError> {
        let url = self.url(&["print", "printers", printer_id, "jobs", job_id])?;
        self.send_no_content(Request {
            operation: "update_job_configuration",
            method: Method::PATCH,
            url,
            body: Some(json!({"configuration": configuration})),
            idempotency: Idempotency::Repeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `abort_job`. Retried like an idempotent request: aborting twice cannot do harm; the second
    /// attempt fails with a 4xx (no processing task) that the caller settles by reading the job.
    pub async fn abort_job(
        &self,
        printer_id: &str,
        job_id: &str,
        reason: Option<&str>,
    ) -> Result<(), GraphError> {
        let url = self.url(&["print", "printers", printer_id, "jobs", job_id, "abort"])?;
        self.send_no_content(Request {
            operation: "abort_job",
            method: Method::POST,
            url,
            body: reason.map(|reason| json!({"reason": reason})),
            idempotency: Idempotency::Repeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `redirect_job` to another printer (find-me printing); the task completes by itself.
    ///
    /// Never blindly repeated: an uncertain failure is [`GraphError::OutcomeUnknown`], settled by
    /// re-reading the source job (`redirectedTo` set or our task no longer `processing` ⇒ it happened).
    /// Returns the new job on the destination printer when Graph's answer contains it.
    pub async fn redirect_job(
        &self,
        printer_id: &str,
        job_id: &str,
        destination_printer_id: &str,
        configuration: Option<&PrintJobConfiguration>,
    ) -> Result<Option<PrintJob>, GraphError> {
        let url = self.url(&["print", "printers", printer_id, "jobs", job_id, "redirect"])?;
        let mut body = json!({"destinationPrinterId": destination_printer_id});
        if let Some(configuration) = configuration {
            body["configuration"] = json!(configuration);
        }
        let response = self
            .send(Request {
                operation: "redirect_job",
                method: Method::POST,
                url,
                body: Some(body),
                idempotency: Idempotency::NotRepeatable,
                auth: Auth::App,
            })
            .await?;
        // The redirect happened whatever the body says: a body we cannot read must not look like failure.
        match serde_json::from_slice(&response.body) {
            Ok(job) => Ok(Some(job)),
            Err(error) => {
                tracing::warn!(client_request_id = %response.client_request_id, %error, "redirect_job succeeded but its body is not a printJob");
                Ok(None)
            }
        }
    }

    /// `get_printer`, with capabilities and defaults.
    pub async fn get_printer(&self, printer_id: &str) -> Result<Printer, GraphError> {
        let url = self.url(&["print", "printers", printer_id])?;
        self.send_json(get("get_printer", url)).await
    }

    /// `find_user_by_employee_id`: the user whose `employeeId` is `employee_id` (card lookup); an error if
    /// several users share it.
    pub async fn find_user_by_employee_id(
        &self,
        employee_id: &str,
    ) -> Result<Option<User>, GraphError> {
        let url = with_query(
            self.url(&["users"])?,
            &[
                (
                    "$filter",
                    &format!("employeeId eq {}", odata_literal(employee_id)),
                ),
                ("$select", "id,userPrincipalName,displayName,employeeId"),
            ],
        );
        let page: Page<User> = self.send_json(get("find_user_by_employee_id", url)).await?;
        let mut users = page.value.into_iter();
        match (users.next(), users.next()) {
            (first, None) => Ok(first),
            (Some(_), Some(_)) => Err(GraphError::Ambiguous {
                operation: "find_user_by_employee_id",
                detail: "several users share this employeeId; give each user a unique employeeId in Entra ID".to_owned(),
            }),
            (None, Some(_)) => Ok(None),
        }
    }

    /// `check_member_groups`: which of `group_ids` the user `user` (object id or UPN) is a member
    /// of, transitively (`POST /users/{id}/checkMemberGroups`, at most 20 ids a call: longer lists
    /// are sent in several calls). A read, so safe to repeat.
    pub async fn check_member_groups(
        &self,
        user: &str,
        group_ids: &[String],
    ) -> Result<Vec<String>, GraphError> {
        #[derive(serde::Deserialize)]
        struct Ids {
            value: Vec<String>,
        }
        let mut member_of = Vec::new();
        for chunk in group_ids.chunks(CHECK_MEMBER_GROUPS_MAX) {
            let url = self.url(&["users", user, "checkMemberGroups"])?;
            let ids: Ids = self
                .send_json(Request {
                    operation: "check_member_groups",
                    method: Method::POST,
                    url,
                    body: Some(serde_json::json!({ "groupIds": chunk })),
                    idempotency: Idempotency::Repeatable,
                    auth: Auth::App,
                })
                .await?;
            member_of.extend(ids.value);
        }
        Ok(member_of)
    }

    /// `get_group`: the group's display name, or `None` when no group has this id (404).
    pub async fn get_group(&self, group_id: &str) -> Result<Option<String>, GraphError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Group {
            #[serde(default)]
            display_name: Option<String>,
        }
        let url = with_query(
            self.url(&["groups", group_id])?,
            &[("$select", "id,displayName")],
        );
        match self.send_json::<Group>(get("get_group", url)).await {
            Ok(group) => Ok(Some(group.display_name.unwrap_or_default())),
            Err(error) if error.is_not_found() => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `create_subscription` (not repeated when uncertain; the caller lists or waits for the next renewal).
    pub async fn create_subscription(
        &self,
        subscription: &NewSubscription,
    ) -> Result<Subscription, GraphError> {
        let url = self.url(&["subscriptions"])?;
        let body = serde_json::to_value(subscription).map_err(|error| {
            GraphError::Configuration(format!("cannot encode the subscription: {error}"))
        })?;
        self.send_json(Request {
            operation: "create_subscription",
            method: Method::POST,
            url,
            body: Some(body),
            idempotency: Idempotency::NotRepeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `renew_subscription`: PATCH `{"expirationDateTime"}`.
    pub async fn renew_subscription(
        &self,
        subscription_id: &str,
        expiration: OffsetDateTime,
    ) -> Result<Subscription, GraphError> {
        let url = self.url(&["subscriptions", subscription_id])?;
        let expiration = expiration.format(&Rfc3339).map_err(|error| {
            GraphError::Configuration(format!("cannot format the expiry {expiration}: {error}"))
        })?;
        self.send_json(Request {
            operation: "renew_subscription",
            method: Method::PATCH,
            url,
            body: Some(json!({"expirationDateTime": expiration})),
            idempotency: Idempotency::Repeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `reauthorize_subscription` (answer to a `reauthorizationRequired` lifecycle event).
    pub async fn reauthorize_subscription(&self, subscription_id: &str) -> Result<(), GraphError> {
        let url = self.url(&["subscriptions", subscription_id, "reauthorize"])?;
        self.send_no_content(Request {
            operation: "reauthorize_subscription",
            method: Method::POST,
            url,
            body: None,
            idempotency: Idempotency::Repeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `delete_subscription`.
    pub async fn delete_subscription(&self, subscription_id: &str) -> Result<(), GraphError> {
        let url = self.url(&["subscriptions", subscription_id])?;
        self.send_no_content(Request {
            operation: "delete_subscription",
            method: Method::DELETE,
            url,
            body: None,
            idempotency: Idempotency::Repeatable,
            auth: Auth::App,
        })
        .await
    }

    /// `create_task_trigger` on a printer for our definition (delegated: a Printer Administrator).
    pub async fn create_task_trigger(
        &self,
        admin: &DelegatedToken,
        printer_id: &str,
        definition_id: &str,
    ) -> Result<PrintTaskTrigger, GraphError> {
        let url = self.url(&["print", "printers", printer_id, "taskTriggers"])?;
        let definition = self.url(&["print", "taskDefinitions", definition_id])?;
        self.send_json(Request {
            operation: "create_task_trigger",
            method: Method::POST,
            url,
            body: Some(
                json!({"event": "jobStarted", "definition@odata.bind": definition.as_str()}),
            ),
            idempotency: Idempotency::NotRepeatable,
            auth: Auth::Delegated(admin),
        })
        .await
    }

    /// `list_task_triggers` of a printer (delegated).
    pub async fn list_task_triggers(
        &self,
        admin: &DelegatedToken,
        printer_id: &str,
    ) -> Result<Vec<PrintTaskTrigger>, GraphError> {
        // The definition is a navigation property, absent unless expanded; `setup` needs it to tell
        // our trigger from another app's. Graph's page lists the options it refuses for this call
        // (`$count $format $search $select $skip $top`), not `$expand`; should it refuse it anyway
        // (400), the plain list is asked for, and callers judge ownership without the definition.
        let plain = self.url(&["print", "printers", printer_id, "taskTriggers"])?;
        let mut expanded = plain.clone();
        expanded
            .query_pairs_mut()
            .append_pair("$expand", "definition");
        match self
            .list_all("list_task_triggers", expanded, Auth::Delegated(admin))
            .await
        {
            Err(error) if error.status() == Some(400) => {
                self.list_all("list_task_triggers", plain, Auth::Delegated(admin))
                    .await
            }
            other => other,
        }
    }

    /// `delete_task_trigger` (delegated).
    pub async fn delete_task_trigger(
        &self,
        admin: &DelegatedToken,
        printer_id: &str,
        trigger_id: &str,
    ) -> Result<(), GraphError> {
        let url = self.url(&["print", "printers", printer_id, "taskTriggers", trigger_id])?;
        self.send_no_content(Request {
            operation: "delete_task_trigger",
            method: Method::DELETE,
            url,
            body: None,
            idempotency: Idempotency::Repeatable,
            auth: Auth::Delegated(admin),
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::graph::model::{PrintColorMode, PrintDuplexMode};
    use crate::graph::test_support::{
        JOB_PATH, Recorder, client_for, client_request_id, graph_error, graph_requests, job_json,
        options_for, token_endpoint,
    };
    use secrecy::SecretString;
    use std::time::Duration;
    use wiremock::matchers::{body_json, header, header_exists, method, path, query_param};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    #[tokio::test]
    async fn get_job_sends_the_bearer_token_a_client_request_id_and_the_expand() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .and(query_param("$expand", "documents,tasks"))
            .and(header("authorization", "Bearer app-token"))
            .and(header_exists("client-request-id"))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let job = client_for(&server, &recorder)
            .get_job("p1", "j1", &[Expand::Documents, Expand::Tasks])
            .await
            .unwrap();
        assert_eq!(
            job.created_by.unwrap().user_principal_name.as_deref(),
            Some("ada@contoso.com")
        );
        assert_eq!(
            job.documents.unwrap()[0].display_name.as_deref(),
            Some("report.pdf")
        );
        let sent = graph_requests(&server).await;
        assert!(uuid::Uuid::parse_str(&client_request_id(&sent[0])).is_ok());
    }

    #[tokio::test]
    async fn update_job_configuration_sends_only_the_options_that_are_set() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("PATCH"))
            .and(path(JOB_PATH))
            .and(body_json(json!({"configuration": {"copies": 2, "duplexMode": "flipOnLongEdge", "colorMode": "blackAndWhite"}})))
            .respond_with(ResponseTemplate::new(200).set_body_json(job_json()))
            .expect(1)
            .mount(&server)
            .await;
        let configuration = PrintJobConfiguration {
            copies: Some(2),
            duplex_mode: Some(PrintDuplexMode::FlipOnLongEdge),
            color_mode: Some(PrintColorMode::BlackAndWhite),
            ..PrintJobConfiguration::default()
        };
        let recorder = Recorder::default();
        client_for(&server, &recorder)
            .update_job_configuration("p1", "j1", &configuration)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn update_task_status_patches_state_and_description() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("PATCH"))
            .and(path("/v1.0/print/taskDefinitions/d1/tasks/t1"))
            .and(body_json(
                json!({"status": {"state": "completed", "description": "released at lobby"}}),
            ))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        client_for(&server, &recorder)
            .update_task_status(
                "d1",
                "t1",
                &PrintTaskProcessingState::Completed,
                "released at lobby",
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn list_tasks_follows_the_absolute_next_link_across_pages() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        let task = |id: &str| json!({"id": id, "parentUrl": "https://graph.microsoft.com/v1.0/print/printers/p1/jobs/1", "status": {"state": "processing"}});
        let next = format!(
            "{}/v1.0/print/taskDefinitions/d1/tasks?$skiptoken=abc",
            server.uri()
        );
        Mock::given(method("GET"))
            .and(path("/v1.0/print/taskDefinitions/d1/tasks"))
            .and(query_param("$skiptoken", "abc"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [task("t3")]})))
            .expect(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/v1.0/print/taskDefinitions/d1/tasks"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(
                    json!({"value": [task("t1"), task("t2")], "@odata.nextLink": next}),
                ),
            )
            .expect(1)
            .with_priority(2)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let tasks = client_for(&server, &recorder)
            .list_tasks("d1")
            .await
            .unwrap();
        let ids: Vec<&str> = tasks.iter().map(|task| task.id.as_str()).collect();
        assert_eq!(ids, ["t1", "t2", "t3"]);
    }

    #[tokio::test]
    async fn a_next_link_to_another_host_is_refused_so_the_token_never_leaves_graph() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"value": [], "@odata.nextLink": "https://evil.example/v1.0/print/taskDefinitions/d1/tasks"}),
            ))
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let error = client_for(&server, &recorder)
            .list_tasks("d1")
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("leaves the Graph root"),
            "{error}"
        );
    }

    #[tokio::test]
    async fn list_jobs_filters_by_owner_with_quotes_doubled() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path("/v1.0/print/printers/p1/jobs"))
            .and(query_param(
                "$filter",
                "createdBy/userPrincipalName eq 'o''brien@contoso.com'",
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [job_json()]})))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let jobs = client_for(&server, &recorder)
            .list_jobs("p1", Some("o'brien@contoso.com"))
            .await
            .unwrap();
        assert_eq!(jobs.len(), 1);
        let sent = graph_requests(&server).await;
        assert!(
            !sent[0].url.query().unwrap().contains('+'),
            "spaces are sent as %20"
        );
    }

    #[tokio::test]
    async fn a_graph_error_keeps_code_message_and_request_id() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(graph_error(404, "itemNotFound"))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let error = client_for(&server, &recorder)
            .get_job("p1", "j1", &[])
            .await
            .unwrap_err();
        assert!(error.is_not_found());
        assert_eq!(error.code(), Some("itemNotFound"));
        let text = error.to_string();
        assert!(
            text.starts_with("get_job failed: HTTP 404 itemNotFound: Please retry again later."),
            "{text}"
        );
        assert!(text.contains("request-id req-42"), "{text}");
    }

    #[tokio::test]
    async fn abort_job_sends_the_reason() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("POST"))
            .and(path("/v1.0/print/printers/p1/jobs/j1/abort"))
            .and(body_json(json!({"reason": "deleted at the station"})))
            .respond_with(ResponseTemplate::new(204))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        client_for(&server, &recorder)
            .abort_job("p1", "j1", Some("deleted at the station"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_task_trigger_is_created_with_the_delegated_token_and_an_odata_bind() {
        let server = MockServer::start().await;
        token_endpoint(&server, 0).await;
        Mock::given(method("POST"))
            .and(path("/v1.0/print/printers/p1/taskTriggers"))
            .and(header("authorization", "Bearer admin-token"))
            .and(body_json(json!({"event": "jobStarted",
                "definition@odata.bind": format!("{}/v1.0/print/taskDefinitions/d1", server.uri())})))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({"id": "tr1", "event": "jobStarted"})))
            .expect(1)
            .mount(&server)
            .await;
        let admin = DelegatedToken {
            access_token: SecretString::from("admin-token"),
            expires_at: time::macros::datetime!(2026-03-01 13:00 UTC),
            scopes: Vec::new(),
        };
        let recorder = Recorder::default();
        let trigger = client_for(&server, &recorder)
            .create_task_trigger(&admin, "p1", "d1")
            .await
            .unwrap();
        assert_eq!(trigger.id, "tr1");
    }

    #[tokio::test]
    async fn a_user_is_found_by_employee_id_with_the_properties_selected() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        Mock::given(method("GET"))
            .and(path("/v1.0/users"))
            .and(query_param("$filter", "employeeId eq '0042'"))
            .and(query_param("$select", "id,userPrincipalName,displayName,employeeId"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"value": [{"id": "u1", "userPrincipalName": "ada@contoso.com", "employeeId": "0042"}]}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let user = client_for(&server, &recorder)
            .find_user_by_employee_id("0042")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.user_principal_name.as_deref(), Some("ada@contoso.com"));
    }

    #[tokio::test]
    async fn a_subscription_is_created_and_renewed_with_graph_field_names() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        let subscription = json!({"id": "s1", "resource": "print/taskDefinitions/d1/tasks", "changeType": "created",
            "notificationUrl": "https://print.example.org/graph/notifications",
            "expirationDateTime": "2026-03-03T12:00:00Z"});
        Mock::given(method("POST"))
            .and(path("/v1.0/subscriptions"))
            .and(body_json(json!({"changeType": "created", "notificationUrl": "https://print.example.org/graph/notifications",
                "resource": "print/taskDefinitions/d1/tasks", "expirationDateTime": "2026-03-03T12:00:00Z",
                "clientState": "state-secret"})))
            .respond_with(ResponseTemplate::new(201).set_body_json(subscription.clone()))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("PATCH"))
            .and(path("/v1.0/subscriptions/s1"))
            .and(body_json(
                json!({"expirationDateTime": "2026-03-04T12:00:00Z"}),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(subscription))
            .expect(1)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let client = client_for(&server, &recorder);
        let created = client
            .create_subscription(&NewSubscription {
                change_type: "created".into(),
                notification_url: "https://print.example.org/graph/notifications".into(),
                lifecycle_notification_url: None,
                resource: "print/taskDefinitions/d1/tasks".into(),
                expiration_date_time: time::macros::datetime!(2026-03-03 12:00 UTC),
                client_state: SecretString::from("state-secret"),
            })
            .await
            .unwrap();
        assert_eq!(created.id, "s1");
        client
            .renew_subscription("s1", time::macros::datetime!(2026-03-04 12:00 UTC))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn no_more_requests_than_the_concurrency_limit_are_in_flight() {
        let server = MockServer::start().await;
        token_endpoint(&server, 1).await;
        let delay = Duration::from_millis(300);
        Mock::given(method("GET"))
            .and(path(JOB_PATH))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(job_json())
                    .set_delay(delay),
            )
            .expect(3)
            .mount(&server)
            .await;
        let recorder = Recorder::default();
        let mut options = options_for(&server, &recorder);
        options.max_concurrent_requests = 1;
        let client = GraphClient::new(options).unwrap();
        client.get_job("p1", "j1", &[]).await.unwrap();
        let started = std::time::Instant::now();
        let (first, second) = tokio::join!(
            client.get_job("p1", "j1", &[]),
            client.get_job("p1", "j1", &[])
        );
        first.unwrap();
        second.unwrap();
        assert!(
            started.elapsed() >= delay * 2,
            "one at a time: {:?}",
            started.elapsed()
        );
    }
}
