//! The Bayesian engine: a normal posterior of the lift from the data's normal likelihood and a
//! normal prior (gbstats.bayesian.tests.EffectBayesianABTest).

use crate::comparison::{Comparison, ComparisonError};
use crate::dist::{normal_cdf, normal_pdf, normal_quantile, normal_sf};
use crate::frequentist::{lift, lift_variance};
use crate::settings::{Prior, Settings};
use crate::statistic::Arm;

/// gbstats' `EffectBayesianABTest.compute_result`: the checks in gbstats' order, the posterior,
/// then chance to win, the credible interval and the risk (flipped for an inverse metric).
pub(crate) fn compare(a: &Arm, b: &Arm, settings: &Settings) -> Result<Comparison, ComparisonError> {
    let relative = settings.relative();
    if relative && (a.mean == 0.0 || a.unadjusted_mean == 0.0) {
        return Err(ComparisonError::ZeroBaseline);
    }
    if a.n == 0.0 || b.n == 0.0 {
        return Err(ComparisonError::NoUnits);
    }
    if a.has_zero_variance() || b.has_zero_variance() {
        return Err(ComparisonError::ZeroVariance);
    }
    let prior = scaled_prior(&settings.prior, a, relative)?;
    let (mean, stddev) = posterior(lift(a, b, relative), lift_variance(a, b, relative), &prior);
    let better = normal_sf(-mean / stddev);
    let chance_to_win = if settings.inverse { 1.0 - better } else { better };
    let [control, variant] = risk(mean, stddev);
    let alpha = settings.alpha;
    Ok(Comparison {
        expected: mean,
        ci_low: mean + stddev * normal_quantile(alpha / 2.0),
        ci_high: mean + stddev * normal_quantile(1.0 - alpha / 2.0),
        uplift_stddev: stddev,
        p_value: None,
        chance_to_win: Some(chance_to_win),
        risk: Some(if settings.inverse { [variant, control] } else { [control, variant] }),
        error: None,
    })
}

/// The prior on the lift's own scale: gbstats' relative prior as it is for a relative lift,
/// multiplied out by the control's mean for an absolute one (`EffectBayesianABTest.__init__`).
/// A control mean of 0 scales the prior's variance to 0, and gbstats then raises
/// `ZeroDivisionError` even for an improper prior (`int(proper) / variance`); here it is the
/// zero-baseline error.
fn scaled_prior(prior: &Prior, a: &Arm, relative: bool) -> Result<Prior, ComparisonError> {
    if relative {
        return Ok(*prior);
    }
    let control = a.unadjusted_mean;
    if control == 0.0 {
        return Err(ComparisonError::ZeroBaseline);
    }
    Ok(Prior { mean: prior.mean * control.abs(), variance: prior.variance * control.powi(2), proper: prior.proper })
}

/// The posterior's mean and standard deviation: precision-weighted with a proper prior, the
/// data alone with an improper one.
fn posterior(data_mean: f64, data_variance: f64, prior: &Prior) -> (f64, f64) {
    if !prior.proper {
        return (data_mean, data_variance.sqrt());
    }
    let precision = 1.0 / data_variance + 1.0 / prior.variance;
    let mean = (data_mean / data_variance + prior.mean / prior.variance) / precision;
    (mean, (1.0 / precision).sqrt())
}

/// gbstats' `EffectBayesianABTest.get_risk`: the expected loss of keeping the control,
/// P(lift > 0)·E[lift | lift > 0], and of shipping the variant, −P(lift < 0)·E[lift | lift < 0],
/// for a normal lift. The truncated means use the inverse Mills ratio, which stays accurate
/// where gbstats' scipy `truncnorm` does; a probability that rounds to 0 gives a risk of 0.
fn risk(mean: f64, stddev: f64) -> [f64; 2] {
    let z = -mean / stddev;
    // gbstats writes P(lift > 0) as 1 − P(lift ≤ 0), so it rounds to 0 as that nears 1.
    let p_positive = 1.0 - normal_cdf(z);
    let p_negative = normal_cdf(z);
    let control = if p_positive > 0.0 { p_positive * (mean + stddev * upper_mills(z)) } else { 0.0 };
    let variant = if p_negative > 0.0 { -p_negative * (mean - stddev * upper_mills(-z)) } else { 0.0 };
    [control, variant]
}

/// φ(z) / P(Z > z): the mean of a standard normal above `z` (the inverse Mills ratio), from
/// statrs' complementary error function, accurate far into the tail.
fn upper_mills(z: f64) -> f64 {
    let tail = normal_sf(z);
    if tail > 0.0 {
        normal_pdf(z) / tail
    } else {
        // Beyond the double range of the tail: the ratio's asymptote.
        z
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn risk_of_a_centred_lift_is_the_same_on_both_sides() {
        let [control, variant] = risk(0.0, 1.0);
        let half_mean_of_absolute = (2.0 / std::f64::consts::PI).sqrt() / 2.0;
        assert!((control - half_mean_of_absolute).abs() < 1e-15);
        assert!((variant - half_mean_of_absolute).abs() < 1e-15);
    }

    #[test]
    fn risk_far_in_the_tail_is_finite_and_tiny() {
        let [control, variant] = risk(40.0, 1.0);
        assert!((0.0..1e-300).contains(&variant), "{variant}");
        assert!((control - 40.0).abs() < 1e-12, "{control}");
    }
}
