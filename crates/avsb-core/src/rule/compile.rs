//! Static checks and compilation: names are resolved, the result type is checked, the length
//! of every string the rule can make is bounded (`growth`), and constant subexpressions
//! (versions, regular expressions, strings) are folded once, under the evaluation budget.

use std::collections::HashMap;
use std::sync::Arc;

use super::budget::{Budget, BUDGET_EXCEEDED, MAX_STRING_BYTES};
use super::eval::{class_name, eval, to_string, write_java, Node};
use super::functions::{compile_java_regex, lookup, Func};
use super::growth::{self, Growth, TOO_COSTLY};
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

/// The longest text of a context variable's value: known for every type but a String's, a user
/// agent's and a permissive schema's unknown type, whose length the request decides.
fn context_growth(ty: Option<ContextType>) -> Growth {
    match ty {
        None | Some(ContextType::String | ContextType::UserAgent) => Growth::UNBOUNDED,
        Some(ContextType::Boolean) => Growth::WORD,
        Some(ContextType::Character) => Growth::bytes(3.0),
        Some(_) => Growth::NUMBER,
    }
}

/// A constant's text length (at most one past the longest string a rule may make).
fn constant_growth(v: &Value) -> Growth {
    match v {
        Value::String(s) => Growth::bytes(s.len() as f64),
        other => {
            let mut text = String::new();
            write_java(other, &mut text, MAX_STRING_BYTES);
            Growth::bytes(text.len() as f64)
        }
    }
}

/// A compiled subexpression: its node, its static type, and the bound of its text's length.
pub(crate) struct Typed {
    pub node: Node,
    pub ty: StaticType,
    pub growth: Growth,
}

fn typed(node: Node, ty: StaticType, growth: Growth) -> Typed {
    Typed { node, ty, growth }
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
    /// The text lengths of the constants the rule names, measured once.
    pub constant_lengths: HashMap<String, Growth>,
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
/// then happens, and is reported, at evaluation). Folding runs under the evaluation budget: a
/// constant expression that would make too large a string, or take too long, is refused
/// (`rule_too_costly` at `span`) instead of being computed.
fn fold(node: Node, span: (usize, usize)) -> Result<Node, RuleDiagnostic> {
    let foldable = match &node {
        Node::Unary(_, a) => constant(a).is_some(),
        Node::Binary(_, a, b) | Node::Index(a, b) => constant(a).is_some() && constant(b).is_some(),
        Node::Cond(c, a, b) => constant(c).is_some() && constant(a).is_some() && constant(b).is_some(),
        Node::Method(base, _, args) => constant(base).is_some() && args.iter().all(|a| constant(a).is_some()),
        Node::Call(func, args) => func.is_pure() && args.iter().all(|a| constant(a).is_some()),
        Node::Matches(value, _) | Node::MatchesMethod(value, _) => constant(value).is_some(),
        Node::Const(_) | Node::Slot(..) | Node::MissingUnit => false,
    };
    if !foldable {
        return Ok(node);
    }
    let env = EvalEnv { context: &[], missing_experimental_unit: false, now_millis: None, budget: Budget::new() };
    let folded = match eval(&node, &env) {
        // A property read that gives null stays a read: what follows it must still tell a null
        // step (null) from a null start (an error, see `eval::null_base`).
        Ok(v) if matches!(*v, Value::Null) && matches!(node, Node::Index(..) | Node::Method(..) | Node::MatchesMethod(..)) => None,
        Ok(v) => Some(v.into_owned()),
        Err(e) if e.code == BUDGET_EXCEEDED => {
            return Err(diag(TOO_COSTLY, format!("constant folding stopped at the budget: {}", e.message), span));
        }
        Err(_) => None,
    };
    Ok(match folded {
        Some(v) => Node::Const(v),
        None => node,
    })
}

/// Folds a string-making subexpression and bounds its text: a folded constant has its own
/// length; anything else gets `growth`, which must pass [`growth::check`].
fn fold_checked(node: Node, ty: StaticType, growth: Growth, what: &str, span: (usize, usize)) -> Result<Typed, RuleDiagnostic> {
    let node = fold(node, span)?;
    if let Some(v) = constant(&node) {
        let growth = constant_growth(v);
        return Ok(typed(node, ty, growth));
    }
    growth::check(growth, what, span)?;
    Ok(typed(node, ty, growth))
}

/// Folds a subexpression that makes no string of its own: a folded constant has its own
/// length, anything else `growth`.
fn folded(node: Node, ty: StaticType, growth: Growth, span: (usize, usize)) -> Result<Typed, RuleDiagnostic> {
    let node = fold(node, span)?;
    let growth = constant(&node).map_or(growth, constant_growth);
    Ok(typed(node, ty, growth))
}

impl Compiler<'_, '_> {
    fn resolve(&mut self, name: &str, span: (usize, usize)) -> Result<Typed, RuleDiagnostic> {
        if let Some(value) = self.env.constants.get(name) {
            let growth = *self.constant_lengths.entry(name.to_string()).or_insert_with(|| constant_growth(value));
            return Ok(typed(Node::Const(value.clone()), value_type(value), growth));
        }
        // Proctor puts `missingExperimentalUnit` into the request's context map for every test,
        // so it hides a context variable of that name (and a permissive schema's guess).
        if name == BUILTIN_MISSING_UNIT {
            self.uses_missing_unit = true;
            return Ok(typed(Node::MissingUnit, StaticType::Boolean, Growth::WORD));
        }
        if let Some(info) = self.env.variables.lookup(name) {
            let use_ = SlotUse { slot: info.slot, ty: info.ty };
            if !self.slots.contains(&use_) {
                self.slots.push(use_);
            }
            return Ok(typed(Node::Slot(info.slot, name.into()), context_type(info.ty), context_growth(info.ty)));
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
                let base = self.expr(base)?.node;
                let key = self.expr(key)?.node;
                Ok((Node::Index(Box::new(base), Box::new(key)), StaticType::Dynamic))
            }
            ExprKind::Method(base, name, args) => {
                let base = self.expr(base)?.node;
                let args = args.iter().map(|a| self.expr(a).map(|t| t.node)).collect::<Result<Vec<_>, _>>()?;
                Ok((Node::Method(Box::new(base), name.as_str().into(), args), StaticType::Dynamic))
            }
            _ => self.expr(e).map(|t| (t.node, t.ty)),
        }
    }

    /// Compiles an expression and infers its static type and the bound of its text.
    pub(crate) fn expr(&mut self, e: &Expr) -> Result<Typed, RuleDiagnostic> {
        let number = StaticType::Other("java.lang.Number");
        match &e.kind {
            ExprKind::Null => Ok(typed(Node::Const(Value::Null), StaticType::Null, Growth::WORD)),
            ExprKind::Bool(b) => Ok(typed(Node::Const(Value::Bool(*b)), StaticType::Boolean, Growth::WORD)),
            ExprKind::Int(n) => Ok(typed(Node::Const(Value::long(*n)), StaticType::Other("java.lang.Long"), Growth::NUMBER)),
            ExprKind::Float(f) => {
                Ok(typed(Node::Const(Value::Double(*f)), StaticType::Other("java.lang.Double"), Growth::NUMBER))
            }
            ExprKind::Str(s) => Ok(typed(
                Node::Const(Value::string(s.as_str())),
                StaticType::Other("java.lang.String"),
                Growth::bytes(s.len() as f64),
            )),
            ExprKind::Ident(name) => self.resolve(name, e.span),
            ExprKind::Unary(op, operand) => {
                let inner = self.expr(operand)?.node;
                let (ty, growth) = match op {
                    UnOp::Neg => (number, Growth::NUMBER),
                    UnOp::Not | UnOp::Empty => (StaticType::Boolean, Growth::WORD),
                };
                folded(Node::Unary(*op, Box::new(inner)), ty, growth, e.span)
            }
            ExprKind::Binary(op, a, b) => {
                let a = self.expr(a)?.node;
                let b = self.expr(b)?.node;
                let (ty, growth) = match op {
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => (number, Growth::NUMBER),
                    _ => (StaticType::Boolean, Growth::WORD),
                };
                folded(Node::Binary(*op, Box::new(a), Box::new(b)), ty, growth, e.span)
            }
            ExprKind::Cond(c, a, b) => {
                let c = self.expr(c)?.node;
                let a = self.expr(a)?;
                let b = self.expr(b)?;
                // AstChoice's type is the runtime class of the chosen value.
                let ty = match (a.ty, b.ty) {
                    (StaticType::Boolean | StaticType::Null, StaticType::Boolean | StaticType::Null) => {
                        StaticType::Boolean
                    }
                    _ => StaticType::Dynamic,
                };
                let growth = a.growth.max(b.growth);
                folded(Node::Cond(Box::new(c), Box::new(a.node), Box::new(b.node)), ty, growth, e.span)
            }
            ExprKind::Index(base, key) => {
                let base = self.expr(base)?;
                let key = self.expr(key)?.node;
                // An element's text is part of its container's (a user agent's properties are
                // beans of a few short words around parts of the header).
                let growth = base.growth.plus(Growth::bytes(1024.0));
                folded(Node::Index(Box::new(base.node), Box::new(key)), StaticType::Dynamic, growth, e.span)
            }
            ExprKind::Method(base, name, args) => self.method(e, base, name, args),
            ExprKind::Call(ns, name, args) => self.call(e, ns, name, args),
        }
    }

    fn method(&mut self, e: &Expr, base: &Expr, name: &str, args: &[Expr]) -> Result<Typed, RuleDiagnostic> {
        let base = self.expr(base)?;
        let args = args.iter().map(|a| self.expr(a)).collect::<Result<Vec<_>, _>>()?;
        // `String.matches` with a pattern written in the rule: compiled now, once. A pattern that
        // does not compile is Java's PatternSyntaxException when (and only if) the call runs.
        if let ("matches", [pattern]) = (name, args.as_slice()) {
            if let Some(Ok(pattern)) = constant(&pattern.node).map(to_string) {
                let regex = compile_java_regex(&pattern).map_err(Box::from);
                let node = Node::MatchesMethod(Box::new(base.node), Arc::new(regex));
                return folded(node, StaticType::Dynamic, Growth::WORD, e.span);
            }
        }
        let growth = match name {
            "toString" | "trim" | "substring" | "get" => base.growth,
            "toLowerCase" | "toUpperCase" => base.growth.scale(3.0),
            _ => Growth::NUMBER,
        };
        let what = format!("the method call .{name}()");
        let node = Node::Method(Box::new(base.node), name.into(), args.into_iter().map(|a| a.node).collect());
        fold_checked(node, StaticType::Dynamic, growth, &what, e.span)
    }

    fn call(&mut self, e: &Expr, ns: &str, name: &str, args: &[Expr]) -> Result<Typed, RuleDiagnostic> {
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
        let mut compiled = Vec::with_capacity(args.len());
        for arg in args {
            compiled.push(self.expr(arg)?);
        }
        let ty = match func.return_class() {
            None => StaticType::Boolean,
            Some(class) => StaticType::Other(class),
        };
        if func == Func::Matches {
            if let Some(pattern) = compiled.get(1).and_then(|t| constant(&t.node)) {
                let pattern = to_string(pattern).map_err(|e| diag(TOO_COSTLY, e.message, args[1].span))?;
                let regex = compile_java_regex(&pattern).map_err(|reason| {
                    diag(
                        "regex_unsupported",
                        format!("regular expression '{}' is not supported: {reason}", super::eval::preview_text(&pattern)),
                        args[1].span,
                    )
                })?;
                let value = compiled.swap_remove(0).node;
                return folded(Node::Matches(Box::new(value), Arc::new(regex)), ty, Growth::WORD, e.span);
            }
        }
        let growth = call_growth(func, &compiled).map_err(|_| growth::above_quadratic(&shown, e.span))?;
        let node = Node::Call(func, compiled.into_iter().map(|t| t.node).collect());
        fold_checked(node, ty, growth, &shown, e.span)
    }
}

/// The bound of a function's result text from its arguments' (see `growth`).
fn call_growth(func: Func, args: &[Typed]) -> Result<Growth, growth::AboveQuadratic> {
    use Func::*;
    let g = |i: usize| args.get(i).map_or(Growth::WORD, |t| t.growth);
    Ok(match func {
        ToUpperCase | ToLowerCase => g(0).scale(3.0),
        Substring | SubstringAfter | SubstringBefore | Trim => g(0),
        Replace => {
            // Each occurrence of `before` (at least one byte unless it is empty, when nothing is
            // replaced) becomes `after`.
            let before = args.get(1).and_then(|t| constant(&t.node)).and_then(|v| to_string(v).ok().map(|s| s.len()));
            match before {
                Some(0) => g(0),
                Some(k) => g(0).plus(g(0).times(g(2))?.scale(1.0 / k as f64)),
                None => g(0).plus(g(0).times(g(2))?),
            }
        }
        // A String[]: its items' bytes and, at most one per two bytes plus one, its items.
        Split => g(0).scale(2.0).plus(Growth::bytes(1.0)),
        Join => g(0).plus(g(0).times(g(1))?),
        Now | Version | IndexOf | Length => Growth::NUMBER,
        _ => Growth::WORD,
    })
}
