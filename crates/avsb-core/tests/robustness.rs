//! The parser, the compiler and the evaluator never panic on arbitrary input, and buckets are
//! uniform over random identifiers within statistical bounds.

use std::borrow::Cow;

use avsb_core::{bucketing, pipet, ContextSchema, ForceGroups, CompiledMatrix, MatrixDocument, Value};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

/// Fragments rules are made of, so random rules are often nearly valid and reach deep code.
const RULE_PARTS: &[&str] = &[
    "${", "}", "country", "loggedIn", "age", "C", "==", "!=", "<", ">=", "&&", "||", "!", "not", "empty", "(", ")",
    "'US'", "\"x\"", "5", "2.5", "-", "+", "*", "/", "%", "?", ":", "null", "true", "false", "proctor:contains(",
    "proctor:version('1.2.x')", "fn:length(", "fn:substring(", ",", "proctor:matches(", "'^a.*$'", ".", "[0]", "mod",
    "div", "indeed:now()", "proctor:versionInRange(", "ua.mobileDevice", "missingExperimentalUnit", " ",
];

fn rule() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        proptest::collection::vec(proptest::sample::select(RULE_PARTS), 0..14).prop_map(|p| Some(p.concat())),
        ".{0,40}".prop_map(Some),
    ]
}

fn scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        (-3i64..5).prop_map(Json::from),
        (-1.0f64..2.0).prop_map(Json::from),
        "[a-z0-9 .-]{0,6}".prop_map(Json::from),
    ]
}

fn payload() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        scalar().prop_map(|v| json!({"stringValue": v})),
        scalar().prop_map(|v| json!({"longValue": v})),
        scalar().prop_map(|v| json!({"doubleArray": [v]})),
        scalar().prop_map(|v| json!({"map": {"k": v}})),
        scalar().prop_map(|v| json!({"json": v, "longValue": 1})),
        any::<bool>().prop_map(|b| json!({"booleanValue": b})),
    ]
}

fn test_definition(names: Vec<String>) -> impl Strategy<Value = Json> {
    (
        proptest::sample::select(vec!["USER", "ACCOUNT", "RANDOM", "PAGE", "device", "bogus", ""]),
        proptest::option::of("[a-z&]{0,5}"),
        rule(),
        proptest::collection::vec((-2i32..4, "[a-z]{0,4}", payload()), 0..4),
        proptest::collection::vec((rule(), proptest::collection::vec((-2i32..4, 0.0f64..1.2), 0..4)), 0..3),
        proptest::option::of((proptest::sample::select(names), -1i32..3)),
        proptest::collection::vec((-1i32..3, "[a-z0-9]{0,3}"), 0..3),
        scalar(),
    )
        .prop_map(|(test_type, salt, rule, buckets, allocations, depends_on, targets, constant)| {
            json!({
                "testType": test_type, "salt": salt, "rule": rule,
                "constants": {"C": constant, "LIST": [constant]},
                "buckets": buckets.into_iter().map(|(v, n, p)| json!({"value": v, "name": n, "payload": p})).collect::<Vec<_>>(),
                "allocations": allocations.into_iter().map(|(rule, ranges)| json!({
                    "rule": rule,
                    "ranges": ranges.into_iter().map(|(b, l)| json!({"bucketValue": b, "length": l})).collect::<Vec<_>>(),
                })).collect::<Vec<_>>(),
                "dependsOn": depends_on.map(|(t, v)| json!({"testName": t, "bucketValue": v})),
                "targets": targets.into_iter().map(|(b, id)| json!({"bucketValue": b, "identifiers": [id]})).collect::<Vec<_>>(),
                "evaluateForIncognitoUsers": rule.is_some(),
            })
        })
}

fn matrix() -> impl Strategy<Value = Json> {
    let names: Vec<String> = ["a", "b", "c", "d1", "e"].iter().map(|s| s.to_string()).collect();
    proptest::collection::vec(test_definition(names.clone()), 1..5).prop_map(move |tests| {
        let tests: serde_json::Map<String, Json> = names.iter().cloned().zip(tests).collect();
        json!({"audit": {"version": 3, "updated": 5}, "tests": tests})
    })
}

fn schema(permissive: bool) -> ContextSchema {
    if permissive {
        return ContextSchema::permissive();
    }
    let doc = json!({
        "context": {
            "country": {"source": "QUERY", "type": "String", "defaultValue": "US"},
            "loggedIn": {"source": "QUERY", "type": "boolean", "defaultValue": "false"},
            "age": {"source": "QUERY", "type": "int", "defaultValue": "30"},
            "ua": {"source": "HEADER", "sourceKey": "User-Agent", "type": "UserAgent", "defaultValue": ""},
            "isIncognitoUser": {"source": "QUERY", "type": "String", "defaultValue": "false"}
        },
        "identifiers": {"USER": {"source": "QUERY"}, "ACCOUNT": {"source": "QUERY"}, "device": {"source": "QUERY"}}
    });
    ContextSchema::from_value(&doc).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn reading_arbitrary_text_never_panics(text in ".{0,200}") {
        let _ = MatrixDocument::from_json(&text);
        let _ = CompiledMatrix::compile_json(&text, &ContextSchema::permissive());
        let _ = ContextSchema::from_json(&text);
        let _ = ForceGroups::parse(&text);
        let _ = avsb_core::reader::read_stored_test(&text);
    }

    #[test]
    fn compiling_and_evaluating_random_matrices_never_panics(
        doc in matrix(),
        permissive in any::<bool>(),
        user in proptest::option::of("[a-z0-9]{0,4}"),
        country in "[A-Z]{0,2}",
        age in "-?[0-9]{0,3}",
        incognito in proptest::sample::select(vec!["true", "TRUE", "false", "x"]),
        force in "[a-e0-9,;:_ -]{0,16}|default_to_min_live,a1|default_to_fallback",
        tests in proptest::option::of("[a-e, ]{0,6}"),
        seed in proptest::option::of(any::<u64>()),
    ) {
        let compiled = CompiledMatrix::compile_json(&doc.to_string(), &schema(permissive)).unwrap();
        // Whatever was dropped, the rest evaluates; every evaluated test has a reason.
        let params = pipet::IdentifyParams {
            identifiers: user.iter().map(|u| ("USER".to_string(), u.clone())).collect(),
            context: vec![
                ("country".into(), country),
                ("age".into(), age),
                ("isIncognitoUser".into(), incognito.into()),
            ],
            tests,
            force_groups: Some(force),
            full_force: seed.is_some_and(|s| s % 2 == 0),
            now_millis: Some(1_700_000_000_000),
            random_seed: seed,
        };
        if let Ok(data) = pipet::identify(&compiled.matrix, &params) {
            let groups = data["groups"].as_object().unwrap();
            for name in groups.keys() {
                prop_assert!(compiled.matrix.test_names().any(|t| t == name));
            }
        }
        let mut request = compiled.matrix.request();
        if let Some(slot) = compiled.matrix.identifier_slot("USER") {
            request.identifiers[slot] = Some(Cow::Borrowed("u"));
        }
        for slot in 0..request.context.len() {
            request.context[slot] = Some(Value::long(slot as i64));
        }
        for name in compiled.matrix.test_names() {
            prop_assert!(compiled.matrix.evaluate_test(name, &request).is_some());
        }
    }
}

/// Pearson's chi-square over `buckets` expected shares, from `n` random identifiers.
fn chi_square(prefix: &[u8], lengths: &[f64], n: usize, seed: u64) -> f64 {
    let cutoffs = bucketing::cutoffs(lengths.iter().copied());
    let mut counts = vec![0usize; lengths.len()];
    let mut state = seed;
    for _ in 0..n {
        // splitmix64: random identifiers of random length and alphabet.
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let id = format!("{z:x}-{}", z % 977);
        counts[bucketing::choose_range(&cutoffs, bucketing::hash(prefix, &id))] += 1;
    }
    lengths
        .iter()
        .zip(&counts)
        .map(|(share, &count)| {
            let expected = share * n as f64;
            (count as f64 - expected).powi(2) / expected
        })
        .sum()
}

#[test]
fn buckets_are_uniform_over_random_identifiers() {
    // Critical values of chi-square at p = 0.001: df 1: 10.83, df 3: 16.27, df 2: 13.82.
    let splits: [(&[f64], f64); 3] = [(&[0.5, 0.5], 10.83), (&[0.25; 4], 16.27), (&[0.1, 0.3, 0.6], 13.82)];
    for (salt, seed) in [("t|t", 1u64), ("&shared", 2), ("checkout|null", 3)] {
        for (lengths, critical) in splits {
            let chi2 = chi_square(salt.as_bytes(), lengths, 200_000, seed);
            assert!(chi2 < critical, "salt {salt} split {lengths:?}: chi-square {chi2:.2} >= {critical}");
        }
    }
}

#[test]
fn a_skewed_assignment_would_be_caught() {
    // The same statistic on a deliberately biased split: the bound is not vacuous.
    let chi2 = chi_square(b"t|t", &[0.5, 0.5], 200_000, 1);
    let biased = {
        let cutoffs = bucketing::cutoffs([0.52, 0.48]);
        let mut first = 0usize;
        for i in 0..200_000 {
            if bucketing::choose_range(&cutoffs, bucketing::hash(b"t|t", &i.to_string())) == 0 {
                first += 1;
            }
        }
        let expected = 100_000.0;
        2.0 * (first as f64 - expected).powi(2) / expected
    };
    assert!(chi2 < 10.83 && biased > 10.83, "fair {chi2:.2}, biased {biased:.2}");
}
