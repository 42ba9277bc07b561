//! Proctor's bucketing, pinned: every row of the shared hash vectors through the whole engine,
//! and the 10-million-identifier golden aggregates of Proctor's own unit tests.

use std::path::PathBuf;

use avsb_core::{bucketing, pipet, ContextSchema, CompiledMatrix};

fn spec(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../spec").join(name)
}

struct Vector {
    test_name: String,
    salt: Option<String>,
    identifier: String,
    prefix: String,
    md5_hex: String,
    hash: i32,
    ranges: Vec<(i32, f64)>,
    cutoffs: Vec<i32>,
    bucket: i32,
}

fn vectors() -> Vec<Vector> {
    let text = std::fs::read_to_string(spec("proctor-hash-vectors.tsv")).unwrap();
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 9, "{line}");
            Vector {
                test_name: f[0].into(),
                salt: (f[1] != "(null)").then(|| f[1].to_string()),
                identifier: f[2].into(),
                prefix: f[3].into(),
                md5_hex: f[4].into(),
                hash: f[5].parse().unwrap(),
                ranges: f[6]
                    .split(',')
                    .map(|r| {
                        let (v, l) = r.split_once(':').unwrap();
                        (v.parse().unwrap(), l.parse().unwrap())
                    })
                    .collect(),
                cutoffs: f[7].trim_matches(['[', ']']).split(',').map(|c| c.parse().unwrap()).collect(),
                bucket: f[8].parse().unwrap(),
            }
        })
        .collect()
}

#[test]
fn the_spec_copy_matches_the_shared_reference() {
    let shared = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/reference/proctor-hash-vectors.tsv");
    if let Ok(reference) = std::fs::read_to_string(shared) {
        assert_eq!(std::fs::read_to_string(spec("proctor-hash-vectors.tsv")).unwrap(), reference);
    }
}

#[test]
fn every_hash_vector_matches_step_by_step() {
    let vectors = vectors();
    assert!(vectors.len() >= 22);
    for v in &vectors {
        let prefix = bucketing::salt_prefix(&v.test_name, v.salt.as_deref());
        assert_eq!(String::from_utf8_lossy(&prefix), v.prefix, "{}", v.test_name);
        let digest = bucketing::digest(&prefix, &v.identifier);
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, v.md5_hex, "{} {}", v.test_name, v.identifier);
        assert_eq!(bucketing::hash(&prefix, &v.identifier), v.hash);
        assert_eq!(bucketing::cutoffs(v.ranges.iter().map(|r| r.1)), v.cutoffs, "{}", v.test_name);
    }
}

#[test]
fn every_hash_vector_assigns_its_bucket_through_the_engine() {
    for v in vectors() {
        let mut values: Vec<i32> = v.ranges.iter().map(|r| r.0).collect();
        values.sort_unstable();
        values.dedup();
        let matrix = serde_json::json!({
            "audit": {"version": "1", "updated": 0, "updatedBy": "spec"},
            "tests": {v.test_name.clone(): {
                "salt": v.salt, "testType": "USER",
                "buckets": values.iter().map(|b| serde_json::json!({"name": format!("b{b}"), "value": b})).collect::<Vec<_>>(),
                "allocations": [{"rule": null, "ranges": v.ranges.iter().map(|(b, l)| serde_json::json!({"bucketValue": b, "length": l})).collect::<Vec<_>>()}],
            }},
        });
        let compiled = CompiledMatrix::compile_json(&matrix.to_string(), &ContextSchema::permissive()).unwrap();
        assert!(compiled.diagnostics.is_empty(), "{:?}", compiled.diagnostics);
        let params = pipet::IdentifyParams {
            identifiers: vec![("USER".into(), v.identifier.clone())],
            ..Default::default()
        };
        let data = pipet::identify(&compiled.matrix, &params).unwrap();
        assert_eq!(data["groups"][&v.test_name]["value"], v.bucket, "{} {}", v.test_name, v.identifier);
    }
}

/// 30 million MD5s: quick with dependencies optimised (see the workspace's dev profile).
#[test]
fn proctor_golden_aggregates_over_ten_million_identifiers() {
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(spec("proctor-aggregates.json")).unwrap()).unwrap();
    let count = doc["count"].as_u64().unwrap();
    let ranges: Vec<(i32, f64)> = doc["ranges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["bucketValue"].as_i64().unwrap() as i32, r["length"].as_f64().unwrap()))
        .collect();
    let cutoffs = bucketing::cutoffs(ranges.iter().map(|r| r.1));
    let cases = doc["cases"].as_array().unwrap().clone();
    assert_eq!(cases.len(), 3);
    let handles: Vec<_> = cases
        .into_iter()
        .map(|case| {
            let (cutoffs, ranges) = (cutoffs.clone(), ranges.clone());
            std::thread::spawn(move || {
                let prefix = bucketing::salt_prefix(case["testName"].as_str().unwrap(), case["salt"].as_str());
                let mut counts = [0u64; 3];
                let mut hashes = [0i32; 3];
                let mut buf = [0u8; 20];
                for i in 1..=count {
                    let range = bucketing::choose_range(&cutoffs, bucketing::hash(&prefix, decimal(i, &mut buf)));
                    counts[range] += 1;
                    hashes[range] = hashes[range].wrapping_mul(31).wrapping_add(i as i32);
                }
                for (range, (value, _)) in ranges.iter().enumerate() {
                    let expect = &case["expect"][value.to_string()];
                    if expect.is_null() {
                        assert_eq!(counts[range], 0, "{}", case["name"]);
                        continue;
                    }
                    assert_eq!(counts[range], expect["count"].as_u64().unwrap(), "{} count of {value}", case["name"]);
                    assert_eq!(i64::from(hashes[range]), expect["hash"].as_i64().unwrap(), "{} hash of {value}", case["name"]);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

/// `String.valueOf(n)` without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[i..]).unwrap()
}
