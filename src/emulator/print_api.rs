//! The Graph routes (`/v1.0/…`, including native pull printing's pull printers and job release):
//! route matching, then for every request the same pipeline —
//! record, fault injection, authentication, permission check, the operation, call counting — and
//! Graph's headers (`request-id`, `client-request-id`) and error body on every answer.
//!
//! Routes are matched by hand rather than by the router so that literal segments are
//! case-insensitive (as in Graph) and every request, including unknown ones, is recorded, counted
//! and answered with Graph's 404 body.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;

use super::Shared;
use super::faults::AfterEffect;
use super::graph_error::GraphError;
use super::identity::{self, Caller, Permission};
use super::state::{Expand, graph_time, parse_eq_filter, refuse_query_options};
use super::subscriptions;

const TASK_DEFINITION_RW: &[&str] = &["PrintTaskDefinition.ReadWrite.All"];
const PRINTER_READ_APP: &[&str] = &["Printer.Read.All", "Printer.ReadWrite.All"];
const PRINTER_READ_DELEGATED: &[&str] = &[
    "Printer.Read.All",
    "Printer.ReadWrite.All",
    "Printer.FullControl.All",
];
const PRINTER_WRITE_DELEGATED: &[&str] = &["Printer.ReadWrite.All", "Printer.FullControl.All"];
const JOB_READ_APP: &[&str] = &[
    "PrintJob.ReadBasic.All",
    "PrintJob.Read.All",
    "PrintJob.ReadWriteBasic.All",
    "PrintJob.ReadWrite.All",
];
const JOB_READ_DELEGATED: &[&str] = &[
    "PrintJob.ReadBasic",
    "PrintJob.Read",
    "PrintJob.ReadBasic.All",
    "PrintJob.Read.All",
    "PrintJob.ReadWriteBasic",
    "PrintJob.ReadWrite",
    "PrintJob.ReadWriteBasic.All",
    "PrintJob.ReadWrite.All",
];
const JOB_WRITE_APP: &[&str] = &[
    "PrintJob.ReadWriteBasic.All",
    "PrintJob.ReadWrite.All",
    "PrintJob.Manage.All",
];
const JOB_CANCEL_DELEGATED: &[&str] = &[
    "PrintJob.ReadWriteBasic",
    "PrintJob.ReadWrite",
    "PrintJob.ReadWriteBasic.All",
    "PrintJob.ReadWrite.All",
];
const JOB_RELEASE_DELEGATED: &[&str] = &[
    "PrintJob.ReadWriteBasic",
    "PrintJob.ReadWrite",
    "PrintJob.ReadWrite.All",
    "PrintJob.ReadWriteBasic.All",
];
/// The release scopes that reach other people's jobs.
const JOB_RELEASE_ANY_OWNER: &[&str] = &["PrintJob.ReadWrite.All", "PrintJob.ReadWriteBasic.All"];
const PULL_PRINTER_READ_APP: &[&str] = &["PullPrintPrinter.Read.All"];
const PULL_PRINTER_READ_DELEGATED: &[&str] = &[
    "PullPrintPrinter.Read.All",
    "PullPrintPrinter.ReadWrite.All",
    "PullPrintPrinter.FullControl.All",
];
const GROUP_READ: &[&str] = &[
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
];
const USER_READ: &[&str] = &[
    "User.Read.All",
    "User.ReadWrite.All",
    "Directory.Read.All",
    "Directory.ReadWrite.All",
];

/// The print operations, with their path parameters.
#[derive(Debug, Clone)]
enum Route {
    ListDefinitions,
    CreateDefinition,
    GetDefinition(String),
    UpdateDefinition(String),
    DeleteDefinition(String),
    ListTasks(String),
    GetTask(String, String),
    UpdateTask(String, String),
    ListPrinters,
    GetPrinter(String),
    ListTriggers(String),
    CreateTrigger(String),
    GetTrigger(String, String),
    DeleteTrigger(String, String),
    ListJobs(String),
    GetJob(String, String),
    UpdateJob(String, String),
    RedirectJob(String, String),
    AbortJob(String, String),
    CancelJob(String, String),
    ReleaseJob(String),
    ListPullPrinters,
    GetPullPrinter(String),
    ListPullPrinterMembers(String),
    ListPullJobs(String),
    GetPullJob(String, String),
    ListUsers,
    CheckMemberGroups(String),
    GetGroup(String),
    CreateSubscription,
    ListSubscriptions,
    GetSubscription(String),
    UpdateSubscription(String),
    DeleteSubscription(String),
    ReauthorizeSubscription(String),
}

fn eq(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

fn parse_route(method: &Method, path: &str) -> Option<Route> {
    let segments: Vec<String> = path
        .trim_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let s: Vec<&str> = segments.iter().map(String::as_str).collect();
    let m = method.as_str();
    use Route::*;
    Some(match (m, s.as_slice()) {
        ("GET", [p, d]) if eq(p, "print") && eq(d, "taskDefinitions") => ListDefinitions,
        ("POST", [p, d]) if eq(p, "print") && eq(d, "taskDefinitions") => CreateDefinition,
        (_, [p, d, id]) if eq(p, "print") && eq(d, "taskDefinitions") => match m {
            "GET" => GetDefinition((*id).to_owned()),
            "PATCH" => UpdateDefinition((*id).to_owned()),
            "DELETE" => DeleteDefinition((*id).to_owned()),
            _ => return None,
        },
        ("GET", [p, d, id, t]) if eq(p, "print") && eq(d, "taskDefinitions") && eq(t, "tasks") => {
            ListTasks((*id).to_owned())
        }
        (_, [p, d, id, t, task])
            if eq(p, "print") && eq(d, "taskDefinitions") && eq(t, "tasks") =>
        {
            match m {
                "GET" => GetTask((*id).to_owned(), (*task).to_owned()),
                "PATCH" => UpdateTask((*id).to_owned(), (*task).to_owned()),
                _ => return None,
            }
        }
        ("GET", [p, pr]) if eq(p, "print") && eq(pr, "printers") => ListPrinters,
        ("GET", [p, pr, id]) if eq(p, "print") && eq(pr, "printers") => {
            GetPrinter((*id).to_owned())
        }
        (_, [p, pr, id, tt]) if eq(p, "print") && eq(pr, "printers") && eq(tt, "taskTriggers") => {
            match m {
                "GET" => ListTriggers((*id).to_owned()),
                "POST" => CreateTrigger((*id).to_owned()),
                _ => return None,
            }
        }
        (_, [p, pr, id, tt, t])
            if eq(p, "print") && eq(pr, "printers") && eq(tt, "taskTriggers") =>
        {
            match m {
                "GET" => GetTrigger((*id).to_owned(), (*t).to_owned()),
                "DELETE" => DeleteTrigger((*id).to_owned(), (*t).to_owned()),
                _ => return None,
            }
        }
        ("GET", [p, pr, id, j]) if eq(p, "print") && eq(pr, "printers") && eq(j, "jobs") => {
            ListJobs((*id).to_owned())
        }
        ("POST", [p, pr, id, j, r])
            if eq(p, "print") && eq(pr, "printers") && eq(j, "jobs") && eq(r, "release") =>
        {
            ReleaseJob((*id).to_owned())
        }
        ("GET", [p, pp]) if eq(p, "print") && eq(pp, "pullPrintPrinters") => ListPullPrinters,
        ("GET", [p, pp, id]) if eq(p, "print") && eq(pp, "pullPrintPrinters") => {
            GetPullPrinter((*id).to_owned())
        }
        ("GET", [p, pp, id, n]) if eq(p, "print") && eq(pp, "pullPrintPrinters") => {
            if eq(n, "printers") {
                ListPullPrinterMembers((*id).to_owned())
            } else if eq(n, "jobs") {
                ListPullJobs((*id).to_owned())
            } else {
                return None;
            }
        }
        ("GET", [p, pp, id, j, job])
            if eq(p, "print") && eq(pp, "pullPrintPrinters") && eq(j, "jobs") =>
        {
            GetPullJob((*id).to_owned(), (*job).to_owned())
        }
        (_, [p, pr, id, j, job]) if eq(p, "print") && eq(pr, "printers") && eq(j, "jobs") => {
            match m {
                "GET" => GetJob((*id).to_owned(), (*job).to_owned()),
                "PATCH" => UpdateJob((*id).to_owned(), (*job).to_owned()),
                _ => return None,
            }
        }
        ("POST", [p, pr, id, j, job, action])
            if eq(p, "print") && eq(pr, "printers") && eq(j, "jobs") =>
        {
            let (id, job) = ((*id).to_owned(), (*job).to_owned());
            match action.to_ascii_lowercase().as_str() {
                "redirect" => RedirectJob(id, job),
                "abort" => AbortJob(id, job),
                "cancel" => CancelJob(id, job),
                _ => return None,
            }
        }
        ("GET", [u]) if eq(u, "users") => ListUsers,
        ("POST", [u, id, c]) if eq(u, "users") && eq(c, "checkMemberGroups") => {
            CheckMemberGroups((*id).to_owned())
        }
        ("GET", [g, id]) if eq(g, "groups") => GetGroup((*id).to_owned()),
        ("POST", [s]) if eq(s, "subscriptions") => CreateSubscription,
        ("GET", [s]) if eq(s, "subscriptions") => ListSubscriptions,
        (_, [s, id]) if eq(s, "subscriptions") => match m {
            "GET" => GetSubscription((*id).to_owned()),
            "PATCH" => UpdateSubscription((*id).to_owned()),
            "DELETE" => DeleteSubscription((*id).to_owned()),
            _ => return None,
        },
        ("POST", [s, id, r]) if eq(s, "subscriptions") && eq(r, "reauthorize") => {
            ReauthorizeSubscription((*id).to_owned())
        }
        _ => return None,
    })
}

fn percent_decode(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map_or_else(|| segment.to_owned(), |(_, v)| v.into_owned())
}

impl Route {
    /// (operation name, route key as call counts show it).
    fn names(&self) -> (&'static str, &'static str) {
        use Route::*;
        match self {
            ListDefinitions => ("listTaskDefinitions", "GET /print/taskDefinitions"),
            CreateDefinition => ("createTaskDefinition", "POST /print/taskDefinitions"),
            GetDefinition(_) => ("getTaskDefinition", "GET /print/taskDefinitions/{id}"),
            UpdateDefinition(_) => ("updateTaskDefinition", "PATCH /print/taskDefinitions/{id}"),
            DeleteDefinition(_) => ("deleteTaskDefinition", "DELETE /print/taskDefinitions/{id}"),
            ListTasks(_) => ("listTasks", "GET /print/taskDefinitions/{id}/tasks"),
            GetTask(..) => ("getTask", "GET /print/taskDefinitions/{id}/tasks/{id}"),
            UpdateTask(..) => ("updateTask", "PATCH /print/taskDefinitions/{id}/tasks/{id}"),
            ListPrinters => ("listPrinters", "GET /print/printers"),
            GetPrinter(_) => ("getPrinter", "GET /print/printers/{id}"),
            ListTriggers(_) => ("listTaskTriggers", "GET /print/printers/{id}/taskTriggers"),
            CreateTrigger(_) => (
                "createTaskTrigger",
                "POST /print/printers/{id}/taskTriggers",
            ),
            GetTrigger(..) => (
                "getTaskTrigger",
                "GET /print/printers/{id}/taskTriggers/{id}",
            ),
            DeleteTrigger(..) => (
                "deleteTaskTrigger",
                "DELETE /print/printers/{id}/taskTriggers/{id}",
            ),
            ListJobs(_) => ("listJobs", "GET /print/printers/{id}/jobs"),
            GetJob(..) => ("getJob", "GET /print/printers/{id}/jobs/{id}"),
            UpdateJob(..) => ("updateJob", "PATCH /print/printers/{id}/jobs/{id}"),
            RedirectJob(..) => (
                "redirectJob",
                "POST /print/printers/{id}/jobs/{id}/redirect",
            ),
            AbortJob(..) => ("abortJob", "POST /print/printers/{id}/jobs/{id}/abort"),
            CancelJob(..) => ("cancelJob", "POST /print/printers/{id}/jobs/{id}/cancel"),
            ReleaseJob(_) => ("releaseJob", "POST /print/printers/{id}/jobs/release"),
            ListPullPrinters => ("listPullPrintPrinters", "GET /print/pullPrintPrinters"),
            GetPullPrinter(_) => ("getPullPrintPrinter", "GET /print/pullPrintPrinters/{id}"),
            ListPullPrinterMembers(_) => (
                "listPullPrintPrinterPrinters",
                "GET /print/pullPrintPrinters/{id}/printers",
            ),
            ListPullJobs(_) => (
                "listPullPrintPrinterJobs",
                "GET /print/pullPrintPrinters/{id}/jobs",
            ),
            GetPullJob(..) => (
                "getPullPrintPrinterJob",
                "GET /print/pullPrintPrinters/{id}/jobs/{id}",
            ),
            ListUsers => ("listUsers", "GET /users"),
            CheckMemberGroups(_) => ("checkMemberGroups", "POST /users/{id}/checkMemberGroups"),
            GetGroup(_) => ("getGroup", "GET /groups/{id}"),
            CreateSubscription => ("createSubscription", "POST /subscriptions"),
            ListSubscriptions => ("listSubscriptions", "GET /subscriptions"),
            GetSubscription(_) => ("getSubscription", "GET /subscriptions/{id}"),
            UpdateSubscription(_) => ("updateSubscription", "PATCH /subscriptions/{id}"),
            DeleteSubscription(_) => ("deleteSubscription", "DELETE /subscriptions/{id}"),
            ReauthorizeSubscription(_) => (
                "reauthorizeSubscription",
                "POST /subscriptions/{id}/reauthorize",
            ),
        }
    }

    /// The least-privileged permission table of the operation (reference §3, permissions.json).
    fn permission(&self) -> Permission {
        use Route::*;
        let app_only = |app| Permission {
            app: Some(app),
            app_also: None,
            delegated: None,
            admin: false,
        };
        match self {
            ListDefinitions
            | CreateDefinition
            | GetDefinition(_)
            | UpdateDefinition(_)
            | DeleteDefinition(_)
            | ListTasks(_)
            | GetTask(..)
            | UpdateTask(..)
            | CreateSubscription
            | ListSubscriptions
            | GetSubscription(_)
            | UpdateSubscription(_)
            | DeleteSubscription(_)
            | ReauthorizeSubscription(_) => app_only(TASK_DEFINITION_RW),
            ListPrinters => Permission {
                app: None,
                app_also: None,
                delegated: Some(PRINTER_READ_DELEGATED),
                admin: true,
            },
            GetPrinter(_) => Permission {
                app: Some(PRINTER_READ_APP),
                app_also: None,
                delegated: Some(PRINTER_READ_DELEGATED),
                admin: false,
            },
            ListTriggers(_) | GetTrigger(..) => Permission {
                app: None,
                app_also: None,
                delegated: Some(PRINTER_READ_DELEGATED),
                admin: true,
            },
            CreateTrigger(_) | DeleteTrigger(..) => Permission {
                app: None,
                app_also: None,
                delegated: Some(PRINTER_WRITE_DELEGATED),
                admin: true,
            },
            ListJobs(_) | GetJob(..) => Permission {
                app: Some(JOB_READ_APP),
                app_also: Some(PRINTER_READ_APP),
                delegated: Some(JOB_READ_DELEGATED),
                admin: false,
            },
            UpdateJob(..) | AbortJob(..) => Permission {
                app: Some(JOB_WRITE_APP),
                app_also: Some(PRINTER_READ_APP),
                delegated: None,
                admin: false,
            },
            RedirectJob(..) => app_only(&["PrintJob.Manage.All"]),
            CancelJob(..) => Permission {
                app: None,
                app_also: None,
                delegated: Some(JOB_CANCEL_DELEGATED),
                admin: false,
            },
            ReleaseJob(_) => Permission {
                app: None,
                app_also: None,
                delegated: Some(JOB_RELEASE_DELEGATED),
                admin: false,
            },
            ListPullPrinters | GetPullPrinter(_) | ListPullPrinterMembers(_) => Permission {
                app: Some(PULL_PRINTER_READ_APP),
                app_also: None,
                delegated: Some(PULL_PRINTER_READ_DELEGATED),
                admin: true,
            },
            // As a printer's jobs: a job permission, and for an app the right to read the holder.
            ListPullJobs(_) | GetPullJob(..) => Permission {
                app: Some(JOB_READ_APP),
                app_also: Some(PULL_PRINTER_READ_APP),
                delegated: Some(JOB_READ_DELEGATED),
                admin: false,
            },
            ListUsers => Permission {
                app: Some(USER_READ),
                app_also: None,
                delegated: Some(USER_READ),
                admin: false,
            },
            // user: checkMemberGroups: User.Read.All and GroupMember.Read.All (or Group.Read.All),
            // or Directory.Read.All alone; modelled as both lists, each with Directory.Read.All.
            CheckMemberGroups(_) => Permission {
                app: Some(USER_READ),
                app_also: Some(GROUP_READ),
                delegated: None,
                admin: false,
            },
            GetGroup(_) => Permission {
                app: Some(GROUP_READ),
                app_also: None,
                delegated: None,
                admin: false,
            },
        }
    }
}

/// What an operation answered.
enum Reply {
    Json(StatusCode, Value),
    NoContent,
}

/// `$expand` on a printTaskTrigger: its one navigation property, `definition`.
fn parse_trigger_expand(query: &[(String, String)]) -> Result<bool, GraphError> {
    let mut definition = false;
    for (_, value) in query.iter().filter(|(k, _)| eq(k, "$expand")) {
        for item in value.split(',').map(str::trim) {
            if eq(item, "definition") {
                definition = true;
            } else {
                return Err(GraphError::invalid_request(format!(
                    "Cannot $expand '{item}' on a printTaskTrigger (definition)."
                )));
            }
        }
    }
    Ok(definition)
}

fn parse_expand(query: &[(String, String)]) -> Result<Expand, GraphError> {
    let mut expand = Expand::default();
    for (_, value) in query.iter().filter(|(k, _)| eq(k, "$expand")) {
        for item in value.split(',').map(str::trim) {
            match item.to_ascii_lowercase().as_str() {
                "tasks" => expand.tasks = true,
                "documents" => expand.documents = true,
                _ => {
                    return Err(GraphError::invalid_request(format!(
                        "Cannot $expand '{item}' on a printJob (tasks, documents)."
                    )));
                }
            }
        }
    }
    Ok(expand)
}

/// The UPN a delegated caller who is no Printer Administrator is restricted to (own jobs only).
fn own_jobs_only(caller: &Caller) -> Option<String> {
    caller
        .delegated
        .as_ref()
        .filter(|d| !d.admin)
        .map(|d| d.upn.clone())
}

/// The options of a job list (a printer's or a pull printer's): the owner filter (a delegated
/// caller's own UPN overrides any `$filter`), `$expand` and the page position.
fn job_list_options(
    query: &[(String, String)],
    caller: &Caller,
) -> Result<(Option<String>, Expand, Option<u64>), GraphError> {
    refuse_query_options(query, &["$count", "$search"])?;
    let expand = parse_expand(query)?;
    let filter = match query.iter().find(|(k, _)| eq(k, "$filter")) {
        Some((_, f)) => Some(
            parse_eq_filter(f, "createdBy/userPrincipalName").ok_or_else(|| {
                GraphError::invalid_request(format!(
                    "Unsupported filter '{f}': use createdBy/userPrincipalName eq '…'."
                ))
            })?,
        ),
        None => None,
    };
    Ok((own_jobs_only(caller).or(filter), expand, skiptoken(query)?))
}

fn skiptoken(query: &[(String, String)]) -> Result<Option<u64>, GraphError> {
    query
        .iter()
        .find(|(k, _)| eq(k, "$skiptoken"))
        .map(|(_, v)| {
            v.parse::<u64>()
                .map_err(|_| GraphError::invalid_request(format!("Invalid $skiptoken '{v}'.")))
        })
        .transpose()
}

async fn execute(
    shared: &Arc<Shared>,
    route: &Route,
    caller: &Caller,
    query: &[(String, String)],
    body: &Value,
    headers: &HeaderMap,
    self_link: &str,
) -> Result<Reply, GraphError> {
    use Route::*;
    let root = shared.root();
    let app = caller.app_id.as_str();
    let evolvable_ok = headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.to_ascii_lowercase()
                .contains("include-unknown-enum-members")
        });
    const UNSUPPORTED: &[&str] = &["$count", "$format", "$search", "$select", "$skip", "$top"];
    let ok = |v: Value| Ok(Reply::Json(StatusCode::OK, v));
    match route {
        ListDefinitions => {
            refuse_query_options(query, UNSUPPORTED)?;
            ok(shared.world().list_definitions(&root, app))
        }
        CreateDefinition => Ok(Reply::Json(
            StatusCode::CREATED,
            shared.world().create_definition(&root, app, body)?,
        )),
        GetDefinition(id) => ok(shared.world().get_definition(&root, app, id)?),
        UpdateDefinition(id) => ok(shared.world().update_definition(app, id, body)?),
        DeleteDefinition(id) => shared
            .world()
            .delete_definition(app, id)
            .map(|()| Reply::NoContent),
        ListTasks(d) => {
            refuse_query_options(query, UNSUPPORTED)?;
            let after = skiptoken(query)?;
            let mut page =
                shared
                    .world()
                    .list_tasks(&root, app, d, after, shared.page_size, self_link)?;
            shared.fault_engine().omit_listed(&mut page);
            ok(page)
        }
        GetTask(d, t) => ok(shared.world().get_task(&root, app, d, t)?),
        UpdateTask(d, t) => ok(shared.world().update_task(&root, app, d, t, body)?),
        ListPrinters => {
            refuse_query_options(query, &["$count", "$search"])?;
            ok(shared.world().list_printers(&root))
        }
        GetPrinter(p) => ok(shared.world().get_printer(&root, p)?),
        ListTriggers(p) => {
            refuse_query_options(query, UNSUPPORTED)?;
            let expand = parse_trigger_expand(query)?;
            ok(shared.world().list_triggers(&root, p, expand)?)
        }
        CreateTrigger(p) => Ok(Reply::Json(
            StatusCode::CREATED,
            shared
                .world()
                .create_trigger_from_body(&root, p, app, body)?,
        )),
        GetTrigger(p, t) => {
            let expand = parse_trigger_expand(query)?;
            ok(shared.world().get_trigger(p, t, expand)?)
        }
        DeleteTrigger(p, t) => shared
            .world()
            .delete_trigger(p, t)
            .map(|()| Reply::NoContent),
        ListJobs(p) => {
            let (filter, expand, after) = job_list_options(query, caller)?;
            ok(shared.world().list_jobs(
                &root,
                p,
                filter.as_deref(),
                &expand,
                after,
                shared.page_size,
                self_link,
            )?)
        }
        GetJob(p, j) => {
            let expand = parse_expand(query)?;
            let mut job =
                shared
                    .world()
                    .get_job(&root, p, j, &expand, own_jobs_only(caller).as_deref())?;
            shared.fault_engine().ambiguate_job(&mut job);
            ok(job)
        }
        ListPullJobs(p) => {
            let (filter, expand, after) = job_list_options(query, caller)?;
            ok(shared.world().list_pull_jobs(
                &root,
                p,
                filter.as_deref(),
                &expand,
                after,
                shared.page_size,
                self_link,
            )?)
        }
        GetPullJob(p, j) => {
            let expand = parse_expand(query)?;
            ok(shared.world().get_pull_job(
                &root,
                p,
                j,
                &expand,
                own_jobs_only(caller).as_deref(),
            )?)
        }
        ReleaseJob(p) => {
            let user = caller
                .delegated
                .as_ref()
                .ok_or_else(|| GraphError::access_denied("release is delegated-only."))?;
            let any_owner = user
                .scopes
                .iter()
                .any(|s| JOB_RELEASE_ANY_OWNER.contains(&s.as_str()));
            ok(shared
                .world()
                .release_pull_job(&root, p, body, &user.upn, any_owner)?)
        }
        ListPullPrinters => ok(shared.world().list_pull_printers(&root, query)?),
        GetPullPrinter(p) => ok(shared.world().get_pull_printer(&root, p, query)?),
        ListPullPrinterMembers(p) => {
            ok(shared.world().list_pull_printer_members(&root, p, query)?)
        }
        UpdateJob(p, j) => ok(shared
            .world()
            .update_job(&root, p, j, app, body, evolvable_ok)?),
        RedirectJob(p, j) => {
            let (response, created) = {
                let mut world = shared.world();
                let response = world.redirect_job(&root, p, j, app, body, evolvable_ok)?;
                (response, std::mem::take(&mut world.created_by_redirect))
            };
            for created in &created {
                after_task_created(shared, Some(created));
            }
            ok(response)
        }
        AbortJob(p, j) => shared
            .world()
            .abort_job(p, j, app, body)
            .map(|()| Reply::NoContent),
        CancelJob(p, j) => {
            let user = caller
                .delegated
                .as_ref()
                .ok_or_else(|| GraphError::access_denied("cancel is delegated-only."))?;
            shared
                .world()
                .cancel_job(p, j, &user.upn, user.admin)
                .map(|()| Reply::NoContent)
        }
        ListUsers => {
            let filter = query
                .iter()
                .find(|(k, _)| eq(k, "$filter"))
                .map(|(_, v)| v.as_str());
            ok(shared.world().list_users(&root, filter)?)
        }
        CheckMemberGroups(user) => ok(shared.world().check_member_groups(&root, user, body)?),
        GetGroup(id) => {
            refuse_query_options(query, &["$count", "$search", "$skip", "$top", "$filter"])?;
            ok(shared.world().get_group(&root, id)?)
        }
        CreateSubscription => Ok(Reply::Json(
            StatusCode::CREATED,
            subscriptions::create(shared, app, body).await?,
        )),
        ListSubscriptions => ok(subscriptions::list(shared, app)),
        GetSubscription(id) => ok(subscriptions::get(shared, app, id)?),
        UpdateSubscription(id) => ok(subscriptions::renew(shared, app, id, body)?),
        DeleteSubscription(id) => subscriptions::delete(shared, app, id).map(|()| Reply::NoContent),
        ReauthorizeSubscription(id) => {
            subscriptions::reauthorize(shared, app, id).map(|()| Reply::NoContent)
        }
    }
}

/// Every request under `/v1.0`.
pub(crate) async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let client_request_id = headers
        .get("client-request-id")
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| request_id.clone(), str::to_owned);
    let path_and_query = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let full_url = format!("{}{}", shared.base, path_and_query);
    if let Some(recorder) = &shared.recorder {
        recorder.record(method.as_str(), &full_url, &body);
    }
    let path = uri.path().strip_prefix("/v1.0").unwrap_or(uri.path());
    let query: Vec<(String, String)> =
        url::form_urlencoded::parse(uri.query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();

    let route = parse_route(&method, path);
    let (operation, route_key) = route
        .as_ref()
        .map_or(("unknown", "(unknown route)"), Route::names);
    let count_key = if route.is_some() {
        route_key.to_owned()
    } else {
        format!("{} (unknown route)", method.as_str())
    };

    let result = run_pipeline(
        &shared,
        route.as_ref(),
        operation,
        route_key,
        &query,
        &headers,
        &body,
        &full_url,
    )
    .await;
    let response = match result {
        Ok((reply, after_effect)) => {
            let response = match reply {
                Reply::Json(status, value) => (status, axum::Json(value)).into_response(),
                Reply::NoContent => StatusCode::NO_CONTENT.into_response(),
            };
            match after_effect {
                Some(AfterEffect::GatewayTimeout) => error_response(
                    &shared,
                    &GraphError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "gatewayTimeout",
                        "The operation timed out.",
                    ),
                    &request_id,
                    &client_request_id,
                ),
                Some(AfterEffect::Unavailable { retry_after_secs }) => error_response(
                    &shared,
                    &GraphError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "serviceNotAvailable",
                        "The service is temporarily unavailable. Please retry later.",
                    )
                    .with_retry_after(Some(retry_after_secs)),
                    &request_id,
                    &client_request_id,
                ),
                Some(AfterEffect::Delay { ms }) => {
                    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                    response
                }
                Some(AfterEffect::Reset) => {
                    // Counted as status 0: no answer was sent (whether or not it took effect).
                    shared.world().count(&count_key, 0);
                    return reset_response();
                }
                None => response,
            }
        }
        Err(error) => error_response(&shared, &error, &request_id, &client_request_id),
    };
    shared.world().count(&count_key, response.status().as_u16());
    with_ids(response, &request_id, &client_request_id)
}

#[allow(clippy::too_many_arguments)]
async fn run_pipeline(
    shared: &Arc<Shared>,
    route: Option<&Route>,
    operation: &str,
    route_key: &str,
    query: &[(String, String)],
    headers: &HeaderMap,
    body: &[u8],
    full_url: &str,
) -> Result<(Reply, Option<AfterEffect>), GraphError> {
    let Some(route) = route else {
        return Err(GraphError::new(
            StatusCode::NOT_FOUND,
            "itemNotFound",
            "Resource not found for the segment or the method is not supported by the emulator.",
        ));
    };
    let decision = shared
        .fault_engine()
        .decide_request(operation, route_key, full_url);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some((status, retry_after)) = decision.refuse {
        return Err(match status {
            429 => GraphError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequests",
                "Please retry again later.",
            ),
            503 => GraphError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "serviceNotAvailable",
                "The service is temporarily unavailable. Please retry later.",
            ),
            403 => GraphError::new(
                StatusCode::FORBIDDEN,
                "accessDenied",
                "Either the signed-in user or the app does not have permission for this operation.",
            ),
            _ => GraphError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "gatewayTimeout",
                "The operation timed out.",
            ),
        }
        .with_retry_after(retry_after));
    }
    if decision.reset {
        // Not performed; the reply is a placeholder that is never sent (the connection is closed).
        return Ok((Reply::NoContent, Some(AfterEffect::Reset)));
    }
    let caller = identity::authenticate(shared, headers)?;
    if matches!(route, Route::ReleaseJob(_)) && caller.delegated.is_none() {
        // Release is delegated only; `authorize` refuses the app-only token just below. Tests
        // count these attempts to prove the daemon never makes them.
        shared.world().refused_app_only_releases += 1;
    }
    identity::authorize(&caller, &route.permission(), operation)?;
    let body: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body).map_err(|e| {
            GraphError::new(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("The request body is not valid JSON: {e}."),
            )
        })?
    };
    let reply = execute(shared, route, &caller, query, &body, headers, full_url).await?;
    Ok((reply, decision.after_effect))
}

/// An answer that never arrives: its body stream fails before the first byte, and hyper closes the
/// connection when a body stream yields an error, so the client sees a reset, not a status.
fn reset_response() -> Response {
    let failing = futures::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "emulated connection reset",
        ))
    });
    Response::new(axum::body::Body::from_stream(failing))
}

/// Graph's error answer for a request.
fn error_response(
    shared: &Shared,
    error: &GraphError,
    request_id: &str,
    client_request_id: &str,
) -> Response {
    let body = error.body(&graph_time(shared.now()), request_id, client_request_id);
    let mut response = (error.status, axum::Json(body)).into_response();
    if let Some(seconds) = error.retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(seconds));
    }
    if error.status == StatusCode::UNAUTHORIZED {
        response
            .headers_mut()
            .insert("www-authenticate", HeaderValue::from_static("Bearer realm=\"\", authorization_uri=\"https://login.microsoftonline.com/common/oauth2/authorize\""));
    }
    response
}

fn with_ids(mut response: Response, request_id: &str, client_request_id: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("request-id", v);
    }
    if let Ok(v) = HeaderValue::from_str(client_request_id) {
        response.headers_mut().insert("client-request-id", v);
    }
    response
}

/// Any path outside the emulator's routes: Graph's 404 body.
pub(crate) async fn not_found(State(shared): State<Arc<Shared>>) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let error = GraphError::new(
        StatusCode::NOT_FOUND,
        "UnknownError",
        "No HTTP resource was found that matches the request URI.",
    );
    with_ids(error_response(&shared, &error, &id, &id), &id, &id)
}

/// Task creation hooks into notification delivery after the world lock is released.
pub(crate) fn after_task_created(
    shared: &Arc<Shared>,
    created: Option<&super::state::TaskCreated>,
) {
    if let Some(created) = created {
        subscriptions::notify_task_created(shared, created);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_case_insensitively_and_unknown_ones_do_not() {
        assert!(
            matches!(parse_route(&Method::GET, "/print/taskdefinitions/d/TASKS"), Some(Route::ListTasks(d)) if d == "d")
        );
        assert!(matches!(
            parse_route(&Method::POST, "/print/printers/p/jobs/5/redirect"),
            Some(Route::RedirectJob(..))
        ));
        assert!(parse_route(&Method::PUT, "/print/printers/p/jobs/5").is_none());
        assert!(
            matches!(parse_route(&Method::POST, "/print/printers/p/jobs/Release"), Some(Route::ReleaseJob(p)) if p == "p")
        );
        assert!(matches!(
            parse_route(&Method::GET, "/print/pullprintprinters/q/JOBS/7"),
            Some(Route::GetPullJob(..))
        ));
        assert!(matches!(
            parse_route(&Method::GET, "/print/pullPrintPrinters/q/printers"),
            Some(Route::ListPullPrinterMembers(..))
        ));
        assert!(parse_route(&Method::GET, "/me").is_none());
    }
}
