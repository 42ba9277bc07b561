//! Diagnostics: why a test was dropped from a matrix, or what looks wrong in it.

use std::fmt;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The test was dropped from the matrix.
    Error,
    /// The test was kept, but something in it is probably not what its author meant.
    Warning,
}

/// One problem with one test.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// Whether the test was dropped.
    pub severity: Severity,
    /// The test's name.
    pub test: String,
    /// Where in the matrix document (`tests.foo.allocations[1].rule`).
    pub path: String,
    /// A stable code (`unknown_variable`, `ranges_sum`, ...).
    pub code: &'static str,
    /// What is wrong, for people.
    pub message: String,
    /// For a rule problem: the rule text.
    pub rule: Option<String>,
    /// For a rule problem: byte offsets `[start, end)` of the problem in the rule text.
    pub span: Option<(usize, usize)>,
}

impl Diagnostic {
    /// A problem that drops the test.
    pub fn error(test: &str, path: impl Into<String>, code: &'static str, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            test: test.to_string(),
            path: path.into(),
            code,
            message: message.into(),
            rule: None,
            span: None,
        }
    }

    /// The 1-based character column where the problem starts in the rule, if known.
    pub fn column(&self) -> Option<usize> {
        let (rule, (start, _)) = (self.rule.as_ref()?, self.span?);
        let start = start.min(rule.len());
        Some(rule.char_indices().take_while(|(i, _)| *i < start).count() + 1)
    }

    /// The diagnostic as JSON, for tools and the server.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "severity": match self.severity { Severity::Error => "error", Severity::Warning => "warning" },
            "test": self.test,
            "path": self.path,
            "code": self.code,
            "message": self.message,
            "rule": self.rule,
            "span": self.span.map(|(s, e)| [s, e]),
            "column": self.column(),
        })
    }
}

impl fmt::Display for Diagnostic {
    /// `error: tests.t.rule: unknown variable 'x' [unknown_variable] in rule "${x}" at column 3`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{severity}: {}: {} [{}]", self.path, self.message, self.code)?;
        if let Some(rule) = &self.rule {
            write!(f, " in rule {rule:?}")?;
            if let Some(column) = self.column() {
                write!(f, " at column {column}")?;
            }
        }
        Ok(())
    }
}
