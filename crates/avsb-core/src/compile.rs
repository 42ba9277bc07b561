//! Validation and compilation of a matrix (docs/proctor.md §1.10): every test either compiles
//! into a form that evaluates fast, or is dropped with diagnostics saying exactly why. Rules are
//! parsed once here.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;

use indexmap::IndexMap;
use rustc_hash::FxHashMap;

use crate::bucketing;
use crate::diagnostic::{Diagnostic, Severity};
use crate::document::{Audit, Bucket, MatrixDocument, TestDefinition};
use crate::rule::{self, CompileEnv, Rule, VariableInfo, VariableLookup};
use crate::schema::{ContextSchema, ContextType};
use crate::value::Value;

/// The context variable Proctor itself reads to skip tests for incognito users
/// (docs/proctor.md §2.1).
pub const INCOGNITO_VARIABLE: &str = "isIncognitoUser";

/// Range lengths of an allocation must sum to 1 within this tolerance.
const SUM_TOLERANCE: f64 = 0.0001;

/// Which identifier a test hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// The identifier in this slot of the request.
    Identifier(usize),
    /// One of Proctor's types that the schema does not configure: requests never carry it.
    Unconfigured,
    /// RANDOM: a number from the caller.
    Random,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledAllocation {
    pub rule: Rule,
    pub cutoffs: Vec<i32>,
    /// Bucket index (into `CompiledTest::buckets`) of each range.
    pub range_buckets: Vec<usize>,
    pub lengths: Vec<f64>,
    /// `default_to_min_live`: the bucket with the smallest value among ranges of non-zero length.
    pub min_live: Option<usize>,
}

#[derive(Debug, Clone)]
pub(crate) struct CompiledTest {
    pub name: Arc<str>,
    pub unit: Unit,
    pub salt_prefix: Vec<u8>,
    pub depends_on: Option<(usize, i32)>,
    /// Identifier to bucket index.
    pub targets: HashMap<String, usize>,
    pub rule: Rule,
    pub allocations: Vec<CompiledAllocation>,
    pub evaluate_for_incognito_users: bool,
    /// The test as read (buckets, version, ...), kept once for evaluation and for output.
    pub definition: TestDefinition,
    /// This test and its ancestors, in evaluation order (positions in `CompiledMatrix::tests`).
    pub closure: Vec<usize>,
}

impl CompiledTest {
    pub(crate) fn bucket_index(&self, value: i32) -> Option<usize> {
        self.definition.buckets.iter().position(|b| b.value == value)
    }
}

/// A context variable slot.
#[derive(Debug, Clone, PartialEq)]
pub struct VariableSlot {
    /// The variable's name.
    pub name: String,
    /// Its declared type; `None` in a permissive schema for variables only rules mention.
    pub ty: Option<ContextType>,
}

/// A validated, compiled matrix, ready to evaluate requests.
#[derive(Debug, Clone)]
pub struct CompiledMatrix {
    pub(crate) audit: Audit,
    /// The audit as Pipet writes it, rendered once (formatting `updatedDate` needs the tz database).
    pub(crate) audit_text: std::sync::OnceLock<String>,
    /// In evaluation order (parents before children).
    pub(crate) tests: Vec<CompiledTest>,
    pub(crate) by_name: FxHashMap<Arc<str>, usize>,
    /// Positions in `tests`, sorted by test name (Proctor's `TreeMap` order).
    pub(crate) sorted: Vec<usize>,
    /// Each test's place in `sorted`.
    pub(crate) rank: Vec<u32>,
    /// Whether any test depends on another (otherwise evaluation order is name order).
    pub(crate) has_dependencies: bool,
    pub(crate) variables: Vec<VariableSlot>,
    pub(crate) variable_index: FxHashMap<String, usize>,
    pub(crate) identifier_types: Vec<String>,
    pub(crate) incognito_slot: usize,
    /// Positions in `tests`, in document order.
    pub(crate) document_order: Vec<usize>,
    pub(crate) schema: ContextSchema,
}

/// The outcome of compiling a matrix: the usable matrix and one diagnostic per problem.
#[derive(Debug, Clone)]
pub struct Compilation {
    /// The matrix without the dropped tests.
    pub matrix: CompiledMatrix,
    /// Diagnostics; each [`Severity::Error`] names a dropped test.
    pub diagnostics: Vec<Diagnostic>,
}

impl Compilation {
    /// The names of the dropped tests, in document order, without repeats.
    pub fn dropped_tests(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error && seen.insert(d.test.as_str()))
            .map(|d| d.test.as_str())
            .collect()
    }
}

/// Resolves rule variables against the schema's slots, adding slots for unknown names when the
/// schema is permissive.
struct Variables<'a> {
    slots: &'a mut Vec<VariableSlot>,
    index: &'a mut FxHashMap<String, usize>,
    permissive: bool,
    /// The incognito slot when the schema does not declare it: usable only by permissive rules.
    incognito: Option<usize>,
}

impl VariableLookup for Variables<'_> {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        if let Some(&slot) = self.index.get(name) {
            return Some(VariableInfo { slot, ty: self.slots[slot].ty });
        }
        if !self.permissive {
            return None;
        }
        if let (INCOGNITO_VARIABLE, Some(slot)) = (name, self.incognito) {
            return Some(VariableInfo { slot, ty: None });
        }
        let slot = self.slots.len();
        self.slots.push(VariableSlot { name: name.to_string(), ty: None });
        self.index.insert(name.to_string(), slot);
        Some(VariableInfo { slot, ty: None })
    }
}

impl CompiledMatrix {
    /// Reads and compiles a matrix document. Fails only if the document cannot be read at all.
    pub fn compile_json(text: &str, schema: &ContextSchema) -> Result<Compilation, crate::reader::DocumentError> {
        let (matrix, mut diagnostics) = MatrixDocument::from_json(text)?;
        let mut compilation = CompiledMatrix::compile(matrix, schema);
        diagnostics.append(&mut compilation.diagnostics);
        compilation.diagnostics = diagnostics;
        Ok(compilation)
    }

    /// Validates and compiles a matrix. Invalid tests are dropped, each with diagnostics.
    pub fn compile(mut source: MatrixDocument, schema: &ContextSchema) -> Compilation {
        let mut diagnostics = Vec::new();
        let mut variables: Vec<VariableSlot> = schema
            .variables
            .iter()
            .map(|(name, var)| VariableSlot { name: name.clone(), ty: Some(var.ty) })
            .collect();
        let mut variable_index: FxHashMap<String, usize> =
            variables.iter().enumerate().map(|(i, v)| (v.name.clone(), i)).collect();
        let declared_incognito = variable_index.get(INCOGNITO_VARIABLE).copied();
        let incognito_slot = declared_incognito.unwrap_or_else(|| {
            // Requests may carry it without the schema declaring it; strict rules still may not use it.
            variables.push(VariableSlot { name: INCOGNITO_VARIABLE.to_string(), ty: None });
            variables.len() - 1
        });
        let hidden_incognito = declared_incognito.is_none().then_some(incognito_slot);
        let identifier_types: Vec<String> = schema.identifiers.keys().cloned().collect();

        // First pass: everything a test can be checked for on its own.
        let mut compiled: IndexMap<String, CompiledTest> = IndexMap::with_capacity(source.tests.len());
        let mut rules = RuleCache::default();
        for (name, test) in &source.tests {
            let mut lookup = Variables {
                slots: &mut variables,
                index: &mut variable_index,
                permissive: schema.permissive,
                incognito: hidden_incognito,
            };
            match compile_test(name, test, schema, &identifier_types, &mut lookup, &mut rules) {
                Ok((test, warnings)) => {
                    diagnostics.extend(warnings);
                    compiled.insert(name.clone(), test);
                }
                Err(mut errors) => diagnostics.append(&mut errors),
            }
        }
        // Requests name variables through this index, the incognito flag included.
        variable_index.insert(INCOGNITO_VARIABLE.to_string(), incognito_slot);

        // Second pass: dependencies, until no more tests fall.
        check_dependencies(&source, &mut compiled, &mut diagnostics);

        // Evaluation order (docs/proctor.md §2.1): parents before children; otherwise by name, so
        // that without dependencies results come out in Proctor's sorted order with no sorting per
        // request.
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut ready: BinaryHeap<Reverse<&str>> = BinaryHeap::new();
        for (name, test) in &source.tests {
            if !compiled.contains_key(name) {
                continue;
            }
            match &test.depends_on {
                Some(d) => children.entry(d.test_name.as_str()).or_default().push(name),
                None => ready.push(Reverse(name)),
            }
        }
        let mut order: Vec<String> = Vec::with_capacity(compiled.len());
        while let Some(Reverse(name)) = ready.pop() {
            order.push(name.to_string());
            if let Some(kids) = children.get(name) {
                ready.extend(kids.iter().map(|k| Reverse(*k)));
            }
        }
        let document_names: Vec<String> = source.tests.keys().cloned().collect();
        let mut definitions: HashMap<String, TestDefinition> = std::mem::take(&mut source.tests).into_iter().collect();
        let position: HashMap<&str, usize> = order.iter().enumerate().map(|(i, n)| (n.as_str(), i)).collect();
        let mut tests: Vec<CompiledTest> = Vec::with_capacity(order.len());
        for name in &order {
            let Some(mut test) = compiled.swap_remove(name) else { continue };
            if let Some(definition) = definitions.remove(name) {
                test.definition = definition;
            }
            let parent = test.definition.depends_on.as_ref();
            test.depends_on = parent.and_then(|d| Some((*position.get(d.test_name.as_str())?, d.bucket_value)));
            test.closure = match test.depends_on {
                Some((p, _)) => {
                    let mut closure = tests.get(p).map(|t| t.closure.clone()).unwrap_or_default();
                    closure.push(tests.len());
                    closure
                }
                None => vec![tests.len()],
            };
            tests.push(test);
        }
        let by_name: FxHashMap<Arc<str>, usize> = tests.iter().enumerate().map(|(i, t)| (t.name.clone(), i)).collect();
        let mut sorted: Vec<usize> = (0..tests.len()).collect();
        sorted.sort_by(|a, b| tests[*a].name.cmp(&tests[*b].name));
        let mut rank = vec![0u32; tests.len()];
        for (r, &i) in sorted.iter().enumerate() {
            rank[i] = r as u32;
        }
        let has_dependencies = tests.iter().any(|t| t.depends_on.is_some());
        let document_order = document_names.iter().filter_map(|n| by_name.get(n.as_str()).copied()).collect();

        Compilation {
            matrix: CompiledMatrix {
                audit: source.audit.clone(),
                audit_text: std::sync::OnceLock::new(),
                tests,
                by_name,
                sorted,
                rank,
                has_dependencies,
                variables,
                variable_index,
                identifier_types,
                incognito_slot,
                document_order,
                schema: schema.clone(),
            },
            diagnostics,
        }
    }

    /// The matrix audit.
    pub fn audit(&self) -> &Audit {
        &self.audit
    }

    /// The audit as Pipet's JSON text, rendered on first use and kept.
    pub fn audit_json_text(&self) -> &str {
        self.audit_text.get_or_init(|| self.audit.to_json().to_string())
    }

    /// The valid tests as read, in document order (what `/proctor/matrix` serves).
    pub fn to_document(&self) -> MatrixDocument {
        MatrixDocument {
            audit: self.audit.clone(),
            tests: self
                .document_order
                .iter()
                .map(|&i| (self.tests[i].name.to_string(), self.tests[i].definition.clone()))
                .collect(),
        }
    }

    /// One valid test as read.
    pub fn definition(&self, name: &str) -> Option<&TestDefinition> {
        self.by_name.get(name).map(|&i| &self.tests[i].definition)
    }

    /// The schema the matrix was compiled against.
    pub fn schema(&self) -> &ContextSchema {
        &self.schema
    }

    /// The number of tests.
    pub fn len(&self) -> usize {
        self.tests.len()
    }

    /// Whether the matrix has no tests.
    pub fn is_empty(&self) -> bool {
        self.tests.is_empty()
    }

    /// The test names, sorted.
    pub fn test_names(&self) -> impl Iterator<Item = &str> {
        self.sorted.iter().map(|&i| &*self.tests[i].name)
    }

    /// The context variable slots.
    pub fn variables(&self) -> &[VariableSlot] {
        &self.variables
    }
}

fn rule_diagnostic(test: &str, path: String, text: &str, d: rule::RuleDiagnostic, severity: Severity) -> Diagnostic {
    Diagnostic {
        severity,
        test: test.to_string(),
        path,
        code: d.code,
        message: d.message,
        rule: Some(text.to_string()),
        span: d.span,
    }
}

type Checked = Result<(CompiledTest, Vec<Diagnostic>), Vec<Diagnostic>>;

/// Compiled rules by rule text and the test's constants: matrices repeat rules across tests,
/// and tests sharing a rule then share its compiled tree.
#[derive(Default)]
struct RuleCache {
    rules: HashMap<(String, String), Result<rule::Compiled, rule::RuleDiagnostic>>,
}

fn compile_test(
    name: &str,
    test: &TestDefinition,
    schema: &ContextSchema,
    identifier_types: &[String],
    variables: &mut Variables<'_>,
    cache: &mut RuleCache,
) -> Checked {
    let path = |rest: &str| format!("tests.{name}.{rest}");
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let error = |errors: &mut Vec<Diagnostic>, at: String, code, message: String| {
        errors.push(Diagnostic::error(name, at, code, message));
    };

    // 1. The test type.
    let unit = if test.test_type == "RANDOM" {
        Some(Unit::Random)
    } else if let Some(slot) = identifier_types.iter().position(|t| *t == test.test_type) {
        Some(Unit::Identifier(slot))
    } else if schema.knows_test_type(&test.test_type) {
        // One of Proctor's types the schema does not configure: never has an identifier.
        Some(Unit::Unconfigured)
    } else {
        let known: Vec<&str> = crate::schema::PROCTOR_TEST_TYPES
            .iter()
            .copied()
            .chain(identifier_types.iter().map(String::as_str).filter(|t| !crate::schema::PROCTOR_TEST_TYPES.contains(t)))
            .collect();
        error(
            &mut errors,
            path("testType"),
            "unknown_test_type",
            format!("unknown test type '{}': expected one of {}", test.test_type, known.join(", ")),
        );
        None
    };

    // 2. Rules, compiled once with the test's constants.
    let constants: IndexMap<String, Value> = test.constants.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
    let constants_key = if test.constants.is_empty() { String::new() } else { serde_json::to_string(&test.constants).unwrap_or_default() };
    let mut compile_rule = |text: Option<&str>, at: String, errors: &mut Vec<Diagnostic>| -> Option<Rule> {
        let result = match text.filter(|t| !crate::java::is_blank(t)) {
            None => Ok(rule::Compiled { rule: Rule::always(), warnings: Vec::new() }),
            Some(text) => cache
                .rules
                .entry((text.to_string(), constants_key.clone()))
                .or_insert_with(|| {
                    let mut env = CompileEnv { constants: &constants, variables: &mut *variables };
                    rule::compile(Some(text), &mut env)
                })
                .clone(),
        };
        match result {
            Ok(compiled) => {
                let source = text.unwrap_or_default();
                warnings.extend(
                    compiled.warnings.into_iter().map(|w| rule_diagnostic(name, at.clone(), source, w, Severity::Warning)),
                );
                Some(compiled.rule)
            }
            Err(d) => {
                errors.push(rule_diagnostic(name, at, text.unwrap_or_default(), d, Severity::Error));
                None
            }
        }
    };
    let test_rule = compile_rule(test.rule.as_deref(), path("rule"), &mut errors);

    // 3-7. Allocations and ranges.
    if test.allocations.is_empty() {
        error(&mut errors, path("allocations"), "no_allocations", "a test needs at least one allocation".into());
    }
    let mut allocations = Vec::with_capacity(test.allocations.len());
    let last = test.allocations.len().saturating_sub(1);
    for (i, allocation) in test.allocations.iter().enumerate() {
        let at = |rest: &str| path(&format!("allocations[{i}]{rest}"));
        // Empty as Proctor counts it: null, blank, or nothing inside `${` `}` (docs/proctor.md §1.10.6).
        if rule::is_empty_rule(allocation.rule.as_deref()) && i != last {
            let shown = match allocation.rule.as_deref() {
                None => "none".to_string(),
                Some(text) => format!("the empty rule {text:?}"),
            };
            error(
                &mut errors,
                at(".rule"),
                "empty_rule_not_last",
                format!("only the last allocation may have an empty rule; allocation {i} of {} has {shown}", last + 1),
            );
        }
        let rule = compile_rule(allocation.rule.as_deref(), at(".rule"), &mut errors);
        if allocation.ranges.is_empty() {
            error(&mut errors, at(".ranges"), "no_ranges", format!("allocation {i} has no ranges"));
            continue;
        }
        let mut range_buckets = Vec::with_capacity(allocation.ranges.len());
        for (j, range) in allocation.ranges.iter().enumerate() {
            match test.buckets.iter().position(|b| b.value == range.bucket_value) {
                Some(b) => range_buckets.push(b),
                None => error(
                    &mut errors,
                    at(&format!(".ranges[{j}].bucketValue")),
                    "undefined_bucket",
                    format!("range {j} refers to bucket value {}, which the test does not define", range.bucket_value),
                ),
            }
        }
        let sum: f64 = allocation.ranges.iter().map(|r| r.length).sum();
        if !(1.0 - SUM_TOLERANCE..=1.0 + SUM_TOLERANCE).contains(&sum) {
            error(
                &mut errors,
                at(".ranges"),
                "ranges_sum",
                format!("the range lengths of allocation {i} sum to {sum}, not 1 (tolerance {SUM_TOLERANCE})"),
            );
        }
        if test.enable_unitless_allocations
            && allocation.rule.as_deref().is_some_and(crate::document::is_unitless_rule)
            && !allocation.ranges.iter().any(|r| r.length > 1.0 - SUM_TOLERANCE)
        {
            error(
                &mut errors,
                at(".ranges"),
                "unitless_split",
                format!("allocation {i} is unitless (its rule uses missingExperimentalUnit) and must send all traffic to one bucket"),
            );
        }
        if range_buckets.len() == allocation.ranges.len() {
            let lengths: Vec<f64> = allocation.ranges.iter().map(|r| r.length).collect();
            let min_live = allocation
                .ranges
                .iter()
                .zip(&range_buckets)
                .filter(|(r, _)| r.length > 0.0)
                .min_by_key(|(r, _)| r.bucket_value)
                .map(|(_, b)| *b);
            allocations.push(CompiledAllocation {
                rule: rule.unwrap_or_else(Rule::always),
                cutoffs: bucketing::cutoffs(lengths.iter().copied()),
                range_buckets,
                lengths,
                min_live,
            });
        }
    }

    // 8. Payloads: all buckets or none, and one type.
    let with_payload: Vec<&Bucket> = test.buckets.iter().filter(|b| b.payload.is_some()).collect();
    if !with_payload.is_empty() && with_payload.len() != test.buckets.len() {
        let missing: Vec<String> = test
            .buckets
            .iter()
            .enumerate()
            .filter(|(_, b)| b.payload.is_none())
            .map(|(i, b)| format!("buckets[{i}] ('{}')", b.name))
            .collect();
        error(
            &mut errors,
            path("buckets"),
            "payload_missing",
            format!("either every bucket has a payload or none does; missing in {}", missing.join(", ")),
        );
    }
    if let Some(first) = with_payload.first().and_then(|b| b.payload.as_ref()) {
        for (i, bucket) in test.buckets.iter().enumerate() {
            if let Some(p) = &bucket.payload {
                if p.type_name() != first.type_name() {
                    error(
                        &mut errors,
                        path(&format!("buckets[{i}].payload")),
                        "payload_mixed",
                        format!("payload type '{}' differs from '{}' of the other buckets", p.type_name(), first.type_name()),
                    );
                }
            }
        }
    }

    // Targets (extension).
    let mut targets = HashMap::new();
    for (i, target) in test.targets.iter().enumerate() {
        let Some(bucket) = test.buckets.iter().position(|b| b.value == target.bucket_value) else {
            error(
                &mut errors,
                path(&format!("targets[{i}].bucketValue")),
                "undefined_bucket",
                format!("target {i} refers to bucket value {}, which the test does not define", target.bucket_value),
            );
            continue;
        };
        for (j, id) in target.identifiers.iter().enumerate() {
            if let Some(previous) = targets.insert(id.clone(), bucket) {
                if previous != bucket {
                    error(
                        &mut errors,
                        path(&format!("targets[{i}].identifiers[{j}]")),
                        "duplicate_target",
                        format!("identifier '{id}' is targeted to two buckets"),
                    );
                }
            }
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    let Some(unit) = unit else { return Err(errors) };
    Ok((
        CompiledTest {
            name: Arc::from(name),
            unit,
            salt_prefix: bucketing::salt_prefix(name, test.salt.as_deref()),
            depends_on: None,
            targets,
            rule: test_rule.unwrap_or_else(Rule::always),
            allocations,
            evaluate_for_incognito_users: test.evaluate_for_incognito_users,
            // Moved in from the source once the test survives every check.
            definition: TestDefinition::default(),
            closure: Vec::new(),
        },
        warnings,
    ))
}

/// Drops tests whose `dependsOn` is invalid (docs/proctor.md §1.10.9), repeating until stable so
/// that a test depending (indirectly) on a dropped test is dropped too.
fn check_dependencies(source: &MatrixDocument, compiled: &mut IndexMap<String, CompiledTest>, diagnostics: &mut Vec<Diagnostic>) {
    loop {
        let mut dropped = Vec::new();
        for (name, test) in &source.tests {
            if !compiled.contains_key(name) {
                continue;
            }
            let Some(dep) = &test.depends_on else { continue };
            let at = format!("tests.{name}.dependsOn");
            let problem: Option<(&'static str, String)> = if dep.test_name == *name {
                Some(("depends_on_self", "a test cannot depend on itself".into()))
            } else if dep.bucket_value < 0 {
                Some(("depends_on_negative", format!("bucketValue {} is negative; a dependency must name an active bucket", dep.bucket_value)))
            } else if let Some(parent) = source.tests.get(&dep.test_name) {
                if !compiled.contains_key(&dep.test_name) {
                    Some(("depends_on_invalid", format!("depends on '{}', which is invalid", dep.test_name)))
                } else if parent.test_type != test.test_type {
                    Some((
                        "depends_on_type",
                        format!("test type {} differs from {} of '{}'", test.test_type, parent.test_type, dep.test_name),
                    ))
                } else if parent.salt == test.salt {
                    Some(("depends_on_salt", format!("has the same salt as '{}', so its assignment would mirror the parent's", dep.test_name)))
                } else if !parent.buckets.iter().any(|b| b.value == dep.bucket_value) {
                    Some(("depends_on_bucket", format!("'{}' has no bucket with value {}", dep.test_name, dep.bucket_value)))
                } else if in_cycle(source, name) {
                    Some(("depends_on_cycle", "the dependency chain is circular".into()))
                } else {
                    None
                }
            } else {
                Some(("depends_on_unknown", format!("depends on '{}', which is not in the matrix", dep.test_name)))
            };
            if let Some((code, message)) = problem {
                diagnostics.push(Diagnostic::error(name, at, code, message));
                dropped.push(name.clone());
            }
        }
        if dropped.is_empty() {
            return;
        }
        for name in dropped {
            compiled.swap_remove(&name);
        }
    }
}

fn in_cycle(source: &MatrixDocument, start: &str) -> bool {
    let mut seen = HashSet::new();
    let mut current = start;
    while let Some(dep) = source.tests.get(current).and_then(|t| t.depends_on.as_ref()) {
        if dep.test_name == start {
            return true;
        }
        if !seen.insert(dep.test_name.as_str()) {
            return false; // a cycle further up, reported for its own members
        }
        current = &dep.test_name;
    }
    false
}
