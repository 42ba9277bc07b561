//! `compare`: checks the input, resolves the two arms and hands them to the engine.

use crate::comparison::{Comparison, ComparisonError};
use crate::settings::{Engine, Settings};
use crate::statistic::{arms, Statistic};
use crate::{bayesian, frequentist};

/// Compares one variant with the control as gbstats 0.8.0's test classes do
/// (`TwoSidedTTest`, `SequentialTwoSidedTTest`, `EffectBayesianABTest`: their
/// `compute_result`). Never fails: degenerate input is a result with `error` set.
pub fn compare(control: &Statistic, variant: &Statistic, settings: &Settings) -> Comparison {
    let problem = control.problem_with(variant).or_else(|| settings.problem());
    if let Some(problem) = problem {
        return Comparison::failed(settings.engine, ComparisonError::InvalidInput(problem));
    }
    let (a, b) = arms(control, variant);
    let result = match settings.engine {
        Engine::Frequentist => frequentist::compare(&a, &b, settings),
        Engine::Bayesian => bayesian::compare(&a, &b, settings),
    };
    match result {
        Ok(comparison) if comparison.numbers().all(f64::is_finite) => comparison,
        Ok(_) => Comparison::failed(settings.engine, ComparisonError::NonFinite),
        Err(error) => Comparison::failed(settings.engine, error),
    }
}
