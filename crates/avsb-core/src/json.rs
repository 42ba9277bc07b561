//! JSON text in and out, as Proctor's Jackson mapper reads and writes it: comments allowed on
//! the way in, doubles in plain notation on the way out. A leaf: every reader and writer of the
//! engine uses it, and it uses nothing of theirs.

use std::borrow::Cow;

use serde_json::Value as Json;

/// Parses JSON the way Proctor's lenient mapper does: `//` and `/* */` comments allowed.
pub fn parse_lenient_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let stripped = strip_comments(text);
    serde_json::from_str(&stripped).map_err(|e| format!("not valid JSON: {e}"))
}

/// Replaces comments by spaces (keeping line and column numbers of everything else).
pub(crate) fn strip_comments(text: &str) -> Cow<'_, str> {
    if !text.contains("//") && !text.contains("/*") {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    // Jackson's ALLOW_COMMENTS takes C-style comments only, not `#`.
    let mut reader = json_comments::StripComments::with_settings(json_comments::CommentSettings::c_style(), text.as_bytes());
    if std::io::Read::read_to_string(&mut reader, &mut out).is_err() {
        return Cow::Borrowed(text);
    }
    Cow::Owned(out)
}

/// Serializes into a byte buffer; writing to a `Vec` cannot fail, and the types written here
/// (strings, numbers, JSON values) always serialize.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    if serde_json::to_writer(&mut *out, value).is_err() {
        out.extend_from_slice(b"null");
    }
}

/// Proctor's `PlainNumericSerializer`: `DecimalFormat("0.0")` with at most 10 fraction digits.
pub fn plain_double(d: f64) -> Json {
    if !d.is_finite() {
        return Json::String(crate::java::double_to_string(d));
    }
    let rounded = format!("{d:.10}");
    let trimmed = rounded.trim_end_matches('0');
    let text = if trimmed.ends_with('.') { format!("{trimmed}0") } else { trimmed.to_string() };
    serde_json::from_str(&text).unwrap_or(Json::Null)
}

/// The kind of a JSON value with its article, for messages ("an array", "a number").
pub fn kind(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_doubles_like_proctor() {
        assert_eq!(plain_double(1.0).to_string(), "1.0");
        assert_eq!(plain_double(0.5).to_string(), "0.5");
        assert_eq!(plain_double(1.0 / 3.0).to_string(), "0.3333333333");
        assert_eq!(plain_double(1e-12).to_string(), "0.0");
        assert_eq!(plain_double(-0.0).to_string(), "-0.0");
    }

    #[test]
    fn comments_are_blanked_in_place() {
        let text = "{\"a\": 1, // one\n \"b\": /* two */ 2}";
        let value: Json = parse_lenient_json(text).unwrap();
        assert_eq!(value, serde_json::json!({"a": 1, "b": 2}));
        assert_eq!(strip_comments(text).len(), text.len());
    }
}
