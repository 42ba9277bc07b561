//! Proctor's rule language (EL 2.2 subset): interface placeholder, replaced by the rule module.

use indexmap::IndexMap;

use crate::schema::ContextType;
use crate::value::Value;

pub mod version;

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

/// A request's context as rules see it.
pub struct EvalEnv<'a> {
    /// Context values by slot; `None` where the request lacks the variable.
    pub context: &'a [Option<Value>],
    /// The built-in `missingExperimentalUnit` variable.
    pub missing_experimental_unit: bool,
    /// The request time in epoch milliseconds, for `proctor:now()`.
    pub now_millis: Option<i64>,
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
    constant: bool,
}

impl Rule {
    /// The rule that always matches (a null or blank rule).
    pub fn always() -> Rule {
        Rule { constant: true }
    }

    /// Whether the rule matches every request.
    pub fn is_always_true(&self) -> bool {
        self.constant
    }

    /// Evaluates the rule for one request.
    pub fn evaluate(&self, _env: &EvalEnv<'_>) -> Result<bool, RuleError> {
        Ok(self.constant)
    }
}

/// Compiles a rule (`None` or blank: always true).
pub fn compile(text: Option<&str>, _env: &mut CompileEnv<'_>) -> Result<Compiled, RuleDiagnostic> {
    let constant = text.is_none_or(|t| t.trim().is_empty() || t == "${true}");
    Ok(Compiled { rule: Rule { constant }, warnings: Vec::new() })
}
