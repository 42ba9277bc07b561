//! A bucket's payload (docs/proctor.md §1.7): the typed value a bucket carries, read leniently
//! as Proctor does and written as Proctor writes it, plus our boolean extension.

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::json::{kind, write_json};
use crate::lenient::{self, each, object, At, FieldError};

/// A bucket's typed value (docs/proctor.md §1.7), plus our boolean extension.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    /// `doubleValue`
    DoubleValue(f64),
    /// `doubleArray`
    DoubleArray(Vec<Option<f64>>),
    /// `longValue`
    LongValue(i64),
    /// `longArray`
    LongArray(Vec<Option<i64>>),
    /// `stringValue`
    StringValue(String),
    /// `stringArray`
    StringArray(Vec<Option<String>>),
    /// `map`: string keys to numbers, strings or arrays of them.
    Map(IndexMap<String, Json>),
    /// `json`: any JSON value.
    Json(Json),
    /// `booleanValue` (A vs B extension; exported to Proctor as `json`).
    BooleanValue(bool),
    /// A payload object that sets no type (`{}`, only unknown keys, or only nulls). Proctor reads
    /// it as its empty `Payload`, keeps the test, and writes it back as `{}`.
    Empty,
}

/// Proctor's payload type names (`PayloadType`), in its inference order.
pub const PROCTOR_PAYLOAD_TYPES: [&str; 8] =
    ["doubleValue", "doubleArray", "longValue", "longArray", "stringValue", "stringArray", "map", "json"];

/// The payload type names, in Proctor's inference order, then ours.
pub const PAYLOAD_TYPES: [&str; 9] = [
    "doubleValue",
    "doubleArray",
    "longValue",
    "longArray",
    "stringValue",
    "stringArray",
    "map",
    "json",
    "booleanValue",
];

impl Payload {
    /// The payload's type name (its JSON key).
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::DoubleValue(_) => "doubleValue",
            Payload::DoubleArray(_) => "doubleArray",
            Payload::LongValue(_) => "longValue",
            Payload::LongArray(_) => "longArray",
            Payload::StringValue(_) => "stringValue",
            Payload::StringArray(_) => "stringArray",
            Payload::Map(_) => "map",
            Payload::Json(_) => "json",
            Payload::BooleanValue(_) => "booleanValue",
            // Proctor's name for a payload without a type (`Payload.fetchType`).
            Payload::Empty => "none",
        }
    }

    /// The payload's value as JSON (without the type key); `null` for [`Payload::Empty`].
    pub fn value_json(&self) -> Json {
        fn opt<T: Into<Json> + Clone>(items: &[Option<T>]) -> Json {
            Json::Array(items.iter().map(|i| i.clone().map_or(Json::Null, Into::into)).collect())
        }
        match self {
            Payload::DoubleValue(d) => Json::from(*d),
            Payload::DoubleArray(items) => opt(items),
            Payload::LongValue(n) => Json::from(*n),
            Payload::LongArray(items) => opt(items),
            Payload::StringValue(s) => Json::from(s.as_str()),
            Payload::StringArray(items) => opt(items),
            Payload::Map(map) => Json::Object(map.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            Payload::Json(value) => value.clone(),
            Payload::BooleanValue(b) => Json::Bool(*b),
            Payload::Empty => Json::Null,
        }
    }

    /// Writes [`Payload::value_json`] as JSON text, without building a tree.
    pub fn write_value(&self, out: &mut Vec<u8>) {
        match self {
            Payload::DoubleValue(d) => write_json(out, d),
            Payload::DoubleArray(items) => write_json(out, items),
            Payload::LongValue(n) => write_json(out, n),
            Payload::LongArray(items) => write_json(out, items),
            Payload::StringValue(s) => write_json(out, s),
            Payload::StringArray(items) => write_json(out, items),
            Payload::Map(map) => write_json(out, map),
            Payload::Json(value) => write_json(out, value),
            Payload::BooleanValue(b) => write_json(out, b),
            Payload::Empty => out.extend_from_slice(b"null"),
        }
    }

    /// Writes [`Payload::to_json`] as JSON text: `{"<type>":<value>}`, or `{}` when empty.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        if *self == Payload::Empty {
            out.extend_from_slice(b"{}");
            return;
        }
        out.push(b'{');
        write_json(out, self.type_name());
        out.push(b':');
        self.write_value(out);
        out.push(b'}');
    }

    /// `{"<type>": <value>}`, as the matrix and Pipet write it (`{}` when empty).
    pub fn to_json(&self) -> Json {
        let mut out = serde_json::Map::with_capacity(1);
        if *self != Payload::Empty {
            out.insert(self.type_name().to_string(), self.value_json());
        }
        Json::Object(out)
    }

    /// The payload in Proctor's own types: a boolean becomes `{"json": true}`.
    pub fn to_proctor(&self) -> Payload {
        match self {
            Payload::BooleanValue(b) => Payload::Json(Json::Bool(*b)),
            other => other.clone(),
        }
    }
}

pub(crate) fn read_payload(v: &Json, at: &At<'_>) -> Result<Option<Payload>, FieldError> {
    if v.is_null() {
        return Ok(None);
    }
    let o = object(v, at)?;
    let mut found: Option<Payload> = None;
    for type_name in PAYLOAD_TYPES {
        let Some(value) = o.get(type_name).filter(|v| !v.is_null()) else { continue };
        let payload = read_payload_value_at(type_name, value, &at.key(type_name))?;
        if let Some(first) = &found {
            return Err(at.error(
                format!("a payload has exactly one type, found both '{}' and '{type_name}'", first.type_name()),
            ));
        }
        found = Some(payload);
    }
    // Proctor's Payload has a setter per type and ignores unknown keys, so an object that sets
    // none of them is its empty payload, and the test stays (docs/proctor.md §1.7).
    Ok(Some(found.unwrap_or(Payload::Empty)))
}

/// Reads a bucket's `payload` object (`Ok(None)` for null).
pub(crate) fn read_payload_json(v: &Json) -> Result<Option<Payload>, FieldError> {
    read_payload(v, &At::ROOT)
}

/// Reads one payload value of a named type (also used for forced payloads).
pub(crate) fn read_payload_value(type_name: &str, value: &Json) -> Result<Payload, FieldError> {
    read_payload_value_at(type_name, value, &At::ROOT)
}

fn read_payload_value_at(type_name: &str, value: &Json, at: &At<'_>) -> Result<Payload, FieldError> {
    fn items<T>(
        value: &Json,
        at: &At<'_>,
        read: impl Fn(&Json, &At<'_>) -> Result<T, FieldError>,
    ) -> Result<Vec<Option<T>>, FieldError> {
        each(Some(value), at, |item, at| if item.is_null() { Ok(None) } else { read(item, at).map(Some) })
    }
    Ok(match type_name {
        "doubleValue" => Payload::DoubleValue(lenient::double_field(value, at)?),
        "doubleArray" => Payload::DoubleArray(items(value, at, lenient::double_field)?),
        "longValue" => Payload::LongValue(lenient::long_field(value, at)?),
        "longArray" => Payload::LongArray(items(value, at, lenient::long_field)?),
        "stringValue" => Payload::StringValue(lenient::string_field(value, at)?.unwrap_or_default()),
        "stringArray" => Payload::StringArray(items(value, at, |v, at| Ok(lenient::string_field(v, at)?.unwrap_or_default()))?),
        "map" => Payload::Map(object(value, at)?.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        "json" => Payload::Json(value.clone()),
        "booleanValue" => Payload::BooleanValue(match value {
            Json::Bool(b) => *b,
            other => return Err(at.error(format!("expected true or false, found {}", kind(other)))),
        }),
        other => return Err(at.error(format!("unknown payload type '{other}'"))),
    })
}
