//! The fuzz targets of avsb-core, shared by the libFuzzer binaries (`fuzz/fuzz_targets/`) and by
//! the corpus replay that `cargo test -p avsb-core` runs on stable
//! (`crates/avsb-core/tests/fuzz_corpus.rs`, which includes this file).
//!
//! Each target takes arbitrary bytes and drives one entry point of the engine with them, then
//! checks what must hold for any input:
//!
//! * nothing panics or aborts (libFuzzer reports either as a crash);
//! * compiling one input and evaluating one request take bounded time ([`Probe::slow`] scales
//!   the bounds for unoptimised builds); a step that overruns is run again before it is reported,
//!   so a machine busy with other work does not make a finding;
//! * evaluating one request allocates a bounded amount at its peak, where the harness can measure
//!   it ([`Probe::peak`]);
//! * what the engine writes reads back the same (a force string's canonical form, a schema's
//!   JSON, a compiled matrix's document).
//!
//! Only avsb-core's public API and serde_json are used, so the replay can include this file.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use avsb_core::pipet::{self, IdentifyParams};
use avsb_core::rule::{compile, Budget, CompileEnv, EvalEnv, VariableInfo, VariableLookup};
use avsb_core::schema::ContextType;
use avsb_core::{CompiledMatrix, ContextSchema, ForceGroups, Value};

/// How a harness measures an input's cost.
pub struct Probe {
    /// Starts a measurement of peak memory.
    pub reset: fn(),
    /// Bytes allocated at the peak since the last reset, above what was live then; `None` when
    /// the harness cannot tell.
    pub peak: fn() -> Option<usize>,
    /// A factor on the time bounds (1 for the optimised fuzzing build).
    pub slow: f64,
}

/// The longest one request may take to evaluate, in the optimised fuzzing build: the budget's
/// 5 ms, the coverage instrumentation's slowdown, and room for a busy machine.
const EVALUATE_TIME: Duration = Duration::from_millis(100);

/// The longest compiling one input may take (inputs are at most a few tens of kilobytes).
const COMPILE_TIME: Duration = Duration::from_millis(1000);

/// The most one request's evaluation may allocate at its peak: the budget's megabyte, a case
/// mapping's transient copy, the answer.
const EVALUATE_BYTES: usize = 8 << 20;

/// The most compiling one input may allocate at its peak, beyond a multiple of its length.
const COMPILE_BYTES: usize = 32 << 20;

/// A target: one input, measured with a probe.
pub type Target = fn(&[u8], &Probe);

/// The targets, by name.
pub const TARGETS: &[(&str, Target)] = &[("matrix", matrix), ("rule", rule), ("force", force), ("schema", schema)];

/// Builds what the engine builds once per process (the user-agent and force-group patterns, the
/// time zone), so that no input's measurement includes it.
pub fn warm_up() {
    let schema = strict_schema();
    if let Ok(compilation) = CompiledMatrix::compile_json(FORCE_MATRIX, &schema) {
        for params in requests() {
            let _ = pipet::identify(&compilation.matrix, &params);
        }
        let _ = compilation.matrix.audit_json_text();
    }
    let _ = ForceGroups::parse("a1;stringValue:\"x\",default_to_min_live");
}

/// Runs `step` and checks its time and peak memory; a step over its time is run once more and
/// reported only if it overruns again.
fn measured<T>(probe: &Probe, what: &str, time: Duration, bytes: usize, mut step: impl FnMut() -> T) -> T {
    let limit = time.mul_f64(probe.slow);
    (probe.reset)();
    let started = Instant::now();
    let mut result = step();
    let mut elapsed = started.elapsed();
    if elapsed > limit {
        let started = Instant::now();
        result = step();
        elapsed = started.elapsed();
        assert!(elapsed <= limit, "{what} took {elapsed:?} twice, more than {limit:?}");
    }
    if let Some(peak) = (probe.peak)() {
        assert!(peak <= bytes, "{what} allocated {peak} bytes at its peak, more than {bytes}");
    }
    result
}

fn text(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The strict schema of the `matrix` target: a variable of each kind and three identifier types.
fn strict_schema() -> ContextSchema {
    let doc = serde_json::json!({
        "context": {
            "country": {"source": "QUERY", "type": "String", "defaultValue": "US"},
            "loggedIn": {"source": "QUERY", "type": "boolean", "defaultValue": "false"},
            "age": {"source": "QUERY", "type": "int", "defaultValue": "30"},
            "score": {"source": "QUERY", "type": "double", "defaultValue": "0.5"},
            "version": {"source": "QUERY", "type": "ReleaseVersion", "defaultValue": "1.2.3.4"},
            "ua": {"source": "HEADER", "sourceKey": "User-Agent", "type": "UserAgent", "defaultValue": ""},
            "isIncognitoUser": {"source": "QUERY", "type": "String", "defaultValue": "false"}
        },
        "identifiers": {"USER": {"source": "QUERY"}, "ACCOUNT": {"source": "QUERY"}, "device": {"source": "QUERY"}}
    });
    ContextSchema::from_value(&doc).unwrap_or_else(|e| panic!("the strict schema loads: {e}"))
}

/// Requests for the `matrix` target: ordinary values, long values, missing values, a filter,
/// force groups.
fn requests() -> Vec<IdentifyParams> {
    let long = "a,".repeat(20_000);
    let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148 Safari/604.1";
    let ctx = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
    vec![
        IdentifyParams {
            identifiers: vec![("USER".into(), "u1".into()), ("ACCOUNT".into(), "a1".into()), ("device".into(), "d".into())],
            context: ctx(&[("country", "US"), ("age", "31"), ("loggedIn", "true"), ("ua", ua), ("version", "2.0.0.0")]),
            now_millis: Some(1_700_000_000_000),
            random_seed: Some(42),
            ..IdentifyParams::default()
        },
        IdentifyParams {
            identifiers: vec![("USER".into(), long.clone())],
            context: ctx(&[("country", &long), ("ua", &long), ("isIncognitoUser", "true")]),
            force_groups: Some("a1,b-1,default_to_min_live".into()),
            full_force: true,
            ..IdentifyParams::default()
        },
        IdentifyParams {
            identifiers: vec![("USER".into(), String::new())],
            context: ctx(&[("country", "")]),
            tests: Some("a,b,c,x,y".into()),
            ..IdentifyParams::default()
        },
    ]
}

/// Arbitrary text as a matrix document: read, compiled against a strict schema and the
/// permissive one, evaluated for a few requests; the valid tests, written back, read and compile
/// to the same tests.
pub fn matrix(data: &[u8], probe: &Probe) {
    let text = text(data);
    let compile_bytes = COMPILE_BYTES + 256 * text.len();
    let _ = measured(probe, "reading a stored test", COMPILE_TIME, compile_bytes, || avsb_core::reader::read_stored_test(&text));
    for schema in [strict_schema(), ContextSchema::permissive()] {
        let compiled = measured(probe, "compiling the matrix", COMPILE_TIME, compile_bytes, || CompiledMatrix::compile_json(&text, &schema));
        let Ok(compilation) = compiled else { continue };
        let matrix = &compilation.matrix;
        for params in requests() {
            let answer = measured(probe, "identify", EVALUATE_TIME, EVALUATE_BYTES, || pipet::identify(matrix, &params));
            if let Ok(data) = answer {
                let groups = data["groups"].as_object().map_or(0, serde_json::Map::len);
                assert!(groups <= matrix.len(), "{groups} groups from {} tests", matrix.len());
            }
        }
        let names: Vec<String> = matrix.test_names().map(str::to_string).collect();
        for name in names.iter().take(8) {
            let mut request = matrix.request();
            if let Some(slot) = matrix.identifier_slot("USER") {
                request.identifiers[slot] = Some(Cow::Borrowed("u1"));
            }
            for (slot, value) in request.context.iter_mut().enumerate() {
                *value = Some(Value::long(slot as i64));
            }
            let one = measured(probe, "evaluate_test", EVALUATE_TIME, EVALUATE_BYTES, || matrix.evaluate_test(name, &request).is_some());
            assert!(one, "a compiled test evaluates: {name}");
        }
        // What the engine keeps, written as Proctor would read it, loads again with every test.
        let written = matrix.to_document().to_json(true).to_string();
        let again = CompiledMatrix::compile_json(&written, &schema)
            .unwrap_or_else(|e| panic!("the written matrix does not read back: {e}\n{written}"));
        let again_names: Vec<&str> = again.matrix.test_names().collect();
        assert_eq!(again_names, names, "tests lost writing the matrix back: {:?}", again.diagnostics);
    }
}

/// The variables of the `rule` target's schema, by slot: every kind a schema can declare, and one
/// of unknown type as a permissive schema has.
const VARIABLES: [(&str, Option<ContextType>); 9] = [
    ("s", Some(ContextType::String)),
    ("t", Some(ContextType::String)),
    ("n", Some(ContextType::Integer)),
    ("l", Some(ContextType::Long)),
    ("d", Some(ContextType::Double)),
    ("b", Some(ContextType::Boolean)),
    ("v", Some(ContextType::ReleaseVersion)),
    ("ua", Some(ContextType::UserAgent)),
    ("u", None),
];

struct Variables;

impl VariableLookup for Variables {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        let slot = VARIABLES.iter().position(|(n, _)| *n == name)?;
        Some(VariableInfo { slot, ty: VARIABLES[slot].1 })
    }
}

/// A rule and a request: the bytes up to the first 0 are the rule's text; the next part is the
/// test's constants (a JSON object, or nothing); each further part is the raw text of the next
/// variable of [`VARIABLES`] (converted as Pipet converts it; a value that does not convert is
/// missing). A part of the form `*N:text` is `text` repeated N times (N up to 300,000), so that
/// short inputs reach long values. The rule is compiled, then evaluated with the context, with
/// no context, and with every String replaced by a long one.
pub fn rule(data: &[u8], probe: &Probe) {
    let mut parts = data.split(|b| *b == 0);
    let rule_text = text(parts.next().unwrap_or_default()).into_owned();
    let constants: indexmap::IndexMap<String, Value> = parts
        .next()
        .and_then(|p| serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(p).ok())
        .map(|m| m.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect())
        .unwrap_or_default();
    let values: Vec<String> = parts.map(|p| expand(&text(p))).collect();
    let compile_bytes = COMPILE_BYTES + 256 * data.len();
    let compiled = measured(probe, "compiling the rule", COMPILE_TIME, compile_bytes, || {
        compile(Some(&rule_text), &mut CompileEnv { constants: &constants, variables: &mut Variables })
    });
    let Ok(compiled) = compiled else { return };
    let context: Vec<Option<Value>> = VARIABLES
        .iter()
        .enumerate()
        .map(|(i, (_, ty))| {
            let raw = values.get(i)?;
            match ty {
                Some(ty) => ty.convert(raw).ok(),
                None => Some(Value::string(raw.as_str())),
            }
        })
        .collect();
    let long = "ab,".repeat(60_000);
    let long_context: Vec<Option<Value>> = VARIABLES
        .iter()
        .zip(&context)
        .map(|((_, ty), v)| match ty {
            Some(ContextType::String) | None => Some(Value::string(long.as_str())),
            _ => v.clone(),
        })
        .collect();
    for context in [&context[..], &[], &long_context[..]] {
        let env = EvalEnv { context, missing_experimental_unit: false, now_millis: Some(1_700_000_000_000), budget: Budget::new() };
        let _ = measured(probe, "evaluating the rule", EVALUATE_TIME, EVALUATE_BYTES, || compiled.rule.evaluate(&env));
    }
}

/// `*N:text` is `text` repeated N times (at most 300,000 bytes); anything else is itself.
fn expand(part: &str) -> String {
    if let Some((n, rest)) = part.strip_prefix('*').and_then(|p| p.split_once(':')) {
        if let Ok(n) = n.parse::<usize>() {
            if !rest.is_empty() {
                let n = n.min(300_000 / rest.len());
                return rest.repeat(n);
            }
        }
    }
    part.to_string()
}

/// A matrix every force string can act on: Pipet's example with payloads of each kind.
const FORCE_MATRIX: &str = include_str!("../../spec/examples/pipet-example-matrix.json");

/// Arbitrary text as `prforceGroups`: parsed both ways; the canonical string parses back to the
/// same groups, payloads and mode; the groups are applied to Pipet's example matrix.
pub fn force(data: &[u8], probe: &Probe) {
    let text = text(data);
    for full in [true, false] {
        let parsed = measured(probe, "parsing force groups", EVALUATE_TIME, EVALUATE_BYTES, || {
            if full {
                ForceGroups::parse(&text)
            } else {
                ForceGroups::parse_pipet(&text)
            }
        });
        if full {
            let canonical = parsed.to_canonical_string();
            let again = ForceGroups::parse(&canonical);
            assert_eq!(again.groups, parsed.groups, "groups of {canonical:?}");
            assert_eq!(again.default_mode, parsed.default_mode, "mode of {canonical:?}");
            assert_eq!(again.payloads.len(), parsed.payloads.len(), "payloads of {canonical:?}");
        }
    }
    let Ok(compilation) = CompiledMatrix::compile_json(FORCE_MATRIX, &ContextSchema::permissive()) else {
        panic!("the example matrix compiles")
    };
    for full_force in [false, true] {
        let params = IdentifyParams {
            identifiers: vec![("USER".into(), "pa5xq0lz4n80".into()), ("ACCOUNT".into(), "acct".into())],
            context: vec![("country".into(), "US".into()), ("loggedIn".into(), "true".into())],
            force_groups: Some(text.to_string()),
            full_force,
            ..IdentifyParams::default()
        };
        let _ = measured(probe, "identify with force groups", EVALUATE_TIME, EVALUATE_BYTES, || pipet::identify(&compilation.matrix, &params));
    }
}

/// Arbitrary text as a context schema (the bytes up to the first 0), and raw request values
/// (each further part, given to the schema's variables and identifier types in turn): loaded;
/// written and read back to the same schema; Pipet's example matrix compiled against it and
/// asked for groups with the values.
pub fn schema(data: &[u8], probe: &Probe) {
    let mut parts = data.split(|b| *b == 0);
    let doc = text(parts.next().unwrap_or_default()).into_owned();
    let values: Vec<String> = parts.map(|p| expand(&text(p))).collect();
    let loaded = measured(probe, "loading the schema", COMPILE_TIME, COMPILE_BYTES + 256 * doc.len(), || ContextSchema::from_json(&doc));
    let Ok(schema) = loaded else { return };
    let written = schema.to_json();
    let again = ContextSchema::from_value(&written).unwrap_or_else(|e| panic!("the written schema does not read back: {e}\n{written}"));
    assert_eq!(again.to_json(), written, "the schema reads back the same");
    let Ok(compilation) = CompiledMatrix::compile_json(FORCE_MATRIX, &schema) else { panic!("the example matrix reads") };
    let mut value = values.iter().cycle();
    let mut params = IdentifyParams { now_millis: Some(1_700_000_000_000), random_seed: Some(7), ..IdentifyParams::default() };
    if !values.is_empty() {
        for name in schema.variables.keys() {
            if let Some(v) = value.next() {
                params.context.push((name.clone(), v.clone()));
            }
        }
        for name in schema.identifiers.keys().chain(["USER".to_string()].iter()) {
            if let Some(v) = value.next() {
                params.identifiers.push((name.clone(), v.clone()));
            }
        }
    }
    let _ = measured(probe, "identify against the schema", EVALUATE_TIME, EVALUATE_BYTES, || pipet::identify(&compilation.matrix, &params));
}

/// Reads a corpus directory's files, sorted by name.
pub fn corpus_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().is_file())
                .filter_map(|e| Some((e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).ok()?)))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
