//! Keeps `openapi.json` honest: it is OpenAPI 3.1 with resolvable references, it documents
//! exactly the routes the router registers (read from the `.route(` calls in `src/routes/`), and
//! every operation documents a success and, when it needs credentials, a 401.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::Value;

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn document() -> Value {
    let path = manifest_dir().join("openapi.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// 1. The document itself

/// Resolves a local JSON pointer (`#/components/schemas/X`).
fn resolve<'a>(doc: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.is_empty() {
        return Some(doc);
    }
    // JSON pointer tokens are already `~0`/`~1`-escaped, as `Value::pointer` expects; a URI
    // fragment may also percent-encode characters, which none of ours need.
    doc.pointer(pointer)
}

fn collect_refs(value: &Value, at: &str, out: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    match child.as_str() {
                        Some(r) => out.push((at.to_string(), r.to_string())),
                        None => out.push((at.to_string(), format!("<non-string $ref: {child}>"))),
                    }
                } else {
                    collect_refs(child, &format!("{at}/{}", key.replace('~', "~0").replace('/', "~1")), out);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                collect_refs(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn document_is_openapi_31_with_resolvable_refs() {
    let doc = document();
    let version = doc["openapi"].as_str().unwrap_or_default();
    assert!(version.starts_with("3.1."), "openapi must be 3.1.x, found {:?}", doc["openapi"]);
    assert!(doc["info"]["title"].is_string(), "info.title is required");
    assert_eq!(
        doc["info"]["version"].as_str(),
        Some(env!("CARGO_PKG_VERSION")),
        "info.version should be the crate version"
    );
    assert!(doc["paths"].as_object().is_some_and(|p| !p.is_empty()), "paths is missing or empty");

    let mut refs = Vec::new();
    collect_refs(&doc, "#", &mut refs);
    assert!(!refs.is_empty(), "expected the document to use $ref");
    let broken: Vec<String> = refs
        .iter()
        .filter(|(_, r)| !r.starts_with("#/") || resolve(&doc, r).is_none())
        .map(|(at, r)| format!("  {at}: $ref {r}"))
        .collect();
    assert!(broken.is_empty(), "unresolvable (or non-local) $ref:\n{}", broken.join("\n"));

    // Every component is used somewhere, so nothing stale lingers.
    let used: BTreeSet<&str> = refs.iter().map(|(_, r)| r.as_str()).collect();
    let mut unused = Vec::new();
    if let Some(components) = doc["components"].as_object() {
        for (kind, entries) in components {
            if kind == "securitySchemes" {
                continue;
            }
            for name in entries.as_object().into_iter().flat_map(|m| m.keys()) {
                let pointer = format!("#/components/{kind}/{name}");
                if !used.contains(pointer.as_str()) {
                    unused.push(pointer);
                }
            }
        }
    }
    assert!(unused.is_empty(), "components never referenced:\n  {}", unused.join("\n  "));
}

// ---------------------------------------------------------------------------------------------
// 2. Documented routes = registered routes

/// Rust source with comments blanked out (strings, raw strings and char literals kept), so
/// that `.route(` in a doc comment is not mistaken for a call.
fn strip_comments(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    if chars[i] == '\n' {
                        out.push('\n');
                    }
                    i += 1;
                }
            }
            out.push(' ');
        } else if c == 'r' && (next == Some('"') || next == Some('#')) && !ident_char_before(&chars, i) {
            // A raw string r"..." or r#"..."#: copy it whole.
            let start = i;
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
                match chars.get(j) {
                    None => break,
                    Some('"') if (0..hashes).all(|k| chars.get(j + 1 + k) == Some(&'#')) => {
                        j += 1 + hashes;
                        break;
                    }
                    Some(_) => j += 1,
                }
            }
            out.extend(&chars[start..j.min(chars.len())]);
            i = j;
        } else if c == '"' {
            let start = i;
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i = (i + 1).min(chars.len());
            out.extend(&chars[start..i]);
        } else if c == '\'' {
            // A char literal ('"', '\'', '\u{1F600}') or a lifetime ('a).
            let end = if next == Some('\\') {
                (i + 2..chars.len()).find(|&j| chars[j] == '\'' && j > i + 2)
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.extend(&chars[i..=end]);
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

fn ident_char_before(chars: &[char], i: usize) -> bool {
    i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_')
}

/// The text of a balanced `(...)` starting at `open` (which must be `(`), without the parens.
fn balanced(text: &str, open: usize) -> Option<&str> {
    let bytes = text.as_bytes();
    debug_assert_eq!(bytes[open], b'(');
    let mut depth = 0usize;
    let mut i = open;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            match b {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_string = true,
                b'\'' if bytes.get(i + 2) == Some(&b'\'') => i += 2, // '(' or ')' as a char
                b'(' | b'[' | b'{' => depth += 1,
                b')' | b']' | b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        return Some(&text[open + 1..i]);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Splits call arguments at top-level commas.
fn split_args(args: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut escaped = false;
    let mut current = String::new();
    for c in args.chars() {
        if in_string {
            current.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                current.push(c);
            }
            '(' | '[' | '{' => {
                depth += 1;
                current.push(c);
            }
            ')' | ']' | '}' => {
                depth -= 1;
                current.push(c);
            }
            ',' if depth == 0 => out.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out.into_iter().map(|a| a.trim().to_string()).collect()
}

/// The value of a plain string literal (`"..."`, with `\\` and `\"` escapes), if `text` is one.
fn string_literal(text: &str) -> Option<String> {
    let inner = text.trim().strip_prefix('"')?.strip_suffix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                other => out.push(other),
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// `let NAME = "...";` and `const NAME: &str = "...";` bindings. A name bound to two different
/// strings maps to `None` (ambiguous), so using it in a route fails loudly.
fn string_bindings(source: &str) -> BTreeMap<String, Option<String>> {
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    for statement in source.split(';') {
        let Some(rest) = ["let ", "const "].iter().find_map(|keyword| {
            let at = statement
                .match_indices(keyword)
                .map(|(i, _)| i)
                .find(|&i| statement[..i].chars().next_back().is_none_or(|c| !(c.is_alphanumeric() || c == '_')))?;
            Some(&statement[at + keyword.len()..])
        }) else {
            continue;
        };
        let Some((lhs, rhs)) = rest.split_once('=') else { continue };
        let name = lhs.split(':').next().unwrap_or_default().trim().trim_start_matches("mut ").trim();
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(value) = string_literal(rhs) {
            let entry = out.entry(name.to_string()).or_insert_with(|| Some(value.clone()));
            if entry.as_deref() != Some(value.as_str()) {
                *entry = None;
            }
        }
    }
    out
}

fn binding<'a>(bindings: &'a BTreeMap<String, Option<String>>, name: &str, context: &str) -> Option<&'a str> {
    match bindings.get(name) {
        Some(Some(value)) => Some(value),
        Some(None) => panic!("{context}: `{name}` is bound to different strings in this file; cannot tell which"),
        None => None,
    }
}

/// Expands a `format!` string: `{name}` from `bindings`, `{{`/`}}` as literal braces.
fn expand_format(template: &str, bindings: &BTreeMap<String, Option<String>>, context: &str) -> String {
    let mut out = String::new();
    let mut chars = template.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '{' if chars.peek() == Some(&'{') => {
                chars.next();
                out.push('{');
            }
            '}' if chars.peek() == Some(&'}') => {
                chars.next();
                out.push('}');
            }
            '{' => {
                let mut name = String::new();
                for n in chars.by_ref() {
                    if n == '}' {
                        break;
                    }
                    name.push(n);
                }
                let value = binding(bindings, name.trim(), context).unwrap_or_else(|| {
                    panic!("{context}: format! argument {{{name}}} is not a known `let`/`const` string binding")
                });
                out.push_str(value);
            }
            other => out.push(other),
        }
    }
    out
}

/// The path a `.route(` call's first argument names.
fn route_path(arg: &str, bindings: &BTreeMap<String, Option<String>>, context: &str) -> String {
    let arg = arg.trim().trim_start_matches('&').trim();
    if let Some(value) = string_literal(arg) {
        return value;
    }
    if let Some(rest) = arg.strip_prefix("format!") {
        let open = rest.find('(').unwrap_or_else(|| panic!("{context}: cannot read format! call {arg}"));
        let inner = balanced(rest, open).unwrap_or_else(|| panic!("{context}: unbalanced format! call {arg}"));
        let args = split_args(inner);
        assert_eq!(args.len(), 1, "{context}: only format! with inline arguments is understood: {arg}");
        let template =
            string_literal(&args[0]).unwrap_or_else(|| panic!("{context}: format! without a literal: {arg}"));
        return expand_format(&template, bindings, context);
    }
    if let Some(value) = binding(bindings, arg, context) {
        return value.to_string();
    }
    panic!("{context}: cannot work out the path of route argument `{arg}`");
}

/// The HTTP methods a method-router expression (`get(a).post(b)`, `axum::routing::delete(c)`,
/// `any(d)`) registers: every call at the top level of the chain. `any` is returned as `ANY`.
fn route_methods(expr: &str, context: &str) -> BTreeSet<String> {
    let bytes = expr.as_bytes();
    let mut methods = BTreeSet::new();
    let mut depth = 0i32;
    let mut in_string = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'(' | b'[' | b'{' => {
                if b == b'(' && depth == 0 {
                    let start = expr[..i].rfind(|c: char| !(c.is_alphanumeric() || c == '_')).map_or(0, |p| p + 1);
                    let name = &expr[start..i];
                    match name {
                        "any" => {
                            methods.insert("ANY".to_string());
                        }
                        m if METHODS.contains(&m) => {
                            methods.insert(m.to_uppercase());
                        }
                        other => panic!(
                            "{context}: `{other}(` in the method router `{expr}` is not understood \
                             (extend tests/openapi.rs)"
                        ),
                    }
                }
                depth += 1;
            }
            b')' | b']' | b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    assert!(!methods.is_empty(), "{context}: no method in the method router `{expr}`");
    methods
}

/// Every (METHOD, path) the route files register; `any` routes as method `ANY`. Wildcard
/// paths (`{*rest}`) cannot be expressed in OpenAPI and are returned separately.
fn registered_routes() -> (BTreeMap<String, BTreeSet<String>>, Vec<String>) {
    let dir = manifest_dir().join("src/routes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    let mut routes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut wildcards = Vec::new();
    let mut per_file = Vec::new();
    for file in &files {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let source =
            strip_comments(&std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())));
        for unsupported in [".nest(", ".nest_service(", ".route_service(", ".route_layer("] {
            assert!(
                !source.contains(unsupported),
                "{name} uses `{unsupported}`, which this test does not understand; extend tests/openapi.rs"
            );
        }
        let bindings = string_bindings(&source);
        let mut count = 0;
        let mut from = 0;
        while let Some(found) = source[from..].find(".route(") {
            let open = from + found + ".route".len();
            let line = source[..open].lines().count();
            let context = format!("{name}:{line}");
            let inner = balanced(&source, open).unwrap_or_else(|| panic!("{context}: unbalanced .route( call"));
            let args = split_args(inner);
            assert_eq!(args.len(), 2, "{context}: expected .route(path, method_router), found {inner}");
            let path = route_path(&args[0], &bindings, &context);
            let methods = route_methods(&args[1], &context);
            assert!(path.starts_with('/'), "{context}: path {path:?} does not start with '/'");
            if path.contains("{*") {
                wildcards.push(path);
            } else {
                let entry = routes.entry(path.clone()).or_default();
                for method in methods {
                    assert!(entry.insert(method.clone()), "{context}: {method} {path} is registered twice");
                }
            }
            count += 1;
            from = open;
        }
        per_file.push((name, count));
    }
    for module in ["admin.rs", "events.rs", "ofrep.rs", "ops.rs", "pipet.rs", "sdk.rs"] {
        let found = per_file.iter().find(|(n, _)| n == module).map_or(0, |(_, c)| *c);
        assert!(found > 0, "found no .route( calls in src/routes/{module}; is the parser broken?");
    }
    (routes, wildcards)
}

fn documented_routes(doc: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let methods: BTreeSet<String> = item
            .as_object()
            .into_iter()
            .flat_map(|m| m.keys())
            .filter(|k| METHODS.contains(&k.as_str()))
            .map(|k| k.to_uppercase())
            .collect();
        out.insert(path.clone(), methods);
    }
    out
}

#[test]
fn documented_routes_equal_registered_routes() {
    let doc = document();
    let (registered, wildcards) = registered_routes();
    assert_eq!(
        wildcards,
        vec!["/pipet/{sdk_key}/{*rest}".to_string()],
        "the only wildcard route expected is Pipet's catch-all"
    );
    let documented = documented_routes(&doc);

    let mut missing = Vec::new();
    let mut extra = Vec::new();
    for (path, methods) in &registered {
        let docs = documented.get(path).cloned().unwrap_or_default();
        for method in methods {
            let wanted = if method == "ANY" { "GET" } else { method.as_str() };
            if !docs.contains(wanted) {
                missing.push(format!("  {wanted} {path}"));
            }
        }
    }
    for (path, methods) in &documented {
        let served = registered.get(path).cloned().unwrap_or_default();
        for method in methods {
            // An `any` route serves every method; documenting more than GET is fine.
            // axum also answers HEAD for GET routes.
            let ok = served.contains(method) || served.contains("ANY") || (method == "HEAD" && served.contains("GET"));
            if !ok {
                extra.push(format!("  {method} {path}"));
            }
        }
    }
    let mut report = String::new();
    if !missing.is_empty() {
        report.push_str(&format!("registered but not documented in openapi.json:\n{}\n", missing.join("\n")));
    }
    if !extra.is_empty() {
        report.push_str(&format!("documented in openapi.json but not registered:\n{}\n", extra.join("\n")));
    }
    assert!(report.is_empty(), "{report}");
}

// ---------------------------------------------------------------------------------------------
// 3. Every operation: success, 401 when authenticated, parameters and tags

fn template_params(path: &str) -> BTreeSet<String> {
    path.split('{').skip(1).filter_map(|s| s.split_once('}').map(|(name, _)| name.to_string())).collect()
}

/// A parameter object, following a `$ref`.
fn deref<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(r) => resolve(doc, r).unwrap_or(&Value::Null),
        None => value,
    }
}

#[test]
fn every_operation_documents_success_auth_and_parameters() {
    let doc = document();
    let global_security = doc.get("security");
    let tags: BTreeSet<&str> =
        doc["tags"].as_array().into_iter().flatten().filter_map(|t| t["name"].as_str()).collect();
    let schemes: BTreeSet<&str> =
        doc["components"]["securitySchemes"].as_object().into_iter().flatten().map(|(k, _)| k.as_str()).collect();
    let mut problems = Vec::new();
    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        let path_level: Vec<&Value> = item["parameters"].as_array().into_iter().flatten().collect();
        for (method, operation) in item.as_object().into_iter().flatten() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let name = format!("{} {path}", method.to_uppercase());
            let responses = operation["responses"].as_object();
            let statuses: BTreeSet<&str> = responses.into_iter().flatten().map(|(k, _)| k.as_str()).collect();
            if !statuses.iter().any(|s| s.starts_with('2') || *s == "304") {
                problems.push(format!("{name}: no 2xx or 304 response"));
            }
            for status in &statuses {
                let valid = *status == "default"
                    || (status.len() == 3 && status.chars().all(|c| c.is_ascii_digit() || c == 'X'));
                if !valid {
                    problems.push(format!("{name}: response key {status:?} is not a status code"));
                }
            }
            let security = operation.get("security").or(global_security);
            let requirements: Vec<&Value> = security.and_then(Value::as_array).into_iter().flatten().collect();
            for requirement in &requirements {
                for scheme in requirement.as_object().into_iter().flatten().map(|(k, _)| k.as_str()) {
                    if !schemes.contains(scheme) {
                        problems.push(format!("{name}: unknown security scheme {scheme:?}"));
                    }
                }
            }
            let needs_auth =
                requirements.iter().any(|r| r.as_object().is_some_and(|o| !o.is_empty())) || path.contains("{sdk_key}");
            if needs_auth && !statuses.contains("401") {
                problems.push(format!("{name}: needs credentials but documents no 401"));
            }
            if !needs_auth && statuses.contains("401") {
                problems.push(format!("{name}: documents a 401 but no security requirement"));
            }
            if operation["summary"].as_str().is_none_or(str::is_empty) {
                problems.push(format!("{name}: no summary"));
            }
            match operation["operationId"].as_str() {
                Some(id) if !operation_ids.insert(id.to_string()) => {
                    problems.push(format!("{name}: duplicate operationId {id}"))
                }
                Some(_) => {}
                None => problems.push(format!("{name}: no operationId")),
            }
            let op_tags: Vec<&str> =
                operation["tags"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            if op_tags.is_empty() || op_tags.iter().any(|t| !tags.contains(t)) {
                problems.push(format!("{name}: tags {op_tags:?} must be non-empty and declared at the top level"));
            }

            let mut declared = BTreeSet::new();
            for parameter in path_level.iter().copied().chain(operation["parameters"].as_array().into_iter().flatten())
            {
                let parameter = deref(&doc, parameter);
                if parameter["in"] == "path" {
                    let pname = parameter["name"].as_str().unwrap_or_default().to_string();
                    if parameter["required"] != Value::Bool(true) {
                        problems.push(format!("{name}: path parameter {pname} must be required"));
                    }
                    declared.insert(pname);
                }
            }
            let expected = template_params(path);
            if declared != expected {
                problems.push(format!("{name}: path parameters declared {declared:?}, template has {expected:?}"));
            }
        }
    }
    assert!(problems.is_empty(), "openapi.json problems:\n  {}", problems.join("\n  "));
}

#[test]
fn route_parser_understands_the_forms_used() {
    let source = strip_comments(
        r#"
        // .route("/commented", get(nothing))
        let p = "/api/v1/projects/{project}";
        let quote = '"'; let brace = '(';
        Router::new()
            .route(&format!("{p}/tests/{{test}}"), get(a).put(b).delete(c))
            .route(p, axum::routing::delete(d))
            .route("/x", any(e))
        "#,
    );
    assert!(!source.contains("/commented"));
    let bindings = string_bindings(&source);
    assert_eq!(binding(&bindings, "p", "t"), Some("/api/v1/projects/{project}"));
    assert_eq!(
        route_path("&format!(\"{p}/tests/{{test}}\")", &bindings, "t"),
        "/api/v1/projects/{project}/tests/{test}"
    );
    assert_eq!(route_methods("get(a).put(b).delete(c)", "t"), ["DELETE", "GET", "PUT"].map(String::from).into());
    assert_eq!(route_methods("axum::routing::delete(get_thing)", "t"), ["DELETE"].map(String::from).into());
    assert_eq!(route_methods("any(e)", "t"), ["ANY"].map(String::from).into());
    assert!(Path::new(&manifest_dir()).join("src/routes/mod.rs").exists());
}

// ---------------------------------------------------------------------------------------------
// 4. Error codes: what the source can answer = what the document lists

/// The numeric status of a `StatusCode::NAME` expression (any path prefix).
fn status_number(expr: &str, context: &str) -> u16 {
    let name = expr.trim().rsplit("::").next().unwrap_or_default();
    match name {
        "BAD_REQUEST" => 400,
        "UNAUTHORIZED" => 401,
        "FORBIDDEN" => 403,
        "NOT_FOUND" => 404,
        "METHOD_NOT_ALLOWED" => 405,
        "CONFLICT" => 409,
        "PAYLOAD_TOO_LARGE" => 413,
        "UNPROCESSABLE_ENTITY" => 422,
        "INTERNAL_SERVER_ERROR" => 500,
        "SERVICE_UNAVAILABLE" => 503,
        _ => panic!("{context}: unknown status `{expr}` in an ApiError; extend tests/openapi.rs"),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every (status, code) an `ApiError` in `src/` is made with: the literal code of each
/// `bad_request("code", ...)` call (400) and each `ApiError::new(StatusCode::X, "code", ...)`.
/// Calls whose code is not a literal (the helpers' own definitions) are skipped.
fn source_error_codes() -> BTreeMap<(u16, String), String> {
    let mut files = Vec::new();
    rust_files(&manifest_dir().join("src"), &mut files);
    let mut out = BTreeMap::new();
    for file in &files {
        let name = file.strip_prefix(manifest_dir()).unwrap_or(file).display().to_string();
        let source =
            strip_comments(&std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display())));
        for (call, code_arg) in [("bad_request(", 0usize), ("ApiError::new(", 1usize)] {
            let mut from = 0;
            while let Some(found) = source[from..].find(call) {
                let at = from + found;
                from = at + call.len();
                if source[..at].chars().next_back().is_some_and(|c| c.is_alphanumeric() || c == '_') {
                    continue;
                }
                let open = at + call.len() - 1;
                let context = format!("{name}:{}", source[..open].lines().count());
                let inner = balanced(&source, open).unwrap_or_else(|| panic!("{context}: unbalanced {call}"));
                let args = split_args(inner);
                let Some(code) = args.get(code_arg).and_then(|a| string_literal(a)) else { continue };
                let status = if code_arg == 0 { 400 } else { status_number(&args[0], &context) };
                out.entry((status, code)).or_insert(context);
            }
        }
    }
    out
}

/// The codes each response of each operation lists (`Codes: `a`, `b`.` at the end of its
/// description), with the status and where.
fn documented_error_codes(doc: &Value) -> Vec<(u16, String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                let Ok(number) = status.parse::<u16>() else { continue };
                let description = deref(doc, response)["description"].as_str().unwrap_or_default();
                let Some((_, list)) = description.rsplit_once("Codes: ") else { continue };
                // The list ends at its closing "`.", before any prose that may follow.
                let list = list.split_once("`.").map_or(list, |(codes, _)| codes);
                for code in list.split('`').skip(1).step_by(2) {
                    out.push((number, code.to_string(), format!("{} {path} {status}", method.to_uppercase())));
                }
            }
        }
    }
    out
}

#[test]
fn documented_error_codes_equal_source_error_codes() {
    let doc = document();
    let source = source_error_codes();
    for expected in ["invalid_json", "invalid_field", "invalid_query", "method_not_allowed", "not_found", "conflict"] {
        assert!(
            source.keys().any(|(_, c)| c == expected),
            "found no ApiError with code {expected:?} in src/; is the parser broken?"
        );
    }
    let documented = documented_error_codes(&doc);
    let top = doc["info"]["description"].as_str().unwrap_or_default();
    let mut problems = Vec::new();
    // Each code the source answers is listed under a response of its status (or, for answers no
    // operation can list, such as a 405 for a method a path does not take, in info.description).
    for ((status, code), at) in &source {
        let listed = documented.iter().any(|(s, c, _)| s == status && c == code);
        if !listed && !top.contains(&format!("`{code}`")) {
            problems.push(format!("{at}: {status} `{code}` is not listed under any {status} response"));
        }
    }
    // Each listed code is one the source answers with that status.
    for (status, code, at) in &documented {
        if !source.contains_key(&(*status, code.clone())) {
            let elsewhere: Vec<String> =
                source.keys().filter(|(_, c)| c == code).map(|(s, _)| s.to_string()).collect();
            problems.push(format!(
                "{at}: lists `{code}`, which src/ never answers with {status}{}",
                if elsewhere.is_empty() { String::new() } else { format!(" (only with {})", elsewhere.join(", ")) }
            ));
        }
    }
    assert!(problems.is_empty(), "error codes out of step:\n  {}", problems.join("\n  "));
}
