//! Timestamps on the wire: the store keeps Unix milliseconds; the API speaks ISO 8601 (UTC out,
//! any offset in), as Letta's API does.

use crate::error::ApiError;
use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

/// `2026-11-27T10:00:00.123Z`; `None` for a value outside chrono's range (never stored).
pub fn iso(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// Parses RFC 3339 (`2025-01-29T15:01:19-08:00`), a date-time without offset (taken as UTC) or
/// a bare date (midnight UTC) into Unix milliseconds.
pub fn parse_iso_ms(text: &str) -> Option<i64> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    // A `+` in an unencoded query string arrives as a space.
    if let Ok(t) = DateTime::parse_from_rfc3339(&text.replacen(' ', "+", 1)) {
        return Some(t.timestamp_millis());
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, format) {
            return Some(t.and_utc().timestamp_millis());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

/// A date query parameter, or a 422 that names it and shows the expected form.
pub fn query_date(name: &str, raw: Option<&str>) -> Result<Option<i64>, ApiError> {
    raw.map(|text| {
        parse_iso_ms(text).ok_or_else(|| {
            ApiError::Unprocessable(format!(
                "{name}: {text:?} is not an ISO 8601 date or date-time (e.g. 2025-01-29T15:01:19-08:00)"
            ))
        })
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_accepts_offsets_and_dates() {
        let ms = 1_738_191_679_000;
        assert_eq!(iso(ms).as_deref(), Some("2025-01-29T23:01:19.000Z"));
        assert_eq!(parse_iso_ms("2025-01-29T15:01:19-08:00"), Some(ms));
        assert_eq!(parse_iso_ms("2025-01-29T23:01:19Z"), Some(ms));
        assert_eq!(parse_iso_ms("2025-01-29T23:01:19"), Some(ms));
        assert_eq!(parse_iso_ms("2025-01-29T23:01:19 00:00"), Some(ms));
        assert_eq!(parse_iso_ms("2025-01-29"), Some(1_738_108_800_000));
        assert_eq!(parse_iso_ms("yesterday"), None);
    }
}
