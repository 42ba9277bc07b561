//! What SDKs that evaluate locally read: the environment's datafile (matrix, schema, versions)
//! with ETag/304, and a Server-Sent Events stream that pushes every new datafile.
//!
//! Stream protocol: each event is `event: datafile`, `id: <etag without quotes>`, `data: <the
//! datafile JSON>`. On connect the current datafile is sent unless `Last-Event-ID` names it (a
//! client resuming after a reconnect with nothing new receives nothing). Idle streams carry a
//! `: heartbeat` comment every `Options::heartbeat`.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use futures_util::stream::{self, Stream};
use tokio::sync::watch;

use crate::openapi::{responses, schemas};
use crate::auth::SdkClient;
use crate::registry::EnvSnapshot;
use crate::SharedState;

/// The SDK routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new().routes(routes!(datafile)).routes(routes!(stream_datafiles))
}

fn etag_value(snapshot: &EnvSnapshot) -> HeaderValue {
    HeaderValue::from_str(&snapshot.etag).unwrap_or(HeaderValue::from_static("\"\""))
}

/// Whether `If-None-Match` names this entity tag.
pub fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

#[utoipa::path(
    get,
    path = "/sdk/v1/datafile",
    tag = "sdk",
    operation_id = "getDatafile",
    summary = r#"The environment's datafile"#,
    description = r#"What SDKs that evaluate locally read: the matrix, the schema and their versions. The `ETag` is `"<revision>.<schemaVersion>"`; send it as `If-None-Match` to get 304 while nothing changed."#,
    params(
        ("If-None-Match" = Option<String>, Header, description = r#"Entity tags from earlier answers (comma-separated, or `*`); a match answers 304."#)
    ),
    responses(
        (status = 200, description = r#"The datafile."#, body = schemas::Datafile, content_type = "application/json", headers(("ETag" = String, description = r#"`"<revision>.<schemaVersion>"`; also the stream's event id (unquoted)."#), ("Cache-Control" = String, description = r#"`no-cache`."#))),
        (status = 304, description = r#"Unchanged; no body."#, headers(("ETag" = String, description = r#"`"<revision>.<schemaVersion>"`; also the stream's event id (unquoted)."#))),
        (status = 401, response = responses::Unauthorized)
    ),
    security(("sdkKey" = []), ("sdkApiKey" = []))
)]
async fn datafile(client: SdkClient, headers: HeaderMap) -> Response {
    let snapshot = client.environment.current();
    if not_modified(&headers, &snapshot.etag) {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value(&snapshot))]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (header::ETAG, etag_value(&snapshot)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        snapshot.datafile.clone(),
    )
        .into_response()
}

fn event(snapshot: &EnvSnapshot) -> Event {
    let data = std::str::from_utf8(&snapshot.datafile).unwrap_or("{}");
    Event::default().event("datafile").id(snapshot.etag.trim_matches('"')).data(data)
}

/// Counts a connected stream for as long as it lives.
#[derive(Debug)]
struct Connected(SharedState);

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.metrics.stream_clients(-1);
    }
}

struct StreamState {
    state: SharedState,
    key_id: i64,
    keys: watch::Receiver<u64>,
    changes: watch::Receiver<Arc<EnvSnapshot>>,
    shutdown: watch::Receiver<bool>,
    first: Option<Event>,
    _connected: Connected,
}

#[utoipa::path(
    get,
    path = "/sdk/v1/stream",
    tag = "sdk",
    operation_id = "streamDatafiles",
    summary = r#"Datafile change stream (Server-Sent Events)"#,
    description = r#"A Server-Sent Events stream. Each event is `event: datafile`, `id: <datafile ETag without quotes>`, `data: <the datafile JSON>` (the first also carries `retry: 1000`). On connect the current datafile is sent unless `Last-Event-ID` names it; then one event per new revision or schema. Idle streams carry a `: heartbeat` comment (every 15 s by default). The stream ends when the server shuts down, and when its SDK key is revoked (a revoked key reads nothing more; reconnecting with it answers 401)."#,
    params(
        ("Last-Event-ID" = Option<String>, Header, description = r#"The last event id received; if it is current, nothing is sent until the next change."#, example = json!("44.3"))
    ),
    responses(
        (status = 200, description = r#"The event stream."#, body = String, content_type = "text/event-stream", example = json!("event: datafile\nid: 44.3\ndata: {\"project\":\"demo\",...}\nretry: 1000\n\n: heartbeat\n\n")),
        (status = 401, response = responses::Unauthorized)
    ),
    security(("sdkKey" = []), ("sdkApiKey" = []))
)]
async fn stream_datafiles(
    State(state): State<SharedState>,
    client: SdkClient,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut changes = client.environment.subscribe();
    let current = Arc::clone(&changes.borrow_and_update());
    let last_seen = headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim);
    let first = (last_seen != Some(current.etag.trim_matches('"'))).then(|| event(&current).retry(std::time::Duration::from_secs(1)));
    state.metrics.stream_clients(1);
    let initial = StreamState {
        state: Arc::clone(&state),
        key_id: client.key.key_id,
        keys: state.registry.subscribe_keys(),
        changes,
        shutdown: state.shutting_down.subscribe(),
        first,
        _connected: Connected(Arc::clone(&state)),
    };
    let events = stream::unfold(initial, |mut s| async move {
        if let Some(first) = s.first.take() {
            return Some((Ok(first), s));
        }
        loop {
            if *s.shutdown.borrow() || !s.state.registry.key_active(s.key_id) {
                // Shutting down, or the key was revoked: a revoked key reads nothing more.
                return None;
            }
            tokio::select! {
                changed = s.changes.changed() => {
                    changed.ok()?;
                    if !s.state.registry.key_active(s.key_id) {
                        return None;
                    }
                    let snapshot = Arc::clone(&s.changes.borrow_and_update());
                    return Some((Ok(event(&snapshot)), s));
                }
                changed = s.keys.changed() => changed.ok()?,
                _ = s.shutdown.changed() => return None,
            }
        }
    });
    Sse::new(events).keep_alive(KeepAlive::new().interval(state.options.heartbeat).text("heartbeat"))
}
