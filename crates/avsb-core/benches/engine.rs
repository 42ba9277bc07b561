//! W1–W4 of the shared performance anchors. Targets: W1 ≤ 200 ns, W2 ≤ 500 ns, W3 (200 tests,
//! one request) ≤ 40 µs, W4 (compile 10,000 tests) ≤ 100 ms. Each measured call builds the
//! request from plain values, as the peers' measurements build their contexts.

use std::borrow::Cow;
use std::hint::black_box;

use avsb_core::version::ReleaseVersion;
use avsb_core::{CompiledMatrix, Value};
use criterion::{criterion_group, criterion_main, Criterion};

mod workloads;

fn compile(text: &str) -> CompiledMatrix {
    let compiled = match CompiledMatrix::compile_json(text, &workloads::schema()) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    assert!(compiled.diagnostics.is_empty(), "{:?}", compiled.diagnostics);
    compiled.matrix
}

fn engine(c: &mut Criterion) {
    // Leaked once so requests can borrow them for any lifetime.
    let users: &'static [&'static str] =
        Vec::leak(workloads::users(4096).into_iter().map(|u| &*String::leak(u)).collect());
    let matrix = compile(&workloads::matrix(200));
    let user_slot = matrix.identifier_slot("USER").unwrap_or_default();
    let slots: Vec<usize> =
        ["country", "plan", "version"].iter().map(|v| matrix.variable_slot(v).unwrap_or_default()).collect();

    let mut i = 0usize;
    // The floor the product compares W1 with: one MD5 block over the same bytes.
    c.bench_function("floor: MD5 of salt and identifier (md-5 crate)", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            black_box(avsb_core::bucketing::digest(black_box(b"w1_0|w1_0"), users[i]))
        })
    });

    c.bench_function("W1 one 50/50 boolean test", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let mut request = matrix.request();
            request.identifiers[user_slot] = Some(Cow::Borrowed(users[i]));
            black_box(matrix.evaluate_test(black_box("w1_0"), &request).and_then(|a| a.bucket).map(|b| b.value))
        })
    });

    // A user who misses all three rules of W2: country DE, plan free, version 1.9.3.0.
    let request_for = |user: &'static str| {
        let mut request = matrix.request();
        request.identifiers[user_slot] = Some(Cow::Borrowed(user));
        request.context[slots[0]] = Some(Value::string("DE"));
        request.context[slots[1]] = Some(Value::string("free"));
        request.context[slots[2]] = ReleaseVersion::parse("1.9.3.0").ok().map(Value::Version);
        request
    };

    c.bench_function("W2 three rules missed, then a 34/33/33 split", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let request = request_for(users[i]);
            black_box(matrix.evaluate_test(black_box("w2_1"), &request).and_then(|a| a.bucket).map(|b| b.value))
        })
    });

    c.bench_function("W3 all 200 tests for one request", |b| {
        b.iter(|| {
            i = (i + 1) & 4095;
            let request = request_for(users[i]);
            black_box(matrix.evaluate(&request).assigned().count())
        })
    });

    let big = workloads::matrix(10_000);
    let mut group = c.benchmark_group("W4");
    group.sample_size(10);
    group.bench_function("compile a 10,000-test matrix", |b| b.iter(|| black_box(compile(black_box(&big)).len())));
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
