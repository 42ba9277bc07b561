//! Who may do what on the admin API: users' tokens act with their roles (viewer, editor, admin)
//! in the projects they belong to and see no other project; service-account tokens act for one
//! project; protected environments take writes from admins only; members and keys changes are
//! audited.

use std::sync::Arc;

use avsb_server::ops::{accounts, keys};
use avsb_server::store::{ProjectRole, Role, SqliteStore, TokenOwner};
use avsb_server::{app, demo, AppState, Options, SharedState};
use axum::body::Body;
use axum::http::Request;
use serde_json::{json, Value};
use tower::ServiceExt;

struct Instance {
    state: SharedState,
    owner_token: String,
    _data: tempfile::TempDir,
}

async fn start() -> Instance {
    let data = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&data.path().join("avsb.sqlite3")).unwrap();
    let state = AppState::load(Arc::new(store), Options::default()).await.unwrap();
    let secrets = demo::ensure(&state, data.path()).await.unwrap();
    Instance { state, owner_token: secrets.admin_token, _data: data }
}

impl Instance {
    async fn call(&self, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = Request::builder().method(method).uri(path).header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_string()))).unwrap();
        let response = app(Arc::clone(&self.state)).oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }

    /// A user with a role in the demo project and a token of theirs.
    async fn member(&self, username: &str, role: Option<ProjectRole>, token_role: Role) -> String {
        let store = &*self.state.store;
        let user = accounts::create_user(store, username, "", "a long enough password", false, "test").await.unwrap();
        if let Some(role) = role {
            let project = store.project("demo").await.unwrap().unwrap();
            accounts::set_role(store, &project, &user, Some(role), "test").await.unwrap();
        }
        let (secret, _) = keys::create_admin_token(store, "theirs", token_role, TokenOwner::User(user.id), "test").await.unwrap();
        secret
    }

    async fn other_project(&self) {
        let (status, body) = self.call(&self.owner_token.clone(), "POST", "/api/v1/projects", Some(json!({"key": "other"}))).await;
        assert_eq!(status, 201, "{body}");
    }
}

fn flag() -> Value {
    json!({"testType": "USER", "salt": "f", "buckets": [{"name": "off", "value": 0}, {"name": "on", "value": 1}],
           "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}]})
}

#[tokio::test]
async fn a_users_token_sees_only_the_projects_the_user_belongs_to() {
    let s = start().await;
    s.other_project().await;
    let token = s.member("bo", Some(ProjectRole::Editor), Role::Write).await;
    let (status, list) = s.call(&token, "GET", "/api/v1/projects", None).await;
    assert_eq!(status, 200);
    let keys: Vec<&str> = list["projects"].as_array().unwrap().iter().map(|p| p["key"].as_str().unwrap()).collect();
    assert_eq!(keys, ["demo"]);
    for path in ["/api/v1/projects/other", "/api/v1/projects/other/environments/development/matrix", "/api/v1/projects/other/members"] {
        let (status, body) = s.call(&token, "GET", path, None).await;
        assert_eq!(status, 404, "{path}: another project is not found, not forbidden: {body}");
    }
    let (status, _) = s.call(&token, "PUT", "/api/v1/projects/other/environments/development/tests/x", Some(json!({"definition": flag()}))).await;
    assert_eq!(status, 404);
    // A user in no project sees none.
    let nobody = s.member("cy", None, Role::Write).await;
    assert_eq!(s.call(&nobody, "GET", "/api/v1/projects", None).await.1["projects"], json!([]));
}

/// Every documented admin operation that changes something, with its path made concrete for the
/// demo project.
fn mutating_operations() -> Vec<(String, String)> {
    let doc: Value = serde_json::from_str(avsb_server::openapi::document()).unwrap();
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.starts_with("/api/v1/projects/{project}") {
            continue;
        }
        for method in ["post", "put", "patch", "delete"] {
            if item.get(method).is_none() || path.ends_with("/preview") {
                continue;
            }
            let concrete = path
                .replace("{project}", "demo")
                .replace("{environment}", "development")
                .replace("{test}", "buttoncolortst")
                .replace("{allocation}", "0")
                .replace("{key_id}", "1")
                .replace("{id}", "1")
                .replace("{username}", "bo");
            out.push((method.to_uppercase(), concrete));
        }
    }
    out
}

#[tokio::test]
async fn a_viewer_is_refused_every_change_with_403() {
    let s = start().await;
    let viewer = s.member("vi", Some(ProjectRole::Viewer), Role::Write).await;
    let operations = mutating_operations();
    assert!(operations.len() >= 18, "only {} mutating operations found", operations.len());
    for (method, path) in operations {
        let (status, body) = s.call(&viewer, &method, &path, Some(json!({}))).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "forbidden", "{method} {path}");
    }
    // Reading is fine.
    assert_eq!(s.call(&viewer, "GET", "/api/v1/projects/demo/environments/development/matrix", None).await.0, 200);
}

#[tokio::test]
async fn a_read_token_of_an_editor_is_a_viewer() {
    let s = start().await;
    let token = s.member("ed", Some(ProjectRole::Editor), Role::Read).await;
    let (status, body) = s
        .call(&token, "PUT", "/api/v1/projects/demo/environments/development/tests/t", Some(json!({"definition": flag()})))
        .await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("viewer"), "{body}");
}

#[tokio::test]
async fn editors_change_tests_but_not_keys_members_or_the_schema() {
    let s = start().await;
    let editor = s.member("ed", Some(ProjectRole::Editor), Role::Write).await;
    let (status, body) = s
        .call(&editor, "PUT", "/api/v1/projects/demo/environments/development/tests/t", Some(json!({"definition": flag()})))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revision"]["updatedBy"], "ed", "the revision records the user as its author");
    for (method, path) in [
        ("POST", "/api/v1/projects/demo/environments/development/sdk-keys"),
        ("PUT", "/api/v1/projects/demo/members/ed"),
        ("PATCH", "/api/v1/projects/demo/environments/production"),
        ("POST", "/api/v1/projects/demo/tokens"),
        ("GET", "/api/v1/projects/demo/audit"),
    ] {
        let (status, body) = s.call(&editor, method, path, Some(json!({"role": "admin"}))).await;
        assert_eq!(status, 403, "{method} {path}: {body}");
    }
    // Instance-wide actions need an owner.
    assert_eq!(s.call(&editor, "POST", "/api/v1/projects", Some(json!({"key": "mine"}))).await.0, 403);
    assert_eq!(s.call(&editor, "GET", "/api/v1/tokens", None).await.0, 403);
}

#[tokio::test]
async fn a_protected_environment_takes_writes_from_admins_only() {
    let s = start().await;
    let owner = s.owner_token.clone();
    let (status, env) = s.call(&owner, "PATCH", "/api/v1/projects/demo/environments/production", Some(json!({"protected": true}))).await;
    assert_eq!((status, env["protected"].clone()), (200, json!(true)), "{env}");
    let editor = s.member("ed", Some(ProjectRole::Editor), Role::Write).await;
    let put = json!({"definition": flag()});
    let (status, body) =
        s.call(&editor, "PUT", "/api/v1/projects/demo/environments/production/tests/t", Some(put.clone())).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("protected"), "{body}");
    let kill = json!({"bucket": 0});
    assert_eq!(s.call(&editor, "POST", "/api/v1/projects/demo/environments/production/tests/buttoncolortst/kill", Some(kill)).await.0, 403);
    let promote = json!({"from": "development", "to": "production", "tests": ["buttoncolortst"]});
    assert_eq!(s.call(&editor, "POST", "/api/v1/projects/demo/promote", Some(promote)).await.0, 403);
    // Editors still write the other environments; admins write production.
    assert_eq!(s.call(&editor, "PUT", "/api/v1/projects/demo/environments/staging/tests/t", Some(put.clone())).await.0, 200);
    let admin = s.member("ad", Some(ProjectRole::Admin), Role::Write).await;
    assert_eq!(s.call(&admin, "PUT", "/api/v1/projects/demo/environments/production/tests/t", Some(put)).await.0, 200);
}

#[tokio::test]
async fn a_service_account_token_acts_for_its_project_only() {
    let s = start().await;
    s.other_project().await;
    let owner = s.owner_token.clone();
    let (status, created) = s.call(&owner, "POST", "/api/v1/projects/demo/tokens", Some(json!({"name": "deploy", "role": "write"}))).await;
    assert_eq!(status, 201, "{created}");
    let deploy = created["token"].as_str().unwrap().to_string();
    let put = json!({"definition": flag()});
    assert_eq!(s.call(&deploy, "PUT", "/api/v1/projects/demo/environments/production/tests/t", Some(put.clone())).await.0, 200);
    assert_eq!(s.call(&deploy, "PUT", "/api/v1/projects/other/environments/production/tests/t", Some(put)).await.0, 404);
    let (_, listed) = s.call(&owner, "GET", "/api/v1/projects/demo/tokens", None).await;
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1);
    let id = created["id"].as_i64().unwrap();
    assert_eq!(s.call(&owner, "DELETE", &format!("/api/v1/projects/other/tokens/{id}"), None).await.0, 404, "another project's");
    assert_eq!(s.call(&owner, "DELETE", &format!("/api/v1/projects/demo/tokens/{id}"), None).await.0, 204);
    assert_eq!(s.call(&deploy, "GET", "/api/v1/projects/demo", None).await.0, 401);
}

#[tokio::test]
async fn members_are_set_and_removed_and_each_change_is_audited() {
    let s = start().await;
    let owner = s.owner_token.clone();
    accounts::create_user(&*s.state.store, "bo", "Bo", "a long enough password", false, "test").await.unwrap();
    let (status, member) = s.call(&owner, "PUT", "/api/v1/projects/demo/members/bo", Some(json!({"role": "editor"}))).await;
    assert_eq!((status, member["role"].clone()), (200, json!("editor")), "{member}");
    let (_, members) = s.call(&owner, "GET", "/api/v1/projects/demo/members", None).await;
    assert_eq!(members["members"], json!([{"username": "bo", "displayName": "Bo", "role": "editor"}]));
    let (status, _) = s.call(&owner, "PUT", "/api/v1/projects/demo/members/nobody", Some(json!({"role": "editor"}))).await;
    assert_eq!(status, 404);
    let (status, _) = s.call(&owner, "PUT", "/api/v1/projects/demo/members/bo", Some(json!({"role": "emperor"}))).await;
    assert_eq!(status, 400);
    assert_eq!(s.call(&owner, "DELETE", "/api/v1/projects/demo/members/bo", None).await.0, 204);
    assert_eq!(s.call(&owner, "DELETE", "/api/v1/projects/demo/members/bo", None).await.0, 404);
    let (status, _) = s.call(&owner, "POST", "/api/v1/projects/demo/environments/development/sdk-keys", Some(json!({"name": "web"}))).await;
    assert_eq!(status, 201);
    let (_, audit) = s.call(&owner, "GET", "/api/v1/projects/demo/audit", None).await;
    let actions: Vec<&str> = audit["entries"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(&actions[..3], ["sdk_key.create", "member.remove", "member.set_role"], "{audit}");
    assert!(audit["entries"].as_array().unwrap().iter().all(|e| e["actor"] == "demo" || e["action"] == "sdk_key.create"));
}
