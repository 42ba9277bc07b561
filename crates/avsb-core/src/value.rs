//! The values rules compute with: a model of the Java objects Proctor's EL engine sees.
//!
//! Proctor evaluates rules over Java objects, and EL 2.2's coercions depend on their classes
//! (an `Integer` constant and a `Long` literal compare equal, but `Comparable.compareTo` between
//! them throws). So a value keeps the Java class it stands for, not just a number.

use std::sync::Arc;

use indexmap::IndexMap;

use crate::useragent::{Property, UserAgent};
use crate::version::ReleaseVersion;

/// The Java class of an integral value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IntKind {
    /// `java.lang.Byte`
    Byte,
    /// `java.lang.Short`
    Short,
    /// `java.lang.Integer`
    Integer,
    /// `java.lang.Long`
    Long,
}

/// Proctor's three-valued boolean (`ProctorRuleFunctions.MaybeBool`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MaybeBool {
    /// `TRUE`
    True,
    /// `FALSE`
    False,
    /// `UNKNOWN`
    Unknown,
}

impl MaybeBool {
    /// The Java enum constant's name.
    pub fn name(self) -> &'static str {
        match self {
            MaybeBool::True => "TRUE",
            MaybeBool::False => "FALSE",
            MaybeBool::Unknown => "UNKNOWN",
        }
    }

    /// `MaybeBool.valueOf(name)`.
    pub fn from_name(name: &str) -> Option<MaybeBool> {
        match name {
            "TRUE" => Some(MaybeBool::True),
            "FALSE" => Some(MaybeBool::False),
            "UNKNOWN" => Some(MaybeBool::Unknown),
            _ => None,
        }
    }
}

/// One value in a rule's world: a context variable, a test constant, a literal or a result.
#[derive(Debug, Clone)]
pub enum Value {
    /// `null`
    Null,
    /// `java.lang.Boolean`
    Bool(bool),
    /// `Byte`, `Short`, `Integer` or `Long`, kept as an `i64` in range for its kind.
    Int(i64, IntKind),
    /// `java.lang.Float`
    Float(f32),
    /// `java.lang.Double`
    Double(f64),
    /// `java.lang.Character` (one UTF-16 unit; always a BMP scalar here).
    Char(char),
    /// `java.lang.String`
    String(Arc<str>),
    /// A `java.util.List` (JSON arrays in constants).
    List(Arc<[Value]>),
    /// A `String[]` (what `fn:split` returns and `fn:join` takes).
    Array(Arc<[Value]>),
    /// A `java.util.Map` with string keys (JSON objects in constants), in insertion order.
    Map(Arc<IndexMap<String, Value>>),
    /// `com.indeed.util.core.ReleaseVersion`
    Version(ReleaseVersion),
    /// `ProctorRuleFunctions.MaybeBool`
    MaybeBool(MaybeBool),
    /// Pipet's `UserAgent` bean.
    UserAgent(Arc<UserAgent>),
}

impl Value {
    /// A `java.lang.String`.
    pub fn string(s: impl Into<Arc<str>>) -> Value {
        Value::String(s.into())
    }

    /// A `java.lang.Long`.
    pub fn long(n: i64) -> Value {
        Value::Int(n, IntKind::Long)
    }

    /// The value Jackson gives a JSON value read into `Map<String, Object>` (test constants;
    /// docs/proctor.md §1.9): integers become `Integer` (or `Long` when large), decimals `Double`,
    /// arrays `List`, objects `Map`.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    if i32::try_from(i).is_ok() {
                        Value::Int(i, IntKind::Integer)
                    } else {
                        Value::Int(i, IntKind::Long)
                    }
                } else {
                    // Larger than a long (Jackson: BigInteger) or a decimal: a Double is the
                    // closest class we model.
                    Value::Double(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            serde_json::Value::String(s) => Value::string(s.as_str()),
            serde_json::Value::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            serde_json::Value::Object(map) => Value::Map(Arc::new(
                map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect(),
            )),
        }
    }

    /// How Pipet's Jackson mapper writes this value in the `context` of `/groups/identify`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n, _) => J::from(*n),
            Value::Float(f) => float_json(f64::from(*f), crate::java::float_to_string(*f)),
            Value::Double(d) => float_json(*d, crate::java::double_to_string(*d)),
            Value::Char(c) => J::String(c.to_string()),
            Value::String(s) => J::String(s.to_string()),
            Value::List(items) | Value::Array(items) => J::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(map) => J::Object(map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
            Value::Version(v) => J::String(v.to_string()),
            Value::MaybeBool(m) => J::String(m.name().to_string()),
            Value::UserAgent(ua) => ua.to_json(),
        }
    }
}

impl From<Property> for Value {
    /// A `UserAgent` bean property as EL sees it: enum constants are strings, nested beans maps,
    /// numbers Java `int`s.
    fn from(property: Property) -> Value {
        match property {
            Property::Null => Value::Null,
            Property::Text(s) => Value::string(s),
            Property::Flag(b) => Value::Bool(b),
            Property::Int(n) => Value::Int(i64::from(n), IntKind::Integer),
            Property::Bean(props) => {
                Value::Map(Arc::new(props.into_iter().map(|(k, v)| (k.to_string(), Value::from(v))).collect()))
            }
        }
    }
}

/// Jackson writes finite floats as numbers and NaN/Infinity as strings.
fn float_json(value: f64, java_text: String) -> serde_json::Value {
    if value.is_finite() {
        // The Java text ("1.0E10") is valid JSON number syntax; keep Java's digits.
        serde_json::from_str(&java_text).unwrap_or(serde_json::Value::Null)
    } else {
        serde_json::Value::String(java_text)
    }
}
