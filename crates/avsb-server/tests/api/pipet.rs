//! Pipet's API under `/pipet/{sdk_key}` (docs/proctor.md §6): `/groups/identify` with its
//! parameters, identifiers and conversions, the matrix, the audit, one definition, the
//! configuration, and Pipet's envelopes for every refusal.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::{try_request, Reply, Server};
use crate::support::{assert_json_content_type, dev_root, dev_version, identify, pipet, save_test};

/// A Pipet error envelope with this status and message, with the HTTP status to match.
#[track_caller]
pub fn assert_pipet_error(reply: &Reply, status: u16, message: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(reply.json(), json!({"data": {}, "meta": {"status": status, "error": message}}), "{}", reply.body);
    assert_json_content_type(reply);
}

/// Proctor's `updatedDate`: `yyyy-MM-dd'T'HH:mmZ`, e.g. `1969-12-31T18:00-0600`.
fn is_proctor_date(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| r.into_iter().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
    b.len() == 21
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && (b[16] == b'-' || b[16] == b'+')
        && digits(17..21)
}

/// The reference example's request (docs/proctor.md §6).
const REFERENCE: &str = "id.USER=pa5xq0lz4n80&ctx.loggedIn=true&test=buttoncolortst,newfeaturerollout&prforceGroups=buttoncolortst2";

// ---------------------------------------------------------------------------------------------
// /groups/identify

#[test]
fn identify_answers_the_reference_example() {
    let s = Server::start_demo();
    let reply = identify(&s, REFERENCE);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let doc = reply.json();
    assert_eq!(doc["meta"], json!({"status": 200}));
    let groups = &doc["data"]["groups"];
    assert_eq!(
        *groups,
        json!({
            "buttoncolortst": {"name": "green", "value": 2, "payload": {"stringValue": "#3DFF33"}, "version": "1"},
            "newfeaturerollout": {"name": "active", "value": 0, "version": "1"}
        })
    );
    assert!(groups["newfeaturerollout"].as_object().expect("object").get("payload").is_none());
}

#[test]
fn identify_echoes_every_configured_variable_converted_with_defaults_for_the_absent_ones() {
    let s = Server::start_demo();
    let data = identify(&s, REFERENCE).json()["data"].clone();
    assert_eq!(data["context"], json!({"country": "US", "loggedIn": true, "plan": "free", "ua": ""}));
}

#[test]
fn identify_reports_the_audit_of_the_served_matrix() {
    let s = Server::start_demo();
    let data = identify(&s, REFERENCE).json()["data"].clone();
    let audit = &data["audit"];
    assert_eq!(audit["version"], json!(dev_version(&s)));
    assert!(audit["updated"].as_i64().is_some_and(|t| t > 0), "{audit}");
    assert!(audit["updatedDate"].as_str().is_some_and(is_proctor_date), "{audit}");
    assert_eq!(audit["updatedBy"], "demo");
    assert_eq!(audit.as_object().expect("audit").len(), 4, "{audit}");
}

#[test]
fn an_empty_test_parameter_selects_no_tests_but_keeps_the_audit() {
    let s = Server::start_demo();
    let version = dev_version(&s);
    // Present but empty, or only commas.
    for query in ["id.USER=u_1&test=", "id.USER=u_1&test=,,", "id.USER=u_1&test=%20,%20"] {
        let reply = identify(&s, query);
        assert_eq!(reply.status, 200, "{query}: {}", reply.body);
        let data = &reply.json()["data"];
        assert_eq!(data["groups"], json!({}), "{query}");
        assert_eq!(data["audit"]["version"], json!(version), "{query}");
    }
}

#[test]
fn without_a_test_parameter_every_test_that_gets_a_bucket_is_answered() {
    let s = Server::start_demo();
    let all = identify(&s, "id.USER=u_1&ctx.loggedIn=true").json();
    let groups = all["data"]["groups"].as_object().expect("groups");
    for test in ["buttoncolortst", "checkout-v2", "ui-theme"] {
        assert!(groups.contains_key(test), "{test} missing from {groups:?}");
    }
    // checkout-v2 targets u_1.
    assert_eq!(groups["checkout-v2"]["value"], 1);
    // ... and the matrix has no other tests than these five.
    let matrix = pipet(&s, "/proctor/matrix").json();
    let tests: HashSet<&String> = matrix["tests"].as_object().expect("tests").keys().collect();
    assert!(groups.keys().all(|k| tests.contains(k)));
}

#[test]
fn unknown_test_names_are_ignored_and_names_are_trimmed() {
    let s = Server::start_demo();
    let reply = identify(&s, "id.USER=u_1&test=nope,%20checkout-v2%20,,also-nope");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let groups = reply.json()["data"]["groups"].clone();
    assert_eq!(groups.as_object().expect("groups").keys().collect::<Vec<_>>(), vec!["checkout-v2"]);
}

#[test]
fn of_repeated_parameters_the_first_wins() {
    let s = Server::start_demo();
    // test and ctx.*.
    let reply = identify(&s, "id.USER=u_1&test=checkout-v2&test=ui-theme&ctx.loggedIn=True&ctx.loggedIn=false");
    let data = reply.json()["data"].clone();
    assert_eq!(data["groups"].as_object().expect("groups").keys().collect::<Vec<_>>(), vec!["checkout-v2"]);
    assert_eq!(data["context"]["loggedIn"], true);
    // id.*.
    let first = identify(&s, "id.USER=u_1&id.USER=someone-else&test=checkout-v2").json();
    assert_eq!(first["data"]["groups"]["checkout-v2"]["value"], 1, "u_1 (first) is targeted");
    // prforceGroups.
    let forced = identify(&s, "id.USER=u_1&test=buttoncolortst&prforceGroups=buttoncolortst1&prforceGroups=buttoncolortst2").json();
    assert_eq!(forced["data"]["groups"]["buttoncolortst"]["value"], 1);
}

#[test]
fn a_request_without_a_configured_identifier_is_refused_in_pipets_envelope() {
    let s = Server::start_demo();
    for query in ["test=checkout-v2", "", "id.COMPANY=x&ctx.country=US", "id.user=lowercase-name-is-not-USER"] {
        let reply = identify(&s, query);
        assert_eq!(reply.status, 400, "{query}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"data": {}, "meta": {"status": 400, "error": "Request must have at least one identifier."}}),
            "{query}"
        );
        assert_json_content_type(&reply);
    }
}

#[test]
fn an_empty_identifier_counts_as_present_and_is_hashed() {
    let s = Server::start_demo();
    let reply = identify(&s, "id.USER=&test=checkout-v2,buttoncolortst");
    assert_eq!(reply.status, 200, "{}", reply.body);
    let groups = reply.json()["data"]["groups"].clone();
    assert!(groups["checkout-v2"]["value"].is_i64(), "{groups}");
    assert!(groups["buttoncolortst"]["value"].is_i64(), "{groups}");
}

#[test]
fn an_identifier_is_read_from_its_source_key_and_a_user_test_needs_a_user_identifier() {
    let s = Server::start_demo();
    // ACCOUNT is read from its sourceKey, `id.account`.
    let reply = identify(&s, "id.account=a1&test=checkout-v2");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["data"]["groups"], json!({}));
    let reply = identify(&s, "id.ACCOUNT=a1&test=checkout-v2");
    assert_eq!(reply.status, 400, "id.ACCOUNT is not the configured parameter (id.account): {}", reply.body);
}

#[test]
fn booleans_convert_as_java_does_and_default_to_false() {
    let s = Server::start_demo();
    // pa5xq0lz4n80 gets `active` in newfeaturerollout when the rule ${loggedIn} holds.
    for (raw, expected) in
        [("True", true), ("TRUE", true), ("true", true), ("1", true), ("yes", false), ("0", false), ("", false), ("on", false)]
    {
        let reply = identify(&s, &format!("id.USER=pa5xq0lz4n80&test=newfeaturerollout&ctx.loggedIn={raw}"));
        assert_eq!(reply.status, 200, "{raw:?}: {}", reply.body);
        let data = reply.json()["data"].clone();
        assert_eq!(data["context"]["loggedIn"], json!(expected), "{raw:?}");
        let eligible = data["groups"].get("newfeaturerollout").is_some();
        assert_eq!(eligible, expected, "{raw:?}: {}", data["groups"]);
    }
    let data = identify(&s, "id.USER=pa5xq0lz4n80&test=newfeaturerollout").json()["data"].clone();
    assert_eq!(data["context"]["loggedIn"], false);
    assert_eq!(data["groups"], json!({}));
}

// ---------------------------------------------------------------------------------------------
// Typed variables

/// Creates the project `typed` with typed variables (a header among them) and the test
/// `adults` (age 18 and over); returns its development SDK key.
pub fn typed_project(s: &Server) -> String {
    let body = json!({
        "key": "typed",
        "schema": {
            "context": {
                "age": {"source": "QUERY", "type": "int", "defaultValue": "30"},
                "score": {"source": "QUERY", "type": "double", "defaultValue": 0},
                "letter": {"source": "HEADER", "sourceKey": "X-Letter", "type": "char", "defaultValue": "a"},
                "country": {"source": "QUERY", "type": "String"}
            },
            "identifiers": {"USER": {"source": "QUERY"}, "ACCOUNT": {"source": "HEADER", "sourceKey": "X-Account"}}
        }
    });
    let reply = s.admin("POST", "/projects", Some(&body.to_string()));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let reply = s.admin("POST", "/projects/typed/environments/development/sdk-keys", Some("{}"));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let key = reply.json()["key"].as_str().expect("key").to_string();
    let definition = json!({
        "testType": "USER", "salt": "adults",
        "buckets": [{"name": "on", "value": 1}],
        "allocations": [{"rule": "${age >= 18}", "ranges": [{"length": 1.0, "bucketValue": 1}]}]
    });
    let body = json!({"definition": definition, "comment": "adults"}).to_string();
    let reply = s.admin("PUT", "/projects/typed/environments/development/tests/adults", Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.body);
    key
}

/// `GET /pipet/<typed key>/groups/identify?<query>` with headers.
fn typed_identify(s: &Server, key: &str, query: &str, headers: &[(&str, &str)]) -> Reply {
    s.call_with("GET", &format!("/pipet/{key}/groups/identify?{query}"), None, None, headers)
}

#[test]
fn a_value_that_does_not_convert_is_refused_with_pipets_message() {
    let s = Server::start_demo();
    let key = typed_project(&s);
    let reply = typed_identify(&s, &key, "id.USER=a&ctx.country=US&ctx.age=abc", &[]);
    assert_pipet_error(
        &reply,
        400,
        "Could not convert raw value 'abc' to type 'java.lang.Integer' for context variable 'age': NumberFormatException",
    );
    let reply = typed_identify(&s, &key, "id.USER=a&ctx.country=US&ctx.age=99999999999", &[]);
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.json()["meta"]["error"]
        .as_str()
        .is_some_and(|m| m.starts_with("Could not convert raw value '99999999999' to type 'java.lang.Integer' for context variable 'age': ")));
    let reply = typed_identify(&s, &key, "id.USER=a&ctx.country=US", &[("X-Letter", "ab")]);
    assert_pipet_error(
        &reply,
        400,
        "Could not convert raw value 'ab' to type 'java.lang.Character' for context variable 'letter': Parameter was length 2 but expecting length 1.",
    );
}

#[test]
fn a_variable_without_a_default_that_the_request_lacks_is_refused() {
    let s = Server::start_demo();
    let key = typed_project(&s);
    let reply = typed_identify(&s, &key, "id.USER=a&ctx.age=40", &[]);
    assert_pipet_error(&reply, 400, "Required variable 'country' not found by 'QUERY:ctx.country'. See the pipet configuration.");
}

#[test]
fn values_convert_from_query_and_header_and_drive_the_rules() {
    let s = Server::start_demo();
    let key = typed_project(&s);
    let reply = typed_identify(&s, &key, "id.USER=a&ctx.country=FR&ctx.age=%2B40&ctx.score=1e3&test=adults", &[("X-Letter", "z")]);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = reply.json()["data"].clone();
    assert_eq!(data["context"], json!({"age": 40, "score": 1000.0, "letter": "z", "country": "FR"}));
    assert_eq!(data["groups"]["adults"]["name"], "on");
    let data = typed_identify(&s, &key, "id.USER=a&ctx.country=FR&ctx.age=12", &[]).json()["data"].clone();
    assert_eq!(data["groups"], json!({}), "age 12 is not eligible");
    assert_eq!(data["context"]["letter"], "a", "the default");
}

#[test]
fn an_identifier_from_a_header_counts() {
    let s = Server::start_demo();
    let key = typed_project(&s);
    let reply = typed_identify(&s, &key, "ctx.country=FR", &[("X-Account", "acct-1")]);
    assert_eq!(reply.status, 200, "a header identifier counts: {}", reply.body);
}

#[test]
fn the_configuration_shows_computed_source_keys_java_types_and_text_defaults() {
    let s = Server::start_demo();
    let key = typed_project(&s);
    let reply = s.call("GET", &format!("/pipet/{key}/config/context"), None, None);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["data"],
        json!({
            "age": {"source": "QUERY", "sourceKey": "ctx.age", "type": "java.lang.Integer", "defaultValue": "30"},
            "score": {"source": "QUERY", "sourceKey": "ctx.score", "type": "java.lang.Double", "defaultValue": "0"},
            "letter": {"source": "HEADER", "sourceKey": "X-Letter", "type": "java.lang.Character", "defaultValue": "a"},
            "country": {"source": "QUERY", "sourceKey": "ctx.country", "type": "java.lang.String"}
        })
    );
    let reply = s.call("GET", &format!("/pipet/{key}/config/identifiers"), None, None);
    assert_eq!(
        reply.json()["data"],
        json!({"USER": {"source": "QUERY", "sourceKey": "id.USER"}, "ACCOUNT": {"source": "HEADER", "sourceKey": "X-Account"}})
    );
}

// ---------------------------------------------------------------------------------------------
// The matrix, its audit, one definition, the configuration

#[test]
fn the_matrix_is_the_raw_artifact_without_an_envelope() {
    let s = Server::start_demo();
    let version = dev_version(&s);
    let reply = pipet(&s, "/proctor/matrix");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_json_content_type(&reply);
    let matrix = reply.json();
    let top: Vec<&String> = matrix.as_object().expect("object").keys().collect();
    assert_eq!(top.len(), 2, "{top:?}");
    assert!(matrix.get("data").is_none() && matrix.get("meta").is_none());
    assert_eq!(matrix["audit"]["version"], json!(version));
    assert_eq!(matrix["audit"]["updatedBy"], "demo");
    let tests = matrix["tests"].as_object().expect("tests");
    let names: HashSet<&str> = tests.keys().map(String::as_str).collect();
    assert_eq!(names, HashSet::from(["buttoncolortst", "countryalgotst", "newfeaturerollout", "checkout-v2", "ui-theme"]));
    assert_eq!(tests["buttoncolortst"]["version"], "1");
    assert_eq!(tests["buttoncolortst"]["buckets"][3]["payload"], json!({"stringValue": "#3DFF33"}));
    assert_eq!(tests["buttoncolortst"]["allocations"][0]["ranges"][1]["length"], json!(0.3));
}

#[test]
fn the_audit_is_served_in_an_envelope() {
    let s = Server::start_demo();
    let matrix = pipet(&s, "/proctor/matrix").json();
    let reply = pipet(&s, "/proctor/matrix/audit");
    assert_eq!(reply.status, 200);
    assert_json_content_type(&reply);
    let doc = reply.json();
    assert_eq!(doc["meta"], json!({"status": 200}));
    assert_eq!(doc["data"], matrix["audit"]);
}

#[test]
fn one_definition_is_served_in_an_envelope_or_pipets_404() {
    let s = Server::start_demo();
    let matrix = pipet(&s, "/proctor/matrix").json();
    let reply = pipet(&s, "/proctor/matrix/definition/ui-theme");
    assert_eq!(reply.status, 200);
    let doc = reply.json();
    assert_eq!(doc["meta"], json!({"status": 200}));
    assert_eq!(doc["data"]["salt"], "ui-theme");
    assert_eq!(doc["data"]["testType"], "USER");
    assert_eq!(doc["data"]["buckets"], matrix["tests"]["ui-theme"]["buckets"]);
    assert_pipet_error(
        &pipet(&s, "/proctor/matrix/definition/no-such-test"),
        404,
        "'no-such-test' test definition not found in test matrix.",
    );
}

#[test]
fn the_context_and_identifier_configuration_answer_any_method() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    for method in ["GET", "POST"] {
        let reply = s.call(method, &format!("{root}/config/context"), None, None);
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"data": {
                "country": {"source": "QUERY", "sourceKey": "ctx.country", "type": "java.lang.String", "defaultValue": "US"},
                "loggedIn": {"source": "QUERY", "sourceKey": "ctx.loggedIn", "type": "java.lang.Boolean", "defaultValue": "false"},
                "plan": {"source": "QUERY", "sourceKey": "ctx.plan", "type": "java.lang.String", "defaultValue": "free"},
                "ua": {"source": "QUERY", "sourceKey": "ctx.ua", "type": "java.lang.String", "defaultValue": ""}
            }, "meta": {"status": 200}})
        );
        let reply = s.call(method, &format!("{root}/config/identifiers"), None, None);
        assert_eq!(reply.status, 200, "{method}: {}", reply.body);
        assert_eq!(
            reply.json(),
            json!({"data": {
                "USER": {"source": "QUERY", "sourceKey": "id.USER"},
                "ACCOUNT": {"source": "QUERY", "sourceKey": "id.account"}
            }, "meta": {"status": 200}})
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and paths

fn pipet_message(reply: &Reply) -> String {
    reply.json()["meta"]["error"].as_str().unwrap_or_default().to_string()
}

/// Asserts Pipet's error envelope with this status and some message.
#[track_caller]
fn assert_pipet_envelope(reply: &Reply, status: u16, path: &str) {
    assert_eq!(reply.status, status, "{path}: {}", reply.body);
    let doc = reply.json();
    assert_eq!(doc["data"], json!({}), "{path}");
    assert_eq!(doc["meta"]["status"], status, "{path}");
    assert!(!pipet_message(reply).is_empty(), "{path}");
    assert_json_content_type(reply);
}

#[test]
fn an_unknown_sdk_key_gets_pipets_401_on_every_path() {
    let s = Server::start_demo();
    for path in ["/groups/identify?id.USER=a", "/proctor/matrix", "/proctor/matrix/audit", "/config/context", "/elsewhere"] {
        assert_pipet_envelope(&s.call("GET", &format!("/pipet/sdk-not-a-real-key{path}"), None, None), 401, path);
    }
}

#[test]
fn another_environments_key_is_another_root() {
    let s = Server::start_demo();
    let reply = s.call("GET", &format!("/pipet/{}/proctor/matrix/audit", s.var("AVSB_SDK_KEY_STAGING")), None, None);
    assert_eq!(reply.status, 200);
    assert_ne!(reply.json()["data"]["version"], json!(dev_version(&s)));
}

#[test]
fn an_unknown_path_under_a_key_gets_pipets_404() {
    let s = Server::start_demo();
    for path in ["/groups", "/groups/identify/more", "/proctor/version", "/proctor/matrix/definition/a/b", "/nope"] {
        assert_pipet_envelope(&pipet(&s, path), 404, path);
    }
}

#[test]
fn malformed_paths_and_methods_still_get_pipet_envelopes() {
    let s = Server::start_demo();
    let root = dev_root(&s);
    for (method, path) in [("GET", "/proctor/matrix/definition/%FF"), ("GET", "/"), ("POST", "/groups/identify?id.USER=a")] {
        let reply = try_request(method, &format!("{root}{path}"), &[], None).expect("answer");
        assert!((400..500).contains(&reply.status), "{method} {path}: {}", reply.status);
        assert_json_content_type(&reply);
        let doc: Value = serde_json::from_str(&reply.body).unwrap_or_else(|_| panic!("{method} {path}: not JSON: {:?}", reply.body));
        assert_eq!(doc["data"], json!({}), "{method} {path}: {}", reply.body);
        assert_eq!(doc["meta"]["status"], json!(reply.status), "{method} {path}: {}", reply.body);
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency

/// Revision `n` of the test edited under load: everyone gets bucket `even` (n even) or `odd`,
/// with the payload `rev-n`.
fn revision_definition(n: usize) -> Value {
    let even = match n % 2 {
        0 => 1.0,
        _ => 0.0,
    };
    json!({
        "testType": "USER", "salt": "racetest",
        "buckets": [
            {"name": "even", "value": 0, "payload": {"stringValue": format!("rev-{n}")}},
            {"name": "odd", "value": 1, "payload": {"stringValue": format!("rev-{n}")}}
        ],
        "allocations": [{"rule": null, "ranges": [{"length": even, "bucketValue": 0}, {"length": 1.0 - even, "bucketValue": 1}]}]
    })
}

#[test]
fn identify_under_concurrent_edits_answers_from_exactly_one_revision() {
    const CLIENTS: usize = 64;
    const EDITS: usize = 30;
    let s = Server::start_demo();
    let mut revisions: HashMap<String, usize> = HashMap::new();
    revisions.insert(save_test(&s, "racetest", &revision_definition(0)), 0);
    let root = dev_root(&s);
    let done = Arc::new(AtomicBool::new(false));
    // (audit version, group entry) per answer; failures as text.
    let answers: Arc<Mutex<Vec<(String, Value)>>> = Arc::new(Mutex::new(Vec::new()));
    let failures: Arc<Mutex<Vec<String>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (root, done, answers, failures) = (root.clone(), Arc::clone(&done), Arc::clone(&answers), Arc::clone(&failures));
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(30)).build();
                let mut mine = Vec::new();
                let mut i = 0usize;
                while !done.load(Ordering::Relaxed) || i < 3 {
                    let url = format!("{root}/groups/identify?id.USER=client-{client}-{i}&test=racetest,checkout-v2");
                    i += 1;
                    match agent.get(&url).call() {
                        Ok(response) => {
                            let status = response.status();
                            let text = response.into_string().unwrap_or_default();
                            let doc: Value = match serde_json::from_str(&text) {
                                Ok(doc) => doc,
                                Err(e) => {
                                    failures.lock().expect("lock").push(format!("{status}: not JSON ({e}): {text}"));
                                    continue;
                                }
                            };
                            let version = doc["data"]["audit"]["version"].as_str().unwrap_or_default().to_string();
                            mine.push((version, doc["data"]["groups"]["racetest"].clone()));
                        }
                        Err(e) => failures.lock().expect("lock").push(format!("{url}: {e}")),
                    }
                }
                answers.lock().expect("lock").extend(mine);
            })
        })
        .collect();
    for n in 1..=EDITS {
        let version = save_test(&s, "racetest", &revision_definition(n));
        revisions.insert(version, n);
        std::thread::sleep(Duration::from_millis(20));
    }
    done.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client thread");
    }
    let elapsed = started.elapsed();
    let failures = failures.lock().expect("lock").clone();
    assert!(failures.is_empty(), "{} requests failed, e.g. {:?}", failures.len(), &failures[..failures.len().min(5)]);
    let answers = answers.lock().expect("lock").clone();
    assert!(answers.len() >= CLIENTS * 3, "{} answers", answers.len());
    let mut seen = HashSet::new();
    for (version, group) in &answers {
        let Some(&n) = revisions.get(version) else { panic!("audit.version {version:?} is no revision of this test run") };
        seen.insert(n);
        let expected_name = if n % 2 == 0 { "even" } else { "odd" };
        let expected = json!({
            "name": expected_name,
            "value": if n % 2 == 0 { 0 } else { 1 },
            "payload": {"stringValue": format!("rev-{n}")},
            "version": version,
        });
        assert_eq!(group, &expected, "the answer claims revision {version} (edit {n})");
    }
    assert!(seen.len() >= 3, "answers saw only revisions {seen:?} in {elapsed:?}");
    eprintln!("{} answers from {} revisions in {elapsed:?}", answers.len(), seen.len());
    // The final state is the last edit.
    let last = identify(&s, "id.USER=x&test=racetest").json();
    assert_eq!(last["data"]["groups"]["racetest"]["payload"]["stringValue"], format!("rev-{EDITS}"));
}
