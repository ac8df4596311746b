//! The release options policy: what a person may change when releasing a job, checked against the
//! printer's capabilities (`GET printer`) and the `[release]` policy.
//!
//! Invariants:
//! - the options use Graph's `printJobConfiguration` names and enum values, so what the station sends
//!   is what Graph receives; an unknown field is refused by the parser (400), a choice the printer or
//!   the policy does not allow is refused here (422) naming the option and what is allowed;
//! - [`choices`] (what the kiosk offers) and [`apply`] (what a release accepts) are computed by the same
//!   functions, so the kiosk never offers what the release would refuse;
//! - with `saving_only`, a job may go one-sided → two-sided and colour → black and white or grayscale,
//!   never back; "submitted" means the job's configuration at intake, or the printer's default when
//!   the job left the option unset;
//! - when the printer's capabilities are unknown (Graph unreachable and nothing cached) only the policy
//!   and Graph's enum members are checked: a release must still be possible while Graph is down.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::graph::enums::{PrintColorMode, PrintDuplexMode, PrintOrientation, PrintQuality};
use crate::graph::model::{IntegerRange, PrintJobConfiguration, Printer, PrinterCapabilities};

/// The options a person may choose when releasing, in Graph's `printJobConfiguration` names. Every
/// field is optional: an empty body prints the job as it was submitted.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReleaseOptions {
    /// Number of copies (1 to `release.max_copies` and what the printer allows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 999)]
    pub copies: Option<i32>,
    /// `oneSided`, `flipOnLongEdge` or `flipOnShortEdge`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "flipOnLongEdge")]
    pub duplex_mode: Option<PrintDuplexMode>,
    /// `color`, `grayscale`, `blackAndWhite` or `auto`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "blackAndWhite")]
    pub color_mode: Option<PrintColorMode>,
    /// `portrait`, `landscape`, `reversePortrait` or `reverseLandscape`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "portrait")]
    pub orientation: Option<PrintOrientation>,
    /// Pages per sheet (n-up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 16)]
    pub pages_per_sheet: Option<i32>,
    /// Pages to print, each an inclusive range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_ranges: Option<Vec<PageRange>>,
    /// Media size name (one of the printer's `mediaSizes`, e.g. `A4`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_size: Option<String>,
    /// `low`, `medium` or `high`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "medium")]
    pub quality: Option<PrintQuality>,
}

/// An inclusive range of pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PageRange {
    /// First page (from 1).
    pub start: i64,
    /// Last page (at least `start`).
    pub end: i64,
}

/// The `[release]` rules that apply to a person's choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleasePolicy {
    /// The most copies a person may ask for.
    pub max_copies: u32,
    /// Only paper- and toner-saving changes.
    pub saving_only: bool,
}

/// A choice that is not allowed, with what is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    /// The option, by its Graph name (`copies`, `duplexMode`…).
    pub option: &'static str,
    /// What is wrong and what to choose instead.
    pub message: String,
    /// The values that would be accepted, when they are a list.
    pub allowed: Vec<String>,
}

/// What a person may choose for one job at one printer: offered by the kiosk.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Choices {
    /// The fewest copies.
    pub min_copies: i32,
    /// The most copies.
    pub max_copies: i32,
    /// Allowed `duplexMode` values.
    pub duplex_modes: Vec<String>,
    /// Allowed `colorMode` values.
    pub color_modes: Vec<String>,
    /// Allowed `orientation` values.
    pub orientations: Vec<String>,
    /// Allowed `pagesPerSheet` values (empty: the printer did not say; 1 to 16 are accepted).
    pub pages_per_sheet: Vec<i32>,
    /// Allowed `mediaSize` values (empty: the printer did not say; any name is passed on).
    pub media_sizes: Vec<String>,
    /// Allowed `quality` values.
    pub qualities: Vec<String>,
    /// Whether `pageRanges` may be given.
    pub page_ranges: bool,
    /// The job's configuration as submitted (Graph's `printJobConfiguration`).
    #[schema(value_type = Object)]
    pub current: PrintJobConfiguration,
}

fn capabilities(printer: Option<&Printer>) -> Option<&PrinterCapabilities> {
    printer.and_then(|p| p.capabilities.as_ref())
}

fn two_sided(mode: &PrintDuplexMode) -> bool {
    matches!(
        mode,
        PrintDuplexMode::FlipOnLongEdge | PrintDuplexMode::FlipOnShortEdge
    )
}

fn monochrome(mode: &PrintColorMode) -> bool {
    matches!(
        mode,
        PrintColorMode::BlackAndWhite | PrintColorMode::Grayscale
    )
}

fn allowed_duplex(
    held: &PrintJobConfiguration,
    printer: Option<&Printer>,
    policy: ReleasePolicy,
) -> Vec<PrintDuplexMode> {
    let supported = capabilities(printer)
        .and_then(|c| c.duplex_modes.clone())
        .unwrap_or_else(|| {
            vec![
                PrintDuplexMode::OneSided,
                PrintDuplexMode::FlipOnLongEdge,
                PrintDuplexMode::FlipOnShortEdge,
            ]
        });
    // As submitted, else the printer's default.
    let original = held
        .duplex_mode
        .clone()
        .or_else(|| printer.and_then(|p| p.defaults.as_ref()?.duplex_mode.clone()));
    let saving = policy.saving_only && original.as_ref().is_some_and(two_sided);
    supported
        .into_iter()
        .filter(|m| {
            *m != PrintDuplexMode::UnknownFutureValue && !matches!(m, PrintDuplexMode::Other(_))
        })
        .filter(|m| !saving || two_sided(m))
        .collect()
}

fn allowed_colors(
    held: &PrintJobConfiguration,
    printer: Option<&Printer>,
    policy: ReleasePolicy,
) -> Vec<PrintColorMode> {
    let caps = capabilities(printer);
    let supported = caps.and_then(|c| c.color_modes.clone()).unwrap_or_else(|| {
        if caps.and_then(|c| c.is_color_printing_supported) == Some(false) {
            vec![PrintColorMode::BlackAndWhite, PrintColorMode::Grayscale]
        } else {
            vec![
                PrintColorMode::Color,
                PrintColorMode::Grayscale,
                PrintColorMode::BlackAndWhite,
                PrintColorMode::Auto,
            ]
        }
    });
    // As submitted, else the printer's default.
    let original = held
        .color_mode
        .clone()
        .or_else(|| printer.and_then(|p| p.defaults.as_ref()?.color_mode.clone()));
    let saving = policy.saving_only && original.as_ref().is_some_and(monochrome);
    supported
        .into_iter()
        .filter(|m| {
            *m != PrintColorMode::UnknownFutureValue && !matches!(m, PrintColorMode::Other(_))
        })
        .filter(|m| !saving || monochrome(m))
        .collect()
}

fn allowed_orientations(printer: Option<&Printer>) -> Vec<PrintOrientation> {
    capabilities(printer)
        .and_then(|c| c.orientations.clone())
        .unwrap_or_else(|| {
            vec![
                PrintOrientation::Portrait,
                PrintOrientation::Landscape,
                PrintOrientation::ReversePortrait,
                PrintOrientation::ReverseLandscape,
            ]
        })
        .into_iter()
        .filter(|m| {
            *m != PrintOrientation::UnknownFutureValue && !matches!(m, PrintOrientation::Other(_))
        })
        .collect()
}

fn allowed_qualities(printer: Option<&Printer>) -> Vec<PrintQuality> {
    capabilities(printer)
        .and_then(|c| c.qualities.clone())
        .unwrap_or_else(|| vec![PrintQuality::Low, PrintQuality::Medium, PrintQuality::High])
        .into_iter()
        .filter(|m| *m != PrintQuality::UnknownFutureValue && !matches!(m, PrintQuality::Other(_)))
        .collect()
}

/// The copies range: at least 1, at most the policy's and the printer's limits.
fn copies_range(printer: Option<&Printer>, policy: ReleasePolicy) -> (i32, i32) {
    let policy_max = i32::try_from(policy.max_copies).unwrap_or(i32::MAX);
    let range = capabilities(printer).and_then(|c| c.copies_per_job.clone());
    let min = range
        .as_ref()
        .and_then(|r| r.start)
        .and_then(|s| i32::try_from(s).ok())
        .unwrap_or(1)
        .max(1);
    let max = range
        .as_ref()
        .and_then(|r| r.end)
        .and_then(|e| i32::try_from(e).ok())
        .map_or(policy_max, |e| e.min(policy_max));
    (min, max)
}

fn names<T: std::fmt::Display>(values: &[T]) -> Vec<String> {
    values.iter().map(ToString::to_string).collect()
}

/// What a person may choose for the job `held` (its configuration at intake) at `printer`.
pub fn choices(
    held: &PrintJobConfiguration,
    printer: Option<&Printer>,
    policy: ReleasePolicy,
) -> Choices {
    let (min_copies, max_copies) = copies_range(printer, policy);
    let caps = capabilities(printer);
    Choices {
        min_copies,
        max_copies,
        duplex_modes: names(&allowed_duplex(held, printer, policy)),
        color_modes: names(&allowed_colors(held, printer, policy)),
        orientations: names(&allowed_orientations(printer)),
        pages_per_sheet: caps
            .and_then(|c| c.pages_per_sheet.clone())
            .unwrap_or_default(),
        media_sizes: caps.and_then(|c| c.media_sizes.clone()).unwrap_or_default(),
        qualities: names(&allowed_qualities(printer)),
        page_ranges: caps.and_then(|c| c.is_page_range_supported) != Some(false),
        current: held.clone(),
    }
}

fn refuse(option: &'static str, message: String, allowed: Vec<String>) -> Refusal {
    Refusal {
        option,
        message,
        allowed,
    }
}

fn check_member<T: PartialEq + std::fmt::Display>(
    option: &'static str,
    chosen: &T,
    allowed: &[T],
    why: &str,
) -> Result<(), Refusal> {
    if allowed.contains(chosen) {
        return Ok(());
    }
    let list = names(allowed);
    Err(refuse(
        option,
        format!(
            "{option} `{chosen}` is not allowed{why}; choose one of: {}",
            if list.is_empty() {
                "(none)".to_owned()
            } else {
                list.join(", ")
            }
        ),
        list,
    ))
}

/// Checks `options` for the job `held` at `printer`; returns the full configuration to send, or
/// `None` when nothing was chosen (print as submitted).
pub fn apply(
    options: &ReleaseOptions,
    held: &PrintJobConfiguration,
    printer: Option<&Printer>,
    policy: ReleasePolicy,
) -> Result<Option<PrintJobConfiguration>, Refusal> {
    if *options == ReleaseOptions::default() {
        return Ok(None);
    }
    let saving_note = if policy.saving_only {
        " (the printer's capabilities and [release] saving_only allow only paper- and toner-saving changes)"
    } else {
        " by this printer"
    };
    let mut configuration = held.clone();
    if let Some(copies) = options.copies {
        let (min, max) = copies_range(printer, policy);
        if copies < min || copies > max {
            return Err(refuse(
                "copies",
                format!(
                    "copies {copies} is not allowed; choose from {min} to {max} (release.max_copies and the printer's limit)"
                ),
                vec![format!("{min}-{max}")],
            ));
        }
        configuration.copies = Some(copies);
    }
    if let Some(mode) = &options.duplex_mode {
        check_member(
            "duplexMode",
            mode,
            &allowed_duplex(held, printer, policy),
            saving_note,
        )?;
        configuration.duplex_mode = Some(mode.clone());
    }
    if let Some(mode) = &options.color_mode {
        check_member(
            "colorMode",
            mode,
            &allowed_colors(held, printer, policy),
            saving_note,
        )?;
        configuration.color_mode = Some(mode.clone());
    }
    if let Some(orientation) = &options.orientation {
        check_member(
            "orientation",
            orientation,
            &allowed_orientations(printer),
            " by this printer",
        )?;
        configuration.orientation = Some(orientation.clone());
    }
    if let Some(quality) = &options.quality {
        check_member(
            "quality",
            quality,
            &allowed_qualities(printer),
            " by this printer",
        )?;
        configuration.quality = Some(quality.clone());
    }
    let caps = capabilities(printer);
    if let Some(n) = options.pages_per_sheet {
        match caps.and_then(|c| c.pages_per_sheet.clone()) {
            Some(list) => check_member("pagesPerSheet", &n, &list, " by this printer")?,
            None if !(1..=16).contains(&n) => {
                return Err(refuse(
                    "pagesPerSheet",
                    format!("pagesPerSheet {n} is not allowed; choose from 1 to 16"),
                    vec!["1-16".to_owned()],
                ));
            }
            None => {}
        }
        configuration.pages_per_sheet = Some(n);
    }
    if let Some(size) = &options.media_size {
        if let Some(list) = caps.and_then(|c| c.media_sizes.clone()) {
            check_member("mediaSize", size, &list, " by this printer")?;
        } else if size.trim().is_empty() {
            return Err(refuse(
                "mediaSize",
                "mediaSize is empty; give a media size name such as A4".to_owned(),
                vec![],
            ));
        }
        configuration.media_size = Some(size.clone());
    }
    if let Some(ranges) = &options.page_ranges {
        if caps.and_then(|c| c.is_page_range_supported) == Some(false) {
            return Err(refuse(
                "pageRanges",
                "pageRanges is not allowed: this printer cannot print page ranges; print the whole document".to_owned(),
                vec![],
            ));
        }
        if ranges.is_empty() {
            return Err(refuse(
                "pageRanges",
                "pageRanges is empty; give at least one range, or leave it out to print every page"
                    .to_owned(),
                vec![],
            ));
        }
        let mut sent = Vec::with_capacity(ranges.len());
        for range in ranges {
            if range.start < 1 || range.end < range.start {
                return Err(refuse(
                    "pageRanges",
                    format!(
                        "pageRanges {}-{} is not allowed; pages start at 1 and a range ends at or after its start",
                        range.start, range.end
                    ),
                    vec![],
                ));
            }
            sent.push(IntegerRange {
                start: Some(range.start),
                end: Some(range.end),
            });
        }
        configuration.page_ranges = Some(sent);
    }
    Ok(Some(configuration))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use serde_json::{Value, json};

    use super::*;

    fn printer() -> Printer {
        serde_json::from_value(json!({
            "id": "p1",
            "displayName": "Lobby",
            "capabilities": {
                "copiesPerJob": {"start": 1, "end": 50},
                "duplexModes": ["oneSided", "flipOnLongEdge", "flipOnShortEdge"],
                "colorModes": ["color", "grayscale", "blackAndWhite"],
                "orientations": ["portrait", "landscape"],
                "pagesPerSheet": [1, 2, 4],
                "mediaSizes": ["A4", "A3"],
                "qualities": ["medium", "high"],
                "isPageRangeSupported": true
            },
            "defaults": {"duplexMode": "oneSided", "colorMode": "color"}
        }))
        .unwrap()
    }

    fn mono_printer() -> Printer {
        serde_json::from_value(json!({
            "id": "p2",
            "capabilities": {"colorModes": ["blackAndWhite"], "duplexModes": ["oneSided"]}
        }))
        .unwrap()
    }

    const OPEN: ReleasePolicy = ReleasePolicy {
        max_copies: 20,
        saving_only: false,
    };
    const SAVING: ReleasePolicy = ReleasePolicy {
        max_copies: 20,
        saving_only: true,
    };

    fn options(value: Value) -> ReleaseOptions {
        serde_json::from_value(value).unwrap()
    }

    /// A job's configuration at intake, as Graph sent it.
    fn submitted(value: Value) -> PrintJobConfiguration {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn no_options_print_the_job_as_submitted() {
        let result = apply(
            &ReleaseOptions::default(),
            &submitted(json!({"copies": 1})),
            Some(&printer()),
            OPEN,
        );
        assert_eq!(result, Ok(None));
    }

    #[test]
    fn chosen_options_are_merged_into_the_submitted_configuration() {
        let held = submitted(json!({"copies": 1, "mediaSize": "A4", "duplexMode": "oneSided"}));
        let chosen = options(
            json!({"copies": 3, "duplexMode": "flipOnLongEdge", "colorMode": "blackAndWhite"}),
        );
        let sent = apply(&chosen, &held, Some(&printer()), OPEN)
            .unwrap()
            .unwrap();
        assert_eq!(
            serde_json::to_value(sent).unwrap(),
            json!({"copies": 3, "mediaSize": "A4", "duplexMode": "flipOnLongEdge", "colorMode": "blackAndWhite"})
        );
    }

    #[test]
    fn properties_of_the_submitted_configuration_this_version_does_not_know_are_sent_back() {
        let held = submitted(json!({"copies": 1, "tonerSaver": true}));
        let sent = apply(
            &options(json!({"copies": 2})),
            &held,
            Some(&printer()),
            OPEN,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            serde_json::to_value(sent).unwrap(),
            json!({"copies": 2, "tonerSaver": true})
        );
    }

    #[test]
    fn copies_above_the_policy_limit_are_refused_naming_the_limit() {
        let refusal = apply(
            &options(json!({"copies": 21})),
            &submitted(json!({})),
            Some(&printer()),
            OPEN,
        )
        .unwrap_err();
        assert_eq!(refusal.option, "copies");
        assert!(
            refusal.message.contains("from 1 to 20"),
            "{}",
            refusal.message
        );
    }

    #[test]
    fn copies_above_the_printer_limit_are_refused() {
        let policy = ReleasePolicy {
            max_copies: 99,
            saving_only: false,
        };
        let refusal = apply(
            &options(json!({"copies": 51})),
            &submitted(json!({})),
            Some(&printer()),
            policy,
        )
        .unwrap_err();
        assert!(
            refusal.message.contains("from 1 to 50"),
            "{}",
            refusal.message
        );
        assert!(
            apply(
                &options(json!({"copies": 0})),
                &submitted(json!({})),
                Some(&printer()),
                policy
            )
            .is_err()
        );
    }

    #[test]
    fn colour_on_a_black_and_white_printer_is_refused_listing_what_it_can_do() {
        let refusal = apply(
            &options(json!({"colorMode": "color"})),
            &submitted(json!({})),
            Some(&mono_printer()),
            OPEN,
        )
        .unwrap_err();
        assert_eq!(refusal.option, "colorMode");
        assert_eq!(refusal.allowed, vec!["blackAndWhite"]);
        assert!(refusal.message.contains("`color`"), "{}", refusal.message);
    }

    #[test]
    fn saving_only_allows_one_sided_to_two_sided_but_not_back() {
        let one_sided = submitted(json!({"duplexMode": "oneSided"}));
        let two_sided = submitted(json!({"duplexMode": "flipOnLongEdge"}));
        assert!(
            apply(
                &options(json!({"duplexMode": "flipOnLongEdge"})),
                &one_sided,
                Some(&printer()),
                SAVING
            )
            .is_ok()
        );
        let refusal = apply(
            &options(json!({"duplexMode": "oneSided"})),
            &two_sided,
            Some(&printer()),
            SAVING,
        )
        .unwrap_err();
        assert_eq!(refusal.option, "duplexMode");
        assert!(
            refusal.message.contains("saving_only"),
            "{}",
            refusal.message
        );
        assert!(
            apply(
                &options(json!({"duplexMode": "oneSided"})),
                &two_sided,
                Some(&printer()),
                OPEN
            )
            .is_ok()
        );
    }

    #[test]
    fn saving_only_allows_colour_to_black_and_white_but_not_back() {
        let colour = submitted(json!({"colorMode": "color"}));
        let mono = submitted(json!({"colorMode": "grayscale"}));
        assert!(
            apply(
                &options(json!({"colorMode": "blackAndWhite"})),
                &colour,
                Some(&printer()),
                SAVING
            )
            .is_ok()
        );
        let refusal = apply(
            &options(json!({"colorMode": "color"})),
            &mono,
            Some(&printer()),
            SAVING,
        )
        .unwrap_err();
        assert_eq!(refusal.allowed, vec!["grayscale", "blackAndWhite"]);
    }

    #[test]
    fn saving_only_reads_the_printer_default_when_the_job_left_the_option_unset() {
        let mut p = printer();
        p.defaults.as_mut().unwrap().duplex_mode = Some(PrintDuplexMode::FlipOnLongEdge);
        assert!(
            apply(
                &options(json!({"duplexMode": "oneSided"})),
                &submitted(json!({})),
                Some(&p),
                SAVING
            )
            .is_err()
        );
    }

    #[test]
    fn an_unknown_enum_member_is_refused_not_passed_on() {
        let refusal = apply(
            &options(json!({"duplexMode": "sideways"})),
            &submitted(json!({})),
            None,
            OPEN,
        )
        .unwrap_err();
        assert_eq!(refusal.option, "duplexMode");
        let refusal = apply(
            &options(json!({"colorMode": "unknownFutureValue"})),
            &submitted(json!({})),
            None,
            OPEN,
        )
        .unwrap_err();
        assert_eq!(refusal.option, "colorMode");
    }

    #[test]
    fn unknown_capabilities_still_enforce_the_policy() {
        assert!(
            apply(
                &options(json!({"copies": 5, "duplexMode": "flipOnShortEdge"})),
                &submitted(json!({})),
                None,
                OPEN
            )
            .is_ok()
        );
        assert!(
            apply(
                &options(json!({"copies": 21})),
                &submitted(json!({})),
                None,
                OPEN
            )
            .is_err()
        );
    }

    #[test]
    fn media_size_pages_per_sheet_and_quality_follow_the_printer() {
        let p = printer();
        assert!(
            apply(
                &options(json!({"mediaSize": "A3", "pagesPerSheet": 2, "quality": "high"})),
                &submitted(json!({})),
                Some(&p),
                OPEN
            )
            .is_ok()
        );
        assert_eq!(
            apply(
                &options(json!({"mediaSize": "Letter"})),
                &submitted(json!({})),
                Some(&p),
                OPEN
            )
            .unwrap_err()
            .option,
            "mediaSize"
        );
        assert_eq!(
            apply(
                &options(json!({"pagesPerSheet": 6})),
                &submitted(json!({})),
                Some(&p),
                OPEN
            )
            .unwrap_err()
            .option,
            "pagesPerSheet"
        );
        assert_eq!(
            apply(
                &options(json!({"quality": "low"})),
                &submitted(json!({})),
                Some(&p),
                OPEN
            )
            .unwrap_err()
            .option,
            "quality"
        );
    }

    #[test]
    fn page_ranges_must_be_ordered_and_start_at_one() {
        let p = printer();
        let sent = apply(
            &options(json!({"pageRanges": [{"start": 2, "end": 3}]})),
            &submitted(json!({})),
            Some(&p),
            OPEN,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            serde_json::to_value(sent).unwrap()["pageRanges"],
            json!([{"start": 2, "end": 3}])
        );
        assert!(
            apply(
                &options(json!({"pageRanges": [{"start": 3, "end": 2}]})),
                &submitted(json!({})),
                Some(&p),
                OPEN
            )
            .is_err()
        );
        assert!(
            apply(
                &options(json!({"pageRanges": [{"start": 0, "end": 2}]})),
                &submitted(json!({})),
                Some(&p),
                OPEN
            )
            .is_err()
        );
    }

    #[test]
    fn an_unknown_field_is_refused_by_the_parser_naming_it() {
        let error = serde_json::from_value::<ReleaseOptions>(json!({"copies": 1, "staple": true}))
            .unwrap_err();
        assert!(error.to_string().contains("staple"), "{error}");
    }

    #[test]
    fn the_kiosk_is_offered_exactly_what_a_release_accepts() {
        let held = submitted(json!({"duplexMode": "flipOnLongEdge", "colorMode": "color"}));
        let offered = choices(&held, Some(&printer()), SAVING);
        assert_eq!(
            offered.duplex_modes,
            vec!["flipOnLongEdge", "flipOnShortEdge"]
        );
        assert_eq!(
            offered.color_modes,
            vec!["color", "grayscale", "blackAndWhite"]
        );
        assert_eq!((offered.min_copies, offered.max_copies), (1, 20));
        for mode in ["oneSided", "flipOnLongEdge", "flipOnShortEdge"] {
            let accepted = apply(
                &options(json!({"duplexMode": mode})),
                &held,
                Some(&printer()),
                SAVING,
            )
            .is_ok();
            assert_eq!(
                accepted,
                offered.duplex_modes.iter().any(|m| m == mode),
                "{mode}"
            );
        }
    }
}
