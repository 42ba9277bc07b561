//! The admin API (`/api/v1`, admin token): one module per resource. Handlers extract, call one
//! operation of [`crate::ops`], and render one of [`views`]; no handler writes to the store or
//! checks a role by hand (an extractor of [`crate::auth`] in the signature does).

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::ops::input::parse_revision;
use crate::registry::EnvSnapshot;
use crate::store::Revision;
use crate::AppState;
use crate::SharedState;
use utoipa_axum::router::OpenApiRouter;

pub mod environments;
pub mod events;
pub mod keys;
pub mod members;
pub mod metrics;
pub mod projects;
pub mod results;
pub mod revisions;
pub mod tests;
pub mod views;

/// Every admin route.
pub fn router() -> OpenApiRouter<SharedState> {
    OpenApiRouter::new()
        .merge(projects::router())
        .merge(environments::router())
        .merge(tests::router())
        .merge(revisions::router())
        .merge(keys::router())
        .merge(members::router())
        .merge(events::router())
        .merge(metrics::router())
        .merge(results::router())
}

/// A revision id given in a path or query parameter named `what`.
fn revision_param_named(text: &str, what: &str) -> ApiResult<i64> {
    parse_revision(text).ok_or_else(|| {
        ApiError::new(ErrorCode::InvalidField, format!("{what} must be a revision version such as \"12\""))
            .with("field", what)
    })
}

/// A stored revision of the snapshot's environment, named by its id as text.
async fn stored_revision(state: &AppState, snapshot: &EnvSnapshot, text: &str) -> ApiResult<Revision> {
    let id = revision_param_named(text, "revision")?;
    state
        .store
        .revision(id)
        .await?
        .filter(|r| r.meta.environment_id == snapshot.environment_id)
        .ok_or_else(|| ApiError::not_found(format!("revision {id} of environment '{}' not found", snapshot.environment_key)))
}
