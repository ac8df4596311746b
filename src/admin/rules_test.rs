//! `pullprintd rules test`: which `[[rules]]` entry a job would match, and why, without touching
//! Graph or reading any secret. Only the `[[rules]]` and `[release]` tables of the file are read, so
//! an administrator can try rules on a machine that has no credentials.

use std::path::Path;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::config::ReleaseSettings;
use crate::graph::enums::{PrintColorMode, PrintDuplexMode};
use crate::graph::model::{PrintJob, PrintJobConfiguration};
use crate::job::{DiscoveredVia, JobFacts, NewHeldJob, RuleSet};
use crate::release::service::ReleaseService;

/// A job to try, from the command line (or a printJob JSON file for the owner, name, size,
/// configuration and time).
#[derive(Debug, Clone, Default)]
pub struct TryJob {
    /// The queue printer's id.
    pub printer: String,
    /// The owner's UPN.
    pub owner: Option<String>,
    /// The document name.
    pub name: Option<String>,
    /// The documents' size in bytes.
    pub size: Option<u64>,
    /// Requested copies.
    pub copies: Option<i32>,
    /// Requested `colorMode`.
    pub color: Option<String>,
    /// Requested `duplexMode`.
    pub duplex: Option<String>,
    /// Submission time, RFC 3339; now when absent.
    pub at: Option<String>,
    /// Entra ID groups the owner is a member of (`--member-of`); Graph is not asked.
    pub member_of: Vec<String>,
    /// A printJob as Graph returns it (`GET …/jobs/{id}?$expand=documents`).
    pub job_file: Option<std::path::PathBuf>,
}

/// Why `rules test` could not answer.
#[derive(Debug, thiserror::Error)]
pub enum RulesTestError {
    /// The configuration file or its rules are wrong (exit 78).
    #[error("{0}")]
    Config(String),
    /// The job described is wrong (exit 65).
    #[error("{0}")]
    Job(String),
}

/// Reads the rules of `config`, decides for `job`, and returns the report to print.
pub fn rules_test(config: &Path, job: &TryJob) -> Result<String, RulesTestError> {
    let text = std::fs::read_to_string(config).map_err(|error| {
        RulesTestError::Config(format!("cannot read {}: {error}", config.display()))
    })?;
    let mut file: toml::Table = toml::from_str(&text).map_err(|error| {
        RulesTestError::Config(format!("{} is not valid TOML: {error}", config.display()))
    })?;
    let tables = match file.remove("rules") {
        None => Vec::new(),
        Some(toml::Value::Array(rules)) => rules
            .into_iter()
            .enumerate()
            .map(|(index, rule)| match rule {
                toml::Value::Table(table) => Ok(table),
                _ => Err(RulesTestError::Config(format!(
                    "rules[{index}] is not a table; write each rule as [[rules]]"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(RulesTestError::Config(
                "`rules` is not a list of tables; write each rule as [[rules]]".to_owned(),
            ));
        }
    };
    let rules = RuleSet::compile(&tables).map_err(|error| {
        RulesTestError::Config(format!(
            "configuration key `{}`: {}",
            error.key, error.problem
        ))
    })?;
    let release: ReleaseSettings = match file.remove("release") {
        None => ReleaseSettings::default(),
        Some(value) => value.try_into().map_err(|error: toml::de::Error| {
            RulesTestError::Config(format!("[release]: {}", error.message()))
        })?,
    };
    let mut described = match &job.job_file {
        Some(path) => from_job_file(path)?,
        None => Described::default(),
    };
    if let Some(owner) = &job.owner {
        described.owner = owner.clone();
    }
    if let Some(name) = &job.name {
        described.name = name.clone();
    }
    if job.size.is_some() {
        described.size = job.size;
    }
    if job.copies.is_some() {
        described.configuration.copies = job.copies;
    }
    if let Some(color) = &job.color {
        described.configuration.color_mode = Some(member::<PrintColorMode>(color, "--color")?);
    }
    if let Some(duplex) = &job.duplex {
        described.configuration.duplex_mode = Some(member::<PrintDuplexMode>(duplex, "--duplex")?);
    }
    if let Some(at) = &job.at {
        described.at = Some(OffsetDateTime::parse(at, &Rfc3339).map_err(|_| {
            RulesTestError::Job(format!(
                "--at {at} is not an RFC 3339 time; write e.g. 2026-12-01T08:30:00+01:00"
            ))
        })?);
    }
    let at = described.at.unwrap_or_else(OffsetDateTime::now_utc);
    if described.owner.is_empty() {
        return Err(RulesTestError::Job(
            "give the owner: --owner UPN (or --job with createdBy)".to_owned(),
        ));
    }
    let membership = crate::job::rules::Membership {
        member_of: job
            .member_of
            .iter()
            .map(|g| g.trim().to_lowercase())
            .collect(),
        ..Default::default()
    };
    let decision = rules.decide(&JobFacts {
        printer_id: &job.printer,
        owner_upn: &described.owner,
        name: &described.name,
        size: described.size,
        configuration: &described.configuration,
        at,
        // Without --member-of, a group condition says the groups are not known here.
        groups: (!job.member_of.is_empty()).then_some(&membership),
    });
    let mut report = String::new();
    for line in &decision.why {
        report.push_str(line);
        report.push('\n');
    }
    let held = NewHeldJob {
        task_id: "(test)".to_owned(),
        definition_id: String::new(),
        printer_id: job.printer.clone(),
        job_id: String::new(),
        owner_upn: described.owner.clone(),
        owner_name: None,
        owner_id: None,
        name: described.name.clone(),
        configuration: described.configuration,
        submitted_at: at,
        discovered_at: at,
        discovered_via: DiscoveredVia::Poll,
    };
    let ruling = ReleaseService::by_rule(&held, &decision, release.policy(), at);
    report.push_str(&format!(
        "decision: {}\n",
        ruling
            .note
            .unwrap_or_else(|| "no rule: hold for the owner".to_owned())
    ));
    Ok(report)
}

#[derive(Debug, Default)]
struct Described {
    owner: String,
    name: String,
    size: Option<u64>,
    configuration: PrintJobConfiguration,
    at: Option<OffsetDateTime>,
}

fn from_job_file(path: &Path) -> Result<Described, RulesTestError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        RulesTestError::Job(format!("cannot read --job {}: {error}", path.display()))
    })?;
    let job: PrintJob = serde_json::from_str(&text).map_err(|error| {
        RulesTestError::Job(format!(
            "--job {} is not a printJob as Graph returns it: {error}",
            path.display()
        ))
    })?;
    let documents = job.documents.unwrap_or_default();
    Ok(Described {
        owner: job
            .created_by
            .and_then(|by| by.user_principal_name)
            .unwrap_or_default(),
        name: documents
            .iter()
            .find_map(|document| document.display_name.clone())
            .unwrap_or_else(|| format!("Print job {}", job.id)),
        size: (!documents.is_empty()).then(|| {
            documents
                .iter()
                .map(|document| u64::try_from(document.size).unwrap_or(0))
                .sum()
        }),
        configuration: job.configuration,
        at: job.created_date_time,
    })
}

/// Parses a Graph enum member given on the command line, refusing one this build does not know.
fn member<T>(value: &str, flag: &str) -> Result<T, RulesTestError>
where
    T: for<'a> From<&'a str> + MembersOf,
{
    if T::members().contains(&value) {
        Ok(T::from(value))
    } else {
        Err(RulesTestError::Job(format!(
            "{flag} {value} is not a member of Graph's enumeration; use one of {}",
            T::members().join(", ")
        )))
    }
}

/// The members of an open Graph enum.
trait MembersOf {
    fn members() -> &'static [&'static str];
}

impl MembersOf for PrintColorMode {
    fn members() -> &'static [&'static str] {
        Self::MEMBERS
    }
}

impl MembersOf for PrintDuplexMode {
    fn members() -> &'static [&'static str] {
        Self::MEMBERS
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const CONFIG: &str = r#"
[graph]
tenant_id = "contoso.onmicrosoft.com"
client_id = "00000000-0000-0000-0000-000000000001"
client_secret_file = "/nonexistent/secret"

[[rules]]
name = "S2S grayscale"
action = "release"
match.printers = ["p1"]
force.color_mode = "grayscale"
"#;

    fn config() -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), CONFIG).unwrap();
        file
    }

    #[test]
    fn it_says_which_rule_matches_and_what_it_does_without_reading_secrets() {
        let file = config();
        let report = rules_test(
            file.path(),
            &TryJob {
                printer: "p1".to_owned(),
                owner: Some("ada@contoso.com".to_owned()),
                name: Some("a.pdf".to_owned()),
                color: Some("color".to_owned()),
                ..TryJob::default()
            },
        )
        .unwrap();
        assert!(
            report.contains("rule 0 \"S2S grayscale\" matches"),
            "{report}"
        );
        assert!(report.contains("grayscale"), "{report}");
        let other = rules_test(
            file.path(),
            &TryJob {
                printer: "p2".to_owned(),
                owner: Some("ada@contoso.com".to_owned()),
                ..TryJob::default()
            },
        )
        .unwrap();
        assert!(other.contains("decision: no rule: hold"), "{other}");
    }

    #[test]
    fn a_group_rule_is_tried_with_member_of_and_says_when_groups_are_unknown() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            file.path(),
            "[[rules]]\nname = \"staff\"\naction = \"release\"\n\
             match.groups = [\"0e7c3f1a-5b2d-4c8e-9f10-2a3b4c5d6e7f\"]\n",
        )
        .unwrap();
        let job = TryJob {
            printer: "p1".to_owned(),
            owner: Some("ada@contoso.com".to_owned()),
            ..TryJob::default()
        };
        let unknown = rules_test(file.path(), &job).unwrap();
        assert!(unknown.contains("not known here"), "{unknown}");
        let member = rules_test(
            file.path(),
            &TryJob {
                member_of: vec!["0E7C3F1A-5B2D-4C8E-9F10-2A3B4C5D6E7F".to_owned()],
                ..job
            },
        )
        .unwrap();
        assert!(member.contains("rule 0 \"staff\" matches"), "{member}");
    }

    #[test]
    fn a_wrong_member_on_the_command_line_names_the_choices() {
        let file = config();
        let error = rules_test(
            file.path(),
            &TryJob {
                printer: "p1".to_owned(),
                owner: Some("ada@contoso.com".to_owned()),
                duplex: Some("twoSidedLongEdge".to_owned()),
                ..TryJob::default()
            },
        )
        .unwrap_err();
        assert!(matches!(error, RulesTestError::Job(_)));
        assert!(error.to_string().contains("flipOnLongEdge"), "{error}");
    }
}
