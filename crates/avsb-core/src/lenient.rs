//! Jackson's default coercions of scalar fields, written once for both matrix readers: the tree
//! reader (`reader`, which explains problems with a field path) and the fast reader
//! (`reader_fast`, which reads straight from the text). Both hand a [`Scalar`] to the same
//! functions here, so they accept exactly the same documents.

use serde_json::Value as Json;

use crate::json::kind;

/// One scalar as the JSON text holds it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Scalar<'a> {
    /// `null`
    Null,
    /// `true` or `false`
    Bool(bool),
    /// An integer that fits an `i64`.
    I64(i64),
    /// An integer above `i64::MAX`.
    U64(u64),
    /// A number with a fraction or an exponent.
    F64(f64),
    /// A string.
    Str(&'a str),
}

impl<'a> Scalar<'a> {
    /// The scalar of a JSON tree value; arrays and objects are not scalars and give their kind.
    pub(crate) fn of(v: &'a Json) -> Result<Scalar<'a>, &'static str> {
        Ok(match v {
            Json::Null => Scalar::Null,
            Json::Bool(b) => Scalar::Bool(*b),
            Json::Number(n) => match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => Scalar::I64(i),
                (None, Some(u)) => Scalar::U64(u),
                _ => Scalar::F64(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Scalar::Str(s),
            other => return Err(kind(other)),
        })
    }

    fn describe(self) -> String {
        match self {
            Scalar::Null => "null".into(),
            Scalar::Bool(_) => "a boolean".into(),
            Scalar::I64(_) | Scalar::U64(_) | Scalar::F64(_) => "a number".into(),
            Scalar::Str(s) => format!("\"{s}\""),
        }
    }
}

/// A String field: text, or a number or boolean as its text; null is absent.
pub(crate) fn text(s: Scalar<'_>) -> Result<Option<String>, String> {
    Ok(match s {
        Scalar::Null => None,
        Scalar::Str(s) => Some(s.to_string()),
        Scalar::Bool(b) => Some(b.to_string()),
        Scalar::I64(n) => Some(n.to_string()),
        Scalar::U64(n) => Some(n.to_string()),
        Scalar::F64(n) => Some(number_text(n)),
    })
}

/// A double as JSON writes it (`2.5`, `1e300`).
fn number_text(d: f64) -> String {
    serde_json::Number::from_f64(d).map_or_else(|| d.to_string(), |n| n.to_string())
}

/// A 64-bit long field: an integer, a decimal truncated, or integer text; null is 0.
pub(crate) fn long(s: Scalar<'_>) -> Result<i64, String> {
    match s {
        Scalar::Null => Ok(0),
        Scalar::I64(n) => Ok(n),
        Scalar::U64(n) => Err(format!("{n} does not fit a 64-bit long")),
        Scalar::F64(d) if d.is_finite() && d.abs() < 9.2e18 => Ok(d.trunc() as i64),
        Scalar::F64(d) => Err(format!("{} does not fit a 64-bit long", number_text(d))),
        Scalar::Str(text) => {
            crate::java::parse_long(text.trim()).map_err(|_| format!("expected an integer, found \"{text}\""))
        }
        Scalar::Bool(_) => Err(format!("expected an integer, found {}", s.describe())),
    }
}

/// A 32-bit int field: a long that fits 32 bits.
pub(crate) fn int(s: Scalar<'_>) -> Result<i32, String> {
    let wide = long(s)?;
    i32::try_from(wide).map_err(|_| format!("{wide} does not fit a 32-bit int"))
}

/// A double field: a number or numeric text; null is 0.
pub(crate) fn double(s: Scalar<'_>) -> Result<f64, String> {
    match s {
        Scalar::Null => Ok(0.0),
        Scalar::I64(n) => Ok(n as f64),
        Scalar::U64(n) => Ok(n as f64),
        Scalar::F64(d) => Ok(d),
        Scalar::Str(text) => crate::java::parse_double(text).map_err(|_| format!("expected a number, found \"{text}\"")),
        Scalar::Bool(_) => Err(format!("expected a number, found {}", s.describe())),
    }
}

/// A boolean field: a boolean, `"true"`/`"false"`/`""`, or a number (0 is false); null is false.
pub(crate) fn boolean(s: Scalar<'_>) -> Result<bool, String> {
    match s {
        Scalar::Null => Ok(false),
        Scalar::Bool(b) => Ok(b),
        Scalar::Str(t) if t.eq_ignore_ascii_case("true") => Ok(true),
        Scalar::Str(t) if t.eq_ignore_ascii_case("false") || t.is_empty() => Ok(false),
        Scalar::I64(n) => Ok(n != 0),
        Scalar::U64(n) => Ok(n != 0),
        Scalar::F64(d) => Ok(d != 0.0),
        Scalar::Str(_) => Err("expected true or false, found a string".into()),
    }
}

/// A field that cannot be read, with its path inside the test.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct FieldError {
    /// Dotted path from the test (`allocations[0].ranges[1].length`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

/// Where a field is: built on the stack as reading descends, rendered as text
/// (`allocations[0].ranges[1].length`) only when there is an error to report.
#[derive(Clone, Copy)]
pub(crate) struct At<'a> {
    parent: Option<&'a At<'a>>,
    step: Step<'a>,
}

#[derive(Clone, Copy)]
enum Step<'a> {
    Root,
    Key(&'a str),
    Index(usize),
}

impl<'a> At<'a> {
    /// The test itself (or the document, for the audit).
    pub(crate) const ROOT: At<'static> = At { parent: None, step: Step::Root };

    /// A field of this object.
    pub(crate) fn key(&'a self, key: &'a str) -> At<'a> {
        At { parent: Some(self), step: Step::Key(key) }
    }

    /// An element of this array.
    pub(crate) fn index(&'a self, index: usize) -> At<'a> {
        At { parent: Some(self), step: Step::Index(index) }
    }

    fn render(&self) -> String {
        let mut out = self.parent.map(At::render).unwrap_or_default();
        match self.step {
            Step::Root => {}
            Step::Key(key) if out.is_empty() => out.push_str(key),
            Step::Key(key) => {
                out.push('.');
                out.push_str(key);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
        out
    }

    /// An error at this place.
    pub(crate) fn error(&self, message: impl Into<String>) -> FieldError {
        FieldError { path: self.render(), message: message.into() }
    }
}

/// Applies a coercion to a tree value, naming the field when it fails.
pub(crate) fn field<T>(v: &Json, at: &At<'_>, coerce: fn(Scalar<'_>) -> Result<T, String>) -> Result<T, FieldError> {
    let scalar = Scalar::of(v).map_err(|found| at.error(format!("expected a scalar, found {found}")))?;
    coerce(scalar).map_err(|message| at.error(message))
}

/// [`text`] of a tree value, refusing arrays and objects as "expected a string".
pub(crate) fn string_field(v: &Json, at: &At<'_>) -> Result<Option<String>, FieldError> {
    match v {
        Json::Array(_) | Json::Object(_) => Err(at.error(format!("expected a string, found {}", kind(v)))),
        _ => field(v, at, text),
    }
}

/// [`int`] of a tree value.
pub(crate) fn int_field(v: &Json, at: &At<'_>) -> Result<i32, FieldError> {
    typed(v, at, "an integer", int)
}

/// [`long`] of a tree value.
pub(crate) fn long_field(v: &Json, at: &At<'_>) -> Result<i64, FieldError> {
    typed(v, at, "an integer", long)
}

/// [`double`] of a tree value.
pub(crate) fn double_field(v: &Json, at: &At<'_>) -> Result<f64, FieldError> {
    typed(v, at, "a number", double)
}

/// [`boolean`] of a tree value.
pub(crate) fn boolean_field(v: &Json, at: &At<'_>) -> Result<bool, FieldError> {
    typed(v, at, "true or false", boolean)
}

fn typed<T>(v: &Json, at: &At<'_>, expected: &str, coerce: fn(Scalar<'_>) -> Result<T, String>) -> Result<T, FieldError> {
    match v {
        Json::Array(_) | Json::Object(_) => Err(at.error(format!("expected {expected}, found {}", kind(v)))),
        _ => field(v, at, coerce),
    }
}

/// An object field.
pub(crate) fn object<'a>(v: &'a Json, at: &At<'_>) -> Result<&'a serde_json::Map<String, Json>, FieldError> {
    v.as_object().ok_or_else(|| at.error(format!("expected an object, found {}", kind(v))))
}

/// An array field: absent or null is empty; any other non-array is refused, as Jackson does
/// with its defaults (no single value read as a one-element array).
pub(crate) fn array<'a>(v: Option<&'a Json>, at: &At<'_>) -> Result<&'a [Json], FieldError> {
    match v {
        None | Some(Json::Null) => Ok(&[]),
        Some(Json::Array(items)) => Ok(items),
        Some(other) => Err(at.error(format!("expected an array, found {}", kind(other)))),
    }
}

/// Reads each element of an array field with `read`.
pub(crate) fn each<T>(
    v: Option<&Json>,
    at: &At<'_>,
    read: impl Fn(&Json, &At<'_>) -> Result<T, FieldError>,
) -> Result<Vec<T>, FieldError> {
    array(v, at)?.iter().enumerate().map(|(i, item)| read(item, &at.index(i))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coercions_follow_jackson() {
        assert_eq!(text(Scalar::F64(2.5)), Ok(Some("2.5".into())));
        assert_eq!(text(Scalar::Bool(true)), Ok(Some("true".into())));
        assert_eq!(int(Scalar::F64(2.9)), Ok(2));
        assert_eq!(int(Scalar::Str(" 7 ")), Ok(7));
        assert!(int(Scalar::I64(1 << 40)).unwrap_err().contains("32-bit"));
        assert!(long(Scalar::U64(u64::MAX)).is_err());
        assert_eq!(double(Scalar::Str("0.25")), Ok(0.25));
        assert_eq!(boolean(Scalar::Str("")), Ok(false));
        assert_eq!(boolean(Scalar::I64(3)), Ok(true));
        assert!(boolean(Scalar::Str("yes")).is_err());
    }

    #[test]
    fn errors_name_the_field() {
        let root = At::ROOT;
        let ranges = root.key("ranges");
        let first = ranges.index(1);
        let at = first.key("length");
        let e = double_field(&serde_json::json!("half"), &at).unwrap_err();
        assert_eq!(e.path, "ranges[1].length");
        assert_eq!(e.message, "expected a number, found \"half\"");
        let e = double_field(&serde_json::json!([1]), &at).unwrap_err();
        assert_eq!(e.message, "expected a number, found an array");
    }
}
