//! The crate as a caller sees it: inputs gbstats never receives are refused with a reason, no
//! input yields a NaN without an error, the Welch test is gbstats' absolute test, and the JSON
//! shapes the server will store.

use avsb_stats::{
    compare, srm_p_value, welch_t_test, ComparisonError, DifferenceType, Engine, SampleSummary, Settings, Statistic,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn frequentist(difference_type: DifferenceType) -> Settings {
    Settings { engine: Engine::Frequentist, difference_type, ..Settings::default() }
}

const SOME: Statistic = Statistic::SampleMean { n: 100.0, sum: 500.0, sum_squares: 2900.0 };

#[test]
fn different_kinds_of_statistic_are_refused_with_a_reason() {
    let proportion = Statistic::Proportion { n: 100.0, sum: 10.0 };
    let result = compare(&proportion, &SOME, &Settings::default());
    assert!(matches!(result.error, Some(ComparisonError::InvalidInput(_))), "{result:?}");
    assert_eq!(result.error.as_ref().map(ComparisonError::code), Some("INVALID_INPUT"));
    assert_eq!((result.expected, result.chance_to_win, result.risk), (0.0, Some(0.5), Some([0.0, 0.0])));
}

#[test]
fn impossible_statistics_and_settings_are_refused() {
    let bad_statistics = [
        Statistic::Proportion { n: 10.0, sum: 11.0 },
        Statistic::SampleMean { n: -5.0, sum: 1.0, sum_squares: 1.0 },
        Statistic::SampleMean { n: 50.0, sum: f64::INFINITY, sum_squares: 1.0 },
    ];
    for bad in bad_statistics {
        let twin = match bad {
            Statistic::Proportion { .. } => Statistic::Proportion { n: 10.0, sum: 1.0 },
            _ => SOME,
        };
        let result = compare(&twin, &bad, &frequentist(DifferenceType::Relative));
        assert_eq!(result.error.as_ref().map(ComparisonError::code), Some("INVALID_INPUT"), "{bad:?}");
        assert_eq!(result.p_value, Some(1.0));
    }
    let bad_settings = [
        Settings { alpha: 0.0, ..Settings::default() },
        Settings { alpha: 1.5, ..Settings::default() },
        Settings { engine: Engine::Frequentist, sequential: Some(0.0), ..Settings::default() },
        Settings { prior: avsb_stats::Prior { mean: 0.0, variance: 0.0, proper: true }, ..Settings::default() },
    ];
    let variant = Statistic::SampleMean { n: 100.0, sum: 550.0, sum_squares: 3400.0 };
    for settings in bad_settings {
        let result = compare(&SOME, &variant, &settings);
        assert_eq!(result.error.as_ref().map(ComparisonError::code), Some("INVALID_INPUT"), "{settings:?}");
    }
}

/// A number anywhere from 1e-12 to 1e15, of either sign, or 0.
fn wild(rng: &mut ChaCha8Rng) -> f64 {
    let magnitude = 10f64.powf(rng.random_range(-12.0..15.0));
    match rng.random_range(0..5) {
        0 => 0.0,
        1 => -magnitude,
        _ => magnitude,
    }
}

/// Σx and Σx² of `n` values with this mean and spread (consistent sums), or, one time in
/// three, a sum of squares unrelated to the sum (often below what the sum allows, which makes
/// a negative variance).
fn wild_sums(rng: &mut ChaCha8Rng, n: f64) -> (f64, f64) {
    let sum = n * wild(rng);
    let spread = wild(rng).abs();
    if rng.random_bool(1.0 / 3.0) {
        (sum, wild(rng).abs())
    } else {
        (sum, (n - 1.0).max(0.0) * spread * spread + if n > 0.0 { sum * sum / n } else { 0.0 })
    }
}

/// A statistic of the given kind with wild but mostly consistent fields.
fn wild_statistic(rng: &mut ChaCha8Rng, kind: u8) -> Statistic {
    let n = [0.0, 1.0, 2.0, 3.0, 30.0, 1e3, 1e9][rng.random_range(0..7)];
    let (sum, sum_squares) = wild_sums(rng, n);
    let (other_sum, other_squares) = wild_sums(rng, n);
    let products = if rng.random_bool(0.5) { wild(rng) } else { sum * other_sum / n.max(1.0) + wild(rng) };
    match kind {
        0 => Statistic::Proportion { n, sum: (rng.random::<f64>() * n).round() },
        1 => Statistic::SampleMean { n, sum, sum_squares },
        2 => Statistic::Ratio {
            n,
            m_sum: sum,
            m_sum_squares: sum_squares,
            d_sum: other_sum,
            d_sum_squares: other_squares,
            m_d_sum_of_products: products,
        },
        _ => Statistic::RegressionAdjusted {
            n,
            post_sum: sum,
            post_sum_squares: sum_squares,
            pre_sum: other_sum,
            pre_sum_squares: other_squares,
            post_pre_sum_of_products: products,
        },
    }
}

#[test]
fn no_input_gives_a_number_that_is_not_finite_unless_an_error_says_why() {
    let mut rng = ChaCha8Rng::seed_from_u64(9);
    let engines = [Engine::Frequentist, Engine::Bayesian];
    let differences = [DifferenceType::Relative, DifferenceType::Absolute];
    let mut answered = 0;
    for _ in 0..20_000 {
        let kind = rng.random_range(0..4u8);
        let (a, b) = (wild_statistic(&mut rng, kind), wild_statistic(&mut rng, kind));
        let settings = Settings {
            engine: engines[rng.random_range(0..2)],
            difference_type: differences[rng.random_range(0..2)],
            sequential: rng.random_bool(0.3).then_some(5000.0),
            inverse: rng.random_bool(0.5),
            prior: avsb_stats::Prior { mean: 0.1, variance: 0.04, proper: rng.random_bool(0.5) },
            ..Settings::default()
        };
        let result = compare(&a, &b, &settings);
        if result.error.is_none() {
            answered += 1;
            let numbers = [result.expected, result.ci_low, result.ci_high, result.uplift_stddev];
            let optional = [result.p_value, result.chance_to_win, result.risk.map(|r| r[0]), result.risk.map(|r| r[1])];
            assert!(
                numbers.into_iter().chain(optional.into_iter().flatten()).all(f64::is_finite),
                "{a:?} {b:?} {result:?}"
            );
            assert!(result.ci_low <= result.ci_high, "{result:?}");
        }
    }
    assert!(answered > 3000, "too few inputs were answered to test anything: {answered}");
}

#[test]
fn the_welch_test_is_gbstats_absolute_test_of_the_variant_against_the_control() {
    let (control, variant) = (SOME, Statistic::SampleMean { n: 80.0, sum: 440.0, sum_squares: 2700.0 });
    let gbstats = compare(&control, &variant, &frequentist(DifferenceType::Absolute));
    let summary = |n: f64, sum: f64, sum_squares: f64| SampleSummary {
        mean: sum / n,
        std: ((sum_squares - sum * sum / n) / (n - 1.0)).sqrt(),
        n,
    };
    let welch = welch_t_test(&summary(80.0, 440.0, 2700.0), &summary(100.0, 500.0, 2900.0)).expect("a result");
    let p_value = gbstats.p_value.expect("a p-value");
    assert!((p_value - welch.p_value).abs() < 1e-12, "{p_value} vs {}", welch.p_value);
    assert!((gbstats.expected - 0.5).abs() < 1e-12);
    assert!(welch_t_test(&summary(1.0, 1.0, 1.0), &summary(10.0, 1.0, 1.0)).is_none());
}

#[test]
fn srm_refuses_what_it_cannot_test() {
    assert_eq!(srm_p_value(&[10.0], &[1.0]), None);
    assert_eq!(srm_p_value(&[10.0, 20.0], &[0.5]), None);
    assert_eq!(srm_p_value(&[10.0, -1.0], &[0.5, 0.5]), None);
    assert_eq!(srm_p_value(&[10.0, 10.0], &[0.0, 0.0]), None);
    assert_eq!(srm_p_value(&[0.0, 0.0], &[0.5, 0.5]), Some(1.0));
}

#[test]
fn settings_and_statistics_read_from_json_with_gbstats_defaults_for_what_is_left_out() -> anyhow::Result<()> {
    let settings: Settings = serde_json::from_str(r#"{"engine": "frequentist", "sequential": 5000}"#)?;
    assert_eq!(settings, Settings { engine: Engine::Frequentist, sequential: Some(5000.0), ..Settings::default() });
    assert_eq!(Settings::default().alpha, 0.05);
    assert_eq!(Settings::default().engine, Engine::Bayesian);
    let statistic: Statistic = serde_json::from_str(r#"{"type": "proportion", "n": 10, "sum": 3}"#)?;
    assert_eq!(statistic, Statistic::Proportion { n: 10.0, sum: 3.0 });
    let failed = compare(&statistic, &SOME, &Settings::default());
    let json = serde_json::to_value(&failed)?;
    assert_eq!(json["error"]["code"], "INVALID_INPUT");
    Ok(())
}
