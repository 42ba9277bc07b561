"""W1–W4 of the shared performance anchors, for A vs B and for GrowthBook 4.x.

The A vs B side is the matrix of ``crates/avsb-core/benches/workloads.rs`` (the Rust engine's
benchmark), test for test; the GrowthBook side expresses the same tests as GrowthBook features:

- W1: a boolean test, 50/50, hashed on the user identifier (GrowthBook: one experiment rule on
  ``id``).
- W2: a string test whose three rules are checked in order (country in [US, CA] -> red,
  plan == 'pro' -> green, version >= 2.0.0 -> blue), else a 34/33/33 split (GrowthBook: three
  force rules with ``$in``, ``$eq`` and ``$vgte`` conditions, then a 34/33/33 experiment).
- W3 (200 tests) and W4 (10,000 tests): half of each kind, ``w1_<i>`` for even ``i`` and
  ``w2_<i>`` for odd ``i``.

Standard library only, so the benchmark can generate its files anywhere.
"""

from __future__ import annotations

from typing import Any

# The attributes of the timed W2/W3 users: they miss all three rules (the worst case).
MISS_ALL_RULES = {"country": "DE", "plan": "free", "version": "1.9.3.0"}
# Users that hit each rule in turn, for the sanity checks.
HIT_COUNTRY = {"country": "US", "plan": "free", "version": "1.9.3.0"}
HIT_PLAN = {"country": "DE", "plan": "pro", "version": "1.9.3.0"}
HIT_VERSION = {"country": "DE", "plan": "free", "version": "2.1.0.0"}

W2_SPLIT_VALUES = ("grey", "red", "blue")


def w1_test(name: str) -> dict[str, Any]:
    """W1 as a Proctor test: one boolean test, 50/50 on USER."""
    return {
        "version": "1", "salt": name, "testType": "USER", "rule": None, "constants": {},
        "buckets": [
            {"name": "off", "value": 0, "payload": {"booleanValue": False}},
            {"name": "on", "value": 1, "payload": {"booleanValue": True}},
        ],
        "allocations": [{"rule": None, "ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}],
    }


def w2_test(name: str) -> dict[str, Any]:
    """W2 as a Proctor test: three rules in order, then a 34/33/33 split."""
    return {
        "version": "1", "salt": name, "testType": "USER", "rule": None,
        "constants": {"COUNTRIES": ["US", "CA"]},
        "buckets": [
            {"name": "control", "value": 0, "payload": {"stringValue": "grey"}},
            {"name": "red", "value": 1, "payload": {"stringValue": "red"}},
            {"name": "green", "value": 2, "payload": {"stringValue": "green"}},
            {"name": "blue", "value": 3, "payload": {"stringValue": "blue"}},
        ],
        "allocations": [
            {"rule": "${proctor:contains(COUNTRIES, country)}", "ranges": [{"bucketValue": 1, "length": 1.0}]},
            {"rule": "${plan == 'pro'}", "ranges": [{"bucketValue": 2, "length": 1.0}]},
            {"rule": "${version >= proctor:version('2.0.0.0')}", "ranges": [{"bucketValue": 3, "length": 1.0}]},
            {"rule": None, "ranges": [
                {"bucketValue": 0, "length": 0.34}, {"bucketValue": 1, "length": 0.33}, {"bucketValue": 3, "length": 0.33},
            ]},
        ],
    }


def schema() -> dict[str, Any]:
    """The Pipet configuration (context schema) W2's rules are compiled against."""
    return {
        "context": {
            "country": {"source": "QUERY", "type": "String"},
            "plan": {"source": "QUERY", "type": "String"},
            "version": {"source": "QUERY", "type": "ReleaseVersion"},
        },
        "identifiers": {"USER": {"source": "QUERY"}},
    }


def names(n: int) -> list[str]:
    """The names of a matrix of ``n`` tests, in order (W3: 200, W4: 10,000)."""
    return [f"w1_{i}" if i % 2 == 0 else f"w2_{i}" for i in range(n)]


def matrix(n: int) -> dict[str, Any]:
    """A Proctor test matrix of ``n`` tests, half of each kind."""
    tests = {name: (w1_test(name) if name.startswith("w1_") else w2_test(name)) for name in names(n)}
    return {"audit": {"version": "1", "updated": 1, "updatedBy": "bench"}, "tests": tests}


def gb_w1_feature(name: str) -> dict[str, Any]:
    """W1 as a GrowthBook feature: a 50/50 experiment on ``id``."""
    return {
        "defaultValue": False,
        "rules": [{
            "key": name, "seed": name, "hashAttribute": "id", "hashVersion": 2,
            "variations": [False, True], "weights": [0.5, 0.5],
        }],
    }


def gb_w2_feature(name: str) -> dict[str, Any]:
    """W2 as a GrowthBook feature: three conditional force rules, then a 34/33/33 experiment."""
    return {
        "defaultValue": "grey",
        "rules": [
            {"condition": {"country": {"$in": ["US", "CA"]}}, "force": "red"},
            {"condition": {"plan": {"$eq": "pro"}}, "force": "green"},
            {"condition": {"version": {"$vgte": "2.0.0"}}, "force": "blue"},
            {
                "key": name, "seed": name, "hashAttribute": "id", "hashVersion": 2,
                "variations": list(W2_SPLIT_VALUES), "weights": [0.34, 0.33, 0.33],
            },
        ],
    }


def gb_features(n: int) -> dict[str, Any]:
    """GrowthBook's ``features`` for the same ``n`` tests."""
    return {name: (gb_w1_feature(name) if name.startswith("w1_") else gb_w2_feature(name)) for name in names(n)}


def users(n: int, start: int = 0) -> list[str]:
    """Distinct user identifiers, as in the Rust benchmark (``user-0000002a``)."""
    return [f"user-{i:08x}" for i in range(start, start + n)]
