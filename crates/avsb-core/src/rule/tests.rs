//! Unit tests of the rule module: spans, bounds, and robustness on arbitrary input.

use indexmap::IndexMap;
use proptest::prelude::*;

use super::*;

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
    let env = EvalEnv { context: &context(), missing_experimental_unit: false, now_millis: None };
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
    let env = EvalEnv { context: &[None, None, Some(Value::Bool(false))], missing_experimental_unit: true, now_millis: None };
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
                let env = EvalEnv { context: &ctx, missing_experimental_unit: false, now_millis: None };
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
            let env = EvalEnv { context: &ctx, missing_experimental_unit: missing, now_millis: Some(1) };
            let _ = compiled.rule.evaluate(&env);
        }
        let _ = compiled.rule.evaluate(&EvalEnv { context: &[], missing_experimental_unit: false, now_millis: None });
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
            let env = EvalEnv { context: &context, missing_experimental_unit: false, now_millis: None };
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
        let env = EvalEnv { context: &same, missing_experimental_unit: false, now_millis: None };
        assert_eq!(rule.evaluate(&env), Ok(true), "{text} with {value:?}");
        let other = [Some(match &value {
            Value::String(s) => Value::string(format!("{s}x")),
            Value::Bool(b) => Value::Bool(!b),
            Value::Int(n, kind) => Value::Int(n.wrapping_add(1), *kind),
            Value::Double(d) => Value::Double(d * 2.0 + 1.0),
            other => unreachable!("{other:?}"),
        })];
        let env = EvalEnv { context: &other, missing_experimental_unit: false, now_millis: None };
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
