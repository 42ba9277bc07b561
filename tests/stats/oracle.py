"""The oracle of spec/stats: each kind of case computed by gbstats 0.8.0, scipy or statsmodels.

generate.py writes the cases' expectations with these functions; test_gbstats_agreement.py
recomputes them from the files' inputs, so the files cannot drift from the oracle. The case
format is in spec/stats/README.md.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np
from scipy.stats import ttest_ind_from_stats
from scipy.stats._stats_py import _unequal_var_ttest_denom
from statsmodels.stats.multitest import multipletests

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
)
from gbstats.utils import check_srm


def statistic(d: Dict[str, Any]):
    """A spec statistic as the gbstats object GrowthBook builds for it (gbstats.gbstats.
    variation_statistic_from_metric_row with count metrics)."""
    n = int(d["n"])
    kind = d["type"]
    if kind == "proportion":
        return ProportionStatistic(n=n, sum=d["sum"])
    if kind == "sample_mean":
        return SampleMeanStatistic(n=n, sum=d["sum"], sum_squares=d["sum_squares"])
    if kind == "ratio":
        return RatioStatistic(
            n=n,
            m_statistic=SampleMeanStatistic(n=n, sum=d["m_sum"], sum_squares=d["m_sum_squares"]),
            d_statistic=SampleMeanStatistic(n=n, sum=d["d_sum"], sum_squares=d["d_sum_squares"]),
            m_d_sum_of_products=d["m_d_sum_of_products"],
        )
    if kind == "regression_adjusted":
        return RegressionAdjustedStatistic(
            n=n,
            post_statistic=SampleMeanStatistic(n=n, sum=d["post_sum"], sum_squares=d["post_sum_squares"]),
            pre_statistic=SampleMeanStatistic(n=n, sum=d["pre_sum"], sum_squares=d["pre_sum_squares"]),
            post_pre_sum_of_products=d["post_pre_sum_of_products"],
            theta=0,
        )
    raise ValueError(f"unknown statistic type {kind!r}")


def configured_test(case: Dict[str, Any]):
    """The gbstats test class and config for a case's settings (as gbstats.gbstats.
    get_configured_test, with the settings' alpha and prior passed to the Bayesian test too)."""
    s = case["settings"]
    a, b = statistic(case["control"]), statistic(case["variant"])
    if s["engine"] == "frequentist":
        if s["sequential"] is None:
            return TwoSidedTTest(a, b, FrequentistConfig(difference_type=s["difference_type"], alpha=s["alpha"]))
        return SequentialTwoSidedTTest(
            a,
            b,
            SequentialConfig(
                difference_type=s["difference_type"],
                alpha=s["alpha"],
                sequential_tuning_parameter=s["sequential"],
            ),
        )
    prior = s["prior"]
    return EffectBayesianABTest(
        a,
        b,
        EffectBayesianConfig(
            difference_type=s["difference_type"],
            alpha=s["alpha"],
            inverse=s["inverse"],
            prior_effect=GaussianPrior(mean=prior["mean"], variance=prior["variance"], proper=prior["proper"]),
            prior_type="relative",
        ),
    )


def _number(x) -> float:
    return float(x)


def compare(case: Dict[str, Any]) -> Dict[str, Any]:
    """gbstats' compute_result for the case, in the spec's field names.

    One input makes gbstats raise instead of answering: a Bayesian absolute lift whose control
    mean is 0 rescales the prior's variance to 0 and divides by it. Such a case expects the
    zero-baseline error, and says that gbstats raises in `gbstats_raises`.
    """
    bayesian = case["settings"]["engine"] == "bayesian"
    try:
        result = configured_test(case).compute_result()
    except ZeroDivisionError:
        if not (bayesian and case["settings"]["difference_type"] == "absolute"):
            raise
        return {
            "expected": 0.0,
            "ci_low": 0.0,
            "ci_high": 0.0,
            "uplift_stddev": 0.0,
            "p_value": None,
            "chance_to_win": 0.5,
            "risk": [0.0, 0.0],
            "error": "ZERO_NEGATIVE_BASELINE_VARIATION",
            "gbstats_raises": "ZeroDivisionError",
        }
    return {
        "expected": _number(result.expected),
        "ci_low": _number(result.ci[0]),
        "ci_high": _number(result.ci[1]),
        "uplift_stddev": _number(result.uplift.stddev),
        "p_value": None if bayesian else _number(result.p_value),
        "chance_to_win": _number(result.chance_to_win) if bayesian else None,
        "risk": [_number(r) for r in result.risk] if bayesian else None,
        "error": result.error_message,
    }


def srm(case: Dict[str, Any]) -> Dict[str, Any]:
    """gbstats.utils.check_srm."""
    return {"p_value": _number(check_srm(case["observed"], case["expected_shares"]))}


def adjust(case: Dict[str, Any]) -> Dict[str, Any]:
    """statsmodels' multipletests, holm and fdr_bh."""
    p = np.asarray(case["p_values"], dtype=float)
    return {
        "holm": [_number(x) for x in multipletests(p, method="holm")[1]],
        "benjamini_hochberg": [_number(x) for x in multipletests(p, method="fdr_bh")[1]],
    }


def welch(case: Dict[str, Any]) -> Dict[str, Any]:
    """scipy's ttest_ind_from_stats(equal_var=False), with its Welch degrees of freedom."""
    a, b = case["first"], case["second"]
    result = ttest_ind_from_stats(a["mean"], a["std"], a["n"], b["mean"], b["std"], b["n"], equal_var=False)
    df, _ = _unequal_var_ttest_denom(a["std"] ** 2, a["n"], b["std"] ** 2, b["n"])
    return {"statistic": _number(result.statistic), "df": _number(df), "p_value": _number(result.pvalue)}


def cap(case: Dict[str, Any]) -> Dict[str, Any]:
    """The capping threshold: the value itself, or numpy's default (linear) quantile, which is
    SQL's PERCENTILE_CONT."""
    capping = case["capping"]
    if "absolute" in capping:
        return {"threshold": _number(capping["absolute"])}
    return {"threshold": _number(np.quantile(np.asarray(case["values"], dtype=float), capping["percentile"]))}


ORACLES = {"compare": compare, "srm": srm, "adjust": adjust, "welch": welch, "cap": cap}
