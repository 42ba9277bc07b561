//! From tracked events to per-variant sufficient statistics.
//!
//! Each metric keeps, per unit that has events, its post-exposure figures (numerator and, for a
//! ratio, denominator) and the same figures in the pre-exposure window (CUPED's covariate).
//! Units without events count as zeros. What leaves this module is [`Sufficient`]: sums, sums
//! of squares and cross products per variant, which is all the statistics need (a warehouse
//! could produce the same).

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use super::metric::{Aggregate, Capping, MetricDefinition, MetricType};
use super::population::{Population, Unit};

/// Milliseconds in an hour.
const HOUR: i64 = 3_600_000;

/// One tracked event as the aggregation reads it.
#[derive(Debug, Clone, Copy)]
pub struct Tracked<'a> {
    /// When, epoch milliseconds.
    pub time: i64,
    /// The event key.
    pub key: &'a str,
    /// The value, if any (a missing value adds 0 to a sum).
    pub value: Option<f64>,
}

/// A unit's figures for one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Figures {
    post: f64,
    post_denominator: f64,
    pre: f64,
    pre_denominator: f64,
}

/// How one metric is read from events.
#[derive(Debug, Clone)]
pub struct MetricPlan {
    /// The definition.
    pub definition: MetricDefinition,
    /// The pre-exposure window for CUPED, milliseconds (`None`: no CUPED).
    pub pre_window: Option<i64>,
    /// The last millisecond whose events count (the phase's end).
    pub until: i64,
    per_unit: FxHashMap<u32, Figures>,
}

impl MetricPlan {
    /// A plan for one metric.
    pub fn new(definition: MetricDefinition, pre_window: Option<i64>, until: i64) -> MetricPlan {
        MetricPlan { definition, pre_window, until, per_unit: FxHashMap::default() }
    }

    fn amount(aggregate: Aggregate, value: Option<f64>) -> f64 {
        match aggregate {
            Aggregate::Count => 1.0,
            Aggregate::Sum => value.unwrap_or(0.0),
        }
    }

    fn numerator_aggregate(&self) -> Aggregate {
        match self.definition.metric_type {
            MetricType::Conversion | MetricType::Count => Aggregate::Count,
            MetricType::Mean | MetricType::Ratio => Aggregate::Sum,
        }
    }

    /// Folds one event of a unit of the experiment into this metric (if it reads that key and
    /// the event falls in a window that counts).
    pub fn fold(&mut self, unit_index: u32, unit: &Unit, event: Tracked<'_>) {
        let numerator = event.key == self.definition.event;
        let denominator = self.definition.denominator.as_ref().filter(|d| d.event == event.key);
        if !numerator && denominator.is_none() {
            return;
        }
        let after = event.time - unit.first_time;
        let post = after >= 0
            && event.time <= self.until
            && self.definition.window_hours.is_none_or(|h| (after as f64) <= h * HOUR as f64);
        let pre = after < 0 && self.pre_window.is_some_and(|w| -after <= w);
        if !post && !pre {
            return;
        }
        let numerator_aggregate = self.numerator_aggregate();
        let figures = self.per_unit.entry(unit_index).or_default();
        if numerator {
            let amount = Self::amount(numerator_aggregate, event.value);
            if post {
                figures.post += amount;
            } else {
                figures.pre += amount;
            }
        }
        if let Some(d) = denominator {
            let amount = Self::amount(d.aggregate, event.value);
            if post {
                figures.post_denominator += amount;
            } else {
                figures.pre_denominator += amount;
            }
        }
    }

    /// A unit's value (numerator, denominator) after the metric's own transformation: 0 or 1
    /// for a conversion, capped where the metric caps.
    fn value(&self, figures: Figures, cap: Option<f64>) -> (f64, f64, f64) {
        let capped = |v: f64| cap.map_or(v, |c| v.min(c));
        match self.definition.metric_type {
            MetricType::Conversion => {
                (f64::from(u8::from(figures.post > 0.0)), 0.0, f64::from(u8::from(figures.pre > 0.0)))
            }
            MetricType::Mean | MetricType::Count => (capped(figures.post), 0.0, capped(figures.pre)),
            MetricType::Ratio => (capped(figures.post), figures.post_denominator, capped(figures.pre)),
        }
    }
}

/// Sums over the units of one variant (or one variant and dimension value) for one metric.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Sufficient {
    /// Units.
    pub units: f64,
    /// Sum of the per-unit values (a ratio's numerators).
    pub sum: f64,
    /// Sum of their squares.
    pub sum_squares: f64,
    /// A ratio: sum of the per-unit denominators.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator_sum: Option<f64>,
    /// A ratio: sum of their squares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denominator_sum_squares: Option<f64>,
    /// A ratio: sum of numerator × denominator.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum_products: Option<f64>,
    /// CUPED: sum of the pre-exposure values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_sum: Option<f64>,
    /// CUPED: sum of their squares.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pre_sum_squares: Option<f64>,
    /// CUPED: sum of post × pre.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_pre_sum_products: Option<f64>,
}

impl Sufficient {
    fn empty(ratio: bool, cuped: bool) -> Sufficient {
        let some = |on: bool| on.then_some(0.0);
        Sufficient {
            denominator_sum: some(ratio),
            denominator_sum_squares: some(ratio),
            sum_products: some(ratio),
            pre_sum: some(cuped),
            pre_sum_squares: some(cuped),
            post_pre_sum_products: some(cuped),
            ..Sufficient::default()
        }
    }

    fn add(&mut self, (value, denominator, pre): (f64, f64, f64)) {
        self.units += 1.0;
        self.sum += value;
        self.sum_squares += value * value;
        let add = |slot: &mut Option<f64>, x: f64| {
            if let Some(s) = slot {
                *s += x;
            }
        };
        add(&mut self.denominator_sum, denominator);
        add(&mut self.denominator_sum_squares, denominator * denominator);
        add(&mut self.sum_products, value * denominator);
        add(&mut self.pre_sum, pre);
        add(&mut self.pre_sum_squares, pre * pre);
        add(&mut self.post_pre_sum_products, value * pre);
    }
}

/// Adds a unit's value to its group's sums, starting the group (from `empty`) if it is new.
fn add_to_group<K: PartialEq>(groups: &mut Vec<(K, Sufficient)>, key: K, value: (f64, f64, f64), empty: impl FnOnce() -> Sufficient) {
    match groups.iter_mut().find(|(k, _)| *k == key) {
        Some((_, s)) => s.add(value),
        None => {
            let mut s = empty();
            s.add(value);
            groups.push((key, s));
        }
    }
}

/// What one metric sums to, per analysed unit, grouped by a key (the bucket, or the bucket and
/// a dimension value).
pub struct Totals<K> {
    /// The cap applied to per-unit values, if the metric caps.
    pub cap: Option<f64>,
    /// Sums per group.
    pub groups: Vec<(K, Sufficient)>,
}

impl MetricPlan {
    /// Whether this metric's sums carry CUPED's covariate.
    pub fn cuped(&self) -> bool {
        self.pre_window.is_some()
    }

    /// The cap per-unit values are clipped to: fixed, or the percentile (SQL's
    /// `PERCENTILE_CONT`) of the analysed units' values, zeros included.
    pub fn cap(&self, units: &[Unit], analysed: impl Fn(&Unit) -> bool) -> Option<f64> {
        let capping = match self.definition.capping? {
            Capping::Absolute(c) => avsb_stats::Capping::Absolute(c),
            Capping::Percentile(q) => avsb_stats::Capping::Percentile(q),
        };
        let values: Vec<f64> = match capping {
            avsb_stats::Capping::Absolute(_) => Vec::new(),
            avsb_stats::Capping::Percentile(_) => units
                .iter()
                .enumerate()
                .filter(|(_, u)| analysed(u))
                .map(|(i, _)| self.per_unit.get(&(i as u32)).map_or(0.0, |f| f.post))
                .collect(),
        };
        avsb_stats::cap_threshold(&values, &capping)
    }

    /// Sums the analysed units' values per group (`group` gives a unit's group or leaves it
    /// out), groups in first-seen order.
    pub fn totals<K: PartialEq + Clone>(
        &self,
        population: &Population,
        cap: Option<f64>,
        group: impl Fn(&Unit) -> Option<K>,
    ) -> Vec<(K, Sufficient)> {
        let ratio = self.definition.metric_type == MetricType::Ratio;
        let mut groups: Vec<(K, Sufficient)> = Vec::new();
        for (i, unit) in population.units().iter().enumerate() {
            let Some(key) = group(unit) else { continue };
            let figures = self.per_unit.get(&(i as u32)).copied().unwrap_or_default();
            add_to_group(&mut groups, key, self.value(figures, cap), || Sufficient::empty(ratio, self.cuped()));
        }
        groups
    }

    /// Cumulative sums per group at the end of each day boundary in `days` (ascending epoch
    /// milliseconds): units whose first exposure is at or before the boundary, each with its
    /// value as of the analysis.
    pub fn cumulative<K: PartialEq + Clone>(
        &self,
        population: &Population,
        cap: Option<f64>,
        days: &[i64],
        group: impl Fn(&Unit) -> Option<K>,
    ) -> Vec<Vec<(K, Sufficient)>> {
        let ratio = self.definition.metric_type == MetricType::Ratio;
        let mut order: Vec<usize> = (0..population.len()).collect();
        order.sort_unstable_by_key(|&i| population.units()[i].first_time);
        let mut groups: Vec<(K, Sufficient)> = Vec::new();
        let mut out = Vec::with_capacity(days.len());
        let mut next = 0;
        for &boundary in days {
            while next < order.len() && population.units()[order[next]].first_time <= boundary {
                let i = order[next];
                next += 1;
                let unit = &population.units()[i];
                let Some(key) = group(unit) else { continue };
                let value = self.value(self.per_unit.get(&(i as u32)).copied().unwrap_or_default(), cap);
                add_to_group(&mut groups, key, value, || Sufficient::empty(ratio, self.cuped()));
            }
            out.push(groups.clone());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::metric::Denominator;
    use super::super::population::{Exposure, Span};
    use super::*;

    fn definition(json: &str) -> MetricDefinition {
        serde_json::from_str(json).unwrap()
    }

    fn population(units: &[(&'static str, i64, i32)]) -> Population {
        let mut p = Population::new();
        for &(unit, time, bucket) in units {
            let e = Exposure { time, unit, bucket, reason: None, allocation: Some(0), dimension: None };
            p.add(e, Span { from: 0, to: i64::MAX });
        }
        p.finish();
        p
    }

    fn fold(plan: &mut MetricPlan, p: &Population, events: &[(&str, i64, &'static str, Option<f64>)]) {
        for &(unit, time, key, value) in events {
            let i = p.find(unit).unwrap();
            plan.fold(i, &p.units()[i as usize], Tracked { time, key, value });
        }
    }

    #[test]
    fn a_conversion_counts_units_with_an_event_after_their_first_exposure_within_the_window() {
        let p = population(&[("a", 1000, 0), ("b", 1000, 0), ("c", 1000, 1)]);
        let mut plan =
            MetricPlan::new(definition(r#"{"name": "Buy", "event": "buy", "type": "conversion", "windowHours": 1}"#), None, i64::MAX);
        fold(&mut plan, &p, &[("a", 999, "buy", None), ("b", 2000, "buy", None), ("b", 3000, "buy", None), ("c", 1000 + HOUR + 1, "buy", None)]);
        let totals = plan.totals(&p, None, |u| Some(u.bucket));
        assert_eq!(totals[0], (0, Sufficient { units: 2.0, sum: 1.0, sum_squares: 1.0, ..Sufficient::default() }));
        assert_eq!(totals[1].1.sum, 0.0, "after the window");
    }

    #[test]
    fn a_mean_sums_values_caps_them_and_keeps_the_pre_exposure_covariate() {
        let p = population(&[("a", 100, 0), ("b", 100, 0)]);
        let def = definition(r#"{"name": "Rev", "event": "buy", "type": "mean", "capping": {"type": "absolute", "value": 50}}"#);
        let mut plan = MetricPlan::new(def, Some(1000), i64::MAX);
        fold(&mut plan, &p, &[("a", 150, "buy", Some(30.0)), ("a", 160, "buy", Some(40.0)), ("b", 50, "buy", Some(7.0)), ("b", 200, "buy", None)]);
        let cap = plan.cap(p.units(), |_| true);
        let totals = plan.totals(&p, cap, |u| Some(u.bucket));
        let s = totals[0].1;
        assert_eq!((s.units, s.sum, s.sum_squares), (2.0, 50.0, 2500.0));
        assert_eq!((s.pre_sum, s.pre_sum_squares, s.post_pre_sum_products), (Some(7.0), Some(49.0), Some(0.0)));
    }

    #[test]
    fn a_ratio_keeps_numerator_and_denominator_per_unit() {
        let p = population(&[("a", 0, 0), ("b", 0, 0)]);
        let mut def = definition(r#"{"name": "AOV", "event": "buy", "type": "ratio"}"#);
        def.denominator = Some(Denominator { event: "order".into(), aggregate: Aggregate::Count });
        let mut plan = MetricPlan::new(def, None, i64::MAX);
        fold(&mut plan, &p, &[("a", 1, "buy", Some(10.0)), ("a", 1, "order", None), ("a", 2, "order", None), ("b", 3, "buy", Some(4.0))]);
        let s = plan.totals(&p, None, |u| Some(u.bucket))[0].1;
        assert_eq!((s.sum, s.denominator_sum, s.denominator_sum_squares, s.sum_products), (14.0, Some(2.0), Some(4.0), Some(20.0)));
    }

    #[test]
    fn a_percentile_cap_is_taken_over_the_analysed_units_zeros_included() {
        let p = population(&[("a", 0, 0), ("b", 0, 0), ("c", 0, 1), ("d", 0, 1), ("e", 0, 1)]);
        let def = definition(r#"{"name": "Rev", "event": "buy", "type": "mean", "capping": {"type": "percentile", "value": 0.9}}"#);
        let mut plan = MetricPlan::new(def, None, i64::MAX);
        fold(&mut plan, &p, &[("a", 1, "buy", Some(1.0)), ("b", 1, "buy", Some(2.0)), ("c", 1, "buy", Some(3.0)), ("d", 1, "buy", Some(10.0))]);
        // Sorted values 0, 1, 2, 3, 10: the 90th percentile is 3 + 0.6 * (10 - 3).
        let cap = plan.cap(p.units(), |_| true).unwrap();
        assert!((cap - 7.2).abs() < 1e-12, "{cap}");
        let capped_sum = plan.totals(&p, Some(cap), |u| Some(u.bucket))[1].1.sum;
        assert!((capped_sum - (3.0 + cap)).abs() < 1e-12, "{capped_sum}");
    }

    #[test]
    fn cumulative_sums_grow_by_first_exposure_day() {
        let p = population(&[("a", 10, 0), ("b", 20, 1), ("c", 30, 0)]);
        let mut plan = MetricPlan::new(definition(r#"{"name": "N", "event": "e", "type": "count"}"#), None, i64::MAX);
        fold(&mut plan, &p, &[("c", 40, "e", None)]);
        let days = plan.cumulative(&p, None, &[15, 25, 35], |u| Some(u.bucket));
        assert_eq!(days[0].len(), 1);
        assert_eq!(days[2][0].1.units, 2.0);
        assert_eq!(days[2][0].1.sum, 1.0);
    }
}
