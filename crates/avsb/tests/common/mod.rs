//! Starts the real `avsb serve` binary on a free loopback port with a fresh data directory, and
//! talks to it over HTTP. Dropping the server sends SIGTERM and waits for it.
//!
//! Only what needs the real process is tested with it; the server's behaviour is tested in
//! process in `crates/avsb-server/tests`, whose HTTP and SSE clients this harness shares.

#![allow(dead_code)]

#[path = "../../../avsb-server/tests/common/http.rs"]
pub mod http;
#[path = "../../../avsb-server/tests/common/sse.rs"]
pub mod sse;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use http::{request, Reply};
pub use sse::Sse;

/// A running server.
pub struct Server {
    child: Option<Child>,
    /// The printed `KEY=VALUE` lines.
    pub env: HashMap<String, String>,
    /// The data directory (kept alive while the server runs).
    pub data: Option<tempfile::TempDir>,
    data_path: PathBuf,
    /// Everything the server wrote to stderr so far.
    pub stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `avsb serve --demo` in a new temporary data directory.
    pub fn start_demo() -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let path = data.path().to_path_buf();
        let mut server = Server::start_in(&path, &["--demo"]);
        server.data = Some(data);
        server
    }

    /// Starts `avsb serve` on `data` with extra arguments.
    pub fn start_in(data: &Path, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_avsb"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .env_remove("AVSB_LISTEN")
            .env_remove("AVSB_DATA")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start avsb serve");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        // Read stdout to its end even after the lines wanted here: a closed pipe would fail
        // the server's next write.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut env = HashMap::new();
        let wanted = if extra.contains(&"--demo") { "AVSB_ADMIN_TOKEN" } else { "AVSB_BASE_URL" };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !env.contains_key(wanted) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some((k, v)) = line.split_once('=') {
                        env.insert(k.to_string(), v.to_string());
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    panic!("the server printed no {wanted}; stderr: {}", stderr.lock().unwrap());
                }
            }
        }
        Server { child: Some(child), env, data: None, data_path: data.to_path_buf(), stderr }
    }

    /// The data directory.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// `AVSB_BASE_URL`.
    pub fn base(&self) -> &str {
        &self.env["AVSB_BASE_URL"]
    }

    /// A printed variable.
    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("the server printed no {name}"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Sends SIGTERM and waits; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the server did not stop within 20 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends a request. `auth` is a bearer secret; `body` is sent as is.
    pub fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Reply {
        self.call_with(method, path, auth, body, &[])
    }

    /// Like [`Server::call`], with extra headers.
    pub fn call_with(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base()) };
        request(method, &url, auth, body, headers)
    }

    /// An admin call with the demo's write token.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.call(method, &format!("/api/v1{path}"), Some(self.var("AVSB_ADMIN_TOKEN")), body)
    }

    /// Opens the SDK stream with `key`.
    pub fn stream(&self, key: &str) -> Sse {
        Sse::open(self.base().trim_start_matches("http://"), key, None)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
