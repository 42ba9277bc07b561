//! What the server tells its operator: every request at info with `--access-log` (method, route
//! template, status, duration — never a path with a key), refused writes with their reason, and a
//! loud warning when the data directory looks emptied.

mod common;

use std::time::Duration;

use common::Server;

fn logs(server: &mut Server) -> String {
    assert_eq!(server.stop(), Some(0));
    std::thread::sleep(Duration::from_millis(200));
    server.stderr.lock().expect("stderr").clone()
}

#[test]
fn access_log_lines_name_route_templates_and_refused_writes_say_why() {
    let data = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(data.path(), &["--demo", "--access-log"]);
    let key = server.var("AVSB_SDK_KEY").to_string();
    let root = server.var("PROCTOR_API_ROOT").to_string();
    assert_eq!(server.call("GET", &format!("{root}/groups/identify?id.USER=u_1"), None, None).status, 200);
    let body = r#"{"definition": {"testType": "USER", "buckets": [], "allocations": []}}"#;
    let refused = server.call("PUT", "/api/v1/projects/demo/environments/development/tests/x", Some("adm-wrong"), Some(body));
    assert_eq!(refused.status, 401);
    let logs = logs(&mut server);
    let line = logs.lines().find(|l| l.contains("avsb_server::access") && l.contains("/pipet/{sdk_key}/groups/identify"));
    let line = line.unwrap_or_else(|| panic!("no access line for identify:\n{logs}"));
    assert!(line.contains("INFO") && line.contains("status=200") && line.contains("method=GET") && line.contains("micros="), "{line}");
    let refusal = logs.lines().find(|l| l.contains("write refused")).unwrap_or_else(|| panic!("no refusal line:\n{logs}"));
    assert!(refusal.contains("status=401") && refusal.contains("code=\"unauthorized\"") && refusal.contains("method=PUT"), "{refusal}");
    assert!(!logs.contains(&key) && !logs.contains("adm-wrong"), "a secret in the logs:\n{logs}");
}

#[test]
fn without_the_flag_requests_are_not_logged_at_info() {
    let mut server = Server::start_demo();
    let root = server.var("PROCTOR_API_ROOT").to_string();
    assert_eq!(server.call("GET", &format!("{root}/groups/identify?id.USER=u_1"), None, None).status, 200);
    let logs = logs(&mut server);
    assert!(!logs.contains("avsb_server::access"), "{logs}");
}

#[test]
fn an_emptied_data_directory_is_reported_loudly_and_a_new_one_is_not() {
    // A new instance: nothing to report.
    let fresh = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(fresh.path(), &[]);
    assert!(!logs(&mut server).contains("LOOKS EMPTIED"));
    // Started again, still without a project, a token or a user: the database holds nothing.
    let mut again = Server::start_in(fresh.path(), &[]);
    let logs_again = logs(&mut again);
    assert!(logs_again.contains("LOOKS EMPTIED") && logs_again.contains("holds no project"), "{logs_again}");

    // A -wal file without its database: the file was deleted or moved.
    let orphan = tempfile::tempdir().expect("temp dir");
    std::fs::write(orphan.path().join("avsb.sqlite3-wal"), b"").expect("write");
    let mut server = Server::start_in(orphan.path(), &[]);
    let orphan_logs = logs(&mut server);
    assert!(
        orphan_logs.contains("LOOKS EMPTIED") && orphan_logs.contains("avsb.sqlite3-wal but no avsb.sqlite3") && orphan_logs.contains("restore"),
        "{orphan_logs}"
    );

    // The demo is data: nothing to report after a restart.
    let demo = tempfile::tempdir().expect("temp dir");
    let mut server = Server::start_in(demo.path(), &["--demo"]);
    let _ = logs(&mut server);
    let mut server = Server::start_in(demo.path(), &[]);
    assert!(!logs(&mut server).contains("LOOKS EMPTIED"));
}
