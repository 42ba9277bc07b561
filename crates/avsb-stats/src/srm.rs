//! Sample ratio mismatch: whether the units an experiment saw per arm fit the shares it was
//! meant to have (gbstats.utils.check_srm).

use crate::dist::chi_square_sf;

/// gbstats' `check_srm`: the chi-square goodness-of-fit p-value of the observed unit counts
/// against the expected shares (any positive weights; they are normalised). A small p-value
/// (GrowthBook warns under 0.001) means the split is broken.
///
/// As gbstats does: arms with a share of 0 add nothing to the statistic but still count in its
/// degrees of freedom (arms − 1), and no units at all is a p-value of 1.
///
/// `None` (where gbstats would raise or answer NaN): fewer than two arms, lengths that differ,
/// a negative or non-finite count or share, or no positive share.
pub fn srm_p_value(observed: &[f64], expected_shares: &[f64]) -> Option<f64> {
    let finite_non_negative = |values: &[f64]| values.iter().all(|v| v.is_finite() && *v >= 0.0);
    if observed.len() < 2
        || observed.len() != expected_shares.len()
        || !finite_non_negative(observed)
        || !finite_non_negative(expected_shares)
    {
        return None;
    }
    let total_share: f64 = expected_shares.iter().sum();
    if total_share <= 0.0 {
        return None;
    }
    let total_observed: f64 = observed.iter().sum();
    if total_observed == 0.0 {
        return Some(1.0);
    }
    let statistic: f64 = observed
        .iter()
        .zip(expected_shares)
        .filter(|(_, share)| **share > 0.0)
        .map(|(units, share)| {
            let expected = share / total_share * total_observed;
            (units - expected).powi(2) / expected
        })
        .sum();
    Some(chi_square_sf(statistic, (observed.len() - 1) as f64)).filter(|p| p.is_finite())
}
