//! Proctor's `updatedDate`: the audit time in zone US/Central (docs/proctor.md §1.3).

use chrono::TimeZone;

/// `SimpleDateFormat("yyyy-MM-dd'T'HH:mmZ")` in `US/Central`; `""` when `updated_millis <= 0`.
pub fn format_updated_date(updated_millis: i64) -> String {
    if updated_millis <= 0 {
        return String::new();
    }
    match chrono_tz::US::Central.timestamp_millis_opt(updated_millis) {
        chrono::LocalResult::Single(t) => t.format("%Y-%m-%dT%H:%M%z").to_string(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_proctors_pinned_values() {
        assert_eq!(format_updated_date(1_454_432_430_000), "2016-02-02T11:00-0600");
        assert_eq!(format_updated_date(1), "1969-12-31T18:00-0600");
        assert_eq!(format_updated_date(0), "");
        assert_eq!(format_updated_date(-5), "");
        // Daylight saving time: July is CDT.
        assert_eq!(format_updated_date(1_720_000_000_000), "2024-07-03T04:46-0500");
    }
}
