//! How a comparison is made: the engine, the kind of lift, alpha, sequential testing and the
//! Bayesian prior (gbstats' `AnalysisSettingsForStatsEngine` and the test configs).

use serde::{Deserialize, Serialize};

/// The statistics engine (gbstats' `StatsEngine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Engine {
    /// Welch's t-test, fixed-horizon or sequential: a p-value and a confidence interval.
    Frequentist,
    /// A normal posterior of the lift: chance to win, risk and a credible interval.
    Bayesian,
}

/// Whether the lift is relative to the control's mean or a plain difference
/// (gbstats' `DifferenceType`; its third, `scaled`, is not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DifferenceType {
    /// (variant − control) / control.
    Relative,
    /// variant − control.
    Absolute,
}

/// A normal prior on the lift (gbstats.bayesian.tests.GaussianPrior). It is on the relative
/// scale, as GrowthBook configures it (`prior_type="relative"`); for absolute differences
/// gbstats rescales it by the control's mean (mean × |control|, variance × control²).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Prior {
    /// The prior mean of the relative lift.
    pub mean: f64,
    /// The prior variance of the relative lift.
    pub variance: f64,
    /// Whether the prior is used; an improper prior (the default) leaves the data alone.
    pub proper: bool,
}

impl Default for Prior {
    /// gbstats' default `GaussianPrior`: mean 0, variance 1, improper.
    fn default() -> Self {
        Prior { mean: 0.0, variance: 1.0, proper: false }
    }
}

/// How a variant is compared with the control.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Frequentist or Bayesian.
    pub engine: Engine,
    /// Relative or absolute lift.
    pub difference_type: DifferenceType,
    /// 1 − the interval's coverage, and the frequentist significance level (gbstats: 0.05).
    pub alpha: f64,
    /// Sequential testing (frequentist only): `Some(tuning parameter)`, the number of units
    /// the test is tuned for (gbstats' `sequential_tuning_parameter`, default 5000).
    pub sequential: Option<f64>,
    /// The Bayesian prior on the lift.
    pub prior: Prior,
    /// The metric is better when lower (gbstats' `inverse`): the Bayesian chance to win and
    /// risk are flipped. The frequentist result does not depend on it.
    pub inverse: bool,
}

impl Default for Settings {
    /// gbstats' defaults (`AnalysisSettingsForStatsEngine`): the Bayesian engine, relative lift,
    /// alpha 0.05, no sequential testing, the default prior, a metric better when higher.
    fn default() -> Self {
        Settings {
            engine: Engine::Bayesian,
            difference_type: DifferenceType::Relative,
            alpha: 0.05,
            sequential: None,
            prior: Prior::default(),
            inverse: false,
        }
    }
}

/// gbstats' default `sequential_tuning_parameter`.
pub const DEFAULT_SEQUENTIAL_TUNING: f64 = 5000.0;

impl Settings {
    /// Why these settings cannot be used, if they cannot: alpha outside (0, 1), a sequential
    /// tuning parameter that is not positive, or a proper prior without a positive variance.
    pub(crate) fn problem(&self) -> Option<String> {
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Some(format!("alpha must be between 0 and 1, not {}", self.alpha));
        }
        if let Some(tuning) = self.sequential {
            if !(tuning > 0.0 && tuning.is_finite()) {
                return Some(format!("the sequential tuning parameter must be positive, not {tuning}"));
            }
        }
        let prior = &self.prior;
        if prior.proper && !(prior.variance > 0.0 && prior.variance.is_finite() && prior.mean.is_finite()) {
            return Some("a proper prior needs a finite mean and a positive variance".into());
        }
        None
    }

    /// Whether the lift is relative.
    pub(crate) fn relative(&self) -> bool {
        self.difference_type == DifferenceType::Relative
    }
}
