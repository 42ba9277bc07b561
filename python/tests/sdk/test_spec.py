"""The shared spec (``spec/``) through the native module, one pytest id per case.

- ``spec/eval/*.json`` (format in ``spec/eval/README.md``): each case is compiled with
  ``avsb.Engine.from_matrix`` and answered with ``Engine.identify``, and checked exactly as the
  Rust runner (``crates/avsb-core/tests/spec_eval.rs``) checks it: dropped tests (from
  ``Engine.diagnostics``), groups, reasons, context, audit, or Pipet's refusal.
- ``spec/proctor-hash-vectors.tsv``: every row as a one-test matrix, assigned through
  ``Engine.identify`` and through an SDK scope (``for_user(...).get_group``).
- ``spec/rules/cases.json`` (format in ``spec/rules/README.md``): the native module has no
  rule-evaluation entry point, so each case runs as a one-test matrix whose only allocation
  has the case's rule (and its constants), evaluated by ``Engine.identify``: a true rule
  assigns the bucket, a false one does not, an evaluation error is a ``rule_error`` reason, a
  load error drops the test with the case's code. Cases that a Pipet request cannot express
  are skipped with the reason (see ``rule_case_skip``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import avsb
from avsb import _native

SPEC = Path(__file__).resolve().parents[3] / "spec"
EVAL_DIR = SPEC / "eval"

CASE_KEYS = {"name", "description", "matrix", "matrix_file", "schema", "request", "expect"}
REQUEST_KEYS = {"identifiers", "context", "tests", "force", "full_force", "now", "seed"}
EXPECT_KEYS = {"groups", "reasons", "dropped", "context", "audit", "status", "message"}


# --- exact JSON comparison ------------------------------------------------------------------


def json_diff(path: str, expected: Any, actual: Any, out: list[str]) -> None:
    """Every place where ``actual`` differs from ``expected`` as JSON values: as serde_json
    compares them, so ``1`` is not ``1.0`` and ``True`` is not ``1`` (Python's ``==`` would say
    they are). Key order is irrelevant."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key, value in expected.items():
            if key in actual:
                json_diff(f"{path}.{key}", value, actual[key], out)
            else:
                out.append(f"{path}.{key}: missing; expected {json.dumps(value)}")
        for key, value in actual.items():
            if key not in expected:
                out.append(f"{path}.{key}: unexpected {json.dumps(value)}")
        return
    if isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for i, (e, a) in enumerate(zip(expected, actual)):
            json_diff(f"{path}[{i}]", e, a, out)
        return
    if type(expected) is not type(actual) or expected != actual:
        out.append(f"{path}: expected {json.dumps(expected)}, got {json.dumps(actual)}")


def json_equal(expected: Any, actual: Any) -> bool:
    out: list[str] = []
    json_diff("", expected, actual, out)
    return not out


def check_equal(what: str, expected: Any, actual: Any, problems: list[str]) -> None:
    lines: list[str] = []
    json_diff(what, expected, actual, lines)
    if lines:
        problems.append(f"{what} differs:\n  " + "\n  ".join(lines) + f"\n  (actual {what}: {json.dumps(actual)})")


# --- spec/eval ------------------------------------------------------------------------------


def eval_cases() -> list[Any]:
    params, names = [], set()
    for path in sorted(EVAL_DIR.glob("*.json")):
        for i, case in enumerate(json.loads(path.read_text(encoding="utf-8"))["cases"]):
            name = case.get("name") if isinstance(case, dict) else None
            case_id = f"{path.stem}/{name or f'#{i}'}"
            params.append(pytest.param(path.name, case, id=case_id))
            assert name, f"{path.name} case #{i} has no name"
            assert name not in names, f"case name {name!r} is used twice"
            names.add(name)
    return params


EVAL_CASES = eval_cases()


def test_every_case_file_is_found() -> None:
    """Guards against a glob or parse change that would silently run no cases."""
    assert len(EVAL_CASES) >= 200, len(EVAL_CASES)
    assert {p.values[0] for p in EVAL_CASES} >= {
        "bucketing.json", "evaluation.json", "extensions.json", "force.json", "pipet.json", "validation.json",
    }


def text_pairs(value: Any, what: str) -> list[tuple[str, str]]:
    """A request object of raw text values, as (key, text) pairs in document order."""
    if value is None:
        return []
    assert isinstance(value, dict), f"request.{what} must be an object"
    for key, text in value.items():
        assert isinstance(text, str), f"request.{what}.{key} must be a string (raw request text), found {text!r}"
    return list(value.items())


def dropped_tests(engine: avsb.Engine) -> list[str]:
    """Tests with an error diagnostic, in diagnostic order (each once)."""
    seen: list[str] = []
    for d in engine.diagnostics:
        if d["severity"] == "error" and d["test"] not in seen:
            seen.append(d["test"])
    return seen


def describe_diagnostics(engine: avsb.Engine, test: str | None = None) -> str:
    lines = [
        f"    {d['severity']}: {d['path']}: {d['message']} [{d['code']}]"
        for d in engine.diagnostics
        if test is None or d["test"] == test
    ]
    return "\n".join(lines) or "    (no diagnostics)"


@pytest.mark.parametrize(("file", "case"), EVAL_CASES)
def test_eval_case(file: str, case: dict[str, Any]) -> None:
    unknown = set(case) - CASE_KEYS
    assert not unknown, f"unknown case keys {sorted(unknown)}"
    request = case.get("request", {})
    assert isinstance(request, dict), "request must be an object"
    assert not set(request) - REQUEST_KEYS, f"unknown request keys {sorted(set(request) - REQUEST_KEYS)}"
    expect = case["expect"]
    assert isinstance(expect, dict), "expect must be an object"
    assert not set(expect) - EXPECT_KEYS, f"unknown expect keys {sorted(set(expect) - EXPECT_KEYS)}"

    # The matrix: inline object, inline raw text (comments allowed), or a shared file.
    if "matrix" in case and "matrix_file" not in case:
        matrix = case["matrix"] if isinstance(case["matrix"], str) else json.dumps(case["matrix"])
    elif "matrix_file" in case and "matrix" not in case:
        matrix = (EVAL_DIR / case["matrix_file"]).read_text(encoding="utf-8")
    else:
        pytest.fail('a case needs exactly one of "matrix" (object or text) and "matrix_file"')

    identifiers = text_pairs(request.get("identifiers"), "identifiers")
    context = text_pairs(request.get("context"), "context")

    # Without a schema the Rust runner makes a permissive one that also knows the identifier
    # types the request uses; Engine.from_matrix(schema=None) has no such argument. No case
    # depends on the difference today (none has a custom type and no schema).
    schema = json.dumps(case["schema"]) if "schema" in case else None

    try:
        engine = avsb.Engine.from_matrix(matrix, schema)
    except avsb.MatrixError as e:
        pytest.fail(f"the matrix does not load at all: {e}")

    problems: list[str] = []
    if "dropped" in expect:
        dropped = expect["dropped"]
        assert isinstance(dropped, dict), "expect.dropped must be an object"
        for test, code in dropped.items():
            found = any(d["severity"] == "error" and d["test"] == test and d["code"] == code for d in engine.diagnostics)
            if not found:
                problems.append(f"test {test!r} should be dropped with [{code}], diagnostics for it:\n{describe_diagnostics(engine, test)}")
        for test in dropped_tests(engine):
            if test not in dropped:
                problems.append(f"test {test!r} was dropped unexpectedly:\n{describe_diagnostics(engine, test)}")

    tests, force, full_force = request.get("tests"), request.get("force"), request.get("full_force", False)
    assert tests is None or isinstance(tests, str), "request.tests must be a string"
    assert force is None or isinstance(force, str), "request.force must be a string"
    assert isinstance(full_force, bool), "request.full_force must be a boolean"
    now, seed = request.get("now"), request.get("seed")
    assert now is None or (isinstance(now, int) and not isinstance(now, bool)), "request.now must be an integer"
    assert seed is None or (isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0), \
        "request.seed must be a non-negative integer"

    try:
        answer = engine.identify(
            identifiers, context, tests=tests, force_groups=force, full_force=full_force,
            now_millis=now, random_seed=seed,
        )
        error = None
    except avsb.RequestError as e:
        answer, error = None, e.args

    if "status" in expect:
        status, message = expect["status"], expect.get("message")
        if error is None:
            problems.append(f"expected error {status} {message or '<any message>'!r}, but the request succeeded "
                            f"with groups {json.dumps(answer['data']['groups'])}")
        elif error[0] != status or (message is not None and error[1] != message):
            problems.append(f"error differs:\n  expected {status} {message or '<any message>'!r}\n  got      {error[0]} {error[1]!r}")
    else:
        assert "message" not in expect, "expect.message needs expect.status"
        if error is not None:
            problems.append(f"unexpected error {error[0]} {error[1]!r}")
        else:
            data, reasons = answer["data"], answer["reasons"]
            for key in ("groups", "context", "audit"):
                if key in expect:
                    check_equal(key, expect[key], data[key], problems)
            for test, want in expect.get("reasons", {}).items():
                got = reasons.get(test)
                if want is None:
                    ok = got is None
                elif isinstance(want, str):
                    ok = got is not None and json_equal(want, got.get("code"))
                else:
                    ok = got is not None and all(k in got and json_equal(v, got[k]) for k, v in want.items())
                if not ok:
                    problems.append(f"reason for {test!r}: expected {json.dumps(want) if want is not None else 'not evaluated/reported'}, "
                                    f"got {json.dumps(got) if got is not None else 'not evaluated/reported'}")

    if problems:
        if engine.diagnostics:
            problems.append(f"(all diagnostics:\n{describe_diagnostics(engine)})")
        pytest.fail(f"{case.get('description', '')}\n" + "\n".join(problems), pytrace=False)


# --- spec/proctor-hash-vectors.tsv ----------------------------------------------------------


def hash_vectors() -> list[Any]:
    lines = (SPEC / "proctor-hash-vectors.tsv").read_text(encoding="utf-8").splitlines()
    params = []
    for line in lines[1:]:
        if not line.strip():
            continue
        f = line.split("\t")
        assert len(f) == 9, line
        ranges = [(int(v), float(length)) for v, length in (r.split(":") for r in f[6].split(","))]
        row = {"test": f[0], "salt": None if f[1] == "(null)" else f[1], "identifier": f[2], "ranges": ranges, "bucket": int(f[8])}
        params.append(pytest.param(row, id=f"{f[0]}|{f[1]}|{f[2]}|{f[6]}"))
    return params


HASH_VECTORS = hash_vectors()


def test_every_hash_vector_is_found() -> None:
    assert len(HASH_VECTORS) >= 22, len(HASH_VECTORS)


@pytest.mark.parametrize("row", HASH_VECTORS)
def test_hash_vector(row: dict[str, Any]) -> None:
    values = sorted({v for v, _ in row["ranges"]})
    matrix = {
        "audit": {"version": "1", "updated": 0, "updatedBy": "spec"},
        "tests": {row["test"]: {
            "salt": row["salt"], "testType": "USER",
            "buckets": [{"name": f"b{v}", "value": v} for v in values],
            "allocations": [{"rule": None, "ranges": [{"bucketValue": v, "length": length} for v, length in row["ranges"]]}],
        }},
    }
    engine = avsb.Engine.from_matrix(json.dumps(matrix))
    assert engine.diagnostics == []
    groups = engine.identify({"USER": row["identifier"]}, {})["data"]["groups"]
    assert groups[row["test"]]["value"] == row["bucket"]
    # The SDK's own path (a context converted once, then a getter) hashes the same bytes.
    evaluator = _native.Evaluator()
    evaluator._set_engine(engine)
    group = evaluator.for_user({"kind": "user", "key": row["identifier"]}).get_group(row["test"])
    assert (group.group, group.value) == (f"b{row['bucket']}", row["bucket"])


# --- spec/rules -----------------------------------------------------------------------------

RULE_TEST = "t"


def rule_cases() -> list[Any]:
    params, names = [], set()
    for path in sorted((SPEC / "rules").glob("*.json")):
        for i, case in enumerate(json.loads(path.read_text(encoding="utf-8"))["cases"]):
            name = case.get("name") or f"#{i}"
            assert name not in names, f"rule case name {name!r} is used twice"
            names.add(name)
            params.append(pytest.param(case, id=f"{path.stem}/{name}"))
    return params


RULE_CASES = rule_cases()


def test_every_rule_case_is_found() -> None:
    assert len(RULE_CASES) >= 200, len(RULE_CASES)


def rule_case_skip(case: dict[str, Any]) -> str | None:
    """Why a Pipet request over a one-test matrix cannot express the case, if it cannot."""
    if case.get("missingExperimentalUnit"):
        return ("missingExperimentalUnit=true: the engine evaluates every rule of a request with it false, "
                "so only a rule-evaluation entry point could set it")
    if any(not isinstance(v, str) for v in (case.get("context") or {}).values()):
        return "structured JSON context values: Engine.identify takes raw request text only"
    return None


def rule_case_matrix(case: dict[str, Any], schema_types: dict[str, str]) -> tuple[str, str]:
    """The case as a one-test matrix (the rule as the only allocation's rule) and its schema."""
    matrix = {
        "audit": {"version": "1", "updated": 0, "updatedBy": "spec"},
        "tests": {RULE_TEST: {
            "salt": RULE_TEST, "testType": "USER", "constants": case.get("constants") or {},
            "buckets": [{"name": "on", "value": 1}],
            "allocations": [{"rule": case["rule"], "ranges": [{"bucketValue": 1, "length": 1.0}]}],
        }},
    }
    schema = {
        "context": {name: {"source": "QUERY", "type": ty} for name, ty in schema_types.items()},
        "identifiers": {"USER": {"source": "QUERY"}},
    }
    return json.dumps(matrix), json.dumps(schema)


@pytest.mark.parametrize("case", RULE_CASES)
def test_rule_case(case: dict[str, Any]) -> None:
    why = rule_case_skip(case)
    if why:
        pytest.skip(why)
    declared: dict[str, str] = case.get("schema") or {}
    context: dict[str, str] = case.get("context") or {}
    # A Pipet schema types every variable, and a request must carry (or default) each one, so
    # the schema holds the case's typed variables that the context gives. A rule that needs one
    # of the others fails to compile with unknown_variable naming it: then the case is skipped.
    typed = {name: ty for name, ty in declared.items() if ty != "?" and name in context}
    matrix, schema = rule_case_matrix(case, typed)
    engine = avsb.Engine.from_matrix(matrix, schema)
    diagnostics = [d for d in engine.diagnostics if d["test"] == RULE_TEST]
    errors = [d for d in diagnostics if d["severity"] == "error"]
    for d in errors:
        if d["code"] == "unknown_variable" and d.get("span"):
            start, end = d["span"]
            name = d["rule"][start:end]
            if declared.get(name) == "?":
                pytest.skip(f"the rule reads {name!r}, a variable of unknown type ('?'): a Pipet schema "
                            "cannot declare one, and Engine.from_matrix without a schema makes every variable untyped")
            if name in declared:
                pytest.skip(f"the rule reads {name!r}, which the context lacks: Pipet refuses a request "
                            "without a configured variable (400) before any rule runs")

    expect = case["expect"]
    if isinstance(expect, dict) and "load_error" in expect:
        codes = [d["code"] for d in errors]
        assert expect["load_error"] in codes, f"expected load error {expect['load_error']}, got {codes or 'none (the rule compiled)'}"
        return
    assert not errors, f"load error {[(d['code'], d['message']) for d in errors]}"
    if "warning" in case:
        warnings = [d["code"] for d in diagnostics if d["severity"] == "warning"]
        assert case["warning"] in warnings, f"expected warning {case['warning']}, got {warnings}"

    answer = engine.identify({"USER": "u1"}, [(k, v) for k, v in context.items() if k in typed], now_millis=case.get("now"))
    assigned = RULE_TEST in answer["data"]["groups"]
    reason = answer["reasons"].get(RULE_TEST) or {}
    if isinstance(expect, bool):
        if reason.get("code") == "rule_error":
            pytest.fail(f"expected {expect}, got an evaluation error: {reason.get('message')}")
        assert assigned == expect, f"expected {expect}, got {assigned} (reason {reason})"
    else:
        # The reason carries the failing rule and a message, not the evaluation error's code, so
        # only "it failed at evaluation" can be checked here (the Rust runner checks the code).
        assert not assigned and reason.get("code") == "rule_error", \
            f"expected evaluation error {expect['error']}, got assigned={assigned} (reason {reason})"
        assert reason.get("rule") == "allocations[0].rule", reason
