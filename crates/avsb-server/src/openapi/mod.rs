//! The OpenAPI 3.1 document, generated: every operation comes from its handler's
//! `#[utoipa::path]` (collected by [`crate::routes::documented`]), every schema from a Rust type
//! (the server's own request and answer types, or [`schemas`] for documents it handles as JSON
//! text), and this module adds what belongs to the whole API: its description, tags, security
//! schemes and shared responses.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

pub mod params;
pub mod responses;
pub mod schemas;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "A vs B",
        description = r#"Audiences: the admin API (`/api/v1`, admin token), the Pipet-compatible API (`/pipet/{sdk_key}`), OFREP (`/ofrep/v1`), the SDK datafile, stream and events (`/sdk/v1`), and operations. Admin, SDK and event errors are `{"error": {"code", "message", ...}}`; Pipet and OFREP answer in their own formats. A path no route matches answers 404 in the API error shape (`not_found`), and a method a path does not take answers 405 in the API error shape (`method_not_allowed`), OFREP paths included; under `/pipet/{sdk_key}/` both answer in Pipet's envelope instead, after the key check (an unknown or revoked key is Pipet's 401 whatever the path or method). `HEAD` is answered wherever `GET` is."#,
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "admin", description = r#"Projects, environments, schemas, matrices, tests, revisions, promotion, kill switch, SDK keys and stored events. Every matrix write is validated and audited as a new revision."#),
        (name = "pipet", description = r#"Proctor Pipet's REST API (docs/proctor.md §6), one per environment, with the SDK key in the path. Any other path under `/pipet/{sdk_key}/` (including `/pipet/{sdk_key}` itself) answers Pipet's 404 envelope (`No Pipet endpoint '/<path>'.`), and a method a route does not take Pipet's 405 envelope (`Request method '<METHOD>' not supported`); both after the key check, so an unknown or revoked key is a 401 envelope first."#),
        (name = "ofrep", description = r#"The OpenFeature Remote Evaluation Protocol: single and bulk evaluation."#),
        (name = "sdk", description = r#"What SDKs that evaluate locally read: the datafile (with ETag) and its change stream."#),
        (name = "events", description = r#"Exposure and track events from SDKs."#),
        (name = "results", description = r#"Metrics and experiment results: per variant, units and each metric's sufficient statistics, lift with its interval, p-value or chance to win, and the sample-ratio check."#),
        (name = "ops", description = r#"Health, metrics and this document. No credentials."#)
    ),
    components(schemas(schemas::ConflictError, schemas::OfrepErrorDetails), responses(responses::Unauthorized, responses::Forbidden, responses::NotFound, responses::Conflict, responses::PayloadTooLarge, responses::Unprocessable, responses::InternalError, responses::PipetUnauthorized, responses::OfrepUnauthorized)),
    modifiers(&SecuritySchemes)
)]
struct Base;

/// The security schemes the operations name.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        for (name, scheme) in [
            ("adminToken", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(r#"An admin token (`adm-...`, made with `avsb token create`). Role `read` may call every GET; writes need role `write` (403 otherwise). The `Bearer ` prefix may be left out."#)).build())),
            ("adminApiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description("X-API-Key", r#"An admin token in `X-API-Key` (used only when `Authorization` is absent)."#)))),
            ("sdkKey", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).description(Some(r#"A server SDK key (`sdk-...`); it names the environment read."#)).build())),
            ("sdkApiKey", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description("X-API-Key", r#"A server SDK key in `X-API-Key` (used only when `Authorization` is absent)."#)))),
        ] {
            components.add_security_scheme(name, scheme);
        }
    }
}

/// The document before the operations are added.
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

/// The whole document as JSON text, as served: made once, from the routes.
pub fn document() -> &'static str {
    static DOCUMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        let (_, openapi) = crate::routes::router();
        openapi.to_pretty_json().unwrap_or_else(|e| {
            tracing::error!("the OpenAPI document does not serialise: {e}");
            "{}".into()
        })
    });
    &DOCUMENT
}
