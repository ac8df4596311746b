//! Print job configurations: validation against Graph's types and enum members, and the realistic
//! capabilities and defaults a new emulated printer gets.
//!
//! Enum members are the CSDL's (`print-enums.json`). Decisions where the docs are silent ([U]), the
//! stricter plausible reading each time:
//! - unknown property names, wrong JSON types, `unknownFutureValue` and unknown enum members → 400;
//! - members listed after `unknownFutureValue` (evolvable enums) are accepted only when the request
//!   carries `Prefer: include-unknown-enum-members`, as Graph only returns them then;
//! - `copies` must lie inside the printer's `copiesPerJob` range and `colorMode`/`duplexMode` must be
//!   among the printer's capabilities.

use serde_json::{Map, Value, json};

/// An enum: members before the `unknownFutureValue` sentinel, then the evolvable ones after it.
struct EnumDef {
    name: &'static str,
    members: &'static [&'static str],
    evolvable: &'static [&'static str],
}

const COLOR_MODE: EnumDef = EnumDef {
    name: "printColorMode",
    members: &["blackAndWhite", "grayscale", "color", "auto"],
    evolvable: &[],
};
const DUPLEX_MODE: EnumDef = EnumDef {
    name: "printDuplexMode",
    members: &["flipOnLongEdge", "flipOnShortEdge", "oneSided"],
    evolvable: &[],
};
const ORIENTATION: EnumDef = EnumDef {
    name: "printOrientation",
    members: &[
        "portrait",
        "landscape",
        "reverseLandscape",
        "reversePortrait",
    ],
    evolvable: &[],
};
const QUALITY: EnumDef = EnumDef {
    name: "printQuality",
    members: &["low", "medium", "high"],
    evolvable: &[],
};
const SCALING: EnumDef = EnumDef {
    name: "printScaling",
    members: &["auto", "shrinkToFit", "fill", "fit", "none"],
    evolvable: &[],
};
const MULTIPAGE_LAYOUT: EnumDef = EnumDef {
    name: "printMultipageLayout",
    members: &[
        "clockwiseFromTopLeft",
        "counterclockwiseFromTopLeft",
        "counterclockwiseFromTopRight",
        "clockwiseFromTopRight",
        "counterclockwiseFromBottomLeft",
        "clockwiseFromBottomLeft",
        "counterclockwiseFromBottomRight",
        "clockwiseFromBottomRight",
    ],
    evolvable: &[],
};
const FEED_ORIENTATION: EnumDef = EnumDef {
    name: "printerFeedOrientation",
    members: &["longEdgeFirst", "shortEdgeFirst"],
    evolvable: &[],
};
const FINISHING: EnumDef = EnumDef {
    name: "printFinishing",
    members: &[
        "none",
        "staple",
        "punch",
        "cover",
        "bind",
        "saddleStitch",
        "stitchEdge",
        "stapleTopLeft",
        "stapleBottomLeft",
        "stapleTopRight",
        "stapleBottomRight",
        "stitchLeftEdge",
        "stitchTopEdge",
        "stitchRightEdge",
        "stitchBottomEdge",
        "stapleDualLeft",
        "stapleDualTop",
        "stapleDualRight",
        "stapleDualBottom",
    ],
    evolvable: &[
        "stapleTripleLeft",
        "stapleTripleTop",
        "stapleTripleRight",
        "stapleTripleBottom",
        "bindLeft",
        "bindTop",
        "bindRight",
        "bindBottom",
        "foldAccordion",
        "foldDoubleGate",
        "foldGate",
        "foldHalf",
        "foldHalfZ",
        "foldLeftGate",
        "foldLetter",
        "foldParallel",
        "foldPoster",
        "foldRightGate",
        "foldZ",
        "foldEngineeringZ",
        "punchTopLeft",
        "punchBottomLeft",
        "punchTopRight",
        "punchBottomRight",
        "punchDualLeft",
        "punchDualTop",
        "punchDualRight",
        "punchDualBottom",
        "punchTripleLeft",
        "punchTripleTop",
        "punchTripleRight",
        "punchTripleBottom",
        "punchQuadLeft",
        "punchQuadTop",
        "punchQuadRight",
        "punchQuadBottom",
        "fold",
        "trim",
        "bale",
        "bookletMaker",
        "coat",
        "laminate",
        "trimAfterPages",
        "trimAfterDocuments",
        "trimAfterCopies",
        "trimAfterJob",
    ],
};

/// Members of `printTaskProcessingState` a client may name.
pub(crate) const TASK_STATES: &[&str] = &["pending", "processing", "completed", "aborted"];

/// The JSON type each `printJobConfiguration` property must have.
enum Kind {
    Bool,
    Int,
    Text,
    Enum(&'static EnumDef),
    EnumList(&'static EnumDef),
    Margin,
    Ranges,
}

fn kind_of(property: &str) -> Option<Kind> {
    Some(match property {
        "collate" | "fitPdfToPage" => Kind::Bool,
        "copies" | "dpi" | "pagesPerSheet" => Kind::Int,
        "inputBin" | "mediaSize" | "mediaType" | "outputBin" => Kind::Text,
        "colorMode" => Kind::Enum(&COLOR_MODE),
        "duplexMode" => Kind::Enum(&DUPLEX_MODE),
        "orientation" => Kind::Enum(&ORIENTATION),
        "quality" => Kind::Enum(&QUALITY),
        "scaling" => Kind::Enum(&SCALING),
        "multipageLayout" => Kind::Enum(&MULTIPAGE_LAYOUT),
        "feedOrientation" => Kind::Enum(&FEED_ORIENTATION),
        "finishings" => Kind::EnumList(&FINISHING),
        "margin" => Kind::Margin,
        "pageRanges" => Kind::Ranges,
        _ => return None,
    })
}

fn check_enum(
    def: &EnumDef,
    property: &str,
    value: &Value,
    evolvable_ok: bool,
) -> Result<(), String> {
    let Some(text) = value.as_str() else {
        return Err(format!(
            "'{property}' must be a {} string, got {value}",
            def.name
        ));
    };
    if def.members.contains(&text) || (evolvable_ok && def.evolvable.contains(&text)) {
        return Ok(());
    }
    if def.evolvable.contains(&text) {
        return Err(format!(
            "'{text}' is an evolvable member of {}: send 'Prefer: include-unknown-enum-members' to use it",
            def.name
        ));
    }
    Err(format!(
        "'{text}' is not a valid {} for '{property}'; valid members: {}",
        def.name,
        def.members.join(", ")
    ))
}

fn is_int(value: &Value) -> bool {
    value.as_i64().is_some()
}

/// Checks a `printJobConfiguration` object: property names, JSON types, enum members, and the
/// printer's capabilities. Returns a message for a 400 `invalidRequest` otherwise.
pub(crate) fn validate(
    configuration: &Value,
    capabilities: &Value,
    evolvable_ok: bool,
) -> Result<(), String> {
    let Some(object) = configuration.as_object() else {
        return Err("'configuration' must be a printJobConfiguration object".to_owned());
    };
    for (property, value) in object {
        let Some(kind) = kind_of(property) else {
            return Err(format!(
                "'{property}' is not a property of printJobConfiguration"
            ));
        };
        // Every printJobConfiguration property is nullable in the CSDL.
        if value.is_null() {
            continue;
        }
        let ok = match kind {
            Kind::Bool => value.is_boolean(),
            Kind::Int => is_int(value),
            Kind::Text => value.is_string(),
            Kind::Enum(def) => {
                check_enum(def, property, value, evolvable_ok)?;
                true
            }
            Kind::EnumList(def) => {
                let Some(items) = value.as_array() else {
                    return Err(format!("'{property}' must be an array of {}", def.name));
                };
                for item in items {
                    check_enum(def, property, item, evolvable_ok)?;
                }
                true
            }
            Kind::Margin => value.as_object().is_some_and(|m| {
                m.iter().all(|(k, v)| {
                    ["top", "bottom", "left", "right"].contains(&k.as_str())
                        && (v.is_null() || is_int(v))
                })
            }),
            Kind::Ranges => value.as_array().is_some_and(|ranges| {
                ranges.iter().all(|r| {
                    r.as_object().is_some_and(|m| {
                        m.iter()
                            .all(|(k, v)| (k == "start" || k == "end") && is_int(v))
                    })
                })
            }),
        };
        if !ok {
            return Err(format!("'{property}' has the wrong type: {value}"));
        }
    }
    check_capabilities(object, capabilities)
}

fn check_capabilities(object: &Map<String, Value>, capabilities: &Value) -> Result<(), String> {
    if let Some(copies) = object.get("copies").and_then(Value::as_i64) {
        let start = capabilities["copiesPerJob"]["start"].as_i64().unwrap_or(1);
        let end = capabilities["copiesPerJob"]["end"].as_i64().unwrap_or(1);
        if copies < start || copies > end {
            return Err(format!(
                "copies {copies} is outside the printer's copiesPerJob range {start}–{end}"
            ));
        }
    }
    for (property, capability) in [("colorMode", "colorModes"), ("duplexMode", "duplexModes")] {
        if let (Some(value), Some(allowed)) = (
            object.get(property).and_then(Value::as_str),
            capabilities[capability].as_array(),
        ) && !allowed.iter().any(|a| a.as_str() == Some(value))
        {
            return Err(format!(
                "{property} '{value}' is not supported by the printer (capabilities.{capability})"
            ));
        }
    }
    Ok(())
}

/// The capabilities of a typical office A4 multifunction printer.
pub(crate) fn default_capabilities() -> Value {
    json!({
        "isColorPrintingSupported": true,
        "supportsFitPdfToPage": true,
        "isPageRangeSupported": true,
        "collation": true,
        "colorModes": ["blackAndWhite", "grayscale", "color", "auto"],
        "contentTypes": ["application/oxps", "application/pdf", "image/pwg-raster"],
        "copiesPerJob": {"start": 1, "end": 99},
        "dpis": [300, 600],
        "duplexModes": ["flipOnLongEdge", "flipOnShortEdge", "oneSided"],
        "feedOrientations": ["longEdgeFirst", "shortEdgeFirst"],
        "finishings": ["none", "staple", "punch"],
        "inputBins": ["auto", "tray-1", "by-pass-tray"],
        "outputBins": ["output-tray"],
        "mediaColors": ["white"],
        "mediaSizes": ["A4", "A3", "A5", "North America Letter", "North America Legal"],
        "mediaTypes": ["stationery", "transparency", "envelope"],
        "multipageLayouts": ["clockwiseFromTopLeft", "counterclockwiseFromTopLeft"],
        "orientations": ["portrait", "landscape"],
        "pagesPerSheet": [1, 2, 4],
        "qualities": ["low", "medium", "high"],
        "scalings": ["auto", "shrinkToFit", "fill", "fit", "none"],
        "topMargins": [0, 420],
        "bottomMargins": [0, 420],
        "leftMargins": [0, 420],
        "rightMargins": [0, 420]
    })
}

/// The defaults that go with [`default_capabilities`].
pub(crate) fn default_defaults() -> Value {
    json!({
        "colorMode": "color",
        "contentType": "application/oxps",
        "copiesPerJob": 1,
        "dpi": 600,
        "duplexMode": "oneSided",
        "finishings": ["none"],
        "fitPdfToPage": false,
        "inputBin": "auto",
        "mediaColor": "white",
        "mediaSize": "A4",
        "mediaType": "stationery",
        "multipageLayout": "clockwiseFromTopLeft",
        "orientation": "portrait",
        "outputBin": "output-tray",
        "pagesPerSheet": 1,
        "quality": "medium",
        "scaling": "auto"
    })
}

/// The configuration a job gets when its submitter names none: the printer's defaults, mapped onto
/// printJobConfiguration's property names.
pub(crate) fn configuration_from_defaults(defaults: &Value) -> Value {
    let mut out = Map::new();
    for (from, to) in [
        ("colorMode", "colorMode"),
        ("copiesPerJob", "copies"),
        ("dpi", "dpi"),
        ("duplexMode", "duplexMode"),
        ("fitPdfToPage", "fitPdfToPage"),
        ("inputBin", "inputBin"),
        ("mediaSize", "mediaSize"),
        ("mediaType", "mediaType"),
        ("multipageLayout", "multipageLayout"),
        ("orientation", "orientation"),
        ("outputBin", "outputBin"),
        ("pagesPerSheet", "pagesPerSheet"),
        ("quality", "quality"),
        ("scaling", "scaling"),
    ] {
        if let Some(value) = defaults.get(from) {
            out.insert(to.to_owned(), value.clone());
        }
    }
    out.insert("collate".to_owned(), json!(false));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_enum_member_is_refused() {
        let err = validate(
            &json!({"duplexMode": "sideways"}),
            &default_capabilities(),
            false,
        );
        assert!(
            err.expect_err("sideways is no duplex mode")
                .contains("printDuplexMode")
        );
    }

    #[test]
    fn an_evolvable_member_needs_the_prefer_header() {
        let config = json!({"finishings": ["bindLeft"]});
        assert!(validate(&config, &default_capabilities(), false).is_err());
        assert!(validate(&config, &default_capabilities(), true).is_ok());
    }

    #[test]
    fn a_realistic_configuration_is_accepted_and_an_unknown_property_is_not() {
        let ok = json!({"copies": 2, "duplexMode": "flipOnLongEdge", "colorMode": "blackAndWhite",
            "margin": {"top": 0}, "pageRanges": [{"start": 1, "end": 2}], "finishings": null});
        assert_eq!(validate(&ok, &default_capabilities(), false), Ok(()));
        assert!(validate(&json!({"stapled": true}), &default_capabilities(), false).is_err());
        assert!(validate(&json!({"copies": 100}), &default_capabilities(), false).is_err());
    }
}
