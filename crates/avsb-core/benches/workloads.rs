//! The workloads of the shared performance anchors, written as Proctor tests (W1–W4).

#![allow(dead_code)]

use serde_json::{json, Value};

/// W1: one boolean test, 50/50 on the user identifier.
pub fn w1_test(name: &str) -> Value {
    json!({
        "version": "1", "salt": name, "testType": "USER", "rule": null, "constants": {},
        "buckets": [
            {"name": "off", "value": 0, "payload": {"booleanValue": false}},
            {"name": "on", "value": 1, "payload": {"booleanValue": true}}
        ],
        "allocations": [{"rule": null, "ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}]
    })
}

/// W2: a string test with three rules checked in order (country in [US, CA] -> red,
/// plan == 'pro' -> green, version >= 2.0.0 -> blue), else a 34/33/33 split.
pub fn w2_test(name: &str) -> Value {
    json!({
        "version": "1", "salt": name, "testType": "USER", "rule": null,
        "constants": {"COUNTRIES": ["US", "CA"]},
        "buckets": [
            {"name": "control", "value": 0, "payload": {"stringValue": "grey"}},
            {"name": "red", "value": 1, "payload": {"stringValue": "red"}},
            {"name": "green", "value": 2, "payload": {"stringValue": "green"}},
            {"name": "blue", "value": 3, "payload": {"stringValue": "blue"}}
        ],
        "allocations": [
            {"rule": "${proctor:contains(COUNTRIES, country)}", "ranges": [{"bucketValue": 1, "length": 1.0}]},
            {"rule": "${plan == 'pro'}", "ranges": [{"bucketValue": 2, "length": 1.0}]},
            {"rule": "${version >= proctor:version('2.0.0.0')}", "ranges": [{"bucketValue": 3, "length": 1.0}]},
            {"rule": null, "ranges": [
                {"bucketValue": 0, "length": 0.34}, {"bucketValue": 1, "length": 0.33}, {"bucketValue": 3, "length": 0.33}
            ]}
        ]
    })
}

/// The schema of W2's context.
pub fn schema() -> avsb_core::ContextSchema {
    let doc = json!({
        "context": {
            "country": {"source": "QUERY", "type": "String"},
            "plan": {"source": "QUERY", "type": "String"},
            "version": {"source": "QUERY", "type": "ReleaseVersion"}
        },
        "identifiers": {"USER": {"source": "QUERY"}}
    });
    match avsb_core::ContextSchema::from_value(&doc) {
        Ok(schema) => schema,
        Err(e) => panic!("workload schema: {e}"),
    }
}

/// A matrix of `n` tests, half of each kind (W3 uses 200, W4 10,000).
pub fn matrix(n: usize) -> String {
    let mut tests = serde_json::Map::new();
    for i in 0..n {
        if i % 2 == 0 {
            tests.insert(format!("w1_{i}"), w1_test(&format!("w1_{i}")));
        } else {
            tests.insert(format!("w2_{i}"), w2_test(&format!("w2_{i}")));
        }
    }
    json!({"audit": {"version": "1", "updated": 1, "updatedBy": "bench"}, "tests": tests}).to_string()
}

/// Distinct user identifiers, as a stream of callers would send them.
pub fn users(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user-{i:08x}")).collect()
}
