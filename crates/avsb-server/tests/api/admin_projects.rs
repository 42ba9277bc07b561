//! Projects: created with checked keys, schemas and environments; renamed; their default
//! identifier type checked against the schema. A refused creation leaves no project behind.

use serde_json::{json, Value};

use crate::common::Server;
use crate::support::{assert_error, ok, text};

/// The keys of the listed projects, in the listing's order.
fn project_keys(s: &Server) -> Vec<String> {
    let list = ok(s.admin("GET", "/projects", None));
    list["projects"].as_array().expect("projects").iter().map(|p| p["key"].as_str().expect("key").to_string()).collect()
}

/// `POST /projects` with a body.
fn create(s: &Server, body: &Value) -> crate::common::Reply {
    s.admin("POST", "/projects", Some(&body.to_string()))
}

#[test]
fn the_demo_project_is_listed_with_three_environments_of_five_tests() {
    let s = Server::start_demo();
    let list = ok(s.admin("GET", "/projects", None));
    let demo = &list["projects"][0];
    assert_eq!(list["projects"].as_array().expect("projects").len(), 1);
    assert_eq!(demo["key"], "demo");
    assert_eq!(demo["defaultIdentifierType"], "USER");
    let keys: Vec<&Value> = demo["environments"].as_array().expect("environments").iter().map(|e| &e["key"]).collect();
    assert_eq!(keys, ["development", "staging", "production"]);
    assert!(demo["environments"].as_array().expect("environments").iter().all(|e| e["tests"] == 5), "{demo}");
}

#[test]
fn a_project_made_from_a_key_alone_gets_three_empty_environments_and_the_user_identifier() {
    let s = Server::start_demo();
    let reply = create(&s, &json!({"key": "shop"}));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let shop = reply.json();
    assert_eq!(shop["name"], "shop");
    assert_eq!(shop["defaultIdentifierType"], "USER");
    let envs = shop["environments"].as_array().expect("environments");
    assert_eq!(envs.iter().map(|e| e["key"].as_str().expect("key")).collect::<Vec<_>>(), ["development", "staging", "production"]);
    assert!(envs.iter().all(|e| e["tests"] == 0), "{shop}");
    assert_eq!(ok(s.admin("GET", "/projects/shop", None)), shop);
    let schema = ok(s.admin("GET", "/projects/shop/schema", None));
    assert!(schema["identifiers"]["USER"].is_object(), "{schema}");
    let empty = ok(s.admin("GET", "/projects/shop/environments/staging/matrix", None));
    assert_eq!(empty["tests"], json!({}));
    assert_eq!(text(&empty["audit"]["version"]), text(&envs[1]["currentRevision"]));
}

#[test]
fn a_project_made_with_a_schema_and_environments_serves_that_schema_through_pipet() {
    let s = Server::start_demo();
    let custom_schema = json!({
        "context": {"tier": {"source": "QUERY", "type": "String", "defaultValue": "basic"}},
        "identifiers": {"ACCOUNT": {"source": "QUERY", "sourceKey": "account"}, "USER": {"source": "QUERY"}}
    });
    let body = json!({"key": "billing", "name": "Billing", "schema": custom_schema,
        "defaultIdentifierType": "ACCOUNT", "environments": ["dev", "prod"]});
    let reply = create(&s, &body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let billing = reply.json();
    assert_eq!(billing["name"], "Billing");
    assert_eq!(billing["defaultIdentifierType"], "ACCOUNT");
    let envs = billing["environments"].as_array().expect("environments");
    assert_eq!(envs.iter().map(|e| e["key"].as_str().expect("key")).collect::<Vec<_>>(), ["dev", "prod"]);
    assert_eq!(envs.iter().map(|e| e["position"].as_i64().expect("position")).collect::<Vec<_>>(), [0, 1]);
    let schema = ok(s.admin("GET", "/projects/billing/schema", None));
    assert!(schema["context"]["tier"].is_object(), "{schema}");
    let key = ok(s.admin("POST", "/projects/billing/environments/dev/sdk-keys", Some("{}")));
    let root = format!("{}{}", s.base(), key["pipetRoot"].as_str().expect("pipetRoot"));
    let context = s.call("GET", &format!("{root}/config/context"), None, None).json();
    assert_eq!(context["data"]["tier"]["defaultValue"], "basic", "{context}");
    let identifiers = s.call("GET", &format!("{root}/config/identifiers"), None, None).json();
    assert_eq!(identifiers["data"]["ACCOUNT"]["sourceKey"], "id.account", "{identifiers}");
    assert_eq!(project_keys(&s), ["billing", "demo"]);
}

#[test]
fn a_project_key_that_exists_is_refused_and_the_project_kept() {
    let s = Server::start_demo();
    ok(create(&s, &json!({"key": "shop"})));
    let reply = create(&s, &json!({"key": "shop", "name": "Another shop"}));
    assert_error(&reply, 409, "already_exists", &["shop"]);
    assert_eq!(ok(s.admin("GET", "/projects/shop", None))["name"], "shop");
    assert_eq!(project_keys(&s), ["demo", "shop"]);
}

#[test]
fn a_malformed_project_key_is_refused() {
    let s = Server::start_demo();
    for key in ["Shop", "has space", "-lead", "", &"a".repeat(64), "naïve", "a/b"] {
        let reply = create(&s, &json!({"key": key}));
        assert_error(&reply, 400, "invalid_key", &[&format!("project key '{key}'")]);
    }
    assert_eq!(project_keys(&s), ["demo"]);
}

#[test]
fn a_malformed_or_repeated_environment_key_is_refused() {
    let s = Server::start_demo();
    let reply = create(&s, &json!({"key": "ok1", "environments": ["dev", "Prod"]}));
    assert_error(&reply, 400, "invalid_key", &["environment key 'Prod'"]);
    let reply = create(&s, &json!({"key": "ok2", "environments": ["a", "a"]}));
    assert_error(&reply, 400, "invalid_field", &["'a'", "twice"]);
    assert_eq!(project_keys(&s), ["demo"]);
}

#[test]
fn a_schema_with_an_unknown_type_or_source_is_refused_naming_the_place() {
    let s = Server::start_demo();
    for (field, bad, path) in [("type", json!("NotAType"), "context.x.type"), ("source", json!("BODY"), "context.x.source")] {
        let mut variable = json!({"source": "QUERY", "type": "String"});
        variable[field] = bad;
        let body = json!({"key": "bad1", "schema": {"context": {"x": variable}, "identifiers": {"USER": {"source": "QUERY"}}}});
        let error = assert_error(&create(&s, &body), 400, "invalid_schema", &[path]);
        assert_eq!(error["path"], path);
    }
    assert_eq!(project_keys(&s), ["demo"]);
}

#[test]
fn an_unknown_field_or_a_default_identifier_type_the_schema_lacks_is_refused() {
    let s = Server::start_demo();
    let reply = create(&s, &json!({"key": "bad2", "colour": "red"}));
    assert_error(&reply, 400, "invalid_field", &["colour"]);
    let reply = create(&s, &json!({"key": "bad3", "defaultIdentifierType": "ACCOUNT"}));
    assert_error(&reply, 400, "invalid_field", &["defaultIdentifierType 'ACCOUNT'"]);
    assert_eq!(project_keys(&s), ["demo"]);
}

#[test]
fn patch_renames_a_project_and_keeps_its_identifier_type() {
    let s = Server::start_demo();
    ok(create(&s, &json!({"key": "shop"})));
    let patched = ok(s.admin("PATCH", "/projects/shop", Some(r#"{"name": "The Shop"}"#)));
    assert_eq!(patched["name"], "The Shop");
    assert_eq!(patched["defaultIdentifierType"], "USER");
    assert_eq!(ok(s.admin("GET", "/projects/shop", None))["name"], "The Shop");
}

#[test]
fn patch_sets_a_default_identifier_type_the_schema_has_and_keeps_the_name() {
    let s = Server::start_demo();
    let patched = ok(s.admin("PATCH", "/projects/demo", Some(r#"{"defaultIdentifierType": "ACCOUNT"}"#)));
    assert_eq!(patched["defaultIdentifierType"], "ACCOUNT");
    assert_eq!(patched["name"], "Demo");
    assert_eq!(ok(s.admin("GET", "/projects/demo", None))["defaultIdentifierType"], "ACCOUNT");
}

#[test]
fn patch_refuses_a_default_identifier_type_the_schema_lacks() {
    let s = Server::start_demo();
    ok(create(&s, &json!({"key": "shop"})));
    let reply = s.admin("PATCH", "/projects/shop", Some(r#"{"defaultIdentifierType": "ACCOUNT"}"#));
    assert_error(&reply, 400, "invalid_field", &["'ACCOUNT'"]);
    assert_eq!(ok(s.admin("GET", "/projects/shop", None))["defaultIdentifierType"], "USER");
}

#[test]
fn patch_refuses_an_unknown_field() {
    let s = Server::start_demo();
    ok(create(&s, &json!({"key": "shop"})));
    assert_error(&s.admin("PATCH", "/projects/shop", Some(r#"{"title": "x"}"#)), 400, "invalid_field", &["title"]);
}

#[test]
fn an_unknown_project_is_not_found() {
    let s = Server::start_demo();
    assert_error(&s.admin("PATCH", "/projects/nope", Some(r#"{"name": "x"}"#)), 404, "not_found", &["'nope'"]);
    assert_error(&s.admin("GET", "/projects/nope", None), 404, "not_found", &["'nope'"]);
}
