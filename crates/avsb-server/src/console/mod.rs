//! The console: the web app where people see, change, promote and kill tests, served by the
//! server itself at `/`. Server-rendered HTML (askama templates, checked at build time), one
//! embedded stylesheet and one script (`assets`), SVG drawn on the server (`bars`). Every page
//! works without JavaScript; the script only improves.
//!
//! Every change goes through the same operations as the admin API (`crate::ops`): validated by
//! the engine, audited, concurrency-checked. A signed-in user is a [`crate::auth::Principal`]
//! with the same roles the API checks.

use askama::Template;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::ops::WriteError;
use crate::store::{ProjectRole, StoreError, User};
use crate::SharedState;

pub mod assets;
pub mod bars;
mod charts;
mod edit;
mod evaluate;
mod form;
mod format;
mod history;
mod metrics;
mod pages;
mod results;
mod session;
mod settings;
mod test_page;

pub use session::Signed;

/// The console's routes (HTML pages, not the API: they are not in the OpenAPI document).
pub fn router() -> Router<SharedState> {
    Router::new()
        .route("/", get(home))
        .route("/assets/{name}", get(assets::serve))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/setup", get(session::setup_page).post(session::setup))
        .route("/account/password", get(session::password_page).post(session::change_password))
        .route("/projects", get(pages::projects).post(pages::create_project))
        .route("/projects/{project}", get(pages::tests))
        .route("/projects/{project}/tests/{test}", get(test_page::show))
        .route("/projects/{project}/tests/{test}/results", get(results::show))
        .route("/projects/{project}/new", get(edit::new_page).post(edit::new_submit))
        .route("/projects/{project}/tests/{test}/edit", get(edit::edit_page).post(edit::edit_submit))
        .route("/projects/{project}/tests/{test}/check", post(edit::check))
        .route("/projects/{project}/tests/{test}/review", post(edit::review))
        .route("/projects/{project}/tests/{test}/kill", get(edit::kill_page).post(edit::kill_review))
        .route("/projects/{project}/tests/{test}/rollback", get(edit::rollback_page).post(edit::rollback_review))
        .route("/projects/{project}/promote", get(edit::promote_page).post(edit::promote_review))
        .route("/projects/{project}/save", post(edit::save))
        .route("/projects/{project}/revisions/{revision}/rollback", post(edit::rollback_environment_review))
        .route("/projects/{project}/evaluate", get(evaluate::evaluate))
        .route("/projects/{project}/history", get(history::history))
        .route("/projects/{project}/metrics", get(metrics::list).post(metrics::create))
        .route("/projects/{project}/metrics/new", get(metrics::new_page))
        .route("/projects/{project}/metrics/{metric}/edit", get(metrics::edit_page).post(metrics::update))
        .route("/projects/{project}/metrics/{metric}/delete", get(metrics::delete_page).post(metrics::delete))
        .route("/projects/{project}/revisions/{revision}", get(history::revision))
        .route("/projects/{project}/settings", get(settings_home))
        .route("/projects/{project}/settings/environments", get(settings::environments_show))
        .route("/projects/{project}/settings/environments/{env}/keys", post(settings::create_key))
        .route("/projects/{project}/settings/environments/{env}/keys/{id}/revoke", get(settings::revoke_key_page).post(settings::revoke_key))
        .route("/projects/{project}/settings/environments/{env}/protection", post(settings::protection))
        .route("/projects/{project}/settings/schema", get(settings::schema_show).post(settings::schema_save))
        .route("/projects/{project}/settings/members", get(settings::members_show).post(settings::members_save))
        .route("/projects/{project}/settings/tokens", get(settings::tokens_show).post(settings::create_token))
        .route("/projects/{project}/settings/tokens/{id}/revoke", get(settings::revoke_token_page).post(settings::revoke_token))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn home(signed: Option<Signed>) -> Redirect {
    match signed {
        Some(_) => Redirect::to("/projects"),
        None => Redirect::to("/login"),
    }
}

async fn settings_home(axum::extract::Path(project): axum::extract::Path<String>) -> Redirect {
    Redirect::to(&format!("/projects/{}/settings/environments", format::url_component(&project)))
}

/// The content security policy: only our own script and stylesheet, no inline script or style
/// attribute, no framing, forms only to ourselves.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every console answer.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// What every page's frame needs: the title, who is signed in, the project being looked at.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// The page title (without the site name); prefixed "Error: " when the page shows errors.
    pub title: String,
    /// The signed-in user's display name and whether they are an owner.
    pub user: Option<(String, bool)>,
    /// The session's CSRF token (forms carry it; the script sends it as a header).
    pub csrf: String,
    /// The project's key, when the page is about one.
    pub project: Option<String>,
    /// The project's name.
    pub project_name: Option<String>,
    /// Which project tab is current: `tests`, `metrics`, `evaluate`, `history`, `settings`.
    pub section: &'static str,
    /// The stylesheet's URL.
    pub css: String,
    /// The script's URL.
    pub js: String,
}

impl Layout {
    /// A page's frame for a signed-in user.
    pub fn new(title: impl Into<String>, signed: &Signed) -> Layout {
        Layout {
            title: title.into(),
            user: Some((signed.user.display_name.clone(), signed.user.is_owner)),
            csrf: signed.csrf.clone(),
            css: assets::css_url(),
            js: assets::js_url(),
            ..Layout::default()
        }
    }

    /// The frame of a page nobody is signed in to (sign-in, setup).
    pub fn anonymous(title: impl Into<String>, csrf: String) -> Layout {
        Layout { title: title.into(), csrf, css: assets::css_url(), js: assets::js_url(), ..Layout::default() }
    }

    /// The same frame, inside a project and one of its sections.
    pub fn in_project(mut self, project: &crate::store::Project, section: &'static str) -> Layout {
        self.project = Some(project.key.clone());
        self.project_name = Some(project.name.clone());
        self.section = section;
        self
    }

    /// Marks the page as showing errors (GOV.UK: the title starts with "Error: ").
    pub fn with_errors(mut self, errors: bool) -> Layout {
        if errors && !self.title.starts_with("Error: ") {
            self.title = format!("Error: {}", self.title);
        }
        self
    }
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum ConsoleError {
    /// Nobody is signed in: go to the sign-in page, then back to `next`.
    SignIn(String),
    /// No such thing, or one the user may not see.
    NotFound(String),
    /// The user may see it but not do this.
    Forbidden(String),
    /// The form did not come from one of our pages (no or a wrong CSRF token, another origin).
    BadForm(String),
    /// The server failed (logged; the page says so without details).
    Internal(String),
}

impl From<StoreError> for ConsoleError {
    fn from(e: StoreError) -> Self {
        ConsoleError::Internal(e.to_string())
    }
}

impl From<WriteError> for ConsoleError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::NotFound(m) => ConsoleError::NotFound(m),
            WriteError::Refused { code: crate::error::ErrorCode::Forbidden, message, .. } => ConsoleError::Forbidden(message),
            other => ConsoleError::Internal(other.to_string()),
        }
    }
}

impl From<askama::Error> for ConsoleError {
    fn from(e: askama::Error) -> Self {
        ConsoleError::Internal(format!("a template failed: {e}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let (status, heading, message) = match self {
            ConsoleError::SignIn(next) => {
                let target = format!("/login?next={}", format::url_component(&next));
                return Redirect::to(&target).into_response();
            }
            ConsoleError::NotFound(m) => (StatusCode::NOT_FOUND, "Page not found", m),
            ConsoleError::Forbidden(m) => (StatusCode::FORBIDDEN, "You may not do this", m),
            ConsoleError::BadForm(m) => (StatusCode::FORBIDDEN, "This form has expired", m),
            ConsoleError::Internal(m) => {
                tracing::error!("console: {m}");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong", "The server failed; the cause is in its log.".into())
            }
        };
        let page = ErrorPage { layout: Layout::anonymous(heading, String::new()), heading: heading.into(), message };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, heading).into_response(),
        }
    }
}

/// A page's result.
pub type PageResult = Result<Response, ConsoleError>;

/// Renders a template as a page.
pub fn render(template: &impl Template) -> PageResult {
    Ok(Html(template.render()?).into_response())
}

/// Renders a template as a page with a status (a form with errors is 422, so tests and tools
/// can tell it from a success).
pub fn render_status(status: StatusCode, template: &impl Template) -> PageResult {
    Ok((status, Html(template.render()?)).into_response())
}

/// The message of a form's field among its errors (field id, message), if it has one.
pub fn field_error<'a>(errors: &'a [(String, String)], field: &str) -> Option<&'a str> {
    errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
}

/// Whether a role may do what needs `needed`.
pub fn allows(role: ProjectRole, needed: ProjectRole) -> bool {
    role >= needed
}

/// A signed-in user's display name for an author column: the username recorded on revisions.
pub fn user_label(user: &User) -> String {
    user.username.clone()
}
