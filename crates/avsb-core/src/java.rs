//! Java's number parsing and printing, as Pipet's converters and the EL engine use them.
//!
//! Context values arrive as text and are converted with `Long.valueOf`, `Double.valueOf` and
//! friends (docs/proctor.md §6.6); EL coerces strings to numbers the same way (§3.4). The
//! accepted syntax differs from Rust's (`Double.valueOf` trims control characters and takes a
//! `d`/`f` suffix; Rust takes `inf`), so it is spelled out here once.

/// Java's `NumberFormatException`: the text is not a number of the requested type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("NumberFormatException")]
pub struct NumberFormatError;

/// `String.trim()`: removes the characters up to U+0020 (spaces and control characters) from
/// both ends.
pub fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= '\u{20}')
}

/// `Character.isWhitespace`: Unicode space separators other than the no-break spaces, and the
/// controls tab, line feed, vertical tab, form feed, carriage return and U+001C to U+001F.
pub fn is_whitespace(c: char) -> bool {
    match c {
        '\u{9}'..='\u{d}' | '\u{1c}'..='\u{1f}' => true,
        '\u{a0}' | '\u{2007}' | '\u{202f}' => false,
        other => other.is_whitespace() && !matches!(other, '\u{85}'),
    }
}

/// `StringUtils.isBlank`: empty or only [`is_whitespace`] characters.
pub fn is_blank(s: &str) -> bool {
    s.chars().all(is_whitespace)
}

/// `Long.valueOf(s)`: an optional sign and decimal ASCII digits, no white space.
pub fn parse_long(s: &str) -> Result<i64, NumberFormatError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(NumberFormatError);
    }
    // Rust accepts the same grammar (sign, then digits) and checks the range.
    s.parse::<i64>().map_err(|_| NumberFormatError)
}

/// `Integer.valueOf(s)`.
pub fn parse_int(s: &str) -> Result<i32, NumberFormatError> {
    i32::try_from(parse_long(s)?).map_err(|_| NumberFormatError)
}

/// `Short.valueOf(s)`.
pub fn parse_short(s: &str) -> Result<i16, NumberFormatError> {
    i16::try_from(parse_long(s)?).map_err(|_| NumberFormatError)
}

/// `Byte.valueOf(s)`.
pub fn parse_byte(s: &str) -> Result<i8, NumberFormatError> {
    i8::try_from(parse_long(s)?).map_err(|_| NumberFormatError)
}

/// The decimal floating-point grammar of `Double.valueOf`, normalised for Rust's parser.
///
/// Java trims every character `<= ' '` at both ends, then takes an optional sign and either
/// `NaN`, `Infinity`, or digits with an optional `.`, an optional exponent and an optional
/// `f`/`F`/`d`/`D` suffix. Hexadecimal floating-point literals (`0x1p3`) are not accepted.
fn normalise_java_float(s: &str) -> Result<String, NumberFormatError> {
    let t = s.trim_matches(|c: char| c <= ' ');
    let (sign, body) = match t.as_bytes().first() {
        Some(b'+') => ("", &t[1..]),
        Some(b'-') => ("-", &t[1..]),
        _ => ("", t),
    };
    if body == "NaN" {
        return Ok("NaN".to_string());
    }
    if body == "Infinity" {
        return Ok(format!("{sign}inf"));
    }
    let body = body.strip_suffix(['f', 'F', 'd', 'D']).unwrap_or(body);
    let bytes = body.as_bytes();
    let mut i = 0;
    let int_start = i;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < bytes.len() && bytes[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - frac_start;
    }
    if int_digits + frac_digits == 0 {
        return Err(NumberFormatError);
    }
    if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
        i += 1;
        if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
            i += 1;
        }
        let exp_start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        if i == exp_start {
            return Err(NumberFormatError);
        }
    }
    if i != bytes.len() {
        return Err(NumberFormatError);
    }
    Ok(format!("{sign}{body}"))
}

/// `Double.valueOf(s)`, correctly rounded.
pub fn parse_double(s: &str) -> Result<f64, NumberFormatError> {
    normalise_java_float(s)?.parse::<f64>().map_err(|_| NumberFormatError)
}

/// `Float.valueOf(s)`, correctly rounded.
pub fn parse_float(s: &str) -> Result<f32, NumberFormatError> {
    normalise_java_float(s)?.parse::<f32>().map_err(|_| NumberFormatError)
}

/// Java's `Boolean.valueOf(s)`: `true` ignoring case, anything else false.
pub fn parse_boolean(s: &str) -> bool {
    s.eq_ignore_ascii_case("true")
}

/// `Double.toString(d)`: plain notation for 10^-3 <= |d| < 10^7, else `d.dddE±n`;
/// always at least one digit after the point. Digits are the shortest that round-trip.
pub fn double_to_string(d: f64) -> String {
    java_float_text(d, &format!("{d:e}"))
}

/// `Float.toString(f)`, with the shortest digits that round-trip as a float.
pub fn float_to_string(f: f32) -> String {
    java_float_text(f64::from(f), &format!("{f:e}"))
}

fn java_float_text(value: f64, scientific: &str) -> String {
    if value.is_nan() {
        return "NaN".to_string();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    if value == 0.0 {
        return if value.is_sign_negative() { "-0.0" } else { "0.0" }.to_string();
    }
    // `scientific` is Rust's shortest form: "-1.2345e-5" or "3e0".
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let abs = value.abs();
    if (1e-3..1e7).contains(&abs) {
        let point = exponent + 1; // digits before the decimal point
        if point <= 0 {
            let zeros = "0".repeat((-point) as usize);
            format!("{sign}0.{zeros}{digits}")
        } else {
            let point = point as usize;
            if digits.len() <= point {
                let zeros = "0".repeat(point - digits.len());
                format!("{sign}{digits}{zeros}.0")
            } else {
                format!("{sign}{}.{}", &digits[..point], &digits[point..])
            }
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        format!("{sign}{first}.{rest}E{exponent}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_grammar_matches_java() {
        assert_eq!(parse_long("42"), Ok(42));
        assert_eq!(parse_long("+7"), Ok(7));
        assert_eq!(parse_long("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_long("9223372036854775808").is_err());
        for bad in ["", "+", "-", " 1", "1 ", "1.0", "0x10", "1e3"] {
            assert!(parse_long(bad).is_err(), "{bad:?}");
        }
        assert!(parse_byte("128").is_err());
        assert_eq!(parse_short("-32768"), Ok(-32768));
        assert!(parse_int("2147483648").is_err());
    }

    #[test]
    fn double_grammar_matches_java() {
        assert_eq!(parse_double(" 1.5d\n"), Ok(1.5));
        assert_eq!(parse_double("-.5e1"), Ok(-5.0));
        assert_eq!(parse_double("3."), Ok(3.0));
        assert_eq!(parse_double("1e+2F"), Ok(100.0));
        assert_eq!(parse_double("-Infinity"), Ok(f64::NEG_INFINITY));
        assert!(parse_double("NaN").is_ok_and(f64::is_nan));
        for bad in ["", ".", "e5", "1e", "inf", "infinity", "nan", "1.5dd", "1,5", "0x1p3"] {
            assert!(parse_double(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_float("0.1"), Ok(0.1f32));
    }

    #[test]
    fn double_to_string_matches_java() {
        let cases = [
            (1.0, "1.0"),
            (0.5, "0.5"),
            (100.0, "100.0"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1e7, "1.0E7"),
            (9999999.0, "9999999.0"),
            (123456789.0, "1.23456789E8"),
            (-2.5e-10, "-2.5E-10"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0.0"),
        ];
        for (value, text) in cases {
            assert_eq!(double_to_string(value), text, "{value}");
        }
        assert_eq!(float_to_string(0.1), "0.1");
        assert_eq!(double_to_string(f64::from(0.1f32)), "0.10000000149011612");
    }
}
