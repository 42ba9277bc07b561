//! The frequentist engine: Welch's two-sided t-test at a fixed horizon, and the always-valid
//! sequential test of Waudby-Smith et al. (gbstats.frequentist.tests).

use crate::comparison::{Comparison, ComparisonError};
use crate::dist::{t_quantile, t_sf};
use crate::settings::Settings;
use crate::statistic::Arm;

/// The lift of `b` over `a` (gbstats.frequentist.tests.frequentist_diff): relative to the
/// control's unadjusted mean, or the plain difference.
pub(crate) fn lift(a: &Arm, b: &Arm, relative: bool) -> f64 {
    if relative {
        (b.mean - a.mean) / a.unadjusted_mean
    } else {
        b.mean - a.mean
    }
}

/// The variance of [`lift`] (gbstats.frequentist.tests.frequentist_variance): by the delta
/// method for a relative lift, the sum of the two means' variances for an absolute one.
pub(crate) fn lift_variance(a: &Arm, b: &Arm, relative: bool) -> f64 {
    if relative {
        b.variance / (a.unadjusted_mean.powi(2) * b.n)
            + a.variance * b.unadjusted_mean.powi(2) / (a.unadjusted_mean.powi(4) * a.n)
    } else {
        b.variance / b.n + a.variance / a.n
    }
}

/// Welch–Satterthwaite degrees of freedom (gbstats' `TTest.dof`).
fn welch_dof(a: &Arm, b: &Arm) -> f64 {
    (b.variance / b.n + a.variance / a.n).powi(2)
        / (b.variance.powi(2) / (b.n.powi(2) * (b.n - 1.0)) + a.variance.powi(2) / (a.n.powi(2) * (a.n - 1.0)))
}

/// gbstats' `TTest.compute_result`: the checks in gbstats' order, then the fixed-horizon
/// (`TwoSidedTTest`) or sequential (`SequentialTwoSidedTTest`) interval and p-value.
pub(crate) fn compare(a: &Arm, b: &Arm, settings: &Settings) -> Result<Comparison, ComparisonError> {
    if a.mean == 0.0 || a.unadjusted_mean == 0.0 {
        return Err(ComparisonError::ZeroBaseline);
    }
    if a.has_zero_variance() || b.has_zero_variance() {
        return Err(ComparisonError::ZeroVariance);
    }
    let relative = settings.relative();
    let estimate = Estimate { lift: lift(a, b, relative), variance: lift_variance(a, b, relative) };
    let (half_width, p_value) = match settings.sequential {
        None => fixed_horizon(&estimate, welch_dof(a, b), settings.alpha),
        Some(tuning) => sequential(&estimate, a.n + b.n, settings.alpha, tuning),
    };
    Ok(Comparison {
        expected: estimate.lift,
        ci_low: estimate.lift - half_width,
        ci_high: estimate.lift + half_width,
        uplift_stddev: estimate.variance.sqrt(),
        p_value: Some(p_value),
        chance_to_win: None,
        risk: None,
        error: None,
    })
}

/// A lift and the variance of its estimate.
struct Estimate {
    lift: f64,
    variance: f64,
}

/// gbstats.frequentist.tests.TwoSidedTTest: the interval's half-width `t(1 − α/2, dof) · se`
/// and the p-value `2 P(T > |lift / se|)`. (gbstats writes `2 (1 − cdf)`, which rounds
/// p-values under about 1e-16 to 0; the tail is computed directly here.)
fn fixed_horizon(estimate: &Estimate, dof: f64, alpha: f64) -> (f64, f64) {
    let se = estimate.variance.sqrt();
    let half_width = t_quantile(1.0 - alpha / 2.0, dof) * se;
    let p_value = 2.0 * t_sf((estimate.lift / se).abs(), dof);
    (half_width, p_value)
}

/// gbstats.frequentist.tests.SequentialTwoSidedTTest: the asymptotic confidence sequence of
/// Waudby-Smith et al. 2023 (eq. 9 for the half-width, eq. 155 for the p-value as 1 / e-value,
/// eq. 161 for rho), with `units` the units of both arms. The e-value is taken in logs so a
/// large one does not overflow (gbstats' `exp` gives inf there and so a p-value of 0).
fn sequential(estimate: &Estimate, units: f64, alpha: f64, tuning: f64) -> (f64, f64) {
    let rho_squared = sequential_rho(alpha, tuning).powi(2);
    let n_rho2_plus_1 = units * rho_squared + 1.0;
    let s2 = estimate.variance * units;
    let half_width =
        s2.sqrt() * (2.0 * n_rho2_plus_1 * (n_rho2_plus_1.sqrt() / alpha).ln() / (units * units * rho_squared)).sqrt();
    let st2 = estimate.lift.powi(2) * units / estimate.variance;
    let log_evalue = rho_squared * st2 / (2.0 * n_rho2_plus_1) - 0.5 * n_rho2_plus_1.ln();
    (half_width, (-log_evalue).exp().min(1.0))
}

/// gbstats' `SequentialTwoSidedTTest.rho` (eq. 161): the mixing parameter that makes the
/// sequence tightest at `tuning` units.
fn sequential_rho(alpha: f64, tuning: f64) -> f64 {
    ((-2.0 * alpha.ln() + (-2.0 * alpha.ln() + 1.0).ln()) / tuning).sqrt()
}
