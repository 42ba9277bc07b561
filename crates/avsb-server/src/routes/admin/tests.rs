//! `/api/v1/projects/{project}/environments/{environment}/tests/{test}`: one test at a time
//! (read, save, delete, kill, roll back, ranges, targets), promotion of tests to a later
//! environment, and the preview of any edit.

use avsb_core::MatrixDocument;
use axum::extract::{Path, State};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::environments::RevisionQuery;
use super::views::CommittedView;
use crate::auth::{Editor, Viewer};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiQuery, BaseRevision, Based, HasBaseRevision};
use crate::openapi::{params, responses, schemas};
use crate::ops::edit::{BucketRef, MatrixEdit};
use crate::ops::input::{ranges_of, read_definition, targets_of, EditRequest, RangeInput, RevisionId, TargetInput};
use crate::ops::preview::Preview;
use crate::ops::WriteMeta;
use crate::SharedState;

/// The test routes.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .routes(routes!(get_test, put_test, delete_test))
        .routes(routes!(kill))
        .routes(routes!(rollback_test))
        .routes(routes!(set_ranges))
        .routes(routes!(set_targets))
        .routes(routes!(promote))
        .routes(routes!(preview))
}

/// Implements [`HasBaseRevision`] for request bodies with a `base_revision` field.
macro_rules! based {
    ($($t:ty),*) => {
        $(impl HasBaseRevision for $t {
            fn base_revision(&self) -> Option<i64> {
                self.base_revision.map(|r| r.0)
            }
        })*
    };
}
based!(PutTest, Kill, RollbackTest, SetRanges, SetTargets, Promote, PreviewRequest);

async fn commit(
    state: &SharedState,
    access: &Editor,
    environment: &str,
    edit: MatrixEdit,
    base: Option<i64>,
    comment: Option<String>,
) -> ApiResult<Json<CommittedView>> {
    let project = &access.project.key;
    let meta = WriteMeta { base, author: access.author(), comment, role: access.role };
    let committed = state.write(project, environment, &edit, meta).await?;
    Ok(Json(CommittedView::from(&committed)))
}

#[utoipa::path(
    get,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}",
    tag = "admin",
    operation_id = "getTest",
    summary = r#"Get one test definition"#,
    description = r#"The test's `ConsumableTestDefinition` in the current revision, or in `revision`."#,
    params(
        params::TestPath,
        ("revision" = Option<String>, Query, description = r#"A revision version of this environment; default: the current one."#, example = json!("41"))
    ),
    responses(
        (status = 200, description = r#"The test definition."#, body = schemas::ConsumableTestDefinition, content_type = "application/json"),
        (status = 400, description = r#"`revision` is not a revision version (`invalid_field`). A query string that does not fit (a non-numeric number, a repeated parameter, a missing required or an unknown parameter) is `invalid_query`. Codes: `invalid_field`, `invalid_query`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::ReadErrors,
        (status = 404, description = r#"The environment, the revision or the test does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json")
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn get_test(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment, test)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<RevisionQuery>,
) -> ApiResult<Json<Value>> {
    let snapshot = state.current(&project, &environment)?;
    let definition = match &query.revision {
        None => snapshot.matrix.definition(&test).map(|d| d.to_json(false)),
        Some(text) => {
            let revision = super::stored_revision(&state, &snapshot, text).await?;
            let (matrix, _) = MatrixDocument::from_json(&revision.matrix_json).map_err(ApiError::internal)?;
            matrix.tests.get(&test).map(|d| d.to_json(false))
        }
    };
    definition
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("test '{test}' not found in environment '{environment}'")))
}

/// A test's new definition.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PutTest {
    /// The definition: consumable (as in a matrix) or Proctor's stored `definition.json` form.
    #[schema(value_type = schemas::ConsumableTestDefinition)]
    definition: Value,
    /// `consumable` or `stored`; default: `stored` if the definition has `specialConstants`.
    format: Option<String>,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// The revision the edit was based on: a change to this test since conflicts.
    base_revision: Option<RevisionId>,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}",
    tag = "admin",
    operation_id = "putTest",
    summary = r#"Create or replace one test"#,
    description = r#"Saves one test; it gets the new revision's version. `definition` is the consumable form (as in a matrix), or Proctor's stored `definition.json` form when `format` is `stored` or the definition has `specialConstants`. Every bucket needs its `value` and every range its `bucketValue` and `length`: a missing one answers 422 with diagnostics of code `missing_field`. The write is based on `baseRevision` (body) or `If-Match` (header) when given: a stale base answers 409 and changes nothing. The new matrix is validated first: a change that would drop a test answers 422 with the diagnostics and changes nothing."#,
    params(
        params::IfMatch,
        params::TestPath
    ),
    request_body(content = PutTest, content_type = "application/json", example = json!({"definition": {"testType": "USER", "salt": "checkout-v2", "buckets": [{"name": "control", "value": 0}, {"name": "new", "value": 1}], "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}]}, "comment": "50/50", "baseRevision": "41"})),
    responses(
        (status = 200, description = r#"The change is committed as a new revision and served at once."#, body = CommittedView, content_type = "application/json"),
        (status = 400, description = r#"A malformed test name in the path (`invalid_test_name`, checked first), or a malformed request: `definition` not an object, an unknown `format`, a malformed `baseRevision`/`If-Match` (`invalid_field`). A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_test_name`, `invalid_json`, `unreadable_body`, `invalid_field`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::WriteErrors,
        (status = 404, response = responses::NotFound)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn put_test(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, environment, test)): Path<(String, String, String)>,
    Based { body: request, base }: Based<PutTest>,
) -> ApiResult<Json<CommittedView>> {
    crate::ops::check_test_name(&test)?;
    let definition = read_definition(&test, &request.definition, request.format.as_deref())?;
    commit(&state, &access, &environment, MatrixEdit::PutTest { test, definition: Box::new(definition) }, base, request.comment).await
}

/// `?comment=` and `?baseRevision=` of a delete.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeleteQuery {
    comment: Option<String>,
    #[allow(dead_code)] // read by the `BaseRevision` extractor; listed so it is not refused as unknown
    base_revision: Option<String>,
}

#[utoipa::path(
    delete,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}",
    tag = "admin",
    operation_id = "deleteTest",
    summary = r#"Delete one test"#,
    description = r#"Removes the test as a new revision. Deleting a test others depend on drops them, so it answers 422. A stale `baseRevision`/`If-Match` answers 409."#,
    params(
        params::IfMatch,
        params::TestPath,
        ("comment" = Option<String>, Query, description = r#"Recorded in the revision's audit."#),
        ("baseRevision" = Option<String>, Query, description = r#"The revision the deletion is based on (409 if another is current)."#, example = json!("41"))
    ),
    responses(
        (status = 200, description = r#"The change is committed as a new revision and served at once."#, body = CommittedView, content_type = "application/json"),
        (status = 400, description = r#"`baseRevision` or `If-Match` is not a revision version (`invalid_field`). A query string that does not fit (a non-numeric number, a repeated parameter, a missing required or an unknown parameter) is `invalid_query`. Codes: `invalid_field`, `invalid_query`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = r#"The project, the environment or the test does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json"),
        (status = 409, response = responses::Conflict),
        (status = 422, response = responses::Unprocessable),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn delete_test(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, environment, test)): Path<(String, String, String)>,
    ApiQuery(query): ApiQuery<DeleteQuery>,
    BaseRevision(base): BaseRevision,
) -> ApiResult<Json<CommittedView>> {
    commit(&state, &access, &environment, MatrixEdit::DeleteTest { test }, base, query.comment).await
}

/// The kill switch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Kill {
    /// The bucket to serve: its name, or its value.
    bucket: BucketRef,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// The revision the kill was based on: a change to this test since conflicts.
    base_revision: Option<RevisionId>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}/kill",
    tag = "admin",
    operation_id = "killTest",
    summary = r#"Kill switch: serve one bucket to everyone"#,
    description = r#"Rewrites the test so everyone with an identifier of its type gets `bucket`: no eligibility rule, no `dependsOn`, no `targets`, one allocation of the whole range. A stale `baseRevision`/`If-Match` answers 409."#,
    params(
        params::IfMatch,
        params::TestPath
    ),
    request_body(content = Kill, content_type = "application/json", example = json!({"bucket": "control", "comment": "conversion dropped"})),
    responses(
        (status = 200, description = r#"The change is committed as a new revision and served at once."#, body = CommittedView, content_type = "application/json"),
        (status = 400, description = r#"Malformed request, or the test has no such bucket (`unknown_bucket` lists its buckets). A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`, `unknown_bucket`."#, body = schemas::BadRequestError, content_type = "application/json"),
        (status = 401, response = responses::Unauthorized),
        (status = 403, response = responses::Forbidden),
        (status = 404, description = r#"The project, the environment or the test does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json"),
        (status = 409, response = responses::Conflict),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn kill(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, environment, test)): Path<(String, String, String)>,
    Based { body: request, base }: Based<Kill>,
) -> ApiResult<Json<CommittedView>> {
    let edit = MatrixEdit::Kill { test, bucket: request.bucket };
    commit(&state, &access, &environment, edit, base, request.comment).await
}

/// Roll one test back.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RollbackTest {
    /// The earlier revision of this environment to restore the test from; a test that did not
    /// exist then is removed.
    revision: RevisionId,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// The revision the rollback was based on: a change to this test since conflicts.
    base_revision: Option<RevisionId>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}/rollback",
    tag = "admin",
    operation_id = "rollbackTest",
    summary = "Roll one test back to an earlier revision",
    description = "Restores the test's definition (and its version) as it was at `revision` of this environment, leaving every other test as it is; a test that did not exist at that revision is removed. The change is a new revision of kind `rollback`. With `baseRevision`/`If-Match`, only a change to this test since the base conflicts.",
    params(
        params::IfMatch,
        params::TestPath
    ),
    request_body(content = RollbackTest, content_type = "application/json", example = json!({"revision": "41", "comment": "back to 10%"})),
    responses(
        (status = 200, description = "The change is committed as a new revision and served at once.", body = CommittedView),
        (status = 400, description = "Malformed request. Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        responses::WriteErrors,
        (status = 404, description = "The project, the environment or the revision does not exist, or the test is neither in that revision nor now. Codes: `not_found`.", body = schemas::ApiError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn rollback_test(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, environment, test)): Path<(String, String, String)>,
    Based { body: request, base }: Based<RollbackTest>,
) -> ApiResult<Json<CommittedView>> {
    let edit = MatrixEdit::RollbackTest { test, revision: request.revision.0 };
    commit(&state, &access, &environment, edit, base, request.comment).await
}

/// One allocation's new ranges.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetRanges {
    /// The ranges, in hash order; their lengths sum to 1.
    ranges: Vec<RangeInput>,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// The revision the change was based on: a change to this test since conflicts.
    base_revision: Option<RevisionId>,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}/allocations/{allocation}/ranges",
    tag = "admin",
    operation_id = "setRanges",
    summary = "Set one allocation's ranges (a rollout or a split)",
    description = "Replaces the ranges of allocation `allocation` (0 is the first) and nothing else. See `POST .../preview` with `{\"kind\": \"setRanges\"}` for the exact share of units that would change bucket. With `baseRevision`/`If-Match`, only a change to this test since the base conflicts.",
    params(
        params::IfMatch,
        params::TestPath,
        ("allocation" = usize, Path, description = "The allocation's index, 0 for the first.", example = 0)
    ),
    request_body(content = SetRanges, content_type = "application/json", example = json!({"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}], "comment": "50% rollout"})),
    responses(
        (status = 200, description = "The change is committed as a new revision and served at once.", body = CommittedView),
        (status = 400, description = "Malformed request, or the test has no such allocation (`invalid_field` with `field` `allocation`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        responses::WriteErrors,
        (status = 404, description = "The project, the environment or the test does not exist. Codes: `not_found`.", body = schemas::ApiError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn set_ranges(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, environment, test, allocation)): Path<(String, String, String, String)>,
    Based { body: request, base }: Based<SetRanges>,
) -> ApiResult<Json<CommittedView>> {
    let allocation = allocation.parse::<usize>().map_err(|_| {
        ApiError::new(crate::error::ErrorCode::InvalidField, format!("allocation must be an index such as 0, not '{allocation}'"))
            .with("field", "allocation")
    })?;
    let edit = MatrixEdit::SetRanges { test, allocation, ranges: ranges_of(&request.ranges) };
    commit(&state, &access, &environment, edit, base, request.comment).await
}

/// A test's new targets.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SetTargets {
    /// Identifiers that always get a bucket; the first target naming an identifier wins.
    targets: Vec<TargetInput>,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// The revision the change was based on: a change to this test since conflicts.
    base_revision: Option<RevisionId>,
}

#[utoipa::path(
    put,
    path = "/api/v1/projects/{project}/environments/{environment}/tests/{test}/targets",
    tag = "admin",
    operation_id = "setTargets",
    summary = "Set a test's targets",
    description = "Replaces the test's targets: lists of identifiers (of the test's identifier type) that always get one bucket, before any rule or range. An empty list removes them. With `baseRevision`/`If-Match`, only a change to this test since the base conflicts.",
    params(
        params::IfMatch,
        params::TestPath
    ),
    request_body(content = SetTargets, content_type = "application/json", example = json!({"targets": [{"bucketValue": 1, "identifiers": ["u_1", "u_2"]}]})),
    responses(
        (status = 200, description = "The change is committed as a new revision and served at once.", body = CommittedView),
        (status = 400, description = "Malformed request. Codes: `invalid_json`, `unreadable_body`, `invalid_field`.", body = schemas::BadRequestError),
        responses::WriteErrors,
        (status = 404, description = "The project, the environment or the test does not exist. Codes: `not_found`.", body = schemas::ApiError)
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn set_targets(
    State(state): State<SharedState>,
    access: Editor,
    Path((_project, environment, test)): Path<(String, String, String)>,
    Based { body: request, base }: Based<SetTargets>,
) -> ApiResult<Json<CommittedView>> {
    let edit = MatrixEdit::SetTargets { test, targets: targets_of(request.targets) };
    commit(&state, &access, &environment, edit, base, request.comment).await
}

/// A promotion.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Promote {
    /// The source environment key.
    from: String,
    /// The target environment key (later in promotion order).
    to: String,
    /// The tests to copy.
    tests: Vec<String>,
    /// Recorded in the revision's audit.
    comment: Option<String>,
    /// Guards the target environment: a change there to one of the tests since conflicts.
    base_revision: Option<RevisionId>,
    /// Guards the source environment: any change there since conflicts.
    source_revision: Option<RevisionId>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/promote",
    tag = "admin",
    operation_id = "promoteTests",
    summary = r#"Promote tests to a later environment"#,
    description = r#"Copies the named tests from `from`'s current matrix into `to`, which must come later in promotion order; each copied test keeps its own `version` (the revision its definition was made at), as Proctor's promotion does. `baseRevision`/`If-Match` guard `to`; `sourceRevision` guards `from` (409 with `environment`). A promotion that would drop a test in `to` (e.g. a missing `dependsOn` parent) answers 422."#,
    params(
        params::IfMatch,
        params::ProjectPath
    ),
    request_body(content = Promote, content_type = "application/json", example = json!({"from": "staging", "to": "production", "tests": ["checkout-v2"], "sourceRevision": "41"})),
    responses(
        (status = 200, description = r#"The change is committed as a new revision and served at once."#, body = CommittedView, content_type = "application/json"),
        (status = 400, description = r#"Malformed request, no tests named or a malformed `baseRevision`/`sourceRevision`/`If-Match` (`invalid_field`), or `from` does not come before `to` (`invalid_promotion`). A body that is not JSON (a syntax error, trailing text, or an empty body) is `invalid_json`. Valid JSON that does not fit the request is `invalid_field`: an unknown field or a value of the wrong type answers `the request body does not fit at '<field>': ...` with `field` naming where (`bogus`, `environments[0]`, `comment`); a missing required field answers `the request body does not fit: missing field ...` (no `field`); an array, string, number or null where an object is expected answers `invalid type: the request body must be a JSON object, not an array` (no `field`). Codes: `invalid_json`, `unreadable_body`, `invalid_field`, `invalid_promotion`."#, body = schemas::BadRequestError, content_type = "application/json"),
        responses::WriteErrors,
        (status = 404, description = r#"The project, an environment, or a named test in `from` does not exist. Codes: `not_found`."#, body = schemas::ApiError, content_type = "application/json")
    ),
    security(("adminToken" = ["write"]), ("adminApiKey" = ["write"]))
)]
async fn promote(
    State(state): State<SharedState>,
    access: Editor,
    Based { body: request, base }: Based<Promote>,
) -> ApiResult<Json<CommittedView>> {
    let edit = MatrixEdit::Promote {
        from: request.from,
        tests: request.tests,
        source_revision: request.source_revision.map(|r| r.0),
    };
    commit(&state, &access, &request.to, edit, base, request.comment).await
}

/// An edit to preview.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PreviewRequest {
    /// The edit, as the write endpoints take it, named by `kind`.
    edit: EditRequest,
    /// The revision the edit is based on: a stale one conflicts exactly as the write would.
    base_revision: Option<RevisionId>,
}

#[utoipa::path(
    post,
    path = "/api/v1/projects/{project}/environments/{environment}/preview",
    tag = "admin",
    operation_id = "previewEdit",
    summary = "Preview an edit: the diff, the engine's verdict and who would change bucket",
    description = "Applies the edit to a copy of the environment's current matrix, as the write would, and changes nothing. The answer has the engine's diagnostics (`valid` is false if the write would be refused with 422), and per changed test the fields that differ and, per allocation, the share of units that would get another bucket: exact when the allocation serves the same units with the same salt (counted on the hash cutoffs evaluation uses), expected when everyone is hashed anew (a new salt), absent when it depends on traffic (a changed rule). Send `baseRevision` from the answer with the write to commit exactly what was previewed. Needs only the read role.",
    params(
        params::IfMatch,
        params::EnvironmentPath
    ),
    request_body(content = PreviewRequest, content_type = "application/json", example = json!({"edit": {"kind": "setRanges", "test": "checkout-v2", "allocation": 0, "ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}})),
    responses(
        (status = 200, description = "What the edit would do.", body = Preview),
        (status = 400, description = "Malformed request: an unknown `kind`, a field of the wrong type, a definition that is not an object, an unknown bucket for a kill, a promotion backwards. Codes: `invalid_json`, `unreadable_body`, `invalid_field`, `invalid_test_name`, `unknown_bucket`, `invalid_promotion`, `unreadable_matrix`.", body = schemas::BadRequestError),
        (status = 401, response = responses::Unauthorized),
        (status = 404, description = "The project, the environment, the test or the revision does not exist. Codes: `not_found`.", body = schemas::ApiError),
        (status = 409, response = responses::Conflict),
        (status = 413, response = responses::PayloadTooLarge),
        (status = 422, description = "A definition in the edit cannot be read at all (a missing bucket value, range value or length). Codes: `invalid_matrix`.", body = schemas::UnprocessableError),
        (status = 500, response = responses::InternalError)
    ),
    security(("adminToken" = []), ("adminApiKey" = []))
)]
async fn preview(
    State(state): State<SharedState>,
    _access: Viewer,
    Path((project, environment)): Path<(String, String)>,
    Based { body: request, base }: Based<PreviewRequest>,
) -> ApiResult<Json<Preview>> {
    let edit = request.edit.into_edit()?;
    Ok(Json(state.preview(&project, &environment, &edit, base).await?))
}
