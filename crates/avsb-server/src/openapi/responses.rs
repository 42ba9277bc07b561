//! Responses many operations share, registered once as components.

use utoipa::{IntoResponses, ToResponse};

use super::schemas;

/// No credentials, or unknown or revoked ones.
#[derive(ToResponse)]
#[response(description = r#"No credentials, or unknown or revoked ones. Codes: `unauthorized`."#, content_type = "application/json")]
pub struct Unauthorized(#[allow(dead_code)] schemas::ApiError);

/// The admin token has the `read` role; this needs `write`.
#[derive(ToResponse)]
#[response(description = r#"The admin token has the `read` role; this needs `write`. Codes: `forbidden`."#, content_type = "application/json")]
pub struct Forbidden(#[allow(dead_code)] schemas::ApiError);

/// The project or environment (or another named resource) does not exist.
#[derive(ToResponse)]
#[response(description = r#"The project or environment (or another named resource) does not exist. Codes: `not_found`."#, content_type = "application/json")]
pub struct NotFound(#[allow(dead_code)] schemas::ApiError);

/// The write was based on a revision that is no longer current, and what it changes changed since.
#[derive(ToResponse)]
#[response(description = r#"The write was based on a revision (`baseRevision`/`If-Match`) that is no longer current, and what it changes changed since: for an edit of tests (save, delete, kill, a rollback of one test, ranges, targets, promotion) a change to one of those tests, listed in `changes` with the revisions that made them; for a whole matrix or a rollback of the environment, any change. Also a stale `sourceRevision` of a promotion, or an environment that kept changing under the write. Nothing was changed; reload and retry. Codes: `conflict`."#, content_type = "application/json")]
pub struct Conflict(#[allow(dead_code)] schemas::ConflictError);

/// The request body exceeds the limit (32 MiB for admin writes by default, 1 MiB for event batches).
#[derive(ToResponse)]
#[response(description = r#"The request body exceeds the limit (for admin writes 32 MiB by default, `--max-admin-body-mib`; 1 MiB for event batches). Codes: `body_too_large`."#, content_type = "application/json")]
pub struct PayloadTooLarge(#[allow(dead_code)] schemas::ApiError);

/// The change would drop at least one test, a definition cannot be read, or a bucket `value` or range `bucketValue`/`length` is missing (diagnostic code `missing_field`); `diagnostics` says which and why.
#[derive(ToResponse)]
#[response(description = r#"The change would drop at least one test, a definition cannot be read, or a bucket `value` or range `bucketValue`/`length` is missing (diagnostic code `missing_field`); `diagnostics` says which and why. Nothing was changed. Codes: `invalid_matrix`."#, content_type = "application/json")]
pub struct Unprocessable(#[allow(dead_code)] schemas::UnprocessableError);

/// The database failed (logged; the message is generic).
#[derive(ToResponse)]
#[response(description = r#"The database failed (logged; the message is generic). Codes: `internal`."#, content_type = "application/json")]
pub struct InternalError(#[allow(dead_code)] schemas::ApiError);

/// Unknown or revoked SDK key in the Pipet root.
#[derive(ToResponse)]
#[response(description = r#"Unknown or revoked SDK key in the Pipet root."#, content_type = "application/json", example = json!({"data": {}, "meta": {"status": 401, "error": "Unknown or revoked SDK key in the Pipet root (PROCTOR_API_ROOT)."}}))]
pub struct PipetUnauthorized(#[allow(dead_code)] schemas::PipetError);

/// No SDK key, or an unknown or revoked one.
#[derive(ToResponse)]
#[response(description = r#"No SDK key, or an unknown or revoked one."#, content_type = "application/json", example = json!({"errorDetails": "unknown or revoked SDK key"}))]
pub struct OfrepUnauthorized(#[allow(dead_code)] schemas::OfrepErrorDetails);

/// The errors every write to a matrix may answer besides its own 400 and 404.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum WriteErrors {
    /// See [`Unauthorized`].
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    /// See [`Forbidden`].
    #[response(status = 403)]
    Forbidden(#[ref_response] Forbidden),
    /// See [`Conflict`].
    #[response(status = 409)]
    Conflict(#[ref_response] Conflict),
    /// See [`PayloadTooLarge`].
    #[response(status = 413)]
    PayloadTooLarge(#[ref_response] PayloadTooLarge),
    /// See [`Unprocessable`].
    #[response(status = 422)]
    Unprocessable(#[ref_response] Unprocessable),
    /// See [`InternalError`].
    #[response(status = 500)]
    InternalError(#[ref_response] InternalError),
}

/// The errors every admin read may answer besides its own 400 and 404.
#[derive(IntoResponses)]
#[allow(dead_code)]
pub enum ReadErrors {
    /// See [`Unauthorized`].
    #[response(status = 401)]
    Unauthorized(#[ref_response] Unauthorized),
    /// See [`InternalError`].
    #[response(status = 500)]
    InternalError(#[ref_response] InternalError),
}
