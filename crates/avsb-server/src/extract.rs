//! Extractors that carry the cross-cutting parts of a request in a handler's signature: a JSON
//! body read under the admin size limit (`Options::max_admin_body`), parsed off the async
//! workers when large, and refused in the API's error shape ([`JsonBody`]), the
//! revision a write is based on ([`Based`], [`BaseRevision`]), and query parameters refused in
//! the same shape ([`ApiQuery`]). The roles are [`crate::auth`]'s extractors.

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ops::input::parse_revision;
use crate::SharedState;

/// Bodies at least this large are parsed on the blocking pool: a matrix of thousands of tests
/// takes long enough to parse that it would hold up every request on an async worker.
pub const PARSE_OFF_WORKERS: usize = 256 * 1024;

/// Runs `parse` over `bytes`, on the blocking pool when they are large. The bytes are freed as
/// soon as the parse ends.
pub async fn parse_off_workers<T, F>(bytes: Bytes, parse: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&[u8]) -> ApiResult<T> + Send + 'static,
{
    if bytes.len() < PARSE_OFF_WORKERS {
        return parse(&bytes);
    }
    tokio::task::spawn_blocking(move || parse(&bytes)).await.map_err(ApiError::internal)?
}

/// Reads an admin request body, refusing one over the configured limit with 413.
pub async fn read_admin_body(request: Request, state: &SharedState) -> ApiResult<Bytes> {
    read_body(request.into_body(), state.options.max_admin_body).await
}

/// Reads a request body of at most `limit` bytes into one buffer, sized up front from
/// `Content-Length` (collecting the frames and then joining them would hold the body twice).
pub async fn read_body(body: Body, limit: usize) -> ApiResult<Bytes> {
    use http_body::Body as _;
    use http_body_util::BodyExt;
    let too_large = || ApiError::new(ErrorCode::BodyTooLarge, format!("the request body exceeds {limit} bytes"));
    let announced = usize::try_from(body.size_hint().lower()).unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(announced.min(limit));
    let mut body = http_body_util::Limited::new(body, limit);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            if e.is::<http_body_util::LengthLimitError>() {
                too_large()
            } else {
                ApiError::new(ErrorCode::UnreadableBody, format!("the request body could not be read: {e}"))
            }
        })?;
        if let Ok(data) = frame.into_data() {
            out.extend_from_slice(&data);
        }
    }
    Ok(Bytes::from(out))
}

/// Parses a JSON body, naming the line and column of a syntax error, or the field that does not
/// fit the expected shape.
pub fn parse_json<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> ApiResult<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(ErrorCode::InvalidJson, "the request body is empty; a JSON document is expected"));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let field = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if field != "." => {
                ApiError::new(ErrorCode::InvalidField, format!("the request body does not fit at '{field}': {inner}"))
                    .with("field", field)
            }
            serde_json::error::Category::Data => {
                ApiError::new(ErrorCode::InvalidField, format!("the request body does not fit: {inner}"))
            }
            _ => ApiError::new(ErrorCode::InvalidJson, format!("the request body is not valid JSON: {inner}")),
        }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::new(ErrorCode::InvalidJson, format!("the request body is not valid JSON: {e}")))?;
    Ok(value)
}

/// Like [`parse_json`] for a body that must be a JSON object (serde would also read an array
/// into a struct, by position).
pub fn parse_object<'de, T: Deserialize<'de>>(bytes: &'de [u8]) -> ApiResult<T> {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | None => parse_json(bytes),
        Some(_) => {
            // Valid JSON of another kind is a shape error; anything else, a syntax error.
            let found = match parse_json::<serde_json::Value>(bytes)? {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "null",
            };
            Err(ApiError::new(
                ErrorCode::InvalidField,
                format!("invalid type: the request body must be a JSON object, not {found}"),
            ))
        }
    }
}

/// A JSON object body of at most `Options::max_admin_body` bytes, read into `T` (whose own
/// fields are typed and, in our request envelopes, refuse unknown names).
#[derive(Debug, Clone)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned + Send + 'static> FromRequest<SharedState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> ApiResult<Self> {
        let bytes = read_admin_body(request, state).await?;
        parse_off_workers(bytes, |b| parse_object(b)).await.map(JsonBody)
    }
}

/// Any JSON document (not only an object) of at most `Options::max_admin_body` bytes.
#[derive(Debug, Clone)]
pub struct JsonValue(pub serde_json::Value);

impl FromRequest<SharedState> for JsonValue {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> ApiResult<Self> {
        let bytes = read_admin_body(request, state).await?;
        parse_off_workers(bytes, |b| parse_json(b)).await.map(JsonValue)
    }
}

/// Like [`JsonBody`], but an empty body is `T::default()`.
#[derive(Debug, Clone)]
pub struct OptionalJsonBody<T>(pub T);

impl<T: DeserializeOwned + Default + Send + 'static> FromRequest<SharedState> for OptionalJsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> ApiResult<Self> {
        let bytes = read_admin_body(request, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJsonBody(T::default()));
        }
        parse_off_workers(bytes, |b| parse_object(b)).await.map(OptionalJsonBody)
    }
}

/// A request body that may name the revision it was based on (`baseRevision`).
pub trait HasBaseRevision {
    /// The body's `baseRevision`, if it has one.
    fn base_revision(&self) -> Option<i64>;
}

/// A write's JSON body and the revision it is based on: the body's `baseRevision`, else the
/// `If-Match` header (a revision's entity tag, `"41"` or `W/"41"`), else none.
#[derive(Debug, Clone)]
pub struct Based<T> {
    /// The body.
    pub body: T,
    /// The base revision, if the writer named one.
    pub base: Option<i64>,
}

impl<T: DeserializeOwned + HasBaseRevision + Send + 'static> FromRequest<SharedState> for Based<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &SharedState) -> ApiResult<Self> {
        let headers = request.headers().clone();
        let JsonBody(body) = JsonBody::<T>::from_request(request, state).await?;
        let base = match body.base_revision() {
            Some(base) => Some(base),
            None => if_match(&headers)?,
        };
        Ok(Based { body, base })
    }
}

/// The revision a body-less write (a delete) is based on: the `baseRevision` query parameter,
/// else `If-Match`, else none.
#[derive(Debug, Clone, Copy)]
pub struct BaseRevision(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for BaseRevision {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or("");
        let from_query = form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "baseRevision").map(|(_, v)| v);
        if let Some(text) = from_query {
            return parse_revision(&text).map(|r| BaseRevision(Some(r))).ok_or_else(|| {
                ApiError::new(ErrorCode::InvalidField, "baseRevision must be a revision version such as \"12\"")
                    .with("field", "baseRevision")
            });
        }
        Ok(BaseRevision(if_match(&parts.headers)?))
    }
}

/// The revision in an `If-Match` header, if there is one.
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    match headers.get(header::IF_MATCH).map(|v| v.to_str().unwrap_or("")) {
        None => Ok(None),
        Some(tag) => parse_revision(tag).map(Some).ok_or_else(|| {
            ApiError::new(ErrorCode::InvalidField, "If-Match must be a revision version such as \"12\"")
                .with("field", "If-Match")
        }),
    }
}

/// The version in a schema `If-Match` header (`"3"`), if there is one.
#[derive(Debug, Clone, Copy)]
pub struct SchemaBase(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for SchemaBase {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        match parts.headers.get(header::IF_MATCH).map(|v| v.to_str().unwrap_or("")) {
            None => Ok(SchemaBase(None)),
            Some(tag) => parse_revision(tag).map(|v| SchemaBase(Some(v))).ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidField,
                    "If-Match must be a schema version such as \"3\" (see GET .../schema's ETag)",
                )
                .with("field", "If-Match")
            }),
        }
    }
}

/// Query parameters, refused in the API's error shape when they do not fit.
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> ApiResult<Self> {
        let query = parts.uri.query().unwrap_or("");
        let uri: axum::http::Uri = format!("/?{query}")
            .parse()
            .map_err(|_| ApiError::new(ErrorCode::InvalidQuery, "the query string cannot be read"))?;
        axum::extract::Query::<T>::try_from_uri(&uri).map(|q| ApiQuery(q.0)).map_err(|e| {
            ApiError::new(ErrorCode::InvalidQuery, format!("the query string does not fit: {}", e.body_text()))
        })
    }
}
