//! Events: SDKs post exposures and tracks with their key (`POST /sdk/v1/events`), a batch is
//! stored whole or refused whole, and admins list them per environment.

use serde_json::{json, Value};

use crate::common::{try_request, Server};
use crate::support::{assert_error, dev_version, env_path, exposure, float_flag, now_millis, ok, post_events, save_test, sdk_key, stored_events, track};

/// Stores one exposure; returns the stored events, which a refused batch must leave alone.
fn one_stored(s: &Server) -> Vec<Value> {
    assert_eq!(post_events(s, &json!([exposure("u_0")]).to_string()).status, 202);
    let stored = stored_events(s);
    assert_eq!(stored.len(), 1);
    stored
}

// ---------------------------------------------------------------------------------------------
// Accepted batches

#[test]
fn an_accepted_batch_is_stored_in_order_with_its_fields() {
    let s = Server::start_demo();
    let reply = post_events(&s, &json!({"events": [exposure("u_1"), track("u_1")]}).to_string());
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 2}));
    let events = stored_events(&s);
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0]["kind"], "exposure");
    assert_eq!(events[0]["identifiers"], json!({"USER": "u_1"}));
    assert_eq!(events[0]["test"], "checkout-v2");
    assert_eq!(events[0]["bucket"], 1);
    assert_eq!(events[1]["kind"], "track");
    assert_eq!(events[1]["key"], "purchase");
    assert_eq!(events[1]["value"], 9.5);
    assert_eq!(events[1]["properties"], json!({"sku": "a-1"}));
    assert_eq!(events[1]["identifiers"]["ACCOUNT"], "42");
}

#[test]
fn a_bare_array_is_a_batch_too_and_an_empty_batch_stores_nothing() {
    let s = Server::start_demo();
    let reply = post_events(&s, &json!([exposure("u_2")]).to_string());
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 1}));
    assert_eq!(post_events(&s, r#"{"events": []}"#).json(), json!({"accepted": 0}));
    let events = stored_events(&s);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["identifiers"], json!({"USER": "u_2"}));
}

#[test]
fn events_are_kept_per_environment() {
    let s = Server::start_demo();
    assert_eq!(post_events(&s, &json!([exposure("u_1")]).to_string()).status, 202);
    let staging = s.admin("GET", &format!("{}/events", env_path("staging")), None);
    assert_eq!(staging.json()["events"], json!([]));
}

#[test]
fn events_edits_and_keys_survive_a_restart() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut s = Server::start_in(data.path());
    let printed = s.env.clone();
    assert_eq!(post_events(&s, &json!({"events": [exposure("u_1"), track("u_1")]}).to_string()).status, 202);
    assert_eq!(post_events(&s, &json!([exposure("u_2")]).to_string()).status, 202);
    let events = stored_events(&s);
    let version = save_test(&s, "float-flag", &float_flag());

    // Restart on the same data directory.
    s.stop().expect("a clean stop");
    let s = Server::start_in(data.path());
    assert_eq!(stored_events(&s), events);
    for name in ["AVSB_SDK_KEY", "AVSB_SDK_KEY_STAGING", "AVSB_SDK_KEY_PRODUCTION", "AVSB_ADMIN_TOKEN"] {
        assert_eq!(s.var(name), printed[name], "{name} changed across the restart");
    }
    let projects = s.admin("GET", "/projects", None).json();
    let keys: Vec<&str> = projects["projects"].as_array().expect("projects").iter().filter_map(|p| p["key"].as_str()).collect();
    assert_eq!(keys, vec!["demo"]);
    assert_eq!(dev_version(&s), version, "the edit survived");
    // The old keys still work.
    assert_eq!(post_events(&s, &json!([track("u_3")]).to_string()).status, 202);
    assert_eq!(stored_events(&s).len(), 4);
}

// ---------------------------------------------------------------------------------------------
// Refused batches

#[test]
fn a_batch_with_one_invalid_event_is_refused_whole_naming_the_event_and_field() {
    let s = Server::start_demo();
    let stored = one_stored(&s);
    let now = now_millis();
    let big_properties = json!({"blob": "x".repeat(9000)});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("missing kind", json!({"identifiers": {"USER": "u"}, "key": "k"}), "kind"),
        ("unknown kind", json!({"kind": "click", "identifiers": {"USER": "u"}, "key": "k"}), "kind"),
        ("missing identifiers", json!({"kind": "track", "key": "k"}), "identifiers"),
        ("empty identifiers", json!({"kind": "track", "identifiers": {}, "key": "k"}), "identifiers"),
        ("identifiers not an object", json!({"kind": "track", "identifiers": "u", "key": "k"}), "identifiers"),
        ("non-string identifier", json!({"kind": "track", "identifiers": {"USER": true}, "key": "k"}), "identifiers.USER"),
        ("object identifier", json!({"kind": "track", "identifiers": {"USER": {"id": 1}}, "key": "k"}), "identifiers.USER"),
        ("exposure without test", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "bucket": 1}), "test"),
        ("exposure without bucket", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t"}), "bucket"),
        ("bucket a string", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t", "bucket": "1"}), "bucket"),
        ("bucket a fraction", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t", "bucket": 1.5}), "bucket"),
        ("bucket too large", json!({"kind": "exposure", "identifiers": {"USER": "u"}, "test": "t", "bucket": 4_294_967_296_i64}), "bucket"),
        ("track without key", json!({"kind": "track", "identifiers": {"USER": "u"}}), "key"),
        ("value a string", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "value": "9.5"}), "value"),
        ("properties not an object", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "properties": [1]}), "properties"),
        ("properties too large", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "properties": big_properties}), "properties"),
        ("time negative", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "time": -1}), "time"),
        ("time far future", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "time": now + 10 * 86_400_000}), "time"),
        ("time a string", json!({"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "time": "yesterday"}), "time"),
        ("event not an object", json!("track"), ""),
    ];
    for (what, bad, field) in &cases {
        // Two good events, then the bad one: index 2.
        let body = json!({"events": [exposure("u_1"), track("u_1"), bad]}).to_string();
        let reply = post_events(&s, &body);
        assert_eq!(reply.status, 400, "{what}: {}", reply.body);
        let error = &reply.json()["error"];
        assert_eq!(error["code"], "invalid_event", "{what}: {error}");
        assert_eq!(error["index"], 2, "{what}: {error}");
        let message = error["message"].as_str().unwrap_or_default();
        let path = if field.is_empty() { "events[2]".to_string() } else { format!("events[2].{field}") };
        assert!(message.starts_with(&format!("{path}:")), "{what}: message {message:?} should name {path}");
    }
    assert_eq!(stored_events(&s), stored, "a refused batch stored something");
}

#[test]
fn a_value_json_cannot_hold_or_a_body_that_is_no_batch_is_refused() {
    let s = Server::start_demo();
    let stored = one_stored(&s);
    // Non-finite values cannot be written in JSON: 1e999 overflows the parser.
    let body = r#"{"events": [{"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "value": 1e999}]}"#;
    let reply = post_events(&s, body);
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["error"]["code"].is_string());
    for body in [r#"{"events": [{"kind": "track", "identifiers": {"USER": "u"}, "key": "k", "value": NaN}]}"#, "not json", "", r#"{"events": 5}"#, "42"] {
        let reply = post_events(&s, body);
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
        assert!(reply.json()["error"]["code"].is_string(), "{body:?}");
    }
    assert_eq!(stored_events(&s), stored, "a refused batch stored something");
}

#[test]
fn more_than_1000_events_are_refused_and_1000_are_accepted() {
    let s = Server::start_demo();
    let stored = one_stored(&s);
    let many: Vec<Value> = (0..1001).map(|i| exposure(&format!("u{i}"))).collect();
    let reply = post_events(&s, &json!({"events": many}).to_string());
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "too_many_events");
    assert_eq!(stored_events(&s), stored, "a refused batch stored something");
    let full: Vec<Value> = (0..1000).map(|i| exposure(&format!("u{i}"))).collect();
    let reply = post_events(&s, &json!({"events": full}).to_string());
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 1000}));
}

#[test]
fn a_batch_over_1_mib_is_refused_with_413() {
    let s = Server::start_demo();
    let stored = one_stored(&s);
    let huge = json!({"events": [exposure("u")], "padding": "x".repeat(1024 * 1024)}).to_string();
    let auth = format!("Bearer {}", sdk_key(&s));
    let url = format!("{}/sdk/v1/events", s.base());
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let reply = try_request("POST", &url, &headers, Some(huge.as_bytes()))
        .expect("an answer to an oversized batch");
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert_eq!(reply.json()["error"]["code"], "body_too_large");
    assert_eq!(stored_events(&s), stored, "a refused batch stored something");
}

#[test]
fn a_batch_that_is_not_utf8_is_refused() {
    let s = Server::start_demo();
    let stored = one_stored(&s);
    let auth = format!("Bearer {}", sdk_key(&s));
    let url = format!("{}/sdk/v1/events", s.base());
    let reply = try_request("POST", &url, &[("Authorization", &auth)], Some(b"\xff\xfe{\"events\":[]}")).expect("answer");
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert_eq!(stored_events(&s), stored, "a refused batch stored something");
}

#[test]
fn posting_events_needs_an_sdk_key() {
    let s = Server::start_demo();
    let stored = one_stored(&s);
    assert_eq!(s.call("POST", "/sdk/v1/events", None, Some("[]")).status, 401);
    assert_eq!(stored_events(&s), stored, "a refused batch stored something");
}

// ---------------------------------------------------------------------------------------------
// Listing

/// Posts an exposure a second old and a track; returns the listing of development and the
/// exposure's time.
fn posted(s: &Server) -> (Value, i64) {
    let time = now_millis() - 1000;
    let batch = json!({"events": [
        {"kind": "exposure", "identifiers": {"USER": "u1"}, "test": "buttoncolortst", "bucket": 1, "time": time},
        {"kind": "track", "identifiers": {"USER": "u1"}, "key": "purchase", "value": 149.99, "properties": {"currency": "usd"}}
    ]});
    let reply = s.call("POST", "/sdk/v1/events", Some(&sdk_key(s)), Some(&batch.to_string()));
    assert_eq!(reply.status, 202, "{}", reply.body);
    assert_eq!(reply.json(), json!({"accepted": 2}));
    let listed = ok(s.admin("GET", &format!("{}/events", env_path("development")), None))["events"].clone();
    (listed, time)
}

#[test]
fn posted_events_are_listed_for_admins_with_the_key_and_times() {
    let s = Server::start_demo();
    let (listed, time) = posted(&s);
    let events = listed.as_array().expect("events");
    assert_eq!(events.len(), 2, "{listed}");
    let (exposure, track) = (&events[0], &events[1]);
    assert_eq!(exposure["kind"], "exposure");
    assert_eq!(exposure["identifiers"], json!({"USER": "u1"}));
    assert_eq!(exposure["test"], "buttoncolortst");
    assert_eq!(exposure["bucket"], 1);
    assert_eq!(exposure["time"], time);
    assert_eq!(track["kind"], "track");
    assert_eq!(track["identifiers"], json!({"USER": "u1"}));
    assert_eq!(track["key"], "purchase");
    assert_eq!(track["value"], 149.99);
    assert_eq!(track["properties"], json!({"currency": "usd"}));
    assert!(track["time"].as_i64().expect("time") >= time, "{track}");
    assert!(exposure["id"].as_i64().expect("id") < track["id"].as_i64().expect("id"));
    let keys = ok(s.admin("GET", &format!("{}/sdk-keys", env_path("development")), None));
    for event in events {
        assert_eq!(event["sdkKeyId"], keys["keys"][0]["id"], "{event}");
        assert!(event["receivedAt"].as_i64().expect("receivedAt") >= time, "{event}");
    }
}

#[test]
fn listed_events_are_paged_after_an_id_and_by_a_limit_per_environment() {
    let s = Server::start_demo();
    let (listed, _) = posted(&s);
    let (exposure, track) = (&listed[0], &listed[1]);
    let page = |query: &str| ok(s.admin("GET", &format!("{}/events?{query}", env_path("development")), None))["events"].clone();
    assert_eq!(page(&format!("after={}", exposure["id"])), json!([track]));
    assert_eq!(page("limit=1"), json!([exposure]));
    assert_eq!(ok(s.admin("GET", &format!("{}/events", env_path("staging")), None))["events"], json!([]));
}

#[test]
fn a_batch_refused_for_its_second_event_names_it_and_lists_nothing_new() {
    let s = Server::start_demo();
    let (listed, _) = posted(&s);
    let bad = json!({"events": [{"kind": "track", "identifiers": {"USER": "u2"}, "key": "ok"}, {"kind": "exposure", "identifiers": {"USER": "u2"}}]});
    let reply = s.call("POST", "/sdk/v1/events", Some(&sdk_key(&s)), Some(&bad.to_string()));
    assert_error(&reply, 400, "invalid_event", &["events[1]"]);
    assert_eq!(ok(s.admin("GET", &format!("{}/events", env_path("development")), None))["events"], listed);
}

#[test]
fn listing_events_needs_an_admin_token() {
    let s = Server::start_demo();
    let path = format!("/api/v1{}/events", env_path("development"));
    assert_error(&s.call("GET", &path, None, None), 401, "unauthorized", &[]);
    assert_error(&s.call("GET", &path, Some(&sdk_key(&s)), None), 401, "unauthorized", &[]);
}

#[test]
fn events_are_listed_by_kind_test_key_and_time_and_exported_as_ndjson_and_csv() {
    let s = Server::start_demo();
    let t = now_millis() - 10_000;
    let mut early = exposure("u_1");
    early["time"] = json!(t);
    let mut late = track("u_2");
    late["time"] = json!(t + 5000);
    assert_eq!(post_events(&s, &json!([early, late, exposure("u_3")]).to_string()).status, 202);
    let path = |q: &str| format!("{}/events?{q}", env_path("development"));
    let count = |q: &str| ok(s.admin("GET", &path(q), None))["events"].as_array().expect("events").len();
    assert_eq!(count("kind=track"), 1);
    assert_eq!(count("kind=exposure&test=checkout-v2"), 2);
    assert_eq!(count("key=purchase"), 1);
    assert_eq!(count(&format!("from={t}&to={}", t + 5000)), 1, "the end is excluded");
    assert_error(&s.admin("GET", &path("kind=click"), None), 400, "invalid_query", &["kind"]);
    assert_error(&s.admin("GET", &path("format=xml"), None), 400, "invalid_query", &["format"]);

    let ndjson = s.admin("GET", &path("format=ndjson&kind=exposure"), None);
    assert_eq!(ndjson.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = ndjson.body.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["identifiers"], json!({"USER": "u_1"}));

    let csv = s.admin("GET", &path("format=csv"), None);
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.header("content-disposition").is_some_and(|d| d.contains("demo-development-events.csv")));
    let rows: Vec<&str> = csv.body.lines().collect();
    assert_eq!(rows.len(), 4, "a header and three events: {}", csv.body);
    assert!(rows[0].starts_with("id,receivedAt,sdkKeyId,kind,time,identifiers"));
    assert!(rows[2].contains(",track,") && rows[2].contains("purchase") && rows[2].contains("9.5"), "{}", rows[2]);
    assert!(rows[1].contains(r#""{""USER"":""u_1""}""#), "identifiers as quoted JSON text: {}", rows[1]);
}
