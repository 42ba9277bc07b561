//! Evaluation (docs/proctor.md §2, §5): which bucket each test assigns to a request, and how it
//! was reached.
//! Evaluation never fails: a rule error leaves only its own test unassigned.

use std::borrow::Cow;

use crate::bucketing;
use crate::compile::{CompiledTest, CompiledMatrix, Unit};
use crate::force::{self, DefaultMode, ForceGroups};
use crate::document::{Bucket, Payload};
use crate::rule::EvalEnv;
use crate::value::Value;

/// One request: identifiers, context, and the options that change assignment.
#[derive(Debug, Clone, Default)]
pub struct Request<'a> {
    /// Identifiers by slot (see [`CompiledMatrix::identifier_slot`]).
    pub identifiers: Vec<Option<Cow<'a, str>>>,
    /// Context values by slot (see [`CompiledMatrix::variable_slot`]).
    pub context: Vec<Option<Value>>,
    /// Force groups, honoured as given (the caller decides who may force).
    pub force: Option<&'a ForceGroups>,
    /// `None`: every test. `Some(names)`: only these tests (and, silently, what they depend on).
    pub tests: Option<Vec<String>>,
    /// The request time in epoch milliseconds, for `proctor:now()`.
    pub now_millis: Option<i64>,
    /// A random number from the caller for RANDOM tests; without it they get no bucket.
    pub random_seed: Option<u64>,
}

/// How a test's result was reached.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// Force groups chose the bucket.
    Forced,
    /// The identifier is listed in the test's targets.
    Targeted,
    /// Allocation N (0-based) matched and the identifier hashed into the bucket.
    Allocation(usize),
    /// Allocation N matched; `default_to_min_live` chose its smallest live bucket.
    MinLive(usize),
    /// The eligibility rule or every allocation rule was false.
    NotEligible,
    /// The request has no identifier of the test's type (or, for RANDOM, no random number).
    NoIdentifier,
    /// The test depends on another test's bucket, which the request did not get.
    DependencyNotMet,
    /// A rule failed to evaluate; only this test is unassigned.
    RuleError(Box<RuleFailure>),
    /// The request is incognito and the test does not evaluate for incognito users.
    Incognito,
    /// `default_to_fallback` left the test unassigned.
    Fallback,
}

/// Which rule failed and how (boxed in [`Reason`]: failures are rare and results many).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleFailure {
    /// Where: `rule` or `allocations[N].rule`.
    pub rule: String,
    /// What went wrong.
    pub message: String,
}

impl Reason {
    fn rule_error(rule: String, message: String) -> Reason {
        Reason::RuleError(Box::new(RuleFailure { rule, message }))
    }

    /// A stable code for the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Forced => "forced",
            Reason::Targeted => "targeted",
            Reason::Allocation(_) => "allocation",
            Reason::MinLive(_) => "min_live",
            Reason::NotEligible => "not_eligible",
            Reason::NoIdentifier => "no_identifier",
            Reason::DependencyNotMet => "dependency_not_met",
            Reason::RuleError(_) => "rule_error",
            Reason::Incognito => "incognito",
            Reason::Fallback => "fallback",
        }
    }

    /// How an exposure event names this reason (`split`, `targeted`, `forced`, `default`) and
    /// the allocation that matched; `None` for reasons that assign no bucket. Only `split`
    /// exposures say anything about the split, so only they enter experiment results.
    pub fn exposure(&self) -> Option<(&'static str, Option<usize>)> {
        match self {
            Reason::Allocation(i) => Some(("split", Some(*i))),
            Reason::MinLive(i) => Some(("default", Some(*i))),
            Reason::Targeted => Some(("targeted", None)),
            Reason::Forced => Some(("forced", None)),
            _ => None,
        }
    }

    /// The reason as JSON: `{"code": "allocation", "allocation": 1}`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Reason::Allocation(i) | Reason::MinLive(i) => serde_json::json!({"code": self.code(), "allocation": i}),
            Reason::RuleError(f) => serde_json::json!({"code": self.code(), "rule": f.rule, "message": f.message}),
            _ => serde_json::json!({"code": self.code()}),
        }
    }
}

/// One test's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Assignment<'a> {
    /// The test's name.
    pub test: &'a str,
    /// The assigned bucket, if any.
    pub bucket: Option<&'a Bucket>,
    /// The payload to use: the bucket's, or a forced one.
    pub payload: Option<Cow<'a, Payload>>,
    /// How the result was reached.
    pub reason: Reason,
    /// The test's version.
    pub version: Option<&'a str>,
}

/// Every evaluated test's result, sorted by test name.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Evaluation<'a> {
    /// Results, assigned or not, sorted by test name.
    pub results: Vec<Assignment<'a>>,
}

impl<'a> Evaluation<'a> {
    /// The assigned tests only, sorted by name.
    pub fn assigned(&self) -> impl Iterator<Item = &Assignment<'a>> {
        self.results.iter().filter(|a| a.bucket.is_some())
    }

    /// One test's result.
    pub fn get(&self, test: &str) -> Option<&Assignment<'a>> {
        self.results.binary_search_by(|a| a.test.cmp(test)).ok().map(|i| &self.results[i])
    }

    /// Pipet's `groups` object: each assigned test's `name`, `value`, `payload` (when the
    /// bucket has one) and `version`.
    pub fn groups_json(&self) -> serde_json::Value {
        let mut groups = serde_json::Map::new();
        for a in self.assigned() {
            let Some(bucket) = a.bucket else { continue };
            let mut entry = serde_json::Map::new();
            entry.insert("name".into(), bucket.name.clone().into());
            entry.insert("value".into(), bucket.value.into());
            if let Some(payload) = &a.payload {
                entry.insert("payload".into(), payload.to_json());
            }
            entry.insert("version".into(), a.version.map_or(serde_json::Value::Null, Into::into));
            groups.insert(a.test.to_string(), entry.into());
        }
        groups.into()
    }
}

impl Evaluation<'_> {
    /// Writes [`Evaluation::groups_json`] as JSON text into `out`, without building a tree.
    pub fn write_groups(&self, out: &mut Vec<u8>) {
        use crate::json::write_json;
        out.push(b'{');
        let mut first = true;
        for a in self.assigned() {
            let Some(bucket) = a.bucket else { continue };
            if !first {
                out.push(b',');
            }
            first = false;
            write_json(out, a.test);
            out.extend_from_slice(b":{\"name\":");
            write_json(out, &bucket.name);
            out.extend_from_slice(b",\"value\":");
            write_json(out, &bucket.value);
            if let Some(payload) = &a.payload {
                out.extend_from_slice(b",\"payload\":");
                payload.write_json(out);
            }
            out.extend_from_slice(b",\"version\":");
            write_json(out, &a.version);
            out.push(b'}');
        }
        out.push(b'}');
    }
}

/// Per-request state shared by the tests of one evaluation.
struct Run<'r, 'a> {
    request: &'r Request<'a>,
    env: EvalEnv<'r>,
    incognito: bool,
}

impl CompiledMatrix {
    /// The slot of an identifier type in [`Request::identifiers`], if the schema has it.
    pub fn identifier_slot(&self, test_type: &str) -> Option<usize> {
        let name = crate::schema::canonical_identifier_type(test_type);
        self.identifier_types.iter().position(|t| *t == name)
    }

    /// The identifier types, by slot.
    pub fn identifier_types(&self) -> &[String] {
        &self.identifier_types
    }

    /// The slot of a context variable in [`Request::context`], if rules or the schema know it.
    pub fn variable_slot(&self, name: &str) -> Option<usize> {
        self.variable_index.get(name).copied()
    }

    /// OpenFeature's reason for a result (docs/openfeature.md §1.2), as OFREP and the Python SDK
    /// report it: `STATIC` (forced, or one bucket for everyone), `TARGETING_MATCH` (targets, or a rule
    /// chose a one-bucket allocation), `SPLIT` (hashed over several live buckets), `DEFAULT`
    /// (no bucket: not eligible, dependency unmet, fallback), `DISABLED` (incognito) and
    /// `ERROR` (no identifier, a rule failed).
    pub fn openfeature_reason(&self, assignment: &Assignment<'_>) -> &'static str {
        match &assignment.reason {
            Reason::Forced => "STATIC",
            Reason::Targeted => "TARGETING_MATCH",
            Reason::Allocation(i) => {
                let Some(definition) = self.definition(assignment.test) else { return "UNKNOWN" };
                let Some(allocation) = definition.allocations.get(*i) else { return "UNKNOWN" };
                let live = allocation.ranges.iter().filter(|r| r.length > 0.0).count();
                if live > 1 {
                    "SPLIT"
                } else if allocation.rule.is_some() || definition.rule.is_some() {
                    "TARGETING_MATCH"
                } else {
                    "STATIC"
                }
            }
            Reason::MinLive(_) | Reason::Fallback | Reason::NotEligible | Reason::DependencyNotMet => "DEFAULT",
            Reason::Incognito => "DISABLED",
            Reason::NoIdentifier | Reason::RuleError(_) => "ERROR",
        }
    }

    /// An empty request sized for this matrix.
    pub fn request(&self) -> Request<'static> {
        Request {
            identifiers: vec![None; self.identifier_types.len()],
            context: vec![None; self.variables.len()],
            ..Request::default()
        }
    }

    /// Evaluates the requested tests (all, or the filter with its dependencies).
    pub fn evaluate<'a>(&'a self, request: &Request<'a>) -> Evaluation<'a> {
        let run = self.run(request);
        let n = self.tests.len();
        // With a filter: which tests to report, and which to evaluate (their dependencies too).
        let selection = request.tests.as_ref().map(|names| {
            let mut wanted = vec![false; n];
            let mut needed = vec![false; n];
            for name in names {
                if let Some(&i) = self.by_name.get(name.as_str()) {
                    wanted[i] = true;
                    for &j in &self.tests[i].closure {
                        needed[j] = true;
                    }
                }
            }
            (wanted, needed)
        });
        let mut chosen: Vec<Option<i32>> = if self.has_dependencies { vec![None; n] } else { Vec::new() };
        let mut results = Vec::with_capacity(if selection.is_some() { request.tests.as_ref().map_or(0, Vec::len) } else { n });
        let mut ranks: Vec<u32> = Vec::new();
        for (i, test) in self.tests.iter().enumerate() {
            if let Some((_, needed)) = &selection {
                if !needed[i] {
                    continue;
                }
            }
            let assignment = self.choose(test, &run, &chosen);
            if self.has_dependencies {
                chosen[i] = assignment.bucket.map(|b| b.value);
            }
            if selection.as_ref().is_none_or(|(wanted, _)| wanted[i]) {
                results.push(assignment);
                if self.has_dependencies {
                    ranks.push(self.rank[i]);
                }
            }
        }
        if self.has_dependencies {
            // Children were moved after their parents: back to name order.
            let mut order: Vec<usize> = (0..results.len()).collect();
            order.sort_unstable_by_key(|&k| ranks[k]);
            let mut slots: Vec<Option<Assignment<'a>>> = results.into_iter().map(Some).collect();
            results = order.into_iter().filter_map(|k| slots[k].take()).collect();
        }
        Evaluation { results }
    }

    /// Evaluates one test (and, first, the tests it depends on). Unknown tests give `None`.
    pub fn evaluate_test<'a>(&'a self, name: &str, request: &Request<'a>) -> Option<Assignment<'a>> {
        let &index = self.by_name.get(name)?;
        let run = self.run(request);
        let test = &self.tests[index];
        if test.closure.len() == 1 {
            return Some(self.choose(test, &run, &[]));
        }
        let mut chosen: Vec<Option<i32>> = vec![None; self.tests.len()];
        let mut last = None;
        for &j in &test.closure {
            let a = self.choose(&self.tests[j], &run, &chosen);
            chosen[j] = a.bucket.map(|b| b.value);
            last = Some(a);
        }
        last
    }

    fn run<'r, 'a>(&self, request: &'r Request<'a>) -> Run<'r, 'a> {
        // docs/proctor.md §2.1: `isIncognitoUser` whose text is "true" ignoring case.
        let incognito = match request.context.get(self.incognito_slot) {
            Some(Some(Value::Bool(b))) => *b,
            Some(Some(Value::String(s))) => s.eq_ignore_ascii_case("true"),
            _ => false,
        };
        Run {
            request,
            env: EvalEnv {
                context: &request.context,
                missing_experimental_unit: false,
                now_millis: request.now_millis,
                budget: crate::rule::Budget::new(),
            },
            incognito,
        }
    }

    /// One test for one request: `TestChooser.choose` with our targets
    /// (docs/proctor.md §2.2, §5.3).
    fn choose<'a>(&'a self, test: &'a CompiledTest, run: &Run<'_, 'a>, chosen: &[Option<i32>]) -> Assignment<'a> {
        let unassigned = |reason| Assignment { test: &test.name, bucket: None, payload: None, reason, version: test.definition.version.as_deref() };
        let assigned = |bucket: usize, reason| {
            let bucket = &test.definition.buckets[bucket];
            Assignment {
                test: &test.name,
                bucket: Some(bucket),
                payload: bucket.payload.as_ref().map(Cow::Borrowed),
                reason,
                version: test.definition.version.as_deref(),
            }
        };
        if run.incognito && !test.evaluate_for_incognito_users {
            return unassigned(Reason::Incognito);
        }
        let identifier: Option<&str> = match test.unit {
            Unit::Identifier(slot) => match run.request.identifiers.get(slot) {
                Some(Some(id)) => Some(id),
                _ => return unassigned(Reason::NoIdentifier),
            },
            Unit::Unconfigured => return unassigned(Reason::NoIdentifier),
            Unit::Random => {
                if run.request.random_seed.is_none() {
                    return unassigned(Reason::NoIdentifier);
                }
                None
            }
        };
        let force = run.request.force;
        if let Some(force) = force {
            if let Some(bucket) = force.groups.get(&*test.name).and_then(|v| test.bucket_index(*v)) {
                let mut a = assigned(bucket, Reason::Forced);
                if let Some(p) = force::forced_payload(a.payload.as_deref(), force.payloads.get(&*test.name)) {
                    a.payload = Some(Cow::Owned(p));
                }
                return a;
            }
            if force.default_mode == DefaultMode::Fallback {
                return unassigned(Reason::Fallback);
            }
        }
        if let Some((parent, value)) = test.depends_on {
            if chosen.get(parent).copied().flatten() != Some(value) {
                return unassigned(Reason::DependencyNotMet);
            }
        }
        if let Some(id) = identifier {
            if let Some(&bucket) = test.targets.get(id) {
                return assigned(bucket, Reason::Targeted);
            }
        }
        match test.rule.evaluate(&run.env) {
            Ok(true) => {}
            Ok(false) => return unassigned(Reason::NotEligible),
            Err(e) => return unassigned(Reason::rule_error("rule".into(), e.message)),
        }
        for (i, allocation) in test.allocations.iter().enumerate() {
            match allocation.rule.evaluate(&run.env) {
                Ok(false) => continue,
                Ok(true) => {}
                // An error ends the search: later allocations are not tried
                // (docs/proctor.md §2.2).
                Err(e) => {
                    return unassigned(Reason::rule_error(format!("allocations[{i}].rule"), e.message))
                }
            }
            if force.is_some_and(|f| f.default_mode == DefaultMode::MinLive) {
                return match allocation.min_live {
                    Some(bucket) => assigned(bucket, Reason::MinLive(i)),
                    None => unassigned(Reason::NotEligible),
                };
            }
            let range = match identifier {
                Some(id) => bucketing::choose_range(&allocation.cutoffs, bucketing::hash(&test.salt_prefix, id)),
                None => {
                    let seed = run.request.random_seed.unwrap_or_default();
                    let index = self.by_name.get(&test.name).copied().unwrap_or_default();
                    bucketing::choose_random_range(&allocation.lengths, bucketing::random_unit(seed, index))
                }
            };
            return match allocation.range_buckets.get(range) {
                Some(&bucket) => assigned(bucket, Reason::Allocation(i)),
                None => unassigned(Reason::NotEligible),
            };
        }
        unassigned(Reason::NotEligible)
    }
}
