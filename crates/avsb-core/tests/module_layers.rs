//! The engine's modules import one way, down the pipeline: `lib.rs` declares the top-level
//! modules in order (leaves first, Pipet's identify last), and no module may import from one
//! declared after it. Inside a module, files may not import each other in a cycle, except the
//! closed pairs listed in `CLOSED_PAIRS` (an interpreter and its built-in functions).
//!
//! The imports are read from the source text: every `crate::a::b`, `super::a` and, in a
//! `mod.rs`, every path that starts with one of its child modules. Unit-test modules
//! (`#[cfg(test)] mod tests`) are left out: tests may look anywhere.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Pairs of files that may import each other.
const CLOSED_PAIRS: &[(&str, &str)] = &[("rule::eval", "rule::functions")];

/// A module (`rule::eval`) and the source it was read from.
struct Module {
    path: String,
    file: PathBuf,
    source: String,
}

fn src_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Source text with comments, string literals and character literals blanked, and the unit-test
/// module at the end of the file cut off.
fn code_only(source: &str) -> String {
    let cut = ["#[cfg(test)]\nmod tests {", "#[cfg(test)]\nmod tests;"]
        .iter()
        .filter_map(|marker| source.find(marker))
        .min()
        .unwrap_or(source.len());
    let chars: Vec<char> = source[..cut].chars().collect();
    let mut out = String::with_capacity(cut);
    let mut i = 0;
    while i < chars.len() {
        let (c, next) = (chars[i], chars.get(i + 1).copied());
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                i += 1;
            }
            i += 2;
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_before(&chars, i) {
            // A raw string: r"...", r#"..."#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= chars.len() {
                    break;
                }
                if chars[j] == '"' && (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            out.push_str("\"\"");
            i = j;
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push_str("\"\"");
        } else if c == '\'' && (chars.get(i + 2) == Some(&'\'') || (next == Some('\\') && chars.get(i + 3) == Some(&'\''))) {
            // A character literal ('x' or '\n'), not a lifetime.
            i += if next == Some('\\') { 4 } else { 3 };
            out.push_str("' '");
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

fn modules() -> Vec<Module> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<Module>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
        entries.sort();
        for path in entries {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            if path.is_dir() {
                walk(&path, &format!("{prefix}{stem}::"), out);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") || stem == "lib" || stem == "tests" {
                continue;
            }
            let module = if stem == "mod" { prefix.trim_end_matches("::").to_string() } else { format!("{prefix}{stem}") };
            let source = code_only(&std::fs::read_to_string(&path).unwrap());
            out.push(Module { path: module, file: path, source });
        }
    }
    let mut out = Vec::new();
    walk(&src_dir(), "", &mut out);
    out
}

/// The paths a file names, as written: `a::b::c` after `crate::`, `super::` or a child module.
fn referenced_paths(module: &Module, all: &BTreeSet<String>) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    let is_mod_rs = module.file.file_name().is_some_and(|n| n == "mod.rs");
    let parent = match module.path.rsplit_once("::") {
        Some((parent, _)) => parent.to_string(),
        None => String::new(),
    };
    let children: Vec<String> = all
        .iter()
        .filter_map(|m| m.strip_prefix(&format!("{}::", module.path)).map(str::to_string))
        .filter(|rest| !rest.contains("::"))
        .collect();
    for (line_no, line) in module.source.lines().enumerate() {
        let chars: Vec<char> = line.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if ident_before(&chars, i) || (i > 0 && chars[i - 1] == ':') {
                i += 1;
                continue;
            }
            let rest: String = chars[i..].iter().collect();
            let (base, skip) = if rest.starts_with("crate::") {
                (String::new(), "crate::".len())
            } else if rest.starts_with("super::") {
                let base = if is_mod_rs { parent_of(&module.path) } else { parent.clone() };
                (base, "super::".len())
            } else if is_mod_rs && children.iter().any(|c| rest.starts_with(&format!("{c}::"))) {
                (module.path.clone(), 0)
            } else {
                i += 1;
                continue;
            };
            let tail: String = chars[i + skip..].iter().collect();
            for path in expand_use_tree(&tail) {
                let full = if base.is_empty() { path } else { format!("{base}::{path}") };
                out.push((full, line_no + 1));
            }
            i += skip.max(1);
        }
    }
    out
}

fn parent_of(path: &str) -> String {
    path.rsplit_once("::").map_or(String::new(), |(p, _)| p.to_string())
}

/// `a::b::{c, d::e}` → `a::b::c`, `a::b::d::e`; `a::b::C` → `a::b::C`.
fn expand_use_tree(text: &str) -> Vec<String> {
    let mut prefix = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_alphanumeric() || c == '_' || c == ':' {
            prefix.push(c);
            i += 1;
        } else if c == '{' {
            let mut depth = 0;
            let mut j = i;
            while j < chars.len() {
                match chars[j] {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            let inner: String = chars[i + 1..j.min(chars.len())].iter().collect();
            let mut out = Vec::new();
            for item in split_top_level(&inner) {
                let item = item.trim();
                if item.is_empty() || item == "self" {
                    out.push(prefix.trim_end_matches("::").to_string());
                    continue;
                }
                for sub in expand_use_tree(item) {
                    out.push(format!("{prefix}{sub}"));
                }
            }
            return out;
        } else {
            break;
        }
    }
    vec![prefix.trim_end_matches("::").to_string()]
}

fn split_top_level(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(String::new());
                continue;
            }
            _ => {}
        }
        out.last_mut().unwrap().push(c);
    }
    out
}

/// The module a path lands in: its longest prefix that is a module.
fn resolve(path: &str, all: &BTreeSet<String>) -> Option<String> {
    let parts: Vec<&str> = path.split("::").collect();
    (1..=parts.len()).rev().map(|n| parts[..n].join("::")).find(|candidate| all.contains(candidate))
}

/// `from → {to → first line where from names to}`.
fn edges() -> BTreeMap<String, BTreeMap<String, (PathBuf, usize)>> {
    let modules = modules();
    let all: BTreeSet<String> = modules.iter().map(|m| m.path.clone()).collect();
    let mut out: BTreeMap<String, BTreeMap<String, (PathBuf, usize)>> = BTreeMap::new();
    for module in &modules {
        let entry = out.entry(module.path.clone()).or_default();
        for (path, line) in referenced_paths(module, &all) {
            if let Some(target) = resolve(&path, &all) {
                if target != module.path {
                    entry.entry(target).or_insert((module.file.clone(), line));
                }
            }
        }
    }
    out
}

/// The top-level modules in the order `lib.rs` declares them.
fn declared_order() -> Vec<String> {
    let lib = code_only(&std::fs::read_to_string(src_dir().join("lib.rs")).unwrap());
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line.strip_prefix("pub mod ").or_else(|| line.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_string())
        })
        .collect()
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap()
}

fn show(file: &Path, line: usize) -> String {
    format!("{}:{line}", file.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(file).display())
}

#[test]
fn top_level_modules_import_only_modules_declared_before_them() {
    let order = declared_order();
    assert!(order.len() > 10 && order.contains(&"eval".to_string()), "could not read lib.rs's modules: {order:?}");
    let rank = |m: &str| order.iter().position(|o| o == top(m));
    let mut problems = Vec::new();
    for (from, targets) in edges() {
        let Some(from_rank) = rank(&from) else {
            problems.push(format!("{from} is not declared in lib.rs"));
            continue;
        };
        for (to, (file, line)) in targets {
            if top(&to) == top(&from) {
                continue;
            }
            if rank(&to).is_some_and(|to_rank| to_rank > from_rank) {
                problems.push(format!("{}: {from} imports {to}, which lib.rs declares after it", show(&file, line)));
            }
        }
    }
    assert!(problems.is_empty(), "imports against the pipeline order:\n  {}", problems.join("\n  "));
}

#[test]
fn no_import_cycles_but_the_closed_pairs() {
    let graph = edges();
    let mut problems = Vec::new();
    for component in strongly_connected(&graph) {
        if component.len() < 2 {
            continue;
        }
        let pair_allowed = component.len() == 2
            && CLOSED_PAIRS.iter().any(|(a, b)| component.contains(&a.to_string()) && component.contains(&b.to_string()));
        if pair_allowed {
            continue;
        }
        let evidence: Vec<String> = component
            .iter()
            .flat_map(|from| {
                graph[from]
                    .iter()
                    .filter(|(to, _)| component.contains(*to))
                    .map(move |(to, (file, line))| format!("{}: {from} → {to}", show(file, *line)))
            })
            .collect();
        problems.push(format!("cycle {{{}}}:\n    {}", component.join(", "), evidence.join("\n    ")));
    }
    assert!(problems.is_empty(), "module cycles:\n  {}", problems.join("\n  "));
}

#[test]
fn the_reader_finds_imports_in_every_form_used() {
    // A check of the checker, so that a parser that finds nothing cannot pass the tests above.
    let graph = edges();
    let has = |from: &str, to: &str| graph.get(from).is_some_and(|t| t.contains_key(to));
    assert!(has("eval", "compile"), "use crate::compile::{{...}}");
    assert!(has("rule::compile", "rule::eval"), "use super::eval::...");
    assert!(has("rule", "rule::parser"), "a mod.rs naming its child");
    assert!(has("reader", "reader_fast"), "crate::reader_fast::read_test(...) inline");
    assert_eq!(expand_use_tree("a::{b, c::{d, e}}"), ["a::b", "a::c::d", "a::c::e"]);
    let cycle: BTreeMap<String, BTreeMap<String, (PathBuf, usize)>> = [("a", "b"), ("b", "a")]
        .iter()
        .map(|(f, t)| (f.to_string(), [(t.to_string(), (PathBuf::new(), 0))].into_iter().collect()))
        .collect();
    assert_eq!(strongly_connected(&cycle), vec![vec!["a".to_string(), "b".to_string()]]);
}

/// Tarjan's strongly connected components, each sorted.
fn strongly_connected(graph: &BTreeMap<String, BTreeMap<String, (PathBuf, usize)>>) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g BTreeMap<String, BTreeMap<String, (PathBuf, usize)>>,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        on_stack: BTreeSet<&'g str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        s.on_stack.insert(v);
        let targets: Vec<&'g str> = s.graph.get(v).map(|t| t.keys().map(String::as_str).collect()).unwrap_or_default();
        for w in targets {
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.on_stack.contains(w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack.remove(w);
                component.push(w.to_string());
                if w == v {
                    break;
                }
            }
            component.sort();
            s.out.push(component);
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.out
}
