//! Liveness and readiness: `/healthz` answers from memory even while the database is locked;
//! `/readyz` fails when the database takes no write, and probes it at most once per interval.

use std::time::{Duration, Instant};

use avsb_server::Options;
use serde_json::json;

use crate::common::{Reply, Server};
use crate::support::exposure;

/// A server on a database file in a new data directory, with these options.
fn on_disk(options: Options) -> (Server, tempfile::TempDir) {
    let data = tempfile::tempdir().expect("temp dir");
    let server = Server::start_in_with(data.path(), options);
    (server, data)
}

/// A second connection to the server's database, as another process would open it.
fn second_connection(data: &tempfile::TempDir) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(data.path().join("avsb.sqlite3")).expect("open the database");
    conn.busy_timeout(Duration::from_secs(10)).expect("busy timeout");
    conn
}

fn readyz(s: &Server) -> Reply {
    s.call("GET", "/readyz", None, None)
}

#[test]
fn healthz_answers_at_once_while_the_database_is_locked_and_readyz_says_it_is_unavailable() {
    let (s, data) = on_disk(Options { readiness_interval: Duration::ZERO, ..Options::default() });
    let other = second_connection(&data);
    other.execute_batch("BEGIN EXCLUSIVE").expect("take the write lock");
    // An event batch now waits for the lock (for the store's busy timeout, 5 s), holding the
    // server's connection meanwhile.
    let base = s.base().to_string();
    let key = s.var("AVSB_SDK_KEY").to_string();
    let body = json!({"events": [exposure("u_1")]}).to_string();
    let waiting = std::thread::spawn(move || {
        crate::common::request("POST", &format!("{base}/sdk/v1/events"), Some(&key), Some(&body), &[])
    });
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let health = s.call("GET", "/healthz", None, None);
    let took = start.elapsed();
    assert_eq!(health.status, 200, "{}", health.body);
    assert!(took < Duration::from_millis(1000), "/healthz took {took:?} behind the database lock");
    let ready = readyz(&s);
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(ready.json()["reason"].as_str().unwrap_or_default().contains("database"), "{}", ready.body);
    other.execute_batch("ROLLBACK").expect("release the lock");
    let _ = waiting.join();
    assert_eq!(readyz(&s).status, 200);
}

#[test]
fn readyz_reports_the_database_readable_and_writable_and_every_environment_served() {
    let s = Server::start_demo();
    let reply = readyz(&s);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let report = reply.json();
    assert_eq!(report["status"], "ready");
    assert_eq!(report["databaseReadable"], true);
    assert_eq!(report["databaseWritable"], true);
    assert_eq!(report["environmentsStored"], 3);
    assert_eq!(report["environmentsServed"], 3);
    assert!(report.get("reason").is_none(), "{report}");
}

/// Makes every write of the readiness probe fail in the database itself, as a full disk would.
const REFUSE_PROBE_WRITES: &str = "
    CREATE TRIGGER refuse_probe_insert BEFORE INSERT ON settings WHEN NEW.key = 'readiness_probe'
    BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
    CREATE TRIGGER refuse_probe_update BEFORE UPDATE ON settings WHEN NEW.key = 'readiness_probe'
    BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;";

const ALLOW_PROBE_WRITES: &str = "DROP TRIGGER refuse_probe_insert; DROP TRIGGER refuse_probe_update;";

#[test]
fn readyz_fails_while_the_database_refuses_writes() {
    let (s, data) = on_disk(Options { readiness_interval: Duration::ZERO, ..Options::default() });
    assert_eq!(readyz(&s).status, 200);
    let other = second_connection(&data);
    other.execute_batch(REFUSE_PROBE_WRITES).expect("refuse the probe's writes");
    let reply = readyz(&s);
    assert_eq!(reply.status, 503, "{}", reply.body);
    let report = reply.json();
    assert_eq!(report["status"], "unavailable");
    assert_eq!(report["databaseReadable"], true);
    assert_eq!(report["databaseWritable"], false);
    let reason = report["reason"].as_str().expect("a reason");
    assert!(reason.contains("cannot be written") && reason.contains("full"), "{reason}");
    // Liveness is not readiness.
    assert_eq!(s.call("GET", "/healthz", None, None).status, 200);
    other.execute_batch(ALLOW_PROBE_WRITES).expect("allow them again");
    assert_eq!(readyz(&s).status, 200);
}

#[test]
fn readyz_probes_the_database_at_most_once_per_interval() {
    let (s, data) = on_disk(Options { readiness_interval: Duration::from_secs(3600), ..Options::default() });
    let first = readyz(&s);
    assert_eq!(first.status, 200);
    second_connection(&data).execute_batch(REFUSE_PROBE_WRITES).expect("refuse the probe's writes");
    for _ in 0..20 {
        let again = readyz(&s);
        assert_eq!(again.status, 200, "probed again within the interval: {}", again.body);
        assert_eq!(again.json()["checkedAt"], first.json()["checkedAt"]);
    }
}

#[test]
fn both_probes_are_documented() {
    let s = Server::start_demo();
    let doc = s.call("GET", "/api/v1/openapi.json", None, None).json();
    let healthz = &doc["paths"]["/healthz"]["get"];
    assert!(healthz["responses"]["200"].is_object() && healthz["responses"]["503"].is_null(), "{healthz}");
    let readyz = &doc["paths"]["/readyz"]["get"];
    assert!(readyz["responses"]["200"].is_object() && readyz["responses"]["503"].is_object(), "{readyz}");
    assert!(readyz["description"].as_str().unwrap_or_default().contains("write"));
}
