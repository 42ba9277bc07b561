//! Runs the shared rule-language cases in `spec/rules/*.json` through the public API.
//!
//! Each case compiles a rule against a schema and a test's constants, then evaluates it for one
//! request whose context arrives as raw text, converted the way Pipet converts it.

use std::path::PathBuf;
use anyhow::{anyhow, bail, Context, Result};
use avsb_core::rule::{compile, Budget, CompileEnv, EvalEnv, VariableInfo, VariableLookup};
use avsb_core::schema::ContextType;
use avsb_core::Value;
use indexmap::IndexMap;
use serde_json::Value as Json;

/// The schema of one case: variables in declaration order, each with its slot.
struct Schema {
    variables: IndexMap<String, Option<ContextType>>,
}

impl VariableLookup for Schema {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        let (slot, _, ty) = self.variables.get_full(name)?;
        Some(VariableInfo { slot, ty: *ty })
    }
}

/// Pipet's type names (`int`, `Integer`, `java.lang.Integer`, ...); `?` is an unknown type.
fn context_type(name: &str) -> Result<Option<ContextType>> {
    if name == "?" {
        return Ok(None);
    }
    ContextType::from_name(name).map(Some).ok_or_else(|| anyhow!("unknown schema type {name:?}"))
}

/// Pipet's conversion of a raw context value (docs/proctor.md §6.6); text for an unknown type
/// stays a String, and structured JSON is only allowed for an unknown type.
fn convert(ty: Option<ContextType>, raw: &Json) -> Result<Value> {
    match (ty, raw.as_str()) {
        (Some(ty), Some(text)) => ty.convert(text).map_err(|e| anyhow!("cannot convert {text:?} to {ty:?}: {e}")),
        (None, Some(text)) => Ok(Value::string(text)),
        (None, None) => Ok(Value::from_json(raw)),
        (Some(_), None) => bail!("context value {raw} is not text"),
    }
}

/// Runs one case; `Err` describes how it failed.
fn run_case(case: &Json) -> Result<()> {
    let rule = match &case["rule"] {
        Json::Null => None,
        Json::String(s) => Some(s.as_str()),
        other => bail!("rule must be a string or null, not {other}"),
    };
    let constants: IndexMap<String, Value> = match &case["constants"] {
        Json::Object(map) => map.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect(),
        Json::Null => IndexMap::new(),
        other => bail!("constants must be an object, not {other}"),
    };
    let mut schema = Schema { variables: IndexMap::new() };
    if let Json::Object(map) = &case["schema"] {
        for (name, ty) in map {
            let ty = ty.as_str().ok_or_else(|| anyhow!("schema type of {name} is not a string"))?;
            schema.variables.insert(name.clone(), context_type(ty)?);
        }
    }
    let mut context: Vec<Option<Value>> = vec![None; schema.variables.len()];
    if let Json::Object(map) = &case["context"] {
        for (name, raw) in map {
            let (slot, _, ty) = schema
                .variables
                .get_full(name)
                .ok_or_else(|| anyhow!("context variable {name} is not in the schema"))?;
            context[slot] = Some(convert(*ty, raw)?);
        }
    }
    let now_millis = case["now"].as_i64();
    let missing_experimental_unit = case["missingExperimentalUnit"].as_bool().unwrap_or(false);
    let expect = &case["expect"];

    let compiled = compile(rule, &mut CompileEnv { constants: &constants, variables: &mut schema });
    if let Some(code) = expect.get("load_error").and_then(Json::as_str) {
        return match compiled {
            Err(d) if d.code == code => Ok(()),
            Err(d) => bail!("expected load error {code}, got load error {} ({})", d.code, d.message),
            Ok(_) => bail!("expected load error {code}, but the rule compiled"),
        };
    }
    let compiled = compiled.map_err(|d| anyhow!("load error {}: {}", d.code, d.message))?;
    if let Some(code) = case["warning"].as_str() {
        if !compiled.warnings.iter().any(|w| w.code == code) {
            bail!("expected warning {code}, got {:?}", compiled.warnings);
        }
    }
    let result = compiled.rule.evaluate(&EvalEnv { context: &context, missing_experimental_unit, now_millis, budget: Budget::new() });
    match (expect, result) {
        (Json::Bool(want), Ok(got)) if *want == got => Ok(()),
        (Json::Bool(want), Ok(got)) => bail!("expected {want}, got {got}"),
        (Json::Bool(want), Err(e)) => bail!("expected {want}, got error {} ({})", e.code, e.message),
        (Json::Object(o), result) => {
            let code = o.get("error").and_then(Json::as_str).ok_or_else(|| anyhow!("bad expect {expect}"))?;
            match result {
                Err(e) if e.code == code => Ok(()),
                Err(e) => bail!("expected error {code}, got error {} ({})", e.code, e.message),
                Ok(got) => bail!("expected error {code}, got {got}"),
            }
        }
        _ => bail!("bad expect {expect}"),
    }
}

fn spec_files() -> Result<Vec<PathBuf>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    Ok(files)
}

#[test]
fn spec_rule_cases() -> Result<()> {
    let mut failures = Vec::new();
    let mut count = 0;
    let mut names = std::collections::HashSet::new();
    for file in spec_files()? {
        let text = std::fs::read_to_string(&file)?;
        let doc: Json = serde_json::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
        let cases = doc["cases"].as_array().ok_or_else(|| anyhow!("{} has no cases", file.display()))?;
        for case in cases {
            count += 1;
            let name = case["name"].as_str().unwrap_or("<unnamed>").to_string();
            if !names.insert(name.clone()) {
                failures.push(format!("{name}: duplicate case name"));
            }
            if let Err(e) = run_case(case) {
                failures.push(format!("{name}: {e:#} [rule {}]", case["rule"]));
            }
        }
    }
    assert!(count >= 200, "only {count} cases");
    assert!(failures.is_empty(), "{} of {count} cases failed:\n{}", failures.len(), failures.join("\n"));
    Ok(())
}
