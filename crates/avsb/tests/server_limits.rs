//! What only the real process shows: its file-descriptor limit (idle connections past it must
//! not starve `/healthz`, failed accepts are logged and retried with a pause), its resident
//! memory while it takes a 10,000-test matrix, its data directory's modes and the log lines
//! that say what it tightened. (Linux: `ulimit -n` in `sh`, `/proc/<pid>`.)

#![cfg(target_os = "linux")]

mod common;

#[path = "../../avsb-core/benches/workloads.rs"]
mod workloads;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::try_request;
use serde_json::json;

/// `avsb serve` under a file limit of `files` (`ulimit -n`, as systemd's LimitNOFILE sets it).
struct Limited {
    child: Child,
    env: HashMap<String, String>,
    stderr: Arc<Mutex<String>>,
}

impl Limited {
    fn start(data: &Path, files: u32, extra: &[&str]) -> Limited {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -n {files} && exec \"$0\" \"$@\""))
            .arg(env!("CARGO_BIN_EXE_avsb"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env_remove("AVSB_LISTEN")
            .env_remove("AVSB_DATA")
            .env_remove("AVSB_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start avsb serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut env = HashMap::new();
        while !env.contains_key("AVSB_BASE_URL") {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(line) => {
                    if let Some((k, v)) = line.split_once('=') {
                        env.insert(k.to_string(), v.to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("the server printed no AVSB_BASE_URL; stderr: {}", stderr.lock().unwrap());
                }
            }
        }
        Limited { child, env, stderr }
    }

    fn base(&self) -> &str {
        &self.env["AVSB_BASE_URL"]
    }

    fn address(&self) -> String {
        self.base().trim_start_matches("http://").to_string()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The log once it contains `needle` (within ten seconds).
    fn log_with(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() > deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// CPU time the process used so far, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).expect("stat");
        let fields: Vec<&str> = stat.rsplit_once(')').expect("stat").1.split_whitespace().collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("status");
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `count` connections that send nothing (those the kernel could not take are left out).
fn idle_connections(address: &str, count: usize) -> Vec<TcpStream> {
    (0..count).filter_map(|_| TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_secs(2)).ok()).collect()
}

fn healthz_within(server: &Limited, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(reply) = try_request("GET", &format!("{}/healthz", server.base()), &[], None) {
            assert_eq!(reply.status, 200, "{}", reply.body);
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn idle_connections_past_the_file_limit_do_not_starve_healthz_and_the_wait_is_logged() {
    let data = tempfile::tempdir().unwrap();
    // The default limit for 256 files: 256 × 80% − 32 = 172 connections.
    let server = Limited::start(data.path(), 256, &["--header-timeout-secs", "2"]);
    let idle = idle_connections(&server.address(), 300);
    assert!(idle.len() > 200, "only {} connections", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    let took = healthz_within(&server, Duration::from_secs(20)).expect("/healthz answers while 300 idle connections are open");
    assert!(took < Duration::from_secs(10), "/healthz took {took:?}");
    let log = server.log_with("connection limit reached");
    assert!(log.contains("connection limit reached: 172 connections are open"), "{log}");
    assert!(log.contains("max_connections=172"), "{log}");
    drop(idle);
}

#[test]
fn failed_accepts_are_logged_and_retried_with_a_pause_not_a_busy_loop() {
    let data = tempfile::tempdir().unwrap();
    // A limit above the file limit lets accept fail with EMFILE.
    let server = Limited::start(data.path(), 64, &["--max-connections", "1000", "--header-timeout-secs", "3"]);
    let log = server.log_with("--max-connections 1000 leaves less than 32");
    assert!(log.contains("--max-connections 1000 leaves less than 32"), "{log}");
    let before = server.cpu_ticks();
    let started = Instant::now();
    let idle = idle_connections(&server.address(), 120);
    std::thread::sleep(Duration::from_secs(2));
    let ticks = server.cpu_ticks() - before;
    let log = server.log_with("accepting a connection failed");
    let failures: Vec<&str> = log.lines().filter(|l| l.contains("accepting a connection failed")).collect();
    assert!(!failures.is_empty(), "{log}");
    assert!(failures[0].contains("Too many open files"), "{}", failures[0]);
    // At most one line per ten seconds, and the pauses keep the process almost idle (a busy
    // loop would use the two seconds whole: 200 ticks).
    assert_eq!(failures.len(), 1, "{log}");
    assert!(ticks < 100, "{ticks} ticks of CPU in {:?} of failing accepts", started.elapsed());
    drop(idle);
    healthz_within(&server, Duration::from_secs(15)).expect("/healthz answers once the idle connections are gone");
    let metrics = try_request("GET", &format!("{}/metrics", server.base()), &[], None).expect("metrics");
    let errors = metrics.body.lines().find(|l| l.starts_with("avsb_accept_errors_total ")).expect("the accept errors");
    assert!(errors.rsplit(' ').next().unwrap().parse::<f64>().unwrap() >= 1.0, "{errors}");
}

fn admin(server: &Limited, token: &str, method: &str, path: &str, body: &str) -> common::Reply {
    let auth = format!("Bearer {token}");
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    try_request(method, &format!("{}/api/v1{path}", server.base()), &headers, Some(body.as_bytes())).expect("an answer")
}

#[test]
fn a_10000_test_matrix_fits_the_default_limit_and_the_peak_memory_stays_near_its_size() {
    let data = tempfile::tempdir().unwrap();
    let token = {
        let out = Command::new(env!("CARGO_BIN_EXE_avsb"))
            .args(["token", "create", "--name", "ops", "--data"])
            .arg(data.path())
            .output()
            .expect("avsb token create");
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let server = Limited::start(data.path(), 1024, &[]);
    let schema = workloads::schema().to_json();
    let project = json!({"key": "big", "schema": schema, "environments": ["production"]}).to_string();
    assert_eq!(admin(&server, &token, "POST", "/projects", &project).status, 201);
    let matrix: serde_json::Value = serde_json::from_str(&workloads::matrix(10_000)).unwrap();
    let compact = json!({"matrix": matrix}).to_string();
    let pretty = serde_json::to_string_pretty(&json!({"matrix": matrix})).unwrap();
    drop(matrix);
    eprintln!("a 10,000-test matrix body: {} bytes compact, {} bytes pretty-printed", compact.len(), pretty.len());
    assert!(pretty.len() < 32 * 1024 * 1024 / 2, "the default limit admits it twice over");
    let mut ratios = Vec::new();
    for body in [&pretty, &compact] {
        let settled = server.status_kib("VmRSS:");
        // Resets the peak (VmHWM) to the current resident size.
        std::fs::write(format!("/proc/{}/clear_refs", server.child.id()), "5").expect("clear_refs");
        let start = Instant::now();
        let reply = admin(&server, &token, "PUT", "/projects/big/environments/production/matrix", body);
        assert_eq!(reply.status, 200, "{}", &reply.body[..reply.body.len().min(500)]);
        let peak = server.status_kib("VmHWM:");
        let ratio = (peak.saturating_sub(settled) * 1024) as f64 / body.len() as f64;
        eprintln!(
            "{} bytes: {:?}, resident {} MiB before, peak {} MiB: {:.1}x the body",
            body.len(),
            start.elapsed(),
            settled / 1024,
            peak / 1024,
            ratio
        );
        ratios.push(ratio);
    }
    // The engine's compiled matrix (kept while it is served) is about 35 MB of it; the request
    // adds the document a few times over, never a tree of the whole JSON (67x before).
    assert!(ratios[0] <= 12.0, "peaked at {:.1}x a pretty-printed body", ratios[0]);
    assert!(ratios[1] <= 20.0, "peaked at {:.1}x a compact body", ratios[1]);
    // Still answered at once meanwhile.
    assert_eq!(try_request("GET", &format!("{}/healthz", server.base()), &[], None).unwrap().status, 200);
}

#[cfg(unix)]
#[test]
fn the_data_directory_is_created_private_and_a_loose_one_is_tightened_with_a_log_line() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let db = data.join("avsb.sqlite3");
    {
        let server = Limited::start(&data, 1024, &[]);
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert!(!server.log().contains("tightened"), "{}", server.log());
    }
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let server = Limited::start(&data, 1024, &[]);
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&db), 0o600);
    let log = server.log_with("tightened permissions from 0644 to 0600");
    assert!(log.contains("tightened permissions from 0755 to 0700"), "{log}");
    assert!(log.contains("tightened permissions from 0644 to 0600"), "{log}");
}
