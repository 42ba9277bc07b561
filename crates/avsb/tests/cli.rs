//! The `avsb` binary, run as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn repo(path: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(path).display().to_string()
}

fn avsb(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_avsb")).args(args).output().unwrap()
}

fn stdout_json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn write_temp(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("avsb-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const EXAMPLE_MATRIX: &str = "spec/examples/pipet-example-matrix.json";
const EXAMPLE_SCHEMA: &str = "spec/examples/pipet-example-context.json";

#[test]
fn eval_prints_pipets_identify_data_for_the_readme_request() {
    let out = avsb(&[
        "eval", "--matrix", &repo(EXAMPLE_MATRIX), "--schema", &repo(EXAMPLE_SCHEMA),
        "--id", "USER=pa5xq0lz4n80", "--ctx", "loggedIn=true", "--explain",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data = stdout_json(&out);
    // Buckets pinned by the shared hash vectors.
    assert_eq!(
        data["groups"]["buttoncolortst"],
        serde_json::json!({"name": "control", "value": 0, "payload": {"stringValue": "#C0C0C0"}, "version": "1"})
    );
    assert_eq!(data["groups"]["newfeaturerollout"], serde_json::json!({"name": "active", "value": 0, "version": "1"}));
    assert_eq!(data["groups"]["countryalgotst"]["value"], -1);
    assert_eq!(data["context"], serde_json::json!({"country": "US", "loggedIn": true, "plan": "free", "ua": ""}));
    assert_eq!(
        data["audit"],
        serde_json::json!({"version": "1", "updated": 1, "updatedDate": "1969-12-31T18:00-0600", "updatedBy": "example"})
    );
    let explained = String::from_utf8_lossy(&out.stderr);
    assert!(explained.contains(r#"newfeaturerollout: {"allocation":0,"code":"allocation"}"#) || explained.contains(r#"newfeaturerollout: {"code":"allocation","allocation":0}"#), "{explained}");
}

#[test]
fn eval_applies_the_test_filter_and_force_groups_as_pipet() {
    let out = avsb(&[
        "eval", "--matrix", &repo(EXAMPLE_MATRIX), "--schema", &repo(EXAMPLE_SCHEMA),
        "--id", "USER=pa5xq0lz4n80", "--ctx", "loggedIn=True", "--ctx", "country=FR",
        "--test", "buttoncolortst, newfeaturerollout,nosuchtest", "--force", "buttoncolortst2,default_to_fallback",
    ]);
    assert!(out.status.success());
    let data = stdout_json(&out);
    let groups = data["groups"].as_object().unwrap();
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["buttoncolortst", "newfeaturerollout"]);
    assert_eq!(groups["buttoncolortst"]["name"], "green");
    // Pipet ignores default_to_fallback: the other test is still assigned normally.
    assert_eq!(groups["newfeaturerollout"]["value"], 0);

    let full = avsb(&[
        "eval", "--matrix", &repo(EXAMPLE_MATRIX), "--schema", &repo(EXAMPLE_SCHEMA), "--id", "USER=pa5xq0lz4n80",
        "--ctx", "loggedIn=1", "--force", "buttoncolortst2,default_to_fallback", "--full-force",
    ]);
    let groups = stdout_json(&full)["groups"].as_object().unwrap().clone();
    assert_eq!(groups.keys().collect::<Vec<_>>(), ["buttoncolortst"]);

    let none = avsb(&["eval", "--matrix", &repo(EXAMPLE_MATRIX), "--schema", &repo(EXAMPLE_SCHEMA), "--id", "USER=x", "--test", ""]);
    assert_eq!(stdout_json(&none)["groups"], serde_json::json!({}));
}

#[test]
fn eval_refuses_what_pipet_refuses_with_its_message() {
    let matrix = repo(EXAMPLE_MATRIX);
    let schema = repo(EXAMPLE_SCHEMA);
    let cases: [(&[&str], &str); 2] = [
        (&["--id", "COMPANY=c1"], "Request must have at least one identifier."),
        (&["--id", "USER=u", "--ctx", "loggedIn=true"], ""),
    ];
    for (args, message) in cases {
        let mut all = vec!["eval", "--matrix", &matrix, "--schema", &schema];
        all.extend_from_slice(args);
        let out = avsb(&all);
        if message.is_empty() {
            assert!(out.status.success());
        } else {
            assert_eq!(out.status.code(), Some(2));
            assert_eq!(String::from_utf8_lossy(&out.stderr).trim(), message);
            assert!(out.stdout.is_empty());
        }
    }
    let typed = write_temp(
        "typed.json",
        r#"{"context": {"age": {"source": "QUERY", "type": "Integer"}, "country": {"source": "QUERY", "type": "String"}},
            "identifiers": {"USER": {"source": "QUERY"}}}"#,
    );
    let out = avsb(&["eval", "--matrix", &matrix, "--schema", &typed, "--id", "USER=u", "--ctx", "age=abc", "--ctx", "country=US"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains(
        "Could not convert raw value 'abc' to type 'java.lang.Integer' for context variable 'age': NumberFormatException"
    ));
    let out = avsb(&["eval", "--matrix", &matrix, "--schema", &typed, "--id", "USER=u", "--ctx", "age=3"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default(),
        "Required variable 'country' not found by 'QUERY:ctx.country'. See the pipet configuration."
    );
}

#[test]
fn eval_without_a_schema_takes_strings_and_any_identifier_type() {
    let matrix = write_temp(
        "device.json",
        r#"{"audit": {"version": 2}, "tests": {"d": {"testType": "device", "salt": "d",
            "buckets": [{"name": "a", "value": 0}, {"name": "b", "value": 1}],
            "allocations": [{"rule": "${plan == 'pro'}", "ranges": [{"bucketValue": 1, "length": 1}]},
                            {"rule": null, "ranges": [{"bucketValue": 0, "length": 1}]}]}}}"#,
    );
    let out = avsb(&["eval", "--matrix", &matrix, "--id", "device=phone-1", "--ctx", "plan=pro"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let data = stdout_json(&out);
    assert_eq!(data["groups"]["d"]["name"], "b");
    assert_eq!(data["context"], serde_json::json!({"plan": "pro"}));
}

#[test]
fn validate_reports_each_dropped_test_and_exits_1() {
    let matrix = write_temp(
        "broken.json",
        r#"{"audit": {"version": 1}, "tests": {
            "ok": {"testType": "USER", "buckets": [{"name": "a", "value": 0}], "allocations": [{"ranges": [{"bucketValue": 0, "length": 1}]}]},
            "typo": {"testType": "USER", "buckets": [{"name": "a", "value": 0}],
                     "allocations": [{"rule": "${country == 'US' && contry == 'CA'}", "ranges": [{"bucketValue": 0, "length": 1}]},
                                     {"rule": null, "ranges": [{"bucketValue": 0, "length": 1}]}]},
            "sum": {"testType": "USER", "buckets": [{"name": "a", "value": 0}], "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}]}]},
            "kind": {"testType": "VISITOR", "buckets": [], "allocations": []}
        }}"#,
    );
    let out = avsb(&["validate", &matrix, "--schema", &repo(EXAMPLE_SCHEMA)]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.iter().any(|l| l.starts_with("error: tests.typo.allocations[0].rule:") && l.contains("contry") && l.contains("at column 22")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("error: tests.sum.allocations[0].ranges:") && l.contains("[ranges_sum]")), "{text}");
    assert!(lines.iter().any(|l| l.starts_with("error: tests.kind.testType:") && l.contains("VISITOR")), "{text}");
    assert!(!text.contains("tests.ok"), "{text}");

    let out = avsb(&["validate", &matrix, "--schema", &repo(EXAMPLE_SCHEMA), "--json"]);
    let first: serde_json::Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["severity"], "error");
    assert!(first["code"].is_string() && first["test"].is_string() && first["path"].is_string());
}

#[test]
fn validate_exits_0_on_a_good_matrix_and_2_on_an_unreadable_one() {
    let out = avsb(&["validate", &repo(EXAMPLE_MATRIX), "--schema", &repo(EXAMPLE_SCHEMA)]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty());
    let bad = write_temp("bad.json", r#"{"audit": {}, "tests": {"#);
    let out = avsb(&["validate", &bad]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not valid JSON"));
    let out = avsb(&["validate", "/nonexistent/matrix.json"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn export_writes_proctor_json_and_reads_stored_definitions() {
    let out = avsb(&["export", &repo(EXAMPLE_MATRIX), "--proctor"]);
    assert!(out.status.success());
    let doc = stdout_json(&out);
    assert_eq!(doc["tests"]["checkout-v2"]["buckets"][1]["payload"], serde_json::json!({"json": true}));
    assert!(doc["tests"]["checkout-v2"].get("targets").is_none());
    assert_eq!(doc["tests"]["buttoncolortst"]["allocations"][0]["ranges"][1]["length"], 0.3);
    assert_eq!(doc["tests"]["buttoncolortst"]["rule"], serde_json::Value::Null);
    // Our own export keeps the extensions, and reads back to the same assignments.
    let ours = avsb(&["export", &repo(EXAMPLE_MATRIX)]);
    let exported = write_temp("exported.json", &String::from_utf8_lossy(&ours.stdout));
    for matrix in [repo(EXAMPLE_MATRIX), exported] {
        let out = avsb(&["eval", "--matrix", &matrix, "--id", "USER=u_1", "--test", "checkout-v2"]);
        assert_eq!(stdout_json(&out)["groups"]["checkout-v2"]["payload"], serde_json::json!({"booleanValue": true}));
    }

    let dir = std::env::temp_dir().join(format!("avsb-cli-{}/test-definitions/promo", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let definition = dir.join("definition.json");
    std::fs::write(
        &definition,
        r#"{"testType": "USER", "salt": "promo", "rule": "lang == 'en'", "specialConstants": {"__COUNTRIES": ["US", "CA"]},
            "buckets": [{"name": "off", "value": 0}, {"name": "on", "value": 1}],
            "allocations": [{"rule": "", "ranges": [{"bucketValue": 1, "length": 1.0}]}]}"#,
    )
    .unwrap();
    let out = avsb(&["export", &definition.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let promo = &stdout_json(&out)["tests"]["promo"];
    assert_eq!(promo["rule"], "${proctor:contains(__COUNTRIES, country) && lang == 'en'}");
    assert_eq!(promo["constants"], serde_json::json!({"__COUNTRIES": ["US", "CA"]}));
    let out = avsb(&["eval", "--matrix", &definition.display().to_string(), "--id", "USER=u", "--ctx", "country=CA", "--ctx", "lang=en"]);
    assert_eq!(stdout_json(&out)["groups"]["promo"]["name"], "on");
    let out = avsb(&["eval", "--matrix", &definition.display().to_string(), "--id", "USER=u", "--ctx", "country=FR", "--ctx", "lang=en"]);
    assert_eq!(stdout_json(&out)["groups"], serde_json::json!({}));
}

#[test]
fn token_create_prints_a_secret_that_token_list_never_shows() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    let out = avsb(&["token", "create", "--name", "reader", "--role", "read", "--data", data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let reader = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(reader.len() > 20, "the token printed: {reader:?}");
    let out = avsb(&["token", "list", "--data", data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8(out.stdout).unwrap();
    assert!(!listing.contains(&reader), "the listing shows a secret: {listing}");
    let line = listing.lines().find(|l| l.split('\t').nth(1) == Some("reader")).unwrap_or_else(|| panic!("{listing}"));
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(fields[2], "read", "{line}");
    assert_eq!(fields[4], "active", "{line}");
    let prefix = fields[3].trim_end_matches('…');
    assert!(prefix.len() >= 6 && reader.starts_with(prefix), "prefix {prefix:?} of {reader:?}");
}

#[test]
fn token_revoke_marks_the_token_revoked_and_a_second_revoke_fails_naming_it() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path().to_str().unwrap();
    assert!(avsb(&["token", "create", "--name", "reader", "--role", "read", "--data", data]).status.success());
    let listing = String::from_utf8(avsb(&["token", "list", "--data", data]).stdout).unwrap();
    let id = listing.lines().find(|l| l.split('\t').nth(1) == Some("reader")).and_then(|l| l.split('\t').next()).unwrap().to_string();
    let out = avsb(&["token", "revoke", &id, "--data", data]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("revoked token {id}")));
    let listing = String::from_utf8(avsb(&["token", "list", "--data", data]).stdout).unwrap();
    assert!(listing.lines().any(|l| l.starts_with(&format!("{id}\treader\t")) && l.ends_with("revoked")), "{listing}");
    let out = avsb(&["token", "revoke", &id, "--data", data]);
    assert!(!out.status.success(), "revoking twice succeeded");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&id), "{}", String::from_utf8_lossy(&out.stderr));
}
