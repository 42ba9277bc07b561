//! The console's static assets, embedded in the binary: one stylesheet and one script, served
//! under a name that carries their digest, so browsers may cache them forever and a new build
//! is fetched at once.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("../../assets/console.css");
const JS: &str = include_str!("../../assets/console.js");

/// One embedded asset.
struct Asset {
    name: String,
    body: &'static str,
    content_type: &'static str,
}

fn fingerprinted(stem: &str, extension: &str, body: &'static str, content_type: &'static str) -> Asset {
    let digest = Sha256::digest(body.as_bytes());
    let short: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    Asset { name: format!("{stem}.{short}.{extension}"), body, content_type }
}

static ASSETS: LazyLock<[Asset; 2]> = LazyLock::new(|| {
    [
        fingerprinted("console", "css", CSS, "text/css; charset=utf-8"),
        fingerprinted("console", "js", JS, "text/javascript; charset=utf-8"),
    ]
});

/// The stylesheet's URL.
pub fn css_url() -> String {
    format!("/assets/{}", ASSETS[0].name)
}

/// The script's URL.
pub fn js_url() -> String {
    format!("/assets/{}", ASSETS[1].name)
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(asset) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            asset.body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no such asset").into_response(),
    }
}

/// Every asset's name and body (for the page-weight budget).
pub fn all() -> Vec<(String, &'static str)> {
    ASSETS.iter().map(|a| (a.name.clone(), a.body)).collect()
}
