//! A test's results as the API, the console and the command line show them.

use serde::{Deserialize, Serialize};

use super::aggregate::{MetricPlan, Sufficient};
use super::analysis::{self, AnalysisSettings, SrmBucket, SrmCheck, VariantResult, SRM_THRESHOLD};
use super::metric::{Direction, MetricType};
use super::phase::{RangesWindow, INACTIVE};
use super::population::{Exclusions, Population, Span, Unit};
use super::DAY;
use avsb_core::document::TestDefinition;

use crate::error::ErrorCode;
use crate::ops::metrics::Metric;
use crate::ops::{WriteError, WriteResult};

/// The most days a daily series has (the latest ones are kept).
const MAX_DAYS: usize = 366;

/// A variant of the test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResultsVariant {
    /// The bucket value.
    pub bucket: i32,
    /// The bucket's name.
    pub name: String,
    /// Units analysed.
    pub units: u64,
    /// Whether it is the control.
    pub control: bool,
}

/// One metric's results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MetricResults {
    /// The metric's key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// `conversion`, `mean`, `count` or `ratio`.
    #[serde(rename = "type")]
    pub metric_type: MetricType,
    /// Whether higher or lower is better.
    pub direction: Direction,
    /// A guardrail (not corrected with the goals).
    pub guardrail: bool,
    /// Whether CUPED adjusted it.
    pub cuped: bool,
    /// The cap per-unit values were clipped to, if the metric caps.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<f64>,
    /// Per variant, the control first.
    pub variants: Vec<VariantResult>,
}

/// The phase the results cover.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseInfo {
    /// Its start, epoch milliseconds.
    pub from: i64,
    /// Its end (none: open).
    pub to: Option<i64>,
    /// Whether it is the default phase (since the last change of the test's ranges).
    pub default: bool,
}

/// A span during which the test's ranges stayed the same: a phase one may pick.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RangesPhase {
    /// The revision that set the ranges.
    pub revision: String,
    /// When it started, epoch milliseconds.
    pub from: i64,
    /// When the next one started (none: current).
    pub to: Option<i64>,
    /// Per allocation, the analysed buckets' shares.
    pub shares: Vec<Vec<(i32, f64)>>,
}

/// The sample-ratio check over the phase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SrmSummary {
    /// The smallest p-value of the checks (none: nothing to check).
    pub p_value: Option<f64>,
    /// Whether it is below the threshold: the split is not what the ranges say.
    pub warning: bool,
    /// The threshold (0.001).
    pub threshold: f64,
    /// One check per ranges window and allocation with units.
    pub checks: Vec<SrmCheck>,
    /// Units whose allocation is unknown (older SDKs, a test with several allocations), left
    /// out of the checks.
    pub unknown_allocation: u64,
}

/// The results broken down by one dimension's values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DimensionResults {
    /// The dimension.
    pub name: String,
    /// Per value (units without the dimension under `null`), most units first.
    pub values: Vec<DimensionValue>,
}

/// One value of a dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DimensionValue {
    /// The value (none: units without it).
    pub value: Option<String>,
    /// Units analysed with this value.
    pub units: u64,
    /// The metrics, as for the whole experiment.
    pub metrics: Vec<MetricResults>,
}

/// A test's results in an environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Results {
    /// The test.
    pub test: String,
    /// The environment.
    pub environment: String,
    /// The analysis unit: the test's identifier type.
    pub identifier_type: String,
    /// When these results were computed, epoch milliseconds.
    pub as_of: i64,
    /// Newer events exist than these results include: a recomputation is under way (a large
    /// experiment); these are the last results, as of `asOf`.
    #[serde(default)]
    pub stale: bool,
    /// The newest event they include (its id).
    pub last_event_id: i64,
    /// The environment's revision then.
    pub revision: String,
    /// The phase.
    pub phase: PhaseInfo,
    /// The phases one may pick (each span with the same ranges), oldest first.
    pub phases: Vec<RangesPhase>,
    /// The settings used.
    pub settings: AnalysisSettings,
    /// The control's bucket value.
    pub control: i32,
    /// The variants (the test's non-inactive buckets), with their units.
    pub variants: Vec<ResultsVariant>,
    /// What was left out and why.
    pub excluded: Exclusions,
    /// The sample-ratio check.
    pub srm: SrmSummary,
    /// Per metric.
    pub metrics: Vec<MetricResults>,
    /// The breakdown, if a dimension was asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dimension: Option<DimensionResults>,
    /// The daily series (served by its own route).
    #[serde(skip)]
    pub daily: DailyResults,
}

/// One day of a metric's cumulative results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyPoint {
    /// The end of the day (UTC), epoch milliseconds.
    pub date: i64,
    /// Per variant (control first): units so far and the comparison on them.
    pub variants: Vec<DailyVariant>,
}

/// A variant on one day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyVariant {
    /// The bucket value.
    pub bucket: i32,
    /// Units exposed by the end of the day.
    pub units: f64,
    /// The metric's value.
    pub value: Option<f64>,
    /// Lift against the control.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lift: Option<f64>,
    /// Interval's lower bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_low: Option<f64>,
    /// Interval's upper bound.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ci_high: Option<f64>,
}

/// Per metric, its daily series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyResults {
    /// Per metric (in the order of the results), cumulative by the units' first-exposure day:
    /// each day counts the units exposed by its end, with their values as of the analysis.
    pub metrics: Vec<DailyMetric>,
}

/// One metric's daily series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DailyMetric {
    /// The metric's key.
    pub key: String,
    /// Its name.
    pub name: String,
    /// The days, oldest first.
    pub days: Vec<DailyPoint>,
}

/// Everything a report is built from.
pub struct Inputs<'a> {
    pub test: &'a str,
    pub environment: &'a str,
    pub definition: &'a TestDefinition,
    pub metrics: &'a [Metric],
    pub plans: &'a [MetricPlan],
    pub population: &'a Population,
    pub windows: &'a [RangesWindow],
    pub span: Span,
    pub default_phase: bool,
    pub control: i32,
    pub settings: AnalysisSettings,
    pub dimension: Option<String>,
    pub as_of: i64,
    pub last_event: i64,
    pub revision: i64,
}

/// The control: the bucket asked for, or the test's first non-inactive bucket.
pub fn control_bucket(definition: &TestDefinition, asked: Option<i32>) -> WriteResult<i32> {
    let analysed: Vec<i32> = definition.buckets.iter().map(|b| b.value).filter(|&v| v != INACTIVE).collect();
    match asked {
        Some(v) if analysed.contains(&v) => Ok(v),
        Some(v) => Err(WriteError::field(
            ErrorCode::InvalidQuery,
            "control",
            format!("control: the test has no analysed bucket with value {v} (its buckets: {analysed:?})"),
        )),
        None => analysed.first().copied().ok_or_else(|| {
            WriteError::field(ErrorCode::InvalidQuery, "control", "the test has no bucket but the inactive one to analyse")
        }),
    }
}

/// The buckets analysed, control first, then in the test's order.
fn variant_order(definition: &TestDefinition, control: i32) -> Vec<i32> {
    std::iter::once(control)
        .chain(definition.buckets.iter().map(|b| b.value).filter(|&v| v != INACTIVE && v != control))
        .collect()
}

fn analysed<'a>(order: &'a [i32]) -> impl Fn(&Unit) -> bool + 'a {
    move |u: &Unit| !u.multiple && order.contains(&u.bucket)
}

/// Sums in variant order, empty variants included.
fn in_order(order: &[i32], groups: Vec<(i32, Sufficient)>, template: Option<Sufficient>) -> Vec<(i32, Sufficient)> {
    order
        .iter()
        .map(|&b| {
            let found = groups.iter().find(|(g, _)| *g == b).map(|(_, s)| *s);
            (b, found.unwrap_or_else(|| template.map(zeroed).unwrap_or_default()))
        })
        .collect()
}

/// A sum with the same optional parts as `like`, all zero.
fn zeroed(like: Sufficient) -> Sufficient {
    let zero = |o: Option<f64>| o.map(|_| 0.0);
    Sufficient {
        units: 0.0,
        sum: 0.0,
        sum_squares: 0.0,
        denominator_sum: zero(like.denominator_sum),
        denominator_sum_squares: zero(like.denominator_sum_squares),
        sum_products: zero(like.sum_products),
        pre_sum: zero(like.pre_sum),
        pre_sum_squares: zero(like.pre_sum_squares),
        post_pre_sum_products: zero(like.post_pre_sum_products),
    }
}

fn metric_results(
    metric: &Metric,
    plan: &MetricPlan,
    cap: Option<f64>,
    groups: Vec<(i32, Sufficient)>,
    order: &[i32],
    control: i32,
    settings: &AnalysisSettings,
) -> MetricResults {
    let template = groups.first().map(|(_, s)| *s);
    let groups = in_order(order, groups, template);
    MetricResults {
        key: metric.key.clone(),
        name: metric.definition.name.clone(),
        metric_type: metric.definition.metric_type,
        direction: metric.definition.direction,
        guardrail: metric.definition.guardrail,
        cuped: plan.cuped(),
        cap,
        variants: analysis::compare_variants(&metric.definition, &groups, control, settings),
    }
}

/// Adjusts the goal metrics' p-values together.
fn correct_all(metrics: &mut [MetricResults], settings: &AnalysisSettings) {
    let mut directions = Vec::new();
    let mut refs: Vec<&mut VariantResult> = Vec::new();
    for m in metrics.iter_mut().filter(|m| !m.guardrail) {
        for v in m.variants.iter_mut().filter(|v| !v.control) {
            directions.push(m.direction);
            refs.push(v);
        }
    }
    analysis::correct(&mut refs, &directions, settings);
}

fn srm_summary(inputs: &Inputs<'_>, order: &[i32]) -> SrmSummary {
    let is_analysed = analysed(order);
    let single_allocation = inputs.definition.allocations.len() == 1;
    let mut unknown_allocation = 0;
    let mut checks = Vec::new();
    for window in inputs.windows {
        let from = window.from.max(inputs.span.from);
        let to = window.to.min(inputs.span.to.saturating_add(1));
        if from >= to {
            continue;
        }
        for (allocation, shares) in window.shares.iter().enumerate() {
            let mut buckets: Vec<SrmBucket> =
                shares.iter().map(|&(bucket, share)| SrmBucket { bucket, observed: 0, expected_share: share }).collect();
            for unit in inputs.population.units().iter().filter(|u| is_analysed(u) && u.first_time >= from && u.first_time < to) {
                let index = match unit.allocation {
                    Some(a) => usize::try_from(a).ok(),
                    None if single_allocation => Some(0),
                    None => None,
                };
                match index {
                    Some(a) if a == allocation => match buckets.iter_mut().find(|b| b.bucket == unit.bucket) {
                        Some(b) => b.observed += 1,
                        None => buckets.push(SrmBucket { bucket: unit.bucket, observed: 1, expected_share: 0.0 }),
                    },
                    Some(_) => {}
                    None if allocation == 0 => unknown_allocation += 1,
                    None => {}
                }
            }
            if let Some(p_value) = analysis::srm(&buckets) {
                checks.push(SrmCheck {
                    from,
                    to: (window.to != i64::MAX).then_some(window.to),
                    revision: window.revision.to_string(),
                    allocation,
                    buckets,
                    p_value,
                });
            }
        }
    }
    let p_value = checks.iter().map(|c| c.p_value).min_by(f64::total_cmp);
    SrmSummary {
        p_value,
        warning: p_value.is_some_and(|p| p < SRM_THRESHOLD),
        threshold: SRM_THRESHOLD,
        checks,
        unknown_allocation,
    }
}

fn dimension_results(inputs: &Inputs<'_>, name: &str, order: &[i32], caps: &[Option<f64>]) -> DimensionResults {
    let is_analysed = analysed(order);
    let mut values: Vec<(Option<String>, u64)> = Vec::new();
    for unit in inputs.population.units().iter().filter(|u| is_analysed(u)) {
        let value = unit.dimension.as_deref().map(str::to_string);
        match values.iter_mut().find(|(v, _)| *v == value) {
            Some((_, n)) => *n += 1,
            None => values.push((value, 1)),
        }
    }
    values.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let values = values
        .into_iter()
        .map(|(value, units)| {
            let mut metrics: Vec<MetricResults> = inputs
                .metrics
                .iter()
                .zip(inputs.plans)
                .zip(caps)
                .map(|((metric, plan), &cap)| {
                    let groups = plan.totals(inputs.population, cap, |u| {
                        (is_analysed(u) && u.dimension.as_deref() == value.as_deref()).then_some(u.bucket)
                    });
                    metric_results(metric, plan, cap, groups, order, inputs.control, &inputs.settings)
                })
                .collect();
            correct_all(&mut metrics, &inputs.settings);
            DimensionValue { value, units, metrics }
        })
        .collect();
    DimensionResults { name: name.to_string(), values }
}

/// The ends of the UTC days from the phase's first exposure to its last.
fn day_boundaries(population: &Population) -> Vec<i64> {
    let times = population.units().iter().map(|u| u.first_time);
    let (Some(first), Some(last)) = (times.clone().min(), times.max()) else { return Vec::new() };
    let mut end = (first.div_euclid(DAY) + 1) * DAY - 1;
    let mut days = Vec::new();
    loop {
        days.push(end);
        if end >= last {
            break;
        }
        end += DAY;
    }
    if days.len() > MAX_DAYS {
        days.drain(..days.len() - MAX_DAYS);
    }
    days
}

fn daily(inputs: &Inputs<'_>, order: &[i32], caps: &[Option<f64>]) -> DailyResults {
    let days = day_boundaries(inputs.population);
    let is_analysed = analysed(order);
    let mut settings = inputs.settings.clone();
    settings.correction = analysis::CorrectionChoice::None;
    let metrics = inputs
        .metrics
        .iter()
        .zip(inputs.plans)
        .zip(caps)
        .map(|((metric, plan), &cap)| {
            let series = plan.cumulative(inputs.population, cap, &days, |u| is_analysed(u).then_some(u.bucket));
            let days = days
                .iter()
                .zip(series)
                .map(|(&date, groups)| {
                    let results = metric_results(metric, plan, cap, groups, order, inputs.control, &settings);
                    let variants = results
                        .variants
                        .into_iter()
                        .map(|v| DailyVariant {
                            bucket: v.bucket,
                            units: v.units,
                            value: v.value,
                            lift: v.lift,
                            ci_low: v.ci_low,
                            ci_high: v.ci_high,
                        })
                        .collect();
                    DailyPoint { date, variants }
                })
                .collect();
            DailyMetric { key: metric.key.clone(), name: metric.definition.name.clone(), days }
        })
        .collect();
    DailyResults { metrics }
}

/// Builds the results.
pub fn build(inputs: Inputs<'_>) -> Results {
    let order = variant_order(inputs.definition, inputs.control);
    let is_analysed = analysed(&order);
    let caps: Vec<Option<f64>> = inputs.plans.iter().map(|p| p.cap(inputs.population.units(), &is_analysed)).collect();
    let mut metrics: Vec<MetricResults> = inputs
        .metrics
        .iter()
        .zip(inputs.plans)
        .zip(&caps)
        .map(|((metric, plan), &cap)| {
            let groups = plan.totals(inputs.population, cap, |u| is_analysed(u).then_some(u.bucket));
            metric_results(metric, plan, cap, groups, &order, inputs.control, &inputs.settings)
        })
        .collect();
    correct_all(&mut metrics, &inputs.settings);
    let variants = order
        .iter()
        .map(|&bucket| ResultsVariant {
            bucket,
            name: inputs.definition.buckets.iter().find(|b| b.value == bucket).map(|b| b.name.clone()).unwrap_or_default(),
            units: inputs.population.units().iter().filter(|u| is_analysed(u) && u.bucket == bucket).count() as u64,
            control: bucket == inputs.control,
        })
        .collect();
    let srm = srm_summary(&inputs, &order);
    let dimension = inputs.dimension.as_deref().map(|name| dimension_results(&inputs, name, &order, &caps));
    let daily = daily(&inputs, &order, &caps);
    let phases = inputs
        .windows
        .iter()
        .map(|w| RangesPhase {
            revision: w.revision.to_string(),
            from: w.from,
            to: (w.to != i64::MAX).then_some(w.to),
            shares: w.shares.clone(),
        })
        .collect();
    Results {
        test: inputs.test.to_string(),
        environment: inputs.environment.to_string(),
        identifier_type: inputs.definition.test_type.clone(),
        as_of: inputs.as_of,
        stale: false,
        last_event_id: inputs.last_event,
        revision: inputs.revision.to_string(),
        phase: PhaseInfo {
            from: inputs.span.from,
            to: (inputs.span.to != i64::MAX).then_some(inputs.span.to),
            default: inputs.default_phase,
        },
        phases,
        settings: inputs.settings.clone(),
        control: inputs.control,
        variants,
        excluded: inputs.population.excluded,
        srm,
        metrics,
        dimension,
        daily,
    }
}
