//! `avsb flag`: a flag's whole life against the real server, typed as command lines instead of
//! JSON; what happens without a terminal; `--json` for scripts; the questions on a terminal.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};

use common::Server;
use serde_json::{json, Value};

fn command(server: &Server) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_avsb"));
    c.env("AVSB_BASE_URL", server.base())
        .env("AVSB_ADMIN_TOKEN", server.var("AVSB_ADMIN_TOKEN"))
        .env_remove("AVSB_PROJECT")
        .env_remove("AVSB_ENVIRONMENT");
    c
}

fn avsb(server: &Server, args: &[&str]) -> Output {
    command(server).args(args).output().expect("run avsb")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `avsb` and expects exit code `code`; returns stdout.
fn expect(server: &Server, args: &[&str], code: i32) -> String {
    let out = avsb(server, args);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(code), "avsb {}\nstdout:\n{stdout}\nstderr:\n{stderr}", args.join(" "));
    stdout
}

/// The test's definition as the server stores it, or null.
fn stored(server: &Server, env: &str, test: &str) -> Value {
    let reply = server.admin("GET", &format!("/projects/demo/environments/{env}/tests/{test}"), None);
    match reply.status {
        200 => reply.json(),
        404 => Value::Null,
        other => panic!("GET test: {other} {}", reply.body),
    }
}

fn ranges(definition: &Value, allocation: usize) -> Vec<(i64, f64)> {
    definition["allocations"][allocation]["ranges"]
        .as_array()
        .expect("ranges")
        .iter()
        .map(|r| (r["bucketValue"].as_i64().unwrap(), r["length"].as_f64().unwrap()))
        .collect()
}

fn current_revision(server: &Server, env: &str) -> String {
    let project = server.admin("GET", "/projects/demo", None).json();
    project["environments"].as_array().unwrap().iter().find(|e| e["key"] == env).unwrap()["currentRevision"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The share of units the server says an edit would move, as the CLI prints it (`40.0%`).
fn server_share(server: &Server, env: &str, edit: Value) -> String {
    let preview = server.admin("POST", &format!("/projects/demo/environments/{env}/preview"), Some(&json!({"edit": edit}).to_string()));
    assert_eq!(preview.status, 200, "{}", preview.body);
    let share = preview.json()["tests"][0]["reassignment"]["allocations"][0]["share"].as_f64().expect("an exact share");
    format!("{:.1}%", share * 100.0)
}

/// A command line as typed in a shell: arguments with shell characters quoted.
fn typed(args: &[&str]) -> String {
    let quoted: Vec<String> = args
        .iter()
        .map(|a| if a.chars().any(|c| "${}' \"&|<>*".contains(c)) { format!("'{a}'") } else { (*a).to_string() })
        .collect();
    format!("avsb {}", quoted.join(" "))
}

#[test]
fn a_flag_lives_its_whole_life_without_json() {
    let server = Server::start_demo();
    let mut typed_lines: Vec<String> = Vec::new();
    let mut run = |args: &[&str], code: i32| {
        typed_lines.push(typed(args));
        expect(&server, args, code)
    };
    fn with<'a>(args: &[&'a str]) -> Vec<&'a str> {
        args.iter().copied().chain(["--env", "development"]).collect()
    }

    // Create: off and on with boolean payloads, off for everyone.
    let out = run(&with(&["flag", "create", "new-checkout", "--yes"]), 0);
    assert!(out.contains("+ new-checkout (new)") && out.contains("Saved: revision"), "{out}");
    let d = stored(&server, "development", "new-checkout");
    assert_eq!(d["buckets"][0], json!({"name": "off", "value": 0, "payload": {"booleanValue": false}}));
    assert_eq!(d["buckets"][1], json!({"name": "on", "value": 1, "payload": {"booleanValue": true}}));
    assert_eq!(ranges(&d, 0), vec![(0, 1.0), (1, 0.0)]);
    assert_eq!(d["testType"], "USER");

    // Staff only: the schema lacks `staff`, so the CLI names it and, told its type, adds it.
    let refused = avsb(&server, &with(&["flag", "target", "new-checkout", "--rule", "${staff}", "--yes"]));
    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(stderr.contains("the context variable 'staff'") && stderr.contains("--add-variable staff:TYPE"), "{stderr}");
    assert!(stderr.contains("its eligibility rule") && stderr.contains("column 3"), "{stderr}");
    assert!(stored(&server, "development", "new-checkout")["rule"].is_null(), "nothing changed");
    let out = run(&with(&["flag", "target", "new-checkout", "--rule", "${staff}", "--add-variable", "staff:boolean", "--yes"]), 0);
    assert!(out.contains("gets the context variable 'staff' (boolean, default false)"), "{out}");
    let schema = server.admin("GET", "/projects/demo/schema", None).json();
    assert_eq!(schema["context"]["staff"]["type"], "java.lang.Boolean");
    assert_eq!(schema["context"]["staff"]["defaultValue"], "false");
    assert_eq!(stored(&server, "development", "new-checkout")["rule"], "${staff}");

    // Roll out to 10%, then 50%: only the boundary next to "on" moves.
    let out = run(&with(&["flag", "rollout", "new-checkout", "10%", "--yes"]), 0);
    assert!(out.contains("10.0% of the units in allocation 0 change bucket"), "{out}");
    assert_eq!(ranges(&stored(&server, "development", "new-checkout"), 0), vec![(0, 0.9), (1, 0.1)]);
    let edit = json!({"kind": "setRanges", "test": "new-checkout", "allocation": 0,
        "ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]});
    let share = server_share(&server, "development", edit);
    assert_eq!(share, "40.0%", "from 10% to 50%, the units between the two boundaries move");
    let out = run(&with(&["flag", "rollout", "new-checkout", "50%", "--yes"]), 0);
    assert!(out.contains(&format!("{share} of the units in allocation 0 change bucket (exact")), "{out}");
    assert!(out.contains("allocations[0].ranges[1].length: 10% -> 50%"), "{out}");
    assert_eq!(ranges(&stored(&server, "development", "new-checkout"), 0), vec![(0, 0.5), (1, 0.5)]);

    // Two identifiers always get "on".
    let out = run(&with(&["flag", "target", "new-checkout", "--id", "u_1,u_2", "--bucket", "on", "--yes"]), 0);
    assert!(out.contains("2 targeted identifiers change bucket"), "{out}");
    let before_kill = stored(&server, "development", "new-checkout");
    assert_eq!(before_kill["targets"], json!([{"bucketValue": 1, "identifiers": ["u_1", "u_2"]}]));
    let good_revision = current_revision(&server, "development");

    // Kill it, while someone else changes another test of the environment.
    let out = run(&with(&["flag", "kill", "new-checkout", "--bucket", "off", "--yes"]), 0);
    assert!(out.contains("50.0% of the units in allocation 0 change bucket"), "{out}");
    let killed = stored(&server, "development", "new-checkout");
    assert_eq!(ranges(&killed, 0), vec![(0, 1.0)]);
    assert!(killed["rule"].is_null() && killed.get("targets").is_none_or(|t| t.as_array().is_some_and(Vec::is_empty)));
    let other = json!({"ranges": [{"bucketValue": 0, "length": 0.3}, {"bucketValue": 1, "length": 0.7}]});
    let put = server.admin("PUT", "/projects/demo/environments/development/tests/checkout-v2/allocations/0/ranges", Some(&other.to_string()));
    assert_eq!(put.status, 200, "{}", put.body);

    // Roll back that one test: it is as before the kill; the other test keeps its change.
    run(&with(&["flag", "rollback", "new-checkout", "--to", &good_revision, "--yes"]), 0);
    let restored = stored(&server, "development", "new-checkout");
    assert_eq!(restored, before_kill);
    assert_eq!(ranges(&stored(&server, "development", "checkout-v2"), 0), vec![(0, 0.3), (1, 0.7)]);

    // Promote to staging, then production (which asks why, as the console does).
    run(&["flag", "promote", "new-checkout", "--from", "development", "--to", "staging", "--yes"], 0);
    let out = avsb(&server, &["flag", "promote", "new-checkout", "--from", "staging", "--to", "production", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("a comment is required in production"), "{}", text(&out.stderr));
    assert!(stored(&server, "production", "new-checkout").is_null());
    run(&["flag", "promote", "new-checkout", "--from", "staging", "--to", "production", "--comment", "staff first", "--yes"], 0);
    let production = stored(&server, "production", "new-checkout");
    assert_eq!(production, restored, "the same definition, version included");
    let history = server.admin("GET", "/projects/demo/environments/production/revisions?limit=1", None).json();
    assert_eq!(history["revisions"][0]["comment"], "staff first");

    // Show, list, history.
    let out = run(&["flag", "show", "new-checkout"], 0);
    for needle in [
        "development (revision",
        "staging (revision",
        "production (revision",
        "buckets: off (0) = false, on (1) = true",
        "eligible: ${staff}",
        "allocation 0 (everyone): off 50% | on 50%",
        "targeted to on: u_1, u_2",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    let out = run(&["flag", "list"], 0);
    let line = out.lines().find(|l| l.starts_with("new-checkout")).unwrap_or_else(|| panic!("{out}"));
    assert_eq!(line.matches("off 50% on 50% +1 rule +2 targeted").count(), 3, "{out}");
    assert!(out.lines().next().unwrap().contains("development") && out.contains("checkout-v2"), "{out}");
    let out = run(&["flag", "history", "new-checkout"], 0);
    for needle in [
        "in production (promote)",
        "staff first",
        "in staging (promote)",
        "in development (rollback)",
        "in development (kill)",
        "40.0% of the units in allocation 0 change bucket",
        "allocations[0].ranges[1].length: 0% -> 10%",
        "rule: (none) -> \"${staff}\"",
    ] {
        assert!(out.contains(needle), "{needle:?} not in:\n{out}");
    }
    let newest_first: Vec<&str> = out.lines().filter(|l| l.starts_with("revision ")).collect();
    assert!(newest_first[0].contains("production") && newest_first.last().unwrap().contains("development (edit)"), "{out}");

    // The whole life took this many characters of command line (the ~1,400 characters of JSON
    // bodies it took before are the yardstick).
    let typed_total: usize = typed_lines.iter().map(|l| l.len() + 1).sum();
    eprintln!("lifecycle: {} commands, {typed_total} characters:\n{}", typed_lines.len(), typed_lines.join("\n"));
    assert!(typed_total < 1_400, "{typed_total} characters:\n{}", typed_lines.join("\n"));
}

#[test]
fn without_a_terminal_or_yes_nothing_changes_and_it_exits_3() {
    let server = Server::start_demo();
    let revision = current_revision(&server, "development");
    let out = avsb(&server, &["flag", "create", "beta", "--env", "development"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("+ beta (new)"), "the preview is shown: {}", text(&out.stdout));
    assert!(text(&out.stderr).contains("pass --yes"), "{}", text(&out.stderr));
    assert!(stored(&server, "development", "beta").is_null());

    let out = avsb(&server, &["flag", "rollout", "checkout-v2", "10%", "--env", "development"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("40.0% of the units in allocation 0 change bucket"), "{}", text(&out.stdout));
    let out = avsb(&server, &["flag", "kill", "checkout-v2", "--bucket", "off", "--env", "development"]);
    assert_eq!(out.status.code(), Some(3));
    let out = avsb(&server, &["flag", "target", "checkout-v2", "--rule", "${staff}", "--add-variable", "staff:boolean", "--env", "development"]);
    assert_eq!(out.status.code(), Some(3));
    assert_eq!(current_revision(&server, "development"), revision, "no revision was written");
    assert!(server.admin("GET", "/projects/demo/schema", None).json()["context"].get("staff").is_none(), "nor the schema changed");
}

#[test]
fn refusals_are_sentences_that_name_the_test_and_the_place() {
    let server = Server::start_demo();
    let out = avsb(&server, &["flag", "kill", "checkout-v2", "--bucket", "nope", "--env", "development", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("test 'checkout-v2' has no bucket \"nope\"; its buckets are 'off' (0), 'on' (1)"), "{stderr}");
    let out = avsb(&server, &["flag", "rollout", "ui-theme", "10%", "--env", "development", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("has 2 allocations; choose one with --allocation N") && stderr.contains("rule ${plan == 'pro'}"), "{stderr}");
    let out = avsb(&server, &["flag", "target", "checkout-v2", "--rule", "${plan ==}", "--env", "development", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("test 'checkout-v2', its eligibility rule (tests.checkout-v2.rule)"), "{stderr}");
    let out = avsb(&server, &["flag", "create", "checkout-v2", "--env", "development", "--yes"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("already exists in development, staging, production"), "{}", text(&out.stderr));
}

#[test]
fn json_output_parses_for_scripts() {
    let server = Server::start_demo();
    let parse = |out: &Output| -> Value {
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}{}", text(&out.stdout), text(&out.stderr)))
    };
    let out = avsb(&server, &["flag", "create", "colors", "--template", "abn", "--variants", "control,blue,green", "--env", "development", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    let doc = parse(&out);
    assert_eq!(doc["committed"], Value::Null);
    assert_eq!(doc["preview"]["valid"], true);

    let out = avsb(&server, &["flag", "create", "colors", "--template", "abn", "--variants", "control,blue,green", "--env", "development", "--json", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = parse(&out);
    assert!(doc["committed"]["revision"]["version"].is_string(), "{doc}");
    let out = avsb(&server, &["flag", "rollout", "colors", "--split", "34/33/33", "--env", "development", "--json", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc = parse(&out);
    assert!(doc["preview"]["tests"][0]["reassignment"]["allocations"][0]["share"].as_f64().is_some(), "{doc}");
    let stored_ranges = ranges(&stored(&server, "development", "colors"), 0);
    assert_eq!(stored_ranges, vec![(-1, 0.0), (0, 0.34), (1, 0.33), (2, 0.33)]);

    let show = parse(&avsb(&server, &["flag", "show", "colors", "--json"]));
    assert_eq!(show["environments"]["development"]["buckets"][1]["name"], "control");
    assert_eq!(show["environments"]["production"], Value::Null);
    let list = parse(&avsb(&server, &["flag", "list", "--json"]));
    assert!(list["tests"].as_array().unwrap().iter().any(|t| t["test"] == "colors"), "{list}");
    let history = parse(&avsb(&server, &["flag", "history", "colors", "--json"]));
    let changes = history["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 2, "{history}");
    assert_eq!(changes[0]["revision"]["kind"], "ranges");
    assert_eq!(changes[1]["change"]["change"], "added");
}

/// Runs `avsb` under `script`, so its stdin is a terminal, typing `input`.
fn on_a_terminal(server: &Server, line: &str, input: &str) -> (Option<i32>, String) {
    let mut child = Command::new("script")
        .args(["-qec", &format!("{} {line}", env!("CARGO_BIN_EXE_avsb")), "/dev/null"])
        .env("AVSB_BASE_URL", server.base())
        .env("AVSB_ADMIN_TOKEN", server.var("AVSB_ADMIN_TOKEN"))
        .env_remove("AVSB_PROJECT")
        .env_remove("AVSB_ENVIRONMENT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run script");
    // Keep stdin open until the command ends: `script` may stop when its input does.
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).expect("type");
    let mut output = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut output).expect("read");
    drop(stdin);
    let status = child.wait().expect("wait");
    (status.code(), output)
}

#[test]
fn a_terminal_is_asked_for_the_variable_type_and_the_confirmation() {
    if Command::new("script").arg("--version").output().is_err() {
        panic!("this test needs `script` (util-linux) to give avsb a terminal");
    }
    let server = Server::start_demo();
    let line = "flag target checkout-v2 --rule '${age > 30}' --env development";
    let (code, output) = on_a_terminal(&server, line, "integer\nn\n");
    assert_eq!(code, Some(3), "{output}");
    assert!(output.contains("Add 'age' to the schema as which type?"), "{output}");
    assert!(output.contains("gets the context variable 'age' (integer, default 0)"), "{output}");
    assert!(output.contains("Apply this change to development? [y/N]"), "{output}");
    assert!(stored(&server, "development", "checkout-v2")["rule"].is_null(), "no means nothing changes");

    let (code, output) = on_a_terminal(&server, line, "integer\ny\n");
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(stored(&server, "development", "checkout-v2")["rule"], "${age > 30}");
    let schema = server.admin("GET", "/projects/demo/schema", None).json();
    assert_eq!(schema["context"]["age"]["type"], "java.lang.Integer");

    // Production asks why before it asks whether.
    let (code, output) = on_a_terminal(&server, "flag kill checkout-v2 --bucket off --env production", "conversion dropped\ny\n");
    assert_eq!(code, Some(0), "{output}");
    let revisions = server.admin("GET", "/projects/demo/environments/production/revisions?limit=1", None).json();
    assert_eq!(revisions["revisions"][0]["comment"], "conversion dropped");
}
