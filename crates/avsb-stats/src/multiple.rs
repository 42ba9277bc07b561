//! Multiple-comparison corrections of p-values, as statsmodels'
//! `statsmodels.stats.multitest.multipletests` computes them (GrowthBook offers the same two).

use serde::{Deserialize, Serialize};

/// Which correction to apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm–Bonferroni step-down: controls the family-wise error rate (statsmodels `holm`).
    Holm,
    /// Benjamini–Hochberg step-up: controls the false discovery rate (statsmodels `fdr_bh`).
    BenjaminiHochberg,
}

/// The adjusted p-values, in the order given (statsmodels' `multipletests(p, method=...)[1]`).
///
/// With the p-values sorted ascending, p₍₁₎ ≤ … ≤ p₍ₘ₎: Holm's i-th is the running maximum of
/// (m − j + 1)·p₍ⱼ₎ over j ≤ i; Benjamini–Hochberg's is the running minimum, from the largest
/// down, of m·p₍ⱼ₎ / j over j ≥ i; both are capped at 1. Ties get the same value, whatever
/// their order. The input should be p-values in [0, 1]; a NaN sorts last and stays NaN.
pub fn adjust_p_values(p_values: &[f64], correction: Correction) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&i, &j| p_values[i].total_cmp(&p_values[j]));
    let sorted: Vec<f64> = order.iter().map(|&i| p_values[i]).collect();
    let adjusted = match correction {
        Correction::Holm => holm_sorted(&sorted),
        Correction::BenjaminiHochberg => benjamini_hochberg_sorted(&sorted),
    };
    let mut result = vec![0.0; m];
    for (rank, &index) in order.iter().enumerate() {
        result[index] = adjusted[rank].min(1.0);
    }
    result
}

/// Holm's adjustment of ascending p-values (before the cap at 1).
fn holm_sorted(sorted: &[f64]) -> Vec<f64> {
    let m = sorted.len();
    let mut running_max = f64::NEG_INFINITY;
    sorted
        .iter()
        .enumerate()
        .map(|(rank, p)| {
            running_max = running_max.max(p * (m - rank) as f64);
            if p.is_nan() {
                f64::NAN
            } else {
                running_max
            }
        })
        .collect()
}

/// Benjamini–Hochberg's adjustment of ascending p-values (before the cap at 1); statsmodels'
/// `fdrcorrection`: p / (rank / m).
fn benjamini_hochberg_sorted(sorted: &[f64]) -> Vec<f64> {
    let m = sorted.len();
    let mut adjusted = vec![0.0; m];
    let mut running_min = f64::INFINITY;
    for rank in (0..m).rev() {
        let raw = sorted[rank] / ((rank + 1) as f64 / m as f64);
        running_min = running_min.min(raw);
        adjusted[rank] = if raw.is_nan() { f64::NAN } else { running_min };
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statsmodels_reference_values() {
        // statsmodels 0.15.0: multipletests([0.01, 0.02, 0.03, 0.5], method=...)[1]
        let p = [0.03, 0.01, 0.5, 0.02];
        let close = |got: Vec<f64>, want: [f64; 4]| got.iter().zip(want).all(|(g, w)| (g - w).abs() < 1e-15);
        assert!(close(adjust_p_values(&p, Correction::Holm), [0.06, 0.04, 0.5, 0.06]));
        assert!(close(adjust_p_values(&p, Correction::BenjaminiHochberg), [0.04, 0.04, 0.5, 0.04]));
    }

    #[test]
    fn no_p_values_give_none_back() {
        assert!(adjust_p_values(&[], Correction::Holm).is_empty());
    }
}
