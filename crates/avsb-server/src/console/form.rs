//! The test editor's form: a test definition as named fields (buckets, allocations and their
//! ranges in percent, targets, the test's rule, salt, identifier type), read back into the JSON
//! definition the admin API takes, so the engine reads and checks it exactly as it reads the
//! API's. Problems are attached to the field they belong to (by the engine's diagnostic path).

use avsb_core::document::TestDefinition;
use avsb_core::Diagnostic;
use serde_json::{json, Map, Value};

use super::format::percent_number;

/// The payload types an editor picks from (Proctor's, and our boolean).
pub const PAYLOAD_TYPES: [&str; 9] =
    ["stringValue", "booleanValue", "longValue", "doubleValue", "json", "stringArray", "longArray", "doubleArray", "map"];

/// One bucket as the form holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BucketField {
    /// The value, as typed.
    pub value: String,
    /// The name.
    pub name: String,
    /// The description.
    pub description: String,
    /// A payload type of [`PAYLOAD_TYPES`], or empty for none.
    pub payload_type: String,
    /// The payload's value, as typed (JSON for arrays, maps and `json`).
    pub payload: String,
}

/// One range as the form holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RangeField {
    /// The bucket value, as typed.
    pub bucket: String,
    /// The share in percent, as typed.
    pub percent: String,
}

/// One allocation as the form holds it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AllocationField {
    /// The rule (`${...}`), empty for everyone.
    pub rule: String,
    /// The ranges, in hash order.
    pub ranges: Vec<RangeField>,
}

/// A test definition as the editor's fields hold it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DefinitionForm {
    /// The identifier type.
    pub test_type: String,
    /// The salt.
    pub salt: String,
    /// The description.
    pub description: String,
    /// The test's eligibility rule.
    pub rule: String,
    /// The parent test of `dependsOn`, empty for none.
    pub depends_test: String,
    /// The parent's bucket value.
    pub depends_bucket: String,
    /// The buckets.
    pub buckets: Vec<BucketField>,
    /// The allocations.
    pub allocations: Vec<AllocationField>,
    /// Targets, one line each: `bucket: id, id, ...` (by bucket name or value).
    pub targets: String,
    /// The constants, as a JSON object.
    pub constants: String,
}

/// A problem with one field (its id in the page) in words.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldProblem {
    /// The field's element id (`bucket-1-payload`), or `summary` for the test as a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn payload_text(payload: &Value) -> (String, String) {
    let Some((kind, value)) = payload.as_object().and_then(|o| o.iter().find(|(_, v)| !v.is_null())) else {
        return (String::new(), String::new());
    };
    let text = match (kind.as_str(), value) {
        ("stringValue", Value::String(s)) => s.clone(),
        ("longValue" | "doubleValue" | "booleanValue", v) => v.to_string(),
        (_, v) => v.to_string(),
    };
    (kind.clone(), text)
}

impl DefinitionForm {
    /// The form of an existing definition.
    pub fn of(definition: &TestDefinition) -> DefinitionForm {
        let json = definition.to_json(false);
        let buckets = json["buckets"]
            .as_array()
            .map(|bs| {
                bs.iter()
                    .map(|b| {
                        let (payload_type, payload) = payload_text(&b["payload"]);
                        BucketField {
                            value: b["value"].to_string(),
                            name: b["name"].as_str().unwrap_or_default().to_string(),
                            description: b["description"].as_str().unwrap_or_default().to_string(),
                            payload_type,
                            payload,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        let names = |value: i32| {
            definition.buckets.iter().find(|b| b.value == value).map(|b| b.name.clone()).filter(|n| !n.is_empty())
        };
        DefinitionForm {
            test_type: definition.test_type.clone(),
            salt: definition.salt.clone().unwrap_or_default(),
            description: definition.description.clone().unwrap_or_default(),
            rule: definition.rule.clone().unwrap_or_default(),
            depends_test: definition.depends_on.as_ref().map(|d| d.test_name.clone()).unwrap_or_default(),
            depends_bucket: definition.depends_on.as_ref().map(|d| d.bucket_value.to_string()).unwrap_or_default(),
            buckets,
            allocations: definition
                .allocations
                .iter()
                .map(|a| AllocationField {
                    rule: a.rule.clone().unwrap_or_default(),
                    ranges: a
                        .ranges
                        .iter()
                        .map(|r| RangeField { bucket: r.bucket_value.to_string(), percent: percent_number(r.length) })
                        .collect(),
                })
                .collect(),
            targets: definition
                .targets
                .iter()
                .map(|t| format!("{}: {}", names(t.bucket_value).unwrap_or_else(|| t.bucket_value.to_string()), t.identifiers.join(", ")))
                .collect::<Vec<_>>()
                .join("\n"),
            constants: if definition.constants.is_empty() {
                String::new()
            } else {
                serde_json::to_string_pretty(&definition.constants).unwrap_or_default()
            },
        }
    }

    /// Reads the editor's fields (`bucket.0.name`, `alloc.1.range.0.percent`, ...). Rows marked
    /// `remove` are left out; `action` adds a row (`add_bucket`, `add_allocation`,
    /// `add_range.<allocation>`).
    pub fn from_fields(fields: &[(String, String)]) -> DefinitionForm {
        let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default();
        let has = |name: &str| fields.iter().any(|(k, _)| k == name);
        let count = |prefix: &str| {
            fields
                .iter()
                .filter_map(|(k, _)| k.strip_prefix(prefix)?.split('.').next()?.parse::<usize>().ok())
                .map(|i| i + 1)
                .max()
                .unwrap_or(0)
        };
        let mut form = DefinitionForm {
            test_type: get("test_type"),
            salt: get("salt"),
            description: get("description"),
            rule: get("rule"),
            depends_test: get("depends_test"),
            depends_bucket: get("depends_bucket"),
            targets: get("targets"),
            constants: get("constants"),
            ..DefinitionForm::default()
        };
        for i in 0..count("bucket.") {
            let p = |f: &str| format!("bucket.{i}.{f}");
            if !has(&p("value")) || has(&p("remove")) {
                continue;
            }
            form.buckets.push(BucketField {
                value: get(&p("value")),
                name: get(&p("name")),
                description: get(&p("description")),
                payload_type: get(&p("payload_type")),
                payload: get(&p("payload")),
            });
        }
        for i in 0..count("alloc.") {
            let p = |f: &str| format!("alloc.{i}.{f}");
            if !has(&p("rule")) || has(&p("remove")) {
                continue;
            }
            let mut allocation = AllocationField { rule: get(&p("rule")), ranges: Vec::new() };
            for j in 0..count(&format!("alloc.{i}.range.")) {
                let r = |f: &str| format!("alloc.{i}.range.{j}.{f}");
                if !has(&r("bucket")) || has(&r("remove")) {
                    continue;
                }
                allocation.ranges.push(RangeField { bucket: get(&r("bucket")), percent: get(&r("percent")) });
            }
            form.allocations.push(allocation);
        }
        let action = get("action");
        if action == "add_bucket" {
            let next = form.buckets.iter().filter_map(|b| b.value.trim().parse::<i32>().ok()).max().map_or(0, |v| v + 1);
            let payload_type = form.buckets.first().map(|b| b.payload_type.clone()).unwrap_or_default();
            form.buckets.push(BucketField { value: next.to_string(), payload_type, ..BucketField::default() });
        } else if action == "add_allocation" {
            // A new rule goes before the last allocation (which serves everyone else).
            let at = form.allocations.len().saturating_sub(1);
            let ranges = vec![RangeField { bucket: form.buckets.first().map(|b| b.value.clone()).unwrap_or_default(), percent: "100".into() }];
            form.allocations.insert(at, AllocationField { rule: "${}".into(), ranges });
        } else if let Some(i) = action.strip_prefix("add_range.").and_then(|i| i.parse::<usize>().ok()) {
            if let Some(allocation) = form.allocations.get_mut(i) {
                allocation.ranges.push(RangeField { bucket: form.buckets.first().map(|b| b.value.clone()).unwrap_or_default(), percent: "0".into() });
            }
        }
        form
    }

    /// The definition as the admin API takes it (`definition` of `PUT .../tests/{test}`), with
    /// the fields of `base` the form does not show kept as they were; or the problems of the
    /// fields that could not even be read (numbers that are not numbers, JSON that is not JSON).
    pub fn to_json(&self, base: Option<&TestDefinition>) -> Result<Value, Vec<FieldProblem>> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: String| problems.push(FieldProblem { field, message });
        let mut out: Map<String, Value> = base.map(|b| b.to_json(false)).and_then(|v| v.as_object().cloned()).unwrap_or_default();
        out.remove("version");
        let text_or_null = |t: &str| if t.trim().is_empty() { Value::Null } else { Value::String(t.trim().to_string()) };
        out.insert("testType".into(), Value::String(self.test_type.trim().to_string()));
        out.insert("salt".into(), text_or_null(&self.salt));
        out.insert("description".into(), text_or_null(&self.description));
        out.insert("rule".into(), text_or_null(&self.rule));
        let bucket_values: Vec<(String, i64)> = self
            .buckets
            .iter()
            .filter_map(|b| b.value.trim().parse::<i64>().ok().map(|v| (b.name.trim().to_string(), v)))
            .collect();
        let mut buckets = Vec::new();
        for (i, b) in self.buckets.iter().enumerate() {
            let mut bucket = Map::new();
            match b.value.trim().parse::<i64>() {
                Ok(v) => bucket.insert("value".into(), json!(v)),
                Err(_) => {
                    problem(format!("bucket-{i}-value"), format!("Bucket {}: the value must be a whole number", i + 1));
                    continue;
                }
            };
            bucket.insert("name".into(), Value::String(b.name.trim().to_string()));
            if !b.description.trim().is_empty() {
                bucket.insert("description".into(), Value::String(b.description.trim().to_string()));
            }
            if !b.payload_type.is_empty() {
                let raw = b.payload.trim();
                let value = match b.payload_type.as_str() {
                    "stringValue" => Some(Value::String(b.payload.clone())),
                    "booleanValue" => match raw {
                        "true" => Some(Value::Bool(true)),
                        "false" => Some(Value::Bool(false)),
                        _ => {
                            problem(format!("bucket-{i}-payload"), format!("Bucket {}: a boolean payload is true or false", i + 1));
                            None
                        }
                    },
                    "longValue" | "doubleValue" => match serde_json::from_str::<Value>(raw) {
                        Ok(v @ Value::Number(_)) => Some(v),
                        _ => {
                            problem(format!("bucket-{i}-payload"), format!("Bucket {}: the payload must be a number", i + 1));
                            None
                        }
                    },
                    _ => match serde_json::from_str::<Value>(raw) {
                        Ok(v) => Some(v),
                        Err(e) => {
                            problem(format!("bucket-{i}-payload"), format!("Bucket {}: the payload is not valid JSON ({e})", i + 1));
                            None
                        }
                    },
                };
                if let Some(value) = value {
                    bucket.insert("payload".into(), json!({ b.payload_type.clone(): value }));
                }
            }
            buckets.push(Value::Object(bucket));
        }
        out.insert("buckets".into(), Value::Array(buckets));
        let mut allocations = Vec::new();
        for (i, a) in self.allocations.iter().enumerate() {
            let mut ranges = Vec::new();
            for (j, r) in a.ranges.iter().enumerate() {
                let bucket = r.bucket.trim().parse::<i64>();
                let percent = r.percent.trim().parse::<f64>();
                match (&bucket, &percent) {
                    (Ok(b), Ok(p)) if p.is_finite() && (0.0..=100.0).contains(p) => {
                        ranges.push(json!({"bucketValue": b, "length": p / 100.0}));
                    }
                    (Err(_), _) => problem(format!("alloc-{i}-range-{j}-bucket"), format!("Allocation {}, range {}: choose a bucket", i + 1, j + 1)),
                    _ => problem(
                        format!("alloc-{i}-range-{j}-percent"),
                        format!("Allocation {}, range {}: the share is a number from 0 to 100", i + 1, j + 1),
                    ),
                }
            }
            let mut allocation = Map::new();
            allocation.insert("rule".into(), text_or_null(&a.rule));
            allocation.insert("ranges".into(), Value::Array(ranges));
            if let Some(Value::Array(old)) = out.get("allocations") {
                // Keep an allocation's id and name from the definition it came from.
                if let Some(prev) = old.get(i) {
                    for key in ["id", "name"] {
                        if let Some(v) = prev.get(key) {
                            allocation.insert(key.into(), v.clone());
                        }
                    }
                }
            }
            allocations.push(Value::Object(allocation));
        }
        out.insert("allocations".into(), Value::Array(allocations));
        out.insert(
            "dependsOn".into(),
            if self.depends_test.trim().is_empty() {
                Value::Null
            } else {
                match self.depends_bucket.trim().parse::<i64>() {
                    Ok(v) => json!({"testName": self.depends_test.trim(), "bucketValue": v}),
                    Err(_) => {
                        problem("depends_bucket".into(), "Depends on: the parent's bucket value must be a whole number".into());
                        Value::Null
                    }
                }
            },
        );
        let mut targets = Vec::new();
        for (n, line) in self.targets.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            let Some((bucket, ids)) = line.split_once(':') else {
                problem("targets".into(), format!("Targets, line {}: write 'bucket: id, id, ...'", n + 1));
                continue;
            };
            let bucket = bucket.trim();
            let value = bucket_values
                .iter()
                .find(|(name, _)| name == bucket)
                .map(|(_, v)| *v)
                .or_else(|| bucket.parse::<i64>().ok());
            let Some(value) = value else {
                problem("targets".into(), format!("Targets, line {}: there is no bucket '{bucket}'", n + 1));
                continue;
            };
            let ids: Vec<&str> = ids.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
            targets.push(json!({"bucketValue": value, "identifiers": ids}));
        }
        out.insert("targets".into(), Value::Array(targets));
        if self.constants.trim().is_empty() {
            out.insert("constants".into(), json!({}));
        } else {
            match serde_json::from_str::<Value>(&self.constants) {
                Ok(v @ Value::Object(_)) => {
                    out.insert("constants".into(), v);
                }
                _ => problem("constants".into(), "Constants: write a JSON object, such as {\"COUNTRIES\": [\"US\"]}".into()),
            }
        }
        if problems.is_empty() { Ok(Value::Object(out)) } else { Err(problems) }
    }

    /// The sum of each allocation's shares, in percent (`None` where a share is not a number).
    pub fn sums(&self) -> Vec<Option<f64>> {
        self.allocations
            .iter()
            .map(|a| a.ranges.iter().map(|r| r.percent.trim().parse::<f64>().ok()).sum::<Option<f64>>())
            .collect()
    }
}

/// The field an engine diagnostic is about (`tests.t.allocations[0].ranges` → `alloc-0-sum`).
pub fn field_of(diagnostic: &Diagnostic) -> String {
    let path = diagnostic.path.splitn(3, '.').nth(2).unwrap_or_default();
    let index = |text: &str, prefix: &str| -> Option<(usize, String)> {
        let rest = text.strip_prefix(prefix)?;
        let (i, tail) = rest.split_once(']')?;
        Some((i.parse().ok()?, tail.to_string()))
    };
    if let Some((i, tail)) = index(path, "buckets[") {
        let part = if tail.starts_with(".payload") { "payload" } else if tail.starts_with(".name") { "name" } else { "value" };
        return format!("bucket-{i}-{part}");
    }
    if let Some((i, tail)) = index(path, "allocations[") {
        if tail == ".rule" {
            return format!("alloc-{i}-rule");
        }
        if let Some((j, tail)) = index(tail.trim_start_matches('.'), "ranges[") {
            return if tail.contains("bucketValue") { format!("alloc-{i}-range-{j}-bucket") } else { format!("alloc-{i}-range-{j}-percent") };
        }
        return format!("alloc-{i}-sum");
    }
    let head = path.split(['.', '[']).next().unwrap_or_default();
    match head {
        "rule" => "rule".into(),
        "salt" => "salt".into(),
        "testType" => "test_type".into(),
        "dependsOn" => "depends_test".into(),
        "targets" => "targets".into(),
        "constants" => "constants".into(),
        "buckets" => "bucket-0-value".into(),
        _ => "summary".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use avsb_core::document::{Allocation, Bucket, Range, Target};
    use avsb_core::Payload;

    fn definition() -> TestDefinition {
        TestDefinition {
            test_type: "USER".into(),
            salt: Some("s".into()),
            buckets: vec![
                Bucket { name: "off".into(), value: 0, description: None, payload: Some(Payload::BooleanValue(false)) },
                Bucket { name: "on".into(), value: 1, description: Some("new".into()), payload: Some(Payload::BooleanValue(true)) },
            ],
            allocations: vec![Allocation {
                ranges: vec![Range { bucket_value: 0, length: 0.9 }, Range { bucket_value: 1, length: 0.1 }],
                ..Allocation::default()
            }],
            targets: vec![Target { bucket_value: 1, identifiers: vec!["u_1".into(), "u_2".into()] }],
            ..TestDefinition::default()
        }
    }

    /// The fields a browser would post for a form.
    fn post(form: &DefinitionForm) -> Vec<(String, String)> {
        let mut out = vec![
            ("test_type".into(), form.test_type.clone()),
            ("salt".into(), form.salt.clone()),
            ("rule".into(), form.rule.clone()),
            ("targets".into(), form.targets.clone()),
            ("description".into(), form.description.clone()),
            ("constants".into(), form.constants.clone()),
        ];
        for (i, b) in form.buckets.iter().enumerate() {
            out.push((format!("bucket.{i}.value"), b.value.clone()));
            out.push((format!("bucket.{i}.name"), b.name.clone()));
            out.push((format!("bucket.{i}.description"), b.description.clone()));
            out.push((format!("bucket.{i}.payload_type"), b.payload_type.clone()));
            out.push((format!("bucket.{i}.payload"), b.payload.clone()));
        }
        for (i, a) in form.allocations.iter().enumerate() {
            out.push((format!("alloc.{i}.rule"), a.rule.clone()));
            for (j, r) in a.ranges.iter().enumerate() {
                out.push((format!("alloc.{i}.range.{j}.bucket"), r.bucket.clone()));
                out.push((format!("alloc.{i}.range.{j}.percent"), r.percent.clone()));
            }
        }
        out
    }

    #[test]
    fn a_definition_survives_the_form_unchanged() {
        let original = definition();
        let form = DefinitionForm::of(&original);
        assert_eq!(form.allocations[0].ranges[1].percent, "10");
        assert_eq!(form.targets, "on: u_1, u_2");
        let back = DefinitionForm::from_fields(&post(&form));
        assert_eq!(back, form);
        let json = back.to_json(Some(&original)).unwrap();
        let read = crate::ops::input::read_definition("t", &json, None).unwrap();
        assert!(crate::ops::edit::same_definition(&read, &original), "{json}");
    }

    #[test]
    fn rows_are_added_and_removed_and_bad_numbers_named() {
        let form = DefinitionForm::of(&definition());
        let mut fields = post(&form);
        fields.push(("action".into(), "add_bucket".into()));
        fields.push(("alloc.0.range.0.remove".into(), "on".into()));
        let changed = DefinitionForm::from_fields(&fields);
        assert_eq!(changed.buckets.len(), 3);
        assert_eq!(changed.buckets[2].value, "2");
        assert_eq!(changed.allocations[0].ranges.len(), 1);
        let mut bad = form;
        bad.allocations[0].ranges[0].percent = "ninety".into();
        bad.buckets[0].payload = "maybe".into();
        let problems = bad.to_json(None).unwrap_err();
        let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["bucket-0-payload", "alloc-0-range-0-percent"]);
    }

    #[test]
    fn diagnostics_point_at_their_field() {
        let d = |path: &str| field_of(&Diagnostic::error("t", format!("tests.t.{path}"), "x", "y"));
        assert_eq!(d("allocations[1].ranges"), "alloc-1-sum");
        assert_eq!(d("allocations[0].ranges[2].bucketValue"), "alloc-0-range-2-bucket");
        assert_eq!(d("allocations[3].rule"), "alloc-3-rule");
        assert_eq!(d("buckets[1].payload"), "bucket-1-payload");
        assert_eq!(d("rule"), "rule");
        assert_eq!(d("dependsOn"), "depends_test");
        assert_eq!(d("targets[0].bucketValue"), "targets");
    }
}
