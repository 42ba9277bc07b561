"""django-proctor 1.2.1's own test suite, run against the original and against avsb.contrib.proctor.

    python tests/upstream/django_proctor.py [--cache DIR]

1. `pip download` fetches the `django-proctor==1.2.1` wheel from PyPI (checked against its
   SHA-256) into the cache directory; it holds the suite in `proctor/tests/`. Nothing of it is
   kept in this repository.
2. The suite runs twice under pytest-django with its own settings (`proctor.tests.settings`):
   against the original package from the wheel, the baseline; and against `avsb.contrib.proctor`
   through the import alias of `proctor_alias.py` and nothing else.
3. Every test that passes on the original must pass on the drop-in; the run fails otherwise, or
   if the baseline passes fewer tests than it does on Python 3.11 with Django 5.2 (which would
   mean the suite did not really run).

The tests the original fails on Django 5.2 are listed with the reason; the drop-in may pass them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENT = "django-proctor==1.2.1"
WHEEL = "django_proctor-1.2.1-py2.py3-none-any.whl"
WHEEL_SHA256 = "5d4fbc58e6136f57c4d5bd5867e708e7aebce629efdf691804699aed9fb0035d"
# What the original passes on Python 3.11 and Django 5.2: 17 of its 20 tests. Building the
# middleware without get_response (the two tests of test_middleware.py) raises ValueError on
# Django 4+, and proctor.urls imports django.conf.urls.url, which Django 4 removed.
BASELINE_PASSES = 17


def fetch_wheel(cache: Path) -> Path:
    """The wheel, downloaded once into `cache` and checked."""
    wheels = cache / "wheels"
    wheel = wheels / WHEEL
    if not wheel.is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
             "--only-binary=:all:", "--dest", str(wheels), REQUIREMENT],
            check=True,
        )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        wheel.unlink()
        raise SystemExit(f"{WHEEL} has SHA-256 {digest}, not {WHEEL_SHA256}; it was removed, run again")
    return wheel


def extract(wheel: Path, into: Path) -> Path:
    """The wheel's files (the `proctor` package with `proctor/tests/`) in a fresh directory."""
    with zipfile.ZipFile(wheel) as z:
        z.extractall(into)
    if not (into / "proctor" / "tests" / "settings.py").is_file():
        raise SystemExit(f"{WHEEL} has no proctor/tests/settings.py")
    return into


def run_suite(suite: Path, drop_in: bool, report: Path) -> dict[str, str]:
    """Runs `proctor/tests/` in a new interpreter; returns each test's outcome."""
    env = dict(os.environ)
    # The suite runs in its own directory, so relative entries (`PYTHONPATH=python`) are resolved here.
    inherited = [str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(inherited)
    # The suite's own configuration (its pytest.ini adds flake8 and coverage plugins, which are
    # not what is being tested) is replaced by these options.
    args = [sys.executable, "-m", "pytest", str(suite / "proctor" / "tests")]
    if drop_in:
        # First, so that the alias is in place before pytest-django imports the settings.
        args += ["-p", "proctor_alias"]
        env["AVSB_UPSTREAM_SUITE"] = str(suite)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    else:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(suite), env.get("PYTHONPATH")]))
    args += ["-p", "pytest_django",
            "--ds=proctor.tests.settings", "-o", "addopts=", "-p", "no:cacheprovider", "--rootdir", str(suite),
             "-q", "--tb=line", f"--junitxml={report}"]
    subprocess.run(args, env=env, cwd=suite, check=False)
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname')}.{case.get('name')}"
        failed = next((c for c in case if c.tag in ("failure", "error")), None)
        skipped = next((c for c in case if c.tag == "skipped"), None)
        if failed is not None:
            message = (failed.get("message") or "").splitlines()
            outcomes[name] = "failed" + (f" ({message[0][:100]})" if message else "")
        elif skipped is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


def passed(outcomes: dict[str, str]) -> list[str]:
    """The tests that passed."""
    return [test for test, outcome in outcomes.items() if outcome == "passed"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avsb" / "upstream"
    parser.add_argument("--cache", type=Path, default=default_cache, help="where the downloaded wheel is kept")
    options = parser.parse_args()

    wheel = fetch_wheel(options.cache)
    with tempfile.TemporaryDirectory(prefix="django-proctor-") as tmp:
        tmp = Path(tmp)
        original = run_suite(extract(wheel, tmp / "original"), drop_in=False, report=tmp / "original.xml")
        drop_in = run_suite(extract(wheel, tmp / "drop-in"), drop_in=True, report=tmp / "drop-in.xml")

    print(f"django-proctor 1.2.1's suite: {len(original)} tests")
    print(f"  the original (baseline):   {len(passed(original))} passed")
    print(f"  avsb.contrib.proctor:      {len(passed(drop_in))} passed")
    problems = []
    if len(passed(original)) < BASELINE_PASSES:
        problems.append(f"the original passed {len(passed(original))} tests, fewer than its {BASELINE_PASSES}: did the suite run?")
    for test in sorted(original):
        ours = drop_in.get(test, "not run")
        if original[test] == "passed" and ours != "passed":
            problems.append(f"{test}: passes on the original, {ours} on the drop-in")
        elif original[test] != "passed":
            print(f"  (the original {original[test]}: {test}; the drop-in: {ours})")
    for problem in problems:
        print("FAIL " + problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
