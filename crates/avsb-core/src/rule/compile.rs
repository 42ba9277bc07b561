//! Static checks and compilation: names are resolved, the result type is checked, constant
//! subexpressions (versions, regular expressions) are folded once.

use std::borrow::Cow;

use super::eval::{class_name, eval, to_string, Node};
use super::functions::{compile_java_regex, lookup, Func};
use super::parser::{BinOp, Expr, ExprKind, UnOp};
use super::env::{CompileEnv, EvalEnv, RuleDiagnostic};
use crate::schema::ContextType;
use crate::value::Value;

/// What is known about an expression's Java class before evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StaticType {
    Boolean,
    Null,
    /// Only known at evaluation time (the runtime class is checked then).
    Dynamic,
    /// A known class that is not Boolean.
    Other(&'static str),
}

fn value_type(v: &Value) -> StaticType {
    match v {
        Value::Bool(_) => StaticType::Boolean,
        Value::Null => StaticType::Null,
        other => StaticType::Other(class_name(other)),
    }
}

/// A context variable's static type as Proctor's load-time check sees it: a String variable is
/// an instance (`""`), so a rule whose value is one is refused at load; a variable of any other
/// type is "uninstantiated" (null) there, so its type is only known, and checked, when a request
/// gives it a value (docs/proctor.md §3.6).
fn context_type(ty: Option<ContextType>) -> StaticType {
    match ty {
        Some(ContextType::Boolean) => StaticType::Boolean,
        Some(ContextType::String) => StaticType::Other(ContextType::String.canonical_name()),
        _ => StaticType::Dynamic,
    }
}

/// A context variable a rule refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SlotUse {
    pub slot: usize,
    pub ty: Option<ContextType>,
}

pub(crate) struct Compiler<'e, 'c> {
    pub env: &'e mut CompileEnv<'c>,
    pub slots: Vec<SlotUse>,
    pub uses_missing_unit: bool,
}

pub(crate) const BUILTIN_MISSING_UNIT: &str = "missingExperimentalUnit";

fn diag(code: &'static str, message: String, span: (usize, usize)) -> RuleDiagnostic {
    RuleDiagnostic { code, message, span: Some(span) }
}

/// Whether a node has a value known at compile time.
fn constant(node: &Node) -> Option<&Value> {
    match node {
        Node::Const(v) => Some(v),
        _ => None,
    }
}

/// Evaluates a node whose inputs are all constants; keeps it if evaluation fails (the failure
/// then happens, and is reported, at evaluation).
fn fold(node: Node) -> Node {
    let foldable = match &node {
        Node::Unary(_, a) => constant(a).is_some(),
        Node::Binary(_, a, b) | Node::Index(a, b) => constant(a).is_some() && constant(b).is_some(),
        Node::Cond(c, a, b) => constant(c).is_some() && constant(a).is_some() && constant(b).is_some(),
        Node::Method(base, _, args) => constant(base).is_some() && args.iter().all(|a| constant(a).is_some()),
        Node::Call(func, args) => func.is_pure() && args.iter().all(|a| constant(a).is_some()),
        Node::Matches(value, _) => constant(value).is_some(),
        Node::Const(_) | Node::Slot(..) | Node::MissingUnit => false,
    };
    if !foldable {
        return node;
    }
    let env = EvalEnv { context: &[], missing_experimental_unit: false, now_millis: None };
    let folded = match eval(&node, &env) {
        // A property read that gives null stays a read: what follows it must still tell a null
        // step (null) from a null start (an error, see `eval::null_base`).
        Ok(v) if matches!(*v, Value::Null) && matches!(node, Node::Index(..) | Node::Method(..)) => None,
        Ok(v) => Some(v.into_owned()),
        Err(_) => None,
    };
    match folded {
        Some(v) => Node::Const(v),
        None => node,
    }
}

impl Compiler<'_, '_> {
    fn resolve(&mut self, name: &str, span: (usize, usize)) -> Result<(Node, StaticType), RuleDiagnostic> {
        if let Some(value) = self.env.constants.get(name) {
            return Ok((Node::Const(value.clone()), value_type(value)));
        }
        // Proctor puts `missingExperimentalUnit` into the request's context map for every test,
        // so it hides a context variable of that name (and a permissive schema's guess).
        if name == BUILTIN_MISSING_UNIT {
            self.uses_missing_unit = true;
            return Ok((Node::MissingUnit, StaticType::Boolean));
        }
        if let Some(info) = self.env.variables.lookup(name) {
            let use_ = SlotUse { slot: info.slot, ty: info.ty };
            if !self.slots.contains(&use_) {
                self.slots.push(use_);
            }
            return Ok((Node::Slot(info.slot, name.into()), context_type(info.ty)));
        }
        Err(diag(
            "unknown_variable",
            format!("unknown variable '{name}': not a constant of this test nor a context variable of the schema"),
            span,
        ))
    }

    /// Compiles a rule's whole expression: as [`Compiler::expr`], except that a last step
    /// `a.b`, `a[b]` or `a.m()` is kept as a step even over constants, because Proctor checks
    /// the type of what it reads before evaluating (`eval::top_level_index`).
    pub(crate) fn root(&mut self, e: &Expr) -> Result<(Node, StaticType), RuleDiagnostic> {
        match &e.kind {
            ExprKind::Index(base, key) => {
                let (base, _) = self.expr(base)?;
                let (key, _) = self.expr(key)?;
                Ok((Node::Index(Box::new(base), Box::new(key)), StaticType::Dynamic))
            }
            ExprKind::Method(base, name, args) => {
                let (base, _) = self.expr(base)?;
                let args = args.iter().map(|a| self.expr(a).map(|(n, _)| n)).collect::<Result<Vec<_>, _>>()?;
                Ok((Node::Method(Box::new(base), name.as_str().into(), args), StaticType::Dynamic))
            }
            _ => self.expr(e),
        }
    }

    /// Compiles an expression and infers its static type.
    pub(crate) fn expr(&mut self, e: &Expr) -> Result<(Node, StaticType), RuleDiagnostic> {
        Ok(match &e.kind {
            ExprKind::Null => (Node::Const(Value::Null), StaticType::Null),
            ExprKind::Bool(b) => (Node::Const(Value::Bool(*b)), StaticType::Boolean),
            ExprKind::Int(n) => (Node::Const(Value::long(*n)), StaticType::Other("java.lang.Long")),
            ExprKind::Float(f) => (Node::Const(Value::Double(*f)), StaticType::Other("java.lang.Double")),
            ExprKind::Str(s) => (Node::Const(Value::string(s.as_str())), StaticType::Other("java.lang.String")),
            ExprKind::Ident(name) => self.resolve(name, e.span)?,
            ExprKind::Unary(op, operand) => {
                let (inner, _) = self.expr(operand)?;
                let ty = match op {
                    UnOp::Neg => StaticType::Other("java.lang.Number"),
                    UnOp::Not | UnOp::Empty => StaticType::Boolean,
                };
                (fold(Node::Unary(*op, Box::new(inner))), ty)
            }
            ExprKind::Binary(op, a, b) => {
                let (a, _) = self.expr(a)?;
                let (b, _) = self.expr(b)?;
                let ty = match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                        StaticType::Other("java.lang.Number")
                    }
                    _ => StaticType::Boolean,
                };
                (fold(Node::Binary(*op, Box::new(a), Box::new(b))), ty)
            }
            ExprKind::Cond(c, a, b) => {
                let (c, _) = self.expr(c)?;
                let (a, ta) = self.expr(a)?;
                let (b, tb) = self.expr(b)?;
                // AstChoice's type is the runtime class of the chosen value.
                let ty = match (ta, tb) {
                    (StaticType::Boolean | StaticType::Null, StaticType::Boolean | StaticType::Null) => {
                        StaticType::Boolean
                    }
                    _ => StaticType::Dynamic,
                };
                (fold(Node::Cond(Box::new(c), Box::new(a), Box::new(b))), ty)
            }
            ExprKind::Index(base, key) => {
                let (base, _) = self.expr(base)?;
                let (key, _) = self.expr(key)?;
                (fold(Node::Index(Box::new(base), Box::new(key))), StaticType::Dynamic)
            }
            ExprKind::Method(base, name, args) => {
                let (base, _) = self.expr(base)?;
                let args = args.iter().map(|a| self.expr(a).map(|(n, _)| n)).collect::<Result<Vec<_>, _>>()?;
                (fold(Node::Method(Box::new(base), name.as_str().into(), args)), StaticType::Dynamic)
            }
            ExprKind::Call(ns, name, args) => self.call(e, ns, name, args)?,
        })
    }

    fn call(
        &mut self,
        e: &Expr,
        ns: &str,
        name: &str,
        args: &[Expr],
    ) -> Result<(Node, StaticType), RuleDiagnostic> {
        let shown = if ns.is_empty() { name.to_string() } else { format!("{ns}:{name}") };
        let Some(func) = lookup(ns, name) else {
            return Err(diag("unknown_function", format!("unknown function '{shown}'"), e.span));
        };
        if let Some(arity) = func.arity() {
            if args.len() != arity {
                return Err(diag(
                    "wrong_arity",
                    format!("function '{shown}' takes {arity} arguments, not {}", args.len()),
                    e.span,
                ));
            }
        }
        let mut nodes = Vec::with_capacity(args.len());
        for arg in args {
            nodes.push(self.expr(arg)?.0);
        }
        let ty = match func.return_class() {
            None => StaticType::Boolean,
            Some(class) => StaticType::Other(class),
        };
        if func == Func::Matches {
            if let Some(pattern) = nodes.get(1).and_then(constant) {
                let pattern: Cow<'_, str> = to_string(pattern);
                let regex = compile_java_regex(&pattern).map_err(|reason| {
                    diag(
                        "regex_unsupported",
                        format!("regular expression '{pattern}' is not supported: {reason}"),
                        args[1].span,
                    )
                })?;
                let mut nodes = nodes;
                let value = nodes.swap_remove(0);
                return Ok((fold(Node::Matches(Box::new(value), Box::new(regex))), ty));
            }
        }
        Ok((fold(Node::Call(func, nodes)), ty))
    }
}
