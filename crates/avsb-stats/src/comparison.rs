//! One variant against the control: the result, and the reasons there may be none.

use serde::Serialize;

use crate::settings::Engine;

/// One variant against the control.
///
/// When `error` is set the numbers are gbstats' uninformative default (lift 0, interval
/// [0, 0], p-value 1, chance to win 0.5, risk [0, 0]); otherwise every number is finite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The lift, relative or absolute per the settings (gbstats' `expected`). Bayesian: the
    /// posterior mean.
    pub expected: f64,
    /// The lower end of the confidence (frequentist) or credible (Bayesian) interval.
    pub ci_low: f64,
    /// The upper end of the interval.
    pub ci_high: f64,
    /// The standard deviation of the lift's normal distribution (gbstats' `uplift.stddev`):
    /// the estimate's standard error, or the posterior's.
    pub uplift_stddev: f64,
    /// Frequentist: the two-sided p-value (sequential: the always-valid one).
    pub p_value: Option<f64>,
    /// Bayesian: the probability that the variant is better.
    pub chance_to_win: Option<f64>,
    /// Bayesian: the expected loss of choosing (control, variant), in the lift's units.
    pub risk: Option<[f64; 2]>,
    /// Why there is no result (gbstats' `error_message` and our input checks).
    pub error: Option<ComparisonError>,
}

/// Why a comparison has no result. The codes of the first three are gbstats' messages.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize)]
#[serde(tag = "code", content = "detail")]
pub enum ComparisonError {
    /// The control's mean is 0 (frequentist always; Bayesian for a relative lift), so a
    /// relative lift is undefined.
    #[error("the control's mean is zero")]
    #[serde(rename = "ZERO_NEGATIVE_BASELINE_VARIATION")]
    ZeroBaseline,
    /// An arm has no units (Bayesian; the frequentist test reports zero variance instead).
    #[error("an arm has no units")]
    #[serde(rename = "NO_UNITS_IN_VARIATION")]
    NoUnits,
    /// An arm's variance is zero or negative: too few units, or every unit the same.
    #[error("an arm's variance is zero or negative")]
    #[serde(rename = "ZERO_NEGATIVE_VARIANCE")]
    ZeroVariance,
    /// The statistics or settings are not usable (ours, not gbstats'): the sentence says why.
    #[error("invalid input: {0}")]
    #[serde(rename = "INVALID_INPUT")]
    InvalidInput(String),
    /// The arithmetic overflowed to a number that is not finite (ours, not gbstats').
    #[error("the result is not a finite number")]
    #[serde(rename = "NON_FINITE_RESULT")]
    NonFinite,
}

impl ComparisonError {
    /// The stable code: gbstats' message where gbstats has one.
    pub fn code(&self) -> &'static str {
        match self {
            ComparisonError::ZeroBaseline => "ZERO_NEGATIVE_BASELINE_VARIATION",
            ComparisonError::NoUnits => "NO_UNITS_IN_VARIATION",
            ComparisonError::ZeroVariance => "ZERO_NEGATIVE_VARIANCE",
            ComparisonError::InvalidInput(_) => "INVALID_INPUT",
            ComparisonError::NonFinite => "NON_FINITE_RESULT",
        }
    }
}

impl Comparison {
    /// gbstats' `_default_output` for the engine, carrying `error`.
    pub(crate) fn failed(engine: Engine, error: ComparisonError) -> Self {
        let bayesian = engine == Engine::Bayesian;
        Comparison {
            expected: 0.0,
            ci_low: 0.0,
            ci_high: 0.0,
            uplift_stddev: 0.0,
            p_value: (!bayesian).then_some(1.0),
            chance_to_win: bayesian.then_some(0.5),
            risk: bayesian.then_some([0.0, 0.0]),
            error: Some(error),
        }
    }

    /// Every number of the result, to check they are finite.
    pub(crate) fn numbers(&self) -> impl Iterator<Item = f64> {
        let fixed = [self.expected, self.ci_low, self.ci_high, self.uplift_stddev];
        let optional = [self.p_value, self.chance_to_win, self.risk.map(|r| r[0]), self.risk.map(|r| r[1])];
        fixed.into_iter().chain(optional.into_iter().flatten())
    }
}
