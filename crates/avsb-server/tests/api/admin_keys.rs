//! SDK keys (`.../sdk-keys`): a new key is shown once, listed without its secret, works on every
//! SDK-facing API at once, and is shut out at once when revoked.

use serde_json::Value;

use crate::common::{Reply, Server};
use crate::support::{assert_error, env_path, ok};

fn production() -> String {
    env_path("production")
}

/// Makes a production key (with a body, or none); returns the answer and the secret.
fn new_key(s: &Server, body: Option<&str>) -> (Value, String) {
    let reply = s.admin("POST", &format!("{}/sdk-keys", production()), body);
    assert_eq!(reply.status, 201, "{}", reply.body);
    let key = reply.json();
    let secret = key["key"].as_str().expect("key").to_string();
    (key, secret)
}

fn pipet(s: &Server, key: &str) -> Reply {
    s.call("GET", &format!("/pipet/{key}/groups/identify?id.USER=u1&test=buttoncolortst"), None, None)
}

fn ofrep(s: &Server, key: &str) -> Reply {
    s.call("POST", "/ofrep/v1/evaluate/flags/checkout-v2", Some(key), Some(r#"{"context": {"targetingKey": "u_1"}}"#))
}

fn datafile(s: &Server, key: &str) -> Reply {
    s.call("GET", "/sdk/v1/datafile", Some(key), None)
}

fn events(s: &Server, key: &str) -> Reply {
    s.call("POST", "/sdk/v1/events", Some(key), Some(r#"{"events": []}"#))
}

fn revoke(s: &Server, id: &str) -> Reply {
    s.admin("DELETE", &format!("{}/sdk-keys/{id}", production()), None)
}

#[test]
fn a_new_sdk_key_is_shown_once_with_its_prefix_and_pipet_root() {
    let s = Server::start_demo();
    let (web, web_key) = new_key(&s, Some(r#"{"name": "web"}"#));
    assert_eq!(web["name"], "web");
    assert_eq!(web["pipetRoot"], format!("/pipet/{web_key}"));
    assert!(web["revokedAt"].is_null());
    assert!(web_key.starts_with(web["prefix"].as_str().expect("prefix")));
    // Without a body, too; every key is new.
    let (_, batch_key) = new_key(&s, None);
    assert_ne!(batch_key, web_key);
}

#[test]
fn sdk_keys_are_listed_without_their_secrets() {
    let s = Server::start_demo();
    let (web, web_key) = new_key(&s, Some(r#"{"name": "web"}"#));
    let (batch, batch_key) = new_key(&s, None);
    let reply = s.admin("GET", &format!("{}/sdk-keys", production()), None);
    assert_eq!(reply.status, 200);
    for secret in [&web_key, &batch_key, &s.var("AVSB_SDK_KEY_PRODUCTION").to_string()] {
        assert!(!reply.body.contains(secret.as_str()), "the listing shows a secret: {}", reply.body);
    }
    let listed = reply.json()["keys"].as_array().expect("keys").clone();
    assert_eq!(listed.len(), 3, "{listed:?}");
    for (key, secret) in [(&web, &web_key), (&batch, &batch_key)] {
        let entry = listed.iter().find(|k| k["id"] == key["id"]).unwrap_or_else(|| panic!("{key} not listed"));
        assert!(entry.get("key").is_none(), "{entry}");
        let prefix = entry["prefix"].as_str().expect("prefix");
        assert!(secret.starts_with(prefix) && prefix.len() < secret.len() / 2, "prefix {prefix:?}");
    }
}

#[test]
fn several_sdk_keys_work_at_once_on_every_api() {
    let s = Server::start_demo();
    let (_, web_key) = new_key(&s, Some(r#"{"name": "web"}"#));
    let (_, batch_key) = new_key(&s, None);
    for key in [&web_key, &batch_key] {
        assert_eq!(pipet(&s, key).status, 200);
        assert_eq!(ofrep(&s, key).json()["value"], true);
        assert_eq!(datafile(&s, key).json()["environment"], "production");
        assert_eq!(events(&s, key).status, 202);
    }
}

#[test]
fn a_revoked_sdk_key_is_shut_out_of_every_api_at_once() {
    let s = Server::start_demo();
    let (web, web_key) = new_key(&s, Some(r#"{"name": "web"}"#));
    let reply = revoke(&s, &web["id"].to_string());
    assert_eq!(reply.status, 204, "{}", reply.body);
    let reply = pipet(&s, &web_key);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.json()["meta"]["status"], 401);
    assert_eq!(ofrep(&s, &web_key).status, 401);
    assert_error(&datafile(&s, &web_key), 401, "unauthorized", &["revoked"]);
    assert_error(&events(&s, &web_key), 401, "unauthorized", &["revoked"]);
}

#[test]
fn revoking_one_sdk_key_leaves_the_others_working_and_listed_active() {
    let s = Server::start_demo();
    let (web, _) = new_key(&s, Some(r#"{"name": "web"}"#));
    let (_, batch_key) = new_key(&s, None);
    assert_eq!(revoke(&s, &web["id"].to_string()).status, 204);
    assert_eq!(pipet(&s, &batch_key).status, 200);
    assert_eq!(ofrep(&s, &batch_key).json()["value"], true);
    assert_eq!(datafile(&s, &batch_key).status, 200);
    let listed = ok(s.admin("GET", &format!("{}/sdk-keys", production()), None))["keys"].clone();
    for key in listed.as_array().expect("keys") {
        assert_eq!(key["revokedAt"].is_null(), key["id"] != web["id"], "{key}");
    }
}

#[test]
fn revoking_twice_an_unknown_or_malformed_id_or_another_environments_key_revokes_nothing() {
    let s = Server::start_demo();
    let (web, _) = new_key(&s, Some(r#"{"name": "web"}"#));
    assert_eq!(revoke(&s, &web["id"].to_string()).status, 204);
    assert_error(&revoke(&s, &web["id"].to_string()), 404, "not_found", &[&web["id"].to_string()]);
    assert_error(&revoke(&s, "999999"), 404, "not_found", &["999999"]);
    assert_error(&revoke(&s, "abc"), 400, "invalid_field", &["integer"]);
    let development_keys = ok(s.admin("GET", &format!("{}/sdk-keys", env_path("development")), None));
    let development_id = development_keys["keys"][0]["id"].to_string();
    assert_error(&revoke(&s, &development_id), 404, "not_found", &[&development_id]);
    assert_eq!(pipet(&s, s.var("AVSB_SDK_KEY")).status, 200, "another environment's key was revoked");
}
