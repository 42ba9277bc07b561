"""Writes spec/stats/*.json: the statistics cases, with every expectation computed by gbstats
0.8.0, scipy or statsmodels (oracle.py). Deterministic: the inputs are fixed numbers or drawn
from seeded numpy generators, so running it again rewrites the same files.

Run in the stats virtualenv (scripts/stats-env):

    "$(scripts/stats-env | tail -n 1)/bin/python" tests/stats/generate.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

import oracle

SPEC = Path(__file__).resolve().parents[2] / "spec" / "stats"


# Inputs ------------------------------------------------------------------------------------


def proportion(n: int, conversions: int) -> Dict[str, Any]:
    return {"type": "proportion", "n": n, "sum": float(conversions)}


def sample_mean(values: np.ndarray) -> Dict[str, Any]:
    values = np.asarray(values, dtype=float)
    return {
        "type": "sample_mean",
        "n": int(values.size),
        "sum": float(values.sum()),
        "sum_squares": float((values**2).sum()),
    }


def sample_mean_moments(n: int, mean: float, sd: float) -> Dict[str, Any]:
    """Sums of a sample of n units with exactly this mean and sample standard deviation,
    for sizes too large to draw."""
    total = n * mean
    return {"type": "sample_mean", "n": n, "sum": total, "sum_squares": (n - 1) * sd**2 + total**2 / n}


def ratio(numerator: np.ndarray, denominator: np.ndarray) -> Dict[str, Any]:
    m, d = np.asarray(numerator, dtype=float), np.asarray(denominator, dtype=float)
    return {
        "type": "ratio",
        "n": int(m.size),
        "m_sum": float(m.sum()),
        "m_sum_squares": float((m**2).sum()),
        "d_sum": float(d.sum()),
        "d_sum_squares": float((d**2).sum()),
        "m_d_sum_of_products": float((m * d).sum()),
    }


def cuped(post: np.ndarray, pre: np.ndarray) -> Dict[str, Any]:
    post, pre = np.asarray(post, dtype=float), np.asarray(pre, dtype=float)
    return {
        "type": "regression_adjusted",
        "n": int(post.size),
        "post_sum": float(post.sum()),
        "post_sum_squares": float((post**2).sum()),
        "pre_sum": float(pre.sum()),
        "pre_sum_squares": float((pre**2).sum()),
        "post_pre_sum_of_products": float((post * pre).sum()),
    }


def settings(
    engine: str = "frequentist",
    difference: str = "relative",
    alpha: float = 0.05,
    sequential: Optional[float] = None,
    prior: Optional[Dict[str, Any]] = None,
    inverse: bool = False,
) -> Dict[str, Any]:
    return {
        "engine": engine,
        "difference_type": difference,
        "alpha": alpha,
        "sequential": sequential,
        "prior": prior or {"mean": 0.0, "variance": 1.0, "proper": False},
        "inverse": inverse,
    }


def case(name: str, description: str, control, variant, s: Dict[str, Any]) -> Dict[str, Any]:
    return {"name": name, "description": description, "control": control, "variant": variant, "settings": s}


def rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


# Shared data sets, each drawn once from its own seed ----------------------------------------


def datasets() -> Dict[str, Any]:
    r = rng(20240601)
    normal_a = r.normal(10.0, 3.0, 500)
    normal_b = r.normal(10.5, 3.5, 500)
    small_a = np.round(r.normal(5.0, 2.0, 5), 3)
    small_b = np.round(r.normal(6.0, 2.5, 7), 3)
    negative_a = r.normal(-5.0, 2.0, 400)
    negative_b = r.normal(-4.5, 2.0, 420)
    poisson_a = r.poisson(1.2, 3000)
    poisson_b = r.poisson(1.3, 3000)
    orders_a = r.poisson(2.0, 800) + 1
    orders_b = r.poisson(2.1, 780) + 1
    revenue_a = orders_a * r.gamma(2.0, 15.0, 800)
    revenue_b = orders_b * r.gamma(2.0, 16.0, 780)
    pre_a = r.normal(50.0, 10.0, 1000)
    pre_b = r.normal(50.0, 10.0, 1000)
    post_a = 0.8 * pre_a + r.normal(10.0, 4.0, 1000)
    post_b = 0.8 * pre_b + r.normal(11.0, 4.0, 1000)
    weak_post_a = 0.05 * pre_a + r.normal(50.0, 9.0, 1000)
    weak_post_b = 0.05 * pre_b + r.normal(50.5, 9.0, 1000)
    return {
        "proportion": (proportion(10000, 1000), proportion(10000, 1100)),
        "proportion_flat": (proportion(5000, 250), proportion(5000, 260)),
        "proportion_unequal": (proportion(8000, 640), proportion(2000, 190)),
        "proportion_large": (proportion(2_000_000, 100_000), proportion(2_000_000, 101_000)),
        "proportion_tiny": (proportion(20, 4), proportion(25, 9)),
        "proportion_loser": (proportion(12000, 1500), proportion(12000, 1380)),
        "normal": (sample_mean(normal_a), sample_mean(normal_b)),
        "small": (sample_mean(small_a), sample_mean(small_b)),
        "million": (sample_mean_moments(1_000_000, 20.0, 8.0), sample_mean_moments(1_000_000, 20.03, 8.1)),
        "negative": (sample_mean(negative_a), sample_mean(negative_b)),
        "poisson": (sample_mean(poisson_a), sample_mean(poisson_b)),
        "ratio": (ratio(revenue_a, orders_a), ratio(revenue_b, orders_b)),
        "ratio_small": (ratio(revenue_a[:12], orders_a[:12]), ratio(revenue_b[:9], orders_b[:9])),
        "cuped": (cuped(post_a, pre_a), cuped(post_b, pre_b)),
        "cuped_weak": (cuped(weak_post_a, pre_a), cuped(weak_post_b, pre_b)),
        "huge": (sample_mean_moments(50_000, 10.0, 2.0), sample_mean_moments(50_000, 10.4, 2.0)),
    }


# Case files --------------------------------------------------------------------------------


def frequentist_cases(d) -> List[Dict[str, Any]]:
    out = []
    plain = [
        ("proportion", "conversion 10% vs 11%, 10,000 units each"),
        ("proportion_flat", "conversion 5.0% vs 5.2%: not significant"),
        ("proportion_unequal", "unequal arms, 8,000 vs 2,000 units"),
        ("proportion_large", "2 million units per arm: Welch's degrees of freedom in the millions"),
        ("proportion_tiny", "20 and 25 units: few degrees of freedom"),
        ("proportion_loser", "the variant converts worse"),
        ("normal", "normal per-unit values, 500 units each"),
        ("small", "5 and 7 units: a t quantile with few degrees of freedom"),
        ("million", "a million units per arm, means 20 vs 20.03"),
        ("negative", "negative means: the relative lift divides by a negative control"),
        ("poisson", "counts per unit (Poisson)"),
        ("ratio", "a ratio metric: revenue per order"),
        ("ratio_small", "a ratio metric with 12 and 9 units"),
        ("cuped", "CUPED with a strongly correlated pre-exposure metric"),
        ("cuped_weak", "CUPED with a weakly correlated pre-exposure metric"),
        ("huge", "a lift of 4% on 50,000 units: a p-value far below 1e-16"),
    ]
    for key, description in plain:
        a, b = d[key]
        for difference in ("relative", "absolute"):
            out.append(case(f"freq-{key}-{difference}", description, a, b, settings(difference=difference)))
    for alpha in (0.01, 0.1, 0.2):
        a, b = d["proportion"]
        out.append(case(f"freq-proportion-alpha-{alpha}", f"alpha {alpha}", a, b, settings(alpha=alpha)))
        a, b = d["normal"]
        out.append(case(f"freq-normal-absolute-alpha-{alpha}", f"alpha {alpha}", a, b, settings(difference="absolute", alpha=alpha)))
    return out


def sequential_cases(d) -> List[Dict[str, Any]]:
    out = []
    for key in ("proportion", "normal", "ratio", "cuped", "proportion_large"):
        a, b = d[key]
        for tuning in (1000.0, 5000.0, 50000.0, 1e6):
            difference = "relative" if tuning in (5000.0, 1e6) else "absolute"
            out.append(
                case(
                    f"seq-{key}-{difference}-tuning-{int(tuning)}",
                    f"sequential, tuning parameter {int(tuning)}",
                    a,
                    b,
                    settings(difference=difference, sequential=tuning),
                )
            )
    a, b = d["proportion"]
    out.append(case("seq-proportion-alpha-0.01", "sequential at alpha 0.01", a, b, settings(alpha=0.01, sequential=5000.0)))
    out.append(case("seq-proportion-alpha-0.1", "sequential at alpha 0.1", a, b, settings(alpha=0.1, sequential=5000.0)))
    a, b = d["huge"]
    out.append(case("seq-huge-relative", "an e-value beyond a double's range: p-value 0", a, b, settings(sequential=5000.0)))
    a, b = d["proportion_flat"]
    out.append(case("seq-flat-relative", "no evidence: the p-value is capped at 1", a, b, settings(sequential=5000.0)))
    return out


def bayesian_cases(d) -> List[Dict[str, Any]]:
    out = []
    for key in ("proportion", "proportion_flat", "proportion_loser", "normal", "negative", "ratio", "cuped", "million", "small", "huge"):
        a, b = d[key]
        for difference in ("relative", "absolute"):
            out.append(case(f"bayes-{key}-{difference}", f"Bayesian, improper prior: {key}", a, b, settings("bayesian", difference)))
    a, b = d["proportion"]
    proper = {"mean": 0.05, "variance": 0.01, "proper": True}
    out.append(case("bayes-proportion-proper-prior-relative", "a proper prior N(0.05, 0.01) on the relative lift", a, b, settings("bayesian", prior=proper)))
    out.append(case("bayes-proportion-proper-prior-absolute", "the relative prior rescaled by the control's mean", a, b, settings("bayesian", "absolute", prior=proper)))
    a, b = d["proportion_tiny"]
    strong = {"mean": 0.0, "variance": 0.0025, "proper": True}
    out.append(case("bayes-tiny-strong-prior", "a strong prior dominates 20 and 25 units", a, b, settings("bayesian", prior=strong)))
    a, b = d["proportion_loser"]
    out.append(case("bayes-loser-inverse", "an inverse metric: lower is better, risk flipped", a, b, settings("bayesian", inverse=True)))
    a, b = d["normal"]
    out.append(case("bayes-normal-alpha-0.1", "a 90% credible interval", a, b, settings("bayesian", alpha=0.1)))
    out.append(case("bayes-normal-inverse-absolute", "an inverse metric, absolute lift", a, b, settings("bayesian", "absolute", inverse=True)))
    return out


def edge_cases() -> List[Dict[str, Any]]:
    zero_mean = sample_mean(np.array([-1.0, 1.0, -2.0, 2.0, 0.0, -1.0, 1.0]))
    spread = sample_mean(np.array([1.0, 3.0, 2.0, 5.0, 4.0]))
    constant = {"type": "sample_mean", "n": 4, "sum": 8.0, "sum_squares": 16.0}
    one_unit = {"type": "sample_mean", "n": 1, "sum": 3.0, "sum_squares": 9.0}
    empty = {"type": "sample_mean", "n": 0, "sum": 0.0, "sum_squares": 0.0}
    no_conversions = proportion(1000, 0)
    all_converted = proportion(1000, 1000)
    some = proportion(1000, 120)
    no_denominator = {"type": "ratio", "n": 50, "m_sum": 0.0, "m_sum_squares": 0.0, "d_sum": 0.0, "d_sum_squares": 0.0, "m_d_sum_of_products": 0.0}
    r = rng(7)
    orders = r.poisson(2.0, 60) + 1
    some_ratio = ratio(orders * 10.0 + r.normal(0, 3, 60), orders)
    post_a, post_b = r.normal(10, 2, 200), r.normal(10.5, 2, 200)
    constant_pre_a = cuped(post_a, np.full(200, 3.0))
    constant_pre_b = cuped(post_b, np.full(200, 3.0))
    two_a = sample_mean(np.array([1.0, 2.0]))
    two_b = sample_mean(np.array([2.0, 4.0]))
    out = []
    for engine in ("frequentist", "bayesian"):
        e = "freq" if engine == "frequentist" else "bayes"
        for difference in ("relative", "absolute"):
            s = settings(engine, difference)
            out += [
                case(f"edge-{e}-{difference}-control-no-conversions", "the control never converts: mean 0 and variance 0", no_conversions, some, s),
                case(f"edge-{e}-{difference}-variant-all-converted", "every variant unit converts: variance 0", some, all_converted, s),
                case(f"edge-{e}-{difference}-control-mean-zero", "a control mean of exactly 0 with a positive variance", zero_mean, spread, s),
                case(f"edge-{e}-{difference}-control-empty", "a control without units", empty, spread, s),
                case(f"edge-{e}-{difference}-variant-empty", "a variant without units", spread, empty, s),
                case(f"edge-{e}-{difference}-one-unit", "one unit per arm: the sample variance is 0", one_unit, one_unit, s),
                case(f"edge-{e}-{difference}-constant", "every unit has the same value: variance exactly 0", spread, constant, s),
                case(f"edge-{e}-{difference}-ratio-no-denominator", "a ratio whose control denominator sums to 0", no_denominator, some_ratio, s),
                case(f"edge-{e}-{difference}-cuped-constant-pre", "CUPED with a constant pre-exposure metric: theta 0, the plain post mean", constant_pre_a, constant_pre_b, s),
                case(f"edge-{e}-{difference}-two-units", "two units per arm: one degree of freedom each", two_a, two_b, s),
            ]
    out.append(case("edge-seq-constant", "sequential with zero variance", spread, constant, settings(sequential=5000.0)))
    return out


def srm_cases() -> List[Dict[str, Any]]:
    rows = [
        ("srm-2-balanced", [1000, 1000], [0.5, 0.5]),
        ("srm-2-flagged", [101000, 99000], [0.5, 0.5]),
        ("srm-2-fine", [100100, 99900], [0.5, 0.5]),
        ("srm-2-unequal-shares", [7100, 2900], [0.7, 0.3]),
        ("srm-2-no-units", [0, 0], [0.5, 0.5]),
        ("srm-2-extreme", [10000, 5000], [0.5, 0.5]),
        ("srm-3-balanced", [3300, 3350, 3350], [1 / 3, 1 / 3, 1 / 3]),
        ("srm-3-unequal-shares", [5000, 2600, 2400], [0.5, 0.25, 0.25]),
        ("srm-3-weights-not-normalised", [2500, 2450, 5100], [1, 1, 2]),
        ("srm-3-zero-share-arm", [1000, 980, 15], [0.5, 0.5, 0.0]),
        ("srm-5-balanced", [2010, 1985, 2003, 1990, 2012], [0.2] * 5),
        ("srm-5-unequal-shares", [4100, 1450, 1500, 1520, 1430], [0.4, 0.15, 0.15, 0.15, 0.15]),
        ("srm-5-flagged", [4000, 1500, 1500, 1500, 1900], [0.4, 0.15, 0.15, 0.15, 0.15]),
    ]
    return [{"name": n, "observed": [float(x) for x in o], "expected_shares": [float(x) for x in w]} for n, o, w in rows]


def adjust_cases() -> List[Dict[str, Any]]:
    r = rng(11)
    rows = [
        ("adjust-four", [0.01, 0.02, 0.03, 0.5]),
        ("adjust-single", [0.04]),
        ("adjust-ties", [0.01, 0.04, 0.01, 0.04]),
        ("adjust-bounds", [0.0, 1.0, 0.5, 0.0001]),
        ("adjust-capped-at-one", [0.3, 0.4, 0.5, 0.6]),
        ("adjust-unsorted", [0.2, 0.001, 0.9, 0.049, 0.05]),
        ("adjust-uniform-10", [float(x) for x in r.uniform(0, 1, 10)]),
        ("adjust-small-20", [float(x) for x in r.uniform(0, 0.05, 20)]),
    ]
    return [{"name": n, "p_values": p} for n, p in rows]


def welch_cases() -> List[Dict[str, Any]]:
    rows = [
        ("welch-basic", (10.0, 3.0, 500), (10.5, 3.5, 500)),
        ("welch-small", (5.1, 2.2, 5), (6.3, 2.9, 7)),
        ("welch-unequal-n", (1.0, 0.5, 40), (1.2, 2.0, 400)),
        ("welch-tiny-p", (10.0, 2.0, 50000), (10.4, 2.0, 50000)),
        ("welch-negative", (-5.0, 2.0, 400), (-4.5, 2.1, 420)),
        ("welch-large", (20.0, 8.0, 1_000_000), (20.03, 8.1, 1_000_000)),
        ("welch-one-zero-variance", (3.0, 0.0, 10), (4.0, 1.5, 12)),
    ]
    out = []
    for name, a, b in rows:
        out.append(
            {
                "name": name,
                "first": {"mean": a[0], "std": a[1], "n": float(a[2])},
                "second": {"mean": b[0], "std": b[1], "n": float(b[2])},
            }
        )
    return out


def cap_cases() -> List[Dict[str, Any]]:
    r = rng(3)
    revenue = [float(x) for x in np.round(r.lognormal(3.0, 1.2, 1001), 2)]
    small = [4.0, 1.0, 3.0, 2.0, 10.0]
    ties = [0.0] * 20 + [5.0] * 5 + [100.0]
    rows = [
        ("cap-revenue-p99", revenue, {"percentile": 0.99}),
        ("cap-revenue-p95", revenue, {"percentile": 0.95}),
        ("cap-revenue-median", revenue, {"percentile": 0.5}),
        ("cap-revenue-max", revenue, {"percentile": 1.0}),
        ("cap-revenue-min", revenue, {"percentile": 0.0}),
        ("cap-small-p90", small, {"percentile": 0.9}),
        ("cap-ties-p99", ties, {"percentile": 0.99}),
        ("cap-single-value", [42.0], {"percentile": 0.99}),
        ("cap-absolute", small, {"absolute": 5.0}),
    ]
    return [{"name": n, "values": v, "capping": c} for n, v, c in rows]


FILES = {
    "compare-frequentist.json": ("compare", "Fixed-horizon frequentist comparisons: gbstats.frequentist.tests.TwoSidedTTest(...).compute_result()", frequentist_cases),
    "compare-sequential.json": ("compare", "Sequential frequentist comparisons: gbstats.frequentist.tests.SequentialTwoSidedTTest(...).compute_result()", sequential_cases),
    "compare-bayesian.json": ("compare", "Bayesian comparisons: gbstats.bayesian.tests.EffectBayesianABTest(...).compute_result() (prior_type relative)", bayesian_cases),
    "compare-edge.json": ("compare", "Inputs gbstats handles specially (its error messages), on both engines", None),
    "srm.json": ("srm", "Sample ratio mismatch: gbstats.utils.check_srm(observed, expected_shares)", None),
    "adjust.json": ("adjust", "Adjusted p-values: statsmodels.stats.multitest.multipletests, methods holm and fdr_bh", None),
    "welch.json": ("welch", "Welch's t-test: scipy.stats.ttest_ind_from_stats(..., equal_var=False)", None),
    "capping.json": ("cap", "Capping thresholds: numpy.quantile (linear, SQL's PERCENTILE_CONT) or the absolute value", None),
}


def build() -> Dict[str, Dict[str, Any]]:
    d = datasets()
    makers = {
        "compare-frequentist.json": lambda: frequentist_cases(d),
        "compare-sequential.json": lambda: sequential_cases(d),
        "compare-bayesian.json": lambda: bayesian_cases(d),
        "compare-edge.json": edge_cases,
        "srm.json": srm_cases,
        "adjust.json": adjust_cases,
        "welch.json": welch_cases,
        "capping.json": cap_cases,
    }
    documents = {}
    for file, (kind, description, _) in FILES.items():
        cases = makers[file]()
        for c in cases:
            c["expect"] = oracle.ORACLES[kind](c)
        documents[file] = {"kind": kind, "description": description, "generated_by": "tests/stats/generate.py", "cases": cases}
    return documents


def main() -> None:
    SPEC.mkdir(parents=True, exist_ok=True)
    total = 0
    for file, document in build().items():
        (SPEC / file).write_text(json.dumps(document, indent=1, allow_nan=False) + "\n")
        total += len(document["cases"])
        print(f"{file}: {len(document['cases'])} cases")
    print(f"{total} cases")


if __name__ == "__main__":
    main()
