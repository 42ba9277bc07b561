//! Unit tests of the rule module: spans, bounds, and robustness on arbitrary input.

use indexmap::IndexMap;
use proptest::prelude::*;

use super::*;
use super::budget;

struct Vars(Vec<(&'static str, ContextType)>);

impl VariableLookup for Vars {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        let slot = self.0.iter().position(|(n, _)| *n == name)?;
        Some(VariableInfo { slot, ty: Some(self.0[slot].1) })
    }
}

fn vars() -> Vars {
    Vars(vec![("country", ContextType::String), ("age", ContextType::Integer), ("premium", ContextType::Boolean)])
}

fn compile_text(text: &str) -> Result<Compiled, RuleDiagnostic> {
    let constants = IndexMap::from([("L".to_string(), Value::from_json(&serde_json::json!(["a", "b"])))]);
    let mut vars = vars();
    compile(Some(text), &mut CompileEnv { constants: &constants, variables: &mut vars })
}

fn context() -> Vec<Option<Value>> {
    vec![Some(Value::string("US")), Some(Value::Int(31, crate::IntKind::Integer)), Some(Value::Bool(true))]
}

fn span_text(text: &str, d: &RuleDiagnostic) -> String {
    let (a, b) = d.span.expect("a span");
    text[a..b].to_string()
}

#[test]
fn unknown_variable_points_at_the_name() {
    let text = "${country == 'US' && contry == 'CA'}";
    let d = compile_text(text).unwrap_err();
    assert_eq!(d.code, "unknown_variable");
    assert_eq!(span_text(text, &d), "contry");
    assert!(d.message.contains("'contry'"), "{}", d.message);
}

#[test]
fn other_diagnostics_have_spans() {
    let text = "${proctor:foo(age) && premium}";
    let d = compile_text(text).unwrap_err();
    assert_eq!((d.code, span_text(text, &d).as_str()), ("unknown_function", "proctor:foo(age)"));
    let text = "${premium && proctor:matches(country, '(a)\\\\1')}";
    let d = compile_text(text).unwrap_err();
    assert_eq!(d.code, "regex_unsupported");
    assert_eq!(span_text(text, &d), "'(a)\\\\1'");
    let text = "${country == 'US' &&& premium}";
    let d = compile_text(text).unwrap_err();
    assert_eq!((d.code, span_text(text, &d).as_str()), ("syntax_error", "&"));
    let text = "${country}";
    let d = compile_text(text).unwrap_err();
    assert_eq!((d.code, span_text(text, &d).as_str()), ("not_boolean", "country"));
}

#[test]
fn bounds_name_the_limit() {
    let long = format!("${{premium{}}}", " ".repeat(MAX_RULE_LENGTH));
    let d = compile_text(&long).unwrap_err();
    assert_eq!(d.code, "rule_too_long");
    assert!(d.message.contains(&MAX_RULE_LENGTH.to_string()));
    let deep = format!("${{{}premium{}}}", "(".repeat(MAX_NESTING_DEPTH + 1), ")".repeat(MAX_NESTING_DEPTH + 1));
    let d = compile_text(&deep).unwrap_err();
    assert_eq!(d.code, "rule_too_deep");
    assert!(d.message.contains(&MAX_NESTING_DEPTH.to_string()));
}

#[test]
fn fast_paths_are_exact() {
    // `${ true }` in any case is answered without evaluation, but only after the usual checks:
    // EL keywords are lower case, so `TRUE` is a variable, which must exist.
    assert!(compile_text("${ true }").unwrap().rule.is_always_true());
    let d = compile_text("${ TRUE }").unwrap_err();
    assert_eq!((d.code, d.span), ("unknown_variable", Some((3, 7))));
    let constants = IndexMap::from([("TRUE".to_string(), Value::Bool(false))]);
    let mut vars = vars();
    let c = compile(Some("${TRUE}"), &mut CompileEnv { constants: &constants, variables: &mut vars }).unwrap();
    assert!(c.rule.is_always_true(), "the fast path wins over the constant's value, as in RuleEvaluator");
    assert!(!compile_text("${trueCount}").is_ok_and(|c| c.rule.is_always_true()));
}

#[test]
fn text_outside_one_expression_is_a_string() {
    // Proctor's load-time check types these as String and refuses them (docs/proctor.md §3.6).
    for text in ["true", "ruleA", " ${true} ", "${premium} ", "${premium}}", "${'tr'}${'ue'}"] {
        let d = compile_text(text).unwrap_err();
        assert_eq!(d.code, "not_boolean", "{text}");
        assert_eq!(d.span, Some((0, text.len())), "{text}");
    }
    // A syntax error is reported as such, before the type.
    assert_eq!(compile_text("abc ${").unwrap_err().code, "syntax_error");
}

#[test]
fn empty_rules_follow_proctor() {
    // Blank (Java's white space, so a no-break space is not blank) is always true.
    for text in ["", " ", "\t\n", "\u{1c}"] {
        assert!(compile_text(text).unwrap().rule.is_always_true(), "{text:?}");
    }
    assert_eq!(compile_text("\u{a0}").unwrap_err().code, "not_boolean");
    // Empty inside `${...}`: true when the braces are the whole text, else malformed and false.
    assert!(compile_text("${}").unwrap().rule.is_always_true());
    assert!(compile_text("${   }").unwrap().rule.is_always_true());
    for text in [" ${} ", " ${ } ", "${} "] {
        let c = compile_text(text).unwrap();
        assert!(!c.rule.is_always_true(), "{text:?}");
        assert_eq!(c.warnings[0].code, "malformed_rule");
    }
    for (text, empty) in [(None, true), (Some(" ${ } "), true), (Some("\t"), true), (Some("${a}"), false), (Some(" a "), false)] {
        assert_eq!(is_empty_rule(text), empty, "{text:?}");
    }
}

#[test]
fn a_deferred_expression_loads_but_is_never_true() {
    let c = compile_text("#{premium}").unwrap();
    assert!(matches!(*c.rule.root, Node::Const(Value::Bool(false))));
    assert_eq!(c.warnings[0].code, "malformed_rule");
    assert_eq!(compile_text("#{country}").unwrap_err().code, "not_boolean");
}

#[test]
fn a_rule_ending_in_a_map_read_checks_the_value_type() {
    let constants = IndexMap::from([(
        "traits".to_string(),
        Value::from_json(&serde_json::json!({"on": true, "text": "123", "none": null, "list": [true]})),
    )]);
    let compile_with = |text: &str| {
        let mut vars = vars();
        compile(Some(text), &mut CompileEnv { constants: &constants, variables: &mut vars })
    };
    let env = EvalEnv { context: &context(), missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
    assert_eq!(compile_with("${traits.on}").unwrap().rule.evaluate(&env), Ok(true));
    for (text, code) in [
        ("${traits.fakeValue}", "missing_map_key"),
        ("${traits.none}", "missing_map_key"),
        ("${traits.text}", "not_boolean"),
        ("${traits.list[0]}", "not_boolean"),
        ("${traits[country]}", "missing_map_key"),
    ] {
        let d = compile_with(text).unwrap_err();
        assert_eq!(d.code, code, "{text}: {}", d.message);
    }
    // Inside a larger expression the map read is an ordinary value: a missing key is null.
    let c = compile_with("${!traits.fakeValue}").unwrap();
    assert_eq!(c.rule.evaluate(&env), Ok(true));
}

#[test]
fn constant_subexpressions_fold() {
    let c = compile_text("${proctor:version('1.2.0.1') >= proctor:version('1.2.x')}").unwrap();
    assert!(c.rule.is_always_true());
    let c = compile_text("${age > 1 + 2}").unwrap();
    let Node::Binary(_, _, rhs) = &*c.rule.root else { panic!("{:?}", c.rule.root) };
    assert!(matches!(**rhs, Node::Const(Value::Int(3, _))));
    let c = compile_text("${proctor:matches(country, 'U.')}").unwrap();
    assert!(matches!(*c.rule.root, Node::Matches(..)));
}

#[test]
fn missing_experimental_unit_is_tracked() {
    let c = compile_text("${premium || missingExperimentalUnit}").unwrap();
    assert!(c.rule.references_missing_experimental_unit());
    assert_eq!(c.rule.source(), Some("${premium || missingExperimentalUnit}"));
    let env = EvalEnv { context: &[None, None, Some(Value::Bool(false))], missing_experimental_unit: true, now_millis: None, budget: Budget::new() };
    assert_eq!(c.rule.evaluate(&env), Ok(true));
}

/// The deepest rules the bounds allow compile and evaluate within a modest stack, even in a
/// debug build (release frames are several times smaller).
#[test]
fn deepest_rules_fit_a_small_stack() {
    let n = MAX_NESTING_DEPTH - 2;
    let rules = [
        format!("${{{}premium{}}}", "(".repeat(n), ")".repeat(n)),
        format!("${{{}premium}}", "!".repeat(n)),
        format!("${{{}}}", vec!["premium"; n].join(" && ")),
        format!("${{{}'x'{} == 'x'}}", "fn:trim(".repeat(n - 2), ")".repeat(n - 2)),
        format!("${{{}'x'{}}}", "country.equals(".repeat(n - 2), ")".repeat(n - 2)),
        format!("${{{}premium{}}}", "premium ? ".repeat(n / 2), " : false".repeat(n / 2)),
        format!("${{{}0{} == 'a'}}", "L[".repeat(n - 2), "]".repeat(n - 2)),
    ];
    for rule in rules {
        let handle = std::thread::Builder::new()
            .stack_size(1536 << 10)
            .spawn(move || {
                let compiled = match compile_text(&rule) {
                    Ok(compiled) => compiled,
                    Err(d) if d.code == "rule_error" => return,
                    Err(d) => panic!("{rule}: {d:?}"),
                };
                let ctx = context();
                let env = EvalEnv { context: &ctx, missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
                let _ = compiled.rule.evaluate(&env);
            })
            .unwrap();
        handle.join().unwrap();
    }
}

fn token() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "country", "age", "premium", "L", "nothing", "(", ")", "[", "]", ".", ",", "?", ":", "!", "-", "+", "*", "/",
        "%", "==", "!=", "<", ">", "<=", ">=", "&&", "||", "and", "or", "not", "empty", "div", "mod", "eq", "lt",
        "true", "false", "null", "0", "1", "2.5", "1e3", "'US'", "'x'", "\"y\"", "proctor:contains", "proctor:matches",
        "proctor:version", "proctor:inRange", "proctor:now", "fn:length", "fn:substring", "fn:split", "fn:join",
        "length()", "substring", "}", "${", "'1.2.x'", "'[a-z]+'", "9223372036854775807",
    ])
}

fn evaluate_any(text: &str) {
    if let Ok(compiled) = compile_text(text) {
        let ctx = context();
        for missing in [false, true] {
            let env = EvalEnv { context: &ctx, missing_experimental_unit: missing, now_millis: Some(1), budget: Budget::new() };
            let _ = compiled.rule.evaluate(&env);
        }
        let _ = compiled.rule.evaluate(&EvalEnv { context: &[], missing_experimental_unit: false, now_millis: None, budget: Budget::new() });
    }
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        evaluate_any(&text);
        evaluate_any(&format!("${{{text}}}"));
    }

    #[test]
    fn random_token_sequences_never_panic(tokens in prop::collection::vec(token(), 0..40)) {
        evaluate_any(&format!("${{{}}}", tokens.join(" ")));
    }
}

/// The shortcut shapes answer exactly as the general evaluator, whatever the request holds.
#[test]
fn shortcuts_agree_with_the_general_evaluator() {
    use crate::version::ReleaseVersion;
    use crate::value::IntKind;
    let rules = [
        "${plan == 'pro'}",
        "${plan != 'pro'}",
        "${plan eq ''}",
        "${proctor:contains(LIST, plan)}",
        "${proctor:contains(NUMBERS, plan)}",
        "${plan >= proctor:version('2.0.0.0')}",
        "${plan lt proctor:version('1.x')}",
        "${plan <= proctor:version('2.0.x')}",
        "${plan > proctor:version('0.0.0.1')}",
    ];
    let values = [
        None,
        Some(Value::Null),
        Some(Value::string("pro")),
        Some(Value::string("PRO")),
        Some(Value::string("")),
        Some(Value::string("5")),
        Some(Value::Int(5, IntKind::Integer)),
        Some(Value::Bool(true)),
        Some(Value::Version(ReleaseVersion::parse("2.0.0.0").unwrap())),
        Some(Value::Version(ReleaseVersion::parse("1.9.x").unwrap())),
        Some(Value::Version(ReleaseVersion::parse("2.0.1.0").unwrap())),
    ];
    let constants: IndexMap<String, Value> = [
        ("LIST".to_string(), Value::from_json(&serde_json::json!(["pro", "team", 5, null]))),
        ("NUMBERS".to_string(), Value::from_json(&serde_json::json!([5, 6]))),
    ]
    .into_iter()
    .collect();
    let mut checked = 0;
    for text in rules {
        let mut lookup = Unknown;
        let mut env = CompileEnv { constants: &constants, variables: &mut lookup };
        let rule = crate::rule::compile(Some(text), &mut env).map(|c| c.rule).unwrap();
        for value in &values {
            let context = [value.clone()];
            let env = EvalEnv { context: &context, missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
            let (fast, general) = (rule.evaluate(&env), rule.evaluate_generally(&env));
            assert_eq!(fast.is_ok(), general.is_ok(), "{text} with {value:?}: {fast:?} vs {general:?}");
            if let (Ok(a), Ok(b)) = (fast, general) {
                assert_eq!(a, b, "{text} with {value:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 40);
}

/// A lookup that knows one variable, `plan`, of unknown type (as a permissive schema has).
struct Unknown;

impl VariableLookup for Unknown {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        (name == "plan").then_some(VariableInfo { slot: 0, ty: None })
    }
}

/// A lookup that knows every name, as a variable of unknown type in slot 0, and remembers what
/// it was asked for.
struct AnyName(Vec<String>);

impl VariableLookup for AnyName {
    fn lookup(&mut self, name: &str) -> Option<VariableInfo> {
        self.0.push(name.to_string());
        Some(VariableInfo { slot: 0, ty: None })
    }
}

/// A literal reads back, through the whole compiler, as the value it was written from: no
/// string can end its quotes early, and the smallest long, which has no literal of its own,
/// is an expression.
#[test]
fn literals_read_back_as_their_values() {
    use crate::value::IntKind::Long;
    let values = [
        Value::string("it's"),
        Value::string("say \"hi\""),
        Value::string("back\\slash"),
        Value::string("\\'"),
        Value::string("ends with a backslash\\"),
        Value::string("' || true || '"),
        Value::string("${nested}"),
        Value::string("caf\u{e9} \u{2603}"),
        Value::string(""),
        Value::Bool(true),
        Value::Bool(false),
        Value::Int(0, Long),
        Value::Int(-42, Long),
        Value::Int(i64::MAX, Long),
        Value::Int(i64::MIN, Long),
        Value::Double(0.5),
        Value::Double(-1.25),
        Value::Double(1e-4),
        Value::Double(1e20),
        Value::Double(0.1),
    ];
    let constants = IndexMap::new();
    for value in values {
        let text = format!("${{plan == {}}}", literal(&value).unwrap());
        let mut lookup = Unknown;
        let rule = compile(Some(&text), &mut CompileEnv { constants: &constants, variables: &mut lookup }).unwrap().rule;
        let same = [Some(value.clone())];
        let env = EvalEnv { context: &same, missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
        assert_eq!(rule.evaluate(&env), Ok(true), "{text} with {value:?}");
        let other = [Some(match &value {
            Value::String(s) => Value::string(format!("{s}x")),
            Value::Bool(b) => Value::Bool(!b),
            Value::Int(n, kind) => Value::Int(n.wrapping_add(1), *kind),
            Value::Double(d) => Value::Double(d * 2.0 + 1.0),
            other => unreachable!("{other:?}"),
        })];
        let env = EvalEnv { context: &other, missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
        assert_eq!(rule.evaluate(&env), Ok(false), "{text} with {:?}", other[0]);
    }
    for unwritable in [Value::Double(f64::NAN), Value::Double(f64::INFINITY), Value::Null] {
        assert_eq!(literal(&unwritable), None);
    }
}

/// The names `is_variable_name` accepts are exactly those a rule reads as a variable.
#[test]
fn variable_names_are_identifiers_that_are_not_reserved_words() {
    let constants = IndexMap::new();
    let accepted = ["plan", "_x", "$x", "a1", "caf\u{e9}", "fn", "emptyish", "notes"];
    let refused = ["", "2fa", "first-name", "a b", "and", "empty", "instanceof", "true", "null", "mod"];
    for name in accepted.into_iter().chain(refused) {
        let mut lookup = AnyName(Vec::new());
        let text = format!("${{{name} == 'x'}}");
        let compiled = compile(Some(&text), &mut CompileEnv { constants: &constants, variables: &mut lookup });
        let read_as_variable = compiled.is_ok() && lookup.0 == [name];
        assert_eq!(is_variable_name(name), read_as_variable, "{name:?}");
        assert_eq!(accepted.contains(&name), read_as_variable, "{name:?}");
    }
}

// --- the evaluation budget (issue 15) ---------------------------------------------------------

fn compile_with(text: &str, constants: &[(&str, serde_json::Value)]) -> Result<Compiled, RuleDiagnostic> {
    let constants: IndexMap<String, Value> = constants.iter().map(|(k, v)| (k.to_string(), Value::from_json(v))).collect();
    let mut vars = vars();
    compile(Some(text), &mut CompileEnv { constants: &constants, variables: &mut vars })
}

/// Evaluates with `country` set to `value` (the other variables as in `context()`).
fn evaluate_with_country(rule: &Rule, value: &str) -> (Result<bool, RuleError>, u64) {
    let mut ctx = context();
    ctx[0] = Some(Value::string(value));
    let env = EvalEnv { context: &ctx, missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
    let result = rule.evaluate(&env);
    (result, env.budget.evaluation_steps())
}

/// `fn:replace(inner, 'a', with)`.
fn replace(inner: &str, with: &str) -> String {
    format!("fn:replace({inner}, 'a', {with})")
}

#[test]
fn rules_whose_strings_grow_geometrically_with_nesting_are_refused_at_load() {
    // A variable replaced into itself, nested: the power of its length doubles at each level.
    let square = replace("country", "country");
    let text = format!("${{fn:length({}) > 0}}", replace(&square, &square));
    let d = compile_text(&text).unwrap_err();
    assert_eq!(d.code, "rule_too_costly");
    assert_eq!(span_text(&text, &d), replace(&square, &square), "the place is the call that grows");
    assert!(d.message.contains("fn:replace") && d.message.contains("cube"), "{}", d.message);
    // A constant factor, nested: ten-fold per level, refused past 4096-fold.
    let mut grown = "country".to_string();
    for _ in 0..4 {
        grown = replace(&grown, "'aaaaaaaaaa'");
    }
    let text = format!("${{fn:length({grown}) > 0}}");
    let d = compile_text(&text).unwrap_err();
    assert_eq!((d.code, span_text(&text, &d)), ("rule_too_costly", grown.clone()));
    assert!(d.message.contains(&MAX_GROWTH_FACTOR.to_string()), "{}", d.message);
    // fn:join of fn:split with the value itself as the separator, nested.
    let joined = "fn:join(fn:split(country, ''), country)";
    let text = format!("${{fn:length(fn:join(fn:split({joined}, ''), {joined})) > 0}}");
    assert_eq!(compile_text(&text).unwrap_err().code, "rule_too_costly");
    // An Integer has at most 11 characters, so its worst case is known: past the longest string.
    let mut grown = "age".to_string();
    for _ in 0..5 {
        grown = format!("fn:replace({grown}, '1', '1111111111')");
    }
    let d = compile_text(&format!("${{fn:length({grown}) > 0}}")).unwrap_err();
    assert!(d.message.contains("one-character") || d.message.contains(&budget::MAX_STRING_BYTES.to_string()), "{}", d.message);
    // A short part of a long constant is as long as it is, not as its container.
    let big = serde_json::json!({"k": "x", "rest": "y".repeat(100_000)});
    assert!(compile_with("${fn:length(fn:replace(country, 'a', C.k)) > 0}", &[("C", big)]).is_ok());
    // One level less of each passes: the budget guards what the schema cannot bound.
    assert!(compile_text(&format!("${{fn:length({square}) > 0}}")).is_ok());
    assert!(compile_text("${fn:length(fn:replace(fn:replace(fn:replace(country, 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa'), 'a', 'aaaaaaaaaa')) > 0}").is_ok());
}

#[test]
fn constant_folding_stops_at_the_budget_instead_of_aborting() {
    // The same growth written with a constant: each level is folded at load, under the budget,
    // until one would pass the longest string a rule may make.
    let mut grown = "'a'".to_string();
    for _ in 0..9 {
        grown = replace(&grown, "'aaaaaaaaaa'");
    }
    let text = format!("${{fn:length({grown}) > 0}}");
    let started = std::time::Instant::now();
    let d = compile_text(&text).unwrap_err();
    assert_eq!(d.code, "rule_too_costly");
    assert!(d.message.contains("constant folding stopped") && d.message.contains("262144"), "{}", d.message);
    // The sixth level is the first past 256 KiB (10^6 bytes); the place is that call.
    let mut sixth = "'a'".to_string();
    for _ in 0..6 {
        sixth = replace(&sixth, "'aaaaaaaaaa'");
    }
    assert_eq!(span_text(&text, &d), sixth);
    assert!(started.elapsed() < std::time::Duration::from_secs(5), "{:?}", started.elapsed());
    // Below the limit, folding still happens: 10^5 bytes, computed once, at load.
    let mut fifth = "'a'".to_string();
    for _ in 0..5 {
        fifth = replace(&fifth, "'aaaaaaaaaa'");
    }
    let c = compile_text(&format!("${{fn:length({fifth}) == 100000}}")).unwrap();
    assert!(c.rule.is_always_true());
}

#[test]
fn a_rule_past_the_budget_at_evaluation_fails_with_the_limit_in_its_message() {
    // Validation accepts a square (one level), but a long value makes it too long.
    let rule = compile_text("${fn:length(fn:replace(country, 'a', country)) > 0}").unwrap().rule;
    assert_eq!(evaluate_with_country(&rule, &"a".repeat(500)).0, Ok(true), "250,500 bytes: under the limit");
    let (result, steps) = evaluate_with_country(&rule, &"a".repeat(600));
    let e = result.unwrap_err();
    assert_eq!(e.code, "budget_exceeded");
    assert!(e.message.contains("fn:replace") && e.message.contains("262144"), "{}", e.message);
    assert!(steps < 10_000, "refused before it was made: {steps} steps");
    // Reading a long value again and again is counted too.
    let reads: Vec<String> = (0..20).map(|i| format!("fn:contains(country, 'x{i}')")).collect();
    let rule = compile_text(&format!("${{{}}}", reads.join(" || "))).unwrap().rule;
    assert_eq!(evaluate_with_country(&rule, &"a".repeat(10_000)).0, Ok(false));
    let e = evaluate_with_country(&rule, &"a".repeat(100_000)).0.unwrap_err();
    assert!(e.message.contains(&budget::MAX_STEPS_PER_EVALUATION.to_string()), "{}", e.message);
}

#[test]
fn long_but_legal_strings_still_work() {
    let long = "a".repeat(200_000);
    for (text, expect) in [
        ("${fn:length(fn:toUpperCase(country)) == 200000}", true),
        ("${fn:endsWith(fn:replace(country, 'a', 'b'), 'bbb')}", true),
        ("${fn:length(fn:split(fn:substring(country, 0, 20000), 'x')) == 1}", true),
        ("${country.trim().startsWith('aaa') == true}", true),
        ("${proctor:matches(country, 'a*')}", true),
    ] {
        let rule = compile_text(text).unwrap().rule;
        assert_eq!(evaluate_with_country(&rule, &long).0, Ok(expect), "{text}");
    }
    // A constant of 4,000 bytes put in for each of 60 letters: 240,000 bytes, under the limit.
    let c = compile_with("${fn:length(fn:replace(country, 'a', C)) == 240000}", &[("C", serde_json::json!("c".repeat(4000)))]).unwrap();
    assert_eq!(evaluate_with_country(&c.rule, &"a".repeat(60)).0, Ok(true));
    assert_eq!(evaluate_with_country(&c.rule, &"a".repeat(70)).0.unwrap_err().code, "budget_exceeded");
}

#[test]
fn lists_a_rule_makes_are_bounded() {
    let rule = compile_text("${fn:length(fn:split(country, ',')) > 0}").unwrap().rule;
    assert_eq!(evaluate_with_country(&rule, &"a,".repeat(1000)).0, Ok(true));
    let e = evaluate_with_country(&rule, &"a,".repeat(20_000)).0.unwrap_err();
    assert!(e.message.contains(&budget::MAX_COLLECTION_ITEMS.to_string()), "{}", e.message);
    // Many delimiters do not make the split quadratic.
    let rule = compile_text("${fn:length(fn:split(country, country)) == 0}").unwrap().rule;
    let started = std::time::Instant::now();
    let _ = evaluate_with_country(&rule, &"abcdefghij".repeat(20_000));
    assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
}

fn contains_node(node: &Node, found: &dyn Fn(&Node) -> bool) -> bool {
    if found(node) {
        return true;
    }
    match node {
        Node::Unary(_, a) | Node::Matches(a, _) | Node::MatchesMethod(a, _) => contains_node(a, found),
        Node::Binary(_, a, b) | Node::Index(a, b) => contains_node(a, found) || contains_node(b, found),
        Node::Cond(a, b, c) => contains_node(a, found) || contains_node(b, found) || contains_node(c, found),
        Node::Method(a, _, args) => contains_node(a, found) || args.iter().any(|n| contains_node(n, found)),
        Node::Call(_, args) => args.iter().any(|n| contains_node(n, found)),
        Node::Const(_) | Node::Slot(..) | Node::MissingUnit => false,
    }
}

#[test]
fn patterns_written_in_the_rule_are_compiled_once_at_load() {
    let rule = compile_text("${!country.matches('U[SK]') && proctor:matches(country, 'C.')}").unwrap().rule;
    assert!(contains_node(&rule.root, &|n| matches!(n, Node::MatchesMethod(_, r) if r.is_ok())), "{:?}", rule.root);
    assert!(!contains_node(&rule.root, &|n| matches!(n, Node::Method(_, name, _) if &**name == "matches")));
    assert_eq!(evaluate_with_country(&rule, "CA").0, Ok(true));
    assert_eq!(evaluate_with_country(&rule, "US").0, Ok(false));
    // A pattern Java cannot compile still fails where Java throws: when the call runs.
    let d = compile_text("${!country.matches('(')}").unwrap_err();
    assert_eq!(d.code, "rule_error", "a String is \"\" at load, so the call runs there");
    assert!(d.message.contains("invalid_regex"), "{}", d.message);
    let constants = IndexMap::new();
    let mut lookup = Unknown;
    let rule = compile(Some("${!plan.matches('(')}"), &mut CompileEnv { constants: &constants, variables: &mut lookup }).unwrap().rule;
    let env = EvalEnv { context: &[Some(Value::string("x"))], missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
    assert_eq!(rule.evaluate(&env).unwrap_err().code, "invalid_regex");
    // A null base before the call is still a null step (`x.y.matches(...)` with `x.y` null).
    let c = compile_with("${M.k.matches('a') == null}", &[("M", serde_json::json!({"k": null}))]).unwrap();
    assert_eq!(evaluate_with_country(&c.rule, "US").0, Ok(true));
}

#[test]
fn patterns_computed_at_evaluation_are_bounded_and_cached() {
    let constants = IndexMap::new();
    let mut lookup = Vars(vec![("text", ContextType::String), ("pattern", ContextType::String)]);
    let rule = compile(Some("${proctor:matches(text, pattern) || text.matches(pattern)}"), &mut CompileEnv { constants: &constants, variables: &mut lookup })
        .unwrap()
        .rule;
    let run = |text: &str, pattern: &str| {
        let ctx = [Some(Value::string(text)), Some(Value::string(pattern))];
        let env = EvalEnv { context: &ctx, missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
        (rule.evaluate(&env), env.budget.evaluation_steps())
    };
    assert_eq!(run("abc", "a.c").0, Ok(true));
    assert_eq!(run("abc", "a.d").0, Ok(false));
    // The answer and its cost do not depend on whether the pattern was cached.
    let unique = "x{1,2}y{0,3}z?";
    let first = run("xy", unique);
    assert_eq!(first, run("xy", unique));
    let e = run("a", &"a".repeat(MAX_DYNAMIC_PATTERN_BYTES + 1)).0.unwrap_err();
    assert_eq!(e.code, "invalid_regex");
    assert!(e.message.contains(&MAX_DYNAMIC_PATTERN_BYTES.to_string()), "{}", e.message);
    // The regex crate's size limit: a pattern whose program is too large is refused, not built.
    let e = run("a", "(((a{100}){100}){100})").0.unwrap_err();
    assert_eq!(e.code, "invalid_regex");
    assert!(e.message.contains("bytes"), "{}", e.message);
}

#[test]
fn matching_costs_what_the_pattern_may_cost() {
    let regex = super::functions::compile_java_regex;
    // A small DFA: a DFA's steps, however long the text.
    assert_eq!(regex("U[SK]|C[AN]").unwrap().steps_per_byte(1 << 20), 2);
    // A user agent's length is matched as a DFA by the patterns rules use on it.
    let browsers = regex(".*(Chrome|Firefox|Safari|Edge|Opera|SamsungBrowser)/[0-9.]+.*").unwrap();
    assert_eq!(browsers.steps_per_byte(500), 2);
    // A DFA too large to build whole: a DFA's steps while the text cannot fill its cache, the
    // NFA simulation's (some thousands for 300 states) beyond.
    let large = regex("[ab]*a[ab]{300}").unwrap();
    assert_eq!(large.steps_per_byte(100), 2);
    assert!(large.steps_per_byte(100_000) > 2000, "{}", large.steps_per_byte(100_000));
    // A Unicode word boundary makes the lazy DFA quit on non-ASCII text: always simulated.
    assert!(regex(r"\bU[SK]\b").unwrap().steps_per_byte(10) > 2);
    let rule = compile_text("${proctor:matches(country, '[ab]*a[ab]{300}')}").unwrap().rule;
    assert_eq!(evaluate_with_country(&rule, &"a".repeat(320)).0, Ok(true));
    let started = std::time::Instant::now();
    assert_eq!(evaluate_with_country(&rule, &"a".repeat(200_000)).0.unwrap_err().code, "budget_exceeded");
    assert!(started.elapsed() < std::time::Duration::from_millis(500), "refused before matching: {:?}", started.elapsed());
}

#[test]
fn messages_do_not_grow_with_the_values_they_quote() {
    let long = "9".repeat(100_000) + "x";
    for text in ["${country + 1 > 0}", "${L[country] == 'a'}", "${proctor:version(country) == null}", "${country.substring(0, 0).x == 1}"] {
        let constants = [("L", serde_json::json!(["a"]))];
        let Ok(c) = compile_with(text, &constants) else { continue };
        let e = evaluate_with_country(&c.rule, &long).0.unwrap_err();
        assert!(e.message.len() < 600, "{text}: {} bytes", e.message.len());
    }
    // A failure at load quotes a long constant no more than one at evaluation does.
    let big: Vec<u32> = (0..100_000).collect();
    let d = compile_with("${L + 1 > 0}", &[("L", serde_json::json!(big))]).unwrap_err();
    assert!(d.message.len() < 700 && d.message.contains('…'), "{}", d.message);
}
