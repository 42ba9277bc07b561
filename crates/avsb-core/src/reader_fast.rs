//! The fast way to read a test: straight into typed fields, with the same lenient coercions
//! (`lenient`) as the tree reader (`reader`) but without building a JSON tree first. A test this cannot read
//! (or reads as invalid) is read again by the tree reader, which says precisely what is wrong,
//! so both agree on what is accepted and only broken tests pay twice.

use std::fmt;

use indexmap::IndexMap;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use crate::document::{Allocation, Bucket, DependsOn, Range, Target, TestDefinition};
use crate::lenient::{self, Scalar};

/// Reads one test, or `None` if only the tree reader can say what is wrong with it.
pub(crate) fn read_test(raw: &str) -> Option<TestDefinition> {
    let t: Test = serde_json::from_str(raw).ok()?;
    let buckets = t
        .buckets
        .unwrap_or_default()
        .into_iter()
        .map(|b| {
            let payload = match b.payload {
                None | Some(Json::Null) => None,
                Some(p) => Some(crate::payload::read_payload_json(&p).ok()??),
            };
            Some(Bucket { name: b.name.0.unwrap_or_default(), value: b.value.0, description: b.description.0, payload })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(TestDefinition {
        version: t.version.0,
        salt: t.salt.0,
        rule: t.rule.0,
        constants: t.constants.unwrap_or_default(),
        buckets,
        allocations: t
            .allocations
            .unwrap_or_default()
            .into_iter()
            .map(|a| Allocation {
                rule: a.rule.0,
                ranges: a
                    .ranges
                    .unwrap_or_default()
                    .into_iter()
                    .map(|r| Range { bucket_value: r.bucket_value.0, length: r.length.0 })
                    .collect(),
                id: a.id.0.unwrap_or_default(),
                name: a.name.0.unwrap_or_default(),
            })
            .collect(),
        silent: t.silent.0,
        test_type: t.test_type.0?,
        description: t.description.0,
        meta_tags: t.meta_tags.unwrap_or_default().into_iter().map(|m| m.0.unwrap_or_default()).collect(),
        depends_on: match t.depends_on {
            None => None,
            Some(d) => Some(DependsOn { test_name: d.test_name.0?, bucket_value: d.bucket_value.0 }),
        },
        dynamic: t.dynamic.0,
        evaluate_for_incognito_users: t.evaluate_for_incognito_users.0,
        enable_unitless_allocations: t.enable_unitless_allocations.0,
        contains_unitless_allocation: t.contains_unitless_allocation.0,
        force_logging: t.force_logging.0,
        payload_experiment_config: match t.payload_experiment_config {
            None | Some(Json::Null) => None,
            Some(o @ Json::Object(_)) => Some(o),
            Some(_) => return None,
        },
        targets: t
            .targets
            .unwrap_or_default()
            .into_iter()
            .map(|t| Target { bucket_value: t.bucket_value.0, identifiers: t.identifiers.unwrap_or_default() })
            .collect(),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Test {
    #[serde(default)]
    version: Text,
    #[serde(default)]
    salt: Text,
    #[serde(default)]
    rule: Text,
    #[serde(default)]
    constants: Option<IndexMap<String, Json>>,
    #[serde(default)]
    buckets: Option<Vec<TestBucket>>,
    #[serde(default)]
    allocations: Option<Vec<TestAllocation>>,
    #[serde(default)]
    silent: Flag,
    #[serde(default)]
    test_type: Text,
    #[serde(default)]
    description: Text,
    #[serde(default)]
    meta_tags: Option<Vec<Text>>,
    #[serde(default)]
    depends_on: Option<TestDependsOn>,
    #[serde(default)]
    dynamic: Flag,
    #[serde(default)]
    evaluate_for_incognito_users: Flag,
    #[serde(default)]
    enable_unitless_allocations: Flag,
    #[serde(default)]
    contains_unitless_allocation: Flag,
    #[serde(default)]
    force_logging: Flag,
    #[serde(default)]
    payload_experiment_config: Option<Json>,
    #[serde(default)]
    targets: Option<Vec<TestTarget>>,
}

#[derive(Deserialize)]
struct TestBucket {
    #[serde(default)]
    name: Text,
    #[serde(default)]
    value: Int,
    #[serde(default)]
    description: Text,
    #[serde(default)]
    payload: Option<Json>,
}

#[derive(Deserialize)]
struct TestAllocation {
    #[serde(default)]
    rule: Text,
    #[serde(default)]
    ranges: Option<Vec<TestRange>>,
    #[serde(default)]
    id: Text,
    #[serde(default)]
    name: Text,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestRange {
    #[serde(default)]
    bucket_value: Int,
    #[serde(default)]
    length: Double,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestDependsOn {
    #[serde(default)]
    test_name: Text,
    #[serde(default)]
    bucket_value: Int,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestTarget {
    #[serde(default)]
    bucket_value: Int,
    #[serde(default)]
    identifiers: Option<Vec<String>>,
}

/// A String field ([`lenient::text`]).
#[derive(Default)]
struct Text(Option<String>);

/// An int field ([`lenient::int`]).
#[derive(Default)]
struct Int(i32);

/// A double field ([`lenient::double`]).
#[derive(Default)]
struct Double(f64);

/// A boolean field ([`lenient::boolean`]).
#[derive(Default)]
struct Flag(bool);

/// Deserializes a scalar field by handing what the text holds to one of the shared coercions.
macro_rules! lenient_field {
    ($ty:ident, $coerce:path, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<$ty, D::Error> {
                struct V;
                impl V {
                    fn coerce<E: de::Error>(scalar: Scalar<'_>) -> Result<$ty, E> {
                        $coerce(scalar).map($ty).map_err(E::custom)
                    }
                }
                impl<'de> Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_unit<E: de::Error>(self) -> Result<$ty, E> {
                        V::coerce(Scalar::Null)
                    }
                    fn visit_bool<E: de::Error>(self, b: bool) -> Result<$ty, E> {
                        V::coerce(Scalar::Bool(b))
                    }
                    fn visit_i64<E: de::Error>(self, n: i64) -> Result<$ty, E> {
                        V::coerce(Scalar::I64(n))
                    }
                    fn visit_u64<E: de::Error>(self, n: u64) -> Result<$ty, E> {
                        match i64::try_from(n) {
                            Ok(n) => V::coerce(Scalar::I64(n)),
                            Err(_) => V::coerce(Scalar::U64(n)),
                        }
                    }
                    fn visit_f64<E: de::Error>(self, n: f64) -> Result<$ty, E> {
                        V::coerce(Scalar::F64(n))
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$ty, E> {
                        V::coerce(Scalar::Str(s))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

lenient_field!(Text, lenient::text, "a string");
lenient_field!(Int, lenient::int, "an integer");
lenient_field!(Double, lenient::double, "a number");
lenient_field!(Flag, lenient::boolean, "true or false");

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    /// The tree reader's result for the same text.
    fn slow(raw: &str) -> Option<crate::document::TestDefinition> {
        let doc = format!(r#"{{"audit": {{}}, "tests": {{"t": {raw}}}}}"#);
        let (m, d) = crate::document::MatrixDocument::from_json_slow(&doc).ok()?;
        if !d.is_empty() {
            return None;
        }
        m.tests.get("t").cloned()
    }

    fn scalar() -> impl Strategy<Value = serde_json::Value> {
        prop_oneof![
            Just(json!(null)),
            any::<bool>().prop_map(|b| json!(b)),
            (-3i64..3).prop_map(|n| json!(n)),
            Just(json!(3_000_000_000u64)),
            (-2.0f64..2.0).prop_map(|d| json!(d)),
            Just(json!(1e300)),
            prop_oneof![Just("1"), Just(" 2 "), Just("0.5"), Just("true"), Just("FALSE"), Just(""), Just("x"), Just("1e3")]
                .prop_map(|s| json!(s)),
            Just(json!([1])),
            Just(json!({"a": 1})),
        ]
    }

    /// Whatever the fast reader accepts, the tree reader reads identically. (Run on a thread
    /// with a larger stack: the strategy's value trees are deep in unoptimised builds.)
    #[test]
    fn the_fast_reader_agrees_with_the_tree_reader() {
        #[allow(clippy::result_large_err)] // proptest's own error type
        let check = || {
            let strategy = (
                (scalar(), scalar(), scalar(), scalar()),
                (scalar(), scalar(), scalar(), scalar()),
                prop_oneof![
                    Just(json!(null)),
                    scalar().prop_map(|v| json!({"longValue": v})),
                    scalar().prop_map(|v| json!({"stringValue": v, "json": v}))
                ],
                prop_oneof![Just(json!(null)), Just(json!({"A": [1, 2]})), scalar()],
                prop_oneof![Just(json!(null)), scalar().prop_map(|v| json!({"testName": v, "bucketValue": 1}))],
            );
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 400, ..ProptestConfig::default() });
            runner.run(&strategy, |((version, salt, test_type, silent), (value, name, length, bucket_value), payload, constants, depends)| {
                let raw = json!({
                    "version": version, "salt": salt, "testType": test_type, "silent": silent,
                    "constants": constants, "dependsOn": depends, "unknown": {"x": [1]},
                    "buckets": [{"name": name, "value": value, "payload": payload}],
                    "allocations": [{"ranges": [{"bucketValue": bucket_value, "length": length}]}],
                    "targets": [{"bucketValue": value, "identifiers": ["a"]}],
                })
                .to_string();
                if let Some(fast) = super::read_test(&raw) {
                    prop_assert_eq!(Some(fast), slow(&raw));
                }
                Ok(())
            })
        };
        let result = std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || check().map_err(|e| e.to_string()))
            .unwrap()
            .join()
            .unwrap();
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    #[test]
    fn duplicate_keys_and_odd_scalars_fall_back_to_the_tree_reader() {
        assert!(super::read_test(r#"{"testType": "USER", "salt": "a", "salt": "b"}"#).is_none());
        assert_eq!(slow(r#"{"testType": "USER", "salt": "a", "salt": "b"}"#).and_then(|t| t.salt), Some("b".into()));
        let fast = super::read_test(r#"{"testType": "USER", "version": 2.5, "buckets": [{"value": "3", "name": 7}]}"#).unwrap();
        assert_eq!(fast.version.as_deref(), Some("2.5"));
        assert_eq!((fast.buckets[0].value, fast.buckets[0].name.as_str()), (3, "7"));
    }
}
