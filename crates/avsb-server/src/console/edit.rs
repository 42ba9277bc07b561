//! Changing tests: the editor (with live validation), new tests from templates, the kill
//! switch, rolling one test back, promotion; each ends on one review screen (the field diff, the
//! exact share of users who would change bucket, the engine's verdict, a comment and, where it
//! matters, the test's name typed to confirm) before anything is written. A stale edit (someone
//! saved meanwhile) is refused with the other person's change shown, never silently overwritten.
//!
//! Every write is `AppState::write` with the user's role and the revision the page was based on.

use std::collections::BTreeMap;

use askama::Template;
use avsb_core::document::TestDefinition;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use serde_json::Value;

use super::bars::{self, Bar, Segment};
use super::form::{field_of, DefinitionForm, FieldProblem, PAYLOAD_TYPES};
use super::format::{ago, percent, url_component};
use super::pages::{environments, project_access};
use super::session::SignedForm;
use super::{render, render_status, ConsoleError, Layout, PageResult, Signed};
use crate::ops::diff::{ShiftBasis, TestChange};
use crate::ops::edit::{BucketRef, MatrixEdit};
use crate::ops::preview::Preview;
use crate::ops::{check_test_name, WriteError, WriteMeta};
use crate::store::{now_millis, Environment, Project, ProjectRole};
use crate::SharedState;

// ---------------------------------------------------------------------------------------------
// Who may write where

/// The environment of a page, checked: it exists, and the user may write it.
async fn writable(
    state: &SharedState,
    signed: &Signed,
    key: &str,
    environment: Option<&str>,
) -> Result<(Project, ProjectRole, Vec<Environment>, Environment), ConsoleError> {
    let (project, role) = project_access(state, signed, key).await?;
    if role < ProjectRole::Editor {
        return Err(ConsoleError::Forbidden(format!(
            "You are a {} of project '{}': ask one of its admins to make you an editor.",
            role.as_str(),
            project.key
        )));
    }
    let envs = state.store.list_environments(project.id).await?;
    let env = match environment.filter(|e| !e.is_empty()) {
        Some(e) => envs.iter().find(|x| x.key == e).cloned(),
        None => envs.first().cloned(),
    }
    .ok_or_else(|| ConsoleError::NotFound(format!("There is no environment '{}'.", environment.unwrap_or_default())))?;
    if env.protected && role < ProjectRole::Admin {
        return Err(ConsoleError::Forbidden(format!(
            "Environment '{}' is protected: only the admins of project '{}' may change it.",
            env.name, project.key
        )));
    }
    Ok((project, role, envs, env))
}

/// Whether a change in this environment needs a comment and the test's name typed: the last
/// environment (production) and protected ones.
fn careful(envs: &[Environment], env: &Environment) -> bool {
    env.protected || envs.last().is_some_and(|last| last.id == env.id)
}

fn test_url(project: &str, test: &str) -> String {
    format!("/projects/{}/tests/{}", url_component(project), url_component(test))
}

// ---------------------------------------------------------------------------------------------
// The editor

#[derive(Template)]
#[template(path = "edit.html")]
struct EditPage {
    layout: Layout,
    project: String,
    test: String,
    env: String,
    env_name: String,
    base: String,
    creating: bool,
    form: DefinitionForm,
    identifier_types: Vec<String>,
    payload_types: Vec<String>,
    problems: Vec<FieldProblem>,
    live: LiveFragment,
}

impl EditPage {
    fn problem(&self, field: &str) -> Option<&str> {
        self.problems.iter().find(|p| p.field == field).map(|p| p.message.as_str())
    }

    fn has_problem(&self, field: &str) -> bool {
        self.problem(field).is_some()
    }

    fn test_url(&self) -> String {
        test_url(&self.project, &self.test)
    }

}

/// The live panel: problems, each allocation's sum and bar, and who would change bucket.
#[derive(Template, Default)]
#[template(path = "live.html")]
struct LiveFragment {
    problems: Vec<FieldProblem>,
    allocations: Vec<LiveAllocation>,
    moving: Vec<String>,
    notes: Vec<String>,
    valid: bool,
}

struct LiveAllocation {
    label: String,
    sum: String,
    sum_ok: bool,
    bar: String,
}

#[derive(Debug, Deserialize)]
pub struct EnvQuery {
    env: Option<String>,
}

/// The schema's identifier types (and RANDOM), for the editor's select.
fn identifier_types(project: &Project) -> Vec<String> {
    let mut types: Vec<String> = crate::ops::write::parse_schema(project)
        .map(|s| s.identifiers.keys().cloned().collect())
        .unwrap_or_default();
    types.push("RANDOM".into());
    types
}

/// `GET /projects/{project}/tests/{test}/edit?env=`.
pub async fn edit_page(
    State(state): State<SharedState>,
    signed: Signed,
    Path((key, test)): Path<(String, String)>,
    Query(q): Query<EnvQuery>,
) -> PageResult {
    let (project, _, _, env) = writable(&state, &signed, &key, q.env.as_deref()).await?;
    let snapshot = state.current(&project.key, &env.key)?;
    let definition = snapshot
        .matrix
        .definition(&test)
        .ok_or_else(|| ConsoleError::NotFound(format!("Test '{test}' is not in environment '{}'.", env.name)))?;
    let form = DefinitionForm::of(definition);
    let page = editor(&state, &signed, &project, &env, &test, snapshot.revision.id, false, form, Vec::new()).await?;
    render(&page)
}

#[allow(clippy::too_many_arguments)]
async fn editor(
    state: &SharedState,
    signed: &Signed,
    project: &Project,
    env: &Environment,
    test: &str,
    base: i64,
    creating: bool,
    form: DefinitionForm,
    problems: Vec<FieldProblem>,
) -> Result<EditPage, ConsoleError> {
    let live = live(state, project, env, test, base, &form).await;
    let title = if creating { format!("New test {test}") } else { format!("Edit {test}") };
    Ok(EditPage {
        layout: Layout::new(title, signed).in_project(project, "tests").with_errors(!problems.is_empty()),
        project: project.key.clone(),
        test: test.to_string(),
        env: env.key.clone(),
        env_name: env.name.clone(),
        base: base.to_string(),
        creating,
        identifier_types: identifier_types(project),
        payload_types: PAYLOAD_TYPES.iter().map(|t| t.to_string()).collect(),
        problems,
        form,
        live,
    })
}

/// The definition a form makes, or its field problems; `base` keeps the fields the form does
/// not show.
fn read_form(form: &DefinitionForm, test: &str, base: Option<&TestDefinition>) -> Result<TestDefinition, Vec<FieldProblem>> {
    let json = form.to_json(base)?;
    crate::ops::input::read_definition(test, &json, None).map_err(|e| match e {
        WriteError::Invalid { diagnostics, .. } => {
            diagnostics.iter().map(|d| FieldProblem { field: field_of(d), message: d.message.clone() }).collect()
        }
        other => vec![FieldProblem { field: "summary".into(), message: other.to_string() }],
    })
}

/// What the form would do, for the live panel.
async fn live(state: &SharedState, project: &Project, env: &Environment, test: &str, base: i64, form: &DefinitionForm) -> LiveFragment {
    let sums = form.sums();
    let names: BTreeMap<String, String> = form.buckets.iter().map(|b| (b.value.trim().to_string(), b.name.clone())).collect();
    let allocations = form
        .allocations
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let segments: Vec<Segment> = a
                .ranges
                .iter()
                .filter_map(|r| {
                    let value = r.bucket.trim().parse::<i32>().ok()?;
                    let share = r.percent.trim().parse::<f64>().ok()? / 100.0;
                    Some(Segment { value, name: names.get(r.bucket.trim()).cloned().filter(|n| !n.is_empty()).unwrap_or_else(|| value.to_string()), share })
                })
                .collect();
            let sum = sums[i];
            LiveAllocation {
                label: format!("Allocation {}", i + 1),
                sum: sum.map_or_else(|| "not a number".into(), |s| format!("{}%", (s * 1000.0).round() / 1000.0)),
                sum_ok: sum.is_some_and(|s| (s - 100.0).abs() < 1e-6),
                bar: bars::bar(&segments, &Bar { id: &format!("live-{i}"), width: 300, height: 24, drag: Some(&format!("alloc-{i}-p")) }),
            }
        })
        .collect();
    let current = state.current(&project.key, &env.key).ok();
    let base_definition = current.as_ref().and_then(|s| s.matrix.definition(test).cloned());
    let definition = match read_form(form, test, base_definition.as_ref()) {
        Ok(d) => d,
        Err(problems) => return LiveFragment { problems, allocations, valid: false, ..LiveFragment::default() },
    };
    let edit = MatrixEdit::PutTest { test: test.to_string(), definition: Box::new(definition) };
    match state.preview(&project.key, &env.key, &edit, Some(base)).await {
        Ok(preview) => {
            let problems: Vec<FieldProblem> = preview
                .diagnostics
                .iter()
                .filter(|d| d["test"] == test)
                .map(|d| {
                    let diagnostic = diagnostic_of(d);
                    let mut message = diagnostic.message.clone();
                    if let Some(column) = diagnostic.column() {
                        message = format!("{message} (at column {column} of the rule)");
                    }
                    if d["severity"] == "warning" {
                        message = format!("Warning: {message}");
                    }
                    FieldProblem { field: field_of(&diagnostic), message }
                })
                .collect();
            let (moving, notes) = preview.tests.iter().find(|t| t.test == test).map(moving_lines).unwrap_or_default();
            LiveFragment { valid: preview.valid, problems, allocations, moving, notes }
        }
        Err(e) => LiveFragment {
            problems: vec![FieldProblem { field: "summary".into(), message: e.to_string() }],
            allocations,
            valid: false,
            ..LiveFragment::default()
        },
    }
}

/// A diagnostic back from its JSON (the preview carries JSON).
fn diagnostic_of(d: &Value) -> avsb_core::Diagnostic {
    let text = |k: &str| d[k].as_str().unwrap_or_default().to_string();
    avsb_core::Diagnostic {
        severity: if d["severity"] == "warning" { avsb_core::Severity::Warning } else { avsb_core::Severity::Error },
        test: text("test"),
        path: text("path"),
        code: "diagnostic",
        message: text("message"),
        rule: d["rule"].as_str().map(str::to_string),
        span: d["span"].as_array().and_then(|s| Some((s.first()?.as_u64()? as usize, s.get(1)?.as_u64()? as usize))),
    }
}

/// Who would change bucket, in words: one line per allocation, and the notes.
fn moving_lines(change: &TestChange) -> (Vec<String>, Vec<String>) {
    let lines = change
        .reassignment
        .allocations
        .iter()
        .map(|a| {
            let whose = match a.from {
                Some(from) if from == a.to => format!("allocation {}", a.to + 1),
                Some(from) => format!("old allocation {} (now allocation {})", from + 1, a.to + 1),
                None => format!("allocation {}", a.to + 1),
            };
            match (a.share, a.basis) {
                (Some(s), ShiftBasis::Ranges) => format!("{} of {whose} change bucket (exact)", percent(s)),
                (Some(s), ShiftBasis::Salt) => format!("about {} of {whose} change bucket (expected: everyone is hashed anew)", percent(s)),
                (Some(s), ShiftBasis::Random) => format!("about {} of {whose} draw another bucket (RANDOM test)", percent(s)),
                _ => format!("{whose}: depends on traffic (its rule, or a rule before it, changed)"),
            }
        })
        .collect();
    let mut notes = change.reassignment.notes.clone();
    if change.reassignment.targets_changed > 0 {
        notes.push(format!("{} targeted identifier(s) change bucket", change.reassignment.targets_changed));
    }
    (lines, notes)
}

/// `POST /projects/{project}/tests/{test}/edit`: a row added or removed (the page again), or
/// `action=review`.
pub async fn edit_submit(State(state): State<SharedState>, Path((key, test)): Path<(String, String)>, form: SignedForm) -> PageResult {
    if form.get("action") == Some("review") {
        return review_edit(&state, &key, &test, &form).await;
    }
    let (project, _, _, env) = writable(&state, &form.signed, &key, form.get("env")).await?;
    let base = form.text("base").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its base revision".into()))?;
    let definition = DefinitionForm::from_fields(&form.fields);
    let creating = form.get("creating").is_some();
    render(&editor(&state, &form.signed, &project, &env, &test, base, creating, definition, Vec::new()).await?)
}

/// `POST /projects/{project}/tests/{test}/check`: the live panel for the posted form.
pub async fn check(State(state): State<SharedState>, Path((key, test)): Path<(String, String)>, form: SignedForm) -> PageResult {
    let (project, _, _, env) = writable(&state, &form.signed, &key, form.get("env")).await?;
    let base = form.text("base").parse::<i64>().unwrap_or(0);
    let fragment = live(&state, &project, &env, &test, base, &DefinitionForm::from_fields(&form.fields)).await;
    render(&fragment)
}

/// `POST /projects/{project}/tests/{test}/review`: the same as `action=review` on the editor.
pub async fn review(State(state): State<SharedState>, Path((key, test)): Path<(String, String)>, form: SignedForm) -> PageResult {
    review_edit(&state, &key, &test, &form).await
}

async fn review_edit(state: &SharedState, key: &str, test: &str, form: &SignedForm) -> PageResult {
    let (project, role, envs, env) = writable(state, &form.signed, key, form.get("env")).await?;
    let base = form.text("base").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its base revision".into()))?;
    let creating = form.get("creating").is_some();
    let fields = DefinitionForm::from_fields(&form.fields);
    let snapshot = state.current(&project.key, &env.key)?;
    let definition = match read_form(&fields, test, snapshot.matrix.definition(test)) {
        Ok(d) => d,
        Err(problems) => {
            let page = editor(state, &form.signed, &project, &env, test, base, creating, fields, problems).await?;
            return render_status(StatusCode::UNPROCESSABLE_ENTITY, &page);
        }
    };
    let edit = MatrixEdit::PutTest { test: test.to_string(), definition: Box::new(definition) };
    let proposal = Proposal {
        kind: "edit",
        test: Some(test.to_string()),
        env: env.key.clone(),
        base,
        fields: {
            let mut fields = carried(&form.fields);
            fields.retain(|(k, _)| k != "test");
            fields.push(("test".into(), test.to_string()));
            fields
        },
        title: if creating { format!("Create {test} in {}", env.name) } else { format!("Review {test} in {}", env.name) },
        careful: careful(&envs, &env),
        destructive: false,
        back: if creating { format!("/projects/{}/new", url_component(&project.key)) } else { format!("{}/edit?env={}", test_url(&project.key, test), url_component(&env.key)) },
    };
    match state.preview(&project.key, &env.key, &edit, Some(base)).await {
        Ok(preview) if !preview.valid => {
            let problems = preview
                .diagnostics
                .iter()
                .filter(|d| d["severity"] == "error")
                .map(|d| FieldProblem { field: field_of(&diagnostic_of(d)), message: d["message"].as_str().unwrap_or_default().to_string() })
                .collect();
            let page = editor(state, &form.signed, &project, &env, test, base, creating, fields, problems).await?;
            render_status(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Ok(preview) => review_page(&form.signed, &project, role, proposal, &preview, None, Vec::new()),
        Err(WriteError::Conflict { .. }) => conflict_page(state, &form.signed, &project, &env, proposal, &edit).await,
        Err(other) => Err(other.into()),
    }
}

/// The fields a review carries to its save: everything of the form but the session's token and
/// the review's own fields.
fn carried(fields: &[(String, String)]) -> Vec<(String, String)> {
    fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "action" | "comment" | "confirm" | "kind" | "base"))
        .cloned()
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Review, save and conflicts (shared by every kind of change)

/// A change on its way to being written.
struct Proposal {
    /// `edit`, `kill`, `rollback` or `promote`.
    kind: &'static str,
    test: Option<String>,
    env: String,
    base: i64,
    /// The fields that make the change again at save time.
    fields: Vec<(String, String)>,
    title: String,
    /// A comment and the typed name are required.
    careful: bool,
    /// A kill or a rollback: the typed name is required anywhere.
    destructive: bool,
    back: String,
}

#[derive(Template)]
#[template(path = "review.html")]
struct ReviewPage {
    layout: Layout,
    project: String,
    proposal: Proposal,
    changes: Vec<ChangeView>,
    warnings: Vec<String>,
    confirm_name: String,
    needs_confirmation: bool,
    needs_comment: bool,
    errors: Vec<(String, String)>,
    comment: String,
    conflict: Option<ConflictView>,
}

pub(super) struct ChangeView {
    pub(super) test: String,
    pub(super) kind: String,
    pub(super) lines: Vec<DiffLine>,
    pub(super) moving: Vec<String>,
    pub(super) notes: Vec<String>,
    pub(super) bars: Vec<(String, String)>,
    pub(super) raw_from: String,
    pub(super) raw_to: String,
}

pub(super) struct DiffLine {
    pub(super) path: String,
    pub(super) from: String,
    pub(super) to: String,
}

struct ConflictView {
    current: String,
    changes: Vec<String>,
    theirs: Vec<DiffLine>,
}

fn short(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "—".into(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    }
}

/// A readable field path: `allocations[0].ranges[1].length` → `allocation 1, range 2, share`.
pub(super) fn readable(path: &str) -> String {
    let mut words = Vec::new();
    for part in path.split('.') {
        let (name, index) = match part.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (part, None),
        };
        let word = match name {
            "allocations" => "allocation",
            "ranges" => "range",
            "buckets" => "bucket",
            "targets" => "target",
            "identifiers" => "identifier",
            "length" => "share",
            "bucketValue" => "bucket",
            "testType" => "identifier type",
            "dependsOn" => "depends on",
            other => other,
        };
        words.push(match index {
            Some(i) => format!("{word} {}", i + 1),
            None => word.to_string(),
        });
    }
    words.join(", ")
}

pub(super) fn value_text(path: &str, value: Option<&Value>) -> String {
    if let (true, Some(length)) = (path.ends_with(".length"), value.and_then(Value::as_f64)) {
        return percent(length);
    }
    // A whole range: its bucket and share, as the editor shows them.
    if let Some(range) = value.and_then(Value::as_object) {
        if let (Some(bucket), Some(length)) = (range.get("bucketValue").and_then(Value::as_i64), range.get("length").and_then(Value::as_f64)) {
            if range.len() == 2 {
                return format!("bucket {bucket}: {}", percent(length));
            }
        }
    }
    short(value)
}

pub(super) fn change_view(change: &TestChange) -> ChangeView {
    let (moving, notes) = moving_lines(change);
    let to_def = change.to.as_ref();
    let bars = to_def
        .and_then(|v| crate::ops::input::read_definition(&change.test, v, Some("consumable")).ok())
        .map(|d| {
            (0..d.allocations.len())
                .map(|i| {
                    let segs = super::pages::segments(&d, i);
                    let label = segs.iter().map(|s| format!("{} {}", s.name, percent(s.share))).collect::<Vec<_>>().join(", ");
                    (bars::bar(&segs, &Bar { id: &format!("rv-{}-{i}", change.test.len()), width: 300, height: 24, drag: None }), label)
                })
                .collect()
        })
        .unwrap_or_default();
    ChangeView {
        test: change.test.clone(),
        kind: format!("{:?}", change.change).to_lowercase(),
        lines: change
            .changes
            .iter()
            .map(|c| DiffLine { path: readable(&c.path), from: value_text(&c.path, c.from.as_ref()), to: value_text(&c.path, c.to.as_ref()) })
            .collect(),
        moving,
        notes,
        bars,
        raw_from: change.from.as_ref().map(|v| serde_json::to_string_pretty(v).unwrap_or_default()).unwrap_or_default(),
        raw_to: change.to.as_ref().map(|v| serde_json::to_string_pretty(v).unwrap_or_default()).unwrap_or_default(),
    }
}

fn review_page(
    signed: &Signed,
    project: &Project,
    _role: ProjectRole,
    proposal: Proposal,
    preview: &Preview,
    conflict: Option<ConflictView>,
    errors: Vec<(String, String)>,
) -> PageResult {
    let confirm_name = proposal.test.clone().unwrap_or_else(|| proposal.env.clone());
    let needs_confirmation = proposal.careful || proposal.destructive;
    let warnings = preview
        .diagnostics
        .iter()
        .filter(|d| d["severity"] == "warning")
        .map(|d| format!("{}: {}", d["path"].as_str().unwrap_or_default(), d["message"].as_str().unwrap_or_default()))
        .collect();
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
    let page = ReviewPage {
        layout: Layout::new(proposal.title.clone(), signed).in_project(project, "tests").with_errors(!errors.is_empty()),
        project: project.key.clone(),
        changes: preview.tests.iter().map(change_view).collect(),
        warnings,
        confirm_name,
        needs_confirmation,
        needs_comment: proposal.careful,
        comment: String::new(),
        errors,
        conflict,
        proposal,
    };
    render_status(status, &page)
}

/// The page for a change whose base is stale and whose test changed since: both changes, and
/// the choice to apply mine on the current revision or to discard it.
async fn conflict_page(
    state: &SharedState,
    signed: &Signed,
    project: &Project,
    env: &Environment,
    mut proposal: Proposal,
    edit: &MatrixEdit,
) -> PageResult {
    let current = state.current(&project.key, &env.key)?;
    let changes = match state.check_base(&current, proposal.base, &edit.scope()).await {
        Err(WriteError::Conflict { changes, .. }) => changes,
        _ => Vec::new(),
    };
    let theirs = match &proposal.test {
        Some(test) => {
            let before = crate::ops::edit::revision_document(state, &current, proposal.base).await.ok().and_then(|(d, _)| d.tests.get(test).cloned());
            crate::ops::diff::test_change(test, before.as_ref(), current.matrix.definition(test))
                .map(|c| c.changes.iter().map(|x| DiffLine { path: readable(&x.path), from: value_text(&x.path, x.from.as_ref()), to: value_text(&x.path, x.to.as_ref()) }).collect())
                .unwrap_or_default()
        }
        None => Vec::new(),
    };
    let now = now_millis();
    let conflict = ConflictView {
        current: current.revision.id.to_string(),
        changes: changes.iter().map(|c| format!("'{}' changed in revision {} by {} ({}): {}", c.test, c.revision, c.author, ago(c.created_at, now), c.comment)).collect(),
        theirs,
    };
    // "Re-apply mine": the same change, previewed on the current revision.
    proposal.base = current.revision.id;
    let preview = state.preview(&project.key, &env.key, edit, None).await?;
    let (_, role) = project_access(state, signed, &project.key).await?;
    let mut response = review_page(signed, project, role, proposal, &preview, Some(conflict), Vec::new())?;
    *response.status_mut() = StatusCode::CONFLICT;
    Ok(response)
}

/// The edit a saved form makes.
fn edit_of(state: &SharedState, project: &Project, form: &SignedForm) -> Result<(MatrixEdit, String), ConsoleError> {
    let env = form.text("env");
    let test = form.text("test");
    let edit = match form.get("kind") {
        Some("edit") => {
            let snapshot = state.current(&project.key, &env)?;
            let definition = read_form(&DefinitionForm::from_fields(&form.fields), &test, snapshot.matrix.definition(&test))
                .map_err(|p| ConsoleError::BadForm(p.iter().map(|p| p.message.clone()).collect::<Vec<_>>().join("; ")))?;
            MatrixEdit::PutTest { test, definition: Box::new(definition) }
        }
        Some("kill") => {
            let bucket = form.text("bucket").parse::<i32>().map_err(|_| ConsoleError::BadForm("the form lost its bucket".into()))?;
            MatrixEdit::Kill { test, bucket: BucketRef::Value(bucket) }
        }
        Some("rollback") => {
            let revision = form.text("revision").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its revision".into()))?;
            MatrixEdit::RollbackTest { test, revision }
        }
        Some("rollback-env") => {
            let revision = form.text("revision").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its revision".into()))?;
            MatrixEdit::Rollback { revision }
        }
        Some("promote") => MatrixEdit::Promote {
            from: form.text("from"),
            tests: form.fields.iter().filter(|(k, _)| k == "tests").map(|(_, v)| v.clone()).collect(),
            source_revision: form.get("source").and_then(|s| s.parse().ok()),
        },
        _ => return Err(ConsoleError::BadForm("the form does not say what to change".into())),
    };
    Ok((edit, env))
}

/// `POST /projects/{project}/save`: writes a reviewed change.
pub async fn save(State(state): State<SharedState>, Path(key): Path<String>, form: SignedForm) -> PageResult {
    let (project, role, envs, env) = writable(&state, &form.signed, &key, form.get("env")).await?;
    let (edit, _) = edit_of(&state, &project, &form)?;
    let base = form.text("base").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its base revision".into()))?;
    let test = form.get("test").filter(|t| !t.is_empty()).map(str::to_string);
    let destructive = matches!(form.get("kind"), Some("kill" | "rollback" | "rollback-env"));
    let proposal = Proposal {
        kind: match form.get("kind") {
            Some("kill") => "kill",
            Some("rollback") => "rollback",
            Some("rollback-env") => "rollback-env",
            Some("promote") => "promote",
            _ => "edit",
        },
        test: test.clone(),
        env: env.key.clone(),
        base,
        fields: carried(&form.fields),
        title: form.text("title"),
        careful: careful(&envs, &env),
        destructive,
        back: form.text("back"),
    };
    let comment = form.text("comment").trim().to_string();
    let mut errors = Vec::new();
    if proposal.careful && comment.is_empty() {
        errors.push(("comment".to_string(), format!("Say why: a comment is required in {}", env.name)));
    }
    let confirm_name = test.clone().unwrap_or_else(|| env.key.clone());
    if (proposal.careful || proposal.destructive) && form.text("confirm").trim() != confirm_name {
        errors.push(("confirm".to_string(), format!("Type '{confirm_name}' to confirm")));
    }
    if !errors.is_empty() {
        let preview = state.preview(&project.key, &env.key, &edit, Some(base)).await?;
        return review_page(&form.signed, &project, role, proposal, &preview, None, errors);
    }
    let meta = WriteMeta {
        base: Some(base),
        author: form.signed.user.username.clone(),
        comment: if comment.is_empty() { None } else { Some(comment) },
        role,
    };
    match state.write(&project.key, &env.key, &edit, meta).await {
        Ok(committed) => {
            let target = match &test {
                Some(t) if !matches!(edit, MatrixEdit::Promote { .. }) => test_url(&project.key, t),
                _ if matches!(edit, MatrixEdit::Rollback { .. }) => {
                    format!("/projects/{}/history?env={}", url_component(&project.key), url_component(&env.key))
                }
                _ => format!("/projects/{}", url_component(&project.key)),
            };
            let sep = if target.contains('?') { '&' } else { '?' };
            Ok(Redirect::to(&format!("{target}{sep}saved={}&env={}", committed.revision.id, url_component(&env.key))).into_response())
        }
        Err(WriteError::Conflict { .. }) => conflict_page(&state, &form.signed, &project, &env, proposal, &edit).await,
        Err(WriteError::Invalid { message, .. }) => {
            let preview = state.preview(&project.key, &env.key, &edit, None).await?;
            review_page(&form.signed, &project, role, proposal, &preview, None, vec![("summary".into(), message)])
        }
        Err(other) => Err(other.into()),
    }
}

// ---------------------------------------------------------------------------------------------
// New tests from templates

#[derive(Template)]
#[template(path = "new.html")]
struct NewPage {
    layout: Layout,
    project: String,
    template: String,
    name: String,
    environments: Vec<(String, String)>,
    env: String,
    variants: String,
    percent: String,
    errors: Vec<(String, String)>,
}

#[derive(Debug, Deserialize)]
pub struct NewQuery {
    template: Option<String>,
    env: Option<String>,
}

const TEMPLATES: [(&str, &str); 5] = [
    ("boolean", "Boolean flag: off and on"),
    ("string", "String flag: variants with text payloads"),
    ("json", "JSON flag: variants with JSON payloads"),
    ("abn", "A/B/n experiment: a control and variants, split equally"),
    ("rollout", "Percentage rollout: on for a share of users"),
];

fn default_variants(template: &str) -> &'static str {
    match template {
        "string" => "control: blue\ntreatment: green",
        "json" => "control: {\"limit\": 10}\ntreatment: {\"limit\": 20}",
        "abn" => "control\nvariant-a\nvariant-b",
        _ => "",
    }
}

/// `GET /projects/{project}/new?template=`.
pub async fn new_page(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>, Query(q): Query<NewQuery>) -> PageResult {
    let (project, _, envs, env) = writable(&state, &signed, &key, q.env.as_deref()).await?;
    let template = q.template.filter(|t| TEMPLATES.iter().any(|(k, _)| k == t)).unwrap_or_else(|| "boolean".into());
    render(&NewPage {
        layout: Layout::new("New test", &signed).in_project(&project, "tests"),
        project: project.key.clone(),
        variants: default_variants(&template).into(),
        template,
        name: String::new(),
        environments: envs.iter().map(|e| (e.key.clone(), e.name.clone())).collect(),
        env: env.key,
        percent: "10".into(),
        errors: Vec::new(),
    })
}

/// The first definition of a new test from its template.
fn from_template(template: &str, name: &str, identifier_type: &str, variants: &str, share: f64) -> Result<DefinitionForm, (String, String)> {
    use super::form::{AllocationField, BucketField, RangeField};
    let bucket = |value: i32, name: &str, payload_type: &str, payload: &str| BucketField {
        value: value.to_string(),
        name: name.into(),
        payload_type: payload_type.into(),
        payload: payload.into(),
        ..BucketField::default()
    };
    let range = |bucket: i32, percent: f64| RangeField { bucket: bucket.to_string(), percent: super::format::percent_number(percent / 100.0) };
    let mut form = DefinitionForm { test_type: identifier_type.into(), salt: name.into(), ..DefinitionForm::default() };
    let lines: Vec<&str> = variants.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match template {
        "boolean" | "rollout" => {
            form.buckets = vec![bucket(0, "off", "booleanValue", "false"), bucket(1, "on", "booleanValue", "true")];
            let on = if template == "rollout" { share } else { 0.0 };
            form.allocations = vec![AllocationField { rule: String::new(), ranges: vec![range(0, 100.0 - on), range(1, on)] }];
        }
        "string" | "json" => {
            if lines.len() < 2 {
                return Err(("variants".into(), "Write at least two variants, one per line: 'name: value'".into()));
            }
            for (i, line) in lines.iter().enumerate() {
                let (variant, value) = line.split_once(':').map_or((*line, ""), |(a, b)| (a.trim(), b.trim()));
                let kind = if template == "string" { "stringValue" } else { "json" };
                form.buckets.push(bucket(i32::try_from(i).unwrap_or(0), variant, kind, value));
            }
            form.allocations = vec![AllocationField { rule: String::new(), ranges: vec![range(0, 100.0)] }];
        }
        "abn" => {
            if lines.len() < 2 {
                return Err(("variants".into(), "Write the control and at least one variant, one per line".into()));
            }
            form.buckets.push(bucket(-1, "inactive", "", ""));
            let n = lines.len() as f64;
            let mut ranges = vec![range(-1, 0.0)];
            for (i, line) in lines.iter().enumerate() {
                form.buckets.push(bucket(i32::try_from(i).unwrap_or(0), line, "", ""));
                ranges.push(range(i32::try_from(i).unwrap_or(0), 100.0 / n));
            }
            // Shares that do not divide evenly: the last takes the remainder, so they sum to 100.
            let given: f64 = ranges[1..ranges.len() - 1].iter().filter_map(|r| r.percent.parse::<f64>().ok()).sum();
            if let Some(last) = ranges.last_mut() {
                last.percent = super::format::percent_number((100.0 - given) / 100.0);
            }
            form.allocations = vec![AllocationField { rule: String::new(), ranges }];
        }
        _ => return Err(("template".into(), format!("There is no template '{template}'"))),
    }
    Ok(form)
}

/// `POST /projects/{project}/new`: the editor, filled from the template.
pub async fn new_submit(State(state): State<SharedState>, Path(key): Path<String>, form: SignedForm) -> PageResult {
    let (project, _, envs, env) = writable(&state, &form.signed, &key, form.get("env")).await?;
    let template = form.text("template");
    let name = form.text("name").trim().to_string();
    let variants = form.text("variants");
    let percent_text = form.text("percent");
    let mut errors = Vec::new();
    if let Err(e) = check_test_name(&name) {
        errors.push(("name".to_string(), e.to_string()));
    } else if envs.iter().any(|e| state.current(&project.key, &e.key).is_ok_and(|s| s.matrix.definition(&name).is_some())) {
        errors.push(("name".to_string(), format!("A test '{name}' already exists in this project")));
    }
    let share = match percent_text.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => p,
        _ if template == "rollout" => {
            errors.push(("percent".to_string(), "The share is a number from 0 to 100".to_string()));
            0.0
        }
        _ => 0.0,
    };
    let snapshot = state.current(&project.key, &env.key)?;
    let definition = if errors.is_empty() {
        match from_template(&template, &name, &project.default_identifier_type, &variants, share) {
            Ok(d) => Some(d),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    } else {
        None
    };
    match definition {
        Some(definition) => render(&editor(&state, &form.signed, &project, &env, &name, snapshot.revision.id, true, definition, Vec::new()).await?),
        None => render_status(
            StatusCode::UNPROCESSABLE_ENTITY,
            &NewPage {
                layout: Layout::new("New test", &form.signed).in_project(&project, "tests").with_errors(true),
                project: project.key.clone(),
                template,
                name,
                environments: envs.iter().map(|e| (e.key.clone(), e.name.clone())).collect(),
                env: env.key,
                variants,
                percent: percent_text,
                errors,
            },
        ),
    }
}

impl NewPage {
    fn templates(&self) -> Vec<(&'static str, &'static str)> {
        TEMPLATES.to_vec()
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
}

// ---------------------------------------------------------------------------------------------
// Kill, roll back one test, promote

#[derive(Template)]
#[template(path = "kill.html")]
struct KillPage {
    layout: Layout,
    project: String,
    test: String,
    env: String,
    env_name: String,
    base: String,
    buckets: Vec<(i32, String, String)>,
}

/// `GET /projects/{project}/tests/{test}/kill?env=`: choose the bucket everyone gets.
pub async fn kill_page(State(state): State<SharedState>, signed: Signed, Path((key, test)): Path<(String, String)>, Query(q): Query<EnvQuery>) -> PageResult {
    let (project, _, _, env) = writable(&state, &signed, &key, q.env.as_deref()).await?;
    let snapshot = state.current(&project.key, &env.key)?;
    let definition = snapshot.matrix.definition(&test).ok_or_else(|| ConsoleError::NotFound(format!("Test '{test}' is not in environment '{}'.", env.name)))?;
    render(&KillPage {
        layout: Layout::new(format!("Kill {test}"), &signed).in_project(&project, "tests"),
        project: project.key.clone(),
        test: test.clone(),
        env: env.key.clone(),
        env_name: env.name.clone(),
        base: snapshot.revision.id.to_string(),
        buckets: definition.buckets.iter().map(|b| (b.value, b.name.clone(), bars::swatch(b.value))).collect(),
    })
}

/// `POST /projects/{project}/tests/{test}/kill`: the review of a kill.
pub async fn kill_review(State(state): State<SharedState>, Path((key, test)): Path<(String, String)>, form: SignedForm) -> PageResult {
    let bucket = form.text("bucket").parse::<i32>().map_err(|_| ConsoleError::BadForm("choose the bucket everyone gets".into()))?;
    let edit = MatrixEdit::Kill { test: test.clone(), bucket: BucketRef::Value(bucket) };
    let title = |env: &str| format!("Kill {test} in {env}");
    review_test_action(&state, &form, &key, &test, "kill", ("bucket", bucket.to_string()), edit, title).await
}

/// The review of a kill or a rollback of one test (each carries one field besides the test).
#[allow(clippy::too_many_arguments)]
async fn review_test_action(
    state: &SharedState,
    form: &SignedForm,
    key: &str,
    test: &str,
    kind: &'static str,
    field: (&str, String),
    edit: MatrixEdit,
    title: impl FnOnce(&str) -> String,
) -> PageResult {
    let (project, role, envs, env) = writable(state, &form.signed, key, form.get("env")).await?;
    let base = form.text("base").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its base revision".into()))?;
    let proposal = Proposal {
        kind,
        test: Some(test.to_string()),
        env: env.key.clone(),
        base,
        fields: vec![("test".into(), test.to_string()), ("env".into(), env.key.clone()), (field.0.to_string(), field.1)],
        title: title(&env.name),
        careful: careful(&envs, &env),
        destructive: true,
        back: format!("{}/{kind}?env={}", test_url(&project.key, test), url_component(&env.key)),
    };
    match state.preview(&project.key, &env.key, &edit, Some(base)).await {
        Ok(preview) => review_page(&form.signed, &project, role, proposal, &preview, None, Vec::new()),
        Err(WriteError::Conflict { .. }) => conflict_page(state, &form.signed, &project, &env, proposal, &edit).await,
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "rollback.html")]
struct RollbackPage {
    layout: Layout,
    project: String,
    test: String,
    env: String,
    env_name: String,
    base: String,
    versions: Vec<(String, String, String, String)>,
}

/// `GET /projects/{project}/tests/{test}/rollback?env=`: the revisions that changed the test.
pub async fn rollback_page(State(state): State<SharedState>, signed: Signed, Path((key, test)): Path<(String, String)>, Query(q): Query<EnvQuery>) -> PageResult {
    let (project, _, _, env) = writable(&state, &signed, &key, q.env.as_deref()).await?;
    let snapshot = state.current(&project.key, &env.key)?;
    let now = now_millis();
    let metas = state.store.list_revisions(env.id, None, 200).await?;
    let mut versions = Vec::new();
    let mut previous: Option<Option<TestDefinition>> = None;
    // Oldest first, keeping the revisions where the test's definition differs from the one before.
    for meta in metas.iter().rev() {
        let Ok((document, _)) = crate::ops::edit::revision_document(&state, &snapshot, meta.id).await else { continue };
        let now_def = document.tests.get(&test).cloned();
        let changed = previous.as_ref().is_none_or(|p| *p != now_def);
        if changed && meta.id != snapshot.revision.id {
            let what = if now_def.is_none() { "not present".to_string() } else { format!("version {}", now_def.as_ref().and_then(|d| d.version.clone()).unwrap_or_default()) };
            versions.push((meta.id.to_string(), format!("{} · {}", ago(meta.created_at, now), meta.author), meta.comment.clone(), what));
        }
        previous = Some(now_def);
    }
    versions.reverse();
    render(&RollbackPage {
        layout: Layout::new(format!("Roll back {test}"), &signed).in_project(&project, "tests"),
        project: project.key.clone(),
        test,
        env: env.key.clone(),
        env_name: env.name.clone(),
        base: snapshot.revision.id.to_string(),
        versions,
    })
}

/// `POST /projects/{project}/tests/{test}/rollback`: the review of a rollback.
pub async fn rollback_review(State(state): State<SharedState>, Path((key, test)): Path<(String, String)>, form: SignedForm) -> PageResult {
    let revision = form.text("revision").parse::<i64>().map_err(|_| ConsoleError::BadForm("choose a revision".into()))?;
    let edit = MatrixEdit::RollbackTest { test: test.clone(), revision };
    let title = |env: &str| format!("Roll back {test} in {env} to revision {revision}");
    review_test_action(&state, &form, &key, &test, "rollback", ("revision", revision.to_string()), edit, title).await
}

/// `POST /projects/{project}/revisions/{n}/rollback`: the review of rolling a whole environment
/// (`env` in the form) back to revision `n`: every test as it was then.
pub async fn rollback_environment_review(State(state): State<SharedState>, Path((key, revision)): Path<(String, i64)>, form: SignedForm) -> PageResult {
    let (project, role, envs, env) = writable(&state, &form.signed, &key, form.get("env")).await?;
    let base = form.text("base").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its base revision".into()))?;
    let edit = MatrixEdit::Rollback { revision };
    let proposal = Proposal {
        kind: "rollback-env",
        test: None,
        env: env.key.clone(),
        base,
        fields: vec![("env".into(), env.key.clone()), ("revision".into(), revision.to_string())],
        title: format!("Roll back {} to revision {revision}", env.name),
        careful: careful(&envs, &env),
        destructive: true,
        back: format!("/projects/{}/revisions/{revision}", url_component(&project.key)),
    };
    match state.preview(&project.key, &env.key, &edit, Some(base)).await {
        Ok(preview) => review_page(&form.signed, &project, role, proposal, &preview, None, Vec::new()),
        Err(WriteError::Conflict { .. }) => conflict_page(&state, &form.signed, &project, &env, proposal, &edit).await,
        Err(other) => Err(other.into()),
    }
}

#[derive(Template)]
#[template(path = "promote.html")]
struct PromotePage {
    layout: Layout,
    project: String,
    environments: Vec<(String, String)>,
    from: String,
    to: String,
    source: String,
    base: String,
    rows: Vec<PromoteRow>,
}

struct PromoteRow {
    test: String,
    state: &'static str,
    fields: String,
    checked: bool,
}

#[derive(Debug, Deserialize)]
pub struct PromoteQuery {
    from: Option<String>,
    to: Option<String>,
    test: Option<String>,
}

/// `GET /projects/{project}/promote?from=&to=&test=`: the tests that differ, to pick from.
pub async fn promote_page(State(state): State<SharedState>, signed: Signed, Path(key): Path<String>, Query(q): Query<PromoteQuery>) -> PageResult {
    let (project, _) = project_access(&state, &signed, &key).await?;
    let envs = environments(&state, &project).await?;
    if envs.len() < 2 {
        return Err(ConsoleError::NotFound("This project has one environment: there is nowhere to promote to.".into()));
    }
    let from = q.from.filter(|f| envs.iter().any(|(e, _)| e.key == *f)).unwrap_or_else(|| envs[0].0.key.clone());
    let from_pos = envs.iter().position(|(e, _)| e.key == from).unwrap_or(0);
    let to = q
        .to
        .filter(|t| envs.iter().position(|(e, _)| e.key == *t).is_some_and(|p| p > from_pos))
        .unwrap_or_else(|| envs[(from_pos + 1).min(envs.len() - 1)].0.key.clone());
    let (_, _, _, _) = writable(&state, &signed, &key, Some(&to)).await?;
    let source = &envs.iter().find(|(e, _)| e.key == from).ok_or_else(|| ConsoleError::NotFound(from.clone()))?.1;
    let target = &envs.iter().find(|(e, _)| e.key == to).ok_or_else(|| ConsoleError::NotFound(to.clone()))?.1;
    let rows = source
        .matrix
        .test_names()
        .filter_map(|name| {
            let def = source.matrix.definition(name)?;
            let (state_text, fields) = match target.matrix.definition(name) {
                None => ("new there", String::new()),
                Some(other) if crate::ops::edit::same_definition(def, other) => return None,
                Some(other) => ("differs", crate::ops::diff::test_change(name, Some(other), Some(def)).map(|c| c.fields.join(", ")).unwrap_or_default()),
            };
            let checked = q.test.as_ref().is_none_or(|t| t == name);
            Some(PromoteRow { test: name.to_string(), state: state_text, fields, checked })
        })
        .collect();
    render(&PromotePage {
        layout: Layout::new("Promote", &signed).in_project(&project, "tests"),
        project: project.key.clone(),
        environments: envs.iter().map(|(e, _)| (e.key.clone(), e.name.clone())).collect(),
        source: source.revision.id.to_string(),
        base: target.revision.id.to_string(),
        from,
        to,
        rows,
    })
}

/// `POST /projects/{project}/promote`: the review of a promotion.
pub async fn promote_review(State(state): State<SharedState>, Path(key): Path<String>, form: SignedForm) -> PageResult {
    let to = form.text("to");
    let (project, role, envs, env) = writable(&state, &form.signed, &key, Some(&to)).await?;
    let tests: Vec<String> = form.fields.iter().filter(|(k, _)| k == "tests").map(|(_, v)| v.clone()).collect();
    if tests.is_empty() {
        return Err(ConsoleError::BadForm("Choose at least one test to promote (go back and tick it).".into()));
    }
    let base = form.text("base").parse::<i64>().map_err(|_| ConsoleError::BadForm("the form lost its base revision".into()))?;
    let source = form.get("source").and_then(|s| s.parse::<i64>().ok());
    let from = form.text("from");
    let edit = MatrixEdit::Promote { from: from.clone(), tests: tests.clone(), source_revision: source };
    let mut fields = vec![("env".to_string(), env.key.clone()), ("from".to_string(), from.clone())];
    if let Some(source) = source {
        fields.push(("source".into(), source.to_string()));
    }
    fields.extend(tests.iter().map(|t| ("tests".to_string(), t.clone())));
    let proposal = Proposal {
        kind: "promote",
        test: None,
        env: env.key.clone(),
        base,
        fields,
        title: format!("Promote {} test(s) from {from} to {}", tests.len(), env.name),
        careful: careful(&envs, &env),
        destructive: false,
        back: format!("/projects/{}/promote?from={}&to={}", url_component(&project.key), url_component(&from), url_component(&env.key)),
    };
    match state.preview(&project.key, &env.key, &edit, Some(base)).await {
        Ok(preview) if !preview.valid => {
            let errors = preview.diagnostics.iter().filter(|d| d["severity"] == "error").map(|d| ("summary".to_string(), d["message"].as_str().unwrap_or_default().to_string())).collect();
            review_page(&form.signed, &project, role, proposal, &preview, None, errors)
        }
        Ok(preview) => review_page(&form.signed, &project, role, proposal, &preview, None, Vec::new()),
        Err(WriteError::Conflict { message, .. }) if source.is_some() && message.contains("promotion") => {
            Err(ConsoleError::BadForm(format!("{message} (go back and pick the tests again)")))
        }
        Err(WriteError::Conflict { .. }) => conflict_page(&state, &form.signed, &project, &env, proposal, &edit).await,
        Err(other) => Err(other.into()),
    }
}

impl ReviewPage {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }
}
