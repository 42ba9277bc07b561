"""spec/stats/*.json against its oracle: every case's expectations are recomputed live with
gbstats 0.8.0, scipy and statsmodels (oracle.py) and must equal what the file says, so the
files cannot drift from the oracle. The Rust crate is held to the same files by
crates/avsb-stats/tests/spec_stats.rs.
"""

from __future__ import annotations

import json
import math
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from scipy.stats import ttest_ind_from_stats

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oracle  # noqa: E402

SPEC = Path(__file__).resolve().parents[2] / "spec" / "stats"
FILES = sorted(SPEC.glob("*.json"))
# The files are written by the same code on the same pinned versions; the tolerance only
# allows for a last-bit difference in a vectorised libm between processors.
RELATIVE = 1e-12


def cases():
    """Every case of every file, as (kind, case) parameters named file:case."""
    params = []
    for path in FILES:
        document = json.loads(path.read_text())
        for case in document["cases"]:
            params.append(pytest.param(document["kind"], case, id=f"{path.stem}:{case['name']}"))
    return params


def same(got, want, where: str) -> None:
    if isinstance(want, dict):
        assert set(got) == set(want), f"{where}: fields {sorted(got)} != {sorted(want)}"
        for key in want:
            same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{where}: {got} != {want}"
        for i, (g, w) in enumerate(zip(got, want)):
            same(g, w, f"{where}[{i}]")
    elif isinstance(want, float) and isinstance(got, float):
        assert math.isclose(got, want, rel_tol=RELATIVE, abs_tol=1e-300), f"{where}: oracle {got!r}, file {want!r}"
    else:
        assert got == want, f"{where}: oracle {got!r}, file {want!r}"


def test_the_oracle_is_the_pinned_gbstats():
    assert version("gbstats") == "0.8.0"


def test_there_are_enough_cases_with_unique_names():
    names = [p.values[1]["name"] for p in cases()]
    assert len(names) >= 60
    assert len(names) == len(set(names))


@pytest.mark.parametrize("kind,case", cases())
def test_the_file_says_what_the_oracle_computes(kind, case):
    same(oracle.ORACLES[kind](case), case["expect"], case["name"])


@pytest.mark.parametrize("kind,case", [p for p in cases() if p.values[1]["expect"].get("gbstats_raises")])
def test_where_a_case_says_gbstats_raises_it_does(kind, case):
    with pytest.raises(ZeroDivisionError):
        oracle.configured_test(case).compute_result()


def welch_equivalent(case) -> bool:
    s = case["settings"]
    return (
        case["control"]["type"] == "sample_mean"
        and s["engine"] == "frequentist"
        and s["difference_type"] == "absolute"
        and s["sequential"] is None
        and case["expect"]["error"] is None
    )


@pytest.mark.parametrize("kind,case", [p for p in cases() if p.values[0] == "compare" and welch_equivalent(p.values[1])])
def test_gbstats_absolute_frequentist_test_is_scipys_welch_test(kind, case):
    """For a mean metric, gbstats' absolute fixed-horizon test is scipy's Welch test of the
    variant against the control (p-values equal where gbstats' 1 - cdf has not rounded to 0)."""
    test = oracle.configured_test(case)
    a, b = test.stat_a, test.stat_b
    scipy = ttest_ind_from_stats(b.mean, b.stddev, b.n, a.mean, a.stddev, a.n, equal_var=False)
    assert math.isclose(case["expect"]["p_value"], scipy.pvalue, rel_tol=1e-9, abs_tol=1e-15)
    assert math.isclose(case["expect"]["expected"], b.mean - a.mean, rel_tol=1e-12)
