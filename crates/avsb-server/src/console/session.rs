//! Signing in and out, the first owner's setup, password changes; the session cookie and the
//! CSRF checks every state-changing request of the console passes.
//!
//! The session cookie holds a 256-bit random id (the store keeps its digest): HttpOnly,
//! SameSite=Lax, `Secure` (and the `__Host-` prefix) when the server is configured so or the
//! request came over HTTPS through a proxy. Every POST carries the session's CSRF token (a form
//! field, or the `X-CSRF-Token` header from the script) and must come from our own origin. The
//! sign-in and setup forms, before any session, use a double-submit cookie instead.

use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{render, render_status, ConsoleError, Layout, PageResult};
use crate::ops::accounts::{self, SignInError};
use crate::ops::WriteError;
use crate::store::User;
use crate::SharedState;

const SESSION_COOKIE: &str = "avsb_session";
const SECURE_SESSION_COOKIE: &str = "__Host-avsb_session";
const FORM_COOKIE: &str = "avsb_form";
/// The largest console form accepted.
const MAX_FORM: usize = 4 * 1024 * 1024;

/// A user signed in to the console, with the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Signed {
    /// Who.
    pub user: User,
    /// The token state-changing requests of this session carry.
    pub csrf: String,
    id: String,
}

impl Signed {
    /// The principal the operations see.
    pub fn principal(&self) -> crate::auth::Principal {
        crate::auth::Principal::Session(self.user.clone())
    }
}

/// The value of a cookie of the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether cookies must be `Secure`: configured so, or the request came over HTTPS (as a proxy
/// says in `X-Forwarded-Proto`).
fn secure(state: &SharedState, headers: &HeaderMap) -> bool {
    state.options.secure_cookies
        || headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

fn set_cookie(response: &mut Response, value: String) {
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
}

fn session_cookie(secure: bool, id: &str, max_age: i64) -> String {
    let (name, flags) = if secure { (SECURE_SESSION_COOKIE, "; Secure") } else { (SESSION_COOKIE, "") };
    format!("{name}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{flags}")
}

impl FromRequestParts<SharedState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Self, Self::Rejection> {
        let next = parts.uri.path_and_query().map_or("/projects".to_string(), |p| p.as_str().to_string());
        let id = cookie(&parts.headers, SECURE_SESSION_COOKIE)
            .or_else(|| cookie(&parts.headers, SESSION_COOKIE))
            .ok_or(ConsoleError::SignIn(next.clone()))?
            .to_string();
        let record = accounts::session(&*state.store, &id).await?.ok_or(ConsoleError::SignIn(next))?;
        Ok(Signed { user: record.user, csrf: record.csrf, id })
    }
}

impl axum::extract::OptionalFromRequestParts<SharedState> for Signed {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, state: &SharedState) -> Result<Option<Self>, Self::Rejection> {
        match <Signed as FromRequestParts<SharedState>>::from_request_parts(parts, state).await {
            Ok(signed) => Ok(Some(signed)),
            Err(ConsoleError::SignIn(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }
}

/// Refuses a state-changing request from another origin: the `Origin` (or, without it, the
/// `Referer`) must name this host.
fn same_origin(headers: &HeaderMap) -> Result<(), ConsoleError> {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ConsoleError::BadForm("the request did not say where it came from (no Origin or Referer)".into()))?;
    let authority = from.split_once("://").map_or(from, |(_, rest)| rest).split('/').next().unwrap_or_default();
    if authority.is_empty() || !authority.eq_ignore_ascii_case(host) {
        return Err(ConsoleError::BadForm(format!("the form came from another site ({authority})")));
    }
    Ok(())
}

/// Compares two secrets in constant time.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The name-value pairs of a form, read from an urlencoded body.
fn pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// A POSTed console form from the signed-in user's own page: same origin, the session's CSRF
/// token (the `csrf` field or the `X-CSRF-Token` header). Its fields as name-value pairs.
#[derive(Debug, Clone)]
pub struct SignedForm {
    /// Who.
    pub signed: Signed,
    /// The fields, in order (repeated names kept).
    pub fields: Vec<(String, String)>,
}

impl SignedForm {
    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The first value of a field, or "".
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_string()
    }
}

impl FromRequest<SharedState> for SignedForm {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, state: &SharedState) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let signed = <Signed as FromRequestParts<SharedState>>::from_request_parts(&mut parts, state).await?;
        same_origin(&parts.headers)?;
        let bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| ConsoleError::BadForm("the form could not be read (too large?)".into()))?;
        let fields = pairs(&bytes);
        let header_token = parts.headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
        let field_token = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str());
        let token = field_token.or(header_token).unwrap_or_default();
        if !same_secret(token, &signed.csrf) {
            return Err(ConsoleError::BadForm(
                "the form's security token is missing or stale; go back, reload the page and try again".into(),
            ));
        }
        Ok(SignedForm { signed, fields })
    }
}

/// A form posted before any session (sign-in, setup): same origin and a double-submit token.
pub struct AnonymousForm {
    fields: Vec<(String, String)>,
    headers: HeaderMap,
    client: String,
}

impl AnonymousForm {
    fn text(&self, name: &str) -> String {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

impl FromRequest<SharedState> for AnonymousForm {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, _state: &SharedState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        same_origin(&parts.headers)?;
        let client = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map_or_else(|| "unknown".to_string(), |c| c.0.ip().to_string());
        let bytes = axum::body::to_bytes(body, MAX_FORM)
            .await
            .map_err(|_| ConsoleError::BadForm("the form could not be read (too large?)".into()))?;
        let fields = pairs(&bytes);
        let expected = cookie(&parts.headers, FORM_COOKIE).unwrap_or_default();
        let given = fields.iter().find(|(k, _)| k == "csrf").map_or("", |(_, v)| v.as_str());
        if expected.is_empty() || !same_secret(expected, given) {
            return Err(ConsoleError::BadForm("the form's security token is missing or stale; reload the page and try again".into()));
        }
        Ok(AnonymousForm { fields, headers: parts.headers, client })
    }
}

/// A fresh double-submit token and the cookie that carries it.
fn form_token(secure: bool) -> Result<(String, String), ConsoleError> {
    let token = accounts::random_password().map_err(|e| ConsoleError::Internal(e.to_string()))?;
    let flags = if secure { "; Secure" } else { "" };
    Ok((token.clone(), format!("{FORM_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{flags}")))
}

/// Where to go after signing in: a local path only (never another site).
fn local_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/projects".into(),
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    next: String,
    username: String,
    error: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// `GET /login`.
pub async fn login_page(State(state): State<SharedState>, headers: HeaderMap, Query(q): Query<NextQuery>) -> PageResult {
    let (token, cookie) = form_token(secure(&state, &headers))?;
    let page = LoginPage {
        layout: Layout::anonymous("Sign in", token),
        next: local_next(q.next.as_deref()),
        username: String::new(),
        error: None,
    };
    let mut response = render(&page)?;
    set_cookie(&mut response, cookie);
    Ok(response)
}

/// `POST /login`.
pub async fn login(State(state): State<SharedState>, form: AnonymousForm) -> PageResult {
    let (username, password) = (form.text("username").trim().to_string(), form.text("password"));
    let next = local_next(Some(&form.text("next")));
    let secure = secure(&state, &form.headers);
    let refuse = |message: String, status: StatusCode| -> PageResult {
        let (token, cookie) = form_token(secure)?;
        let page = LoginPage {
            layout: Layout::anonymous("Sign in", token).with_errors(true),
            next: next.clone(),
            username: username.clone(),
            error: Some(message),
        };
        let mut response = render_status(status, &page)?;
        set_cookie(&mut response, cookie);
        Ok(response)
    };
    if username.is_empty() || password.is_empty() {
        return refuse("Enter your username and password".into(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    match accounts::sign_in(&*state.store, &username, &password, &form.client).await {
        Ok(user) => {
            let (id, _) = accounts::start_session(&*state.store, &user).await?;
            let mut response = Redirect::to(&next).into_response();
            set_cookie(&mut response, session_cookie(secure, &id, accounts::SESSION_MAX_MILLIS / 1000));
            Ok(response)
        }
        Err(SignInError::Refused) => {
            refuse("The username or the password is not right".into(), StatusCode::UNPROCESSABLE_ENTITY)
        }
        Err(SignInError::Throttled(seconds)) => refuse(
            format!("Too many failed sign-ins: try again in {} minute(s)", (seconds + 59) / 60),
            StatusCode::TOO_MANY_REQUESTS,
        ),
        Err(SignInError::Store(e)) => Err(ConsoleError::Internal(e)),
    }
}

/// `POST /logout`.
pub async fn logout(State(state): State<SharedState>, form: SignedForm) -> PageResult {
    accounts::end_session(&*state.store, &form.signed.id).await?;
    let secure = secure(&state, &HeaderMap::new()) || state.options.secure_cookies;
    let mut response = Redirect::to("/login").into_response();
    set_cookie(&mut response, session_cookie(secure, "", 0));
    Ok(response)
}

#[derive(Template)]
#[template(path = "setup.html")]
struct SetupPage {
    layout: Layout,
    token: String,
    username: String,
    display_name: String,
    errors: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
pub struct SetupQuery {
    token: Option<String>,
}

/// `GET /setup?token=…`: the one-time page that creates the first owner.
pub async fn setup_page(State(state): State<SharedState>, headers: HeaderMap, Query(q): Query<SetupQuery>) -> PageResult {
    if state.store.user_count().await? > 0 {
        return Ok(Redirect::to("/login").into_response());
    }
    let (csrf, cookie) = form_token(secure(&state, &headers))?;
    let page = SetupPage {
        layout: Layout::anonymous("Set up A vs B", csrf),
        token: q.token.unwrap_or_default(),
        username: String::new(),
        display_name: String::new(),
        errors: Vec::new(),
    };
    let mut response = render(&page)?;
    set_cookie(&mut response, cookie);
    Ok(response)
}

/// `POST /setup`.
pub async fn setup(State(state): State<SharedState>, form: AnonymousForm) -> PageResult {
    let (username, display_name) = (form.text("username").trim().to_string(), form.text("display_name"));
    let (password, repeat) = (form.text("password"), form.text("password_again"));
    let secure = secure(&state, &form.headers);
    let mut errors = Vec::new();
    if password != repeat {
        errors.push(("password_again".to_string(), "The two passwords are not the same".to_string()));
    }
    if errors.is_empty() {
        match accounts::set_up(&*state.store, &form.text("token"), &username, &display_name, &password).await {
            Ok(user) => {
                let (id, _) = accounts::start_session(&*state.store, &user).await?;
                let mut response = Redirect::to("/projects").into_response();
                set_cookie(&mut response, session_cookie(secure, &id, accounts::SESSION_MAX_MILLIS / 1000));
                return Ok(response);
            }
            Err(WriteError::Refused { at: Some((_, field)), message, .. }) => errors.push((field, message)),
            Err(WriteError::Refused { message, .. }) => errors.push(("token".into(), message)),
            Err(other) => return Err(other.into()),
        }
    }
    let (csrf, cookie) = form_token(secure)?;
    let page = SetupPage {
        layout: Layout::anonymous("Set up A vs B", csrf).with_errors(true),
        token: form.text("token"),
        username,
        display_name,
        errors,
    };
    let mut response = render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)?;
    set_cookie(&mut response, cookie);
    Ok(response)
}

#[derive(Template)]
#[template(path = "password.html")]
struct PasswordPage {
    layout: Layout,
    errors: Vec<(String, String)>,
    done: bool,
}

/// `GET /account/password`.
pub async fn password_page(signed: Signed) -> PageResult {
    render(&PasswordPage { layout: Layout::new("Change your password", &signed), errors: Vec::new(), done: false })
}

/// `POST /account/password`: checks the current password; ends every session (this one too) and
/// signs in anew.
pub async fn change_password(State(state): State<SharedState>, headers: HeaderMap, form: SignedForm) -> PageResult {
    let (current, new, repeat) = (form.text("current_password"), form.text("new_password"), form.text("new_password_again"));
    let mut errors = Vec::new();
    if new != repeat {
        errors.push(("new_password_again".to_string(), "The two new passwords are not the same".to_string()));
    }
    if errors.is_empty() {
        match accounts::change_password(&*state.store, &form.signed.user, &current, &new).await {
            Ok(()) => {
                let (id, csrf) = accounts::start_session(&*state.store, &form.signed.user).await?;
                let signed = Signed { user: form.signed.user.clone(), csrf, id: id.clone() };
                let page = PasswordPage { layout: Layout::new("Change your password", &signed), errors: Vec::new(), done: true };
                let mut response = render(&page)?;
                set_cookie(&mut response, session_cookie(secure(&state, &headers), &id, accounts::SESSION_MAX_MILLIS / 1000));
                return Ok(response);
            }
            Err(WriteError::Refused { at: Some((_, field)), message, .. }) => {
                let field = match field.as_str() {
                    "currentPassword" => "current_password".to_string(),
                    "password" => "new_password".to_string(),
                    other => other.to_string(),
                };
                errors.push((field, message));
            }
            Err(other) => return Err(other.into()),
        }
    }
    let page = PasswordPage { layout: Layout::new("Change your password", &form.signed).with_errors(true), errors, done: false };
    render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
}
