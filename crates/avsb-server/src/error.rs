//! The one error shape of the admin, SDK and event APIs:
//! `{"error": {"code": "...", "message": "...", ...details}}` with the status its code implies.
//! (The Pipet and OFREP APIs answer in their own formats; see their modules.)
//!
//! Every code is an [`ErrorCode`], and every code has exactly one status, so a client can rely
//! on either. Typed errors from the layers below ([`WriteError`], [`StoreError`]) become API
//! errors here and nowhere else.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::ops::WriteError;
use crate::store::StoreError;

/// A stable, machine-readable error code, serialised in snake case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON (a syntax error, trailing text, or an empty body).
    InvalidJson,
    /// The body could not be read from the connection.
    UnreadableBody,
    /// Valid JSON that does not fit the request: a missing, unknown or mistyped field.
    InvalidField,
    /// A query parameter that does not fit.
    InvalidQuery,
    /// An event batch that is neither `{"events": [...]}` nor an array.
    InvalidBody,
    /// A batch with more events than one request may carry.
    TooManyEvents,
    /// One event of a batch is invalid (its index and field are named).
    InvalidEvent,
    /// A project or environment key that is not a valid key.
    InvalidKey,
    /// A test name that is not a valid test name.
    InvalidTestName,
    /// A context schema that cannot be read.
    InvalidSchema,
    /// A promotion that does not go forward.
    InvalidPromotion,
    /// A bucket the test does not have.
    UnknownBucket,
    /// A matrix document that cannot be read at all.
    UnreadableMatrix,
    /// No credentials, or unknown or revoked ones.
    Unauthorized,
    /// Credentials without the needed role.
    Forbidden,
    /// No such resource, or no such endpoint.
    NotFound,
    /// The path does not take this method.
    MethodNotAllowed,
    /// The write was based on a revision (or schema version) that is no longer current.
    Conflict,
    /// A unique key is taken.
    AlreadyExists,
    /// The body is larger than the endpoint accepts.
    BodyTooLarge,
    /// The change would drop tests; `diagnostics` says which and why. Nothing changed.
    InvalidMatrix,
    /// The server failed; the cause is logged, not shown.
    Internal,
}

impl ErrorCode {
    /// Every code, for documentation and tests.
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnreadableBody,
        ErrorCode::InvalidField,
        ErrorCode::InvalidQuery,
        ErrorCode::InvalidBody,
        ErrorCode::TooManyEvents,
        ErrorCode::InvalidEvent,
        ErrorCode::InvalidKey,
        ErrorCode::InvalidTestName,
        ErrorCode::InvalidSchema,
        ErrorCode::InvalidPromotion,
        ErrorCode::UnknownBucket,
        ErrorCode::UnreadableMatrix,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Conflict,
        ErrorCode::AlreadyExists,
        ErrorCode::BodyTooLarge,
        ErrorCode::InvalidMatrix,
        ErrorCode::Internal,
    ];

    /// The HTTP status every error with this code answers with.
    pub fn status(self) -> StatusCode {
        use ErrorCode::*;
        match self {
            InvalidJson | UnreadableBody | InvalidField | InvalidQuery | InvalidBody | TooManyEvents | InvalidEvent
            | InvalidKey | InvalidTestName | InvalidSchema | InvalidPromotion | UnknownBucket | UnreadableMatrix => {
                StatusCode::BAD_REQUEST
            }
            Unauthorized => StatusCode::UNAUTHORIZED,
            Forbidden => StatusCode::FORBIDDEN,
            NotFound => StatusCode::NOT_FOUND,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Conflict | AlreadyExists => StatusCode::CONFLICT,
            BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            InvalidMatrix => StatusCode::UNPROCESSABLE_ENTITY,
            Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code as it is written on the wire (`invalid_json`).
    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            InvalidJson => "invalid_json",
            UnreadableBody => "unreadable_body",
            InvalidField => "invalid_field",
            InvalidQuery => "invalid_query",
            InvalidBody => "invalid_body",
            TooManyEvents => "too_many_events",
            InvalidEvent => "invalid_event",
            InvalidKey => "invalid_key",
            InvalidTestName => "invalid_test_name",
            InvalidSchema => "invalid_schema",
            InvalidPromotion => "invalid_promotion",
            UnknownBucket => "unknown_bucket",
            UnreadableMatrix => "unreadable_matrix",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotFound => "not_found",
            MethodNotAllowed => "method_not_allowed",
            Conflict => "conflict",
            AlreadyExists => "already_exists",
            BodyTooLarge => "body_too_large",
            InvalidMatrix => "invalid_matrix",
            Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An API error: a code (which implies the status), a sentence for people, and details.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence for people.
    pub message: String,
    /// Extra fields merged into the error object (`diagnostics`, `currentRevision`, `field`...).
    pub details: Map<String, Value>,
}

impl ApiError {
    /// An error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into(), details: Map::new() }
    }

    /// Adds a detail field.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ApiError {
        self.details.insert(key.to_string(), value.into());
        self
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.code.status()
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    /// 401: no or unknown credentials.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Unauthorized, message)
    }

    /// 403: credentials without the needed role.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    /// 500, logged; the message shown is generic.
    pub fn internal(error: impl std::fmt::Display) -> ApiError {
        tracing::error!("internal error: {error}");
        ApiError::new(ErrorCode::Internal, "internal server error")
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        ApiError::from(WriteError::from(e))
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Conflict { base, current, message, changes } => {
                let mut error = ApiError::new(ErrorCode::Conflict, message);
                if let Some(base) = base {
                    error = error.with("baseRevision", base.to_string());
                }
                if let Some(current) = current {
                    error = error.with("currentRevision", current.to_string());
                }
                if !changes.is_empty() {
                    error = error.with("changes", serde_json::to_value(&changes).unwrap_or(Value::Null));
                }
                error
            }
            WriteError::SchemaConflict { message, current } => {
                ApiError::new(ErrorCode::Conflict, message).with("currentSchemaVersion", current)
            }
            WriteError::Invalid { message, diagnostics } => ApiError::new(ErrorCode::InvalidMatrix, message)
                .with("diagnostics", Value::Array(diagnostics.iter().map(|d| d.to_json()).collect())),
            WriteError::SchemaInvalid { message, diagnostics } => {
                let per_environment: Map<String, Value> = diagnostics
                    .into_iter()
                    .map(|(env, ds)| (env, Value::Array(ds.iter().map(|d| d.to_json()).collect())))
                    .collect();
                ApiError::new(ErrorCode::InvalidMatrix, message).with("diagnostics", Value::Object(per_environment))
            }
            WriteError::Refused { code, message, at } => {
                let error = ApiError::new(code, message);
                match at {
                    Some((key, value)) => error.with(key, value),
                    None => error,
                }
            }
            WriteError::NotFound(message) => ApiError::not_found(message),
            WriteError::Duplicate(what) => ApiError::new(ErrorCode::AlreadyExists, format!("{what} already exists")),
            WriteError::Store(message) => ApiError::internal(message),
        }
    }
}

/// Why a request was refused, kept on the response for the request log (`metrics::track` logs
/// refused writes with it).
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The error code.
    pub code: &'static str,
    /// The sentence the caller got.
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let refusal = Refusal { code: self.code.as_str(), message: self.message.clone() };
        let mut error = Map::new();
        error.insert("code".into(), Value::from(self.code.as_str()));
        error.insert("message".into(), Value::from(self.message));
        error.extend(self.details);
        let mut response = (self.code.status(), axum::Json(json!({ "error": error }))).into_response();
        response.extensions_mut().insert(refusal);
        if self.code == ErrorCode::Unauthorized {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

/// A result whose error is an [`ApiError`].
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_serialises_as_its_wire_name() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), Value::from(code.as_str()));
        }
    }
}
