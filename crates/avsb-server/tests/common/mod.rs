//! The server in process, the way tests drive it.
//!
//! [`Server`] is what `avsb serve --demo` runs, minus the process: a `SqliteStore`,
//! `AppState::load`, the demo project (`avsb_server::demo::ensure`), and `avsb_server::run` on a
//! port-0 loopback listener, on a runtime in a background thread. Tests talk to it over real
//! HTTP, read the lines the binary would print with [`Server::var`], and stop it with
//! [`Server::stop`] (or by dropping it). [`Server::start_demo`] keeps the database in memory (a
//! file synced on every commit would make each start cost a tenth of a second);
//! [`Server::start_in`] keeps it in a data directory as `avsb serve` does, for restarts.
//!
//! [`Demo`] is the same state without a listener, for tests that call the app with `oneshot`
//! inside their own runtime (with paused time, say).
//!
//! `http.rs` and `sse.rs` are the clients; the real binary's tests include them too.

#![allow(dead_code)]

pub mod http;
pub mod sse;

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use avsb_server::demo::{self, DemoSecrets};
use avsb_server::store::SqliteStore;
use avsb_server::{AppState, Options, SharedState};
use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

pub use http::{request, try_request, Reply};
pub use sse::Sse;

/// The database file inside the data directory, as `avsb serve` names it.
const DATABASE: &str = "avsb.sqlite3";

/// Where a server keeps its database.
#[derive(Debug, Clone, Copy)]
enum Database {
    /// In memory: no commit waits for the disk.
    InMemory,
    /// In the data directory's `avsb.sqlite3`, as `avsb serve` keeps it (so it survives a restart).
    InDataDirectory,
}

/// Opens the database in `data` as `avsb serve` does.
fn open_store(data: &Path) -> SqliteStore {
    SqliteStore::open(&data.join(DATABASE)).unwrap_or_else(|e| panic!("open {}: {e}", data.display()))
}

/// Loads the state from `store` and makes sure the demo project exists (its secrets in `data`).
async fn load_demo(store: SqliteStore, data: &Path, options: Options) -> (SharedState, DemoSecrets) {
    let state = AppState::load(Arc::new(store), options).await.unwrap_or_else(|e| panic!("load the state: {e}"));
    let secrets = demo::ensure(&state, data).await.unwrap_or_else(|e| panic!("the demo project: {e}"));
    (state, secrets)
}

/// The demo's state without a listener, for `oneshot` calls in the test's own runtime.
pub struct Demo {
    pub state: SharedState,
    pub secrets: DemoSecrets,
    /// The router, built once: building it (with its OpenAPI document) costs far more than a
    /// request.
    app: axum::Router,
    _data: tempfile::TempDir,
}

impl Demo {
    /// The demo project in a new temporary data directory, with these options.
    pub async fn start(options: Options) -> Demo {
        let data = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::in_memory().expect("an in-memory store");
        let (state, secrets) = load_demo(store, data.path(), options).await;
        let app = avsb_server::app(Arc::clone(&state));
        Demo { state, secrets, app, _data: data }
    }

    /// A development SDK key.
    pub fn sdk_key(&self) -> &str {
        self.secrets.sdk_key("development").expect("a development key")
    }

    /// Sends one request through the app (no listener, no socket).
    pub async fn oneshot(&self, request: Request<Body>) -> axum::response::Response {
        self.app.clone().oneshot(request).await.expect("the app answers")
    }

    /// Like [`Server::call_with`], through the app: exactly these headers (and a JSON content
    /// type with a body), no others.
    pub async fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(secret) = auth {
            request = request.header("authorization", format!("Bearer {secret}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let response = self.oneshot(request.body(body).unwrap_or_else(|e| panic!("{method} {path}: {e}"))).await;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        Reply { status, headers, body: String::from_utf8_lossy(&bytes).into_owned() }
    }

    /// An admin call with the demo's write token, through the app.
    pub async fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.call(method, &format!("/api/v1{path}"), Some(&self.secrets.admin_token), body, &[]).await
    }
}

/// A server running in this process.
pub struct Server {
    /// The `KEY=VALUE` lines `avsb serve --demo` prints.
    pub env: HashMap<String, String>,
    /// The data directory, when the server made it (kept alive while the server runs).
    pub data: Option<tempfile::TempDir>,
    /// The state the server runs on.
    pub state: SharedState,
    data_path: PathBuf,
    address: SocketAddr,
    base: String,
    runtime: tokio::runtime::Handle,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    finished: Mutex<mpsc::Receiver<std::io::Result<()>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the demo server on an in-memory database, with a new temporary data directory
    /// for the demo's secrets.
    pub fn start_demo() -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start(data.path(), Options::default(), Database::InMemory);
        server.data = Some(data);
        server
    }

    /// Starts the demo server on the database in `data`, as `avsb serve --demo --data` does
    /// (an earlier server's directory, to restart it).
    pub fn start_in(data: &Path) -> Server {
        Server::start(data, Options::default(), Database::InDataDirectory)
    }

    /// [`Server::start_demo`] with these options (shorter timeouts, a connection limit).
    pub fn start_with(options: Options) -> Server {
        let data = tempfile::tempdir().expect("temp dir");
        let mut server = Server::start(data.path(), options, Database::InMemory);
        server.data = Some(data);
        server
    }

    /// [`Server::start_in`] with these options.
    pub fn start_in_with(data: &Path, options: Options) -> Server {
        Server::start(data, options, Database::InDataDirectory)
    }

    fn start(data: &Path, options: Options, database: Database) -> Server {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (finished_tx, finished) = mpsc::channel();
        let dir = data.to_path_buf();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
            let result = runtime.block_on(async move {
                let store = match database {
                    Database::InMemory => SqliteStore::in_memory().expect("an in-memory store"),
                    Database::InDataDirectory => open_store(&dir),
                };
                let (state, secrets) = load_demo(store, &dir, options).await;
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
                let address = listener.local_addr().expect("the bound address");
                let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
                let ready = (Arc::clone(&state), secrets, address, tokio::runtime::Handle::current(), stop);
                if ready_tx.send(ready).is_err() {
                    return Ok(());
                }
                // A dropped sender stops the server as a sent one does.
                avsb_server::run(listener, state, async move {
                    let _ = stopped.await;
                })
                .await
            });
            let _ = finished_tx.send(result);
        });
        let (state, secrets, address, runtime, stop) = match ready_rx.recv() {
            Ok(ready) => ready,
            Err(_) => match thread.join() {
                Err(panic) => std::panic::resume_unwind(panic),
                Ok(()) => panic!("the server thread ended before the server was ready"),
            },
        };
        let base = format!("http://{address}");
        let env = secrets
            .env_lines(&base)
            .iter()
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Server {
            env,
            data: None,
            state,
            data_path: data.to_path_buf(),
            address,
            base,
            runtime,
            shutdown: Some(stop),
            finished: Mutex::new(finished),
            thread: Some(thread),
        }
    }

    /// The data directory.
    pub fn data_path(&self) -> &Path {
        &self.data_path
    }

    /// `AVSB_BASE_URL`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The listening address, `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        self.address.to_string()
    }

    /// A printed variable.
    pub fn var(&self, name: &str) -> &str {
        self.env.get(name).unwrap_or_else(|| panic!("the server prints no {name}"))
    }

    /// Runs a future on the server's runtime (for a store or an operation called directly).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(future)
    }

    /// Triggers the shutdown and waits (at most 20 s) for `run` to return; returns its result.
    pub fn stop(&mut self) -> std::io::Result<()> {
        let Some(stop) = self.shutdown.take() else { return Ok(()) };
        let _ = stop.send(());
        let result = self
            .finished
            .get_mut()
            .expect("the finished channel")
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("the server did not stop within 20 s of the shutdown: {e}"));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        result
    }

    /// Sends a request. `auth` is a bearer secret; `body` is sent as is.
    pub fn call(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Reply {
        self.call_with(method, path, auth, body, &[])
    }

    /// Like [`Server::call`], with extra headers.
    pub fn call_with(&self, method: &str, path: &str, auth: Option<&str>, body: Option<&str>, headers: &[(&str, &str)]) -> Reply {
        let url = if path.starts_with("http") { path.to_string() } else { format!("{}{path}", self.base) };
        request(method, &url, auth, body, headers)
    }

    /// An admin call with the demo's write token.
    pub fn admin(&self, method: &str, path: &str, body: Option<&str>) -> Reply {
        self.call(method, &format!("/api/v1{path}"), Some(self.var("AVSB_ADMIN_TOKEN")), body)
    }

    /// Opens the SDK stream with `key`, resuming after `last_event_id` if given.
    pub fn stream(&self, key: &str, last_event_id: Option<&str>) -> Sse {
        Sse::open(&self.address(), key, last_event_id)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.shutdown.take() {
            let _ = stop.send(());
            // Never hang a test that is already failing: give up on a server that does not stop.
            if self.finished.get_mut().is_ok_and(|finished| finished.recv_timeout(Duration::from_secs(10)).is_ok()) {
                if let Some(thread) = self.thread.take() {
                    let _ = thread.join();
                }
            }
        }
    }
}
