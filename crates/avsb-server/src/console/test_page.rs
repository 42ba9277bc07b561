//! A test's page: its definition in every environment side by side, in evaluation order
//! (targets, dependency, the test's rule, each allocation with its bar), its buckets and
//! payloads, what depends on it, and the actions: edit, kill, roll back, promote.

use std::collections::BTreeSet;

use askama::Template;
use avsb_core::document::TestDefinition;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::bars::{self, Bar};
use super::format::{ago, percent, url_component};
use super::pages::{environments, project_access, segments, state_of, TestState};
use super::{render, ConsoleError, Layout, PageResult, Signed};
use crate::store::{now_millis, ProjectRole};
use crate::SharedState;

#[derive(Template)]
#[template(path = "test.html")]
struct TestPage {
    layout: Layout,
    project: String,
    name: String,
    kind: String,
    salt: String,
    description: String,
    columns: Vec<Column>,
    rows: Vec<GridRow>,
    buckets: Vec<BucketRow>,
    dependents: Vec<String>,
    banners: Vec<Banner>,
    saved: Option<String>,
    can_edit: bool,
    first_env: String,
}

/// A test that gives one bucket to everyone in an environment.
struct Banner {
    text: String,
    env: String,
    killed: bool,
    can_restore: bool,
}

/// `?saved=<revision>&env=`: the notice after a save.
#[derive(Debug, Deserialize)]
pub struct SavedQuery {
    saved: Option<i64>,
    env: Option<String>,
}

struct Column {
    key: String,
    name: String,
    last: bool,
    present: bool,
    protected: bool,
    version: String,
    changed: String,
    editable: bool,
}

struct GridRow {
    label: String,
    cells: Vec<GridCell>,
}

struct GridCell {
    /// Text (rules, identifiers): escaped by the template.
    text: String,
    /// A bar (trusted SVG), or empty.
    bar: String,
    /// The bar's shares in words.
    shares: String,
    last: bool,
}

struct BucketRow {
    value: i32,
    swatch: String,
    name: String,
    description: String,
    payload: String,
    differs: String,
}

fn dash(text: Option<&str>) -> String {
    text.filter(|t| !t.trim().is_empty()).map_or_else(|| "—".to_string(), str::to_string)
}

/// `GET /projects/{project}/tests/{test}`.
pub async fn show(
    State(state): State<SharedState>,
    signed: Signed,
    Path((key, name)): Path<(String, String)>,
    Query(q): Query<SavedQuery>,
) -> PageResult {
    let (project, role) = project_access(&state, &signed, &key).await?;
    let envs = environments(&state, &project).await?;
    let definitions: Vec<Option<&TestDefinition>> = envs.iter().map(|(_, s)| s.matrix.definition(&name)).collect();
    let Some(first) = definitions.iter().flatten().next().copied() else {
        return Err(ConsoleError::NotFound(format!("There is no test '{name}' in project '{}'.", project.key)));
    };
    let now = now_millis();
    let last = envs.len().saturating_sub(1);
    let versions: Vec<i64> = definitions.iter().flatten().filter_map(|d| d.version.as_deref()?.parse().ok()).collect();
    let metas = state.store.revision_metas(versions).await?;
    let columns: Vec<Column> = envs
        .iter()
        .enumerate()
        .map(|(i, (env, _))| {
            let def = definitions[i];
            let meta = def.and_then(|d| d.version.as_deref()?.parse::<i64>().ok()).and_then(|v| metas.iter().find(|m| m.id == v));
            Column {
                key: env.key.clone(),
                name: env.name.clone(),
                last: i == last,
                present: def.is_some(),
                protected: env.protected,
                version: def.and_then(|d| d.version.clone()).unwrap_or_default(),
                changed: meta.map_or(String::new(), |m| format!("{} · {}", ago(m.created_at, now), m.author)),
                editable: role >= ProjectRole::Admin || (role >= ProjectRole::Editor && !env.protected),
            }
        })
        .collect();
    let cell = |i: usize, text: String| GridCell { text, bar: String::new(), shares: String::new(), last: i == last };
    let mut rows = Vec::new();
    rows.push(GridRow {
        label: "Targets".into(),
        cells: definitions
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let text = match d {
                    None => "—".into(),
                    Some(d) if d.targets.is_empty() => "none".into(),
                    Some(d) => d
                        .targets
                        .iter()
                        .map(|t| {
                            let bucket = d.buckets.iter().find(|b| b.value == t.bucket_value).map_or_else(|| t.bucket_value.to_string(), |b| b.name.clone());
                            format!("{} id{} → {bucket}", t.identifiers.len(), if t.identifiers.len() == 1 { "" } else { "s" })
                        })
                        .collect::<Vec<_>>()
                        .join("; "),
                };
                cell(i, text)
            })
            .collect(),
    });
    rows.push(GridRow {
        label: "Depends on".into(),
        cells: definitions
            .iter()
            .enumerate()
            .map(|(i, d)| cell(i, d.map_or("—".into(), |d| d.depends_on.as_ref().map_or("none".into(), |p| format!("{} = {}", p.test_name, p.bucket_value)))))
            .collect(),
    });
    rows.push(GridRow {
        label: "Test rule".into(),
        cells: definitions.iter().enumerate().map(|(i, d)| cell(i, d.map_or("—".into(), |d| dash(d.rule.as_deref()).replace('—', "everyone")))).collect(),
    });
    let allocations = definitions.iter().flatten().map(|d| d.allocations.len()).max().unwrap_or(0);
    for a in 0..allocations {
        let cells = definitions
            .iter()
            .enumerate()
            .map(|(i, d)| match d.and_then(|d| d.allocations.get(a).map(|x| (d, x))) {
                None => cell(i, "—".into()),
                Some((d, allocation)) => {
                    let segs = segments(d, a);
                    GridCell {
                        text: allocation.rule.as_deref().filter(|r| !r.trim().is_empty()).map_or("everyone else".to_string(), str::to_string),
                        bar: bars::bar(&segs, &Bar { id: &format!("a{a}-{i}"), width: 200, height: 24, drag: None }),
                        shares: segs.iter().map(|s| format!("{} {}", s.name, percent(s.share))).collect::<Vec<_>>().join(", "),
                        last: i == last,
                    }
                }
            })
            .collect();
        rows.push(GridRow { label: format!("Allocation {}", a + 1), cells });
    }
    let buckets = first
        .buckets
        .iter()
        .map(|b| {
            let differs: Vec<&str> = definitions
                .iter()
                .zip(&envs)
                .filter_map(|(d, (env, _))| {
                    let other = d.and_then(|d| d.buckets.iter().find(|x| x.value == b.value));
                    (d.is_some() && other != Some(b)).then_some(env.name.as_str())
                })
                .collect();
            BucketRow {
                value: b.value,
                swatch: bars::swatch(b.value),
                name: b.name.clone(),
                description: dash(b.description.as_deref()),
                payload: b.payload.as_ref().map_or_else(|| "—".into(), |p| p.to_json().to_string()),
                differs: if differs.is_empty() { String::new() } else { format!("differs in {}", differs.join(", ")) },
            }
        })
        .collect();
    let dependents: BTreeSet<String> = envs
        .iter()
        .flat_map(|(_, s)| {
            s.matrix
                .test_names()
                .filter(|t| s.matrix.definition(t).and_then(|d| d.depends_on.as_ref()).is_some_and(|p| p.test_name == name))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    // One bucket for everyone: said loudly per environment, with the way back.
    let banners: Vec<Banner> = envs
        .iter()
        .zip(&definitions)
        .zip(&columns)
        .filter_map(|(((env, _), def), column)| {
            let d = (*def)?;
            if d.allocations.is_empty() || state_of(d) == TestState::Split {
                return None;
            }
            let bucket = segments(d, 0).into_iter().find(|s| s.share > 0.0).map_or(String::new(), |s| s.name);
            let meta = d.version.as_deref().and_then(|v| v.parse::<i64>().ok()).and_then(|v| metas.iter().find(|m| m.id == v));
            let killed = meta.is_some_and(|m| m.kind == "kill");
            let since = meta.map_or(String::new(), |m| {
                let comment = if m.comment.is_empty() { String::new() } else { format!(": {}", m.comment) };
                format!(" since revision {} ({}, {}{comment})", m.id, m.author, ago(m.created_at, now))
            });
            let text = if killed {
                format!("Killed in {}: everyone gets '{bucket}'{since}.", env.name)
            } else {
                format!("One bucket for everyone in {}: '{bucket}'{since}.", env.name)
            };
            Some(Banner { text, env: env.key.clone(), killed, can_restore: column.editable && role >= ProjectRole::Editor })
        })
        .collect();
    let saved = q.saved.map(|id| {
        let env = envs.iter().find(|(e, _)| Some(&e.key) == q.env.as_ref()).map_or(String::new(), |(e, _)| format!(" in {}", e.name));
        format!("Saved as revision {id}{env}. Apps connected to the server see it within a second.")
    });
    let first_env = envs.iter().zip(&definitions).find(|(_, d)| d.is_some()).map_or(String::new(), |((e, _), _)| e.key.clone());
    let page = TestPage {
        layout: Layout::new(name.clone(), &signed).in_project(&project, "tests"),
        project: project.key.clone(),
        kind: first.test_type.to_uppercase(),
        salt: dash(first.salt.as_deref()),
        description: first.description.clone().unwrap_or_default(),
        columns,
        rows,
        buckets,
        dependents: dependents.into_iter().collect(),
        banners,
        saved,
        can_edit: role >= ProjectRole::Editor,
        first_env,
        name,
    };
    render(&page)
}

impl TestPage {
    fn test_url(&self) -> String {
        format!("/projects/{}/tests/{}", url_component(&self.project), url_component(&self.name))
    }
}
