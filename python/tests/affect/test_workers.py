"""The layer under real gunicorn with two workers and a cache each worker keeps for itself
(LocMemCache, Django's default): a flag deactivated in the admin, which one worker serves,
reaches the other worker through the change counter within about a second; without that check
the other worker keeps the flag. And `manage.py check` warns about such a cache."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import avsb

pytest.importorskip("gunicorn")

PROJECT = Path(__file__).resolve().parent / "project"
PASSWORD = "workers-test-password"
START_TIMEOUT_SECONDS = 30
# What "within about a second" allows: the check interval (1 s) plus scheduling on a busy machine.
CONVERGENCE_SECONDS = 2.5


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        return json.load(response)


class Browser:
    """An admin user's browser: cookies kept, redirects followed (the standard library's)."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, url: str) -> str:
        with self.opener.open(url, timeout=10) as response:
            return response.read().decode()

    def post(self, url: str, data: dict[str, str]) -> str:
        with self.opener.open(url, data=urllib.parse.urlencode(data).encode(), timeout=10) as response:
            return response.read().decode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Site:
    """The affect test project in a fresh sqlite file, with LocMemCache, run by manage.py
    commands and served by gunicorn."""

    def __init__(self, tmp: Path, change_check: str) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "workers_settings.py").write_text(
            "from affectsite.settings import *  # noqa: F401,F403\n"
            f"DATABASES = {{'default': {{'ENGINE': 'django.db.backends.sqlite3', 'NAME': {str(tmp / 'db.sqlite3')!r}}}}}\n"
            "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'}}\n"
            + change_check
        )
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join([str(tmp), str(PROJECT), str(Path(avsb.__file__).parent.parent)]),
            "DJANGO_SETTINGS_MODULE": "workers_settings",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
        }
        self.process: subprocess.Popen | None = None
        self.log = None
        self.base_url = ""

    def manage(self, *args: str) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [sys.executable, "-m", "django", *args], env=self.env, cwd=self.tmp, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result

    def serve(self) -> None:
        port = free_port()
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = open(self.tmp / "gunicorn.log", "wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "gunicorn", "django.core.wsgi:get_wsgi_application()",
                "--workers", "2", "--bind", f"127.0.0.1:{port}", "--timeout", "30",
            ],
            env=self.env, cwd=self.tmp, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            try:
                get_json(self.base_url + "/worker/")
                return
            except (urllib.error.URLError, ConnectionError):
                pass
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, "gunicorn did not answer:\n" + self.output()
            time.sleep(0.1)

    def output(self) -> str:
        return (self.tmp / "gunicorn.log").read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.log is not None:
            self.log.close()

    def answers(self, n: int = 4) -> list[dict]:
        """``n`` requests sent together (each holds its worker 50 ms, so they spread over both)."""
        with ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda _: get_json(self.base_url + "/worker/?hold=0.05"), range(n)))

    def deactivate_in_the_admin(self, flag: str) -> None:
        """Logs in to the admin and runs its "Deactivate selected flags" action on ``flag``."""
        admin = Browser()
        token = _csrf(admin.get(self.base_url + "/admin/login/"))
        home = admin.post(
            self.base_url + "/admin/login/",
            {"username": "admin", "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/admin/"},
        )
        assert "Log out" in home, home[:2000]
        page = admin.get(self.base_url + "/admin/affect/flag/")
        (flag_id,) = re.findall(r'name="_selected_action" value="(\d+)"', page)
        assert f">{flag}<" in page
        done = admin.post(
            self.base_url + "/admin/affect/flag/",
            {"action": "deactivate", "_selected_action": flag_id, "index": "0", "csrfmiddlewaretoken": _csrf(page)},
        )
        assert "Deactivate selected flags" in done, done[:2000]  # back on the list


def _csrf(html: str) -> str:
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert match, html[:2000]
    return match.group(1)


@pytest.fixture
def site(tmp_path):
    made: list[Site] = []

    def make(change_check: str) -> Site:
        s = Site(tmp_path / f"site{len(made)}", change_check)
        made.append(s)
        s.manage("migrate", "--no-input")
        s.manage("createsuperuser", "--no-input", "--username", "admin", "--email", "admin@example.com")
        s.manage("affect_flag", "rev_b", "--create")
        s.manage("affect_criteria", "everyone", "--create", "--flags", "rev_b", "--everyone", "yes")
        s.serve()
        return s

    yield make
    for s in made:
        s.stop()


def warm_both_workers(s: Site) -> set[int]:
    """Until both workers answered with the flag (so each has it in its own cache)."""
    pids: set[int] = set()
    deadline = time.monotonic() + 20
    while len(pids) < 2:
        assert time.monotonic() < deadline, f"the requests reached only worker(s) {pids}:\n{s.output()}"
        for answer in s.answers():
            assert answer["flags"] == ["rev_b"]
            pids.add(answer["pid"])
    return pids


def test_a_flag_deactivated_in_the_admin_reaches_every_worker_within_a_second_or_two(site):
    s = site("del AFFECTED_CHANGE_CHECK_SECONDS  # the default: once a second\n")
    pids = warm_both_workers(s)
    s.deactivate_in_the_admin("rev_b")
    changed_at = time.monotonic()
    off_since: dict[int, float] = {}
    while time.monotonic() - changed_at < CONVERGENCE_SECONDS:
        for answer in s.answers():
            if answer["flags"]:
                # A worker may still flip back once inside the window (a known race between a
                # request that read the rows before the change and the placeholders): what must
                # hold is that every worker has it off by the end of the window, and keeps it off.
                off_since.pop(answer["pid"], None)
            else:
                off_since.setdefault(answer["pid"], time.monotonic() - changed_at)
    after_window = [a for _ in range(20) for a in s.answers()]
    still_on = {a["pid"] for a in after_window if a["flags"]}
    assert not still_on, f"still on in worker(s) {still_on} {CONVERGENCE_SECONDS} s after the change:\n{s.output()}"
    assert {a["pid"] for a in after_window} == pids, "both workers answered after the window"


def test_without_the_change_check_the_other_worker_keeps_the_flag(site):
    # What the issue saw (7 of 20 requests still had the flag 40 s later): the cache of the
    # worker that did not serve the admin never hears of the change.
    s = site("AFFECTED_CHANGE_CHECK_SECONDS = None\n")
    pids = warm_both_workers(s)
    s.deactivate_in_the_admin("rev_b")
    time.sleep(CONVERGENCE_SECONDS)
    still_on = {a["pid"] for _ in range(10) for a in s.answers() if a["flags"] == ["rev_b"]}
    assert still_on and still_on < pids


def test_manage_py_check_warns_about_the_per_process_cache(tmp_path):
    s = Site(tmp_path / "checked", "")
    result = s.manage("check")
    assert "(avsb.W001)" in result.stderr and "LocMemCache" in result.stderr, result.stderr
    assert "HINT: Point AFFECTED_CACHE_NAME at a cache every process shares" in result.stderr
