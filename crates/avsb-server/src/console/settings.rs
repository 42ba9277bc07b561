//! A project's settings: its environments (protection, server SDK keys: created and shown once,
//! revoked with the key's name typed), its schema (context variables and identifier types,
//! validated against every environment's tests before it is saved), its members and their
//! roles, and its service-account admin tokens. Every change goes through `crate::ops` and is
//! recorded in the audit log.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};

use super::format::{ago, url_component};
use super::pages::{environments, project_access};
use super::session::SignedForm;
use super::{render, render_status, ConsoleError, Layout, PageResult, Signed};
use crate::ops::keys::{create_admin_token, revoke_admin_token, TokenScope};
use crate::ops::WriteError;
use crate::store::{now_millis, Project, ProjectRole, Role, TokenOwner};
use crate::SharedState;

/// The project, checked: the user may see it, and may change settings when `write`.
async fn settings_access(state: &SharedState, signed: &Signed, key: &str, write: bool) -> Result<(Project, ProjectRole), ConsoleError> {
    let (project, role) = project_access(state, signed, key).await?;
    if write && role < ProjectRole::Admin {
        return Err(ConsoleError::Forbidden(format!(
            "Only the admins of project '{}' may change its settings; you are a {}.",
            project.key,
            role.as_str()
        )));
    }
    Ok((project, role))
}

fn settings_url(project: &str, tab: &str) -> String {
    format!("/projects/{}/settings/{tab}", url_component(project))
}

/// The server's address as the browser reached it, for the Django snippet.
fn base_url(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).filter(|p| *p == "https").unwrap_or("http");
    format!("{scheme}://{host}")
}

/// A secret made just now: shown once, on the page that made it.
struct NewSecret {
    label: String,
    secret: String,
}

// ---------------------------------------------------------------------------------------------
// Environments and SDK keys

#[derive(Template)]
#[template(path = "settings_environments.html")]
struct EnvironmentsPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    is_admin: bool,
    rows: Vec<EnvRow>,
    new_key: Option<NewSecret>,
    errors: Vec<(String, String)>,
    base_url: String,
}

struct EnvRow {
    key: String,
    name: String,
    protected: bool,
    last: bool,
    revision: String,
    keys: Vec<KeyRow>,
}

struct KeyRow {
    id: i64,
    name: String,
    prefix: String,
    created: String,
}

async fn environments_page(
    state: &SharedState,
    signed: &Signed,
    base_url: String,
    project: &Project,
    role: ProjectRole,
    new_key: Option<NewSecret>,
    errors: Vec<(String, String)>,
) -> PageResult {
    let now = now_millis();
    let envs = environments(state, project).await?;
    let last = envs.len().saturating_sub(1);
    let mut rows = Vec::new();
    for (i, (env, snapshot)) in envs.iter().enumerate() {
        let keys = state
            .store
            .list_sdk_keys(env.id)
            .await?
            .into_iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| KeyRow { id: k.id, name: k.name, prefix: k.prefix, created: ago(k.created_at, now) })
            .collect();
        rows.push(EnvRow {
            key: env.key.clone(),
            name: env.name.clone(),
            protected: env.protected,
            last: i == last,
            revision: format!("{} · {} · {}", snapshot.revision.id, ago(snapshot.revision.created_at, now), snapshot.revision.author),
            keys,
        });
    }
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = EnvironmentsPage {
        layout: Layout::new("Environments", signed).in_project(project, "settings").with_errors(!errors.is_empty()),
        project: project.key.clone(),
        tab: "environments",
        is_admin: role >= ProjectRole::Admin,
        rows,
        new_key,
        errors,
        base_url,
    };
    render_status(status, &page)
}

/// `GET /projects/{project}/settings/environments`.
pub async fn environments_show(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>, headers: HeaderMap) -> PageResult {
    let (project, role) = settings_access(&state, &signed, &key, false).await?;
    environments_page(&state, &signed, base_url(&headers), &project, role, None, Vec::new()).await
}

/// `POST /projects/{project}/settings/environments/{env}/keys`: a new SDK key, shown once.
pub async fn create_key(
    State(state): State<SharedState>,
    Path((key, env)): Path<(String, String)>,
    headers: HeaderMap,
    form: SignedForm,
) -> PageResult {
    let base = base_url(&headers);
    let (project, role) = settings_access(&state, &form.signed, &key, true).await?;
    let name = form.text("name");
    let actor = form.signed.user.username.clone();
    match state.create_sdk_key(&project.key, &env, &name, false, &actor).await {
        Ok((secret, info)) => {
            let label = format!("SDK key '{}' for {env}", info.name);
            environments_page(&state, &form.signed, base.clone(), &project, role, Some(NewSecret { label, secret }), Vec::new()).await
        }
        Err(WriteError::Refused { message, .. }) => {
            environments_page(&state, &form.signed, base, &project, role, None, vec![(format!("key-name-{env}"), message)]).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "revoke.html")]
struct RevokePage {
    layout: Layout,
    project: String,
    what: String,
    name: String,
    action: String,
    back: String,
    error: Option<String>,
}

/// `GET /projects/{project}/settings/environments/{env}/keys/{id}/revoke`: type the key's name.
pub async fn revoke_key_page(State(state): State<SharedState>, signed: Signed, Path((key, env, id)): Path<(String, String, i64)>) -> PageResult {
    let (project, _) = settings_access(&state, &signed, &key, true).await?;
    let info = sdk_key(&state, &project, &env, id).await?;
    render(&RevokePage {
        layout: Layout::new(format!("Revoke SDK key {}", info.name), &signed).in_project(&project, "settings"),
        project: project.key.clone(),
        what: format!("the SDK key '{}' ({}…) of {env}: apps using it stop reading this environment at once", info.name, info.prefix),
        name: info.name,
        action: format!("{}/{}/keys/{id}/revoke", settings_url(&project.key, "environments"), url_component(&env)),
        back: settings_url(&project.key, "environments"),
        error: None,
    })
}

async fn sdk_key(state: &SharedState, project: &Project, env: &str, id: i64) -> Result<crate::store::SdkKeyInfo, ConsoleError> {
    let environment = state
        .store
        .list_environments(project.id)
        .await?
        .into_iter()
        .find(|e| e.key == env)
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no environment '{env}'.")))?;
    state
        .store
        .list_sdk_keys(environment.id)
        .await?
        .into_iter()
        .find(|k| k.id == id && k.revoked_at.is_none())
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no active SDK key {id} in '{env}'.")))
}

/// `POST …/keys/{id}/revoke`.
pub async fn revoke_key(State(state): State<SharedState>, Path((key, env, id)): Path<(String, String, i64)>, form: SignedForm) -> PageResult {
    let (project, _) = settings_access(&state, &form.signed, &key, true).await?;
    let info = sdk_key(&state, &project, &env, id).await?;
    if form.text("confirm").trim() != info.name {
        let page = RevokePage {
            layout: Layout::new(format!("Revoke SDK key {}", info.name), &form.signed).in_project(&project, "settings").with_errors(true),
            project: project.key.clone(),
            what: format!("the SDK key '{}' ({}…) of {env}: apps using it stop reading this environment at once", info.name, info.prefix),
            action: format!("{}/{}/keys/{id}/revoke", settings_url(&project.key, "environments"), url_component(&env)),
            back: settings_url(&project.key, "environments"),
            error: Some(format!("Type '{}' to confirm", info.name)),
            name: info.name,
        };
        return render_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
    }
    state.revoke_sdk_key(&project.key, &env, id, &form.signed.user.username).await?;
    Ok(Redirect::to(&settings_url(&project.key, "environments")).into_response())
}

/// `POST /projects/{project}/settings/environments/{env}/protection`: `protected=1` or `0`.
pub async fn protection(State(state): State<SharedState>, Path((key, env)): Path<(String, String)>, form: SignedForm) -> PageResult {
    let (project, _) = settings_access(&state, &form.signed, &key, true).await?;
    let protected = form.get("protected") == Some("1");
    state.set_protected(&project.key, &env, protected, &form.signed.user.username).await?;
    Ok(Redirect::to(&settings_url(&project.key, "environments")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Schema

#[derive(Template)]
#[template(path = "settings_schema.html")]
struct SchemaPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    is_admin: bool,
    schema: String,
    version: i64,
    default_identifier_type: String,
    errors: Vec<(String, String)>,
    saved: bool,
}

fn pretty_schema(project: &Project) -> String {
    serde_json::from_str::<serde_json::Value>(&project.schema_json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| project.schema_json.clone())
}

/// `GET /projects/{project}/settings/schema`.
pub async fn schema_show(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>) -> PageResult {
    let (project, role) = settings_access(&state, &signed, &key, false).await?;
    render(&SchemaPage {
        layout: Layout::new("Schema", &signed).in_project(&project, "settings"),
        project: project.key.clone(),
        tab: "schema",
        is_admin: role >= ProjectRole::Admin,
        schema: pretty_schema(&project),
        version: project.schema_version,
        default_identifier_type: project.default_identifier_type.clone(),
        errors: Vec::new(),
        saved: false,
    })
}

/// `POST /projects/{project}/settings/schema`: validated against every environment first.
pub async fn schema_save(State(state): State<SharedState>, Path(key): Path<String>, form: SignedForm) -> PageResult {
    let (project, _) = settings_access(&state, &form.signed, &key, true).await?;
    let text = form.text("schema");
    let base = form.get("version").and_then(|v| v.parse::<i64>().ok());
    let result = match serde_json::from_str::<serde_json::Value>(&text) {
        Err(e) => Err(vec![("schema".to_string(), format!("The schema is not JSON: {e}"))]),
        Ok(doc) => match crate::ops::projects::read_schema(&doc) {
            Err(e) => Err(vec![("schema".to_string(), e.to_string())]),
            Ok(schema) => state.set_schema(&project.key, schema, base).await.map_err(|e| match e {
                WriteError::SchemaInvalid { message, diagnostics } => {
                    let mut lines = vec![("schema".to_string(), message)];
                    for (env, ds) in diagnostics {
                        lines.extend(ds.iter().take(20).map(|d| ("schema".to_string(), format!("{env}: test '{}', {}: {}", d.test, d.path, d.message))));
                    }
                    lines
                }
                other => vec![("schema".to_string(), other.to_string())],
            }),
        },
    };
    match result {
        Ok(updated) => render(&SchemaPage {
            layout: Layout::new("Schema", &form.signed).in_project(&updated, "settings"),
            project: updated.key.clone(),
            tab: "schema",
            is_admin: true,
            schema: pretty_schema(&updated),
            version: updated.schema_version,
            default_identifier_type: updated.default_identifier_type.clone(),
            errors: Vec::new(),
            saved: true,
        }),
        Err(errors) => render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &SchemaPage {
                layout: Layout::new("Schema", &form.signed).in_project(&project, "settings").with_errors(true),
                project: project.key.clone(),
                tab: "schema",
                is_admin: true,
                schema: text,
                version: base.unwrap_or(project.schema_version),
                default_identifier_type: project.default_identifier_type.clone(),
                errors,
                saved: false,
            },
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Members

#[derive(Template)]
#[template(path = "settings_members.html")]
struct MembersPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    is_admin: bool,
    members: Vec<(String, String, String)>,
    errors: Vec<(String, String)>,
    username: String,
}

const ROLES: [&str; 3] = ["viewer", "editor", "admin"];

impl EnvironmentsPage {
    fn has_error(&self, env: &str) -> bool {
        self.errors.iter().any(|(f, _)| f.strip_prefix("key-name-") == Some(env))
    }
}

impl MembersPage {
    fn roles(&self) -> &'static [&'static str] {
        &ROLES
    }
}

async fn members_page(state: &SharedState, signed: &Signed, project: &Project, role: ProjectRole, errors: Vec<(String, String)>, username: String) -> PageResult {
    let members = state
        .store
        .project_members(project.id)
        .await?
        .into_iter()
        .map(|(user, role)| (user.username, user.display_name, role.as_str().to_string()))
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render_status(
        status,
        &MembersPage {
            layout: Layout::new("Members", signed).in_project(project, "settings").with_errors(!errors.is_empty()),
            project: project.key.clone(),
            tab: "members",
            is_admin: role >= ProjectRole::Admin,
            members,
            errors,
            username,
        },
    )
}

/// `GET /projects/{project}/settings/members`.
pub async fn members_show(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>) -> PageResult {
    let (project, role) = settings_access(&state, &signed, &key, false).await?;
    members_page(&state, &signed, &project, role, Vec::new(), String::new()).await
}

/// `POST /projects/{project}/settings/members`: `username` and `role` (`viewer`, `editor`,
/// `admin`, or `remove`).
pub async fn members_save(State(state): State<SharedState>, Path(key): Path<String>, form: SignedForm) -> PageResult {
    let (project, role) = settings_access(&state, &form.signed, &key, true).await?;
    let username = form.text("username").trim().to_string();
    let wanted = form.text("role");
    let Some((user, _)) = state.store.user_by_username(&username).await? else {
        let message = if username.is_empty() { "Enter a username".to_string() } else { format!("There is no user '{username}' (an owner creates users: avsb user create)") };
        return members_page(&state, &form.signed, &project, role, vec![("username".into(), message)], username).await;
    };
    let new_role = match wanted.as_str() {
        "remove" => None,
        other => match ProjectRole::parse(other) {
            Some(r) => Some(r),
            None => return members_page(&state, &form.signed, &project, role, vec![("role".into(), "Choose viewer, editor or admin".into())], username).await,
        },
    };
    crate::ops::accounts::set_role(&*state.store, &project, &user, new_role, &form.signed.user.username).await?;
    Ok(Redirect::to(&settings_url(&project.key, "members")).into_response())
}

// ---------------------------------------------------------------------------------------------
// Service-account admin tokens

#[derive(Template)]
#[template(path = "settings_tokens.html")]
struct TokensPage {
    layout: Layout,
    project: String,
    tab: &'static str,
    is_admin: bool,
    tokens: Vec<(i64, String, String, String, String)>,
    new_token: Option<NewSecret>,
    errors: Vec<(String, String)>,
}

async fn tokens_page(state: &SharedState, signed: &Signed, project: &Project, new_token: Option<NewSecret>, errors: Vec<(String, String)>) -> PageResult {
    let now = now_millis();
    let tokens = state
        .store
        .list_admin_tokens()
        .await?
        .into_iter()
        .filter(|t| t.revoked_at.is_none() && TokenScope::Project(project.id).covers(t))
        .map(|t| (t.id, t.name, t.prefix, t.role.as_str().to_string(), ago(t.created_at, now)))
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    render_status(
        status,
        &TokensPage {
            layout: Layout::new("Admin tokens", signed).in_project(project, "settings").with_errors(!errors.is_empty()),
            project: project.key.clone(),
            tab: "tokens",
            is_admin: true,
            tokens,
            new_token,
            errors,
        },
    )
}

/// `GET /projects/{project}/settings/tokens` (admins: tokens are secrets' listings).
pub async fn tokens_show(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>) -> PageResult {
    let (project, _) = settings_access(&state, &signed, &key, true).await?;
    tokens_page(&state, &signed, &project, None, Vec::new()).await
}

/// `POST /projects/{project}/settings/tokens`: a new service-account token, shown once.
pub async fn create_token(State(state): State<SharedState>, Path(key): Path<String>, form: SignedForm) -> PageResult {
    let (project, _) = settings_access(&state, &form.signed, &key, true).await?;
    let role = if form.get("role") == Some("write") { Role::Write } else { Role::Read };
    let name = form.text("name");
    match create_admin_token(&*state.store, &name, role, TokenOwner::Project(project.id), &form.signed.user.username).await {
        Ok((secret, info)) => {
            let label = format!("Admin token '{}' ({})", info.name, role.as_str());
            tokens_page(&state, &form.signed, &project, Some(NewSecret { label, secret }), Vec::new()).await
        }
        Err(WriteError::Refused { message, .. }) => tokens_page(&state, &form.signed, &project, None, vec![("token-name".into(), message)]).await,
        Err(other) => Err(other.into()),
    }
}

async fn project_token(state: &SharedState, project: &Project, id: i64) -> Result<crate::store::AdminTokenInfo, ConsoleError> {
    state
        .store
        .list_admin_tokens()
        .await?
        .into_iter()
        .find(|t| t.id == id && t.revoked_at.is_none() && TokenScope::Project(project.id).covers(t))
        .ok_or_else(|| ConsoleError::NotFound(format!("There is no active admin token {id} in this project.")))
}

/// `GET /projects/{project}/settings/tokens/{id}/revoke`.
pub async fn revoke_token_page(State(state): State<SharedState>, signed: Signed, Path((key, id)): Path<(String, i64)>) -> PageResult {
    let (project, _) = settings_access(&state, &signed, &key, true).await?;
    let token = project_token(&state, &project, id).await?;
    render(&RevokePage {
        layout: Layout::new(format!("Revoke admin token {}", token.name), &signed).in_project(&project, "settings"),
        project: project.key.clone(),
        what: format!("the admin token '{}' ({}…): scripts using it are refused at once", token.name, token.prefix),
        name: token.name,
        action: format!("{}/{id}/revoke", settings_url(&project.key, "tokens")),
        back: settings_url(&project.key, "tokens"),
        error: None,
    })
}

/// `POST /projects/{project}/settings/tokens/{id}/revoke`.
pub async fn revoke_token(State(state): State<SharedState>, Path((key, id)): Path<(String, i64)>, form: SignedForm) -> PageResult {
    let (project, _) = settings_access(&state, &form.signed, &key, true).await?;
    let token = project_token(&state, &project, id).await?;
    if form.text("confirm").trim() != token.name {
        return render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &RevokePage {
                layout: Layout::new(format!("Revoke admin token {}", token.name), &form.signed).in_project(&project, "settings").with_errors(true),
                project: project.key.clone(),
                what: format!("the admin token '{}' ({}…): scripts using it are refused at once", token.name, token.prefix),
                action: format!("{}/{id}/revoke", settings_url(&project.key, "tokens")),
                back: settings_url(&project.key, "tokens"),
                error: Some(format!("Type '{}' to confirm", token.name)),
                name: token.name,
            },
        );
    }
    revoke_admin_token(&*state.store, id, TokenScope::Project(project.id), &form.signed.user.username).await?;
    Ok(Redirect::to(&settings_url(&project.key, "tokens")).into_response())
}
