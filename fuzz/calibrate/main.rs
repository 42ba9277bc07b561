//! Measures what a budget step costs: for the most expensive operations per step that rules can
//! ask for, the time one evaluation takes and the steps it was charged, on an optimised build
//! without the fuzzers' instrumentation (`scripts/fuzz calibrate`). The budget's claims — a step
//! costs about a nanosecond or less, an evaluation at most about a millisecond, a request about
//! five — rest on this table; `fuzz/README.md` keeps the last one.

use std::time::{Duration, Instant};

use avsb_core::rule::budget::{MAX_STEPS_PER_EVALUATION, MAX_STEPS_PER_REQUEST};
use avsb_core::rule::{compile, Budget, CompileEnv, EvalEnv, VariableInfo, VariableLookup};
use avsb_core::schema::ContextType;
use avsb_core::Value;
use indexmap::IndexMap;

struct Two;

impl VariableLookup for Two {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        let slot = ["s", "t"].iter().position(|n| *n == name)?;
        Some(VariableInfo { slot, ty: Some(ContextType::String) })
    }
}

/// A deterministic string of `len` characters from `alphabet`.
fn noise(alphabet: &[char], len: usize, seed: u64) -> String {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            alphabet[(state >> 33) as usize % alphabet.len()]
        })
        .collect()
}

struct Row {
    what: String,
    steps: u64,
    best: Duration,
    outcome: String,
}

/// Evaluates `rule` with `s` and `t` a few times; the best time (the machine is shared).
fn measure(what: &str, rule: &str, constants: &[(&str, serde_json::Value)], s: &str, t: &str, vary_t: bool) -> Row {
    let constants: IndexMap<String, Value> = constants.iter().map(|(k, v)| (k.to_string(), Value::from_json(v))).collect();
    let started = Instant::now();
    let compiled = match compile(Some(rule), &mut CompileEnv { constants: &constants, variables: &mut Two }) {
        Ok(compiled) => compiled,
        Err(d) => return Row { what: what.to_string(), steps: 0, best: started.elapsed(), outcome: format!("refused at load: {}", d.code) },
    };
    let mut best = Duration::MAX;
    let mut steps = 0;
    let mut outcome = String::new();
    for round in 0..7 {
        let t = if vary_t { format!("{t}{{{round},{}}}", round + 1) } else { t.to_string() };
        let context = [Some(Value::string(s)), Some(Value::string(t.as_str()))];
        let env = EvalEnv { context: &context, missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
        let started = Instant::now();
        let result = compiled.rule.evaluate(&env);
        best = best.min(started.elapsed());
        steps = env.budget.evaluation_steps().min(MAX_STEPS_PER_EVALUATION);
        outcome = match result {
            Ok(b) => b.to_string(),
            Err(e) => e.code.to_string(),
        };
    }
    Row { what: what.to_string(), steps, best, outcome }
}

fn main() {
    let ab = noise(&['a', 'b'], 60_000, 1);
    let greek = noise(&['ß', 'ΐ', 'ǰ', 'ﬃ', 'İ'], 60_000, 2);
    let delims = noise(&['x', 'y', 'z', 'ß', 'é', ',', ';', ':', '|'], 1000, 3) + &noise(&['\u{4e00}', '\u{4e01}'], 3000, 4);
    let many: Vec<String> = (0..100_000).map(|i| format!("user{i}")).collect();
    let nested: Vec<Vec<u32>> = (0..10_000).map(|i| vec![i, i + 1, i + 2]).collect();
    let map: serde_json::Map<String, serde_json::Value> = (0..20_000).map(|i| (format!("k{i}"), serde_json::json!(i))).collect();
    fn tree(leaves: usize) -> String {
        if leaves == 1 {
            return "s!=t".to_string();
        }
        format!("({}&&{})", tree(leaves / 2), tree(leaves - leaves / 2))
    }
    let nodes = format!("${{{}}}", tree(800));
    let rows = vec![
        measure("regex, lazy DFA (.*b.*a.*)", "${proctor:matches(s, '.*b.*a.*')}", &[], &ab, "", false),
        measure("regex, DFA gives up ([ab]*a[ab]{20})", "${proctor:matches(s, '[ab]*a[ab]{20}')}", &[], &ab[..4000], "", false),
        measure("regex, NFA of ~300 states", "${proctor:matches(s, '[ab]*a[ab]{300}')}", &[], &ab[..400], "", false),
        measure("regex, NFA of ~3000 states", "${proctor:matches(s, '[ab]*a[ab]{3000}')}", &[], &ab[..3_100], "", false),
        measure("regex, NFA simulated (Unicode \\b, non-ASCII)", "${proctor:matches(s, '.*\\\\b[abé]*a[abé]{20}\\\\b.*')}", &[], &noise(&['a', 'b', 'é', ' '], 600, 5), "", false),
        measure("regex, literal with an exponential DFA", "${proctor:matches(s, t) || proctor:matches(s, '[ab]*a[ab]{15}[a-z]{2}')}", &[], "ab", "", false),
        measure("regex from the request, compiled each time", "${proctor:matches(s, t)}", &[], "ab", "[ab]*a[ab]{20}[a-z]", true),
        measure("regex from the request, 1 KiB", "${proctor:matches(s, t)}", &[], "ab", &format!("({})", vec!["[a-z]{2,9}x"; 80].join("|")), true),
        measure("upper-casing ASCII", "${fn:length(fn:toUpperCase(s)) > 0}", &[], &ab[..50_000].repeat(4), "", false),
        measure("ordering ASCII text", "${s < t}", &[], &ab.repeat(3), &ab.repeat(3), false),
        measure("substring of ASCII text", "${fn:length(fn:substring(s, 1, 200000)) > 0}", &[], &ab.repeat(3), "", false),
        measure("upper-casing expanding text", "${fn:length(fn:toUpperCase(s)) > 0}", &[], &greek[..40_000], "", false),
        measure("equalsIgnoreCase, non-ASCII", "${s.equalsIgnoreCase(t) == true}", &[], &greek, &greek, false),
        measure("containsIgnoreCase, non-ASCII", "${fn:containsIgnoreCase(s, t)}", &[], &greek[..40_000], "zz", false),
        measure("split on many delimiters", "${fn:length(fn:split(s, t)) > 0}", &[], &greek[..20_000], &delims, false),
        measure("split into many items", "${fn:length(fn:split(s, 'a')) > 0}", &[], &ab[..20_000], "", false),
        measure("join with a long separator", "${fn:length(fn:join(fn:split(s, 'a'), t)) > 0}", &[], &ab[..2000], &"x".repeat(200), false),
        measure("replace into itself", "${fn:length(fn:replace(s, 'a', s)) > 0}", &[], &ab[..600], "", false),
        measure("substring of non-ASCII text", "${fn:length(fn:substring(s, 1, 200000)) > 0}", &[], &greek, "", false),
        measure("ordering non-ASCII text", "${s < t}", &[], &greek, &greek, false),
        measure("2,400 nodes (about the longest rule)", &nodes, &[], "abc", "", false),
        measure("contains over 100,000 constants", "${proctor:contains(L, s)}", &[("L", serde_json::json!(many))], "nobody", "", false),
        measure("equals of nested constants", "${(s == '' ? L : M).equals(M) == true}", &[("L", serde_json::json!(nested)), ("M", serde_json::json!(nested.clone()))], "", "", false),
        measure("printing a 20,000-key map", "${fn:length((s == '' ? M : L).toString()) > 0}", &[("M", serde_json::json!(map)), ("L", serde_json::json!([]))], "", "", false),
        measure("a list compared with text", "${L == s}", &[("L", serde_json::json!(many[..20_000]))], "x", "", false),
    ];
    // What a pattern written in a rule costs at load: compiling it and finding out whether its
    // DFA is small (not counted by any budget, so it must stay small by itself).
    println!("{:<46} {:>11} {:>11}", "compiling a rule with the pattern", "time", "regex alone");
    for pattern in [
        "U[SK]",
        ".*(iPhone|iPad|Android|Windows Phone|BlackBerry|Opera Mini|IEMobile|Kindle|Silk).*",
        "[ab]*a[ab]{20}",
        "[ab]*a[ab]{300}",
        "(\\\\w+\\\\s?){1,50}",
        "[a-z]{1,3000}",
    ] {
        let rule = format!("${{proctor:matches(s, '{pattern}')}}");
        let constants = IndexMap::new();
        let mut best = Duration::MAX;
        let mut outcome = String::new();
        for _ in 0..5 {
            let started = Instant::now();
            let compiled = compile(Some(&rule), &mut CompileEnv { constants: &constants, variables: &mut Two });
            best = best.min(started.elapsed());
            outcome = match compiled {
                Ok(_) => "compiled".to_string(),
                Err(d) => d.code.to_string(),
            };
        }
        let mut alone = Duration::MAX;
        for _ in 0..5 {
            let started = Instant::now();
            let _ = regex::RegexBuilder::new(&format!("\\A(?:{})\\z", pattern.replace("\\\\", "\\")))
                .size_limit(1 << 20)
                .dfa_size_limit(1 << 20)
                .build();
            alone = alone.min(started.elapsed());
        }
        println!("{:<46} {:>11.3?} {:>11.3?}  {outcome}", pattern, best, alone);
    }
    println!();
    println!("{:<46} {:>9} {:>11} {:>8}  outcome", "operation", "steps", "time", "ns/step");
    let mut worst: f64 = 0.0;
    for row in &rows {
        let per_step = row.best.as_nanos() as f64 / row.steps.max(1) as f64;
        worst = worst.max(per_step);
        println!("{:<46} {:>9} {:>11.3?} {:>8.3}  {}", row.what, row.steps, row.best, per_step, row.outcome);
    }
    println!(
        "\nworst: {worst:.3} ns per step, so one evaluation ({MAX_STEPS_PER_EVALUATION} steps) costs at most {:.2} ms \
         and the steps of one request ({MAX_STEPS_PER_REQUEST}) {:.2} ms",
        worst * MAX_STEPS_PER_EVALUATION as f64 / 1e6,
        worst * MAX_STEPS_PER_REQUEST as f64 / 1e6
    );
}
