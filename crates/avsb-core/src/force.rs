//! Force groups (docs/proctor.md §5): a privileged override of assignments, written as
//! `buttoncolortst2,abc-1,abc1;doubleValue:0.2,default_to_fallback`.

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::payload::{read_payload_value, Payload};

/// What happens to tests the string does not force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefaultMode {
    /// Normal assignment.
    #[default]
    Initial,
    /// `default_to_fallback`: no bucket.
    Fallback,
    /// `default_to_min_live`: the smallest bucket value with a non-zero range in the matched allocation.
    MinLive,
}

/// Parsed force groups.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ForceGroups {
    /// Test name to forced bucket value; later tokens override earlier ones.
    pub groups: IndexMap<String, i32>,
    /// Forced payloads, applied only when the bucket's payload has the same type.
    pub payloads: IndexMap<String, Payload>,
    /// The default mode.
    pub default_mode: DefaultMode,
}

impl ForceGroups {
    /// Parses the full format (docs/proctor.md §5.1): `<test><value>` tokens, optional
    /// `;<payloadType>:<json>` payloads, and the `default_to_fallback` / `default_to_min_live`
    /// options. Tokens that do not parse are skipped.
    pub fn parse(text: &str) -> ForceGroups {
        let mut out = ForceGroups::default();
        let bytes = text.as_bytes();
        let mut pos = 0;
        while pos < bytes.len() {
            let (token_end, token) = parse_token(text, pos);
            match token {
                Some(Token::Group { test, value, payload }) => {
                    // A later duplicate overrides both the bucket and the payload.
                    out.payloads.shift_remove(test);
                    out.groups.shift_remove(test);
                    out.groups.insert(test.to_string(), value);
                    if let Some(payload) = payload {
                        out.payloads.insert(test.to_string(), payload);
                    }
                }
                Some(Token::Option(mode)) => out.default_mode = mode,
                None => {}
            }
            pos = token_end + 1;
        }
        out
    }

    /// Parses as Pipet does (docs/proctor.md §5.4): only the test-to-bucket map is kept.
    pub fn parse_pipet(text: &str) -> ForceGroups {
        ForceGroups { groups: ForceGroups::parse(text).groups, ..ForceGroups::default() }
    }

    /// Whether nothing is forced and the default mode is normal.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty() && self.default_mode == DefaultMode::Initial
    }

    /// The canonical string (options first, as Proctor writes it).
    pub fn to_canonical_string(&self) -> String {
        let mut tokens = Vec::new();
        match self.default_mode {
            DefaultMode::Initial => {}
            DefaultMode::Fallback => tokens.push("default_to_fallback".to_string()),
            DefaultMode::MinLive => tokens.push("default_to_min_live".to_string()),
        }
        for (test, value) in &self.groups {
            match self.payloads.get(test) {
                Some(p) => tokens.push(format!("{test}{value};{}:{}", p.type_name(), p.value_json())),
                None => tokens.push(format!("{test}{value}")),
            }
        }
        tokens.join(",")
    }
}

enum Token<'a> {
    Group { test: &'a str, value: i32, payload: Option<Payload> },
    Option(DefaultMode),
}

/// Parses one token starting at `start`; returns the index of the `,` that ends it (or the
/// text's length) and the token if it is well formed.
fn parse_token(text: &str, start: usize) -> (usize, Option<Token<'_>>) {
    let rest = &text[start..];
    let head_len = rest.find([',', ';']).unwrap_or(rest.len());
    let head = rest[..head_len].trim();
    let next_comma = |from: usize| text[from..].find(',').map_or(text.len(), |i| from + i);
    if rest[head_len..].starts_with(';') {
        // A payload: `;type:<json value>`, and the token must end right after the value.
        let payload_start = start + head_len + 1;
        let (end, payload) = parse_payload(text, payload_start);
        let Some(end) = end else { return (next_comma(payload_start), None) };
        let token = group(head).map(|(test, value)| Token::Group { test, value, payload });
        return (end, token);
    }
    let end = start + head_len;
    if let Some((test, value)) = group(head) {
        return (end, Some(Token::Group { test, value, payload: None }));
    }
    let option = match head {
        "default_to_fallback" => Some(Token::Option(DefaultMode::Fallback)),
        "default_to_min_live" => Some(Token::Option(DefaultMode::MinLive)),
        _ => None,
    };
    (end, option)
}

/// `<test><value>` where the value is the maximal run of trailing ASCII digits, optionally
/// preceded by `-`, and the name is non-empty word characters (`\w+-?\d+`).
fn group(token: &str) -> Option<(&str, i32)> {
    let digits_start = token.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits_start == token.len() {
        return None;
    }
    let value_start = if token[..digits_start].ends_with('-') { digits_start - 1 } else { digits_start };
    let name = &token[..value_start];
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return None;
    }
    let value = crate::java::parse_int(&token[value_start..]).ok()?;
    Some((name, value))
}

/// Parses `type:<json>` at `start`; returns the index of the terminating `,` (or the end) when
/// the value is followed by nothing else, and the payload when its type and value are valid.
fn parse_payload(text: &str, start: usize) -> (Option<usize>, Option<Payload>) {
    let rest = &text[start..];
    let Some(colon) = rest.find(':') else { return (None, None) };
    let type_name = rest[..colon].trim();
    if type_name.is_empty() || !type_name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        return (None, None);
    }
    let value_start = start + colon + 1;
    let mut stream = serde_json::Deserializer::from_str(&text[value_start..]).into_iter::<Json>();
    let Some(Ok(value)) = stream.next() else { return (None, None) };
    let value_end = value_start + stream.byte_offset();
    let after = text[value_end..].trim_start();
    if !(after.is_empty() || after.starts_with(',')) {
        return (None, None);
    }
    let end = value_end + (text[value_end..].len() - after.len());
    // `json` payloads cannot be forced; values must be numbers, strings, arrays or maps.
    let valid_kind = matches!(value, Json::Number(_) | Json::String(_) | Json::Array(_) | Json::Object(_));
    let payload = if type_name == "json" || !valid_kind {
        None
    } else {
        read_payload_value(type_name, &value).ok()
    };
    (Some(end), payload)
}

/// The payload a forced bucket carries: the forced one when it has the bucket's payload type
/// (for maps: the same keys, each value convertible to the original value's kind), else the
/// bucket's own.
pub fn forced_payload(original: Option<&Payload>, forced: Option<&Payload>) -> Option<Payload> {
    let (Some(original), Some(forced)) = (original, forced) else { return None };
    match (original, forced) {
        (Payload::Map(orig), Payload::Map(new)) => {
            if orig.len() != new.len() {
                return None;
            }
            let mut out = IndexMap::with_capacity(orig.len());
            for (key, orig_value) in orig {
                out.insert(key.clone(), convert_like(orig_value, new.get(key)?)?);
            }
            Some(Payload::Map(out))
        }
        _ if original.type_name() == forced.type_name() => Some(forced.clone()),
        _ => None,
    }
}

/// Converts a forced map value to the kind of the original value (numbers may come as text).
fn convert_like(original: &Json, forced: &Json) -> Option<Json> {
    match (original, forced) {
        (Json::Number(_), Json::Number(_)) | (Json::String(_), Json::String(_)) | (Json::Bool(_), Json::Bool(_)) => {
            Some(forced.clone())
        }
        (Json::Number(n), Json::String(s)) => {
            if n.is_f64() {
                crate::java::parse_double(s).ok().and_then(serde_json::Number::from_f64).map(Json::Number)
            } else {
                crate::java::parse_long(s).ok().map(Json::from)
            }
        }
        (Json::Array(orig), Json::Array(new)) => {
            let template = orig.first();
            new.iter()
                .map(|item| match template {
                    Some(t) => convert_like(t, item),
                    None => Some(item.clone()),
                })
                .collect::<Option<Vec<_>>>()
                .map(Json::Array)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups(text: &str) -> Vec<(String, i32)> {
        ForceGroups::parse(text).groups.into_iter().collect()
    }

    #[test]
    fn parses_groups_and_options() {
        assert_eq!(groups("buttoncolortst2"), [("buttoncolortst".to_string(), 2)]);
        assert_eq!(groups("abc-1, foo21 ,,"), [("abc".to_string(), -1), ("foo".to_string(), 21)]);
        assert_eq!(groups("abc1,abc2"), [("abc".to_string(), 2)]);
        assert_eq!(groups("1,-1,abc,a-b1,ab c1,x99999999999"), []);
        assert_eq!(ForceGroups::parse("t1,default_to_fallback").default_mode, DefaultMode::Fallback);
        assert_eq!(ForceGroups::parse("default_to_min_live").default_mode, DefaultMode::MinLive);
        assert_eq!(ForceGroups::parse("default_to_other").default_mode, DefaultMode::Initial);
    }

    #[test]
    fn parses_payloads_with_commas_inside() {
        let f = ForceGroups::parse(r#"abc1;stringValue:"a,b",d2;longArray:[2,4,6],m3;map:{"key":"1.0"},e1;doubleValue:0.2"#);
        assert_eq!(f.groups.len(), 4);
        assert_eq!(f.payloads["abc"], Payload::StringValue("a,b".into()));
        assert_eq!(f.payloads["d"], Payload::LongArray(vec![Some(2), Some(4), Some(6)]));
        assert_eq!(f.payloads["e"], Payload::DoubleValue(0.2));
        assert!(matches!(f.payloads["m"], Payload::Map(_)));
        // json payloads cannot be forced, but the bucket still is.
        let f = ForceGroups::parse(r#"j1;json:{"a":1}"#);
        assert_eq!(f.groups["j"], 1);
        assert!(f.payloads.is_empty());
        // A token with trailing garbage after its payload is skipped.
        assert!(ForceGroups::parse(r#"abc1;longValue:5x,d2"#).groups.keys().eq(["d"]));
        assert!(ForceGroups::parse_pipet(r#"abc1;longValue:5,default_to_fallback"#).payloads.is_empty());
    }

    #[test]
    fn forced_payloads_need_the_same_type() {
        let orig = Payload::StringValue("x".into());
        assert_eq!(forced_payload(Some(&orig), Some(&Payload::StringValue("y".into()))), Some(Payload::StringValue("y".into())));
        assert_eq!(forced_payload(Some(&orig), Some(&Payload::LongValue(1))), None);
        let map = |j: Json| match read_payload_value("map", &j) { Ok(p) => p, Err(e) => panic!("{e}") };
        let orig = map(serde_json::json!({"key": 1.5, "s": "a"}));
        let forced = forced_payload(Some(&orig), Some(&map(serde_json::json!({"key": "2.5", "s": "b"}))));
        assert_eq!(forced, Some(map(serde_json::json!({"key": 2.5, "s": "b"}))));
        assert_eq!(forced_payload(Some(&orig), Some(&map(serde_json::json!({"key": "x", "s": "b"})))), None);
        assert_eq!(forced_payload(Some(&orig), Some(&map(serde_json::json!({"other": 1, "s": "b"})))), None);
    }

    #[test]
    fn canonical_string_round_trips() {
        let f = ForceGroups::parse(r#"a1,b-2;stringValue:"x",default_to_min_live"#);
        assert_eq!(f.to_canonical_string(), r#"default_to_min_live,a1,b-2;stringValue:"x""#);
        assert_eq!(ForceGroups::parse(&f.to_canonical_string()), f);
    }
}
