//! An environment's history: every revision, newest first, with the tests each one changed,
//! and one revision's page: its audit and a readable diff against its parent or any other
//! revision of the same environment, with the way back for each test it changed.
//!
//! Which tests a revision changed is not stored: it is found by comparing the revision's
//! document with its parent's, and only for the revisions a page shows (a filter by test has to
//! walk back until the page is full).

use std::collections::{BTreeSet, HashMap};

use askama::Template;
use avsb_core::MatrixDocument;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::edit::{change_view, ChangeView};
use super::format::{ago, date, url_component};
use super::pages::project_access;
use super::{render, ConsoleError, Layout, PageResult, Signed};
use crate::ops::edit::same_definition;
use crate::store::{now_millis, Environment, ProjectRole, RevisionMeta};
use crate::SharedState;

/// Revisions per page of the history.
const PAGE_SIZE: usize = 50;
/// Revisions read from the store at a time while looking for those that changed one test.
const SCAN_BATCH: u32 = 200;
/// Test names listed in a history row before "and N more".
const NAMES_SHOWN: usize = 6;

/// The tests whose definitions differ between a revision's parent (`before`; `None` for an
/// environment's first revision) and the revision (`after`), versions aside, in name order.
pub fn changed_tests(before: Option<&MatrixDocument>, after: &MatrixDocument) -> Vec<String> {
    let empty = indexmap::IndexMap::new();
    let old = before.map_or(&empty, |d| &d.tests);
    let names: BTreeSet<&String> = old.keys().chain(after.tests.keys()).collect();
    names
        .into_iter()
        .filter(|name| match (old.get(*name), after.tests.get(*name)) {
            (Some(a), Some(b)) => !same_definition(a, b),
            (None, None) => false,
            _ => true,
        })
        .cloned()
        .collect()
}

/// Revision documents of one environment, each read once.
struct Documents<'a> {
    state: &'a SharedState,
    environment_id: i64,
    read: HashMap<i64, MatrixDocument>,
}

impl<'a> Documents<'a> {
    fn new(state: &'a SharedState, environment_id: i64) -> Self {
        Documents { state, environment_id, read: HashMap::new() }
    }

    /// A revision's document; not found when it is another environment's.
    async fn load(&self, id: i64) -> Result<MatrixDocument, ConsoleError> {
        let stored = self
            .state
            .store
            .revision(id)
            .await?
            .filter(|r| r.meta.environment_id == self.environment_id)
            .ok_or_else(|| ConsoleError::NotFound(format!("There is no revision {id} in this environment.")))?;
        let (document, _) = MatrixDocument::from_json(&stored.matrix_json)
            .map_err(|e| ConsoleError::Internal(format!("revision {id} does not read: {e}")))?;
        Ok(document)
    }

    /// Reads a revision's document unless it is kept already.
    async fn keep(&mut self, id: i64) -> Result<(), ConsoleError> {
        if !self.read.contains_key(&id) {
            let document = self.load(id).await?;
            self.read.insert(id, document);
        }
        Ok(())
    }

    /// The tests a revision changed against its parent. Only the parent's document is kept
    /// afterwards: the history walks backwards, so the parent is the next revision asked for.
    async fn changed(&mut self, meta: &RevisionMeta) -> Result<Vec<String>, ConsoleError> {
        self.keep(meta.id).await?;
        if let Some(parent) = meta.parent {
            self.keep(parent).await?;
        }
        let after = self.read.get(&meta.id).ok_or_else(|| ConsoleError::Internal(format!("revision {} was not kept", meta.id)))?;
        let before = meta.parent.and_then(|p| self.read.get(&p));
        let changed = changed_tests(before, after);
        self.read.retain(|id, _| Some(*id) == meta.parent);
        Ok(changed)
    }
}

/// `?env=&test=&page=`.
#[derive(Debug, Default, Deserialize)]
pub struct HistoryQuery {
    #[serde(default)]
    env: String,
    #[serde(default)]
    test: String,
    #[serde(default)]
    page: Option<usize>,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    layout: Layout,
    project: String,
    environments: Vec<(String, String)>,
    env: String,
    env_name: String,
    test: String,
    rows: Vec<HistoryRow>,
    page: usize,
    previous: Option<String>,
    next: Option<String>,
}

struct HistoryRow {
    id: i64,
    href: String,
    when: String,
    date: String,
    author: String,
    kind: String,
    comment: String,
    /// The changed tests shown, each with the link to the revisions that changed it.
    tests: Vec<(String, String)>,
    /// How many more changed.
    more: usize,
    current: bool,
}

/// The environment a page asks for: by key, or the last one (production) when none is given.
fn chosen(envs: &[Environment], key: &str) -> Result<Environment, ConsoleError> {
    let env = if key.is_empty() { envs.last() } else { envs.iter().find(|e| e.key == key) };
    env.cloned().ok_or_else(|| ConsoleError::NotFound(format!("There is no environment '{key}' in this project.")))
}

/// The URL of a history page.
fn history_url(project: &str, env: &str, test: &str, page: usize) -> String {
    let mut url = format!("/projects/{}/history?env={}", url_component(project), url_component(env));
    if !test.is_empty() {
        url.push_str(&format!("&test={}", url_component(test)));
    }
    if page > 1 {
        url.push_str(&format!("&page={page}"));
    }
    url
}

/// `GET /projects/{project}/history?env=&test=&page=`.
pub async fn history(
    State(state): State<SharedState>,
    signed: Signed,
    Path(key): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> PageResult {
    let (project, _) = project_access(&state, &signed, &key).await?;
    let envs = state.store.list_environments(project.id).await?;
    let env = chosen(&envs, &q.env)?;
    let test = q.test.trim().to_string();
    let page = q.page.unwrap_or(1).max(1);
    let skip = (page - 1) * PAGE_SIZE;
    let mut documents = Documents::new(&state, env.id);
    // The revisions of this page (and whether there is another), with the tests each changed.
    let mut found: Vec<(RevisionMeta, Vec<String>)> = Vec::new();
    let mut more = false;
    if test.is_empty() {
        let limit = u32::try_from(skip + PAGE_SIZE + 1).unwrap_or(u32::MAX);
        let metas = state.store.list_revisions(env.id, None, limit).await?;
        more = metas.len() > skip + PAGE_SIZE;
        for meta in metas.into_iter().skip(skip).take(PAGE_SIZE) {
            let changed = documents.changed(&meta).await?;
            found.push((meta, changed));
        }
    } else {
        // Walk back until the page is full: every revision has to be compared to know.
        let mut matched = 0usize;
        let mut before = None;
        'scan: loop {
            let metas = state.store.list_revisions(env.id, before, SCAN_BATCH).await?;
            let Some(last) = metas.last() else { break };
            before = Some(last.id);
            let batch_len = metas.len();
            for meta in metas {
                let changed = documents.changed(&meta).await?;
                if !changed.contains(&test) {
                    continue;
                }
                matched += 1;
                if matched > skip + PAGE_SIZE {
                    more = true;
                    break 'scan;
                }
                if matched > skip {
                    found.push((meta, changed));
                }
            }
            if batch_len < SCAN_BATCH as usize {
                break;
            }
        }
    }
    let now = now_millis();
    let rows = found
        .into_iter()
        .map(|(meta, changed)| HistoryRow {
            id: meta.id,
            href: format!("/projects/{}/revisions/{}", url_component(&project.key), meta.id),
            when: ago(meta.created_at, now),
            date: date(meta.created_at),
            author: meta.author,
            kind: meta.kind,
            comment: meta.comment,
            more: changed.len().saturating_sub(NAMES_SHOWN),
            tests: changed
                .into_iter()
                .take(NAMES_SHOWN)
                .map(|t| {
                    let href = history_url(&project.key, &env.key, &t, 1);
                    (t, href)
                })
                .collect(),
            current: meta.id == env.current_revision,
        })
        .collect();
    let title = if test.is_empty() { format!("History · {}", env.name) } else { format!("History of {test} · {}", env.name) };
    render(&HistoryPage {
        layout: Layout::new(title, &signed).in_project(&project, "history"),
        project: project.key.clone(),
        environments: envs.iter().map(|e| (e.key.clone(), e.name.clone())).collect(),
        previous: (page > 1).then(|| history_url(&project.key, &env.key, &test, page - 1)),
        next: more.then(|| history_url(&project.key, &env.key, &test, page + 1)),
        env: env.key,
        env_name: env.name,
        test,
        rows,
        page,
    })
}

/// `?against=`: the revision to compare with, instead of the parent.
#[derive(Debug, Default, Deserialize)]
pub struct RevisionQuery {
    #[serde(default)]
    against: String,
}

#[derive(Template)]
#[template(path = "revision.html")]
struct RevisionPage {
    layout: Layout,
    project: String,
    id: i64,
    env: String,
    env_name: String,
    when: String,
    date: String,
    author: String,
    kind: String,
    comment: String,
    test_count: i64,
    parent: Option<i64>,
    /// The revision compared with (the parent unless `against` says otherwise); none for an
    /// environment's first revision.
    base: Option<i64>,
    /// The revision compared with is newer than this one.
    base_newer: bool,
    against: String,
    current: i64,
    /// Each changed test, and how to bring it back to this revision.
    changes: Vec<(ChangeView, Return)>,
    errors: Vec<(String, String)>,
    /// The user may roll the whole environment back to this revision (and it is not current).
    can_roll_back: bool,
}

/// The way back for one test of a revision.
struct Return {
    /// The test is now as it was at this revision: nothing to roll back.
    same_now: bool,
    /// The user may change this environment.
    allowed: bool,
    /// The per-test rollback page (every earlier version of the test).
    versions_href: String,
    /// The form's action: the review of rolling this test back to this revision.
    review_action: String,
}

/// `GET /projects/{project}/revisions/{n}?against=m`.
pub async fn revision(
    State(state): State<SharedState>,
    signed: Signed,
    Path((key, id)): Path<(String, String)>,
    Query(q): Query<RevisionQuery>,
) -> PageResult {
    let (project, role) = project_access(&state, &signed, &key).await?;
    let not_found = || ConsoleError::NotFound(format!("There is no revision '{id}' in project '{key}'."));
    let id: i64 = id.trim_start_matches(['r', 'R']).parse().map_err(|_| not_found())?;
    let envs = state.store.list_environments(project.id).await?;
    let stored = state.store.revision(id).await?.ok_or_else(not_found)?;
    // Only revisions of this project's environments: another project's are not found.
    let env = envs.iter().find(|e| e.id == stored.meta.environment_id).cloned().ok_or_else(not_found)?;
    let (document, _) =
        MatrixDocument::from_json(&stored.matrix_json).map_err(|e| ConsoleError::Internal(format!("revision {id} does not read: {e}")))?;
    let meta = stored.meta;
    let mut documents = Documents::new(&state, env.id);
    let mut errors = Vec::new();
    let against = q.against.trim().trim_start_matches(['r', 'R']).to_string();
    let mut base = meta.parent;
    if !against.is_empty() {
        match against.parse::<i64>() {
            Ok(other) if other == id => errors.push(("against".into(), format!("Choose a revision other than {id} to compare with"))),
            Ok(other) => match documents.load(other).await {
                Ok(other_document) => {
                    documents.read.insert(other, other_document);
                    base = Some(other);
                }
                Err(ConsoleError::NotFound(_)) => {
                    errors.push(("against".into(), format!("There is no revision {other} in {}: choose one of its revisions", env.name)));
                }
                Err(other) => return Err(other),
            },
            Err(_) => errors.push(("against".into(), "The revision to compare with is a number, such as 41".into())),
        }
    }
    let before = match base {
        Some(b) => {
            documents.keep(b).await?;
            documents.read.get(&b)
        }
        None => None,
    };
    let empty = MatrixDocument { audit: document.audit.clone(), tests: Default::default() };
    let changes: Vec<_> = crate::ops::diff::matrix_changes(before.unwrap_or(&empty), &document);
    let snapshot = state.current(&project.key, &env.key)?;
    let allowed = role >= ProjectRole::Admin || (role >= ProjectRole::Editor && !env.protected);
    let test_url = |t: &str| format!("/projects/{}/tests/{}", url_component(&project.key), url_component(t));
    let returns: Vec<Return> = changes
        .iter()
        .map(|c| {
            let now_def = snapshot.matrix.definition(&c.test);
            let then_def = document.tests.get(&c.test);
            let same_now = match (now_def, then_def) {
                (Some(a), Some(b)) => same_definition(a, b),
                (None, None) => true,
                _ => false,
            };
            Return {
                same_now,
                allowed,
                versions_href: format!("{}/rollback?env={}", test_url(&c.test), url_component(&env.key)),
                review_action: format!("{}/rollback", test_url(&c.test)),
            }
        })
        .collect();
    let now = now_millis();
    let page = RevisionPage {
        layout: Layout::new(format!("Revision {id} · {}", env.name), &signed).in_project(&project, "history").with_errors(!errors.is_empty()),
        project: project.key.clone(),
        id,
        env: env.key.clone(),
        env_name: env.name.clone(),
        when: ago(meta.created_at, now),
        date: date(meta.created_at),
        author: meta.author,
        kind: meta.kind,
        comment: meta.comment,
        test_count: meta.test_count,
        parent: meta.parent,
        base,
        base_newer: base.is_some_and(|b| b > id),
        against: if errors.is_empty() { base.filter(|b| Some(*b) != meta.parent).map(|b| b.to_string()).unwrap_or_default() } else { q.against.clone() },
        current: snapshot.revision.id,
        changes: changes.iter().map(change_view).zip(returns).collect(),
        errors,
        can_roll_back: allowed && id != snapshot.revision.id,
    };
    if page.errors.is_empty() {
        render(&page)
    } else {
        super::render_status(axum::http::StatusCode::UNPROCESSABLE_ENTITY, &page)
    }
}

impl RevisionPage {
    /// The diff's "before" column's revision, when there is one.
    fn before_label(&self) -> String {
        self.base.map_or_else(String::new, |b| format!(" (r{b})"))
    }

    /// The diff's "after" column's revision.
    fn after_label(&self) -> String {
        format!(" (r{})", self.id)
    }

    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|(f, _)| f == field).map(|(_, m)| m.as_str())
    }

    fn history_url(&self) -> String {
        history_url(&self.project, &self.env, "", 1)
    }

    fn test_url(&self, test: &str) -> String {
        format!("/projects/{}/tests/{}", url_component(&self.project), url_component(test))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(tests: &[(&str, &str)]) -> MatrixDocument {
        let tests: Vec<String> = tests
            .iter()
            .map(|(name, salt)| {
                format!(
                    r#""{name}": {{"testType": "USER", "salt": "{salt}", "version": "{salt}", "buckets": [{{"name": "control", "value": 0}}],
                       "allocations": [{{"ranges": [{{"bucketValue": 0, "length": 1.0}}]}}]}}"#
                )
            })
            .collect();
        let json = format!(r#"{{"audit": {{"version": "1", "updated": 0, "updatedBy": "t"}}, "tests": {{{}}}}}"#, tests.join(","));
        MatrixDocument::from_json(&json).expect("a test document").0
    }

    #[test]
    fn a_revision_changes_the_tests_added_removed_or_redefined() {
        let before = document(&[("kept", "a"), ("gone", "a"), ("salted", "a")]);
        let after = document(&[("kept", "a"), ("salted", "b"), ("new", "a")]);
        assert_eq!(changed_tests(Some(&before), &after), vec!["gone", "new", "salted"]);
    }

    #[test]
    fn an_environments_first_revision_adds_every_test() {
        let first = document(&[("b", "x"), ("a", "x")]);
        assert_eq!(changed_tests(None, &first), vec!["a", "b"]);
    }

    #[test]
    fn a_new_version_alone_is_no_change() {
        let before = document(&[("t", "a")]);
        let mut after = before.clone();
        if let Some(t) = after.tests.get_mut("t") {
            t.version = Some("99".into());
        }
        assert!(changed_tests(Some(&before), &after).is_empty());
    }
}
