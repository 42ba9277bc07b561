//! The OpenAPI document is generated from the handlers (utoipa); these tests keep it honest:
//! it is OpenAPI 3.1 with resolvable references; every operation it documents is answered by a
//! route, and every route is documented (routes are registered together with their operation,
//! and the few plain `.route(` calls are listed below with why); every operation documents a
//! success, a 401 when it needs credentials, and its path parameters; and the error codes it
//! lists are exactly the codes the source can answer, each under its status.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use avsb_server::error::ErrorCode;
use avsb_server::store::SqliteStore;
use avsb_server::{app, demo, AppState, Options};
use axum::body::Body;
use axum::http::Request;
use serde_json::Value;
use tower::ServiceExt;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Plain `.route(` calls in `src/`, which add methods or paths without an OpenAPI operation:
/// (file, path) and why each is right.
const UNDOCUMENTED_ROUTES: &[(&str, &str, &str)] = &[
    ("src/routes/pipet.rs", "/pipet/{sdk_key}/config/context", "the methods other than GET of a documented path (Pipet answers its configuration whatever the method)"),
    ("src/routes/pipet.rs", "/pipet/{sdk_key}/config/identifiers", "likewise"),
    ("src/routes/pipet.rs", "/pipet/{sdk_key}/{*rest}", "Pipet's 404 envelope for any other path, described in the `pipet` tag"),
];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn document() -> Value {
    serde_json::from_str(avsb_server::openapi::document()).expect("the document is JSON")
}

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if METHODS.contains(&method.as_str()) {
                out.push((method.clone(), path.clone(), operation));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1. The document itself

/// Resolves a local JSON pointer (`#/components/schemas/X`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(doc);
    }
    doc.pointer(pointer)
}

fn collect_refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    out.push((at.to_string(), child.as_str().unwrap_or("<non-string $ref>").to_string()));
                } else {
                    collect_refs(child, &format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_31_with_resolvable_refs_and_no_unused_components() {
    let doc = document();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi must be 3.1.x, found {:?}", doc["openapi"]);
    assert_eq!(doc["info"]["title"], "A vs B");
    assert_eq!(doc["info"]["version"].as_str(), Some(env!("CARGO_PKG_VERSION")), "info.version is the crate version");
    assert!(doc["paths"].as_object().is_some_and(|p| p.len() > 30), "paths is missing or short");

    let mut refs = Vec::new();
    collect_refs(&doc, "#", &mut refs);
    assert!(refs.len() > 100, "expected the document to use $ref");
    let broken: Vec<String> = refs
        .iter()
        .filter(|(_, r)| !r.starts_with("#/") || resolve(&doc, r).is_none())
        .map(|(at, r)| format!("  {at}: $ref {r}"))
        .collect();
    assert!(broken.is_empty(), "unresolvable (or non-local) $ref:\n{}", broken.join("\n"));

    let used: BTreeSet<&str> = refs.iter().map(|(_, r)| r.as_str()).collect();
    let mut unused = Vec::new();
    for (kind, entries) in doc["components"].as_object().into_iter().flatten() {
        if kind == "securitySchemes" {
            continue;
        }
        for name in entries.as_object().into_iter().flat_map(|m| m.keys()) {
            let pointer = format!("#/components/{kind}/{name}");
            if !used.contains(pointer.as_str()) {
                unused.push(pointer);
            }
        }
    }
    assert!(unused.is_empty(), "components never referenced:\n  {}", unused.join("\n  "));
}

#[test]
fn the_served_document_is_the_generated_one() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (state, _data, _secrets) = demo_state().await;
        let response = app(state).oneshot(Request::get("/api/v1/openapi.json").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert_eq!(body, avsb_server::openapi::document().as_bytes());
    });
}

// ---------------------------------------------------------------------------------------------
// 2. Documented operations = routes

async fn demo_state() -> (avsb_server::SharedState, tempfile::TempDir, demo::DemoSecrets) {
    let data = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&data.path().join("avsb.sqlite3")).unwrap();
    let state = AppState::load(Arc::new(store), Options::default()).await.unwrap();
    let secrets = demo::ensure(&state, data.path()).await.unwrap();
    (state, data, secrets)
}

/// A plausible value for a path parameter of the demo project.
fn argument(name: &str, sdk_key: &str) -> String {
    match name {
        "project" => "demo".into(),
        "environment" => "development".into(),
        "test" | "key" => "buttoncolortst".into(),
        "sdk_key" => sdk_key.into(),
        "allocation" => "0".into(),
        "revision" | "key_id" | "id" => "1".into(),
        "username" => "demo".into(),
        "metric" => "purchase-rate".into(),
        other => panic!("no example value for the path parameter {other}; extend tests/openapi.rs"),
    }
}

/// Whether an answer came from the router's fallbacks (no route for the path, or not for the
/// method) rather than from a handler.
fn is_fallback(status: u16, body: &str) -> bool {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let api_message = json["error"]["message"].as_str().unwrap_or_default();
    let pipet_message = json["meta"]["error"].as_str().unwrap_or_default();
    (status == 404 && json["error"]["code"] == "not_found" && api_message.starts_with("no endpoint"))
        || (status == 405 && json["error"]["code"] == "method_not_allowed")
        || pipet_message.starts_with("No Pipet endpoint")
        || pipet_message.starts_with("Request method")
}

#[test]
fn every_documented_operation_is_answered_by_its_route() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (state, _data, secrets) = demo_state().await;
        let sdk_key = secrets.sdk_key("development").unwrap().to_string();
        let doc = document();
        let mut problems = Vec::new();
        let mut checked = 0;
        for (method, path, _) in operations(&doc) {
            let concrete: String = path
                .split('/')
                .map(|segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => argument(name, &sdk_key),
                    None => segment.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/");
            let request = Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&concrete)
                .header("authorization", format!("Bearer {}", secrets.admin_token))
                .body(Body::empty())
                .unwrap();
            let response = app(Arc::clone(&state)).oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            // The stream never ends by itself; its status and headers are enough.
            let body = if path.ends_with("/stream") {
                String::new()
            } else {
                String::from_utf8_lossy(&axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap()).into_owned()
            };
            if is_fallback(status, &body) {
                problems.push(format!("{} {path} ({concrete}): no route answers it: {status} {body}", method.to_uppercase()));
            }
            checked += 1;
        }
        assert!(checked > 30, "only {checked} operations checked");
        assert!(problems.is_empty(), "documented but not routed:\n  {}", problems.join("\n  "));
        // And the check can fail: a made-up path is the fallback's.
        let response = app(state).oneshot(Request::get("/api/v1/nowhere").body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        assert!(is_fallback(status, &String::from_utf8_lossy(&body)));
    });
}

/// Rust source with comments blanked out, so that `.route(` in a doc comment is not a call.
fn strip_comments(source: &str) -> String {
    source
        .lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("//") {
                ""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_route_is_registered_with_its_operation_but_the_listed_ones() {
    // `routes!(handler)` only compiles for a handler with `#[utoipa::path]`, and registers the
    // route and the operation together; a plain `.route(` adds a route the document cannot see.
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    let mut found = BTreeSet::new();
    for file in &files {
        let name = file.strip_prefix(manifest_dir()).unwrap().display().to_string();
        let source = strip_comments(&std::fs::read_to_string(file).unwrap());
        for (i, _) in source.match_indices(".route(") {
            let rest = &source[i + ".route(".len()..];
            let path = rest.trim_start().strip_prefix('"').and_then(|r| r.split_once('"')).map(|(p, _)| p.to_string());
            // The console's routes are HTML pages, not API operations; they must stay out of
            // the API's, SDKs' and protocols' paths.
            if name.starts_with("src/console/") {
                let path = path.unwrap_or_default();
                assert!(
                    ["/api/", "/sdk/", "/pipet/", "/ofrep/", "/healthz", "/readyz", "/metrics"].iter().all(|p| !path.starts_with(p)),
                    "the console route {path} is in a path of the API"
                );
                continue;
            }
            found.insert((name.clone(), path.unwrap_or_else(|| format!("<not a literal: {}>", &rest[..rest.len().min(40)]))));
        }
    }
    let allowed: BTreeSet<(String, String)> =
        UNDOCUMENTED_ROUTES.iter().map(|(f, p, _)| (f.to_string(), p.to_string())).collect();
    assert_eq!(found, allowed, "plain .route( calls in src/ (register routes with `routes!` so they are documented)");
}

// ---------------------------------------------------------------------------------------------
// 3. Every operation: success, 401 when authenticated, parameters and tags

fn template_params(path: &str) -> BTreeSet<String> {
    path.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(name, _)| name.to_string())).collect()
}

#[test]
fn every_operation_documents_success_auth_and_parameters() {
    let doc = document();
    let tags: BTreeSet<&str> = doc["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    let schemes: BTreeSet<&str> =
        doc["components"]["securitySchemes"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (method, path, operation) in operations(&doc) {
        let name = format!("{} {path}", method.to_uppercase());
        let statuses: BTreeSet<&str> =
            operation["responses"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
        if !statuses.iter().any(|s| s.starts_with('2') || *s == "304") {
            problems.push(format!("{name}: no 2xx or 304 response"));
        }
        let requirements: Vec<&Value> = operation["security"].as_array().into_iter().flatten().collect();
        for scheme in requirements.iter().flat_map(|r| r.as_object().into_iter().flatten().map(|(k, _)| k.as_str())) {
            if !schemes.contains(scheme) {
                problems.push(format!("{name}: unknown security scheme {scheme:?}"));
            }
        }
        let needs_auth = !requirements.is_empty() || path.contains("{sdk_key}");
        if needs_auth != statuses.contains("401") {
            problems.push(format!("{name}: needs credentials ({needs_auth}) but documents a 401 ({})", statuses.contains("401")));
        }
        if operation["summary"].as_str().is_none_or(str::is_empty) {
            problems.push(format!("{name}: no summary"));
        }
        match operation["operationId"].as_str() {
            Some(id) if !operation_ids.insert(id.to_string()) => problems.push(format!("{name}: duplicate operationId {id}")),
            Some(_) => {}
            None => problems.push(format!("{name}: no operationId")),
        }
        let op_tags: Vec<&str> = operation["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        if op_tags.is_empty() || op_tags.iter().any(|t| !tags.contains(t)) {
            problems.push(format!("{name}: tags {op_tags:?} must be non-empty and declared at the top level"));
        }
        let mut declared = BTreeSet::new();
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "path" {
                let pname = parameter["name"].as_str().unwrap_or_default().to_string();
                if parameter["required"] != Value::Bool(true) {
                    problems.push(format!("{name}: path parameter {pname} must be required"));
                }
                declared.insert(pname);
            }
        }
        let expected = template_params(&path);
        if declared != expected {
            problems.push(format!("{name}: path parameters declared {declared:?}, template has {expected:?}"));
        }
    }
    assert!(problems.is_empty(), "problems:\n  {}", problems.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// 4. Error codes: what the source can answer = what the document lists

/// Every `ErrorCode::Variant` named in `src/` (outside `error.rs`, which lists them all), by wire
/// name, with where.
fn source_error_codes() -> BTreeMap<String, String> {
    let by_variant: BTreeMap<String, ErrorCode> =
        ErrorCode::ALL.iter().map(|c| (format!("{c:?}"), *c)).collect();
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    let mut out = BTreeMap::new();
    for file in files.iter().filter(|f| !f.ends_with("error.rs")) {
        let name = file.strip_prefix(manifest_dir()).unwrap().display().to_string();
        let source = strip_comments(&std::fs::read_to_string(file).unwrap());
        for (i, _) in source.match_indices("ErrorCode::") {
            let variant: String = source[i + "ErrorCode::".len()..].chars().take_while(|c| c.is_alphanumeric()).collect();
            let code = by_variant.get(&variant).unwrap_or_else(|| panic!("{name}: unknown ErrorCode::{variant}"));
            out.entry(code.as_str().to_string()).or_insert(name.clone());
        }
    }
    // Made by the helpers of `ApiError` rather than named.
    for (code, at) in [("not_found", "ApiError::not_found"), ("unauthorized", "ApiError::unauthorized"), ("forbidden", "ApiError::forbidden"), ("internal", "ApiError::internal")] {
        out.entry(code.to_string()).or_insert(at.to_string());
    }
    // Made from a WriteError's kind in error.rs.
    for (code, at) in [("conflict", "WriteError::Conflict"), ("already_exists", "WriteError::Duplicate"), ("invalid_matrix", "WriteError::Invalid")] {
        out.entry(code.to_string()).or_insert(at.to_string());
    }
    out
}

/// The codes each response of each operation lists (`Codes: `a`, `b`.` in its description).
fn documented_error_codes(doc: &Value) -> Vec<(u16, String, String)> {
    let mut out = Vec::new();
    for (method, path, operation) in operations(doc) {
        for (status, response) in operation["responses"].as_object().into_iter().flatten() {
            let Ok(number) = status.parse::<u16>() else { continue };
            let response = match response.get("$ref").and_then(Value::as_str) {
                Some(r) => resolve(doc, r).unwrap_or(&Value::Null),
                None => response,
            };
            let description = response["description"].as_str().unwrap_or_default();
            let Some((_, list)) = description.rsplit_once("Codes: ") else { continue };
            let list = list.split_once("`.").map_or(list, |(codes, _)| codes);
            for code in list.split('`').skip(1).step_by(2) {
                out.push((number, code.to_string(), format!("{} {path} {status}", method.to_uppercase())));
            }
        }
    }
    out
}

#[test]
fn documented_error_codes_equal_the_codes_the_source_answers() {
    let doc = document();
    let source = source_error_codes();
    assert!(source.len() > 15, "found only {} codes in src/; is the scan broken?", source.len());
    let documented = documented_error_codes(&doc);
    let top = doc["info"]["description"].as_str().unwrap_or_default();
    let status_of = |code: &str| ErrorCode::ALL.iter().find(|c| c.as_str() == code).map(|c| c.status().as_u16());
    let mut problems = Vec::new();
    for (code, at) in &source {
        let status = status_of(code).unwrap_or(0);
        let listed = documented.iter().any(|(s, c, _)| *s == status && c == code);
        if !listed && !top.contains(&format!("`{code}`")) {
            problems.push(format!("{at}: {status} `{code}` is not listed under any {status} response"));
        }
    }
    for (status, code, at) in &documented {
        match status_of(code) {
            None => problems.push(format!("{at}: lists `{code}`, which is not an error code")),
            Some(s) if s != *status => problems.push(format!("{at}: lists `{code}` under {status}; it answers {s}")),
            Some(_) if !source.contains_key(code) => problems.push(format!("{at}: lists `{code}`, which src/ never answers")),
            Some(_) => {}
        }
    }
    assert!(problems.is_empty(), "error codes out of step:\n  {}", problems.join("\n  "));
}
