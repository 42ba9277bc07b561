//! Honesty checks: simulated experiments (seeded, so every run draws the same numbers) must
//! behave as the statistics promise. False positives of A/A tests and the coverage of known
//! lifts must fall within the 99.9% binomial band around their nominal rate; sequential tests
//! must stay valid under peeking, where the fixed-horizon test does not.

use avsb_stats::{
    adjust_p_values, compare, srm_p_value, Comparison, Correction, DifferenceType, Engine, Settings, Statistic,
    DEFAULT_SEQUENTIAL_TUNING,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Binomial, Distribution, Normal};
use statrs::distribution::{Binomial as BinomialCdf, DiscreteCDF};

const EXPERIMENTS: u64 = 1000;
const ALPHA: f64 = 0.05;

/// The central 99.9% range of the number of successes in `trials` draws at rate `rate`.
fn band(trials: u64, rate: f64) -> (u64, u64) {
    let binomial = BinomialCdf::new(rate, trials).expect("a valid binomial");
    let first = |level: f64| (0..=trials).find(|&k| binomial.cdf(k) >= level).unwrap_or(trials);
    (first(0.0005), first(0.9995))
}

fn settings(engine: Engine, difference_type: DifferenceType, sequential: Option<f64>) -> Settings {
    Settings { engine, difference_type, alpha: ALPHA, sequential, ..Settings::default() }
}

/// Running sums of per-unit normal values.
#[derive(Clone, Copy, Default)]
struct Sums {
    n: f64,
    sum: f64,
    sum_squares: f64,
}

impl Sums {
    fn add(&mut self, value: f64) {
        self.n += 1.0;
        self.sum += value;
        self.sum_squares += value * value;
    }

    fn statistic(&self) -> Statistic {
        Statistic::SampleMean { n: self.n, sum: self.sum, sum_squares: self.sum_squares }
    }
}

fn draw_sums(rng: &mut ChaCha8Rng, distribution: &Normal<f64>, units: usize) -> Sums {
    let mut sums = Sums::default();
    for _ in 0..units {
        sums.add(distribution.sample(rng));
    }
    sums
}

fn significant(result: &Comparison) -> bool {
    assert!(result.error.is_none(), "{:?}", result.error);
    result.p_value.is_some_and(|p| p < ALPHA)
}

fn decisive(result: &Comparison) -> bool {
    assert!(result.error.is_none(), "{:?}", result.error);
    result.chance_to_win.is_some_and(|c| !(ALPHA / 2.0..=1.0 - ALPHA / 2.0).contains(&c))
}

fn assert_in_band(what: &str, count: u64, rate: f64) {
    let (low, high) = band(EXPERIMENTS, rate);
    eprintln!("{what}: {count}/{EXPERIMENTS} (99.9% band around {rate}: {low}..={high})");
    assert!((low..=high).contains(&count), "{what}: {count} of {EXPERIMENTS}, outside {low}..={high}");
}

#[test]
fn a_a_tests_of_a_mean_metric_are_significant_at_the_rate_alpha() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    let values = Normal::new(10.0, 3.0).expect("a valid normal");
    let (mut relative, mut absolute, mut bayesian, mut sequential) = (0, 0, 0, 0);
    for _ in 0..EXPERIMENTS {
        let a = draw_sums(&mut rng, &values, 200).statistic();
        let b = draw_sums(&mut rng, &values, 200).statistic();
        relative +=
            u64::from(significant(&compare(&a, &b, &settings(Engine::Frequentist, DifferenceType::Relative, None))));
        absolute +=
            u64::from(significant(&compare(&a, &b, &settings(Engine::Frequentist, DifferenceType::Absolute, None))));
        bayesian += u64::from(decisive(&compare(&a, &b, &settings(Engine::Bayesian, DifferenceType::Relative, None))));
        let seq = settings(Engine::Frequentist, DifferenceType::Relative, Some(DEFAULT_SEQUENTIAL_TUNING));
        sequential += u64::from(significant(&compare(&a, &b, &seq)));
    }
    assert_in_band("A/A mean, fixed horizon, relative", relative, ALPHA);
    assert_in_band("A/A mean, fixed horizon, absolute", absolute, ALPHA);
    assert_in_band("A/A mean, Bayesian, chance to win beyond 2.5%/97.5%", bayesian, ALPHA);
    let (_, high) = band(EXPERIMENTS, ALPHA);
    eprintln!("A/A mean, sequential, one look: {sequential}/{EXPERIMENTS}");
    assert!(sequential <= high, "sequential false positives {sequential} above {high}");
}

#[test]
fn a_a_tests_of_conversions_are_significant_at_the_rate_alpha() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let conversions = Binomial::new(2000, 0.1).expect("a valid binomial");
    let mut positives = 0;
    for _ in 0..EXPERIMENTS {
        let a = Statistic::Proportion { n: 2000.0, sum: conversions.sample(&mut rng) as f64 };
        let b = Statistic::Proportion { n: 2000.0, sum: conversions.sample(&mut rng) as f64 };
        positives +=
            u64::from(significant(&compare(&a, &b, &settings(Engine::Frequentist, DifferenceType::Relative, None))));
    }
    assert_in_band("A/A conversion, fixed horizon, relative", positives, ALPHA);
}

#[test]
fn peeking_twenty_times_inflates_the_fixed_horizon_test_but_not_the_sequential_one() {
    const LOOKS: usize = 20;
    const UNITS_PER_LOOK: u64 = 250;
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let batch = Binomial::new(UNITS_PER_LOOK, 0.1).expect("a valid binomial");
    let fixed = settings(Engine::Frequentist, DifferenceType::Relative, None);
    let sequential = settings(Engine::Frequentist, DifferenceType::Relative, Some(DEFAULT_SEQUENTIAL_TUNING));
    let (mut fixed_positives, mut sequential_positives) = (0, 0);
    for _ in 0..EXPERIMENTS {
        let (mut a, mut b, mut n) = (0.0, 0.0, 0.0);
        let (mut fixed_hit, mut sequential_hit) = (false, false);
        for _ in 0..LOOKS {
            n += UNITS_PER_LOOK as f64;
            a += batch.sample(&mut rng) as f64;
            b += batch.sample(&mut rng) as f64;
            let (control, variant) = (Statistic::Proportion { n, sum: a }, Statistic::Proportion { n, sum: b });
            fixed_hit |= significant(&compare(&control, &variant, &fixed));
            sequential_hit |= significant(&compare(&control, &variant, &sequential));
        }
        fixed_positives += u64::from(fixed_hit);
        sequential_positives += u64::from(sequential_hit);
    }
    let (_, high) = band(EXPERIMENTS, ALPHA);
    eprintln!(
        "A/A conversion, any of {LOOKS} looks significant: sequential {sequential_positives}/{EXPERIMENTS}, \
         fixed horizon {fixed_positives}/{EXPERIMENTS} (upper edge of the 99.9% band around {ALPHA}: {high})"
    );
    assert!(sequential_positives <= high, "sequential under peeking: {sequential_positives} above {high}");
    assert!(fixed_positives > high, "the fixed-horizon test should be fooled by peeking: {fixed_positives}");
}

#[test]
fn confidence_intervals_cover_a_known_lift_at_their_nominal_rate() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let control_values = Normal::new(10.0, 3.0).expect("a valid normal");
    let variant_values = Normal::new(11.0, 3.0).expect("a valid normal");
    let (true_relative, true_absolute) = (0.1, 1.0);
    let covers = |c: &Comparison, truth: f64| u64::from(c.error.is_none() && c.ci_low <= truth && truth <= c.ci_high);
    let (mut relative, mut absolute, mut bayesian, mut sequential) = (0, 0, 0, 0);
    for _ in 0..EXPERIMENTS {
        let a = draw_sums(&mut rng, &control_values, 300).statistic();
        let b = draw_sums(&mut rng, &variant_values, 300).statistic();
        relative +=
            covers(&compare(&a, &b, &settings(Engine::Frequentist, DifferenceType::Relative, None)), true_relative);
        absolute +=
            covers(&compare(&a, &b, &settings(Engine::Frequentist, DifferenceType::Absolute, None)), true_absolute);
        bayesian +=
            covers(&compare(&a, &b, &settings(Engine::Bayesian, DifferenceType::Absolute, None)), true_absolute);
        let seq = settings(Engine::Frequentist, DifferenceType::Absolute, Some(DEFAULT_SEQUENTIAL_TUNING));
        sequential += covers(&compare(&a, &b, &seq), true_absolute);
    }
    assert_in_band("coverage of a 10% relative lift", relative, 1.0 - ALPHA);
    assert_in_band("coverage of an absolute lift of 1", absolute, 1.0 - ALPHA);
    assert_in_band("coverage of the Bayesian 95% credible interval (improper prior)", bayesian, 1.0 - ALPHA);
    let (low, _) = band(EXPERIMENTS, 1.0 - ALPHA);
    eprintln!("coverage of the sequential interval: {sequential}/{EXPERIMENTS}");
    assert!(sequential >= low, "the sequential interval covers less than nominal: {sequential}");
}

#[test]
fn a_split_off_by_one_percent_of_200_000_units_is_flagged_and_one_of_a_tenth_of_that_is_not() {
    let flagged = srm_p_value(&[101_000.0, 99_000.0], &[0.5, 0.5]).expect("a p-value");
    let fine = srm_p_value(&[100_100.0, 99_900.0], &[0.5, 0.5]).expect("a p-value");
    eprintln!("SRM p-values: 101,000/99,000 {flagged:.3e}; 100,100/99,900 {fine:.3}");
    assert!(flagged < 0.001);
    assert!(fine > 0.001);
}

/// Post-exposure values correlated (or not) with a pre-exposure covariate, as CUPED statistics
/// and as the plain post-exposure mean.
fn cuped_arm(rng: &mut ChaCha8Rng, slope: f64, shift: f64) -> (Statistic, Statistic) {
    let pre_values = Normal::new(50.0, 10.0).expect("a valid normal");
    let noise = Normal::new(10.0 + shift, 4.0).expect("a valid normal");
    let (mut post, mut pre, mut products) = (Sums::default(), Sums::default(), 0.0);
    for _ in 0..1000 {
        let before = pre_values.sample(rng);
        let after = slope * before + noise.sample(rng);
        post.add(after);
        pre.add(before);
        products += after * before;
    }
    let adjusted = Statistic::RegressionAdjusted {
        n: post.n,
        post_sum: post.sum,
        post_sum_squares: post.sum_squares,
        pre_sum: pre.sum,
        pre_sum_squares: pre.sum_squares,
        post_pre_sum_of_products: products,
    };
    (adjusted, post.statistic())
}

fn width(c: &Comparison) -> f64 {
    assert!(c.error.is_none(), "{:?}", c.error);
    c.ci_high - c.ci_low
}

#[test]
fn cuped_narrows_the_interval_when_the_covariate_correlates_with_the_metric() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let s = settings(Engine::Frequentist, DifferenceType::Absolute, None);
    let mut ratios = Vec::new();
    for _ in 0..50 {
        let (a_cuped, a_plain) = cuped_arm(&mut rng, 0.8, 0.0);
        let (b_cuped, b_plain) = cuped_arm(&mut rng, 0.8, 0.5);
        ratios.push(width(&compare(&a_cuped, &b_cuped, &s)) / width(&compare(&a_plain, &b_plain, &s)));
    }
    let worst = ratios.iter().copied().fold(0.0, f64::max);
    eprintln!("CUPED interval width / plain width, correlation ~0.9: at most {worst:.3}");
    // With correlation ρ ≈ 0.89 the variance shrinks by 1 − ρ² ≈ 0.2, the width to ≈ 0.45.
    assert!(worst < 0.6, "CUPED did not narrow the interval enough: {worst}");

    let (a_cuped, a_plain) = cuped_arm(&mut rng, 0.0, 0.0);
    let (b_cuped, b_plain) = cuped_arm(&mut rng, 0.0, 0.5);
    let uncorrelated = width(&compare(&a_cuped, &b_cuped, &s)) / width(&compare(&a_plain, &b_plain, &s));
    eprintln!("CUPED interval width / plain width, no correlation: {uncorrelated:.3}");
    assert!((0.95..=1.01).contains(&uncorrelated), "an uncorrelated covariate changed the width: {uncorrelated}");
}

#[test]
fn corrected_p_values_are_monotone_no_smaller_than_raw_and_at_most_one() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    for _ in 0..2000 {
        let m = rng.random_range(1..=30);
        let mut p: Vec<f64> = (0..m).map(|_| rng.random::<f64>().powi(3)).collect();
        // Ties, zeros and ones, which the sort must handle like any other value.
        if m > 2 {
            p[1] = p[0];
            p[m - 1] = [0.0, 1.0, p[0]][rng.random_range(0..3)];
        }
        let holm = adjust_p_values(&p, Correction::Holm);
        let bh = adjust_p_values(&p, Correction::BenjaminiHochberg);
        for i in 0..m {
            // BH divides by rank/m where Holm multiplies by m, so at rank 1 they may differ in
            // the last bit (as in statsmodels).
            let bh_below_holm = bh[i] <= holm[i] * (1.0 + 1e-15);
            assert!(p[i] <= bh[i] && bh_below_holm && holm[i] <= 1.0, "{p:?}: BH {bh:?}, Holm {holm:?}");
            assert!(holm[i] <= (p[i] * m as f64).min(1.0), "Holm above Bonferroni: {p:?} {holm:?}");
            for j in 0..m {
                if p[i] <= p[j] {
                    assert!(holm[i] <= holm[j] && bh[i] <= bh[j], "order not kept: {p:?} {holm:?} {bh:?}");
                }
            }
        }
        if m == 1 {
            assert_eq!((holm[0], bh[0]), (p[0], p[0]));
        }
    }
}
