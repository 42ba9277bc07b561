//! Reads matrix documents leniently, as Proctor's Jackson mapper does (docs/proctor.md §1.9):
//! comments allowed, scalars coerced, unknown fields ignored. Reading never fails because of one
//! test: the document is split into its tests first, each is read by the fast reader
//! (`reader_fast`) and, when that cannot, by the tree reader here, which names the field that is
//! wrong; a test that cannot be read becomes a [`Diagnostic`] while the others are kept.

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::diagnostic::Diagnostic;
use crate::document::{
    is_unitless_rule, remove_el_braces, Allocation, Audit, Bucket, DependsOn, MatrixDocument, Range, Target, TestDefinition,
};
use crate::json::{parse_lenient_json, strip_comments};
use crate::lenient::{self, each, object, At, FieldError};
use crate::payload::read_payload;

/// A document that cannot be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DocumentError {
    /// What is wrong.
    pub message: String,
}

impl MatrixDocument {
    /// Reads a `TestMatrixArtifact`. Tests that cannot be read are returned as diagnostics;
    /// only a document that is not JSON, or lacks `audit` or `tests`, fails whole.
    pub fn from_json(text: &str) -> Result<(MatrixDocument, Vec<Diagnostic>), DocumentError> {
        Self::read(text, true)
    }

    /// [`MatrixDocument::from_json`] with only the tree reader, to check the fast one against.
    #[cfg(test)]
    pub(crate) fn from_json_slow(text: &str) -> Result<(MatrixDocument, Vec<Diagnostic>), DocumentError> {
        Self::read(text, false)
    }

    fn read(text: &str, fast: bool) -> Result<(MatrixDocument, Vec<Diagnostic>), DocumentError> {
        #[derive(serde::Deserialize)]
        struct Top<'a> {
            #[serde(borrow)]
            audit: Option<&'a serde_json::value::RawValue>,
            #[serde(borrow)]
            tests: Option<IndexMap<String, &'a serde_json::value::RawValue>>,
        }
        let stripped = strip_comments(text);
        let top: Top<'_> = serde_json::from_str(&stripped)
            .map_err(|e| DocumentError { message: format!("the matrix is not valid JSON: {e}") })?;
        let audit = top.audit.ok_or_else(|| DocumentError { message: "the matrix has no 'audit'".into() })?;
        let tests = top.tests.ok_or_else(|| DocumentError { message: "the matrix has no 'tests'".into() })?;
        let audit: Json = serde_json::from_str(audit.get())
            .map_err(|e| DocumentError { message: format!("audit: {e}") })?;
        let audit = read_audit(&audit).map_err(|e| DocumentError { message: e.to_string() })?;
        let mut matrix = MatrixDocument { audit, tests: IndexMap::with_capacity(tests.len()) };
        let mut diagnostics = Vec::new();
        for (name, raw) in tests {
            if let Some(test) = fast.then(|| crate::reader_fast::read_test(raw.get())).flatten() {
                matrix.tests.insert(name, test);
                continue;
            }
            let json: Json = match serde_json::from_str(raw.get()) {
                Ok(json) => json,
                Err(e) => {
                    diagnostics.push(Diagnostic::error(&name, format!("tests.{name}"), "invalid_field", e.to_string()));
                    continue;
                }
            };
            if json.is_null() {
                // Proctor skips a null definition.
                continue;
            }
            match read_test(&json, false) {
                Ok(test) => {
                    matrix.tests.insert(name, test);
                }
                Err(FieldError { path, message }) => {
                    let path = if path.is_empty() { format!("tests.{name}") } else { format!("tests.{name}.{path}") };
                    diagnostics.push(Diagnostic::error(&name, path, "invalid_field", message));
                }
            }
        }
        Ok((matrix, diagnostics))
    }
}

fn read_audit(v: &Json) -> Result<Audit, FieldError> {
    let root = At::ROOT;
    let at = root.key("audit");
    let o = object(v, &at)?;
    let mut audit = Audit::default();
    for (key, value) in o {
        let at = at.key(key);
        match key.as_str() {
            "version" => audit.version = lenient::string_field(value, &at)?,
            "updated" => audit.updated = lenient::long_field(value, &at)?,
            "updatedBy" => audit.updated_by = lenient::string_field(value, &at)?,
            _ => {} // updatedDate is output only; unknown keys are ignored.
        }
    }
    Ok(audit)
}

/// Reads one test. `stored` accepts the stored `TestDefinition`'s `subrule` alias.
pub(crate) fn read_test(v: &Json, stored: bool) -> Result<TestDefinition, FieldError> {
    let root = At::ROOT;
    let o = object(v, &root)?;
    let mut test = TestDefinition::default();
    let mut test_type = None;
    for (key, value) in o {
        let at = root.key(key);
        let at = &at;
        match key.as_str() {
            "version" => test.version = lenient::string_field(value, at)?,
            "salt" => test.salt = lenient::string_field(value, at)?,
            "rule" => test.rule = lenient::string_field(value, at)?,
            "subrule" if stored => test.rule = lenient::string_field(value, at)?,
            // A null object is the same as an absent one.
            "constants" if !value.is_null() => {
                test.constants = object(value, at)?.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
            }
            "buckets" => test.buckets = each(Some(value), at, read_bucket)?,
            "allocations" => test.allocations = each(Some(value), at, read_allocation)?,
            "silent" => test.silent = lenient::boolean_field(value, at)?,
            "testType" => test_type = lenient::string_field(value, at)?,
            "description" => test.description = lenient::string_field(value, at)?,
            "metaTags" => test.meta_tags = each(Some(value), at, |t, at| lenient::string_field(t, at).map(Option::unwrap_or_default))?,
            "dependsOn" if !value.is_null() => {
                let d = object(value, at)?;
                let name_at = at.key("testName");
                let parent = lenient::string_field(d.get("testName").unwrap_or(&Json::Null), &name_at)?
                    .ok_or_else(|| name_at.error("missing"))?;
                let bucket_value = lenient::int_field(d.get("bucketValue").unwrap_or(&Json::Null), &at.key("bucketValue"))?;
                test.depends_on = Some(DependsOn { test_name: parent, bucket_value });
            }
            "dynamic" => test.dynamic = lenient::boolean_field(value, at)?,
            "evaluateForIncognitoUsers" => test.evaluate_for_incognito_users = lenient::boolean_field(value, at)?,
            "enableUnitlessAllocations" => test.enable_unitless_allocations = lenient::boolean_field(value, at)?,
            "containsUnitlessAllocation" => test.contains_unitless_allocation = lenient::boolean_field(value, at)?,
            "forceLogging" => test.force_logging = lenient::boolean_field(value, at)?,
            "payloadExperimentConfig" if !value.is_null() => {
                object(value, at)?;
                test.payload_experiment_config = Some(value.clone());
            }
            "targets" => test.targets = each(Some(value), at, read_target)?,
            _ => {} // Unknown properties are ignored, as Proctor's lenient mapper does.
        }
    }
    test.test_type =
        test_type.ok_or_else(|| root.key("testType").error("missing: every test needs a test type"))?;
    Ok(test)
}

fn read_bucket(v: &Json, at: &At<'_>) -> Result<Bucket, FieldError> {
    let o = object(v, at)?;
    let field = |key: &str| o.get(key).unwrap_or(&Json::Null);
    Ok(Bucket {
        name: lenient::string_field(field("name"), &at.key("name"))?.unwrap_or_default(),
        value: lenient::int_field(field("value"), &at.key("value"))?,
        description: lenient::string_field(field("description"), &at.key("description"))?,
        payload: read_payload(field("payload"), &at.key("payload"))?,
    })
}

fn read_allocation(v: &Json, at: &At<'_>) -> Result<Allocation, FieldError> {
    let o = object(v, at)?;
    let field = |key: &str| o.get(key).unwrap_or(&Json::Null);
    let ranges = each(o.get("ranges"), &at.key("ranges"), |r, at| {
        let ro = object(r, at)?;
        Ok(Range {
            bucket_value: lenient::int_field(ro.get("bucketValue").unwrap_or(&Json::Null), &at.key("bucketValue"))?,
            length: lenient::double_field(ro.get("length").unwrap_or(&Json::Null), &at.key("length"))?,
        })
    })?;
    Ok(Allocation {
        rule: lenient::string_field(field("rule"), &at.key("rule"))?,
        ranges,
        id: lenient::string_field(field("id"), &at.key("id"))?.unwrap_or_default(),
        name: lenient::string_field(field("name"), &at.key("name"))?.unwrap_or_default(),
    })
}

fn read_target(v: &Json, at: &At<'_>) -> Result<Target, FieldError> {
    let o = object(v, at)?;
    let bucket_value = lenient::int_field(o.get("bucketValue").unwrap_or(&Json::Null), &at.key("bucketValue"))?;
    let identifiers = each(o.get("identifiers"), &at.key("identifiers"), |id, at| match id {
        Json::String(s) => Ok(s.clone()),
        Json::Number(n) => Ok(n.to_string()),
        other => Err(at.error(format!("expected a string, found {}", crate::json::kind(other)))),
    })?;
    Ok(Target { bucket_value, identifiers })
}

/// Reads a stored single-test `TestDefinition` (docs/proctor.md §1.5) and converts it to the
/// consumable form: `specialConstants` overlay `constants`, `__COUNTRIES` becomes a rule clause,
/// rules are normalised to `${...}`, and `containsUnitlessAllocation` is computed.
pub fn read_stored_test(text: &str) -> Result<TestDefinition, FieldError> {
    let json: Json = parse_lenient_json(text).map_err(|e| At::ROOT.error(e))?;
    stored_to_consumable(&json)
}

/// Converts a parsed stored `TestDefinition` to the consumable form (docs/proctor.md §1.5).
pub fn stored_to_consumable(json: &Json) -> Result<TestDefinition, FieldError> {
    let mut test = read_test(json, true)?;
    let special = match json.get("specialConstants") {
        None | Some(Json::Null) => serde_json::Map::new(),
        Some(v) => object(v, &At::ROOT.key("specialConstants"))?.clone(),
    };
    for (k, v) in &special {
        test.constants.insert(k.clone(), v.clone());
    }
    let countries = special.contains_key("__COUNTRIES").then(|| "proctor:contains(__COUNTRIES, country)".to_string());
    let rule_body = test.rule.as_deref().map(remove_el_braces).filter(|r| !r.trim().is_empty());
    let clauses: Vec<String> = countries.into_iter().chain(rule_body).collect();
    test.rule = if clauses.is_empty() { None } else { Some(format!("${{{}}}", clauses.join(" && "))) };
    for allocation in &mut test.allocations {
        allocation.rule = match allocation.rule.as_deref() {
            Some(rule) if !rule.trim().is_empty() => Some(format!("${{{}}}", remove_el_braces(rule))),
            _ => None,
        };
    }
    test.contains_unitless_allocation = test.enable_unitless_allocations
        && test.allocations.iter().any(|a| a.rule.as_deref().is_some_and(is_unitless_rule));
    Ok(test)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::document::Payload;

    #[test]
    fn reads_leniently() {
        let (m, d) = MatrixDocument::from_json(
            r#"{ // a comment
              "audit": {"version": 7, "updated": "12", "updatedBy": "me", "updatedDate": "ignored", "extra": 1},
              /* block */ "tests": {"t": {"version": 2, "salt": "t", "testType": "USER", "unknown": [1],
                "buckets": [{"name": null, "value": "1", "payload": {"longValue": 2.9, "stringValue": null}}],
                "allocations": [{"ranges": [{"bucketValue": 1, "length": "1"}]}]}},
              "other": true }"#,
        )
        .unwrap();
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(m.audit.version.as_deref(), Some("7"));
        assert_eq!(m.audit.updated, 12);
        let t = &m.tests["t"];
        assert_eq!(t.version.as_deref(), Some("2"));
        assert_eq!(t.buckets[0].name, "");
        assert_eq!(t.buckets[0].value, 1);
        assert_eq!(t.buckets[0].payload, Some(Payload::LongValue(2)));
        assert_eq!(t.allocations[0].ranges[0].length, 1.0);
    }

    #[test]
    fn a_bad_test_is_a_diagnostic_and_the_others_stay() {
        let (m, d) = MatrixDocument::from_json(
            r#"{"audit": {}, "tests": {
              "good": {"testType": "USER", "buckets": [], "allocations": []},
              "two": {"testType": "USER", "buckets": [{"value": 0, "payload": {"longValue": 1, "stringValue": "x"}}]},
              "bad": {"testType": "USER", "allocations": [{"ranges": [{"bucketValue": 0, "length": "half"}]}]}
            }}"#,
        )
        .unwrap();
        assert_eq!(m.tests.keys().collect::<Vec<_>>(), ["good"]);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].test, "two");
        assert_eq!(d[0].path, "tests.two.buckets[0].payload");
        assert!(d[0].message.contains("exactly one type"), "{}", d[0].message);
        assert_eq!(d[1].path, "tests.bad.allocations[0].ranges[0].length");
    }

    #[test]
    fn unreadable_documents_fail_whole() {
        assert!(MatrixDocument::from_json("{").is_err());
        assert_eq!(MatrixDocument::from_json(r#"{"tests": {}}"#).unwrap_err().message, "the matrix has no 'audit'");
        assert_eq!(MatrixDocument::from_json(r#"{"audit": {}}"#).unwrap_err().message, "the matrix has no 'tests'");
    }

    #[test]
    fn lengths_are_correctly_rounded() {
        let (m, _) = MatrixDocument::from_json(
            r#"{"audit": {}, "tests": {"t": {"testType": "USER", "allocations": [{"ranges": [
              {"bucketValue": 0, "length": 0.3333333333}, {"bucketValue": 1, "length": 0.1000000000000000055511151231257827}]}]}}}"#,
        )
        .unwrap();
        let r = &m.tests["t"].allocations[0].ranges;
        assert_eq!(r[0].length.to_bits(), "0.3333333333".parse::<f64>().unwrap().to_bits());
        assert_eq!(r[1].length.to_bits(), 0.1f64.to_bits());
    }

    #[test]
    fn stored_definition_converts() {
        let t = read_stored_test(
            r#"{"testType": "USER", "salt": "s", "subrule": " ${lang == 'en'} ",
                "constants": {"A": 1, "B": 2}, "specialConstants": {"B": 3, "__COUNTRIES": ["US"]},
                "buckets": [{"name": "a", "value": 0}],
                "allocations": [{"rule": "  ", "ranges": [{"bucketValue": 0, "length": 1}]},
                                {"rule": "x > 1", "ranges": []}]}"#,
        )
        .unwrap();
        assert_eq!(t.rule.as_deref(), Some("${proctor:contains(__COUNTRIES, country) && lang == 'en'}"));
        assert_eq!(t.constants["B"], 3);
        assert_eq!(t.constants.keys().collect::<Vec<_>>(), ["A", "B", "__COUNTRIES"]);
        assert_eq!(t.allocations[0].rule, None);
        assert_eq!(t.allocations[1].rule.as_deref(), Some("${x > 1}"));
    }

    #[test]
    fn boolean_payloads_export_as_json() {
        let (m, _) = MatrixDocument::from_json(
            r#"{"audit": {}, "tests": {"f": {"testType": "USER", "targets": [{"bucketValue": 1, "identifiers": ["u"]}],
              "buckets": [{"name": "off", "value": 0, "payload": {"booleanValue": false}}, {"name": "on", "value": 1, "payload": {"booleanValue": true}}],
              "allocations": [{"ranges": [{"bucketValue": 1, "length": 1}]}]}}}"#,
        )
        .unwrap();
        let proctor = m.to_json(true);
        assert_eq!(proctor["tests"]["f"]["buckets"][1]["payload"], serde_json::json!({"json": true}));
        assert!(proctor["tests"]["f"].get("targets").is_none());
        let ours = m.to_json(false);
        assert_eq!(ours["tests"]["f"]["buckets"][0]["payload"], serde_json::json!({"booleanValue": false}));
        let (back, d) = MatrixDocument::from_json(&ours.to_string()).unwrap();
        assert!(d.is_empty());
        assert_eq!(back, m);
    }
}
