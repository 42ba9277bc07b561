//! Proctor's rule language: EL 2.2 expressions as Proctor evaluates them (docs/proctor.md §3).
//!
//! A rule is compiled once, when its matrix loads: it is parsed (with spans for diagnostics),
//! its names are resolved against the test's constants and the schema's context variables, its
//! result type is checked, constant subexpressions are folded, and it is evaluated once with
//! dummy values as Proctor's `RuleVerifyUtils` does. Evaluation then needs no name lookups and
//! allocates nothing in the common cases. Regular expressions run in linear time.
//!
//! Map: [`lexer`] tokens, [`parser`] syntax tree, [`compile`] checks and folding, [`eval`]
//! operators and coercions, [`functions`] the libraries; `ReleaseVersion` is `crate::version`.

use std::sync::Arc;


use crate::schema::ContextType;
use crate::value::Value;

pub mod budget;
mod compile;
mod env;
mod growth;
mod eval;
mod functions;
mod lexer;
mod parser;

pub use budget::Budget;
pub use env::{CompileEnv, EvalEnv, RuleDiagnostic, RuleError, VariableInfo, VariableLookup, MAX_NESTING_DEPTH, MAX_RULE_LENGTH};
pub use functions::MAX_DYNAMIC_PATTERN_BYTES;
pub use growth::{MAX_GROWTH_FACTOR, TOO_COSTLY};
pub use lexer::{is_variable_name, literal};

use compile::{Compiler, StaticType};
use eval::Node;
use parser::{parse_composite, BinOp, Part};

/// A compiled rule and any warnings about it.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The rule.
    pub rule: Rule,
    /// Problems that do not reject the rule.
    pub warnings: Vec<RuleDiagnostic>,
}

/// A compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Shared: tests with the same rule text and constants share one compiled tree.
    root: Arc<Node>,
    source: Option<Box<str>>,
    uses_missing_unit: bool,
}

impl Rule {
    /// The rule that always matches (a null or blank rule).
    pub fn always() -> Rule {
        Rule { root: Arc::new(Node::Const(Value::Bool(true))), source: None, uses_missing_unit: false }
    }

    fn constant(value: bool, source: &str) -> Rule {
        Rule { root: Arc::new(Node::Const(Value::Bool(value))), source: Some(source.into()), uses_missing_unit: false }
    }

    /// Whether the rule matches every request.
    pub fn is_always_true(&self) -> bool {
        matches!(*self.root, Node::Const(Value::Bool(true)))
    }

    /// The rule's text, or `None` for a null rule.
    pub fn source(&self) -> Option<&str> {
        self.source.as_deref()
    }

    /// Whether the rule refers to the built-in `missingExperimentalUnit` variable.
    pub fn references_missing_experimental_unit(&self) -> bool {
        self.uses_missing_unit
    }

    /// Evaluates the rule for one request: a Boolean result is the answer, null is false, and
    /// anything else is an error (code `not_boolean`).
    ///
    /// Each call is one evaluation of `env`'s budget ([`budget`]): it fails with
    /// `budget_exceeded` past [`budget::MAX_STEPS_PER_EVALUATION`] steps, or when the request's
    /// rules have taken [`budget::MAX_STEPS_PER_REQUEST`] steps together.
    pub fn evaluate(&self, env: &EvalEnv<'_>) -> Result<bool, RuleError> {
        if let Some(answer) = self.shortcut(env) {
            return Ok(answer);
        }
        env.budget.start_evaluation();
        self.evaluate_root(env)
    }

    /// Proctor checks the type of the rule's value before evaluating it (`RuleEvaluator.
    /// checkRuleIsBooleanType`); only a rule whose last step reads a map, a list or an array,
    /// or calls a method, can fail that check differently from the value check below, so such
    /// a rule goes through [`eval::top_level_index`] or [`eval::top_level_method`].
    fn evaluate_root(&self, env: &EvalEnv<'_>) -> Result<bool, RuleError> {
        match &*self.root {
            Node::Index(base, key) => {
                if let Some(answer) = eval::top_level_index(base, key, env)? {
                    return Ok(answer);
                }
            }
            Node::Method(base, name, _) => return Err(eval::top_level_method(base, name, env)),
            _ => {}
        }
        let value = eval::eval(&self.root, env)?;
        match &*value {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            other => Err(eval::err(
                "not_boolean",
                format!("the rule evaluated to a {}, not a boolean", eval::class_name(other)),
            )),
        }
    }
}

impl Rule {
    /// The commonest rule shapes, answered without the general evaluator when the request's
    /// values have the types the shape assumes: constant rules, `${var == 'text'}` (and `!=`),
    /// `${proctor:contains(CONSTANT_LIST, var)}` with a String variable, and a ReleaseVersion
    /// variable compared with a constant version. Anything else, including a missing variable
    /// or another type (which EL would coerce or reject), goes the general way: `None`.
    /// [`Rule::evaluate`] without [`Rule::shortcut`], to hold the two to the same answers.
    #[cfg(test)]
    pub(crate) fn evaluate_generally(&self, env: &EvalEnv<'_>) -> Result<bool, RuleError> {
        self.evaluate_root(env)
    }

    fn shortcut(&self, env: &EvalEnv<'_>) -> Option<bool> {
        let slot = |node: &Node| match node {
            Node::Slot(slot, _) => env.context.get(*slot).and_then(Option::as_ref),
            _ => None,
        };
        match &*self.root {
            Node::Const(Value::Bool(b)) => Some(*b),
            Node::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b) => match (slot(a), &**b) {
                (Some(Value::String(s)), Node::Const(Value::String(text))) => Some((s == text) == (*op == BinOp::Eq)),
                _ => None,
            },
            Node::Binary(op @ (BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge), a, b) => match (slot(a), &**b) {
                (Some(Value::Version(v)), Node::Const(Value::Version(bound))) => {
                    let order = v.java_compare(bound);
                    Some(match op {
                        BinOp::Lt => order.is_lt(),
                        BinOp::Le => order.is_le(),
                        BinOp::Gt => order.is_gt(),
                        _ => order.is_ge(),
                    })
                }
                _ => None,
            },
            // Up to a few thousand items: a longer list goes the general way, which counts its
            // items against the budget.
            Node::Call(functions::Func::Contains, args) => match (args.first(), args.get(1).and_then(slot)) {
                (Some(Node::Const(Value::List(items))), Some(Value::String(s))) if items.len() <= budget::FREE_STEPS_PER_EVALUATION as usize => {
                    Some(items.iter().any(|item| matches!(item, Value::String(e) if e == s)))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// Compiles a rule (`None` or blank: always true) as Proctor loads and evaluates it.
///
/// * A rule that is empty once white space and one `${...}` are removed (`${}`, ` ${ } `) is not
///   checked at load (`ProctorUtils.isEmptyElExpression`); it is true when it starts with `${`
///   and ends with `}`, and otherwise false with a `malformed_rule` warning, as
///   `RuleEvaluator` answers.
/// * Any other text is checked as EL: text outside one `${...}` (`true`, ` ${a} `) makes the
///   value a String, which the load-time check refuses (`not_boolean`).
/// * `${true}` and `${false}` in any case are answered without evaluation, after the same
///   checks as any rule (so `${TRUE}` names a variable that must exist).
/// * A lone deferred expression `#{...}` passes the load-time check like `${...}` but is never
///   true: Proctor evaluates only rules that start with `${` (a `malformed_rule` warning).
pub fn compile(text: Option<&str>, env: &mut CompileEnv<'_>) -> Result<Compiled, RuleDiagnostic> {
    let Some(text) = text.filter(|t| !crate::java::is_blank(t)) else {
        return Ok(Compiled { rule: Rule::always(), warnings: Vec::new() });
    };
    if text.len() > MAX_RULE_LENGTH {
        return Err(RuleDiagnostic {
            code: "rule_too_long",
            message: format!("the rule is {} bytes long; the limit is {MAX_RULE_LENGTH}", text.len()),
            span: None,
        });
    }
    let braced = text.starts_with("${") && text.ends_with('}') && text.len() >= 3;
    if is_empty_rule(Some(text)) {
        if braced {
            return Ok(Compiled { rule: Rule::constant(true, text), warnings: Vec::new() });
        }
        return Ok(Compiled { rule: Rule::constant(false, text), warnings: vec![malformed(text)] });
    }
    let parts = parse_composite(text)?;
    let mut compiler = Compiler { env, slots: Vec::new(), uses_missing_unit: false, constant_lengths: Default::default() };
    let mut compiled = Vec::new();
    for part in &parts {
        if let Part::Expr(expr) = part {
            compiled.push((compiler.root(expr)?, expr.span));
        }
    }
    let ((root, ty), span) = match (parts.len(), compiled.pop()) {
        (1, Some(only)) => only,
        (_, None) => {
            return Err(RuleDiagnostic {
                code: "not_boolean",
                message: "the rule is text, not a ${...} expression, so its value is a String, not a boolean".to_string(),
                span: Some((0, text.len())),
            })
        }
        _ => {
            return Err(RuleDiagnostic {
                code: "not_boolean",
                message: "the rule mixes text and expressions, so its value is a String, not a boolean".to_string(),
                span: Some((0, text.len())),
            })
        }
    };
    if let StaticType::Other(class) = ty {
        return Err(RuleDiagnostic {
            code: "not_boolean",
            message: format!("the rule's value is a {class}, not a boolean"),
            span: Some(span),
        });
    }
    let rule = Rule { root: Arc::new(root), source: Some(text.into()), uses_missing_unit: compiler.uses_missing_unit };
    verify(&rule, &compiler.slots, span)?;
    if !braced {
        return Ok(Compiled { rule: Rule::constant(false, text), warnings: vec![malformed(text)] });
    }
    // RuleEvaluator's fast path (docs/proctor.md §3), taken only for the exact words.
    let body = text[2..text.len() - 1].trim();
    if body.eq_ignore_ascii_case("true") || body.eq_ignore_ascii_case("false") {
        return Ok(Compiled { rule: Rule::constant(body.eq_ignore_ascii_case("true"), text), warnings: Vec::new() });
    }
    Ok(Compiled { rule, warnings: Vec::new() })
}

fn malformed(text: &str) -> RuleDiagnostic {
    RuleDiagnostic {
        code: "malformed_rule",
        message: "the rule does not start with '${' and end with '}', so it is always false".to_string(),
        span: Some((0, text.len())),
    }
}

/// `ProctorUtils.isEmptyElExpression`: null, blank, or blank once one enclosing `${` ... `}`
/// is removed, white space trimmed around and inside it (`${}`, ` ${ } `). Only the last
/// allocation may have an empty rule (docs/proctor.md §1.10.6).
pub fn is_empty_rule(text: Option<&str>) -> bool {
    let Some(text) = text else { return true };
    let trimmed = text.trim_matches(crate::java::is_whitespace);
    let inner = match trimmed.strip_prefix("${").and_then(|t| t.strip_suffix('}')) {
        Some(inner) => inner,
        None => trimmed,
    };
    crate::java::is_blank(inner)
}

/// Proctor's `RuleVerifyUtils`: evaluates the rule once with String variables set to `""` and
/// every other variable "uninstantiated" (null). A failure rejects the rule unless it refers to
/// an uninstantiated variable.
fn verify(rule: &Rule, slots: &[compile::SlotUse], span: (usize, usize)) -> Result<(), RuleDiagnostic> {
    let size = slots.iter().map(|s| s.slot + 1).max().unwrap_or(0);
    let mut context: Vec<Option<Value>> = vec![None; size];
    let mut uninstantiated = false;
    for use_ in slots {
        context[use_.slot] = Some(if use_.ty == Some(ContextType::String) {
            Value::string("")
        } else {
            uninstantiated = true;
            Value::Null
        });
    }
    let env = EvalEnv { context: &context, missing_experimental_unit: false, now_millis: Some(0), budget: Budget::new() };
    match rule.evaluate(&env) {
        // The type check comes before evaluation in Proctor and is never excused by an
        // uninstantiated variable (an IllegalArgumentException, not an ELException).
        Err(e) if TYPE_CHECK_CODES.contains(&e.code) => Err(RuleDiagnostic { code: e.code, message: e.message, span: Some(span) }),
        // A rule that cannot finish within the budget even with empty values never will.
        Err(e) if e.code == budget::BUDGET_EXCEEDED => Err(RuleDiagnostic {
            code: TOO_COSTLY,
            message: format!("the rule exceeds the evaluation budget even with empty context values: {}", e.message),
            span: Some(span),
        }),
        Err(e) if !uninstantiated => Err(RuleDiagnostic {
            code: "rule_error",
            message: format!("the rule fails when evaluated with empty values ({}): {}", e.code, e.message),
            span: Some(span),
        }),
        _ => Ok(()),
    }
}

/// The evaluation errors of `RuleEvaluator.checkRuleIsBooleanType` that are not EL exceptions,
/// so that no uninstantiated variable excuses them at load.
const TYPE_CHECK_CODES: [&str; 3] = ["not_boolean", "missing_map_key", "top_level_method"];

#[cfg(test)]
mod tests;
