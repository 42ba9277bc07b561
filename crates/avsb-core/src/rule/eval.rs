//! Evaluation of compiled rules, with EL 2.2's coercions (Tomcat 7 `ELSupport`, `ELArithmetic`).
//!
//! Values are borrowed from the rule and the request wherever possible (`Cow`), so comparing a
//! context string with a literal allocates nothing.

use std::borrow::Cow;
use std::cmp::Ordering;

use regex::Regex;

use super::functions::{self, Func};
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
    Matches(Box<Node>, Box<Regex>),
}

pub(crate) fn err(code: &'static str, message: impl Into<String>) -> RuleError {
    RuleError { code, message: message.into() }
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
        Value::String(s) => format!("'{s}'"),
        other => java_to_string(other).into_owned(),
    };
    err("coercion_error", format!("cannot convert {shown} of type {} to {target}", class_name(v)))
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

/// `coerceToString`: null is `""`, an enum its name, anything else `toString()`.
pub(crate) fn to_string(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed(""),
        other => java_to_string(other),
    }
}

/// Java's `String.valueOf(Object)`: like `toString()`, with null as `"null"`.
pub(crate) fn java_to_string(v: &Value) -> Cow<'_, str> {
    match v {
        Value::Null => Cow::Borrowed("null"),
        Value::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
        Value::Int(n, _) => Cow::Owned(n.to_string()),
        Value::Float(f) => Cow::Owned(crate::java::float_to_string(*f)),
        Value::Double(d) => Cow::Owned(crate::java::double_to_string(*d)),
        Value::Char(c) => Cow::Owned(c.to_string()),
        Value::String(s) => Cow::Borrowed(s),
        Value::List(items) => {
            let inner: Vec<Cow<'_, str>> = items.iter().map(java_to_string).collect();
            Cow::Owned(format!("[{}]", inner.join(", ")))
        }
        // Java prints an array's identity hash, which nobody can depend on.
        Value::Array(_) => Cow::Borrowed("[Ljava.lang.String;@0"),
        Value::Map(map) => {
            let inner: Vec<String> = map.iter().map(|(k, v)| format!("{k}={}", java_to_string(v))).collect();
            Cow::Owned(format!("{{{}}}", inner.join(", ")))
        }
        Value::Version(v) => Cow::Owned(v.to_string()),
        Value::MaybeBool(m) => Cow::Borrowed(m.name()),
        Value::UserAgent(ua) => Cow::Borrowed(ua.user_agent_string()),
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
        return Ok(to_string(a) == to_string(b));
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
        return Ok(java_string_compare(&to_string(a), &to_string(b)));
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
            .map_err(|_| err("coercion_error", format!("NumberFormatException: For input string: \"{s}\""))),
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
            let name = to_string(key);
            ua.property(&name).map(|p| Got::New(Value::from(p))).ok_or_else(|| property_not_found(base, &name))
        }
        Value::String(s) if matches!(key, Value::String(k) if &**k == "empty") => Ok(Got::New(Value::Bool(s.is_empty()))),
        other => Err(property_not_found(other, &to_string(key))),
    }
}

fn property_not_found(base: &Value, name: &str) -> RuleError {
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
    match &*base {
        Value::Null => Err(err("property_not_found", format!("Target Unreachable: the value before '{}' is null", to_string(&key)))),
        Value::Map(map) => {
            let found = match &*key {
                Value::String(k) => map.get(&**k),
                _ => None,
            };
            match found {
                Some(Value::Bool(b)) => Ok(Some(*b)),
                None | Some(Value::Null) => Err(err(
                    "missing_map_key",
                    format!("Received nested value which does not exist in context map: value {}", java_to_string(&key)),
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
        Node::Index(..) | Node::Method(..) => Ok(Cow::Owned(Value::Null)),
        _ => Err(err("property_not_found", format!("ELResolver did not handle type: null with property of '{what}'"))),
    }
}

/// Evaluates a node.
pub(crate) fn eval<'a>(node: &'a Node, env: &EvalEnv<'a>) -> Res<Cow<'a, Value>> {
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
                UnOp::Neg => negate(&v)?,
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
            lift(base, |b| functions::call_method(b, name, &values))
        }
        Node::Call(func, args) => functions::call(*func, args, env),
        Node::Matches(value, regex) => {
            let v = eval(value, env)?;
            Ok(Cow::Owned(Value::Bool(regex.is_match(&to_string(&v)))))
        }
    }
}

fn eval_binary<'a>(op: BinOp, a: &'a Node, b: &'a Node, env: &EvalEnv<'a>) -> Res<Cow<'a, Value>> {
    let result = match op {
        BinOp::And => to_bool(&*eval(a, env)?)? && to_bool(&*eval(b, env)?)?,
        BinOp::Or => to_bool(&*eval(a, env)?)? || to_bool(&*eval(b, env)?)?,
        BinOp::Eq => el_equals(&*eval(a, env)?, &*eval(b, env)?)?,
        BinOp::Ne => !el_equals(&*eval(a, env)?, &*eval(b, env)?)?,
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
            return Ok(Cow::Owned(arithmetic(op, &*eval(a, env)?, &*eval(b, env)?)?));
        }
    };
    Ok(Cow::Owned(Value::Bool(result)))
}
