//! The Pipet-compatible API (docs/proctor.md §6), one per environment, rooted at
//! `/pipet/{sdk_key}` so that `PROCTOR_API_ROOT` alone names the environment and its key.
//! Envelopes, status codes and messages are Pipet's.

use std::borrow::Cow;

use avsb_core::pipet::{self, IdentifyParams};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use serde_json::{json, Value};

use crate::openapi::{responses, schemas};
use crate::registry::EnvSnapshot;
use crate::store::now_millis;
use crate::SharedState;

/// The Pipet routes. Pipet answers its configuration endpoints whatever the method, and any
/// other path under the root with its 404 envelope (the one route left out of the OpenAPI
/// document, which describes it in the `pipet` tag instead).
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(identify))
        .routes(routes!(matrix))
        .routes(routes!(audit))
        .routes(routes!(definition))
        .routes(routes!(config_context))
        .routes(routes!(config_identifiers))
        // Pipet answers its configuration whatever the method; GET is the documented one.
        .route("/pipet/{sdk_key}/config/context", other_methods(config_context))
        .route("/pipet/{sdk_key}/config/identifiers", other_methods(config_identifiers))
        .route("/pipet/{sdk_key}/{*rest}", any(unknown))
}

/// Every method but GET (and HEAD, which GET answers).
fn other_methods<H, T>(handler: H) -> axum::routing::MethodRouter<SharedState>
where
    H: axum::handler::Handler<T, SharedState>,
    T: 'static,
{
    use axum::routing::MethodFilter;
    let filter = MethodFilter::POST
        .or(MethodFilter::PUT)
        .or(MethodFilter::DELETE)
        .or(MethodFilter::PATCH)
        .or(MethodFilter::OPTIONS)
        .or(MethodFilter::TRACE);
    axum::routing::on(filter, handler)
}

/// A path under `/pipet/` that no route matches, or a method a route does not take: Pipet's
/// envelope, after the key check (an unknown key is a 401 whatever the path).
pub fn unmatched(state: &SharedState, path: &str, status: u16, method: &axum::http::Method) -> Response {
    let rest = path.strip_prefix("/pipet/").unwrap_or("");
    let (sdk_key, rest) = rest.split_once('/').unwrap_or((rest, ""));
    if let Err(response) = environment(state, sdk_key) {
        return response;
    }
    if status == 405 {
        error(405, &format!("Request method '{method}' not supported"))
    } else {
        error(404, &format!("No Pipet endpoint '/{rest}'."))
    }
}

const NO_CACHE: HeaderValue = HeaderValue::from_static("no-cache, no-store, max-age=0, must-revalidate");

fn with_headers(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    headers.insert(header::CACHE_CONTROL, NO_CACHE);
    response
}

/// `{"data": <data>, "meta": {"status": 200}}`.
fn envelope(data: &Value) -> Response {
    let mut body = Vec::with_capacity(256);
    body.extend_from_slice(b"{\"data\":");
    if serde_json::to_writer(&mut body, data).is_err() {
        return error(500, "could not render the response");
    }
    body.extend_from_slice(b",\"meta\":{\"status\":200}}");
    with_headers(StatusCode::OK, body)
}

/// `{"data": {}, "meta": {"status": <status>, "error": <message>}}` with that HTTP status.
fn error(status: u16, message: &str) -> Response {
    let body = json!({"data": {}, "meta": {"status": status, "error": message}});
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    with_headers(status, serde_json::to_vec(&body).unwrap_or_default())
}

// A rejection is a ready response; boxing it would only add an allocation to the error path.
#[allow(clippy::result_large_err)]
fn environment(state: &SharedState, sdk_key: &str) -> Result<std::sync::Arc<EnvSnapshot>, Response> {
    state
        .sdk_environment(sdk_key)
        .map(|(_, slot)| slot.current())
        .ok_or_else(|| error(401, "Unknown or revoked SDK key in the Pipet root (PROCTOR_API_ROOT)."))
}

/// A random number for RANDOM tests (Pipet always enables them).
fn random_seed() -> Option<u64> {
    getrandom::u64().ok()
}

/// Builds Pipet's request from the query string and headers, as the schema says where each
/// value comes from. Repeated parameters: the first wins, as `getParameter` does.
fn identify_params(snapshot: &EnvSnapshot, uri: &Uri, headers: &HeaderMap) -> IdentifyParams {
    let schema = snapshot.matrix.schema();
    let query: Vec<(Cow<'_, str>, Cow<'_, str>)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_ref());
    let prefixed = |prefix: &str, key: &str| {
        query
            .iter()
            .find(|(k, _)| k.len() == prefix.len() + key.len() && k.starts_with(prefix) && k.ends_with(key))
            .map(|(_, v)| v.to_string())
    };
    let header = |name: &str| headers.get(name).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let mut params = IdentifyParams::from_sources(schema, prefixed, header);
    params.tests = param("test").map(str::to_string);
    params.force_groups = param("prforceGroups").map(str::to_string);
    params.now_millis = Some(now_millis());
    params.random_seed = if snapshot.has_random_tests { random_seed() } else { None };
    params
}

#[utoipa::path(
    get,
    path = "/pipet/{sdk_key}/groups/identify",
    tag = "pipet",
    operation_id = "pipetIdentify",
    summary = r#"Assign buckets (Pipet `/groups/identify`)"#,
    description = r#"Evaluates the environment's tests for one request, as Proctor Pipet does. Context variables and identifiers are read where the schema says: query parameters `ctx.<sourceKey>` and `id.<sourceKey>`, or headers. Unconfigured parameters are ignored; repeated parameters: the first wins. `groups` holds only the tests that got a bucket."#,
    params(
        ("sdk_key" = String, Path, description = r#"A server SDK key of the environment: `PROCTOR_API_ROOT` is `<server>/pipet/<sdk key>`."#, example = json!("sdk-AbC123...")),
        ("test" = Option<String>, Query, description = r#"Comma-separated test names. Absent: every test. Present but empty: no test."#, example = json!("buttoncolortst,newfeaturerollout")),
        ("prforceGroups" = Option<String>, Query, description = r#"Force groups, Pipet's subset: comma-separated `<testName><bucketValue>` (e.g. `buttoncolortst2`)."#),
        ("ctx" = Option<Object>, Query, description = r#"Context variables configured with source `QUERY`, as `ctx.<sourceKey>=<text>`; converted by the variable's type. A missing variable without a default is a 400."#, example = json!({"ctx.country": "US", "ctx.loggedIn": "true"})),
        ("id" = Option<Object>, Query, description = r#"Identifiers configured with source `QUERY`, as `id.<sourceKey>=<identifier>`. At least one configured identifier (query or header) is required; an empty value counts."#, example = json!({"id.USER": "pa5xq0lz4n80"}))
    ),
    responses(
        (status = 200, description = r#"The assignment."#, body = schemas::PipetIdentifyEnvelope, content_type = "application/json", headers(("Cache-Control" = String, description = r#"`no-cache, no-store, max-age=0, must-revalidate`."#))),
        (status = 400, description = r#"Pipet's refusals: `Request must have at least one identifier.`, `Required variable '<name>' not found by '<SOURCE>:<key>'. See the pipet configuration.`, or `Could not convert raw value '<raw>' to type '<java type>' for context variable '<name>': <detail>`."#, body = schemas::PipetError, content_type = "application/json"),
        (status = 401, response = responses::PipetUnauthorized)
    ),
    security()
)]
async fn identify(State(state): State<SharedState>, Path(sdk_key): Path<String>, uri: Uri, headers: HeaderMap) -> Response {
    let Some((key, slot)) = state.sdk_environment(&sdk_key) else {
        return error(401, "Unknown or revoked SDK key in the Pipet root (PROCTOR_API_ROOT).");
    };
    let snapshot = slot.current();
    let params = identify_params(&snapshot, &uri, &headers);
    let mut body = Vec::with_capacity(256 + 96 * snapshot.matrix.len());
    body.extend_from_slice(b"{\"data\":");
    let record = |evaluation: &avsb_core::Evaluation<'_>, request: &avsb_core::Request<'_>| {
        if key.record_exposures {
            let (environment, matrix) = (snapshot.environment_id, &snapshot.matrix);
            state.exposure_recorder.record(environment, key.key_id, matrix, evaluation, request, now_millis());
        }
    };
    match pipet::identify_to_observed(&snapshot.matrix, &params, &mut body, record) {
        Ok(()) => {
            body.extend_from_slice(b",\"meta\":{\"status\":200}}");
            with_headers(StatusCode::OK, body)
        }
        Err(e) => error(e.status, &e.message),
    }
}

#[utoipa::path(
    get,
    path = "/pipet/{sdk_key}/proctor/matrix",
    tag = "pipet",
    operation_id = "pipetMatrix",
    summary = r#"The verified matrix (Pipet `/proctor/matrix`)"#,
    description = r#"The environment's matrix as Proctor writes it, without an envelope: nulls kept, doubles in plain notation."#,
    params(
        ("sdk_key" = String, Path, description = r#"A server SDK key of the environment: `PROCTOR_API_ROOT` is `<server>/pipet/<sdk key>`."#, example = json!("sdk-AbC123..."))
    ),
    responses(
        (status = 200, description = r#"The matrix (no envelope)."#, body = schemas::TestMatrixArtifact, content_type = "application/json", headers(("Cache-Control" = String, description = r#"`no-cache, no-store, max-age=0, must-revalidate`."#))),
        (status = 401, response = responses::PipetUnauthorized)
    ),
    security()
)]
async fn matrix(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => with_headers(StatusCode::OK, snapshot.matrix_json.to_vec()),
        Err(response) => response,
    }
}

#[utoipa::path(
    get,
    path = "/pipet/{sdk_key}/proctor/matrix/audit",
    tag = "pipet",
    operation_id = "pipetAudit",
    summary = r#"The matrix audit (Pipet `/proctor/matrix/audit`)"#,
    params(
        ("sdk_key" = String, Path, description = r#"A server SDK key of the environment: `PROCTOR_API_ROOT` is `<server>/pipet/<sdk key>`."#, example = json!("sdk-AbC123..."))
    ),
    responses(
        (status = 200, description = r#"The audit."#, body = schemas::PipetAuditEnvelope, content_type = "application/json", headers(("Cache-Control" = String, description = r#"`no-cache, no-store, max-age=0, must-revalidate`."#))),
        (status = 401, response = responses::PipetUnauthorized)
    ),
    security()
)]
async fn audit(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => envelope(&snapshot.matrix.audit().to_json()),
        Err(response) => response,
    }
}

#[utoipa::path(
    get,
    path = "/pipet/{sdk_key}/proctor/matrix/definition/{test}",
    tag = "pipet",
    operation_id = "pipetDefinition",
    summary = r#"One test definition (Pipet `/proctor/matrix/definition/{testName}`)"#,
    params(
        ("sdk_key" = String, Path, description = r#"A server SDK key of the environment: `PROCTOR_API_ROOT` is `<server>/pipet/<sdk key>`."#, example = json!("sdk-AbC123...")),
        ("test" = String, Path, description = r#"The test name."#, example = json!("buttoncolortst"))
    ),
    responses(
        (status = 200, description = r#"The test definition."#, body = schemas::PipetDefinitionEnvelope, content_type = "application/json", headers(("Cache-Control" = String, description = r#"`no-cache, no-store, max-age=0, must-revalidate`."#))),
        (status = 401, response = responses::PipetUnauthorized),
        (status = 400, description = r#"`The test name in the path is not valid UTF-8.` (a percent-encoded name that does not decode)."#, body = schemas::PipetError, content_type = "application/json"),
        (status = 404, description = r#"`'<test>' test definition not found in test matrix.`"#, body = schemas::PipetError, content_type = "application/json")
    ),
    security()
)]
async fn definition(
    State(state): State<SharedState>,
    path: Result<Path<(String, String)>, axum::extract::rejection::PathRejection>,
) -> Response {
    let Ok(Path((sdk_key, test))) = path else {
        return error(400, "The test name in the path is not valid UTF-8.");
    };
    let snapshot = match environment(&state, &sdk_key) {
        Ok(s) => s,
        Err(response) => return response,
    };
    match snapshot.matrix.definition(&test) {
        Some(definition) => envelope(&definition.to_json(false)),
        None => error(404, &format!("'{test}' test definition not found in test matrix.")),
    }
}

#[utoipa::path(
    get,
    path = "/pipet/{sdk_key}/config/context",
    tag = "pipet",
    operation_id = "pipetConfigContext",
    summary = r#"Context variable configuration (Pipet `/config/context`)"#,
    description = r#"Per variable: `source`, the effective `sourceKey` (`ctx.<key>` for QUERY, the header name for HEADER), the Java canonical `type`, and `defaultValue` when set. Any HTTP method is accepted, as in Pipet."#,
    params(
        ("sdk_key" = String, Path, description = r#"A server SDK key of the environment: `PROCTOR_API_ROOT` is `<server>/pipet/<sdk key>`."#, example = json!("sdk-AbC123..."))
    ),
    responses(
        (status = 200, description = r#"The configuration."#, body = schemas::PipetContextEnvelope, content_type = "application/json", headers(("Cache-Control" = String, description = r#"`no-cache, no-store, max-age=0, must-revalidate`."#))),
        (status = 401, response = responses::PipetUnauthorized)
    ),
    security()
)]
async fn config_context(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => envelope(&snapshot.matrix.schema().context_config_json()),
        Err(response) => response,
    }
}

#[utoipa::path(
    get,
    path = "/pipet/{sdk_key}/config/identifiers",
    tag = "pipet",
    operation_id = "pipetConfigIdentifiers",
    summary = r#"Identifier configuration (Pipet `/config/identifiers`)"#,
    description = r#"Per identifier type: `source` and the effective `sourceKey` (`id.<key>` for QUERY, the header name for HEADER). Any HTTP method is accepted, as in Pipet."#,
    params(
        ("sdk_key" = String, Path, description = r#"A server SDK key of the environment: `PROCTOR_API_ROOT` is `<server>/pipet/<sdk key>`."#, example = json!("sdk-AbC123..."))
    ),
    responses(
        (status = 200, description = r#"The configuration."#, body = schemas::PipetIdentifiersEnvelope, content_type = "application/json", headers(("Cache-Control" = String, description = r#"`no-cache, no-store, max-age=0, must-revalidate`."#))),
        (status = 401, response = responses::PipetUnauthorized)
    ),
    security()
)]
async fn config_identifiers(State(state): State<SharedState>, Path(sdk_key): Path<String>) -> Response {
    match environment(&state, &sdk_key) {
        Ok(snapshot) => envelope(&snapshot.matrix.schema().identifiers_config_json()),
        Err(response) => response,
    }
}

async fn unknown(State(state): State<SharedState>, method: axum::http::Method, uri: Uri) -> Response {
    unmatched(&state, uri.path(), 404, &method)
}
