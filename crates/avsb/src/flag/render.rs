//! `avsb flag`'s text for people: a test as buckets, allocations (percentages, rules, ranges) and
//! targets; the server's preview as a diff and the share of units that would change bucket; the
//! server's refusals and the engine's diagnostics as sentences.

use serde_json::Value;

use super::build::percent;
use crate::remote::RemoteError;

/// A payload's value, compactly: `true`, `"dark"`, `{"limit":10}`.
pub fn payload_text(payload: &Value) -> Option<String> {
    let object = payload.as_object()?;
    let (_, value) = object.iter().find(|(_, v)| !v.is_null())?;
    Some(value.to_string())
}

/// A bucket's name by its value, or the value itself.
pub fn bucket_name(definition: &Value, value: i64) -> String {
    definition["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|b| b["value"].as_i64() == Some(value))
        .and_then(|b| b["name"].as_str())
        .map_or_else(|| value.to_string(), str::to_string)
}

/// An allocation's ranges in order: `off 90% | on 10%`.
pub fn ranges_text(definition: &Value, allocation: &Value) -> String {
    let parts: Vec<String> = allocation["ranges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let value = r["bucketValue"].as_i64().unwrap_or(0);
            format!("{} {}", bucket_name(definition, value), percent(r["length"].as_f64().unwrap_or(0.0)))
        })
        .collect();
    parts.join(" | ")
}

fn rule_of(v: &Value) -> Option<&str> {
    v.as_str().filter(|r| !r.trim().is_empty())
}

/// A test definition as lines: identifier type and salt, buckets, eligibility, allocations,
/// targets. (Not its version: a preview's added test shows a version it will not keep.)
pub fn definition_lines(definition: &Value) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(format!(
        "identifier type {}, salt {}",
        definition["testType"].as_str().unwrap_or("?"),
        definition["salt"].as_str().unwrap_or("?")
    ));
    if let Some(d) = definition["description"].as_str().filter(|d| !d.is_empty()) {
        lines.push(format!("description: {d}"));
    }
    let buckets: Vec<String> = definition["buckets"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| {
            let name = b["name"].as_str().unwrap_or("?");
            let value = &b["value"];
            match payload_text(&b["payload"]) {
                Some(p) => format!("{name} ({value}) = {p}"),
                None => format!("{name} ({value})"),
            }
        })
        .collect();
    lines.push(format!("buckets: {}", buckets.join(", ")));
    match rule_of(&definition["rule"]) {
        Some(rule) => lines.push(format!("eligible: {rule}")),
        None => lines.push("eligible: everyone".into()),
    }
    for (i, allocation) in definition["allocations"].as_array().into_iter().flatten().enumerate() {
        let who = rule_of(&allocation["rule"]).map_or_else(|| "everyone else".to_string(), |r| format!("rule {r}"));
        let who = if i == 0 && rule_of(&allocation["rule"]).is_none() { "everyone".to_string() } else { who };
        lines.push(format!("allocation {i} ({who}): {}", ranges_text(definition, allocation)));
    }
    for target in definition["targets"].as_array().into_iter().flatten() {
        let ids: Vec<&str> = target["identifiers"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        let bucket = bucket_name(definition, target["bucketValue"].as_i64().unwrap_or(0));
        lines.push(format!("targeted to {bucket}: {}", ids.join(", ")));
    }
    lines
}

/// A test in one cell of `avsb flag list`: its split (the last allocation's), merged by bucket
/// and without empty ranges, and what else decides: rules, targets.
pub fn cell(definition: &Value) -> String {
    let allocations = definition["allocations"].as_array().cloned().unwrap_or_default();
    let mut shares: Vec<(i64, f64)> = Vec::new();
    if let Some(last) = allocations.last() {
        for r in last["ranges"].as_array().into_iter().flatten() {
            let (b, l) = (r["bucketValue"].as_i64().unwrap_or(0), r["length"].as_f64().unwrap_or(0.0));
            match shares.iter_mut().find(|(x, _)| *x == b) {
                Some(s) => s.1 += l,
                None => shares.push((b, l)),
            }
        }
    }
    let mut parts: Vec<String> =
        shares.iter().filter(|(_, l)| *l > 0.0).map(|(b, l)| format!("{} {}", bucket_name(definition, *b), percent(*l))).collect();
    let rules = allocations.iter().filter(|a| rule_of(&a["rule"]).is_some()).count() + usize::from(rule_of(&definition["rule"]).is_some());
    if rules > 0 {
        parts.push(format!("+{rules} rule{}", if rules == 1 { "" } else { "s" }));
    }
    let targeted: usize = definition["targets"].as_array().into_iter().flatten().map(|t| t["identifiers"].as_array().map_or(0, Vec::len)).sum();
    if targeted > 0 {
        parts.push(format!("+{targeted} targeted"));
    }
    parts.join(" ")
}

/// What a path in a test names, in words: `rule` → "its eligibility rule".
fn place(test: &str, path: &str) -> String {
    let prefix = format!("tests.{test}.");
    let inner = path.strip_prefix(&prefix).unwrap_or(path);
    let index = |s: &str| s.split(']').next().unwrap_or("").to_string();
    if inner == "rule" {
        return "its eligibility rule".into();
    }
    if let Some(rest) = inner.strip_prefix("allocations[") {
        let i = index(rest);
        let tail = rest.split_once("].").map_or("", |(_, t)| t);
        return match tail {
            "rule" => format!("the rule of allocation {i}"),
            t if t.starts_with("ranges") => format!("the ranges of allocation {i}"),
            _ => format!("allocation {i}"),
        };
    }
    if let Some(rest) = inner.strip_prefix("buckets[") {
        return format!("bucket {}", index(rest));
    }
    if inner.is_empty() || inner == path {
        return format!("'{path}'");
    }
    format!("its {inner}")
}

/// A diagnostic of the engine as a sentence, with the rule and a caret under the problem.
pub fn diagnostic(d: &Value) -> String {
    let test = d["test"].as_str().unwrap_or("");
    let path = d["path"].as_str().unwrap_or("");
    let severity = d["severity"].as_str().unwrap_or("error");
    let mut text = format!(
        "{severity}: test '{test}', {} ({path}): {} [{}]",
        place(test, path),
        d["message"].as_str().unwrap_or(""),
        d["code"].as_str().unwrap_or("")
    );
    if let Some(rule) = d["rule"].as_str() {
        let column = d["column"].as_u64().map(|c| c as usize);
        let width = match d["span"].as_array().map(|s| s.iter().filter_map(Value::as_u64).collect::<Vec<_>>()) {
            Some(s) if s.len() == 2 => rule.get(s[0] as usize..s[1] as usize).map_or(1, |t| t.chars().count().max(1)),
            _ => 1,
        };
        match column {
            Some(c) => text.push_str(&format!(" at column {c} of the rule:\n    {rule}\n    {}{}", " ".repeat(c - 1), "^".repeat(width))),
            None => text.push_str(&format!(" in the rule {rule}")),
        }
    }
    text
}

/// The variable a diagnostic says is unknown: the rule text at its span (the API's structured
/// place), or else the name quoted in its message.
pub fn unknown_variable(d: &Value) -> Option<String> {
    if d["code"] != "unknown_variable" {
        return None;
    }
    let from_span = d["rule"].as_str().zip(d["span"].as_array()).and_then(|(rule, span)| {
        let (s, e) = (span.first()?.as_u64()? as usize, span.get(1)?.as_u64()? as usize);
        rule.get(s..e).map(str::to_string)
    });
    from_span.filter(|v| !v.is_empty()).or_else(|| {
        let message = d["message"].as_str()?;
        let start = message.find('\'')? + 1;
        let end = start + message[start..].find('\'')?;
        Some(message[start..end].to_string())
    })
}

/// A refusal of the server as sentences: its message, where (`field`), the engine's diagnostics
/// and, for a conflict, what changed meanwhile.
pub fn refusal(e: &RemoteError) -> String {
    let Some(error) = e.error() else { return e.to_string() };
    let mut text = error["message"].as_str().unwrap_or("").to_string();
    if text.is_empty() {
        text = e.to_string();
    }
    if let Some(field) = error["field"].as_str() {
        text.push_str(&format!(" (field '{field}')"));
    }
    if let Some(path) = error["path"].as_str() {
        text.push_str(&format!(" (at '{path}')"));
    }
    if let Some(code) = e.code() {
        text.push_str(&format!(" [{code}]"));
    }
    match &error["diagnostics"] {
        Value::Array(list) => {
            for d in list.iter().filter(|d| d["severity"] != "warning") {
                text.push('\n');
                text.push_str(&diagnostic(d));
            }
        }
        Value::Object(by_env) => {
            for (env, list) in by_env {
                for d in list.as_array().into_iter().flatten() {
                    text.push_str(&format!("\nin {env}: {}", diagnostic(d)));
                }
            }
        }
        _ => {}
    }
    if e.code() == Some("conflict") {
        text.push_str("\nNothing was changed: run the command again to start from the current state.");
    }
    text
}

/// A value of the diff in words where its place is known: a length as a percentage, a range as
/// its bucket and share, targets as bucket and identifiers.
fn value_text(path: &str, v: Option<&Value>, definition: &Value) -> String {
    let range = |r: &Value| {
        format!("{} {}", bucket_name(definition, r["bucketValue"].as_i64().unwrap_or(0)), percent(r["length"].as_f64().unwrap_or(0.0)))
    };
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::Number(n)) if path.ends_with(".length") => n.as_f64().map_or_else(|| n.to_string(), percent),
        Some(r @ Value::Object(_)) if path.contains(".ranges[") && path.ends_with(']') => range(r),
        Some(Value::Array(list)) if path.ends_with(".ranges") => list.iter().map(range).collect::<Vec<_>>().join(" | "),
        Some(Value::Array(list)) if path == "targets" => {
            let parts: Vec<String> = list
                .iter()
                .map(|t| {
                    let ids: Vec<&str> = t["identifiers"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    format!("{}: {}", bucket_name(definition, t["bucketValue"].as_i64().unwrap_or(0)), ids.join(", "))
                })
                .collect();
            if parts.is_empty() { "(none)".into() } else { parts.join("; ") }
        }
        Some(v) => v.to_string(),
    }
}

/// The lines of a test's field changes: `path: old -> new`.
fn change_lines(change: &Value) -> Vec<String> {
    change["changes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let path = c["path"].as_str().unwrap_or("");
            format!("{path}: {} -> {}", value_text(path, c.get("from"), &change["from"]), value_text(path, c.get("to"), &change["to"]))
        })
        .collect()
}

/// Who would change bucket in one test, as sentences.
fn reassignment_lines(change: &Value) -> Vec<String> {
    let r = &change["reassignment"];
    let mut lines = Vec::new();
    for shift in r["allocations"].as_array().into_iter().flatten() {
        let to = shift["to"].as_u64().unwrap_or(0);
        let rule = shift["rule"].as_str().map(|r| format!(" (rule {r})")).unwrap_or_default();
        let whose = match shift["from"].as_u64() {
            Some(from) if from != to => format!("of the units moving from allocation {from} to allocation {to}{rule}"),
            _ => format!("of the units in allocation {to}{rule}"),
        };
        let basis = match shift["basis"].as_str() {
            Some("ranges") => "exact: same units, same salt",
            Some("salt") => "expected: everyone is hashed anew",
            Some("random") => "expected: a RANDOM test draws anew",
            _ => "depends on traffic",
        };
        match shift["share"].as_f64() {
            Some(s) => lines.push(format!("{} {whose} change bucket ({basis}).", percent_one(s))),
            None => lines.push(format!("Who changes bucket {whose} depends on traffic (a rule changed).")),
        }
    }
    let targets = r["targetsChanged"].as_u64().unwrap_or(0);
    if targets > 0 {
        lines.push(format!("{targets} targeted identifier{} change bucket.", if targets == 1 { "" } else { "s" }));
    }
    for note in r["notes"].as_array().into_iter().flatten().filter_map(Value::as_str) {
        lines.push(format!("Note: {note}."));
    }
    if lines.is_empty() {
        lines.push("Nobody changes bucket.".into());
    }
    lines
}

/// A share as a percentage with one decimal: `0.39999` → `40.0%`.
pub fn percent_one(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// The server's preview of an edit: per test the diff and who would change bucket, then the
/// engine's warnings.
pub fn preview(p: &Value) -> String {
    let mut s = format!(
        "In {} (now at revision {}): {}\n",
        p["environment"].as_str().unwrap_or("?"),
        p["baseRevision"].as_str().unwrap_or("?"),
        p["defaultComment"].as_str().unwrap_or("")
    );
    let tests = p["tests"].as_array().cloned().unwrap_or_default();
    if tests.is_empty() {
        s.push_str("  Nothing would change.\n");
    }
    for change in &tests {
        let name = change["test"].as_str().unwrap_or("?");
        match change["change"].as_str() {
            Some("added") => {
                s.push_str(&format!("  + {name} (new)\n"));
                for line in definition_lines(&change["to"]) {
                    s.push_str(&format!("      {line}\n"));
                }
            }
            Some("removed") => s.push_str(&format!("  - {name} (removed)\n")),
            _ => {
                s.push_str(&format!("  ~ {name}\n"));
                for line in change_lines(change) {
                    s.push_str(&format!("      {line}\n"));
                }
                if let Some(to) = change.get("to").filter(|t| t.is_object()) {
                    for (i, allocation) in to["allocations"].as_array().into_iter().flatten().enumerate() {
                        s.push_str(&format!("      now allocation {i}: {}\n", ranges_text(to, allocation)));
                    }
                }
            }
        }
        for line in reassignment_lines(change) {
            s.push_str(&format!("    {line}\n"));
        }
    }
    for d in p["diagnostics"].as_array().into_iter().flatten().filter(|d| d["severity"] == "warning") {
        s.push_str(&format!("  {}\n", diagnostic(d)));
    }
    s
}

/// One change of a test in its history: the revision, then the diff and who moved.
pub fn history_entry(environment: &str, revision: &Value, change: Option<&Value>) -> String {
    let mut s = format!(
        "revision {} in {} ({}), {} by {}: {}\n",
        revision["version"].as_str().unwrap_or("?"),
        environment,
        revision["kind"].as_str().unwrap_or("?"),
        crate::results::date(&revision["updated"]),
        revision["updatedBy"].as_str().unwrap_or("?"),
        revision["comment"].as_str().unwrap_or("")
    );
    if let Some(change) = change {
        match change["change"].as_str() {
            Some("added") => s.push_str("    added\n"),
            Some("removed") => s.push_str("    removed\n"),
            _ => {
                for line in change_lines(change) {
                    s.push_str(&format!("    {line}\n"));
                }
                for line in reassignment_lines(change) {
                    s.push_str(&format!("    {line}\n"));
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_unknown_variable_is_read_from_the_rule_at_its_span() {
        let d = json!({"code": "unknown_variable", "rule": "${staff && plan == 'pro'}", "span": [2, 7], "message": "unknown variable 'staff': ..."});
        assert_eq!(unknown_variable(&d).as_deref(), Some("staff"));
        let d = json!({"code": "unknown_variable", "message": "unknown variable 'beta': not a constant"});
        assert_eq!(unknown_variable(&d).as_deref(), Some("beta"));
        assert_eq!(unknown_variable(&json!({"code": "ranges_sum"})), None);
    }

    #[test]
    fn a_diagnostic_names_the_test_the_place_and_points_into_the_rule() {
        let d = json!({"severity": "error", "test": "f", "path": "tests.f.allocations[1].rule", "code": "unknown_variable",
            "message": "unknown variable 'staff'", "rule": "${staff}", "span": [2, 7], "column": 3});
        let text = diagnostic(&d);
        assert!(text.starts_with("error: test 'f', the rule of allocation 1 (tests.f.allocations[1].rule): unknown variable 'staff'"), "{text}");
        assert!(text.ends_with("    ${staff}\n      ^^^^^"), "{text}");
    }
}
