//! Evaluation of compiled rules, with EL 2.2's coercions (Tomcat 7 `ELSupport`, `ELArithmetic`).
//!
//! Values are borrowed from the rule and the request wherever possible (`Cow`), so comparing a
//! context string with a literal allocates nothing.
//!
//! Every node takes a step of the request's budget ([`super::budget`]), and so does every byte
//! or item an operator reads; whatever makes a string or a list checks its size first. Reading
//! is counted when it is done (its cost is bounded by data that already exists), making before
//! (the allocation is what must not happen).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use super::budget::{self, Budget, DEEP_STEPS_PER_BYTE, MAX_STEPS_PER_EVALUATION, MAX_STRING_BYTES, NODE_STEPS, UTF16_STEPS_PER_BYTE};
use super::functions::{self, Func, JavaRegex};
use super::parser::{BinOp, UnOp};
use super::env::{EvalEnv, RuleError};
use crate::value::{IntKind, MaybeBool, Value};

pub(crate) type Res<T> = Result<T, RuleError>;

/// A compiled expression: variables are resolved to constants or context slots.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Value),
    /// A context variable: its slot and name (for the error when a request lacks it).
    Slot(usize, Box<str>),
    MissingUnit,
    Unary(UnOp, Box<Node>),
    Binary(BinOp, Box<Node>, Box<Node>),
    Cond(Box<Node>, Box<Node>, Box<Node>),
    Index(Box<Node>, Box<Node>),
    Method(Box<Node>, Box<str>, Vec<Node>),
    Call(Func, Vec<Node>),
    /// `proctor:matches(value, 'constant pattern')`, compiled once.
    Matches(Box<Node>, Arc<JavaRegex>),
    /// `value.matches('constant pattern')` (`String.matches`), compiled once; a pattern that
    /// does not compile keeps its error for evaluation, where Java throws it.
    MatchesMethod(Box<Node>, Arc<Result<JavaRegex, Box<str>>>),
}

/// The longest message an evaluation error carries, in bytes: values in messages are shortened
/// (see [`preview`]), and this bounds whatever else a message quotes.
const MAX_MESSAGE_BYTES: usize = 512;

pub(crate) fn err(code: &'static str, message: impl Into<String>) -> RuleError {
    let mut message = message.into();
    if message.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    RuleError { code, message }
}

/// The Java class name of a value, for messages.
pub(crate) fn class_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "java.lang.Boolean",
        Value::Int(_, IntKind::Byte) => "java.lang.Byte",
        Value::Int(_, IntKind::Short) => "java.lang.Short",
        Value::Int(_, IntKind::Integer) => "java.lang.Integer",
        Value::Int(_, IntKind::Long) => "java.lang.Long",
        Value::Float(_) => "java.lang.Float",
        Value::Double(_) => "java.lang.Double",
        Value::Char(_) => "java.lang.Character",
        Value::String(_) => "java.lang.String",
        Value::List(_) => "java.util.List",
        Value::Array(_) => "java.lang.String[]",
        Value::Map(_) => "java.util.Map",
        Value::Version(_) => "com.indeed.util.core.ReleaseVersion",
        Value::MaybeBool(_) => "com.indeed.proctor.common.ProctorRuleFunctions$MaybeBool",
        Value::UserAgent(_) => "com.indeed.proctor.pipet.deploy.useragent.UserAgent",
    }
}

fn coercion(v: &Value, target: &str) -> RuleError {
    let shown = match v {
        Value::String(_) => format!("'{}'", preview(v)),
        other => preview(other),
    };
    err("coercion_error", format!("cannot convert {shown} of type {} to {target}", class_name(v)))
}

/// The longest a value is shown in a message.
const PREVIEW_BYTES: usize = 64;

/// A value as a message shows it: Java's text, cut after [`PREVIEW_BYTES`] bytes (`…` and the
/// whole length then follow), so that no message grows with the data.
pub(crate) fn preview(v: &Value) -> String {
    let mut out = String::new();
    if write_java(v, &mut out, PREVIEW_BYTES) {
        return out;
    }
    let mut end = PREVIEW_BYTES.min(out.len());
    while !out.is_char_boundary(end) {
        end -= 1;
    }
    out.truncate(end);
    match v {
        Value::String(s) => out.push_str(&format!("… ({} bytes)", s.len())),
        _ => out.push('…'),
    }
    out
}

/// Text shown in a message, cut as [`preview`] cuts a value.
pub(crate) fn preview_text(s: &str) -> String {
    preview(&Value::string(s))
}

/// `Double.doubleToLongBits`: NaN is canonical.
fn double_bits(d: f64) -> i64 {
    if d.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        d.to_bits() as i64
    }
}

/// `Double.compare`: -0.0 < 0.0 and NaN is above everything and equal to itself.
pub(crate) fn java_double_compare(a: f64, b: f64) -> Ordering {
    if a < b {
        Ordering::Less
    } else if a > b {
        Ordering::Greater
    } else {
        double_bits(a).cmp(&double_bits(b))
    }
}

/// A Character as `ELSupport` turns it into a number: `(short) charValue`.
fn char_number(c: char) -> i64 {
    i64::from(u32::from(c) as u16 as i16)
}

fn is_double_op(a: &Value, b: &Value) -> bool {
    matches!(a, Value::Double(_) | Value::Float(_)) || matches!(b, Value::Double(_) | Value::Float(_))
}

fn is_long_op(a: &Value, b: &Value) -> bool {
    matches!(a, Value::Int(..) | Value::Char(_)) || matches!(b, Value::Int(..) | Value::Char(_))
}

/// `coerceToNumber(v, Double.class)`.
pub(crate) fn to_double(v: &Value) -> Res<f64> {
    match v {
        Value::Null => Ok(0.0),
        Value::String(s) if s.is_empty() => Ok(0.0),
        Value::String(s) => crate::java::parse_double(s).map_err(|_| coercion(v, "java.lang.Double")),
        Value::Int(n, _) => Ok(*n as f64),
        Value::Float(f) => Ok(f64::from(*f)),
        Value::Double(d) => Ok(*d),
        Value::Char(c) => Ok(char_number(*c) as f64),
        _ => Err(coercion(v, "java.lang.Double")),
    }
}

/// `coerceToNumber(v, Long.class)`.
pub(crate) fn to_long(v: &Value) -> Res<i64> {
    match v {
        Value::Null => Ok(0),
        Value::String(s) if s.is_empty() => Ok(0),
        Value::String(s) => crate::java::parse_long(s).map_err(|_| coercion(v, "java.lang.Long")),
        Value::Int(n, _) => Ok(*n),
        // `Number.longValue()`: truncation, saturating, NaN to 0 (as Rust's `as`).
        Value::Float(f) => Ok(*f as i64),
        Value::Double(d) => Ok(*d as i64),
        Value::Char(c) => Ok(char_number(*c)),
        _ => Err(coercion(v, "java.lang.Long")),
    }
}

/// `coerceToNumber(v, Integer.class)`: `Integer.valueOf` for strings, `intValue()` for numbers.
pub(crate) fn to_int(v: &Value) -> Res<i32> {
    match v {
        Value::String(s) if !s.is_empty() => {
            crate::java::parse_int(s).map_err(|_| coercion(v, "java.lang.Integer"))
        }
        Value::Float(f) => Ok(*f as i32),
        Value::Double(d) => Ok(*d as i32),
        // `longValue` then `intValue`: the low 32 bits.
        other => Ok(to_long(other)? as i32),
    }
}

/// `coerceToBoolean`: null and `""` are false, a String is `Boolean.valueOf`, others fail.
pub(crate) fn to_bool(v: &Value) -> Res<bool> {
    match v {
        Value::Null => Ok(false),
        Value::Bool(b) => Ok(*b),
        Value::String(s) => Ok(s.eq_ignore_ascii_case("true")),
        _ => Err(coercion(v, "java.lang.Boolean")),
    }
}

/// `coerceToString`: null is `""`, an enum its name, anything else `toString()`. Fails (with
/// the budget's error) when the text of a list or a map would be longer than a rule may make.
pub(crate) fn to_string(v: &Value) -> Res<Cow<'_, str>> {
    match v {
        Value::Null => Ok(Cow::Borrowed("")),
        other => java_to_string(other),
    }
}

/// Java's `String.valueOf(Object)`: like `toString()`, with null as `"null"`. Only lists and maps
/// can be longer than [`MAX_STRING_BYTES`]; their text is built up to that length and no further.
pub(crate) fn java_to_string(v: &Value) -> Res<Cow<'_, str>> {
    match v {
        Value::List(_) | Value::Map(_) => {
            let mut out = String::new();
            if write_java(v, &mut out, MAX_STRING_BYTES) {
                Ok(Cow::Owned(out))
            } else {
                Err(budget::exceeded(format!(
                    "the text of a {} would be longer than {MAX_STRING_BYTES} bytes, the most a string a rule makes may have",
                    class_name(v)
                ))
                .into())
            }
        }
        other => Ok(scalar_to_string(other)),
    }
}

/// `String.valueOf` of anything but a list or a map (whose text is made by [`write_java`]).
fn scalar_to_string(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Int(n, _) => Cow::Owned(n.to_string()),
        Value::Float(f) => Cow::Owned(crate::java::float_to_string(*f)),
        Value::Double(d) => Cow::Owned(crate::java::double_to_string(*d)),
        Value::Char(c) => Cow::Owned(c.to_string()),
        Value::String(s) => Cow::Borrowed(s),
        // Java prints an array's identity hash, which nobody can depend on.
        Value::Array(_) => Cow::Borrowed("[Ljava.lang.String;@0"),
        Value::Version(v) => Cow::Owned(v.to_string()),
        Value::MaybeBool(m) => Cow::Borrowed(m.name()),
        Value::UserAgent(ua) => Cow::Borrowed(ua.user_agent_string()),
        Value::List(_) | Value::Map(_) => Cow::Borrowed(""),
    }
}

/// Appends `String.valueOf(v)` (`[a, b]`, `{k=v}` for lists and maps) to `out`, but never makes
/// `out` longer than `limit` bytes plus one character: `false` when the text did not fit.
pub(crate) fn write_java(v: &Value, out: &mut String, limit: usize) -> bool {
    fn push(out: &mut String, text: &str, limit: usize) -> bool {
        let room = limit.saturating_sub(out.len());
        if text.len() <= room {
            out.push_str(text);
            return true;
        }
        let mut end = room;
        while !text.is_char_boundary(end) {
            end += 1;
        }
        out.push_str(&text[..end]);
        false
    }
    match v {
        Value::List(items) => {
            if !push(out, "[", limit) {
                return false;
            }
            for (i, item) in items.iter().enumerate() {
                if (i > 0 && !push(out, ", ", limit)) || !write_java(item, out, limit) {
                    return false;
                }
            }
            push(out, "]", limit)
        }
        Value::Map(map) => {
            if !push(out, "{", limit) {
                return false;
            }
            for (i, (key, item)) in map.iter().enumerate() {
                if (i > 0 && !push(out, ", ", limit))
                    || !push(out, key, limit)
                    || !push(out, "=", limit)
                    || !write_java(item, out, limit)
                {
                    return false;
                }
            }
            push(out, "}", limit)
        }
        other => push(out, &scalar_to_string(other), limit),
    }
}

/// The steps of reading a value whole (printing it, or comparing it with `equals`): its bytes
/// and items, counted no further than an evaluation may go.
pub(crate) fn deep_steps(v: &Value) -> u64 {
    fn walk(v: &Value, total: &mut u64) {
        if *total > MAX_STEPS_PER_EVALUATION {
            return;
        }
        match v {
            Value::String(s) => *total += s.len() as u64,
            Value::UserAgent(ua) => *total += ua.user_agent_string().len() as u64,
            Value::List(items) | Value::Array(items) => {
                for item in items.iter() {
                    *total += 2;
                    walk(item, total);
                    if *total > MAX_STEPS_PER_EVALUATION {
                        return;
                    }
                }
            }
            Value::Map(map) => {
                for (key, item) in map.iter() {
                    *total += 2 + key.len() as u64;
                    walk(item, total);
                    if *total > MAX_STEPS_PER_EVALUATION {
                        return;
                    }
                }
            }
            _ => *total += 1,
        }
    }
    let mut total = 0;
    walk(v, &mut total);
    total
}

/// The steps of reading a value's top level: a string's bytes, a collection's items.
pub(crate) fn shallow_steps(v: &Value) -> u64 {
    match v {
        Value::String(s) => s.len() as u64,
        Value::List(items) | Value::Array(items) => items.len() as u64,
        Value::Map(map) => map.len() as u64,
        _ => 1,
    }
}

/// The steps of comparing two values with `==` (`ordering` false) or `<` and the like: two
/// strings are compared up to the shorter one's length (as UTF-16 for an ordering); a list or a
/// map is printed or walked whole; anything else is parsed or read once.
fn comparison_steps(a: &Value, b: &Value, ordering: bool) -> u64 {
    match (a, b) {
        (Value::String(x), Value::String(y)) => {
            let bytes = x.len().min(y.len()) as u64;
            1 + if ordering && !(x.is_ascii() && y.is_ascii()) { UTF16_STEPS_PER_BYTE * bytes } else { bytes }
        }
        _ if matches!(a, Value::List(_) | Value::Array(_) | Value::Map(_))
            || matches!(b, Value::List(_) | Value::Array(_) | Value::Map(_)) =>
        {
            DEEP_STEPS_PER_BYTE * (deep_steps(a) + deep_steps(b))
        }
        _ => shallow_steps(a) + shallow_steps(b),
    }
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units.
pub(crate) fn java_string_compare(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `Object.equals` between the classes we model.
pub(crate) fn java_equals(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Int(x, k), Value::Int(y, l)) => k == l && x == y,
        (Value::Float(x), Value::Float(y)) => {
            let bits = |f: f32| if f.is_nan() { 0x7fc0_0000 } else { f.to_bits() };
            bits(*x) == bits(*y)
        }
        (Value::Double(x), Value::Double(y)) => double_bits(*x) == double_bits(*y),
        (Value::Char(x), Value::Char(y)) => x == y,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::List(x), Value::List(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(p, q)| java_equals(p, q))
        }
        // Arrays use identity.
        (Value::Array(x), Value::Array(y)) => std::sync::Arc::ptr_eq(x, y),
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| java_equals(v, w)))
        }
        (Value::Version(x), Value::Version(y)) => x.java_equals(y),
        (Value::MaybeBool(x), Value::MaybeBool(y)) => x == y,
        (Value::UserAgent(x), Value::UserAgent(y)) => x == y,
        _ => false,
    }
}

/// `coerceToEnum(v, MaybeBool.class)`: null and `""` are null; a String is looked up by name.
pub(crate) fn to_maybe_bool(v: &Value) -> Res<Option<MaybeBool>> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::MaybeBool(m) => Ok(Some(*m)),
        Value::String(s) => MaybeBool::from_name(s).map(Some).ok_or_else(|| coercion(v, "MaybeBool")),
        _ => Err(coercion(v, "MaybeBool")),
    }
}

/// `ELSupport.equals`.
pub(crate) fn el_equals(a: &Value, b: &Value) -> Res<bool> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => return Ok(x == y),
        (Value::Int(x, _), Value::Int(y, _)) => return Ok(x == y),
        (Value::Null, Value::Null) => return Ok(true),
        (Value::Null, _) | (_, Value::Null) => return Ok(false),
        _ => {}
    }
    if is_double_op(a, b) {
        return Ok(double_bits(to_double(a)?) == double_bits(to_double(b)?));
    }
    if is_long_op(a, b) {
        return Ok(to_long(a)? == to_long(b)?);
    }
    if matches!(a, Value::Bool(_)) || matches!(b, Value::Bool(_)) {
        return Ok(to_bool(a)? == to_bool(b)?);
    }
    if let Value::MaybeBool(m) = a {
        return Ok(to_maybe_bool(b)? == Some(*m));
    }
    if let Value::MaybeBool(m) = b {
        return Ok(to_maybe_bool(a)? == Some(*m));
    }
    if matches!(a, Value::String(_)) || matches!(b, Value::String(_)) {
        return Ok(to_string(a)? == to_string(b)?);
    }
    Ok(java_equals(a, b))
}

fn not_comparable(a: &Value, b: &Value) -> RuleError {
    err("not_comparable", format!("cannot compare {} with {}", class_name(a), class_name(b)))
}

/// `Comparable.compareTo` between two objects of the same class (else a ClassCastException).
pub(crate) fn java_compare_to(a: &Value, b: &Value) -> Res<Ordering> {
    match (a, b) {
        (_, Value::Null) | (Value::Null, _) => {
            Err(err("null_argument", "NullPointerException: compareTo with null"))
        }
        (Value::Bool(x), Value::Bool(y)) => Ok(x.cmp(y)),
        (Value::Int(x, k), Value::Int(y, l)) if k == l => Ok(x.cmp(y)),
        (Value::Float(x), Value::Float(y)) => Ok(java_double_compare(f64::from(*x), f64::from(*y))),
        (Value::Double(x), Value::Double(y)) => Ok(java_double_compare(*x, *y)),
        (Value::Char(x), Value::Char(y)) => Ok(x.cmp(y)),
        (Value::String(x), Value::String(y)) => Ok(java_string_compare(x, y)),
        (Value::Version(x), Value::Version(y)) => Ok(x.java_compare(y)),
        (Value::MaybeBool(x), Value::MaybeBool(y)) => Ok((*x as u8).cmp(&(*y as u8))),
        _ if is_comparable(a) && is_comparable(b) => Err(err(
            "not_comparable",
            format!("ClassCastException: {} cannot be compared with {}", class_name(a), class_name(b)),
        )),
        _ => Err(not_comparable(a, b)),
    }
}

fn is_comparable(v: &Value) -> bool {
    !matches!(v, Value::List(_) | Value::Array(_) | Value::Map(_) | Value::UserAgent(_) | Value::Null)
}

/// `ELSupport.compare`.
pub(crate) fn el_compare(a: &Value, b: &Value) -> Res<Ordering> {
    match (a, b) {
        (Value::String(x), Value::String(y)) => return Ok(java_string_compare(x, y)),
        (Value::Int(x, _), Value::Int(y, _)) => return Ok(x.cmp(y)),
        _ => {}
    }
    if el_equals(a, b)? {
        return Ok(Ordering::Equal);
    }
    if is_double_op(a, b) {
        return Ok(java_double_compare(to_double(a)?, to_double(b)?));
    }
    if is_long_op(a, b) {
        return Ok(to_long(a)?.cmp(&to_long(b)?));
    }
    if matches!(a, Value::String(_)) || matches!(b, Value::String(_)) {
        return Ok(java_string_compare(&to_string(a)?, &to_string(b)?));
    }
    if is_comparable(a) {
        if matches!(b, Value::Null) {
            return Ok(Ordering::Greater);
        }
        return java_compare_to(a, b);
    }
    if is_comparable(b) {
        if matches!(a, Value::Null) {
            return Ok(Ordering::Less);
        }
        return java_compare_to(b, a).map(Ordering::reverse);
    }
    Err(not_comparable(a, b))
}

/// `ELSupport.isStringFloat`.
fn is_string_float(s: &str) -> bool {
    s.contains(['.', 'e', 'E'])
}

fn is_double_arith(a: &Value, b: &Value) -> bool {
    let f = |v: &Value| match v {
        Value::Double(_) | Value::Float(_) => true,
        Value::String(s) => is_string_float(s),
        _ => false,
    };
    f(a) || f(b)
}

/// `ELArithmetic`'s `+ - * / %`.
pub(crate) fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Res<Value> {
    if matches!((a, b), (Value::Null, Value::Null)) {
        return Ok(Value::long(0));
    }
    if op == BinOp::Div || is_double_arith(a, b) {
        let (x, y) = (to_double(a)?, to_double(b)?);
        let r = match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => x / y,
            _ => x % y,
        };
        return Ok(Value::Double(r));
    }
    let (x, y) = (to_long(a)?, to_long(b)?);
    let r = match op {
        BinOp::Add => x.wrapping_add(y),
        BinOp::Sub => x.wrapping_sub(y),
        BinOp::Mul => x.wrapping_mul(y),
        _ => {
            if y == 0 {
                return Err(err("division_by_zero", "ArithmeticException: / by zero"));
            }
            x.wrapping_rem(y)
        }
    };
    Ok(Value::long(r))
}

/// `AstNegative`.
pub(crate) fn negate(v: &Value) -> Res<Value> {
    Ok(match v {
        Value::Null => Value::long(0),
        Value::String(s) => {
            if is_string_float(s) {
                let d = crate::java::parse_double(s).map_err(|_| coercion(v, "java.lang.Double"))?;
                Value::Double(-d)
            } else {
                let n = crate::java::parse_long(s).map_err(|_| coercion(v, "java.lang.Long"))?;
                Value::long(n.wrapping_neg())
            }
        }
        Value::Int(n, kind) => {
            let negated = match kind {
                IntKind::Byte => i64::from((*n as i8).wrapping_neg()),
                IntKind::Short => i64::from((*n as i16).wrapping_neg()),
                IntKind::Integer => i64::from((*n as i32).wrapping_neg()),
                IntKind::Long => n.wrapping_neg(),
            };
            Value::Int(negated, *kind)
        }
        Value::Float(f) => Value::Float(-f),
        Value::Double(d) => Value::Double(-d),
        Value::Char(c) => Value::long(-char_number(*c)),
        other => return Err(coercion(other, "java.lang.Long")),
    })
}

/// `AstEmpty`.
pub(crate) fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::List(items) | Value::Array(items) => items.is_empty(),
        Value::Map(map) => map.is_empty(),
        _ => false,
    }
}

/// A value found inside another: a reference into it or a new value.
pub(crate) enum Got<'v> {
    Ref(&'v Value),
    New(Value),
}

fn lift<'a>(base: Cow<'a, Value>, f: impl for<'v> FnOnce(&'v Value) -> Res<Got<'v>>) -> Res<Cow<'a, Value>> {
    match base {
        Cow::Borrowed(b) => Ok(match f(b)? {
            Got::Ref(r) => Cow::Borrowed(r),
            Got::New(v) => Cow::Owned(v),
        }),
        Cow::Owned(b) => Ok(Cow::Owned(match f(&b)? {
            Got::Ref(r) => r.clone(),
            Got::New(v) => v,
        })),
    }
}

/// `ListELResolver.coerce`: the index as an int.
fn list_index(key: &Value) -> Res<i64> {
    match key {
        Value::Int(n, _) => Ok(i64::from(*n as i32)),
        Value::Float(f) => Ok(i64::from(*f as i32)),
        Value::Double(d) => Ok(i64::from(*d as i32)),
        Value::Char(c) => Ok(i64::from(u32::from(*c))),
        Value::Bool(b) => Ok(i64::from(*b)),
        Value::String(s) => crate::java::parse_int(s)
            .map(i64::from)
            .map_err(|_| err("coercion_error", format!("NumberFormatException: For input string: \"{}\"", preview_text(s)))),
        other => Err(err("coercion_error", format!("cannot use {} as a list index", class_name(other)))),
    }
}

/// `a.b` and `a[b]` through the Array, List, Map and Bean resolvers. `base` is not null.
fn property<'v>(base: &'v Value, key: &Value) -> Res<Got<'v>> {
    match base {
        Value::Map(map) => Ok(match key {
            Value::String(k) => map.get(&**k).map_or(Got::New(Value::Null), Got::Ref),
            _ => Got::New(Value::Null),
        }),
        Value::List(items) | Value::Array(items) => {
            let i = list_index(key)?;
            Ok(usize::try_from(i).ok().and_then(|i| items.get(i)).map_or(Got::New(Value::Null), Got::Ref))
        }
        Value::UserAgent(ua) => {
            let name = to_string(key)?;
            ua.property(&name).map(|p| Got::New(Value::from(p))).ok_or_else(|| property_not_found(base, key))
        }
        Value::String(s) if matches!(key, Value::String(k) if &**k == "empty") => Ok(Got::New(Value::Bool(s.is_empty()))),
        other => Err(property_not_found(other, key)),
    }
}

fn property_not_found(base: &Value, key: &Value) -> RuleError {
    let name = if matches!(key, Value::Null) { String::new() } else { preview(key) };
    err("property_not_found", format!("property '{name}' not found on type {}", class_name(base)))
}

/// The last step of a rule that ends in `a.b` or `a[b]`, as `RuleEvaluator.checkRuleIsBooleanType`
/// sees it before evaluating: the base must not be null (EL's "Target Unreachable"); a map's
/// value must exist and be a Boolean ("Received nested value which does not exist in context
/// map"); a list's or an array's element is typed `Object` or `String`, never boolean. `None`
/// for any other base, which the caller evaluates the usual way.
pub(crate) fn top_level_index(base: &Node, key: &Node, env: &EvalEnv<'_>) -> Res<Option<bool>> {
    let base = eval(base, env)?;
    let key = eval(key, env)?;
    env.budget.take(1 + shallow_steps(&key))?;
    match &*base {
        Value::Null => {
            let name = if matches!(*key, Value::Null) { String::new() } else { preview(&key) };
            Err(err("property_not_found", format!("Target Unreachable: the value before '{name}' is null")))
        }
        Value::Map(map) => {
            let found = match &*key {
                Value::String(k) => map.get(&**k),
                _ => None,
            };
            match found {
                Some(Value::Bool(b)) => Ok(Some(*b)),
                None | Some(Value::Null) => Err(err(
                    "missing_map_key",
                    format!("Received nested value which does not exist in context map: value {}", preview(&key)),
                )),
                Some(other) => Err(err(
                    "not_boolean",
                    format!("Received non-boolean return value: class {} (a map's value)", class_name(other)),
                )),
            }
        }
        Value::List(items) | Value::Array(items) => {
            let i = list_index(&key)?;
            if usize::try_from(i).ok().and_then(|i| items.get(i)).is_none() {
                return Err(err("index_out_of_bounds", format!("index {i} is out of bounds for length {}", items.len())));
            }
            let class = if matches!(&*base, Value::List(_)) { "java.lang.Object" } else { "java.lang.String" };
            Err(err("not_boolean", format!("Received non-boolean return value: class {class} (an element's declared type)")))
        }
        _ => Ok(None),
    }
}

/// A rule whose last step is a method call never evaluates in Proctor: the type check looks the
/// method's name up as a property of its receiver (Tomcat 7's `AstValue.getType` ignores the
/// arguments). A bean (a String, a UserAgent, ...) has no such property, an EL exception that an
/// uninstantiated variable excuses at load; a list or an array cannot take a name as an index
/// and a map has no value reference, which nothing excuses.
pub(crate) fn top_level_method(base: &Node, name: &str, env: &EvalEnv<'_>) -> RuleError {
    let base = match eval(base, env) {
        Ok(base) => base,
        Err(e) => return e,
    };
    match &*base {
        Value::Null => err("property_not_found", format!("Target Unreachable: the value before '{name}()' is null")),
        Value::List(_) | Value::Array(_) | Value::Map(_) => err(
            "top_level_method",
            format!("a rule cannot end in a method call on a {}: its type cannot be checked ('{name}')", class_name(&base)),
        ),
        other => err(
            "property_not_found",
            format!("a rule cannot end in a method call: property '{name}' not found on type {}", class_name(other)),
        ),
    }
}

/// `a.b` or `a.m()` with a null `a`: null when `a` is itself a step (`x.y.z` with `x.y` null), an
/// error when `a` is where the chain starts (Tomcat 7's `AstValue.getValue` on a null base).
fn null_base(base: &Node, what: &str) -> Res<Cow<'static, Value>> {
    match base {
        Node::Index(..) | Node::Method(..) | Node::MatchesMethod(..) => Ok(Cow::Owned(Value::Null)),
        _ => Err(err("property_not_found", format!("ELResolver did not handle type: null with property of '{what}'"))),
    }
}

/// Evaluates a node, one step of the budget for the node and more for what it reads.
pub(crate) fn eval<'a>(node: &'a Node, env: &EvalEnv<'a>) -> Res<Cow<'a, Value>> {
    let budget = &env.budget;
    budget.take(NODE_STEPS)?;
    match node {
        Node::Const(v) => Ok(Cow::Borrowed(v)),
        Node::Slot(slot, name) => match env.context.get(*slot) {
            Some(Some(v)) => Ok(Cow::Borrowed(v)),
            _ => Err(err(
                "missing_variable",
                format!("context variable '{name}' is missing from the request"),
            )),
        },
        Node::MissingUnit => Ok(Cow::Owned(Value::Bool(env.missing_experimental_unit))),
        Node::Unary(op, operand) => {
            let v = eval(operand, env)?;
            Ok(Cow::Owned(match op {
                UnOp::Not => Value::Bool(!to_bool(&v)?),
                UnOp::Empty => Value::Bool(is_empty(&v)),
                UnOp::Neg => {
                    budget.take(shallow_steps(&v))?;
                    negate(&v)?
                }
            }))
        }
        Node::Binary(op, a, b) => eval_binary(*op, a, b, env),
        Node::Cond(c, yes, no) => {
            if to_bool(&*eval(c, env)?)? {
                eval(yes, env)
            } else {
                eval(no, env)
            }
        }
        Node::Index(base_node, key) => {
            let base = eval(base_node, env)?;
            if matches!(*base, Value::Null) {
                return null_base(base_node, "a property");
            }
            let key = eval(key, env)?;
            if matches!(*key, Value::Null) {
                return Ok(Cow::Owned(Value::Null));
            }
            budget.take(shallow_steps(&key))?;
            lift(base, |b| property(b, &key))
        }
        Node::Method(base_node, name, args) => {
            let base = eval(base_node, env)?;
            if matches!(*base, Value::Null) {
                return null_base(base_node, name);
            }
            let mut values = Vec::with_capacity(args.len());
            for arg in args {
                values.push(eval(arg, env)?);
            }
            lift(base, |b| functions::call_method(b, name, &values, budget))
        }
        Node::Call(func, args) => functions::call(*func, args, env),
        Node::Matches(value, regex) => {
            let v = eval(value, env)?;
            Ok(Cow::Owned(Value::Bool(regex.matches(&to_string(&v)?, budget)?)))
        }
        Node::MatchesMethod(base_node, regex) => {
            let base = eval(base_node, env)?;
            match (&*base, &**regex) {
                (Value::Null, _) => null_base(base_node, "matches"),
                (Value::String(s), Ok(regex)) => Ok(Cow::Owned(Value::Bool(regex.matches(s, budget)?))),
                (Value::String(_), Err(reason)) => Err(functions::invalid_regex(reason)),
                (other, _) => Err(functions::no_method(other, "matches", 1)),
            }
        }
    }
}

fn eval_binary<'a>(op: BinOp, a: &'a Node, b: &'a Node, env: &EvalEnv<'a>) -> Res<Cow<'a, Value>> {
    let budget: &Budget = &env.budget;
    let result = match op {
        BinOp::And => to_bool(&*eval(a, env)?)? && to_bool(&*eval(b, env)?)?,
        BinOp::Or => to_bool(&*eval(a, env)?)? || to_bool(&*eval(b, env)?)?,
        BinOp::Eq | BinOp::Ne => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            budget.take(comparison_steps(&x, &y, false))?;
            el_equals(&x, &y)? == (op == BinOp::Eq)
        }
        BinOp::Lt | BinOp::Gt => {
            // AstLessThan/AstGreaterThan: a null left side is false before the right is evaluated.
            let x = eval(a, env)?;
            if matches!(*x, Value::Null) {
                return Ok(Cow::Owned(Value::Bool(false)));
            }
            let y = eval(b, env)?;
            if matches!(*y, Value::Null) {
                return Ok(Cow::Owned(Value::Bool(false)));
            }
            budget.take(comparison_steps(&x, &y, true))?;
            let ord = el_compare(&x, &y)?;
            if op == BinOp::Lt {
                ord == Ordering::Less
            } else {
                ord == Ordering::Greater
            }
        }
        BinOp::Le | BinOp::Ge => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            match (&*x, &*y) {
                (Value::Null, Value::Null) => true,
                (Value::Null, _) | (_, Value::Null) => false,
                _ => {
                    budget.take(comparison_steps(&x, &y, true))?;
                    let ord = el_compare(&x, &y)?;
                    if op == BinOp::Le {
                        ord != Ordering::Greater
                    } else {
                        ord != Ordering::Less
                    }
                }
            }
        }
        BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
            let (x, y) = (eval(a, env)?, eval(b, env)?);
            budget.take(shallow_steps(&x) + shallow_steps(&y))?;
            return Ok(Cow::Owned(arithmetic(op, &x, &y)?));
        }
    };
    Ok(Cow::Owned(Value::Bool(result)))
}
