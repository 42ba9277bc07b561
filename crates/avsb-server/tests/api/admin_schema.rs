//! The project's schema (Pipet's configuration): served with its version as the ETag; a change
//! is checked against every environment's matrix before it is served, and a compatible one
//! reaches Pipet, the datafile and the rules at once.

use serde_json::{json, Value};

use crate::common::{Reply, Server};
use crate::support::{assert_error, dev_root, environment_state, everyone, groups, ok, put_test, sdk_key, sdk_root};

fn schema_of(s: &Server) -> Reply {
    s.admin("GET", "/projects/demo/schema", None)
}

fn put_schema(s: &Server, schema: &Value, if_match: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = if_match.map(|tag| vec![("If-Match", tag)]).unwrap_or_default();
    s.call_with("PUT", "/api/v1/projects/demo/schema", Some(s.var("AVSB_ADMIN_TOKEN")), Some(&schema.to_string()), &headers)
}

/// `GET /sdk/v1/datafile` with the development key, optionally conditional.
fn datafile(s: &Server, if_none_match: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = if_none_match.map(|tag| vec![("If-None-Match", tag)]).unwrap_or_default();
    s.call_with("GET", "/sdk/v1/datafile", Some(&sdk_key(s)), None, &headers)
}

/// Everything a refused schema change must leave alone.
struct Unchanged {
    schema: String,
    environment: Value,
    project: Value,
    datafile_etag: String,
}

impl Unchanged {
    fn now(s: &Server) -> Unchanged {
        Unchanged {
            schema: schema_of(s).body,
            environment: environment_state(s, "development"),
            project: ok(s.admin("GET", "/projects/demo", None)),
            datafile_etag: datafile(s, None).header("etag").expect("datafile etag").to_string(),
        }
    }

    #[track_caller]
    fn assert_still(&self, s: &Server) {
        let reply = schema_of(s);
        assert_eq!(reply.header("etag"), Some("\"1\""));
        assert_eq!(reply.body, self.schema);
        assert_eq!(environment_state(s, "development"), self.environment);
        assert_eq!(ok(s.admin("GET", "/projects/demo", None)), self.project);
        let context = s.call("GET", &format!("{}/config/context", dev_root(s)), None, None).json();
        assert!(context["data"]["country"].is_object(), "{context}");
        assert_eq!(datafile(s, Some(&self.datafile_etag)).status, 304, "the datafile changed after a refused schema");
    }
}

/// The demo schema with a new variable `tier` (default `basic`).
fn with_tier(s: &Server) -> Value {
    let mut schema = ok(schema_of(s));
    schema["context"]["tier"] = json!({"source": "QUERY", "type": "String", "defaultValue": "basic"});
    schema
}

#[test]
fn the_schema_is_served_with_its_version_as_etag() {
    let s = Server::start_demo();
    let reply = schema_of(&s);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("etag"), Some("\"1\""));
    let schema = reply.json();
    assert!(schema["context"]["country"].is_object(), "{schema}");
}

#[test]
fn a_schema_change_that_would_drop_tests_is_refused_naming_every_environment() {
    let s = Server::start_demo();
    let before = Unchanged::now(&s);
    let mut without_country = ok(schema_of(&s));
    without_country["context"].as_object_mut().expect("context").remove("country");
    let error = assert_error(&put_schema(&s, &without_country, None), 422, "invalid_matrix", &["development", "staging", "production"]);
    for environment in ["development", "staging", "production"] {
        let diagnostics = error["diagnostics"][environment].as_array().unwrap_or_else(|| panic!("no {environment}: {error}"));
        assert!(
            diagnostics.iter().any(|d| d["test"] == "countryalgotst"
                && d["code"] == "unknown_variable"
                && d["path"] == "tests.countryalgotst.allocations[0].rule"),
            "{environment}: {error}"
        );
    }
    before.assert_still(&s);
}

#[test]
fn an_invalid_schema_is_refused_naming_the_place() {
    let s = Server::start_demo();
    let before = Unchanged::now(&s);
    let invalid = json!({"context": {"x": {"source": "QUERY", "type": "NotAType"}}, "identifiers": {"USER": {"source": "QUERY"}}});
    let error = assert_error(&put_schema(&s, &invalid, None), 400, "invalid_schema", &["context.x.type"]);
    assert_eq!(error["path"], "context.x.type");
    let mut without_user = ok(schema_of(&s));
    without_user["identifiers"].as_object_mut().expect("identifiers").remove("USER");
    assert_error(&put_schema(&s, &without_user, None), 400, "invalid_schema", &["'USER'"]);
    before.assert_still(&s);
}

#[test]
fn a_schema_write_on_a_stale_version_conflicts() {
    let s = Server::start_demo();
    let before = Unchanged::now(&s);
    let schema = ok(schema_of(&s));
    let reply = put_schema(&s, &schema, Some("\"0\""));
    assert_eq!(assert_error(&reply, 409, "conflict", &["version 1"])["currentSchemaVersion"], 1);
    before.assert_still(&s);
}

#[test]
fn unknown_fields_in_a_schema_are_refused() {
    let s = Server::start_demo();
    let schema = ok(schema_of(&s));
    let mut typo = schema.clone();
    typo["context"]["tier"] = json!({"source": "QUERY", "type": "String", "defualtValue": "basic"});
    assert_error(&put_schema(&s, &typo, None), 400, "invalid_schema", &["defualtValue"]);
    let mut extra = schema.clone();
    extra["identifers"] = json!({});
    assert_error(&put_schema(&s, &extra, None), 400, "invalid_schema", &["identifers"]);
    assert_eq!(ok(s.admin("GET", "/projects/demo", None))["schemaVersion"], 1);
}

#[test]
fn a_compatible_schema_change_bumps_the_version_and_pipet_serves_it_in_every_environment() {
    let s = Server::start_demo();
    let staging_root = sdk_root(&s, "staging");
    let project = ok(put_schema(&s, &with_tier(&s), Some("\"1\"")));
    assert_eq!(project["schemaVersion"], 2);
    let reply = schema_of(&s);
    assert_eq!(reply.header("etag"), Some("\"2\""));
    assert_eq!(reply.json()["context"]["tier"]["defaultValue"], "basic");
    for pipet in [&dev_root(&s), &staging_root] {
        let context = s.call("GET", &format!("{pipet}/config/context"), None, None).json();
        assert_eq!(context["data"]["tier"]["defaultValue"], "basic", "{context}");
        assert_eq!(context["data"]["tier"]["source"], "QUERY", "{context}");
    }
}

#[test]
fn a_schema_change_gives_the_datafile_a_new_etag() {
    let s = Server::start_demo();
    let etag1 = datafile(&s, None).header("etag").expect("datafile etag").to_string();
    ok(put_schema(&s, &with_tier(&s), Some("\"1\"")));
    let reply = datafile(&s, Some(&etag1));
    assert_eq!(reply.status, 200, "the datafile kept its ETag after a schema change");
    let etag2 = reply.header("etag").expect("etag").to_string();
    assert_ne!(etag2, etag1);
    assert_eq!(reply.json()["schemaVersion"], 2);
    assert_eq!(datafile(&s, Some(&etag2)).status, 304);
}

#[test]
fn rules_may_use_a_variable_the_schema_gained() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    ok(put_schema(&s, &with_tier(&s), Some("\"1\"")));
    let mut gold = everyone("gold", 1);
    gold["rule"] = json!("${tier == 'gold'}");
    ok(put_test(&s, "development", "gold", &gold));
    assert_eq!(groups(&s, &root, "id.USER=u1&ctx.tier=gold&test=gold")["gold"]["name"], "test");
    assert_eq!(groups(&s, &root, "id.USER=u1&test=gold"), json!({}));
}
