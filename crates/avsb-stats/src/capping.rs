//! Capping (winsorising) per-unit values before their sums are taken, as GrowthBook's metric
//! capping does: every unit's value is clipped to at most a threshold, either fixed or a
//! percentile of the per-unit values of all arms pooled.
//!
//! The percentile is SQL's `PERCENTILE_CONT`, which GrowthBook's SQL uses where the warehouse
//! has it (PostgreSQL, Redshift, Snowflake; BigQuery and others use their approximate
//! quantiles): linear interpolation between the two closest ranks, at position p·(n − 1) of the
//! sorted values. That is numpy's default `quantile(..., method="linear")`, which the spec
//! cases check against.

use serde::{Deserialize, Serialize};

/// How per-unit values are capped.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capping {
    /// Clip every value to this number (GrowthBook's `absolute` capping).
    Absolute(f64),
    /// Clip every value to this quantile, a fraction in [0, 1] such as 0.99, of the pooled
    /// per-unit values (GrowthBook's `percentile` capping).
    Percentile(f64),
}

/// The value per-unit values are clipped to. `None` for a percentile outside [0, 1], a
/// percentile of no values, or a value or threshold that is not a finite number.
pub fn cap_threshold(values: &[f64], capping: &Capping) -> Option<f64> {
    match *capping {
        Capping::Absolute(threshold) => Some(threshold).filter(|t| t.is_finite()),
        Capping::Percentile(p) => percentile_cont(values, p),
    }
}

/// Clips every value above `threshold` to it (GrowthBook's `LEAST(value, cap)`).
pub fn apply_cap(values: &mut [f64], threshold: f64) {
    for value in values.iter_mut() {
        *value = value.min(threshold);
    }
}

/// `PERCENTILE_CONT(p) WITHIN GROUP (ORDER BY value)`, numpy's linear quantile, computed by
/// selection (linear time) rather than a full sort.
fn percentile_cont(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&p) || values.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut scratch = values.to_vec();
    let position = p * (scratch.len() - 1) as f64;
    let below = position.floor();
    let fraction = position - below;
    // `below` is within 0..len because p is in [0, 1].
    let (_, &mut low, above) = scratch.select_nth_unstable_by(below as usize, f64::total_cmp);
    let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    Some(lerp(low, high, fraction))
}

/// numpy's `_lerp`: from the nearer end, so the result stays within [low, high].
fn lerp(low: f64, high: f64, t: f64) -> f64 {
    let difference = high - low;
    if t >= 0.5 {
        high - difference * (1.0 - t)
    } else {
        low + difference * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_interpolates_between_ranks_as_percentile_cont() {
        let values = [4.0, 1.0, 3.0, 2.0, 10.0];
        assert_eq!(cap_threshold(&values, &Capping::Percentile(0.5)), Some(3.0));
        // numpy 1.26's quantile(values, 0.9), to the last bit.
        assert_eq!(cap_threshold(&values, &Capping::Percentile(0.9)), Some(7.6000000000000005));
        assert_eq!(cap_threshold(&values, &Capping::Percentile(1.0)), Some(10.0));
        assert_eq!(cap_threshold(&values, &Capping::Percentile(0.0)), Some(1.0));
    }

    #[test]
    fn unusable_capping_gives_no_threshold() {
        assert_eq!(cap_threshold(&[], &Capping::Percentile(0.5)), None);
        assert_eq!(cap_threshold(&[1.0], &Capping::Percentile(1.5)), None);
        assert_eq!(cap_threshold(&[1.0, f64::NAN], &Capping::Percentile(0.5)), None);
        assert_eq!(cap_threshold(&[], &Capping::Absolute(5.0)), Some(5.0));
    }

    #[test]
    fn capping_clips_only_values_above_the_threshold() {
        let mut values = [1.0, 5.0, 9.0];
        apply_cap(&mut values, 5.0);
        assert_eq!(values, [1.0, 5.0, 5.0]);
    }
}
