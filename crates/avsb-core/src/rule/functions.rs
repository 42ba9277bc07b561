//! The function libraries (`proctor:`/`indeed:` = `ProctorRuleFunctions`, `fn:` =
//! `LegacyTaglibFunctions`), bean method calls, and Java regular expressions on the `regex` crate.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use super::eval::{
    class_name, err, eval, java_compare_to, java_equals, to_bool, to_int, to_maybe_bool, to_string,
    Got, Node, Res,
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

#[inline(never)]
fn apply(func: Func, args: &[Cow<'_, Value>], env: &EvalEnv<'_>) -> Res<Value> {
    use Func::*;
    let null = Value::Null;
    let arg = |i: usize| -> Res<&Value> { Ok(args.get(i).map_or(&null, |v| &**v)) };
    let bool_result = |b: bool| Ok(Value::Bool(b));
    match func {
        Contains => {
            let c = arg(0)?;
            let x = arg(1)?;
            if matches!(*x, Value::Null) {
                return bool_result(false);
            }
            bool_result(contains(collection(c, "proctor:contains")?, x))
        }
        Matches => {
            let value = arg(0)?;
            let pattern = arg(1)?;
            let regex = compile_java_regex(&to_string(pattern))
                .map_err(|reason| err("invalid_regex", format!("PatternSyntaxException: {reason}")))?;
            bool_result(regex.is_match(&to_string(value)))
        }
        Now => match env.now_millis {
            Some(now) => Ok(Value::long(now)),
            None => Err(err("no_clock", "proctor:now() needs the request time")),
        },
        Version => Ok(Value::Version(version(&to_string(arg(0)?))?)),
        InRange => {
            let (v, lo, hi) = (arg(0)?, arg(1)?, arg(2)?);
            bool_result(in_range(comparable(v)?, comparable(lo)?, comparable(hi)?)?)
        }
        VersionInRange => {
            let v = version_param(arg(0)?)?;
            let start = version(&to_string(arg(1)?))?;
            let end = version(&to_string(arg(2)?))?;
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
        ToUpperCase => Ok(string_value(to_string(arg(0)?).to_uppercase())),
        ToLowerCase => Ok(string_value(to_string(arg(0)?).to_lowercase())),
        IndexOf => {
            let (s, sub) = (arg(0)?, arg(1)?);
            Ok(int_value(java_index_of(&to_string(s), &to_string(sub))))
        }
        FnContains => {
            let (s, sub) = (arg(0)?, arg(1)?);
            bool_result(to_string(s).contains(&*to_string(sub)))
        }
        ContainsIgnoreCase => {
            let (s, sub) = (arg(0)?, arg(1)?);
            bool_result(to_string(s).to_uppercase().contains(&to_string(sub).to_uppercase()))
        }
        StartsWith => {
            let (s, p) = (arg(0)?, arg(1)?);
            bool_result(to_string(s).starts_with(&*to_string(p)))
        }
        EndsWith => {
            let (s, p) = (arg(0)?, arg(1)?);
            bool_result(to_string(s).ends_with(&*to_string(p)))
        }
        Substring => {
            let (s, b, e) = (arg(0)?, arg(1)?, arg(2)?);
            let s = to_string(s);
            let (begin, end) = (to_int(b)?, to_int(e)?);
            let len = utf16_len(&s) as i64;
            let begin = i64::from(begin).max(0);
            let end = if end < 0 || i64::from(end) > len { len } else { i64::from(end) };
            if end < begin {
                return Ok(string_value(""));
            }
            Ok(string_value(utf16_substring(&s, begin as usize, end as usize)))
        }
        SubstringAfter => {
            let (s, sub) = (arg(0)?, arg(1)?);
            let (s, sub) = (to_string(s), to_string(sub));
            Ok(string_value(match s.find(&*sub) {
                Some(i) => &s[i + sub.len()..],
                None => "",
            }))
        }
        SubstringBefore => {
            let (s, sub) = (arg(0)?, arg(1)?);
            let (s, sub) = (to_string(s), to_string(sub));
            Ok(string_value(match s.find(&*sub) {
                Some(i) => &s[..i],
                None => "",
            }))
        }
        Trim => Ok(string_value(java_trim(&to_string(arg(0)?)))),
        Replace => {
            let (s, before, after) = (arg(0)?, arg(1)?, arg(2)?);
            let (s, before, after) = (to_string(s), to_string(before), to_string(after));
            if before.is_empty() {
                return Ok(string_value(&*s));
            }
            Ok(string_value(s.replace(&*before, &after)))
        }
        Split => {
            let (s, delims) = (arg(0)?, arg(1)?);
            let (s, delims) = (to_string(s), to_string(delims));
            let parts: Vec<Value> = if s.is_empty() {
                vec![string_value("")]
            } else {
                s.split(|c: char| delims.contains(c))
                    .filter(|t| !t.is_empty())
                    .map(string_value)
                    .collect()
            };
            Ok(Value::Array(parts.into()))
        }
        Length => {
            let v = arg(0)?;
            let n = match v {
                Value::Null => 0,
                Value::String(s) => utf16_len(s),
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
            let (array, sep) = (arg(0)?, arg(1)?);
            let sep = to_string(sep);
            match array {
                Value::Null => Ok(string_value("")),
                Value::String(s) if s.is_empty() => Ok(string_value("")),
                Value::Array(items) => {
                    let parts: Vec<Cow<'_, str>> = items.iter().map(super::eval::java_to_string).collect();
                    Ok(string_value(parts.join(&sep)))
                }
                other => Err(err(
                    "coercion_error",
                    format!("cannot convert {} to java.lang.String[] in fn:join", class_name(other)),
                )),
            }
        }
    }
}

fn no_method(base: &Value, name: &str, arity: usize) -> RuleError {
    err(
        "method_not_found",
        format!("method {name} with {arity} arguments not found on type {}", class_name(base)),
    )
}

fn out_of_bounds(what: String) -> RuleError {
    err("index_out_of_bounds", what)
}

/// A bean method call (`a.b(args)`) on a non-null base.
pub(crate) fn call_method<'v>(base: &'v Value, name: &str, args: &[Cow<'_, Value>]) -> Res<Got<'v>> {
    let new = |v: Value| Ok(Got::New(v));
    match (base, name, args) {
        (Value::String(s), "length", []) => new(int_value(utf16_len(s) as i64)),
        (Value::String(s), "isEmpty", []) => new(Value::Bool(s.is_empty())),
        (Value::String(s), "contains", [x]) => new(Value::Bool(s.contains(&*to_string(x)))),
        (Value::String(s), "startsWith", [x]) => new(Value::Bool(s.starts_with(&*to_string(x)))),
        (Value::String(s), "endsWith", [x]) => new(Value::Bool(s.ends_with(&*to_string(x)))),
        (Value::String(_), "equals", [x]) => new(Value::Bool(java_equals(base, x))),
        (Value::String(s), "equalsIgnoreCase", [x]) => new(Value::Bool(match &**x {
            Value::Null => false,
            other => {
                let o = to_string(other);
                s.chars().count() == o.chars().count()
                    && s.chars().zip(o.chars()).all(|(a, b)| {
                        a == b || a.to_uppercase().eq(b.to_uppercase()) || a.to_lowercase().eq(b.to_lowercase())
                    })
            }
        })),
        (Value::String(s), "toLowerCase", []) => new(string_value(s.to_lowercase())),
        (Value::String(s), "toUpperCase", []) => new(string_value(s.to_uppercase())),
        (Value::String(s), "trim", []) => new(string_value(java_trim(s))),
        (Value::String(s), "indexOf", [x]) => new(int_value(java_index_of(s, &to_string(x)))),
        (Value::String(s), "substring", [b]) | (Value::String(s), "substring", [b, _]) => {
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
            new(string_value(utf16_substring(s, begin as usize, end as usize)))
        }
        (Value::String(s), "matches", [p]) => {
            let regex = compile_java_regex(&to_string(p))
                .map_err(|reason| err("invalid_regex", format!("PatternSyntaxException: {reason}")))?;
            new(Value::Bool(regex.is_match(s)))
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
        (_, "equals", [x]) => new(Value::Bool(java_equals(base, x))),
        (_, "toString", []) => new(string_value(super::eval::java_to_string(base).into_owned())),
        _ => Err(no_method(base, name, args.len())),
    }
}

/// The most compiled regex program a pattern may need (bytes), so no pattern can exhaust memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Compiles a Java regular expression for a whole-string match (`String.matches`).
///
/// Java's syntax is translated where it differs from the `regex` crate's: `\d \w \s` and their
/// negations are ASCII as in Java, `.` excludes Java's line terminators, and `\Q...\E` quotes.
/// Backreferences, lookaround and possessive quantifiers have no linear-time equivalent and are
/// rejected with the reason.
pub(crate) fn compile_java_regex(pattern: &str) -> Result<Regex, String> {
    let translated = translate_java_regex(pattern)?;
    RegexBuilder::new(&format!(r"\A(?:{translated})\z"))
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::Syntax(text) => text.lines().last().unwrap_or("invalid pattern").trim().to_string(),
            regex::Error::CompiledTooBig(limit) => format!("the pattern needs more than {limit} bytes"),
            other => other.to_string(),
        })
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
