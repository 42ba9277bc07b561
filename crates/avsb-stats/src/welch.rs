//! Welch's two-sample t-test from summary statistics, as scipy's
//! `scipy.stats.ttest_ind_from_stats(..., equal_var=False)` computes it.
//!
//! [`crate::compare`] with the frequentist engine and an absolute lift is the same test as
//! gbstats runs it, and agrees with this one when given the same variances; the differences
//! are gbstats', not the test's: gbstats takes a conversion's variance as p(1 − p) (not the
//! sample variance), orders the difference variant − control (scipy: first − second), refuses a
//! control mean of 0 even for an absolute difference, and computes the p-value as 2(1 − cdf).

use serde::{Deserialize, Serialize};

use crate::dist::t_sf;

/// One sample as scipy's `ttest_ind_from_stats` takes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSummary {
    /// The sample mean.
    pub mean: f64,
    /// The sample standard deviation (with n − 1, numpy's `std(ddof=1)`).
    pub std: f64,
    /// The number of observations.
    pub n: f64,
}

/// The result of Welch's test of `first.mean − second.mean`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct WelchTest {
    /// The t statistic, (first − second) / standard error.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// The two-sided p-value.
    pub p_value: f64,
}

/// Welch's unequal-variance t-test of two samples (scipy's `ttest_ind_from_stats` with
/// `equal_var=False`). `None` where scipy answers NaN or a division by zero: fewer than two
/// observations in a sample, a negative or non-finite input, or both variances zero.
pub fn welch_t_test(first: &SampleSummary, second: &SampleSummary) -> Option<WelchTest> {
    let valid = |s: &SampleSummary| s.n >= 2.0 && s.std >= 0.0 && [s.mean, s.std, s.n].iter().all(|v| v.is_finite());
    if !valid(first) || !valid(second) {
        return None;
    }
    let vn1 = first.std.powi(2) / first.n;
    let vn2 = second.std.powi(2) / second.n;
    let combined = vn1 + vn2;
    if combined <= 0.0 {
        return None;
    }
    let df = combined.powi(2) / (vn1.powi(2) / (first.n - 1.0) + vn2.powi(2) / (second.n - 1.0));
    let statistic = (first.mean - second.mean) / combined.sqrt();
    let p_value = 2.0 * t_sf(statistic.abs(), df);
    Some(WelchTest { statistic, df, p_value }).filter(|test| test.p_value.is_finite() && test.statistic.is_finite())
}
