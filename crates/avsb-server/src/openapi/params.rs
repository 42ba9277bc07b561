//! Parameters many operations share.
#![allow(dead_code)] // These types exist to describe parameters; the handlers extract their own.

use serde::Deserialize;
use utoipa::IntoParams;

/// A project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct ProjectPath {
    /// The project key.
    #[param(example = "demo")]
    project: String,
}

/// An environment of a project.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct EnvironmentPath {
    /// The project key.
    #[param(example = "demo")]
    project: String,
    /// The environment key.
    #[param(example = "production")]
    environment: String,
}

/// A test of an environment.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TestPath {
    /// The project key.
    #[param(example = "demo")]
    project: String,
    /// The environment key.
    #[param(example = "production")]
    environment: String,
    /// The test name: 1 to 128 letters, digits, `_`, `-` or `.`.
    #[param(example = "checkout-v2")]
    test: String,
}

/// The revision a write is based on, as a header.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Header)]
pub struct IfMatch {
    /// The revision version the write is based on (`"41"`, as in a matrix `ETag`); used when the
    /// body has no `baseRevision`.
    #[serde(rename = "If-Match")]
    #[param(example = "\"41\"")]
    if_match: Option<String>,
}
