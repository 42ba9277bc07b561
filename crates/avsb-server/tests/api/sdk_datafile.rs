//! The SDK datafile (`GET /sdk/v1/datafile`): an environment's matrix, schema and versions, with
//! an ETag that changes with every edit.

use serde_json::json;

use crate::common::{Reply, Server};
use crate::support::{assert_json_content_type, dev_version, float_flag, save_test, sdk_key};

fn datafile(s: &Server, headers: &[(&str, &str)]) -> Reply {
    s.call_with("GET", "/sdk/v1/datafile", Some(&sdk_key(s)), None, headers)
}

fn etag(reply: &Reply) -> String {
    reply.header("etag").expect("ETag").to_string()
}

#[test]
fn the_datafile_holds_the_environments_matrix_schema_and_version() {
    let s = Server::start_demo();
    let reply = datafile(&s, &[]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let doc = reply.json();
    assert_eq!(doc["project"], "demo");
    assert_eq!(doc["environment"], "development");
    assert_eq!(doc["version"], json!(dev_version(&s)));
    assert!(doc["schema"]["context"]["loggedIn"].is_object(), "{}", doc["schema"]);
    assert!(doc["schema"]["identifiers"]["USER"].is_object(), "{}", doc["schema"]);
    assert!(doc["matrix"]["tests"]["checkout-v2"].is_object());
    assert_eq!(doc["matrix"]["audit"]["version"], doc["version"]);
}

#[test]
fn the_datafile_answers_304_to_its_etag_with_the_key_in_either_header() {
    let s = Server::start_demo();
    let tag = etag(&datafile(&s, &[]));
    let reply = datafile(&s, &[("If-None-Match", &tag)]);
    assert_eq!(reply.status, 304);
    assert!(reply.body.is_empty());
    let reply = s.call_with("GET", "/sdk/v1/datafile", None, None, &[("X-API-Key", &sdk_key(&s)), ("If-None-Match", &tag)]);
    assert_eq!(reply.status, 304);
}

#[test]
fn each_environment_has_its_own_datafile() {
    let s = Server::start_demo();
    let tag = etag(&datafile(&s, &[]));
    let staging = s.call("GET", "/sdk/v1/datafile", Some(s.var("AVSB_SDK_KEY_STAGING")), None);
    assert_eq!(staging.json()["environment"], "staging");
    assert_ne!(staging.header("etag"), Some(tag.as_str()));
}

#[test]
fn an_edit_gives_the_datafile_a_new_etag_and_the_new_test() {
    let s = Server::start_demo();
    let tag = etag(&datafile(&s, &[]));
    let version = save_test(&s, "float-flag", &float_flag());
    let reply = datafile(&s, &[("If-None-Match", &tag)]);
    assert_eq!(reply.status, 200);
    assert_ne!(reply.header("etag"), Some(tag.as_str()));
    let doc = reply.json();
    assert_eq!(doc["version"], json!(version));
    assert_eq!(doc["matrix"]["tests"]["float-flag"]["buckets"][0]["payload"], json!({"doubleValue": 1.0}));
}

#[test]
fn the_datafile_needs_an_sdk_key() {
    let s = Server::start_demo();
    for auth in [Some("sdk-not-a-real-key"), None, Some(s.var("AVSB_ADMIN_TOKEN"))] {
        let reply = s.call("GET", "/sdk/v1/datafile", auth, None);
        assert_eq!(reply.status, 401, "{auth:?}: {}", reply.body);
        assert!(reply.json()["error"]["code"].is_string());
    }
}
