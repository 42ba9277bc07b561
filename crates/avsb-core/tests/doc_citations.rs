//! Every section citation in the repository resolves to a file and a heading in `docs/`.
//!
//! The code and the spec cite the upstream facts they rely on as `docs/proctor.md §2.5`: a file
//! under `docs/`, then a section number, with ranges written `docs/proctor.md §2.3–§2.5`. Further
//! numbers later on the same line belong to the last file named before them, and inside a
//! `docs/*.md` file a number without a file name refers to that file itself. A citation resolves
//! when the file exists and has a markdown heading whose text starts with the number followed by a
//! space (`### 2.5 Salt rules ...`).
//!
//! A section sign anywhere else (with no `docs/*.md` before it on its line, or with no number
//! after it) is refused too, so that nothing can cite a reference that is not in the repository.
//!
//! Scanned: `*.rs`, `*.py`, `*.pyi`, `*.md`, `*.json` and `*.toml` under `crates/`, `python/`,
//! `tests/`, `spec/` and `docs/`, plus the root `README.md`, `ARCHITECTURE.md` and `Cargo.toml`;
//! build output, virtualenvs and hidden directories are skipped. The tests below write the section
//! sign as an escape, so that the scan does not take their deliberately wrong examples for
//! citations.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use regex::Regex;

/// The section sign, written as an escape (see the module comment).
const SECTION: char = '\u{a7}';

const ROOTS: &[&str] = &["crates", "python", "tests", "spec", "docs"];
const ROOT_FILES: &[&str] = &["README.md", "ARCHITECTURE.md", "Cargo.toml"];
const EXTENSIONS: &[&str] = &["rs", "py", "pyi", "md", "json", "toml"];
const SKIPPED_DIRS: &[&str] = &["target", "node_modules", "__pycache__", "site-packages", "build", "dist"];

/// Fewer citations than this means the scan went wrong, not that the repository is clean.
const MIN_CITATIONS: usize = 250;

/// A markdown heading that starts with a section number followed by a space.
static NUMBERED_HEADING: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^#{1,6}[ \t]+(\d+(?:\.\d+)*) ").unwrap());
/// A file under `docs/` named in a line.
static DOC_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"docs/[A-Za-z0-9_.-]+?\.md").unwrap());
/// The section number right after a section sign.
static NUMBER: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[ \u{a0}]?(\d+(?:\.\d+)*)").unwrap());
/// The end of a range written without its own section sign, as in `2.3–2.5`.
static RANGE_END: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[ ]?[–-][ ]?(\d+(?:\.\d+)*)").unwrap());

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One citation that resolved.
#[derive(Debug)]
struct Citation {
    /// Where it is, as `path:line`.
    at: String,
    /// The cited file, such as `docs/proctor.md`.
    doc: String,
    /// The section number, such as `2.5`.
    section: String,
}

/// The numbered headings of the docs files, read once each.
struct Docs {
    root: PathBuf,
    /// `docs/proctor.md` → its heading numbers, or `None` when the file does not exist.
    files: BTreeMap<String, Option<BTreeSet<String>>>,
}

impl Docs {
    fn new(root: &Path) -> Docs {
        Docs { root: root.to_path_buf(), files: BTreeMap::new() }
    }

    /// The section numbers of a docs file's headings, or `None` when it does not exist.
    fn sections(&mut self, doc: &str) -> Option<&BTreeSet<String>> {
        let root = &self.root;
        self.files
            .entry(doc.to_string())
            .or_insert_with(|| {
                let text = std::fs::read_to_string(root.join(doc)).ok()?;
                Some(numbered_headings(&text).into_iter().map(|(_, number)| number).collect())
            })
            .as_ref()
    }
}

/// The numbered markdown headings (`## 2 Bucket ...`, `### 2.5 Salt ...`) outside fenced code
/// blocks: each one's line number and section number.
fn numbered_headings(markdown: &str) -> Vec<(usize, String)> {
    let mut in_fence = false;
    let mut out = Vec::new();
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        } else if let Some(m) = NUMBERED_HEADING.captures(line).filter(|_| !in_fence) {
            out.push((i + 1, m[1].to_string()));
        }
    }
    out
}

/// Checks one line of `path` (relative to the repository, with `/` separators). Returns the
/// citations that resolved and a sentence for each problem.
fn check_line(path: &str, line: &str, docs: &mut Docs) -> (Vec<Citation>, Vec<String>) {
    let own_doc = (path.starts_with("docs/") && path.ends_with(".md")).then_some(path);

    let mentions: Vec<(usize, &str)> = DOC_NAME.find_iter(line).map(|m| (m.end(), m.as_str())).collect();
    let mut citations = Vec::new();
    let mut problems = Vec::new();
    for (at, _) in line.match_indices(SECTION) {
        let after = &line[at + SECTION.len_utf8()..];
        let Some(first) = NUMBER.captures(after) else {
            problems.push(format!("a {SECTION} without a section number after it"));
            continue;
        };
        let mut sections = vec![first[1].to_string()];
        if let Some(end) = RANGE_END.captures(&after[first[0].len()..]) {
            sections.push(end[1].to_string());
        }
        let named = mentions.iter().rev().find(|(end, _)| *end <= at).map(|(_, doc)| *doc);
        let Some(doc) = named.or(own_doc) else {
            problems.push(format!(
                "{SECTION}{} does not name its file: write `docs/<file>.md {SECTION}{}` on the same line",
                sections[0], sections[0]
            ));
            continue;
        };
        for section in sections {
            match docs.sections(doc) {
                None => problems.push(format!("{doc} {SECTION}{section}: {doc} does not exist")),
                Some(headings) if !headings.contains(&section) => {
                    problems.push(format!("{doc} {SECTION}{section}: {doc} has no heading numbered {section}"))
                }
                Some(_) => citations.push(Citation { at: String::new(), doc: doc.to_string(), section }),
            }
        }
    }
    (citations, problems)
}

/// Every file the check reads, relative to the repository root, in a stable order.
fn scanned_files(root: &Path) -> Vec<String> {
    fn skipped(dir: &Path) -> bool {
        let name = dir.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        name.starts_with('.')
            || name.contains("venv")
            || name.ends_with(".egg-info")
            || SKIPPED_DIRS.contains(&name.as_str())
            || dir.join("pyvenv.cfg").exists()
    }
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        paths.sort();
        for path in paths {
            if path.is_dir() {
                if !skipped(&path) {
                    walk(&path, root, out);
                }
            } else if path.extension().is_some_and(|e| EXTENSIONS.contains(&e.to_string_lossy().as_ref())) {
                out.push(relative(&path, root));
            }
        }
    }
    fn relative(path: &Path, root: &Path) -> String {
        let rel = path.strip_prefix(root).unwrap_or(path);
        rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
    }
    let mut out = Vec::new();
    for file in ROOT_FILES {
        if root.join(file).is_file() {
            out.push(file.to_string());
        }
    }
    for dir in ROOTS {
        walk(&root.join(dir), root, &mut out);
    }
    out
}

/// Checks every scanned file: the citations that resolved, and `path:line: problem` for the rest.
fn check_repository() -> (Vec<Citation>, Vec<String>) {
    let root = repo_root();
    let mut docs = Docs::new(&root);
    let mut citations = Vec::new();
    let mut problems = Vec::new();
    for path in scanned_files(&root) {
        let Ok(bytes) = std::fs::read(root.join(&path)) else { continue };
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if !line.contains(SECTION) {
                continue;
            }
            let at = format!("{path}:{}", i + 1);
            let (found, wrong) = check_line(&path, line, &mut docs);
            citations.extend(found.into_iter().map(|c| Citation { at: at.clone(), ..c }));
            let shown: String = line.trim().chars().take(160).collect();
            problems.extend(wrong.into_iter().map(|p| format!("{at}: {p}\n      {shown}")));
        }
    }
    (citations, problems)
}

#[test]
fn every_section_citation_names_a_docs_file_and_resolves_to_a_heading() {
    let (citations, problems) = check_repository();
    assert!(
        problems.is_empty(),
        "{} section citations do not resolve (of {} that do). Cite the facts in docs/ as \
         `docs/<file>.md {SECTION}<number>`, with a heading `### <number> ...` in that file:\n{}",
        problems.len(),
        citations.len(),
        problems.join("\n")
    );
}

#[test]
fn the_scan_finds_the_citations_it_is_meant_to_check() {
    let (citations, _) = check_repository();
    assert!(
        citations.len() >= MIN_CITATIONS,
        "only {} citations resolved; the scan must be missing files (expected at least {MIN_CITATIONS})",
        citations.len()
    );
    let kinds: BTreeSet<&str> =
        citations.iter().filter_map(|c| c.at.split(':').next()?.rsplit('.').next()).collect();
    for kind in ["rs", "json", "md"] {
        assert!(kinds.contains(kind), "no citation found in any *.{kind} file; found in {kinds:?}");
    }
    let cited: BTreeSet<&str> = citations.iter().map(|c| c.doc.as_str()).collect();
    for doc in ["docs/proctor.md", "docs/django-affect.md", "docs/openfeature.md"] {
        assert!(cited.contains(doc), "{doc} is never cited; found {cited:?}");
    }
    assert!(
        citations.iter().any(|c| c.at.starts_with("crates/avsb-core/src/") && c.section == "2.5"),
        "the engine's salt rule cites docs/proctor.md {SECTION}2.5, but the scan did not see it"
    );
}

#[test]
fn a_citation_that_resolves_is_accepted() {
    let mut docs = Docs::new(&repo_root());
    let s = SECTION;
    for line in [
        format!("/// The hash salt (docs/proctor.md {s}2.5)."),
        format!("\"description\": \"docs/proctor.md {s}1.10.9, {s}4: dependencies\""),
        format!("bucketing (docs/proctor.md {s}2.3–{s}2.5)"),
        format!("bucketing (docs/proctor.md {s}2.3–2.5)"),
        format!("docs/proctor.md {s}3.2 step 3 and docs/django-affect.md {s}1.3 step 10"),
        format!("OFREP (docs/openfeature.md {s}2)."),
    ] {
        let (citations, problems) = check_line("crates/avsb-core/src/example.rs", &line, &mut docs);
        assert!(problems.is_empty(), "{line}: {problems:?}");
        assert!(!citations.is_empty(), "{line}: no citation found");
    }
    let (citations, _) = check_line(
        "crates/x.rs",
        &format!("docs/proctor.md {s}3.2 and docs/django-affect.md {s}1.3"),
        &mut docs,
    );
    let docs_cited: Vec<&str> = citations.iter().map(|c| c.doc.as_str()).collect();
    assert_eq!(docs_cited, ["docs/proctor.md", "docs/django-affect.md"], "each number belongs to the file before it");
}

#[test]
fn a_citation_that_does_not_resolve_is_refused() {
    let mut docs = Docs::new(&repo_root());
    let s = SECTION;
    for (line, expected) in [
        (format!("the salt (docs/proctor.md {s}99.1)"), "has no heading numbered 99.1"),
        (format!("the salt (docs/nowhere.md {s}2.5)"), "does not exist"),
        (format!("the salt (reference {s}2.5)"), "does not name its file"),
        (format!("{s}2.5, then docs/proctor.md"), "does not name its file"),
        (format!("docs/proctor.md {s}2.3–2.9"), "has no heading numbered 2.9"),
        (format!("docs/proctor.md {s}2.1 and flag-systems {s}4.2"), "has no heading numbered 4.2"),
        (format!("cite the {s} of docs/proctor.md"), "without a section number"),
    ] {
        let (_, problems) = check_line("crates/avsb-core/src/example.rs", &line, &mut docs);
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "`{line}` should be refused with \"{expected}\", got {problems:?}"
        );
    }
}

#[test]
fn inside_a_docs_file_a_bare_number_refers_to_that_file() {
    let mut docs = Docs::new(&repo_root());
    let s = SECTION;
    let (citations, problems) = check_line("docs/proctor.md", &format!("the salt (see {s}2.5)"), &mut docs);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(citations[0].doc, "docs/proctor.md");
    // docs/proctor.md has a section 7.5; docs/openfeature.md does not.
    let (_, problems) = check_line("docs/openfeature.md", &format!("the cache (see {s}7.5)"), &mut docs);
    assert!(problems.iter().any(|p| p.contains("docs/openfeature.md has no heading numbered 7.5")), "{problems:?}");
}

#[test]
fn section_numbers_are_unique_within_each_docs_file() {
    let root = repo_root();
    let mut duplicates = Vec::new();
    for path in scanned_files(&root).into_iter().filter(|p| p.starts_with("docs/") && p.ends_with(".md")) {
        let text = std::fs::read_to_string(root.join(&path)).unwrap();
        let mut seen = BTreeSet::new();
        for (line, number) in numbered_headings(&text) {
            if !seen.insert(number.clone()) {
                duplicates.push(format!("{path}:{line}: section {number} is numbered twice"));
            }
        }
    }
    assert!(duplicates.is_empty(), "{}", duplicates.join("\n"));
}
