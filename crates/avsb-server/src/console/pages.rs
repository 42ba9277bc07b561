//! The projects list and a project's tests table: every test with, per environment, its
//! allocation at a glance (a bar, the shares as text too), its state, and its last change;
//! filtered and paged on the server, the filters in the URL.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use askama::Template;
use avsb_core::document::TestDefinition;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;

use super::bars::{self, Bar, Segment};
use super::format::{ago, count, date, percent, url_component};
use super::session::SignedForm;
use super::{render, render_status, ConsoleError, Layout, PageResult, Signed};
use crate::ops::edit::same_definition;
use crate::registry::EnvSnapshot;
use crate::store::{now_millis, Environment, Project, ProjectRole, StoreError};
use crate::SharedState;

/// Rows per page of the tests table.
const PAGE_SIZE: usize = 100;

/// A project the signed-in user may see, and their role in it; any other is not found.
pub async fn project_access(state: &SharedState, signed: &Signed, key: &str) -> Result<(Project, ProjectRole), ConsoleError> {
    let not_found = || ConsoleError::NotFound(format!("There is no project '{key}', or you are not a member of it."));
    let project = state.store.project(key).await?.ok_or_else(not_found)?;
    let role = signed.principal().role_in(&*state.store, &project).await?.ok_or_else(not_found)?;
    Ok((project, role))
}

/// A project's environments in promotion order with their current snapshots.
pub async fn environments(state: &SharedState, project: &Project) -> Result<Vec<(Environment, Arc<EnvSnapshot>)>, ConsoleError> {
    let mut out = Vec::new();
    for env in state.store.list_environments(project.id).await? {
        let snapshot = state.current(&project.key, &env.key)?;
        out.push((env, snapshot));
    }
    Ok(out)
}

/// The bar segments of an allocation.
pub fn segments(definition: &TestDefinition, allocation: usize) -> Vec<Segment> {
    let names: HashMap<i32, &str> = definition.buckets.iter().map(|b| (b.value, b.name.as_str())).collect();
    definition
        .allocations
        .get(allocation)
        .map(|a| {
            a.ranges
                .iter()
                .map(|r| Segment {
                    value: r.bucket_value,
                    name: names.get(&r.bucket_value).filter(|n| !n.is_empty()).map_or_else(|| r.bucket_value.to_string(), |n| (*n).to_string()),
                    share: r.length,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What a test does in one environment, at a glance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestState {
    /// Some allocation splits its units over several buckets.
    Split,
    /// Every allocation gives one bucket to everyone (killed, or fully launched).
    Single,
    /// Every unit gets an inactive bucket (a negative value).
    Inactive,
}

/// The state of a definition.
pub fn state_of(definition: &TestDefinition) -> TestState {
    let given: BTreeSet<i32> = definition
        .allocations
        .iter()
        .flat_map(|a| a.ranges.iter().filter(|r| r.length > 0.0).map(|r| r.bucket_value))
        .collect();
    if !given.is_empty() && given.iter().all(|v| *v < 0) {
        return TestState::Inactive;
    }
    let split = definition.allocations.iter().any(|a| a.ranges.iter().filter(|r| r.length > 0.0).count() > 1);
    if split { TestState::Split } else { TestState::Single }
}

/// Whether a test mentions `needle` (already lower-case) in its name, description, rules or
/// bucket names, as Proctor Webapp's filter does.
fn mentions(name: &str, definition: &TestDefinition, needle: &str) -> bool {
    let has = |text: &str| text.to_lowercase().contains(needle);
    has(name)
        || definition.description.as_deref().is_some_and(has)
        || definition.rule.as_deref().is_some_and(has)
        || definition.allocations.iter().any(|a| a.rule.as_deref().is_some_and(has))
        || definition.buckets.iter().any(|b| has(&b.name))
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    layout: Layout,
    projects: Vec<ProjectRow>,
    is_owner: bool,
    error: Option<String>,
    key: String,
    name: String,
}

struct ProjectRow {
    key: String,
    name: String,
    role: &'static str,
    environments: usize,
    tests: usize,
    changed: String,
}

async fn projects_page(state: &SharedState, signed: &Signed) -> Result<ProjectsPage, ConsoleError> {
    let principal = signed.principal();
    let now = now_millis();
    let mut rows = Vec::new();
    for project in state.store.list_projects().await? {
        let Some(role) = principal.role_in(&*state.store, &project).await? else { continue };
        let envs = environments(state, &project).await?;
        let tests: BTreeSet<&str> = envs.iter().flat_map(|(_, s)| s.matrix.test_names()).collect();
        let latest = envs.iter().map(|(_, s)| s.revision.created_at).max().unwrap_or(project.created_at);
        rows.push((latest, ProjectRow {
            key: project.key.clone(),
            name: project.name.clone(),
            role: role.as_str(),
            environments: envs.len(),
            tests: tests.len(),
            changed: ago(latest, now),
        }));
    }
    // The project changed last comes first.
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.key.cmp(&b.1.key)));
    Ok(ProjectsPage {
        layout: Layout::new("Projects", signed),
        projects: rows.into_iter().map(|(_, r)| r).collect(),
        is_owner: signed.user.is_owner,
        error: None,
        key: String::new(),
        name: String::new(),
    })
}

/// `GET /projects`.
pub async fn projects(State(state): State<SharedState>, signed: Signed) -> PageResult {
    render(&projects_page(&state, &signed).await?)
}

/// `POST /projects`: an owner creates a project with the default environments.
pub async fn create_project(State(state): State<SharedState>, form: SignedForm) -> PageResult {
    if !form.signed.user.is_owner {
        return Err(ConsoleError::Forbidden("Only owners create projects.".into()));
    }
    let key = form.text("key").trim().to_string();
    let name = form.text("name").trim().to_string();
    let spec = crate::ops::projects::ProjectSpec {
        key: key.clone(),
        name: if name.is_empty() { key.clone() } else { name.clone() },
        schema: avsb_core::ContextSchema::from_json(crate::ops::projects::DEFAULT_SCHEMA)
            .map_err(|e| ConsoleError::Internal(e.to_string()))?,
        default_identifier_type: "USER".into(),
        environments: crate::ops::projects::DEFAULT_ENVIRONMENTS.iter().map(|e| (e.to_string(), Default::default())).collect(),
    };
    match state.create_project(spec, &form.signed.user.username).await {
        Ok(project) => Ok(Redirect::to(&format!("/projects/{}", url_component(&project.key))).into_response()),
        Err(e @ (crate::ops::WriteError::Refused { .. } | crate::ops::WriteError::Duplicate(_))) => {
            let mut page = projects_page(&state, &form.signed).await?;
            page.layout = page.layout.with_errors(true);
            page.error = Some(match e {
                crate::ops::WriteError::Duplicate(_) => format!("A project '{key}' already exists"),
                other => other.to_string(),
            });
            page.key = key;
            page.name = name;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(other) => Err(other.into()),
    }
}

/// The tests table's filters, as the URL carries them.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Filters {
    /// Words in a test's name, description, rules or bucket names.
    #[serde(default)]
    q: String,
    /// An identifier type.
    #[serde(default, rename = "type")]
    kind: String,
    /// Only tests in this environment (and their state there).
    #[serde(default)]
    env: String,
    /// `split`, `single`, `inactive`, or empty for all.
    #[serde(default)]
    state: String,
    /// `7d`: changed in the last 7 days.
    #[serde(default)]
    changed: String,
    /// The page, from 1.
    #[serde(default)]
    page: Option<usize>,
}

impl Filters {
    fn query(&self, page: usize) -> String {
        let mut parts = Vec::new();
        for (k, v) in [("q", &self.q), ("type", &self.kind), ("env", &self.env), ("state", &self.state), ("changed", &self.changed)] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", url_component(v)));
            }
        }
        if page > 1 {
            parts.push(format!("page={page}"));
        }
        if parts.is_empty() { String::new() } else { format!("?{}", parts.join("&")) }
    }

    fn active(&self) -> bool {
        !(self.q.is_empty() && self.kind.is_empty() && self.env.is_empty() && self.state.is_empty() && self.changed.is_empty())
    }
}

#[derive(Template)]
#[template(path = "tests.html")]
struct TestsPage {
    layout: Layout,
    project: String,
    environments: Vec<EnvHead>,
    rows: Vec<Row>,
    filters: Filters,
    types: Vec<String>,
    total: usize,
    matching: usize,
    from: usize,
    to: usize,
    previous: Option<String>,
    next: Option<String>,
    can_edit: bool,
}

struct EnvHead {
    key: String,
    name: String,
    last: bool,
    protected: bool,
}

struct Row {
    name: String,
    href: String,
    kind: String,
    cells: Vec<Cell>,
    changed: String,
    changed_title: String,
}

struct Cell {
    /// The bar (trusted SVG drawn by `bars`), or empty.
    bar: String,
    /// Words beside it: `= development`, `KILLED`, `+2 rules`, or `not in this environment`.
    note: String,
    killed: bool,
    absent: bool,
    last: bool,
    label: String,
}

/// `GET /projects/{project}`.
pub async fn tests(
    State(state): State<SharedState>,
    signed: Signed,
    Path(key): Path<String>,
    Query(filters): Query<Filters>,
) -> PageResult {
    let (project, role) = project_access(&state, &signed, &key).await?;
    let envs = environments(&state, &project).await?;
    let now = now_millis();
    let needle = filters.q.trim().to_lowercase();
    let names: BTreeSet<&str> = envs.iter().flat_map(|(_, s)| s.matrix.test_names()).collect();
    let total = names.len();
    let types: BTreeSet<String> = envs
        .iter()
        .flat_map(|(_, s)| s.matrix.test_names().filter_map(|n| s.matrix.definition(n).map(|d| d.test_type.to_uppercase())).collect::<Vec<_>>())
        .collect();
    let scoped: Vec<usize> = match filters.env.as_str() {
        "" => (0..envs.len()).collect(),
        key => envs.iter().position(|(e, _)| e.key == key).into_iter().collect(),
    };
    // The last change of each test version, for the "changed" column and filter.
    let versions: Vec<i64> = envs
        .iter()
        .flat_map(|(_, s)| s.matrix.test_names().filter_map(|n| s.matrix.definition(n)?.version.as_deref()?.parse().ok()).collect::<Vec<i64>>())
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .collect();
    let metas: BTreeMap<i64, (i64, String)> = state
        .store
        .revision_metas(versions)
        .await
        .map_err(|e: StoreError| ConsoleError::Internal(e.to_string()))?
        .into_iter()
        .map(|m| (m.id, (m.created_at, m.author)))
        .collect();
    let last_change = |name: &str| -> Option<(i64, String)> {
        envs.iter()
            .filter_map(|(_, s)| s.matrix.definition(name)?.version.as_deref()?.parse::<i64>().ok())
            .filter_map(|v| metas.get(&v).cloned())
            .max_by_key(|(t, _)| *t)
    };
    let matching: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| {
            let defs: Vec<&TestDefinition> = scoped.iter().filter_map(|i| envs[*i].1.matrix.definition(name)).collect();
            if defs.is_empty() {
                return false;
            }
            (needle.is_empty() || defs.iter().any(|d| mentions(name, d, &needle)))
                && (filters.kind.is_empty() || defs.iter().any(|d| d.test_type.eq_ignore_ascii_case(&filters.kind)))
                && match filters.state.as_str() {
                    "split" => defs.iter().any(|d| state_of(d) == TestState::Split),
                    "single" => defs.iter().any(|d| state_of(d) == TestState::Single),
                    "inactive" => defs.iter().any(|d| state_of(d) == TestState::Inactive),
                    _ => true,
                }
                && (filters.changed != "7d" || last_change(name).is_some_and(|(t, _)| now - t <= 7 * 24 * 3600 * 1000))
        })
        .collect();
    let pages = matching.len().div_ceil(PAGE_SIZE).max(1);
    let page = filters.page.unwrap_or(1).clamp(1, pages);
    let start = (page - 1) * PAGE_SIZE;
    let shown = &matching[start.min(matching.len())..(start + PAGE_SIZE).min(matching.len())];
    let last_env = envs.len().saturating_sub(1);
    let rows = shown
        .iter()
        .map(|name| {
            let mut cells = Vec::new();
            let mut previous: Option<(&TestDefinition, &str)> = None;
            let mut kind = String::new();
            for (i, (env, snapshot)) in envs.iter().enumerate() {
                let last = i == last_env;
                let Some(def) = snapshot.matrix.definition(name) else {
                    cells.push(Cell { bar: String::new(), note: "—".into(), killed: false, absent: true, last, label: format!("not in {}", env.name) });
                    previous = None;
                    continue;
                };
                kind = def.test_type.to_uppercase();
                let same = previous.is_some_and(|(p, _)| same_definition(p, def));
                let allocation = def.allocations.len().saturating_sub(1);
                let segs = segments(def, allocation);
                let label = segs.iter().map(|s| format!("{} {}", s.name, percent(s.share))).collect::<Vec<_>>().join(", ");
                let killed = state_of(def) == TestState::Single && def.allocations.len() == 1 && def.rule.is_none();
                let note = if same {
                    format!("= {}", previous.map_or("", |(_, e)| e))
                } else if killed {
                    format!("ONE BUCKET: {}", segs.iter().find(|s| s.share > 0.0).map_or(String::new(), |s| s.name.clone()))
                } else if def.allocations.len() > 1 {
                    format!("+{} rule{}", def.allocations.len() - 1, if def.allocations.len() > 2 { "s" } else { "" })
                } else {
                    String::new()
                };
                let bar = if same {
                    String::new()
                } else {
                    bars::bar(&segs, &Bar { id: &format!("b-{}-{i}", cells_id(name)), width: 120, height: 12, drag: None })
                };
                cells.push(Cell { bar, note, killed, absent: false, last, label });
                previous = Some((def, env.name.as_str()));
            }
            let change = last_change(name);
            Row {
                name: name.to_string(),
                href: format!("/projects/{}/tests/{}", url_component(&project.key), url_component(name)),
                kind,
                cells,
                changed: change.as_ref().map_or(String::new(), |(t, who)| format!("{} · {who}", ago(*t, now))),
                changed_title: change.as_ref().map_or(String::new(), |(t, _)| date(*t)),
            }
        })
        .collect();
    let page_url = |p: usize| format!("/projects/{}{}", url_component(&project.key), filters.query(p));
    let body = TestsPage {
        layout: Layout::new(format!("Tests · {}", project.name), &signed).in_project(&project, "tests"),
        project: project.key.clone(),
        environments: envs
            .iter()
            .enumerate()
            .map(|(i, (e, _))| EnvHead { key: e.key.clone(), name: e.name.clone(), last: i == last_env, protected: e.protected })
            .collect(),
        rows,
        types: types.into_iter().collect(),
        total,
        matching: matching.len(),
        from: if shown.is_empty() { 0 } else { start + 1 },
        to: start + shown.len(),
        previous: (page > 1).then(|| page_url(page - 1)),
        next: (page < pages).then(|| page_url(page + 1)),
        can_edit: role >= ProjectRole::Editor,
        filters,
    };
    render(&body)
}

/// A stable id fragment for a test's bars (names may hold any character).
fn cells_id(name: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(name.as_bytes()).iter().take(4).map(|b| format!("{b:02x}")).collect()
}

impl TestsPage {
    fn count(&self, n: &usize) -> String {
        count(*n)
    }
}
