//! The OData conventions the print list operations share: Graph's time format, refused query
//! options, `$filter=… eq '…'`, `$expand` and `@odata.nextLink` paging.

use super::*;

/// Formats a time as Graph does (RFC 3339, UTC).
pub(crate) fn graph_time(t: OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap_or_default()
}

/// The unsupported-query-option rule shared by the print list operations.
pub(crate) fn refuse_query_options(
    query: &[(String, String)],
    unsupported: &[&str],
) -> Result<(), GraphError> {
    for (key, _) in query {
        if unsupported.iter().any(|u| u.eq_ignore_ascii_case(key)) {
            return Err(GraphError::invalid_request(format!(
                "The query option '{key}' is not supported by this operation (unsupported: {}).",
                unsupported.join(" ")
            )));
        }
    }
    Ok(())
}

/// Parses `{property} eq 'value'` ('' escapes a quote) for the one property the caller supports.
pub(crate) fn parse_eq_filter(filter: &str, property: &str) -> Option<String> {
    let rest = filter.trim();
    let head = rest.get(..property.len())?;
    if !head.eq_ignore_ascii_case(property) {
        return None;
    }
    let rest = rest[property.len()..].trim_start();
    let rest = rest
        .strip_prefix("eq ")
        .or_else(|| rest.strip_prefix("EQ "))?
        .trim();
    let inner = rest.strip_prefix('\'')?.strip_suffix('\'')?;
    Some(inner.replace("''", "'"))
}

/// `$expand` options of a job request.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Expand {
    pub tasks: bool,
    pub documents: bool,
}

/// The next page's URL: the request's own URL with `$skiptoken` set to the last item's position.
pub(super) fn next_link(self_link: &str, last: u64) -> String {
    let Ok(mut url) = url::Url::parse(self_link) else {
        return self_link.to_owned();
    };
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "$skiptoken")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut pairs = url.query_pairs_mut();
        pairs.clear();
        for (k, v) in kept {
            pairs.append_pair(&k, &v);
        }
        pairs.append_pair("$skiptoken", &last.to_string());
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_eq_filter_is_parsed_with_escaped_quotes() {
        assert_eq!(
            parse_eq_filter("employeeId eq 'O''Neil'", "employeeId").as_deref(),
            Some("O'Neil")
        );
        assert_eq!(
            parse_eq_filter(
                "createdBy/userPrincipalName eq 'a@b.c'",
                "createdBy/userPrincipalName"
            )
            .as_deref(),
            Some("a@b.c")
        );
        assert_eq!(parse_eq_filter("displayName eq 'x'", "employeeId"), None);
    }

    #[test]
    fn a_next_link_keeps_the_query_and_sets_the_skiptoken() {
        let link = next_link("http://h/v1.0/x?$filter=a+eq+%27b%27&$skiptoken=3", 9);
        assert!(
            link.contains("skiptoken=9")
                && link.contains("filter")
                && !link.contains("skiptoken=3"),
            "{link}"
        );
    }
}
