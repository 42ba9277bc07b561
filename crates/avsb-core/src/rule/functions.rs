//! The function libraries (`proctor:`/`indeed:` = `ProctorRuleFunctions`, `fn:` =
//! `LegacyTaglibFunctions`), bean method calls, and Java regular expressions on the `regex` crate.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use regex::{Regex, RegexBuilder};

use super::budget::{
    check_string, Budget, CASE_MAPPING_STEPS_PER_BYTE, CONTAINS_STEPS_PER_ITEM, DEEP_STEPS_PER_BYTE, IGNORE_CASE_STEPS_PER_BYTE, UTF16_STEPS_PER_BYTE,
};
use super::eval::{
    class_name, deep_steps, err, eval, java_compare_to, java_equals, shallow_steps, to_bool, to_int, to_maybe_bool,
    to_string, Got, Node, Res,
};
use crate::version::{MatchPrecision, ReleaseVersion};
use super::env::{EvalEnv, RuleError};
use crate::value::{IntKind, MaybeBool, Value};

/// A library function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    Contains,
    Matches,
    Now,
    Version,
    InRange,
    VersionInRange,
    MaybeAnd,
    MaybeOr,
    MaybeNot,
    ToMaybeBool,
    ToUpperCase,
    ToLowerCase,
    IndexOf,
    FnContains,
    ContainsIgnoreCase,
    StartsWith,
    EndsWith,
    Substring,
    SubstringAfter,
    SubstringBefore,
    Trim,
    Replace,
    Split,
    Length,
    Join,
}

/// Looks a function up by namespace and name.
pub(crate) fn lookup(ns: &str, name: &str) -> Option<Func> {
    use Func::*;
    match ns {
        "proctor" | "indeed" => Some(match name {
            "contains" => Contains,
            "matches" => Matches,
            "now" => Now,
            "version" => Version,
            "inRange" => InRange,
            "versionInRange" => VersionInRange,
            "maybeAnd" => MaybeAnd,
            "maybeOr" => MaybeOr,
            "maybeNot" => MaybeNot,
            "toMaybeBool" => ToMaybeBool,
            _ => return None,
        }),
        "fn" => Some(match name {
            "toUpperCase" => ToUpperCase,
            "toLowerCase" => ToLowerCase,
            "indexOf" => IndexOf,
            "contains" => FnContains,
            "containsIgnoreCase" => ContainsIgnoreCase,
            "startsWith" => StartsWith,
            "endsWith" => EndsWith,
            "substring" => Substring,
            "substringAfter" => SubstringAfter,
            "substringBefore" => SubstringBefore,
            "trim" => Trim,
            "replace" => Replace,
            "split" => Split,
            "length" => Length,
            "join" => Join,
            _ => return None,
        }),
        _ => None,
    }
}

impl Func {
    /// The number of parameters, or `None` for the variadic `maybeAnd`/`maybeOr`.
    pub(crate) fn arity(self) -> Option<usize> {
        use Func::*;
        Some(match self {
            Now => 0,
            Version | MaybeNot | ToMaybeBool | ToUpperCase | ToLowerCase | Trim | Length => 1,
            Contains | Matches | IndexOf | FnContains | ContainsIgnoreCase | StartsWith | EndsWith
            | SubstringAfter | SubstringBefore | Split | Join | MaybeAnd | MaybeOr => 2,
            InRange | VersionInRange | Substring | Replace => 3,
        })
    }

    /// The Java return type, for the static boolean check: `None` for `boolean`.
    pub(crate) fn return_class(self) -> Option<&'static str> {
        use Func::*;
        match self {
            Contains | Matches | InRange | VersionInRange | FnContains | ContainsIgnoreCase | StartsWith
            | EndsWith => None,
            Now => Some("long"),
            Version => Some("com.indeed.util.core.ReleaseVersion"),
            MaybeAnd | MaybeOr | MaybeNot | ToMaybeBool => Some("MaybeBool"),
            IndexOf | Length => Some("int"),
            Split => Some("java.lang.String[]"),
            ToUpperCase | ToLowerCase | Substring | SubstringAfter | SubstringBefore | Trim | Replace | Join => {
                Some("java.lang.String")
            }
        }
    }

    /// Whether the result depends only on the arguments (so constant calls can be folded).
    pub(crate) fn is_pure(self) -> bool {
        self != Func::Now
    }
}

fn null_pointer(what: &str) -> RuleError {
    err("null_argument", format!("NullPointerException: {what} is null"))
}

/// A `Collection` parameter: a List, or null (`""` coerces to null too).
fn collection<'v>(v: &'v Value, func: &str) -> Res<&'v [Value]> {
    match v {
        Value::List(items) => Ok(items),
        Value::Null => Err(null_pointer(&format!("the collection passed to {func}"))),
        Value::String(s) if s.is_empty() => Err(null_pointer(&format!("the collection passed to {func}"))),
        other => Err(err(
            "coercion_error",
            format!("cannot convert {} to java.util.Collection in {func}", class_name(other)),
        )),
    }
}

/// A `Comparable` parameter (`inRange`'s erased `T`): anything comparable, or null.
fn comparable(v: &Value) -> Res<&Value> {
    match v {
        Value::List(_) | Value::Array(_) | Value::Map(_) | Value::UserAgent(_) => Err(err(
            "coercion_error",
            format!("cannot convert {} to java.lang.Comparable", class_name(v)),
        )),
        other => Ok(other),
    }
}

fn is_integral(v: &Value) -> Option<i64> {
    match v {
        Value::Int(n, _) => Some(*n),
        _ => None,
    }
}

/// `ProctorRuleFunctions.contains`.
fn contains(items: &[Value], x: &Value) -> bool {
    if matches!(x, Value::Null) {
        return false;
    }
    if let Some(n) = is_integral(x) {
        return items.iter().any(|e| is_integral(e) == Some(n));
    }
    items.iter().any(|e| java_equals(e, x))
}

/// `ProctorRuleFunctions.inRange`.
fn in_range(value: &Value, lower: &Value, upper: &Value) -> Res<bool> {
    if matches!(value, Value::Null) {
        return Err(null_pointer("the value passed to inRange"));
    }
    Ok(java_compare_to(value, lower)? != Ordering::Less && java_compare_to(value, upper)? == Ordering::Less)
}

fn version(text: &str) -> Res<ReleaseVersion> {
    ReleaseVersion::parse(text).map_err(|e| err("invalid_version", format!("IllegalArgumentException: {e}")))
}

/// A `ReleaseVersion` parameter: a version, or null (`""` coerces to null too).
fn version_param(v: &Value) -> Res<Option<ReleaseVersion>> {
    match v {
        Value::Version(v) => Ok(Some(*v)),
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        other => Err(err(
            "coercion_error",
            format!("cannot convert {} to com.indeed.util.core.ReleaseVersion", class_name(other)),
        )),
    }
}

fn maybe_param(v: &Value) -> Res<MaybeBool> {
    to_maybe_bool(v)?.ok_or_else(|| null_pointer("a MaybeBool argument"))
}

fn utf16_len(s: &str) -> usize {
    if s.is_ascii() {
        s.len()
    } else {
        s.encode_utf16().count()
    }
}

/// Java's `String.indexOf(String)`, as a UTF-16 index.
fn java_index_of(haystack: &str, needle: &str) -> i64 {
    match haystack.find(needle) {
        Some(byte) => utf16_len(&haystack[..byte]) as i64,
        None => -1,
    }
}

/// Java's `substring(begin, end)` over UTF-16 units; the caller checks the bounds.
fn utf16_substring(s: &str, begin: usize, end: usize) -> String {
    if s.is_ascii() {
        return s[begin..end].to_string();
    }
    let units: Vec<u16> = s.encode_utf16().collect();
    String::from_utf16_lossy(&units[begin..end])
}

/// Java's `String.trim()`: strips characters up to `' '` at both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn string_value(s: impl Into<Arc<str>>) -> Value {
    Value::String(s.into())
}

fn int_value(n: i64) -> Value {
    Value::Int(n, IntKind::Integer)
}

/// Calls a library function: evaluates the arguments (EL evaluates all of them first), then
/// applies the function. The application is kept out of the recursion so its large frame is not
/// repeated on the stack for nested calls.
pub(crate) fn call<'a>(func: Func, args: &'a [Node], env: &EvalEnv<'a>) -> Res<Cow<'a, Value>> {
    const INLINE: usize = 3;
    if args.len() <= INLINE {
        let mut values: [Cow<'a, Value>; INLINE] = [const { Cow::Owned(Value::Null) }; INLINE];
        for (slot, node) in values.iter_mut().zip(args) {
            *slot = eval(node, env)?;
        }
        apply(func, &values[..args.len()], env).map(Cow::Owned)
    } else {
        let values = args.iter().map(|node| eval(node, env)).collect::<Res<Vec<_>>>()?;
        apply(func, &values, env).map(Cow::Owned)
    }
}

/// A function's name as a rule writes it, for messages.
fn shown_name(func: Func) -> &'static str {
    use Func::*;
    match func {
        Contains => "proctor:contains",
        Matches => "proctor:matches",
        Now => "proctor:now",
        Version => "proctor:version",
        InRange => "proctor:inRange",
        VersionInRange => "proctor:versionInRange",
        MaybeAnd => "proctor:maybeAnd",
        MaybeOr => "proctor:maybeOr",
        MaybeNot => "proctor:maybeNot",
        ToMaybeBool => "proctor:toMaybeBool",
        ToUpperCase => "fn:toUpperCase",
        ToLowerCase => "fn:toLowerCase",
        IndexOf => "fn:indexOf",
        FnContains => "fn:contains",
        ContainsIgnoreCase => "fn:containsIgnoreCase",
        StartsWith => "fn:startsWith",
        EndsWith => "fn:endsWith",
        Substring => "fn:substring",
        SubstringAfter => "fn:substringAfter",
        SubstringBefore => "fn:substringBefore",
        Trim => "fn:trim",
        Replace => "fn:replace",
        Split => "fn:split",
        Length => "fn:length",
        Join => "fn:join",
    }
}

/// Java's case mapping (`toUpperCase`, `toLowerCase`): a character can map to three, so the
/// text is checked first and the result after.
fn change_case(what: &str, s: &str, upper: bool, budget: &Budget) -> Res<Value> {
    check_string(what, s.len())?;
    budget.take(weighted(s, CASE_MAPPING_STEPS_PER_BYTE))?;
    let changed = if upper { s.to_uppercase() } else { s.to_lowercase() };
    budget.make_string(what, changed.len())?;
    Ok(string_value(changed))
}

/// The steps of reading `text` with an operation that costs `per_byte` steps a byte on text
/// beyond ASCII (whose fast paths cost one).
pub(crate) fn weighted(text: &str, per_byte: u64) -> u64 {
    let bytes = text.len() as u64;
    if text.is_ascii() {
        bytes
    } else {
        per_byte * bytes
    }
}

/// Makes a string of `text` (a part of something already read), counting it.
fn made(what: &str, text: &str, budget: &Budget) -> Res<Value> {
    budget.make_string(what, text.len())?;
    Ok(string_value(text))
}

#[inline(never)]
fn apply(func: Func, args: &[Cow<'_, Value>], env: &EvalEnv<'_>) -> Res<Value> {
    use Func::*;
    let budget = &env.budget;
    let null = Value::Null;
    let arg = |i: usize| -> Res<&Value> { Ok(args.get(i).map_or(&null, |v| &**v)) };
    // A String parameter: the argument's text, its bytes counted as read.
    let text = |i: usize| -> Res<Cow<'_, str>> {
        let t = to_string(arg(i)?)?;
        budget.take(t.len() as u64)?;
        Ok(t)
    };
    let bool_result = |b: bool| Ok(Value::Bool(b));
    let what = shown_name(func);
    match func {
        Contains => {
            let c = arg(0)?;
            let x = arg(1)?;
            if matches!(*x, Value::Null) {
                return bool_result(false);
            }
            let items = collection(c, what)?;
            budget.take(CONTAINS_STEPS_PER_ITEM * items.len() as u64 + shallow_steps(x))?;
            bool_result(contains(items, x))
        }
        Matches => {
            let value = arg(0)?;
            let pattern = text(1)?;
            let regex = dynamic_regex(&pattern, budget)?;
            bool_result(regex.matches(&to_string(value)?, budget)?)
        }
        Now => match env.now_millis {
            Some(now) => Ok(Value::long(now)),
            None => Err(err("no_clock", "proctor:now() needs the request time")),
        },
        Version => Ok(Value::Version(version(&text(0)?)?)),
        InRange => {
            let (v, lo, hi) = (arg(0)?, arg(1)?, arg(2)?);
            budget.take(shallow_steps(v) + shallow_steps(lo) + shallow_steps(hi))?;
            bool_result(in_range(comparable(v)?, comparable(lo)?, comparable(hi)?)?)
        }
        VersionInRange => {
            let v = version_param(arg(0)?)?;
            let start = version(&text(1)?)?;
            let end = version(&text(2)?)?;
            if end.precision() != MatchPrecision::Build {
                return Err(err("wildcard_upper_bound", "IllegalStateException: Cannot use wildcard as version range upper bound"));
            }
            let v = v.ok_or_else(|| null_pointer("the version passed to versionInRange"))?;
            bool_result(v.java_compare(&start) != Ordering::Less && v.java_compare(&end) == Ordering::Less)
        }
        MaybeAnd | MaybeOr => {
            let (dominant, other) = if func == MaybeAnd {
                (MaybeBool::False, MaybeBool::True)
            } else {
                (MaybeBool::True, MaybeBool::False)
            };
            let mut unknown = false;
            for i in 0..args.len() {
                match maybe_param(arg(i)?)? {
                    m if m == dominant => return Ok(Value::MaybeBool(dominant)),
                    MaybeBool::Unknown => unknown = true,
                    _ => {}
                }
            }
            Ok(Value::MaybeBool(if unknown { MaybeBool::Unknown } else { other }))
        }
        MaybeNot => Ok(Value::MaybeBool(match maybe_param(arg(0)?)? {
            MaybeBool::True => MaybeBool::False,
            MaybeBool::False => MaybeBool::True,
            MaybeBool::Unknown => MaybeBool::Unknown,
        })),
        ToMaybeBool => Ok(Value::MaybeBool(if to_bool(arg(0)?)? {
            MaybeBool::True
        } else {
            MaybeBool::False
        })),
        ToUpperCase => change_case(what, &to_string(arg(0)?)?, true, budget),
        ToLowerCase => change_case(what, &to_string(arg(0)?)?, false, budget),
        IndexOf => {
            let (s, sub) = (text(0)?, text(1)?);
            Ok(int_value(java_index_of(&s, &sub)))
        }
        FnContains => {
            let (s, sub) = (text(0)?, text(1)?);
            bool_result(s.contains(&*sub))
        }
        ContainsIgnoreCase => {
            let (s, sub) = (to_string(arg(0)?)?, to_string(arg(1)?)?);
            let (s, sub) = (change_case(what, &s, true, budget)?, change_case(what, &sub, true, budget)?);
            let (Value::String(s), Value::String(sub)) = (&s, &sub) else { return bool_result(false) };
            bool_result(s.contains(&**sub))
        }
        StartsWith => {
            let (s, p) = (text(0)?, text(1)?);
            bool_result(s.starts_with(&*p))
        }
        EndsWith => {
            let (s, p) = (text(0)?, text(1)?);
            bool_result(s.ends_with(&*p))
        }
        Substring => {
            let s = text(0)?;
            budget.take(weighted(&s, UTF16_STEPS_PER_BYTE))?;
            let (begin, end) = (to_int(arg(1)?)?, to_int(arg(2)?)?);
            let len = utf16_len(&s) as i64;
            let begin = i64::from(begin).max(0);
            let end = if end < 0 || i64::from(end) > len { len } else { i64::from(end) };
            if end < begin {
                return Ok(string_value(""));
            }
            made(what, &utf16_substring(&s, begin as usize, end as usize), budget)
        }
        SubstringAfter => {
            let (s, sub) = (text(0)?, text(1)?);
            made(what, match s.find(&*sub) {
                Some(i) => &s[i + sub.len()..],
                None => "",
            }, budget)
        }
        SubstringBefore => {
            let (s, sub) = (text(0)?, text(1)?);
            made(what, match s.find(&*sub) {
                Some(i) => &s[..i],
                None => "",
            }, budget)
        }
        Trim => made(what, java_trim(&text(0)?), budget),
        Replace => {
            let (s, before, after) = (text(0)?, text(1)?, text(2)?);
            if before.is_empty() {
                return made(what, &s, budget);
            }
            // The result's length, known before it is made: each occurrence trades `before` for
            // `after`.
            let count = s.matches(&*before).count();
            budget.take(s.len() as u64)?;
            let length = (s.len() as u128 - (count as u128) * (before.len() as u128))
                .saturating_add((count as u128).saturating_mul(after.len() as u128));
            budget.make_string(what, usize::try_from(length).unwrap_or(usize::MAX))?;
            Ok(string_value(s.replace(&*before, &after)))
        }
        Split => {
            let (s, delims) = (text(0)?, text(1)?);
            if s.is_empty() {
                return Ok(Value::Array(vec![string_value("")].into()));
            }
            // Any character of `delims` separates (`StringTokenizer`): a sorted set, so that the
            // split stays linear however many delimiters there are.
            let mut set: Vec<char> = delims.chars().collect();
            set.sort_unstable();
            set.dedup();
            let is_delim = |c: char| set.binary_search(&c).is_ok();
            let (mut items, mut bytes) = (0usize, 0usize);
            for token in s.split(is_delim).filter(|t| !t.is_empty()) {
                items += 1;
                bytes += token.len();
            }
            budget.take(weighted(&s, UTF16_STEPS_PER_BYTE))?;
            budget.make_list(what, items, bytes)?;
            let parts: Vec<Value> = s.split(is_delim).filter(|t| !t.is_empty()).map(string_value).collect();
            Ok(Value::Array(parts.into()))
        }
        Length => {
            let v = arg(0)?;
            let n = match v {
                Value::Null => 0,
                Value::String(s) => {
                    budget.take(s.len() as u64)?;
                    utf16_len(s)
                }
                Value::List(items) | Value::Array(items) => items.len(),
                Value::Map(map) => map.len(),
                other => {
                    return Err(err(
                        "bad_argument",
                        format!("fn:length does not accept {}", class_name(other)),
                    ))
                }
            };
            Ok(int_value(n as i64))
        }
        Join => {
            let (array, sep) = (arg(0)?, text(1)?);
            match array {
                Value::Null => Ok(string_value("")),
                Value::String(s) if s.is_empty() => Ok(string_value("")),
                Value::Array(items) => {
                    let mut parts: Vec<Cow<'_, str>> = Vec::with_capacity(items.len());
                    let mut length = sep.len().saturating_mul(items.len().saturating_sub(1));
                    for item in items.iter() {
                        let part = super::eval::java_to_string(item)?;
                        length = length.saturating_add(part.len());
                        check_string(what, length)?;
                        parts.push(part);
                    }
                    budget.make_string(what, length)?;
                    Ok(string_value(parts.join(&*sep)))
                }
                other => Err(err(
                    "coercion_error",
                    format!("cannot convert {} to java.lang.String[] in fn:join", class_name(other)),
                )),
            }
        }
    }
}

pub(crate) fn no_method(base: &Value, name: &str, arity: usize) -> RuleError {
    err(
        "method_not_found",
        format!("method {name} with {arity} arguments not found on type {}", class_name(base)),
    )
}

fn out_of_bounds(what: String) -> RuleError {
    err("index_out_of_bounds", what)
}

/// The error of a pattern that does not compile, as Java throws it.
pub(crate) fn invalid_regex(reason: &str) -> RuleError {
    err("invalid_regex", format!("PatternSyntaxException: {reason}"))
}

/// A bean method call (`a.b(args)`) on a non-null base.
pub(crate) fn call_method<'v>(base: &'v Value, name: &str, args: &[Cow<'_, Value>], budget: &Budget) -> Res<Got<'v>> {
    let new = |v: Value| Ok(Got::New(v));
    // A String's methods read it and their arguments; a list's `contains` reads its items, a
    // map's lookups their key; `equals` and `toString` read everything, and count it below.
    match base {
        Value::String(_) => budget.take(shallow_steps(base) + args.iter().map(|a| shallow_steps(a)).sum::<u64>())?,
        Value::List(_) if name == "contains" => budget.take(CONTAINS_STEPS_PER_ITEM * shallow_steps(base))?,
        Value::Map(_) => budget.take(args.iter().map(|a| shallow_steps(a)).sum::<u64>())?,
        _ => {}
    }
    let what = || format!("String.{name}");
    match (base, name, args) {
        (Value::String(s), "length", []) => new(int_value(utf16_len(s) as i64)),
        (Value::String(s), "isEmpty", []) => new(Value::Bool(s.is_empty())),
        (Value::String(s), "contains", [x]) => new(Value::Bool(s.contains(&*to_string(x)?))),
        (Value::String(s), "startsWith", [x]) => new(Value::Bool(s.starts_with(&*to_string(x)?))),
        (Value::String(s), "endsWith", [x]) => new(Value::Bool(s.ends_with(&*to_string(x)?))),
        (Value::String(_), "equals", [x]) => new(Value::Bool(java_equals(base, x))),
        (Value::String(s), "equalsIgnoreCase", [x]) => new(Value::Bool(match &**x {
            Value::Null => false,
            other => {
                let o = to_string(other)?;
                budget.take(weighted(s, IGNORE_CASE_STEPS_PER_BYTE) + weighted(&o, IGNORE_CASE_STEPS_PER_BYTE))?;
                s.chars().count() == o.chars().count()
                    && s.chars().zip(o.chars()).all(|(a, b)| {
                        a == b || a.to_uppercase().eq(b.to_uppercase()) || a.to_lowercase().eq(b.to_lowercase())
                    })
            }
        })),
        (Value::String(s), "toLowerCase", []) => new(change_case(&what(), s, false, budget)?),
        (Value::String(s), "toUpperCase", []) => new(change_case(&what(), s, true, budget)?),
        (Value::String(s), "trim", []) => new(made(&what(), java_trim(s), budget)?),
        (Value::String(s), "indexOf", [x]) => new(int_value(java_index_of(s, &to_string(x)?))),
        (Value::String(s), "substring", [b]) | (Value::String(s), "substring", [b, _]) => {
            budget.take(weighted(s, UTF16_STEPS_PER_BYTE))?;
            let len = utf16_len(s) as i64;
            let begin = i64::from(to_int(b)?);
            let end = match args.get(1) {
                Some(e) => i64::from(to_int(e)?),
                None => len,
            };
            if begin < 0 || end > len || begin > end {
                return Err(out_of_bounds(format!(
                    "StringIndexOutOfBoundsException: begin {begin}, end {end}, length {len}"
                )));
            }
            new(made(&what(), &utf16_substring(s, begin as usize, end as usize), budget)?)
        }
        (Value::String(s), "matches", [p]) => {
            let regex = dynamic_regex(&to_string(p)?, budget)?;
            new(Value::Bool(regex.matches(s, budget)?))
        }
        (Value::List(items), "size", []) => new(int_value(items.len() as i64)),
        (Value::List(items), "isEmpty", []) => new(Value::Bool(items.is_empty())),
        (Value::List(items), "contains", [x]) => new(Value::Bool(items.iter().any(|e| java_equals(e, x)))),
        (Value::List(items), "get", [i]) => {
            let i = i64::from(to_int(i)?);
            match usize::try_from(i).ok().and_then(|i| items.get(i)) {
                Some(v) => Ok(Got::Ref(v)),
                None => Err(out_of_bounds(format!(
                    "IndexOutOfBoundsException: Index: {i}, Size: {}",
                    items.len()
                ))),
            }
        }
        (Value::Map(map), "containsKey", [k]) => new(Value::Bool(match &**k {
            Value::String(k) => map.contains_key(&**k),
            _ => false,
        })),
        (Value::Map(map), "get", [k]) => Ok(match &**k {
            Value::String(k) => map.get(&**k).map_or(Got::New(Value::Null), Got::Ref),
            _ => Got::New(Value::Null),
        }),
        (Value::Map(map), "size", []) => new(int_value(map.len() as i64)),
        (Value::Map(map), "isEmpty", []) => new(Value::Bool(map.is_empty())),
        (Value::Version(v), "equals", [x]) => new(Value::Bool(java_equals(&Value::Version(*v), x))),
        (Value::Version(v), "compareTo", [x]) => match &**x {
            Value::Version(w) => new(int_value(v.java_compare(w) as i64)),
            other => Err(err("coercion_error", format!("cannot convert {} to ReleaseVersion", class_name(other)))),
        },
        (_, "equals", [x]) => {
            budget.take(DEEP_STEPS_PER_BYTE * (deep_steps(base) + deep_steps(x)))?;
            new(Value::Bool(java_equals(base, x)))
        }
        (_, "toString", []) => {
            budget.take(DEEP_STEPS_PER_BYTE * deep_steps(base))?;
            let text = super::eval::java_to_string(base)?;
            new(made(&format!("{}.toString", class_name(base)), &text, budget)?)
        }
        _ => Err(no_method(base, name, args.len())),
    }
}

/// A compiled Java regular expression and what matching it costs.
///
/// The `regex` crate matches with a lazy DFA, built as the text is read, in a cache of the size
/// limit's bytes; a DFA that outgrows the cache makes it give up and simulate the NFA instead,
/// tens or hundreds of times slower (it may visit every NFA state at every byte). A match is
/// therefore charged a DFA's steps when the DFA cannot give up, and the simulation's otherwise:
/// the lazy DFA cannot give up when its whole DFA fits the cache (found out for a pattern
/// written in a rule, at load), nor on a text too short to fill the cache (it builds at most one
/// state per byte). A Unicode `\b` makes the lazy DFA quit on non-ASCII text, and a pattern too
/// large for the lazy DFA has none: such patterns are always charged as simulated. The steps are
/// measured by `fuzz/calibrate` (`fuzz/README.md`).
#[derive(Debug)]
pub(crate) struct JavaRegex {
    regex: Regex,
    /// Whether any text is matched by the lazy DFA.
    dfa_always: bool,
    /// The longest text the lazy DFA certainly matches without giving up.
    dfa_text_bytes: usize,
    /// The steps per byte of simulating the NFA.
    simulated_steps_per_byte: u64,
}

impl JavaRegex {
    /// `String.matches`: whether the whole text matches, counting its cost first.
    pub(crate) fn matches(&self, text: &str, budget: &Budget) -> Res<bool> {
        budget.take((text.len() as u64 + 1).saturating_mul(self.steps_per_byte(text.len())))?;
        Ok(self.regex.is_match(text))
    }

    /// The budget steps per byte of matching a text of `bytes` bytes.
    pub(crate) fn steps_per_byte(&self, bytes: usize) -> u64 {
        if self.dfa_always || bytes <= self.dfa_text_bytes {
            DFA_STEPS_PER_BYTE
        } else {
            self.simulated_steps_per_byte
        }
    }

    /// Whether the whole text matches, without the budget.
    #[cfg(test)]
    pub(crate) fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }
}

/// The steps per byte of matching with a DFA: a transition, and now and then a new state.
const DFA_STEPS_PER_BYTE: u64 = 2;

/// The steps per byte and per NFA state of simulating the NFA (the `regex` crate's PikeVM or
/// bounded backtracker), which visits every live state at every byte.
const NFA_STEPS_PER_STATE_BYTE: u64 = 8;

/// How a pattern's matches are charged (see [`JavaRegex`]); `explore`: find out whether the
/// whole DFA fits, worth its cost only for a pattern compiled once.
fn costs(whole: &str, limit: usize, explore: bool) -> (bool, usize, u64) {
    use regex_automata::hybrid::dfa::DFA;
    use regex_automata::nfa::thompson;
    let Ok(nfa) = thompson::Compiler::new().configure(thompson::Config::new().nfa_size_limit(Some(limit))).build(whole) else {
        return (false, 0, NFA_STEPS_PER_STATE_BYTE * (limit as u64 / 16));
    };
    let states = nfa.states().len().max(1);
    let simulated = NFA_STEPS_PER_STATE_BYTE * states as u64;
    // A lazy DFA state: its transitions (one 4-byte id per byte class, rounded up to a power of
    // two) and its set of NFA states (up to 5 bytes each), with the cache's bookkeeping; half the
    // cache is left for its fixed parts.
    let stride = nfa.byte_classes().alphabet_len().next_power_of_two();
    let state_bytes = 4 * stride + 5 * states + 128;
    let dfa_text_bytes = (limit / 2 / state_bytes).saturating_sub(4);
    let Ok(dfa) = DFA::builder().configure(DFA::config().cache_capacity(limit)).build_from_nfa(nfa) else {
        return (false, 0, simulated);
    };
    let transitions = DFA_EXPLORATION_TRANSITIONS.min(DFA_EXPLORATION_WORK / states);
    (explore && whole_dfa_fits(&dfa, transitions), dfa_text_bytes, simulated)
}

/// The most transitions, and NFA-state visits, spent at load finding out whether a pattern's
/// whole DFA is small: a few hundred microseconds at most (`fuzz/calibrate`); the DFAs of the
/// patterns real rules use (a few words or version numbers) are well within.
const DFA_EXPLORATION_TRANSITIONS: usize = 2048;
const DFA_EXPLORATION_WORK: usize = 1 << 18;

/// Whether every state of the lazy DFA reachable from its start (as `is_match` starts) is
/// built, in at most `transitions` transitions, without clearing its cache and without a quit
/// state.
fn whole_dfa_fits(dfa: &regex_automata::hybrid::dfa::DFA, transitions: usize) -> bool {
    use regex_automata::{Anchored, Input};
    let mut cache = dfa.create_cache();
    let Ok(start) = dfa.start_state_forward(&mut cache, &Input::new("").anchored(Anchored::Yes)) else { return false };
    let representatives: Vec<u8> = dfa.byte_classes().representatives(..).filter_map(|unit| unit.as_u8()).collect();
    let mut seen = std::collections::HashSet::from([start]);
    let mut todo = vec![start];
    let mut left = transitions;
    while let Some(state) = todo.pop() {
        if state.is_dead() {
            continue;
        }
        for &byte in &representatives {
            if left == 0 {
                return false;
            }
            left -= 1;
            let Ok(next) = dfa.next_state(&mut cache, state, byte) else { return false };
            if next.is_quit() || cache.clear_count() > 0 {
                return false;
            }
            if seen.insert(next) {
                todo.push(next);
            }
        }
        match dfa.next_eoi_state(&mut cache, state) {
            Ok(eoi) if !eoi.is_quit() && cache.clear_count() == 0 => {}
            _ => return false,
        }
    }
    true
}

/// The most compiled regex program a pattern written in a rule may need (bytes), and its lazy
/// DFA's cache, so no pattern can exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a Java regular expression for a whole-string match (`String.matches`): a pattern
/// written in the rule, once, when the matrix loads.
///
/// Java's syntax is translated where it differs from the `regex` crate's: `\d \w \s` and their
/// negations are ASCII as in Java, `.` excludes Java's line terminators, and `\Q...\E` quotes.
/// Backreferences, lookaround and possessive quantifiers have no linear-time equivalent and are
/// rejected with the reason.
pub(crate) fn compile_java_regex(pattern: &str) -> Result<JavaRegex, String> {
    compile_with_limit(pattern, REGEX_SIZE_LIMIT, true)
}

/// Compiles a pattern; `explore`: find out whether its whole DFA is small (see [`JavaRegex`]),
/// worth its cost for a pattern compiled once.
fn compile_with_limit(pattern: &str, limit: usize, explore: bool) -> Result<JavaRegex, String> {
    let translated = translate_java_regex(pattern)?;
    let whole = format!(r"\A(?:{translated})\z");
    let regex = RegexBuilder::new(&whole).size_limit(limit).dfa_size_limit(limit).build().map_err(|e| {
        let reason = match e {
            regex::Error::Syntax(text) => text.lines().last().unwrap_or("invalid pattern").trim().to_string(),
            regex::Error::CompiledTooBig(limit) => format!("the pattern needs more than {limit} bytes"),
            other => other.to_string(),
        };
        preview_text_long(&reason)
    })?;
    let (dfa_always, dfa_text_bytes, simulated_steps_per_byte) = costs(&whole, limit, explore);
    Ok(JavaRegex { regex, dfa_always, dfa_text_bytes, simulated_steps_per_byte })
}

/// A reason quoted in a message, cut at a few hundred bytes (a pattern may be long).
fn preview_text_long(reason: &str) -> String {
    if reason.len() <= 200 {
        return reason.to_string();
    }
    let mut end = 200;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &reason[..end])
}

/// The longest pattern a rule may compute at evaluation (`proctor:matches(value, variable)`,
/// `value.matches(variable)`), in bytes; patterns written in the rule are compiled at load.
pub const MAX_DYNAMIC_PATTERN_BYTES: usize = 1024;

/// The `regex` crate's size limits (the compiled program, and each thread's lazy DFA cache) for
/// a pattern computed at evaluation.
const DYNAMIC_REGEX_SIZE_LIMIT: usize = 128 * 1024;

/// How many patterns computed at evaluation stay compiled (the most recently used): with the
/// limits above, the cache holds at most 4 MiB of programs, and 4 MiB of lazy DFA per thread
/// that matches with them.
const DYNAMIC_REGEX_CACHE: usize = 32;

/// The budget steps of compiling a computed pattern: a fixed part and a part per byte, charged
/// whether or not the cache already holds it, so that an answer never depends on what other
/// requests did.
const DYNAMIC_REGEX_STEPS: u64 = 20_000;
const DYNAMIC_REGEX_STEPS_PER_BYTE: u64 = 400;

type CachedRegex = (Box<str>, Result<Arc<JavaRegex>, Box<str>>);

/// Patterns computed at evaluation, most recently used first; shared by every matrix, since a
/// compiled pattern depends on nothing else.
static DYNAMIC_REGEXES: Mutex<Vec<CachedRegex>> = Mutex::new(Vec::new());

/// A pattern computed at evaluation, compiled or found in the bounded cache.
pub(crate) fn dynamic_regex(pattern: &str, budget: &Budget) -> Res<Arc<JavaRegex>> {
    if pattern.len() > MAX_DYNAMIC_PATTERN_BYTES {
        return Err(err(
            "invalid_regex",
            format!(
                "a pattern computed at evaluation may have at most {MAX_DYNAMIC_PATTERN_BYTES} bytes; this one has {}",
                pattern.len()
            ),
        ));
    }
    budget.take(DYNAMIC_REGEX_STEPS + DYNAMIC_REGEX_STEPS_PER_BYTE * pattern.len() as u64)?;
    let found = {
        let mut cache = DYNAMIC_REGEXES.lock().unwrap_or_else(PoisonError::into_inner);
        cache.iter().position(|(p, _)| **p == *pattern).map(|i| {
            let entry = cache.remove(i);
            let compiled = entry.1.clone();
            cache.insert(0, entry);
            compiled
        })
    };
    let compiled = match found {
        Some(compiled) => compiled,
        None => {
            let compiled = compile_with_limit(pattern, DYNAMIC_REGEX_SIZE_LIMIT, false).map(Arc::new).map_err(Box::from);
            let mut cache = DYNAMIC_REGEXES.lock().unwrap_or_else(PoisonError::into_inner);
            cache.insert(0, (pattern.into(), compiled.clone()));
            cache.truncate(DYNAMIC_REGEX_CACHE);
            compiled
        }
    };
    compiled.map_err(|reason| invalid_regex(&reason))
}

fn translate_java_regex(pattern: &str) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut chars = pattern.chars().peekable();
    let mut class_depth = 0usize;
    // Whether the last thing written was an unescaped quantifier (so a `+` makes it possessive).
    let mut after_quantifier = false;
    while let Some(c) = chars.next() {
        let quantifier = class_depth == 0 && matches!(c, '*' | '+' | '?' | '}');
        if quantifier && c == '+' && after_quantifier {
            return Err("possessive quantifiers are not supported".to_string());
        }
        // `+?` and `*?` are lazy quantifiers, which a further `+` does not make possessive.
        after_quantifier = quantifier && !(c == '?' && after_quantifier);
        match c {
            '\\' => {
                let Some(e) = chars.next() else {
                    return Err("unexpected end of pattern after '\\'".to_string());
                };
                match e {
                    'd' => out.push_str("[0-9]"),
                    'D' => out.push_str("[^0-9]"),
                    'w' => out.push_str("[a-zA-Z_0-9]"),
                    'W' => out.push_str("[^a-zA-Z_0-9]"),
                    's' => out.push_str(r"[\t\n\x0B\f\r ]"),
                    'S' => out.push_str(r"[^\t\n\x0B\f\r ]"),
                    'Q' => {
                        let mut literal = String::new();
                        loop {
                            match chars.next() {
                                None => break,
                                Some('\\') if chars.peek() == Some(&'E') => {
                                    chars.next();
                                    break;
                                }
                                Some(ch) => literal.push(ch),
                            }
                        }
                        out.push_str(&regex::escape(&literal));
                    }
                    '1'..='9' => return Err("backreferences are not supported".to_string()),
                    'k' => return Err("named backreferences are not supported".to_string()),
                    'G' => return Err("\\G is not supported".to_string()),
                    'Z' => return Err("\\Z is not supported".to_string()),
                    _ => {
                        out.push('\\');
                        out.push(e);
                    }
                }
            }
            '[' => {
                class_depth += 1;
                out.push('[');
                // A leading `]` (after an optional `^`) is literal in a class.
                if chars.peek() == Some(&'^') {
                    chars.next();
                    out.push('^');
                }
                if chars.peek() == Some(&']') {
                    chars.next();
                    out.push_str(r"\]");
                }
            }
            ']' if class_depth > 0 => {
                class_depth -= 1;
                out.push(']');
            }
            '.' if class_depth == 0 => out.push_str("[^\n\r\u{85}\u{2028}\u{2029}]"),
            '(' if class_depth == 0 && chars.peek() == Some(&'?') => {
                let rest: String = chars.clone().take(3).collect();
                if rest.starts_with("?=") || rest.starts_with("?!") || rest.starts_with("?<=") || rest.starts_with("?<!") {
                    return Err("lookaround is not supported".to_string());
                }
                if rest.starts_with("?>") {
                    return Err("atomic groups are not supported".to_string());
                }
                out.push('(');
            }
            _ => out.push(c),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_regex_whole_match() {
        let r = compile_java_regex("a.c").unwrap();
        assert!(r.is_match("abc"));
        assert!(!r.is_match("abcd"));
        assert!(!r.is_match("a\nc"));
        let r = compile_java_regex(r"\d+|x").unwrap();
        assert!(r.is_match("123") && r.is_match("x") && !r.is_match("x1") && !r.is_match("١٢"));
        let r = compile_java_regex(r"\Q1.5\E[]a]").unwrap();
        assert!(r.is_match("1.5]") && r.is_match("1.5a") && !r.is_match("125a"));
        for bad in [r"(a)\1", "(?=a)a", "a*+", "(?>a)", "[", "a{2,1}"] {
            assert!(compile_java_regex(bad).is_err(), "{bad}");
        }
    }
}
