//! What rules are compiled and evaluated against, and how they fail: the types every stage of
//! the rule language shares. A leaf of the rule module, so that its stages import downward only.

use indexmap::IndexMap;

use super::budget::{Budget, BudgetExceeded, BUDGET_EXCEEDED};
use crate::schema::ContextType;
use crate::value::Value;

/// The longest rule accepted, in bytes.
pub const MAX_RULE_LENGTH: usize = 8192;

/// The deepest nesting of operators, parentheses and calls accepted in a rule.
pub const MAX_NESTING_DEPTH: usize = 64;

/// Where a rule's variable lives in a request's context, and its declared type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VariableInfo {
    /// Index into [`EvalEnv::context`].
    pub slot: usize,
    /// The declared type, or `None` when the schema is permissive and the type is unknown.
    pub ty: Option<ContextType>,
}

/// Resolves context variable names while a rule compiles.
pub trait VariableLookup {
    /// The variable called `name`, or `None` if the schema has no such variable.
    fn lookup(&mut self, name: &str) -> Option<VariableInfo>;
}

/// What a rule may refer to when it compiles.
pub struct CompileEnv<'a> {
    /// The test's constants, which shadow context variables.
    pub constants: &'a IndexMap<String, Value>,
    /// The context variables of the schema.
    pub variables: &'a mut dyn VariableLookup,
}

/// A request's context as rules see it, and what its rules may still spend.
pub struct EvalEnv<'a> {
    /// Context values by slot; `None` where the request lacks the variable.
    pub context: &'a [Option<Value>],
    /// The built-in `missingExperimentalUnit` variable.
    pub missing_experimental_unit: bool,
    /// The request time in epoch milliseconds, for `proctor:now()`.
    pub now_millis: Option<i64>,
    /// The request's evaluation budget, shared by every rule evaluated with this environment
    /// (`Budget::new()` for each request; see [`super::budget`]).
    pub budget: Budget,
}

/// A failure while evaluating a rule for one request.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct RuleError {
    /// A stable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl From<BudgetExceeded> for RuleError {
    fn from(e: BudgetExceeded) -> RuleError {
        RuleError { code: BUDGET_EXCEEDED, message: e.0 }
    }
}

/// A problem found while compiling a rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleDiagnostic {
    /// A stable code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Byte offsets `[start, end)` of the problem in the rule text.
    pub span: Option<(usize, usize)>,
}
