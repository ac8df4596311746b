//! Checks recorded Graph requests against the project's copy of Microsoft's OpenAPI description of the
//! print API (`tests/data/graph/print-openapi-v1.0.json`, made by `scripts/graph-schema/`).
//!
//! Owns the request check the tests run over the emulator's request log: the method and path must be an
//! operation of the description, the query options ones it declares, and the JSON body must satisfy the
//! operation's request-body schema. The schema check is a small OpenAPI 3.0 validator covering what the
//! description uses: `$ref`, `type` with `nullable`, `enum` (and flags enums), `format` (date-time, date,
//! uuid), `minimum`/`maximum`, `properties`, `required`, `additionalProperties`, `items`, `allOf`,
//! `anyOf`, `oneOf` and `not`. A keyword it does not know fails loudly, so the description cannot grow a
//! rule that is silently skipped.

use std::fmt;
use std::path::Path;

use serde_json::Value;
use url::Url;

/// The description, parsed once: it is compiled into the test binary, so a clone needs nothing beside it.
const DESCRIPTION: &str = include_str!("../data/graph/print-openapi-v1.0.json");
/// Operations Microsoft documents on Learn but its published metadata does not define yet (native
/// pull printing), written from the pages in the same shape; merged under the generated paths, never
/// over them (see `tests/data/graph/README.md`).
const DOCUMENTED: &str = include_str!("../data/graph/print-openapi-documented.json");

/// The schema keywords the validator applies.
const KEYWORDS: &[&str] = &[
    "$ref",
    "type",
    "nullable",
    "enum",
    "format",
    "minimum",
    "maximum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "allOf",
    "anyOf",
    "oneOf",
    "not",
];

/// Keywords that carry no rule for a request value.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "example",
    "x-ms-enum-flags",
    "style",
    "explode",
];

/// Microsoft's OpenAPI description of the Graph operations pullprintd calls.
pub struct GraphSchema {
    doc: Value,
}

/// The outcome of checking a request log.
pub struct Report {
    /// Requests read from the log.
    pub total: usize,
    /// One line per invalid request: method, URL and what is wrong.
    pub invalid: Vec<String>,
}

impl Report {
    /// Whether every request was valid.
    pub fn all_valid(&self) -> bool {
        self.invalid.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for line in &self.invalid {
            writeln!(f, "INVALID {line}")?;
        }
        write!(
            f,
            "{} of {} recorded Graph requests valid against Microsoft's schema",
            self.total - self.invalid.len(),
            self.total
        )
    }
}

impl GraphSchema {
    /// The project's copy of the description.
    pub fn load() -> Self {
        let mut doc: Value = serde_json::from_str(DESCRIPTION)
            .expect("tests/data/graph/print-openapi-v1.0.json is JSON");
        let documented: Value = serde_json::from_str(DOCUMENTED)
            .expect("tests/data/graph/print-openapi-documented.json is JSON");
        if let (Some(paths), Some(more)) = (
            doc["paths"].as_object_mut(),
            documented["paths"].as_object(),
        ) {
            for (path, item) in more {
                paths.entry(path.clone()).or_insert_with(|| item.clone());
            }
        }
        Self { doc }
    }

    /// Checks every line (`{"method","url","body"}`) of the emulator's request log.
    pub fn check_log(&self, path: &Path) -> Report {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read the request log {}: {e}", path.display()));
        let mut report = Report {
            total: 0,
            invalid: Vec::new(),
        };
        for (number, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            report.total += 1;
            let request: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(e) => {
                    report
                        .invalid
                        .push(format!("line {}: not JSON: {e}", number + 1));
                    continue;
                }
            };
            let method = request["method"].as_str().unwrap_or_default();
            let url = request["url"].as_str().unwrap_or_default();
            if let Err(errors) = self.check(method, url, &request["body"]) {
                report
                    .invalid
                    .push(format!("{method} {url}: {}", errors.join("; ")));
            }
        }
        report
    }

    /// Checks one request; the errors say what is wrong, each with where.
    pub fn check(&self, method: &str, url: &str, body: &Value) -> Result<(), Vec<String>> {
        let url = Url::parse(url).map_err(|e| vec![format!("not a URL: {e}")])?;
        // The client may be pointed at https://graph.microsoft.com/v1.0 or at a root (the emulator).
        let path = url.path();
        let path = path.strip_prefix("/v1.0").unwrap_or(path);
        let (template, item) = self
            .path_item(path)
            .ok_or_else(|| vec![format!("no path of the description matches {path}")])?;
        let operation = item
            .get(method.to_ascii_lowercase())
            .filter(|o| o.is_object())
            .ok_or_else(|| vec![format!("{template} has no {method} operation")])?;
        let mut errors = Vec::new();
        self.check_query(&url, item, operation, &mut errors);
        self.check_body(operation, body, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// The path template matching `path`, preferring the one with the most fixed segments.
    fn path_item(&self, path: &str) -> Option<(&str, &Value)> {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let paths = self.doc["paths"].as_object()?;
        paths
            .iter()
            .filter_map(|(template, item)| {
                let parts: Vec<&str> = template.trim_matches('/').split('/').collect();
                if parts.len() != segments.len() {
                    return None;
                }
                let mut fixed = 0;
                for (part, segment) in parts.iter().zip(&segments) {
                    if part.starts_with('{') && part.ends_with('}') {
                        if segment.is_empty() {
                            return None;
                        }
                    } else if part == segment {
                        fixed += 1;
                    } else {
                        return None;
                    }
                }
                Some((fixed, template.as_str(), item))
            })
            .max_by_key(|(fixed, _, _)| *fixed)
            .map(|(_, template, item)| (template, item))
    }

    fn check_query(&self, url: &Url, item: &Value, operation: &Value, errors: &mut Vec<String>) {
        let declared: Vec<&Value> = [&item["parameters"], &operation["parameters"]]
            .into_iter()
            .filter_map(Value::as_array)
            .flatten()
            .map(|p| self.resolve(p))
            .filter(|p| p["in"] == "query")
            .collect();
        for (name, value) in url.query_pairs() {
            let Some(parameter) = declared.iter().find(|p| p["name"] == *name) else {
                errors.push(format!(
                    "query option {name} is not declared for this operation"
                ));
                continue;
            };
            let schema = &parameter["schema"];
            let at = format!("query {name}");
            match schema["type"].as_str() {
                Some("array") => {
                    for entry in split_list(&value) {
                        // `$expand=tasks($select=id)`: the name is checked, its nested options are not.
                        let name = entry.split('(').next().unwrap_or_default().trim();
                        self.validate(&schema["items"], &Value::from(name), &at, errors);
                    }
                }
                Some("integer") => match value.parse::<i64>() {
                    Ok(n) => self.validate(schema, &Value::from(n), &at, errors),
                    Err(_) => errors.push(format!("{at}: {value:?} is not an integer")),
                },
                Some("boolean") => {
                    if value != "true" && value != "false" {
                        errors.push(format!("{at}: {value:?} is not true or false"));
                    }
                }
                _ => self.validate(schema, &Value::from(value.as_ref()), &at, errors),
            }
        }
    }

    fn check_body(&self, operation: &Value, body: &Value, errors: &mut Vec<String>) {
        let request_body = self.resolve(&operation["requestBody"]);
        if request_body.is_null() {
            if !body.is_null() {
                errors.push("body: this operation takes no request body".to_owned());
            }
            return;
        }
        if body.is_null() {
            if request_body["required"] == true {
                errors.push("body: a request body is required".to_owned());
            }
            return;
        }
        let Some(schema) = request_body["content"]
            .get("application/json")
            .map(|media| &media["schema"])
        else {
            errors.push("body: this operation takes no JSON body".to_owned());
            return;
        };
        if body.is_string() && schema["type"] != "string" {
            // The log keeps a body that is not JSON as a string.
            errors.push("body: not a JSON document".to_owned());
            return;
        }
        self.validate(schema, body, "body", errors);
    }

    /// Follows a local `$ref` (`#/components/...`).
    fn resolve<'a>(&'a self, value: &'a Value) -> &'a Value {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => reference
                .strip_prefix('#')
                .and_then(|pointer| self.doc.pointer(pointer))
                .unwrap_or_else(|| panic!("the description has no {reference}")),
            None => value,
        }
    }

    /// Appends to `errors` every way `value` (found at `at`) breaks `schema`.
    fn validate(&self, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(keywords) = schema.as_object() else {
            panic!("{at}: the description has a schema that is not an object: {schema}");
        };
        if keywords.contains_key("$ref") {
            // OpenAPI 3.0: a $ref's siblings are ignored.
            return self.validate(self.resolve(schema), value, at, errors);
        }
        let name = keywords
            .get("title")
            .and_then(Value::as_str)
            .map(|t| format!(" ({t})"))
            .unwrap_or_default();
        if let Some(expected) = keywords.get("type").and_then(Value::as_str) {
            if value.is_null() {
                if keywords.get("nullable") != Some(&Value::Bool(true)) {
                    errors.push(format!("{at}: null where {expected}{name} is expected"));
                }
                // OpenAPI 3.0.3: `nullable` adds null to the values the other keywords allow.
                if keywords.get("not").is_none() {
                    return;
                }
            } else if !has_type(value, expected) {
                errors.push(format!(
                    "{at}: {} where {expected}{name} is expected",
                    kind(value)
                ));
                return;
            }
        }
        for (keyword, rule) in keywords {
            match keyword.as_str() {
                "type" | "nullable" => {}
                "enum" => check_enum(keywords, rule, value, at, &name, errors),
                "format" => check_format(rule.as_str().unwrap_or_default(), value, at, errors),
                "minimum" | "maximum" => {
                    if let (Some(n), Some(bound)) = (value.as_f64(), rule.as_f64()) {
                        let outside = if keyword == "minimum" {
                            n < bound
                        } else {
                            n > bound
                        };
                        if outside {
                            errors.push(format!("{at}: {value} is outside the {keyword} {rule}"));
                        }
                    }
                }
                "properties" => {
                    if let (Some(object), Some(rules)) = (value.as_object(), rule.as_object()) {
                        for (property, property_schema) in rules {
                            if let Some(v) = object.get(property) {
                                self.validate(
                                    property_schema,
                                    v,
                                    &format!("{at}.{property}"),
                                    errors,
                                );
                            }
                        }
                    }
                }
                "required" => {
                    if let Some(object) = value.as_object() {
                        for property in rule.as_array().into_iter().flatten() {
                            let property = property.as_str().unwrap_or_default();
                            if !object.contains_key(property) {
                                errors.push(format!(
                                    "{at}: the required property {property:?} is missing"
                                ));
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    let known = keywords.get("properties").and_then(Value::as_object);
                    let extra = value
                        .as_object()
                        .into_iter()
                        .flatten()
                        .filter(|(k, _)| known.is_none_or(|known| !known.contains_key(*k)));
                    for (property, v) in extra {
                        match rule {
                            Value::Bool(true) => {}
                            Value::Bool(false) => {
                                errors.push(format!("{at}: unknown property {property:?}{name}"))
                            }
                            _ => self.validate(rule, v, &format!("{at}.{property}"), errors),
                        }
                    }
                }
                "items" => {
                    for (i, item) in value.as_array().into_iter().flatten().enumerate() {
                        self.validate(rule, item, &format!("{at}[{i}]"), errors);
                    }
                }
                "allOf" => {
                    for branch in rule.as_array().into_iter().flatten() {
                        self.validate(branch, value, at, errors);
                    }
                }
                "anyOf" | "oneOf" => self.check_alternatives(keyword, rule, value, at, errors),
                "not" => {
                    let mut inner = Vec::new();
                    self.validate(rule, value, at, &mut inner);
                    if inner.is_empty() {
                        errors.push(format!("{at}: {} is not allowed here", kind(value)));
                    }
                }
                annotation if ANNOTATIONS.contains(&annotation) => {}
                unknown => panic!("{at}: the validator does not know the keyword {unknown:?}"),
            }
        }
    }

    fn check_alternatives(
        &self,
        keyword: &str,
        rule: &Value,
        value: &Value,
        at: &str,
        errors: &mut Vec<String>,
    ) {
        let branches: Vec<&Value> = rule.as_array().into_iter().flatten().collect();
        let outcomes: Vec<Vec<String>> = branches
            .iter()
            .map(|branch| {
                let mut inner = Vec::new();
                self.validate(branch, value, at, &mut inner);
                inner
            })
            .collect();
        let matched = outcomes.iter().filter(|o| o.is_empty()).count();
        if keyword == "oneOf" && matched > 1 {
            errors.push(format!("{at}: matches {matched} alternatives of a oneOf"));
        }
        if matched > 0 {
            return;
        }
        // "X or null" (`anyOf: [X, <null>]`) with a value that is not null: X's own errors say it best.
        let meaningful: Vec<&Vec<String>> = branches
            .iter()
            .zip(&outcomes)
            .filter(|(branch, _)| value.is_null() || !is_null_branch(branch))
            .map(|(_, outcome)| outcome)
            .collect();
        match meaningful.as_slice() {
            [only] => errors.extend(only.iter().cloned()),
            _ => errors.push(format!(
                "{at}: matches none of the alternatives: {}",
                meaningful
                    .iter()
                    .map(|o| format!("({})", o.join("; ")))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )),
        }
    }
}

/// Splits an OData list option at its top-level commas (`a,b($select=c,d)` is two entries).
fn split_list(value: &str) -> Vec<&str> {
    let mut entries = Vec::new();
    let (mut depth, mut start) = (0_i32, 0);
    for (i, c) in value.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                entries.push(&value[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    entries.push(&value[start..]);
    entries
}

/// The `{type: object, nullable: true, not: {type: object}}` branch that reads "or null".
fn is_null_branch(schema: &Value) -> bool {
    schema.get("nullable") == Some(&Value::Bool(true)) && schema.get("not").is_some()
}

fn has_type(value: &Value, expected: &str) -> bool {
    match expected {
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "object" => value.is_object(),
        "array" => value.is_array(),
        "number" => value.is_number(),
        "integer" => {
            value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|n| n.fract() == 0.0)
        }
        other => panic!("the description names an unknown type {other:?}"),
    }
}

fn kind(value: &Value) -> String {
    match value {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string {s:?}"),
        Value::Array(_) => "an array".to_owned(),
        Value::Object(_) => "an object".to_owned(),
    }
}

fn check_enum(
    keywords: &serde_json::Map<String, Value>,
    rule: &Value,
    value: &Value,
    at: &str,
    name: &str,
    errors: &mut Vec<String>,
) {
    let members = rule.as_array().map(Vec::as_slice).unwrap_or_default();
    let flags = keywords
        .get("x-ms-enum-flags")
        .is_some_and(|f| f["isFlags"] == true);
    let bad: Vec<String> = match value.as_str() {
        // A flags value is a comma-separated list of members.
        Some(s) if flags => s
            .split(',')
            .map(str::trim)
            .filter(|m| !members.iter().any(|x| x == m))
            .map(|m| format!("{m:?}"))
            .collect(),
        _ if members.contains(value) => Vec::new(),
        _ => vec![value.to_string()],
    };
    if !bad.is_empty() {
        let allowed: Vec<&str> = members.iter().filter_map(Value::as_str).collect();
        errors.push(format!(
            "{at}: {} is not a member of the enumeration{name} [{}]",
            bad.join(", "),
            allowed.join(", ")
        ));
    }
}

fn check_format(format: &str, value: &Value, at: &str, errors: &mut Vec<String>) {
    let Some(text) = value.as_str() else {
        return;
    };
    let valid = match format {
        "date-time" => {
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .is_ok()
        }
        "date" => time::Date::parse(
            text,
            time::macros::format_description!("[year]-[month]-[day]"),
        )
        .is_ok(),
        "uuid" => uuid::Uuid::try_parse(text).is_ok(),
        // Formats of numbers are carried by minimum and maximum; the rest are not checked.
        _ => true,
    };
    if !valid {
        errors.push(format!("{at}: {text:?} is not a valid {format}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const JOB: &str = "https://graph.microsoft.com/v1.0/print/printers/p1/jobs/j1";
    const TASK: &str = "http://127.0.0.1:8080/print/taskDefinitions/d1/tasks/t1";

    fn errors(method: &str, url: &str, body: &Value) -> String {
        match GraphSchema::load().check(method, url, body) {
            Ok(()) => panic!("{method} {url} {body} was accepted"),
            Err(errors) => errors.join("; "),
        }
    }

    #[test]
    fn the_requests_pullprintd_sends_are_accepted() {
        let schema = GraphSchema::load();
        let ok = |method: &str, url: &str, body: Value| {
            schema
                .check(method, url, &body)
                .unwrap_or_else(|e| panic!("{method} {url}: {e:?}"));
        };
        ok(
            "PATCH",
            JOB,
            json!({"configuration": {"copies": 2, "duplexMode": "flipOnLongEdge", "colorMode": null}}),
        );
        ok(
            "PATCH",
            TASK,
            json!({"status": {"state": "completed", "description": "released"}}),
        );
        ok(
            "POST",
            &format!("{JOB}/redirect"),
            json!({"destinationPrinterId": "p2", "configuration": null}),
        );
        ok(
            "GET",
            &format!("{JOB}?$expand=documents,tasks($select=id,status)"),
            Value::Null,
        );
        ok("POST", &format!("{JOB}/cancel"), Value::Null);
        ok(
            "POST",
            "https://graph.microsoft.com/v1.0/subscriptions",
            json!({"changeType": "created", "expirationDateTime": "2026-12-01T10:00:00.5Z",
                   "notificationUrl": "https://x.example/n", "resource": "print/taskDefinitions/d1/tasks"}),
        );
    }

    #[test]
    fn an_unknown_enum_member_is_rejected_with_the_members_allowed() {
        let error = errors(
            "PATCH",
            JOB,
            &json!({"configuration": {"duplexMode": "bothSides"}}),
        );
        assert!(
            error.contains("body.configuration.duplexMode: \"bothSides\" is not a member")
                && error.contains("flipOnLongEdge"),
            "{error}"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_is_rejected() {
        let error = errors("PATCH", JOB, &json!({"configuration": {"copies": "2"}}));
        assert!(
            error.contains("body.configuration.copies: the string \"2\" where integer is expected"),
            "{error}"
        );
        let error = errors("PATCH", TASK, &json!({"status": {"state": null}}));
        assert!(
            error.contains("body.status.state: null where string"),
            "{error}"
        );
        let error = errors("PATCH", JOB, &json!({"configuration": {"copies": 1.5}}));
        assert!(error.contains("where integer is expected"), "{error}");
    }

    #[test]
    fn a_missing_required_parameter_is_rejected() {
        let error = errors(
            "POST",
            &format!("{JOB}/redirect"),
            &json!({"configuration": {"copies": 1}}),
        );
        assert!(
            error.contains("body: the required property \"destinationPrinterId\" is missing"),
            "{error}"
        );
        let error = errors("POST", &format!("{JOB}/redirect"), &Value::Null);
        assert!(error.contains("a request body is required"), "{error}");
    }

    #[test]
    fn a_bad_date_time_an_undeclared_query_option_and_an_unknown_operation_are_rejected() {
        let error = errors(
            "PATCH",
            "https://graph.microsoft.com/v1.0/subscriptions/s1",
            &json!({"expirationDateTime": "tomorrow"}),
        );
        assert!(
            error.contains("\"tomorrow\" is not a valid date-time"),
            "{error}"
        );
        let error = errors("GET", &format!("{JOB}?$expand=owner&$top=1"), &Value::Null);
        assert!(
            error.contains("query $expand: \"owner\" is not a member")
                && error.contains("query option $top is not declared"),
            "{error}"
        );
        let error = errors("PUT", JOB, &json!({}));
        assert!(error.contains("has no PUT operation"), "{error}");
        let error = errors(
            "GET",
            "https://graph.microsoft.com/v1.0/print/shares",
            &Value::Null,
        );
        assert!(
            error.contains("no path of the description matches"),
            "{error}"
        );
        let error = errors("POST", &format!("{JOB}/cancel"), &json!({"reason": "x"}));
        assert!(error.contains("takes no request body"), "{error}");
    }

    #[test]
    fn the_report_lists_each_invalid_request_and_counts_the_valid_ones() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let lines = [
            json!({"method": "PATCH", "url": JOB, "body": {"configuration": {"copies": 2}}}),
            json!({"method": "PATCH", "url": TASK, "body": {"status": {"state": "done"}}}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&log, text).unwrap();
        let report = GraphSchema::load().check_log(&log);
        assert!(!report.all_valid());
        assert_eq!(
            report.to_string(),
            format!(
                "INVALID PATCH {TASK}: body.status.state: \"done\" is not a member of the enumeration \
                 (printTaskProcessingState) [pending, processing, completed, aborted, unknownFutureValue]\n\
                 1 of 2 recorded Graph requests valid against Microsoft's schema"
            )
        );
    }

    #[test]
    fn every_member_of_microsofts_print_enumerations_is_a_named_variant_of_ours() {
        use pullprintd::graph::*;
        let schema = GraphSchema::load();
        let members = |name: &str| -> Vec<String> {
            let path = format!("/components/schemas/microsoft.graph.{name}/enum");
            let list = schema.doc.pointer(&path);
            let list = list.unwrap_or_else(|| panic!("the description has no enumeration {name}"));
            list.as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_str().unwrap().to_owned())
                .collect()
        };
        macro_rules! known {
            ($($name:literal => $rust:ident),+ $(,)?) => {$(
                for member in members($name) {
                    let parsed = $rust::from(member.as_str());
                    assert!(
                        !matches!(parsed, $rust::Other(_)) && parsed.as_str() == member,
                        "{}: Microsoft's member {member:?} is not a named variant",
                        stringify!($rust)
                    );
                }
            )+};
        }
        known! {
            "printColorMode" => PrintColorMode,
            "printDuplexMode" => PrintDuplexMode,
            "printerFeedOrientation" => PrinterFeedOrientation,
            "printOrientation" => PrintOrientation,
            "printQuality" => PrintQuality,
            "printScaling" => PrintScaling,
            "printMultipageLayout" => PrintMultipageLayout,
            "printFinishing" => PrintFinishing,
            "printJobProcessingState" => PrintJobProcessingState,
            "printJobStateDetail" => PrintJobStateDetail,
            "printTaskProcessingState" => PrintTaskProcessingState,
            "printEvent" => PrintEvent,
            "printerProcessingState" => PrinterProcessingState,
        }
    }

    #[test]
    fn every_schema_keyword_of_the_description_is_understood() {
        // The validator panics on a keyword it does not know, but only when a value reaches it: walk
        // every schema of the description so a new rule cannot hide in a branch the tests never take.
        fn walk(schema: &Value, at: &str) {
            let keywords = schema
                .as_object()
                .unwrap_or_else(|| panic!("{at}: {schema}"));
            for (keyword, rule) in keywords {
                let at = format!("{at}/{keyword}");
                match keyword.as_str() {
                    "properties" => {
                        for (name, s) in rule.as_object().unwrap() {
                            walk(s, &format!("{at}/{name}"));
                        }
                    }
                    "allOf" | "anyOf" | "oneOf" => {
                        for (i, s) in rule.as_array().unwrap().iter().enumerate() {
                            walk(s, &format!("{at}/{i}"));
                        }
                    }
                    "items" | "not" => walk(rule, &at),
                    "additionalProperties" if rule.is_object() => walk(rule, &at),
                    k => assert!(
                        KEYWORDS.contains(&k) || ANNOTATIONS.contains(&k),
                        "{at}: unknown keyword"
                    ),
                }
            }
        }
        let schema = GraphSchema::load();
        let schemas = schema.doc["components"]["schemas"].as_object().unwrap();
        assert!(schemas.len() > 20);
        for (name, s) in schemas {
            walk(s, name);
        }
        for (path, item) in schema.doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let body = &operation["requestBody"]["content"]["application/json"]["schema"];
                if body.is_object() {
                    walk(body, &format!("{path} {method}"));
                }
                for parameter in operation["parameters"].as_array().into_iter().flatten() {
                    walk(&parameter["schema"], &format!("{path} {method}"));
                }
            }
        }
    }
}
