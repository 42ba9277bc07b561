"""Every code sample of docs/django-guide.md is in the project these tests run (or, for the
plain-pytest sample, in python/tests/sdk): the guide cannot show code that is not tested.

A sample is found in a file when its lines (stripped, comment-only lines left out) occur in the
file in the same order, each within one line of the file (the file may indent it, assign or
return it, or add lines between, as a real module does)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pages import page_flags

REPO = Path(__file__).resolve().parents[3]
GUIDE = REPO / "docs" / "django-guide.md"
PLACES = [
    Path(__file__).resolve().parent / "project",
    REPO / "python" / "tests" / "sdk" / "test_guide_test_utils.py",
]
SAMPLE = re.compile(r"^```(python|django)\n(.*?)^```", re.M | re.S)


def samples() -> list[str]:
    found = [m.group(2) for m in SAMPLE.finditer(GUIDE.read_text())]
    assert len(found) >= 10, "the guide's samples were not found"
    return found


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def _files() -> list[Path]:
    files = []
    for place in PLACES:
        files += [place] if place.is_file() else [p for p in place.rglob("*") if p.suffix in (".py", ".html")]
    return files


def _occurs_in(sample: list[str], file_lines: list[str]) -> bool:
    position = 0
    for line in sample:
        while position < len(file_lines) and line not in file_lines[position]:
            position += 1
        if position == len(file_lines):
            return False
        position += 1
    return True


@pytest.mark.parametrize("sample", samples(), ids=lambda s: _lines(s)[0][:40])
def test_each_sample_is_in_the_tested_project(sample):
    lines = _lines(sample)
    homes = [f for f in _files() if _occurs_in(lines, [line.strip() for line in f.read_text().splitlines()])]
    assert homes, f"this sample of docs/django-guide.md is in no file the tests run:\n{sample}"


def test_the_template_sample_renders(client):
    response = client.get("/flags/")
    assert response.status_code == 200
    html = response.content.decode()
    flags = page_flags(html)
    assert ("new checkout" in html) is (flags["checkout-v2"]["payload"] is True)
    assert f'<body class="{flags["ui-theme"]["payload"]}">' in html


def test_the_openfeature_sample_reads_the_guide_s_server():
    from myapp.openfeature_flags import u_1_sees_the_new_checkout
    from openfeature import api

    try:
        assert u_1_sees_the_new_checkout() is True  # u_1 is targeted into checkout-v2
    finally:
        api.shutdown()
