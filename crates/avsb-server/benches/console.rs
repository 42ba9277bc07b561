//! How long the console takes to render on the server (the budget: the tests page of a
//! project with 1,000 tests across 3 environments in ≤ 30 ms, a test's page in ≤ 10 ms, p50,
//! release build). The whole request goes through the router in process (`oneshot`): session
//! lookup, snapshot reads, filtering and paging, the template, the security headers.
//!
//!   cargo bench -p avsb-server --bench console

use std::sync::Arc;

use avsb_server::ops::{accounts, edit::MatrixEdit, input::read_matrix, WriteMeta};
use avsb_server::store::{ProjectRole, SqliteStore};
use avsb_server::{app, demo, AppState, Options, SharedState};
use axum::body::Body;
use axum::http::{header, Request};
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Map, Value};
use tower::ServiceExt;

const TESTS: usize = 1_000;

/// A test as projects have them: a rule-gated allocation and a split, four buckets with payloads.
fn test(i: usize, env: usize) -> Value {
    let treatment = [0.1, 0.5, 0.5][env];
    json!({
        "salt": format!("test-{i}"), "testType": "USER", "description": format!("Test number {i}, for the benchmark"),
        "buckets": [
            {"name": "inactive", "value": -1, "payload": {"stringValue": "none"}},
            {"name": "control", "value": 0, "payload": {"stringValue": "grey"}},
            {"name": "red", "value": 1, "payload": {"stringValue": "red"}},
            {"name": "green", "value": 2, "payload": {"stringValue": "green"}}
        ],
        "allocations": [
            {"rule": "${country == 'US'}", "ranges": [{"bucketValue": 1, "length": 1.0}]},
            {"ranges": [{"bucketValue": 0, "length": 1.0 - treatment}, {"bucketValue": 2, "length": treatment}]}
        ]
    })
}

struct Fixture {
    state: SharedState,
    cookie: String,
    runtime: tokio::runtime::Runtime,
    _data: tempfile::TempDir,
}

fn fixture() -> Fixture {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let data = tempfile::tempdir().unwrap();
    let (state, cookie) = runtime.block_on(async {
        let store = SqliteStore::open(&data.path().join("avsb.sqlite3")).unwrap();
        let state = AppState::load(Arc::new(store), Options::default()).await.unwrap();
        demo::ensure(&state, data.path()).await.unwrap();
        for (e, env) in ["development", "staging", "production"].iter().enumerate() {
            let tests: Map<String, Value> = (0..TESTS).map(|i| (format!("bench-test-{i:04}"), test(i, e))).collect();
            let edit = MatrixEdit::ReplaceMatrix { tests: read_matrix(json!({"tests": tests})).unwrap() };
            let meta = WriteMeta { base: None, author: "bench".into(), comment: None, role: ProjectRole::Admin };
            state.write("demo", env, &edit, meta).await.unwrap();
        }
        let user = accounts::create_user(&*state.store, "bench", "", "a long enough password", true, "bench").await.unwrap();
        let (id, _) = accounts::start_session(&*state.store, &user).await.unwrap();
        (state, format!("avsb_session={id}"))
    });
    Fixture { state, cookie, runtime, _data: data }
}

impl Fixture {
    fn get(&self, path: &str) -> usize {
        self.runtime.block_on(async {
            let request = Request::get(path).header(header::COOKIE, &self.cookie).header(header::HOST, "bench").body(Body::empty()).unwrap();
            let response = app(Arc::clone(&self.state)).oneshot(request).await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().len()
        })
    }
}

fn console(c: &mut Criterion) {
    let f = fixture();
    let mut group = c.benchmark_group("console");
    group.bench_function("tests page, 1,000 tests x 3 environments", |b| b.iter(|| f.get("/projects/demo")));
    group.bench_function("tests page, filtered by name", |b| b.iter(|| f.get("/projects/demo?q=test-09")));
    group.bench_function("test page", |b| b.iter(|| f.get("/projects/demo/tests/bench-test-0500")));
    group.bench_function("editor", |b| b.iter(|| f.get("/projects/demo/tests/bench-test-0500/edit?env=production")));
    group.finish();
}

criterion_group!(benches, console);
criterion_main!(benches);
