//! `pullprintd doctor`: checks that a deployment can work, one line per check, each with its fix.
//!
//! Checks, in order: an app token can be had (a wrong secret is named, with Entra's AADSTS reason);
//! the token's `roles` claim holds each application permission the configuration needs; the task
//! definition exists; each queue and station printer exists; and, when `intake.public_url` is set,
//! the webhook answers Graph's validation handshake there.
//!
//! Verdicts: `ok`, `MISSING` (something to create, grant or configure), `FAIL` (a check that could
//! not pass: refused, unreachable). Optional checks (a permission only some features need) never fail
//! the run. Exit code (see [`DoctorReport::exit_code`]): 0 when every required check is `ok`, else 1.
//!
//! Doctor only reads. Task triggers are not checked: listing them needs a Printer Administrator's
//! sign-in, which `pullprintd setup --dry-run` does.

use crate::job::RuleAction;
use crate::job::rules::{Forced, refused_by_printer};
use std::fmt::{self, Write as _};
use std::time::Duration;

use crate::config::Settings;
use crate::graph::{GraphClient, GraphError};
use crate::station::users::UserDirectory;

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Passed.
    Ok,
    /// Something must be created, granted or configured.
    Missing,
    /// The check failed (refused, unreachable, wrong answer).
    Fail,
}

impl Verdict {
    /// The word printed at the start of the line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Missing => "MISSING",
            Self::Fail => "FAIL",
        }
    }
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked (`app token`, `permission Printer.Read.All`…).
    pub subject: String,
    /// The outcome.
    pub verdict: Verdict,
    /// False for checks that do not fail the run (optional permissions).
    pub required: bool,
    /// What was found, and for a problem, the fix.
    pub detail: String,
}

/// Every check, in the order run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorReport {
    /// The checks.
    pub checks: Vec<Check>,
}

impl DoctorReport {
    /// True when every required check passed.
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| !c.required || c.verdict == Verdict::Ok)
    }

    /// 0 when every required check passed, else 1 (a health check's convention: "not healthy").
    pub fn exit_code(&self) -> u8 {
        u8::from(!self.passed())
    }

    /// The check about `subject`, if it ran.
    pub fn check(&self, subject: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.subject == subject)
    }

    fn push(
        &mut self,
        subject: impl Into<String>,
        verdict: Verdict,
        required: bool,
        detail: String,
    ) {
        self.checks.push(Check {
            subject: subject.into(),
            verdict,
            required,
            detail,
        });
    }
}

impl fmt::Display for DoctorReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::new();
        for check in &self.checks {
            let optional = if check.required { "" } else { " (optional)" };
            let _ = writeln!(
                out,
                "{:<7} {}{optional}: {}",
                check.verdict.as_str(),
                check.subject,
                check.detail
            );
        }
        let _ = writeln!(
            out,
            "{}",
            if self.passed() {
                "All required checks passed."
            } else {
                "Some required checks did not pass; fix them and run doctor again."
            }
        );
        f.write_str(&out)
    }
}

/// An application permission and the roles that satisfy it.
struct Permission {
    /// The least-privileged name, printed.
    name: &'static str,
    /// Roles that grant it (the name itself, and higher-privileged ones).
    satisfied_by: &'static [&'static str],
    /// What it is needed for.
    needed_for: &'static str,
}

const TASK_DEFINITION: Permission = Permission {
    name: "PrintTaskDefinition.ReadWrite.All",
    satisfied_by: &["PrintTaskDefinition.ReadWrite.All"],
    needed_for: "the task definition, its tasks and the change-notification subscription",
};
const PULL_PRINTER_READ: Permission = Permission {
    name: "PullPrintPrinter.Read.All",
    satisfied_by: &["PullPrintPrinter.Read.All"],
    needed_for: "the pull-print printers of [printing] pull_printers (their names, and settling a release)",
};

const PRINTER_READ: Permission = Permission {
    name: "Printer.Read.All",
    satisfied_by: &[
        "Printer.Read.All",
        "Printer.ReadWrite.All",
        "Printer.FullControl.All",
    ],
    needed_for: "printer capabilities (release options), and every job operation",
};
const JOB_WRITE: Permission = Permission {
    name: "PrintJob.ReadWriteBasic.All",
    satisfied_by: &[
        "PrintJob.ReadWriteBasic.All",
        "PrintJob.ReadWrite.All",
        "PrintJob.Manage.All",
    ],
    needed_for: "reading, patching and aborting held jobs",
};
const JOB_MANAGE: Permission = Permission {
    name: "PrintJob.Manage.All",
    satisfied_by: &["PrintJob.Manage.All"],
    needed_for: "find-me release: redirecting a job to a station's printer",
};
const USER_READ: Permission = Permission {
    name: "User.Read.All",
    satisfied_by: &[
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    ],
    needed_for: "card lookup in Entra ID (employeeId)",
};

const GROUP_READ: Permission = Permission {
    name: "GroupMember.Read.All",
    satisfied_by: &[
        "GroupMember.Read.All",
        "Group.Read.All",
        "Directory.Read.All",
        "Group.ReadWrite.All",
        "Directory.ReadWrite.All",
    ],
    needed_for: "rules matching Entra ID groups (match.groups), with User.Read.All",
};

const GRANT_FIX: &str = "add it in Entra admin center → App registrations → pullprintd → API \
     permissions → Microsoft Graph → Application permissions, then Grant admin consent";

/// How long the webhook has to answer the handshake (Graph gives it 10 seconds).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs every check against Graph with `client` (built from `settings.graph`). Never fails: each
/// problem is a line of the report.
pub async fn doctor(client: &GraphClient, settings: &Settings) -> DoctorReport {
    let mut report = DoctorReport::default();
    // The users file is read once: both the permission check and the group check need its groups.
    let delegate_groups = delegate_groups(settings);
    let graph_ready =
        check_token_and_permissions(client, settings, !delegate_groups.is_empty(), &mut report)
            .await;
    if graph_ready {
        check_definition(client, settings, &mut report).await;
        check_printers(client, settings, &mut report).await;
        check_rules(client, settings, &mut report).await;
        check_delegate_groups(client, &delegate_groups, &mut report).await;
        check_pull_printers(client, settings, &mut report).await;
    }
    if let Some(public_url) = &settings.intake.public_url {
        check_webhook(public_url, &mut report).await;
    }
    report
}

/// The token and the `roles` claim; false when there is no token (the Graph checks are skipped).
async fn check_token_and_permissions(
    client: &GraphClient,
    settings: &Settings,
    names_delegate_groups: bool,
    report: &mut DoctorReport,
) -> bool {
    let roles = match client.app_token_roles().await {
        Ok(roles) => {
            report.push(
                "app token",
                Verdict::Ok,
                true,
                format!(
                    "Entra ID issued a token to client {} in tenant {}",
                    settings.graph.client_id, settings.graph.tenant_id
                ),
            );
            roles
        }
        Err(error) => {
            // A token error already says its fix; an unreachable Entra ID does not.
            let fix = if error.is_transient() && !matches!(error, GraphError::Token(_)) {
                " Check network access to Entra ID and try again."
            } else {
                ""
            };
            report.push(
                "app token",
                Verdict::Fail,
                true,
                format!("{error}.{fix} The Graph checks are skipped."),
            );
            return false;
        }
    };
    let station_elsewhere = settings
        .stations
        .iter()
        .any(|s| !settings.printing.queue_printers.contains(&s.printer_id));
    // Group rules read memberships: checkMemberGroups needs both.
    let names_groups = settings
        .rule_set()
        .is_ok_and(|rules| !rules.groups().is_empty())
        || names_delegate_groups;
    let pull = !settings.printing.pull_printers.is_empty();
    let wanted = [
        (&TASK_DEFINITION, true),
        (&PRINTER_READ, true),
        (&JOB_WRITE, true),
        (&JOB_MANAGE, station_elsewhere),
        (&USER_READ, names_groups),
        (&GROUP_READ, names_groups),
        (&PULL_PRINTER_READ, pull),
    ];
    for (permission, required) in wanted {
        let granted = permission
            .satisfied_by
            .iter()
            .find(|name| roles.iter().any(|role| role == *name));
        let (verdict, detail) = match granted {
            Some(name) if *name == permission.name => (
                Verdict::Ok,
                format!("granted; needed for {}", permission.needed_for),
            ),
            Some(name) => (
                Verdict::Ok,
                format!("satisfied by {name}; needed for {}", permission.needed_for),
            ),
            None => (
                Verdict::Missing,
                format!(
                    "not granted; needed for {}. Fix: {GRANT_FIX}",
                    permission.needed_for
                ),
            ),
        };
        let detail = if permission.name == JOB_MANAGE.name && !required {
            format!("{detail} (every station prints on a queue printer, so redirect is not used)")
        } else {
            detail
        };
        report.push(
            format!("permission {}", permission.name),
            verdict,
            required,
            detail,
        );
    }
    true
}

/// The configured task definition exists (for this app).
async fn check_definition(client: &GraphClient, settings: &Settings, report: &mut DoctorReport) {
    let id = settings.printing.task_definition_id.trim();
    let subject = "task definition";
    if id.is_empty() {
        report.push(
            subject,
            Verdict::Missing,
            true,
            "printing.task_definition_id is not set. Fix: run `pullprintd setup` and put the line it \
             prints in the configuration"
                .to_owned(),
        );
        return;
    }
    let (verdict, detail) = match client.get_task_definition(id).await {
        Ok(definition) => (
            Verdict::Ok,
            format!("{id} exists (\"{}\")", definition.display_name),
        ),
        Err(error) if error.is_not_found() => (
            Verdict::Missing,
            format!(
                "{id} does not exist for this app (deleted, or created by another app registration). \
                 Fix: run `pullprintd setup` and use the id it prints"
            ),
        ),
        Err(error) => (Verdict::Fail, error.to_string()),
    };
    report.push(subject, verdict, true, detail);
}

/// Each queue printer and each station printer exists.
async fn check_printers(client: &GraphClient, settings: &Settings, report: &mut DoctorReport) {
    let mut seen = std::collections::HashSet::new();
    let queue = settings
        .printing
        .queue_printers
        .iter()
        .map(|id| (id, "printing.queue_printers".to_owned()));
    let stations = settings
        .stations
        .iter()
        .map(|s| (&s.printer_id, format!("station {}", s.id)));
    for (printer_id, source) in queue.chain(stations) {
        if !seen.insert(printer_id.as_str()) {
            continue;
        }
        let (verdict, detail) = match client.get_printer(printer_id).await {
            Ok(printer) => (
                Verdict::Ok,
                format!("exists (\"{}\"), from {source}", printer.display_name),
            ),
            Err(error) if error.is_not_found() => (
                Verdict::Missing,
                format!(
                    "does not exist in Universal Print (from {source}). Fix: copy the id from the \
                     Universal Print portal (Printers → the printer → Printer ID)"
                ),
            ),
            Err(error) => (Verdict::Fail, format!("{error} (from {source})")),
        };
        report.push(format!("printer {printer_id}"), verdict, true, detail);
    }
}

/// Each `[printing] pull_printers` entry exists, and each station's printer is one of its members
/// (a job waiting there can only be released at a member printer). The people's delegated
/// permission (`PrintJob.ReadWriteBasic`, for `release`) cannot be read with the app's token: it is
/// checked at each Entra ID sign-in, from the scopes Entra ID grants, and by `setup` from the
/// administrator's sign-in.
async fn check_pull_printers(client: &GraphClient, settings: &Settings, report: &mut DoctorReport) {
    for id in &settings.printing.pull_printers {
        let subject = format!("pull printer {id}");
        let printer = match client.get_pull_printer(id).await {
            Ok(printer) => printer,
            Err(error) if error.is_not_found() => {
                report.push(
                    subject,
                    Verdict::Missing,
                    true,
                    "does not exist. Fix: copy the id of the pull printer from the Universal Print portal \
                     (Pull printers → the printer)"
                        .to_owned(),
                );
                continue;
            }
            Err(error) => {
                let fix = if error.status() == Some(403) {
                    " Fix: grant the application permission PullPrintPrinter.Read.All and admin consent"
                } else {
                    ""
                };
                report.push(subject, Verdict::Fail, true, format!("{error}.{fix}"));
                continue;
            }
        };
        report.push(
            subject,
            Verdict::Ok,
            true,
            format!("exists (\"{}\")", printer.display_name),
        );
        if printer.include_all_printers {
            report.push(
                format!("pull printer {id} members"),
                Verdict::Ok,
                true,
                "includes every printer of the tenant, so every station's printer".to_owned(),
            );
            continue;
        }
        let members = match client.list_pull_printer_members(id).await {
            Ok(members) => members,
            Err(error) => {
                report.push(
                    format!("pull printer {id} members"),
                    Verdict::Fail,
                    false,
                    format!(
                        "{error}; the members could not be read, so the stations are not checked"
                    ),
                );
                continue;
            }
        };
        for station in &settings.stations {
            let member = members.iter().any(|p| p.id == station.printer_id);
            report.push(
                format!("pull printer {id} at station {}", station.id),
                if member { Verdict::Ok } else { Verdict::Missing },
                true,
                if member {
                    format!("{} is a member printer", station.printer_id)
                } else {
                    format!(
                        "{} is not a member printer, so jobs waiting on the pull printer cannot be released \
                         at this station. Fix: add it in the Universal Print portal (Pull printers → the \
                         printer → Printers → Add)",
                        station.printer_id
                    )
                },
            );
        }
    }
}

/// The `delegate_group`s of the users file (none when there is no file, or it does not load:
/// `check-config` reports that).
fn delegate_groups(settings: &Settings) -> Vec<String> {
    settings
        .users
        .file
        .as_deref()
        .and_then(|path| UserDirectory::load(path).ok())
        .map(|directory| directory.delegate_groups())
        .unwrap_or_default()
}

/// Each `delegate_group` of the users file names a group that exists: a wrong id would silently
/// give that person's delegates nothing.
async fn check_delegate_groups(client: &GraphClient, groups: &[String], report: &mut DoctorReport) {
    for group in groups {
        let (verdict, detail) = match client.get_group(group.trim()).await {
            Ok(Some(name)) => (Verdict::Ok, format!("exists (\"{name}\")")),
            Ok(None) => (
                Verdict::Missing,
                "no Entra ID group has this id; its members cannot release for the person who named \
                 it. Fix: copy the Object ID from Entra admin center → Groups → the group into that \
                 person's delegate_group in the users file"
                    .to_owned(),
            ),
            Err(error) if error.is_forbidden() => (
                Verdict::Fail,
                format!(
                    "{error}. Fix: grant GroupMember.Read.All (and User.Read.All) to the app: {GRANT_FIX}"
                ),
            ),
            Err(error) => (Verdict::Fail, error.to_string()),
        };
        report.push(format!("delegate group {group}"), verdict, true, detail);
    }
}

/// Each `[[rules]]` entry that prints (or redirects) with forced options: its printers exist and
/// support the forced values (`check-config` cannot ask Graph; at run time a refused value holds the
/// job instead, so this finds the mistake before anyone prints).
async fn check_rules(client: &GraphClient, settings: &Settings, report: &mut DoctorReport) {
    let Ok(rules) = settings.rule_set() else {
        return;
    };
    for (index, rule) in rules.rules().enumerate() {
        for group in &rule.matches.groups {
            let subject = format!("rule {index} \"{}\" group {group}", rule.name);
            let (verdict, detail) = match client.get_group(group.trim()).await {
                Ok(Some(name)) => (Verdict::Ok, format!("exists (\"{name}\")")),
                Ok(None) => (
                    Verdict::Missing,
                    format!(
                        "no Entra ID group has this id; the rule's jobs would be held. Fix: copy the \
                         Object ID from Entra admin center → Groups → the group into \
                         rules[{index}].match.groups"
                    ),
                ),
                Err(error) if error.is_forbidden() => (
                    Verdict::Fail,
                    format!(
                        "{error}. Fix: grant GroupMember.Read.All (and User.Read.All) to the app: {GRANT_FIX}"
                    ),
                ),
                Err(error) => (Verdict::Fail, error.to_string()),
            };
            report.push(subject, verdict, true, detail);
        }
        let targets: Vec<&String> = match (&rule.action, &rule.printer) {
            (RuleAction::Redirect, Some(printer)) => vec![printer],
            (RuleAction::Deny, _) => continue,
            _ if rule.force == Forced::default() => continue,
            _ if rule.matches.printers.is_empty() => {
                settings.printing.queue_printers.iter().collect()
            }
            _ => rule.matches.printers.iter().collect(),
        };
        for printer_id in targets {
            let subject = format!("rule {index} \"{}\" on printer {printer_id}", rule.name);
            let (verdict, detail) = match client.get_printer(printer_id).await {
                Ok(printer) => match refused_by_printer(&rule.force, &printer) {
                    None => (
                        Verdict::Ok,
                        "the printer supports the forced options".to_owned(),
                    ),
                    Some(why) => (
                        Verdict::Fail,
                        format!(
                            "{why}; jobs would be held instead of printed. Fix: change the rule's \
                             [rules.force] or its printers"
                        ),
                    ),
                },
                Err(error) if error.is_not_found() => (
                    Verdict::Missing,
                    "the printer does not exist in Universal Print. Fix: copy the id from the \
                     Universal Print portal (Printers → the printer → Printer ID)"
                        .to_owned(),
                ),
                Err(error) => (Verdict::Fail, error.to_string()),
            };
            report.push(subject, verdict, true, detail);
        }
    }
}

/// Posts Graph's validation handshake to the public URL and expects the token echoed as text/plain.
async fn check_webhook(public_url: &url::Url, report: &mut DoctorReport) {
    let subject = format!("webhook {public_url}");
    let token = format!("pullprintd-doctor-{}", uuid::Uuid::new_v4().simple());
    let mut url = public_url.clone();
    url.query_pairs_mut().append_pair("validationToken", &token);
    let http = match reqwest::Client::builder()
        .timeout(HANDSHAKE_TIMEOUT)
        .build()
    {
        Ok(http) => http,
        Err(error) => {
            report.push(
                subject,
                Verdict::Fail,
                true,
                format!("cannot build an HTTP client: {error}"),
            );
            return;
        }
    };
    let fix = "Fix: make intake.public_url reach `pullprintd run` (reverse proxy route, TLS \
               certificate, firewall), and check the daemon is running";
    let outcome = http
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "text/plain")
        .send()
        .await;
    let (verdict, detail) = match outcome {
        Err(error) => (
            Verdict::Fail,
            format!("unreachable: {}. {fix}", error.without_url()),
        ),
        Ok(response) => {
            let status = response.status();
            let plain = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/plain"));
            let body = response.text().await.unwrap_or_default();
            if !status.is_success() {
                (
                    Verdict::Fail,
                    format!("answered HTTP {status} to the validation handshake. {fix}"),
                )
            } else if body != token {
                (
                    Verdict::Fail,
                    format!(
                        "answered HTTP {status} without echoing the validation token (Graph would \
                         refuse the subscription). {fix}"
                    ),
                )
            } else if !plain {
                (
                    Verdict::Fail,
                    "echoed the token but not as text/plain, which Graph requires".to_owned(),
                )
            } else {
                (
                    Verdict::Ok,
                    "answers Graph's validation handshake".to_owned(),
                )
            }
        }
    };
    report.push(subject, verdict, true, detail);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(verdict: Verdict, required: bool) -> Check {
        Check {
            subject: "x".to_owned(),
            verdict,
            required,
            detail: String::new(),
        }
    }

    #[test]
    fn a_missing_optional_check_does_not_fail_the_run_but_a_required_one_does() {
        let mut report = DoctorReport {
            checks: vec![check(Verdict::Ok, true), check(Verdict::Missing, false)],
        };
        assert!(report.passed());
        assert_eq!(report.exit_code(), 0);
        report.checks.push(check(Verdict::Fail, true));
        assert!(!report.passed());
        assert_eq!(report.exit_code(), 1);
    }

    #[test]
    fn each_line_starts_with_the_verdict_and_marks_optional_checks() {
        let report = DoctorReport {
            checks: vec![Check {
                subject: "permission User.Read.All".to_owned(),
                verdict: Verdict::Missing,
                required: false,
                detail: "not granted".to_owned(),
            }],
        };
        let text = report.to_string();
        assert!(
            text.starts_with("MISSING permission User.Read.All (optional): not granted"),
            "{text}"
        );
    }
}
