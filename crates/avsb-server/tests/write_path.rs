//! The per-test operations of the single write path, through the admin API in process: rolling
//! one test back, setting one allocation's ranges, setting targets, previewing any edit (with the
//! share of units that would change bucket), and admin tokens. Each test drives the app with
//! `oneshot` on the demo project.

use std::sync::Arc;

use avsb_server::store::SqliteStore;
use avsb_server::{app, demo, AppState, Options, SharedState};
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Demo {
    state: SharedState,
    secrets: demo::DemoSecrets,
    _data: tempfile::TempDir,
}

async fn start() -> Demo {
    let data = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&data.path().join("avsb.sqlite3")).unwrap();
    let state = AppState::load(Arc::new(store), Options::default()).await.unwrap();
    let secrets = demo::ensure(&state, data.path()).await.unwrap();
    Demo { state, secrets, _data: data }
}

impl Demo {
    /// One request with a bearer secret; the status and the body as JSON (Null when empty).
    async fn call_as(&self, secret: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = Request::builder().method(method).uri(path).header("authorization", format!("Bearer {secret}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let response = app(Arc::clone(&self.state)).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        let json = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap_or(Value::Null) };
        (status, json)
    }

    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let token = self.secrets.admin_token.clone();
        self.call_as(&token, method, &format!("/api/v1/projects/demo/environments/development{path}"), body).await
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.admin(method, path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {json}");
        json
    }

    async fn put_test(&self, name: &str, definition: Value) -> String {
        let reply = self.ok("PUT", &format!("/tests/{name}"), Some(json!({"definition": definition}))).await;
        reply["revision"]["version"].as_str().unwrap().to_string()
    }

    async fn definition(&self, name: &str) -> (u16, Value) {
        self.admin("GET", &format!("/tests/{name}"), None).await
    }

    /// Pipet's groups for a request to the development environment.
    async fn groups(&self, query: &str) -> Value {
        let key = self.secrets.sdk_key("development").unwrap().to_string();
        let (status, json) = self.call_as("", "GET", &format!("/pipet/{key}/groups/identify?{query}"), None).await;
        assert_eq!(status, 200, "{json}");
        json["data"]["groups"].clone()
    }
}

/// A boolean flag: `off` (0) and `on` (1), one allocation for everyone with `on` at `share`.
fn flag(salt: &str, share: f64) -> Value {
    json!({
        "testType": "USER", "salt": salt,
        "buckets": [{"name": "off", "value": 0, "payload": {"booleanValue": false}},
                    {"name": "on", "value": 1, "payload": {"booleanValue": true}}],
        "allocations": [{"ranges": [{"bucketValue": 0, "length": 1.0 - share}, {"bucketValue": 1, "length": share}]}],
    })
}

#[tokio::test]
async fn one_test_is_rolled_back_alone_with_the_version_it_had() {
    let demo = start().await;
    let first = demo.put_test("launch", flag("launch", 0.1)).await;
    demo.put_test("launch", flag("launch", 0.5)).await;
    let other = demo.put_test("other", flag("other", 0.2)).await;
    let before_other = demo.definition("other").await.1;

    let reply = demo.ok("POST", "/tests/launch/rollback", Some(json!({"revision": first}))).await;
    assert_eq!(reply["revision"]["kind"], "rollback");
    assert_eq!(reply["revision"]["comment"], format!("rolled back 'launch' to revision {first}"));
    let launch = demo.definition("launch").await.1;
    assert_eq!(launch["allocations"][0]["ranges"][1]["length"], json!(0.1));
    assert_eq!(launch["version"], json!(first), "the restored definition keeps its version");
    assert_eq!(demo.definition("other").await.1, before_other, "other tests are left as they are");
    assert_eq!(before_other["version"], json!(other));
}

#[tokio::test]
async fn rolling_a_test_back_to_before_it_existed_removes_it() {
    let demo = start().await;
    let (_, revisions) = demo.admin("GET", "/revisions?limit=1", None).await;
    let before = revisions["current"].as_str().unwrap().to_string();
    demo.put_test("newcomer", flag("newcomer", 0.5)).await;
    demo.ok("POST", "/tests/newcomer/rollback", Some(json!({"revision": before}))).await;
    assert_eq!(demo.definition("newcomer").await.0, 404);
    let (status, error) = demo.admin("POST", "/tests/never-was/rollback", Some(json!({"revision": before}))).await;
    assert_eq!(status, 404, "{error}");
    assert!(error["error"]["message"].as_str().unwrap().contains("'never-was'"));
}

#[tokio::test]
async fn setting_one_allocations_ranges_changes_only_those_ranges() {
    let demo = start().await;
    let mut two = flag("two", 0.1);
    two["allocations"] = json!([
        {"rule": "${country == 'US'}", "ranges": [{"bucketValue": 1, "length": 1.0}]},
        {"ranges": [{"bucketValue": 0, "length": 0.9}, {"bucketValue": 1, "length": 0.1}]},
    ]);
    demo.put_test("two", two).await;
    let body = json!({"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}], "comment": "50%"});
    let reply = demo.ok("PUT", "/tests/two/allocations/1/ranges", Some(body)).await;
    assert_eq!(reply["revision"]["kind"], "ranges");
    assert_eq!(reply["revision"]["comment"], "50%");
    let now = demo.definition("two").await.1;
    assert_eq!(now["allocations"][0]["rule"], "${country == 'US'}");
    assert_eq!(now["allocations"][0]["ranges"], json!([{"bucketValue": 1, "length": 1.0}]));
    assert_eq!(now["allocations"][1]["ranges"], json!([{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]));
}

#[tokio::test]
async fn ranges_for_a_missing_allocation_or_not_summing_to_one_change_nothing() {
    let demo = start().await;
    demo.put_test("solo", flag("solo", 0.1)).await;
    let before = demo.definition("solo").await.1;
    let half = json!({"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]});
    let (status, error) = demo.admin("PUT", "/tests/solo/allocations/3/ranges", Some(half)).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["field"], "allocation");
    assert!(error["error"]["message"].as_str().unwrap().contains("1 allocation(s)"));
    let short = json!({"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.4}]});
    let (status, error) = demo.admin("PUT", "/tests/solo/allocations/0/ranges", Some(short)).await;
    assert_eq!(status, 422, "{error}");
    assert_eq!(error["error"]["code"], "invalid_matrix");
    assert!(error["error"]["diagnostics"].as_array().unwrap().iter().any(|d| d["test"] == "solo"), "{error}");
    let (status, _) = demo.admin("PUT", "/tests/solo/allocations/x/ranges", Some(json!({"ranges": []}))).await;
    assert_eq!(status, 400);
    assert_eq!(demo.definition("solo").await.1, before);
}

#[tokio::test]
async fn targets_give_their_identifiers_a_bucket_and_an_empty_list_removes_them() {
    let demo = start().await;
    demo.put_test("staffonly", flag("staffonly", 0.0)).await;
    assert_eq!(demo.groups("id.USER=u_1&test=staffonly").await["staffonly"]["name"], "off");
    let body = json!({"targets": [{"bucketValue": 1, "identifiers": ["u_1", "u_2"]}]});
    let reply = demo.ok("PUT", "/tests/staffonly/targets", Some(body)).await;
    assert_eq!(reply["revision"]["kind"], "targets");
    assert_eq!(demo.groups("id.USER=u_1&test=staffonly").await["staffonly"]["name"], "on");
    assert_eq!(demo.groups("id.USER=u_3&test=staffonly").await["staffonly"]["name"], "off");
    demo.ok("PUT", "/tests/staffonly/targets", Some(json!({"targets": []}))).await;
    assert_eq!(demo.groups("id.USER=u_1&test=staffonly").await["staffonly"]["name"], "off");
    assert!(demo.definition("staffonly").await.1.get("targets").is_none());
}

#[tokio::test]
async fn a_preview_of_a_ramp_reports_the_exact_share_that_moves_and_changes_nothing() {
    let demo = start().await;
    let version = demo.put_test("ramp", flag("ramp", 0.1)).await;
    let edit = json!({"kind": "setRanges", "test": "ramp", "allocation": 0,
                      "ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]});
    let preview = demo.ok("POST", "/preview", Some(json!({"edit": edit}))).await;
    assert_eq!(preview["valid"], true);
    assert_eq!(preview["baseRevision"], json!(version));
    assert_eq!(preview["kind"], "ranges");
    let change = &preview["tests"][0];
    assert_eq!(change["test"], "ramp");
    assert_eq!(change["fields"], json!(["allocations"]));
    let shift = &change["reassignment"]["allocations"][0];
    assert_eq!(shift["exact"], true);
    assert_eq!(shift["basis"], "ranges");
    assert!((shift["share"].as_f64().unwrap() - 0.4).abs() < 1e-6, "{shift}");
    let paths: Vec<&str> = change["changes"].as_array().unwrap().iter().map(|c| c["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["allocations[0].ranges[0].length", "allocations[0].ranges[1].length"]);
    // Nothing was written.
    let (_, revisions) = demo.admin("GET", "/revisions?limit=1", None).await;
    assert_eq!(revisions["current"], json!(version));
    assert_eq!(demo.definition("ramp").await.1["allocations"][0]["ranges"][1]["length"], json!(0.1));
}

#[tokio::test]
async fn a_preview_of_a_broken_edit_reports_the_engines_diagnostics() {
    let demo = start().await;
    let mut bad = flag("bad", 0.5);
    bad["rule"] = json!("${contry == 'US'}");
    let preview = demo.ok("POST", "/preview", Some(json!({"edit": {"kind": "putTest", "test": "bad", "definition": bad}}))).await;
    assert_eq!(preview["valid"], false);
    let diagnostic = preview["diagnostics"].as_array().unwrap().iter().find(|d| d["test"] == "bad").cloned().unwrap();
    assert_eq!(diagnostic["code"], "unknown_variable");
    assert_eq!(diagnostic["severity"], "error");
    assert_eq!(diagnostic["column"], 3);
    assert_eq!(preview["tests"][0]["change"], "added");
}

#[tokio::test]
async fn a_preview_takes_every_kind_of_edit() {
    let demo = start().await;
    let version = demo.put_test("kinds", flag("kinds", 0.3)).await;
    let matrix = demo.admin("GET", "/matrix", None).await.1;
    let edits = [
        (json!({"kind": "kill", "test": "kinds", "bucket": "off"}), "kill"),
        (json!({"kind": "deleteTest", "test": "kinds"}), "delete"),
        (json!({"kind": "rollbackTest", "test": "kinds", "revision": version}), "rollback"),
        (json!({"kind": "rollback", "revision": version}), "rollback"),
        (json!({"kind": "setTargets", "test": "kinds", "targets": [{"bucketValue": 1, "identifiers": ["a"]}]}), "targets"),
        (json!({"kind": "replaceMatrix", "matrix": matrix}), "replace"),
        (json!({"kind": "putTest", "test": "kinds", "definition": flag("kinds", 0.6)}), "edit"),
    ];
    for (edit, kind) in edits {
        let preview = demo.ok("POST", "/preview", Some(json!({"edit": edit}))).await;
        assert_eq!(preview["kind"], kind, "{preview}");
    }
    // A kill moves exactly the units that were `on`.
    let edit = json!({"kind": "kill", "test": "kinds", "bucket": "off"});
    let preview = demo.ok("POST", "/preview", Some(json!({"edit": edit}))).await;
    let shift = &preview["tests"][0]["reassignment"]["allocations"][0];
    assert!((shift["share"].as_f64().unwrap() - 0.3).abs() < 1e-6, "{preview}");
    let (status, error) = demo.admin("POST", "/preview", Some(json!({"edit": {"kind": "explode"}}))).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(error["error"]["code"], "invalid_field");
}

#[tokio::test]
async fn a_preview_from_a_stale_base_conflicts_as_the_write_would() {
    let demo = start().await;
    demo.put_test("elsewhere", flag("elsewhere", 0.1)).await;
    let base = demo.put_test("stale", flag("stale", 0.1)).await;
    let now = demo.put_test("stale", flag("stale", 0.2)).await;
    let edit = json!({"kind": "setRanges", "test": "stale", "allocation": 0,
                      "ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]});
    let (status, error) = demo.admin("POST", "/preview", Some(json!({"edit": edit.clone(), "baseRevision": base}))).await;
    assert_eq!(status, 409, "{error}");
    assert_eq!(error["error"]["changes"][0]["revision"], json!(now));
    // Another test's edit from the same base previews (and would write) on the current revision.
    let other = json!({"kind": "deleteTest", "test": "elsewhere"});
    let (status, preview) = demo.admin("POST", "/preview", Some(json!({"edit": other, "baseRevision": base}))).await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["baseRevision"], json!(now));
}

#[tokio::test]
async fn a_read_token_may_preview_but_not_write() {
    let demo = start().await;
    let (status, created) = demo
        .call_as(&demo.secrets.admin_token.clone(), "POST", "/api/v1/tokens", Some(json!({"name": "viewer", "role": "read"})))
        .await;
    assert_eq!(status, 201, "{created}");
    let reader = created["token"].as_str().unwrap().to_string();
    assert!(reader.starts_with("adm-"));
    let base = "/api/v1/projects/demo/environments/development";
    let edit = json!({"edit": {"kind": "deleteTest", "test": "buttoncolortst"}});
    assert_eq!(demo.call_as(&reader, "POST", &format!("{base}/preview"), Some(edit)).await.0, 200);
    let writes = [
        ("POST", format!("{base}/tests/buttoncolortst/rollback"), json!({"revision": "1"})),
        ("PUT", format!("{base}/tests/buttoncolortst/allocations/0/ranges"), json!({"ranges": []})),
        ("PUT", format!("{base}/tests/buttoncolortst/targets"), json!({"targets": []})),
        ("POST", "/api/v1/tokens".to_string(), json!({"name": "escalate", "role": "write"})),
    ];
    for (method, path, body) in writes {
        let (status, error) = demo.call_as(&reader, method, &path, Some(body)).await;
        assert_eq!(status, 403, "{method} {path}: {error}");
        assert_eq!(error["error"]["code"], "forbidden");
    }
    assert_eq!(demo.call_as(&reader, "DELETE", "/api/v1/tokens/1", None).await.0, 403);
}

#[tokio::test]
async fn a_token_made_through_the_api_authenticates_until_it_is_revoked() {
    let demo = start().await;
    let admin = demo.secrets.admin_token.clone();
    let (status, created) = demo.call_as(&admin, "POST", "/api/v1/tokens", Some(json!({"name": "ci", "role": "write"}))).await;
    assert_eq!(status, 201);
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(created["role"], "write");
    let (status, list) = demo.call_as(&token, "GET", "/api/v1/tokens", None).await;
    assert_eq!(status, 200);
    let listed = list["tokens"].as_array().unwrap().iter().find(|t| t["id"] == id).cloned().unwrap();
    assert!(listed.get("token").is_none(), "a listing never shows the secret");
    assert!(token.starts_with(listed["prefix"].as_str().unwrap()));
    assert_eq!(demo.call_as(&admin, "DELETE", &format!("/api/v1/tokens/{id}"), None).await.0, 204);
    assert_eq!(demo.call_as(&token, "GET", "/api/v1/projects", None).await.0, 401);
    assert_eq!(demo.call_as(&admin, "DELETE", &format!("/api/v1/tokens/{id}"), None).await.0, 404);
    let (status, error) = demo.call_as(&admin, "POST", "/api/v1/tokens", Some(json!({"name": " ", "role": "read"}))).await;
    assert_eq!((status, error["error"]["field"].clone()), (400, json!("name")));
    let (status, _) = demo.call_as(&admin, "POST", "/api/v1/tokens", Some(json!({"name": "x", "role": "owner"}))).await;
    assert_eq!(status, 400);
}
