//! How the console writes numbers, times and URLs.

use chrono::{DateTime, Utc};

/// A text as one URL path segment or query value.
pub fn url_component(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// A share as a percentage with at most one decimal (`10%`, `33.3%`, `0.1%`); shares that
/// round to 0 but are not 0 say `<0.1%`.
pub fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p > 0.0 && p < 0.05 {
        return "<0.1%".into();
    }
    let rounded = (p * 10.0).round() / 10.0;
    if (rounded - rounded.round()).abs() < 1e-9 {
        format!("{}%", rounded.round() as i64)
    } else {
        format!("{rounded:.1}%")
    }
}

/// A range length as the number an editor shows (percent, up to 4 decimals, no trailing zeros).
pub fn percent_number(length: f64) -> String {
    let p = (length * 100.0 * 10_000.0).round() / 10_000.0;
    let text = format!("{p:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text.is_empty() { "0".into() } else { text.to_string() }
}

/// How long ago, short (`just now`, `5 min`, `2 h`, `3 d`, or the date after a month).
pub fn ago(millis: i64, now: i64) -> String {
    let seconds = (now - millis).max(0) / 1000;
    match seconds {
        0..=59 => "just now".into(),
        60..=3599 => format!("{} min ago", seconds / 60),
        3600..=86_399 => format!("{} h ago", seconds / 3600),
        86_400..=2_591_999 => format!("{} d ago", seconds / 86_400),
        _ => date(millis),
    }
}

/// A date and time in UTC (`2026-12-06 07:40 UTC`).
pub fn date(millis: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(millis).map_or_else(|| "-".into(), |d| d.format("%Y-%m-%d %H:%M UTC").to_string())
}

/// A count with thousands separators (`1,000`).
pub fn count(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times_read_well() {
        assert_eq!(percent(0.1), "10%");
        assert_eq!(percent(1.0 / 3.0), "33.3%");
        assert_eq!(percent(0.0001), "<0.1%");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent_number(0.333333), "33.3333");
        assert_eq!(percent_number(0.5), "50");
        assert_eq!(ago(0, 90_000), "1 min ago");
        assert_eq!(ago(0, 7_200_000), "2 h ago");
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(url_component("a b/c"), "a+b%2Fc");
    }
}
