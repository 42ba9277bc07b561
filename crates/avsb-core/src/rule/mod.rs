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

mod compile;
mod env;
mod eval;
mod functions;
mod lexer;
mod parser;

pub use env::{CompileEnv, EvalEnv, RuleDiagnostic, RuleError, VariableInfo, VariableLookup, MAX_NESTING_DEPTH, MAX_RULE_LENGTH};
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
    pub fn evaluate(&self, env: &EvalEnv<'_>) -> Result<bool, RuleError> {
        if let Some(answer) = self.shortcut(env) {
            return Ok(answer);
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
        let value = eval::eval(&self.root, env)?;
        match &*value {
            Value::Bool(b) => Ok(*b),
            Value::Null => Ok(false),
            other => Err(eval::err("not_boolean", format!("the rule evaluated to a {}", eval::class_name(other)))),
        }
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
            Node::Call(functions::Func::Contains, args) => match (args.first(), args.get(1).and_then(slot)) {
                (Some(Node::Const(Value::List(items))), Some(Value::String(s))) => {
                    Some(items.iter().any(|item| matches!(item, Value::String(e) if e == s)))
                }
                _ => None,
            },
            _ => None,
        }
    }
}

/// Compiles a rule (`None` or blank: always true).
///
/// A rule that does not start with `${` and end with `}` is constant false, with a
/// `malformed_rule` warning, as in Proctor.
pub fn compile(text: Option<&str>, env: &mut CompileEnv<'_>) -> Result<Compiled, RuleDiagnostic> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Compiled { rule: Rule::always(), warnings: Vec::new() });
    };
    if text.len() > MAX_RULE_LENGTH {
        return Err(RuleDiagnostic {
            code: "rule_too_long",
            message: format!("the rule is {} bytes long; the limit is {MAX_RULE_LENGTH}", text.len()),
            span: None,
        });
    }
    if !(text.starts_with("${") && text.ends_with('}')) || text.len() < 3 {
        let warning = RuleDiagnostic {
            code: "malformed_rule",
            message: "the rule does not start with '${' and end with '}', so it is always false".to_string(),
            span: Some((0, text.len())),
        };
        return Ok(Compiled { rule: Rule::constant(false, text), warnings: vec![warning] });
    }
    let body = text[2..text.len() - 1].trim();
    if body.is_empty() || body.eq_ignore_ascii_case("true") {
        return Ok(Compiled { rule: Rule::constant(true, text), warnings: Vec::new() });
    }
    if body.eq_ignore_ascii_case("false") {
        return Ok(Compiled { rule: Rule::constant(false, text), warnings: Vec::new() });
    }
    let parts = parse_composite(text)?;
    let mut compiler = Compiler { env, slots: Vec::new(), uses_missing_unit: false };
    let mut compiled = Vec::new();
    for part in &parts {
        if let Part::Expr(expr) = part {
            compiled.push((compiler.expr(expr)?, expr.span));
        }
    }
    let ((root, ty), span) = match (parts.len(), compiled.pop()) {
        (1, Some(only)) => only,
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
    Ok(Compiled { rule, warnings: Vec::new() })
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
    let env = EvalEnv { context: &context, missing_experimental_unit: false, now_millis: Some(0) };
    match rule.evaluate(&env) {
        Err(e) if !uninstantiated => Err(RuleDiagnostic {
            code: "rule_error",
            message: format!("the rule fails when evaluated with empty values ({}): {}", e.code, e.message),
            span: Some(span),
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests;
