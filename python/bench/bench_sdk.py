"""The Python SDK beside GrowthBook 4.x, on W1–W4 of the shared performance anchors.

Run it through ``scripts/bench-python`` (which builds the native module in release first), or
directly with the project's virtualenv::

    python python/bench/bench_sdk.py [--reps 5] [--scale 1.0] [--json out.json]

What is measured, as ``performance-anchors.md`` measures the peers:

- every measured call builds that library's per-user context from a plain dict: for A vs B
  ``server.for_user({'kind': 'user', 'key': uid, ...})`` then the getter; for GrowthBook its
  fastest path, one shared instance with ``gb.set_attributes({...})`` then ``is_on`` (W1) or
  ``get_feature_value`` (not request-safe, which is why it is the fastest);
- a distinct user on every call (identifiers made before the timed loops);
- the libraries interleaved rep by rep (the first one alternating), min and median of the reps;
- W1 and W2 in ns per evaluation, W3 in µs per set of 200 tests (``all_flags()`` after one
  ``for_user``; GrowthBook: 200 ``get_feature_value`` after one ``set_attributes``);
- W4 in fresh processes: seconds to load 10,000 tests from a file and the resident memory after.

Before timing anything, both libraries must give sensible answers (a 50/50 split for W1, the
34/33/33 split and no rule hit for the timed W2 users, each W2 rule when it should hit, 200
assigned tests for W3), so a broken path cannot be measured by accident.

The garbage collector is off inside the timed loops (as ``timeit`` does) for both libraries.
Other work in the same checkout may rebuild the native module (even in dev mode) meanwhile:
the run then stops with status 2 instead of printing numbers from two different builds.
"""

from __future__ import annotations

import argparse
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads  # noqa: E402

TARGETS = {"W1": 10.0, "W2": 20.0, "W3": 20.0}
W1_TEST, W2_TEST = "w1_0", "w2_1"
W3_SIZE, W4_SIZE = 200, 10_000

# Calls per timed block at --scale 1 (sized so every block lasts ~0.05–0.5 s on the 2-core box).
CALLS = {
    ("W1", "avsb"): 200_000,
    ("W1", "growthbook"): 40_000,
    ("W2", "avsb"): 200_000,
    ("W2", "growthbook"): 20_000,
    ("W3", "avsb"): 4_000,
    ("W3", "growthbook"): 200,
    ("W1", "floor"): 200_000,
    ("W2", "floor"): 200_000,
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the timed loops ------------------------------------------------------------------------
# Each takes its prepared state and a list of distinct user ids, and returns elapsed ns. The
# context dict is built inside the loop: it is part of what an application does per request.


def avsb_w1(server: Any, ids: list[str]) -> int:
    for_user = server.for_user
    t0 = time.perf_counter_ns()
    for uid in ids:
        for_user({"kind": "user", "key": uid}).get_bool_flag(W1_TEST, False)
    return time.perf_counter_ns() - t0


def avsb_w2(server: Any, ids: list[str]) -> int:
    for_user = server.for_user
    t0 = time.perf_counter_ns()
    for uid in ids:
        for_user({"kind": "user", "key": uid, "country": "DE", "plan": "free", "version": "1.9.3.0"}).get_string_flag(
            W2_TEST, "grey"
        )
    return time.perf_counter_ns() - t0


def avsb_w3(server: Any, ids: list[str]) -> int:
    for_user = server.for_user
    t0 = time.perf_counter_ns()
    for uid in ids:
        for_user({"kind": "user", "key": uid, "country": "DE", "plan": "free", "version": "1.9.3.0"}).all_flags()
    return time.perf_counter_ns() - t0


def gb_w1(gb: Any, ids: list[str]) -> int:
    # is_on: GrowthBook's boolean getter, a few per cent quicker than get_feature_value.
    set_attributes, is_on = gb.set_attributes, gb.is_on
    t0 = time.perf_counter_ns()
    for uid in ids:
        set_attributes({"id": uid})
        is_on(W1_TEST)
    return time.perf_counter_ns() - t0


def gb_w2(gb: Any, ids: list[str]) -> int:
    set_attributes, get = gb.set_attributes, gb.get_feature_value
    t0 = time.perf_counter_ns()
    for uid in ids:
        set_attributes({"id": uid, "country": "DE", "plan": "free", "version": "1.9.3.0"})
        get(W2_TEST, "grey")
    return time.perf_counter_ns() - t0


def gb_w3_factory(defaults: list[tuple[str, Any]]) -> Callable[[Any, list[str]], int]:
    def gb_w3(gb: Any, ids: list[str]) -> int:
        set_attributes, get = gb.set_attributes, gb.get_feature_value
        t0 = time.perf_counter_ns()
        for uid in ids:
            set_attributes({"id": uid, "country": "DE", "plan": "free", "version": "1.9.3.0"})
            for name, default in defaults:
                get(name, default)
        return time.perf_counter_ns() - t0

    return gb_w3


def floor_w1(_: Any, ids: list[str]) -> int:
    """The harness alone: the loop and the context dict, no library call."""
    t0 = time.perf_counter_ns()
    for uid in ids:
        {"kind": "user", "key": uid}  # noqa: B018 - the dict is what is measured
    return time.perf_counter_ns() - t0


def floor_w2(_: Any, ids: list[str]) -> int:
    t0 = time.perf_counter_ns()
    for uid in ids:
        {"kind": "user", "key": uid, "country": "DE", "plan": "free", "version": "1.9.3.0"}  # noqa: B018
    return time.perf_counter_ns() - t0


def busy_cores(window: float = 1.0) -> float:
    """How many cores the machine (this process included) kept busy over ``window`` seconds."""

    def busy_seconds() -> float:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")

    before = busy_seconds()
    time.sleep(window)
    return (busy_seconds() - before) / window


def wait_quiet(max_wait: float) -> None:
    """Waits (at most ``max_wait`` s) until other processes leave the machine idle: a build on
    the other core slows this single-threaded benchmark through shared caches and clocks."""
    if max_wait <= 0 or not os.path.exists("/proc/stat"):
        return
    start = time.monotonic()
    cores = busy_cores()
    if cores < 0.2:
        return
    log(f"the machine is busy ({cores:.2f} cores); waiting up to {max_wait:.0f} s for quiet")
    while time.monotonic() - start < max_wait:
        cores = busy_cores(2.0)
        if cores < 0.2:
            break
    log(f"  ... waited {time.monotonic() - start:.0f} s (busy {cores:.2f} cores)")


def timed(fn: Callable[[Any, list[str]], int], state: Any, ids: list[str]) -> int:
    gc.collect()
    gc.disable()
    try:
        return fn(state, ids)
    finally:
        gc.enable()


# --- sanity checks: both libraries must give varied, sensible answers -----------------------


class BrokenBenchmark(AssertionError):
    """A library answered something the workload rules out: the benchmark would measure a bug."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise BrokenBenchmark(message)


def check_split(library: str, what: str, counts: Counter, expected: dict[Any, float], tolerance: float = 0.02) -> None:
    total = sum(counts.values())
    check(set(counts) <= set(expected), f"{library} {what}: unexpected values {dict(counts)}")
    for value, share in expected.items():
        got = counts[value] / total
        check(abs(got - share) <= tolerance, f"{library} {what}: {value!r} got {got:.3f} of {total}, expected {share:.2f}")


def sanity_avsb(server: Any, names: list[str], sample: list[str]) -> None:
    w1 = Counter(server.for_user({"kind": "user", "key": u}).get_bool_flag(W1_TEST, None) for u in sample)
    check_split("avsb", "W1", w1, {False: 0.5, True: 0.5})
    miss = {"kind": "user", **workloads.MISS_ALL_RULES}
    w2 = Counter(server.for_user({**miss, "key": u}).get_string_flag(W2_TEST, None) for u in sample)
    check_split("avsb", "W2 (rules missed)", w2, {"grey": 0.34, "red": 0.33, "blue": 0.33})
    for u in sample[:200]:
        reason = server.for_user({**miss, "key": u}).explain(W2_TEST)["reason"]
        check(reason == {"code": "allocation", "allocation": 3}, f"avsb W2: timed user {u} reached {reason}, not the split")
    for attrs, want in ((workloads.HIT_COUNTRY, "red"), (workloads.HIT_PLAN, "green"), (workloads.HIT_VERSION, "blue")):
        got = server.for_user({"kind": "user", "key": sample[0], **attrs}).get_string_flag(W2_TEST, None)
        check(got == want, f"avsb W2: {attrs} gave {got!r}, expected {want!r}")
    flags = server.for_user({**miss, "key": sample[0]}).all_flags()
    check(sorted(flags) == sorted(names), f"avsb W3: all_flags has {len(flags)} tests, expected {len(names)}")
    for name, entry in flags.items():
        ok = isinstance(entry["payload"], bool) if name.startswith("w1_") else entry["payload"] in workloads.W2_SPLIT_VALUES
        check(entry["group"] is not None and ok, f"avsb W3: {name} -> {entry}")
    on = sum(flags[n]["payload"] for n in names if n.startswith("w1_"))
    check(20 <= on <= 80, f"avsb W3: {on} of 100 boolean tests on for one user")


def sanity_growthbook(gb: Any, names: list[str], defaults: list[tuple[str, Any]], sample: list[str]) -> None:
    w1 = Counter()
    for u in sample:
        gb.set_attributes({"id": u})
        value = gb.get_feature_value(W1_TEST, None)
        check(gb.is_on(W1_TEST) is value, f"GrowthBook W1: is_on disagrees with the value {value!r}")
        w1[value] += 1
    check_split("GrowthBook", "W1", w1, {False: 0.5, True: 0.5})
    w2 = Counter()
    for i, u in enumerate(sample):
        gb.set_attributes({"id": u, **workloads.MISS_ALL_RULES})
        if i < 200:
            result = gb.eval_feature(W2_TEST)
            check(result.source == "experiment", f"GrowthBook W2: timed user {u} got source {result.source}, not the split")
        w2[gb.get_feature_value(W2_TEST, None)] += 1
    check_split("GrowthBook", "W2 (rules missed)", w2, {"grey": 0.34, "red": 0.33, "blue": 0.33})
    for attrs, want in ((workloads.HIT_COUNTRY, "red"), (workloads.HIT_PLAN, "green"), (workloads.HIT_VERSION, "blue")):
        gb.set_attributes({"id": sample[0], **attrs})
        got = gb.get_feature_value(W2_TEST, None)
        check(got == want, f"GrowthBook W2: {attrs} gave {got!r}, expected {want!r}")
    gb.set_attributes({"id": sample[0], **workloads.MISS_ALL_RULES})
    values = {name: gb.get_feature_value(name, None) for name, _ in defaults}
    check(len(values) == len(names), "GrowthBook W3: wrong number of features")
    for name, value in values.items():
        ok = isinstance(value, bool) if name.startswith("w1_") else value in workloads.W2_SPLIT_VALUES
        check(ok, f"GrowthBook W3: {name} -> {value!r}")
    on = sum(values[n] for n in names if n.startswith("w1_"))
    check(20 <= on <= 80, f"GrowthBook W3: {on} of 100 boolean features on for one user")


# --- W4: loading 10,000 tests in a fresh process --------------------------------------------


def native_identity() -> str:
    """The installed native module's path, size and modification time: other work in the same
    checkout may rebuild it (even in dev mode) while the benchmark runs."""
    from avsb import _native

    st = os.stat(_native.__file__)
    return f"{_native.__file__}:{st.st_size}:{st.st_mtime_ns}"


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def w4_child(library: str, path: str, schema_path: str) -> None:
    """Runs in a fresh interpreter: import, then time the load; prints one JSON line."""
    if library == "avsb":
        import avsb

        before = rss_mib()
        t0 = time.perf_counter()
        server = avsb.AvsbServer(offline=True, matrix_path=path, schema_path=schema_path)
        seconds = time.perf_counter() - t0
        tests = len(server.engine)
        t1 = time.perf_counter()
        server.for_user({"kind": "user", "key": "u1", **workloads.MISS_ALL_RULES}).get_string_flag("w2_9999", None)
        first = time.perf_counter() - t1
    else:
        from growthbook import GrowthBook

        before = rss_mib()
        t0 = time.perf_counter()
        with open(path, encoding="utf-8") as f:
            features = json.load(f)
        gb = GrowthBook(features=features)
        seconds = time.perf_counter() - t0
        tests = len(gb.get_features())
        t1 = time.perf_counter()
        gb.set_attributes({"id": "u1", **workloads.MISS_ALL_RULES})
        gb.get_feature_value("w2_9999", None)
        first = time.perf_counter() - t1
    native = native_identity() if library == "avsb" else None
    print(json.dumps({"seconds": seconds, "first_eval_seconds": first, "rss_before": before, "rss_after": rss_mib(), "tests": tests,
                      "native": native}))


def run_w4(tmp: Path, reps: int, native: str) -> dict[str, list[dict[str, Any]]]:
    matrix_path, features_path, schema_path = tmp / "w4-matrix.json", tmp / "w4-features.json", tmp / "schema.json"
    matrix_path.write_text(json.dumps(workloads.matrix(W4_SIZE)))
    features_path.write_text(json.dumps(workloads.gb_features(W4_SIZE)))
    out: dict[str, list[dict[str, Any]]] = {"avsb": [], "growthbook": []}
    for _ in range(reps):
        for library, path in (("avsb", matrix_path), ("growthbook", features_path)):
            done = subprocess.run(
                [sys.executable, __file__, "--w4-child", library, str(path), str(schema_path)],
                check=True, capture_output=True, text=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result["tests"] != W4_SIZE:
                raise BrokenBenchmark(f"W4 {library}: loaded {result['tests']} tests, expected {W4_SIZE}")
            if library == "avsb" and result["native"] != native:
                raise BrokenBenchmark(f"W4: the native module changed during the run ({native} -> {result['native']})")
            out[library].append(result)
    return out


# --- the run --------------------------------------------------------------------------------


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="interleaved reps (default 5)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies the calls per timed block")
    parser.add_argument("--w4-reps", type=int, default=3, help="fresh processes per library for W4 (0: skip W4)")
    parser.add_argument("--quiet-wait", type=float, default=0, help="before each rep, wait up to this many seconds for an idle machine")
    parser.add_argument("--no-middleware", action="store_true", help="skip middleware_overhead.py even if present")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--w4-child", nargs=3, metavar=("LIBRARY", "PATH", "SCHEMA"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.w4_child:
        w4_child(*args.w4_child)
        return 0

    import avsb
    from growthbook import GrowthBook

    with tempfile.TemporaryDirectory(prefix="avsb-bench-") as tmp_name:
        tmp = Path(tmp_name)
        names = workloads.names(W3_SIZE)
        (tmp / "schema.json").write_text(json.dumps(workloads.schema()))
        (tmp / "matrix.json").write_text(json.dumps(workloads.matrix(W3_SIZE)))
        server = avsb.AvsbServer(offline=True, matrix_path=tmp / "matrix.json", schema_path=tmp / "schema.json")
        check(len(server.engine) == W3_SIZE and not server.engine.diagnostics, f"avsb: matrix did not load cleanly: {server.engine.diagnostics}")
        gb = GrowthBook(features=workloads.gb_features(W3_SIZE))
        defaults = [(n, False if n.startswith("w1_") else "grey") for n in names]

        log(f"python {platform.python_version()}, avsb core {avsb._native.core_version()} ({Path(avsb._native.__file__).name}, "
            f"{Path(avsb._native.__file__).stat().st_size // 1024} KiB), growthbook {importlib.metadata.version('growthbook')}, "
            f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}")

        native = native_identity()
        sample = workloads.users(20_000, start=1 << 30)
        sanity_avsb(server, names, sample)
        sanity_growthbook(gb, names, defaults, sample)
        log("sanity checks passed: W1 splits ~50/50, timed W2 users miss every rule and split 34/33/33, W3 assigns all 200 tests, in both libraries")

        plans: dict[str, dict[str, tuple[Callable[[Any, list[str]], int], Any]]] = {
            "W1": {"avsb": (avsb_w1, server), "growthbook": (gb_w1, gb), "floor": (floor_w1, None)},
            "W2": {"avsb": (avsb_w2, server), "growthbook": (gb_w2, gb), "floor": (floor_w2, None)},
            "W3": {"avsb": (avsb_w3, server), "growthbook": (gb_w3_factory(defaults), gb)},
        }
        calls = {key: max(10, int(n * args.scale)) for key, n in CALLS.items()}

        # Every call of every rep gets its own user: made here, outside the timed loops.
        next_user = 0

        def fresh(n: int) -> list[str]:
            nonlocal next_user
            ids = workloads.users(n, start=next_user)
            next_user += n
            return ids

        for workload, libraries in plans.items():
            for library, (fn, state) in libraries.items():
                timed(fn, state, fresh(max(50, calls[(workload, library)] // 10)))  # warm-up

        results: dict[str, dict[str, list[float]]] = {w: {lib: [] for lib in libs} for w, libs in plans.items()}
        for rep in range(args.reps):
            wait_quiet(args.quiet_wait)
            for workload, libraries in plans.items():
                order = list(libraries)
                if rep % 2:
                    order.reverse()
                for library in order:
                    fn, state = libraries[library]
                    n = calls[(workload, library)]
                    ids = fresh(n)
                    per_call = timed(fn, state, ids) / n
                    results[workload][library].append(per_call if workload != "W3" else per_call / 1000)
            log(f"rep {rep + 1}/{args.reps} done")

        w4 = run_w4(tmp, args.w4_reps, native) if args.w4_reps > 0 else None
        if native_identity() != native:
            raise BrokenBenchmark(f"the native module was rebuilt during the run ({native} -> {native_identity()}): run again")

    report = print_table(results, w4, args.reps)
    if not args.no_middleware:
        run_middleware()
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "w4": w4, "summary": report}, indent=2))
    return 0


def print_table(results: dict[str, dict[str, list[float]]], w4: dict[str, list[dict[str, Any]]] | None, reps: int) -> dict[str, Any]:
    units = {"W1": "ns/eval", "W2": "ns/eval", "W3": "µs/set of 200"}
    fmt = {"W1": "{:,.0f}", "W2": "{:,.0f}", "W3": "{:,.1f}"}
    summary: dict[str, Any] = {}
    print()
    print(f"Python SDKs in one process, interleaved, min / median of {reps} reps")
    print()
    print("| workload | unit | avsb min / median | GrowthBook 4.0 shared instance min / median | ratio GB/avsb (median) | (min) | target | met |")
    print("|---|---|---|---|---|---|---|---|")
    for workload, by_lib in results.items():
        a, g = by_lib["avsb"], by_lib["growthbook"]
        ratio_med, ratio_min = median(g) / median(a), min(g) / min(a)
        target = TARGETS[workload]
        met = ratio_med >= target
        f = fmt[workload]
        print(f"| {workload} | {units[workload]} | {f.format(min(a))} / {f.format(median(a))} | {f.format(min(g))} / {f.format(median(g))} "
              f"| **{ratio_med:.1f}x** | {ratio_min:.1f}x | ≥{target:.0f}x | {'yes' if met else 'NO'} |")
        summary[workload] = {"avsb": {"min": min(a), "median": median(a)}, "growthbook": {"min": min(g), "median": median(g)},
                             "ratio_median": ratio_med, "ratio_min": ratio_min, "target": target, "met": met}
    for workload in ("W1", "W2"):
        floor = results[workload].get("floor")
        if floor:
            print(f"| {workload} floor | ns/iteration | {fmt[workload].format(min(floor))} / {fmt[workload].format(median(floor))} | (the loop and the context dict, no call) | | | | |")
    if w4:
        print()
        print(f"W4: load {W4_SIZE:,} tests from a file in a fresh process (min / median of {len(w4['avsb'])} processes)")
        print()
        print("| library | load s | first evaluation ms | RSS after load MiB (+delta over the imported library) |")
        print("|---|---|---|---|")
        for library, label in (("avsb", "avsb (AvsbServer offline, Proctor matrix)"), ("growthbook", "GrowthBook 4.0 (json.load + GrowthBook(features=...))")):
            runs = w4[library]
            secs = [r["seconds"] for r in runs]
            first = [r["first_eval_seconds"] * 1000 for r in runs]
            after = median([r["rss_after"] for r in runs])
            delta = median([r["rss_after"] - r["rss_before"] for r in runs])
            print(f"| {label} | {min(secs):.3f} / {median(secs):.3f} | {median(first):.2f} | {after:.0f} (+{delta:.0f}) |")
            summary[f"W4 {library}"] = {"seconds_min": min(secs), "seconds_median": median(secs), "rss_after_mib": after, "rss_delta_mib": delta}
    missed = [w for w in TARGETS if not summary[w]["met"]]
    print()
    print("targets: " + ("all met" if not missed else "MISSED " + ", ".join(missed)) +
          " (W1 ≥10x, W2 ≥20x, W3 ≥20x GrowthBook's shared-instance time, on the medians)")
    return summary


def run_middleware() -> None:
    """What ``AvsbMiddleware`` adds to a request that reads three flags (another engineer's
    script), when it exists."""
    script = Path(__file__).resolve().parent / "middleware_overhead.py"
    if not script.exists():
        print("\nmiddleware overhead: python/bench/middleware_overhead.py does not exist yet; skipped")
        return
    print("\nmiddleware overhead (python/bench/middleware_overhead.py):", flush=True)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    print(done.stdout.rstrip())
    if done.returncode != 0:
        print(f"middleware_overhead.py failed with status {done.returncode}:\n{done.stderr.rstrip()}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenBenchmark as e:
        print(f"bench_sdk: {e}", file=sys.stderr)
        sys.exit(2)
