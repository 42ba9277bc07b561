//! Prometheus metrics: requests and latencies per route, matrix versions, events, streams.

use std::sync::atomic::AtomicI64;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
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
    method: String,
    status: u16,
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
        Metrics {
            registry,
            requests,
            latency,
            matrix_version,
            matrix_tests,
            events_accepted,
            events_rejected,
            stream_clients,
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
/// secret: `/pipet/{sdk_key}/groups/identify`).
pub async fn track(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let method = request.method().as_str().to_string();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let elapsed = start.elapsed();
    let metrics = &state.metrics;
    tracing::debug!(%method, %route, status, micros = elapsed.as_micros() as u64, "request");
    metrics.latency.get_or_create(&RouteLabels { route: route.clone() }).observe(elapsed.as_secs_f64());
    metrics.requests.get_or_create(&RequestLabels { route, method, status }).inc();
    response
}
