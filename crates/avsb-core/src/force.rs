//! Force groups (docs/proctor.md §5): a privileged override of assignments, written as
//! `buttoncolortst2,abc-1,abc1;doubleValue:0.2,default_to_fallback`.

use std::sync::LazyLock;

use indexmap::IndexMap;
use regex::Regex;
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
    /// Parses the full format (docs/proctor.md §5.1) as Proctor's `ForceGroupsOptionsStrings`
    /// does: tokens are found anywhere in the text by one pattern and count only when a `,` or
    /// the end follows them; `<test><value>` groups with optional `;<payloadType>:<value>`
    /// payloads, and the `default_to_fallback` / `default_to_min_live` options. Anything else is
    /// skipped.
    pub fn parse(text: &str) -> ForceGroups {
        let mut out = ForceGroups::default();
        let Some(pattern) = TOKEN.as_ref() else { return out };
        for found in pattern.find_iter(text) {
            let after = &text[found.end()..];
            if !(after.is_empty() || after.starts_with(',')) {
                continue;
            }
            let (head, payload_text) = match found.as_str().split_once(';') {
                Some((head, payload)) => (head, Some(payload)),
                None => (found.as_str(), None),
            };
            let head = crate::java::trim(head);
            match head {
                "" => continue,
                "default_to_fallback" => out.default_mode = DefaultMode::Fallback,
                "default_to_min_live" => out.default_mode = DefaultMode::MinLive,
                _ => {}
            }
            let Some((test, value)) = group(head) else { continue };
            // A later group of the same test replaces its bucket; a payload it forced earlier
            // stays unless this token forces another (Proctor's ForceGroupsOptions.Builder).
            out.groups.shift_remove(test);
            out.groups.insert(test.to_string(), value);
            if let Some(payload) = payload_text.and_then(parse_payload) {
                out.payloads.insert(test.to_string(), payload);
            }
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
            // The value is the token's trailing digits, so after a name that ends in a digit a 0
            // is written `-0` (which reads back as 0), or `x1` forced to 0 would read as `x` 10.
            let value = if *value == 0 && test.ends_with(|c: char| c.is_ascii_digit()) { "-0".to_string() } else { value.to_string() };
            match self.payloads.get(test) {
                Some(p) => tokens.push(format!("{test}{value};{}:{}", p.type_name(), token_json(&p.value_json()))),
                None => tokens.push(format!("{test}{value}")),
            }
        }
        tokens.join(",")
    }
}

/// A payload's value as the token pattern reads it back: JSON whose numbers have no exponent
/// (the pattern's numbers are `-?[0-9]+\.?[0-9]*`), so that a forced `2.5E29` survives the
/// canonical string (found by fuzzing, `fuzz/corpus/force/`).
fn token_json(value: &Json) -> String {
    match value {
        Json::Number(n) => match n.as_f64().filter(|_| n.is_f64()) {
            // Rust prints a double without an exponent, with the shortest digits that read back.
            Some(d) => {
                let text = format!("{d}");
                if text.contains('.') {
                    text
                } else {
                    format!("{text}.0")
                }
            }
            None => n.to_string(),
        },
        Json::Array(items) => format!("[{}]", items.iter().map(token_json).collect::<Vec<_>>().join(",")),
        Json::Object(map) => format!(
            "{{{}}}",
            map.iter().map(|(k, v)| format!("{}:{}", Json::String(k.clone()), token_json(v))).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

/// Proctor's token pattern (`ForceGroupsOptionsStrings.PATTERN`), with Java's ASCII meaning of
/// `\w`, `\d`, `\s` and `.` spelt out: a group `\w+-?\d+` with an optional payload
/// (`;type:` then a number, a quoted string, an array of them, or a map of them and arrays), or
/// an option `[a-z_]+`.
static TOKEN: LazyLock<Option<Regex>> = LazyLock::new(|| {
    let string = r#""(?:\\[^\n\r\x{85}\x{2028}\x{2029}]|[^"\\]+)*""#;
    let string_or_num = format!(r"-?[0-9]+\.?[0-9]*|{string}");
    let space = r"[ \t\n\x0B\f\r]";
    let array = format!(r"\[(?:{space}*(?:{string_or_num})(?:{space}*,{space}*(?:{string_or_num}))*)?\]");
    let entry = format!(r"(?:{string}{space}*:{space}*)(?:{string_or_num}|{array})");
    let map = format!(r"\{{(?:{space}*{entry}(?:{space}*,{space}*{entry})*)?\}}");
    let pattern = format!(r"[A-Za-z0-9_]+-?[0-9]+(?:;[A-Za-z0-9_]+:(?:{string_or_num}|{array}|{map}))?|[a-z_]+");
    Regex::new(&pattern).ok()
});

/// `<test><value>` as `ForceGroupsOptionsStrings.getBucketValueStart` splits it: the value is
/// the trailing digits, with a `-` before them when there is one, and the name must not be
/// empty. Proctor's check is off by one and also refuses a name of one letter before a value of
/// 0 or more (`X1`); we force it, on purpose (spec/README.md, docs/proctor.md §5.1).
fn group(token: &str) -> Option<(&str, i32)> {
    let digits_start = token.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    if digits_start == token.len() {
        return None;
    }
    let value_start = if token[..digits_start].ends_with('-') { digits_start - 1 } else { digits_start };
    let name = crate::java::trim(&token[..value_start]);
    if name.is_empty() {
        return None;
    }
    let value = crate::java::parse_int(&token[value_start..]).ok()?;
    Some((name, value))
}

/// `ForceGroupsOptionsStrings.parseForcePayloadString`: `type:value`, the value read as JSON
/// into the type (with Jackson's coercions); `json` and unknown types force no payload.
fn parse_payload(text: &str) -> Option<Payload> {
    let (type_name, value) = text.split_once(':')?;
    if !crate::payload::PROCTOR_PAYLOAD_TYPES.contains(&type_name) || type_name == "json" {
        return None;
    }
    let value: Json = serde_json::from_str(value).ok()?;
    read_payload_value(type_name, &value).ok()
}

/// The payload a forced bucket carries (`TestChooser.validateForcePayload`): the forced one when
/// it has the bucket's payload type, merged into the bucket's map for a map
/// ([`forced_map`]), else the bucket's own.
pub fn forced_payload(original: Option<&Payload>, forced: Option<&Payload>) -> Option<Payload> {
    let (Some(original), Some(forced)) = (original, forced) else { return None };
    match (original, forced) {
        (Payload::Map(orig), Payload::Map(new)) => forced_map(orig, new).map(Payload::Map),
        _ if original.type_name() == forced.type_name() => Some(forced.clone()),
        _ => None,
    }
}

/// `TestChooser.validateForcePayloadMap` over a map read from JSON: every forced key must be in
/// the bucket's map; where the bucket holds a Double or a String the forced value replaces it
/// whatever it is, where it holds a Long (an integer too large for an int) the forced value
/// must be an int; any other value of the bucket (a small integer, which JSON reads as an
/// Integer, a list, a boolean, null) keeps the bucket's own payload.
fn forced_map(orig: &IndexMap<String, Json>, new: &IndexMap<String, Json>) -> Option<IndexMap<String, Json>> {
    let is_int = |n: &serde_json::Number| n.as_i64().is_some_and(|v| i32::try_from(v).is_ok());
    let mut out = orig.clone();
    for (key, forced) in new {
        let replacement = match orig.get(key)? {
            Json::Number(n) if n.is_f64() => forced.clone(),
            Json::String(_) => forced.clone(),
            Json::Number(n) if !is_int(n) && (n.is_i64() || n.is_u64()) => match forced {
                Json::Number(f) if is_int(f) => forced.clone(),
                _ => return None,
            },
            _ => return None,
        };
        out.insert(key.clone(), replacement);
    }
    Some(out)
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
        assert_eq!(groups("abc-1, foo21,,"), [("abc".to_string(), -1), ("foo".to_string(), 21)]);
        assert_eq!(groups("abc1,abc2"), [("abc".to_string(), 2)]);
        assert_eq!(groups("1,-1,abc,x99999999999"), []);
        // The token is the word before the comma, as in Proctor (which would refuse `c1` only
        // for its one-letter name).
        assert_eq!(groups("ab c1"), [("c".to_string(), 1)]);
        assert_eq!(ForceGroups::parse("tt1,default_to_fallback").default_mode, DefaultMode::Fallback);
        assert_eq!(ForceGroups::parse("default_to_min_live").default_mode, DefaultMode::MinLive);
        assert_eq!(ForceGroups::parse("default_to_other").default_mode, DefaultMode::Initial);
    }

    #[test]
    fn tokens_follow_proctors_pattern() {
        // A token counts only when a comma or the end follows it: a trailing space spoils it.
        assert_eq!(groups("abc1 ,def2"), [("def".to_string(), 2)]);
        // Tokens are found anywhere, so the tail of a hyphenated word can be a group.
        assert_eq!(groups("ab-cd1"), [("cd".to_string(), 1)]);
        // A one-letter name forces any value (Proctor forces only a negative one: spec/README.md),
        // and a value needs a name.
        assert_eq!(groups("X1,Y-1"), [("X".to_string(), 1), ("Y".to_string(), -1)]);
        assert_eq!(groups("-1,11,x"), []);
        // Options are lower case only.
        assert_eq!(ForceGroups::parse("DEFAULT_TO_FALLBACK").default_mode, DefaultMode::Initial);
        // A payload the pattern does not accept spoils its whole token.
        assert_eq!(groups("abc1;booleanValue:true,def2"), [("def".to_string(), 2)]);
    }

    #[test]
    fn parses_payloads_with_commas_inside() {
        let f = ForceGroups::parse(r#"abc1;stringValue:"a,b",dd2;longArray:[2,4,6],mm3;map:{"key":"1.0"},ee1;doubleValue:0.2"#);
        assert_eq!(f.groups.len(), 4);
        assert_eq!(f.payloads["abc"], Payload::StringValue("a,b".into()));
        assert_eq!(f.payloads["dd"], Payload::LongArray(vec![Some(2), Some(4), Some(6)]));
        assert_eq!(f.payloads["ee"], Payload::DoubleValue(0.2));
        assert!(matches!(f.payloads["mm"], Payload::Map(_)));
        // json payloads cannot be forced, but the bucket still is.
        let f = ForceGroups::parse(r#"jj1;json:{"a":1}"#);
        assert_eq!(f.groups["jj"], 1);
        assert!(f.payloads.is_empty());
        // A token with trailing garbage after its payload is skipped.
        assert!(ForceGroups::parse(r#"abc1;longValue:5x,dd2"#).groups.keys().eq(["dd"]));
        assert!(ForceGroups::parse_pipet(r#"abc1;longValue:5,default_to_fallback"#).payloads.is_empty());
        // A later group without a payload keeps the payload an earlier one forced.
        let f = ForceGroups::parse(r#"abc1;stringValue:"x",abc2"#);
        assert_eq!((f.groups["abc"], &f.payloads["abc"]), (2, &Payload::StringValue("x".into())));
    }

    #[test]
    fn forced_payloads_need_the_same_type() {
        let orig = Payload::StringValue("x".into());
        assert_eq!(forced_payload(Some(&orig), Some(&Payload::StringValue("y".into()))), Some(Payload::StringValue("y".into())));
        assert_eq!(forced_payload(Some(&orig), Some(&Payload::LongValue(1))), None);
    }

    #[test]
    fn forced_maps_follow_validate_force_payload_map() {
        let map = |j: Json| match read_payload_value("map", &j) { Ok(p) => p, Err(e) => panic!("{e}") };
        let forced = |orig: Json, new: Json| forced_payload(Some(&map(orig)), Some(&map(new)));
        // Double and String values take whatever is forced; the keys not forced stay.
        let orig = serde_json::json!({"key": 1.5, "s": "a"});
        assert_eq!(forced(orig.clone(), serde_json::json!({"key": "x"})), Some(map(serde_json::json!({"key": "x", "s": "a"}))));
        assert_eq!(forced(orig.clone(), serde_json::json!({"key": 2.5, "s": 3})), Some(map(serde_json::json!({"key": 2.5, "s": 3}))));
        // A forced key the bucket lacks keeps the bucket's payload.
        assert_eq!(forced(orig, serde_json::json!({"other": 1})), None);
        // JSON reads small integers as Integers and arrays as lists, which are never replaced.
        assert_eq!(forced(serde_json::json!({"n": 4}), serde_json::json!({"n": 5})), None);
        assert_eq!(forced(serde_json::json!({"l": [1, 2]}), serde_json::json!({"l": [3]})), None);
        // A Long (too large for an int) takes a forced int only.
        let big = serde_json::json!({"n": 1_000_000_000_000_i64});
        assert_eq!(forced(big.clone(), serde_json::json!({"n": 7})), Some(map(serde_json::json!({"n": 7}))));
        assert_eq!(forced(big, serde_json::json!({"n": 2.5})), None);
    }

    #[test]
    fn the_token_pattern_compiles() {
        assert!(TOKEN.is_some());
    }

    #[test]
    fn canonical_string_round_trips() {
        let f = ForceGroups::parse(r#"aa1,bb-2;stringValue:"x",default_to_min_live"#);
        assert_eq!(f.to_canonical_string(), r#"default_to_min_live,aa1,bb-2;stringValue:"x""#);
        assert_eq!(ForceGroups::parse(&f.to_canonical_string()), f);
        // A double with an exponent, in a map (found by fuzzing, fuzz/corpus/force/).
        let f = ForceGroups::parse(r#"t1;map:{"key":0.0,"key2":277777700012609526036616329442},u2;doubleValue:0.000001"#);
        assert_eq!(f.payloads.len(), 2);
        let again = ForceGroups::parse(&f.to_canonical_string());
        assert_eq!((&again.groups, &again.payloads), (&f.groups, &f.payloads), "{}", f.to_canonical_string());
        // A name ending in a digit forced to 0 (found by fuzzing, fuzz/corpus/force/): `-0`.
        let f = ForceGroups::parse("testName7-0,x2-0,y3-4");
        assert_eq!(f.groups, IndexMap::from([("testName7".to_string(), 0), ("x2".to_string(), 0), ("y3".to_string(), -4)]));
        assert_eq!(f.to_canonical_string(), "testName7-0,x2-0,y3-4");
        assert_eq!(ForceGroups::parse(&f.to_canonical_string()), f);
    }
}
