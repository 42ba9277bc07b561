//! The matrix document as Proctor writes it (docs/proctor.md §1): `TestMatrixArtifact`,
//! `ConsumableTestDefinition`, buckets, allocations and ranges, with our optional extensions, and
//! how they are written back. Reading them is `reader`'s (leniently, as Proctor's Jackson mapper
//! does); compiling them is `compile`'s.

use indexmap::IndexMap;
use serde_json::Value as Json;

use crate::json::plain_double;
pub use crate::payload::{Payload, PAYLOAD_TYPES};

/// CompiledMatrix metadata (`Audit`, docs/proctor.md §1.3).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Audit {
    /// The matrix version (numbers are coerced to text).
    pub version: Option<String>,
    /// Epoch milliseconds of the last change.
    pub updated: i64,
    /// Who changed it last.
    pub updated_by: Option<String>,
}

impl Audit {
    /// `updatedDate`: `yyyy-MM-dd'T'HH:mmZ` in zone US/Central, or `""` when `updated <= 0`.
    pub fn updated_date(&self) -> String {
        crate::uscentral::format_updated_date(self.updated)
    }

    /// The audit as Proctor and Pipet write it.
    pub fn to_json(&self) -> Json {
        serde_json::json!({
            "version": self.version,
            "updated": self.updated,
            "updatedDate": self.updated_date(),
            "updatedBy": self.updated_by,
        })
    }
}

/// One outcome of a test (`TestBucket`, docs/proctor.md §1.6).
#[derive(Debug, Clone, PartialEq)]
pub struct Bucket {
    /// The bucket's name (`""` when absent).
    pub name: String,
    /// The bucket's value; negative values are conventionally inactive.
    pub value: i32,
    /// A description.
    pub description: Option<String>,
    /// The bucket's payload.
    pub payload: Option<Payload>,
}

/// One part of an allocation's traffic (`Range`, docs/proctor.md §1.8).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Range {
    /// The bucket this range assigns.
    pub bucket_value: i32,
    /// Its share of the traffic, in [0, 1].
    pub length: f64,
}

/// A rule plus ranges (`Allocation`, docs/proctor.md §1.8).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Allocation {
    /// The allocation rule; `None` matches everyone.
    pub rule: Option<String>,
    /// The ranges, in order.
    pub ranges: Vec<Range>,
    /// The webapp's allocation id, e.g. `#A1`.
    pub id: String,
    /// A name.
    pub name: String,
}

/// `dependsOn` (docs/proctor.md §1.4).
#[derive(Debug, Clone, PartialEq)]
pub struct DependsOn {
    /// The parent test.
    pub test_name: String,
    /// The bucket value the parent must have been assigned.
    pub bucket_value: i32,
}

/// A list of identifiers that always get one bucket (A vs B extension).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The bucket they get.
    pub bucket_value: i32,
    /// The identifiers, of the test's identifier type.
    pub identifiers: Vec<String>,
}

/// One test (`ConsumableTestDefinition`, docs/proctor.md §1.4) with our optional extensions.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TestDefinition {
    /// Per-test version (numbers coerced to text).
    pub version: Option<String>,
    /// Hash salt (docs/proctor.md §2.5).
    pub salt: Option<String>,
    /// Eligibility rule.
    pub rule: Option<String>,
    /// Constants visible to this test's rules, in document order.
    pub constants: IndexMap<String, Json>,
    /// Buckets.
    pub buckets: Vec<Bucket>,
    /// Allocations, first matching wins.
    pub allocations: Vec<Allocation>,
    /// Consumer logging only.
    pub silent: bool,
    /// The identifier type (`USER`, ..., or a custom type declared in the schema).
    pub test_type: String,
    /// A description.
    pub description: Option<String>,
    /// Free tags.
    pub meta_tags: Vec<String>,
    /// The parent test this one depends on.
    pub depends_on: Option<DependsOn>,
    /// Informational.
    pub dynamic: bool,
    /// Evaluate even for requests with `isIncognitoUser=true`.
    pub evaluate_for_incognito_users: bool,
    /// Use the unitless chooser (docs/proctor.md §2.7).
    pub enable_unitless_allocations: bool,
    /// Computed by Proctor's builder (docs/proctor.md §2.7).
    pub contains_unitless_allocation: bool,
    /// Consumer logging only.
    pub force_logging: bool,
    /// Payload experiments (kept as written; not used for assignment).
    pub payload_experiment_config: Option<Json>,
    /// Identifiers that always get a bucket (A vs B extension).
    pub targets: Vec<Target>,
}

/// A whole matrix as read: its audit and its tests, in document order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MatrixDocument {
    /// The audit.
    pub audit: Audit,
    /// Tests by name, in document order.
    pub tests: IndexMap<String, TestDefinition>,
}

impl MatrixDocument {
    /// The matrix as Proctor writes it (`GET /proctor/matrix`): nulls kept, doubles in plain
    /// notation. With `proctor_only`, our extensions are left out and boolean payloads become
    /// `json`, so Proctor reads the same assignments.
    pub fn to_json(&self, proctor_only: bool) -> Json {
        let tests: serde_json::Map<_, _> =
            self.tests.iter().map(|(name, test)| (name.clone(), test.to_json(proctor_only))).collect();
        serde_json::json!({ "audit": self.audit.to_json(), "tests": tests })
    }
}

impl TestDefinition {
    /// The test as Proctor writes it. With `proctor_only`, extensions are dropped and boolean
    /// payloads exported as `json`.
    pub fn to_json(&self, proctor_only: bool) -> Json {
        let buckets: Vec<Json> = self
            .buckets
            .iter()
            .map(|b| {
                let mut o = serde_json::Map::new();
                o.insert("name".into(), b.name.clone().into());
                o.insert("value".into(), b.value.into());
                if let Some(d) = &b.description {
                    o.insert("description".into(), d.clone().into());
                }
                if let Some(p) = &b.payload {
                    let p = if proctor_only { p.to_proctor() } else { p.clone() };
                    let value = match &p {
                        Payload::DoubleValue(d) => plain_double(*d),
                        Payload::DoubleArray(items) => {
                            Json::Array(items.iter().map(|d| d.map_or(Json::Null, plain_double)).collect())
                        }
                        other => other.value_json(),
                    };
                    let payload = if p == Payload::Empty { serde_json::json!({}) } else { serde_json::json!({ p.type_name(): value }) };
                    o.insert("payload".into(), payload);
                }
                Json::Object(o)
            })
            .collect();
        let allocations: Vec<Json> = self
            .allocations
            .iter()
            .map(|a| {
                serde_json::json!({
                    "id": a.id,
                    "name": a.name,
                    "rule": a.rule,
                    "ranges": a.ranges.iter().map(|r| serde_json::json!({
                        "bucketValue": r.bucket_value,
                        "length": plain_double(r.length),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut o = serde_json::json!({
            "version": self.version,
            "salt": self.salt,
            "rule": self.rule,
            "constants": self.constants,
            "buckets": buckets,
            "allocations": allocations,
            "silent": self.silent,
            "testType": self.test_type,
            "description": self.description,
            "metaTags": self.meta_tags,
            "dependsOn": self.depends_on.as_ref().map(|d| serde_json::json!({"testName": d.test_name, "bucketValue": d.bucket_value})),
            "dynamic": self.dynamic,
            "evaluateForIncognitoUsers": self.evaluate_for_incognito_users,
            "enableUnitlessAllocations": self.enable_unitless_allocations,
            "containsUnitlessAllocation": self.contains_unitless_allocation,
            "forceLogging": self.force_logging,
            "payloadExperimentConfig": self.payload_experiment_config,
        });
        if !proctor_only && !self.targets.is_empty() {
            if let Some(obj) = o.as_object_mut() {
                obj.insert(
                    "targets".into(),
                    self.targets
                        .iter()
                        .map(|t| serde_json::json!({"bucketValue": t.bucket_value, "identifiers": t.identifiers}))
                        .collect(),
                );
            }
        }
        o
    }
}

/// `ProctorUtils.removeElExpressionBraces`: trims, then strips one outer `${` ... `}`.
pub fn remove_el_braces(rule: &str) -> String {
    let t = rule.trim();
    match t.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(inner) => inner.trim().to_string(),
        None => t.to_string(),
    }
}

/// Whether an allocation rule is "unitless" (docs/proctor.md §2.7): it mentions
/// `missingExperimentalUnit`, not negated with `!` and not compared with `== false`.
pub fn is_unitless_rule(rule: &str) -> bool {
    const NAME: &str = "missingExperimentalUnit";
    let compact: String = rule.chars().filter(|c| !c.is_whitespace()).collect();
    compact.contains(NAME)
        && !compact.contains(&format!("!{NAME}"))
        && !compact.contains(&format!("{NAME}==false"))
        && !compact.contains(&format!("false=={NAME}"))
}
