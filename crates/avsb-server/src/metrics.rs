//! Prometheus metrics: requests and latencies per route, matrix versions, events, streams,
//! connections.
//!
//! Every label value comes from a fixed set (route templates, standard method names, reasons),
//! never from what a client sends: each new label value is a new series kept for the life of the
//! process, so a client-chosen one would let anyone grow the server's memory without bound.

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::registry::EnvSnapshot;
use crate::SharedState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The label of a request's method: its name if it is one of HTTP's standard methods, else
/// `other` (any token is a valid method name, so clients could otherwise mint series at will).
pub fn method_label(method: &Method) -> &'static str {
    const STANDARD: [Method; 9] = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::PATCH,
        Method::OPTIONS,
        Method::CONNECT,
        Method::TRACE,
    ];
    STANDARD.iter().find(|m| *m == method).map_or("other", Method::as_str)
}

/// Why the server closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosedBecause {
    /// A request's head did not arrive in full within the header timeout.
    HeaderTimeout,
    /// No request came within the idle timeout after the last answer.
    IdleTimeout,
    /// It was idle between requests while the connection limit was reached.
    IdleAtLimit,
    /// A request's body did not arrive in full within the body timeout.
    BodyTimeout,
}

impl ClosedBecause {
    /// The metric label and log word.
    pub fn as_str(self) -> &'static str {
        match self {
            ClosedBecause::HeaderTimeout => "header_timeout",
            ClosedBecause::IdleTimeout => "idle_timeout",
            ClosedBecause::IdleAtLimit => "idle_at_limit",
            ClosedBecause::BodyTimeout => "body_timeout",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EnvironmentLabels {
    project: String,
    environment: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// Every metric the server exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    matrix_version: Family<EnvironmentLabels, Gauge>,
    matrix_tests: Family<EnvironmentLabels, Gauge>,
    events_accepted: Family<KindLabels, Counter>,
    events_rejected: Counter,
    stream_clients: Gauge<i64, AtomicI64>,
    connections_open: Gauge<i64, AtomicI64>,
    connection_waits: Counter,
    connections_closed: Family<ReasonLabels, Counter>,
    accept_errors: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("avsb");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "HTTP requests by route, method and status", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0])
        });
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        let matrix_version = Family::<EnvironmentLabels, Gauge>::default();
        registry.register("matrix_version", "The revision each environment serves", matrix_version.clone());
        let matrix_tests = Family::<EnvironmentLabels, Gauge>::default();
        registry.register("matrix_tests", "Tests in each environment's matrix", matrix_tests.clone());
        let events_accepted = Family::<KindLabels, Counter>::default();
        registry.register("events_accepted", "Events stored, by kind", events_accepted.clone());
        let events_rejected = Counter::default();
        registry.register("events_rejected", "Events refused as invalid", events_rejected.clone());
        let stream_clients = Gauge::<i64, AtomicI64>::default();
        registry.register("stream_clients", "Connected SDK streams", stream_clients.clone());
        let connections_open = Gauge::<i64, AtomicI64>::default();
        registry.register("connections_open", "Open client connections", connections_open.clone());
        let connection_waits = Counter::default();
        registry.register(
            "connection_limit_waits",
            "Times the connection limit was reached and new connections waited for a free slot",
            connection_waits.clone(),
        );
        let connections_closed = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "connections_closed_by_server",
            "Connections the server closed on its own, by reason (header, idle or body timeout, idle at the limit)",
            connections_closed.clone(),
        );
        let accept_errors = Counter::default();
        registry.register("accept_errors", "Failed accepts (such as EMFILE, out of file descriptors)", accept_errors.clone());
        Metrics {
            registry,
            requests,
            latency,
            matrix_version,
            matrix_tests,
            events_accepted,
            events_rejected,
            stream_clients,
            connections_open,
            connection_waits,
            connections_closed,
            accept_errors,
        }
    }

    /// Records an environment's newly served revision.
    pub fn revision_published(&self, snapshot: &EnvSnapshot) {
        let labels =
            EnvironmentLabels { project: snapshot.project_key.clone(), environment: snapshot.environment_key.clone() };
        self.matrix_version.get_or_create(&labels).set(snapshot.revision.id);
        self.matrix_tests.get_or_create(&labels).set(i64::try_from(snapshot.matrix.len()).unwrap_or(i64::MAX));
    }

    /// Counts stored events of a kind.
    pub fn events_accepted(&self, kind: &str, count: u64) {
        self.events_accepted.get_or_create(&KindLabels { kind: kind.to_string() }).inc_by(count);
    }

    /// Counts refused events.
    pub fn events_rejected(&self, count: u64) {
        self.events_rejected.inc_by(count);
    }

    /// A stream connected (+1) or ended (-1).
    pub fn stream_clients(&self, delta: i64) {
        self.stream_clients.inc_by(delta);
    }

    /// A connection opened (+1) or closed (-1).
    pub fn connections_open(&self, delta: i64) {
        self.connections_open.inc_by(delta);
    }

    /// The connection limit was reached: the next connection waits for a slot.
    pub fn connection_limit_reached(&self) {
        self.connection_waits.inc();
    }

    /// The server closed a connection on its own.
    pub fn connection_closed(&self, reason: ClosedBecause) {
        self.connections_closed.get_or_create(&ReasonLabels { reason: reason.as_str() }).inc();
    }

    /// An accept failed.
    pub fn accept_error(&self) {
        self.accept_errors.inc();
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// Middleware: counts and times every request under its route template (which never holds a
/// secret: `/pipet/{sdk_key}/groups/identify`; a request no route matches counts as
/// `unmatched`) and its method (`other` for a non-standard one); logs it (at info with
/// `Options::access_log`), and logs refused writes with their reason.
pub async fn track(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let method = method_label(request.method());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    let metrics = &state.metrics;
    let micros = elapsed.as_micros() as u64;
    if state.options.access_log {
        tracing::info!(target: "avsb_server::access", %method, %route, status, micros, "request");
    } else {
        tracing::debug!(target: "avsb_server::access", %method, %route, status, micros, "request");
    }
    // A refused write says why (the caller got the same sentence): who could not write what.
    let write = !matches!(method, "GET" | "HEAD" | "OPTIONS");
    if write && matches!(status, 401 | 403 | 409 | 413 | 422) {
        if let Some(refusal) = response.extensions().get::<crate::error::Refusal>() {
            tracing::info!(%method, %route, status, code = refusal.code, reason = %refusal.message, "write refused");
        }
    }
    metrics.latency.get_or_create(&RouteLabels { route: route.clone() }).observe(elapsed.as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    response
}
