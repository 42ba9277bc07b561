//! Sufficient statistics of one metric in one arm, and what the tests read from a pair of them:
//! each arm's mean, unadjusted mean, variance and unit count (gbstats.models.statistics).

use serde::{Deserialize, Serialize};

/// Sufficient statistics of one metric in one variant.
///
/// Every field is a sum over the variant's units, so statistics of disjoint groups of units add.
/// `n` is a count of units (gbstats holds it as an integer).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Statistic {
    /// Conversion metric (each unit 0 or 1): n units, sum = units that converted
    /// (gbstats' `ProportionStatistic`, variance p(1 − p)).
    Proportion {
        /// Units.
        n: f64,
        /// Units that converted.
        sum: f64,
    },
    /// Mean / count metric: per-unit values (after capping) summed and summed squared
    /// (gbstats' `SampleMeanStatistic`, the sample variance with n − 1).
    SampleMean {
        /// Units.
        n: f64,
        /// Σ value.
        sum: f64,
        /// Σ value².
        sum_squares: f64,
    },
    /// Ratio metric (a numerator and a denominator per unit), gbstats' `RatioStatistic`: the
    /// ratio of the sums, its variance by the delta method. Numerator and denominator are
    /// sample-mean statistics over the same `n` units.
    Ratio {
        /// Units.
        n: f64,
        /// Σ numerator.
        m_sum: f64,
        /// Σ numerator².
        m_sum_squares: f64,
        /// Σ denominator.
        d_sum: f64,
        /// Σ denominator².
        d_sum_squares: f64,
        /// Σ numerator × denominator.
        m_d_sum_of_products: f64,
    },
    /// CUPED: the post-exposure metric with the same metric in a pre-exposure window,
    /// gbstats' `RegressionAdjustedStatistic` (both sample-mean statistics). The coefficient
    /// theta is computed from both arms together, as gbstats' `compute_theta` does.
    RegressionAdjusted {
        /// Units.
        n: f64,
        /// Σ post-exposure value.
        post_sum: f64,
        /// Σ post-exposure value².
        post_sum_squares: f64,
        /// Σ pre-exposure value.
        pre_sum: f64,
        /// Σ pre-exposure value².
        pre_sum_squares: f64,
        /// Σ post × pre.
        post_pre_sum_of_products: f64,
    },
}

impl Statistic {
    /// The number of units.
    pub fn n(&self) -> f64 {
        match *self {
            Statistic::Proportion { n, .. }
            | Statistic::SampleMean { n, .. }
            | Statistic::Ratio { n, .. }
            | Statistic::RegressionAdjusted { n, .. } => n,
        }
    }

    /// The metric's mean without any regression adjustment (gbstats' `unadjusted_mean`): the
    /// conversion rate, the mean, the ratio of sums, or the post-exposure mean.
    pub fn mean(&self) -> f64 {
        match *self {
            Statistic::Proportion { n, sum } => mean(n, sum),
            Statistic::SampleMean { n, sum, .. } => mean(n, sum),
            Statistic::Ratio { m_sum, d_sum, .. } => ratio_mean(m_sum, d_sum),
            Statistic::RegressionAdjusted { n, post_sum, .. } => mean(n, post_sum),
        }
    }

    /// Every field, for the input checks.
    fn fields(&self) -> Vec<f64> {
        match *self {
            Statistic::Proportion { n, sum } => vec![n, sum],
            Statistic::SampleMean { n, sum, sum_squares } => vec![n, sum, sum_squares],
            Statistic::Ratio { n, m_sum, m_sum_squares, d_sum, d_sum_squares, m_d_sum_of_products } => {
                vec![n, m_sum, m_sum_squares, d_sum, d_sum_squares, m_d_sum_of_products]
            }
            Statistic::RegressionAdjusted {
                n,
                post_sum,
                post_sum_squares,
                pre_sum,
                pre_sum_squares,
                post_pre_sum_of_products,
            } => {
                vec![n, post_sum, post_sum_squares, pre_sum, pre_sum_squares, post_pre_sum_of_products]
            }
        }
    }

    /// Why these statistics cannot be compared, if they cannot: a field that is not finite, a
    /// negative count, a conversion count outside [0, n], or two different kinds of statistic.
    pub(crate) fn problem_with(&self, other: &Statistic) -> Option<String> {
        if std::mem::discriminant(self) != std::mem::discriminant(other) {
            return Some("the control and the variant hold different kinds of statistic".into());
        }
        [self, other].into_iter().find_map(Statistic::problem)
    }

    /// Why this statistic is not valid on its own, if it is not.
    fn problem(&self) -> Option<String> {
        if self.fields().iter().any(|value| !value.is_finite()) {
            return Some("a statistic has a field that is not a finite number".into());
        }
        if self.n() < 0.0 {
            return Some("a unit count is negative".into());
        }
        match *self {
            Statistic::Proportion { n, sum } if !(0.0..=n).contains(&sum) => {
                Some("a conversion count is outside [0, n]".into())
            }
            _ => None,
        }
    }
}

/// What a test reads from one arm (gbstats' `Statistic` properties once theta is known).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Arm {
    /// Units.
    pub n: f64,
    /// The mean, regression-adjusted for CUPED (gbstats' `mean`).
    pub mean: f64,
    /// The mean without adjustment (gbstats' `unadjusted_mean`).
    pub unadjusted_mean: f64,
    /// The per-unit variance (gbstats' `variance`), adjusted for CUPED.
    pub variance: f64,
}

impl Arm {
    /// gbstats' `Statistic._has_zero_variance`.
    pub fn has_zero_variance(&self) -> bool {
        self.variance <= 0.0
    }
}

/// The two arms a test compares. For CUPED, theta is computed from both arms first
/// (gbstats.models.tests.BaseABTest.__init__ with `compute_theta`); a theta of 0 is the plain
/// post-exposure metric, as gbstats falls back to it.
pub(crate) fn arms(control: &Statistic, variant: &Statistic) -> (Arm, Arm) {
    let theta = match (control, variant) {
        (Statistic::RegressionAdjusted { .. }, Statistic::RegressionAdjusted { .. }) => theta(control, variant),
        _ => 0.0,
    };
    (arm(control, theta), arm(variant, theta))
}

/// One arm's numbers, with the CUPED coefficient `theta` (ignored by other statistics).
fn arm(statistic: &Statistic, theta: f64) -> Arm {
    match *statistic {
        Statistic::Proportion { n, sum } => {
            let mean = mean(n, sum);
            Arm { n, mean, unadjusted_mean: mean, variance: mean * (1.0 - mean) }
        }
        Statistic::SampleMean { n, sum, sum_squares } => {
            let mean = mean(n, sum);
            Arm { n, mean, unadjusted_mean: mean, variance: sample_variance(n, sum, sum_squares) }
        }
        Statistic::Ratio { n, m_sum, m_sum_squares, d_sum, d_sum_squares, m_d_sum_of_products } => {
            let mean = ratio_mean(m_sum, d_sum);
            let variance = ratio_variance(
                n,
                (m_sum, m_sum_squares),
                (d_sum, d_sum_squares),
                covariance(n, m_sum, d_sum, m_d_sum_of_products),
            );
            Arm { n, mean, unadjusted_mean: mean, variance }
        }
        Statistic::RegressionAdjusted {
            n,
            post_sum,
            post_sum_squares,
            pre_sum,
            pre_sum_squares,
            post_pre_sum_of_products,
        } => {
            let post_mean = mean(n, post_sum);
            let variance = if n <= 1.0 {
                0.0
            } else {
                sample_variance(n, post_sum, post_sum_squares)
                    + theta.powi(2) * sample_variance(n, pre_sum, pre_sum_squares)
                    - 2.0 * theta * covariance(n, post_sum, pre_sum, post_pre_sum_of_products)
            };
            Arm { n, mean: post_mean - theta * mean(n, pre_sum), unadjusted_mean: post_mean, variance }
        }
    }
}

/// gbstats.models.statistics.compute_theta: the regression coefficient of the post-exposure
/// metric on the pre-exposure one over both arms pooled; 0 when either pooled variance is 0.
fn theta(control: &Statistic, variant: &Statistic) -> f64 {
    let (
        Statistic::RegressionAdjusted {
            n: na,
            post_sum: a_post,
            post_sum_squares: a_post2,
            pre_sum: a_pre,
            pre_sum_squares: a_pre2,
            post_pre_sum_of_products: a_pp,
        },
        Statistic::RegressionAdjusted {
            n: nb,
            post_sum: b_post,
            post_sum_squares: b_post2,
            pre_sum: b_pre,
            pre_sum_squares: b_pre2,
            post_pre_sum_of_products: b_pp,
        },
    ) = (*control, *variant)
    else {
        return 0.0;
    };
    let n = na + nb;
    let (post, pre) = (a_post + b_post, a_pre + b_pre);
    let pre_variance = sample_variance(n, pre, a_pre2 + b_pre2);
    if pre_variance == 0.0 || sample_variance(n, post, a_post2 + b_post2) == 0.0 {
        return 0.0;
    }
    covariance(n, post, pre, a_pp + b_pp) / pre_variance
}

/// `sum / n`, 0 without units (gbstats' `mean`).
fn mean(n: f64, sum: f64) -> f64 {
    if n == 0.0 {
        0.0
    } else {
        sum / n
    }
}

/// `m_sum / d_sum`, 0 when the denominator sums to 0 (gbstats' `RatioStatistic.mean`).
fn ratio_mean(m_sum: f64, d_sum: f64) -> f64 {
    if d_sum == 0.0 {
        0.0
    } else {
        m_sum / d_sum
    }
}

/// The sample variance (n − 1 in the denominator), 0 for one unit or none
/// (gbstats' `SampleMeanStatistic.variance`).
fn sample_variance(n: f64, sum: f64, sum_squares: f64) -> f64 {
    if n <= 1.0 {
        0.0
    } else {
        (sum_squares - sum.powi(2) / n) / (n - 1.0)
    }
}

/// The sample covariance of two per-unit values from their sums and the sum of their
/// products (gbstats' `RatioStatistic.covariance`, `RegressionAdjustedStatistic.covariance`).
fn covariance(n: f64, sum_x: f64, sum_y: f64, sum_of_products: f64) -> f64 {
    if n <= 1.0 {
        0.0
    } else {
        (sum_of_products - sum_x * sum_y / n) / (n - 1.0)
    }
}

/// The delta-method variance of a ratio of means (gbstats' `RatioStatistic.variance`):
/// Var(M)/D² − 2 Cov(M, D) M/D³ + M² Var(D)/D⁴ with M, D the per-unit means.
fn ratio_variance(n: f64, (m_sum, m_sum_squares): (f64, f64), (d_sum, d_sum_squares): (f64, f64), cov: f64) -> f64 {
    let (m_mean, d_mean) = (mean(n, m_sum), mean(n, d_sum));
    if d_mean == 0.0 || n <= 1.0 {
        return 0.0;
    }
    sample_variance(n, m_sum, m_sum_squares) / d_mean.powi(2) - 2.0 * cov * m_mean / d_mean.powi(3)
        + m_mean.powi(2) * sample_variance(n, d_sum, d_sum_squares) / d_mean.powi(4)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_constant_covariate_leaves_cuped_as_the_plain_post_exposure_mean() {
        let control = Statistic::RegressionAdjusted {
            n: 3.0,
            post_sum: 6.0,
            post_sum_squares: 14.0,
            pre_sum: 3.0,
            pre_sum_squares: 3.0,
            post_pre_sum_of_products: 6.0,
        };
        let variant = Statistic::RegressionAdjusted {
            n: 3.0,
            post_sum: 9.0,
            post_sum_squares: 29.0,
            pre_sum: 3.0,
            pre_sum_squares: 3.0,
            post_pre_sum_of_products: 9.0,
        };
        let (a, b) = arms(&control, &variant);
        assert_eq!((a.mean, a.variance), (2.0, 1.0));
        assert_eq!((b.mean, b.variance), (3.0, 1.0));
    }

    #[test]
    fn a_ratio_without_denominator_has_mean_and_variance_zero() {
        let ratio = Statistic::Ratio {
            n: 10.0,
            m_sum: 5.0,
            m_sum_squares: 5.0,
            d_sum: 0.0,
            d_sum_squares: 0.0,
            m_d_sum_of_products: 0.0,
        };
        let (a, _) = arms(&ratio, &ratio);
        assert_eq!((a.mean, a.variance), (0.0, 0.0));
    }

    #[test]
    fn mismatched_or_impossible_statistics_are_named() {
        let proportion = Statistic::Proportion { n: 10.0, sum: 3.0 };
        let mean = Statistic::SampleMean { n: 10.0, sum: 3.0, sum_squares: 3.0 };
        assert!(proportion.problem_with(&mean).is_some());
        assert!(proportion.problem_with(&Statistic::Proportion { n: 10.0, sum: 11.0 }).is_some());
        assert!(mean.problem_with(&Statistic::SampleMean { n: -1.0, sum: 0.0, sum_squares: 0.0 }).is_some());
        assert!(mean.problem_with(&Statistic::SampleMean { n: 5.0, sum: f64::NAN, sum_squares: 0.0 }).is_some());
        assert!(proportion.problem_with(&proportion).is_none());
    }
}
