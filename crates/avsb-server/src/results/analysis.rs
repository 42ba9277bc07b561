//! From per-variant sufficient statistics to results: each variant against the control, per
//! metric, with the statistics of `avsb-stats` (gbstats' formulas), multiple-comparison
//! correction, and the sample-ratio check per ranges window and allocation.

use avsb_stats::{adjust_p_values, compare, srm_p_value, Comparison, Correction, Statistic};
use serde::{Deserialize, Serialize};

use super::aggregate::Sufficient;
use super::metric::{Direction, MetricDefinition, MetricType};

/// The p-value under which a sample-ratio mismatch is reported.
pub const SRM_THRESHOLD: f64 = 0.001;

/// Which statistics engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum EngineChoice {
    /// Lift with a confidence interval and a p-value (Welch's t-test on the delta method).
    #[default]
    Frequentist,
    /// Chance to beat the control, expected loss and a credible interval.
    Bayesian,
}

/// Which multiple-comparison correction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CorrectionChoice {
    /// None.
    #[default]
    None,
    /// Holm–Bonferroni (family-wise error rate).
    Holm,
    /// Benjamini–Hochberg (false discovery rate).
    BenjaminiHochberg,
}

/// The settings an analysis ran with (all of them, defaults filled in, so a result says how it
/// was computed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisSettings {
    /// `frequentist` or `bayesian`.
    pub engine: EngineChoice,
    /// Relative lift (`true`, the default) or absolute difference.
    pub relative: bool,
    /// The significance level (frequentist) or 1 minus the credible level (Bayesian).
    pub alpha: f64,
    /// Sequential testing (always-valid intervals): its tuning parameter, or none.
    pub sequential_tuning: Option<f64>,
    /// CUPED's pre-exposure window in days, or none.
    pub cuped_days: Option<f64>,
    /// Multiple-comparison correction over the goal metrics' comparisons.
    pub correction: CorrectionChoice,
    /// The statistics: which implementation and whose formulas.
    pub statistics: String,
}

impl AnalysisSettings {
    fn stats(&self, direction: Direction) -> avsb_stats::Settings {
        avsb_stats::Settings {
            inverse: direction == Direction::Lower,
            engine: match self.engine {
                EngineChoice::Frequentist => avsb_stats::Engine::Frequentist,
                EngineChoice::Bayesian => avsb_stats::Engine::Bayesian,
            },
            difference_type: if self.relative {
                avsb_stats::DifferenceType::Relative
            } else {
                avsb_stats::DifferenceType::Absolute
            },
            alpha: self.alpha,
            sequential: self.sequential_tuning,
            ..avsb_stats::Settings::default()
        }
    }
}

/// What the statistics crate is told about one variant's metric.
pub fn statistic(metric: &MetricDefinition, s: &Sufficient) -> Statistic {
    match (metric.metric_type, s.pre_sum) {
        (MetricType::Ratio, _) => Statistic::Ratio {
            n: s.units,
            m_sum: s.sum,
            m_sum_squares: s.sum_squares,
            d_sum: s.denominator_sum.unwrap_or(0.0),
            d_sum_squares: s.denominator_sum_squares.unwrap_or(0.0),
            m_d_sum_of_products: s.sum_products.unwrap_or(0.0),
        },
        (_, Some(pre_sum)) => Statistic::RegressionAdjusted {
            n: s.units,
            post_sum: s.sum,
            post_sum_squares: s.sum_squares,
            pre_sum,
            pre_sum_squares: s.pre_sum_squares.unwrap_or(0.0),
            post_pre_sum_of_products: s.post_pre_sum_products.unwrap_or(0.0),
        },
        (MetricType::Conversion, None) => Statistic::Proportion { n: s.units, sum: s.sum },
        (_, None) => Statistic::SampleMean { n: s.units, sum: s.sum, sum_squares: s.sum_squares },
    }
}

/// A metric's value in one variant: the conversion rate, the mean per unit, or the ratio.
pub fn value(metric: &MetricDefinition, s: &Sufficient) -> Option<f64> {
    let denominator = match metric.metric_type {
        MetricType::Ratio => s.denominator_sum.unwrap_or(0.0),
        _ => s.units,
    };
    (denominator > 0.0).then(|| s.sum / denominator)
}

/// One variant against the control, for one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantResult {
    /// The bucket value.
    pub bucket: i32,
    /// Units in the variant (for this metric's analysis).
    pub units: f64,
    /// The metric's value (rate, mean or ratio), if it has units.
    pub value: Option<f64>,
    /// The sufficient statistics the analysis used.
    pub statistics: Sufficient,
    /// Whether this is the control.
    pub control: bool,
    /// Against the control (none for the control itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lift: Option<f64>,
    /// The interval's lower bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<f64>,
    /// The interval's upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<f64>,
    /// Frequentist: the two-sided p-value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p_value: Option<f64>,
    /// Frequentist with a correction: the adjusted p-value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub adjusted_p_value: Option<f64>,
    /// Bayesian: the chance this variant is better than the control (in the metric's direction).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chance_to_win: Option<f64>,
    /// Bayesian: expected loss of choosing the control, and of choosing this variant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub risk: Option<[f64; 2]>,
    /// `better`, `worse` or `inconclusive`, in the metric's direction.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Why there is no comparison (too few units, no variance...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a comparison says, in the metric's direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Significantly better.
    Better,
    /// Significantly worse.
    Worse,
    /// Not significant.
    Inconclusive,
}

/// Compares each variant with the control (`groups` holds the control among them).
pub fn compare_variants(
    metric: &MetricDefinition,
    groups: &[(i32, Sufficient)],
    control: i32,
    settings: &AnalysisSettings,
) -> Vec<VariantResult> {
    let stats_settings = settings.stats(metric.direction);
    let control_sums = groups.iter().find(|(b, _)| *b == control).map(|(_, s)| *s);
    groups
        .iter()
        .map(|&(bucket, s)| {
            let mut result = VariantResult {
                bucket,
                units: s.units,
                value: value(metric, &s),
                statistics: s,
                control: bucket == control,
                lift: None,
                ci_low: None,
                ci_high: None,
                p_value: None,
                adjusted_p_value: None,
                chance_to_win: None,
                risk: None,
                verdict: None,
                error: None,
            };
            if bucket == control {
                return result;
            }
            let Some(c) = control_sums else {
                result.error = Some("the control has no units".into());
                return result;
            };
            let comparison = compare(&statistic(metric, &c), &statistic(metric, &s), &stats_settings);
            fill(&mut result, &comparison, metric.direction, settings);
            result
        })
        .collect()
}

fn fill(result: &mut VariantResult, c: &Comparison, direction: Direction, settings: &AnalysisSettings) {
    if let Some(error) = &c.error {
        result.error = Some(error.to_string());
        return;
    }
    result.lift = Some(c.expected);
    result.ci_low = Some(c.ci_low);
    result.ci_high = Some(c.ci_high);
    result.p_value = c.p_value;
    // Already in the metric's direction (`inverse` in the statistics' settings).
    result.chance_to_win = c.chance_to_win;
    result.risk = c.risk;
    result.verdict = Some(verdict(result, direction, settings));
}

/// Better or worse when the interval excludes zero (frequentist) or the chance to win passes
/// 1 − alpha either way (Bayesian); inconclusive otherwise.
fn verdict(result: &VariantResult, direction: Direction, settings: &AnalysisSettings) -> Verdict {
    let up = match settings.engine {
        EngineChoice::Frequentist => {
            let p = result.adjusted_p_value.or(result.p_value).unwrap_or(1.0);
            if p >= settings.alpha {
                return Verdict::Inconclusive;
            }
            result.lift.unwrap_or(0.0) > 0.0
        }
        EngineChoice::Bayesian => {
            // The chance to win is already in the metric's direction.
            let win = result.chance_to_win.unwrap_or(0.5);
            return if win > 1.0 - settings.alpha {
                Verdict::Better
            } else if win < settings.alpha {
                Verdict::Worse
            } else {
                Verdict::Inconclusive
            };
        }
    };
    match (up, direction) {
        (true, Direction::Higher) | (false, Direction::Lower) => Verdict::Better,
        _ => Verdict::Worse,
    }
}

/// Adjusts the p-values of the given comparisons together (the goal metrics' variants), then
/// recomputes their verdicts.
pub fn correct(results: &mut [&mut VariantResult], directions: &[Direction], settings: &AnalysisSettings) {
    let correction = match settings.correction {
        CorrectionChoice::None => return,
        CorrectionChoice::Holm => Correction::Holm,
        CorrectionChoice::BenjaminiHochberg => Correction::BenjaminiHochberg,
    };
    let with_p: Vec<usize> = (0..results.len()).filter(|&i| results[i].p_value.is_some()).collect();
    let p: Vec<f64> = with_p.iter().filter_map(|&i| results[i].p_value).collect();
    if p.is_empty() {
        return;
    }
    for (&i, adjusted) in with_p.iter().zip(adjust_p_values(&p, correction)) {
        results[i].adjusted_p_value = Some(adjusted);
        let v = verdict(results[i], directions[i], settings);
        results[i].verdict = Some(v);
    }
}

/// The sample-ratio check of one ranges window and allocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SrmCheck {
    /// When the window started, epoch milliseconds.
    pub from: i64,
    /// When it ended (none: it is current).
    pub to: Option<i64>,
    /// The revision that set these ranges.
    pub revision: String,
    /// The allocation (0-based).
    pub allocation: usize,
    /// Per bucket: units observed and the share expected.
    pub buckets: Vec<SrmBucket>,
    /// The chi-square p-value (gbstats' `check_srm`).
    pub p_value: f64,
}

/// One bucket of a sample-ratio check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SrmBucket {
    /// The bucket value.
    pub bucket: i32,
    /// Units whose first exposure fell in the window and allocation.
    pub observed: u64,
    /// The share the ranges give it (inactive buckets left out).
    pub expected_share: f64,
}

/// The p-value of observed counts against expected shares; 0 when units were seen in a bucket
/// the ranges give no traffic.
pub fn srm(buckets: &[SrmBucket]) -> Option<f64> {
    let total: u64 = buckets.iter().map(|b| b.observed).sum();
    if total == 0 || buckets.len() < 2 {
        return None;
    }
    if buckets.iter().any(|b| b.expected_share <= 0.0 && b.observed > 0) {
        return Some(0.0);
    }
    let observed: Vec<f64> = buckets.iter().map(|b| b.observed as f64).collect();
    let expected: Vec<f64> = buckets.iter().map(|b| b.expected_share).collect();
    srm_p_value(&observed, &expected)
}
