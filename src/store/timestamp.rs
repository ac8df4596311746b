//! Timestamps as stored: RFC 3339 in UTC with a fixed width, so that text order is time order and
//! `WHERE at < $1` compares correctly on any SQL database.

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

use super::StoreError;

/// `t` as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`, converted to UTC.
pub(crate) fn encode(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.nanosecond()
    )
}

/// Reads a stored timestamp; `column` names it in the error.
pub(crate) fn decode(column: &str, text: &str) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|err| StoreError::Corrupt {
        what: format!("{column} = {text:?} ({err})"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn a_timestamp_survives_the_round_trip_to_text() {
        let t = datetime!(2026-03-01 08:15:30.123456789 +02:00);
        let text = encode(t);
        assert_eq!(text, "2026-03-01T06:15:30.123456789Z");
        assert_eq!(decode("at", &text).expect("own format parses"), t);
    }

    #[test]
    fn text_order_is_time_order_across_whole_seconds() {
        let earlier = encode(datetime!(2026-03-01 08:15:30.9 UTC));
        let later = encode(datetime!(2026-03-01 08:15:31 UTC));
        assert!(earlier < later, "{earlier} < {later}");
    }

    #[test]
    fn a_malformed_timestamp_is_reported_with_its_column() {
        let err = decode("held_jobs.submitted_at", "yesterday").expect_err("not RFC 3339");
        assert!(err.to_string().contains("held_jobs.submitted_at"), "{err}");
    }
}
