//! The distribution functions the tests need, as plain functions that never panic: the standard
//! normal, Student's t and chi-square, from `statrs`, with one repair.
//!
//! The repair: statrs computes Student's t through the regularised incomplete beta function,
//! which loses precision as the degrees of freedom grow (about `dof × 1e-16` relatively) and
//! whose quantile does not terminate for very large degrees of freedom (1e8 hangs). Welch's
//! degrees of freedom reach millions in real experiments, so above [`LARGE_DOF`] the quantile
//! is the Cornish–Fisher expansion of t around the normal (Abramowitz & Stegun 26.7.5, four
//! terms) and the tail probability inverts that expansion; both agree with scipy to about 1e-15
//! there (the fifth term is below 1e-20 at 1e4 degrees of freedom).
//!
//! Accuracy: statrs' complementary error function, under every normal probability here, is
//! good to about 1e-10 relatively (not to the last bit, as scipy's), and its t quantile to about
//! 1e-11 below 1e4 degrees of freedom; that is the floor of the agreement with gbstats.

use statrs::distribution::{ChiSquared, ContinuousCDF, Normal, StudentsT};

/// Degrees of freedom from which Student's t is computed by its expansion around the normal.
const LARGE_DOF: f64 = 1e4;

/// P(Z > x) for a standard normal Z.
pub(crate) fn normal_sf(x: f64) -> f64 {
    Normal::standard().sf(x)
}

/// P(Z ≤ x) for a standard normal Z.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    Normal::standard().cdf(x)
}

/// The standard normal density at x.
pub(crate) fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// The standard normal quantile; NaN outside [0, 1] (statrs would panic).
pub(crate) fn normal_quantile(p: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    Normal::standard().inverse_cdf(p)
}

/// P(T > x) for Student's t with `dof` degrees of freedom (scipy's `t.sf`); NaN for a
/// degree of freedom that is not positive.
pub(crate) fn t_sf(x: f64, dof: f64) -> f64 {
    if x.is_nan() || dof.is_nan() || dof <= 0.0 {
        return f64::NAN;
    }
    if dof >= LARGE_DOF {
        return if x >= 0.0 { normal_sf(large_dof_z(x, dof)) } else { normal_cdf(large_dof_z(-x, dof)) };
    }
    match StudentsT::new(0.0, 1.0, dof) {
        Ok(t) => t.sf(x),
        Err(_) => f64::NAN,
    }
}

/// The `p` quantile of Student's t with `dof` degrees of freedom (scipy's `t.ppf`); NaN
/// outside its domain.
pub(crate) fn t_quantile(p: f64, dof: f64) -> f64 {
    if !(0.0..=1.0).contains(&p) || dof.is_nan() || dof <= 0.0 {
        return f64::NAN;
    }
    if dof >= LARGE_DOF {
        return cornish_fisher(normal_quantile(p), dof);
    }
    match StudentsT::new(0.0, 1.0, dof) {
        Ok(t) => t.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// P(X > x) for a chi-square X with `dof` degrees of freedom (scipy's `chi2.sf`).
pub(crate) fn chi_square_sf(x: f64, dof: f64) -> f64 {
    match ChiSquared::new(dof) {
        Ok(c) if !x.is_nan() => c.sf(x.max(0.0)),
        _ => f64::NAN,
    }
}

/// Abramowitz & Stegun 26.7.5: the t quantile as the normal quantile `z` plus four terms in
/// powers of `1/dof`.
fn cornish_fisher(z: f64, dof: f64) -> f64 {
    let (g1, g2, g3, g4) = cornish_fisher_terms(z);
    z + g1 / dof + g2 / dof.powi(2) + g3 / dof.powi(3) + g4 / dof.powi(4)
}

/// The four polynomials of A&S 26.7.5 at `z`.
fn cornish_fisher_terms(z: f64) -> (f64, f64, f64, f64) {
    let z2 = z * z;
    let g1 = (z2 + 1.0) * z / 4.0;
    let g2 = ((5.0 * z2 + 16.0) * z2 + 3.0) * z / 96.0;
    let g3 = (((3.0 * z2 + 19.0) * z2 + 17.0) * z2 - 15.0) * z / 384.0;
    let g4 = ((((79.0 * z2 + 776.0) * z2 + 1482.0) * z2 - 1920.0) * z2 - 945.0) * z / 92160.0;
    (g1, g2, g3, g4)
}

/// The derivative of [`cornish_fisher`] with respect to `z`.
fn cornish_fisher_slope(z: f64, dof: f64) -> f64 {
    let z2 = z * z;
    let d1 = (3.0 * z2 + 1.0) / 4.0;
    let d2 = ((25.0 * z2 + 48.0) * z2 + 3.0) / 96.0;
    let d3 = (((21.0 * z2 + 95.0) * z2 + 51.0) * z2 - 15.0) / 384.0;
    let d4 = ((((711.0 * z2 + 5432.0) * z2 + 7410.0) * z2 - 5760.0) * z2 - 945.0) / 92160.0;
    1.0 + d1 / dof + d2 / dof.powi(2) + d3 / dof.powi(3) + d4 / dof.powi(4)
}

/// The normal deviate whose expanded t quantile is `x` (x ≥ 0), by Newton's method from `x`
/// (the expansion is increasing and above the identity for z ≥ 0, so the iterates fall
/// monotonically to the root).
fn large_dof_z(x: f64, dof: f64) -> f64 {
    let mut z = x;
    for _ in 0..100 {
        let step = (cornish_fisher(z, dof) - x) / cornish_fisher_slope(z, dof);
        z -= step;
        // Also stops on a NaN step, which no further iteration would mend.
        if step.is_nan() || step.abs() <= 1e-16 * z.abs() {
            break;
        }
    }
    z
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    // Reference values from scipy 1.17.1 (`t.ppf`, `t.sf`), the oracle of spec/stats.
    #[test]
    fn t_quantile_agrees_with_scipy_from_one_to_a_trillion_degrees_of_freedom() {
        let cases = [
            (0.975, 1.0, 12.706204736174694),
            (0.975, 57.3, 2.002238268231336),
            (0.95, 9999.0, 1.6450060333112988),
            (0.975, 1e6, 1.959966356814107),
            (0.995, 1e8, 2.5758293527143774),
            (0.975, 1e12, 1.9599639845424262),
        ];
        for (p, dof, want) in cases {
            let got = t_quantile(p, dof);
            assert!(close(got, want, 1e-9), "t.ppf({p}, {dof}) = {got}, scipy {want}");
        }
    }

    #[test]
    fn t_tail_agrees_with_scipy_at_large_degrees_of_freedom() {
        let cases = [
            (1.96, 1e4, 0.025011760115916513),
            (4.0, 1e7, 3.1671469345084426e-05),
            (9.0, 1e10, 1.1285885956156755e-19),
            (-1.96, 1e8, 0.975002103465336),
        ];
        for (x, dof, want) in cases {
            let got = t_sf(x, dof);
            assert!(close(got, want, 1e-9), "t.sf({x}, {dof}) = {got}, scipy {want}");
        }
    }

    #[test]
    fn out_of_domain_arguments_give_nan_instead_of_panicking() {
        assert!(normal_quantile(1.5).is_nan());
        assert!(t_quantile(-0.1, 10.0).is_nan());
        assert!(t_sf(1.0, 0.0).is_nan());
        assert!(chi_square_sf(1.0, 0.0).is_nan());
    }
}
