//! Rules (`[[rules]]`): what happens to a job the moment intake finds it, before anyone is at a
//! station. Evaluated in order, first match wins; a job no rule matches is held.
//!
//! - [`RuleSettings`] — one `[[rules]]` table as written (keys in snake_case, values in Graph's enum
//!   members, e.g. `color_mode = "grayscale"`);
//! - [`RuleSet::compile`] — checks every rule once at load (unknown keys, unknown enum members,
//!   impossible time windows, a rule an earlier rule shadows, a redirect without a printer) and
//!   names the rule by index and name with the fix;
//! - [`RuleSet::decide`] — the matcher: pure, no I/O (the time zone was resolved at compile time),
//!   so `pullprintd rules test` and intake decide the same way.
//!
//! Forced options are a [`Forced`] set turned into [`ReleaseOptions`] for the job, then checked by
//! the same policy as a person's release ([`super::options::apply`]); a refused value makes the
//! job held instead, never printed with settings nobody chose.

use std::fmt::Write as _;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::options::ReleaseOptions;
use crate::graph::enums::{PrintColorMode, PrintDuplexMode, PrintOrientation, PrintQuality};
use crate::graph::model::{PrintJobConfiguration, Printer};

/// What a rule does with the jobs it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleAction {
    /// Hold the job for its owner (the default when no rule matches).
    Hold,
    /// Print it at once on its own printer, with the forced options.
    Release,
    /// Abort it; `reason` is written to the audit log.
    Deny,
    /// Print it at once on `printer`, with the forced options.
    Redirect,
}

impl RuleAction {
    /// The word used in configuration and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hold => "hold",
            Self::Release => "release",
            Self::Deny => "deny",
            Self::Redirect => "redirect",
        }
    }
}

/// One `[[rules]]` table as written.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSettings {
    /// A short name for messages and the audit log.
    pub name: String,
    /// What to do with a matching job.
    pub action: RuleAction,
    /// Which jobs match; empty matches every job.
    #[serde(default, rename = "match")]
    pub matches: MatchSettings,
    /// Options forced on the job (`release`, `redirect`).
    #[serde(default)]
    pub force: Forced,
    /// `deny`: the reason written to the audit log, for the person to read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// `redirect`: the printer id to print on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printer: Option<String>,
    /// `release`, `redirect`: allow only paper- and toner-saving forced changes (overrides
    /// `[release] saving_only` for this rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saving_only: Option<bool>,
}

/// `[rules.match]`: every condition given must hold (AND); a list matches any of its members (OR).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSettings {
    /// Queue printer ids the job was sent to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub printers: Vec<String>,
    /// Owners' UPNs (case-insensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    /// Entra ID groups (object ids) the owner is a member of, directly or through nested groups.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// Document name glob (`*` any run, `?` one character; case-insensitive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Documents' total size at least this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_size: Option<u64>,
    /// Documents' total size at most this many bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size: Option<u64>,
    /// Requested copies at least this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_copies: Option<i32>,
    /// Requested copies at most this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_copies: Option<i32>,
    /// Requested colour modes (Graph's `printColorMode` members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub color_modes: Vec<PrintColorMode>,
    /// Requested duplex modes (Graph's `printDuplexMode` members).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub duplex_modes: Vec<PrintDuplexMode>,
    /// A time-of-day window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<TimeWindowSettings>,
}

/// `[rules.match.time]`: from `from` (inclusive) to `to` (exclusive) in `zone`; `from` after `to`
/// spans midnight.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TimeWindowSettings {
    /// Start, `HH:MM`.
    pub from: String,
    /// End, `HH:MM`.
    pub to: String,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub zone: String,
    /// Days of the week (`mon` … `sun`) the window starts on; empty is every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub days: Vec<String>,
}

/// `[rules.force]`: options set on the job when a rule prints it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Forced {
    /// Colour mode to print in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color_mode: Option<PrintColorMode>,
    /// Duplex mode to print in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplex_mode: Option<PrintDuplexMode>,
    /// Orientation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<PrintOrientation>,
    /// Quality.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality: Option<PrintQuality>,
    /// Exactly this many copies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copies: Option<i32>,
    /// At most this many copies: more are reduced to this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_copies: Option<i32>,
}

impl Forced {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The release options that apply these forced values to a job submitted with `requested`;
    /// a value the job already has is left out, so "nothing to change" costs no PATCH.
    pub fn options_for(&self, requested: &PrintJobConfiguration) -> ReleaseOptions {
        let differs = |want: &Option<String>, have: Option<String>| {
            want.as_ref()
                .filter(|want| have.as_ref() != Some(*want))
                .is_some()
        };
        let mut options = ReleaseOptions::default();
        if differs(
            &self.color_mode.as_ref().map(|m| m.as_str().to_owned()),
            requested.color_mode.as_ref().map(|m| m.as_str().to_owned()),
        ) {
            options.color_mode = self.color_mode.clone();
        }
        if differs(
            &self.duplex_mode.as_ref().map(|m| m.as_str().to_owned()),
            requested
                .duplex_mode
                .as_ref()
                .map(|m| m.as_str().to_owned()),
        ) {
            options.duplex_mode = self.duplex_mode.clone();
        }
        if differs(
            &self.orientation.as_ref().map(|m| m.as_str().to_owned()),
            requested
                .orientation
                .as_ref()
                .map(|m| m.as_str().to_owned()),
        ) {
            options.orientation = self.orientation.clone();
        }
        if differs(
            &self.quality.as_ref().map(|m| m.as_str().to_owned()),
            requested.quality.as_ref().map(|m| m.as_str().to_owned()),
        ) {
            options.quality = self.quality.clone();
        }
        let copies = requested.copies.unwrap_or(1);
        if let Some(exact) = self.copies.filter(|exact| *exact != copies) {
            options.copies = Some(exact);
        } else if let Some(max) = self.max_copies.filter(|max| copies > *max) {
            options.copies = Some(max);
        }
        options
    }
}

/// What a `hold` rule keeps with a job for its release: the forced options and `saving_only`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct HoldTerms {
    /// The rule, as the audit log names it.
    pub rule: String,
    /// Options forced over the person's choices.
    pub force: Forced,
    /// The rule's `saving_only`, overriding `[release] saving_only`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saving_only: Option<bool>,
}

impl HoldTerms {
    /// The person's `options` with the forced values laid over them (a forced value wins; a value
    /// the job would already print with is left out).
    pub fn release_options(
        &self,
        person: &ReleaseOptions,
        held: &PrintJobConfiguration,
    ) -> ReleaseOptions {
        // What the person would print: their choices over the submitted configuration.
        let mut wanted = held.clone();
        if person.copies.is_some() {
            wanted.copies = person.copies;
        }
        if person.color_mode.is_some() {
            wanted.color_mode = person.color_mode.clone();
        }
        if person.duplex_mode.is_some() {
            wanted.duplex_mode = person.duplex_mode.clone();
        }
        if person.orientation.is_some() {
            wanted.orientation = person.orientation.clone();
        }
        if person.quality.is_some() {
            wanted.quality = person.quality.clone();
        }
        let forced = self.force.options_for(&wanted);
        let mut options = person.clone();
        if forced.copies.is_some() {
            options.copies = forced.copies;
        }
        if forced.color_mode.is_some() {
            options.color_mode = forced.color_mode;
        }
        if forced.duplex_mode.is_some() {
            options.duplex_mode = forced.duplex_mode;
        }
        if forced.orientation.is_some() {
            options.orientation = forced.orientation;
        }
        if forced.quality.is_some() {
            options.quality = forced.quality;
        }
        options
    }

    /// `policy` with this rule's `saving_only`, when it sets one.
    pub fn policy(&self, policy: super::ReleasePolicy) -> super::ReleasePolicy {
        super::ReleasePolicy {
            saving_only: self.saving_only.unwrap_or(policy.saving_only),
            ..policy
        }
    }
}

/// Why `printer` cannot print with the forced options of `rule`, if it cannot: each forced value
/// is checked against the printer's capabilities (an unknown capability is not held against it).
pub fn refused_by_printer(force: &Forced, printer: &Printer) -> Option<String> {
    let caps = printer.capabilities.as_ref()?;
    if let (Some(mode), Some(modes)) = (&force.color_mode, &caps.color_modes)
        && !modes.contains(mode)
    {
        return Some(format!(
            "force.color_mode \"{mode}\" is not among its colour modes"
        ));
    }
    if let (Some(mode), Some(modes)) = (&force.duplex_mode, &caps.duplex_modes)
        && !modes.contains(mode)
    {
        return Some(format!(
            "force.duplex_mode \"{mode}\" is not among its duplex modes"
        ));
    }
    if let (Some(orientation), Some(list)) = (&force.orientation, &caps.orientations)
        && !list.contains(orientation)
    {
        return Some(format!(
            "force.orientation \"{orientation}\" is not among its orientations"
        ));
    }
    if let (Some(quality), Some(list)) = (&force.quality, &caps.qualities)
        && !list.contains(quality)
    {
        return Some(format!(
            "force.quality \"{quality}\" is not among its qualities"
        ));
    }
    let end = caps.copies_per_job.as_ref().and_then(|range| range.end);
    for (field, copies) in [
        ("force.copies", force.copies),
        ("force.max_copies", force.max_copies),
    ] {
        if let (Some(copies), Some(end)) = (copies, end)
            && i64::from(copies) > end
        {
            return Some(format!(
                "{field} {copies} is above its {end} copies per job"
            ));
        }
    }
    None
}

/// What Entra ID said about the owner's membership of the groups the rules name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Membership {
    /// The named groups the owner is a member of.
    pub member_of: Vec<String>,
    /// Named groups that do not exist (deleted, or a typo in the configuration).
    pub missing: Vec<String>,
    /// Why membership could not be read (Graph down, a permission missing), if it could not.
    pub unavailable: Option<String>,
}

/// What is known of a job when the rules are asked.
#[derive(Debug, Clone, PartialEq)]
pub struct JobFacts<'a> {
    /// The queue printer it was sent to.
    pub printer_id: &'a str,
    /// Its owner's UPN.
    pub owner_upn: &'a str,
    /// Its document's name.
    pub name: &'a str,
    /// Its documents' total size in bytes, when Graph gave it.
    pub size: Option<u64>,
    /// What was requested.
    pub configuration: &'a PrintJobConfiguration,
    /// When it was submitted.
    pub at: OffsetDateTime,
    /// The owner's membership of the groups the rules name; `None` when not looked up (`rules
    /// test`), and a group condition then does not match.
    pub groups: Option<&'a Membership>,
}

/// The rule that decided, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The matching rule's index (0-based, as in `rules[0]`) and name; `None` is the default hold.
    pub rule: Option<(usize, String)>,
    /// What to do.
    pub action: RuleAction,
    /// Options to force (release, redirect).
    pub force: Forced,
    /// This rule's `saving_only`, when it sets one.
    pub saving_only: Option<bool>,
    /// `deny`: the reason.
    pub reason: Option<String>,
    /// `redirect`: the destination printer.
    pub printer: Option<String>,
    /// One line per condition checked, for `pullprintd rules test` and the audit log.
    pub why: Vec<String>,
    /// Why the rule could not be decided (a group that does not exist, membership unreadable):
    /// the job is held and this is audited, whatever the rule's action.
    pub problem: Option<String>,
}

impl Decision {
    /// The printer this decision sends a job of `job_printer` to: its own for a release, the
    /// destination for a redirect; `None` when it prints nothing (hold, deny, undecidable).
    pub fn prints_on<'a>(&'a self, job_printer: &'a str) -> Option<&'a str> {
        if self.problem.is_some() || self.rule.is_none() {
            return None;
        }
        match self.action {
            RuleAction::Release => Some(job_printer),
            RuleAction::Redirect => Some(self.printer.as_deref().unwrap_or(job_printer)),
            RuleAction::Hold | RuleAction::Deny => None,
        }
    }

    /// How the audit log and the CLI name the decision: `rule 2 "night-copies"` or `no rule`.
    pub fn label(&self) -> String {
        match &self.rule {
            Some((index, name)) => format!("rule {index} \"{name}\""),
            None => "no rule".to_owned(),
        }
    }
}

/// A checked, ready-to-match list of rules.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Compiled>,
}

#[derive(Debug, Clone)]
struct Compiled {
    settings: RuleSettings,
    owners: Vec<String>,
    /// `match.groups`, lower-case.
    groups: Vec<String>,
    window: Option<Window>,
}

#[derive(Debug, Clone)]
struct Window {
    from: Time,
    to: Time,
    zone: TimeZone,
    days: Vec<Weekday>,
}

/// A rule that cannot be loaded: `key` is `rules[INDEX]` (and the field), `problem` names the rule
/// and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// `rules[2].force.color_mode` and the like.
    pub key: String,
    /// What is wrong and how to fix it.
    pub problem: String,
}

impl RuleSet {
    /// Parses and checks the raw `[[rules]]` tables in order.
    pub fn compile(raw: &[toml::Table]) -> Result<Self, RuleError> {
        let mut rules: Vec<Compiled> = Vec::with_capacity(raw.len());
        for (index, table) in raw.iter().enumerate() {
            let label = match table.get("name").and_then(toml::Value::as_str) {
                Some(name) => format!("rule {index} \"{name}\""),
                None => format!("rule {index}"),
            };
            let fail = |field: &str, problem: String| RuleError {
                key: if field.is_empty() {
                    format!("rules[{index}]")
                } else {
                    format!("rules[{index}].{field}")
                },
                problem: format!("{label}: {problem}"),
            };
            let settings: RuleSettings = toml::Value::Table(table.clone()).try_into().map_err(
                |error: toml::de::Error| {
                    fail(
                        "",
                        format!(
                            "{}; see the Rules section of the README for the keys a rule takes",
                            error.message().trim()
                        ),
                    )
                },
            )?;
            let compiled = compile_one(settings, &|field, problem| fail(field, problem))?;
            if let Some((earlier_index, earlier)) = rules
                .iter()
                .enumerate()
                .find(|(_, earlier)| shadows(&earlier.settings.matches, &compiled.settings.matches))
            {
                return Err(fail(
                    "match",
                    format!(
                        "can never match: rule {earlier_index} \"{}\" before it matches every job this one would; \
                         move this rule above it or narrow rule {earlier_index}'s [rules.match]",
                        earlier.settings.name
                    ),
                ));
            }
            rules.push(compiled);
        }
        Ok(Self { rules })
    }

    /// How many rules there are.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// The rules as written, in order.
    pub fn rules(&self) -> impl Iterator<Item = &RuleSettings> {
        self.rules.iter().map(|rule| &rule.settings)
    }

    /// Whether there are none (every job is held).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Every Entra ID group the rules name, once each, in order.
    pub fn groups(&self) -> Vec<String> {
        let mut groups: Vec<String> = Vec::new();
        for rule in &self.rules {
            for group in &rule.groups {
                if !groups.contains(group) {
                    groups.push(group.clone());
                }
            }
        }
        groups
    }

    /// The first rule that matches `job`, or the default hold; pure.
    pub fn decide(&self, job: &JobFacts<'_>) -> Decision {
        let mut why = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let mut reasons = Vec::new();
            let matched = match rule.matches(job, &mut reasons) {
                Ok(matched) => matched,
                Err(problem) => {
                    why.push(format!(
                        "rule {index} \"{}\" cannot be decided: {problem}; the job is held",
                        rule.settings.name
                    ));
                    return Decision {
                        rule: Some((index, rule.settings.name.clone())),
                        action: RuleAction::Hold,
                        force: Forced::default(),
                        saving_only: None,
                        reason: None,
                        printer: None,
                        why,
                        problem: Some(problem),
                    };
                }
            };
            if matched {
                why.push(format!(
                    "rule {index} \"{}\" matches: {}",
                    rule.settings.name,
                    if reasons.is_empty() {
                        "it has no conditions".to_owned()
                    } else {
                        reasons.join("; ")
                    }
                ));
                let settings = &rule.settings;
                return Decision {
                    rule: Some((index, settings.name.clone())),
                    action: settings.action,
                    force: settings.force.clone(),
                    saving_only: settings.saving_only,
                    reason: settings.reason.clone(),
                    printer: settings.printer.clone(),
                    why,
                    problem: None,
                };
            }
            why.push(format!(
                "rule {index} \"{}\" does not match: {}",
                rule.settings.name,
                reasons.last().map_or("", String::as_str)
            ));
        }
        why.push("no rule matches: the job is held (the default)".to_owned());
        Decision {
            rule: None,
            action: RuleAction::Hold,
            force: Forced::default(),
            saving_only: None,
            reason: None,
            printer: None,
            why,
            problem: None,
        }
    }
}

impl Compiled {
    /// Whether every condition holds; `reasons` gets one line per condition checked, the failing
    /// one last. `Err` when a condition cannot be decided (a named group that does not exist, or
    /// membership Graph could not tell).
    fn matches(&self, job: &JobFacts<'_>, reasons: &mut Vec<String>) -> Result<bool, String> {
        let m = &self.settings.matches;
        let mut check = |ok: bool, yes: String, no: String| {
            reasons.push(if ok { yes } else { no });
            ok
        };
        if !m.printers.is_empty()
            && !check(
                m.printers.iter().any(|p| p == job.printer_id),
                format!("printer {} is listed", job.printer_id),
                format!("printer {} is not in {:?}", job.printer_id, m.printers),
            )
        {
            return Ok(false);
        }
        let owner = job.owner_upn.to_lowercase();
        if !self.owners.is_empty()
            && !check(
                self.owners.contains(&owner),
                format!("owner {} is listed", job.owner_upn),
                format!("owner {} is not in {:?}", job.owner_upn, m.owners),
            )
        {
            return Ok(false);
        }
        if !self.groups.is_empty() {
            let Some(membership) = job.groups else {
                check(
                    false,
                    String::new(),
                    format!(
                        "owner {}'s groups are not known here (they are read from Entra ID at run time)",
                        job.owner_upn
                    ),
                );
                return Ok(false);
            };
            if let Some(missing) = self.groups.iter().find(|g| membership.missing.contains(g)) {
                return Err(format!(
                    "group {missing} does not exist in Entra ID; fix match.groups (a group's object id, from Entra admin center → Groups)"
                ));
            }
            if let Some(why) = &membership.unavailable {
                return Err(format!("group membership could not be read: {why}"));
            }
            let found = self
                .groups
                .iter()
                .find(|g| membership.member_of.contains(g));
            let ok = found.is_some();
            if !check(
                ok,
                format!(
                    "owner {} is a member of group {}",
                    job.owner_upn,
                    found.map_or("", String::as_str)
                ),
                format!("owner {} is in none of {:?}", job.owner_upn, m.groups),
            ) {
                return Ok(false);
            }
        }
        if let Some(pattern) = &m.name
            && !check(
                glob_matches(pattern, job.name),
                format!("name \"{}\" matches \"{pattern}\"", job.name),
                format!("name \"{}\" does not match \"{pattern}\"", job.name),
            )
        {
            return Ok(false);
        }
        if m.min_size.is_some() || m.max_size.is_some() {
            let ok = job.size.is_some_and(|size| {
                m.min_size.is_none_or(|min| size >= min) && m.max_size.is_none_or(|max| size <= max)
            });
            let size = job
                .size
                .map_or_else(|| "unknown".to_owned(), |size| format!("{size} bytes"));
            if !check(
                ok,
                format!("size {size} is within the bounds"),
                format!(
                    "size {size} is outside {}..{}",
                    m.min_size.map(|n| n.to_string()).unwrap_or_default(),
                    m.max_size.map(|n| n.to_string()).unwrap_or_default()
                ),
            ) {
                return Ok(false);
            }
        }
        if m.min_copies.is_some() || m.max_copies.is_some() {
            let copies = job.configuration.copies.unwrap_or(1);
            let ok = m.min_copies.is_none_or(|min| copies >= min)
                && m.max_copies.is_none_or(|max| copies <= max);
            if !check(
                ok,
                format!("{copies} copies is within the bounds"),
                format!("{copies} copies is outside the bounds"),
            ) {
                return Ok(false);
            }
        }
        if !m.color_modes.is_empty() {
            let have = job.configuration.color_mode.as_ref();
            let shown = have.map_or("unset", PrintColorMode::as_str);
            if !check(
                have.is_some_and(|mode| m.color_modes.contains(mode)),
                format!("colour mode {shown} is listed"),
                format!("colour mode {shown} is not listed"),
            ) {
                return Ok(false);
            }
        }
        if !m.duplex_modes.is_empty() {
            let have = job.configuration.duplex_mode.as_ref();
            let shown = have.map_or("unset", PrintDuplexMode::as_str);
            if !check(
                have.is_some_and(|mode| m.duplex_modes.contains(mode)),
                format!("duplex mode {shown} is listed"),
                format!("duplex mode {shown} is not listed"),
            ) {
                return Ok(false);
            }
        }
        if let Some(window) = &self.window {
            let (ok, local) = window.contains(job.at);
            if !check(
                ok,
                format!("{local} is inside the time window"),
                format!("{local} is outside the time window"),
            ) {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

impl Window {
    /// Whether `at` falls in the window, and the local time it was, for messages.
    fn contains(&self, at: OffsetDateTime) -> (bool, String) {
        let Ok(timestamp) = jiff::Timestamp::from_second(at.unix_timestamp()) else {
            return (false, format!("{at}"));
        };
        let local = timestamp.to_zoned_datetime(self.zone.clone());
        let time = local.time();
        let weekday = local.weekday();
        // A window spanning midnight starts on the day before for the part after midnight.
        let (inside, start_day) = if self.from < self.to {
            (time >= self.from && time < self.to, weekday)
        } else if time >= self.from {
            (true, weekday)
        } else {
            (time < self.to, weekday.previous())
        };
        let day_ok = self.days.is_empty() || self.days.contains(&start_day);
        let mut shown = String::new();
        let _ = write!(
            shown,
            "{} {:?} {}",
            local.date(),
            weekday,
            local.strftime("%H:%M %Z")
        );
        (inside && day_ok, shown)
    }
}

/// Whether `earlier` matches every job `later` matches (so `later` can never win): a catch-all, or
/// the same conditions.
fn shadows(earlier: &MatchSettings, later: &MatchSettings) -> bool {
    *earlier == MatchSettings::default() || earlier == later
}

fn compile_one(
    settings: RuleSettings,
    fail: &dyn Fn(&str, String) -> RuleError,
) -> Result<Compiled, RuleError> {
    if settings.name.trim().is_empty() {
        return Err(fail(
            "name",
            "is empty; give the rule a short name".to_owned(),
        ));
    }
    let m = &settings.matches;
    check_members(
        &m.color_modes,
        PrintColorMode::MEMBERS,
        "match.color_modes",
        fail,
    )?;
    check_members(
        &m.duplex_modes,
        PrintDuplexMode::MEMBERS,
        "match.duplex_modes",
        fail,
    )?;
    let force = &settings.force;
    check_members(
        force.color_mode.as_slice(),
        PrintColorMode::MEMBERS,
        "force.color_mode",
        fail,
    )?;
    check_members(
        force.duplex_mode.as_slice(),
        PrintDuplexMode::MEMBERS,
        "force.duplex_mode",
        fail,
    )?;
    check_members(
        force.orientation.as_slice(),
        PrintOrientation::MEMBERS,
        "force.orientation",
        fail,
    )?;
    check_members(
        force.quality.as_slice(),
        PrintQuality::MEMBERS,
        "force.quality",
        fail,
    )?;
    for (field, value) in [
        ("force.copies", force.copies),
        ("force.max_copies", force.max_copies),
        ("match.min_copies", m.min_copies),
        ("match.max_copies", m.max_copies),
    ] {
        if value.is_some_and(|n| n < 1) {
            return Err(fail(field, "must be at least 1".to_owned()));
        }
    }
    if let (Some(min), Some(max)) = (m.min_copies, m.max_copies)
        && min > max
    {
        return Err(fail(
            "match.min_copies",
            format!("min_copies {min} is above max_copies {max}: no job can match; swap them"),
        ));
    }
    if let (Some(min), Some(max)) = (m.min_size, m.max_size)
        && min > max
    {
        return Err(fail(
            "match.min_size",
            format!("min_size {min} is above max_size {max}: no job can match; swap them"),
        ));
    }
    if let Some(pattern) = &m.name
        && pattern.is_empty()
    {
        return Err(fail(
            "match.name",
            "is empty; use \"*\" for any name, or leave it out".to_owned(),
        ));
    }
    match settings.action {
        RuleAction::Redirect => {
            if settings
                .printer
                .as_deref()
                .is_none_or(|p| p.trim().is_empty())
            {
                return Err(fail(
                    "printer",
                    "a redirect needs `printer = \"<printer id>\"`: the printer to print on"
                        .to_owned(),
                ));
            }
        }
        other => {
            if settings.printer.is_some() {
                return Err(fail(
                    "printer",
                    format!(
                        "only a redirect takes a printer; remove it or use action = \"redirect\" (this rule is {})",
                        other.as_str()
                    ),
                ));
            }
        }
    }
    match settings.action {
        RuleAction::Deny => {
            if settings
                .reason
                .as_deref()
                .is_none_or(|r| r.trim().is_empty())
            {
                return Err(fail(
                    "reason",
                    "a deny needs `reason = \"…\"`: the person reads it in the audit log"
                        .to_owned(),
                ));
            }
        }
        other => {
            if settings.reason.is_some() {
                return Err(fail(
                    "reason",
                    format!(
                        "only a deny takes a reason; remove it (this rule is {})",
                        other.as_str()
                    ),
                ));
            }
        }
    }
    if settings.action == RuleAction::Deny && (!force.is_empty() || settings.saving_only.is_some())
    {
        return Err(fail(
            "force",
            "a deny rule prints nothing, so it cannot force options or set saving_only; \
             remove [rules.force] and saving_only, or use action = \"release\""
                .to_owned(),
        ));
    }
    let window = match &m.time {
        None => None,
        Some(time) => Some(compile_window(time, fail)?),
    };
    let mut groups = Vec::with_capacity(m.groups.len());
    for group in &m.groups {
        let id = group.trim().to_lowercase();
        if uuid::Uuid::parse_str(&id).is_err() || id.len() != 36 {
            return Err(fail(
                "match.groups",
                format!(
                    "\"{group}\" is not a group's object id; write the id Entra admin center → Groups → \
                     the group → Object ID shows, e.g. \"f448435d-3ca7-4073-8152-a1fd73c0fd09\""
                ),
            ));
        }
        groups.push(id);
    }
    Ok(Compiled {
        groups,
        owners: m.owners.iter().map(|o| o.trim().to_lowercase()).collect(),
        settings,
        window,
    })
}

fn compile_window(
    time: &TimeWindowSettings,
    fail: &dyn Fn(&str, String) -> RuleError,
) -> Result<Window, RuleError> {
    let parse = |field: &str, text: &str| {
        Time::strptime("%H:%M", text.trim()).map_err(|_| {
            fail(
                field,
                format!("\"{text}\" is not a time of day; write HH:MM from 00:00 to 23:59, e.g. \"07:30\""),
            )
        })
    };
    let from = parse("match.time.from", &time.from)?;
    let to = parse("match.time.to", &time.to)?;
    if from == to {
        return Err(fail(
            "match.time",
            format!(
                "from and to are both {}: the window is empty; leave [rules.match.time] out to match at any time",
                time.from
            ),
        ));
    }
    let zone = TimeZone::get(time.zone.trim()).map_err(|_| {
        fail(
            "match.time.zone",
            format!(
                "\"{}\" is not an IANA time zone; use a name such as \"Europe/Berlin\" or \"America/New_York\"",
                time.zone
            ),
        )
    })?;
    let mut days = Vec::new();
    for day in &time.days {
        let weekday = match day.trim().to_lowercase().as_str() {
            "mon" => Weekday::Monday,
            "tue" => Weekday::Tuesday,
            "wed" => Weekday::Wednesday,
            "thu" => Weekday::Thursday,
            "fri" => Weekday::Friday,
            "sat" => Weekday::Saturday,
            "sun" => Weekday::Sunday,
            _ => {
                return Err(fail(
                    "match.time.days",
                    format!("\"{day}\" is not a day; use mon, tue, wed, thu, fri, sat or sun"),
                ));
            }
        };
        days.push(weekday);
    }
    Ok(Window {
        from,
        to,
        zone,
        days,
    })
}

fn check_members<T: AsRef<str>>(
    values: &[T],
    members: &[&str],
    field: &str,
    fail: &dyn Fn(&str, String) -> RuleError,
) -> Result<(), RuleError> {
    for value in values {
        let value = value.as_ref();
        if !members.contains(&value) || value == "unknownFutureValue" {
            let choices: Vec<&str> = members
                .iter()
                .copied()
                .filter(|m| *m != "unknownFutureValue")
                .collect();
            return Err(fail(
                field,
                format!(
                    "\"{value}\" is not a member of Graph's enumeration; use one of {}",
                    choices.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

macro_rules! as_ref_str {
    ($($t:ty),+) => {$(
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                self.as_str()
            }
        }
    )+};
}
as_ref_str!(
    PrintColorMode,
    PrintDuplexMode,
    PrintOrientation,
    PrintQuality
);

/// A small case-insensitive glob: `*` any run of characters, `?` one character.
pub fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let text: Vec<char> = text.to_lowercase().chars().collect();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if *c == '?' || *c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use time::macros::datetime;

    fn rules(text: &str) -> Result<RuleSet, RuleError> {
        #[derive(Deserialize)]
        struct File {
            rules: Vec<toml::Table>,
        }
        let file: File = toml::from_str(text).unwrap();
        RuleSet::compile(&file.rules)
    }

    fn problem(text: &str) -> String {
        let error = rules(text).unwrap_err();
        format!("{}: {}", error.key, error.problem)
    }

    fn facts<'a>(config: &'a PrintJobConfiguration) -> JobFacts<'a> {
        JobFacts {
            printer_id: "p1",
            owner_upn: "Ada@contoso.com",
            name: "Quarterly report.pdf",
            size: Some(2_000_000),
            configuration: config,
            at: datetime!(2026-12-01 12:00 UTC),
            groups: None,
        }
    }

    #[test]
    fn the_glob_handles_stars_question_marks_and_case() {
        assert!(glob_matches("*.PDF", "report.pdf"));
        assert!(glob_matches("inv-????.pdf", "INV-2026.pdf"));
        assert!(glob_matches("*report*", "Quarterly report.pdf"));
        assert!(!glob_matches("*.docx", "report.pdf"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("a?c", "ac"));
    }

    #[test]
    fn the_first_matching_rule_wins_and_no_match_is_hold() {
        let set = rules(
            r#"
            [[rules]]
            name = "plotter"
            action = "deny"
            reason = "The plotter is for drawings only"
            match.printers = ["p2"]
            [[rules]]
            name = "s2s grayscale"
            action = "release"
            match.printers = ["p1"]
            force.color_mode = "grayscale"
            [[rules]]
            name = "everything else"
            action = "hold"
            match.owners = ["bob@contoso.com"]
            "#,
        )
        .unwrap();
        let config = PrintJobConfiguration::default();
        let decision = set.decide(&facts(&config));
        assert_eq!(decision.rule, Some((1, "s2s grayscale".to_owned())));
        assert_eq!(decision.action, RuleAction::Release);
        assert_eq!(decision.force.color_mode, Some(PrintColorMode::Grayscale));
        let mut other = facts(&config);
        other.printer_id = "p3";
        let decision = set.decide(&other);
        assert_eq!(decision.rule, None);
        assert_eq!(decision.action, RuleAction::Hold);
        assert!(decision.why.last().unwrap().contains("held"));
    }

    #[test]
    fn each_match_kind_is_checked() {
        let set = rules(
            r#"
            [[rules]]
            name = "all"
            action = "hold"
            [rules.match]
            printers = ["p1"]
            owners = ["ADA@contoso.com"]
            name = "*report*"
            min_size = 1000000
            max_size = 5000000
            min_copies = 1
            max_copies = 2
            color_modes = ["color"]
            duplex_modes = ["oneSided"]
            time = { from = "08:00", to = "18:00", zone = "Europe/Berlin", days = ["tue"] }
            "#,
        )
        .unwrap();
        let config = PrintJobConfiguration {
            color_mode: Some(PrintColorMode::Color),
            duplex_mode: Some(PrintDuplexMode::OneSided),
            copies: Some(2),
            ..Default::default()
        };
        assert!(set.decide(&facts(&config)).rule.is_some());
        let miss = |change: &dyn Fn(&mut JobFacts<'_>)| {
            let mut job = facts(&config);
            change(&mut job);
            set.decide(&job).rule.is_none()
        };
        assert!(miss(&|j| j.printer_id = "p2"));
        assert!(miss(&|j| j.owner_upn = "bob@contoso.com"));
        assert!(miss(&|j| j.name = "invoice.pdf"));
        assert!(miss(&|j| j.size = Some(10)));
        assert!(miss(&|j| j.size = None));
        // 20:00 in Berlin; and a Wednesday noon.
        assert!(miss(&|j| j.at = datetime!(2026-12-01 19:00 UTC)));
        assert!(miss(&|j| j.at = datetime!(2026-12-02 12:00 UTC)));
        let three = PrintJobConfiguration {
            copies: Some(3),
            ..config.clone()
        };
        assert!(set.decide(&facts(&three)).rule.is_none());
        let mono = PrintJobConfiguration {
            color_mode: Some(PrintColorMode::Grayscale),
            ..config.clone()
        };
        assert!(set.decide(&facts(&mono)).rule.is_none());
        let duplex = PrintJobConfiguration {
            duplex_mode: Some(PrintDuplexMode::FlipOnLongEdge),
            ..config.clone()
        };
        assert!(set.decide(&facts(&duplex)).rule.is_none());
    }

    const STAFF: &str = "0e7c3f1a-5b2d-4c8e-9f10-2a3b4c5d6e7f";

    #[test]
    fn a_group_rule_matches_members_and_holds_when_the_group_does_not_exist() {
        let set = rules(&format!(
            r#"
            [[rules]]
            name = "staff print at once"
            action = "release"
            match.groups = ["{}"]
            "#,
            STAFF.to_uppercase()
        ))
        .unwrap();
        assert_eq!(set.groups(), [STAFF]);
        let config = PrintJobConfiguration::default();
        let member = Membership {
            member_of: vec![STAFF.to_owned()],
            ..Default::default()
        };
        let decision = set.decide(&JobFacts {
            groups: Some(&member),
            ..facts(&config)
        });
        assert_eq!(decision.action, RuleAction::Release);
        assert!(
            decision.why[0].contains("is a member of group"),
            "{:?}",
            decision.why
        );
        let outsider = Membership::default();
        let decision = set.decide(&JobFacts {
            groups: Some(&outsider),
            ..facts(&config)
        });
        assert_eq!(decision.rule, None);
        let gone = Membership {
            missing: vec![STAFF.to_owned()],
            ..Default::default()
        };
        let decision = set.decide(&JobFacts {
            groups: Some(&gone),
            ..facts(&config)
        });
        assert_eq!(decision.action, RuleAction::Hold);
        assert_eq!(decision.rule, Some((0, "staff print at once".to_owned())));
        assert!(
            decision
                .problem
                .as_deref()
                .unwrap()
                .contains("does not exist"),
            "{decision:?}"
        );
        let down = Membership {
            unavailable: Some("Graph answered 503".to_owned()),
            ..Default::default()
        };
        let decision = set.decide(&JobFacts {
            groups: Some(&down),
            ..facts(&config)
        });
        assert_eq!(decision.action, RuleAction::Hold);
        assert!(decision.problem.unwrap().contains("503"));
        let unknown = set.decide(&facts(&config));
        assert_eq!(unknown.rule, None, "unknown membership is no membership");
        assert!(
            unknown.why[0].contains("not known here"),
            "{:?}",
            unknown.why
        );
    }

    #[test]
    fn a_group_that_is_not_an_object_id_is_refused_with_the_fix() {
        let problem = problem(
            "[[rules]]\nname = \"g\"\naction = \"hold\"\nmatch.groups = [\"Accounting\"]\n",
        );
        assert!(
            problem.contains("rules[0].match.groups") && problem.contains("Object ID"),
            "{problem}"
        );
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_day_it_starts() {
        let set = rules(
            r#"
            [[rules]]
            name = "night"
            action = "hold"
            match.time = { from = "22:00", to = "06:00", zone = "UTC", days = ["mon"] }
            "#,
        )
        .unwrap();
        let config = PrintJobConfiguration::default();
        let at = |at| JobFacts {
            at,
            ..facts(&config)
        };
        // 2026-11-30 is a Monday.
        assert!(
            set.decide(&at(datetime!(2026-11-30 23:00 UTC)))
                .rule
                .is_some()
        );
        assert!(
            set.decide(&at(datetime!(2026-12-01 05:59 UTC)))
                .rule
                .is_some()
        );
        assert!(
            set.decide(&at(datetime!(2026-12-01 06:00 UTC)))
                .rule
                .is_none()
        );
        assert!(
            set.decide(&at(datetime!(2026-12-01 23:00 UTC)))
                .rule
                .is_none()
        );
    }

    #[test]
    fn forced_options_leave_out_what_the_job_already_has() {
        let forced = Forced {
            color_mode: Some(PrintColorMode::Grayscale),
            duplex_mode: Some(PrintDuplexMode::FlipOnLongEdge),
            max_copies: Some(2),
            ..Default::default()
        };
        let already = PrintJobConfiguration {
            color_mode: Some(PrintColorMode::Grayscale),
            duplex_mode: Some(PrintDuplexMode::FlipOnLongEdge),
            copies: Some(1),
            ..Default::default()
        };
        assert_eq!(forced.options_for(&already), ReleaseOptions::default());
        let many = PrintJobConfiguration {
            copies: Some(9),
            ..already
        };
        assert_eq!(forced.options_for(&many).copies, Some(2));
    }

    #[test]
    fn hold_terms_lay_forced_values_over_the_persons_choices() {
        let terms = HoldTerms {
            rule: "rule 0 \"mono\"".to_owned(),
            force: Forced {
                color_mode: Some(PrintColorMode::Grayscale),
                max_copies: Some(3),
                ..Default::default()
            },
            saving_only: Some(true),
        };
        let held = PrintJobConfiguration {
            color_mode: Some(PrintColorMode::Color),
            copies: Some(1),
            ..Default::default()
        };
        let person = ReleaseOptions {
            color_mode: Some(PrintColorMode::Color),
            copies: Some(10),
            duplex_mode: Some(PrintDuplexMode::FlipOnLongEdge),
            ..Default::default()
        };
        let options = terms.release_options(&person, &held);
        assert_eq!(options.color_mode, Some(PrintColorMode::Grayscale));
        assert_eq!(options.copies, Some(3));
        assert_eq!(options.duplex_mode, Some(PrintDuplexMode::FlipOnLongEdge));
        assert_eq!(
            terms
                .release_options(&ReleaseOptions::default(), &held)
                .color_mode,
            Some(PrintColorMode::Grayscale)
        );
    }

    #[test]
    fn bad_rules_are_named_by_index_and_name_with_the_fix() {
        let unknown_key = problem("[[rules]]\nname = \"a\"\naction = \"hold\"\ncolour = \"x\"\n");
        assert!(
            unknown_key.contains("rules[0]") && unknown_key.contains("rule 0 \"a\""),
            "{unknown_key}"
        );
        assert!(unknown_key.contains("colour"), "{unknown_key}");
        let member = problem(
            "[[rules]]\nname = \"s2s\"\naction = \"release\"\nforce.duplex_mode = \"twoSidedLongEdge\"\n",
        );
        assert!(
            member.contains("rules[0].force.duplex_mode") && member.contains("flipOnLongEdge"),
            "{member}"
        );
        let window = problem(
            "[[rules]]\nname = \"w\"\naction = \"hold\"\nmatch.time = { from = \"25:00\", to = \"06:00\", zone = \"UTC\" }\n",
        );
        assert!(
            window.contains("rules[0].match.time.from") && window.contains("HH:MM"),
            "{window}"
        );
        let empty = problem(
            "[[rules]]\nname = \"w\"\naction = \"hold\"\nmatch.time = { from = \"06:00\", to = \"06:00\", zone = \"UTC\" }\n",
        );
        assert!(empty.contains("window is empty"), "{empty}");
        let zone = problem(
            "[[rules]]\nname = \"w\"\naction = \"hold\"\nmatch.time = { from = \"06:00\", to = \"07:00\", zone = \"Mars/Olympus\" }\n",
        );
        assert!(zone.contains("IANA"), "{zone}");
        let shadowed = problem(
            "[[rules]]\nname = \"all\"\naction = \"hold\"\n[[rules]]\nname = \"late\"\naction = \"release\"\nmatch.printers = [\"p1\"]\n",
        );
        assert!(
            shadowed.contains("rules[1].match")
                && shadowed.contains("rule 1 \"late\"")
                && shadowed.contains("rule 0 \"all\""),
            "{shadowed}"
        );
        let redirect = problem("[[rules]]\nname = \"r\"\naction = \"redirect\"\n");
        assert!(
            redirect.contains("rules[0].printer") && redirect.contains("printer id"),
            "{redirect}"
        );
        let deny = problem("[[rules]]\nname = \"d\"\naction = \"deny\"\n");
        assert!(deny.contains("reason"), "{deny}");
        let action = problem("[[rules]]\nname = \"x\"\naction = \"print\"\n");
        assert!(action.contains("print"), "{action}");
    }
}
