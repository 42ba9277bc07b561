"""Exposures and tracked events: de-duplication, batching, retry with backoff, refusal, the
bound, flush on close — against the real server, and against a scripted one for failures."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from avsb import AvsbServer

ROOT = Path(__file__).resolve().parents[3]


class ScriptedServer:
    """A loopback HTTP server that serves the demo datafile and answers event batches with a
    scripted sequence of statuses (then 202), recording every batch it accepted."""

    def __init__(self, statuses: list[int]):
        self.statuses = list(statuses)
        self.accepted: list[dict] = []
        self.attempted_batch_ids: list[str | None] = []
        self.attempts = 0
        self.lock = threading.Lock()
        matrix = json.loads(_strip_comments((ROOT / "spec/examples/pipet-example-matrix.json").read_text()))
        schema = json.loads((ROOT / "spec/examples/pipet-example-context.json").read_text())
        self.datafile = json.dumps(
            {"project": "p", "environment": "e", "version": "7", "schemaVersion": 1, "defaultIdentifierType": "USER", "schema": schema, "matrix": matrix}
        ).encode()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                if self.path == "/sdk/v1/datafile":
                    self.send_response(200)
                    self.send_header("ETag", '"7.1"')
                    self.send_header("Content-Length", str(len(outer.datafile)))
                    self.end_headers()
                    self.wfile.write(outer.datafile)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with outer.lock:
                    outer.attempts += 1
                    outer.attempted_batch_ids.append(json.loads(body).get("batchId"))
                    status = outer.statuses.pop(0) if outer.statuses else 202
                    if status == 202:
                        outer.accepted.append(json.loads(body))
                payload = b'{"error":{"code":"invalid_field","message":"scripted refusal"}}' if status == 400 else b"{}"
                self.send_response(status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def events(self) -> list[dict]:
        with self.lock:
            return [e for batch in self.accepted for e in batch["events"]]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _strip_comments(text: str) -> str:
    return "\n".join(line.split("//")[0] if line.lstrip().startswith("//") else line for line in text.splitlines())


@pytest.fixture
def scripted():
    servers: list[ScriptedServer] = []

    def make(statuses: list[int]) -> ScriptedServer:
        s = ScriptedServer(statuses)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def sdk_for(server: ScriptedServer, tmp_path, **kwargs) -> AvsbServer:
    kwargs.setdefault("flush_interval", 0.1)
    sdk = AvsbServer(sdk_key="sdk-test", base_url=server.base_url, stream=False, cache_dir=tmp_path, **kwargs)
    assert sdk.on_ready_sync(timeout=5)
    return sdk


def test_exposures_and_tracks_reach_the_real_server_deduplicated(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server, flush_interval=60)
    assert sdk.on_ready_sync(timeout=10)
    for _ in range(3):
        scoped = sdk.for_user({"kind": "user", "key": "u_1", "plan": "pro"})
        assert scoped.get_bool_flag("checkout-v2", False) is True
        assert scoped.get_string_flag("ui-theme", "") == "dark"
    scoped.track("purchase", value=149.99, properties={"currency": "usd"})
    # A forced bucket is QA, not an exposure.
    sdk.for_user({"kind": "user", "key": "qa"}, force_groups="buttoncolortst2").get_group("buttoncolortst")
    stats = sdk.event_stats()
    assert stats["deduplicated"] == 4 and stats["pending"] == 3
    sdk.close_sync()
    events = fresh_server.events()
    exposures = sorted((e["test"], e["bucketName"], e["identifiers"]["USER"]) for e in events if e["kind"] == "exposure")
    assert exposures == [("checkout-v2", "on", "u_1"), ("ui-theme", "dark", "u_1")]
    # How each bucket was reached travels with the exposure, for the experiment results: u_1 is
    # one of checkout-v2's targets, and the first allocation of ui-theme matched.
    reasons = {e["test"]: (e["reason"], e.get("allocation")) for e in events if e["kind"] == "exposure"}
    assert reasons == {"checkout-v2": ("targeted", None), "ui-theme": ("split", 0)}
    (track,) = [e for e in events if e["kind"] == "track"]
    assert (track["key"], track["value"], track["properties"], track["identifiers"]) == (
        "purchase",
        149.99,
        {"currency": "usd"},
        {"USER": "u_1"},
    )


def test_batches_of_at_most_1000(scripted, tmp_path):
    server = scripted([])
    sdk = sdk_for(server, tmp_path, flush_interval=60)
    for i in range(2500):
        sdk.for_user({"kind": "user", "key": f"user-{i}"}).get_bool_flag("checkout-v2", False)
    sdk.close_sync()
    sizes = [len(b["events"]) for b in server.accepted]
    assert sizes == [1000, 1000, 500]
    assert len({e["identifiers"]["USER"] for e in server.events()}) == 2500


def test_server_errors_are_retried_until_accepted_without_duplicates(scripted, tmp_path):
    server = scripted([503, 500, 429])
    sdk = sdk_for(server, tmp_path)
    for i in range(10):
        sdk.for_user({"kind": "user", "key": f"r{i}"}).track("signup")
    deadline = time.monotonic() + 20
    while len(server.events()) < 10 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.attempts >= 4
    assert sorted(e["identifiers"]["USER"] for e in server.events()) == sorted(f"r{i}" for i in range(10))
    sdk.close_sync()
    assert len(server.events()) == 10


def test_a_retried_batch_keeps_its_batch_id_so_the_server_stores_it_once(scripted, tmp_path):
    server = scripted([503, 503])
    sdk = sdk_for(server, tmp_path, flush_interval=60)
    sdk.for_user({"kind": "user", "key": "a"}).track("one")
    assert sdk.flush_sync(timeout=20) is True
    sdk.for_user({"kind": "user", "key": "b"}).track("two")
    assert sdk.flush_sync(timeout=5) is True
    first, retry, again, second = server.attempted_batch_ids
    assert first == retry == again, "every retry of a batch carries its id"
    assert second != first, "another batch, another id"
    assert uuid.UUID(first).version == 4
    sdk.close_sync()


def test_a_refused_batch_is_dropped_not_retried(scripted, tmp_path, caplog):
    server = scripted([400])
    sdk = sdk_for(server, tmp_path, flush_interval=60)
    sdk.for_user({"kind": "user", "key": "a"}).track("one")
    with caplog.at_level("WARNING", logger="avsb"):
        assert sdk.flush_sync(timeout=5) is True
    assert any("scripted refusal" in r.getMessage() for r in caplog.records)
    sdk.for_user({"kind": "user", "key": "b"}).track("two")
    sdk.close_sync()
    assert [e["key"] for e in server.events()] == ["two"]
    assert server.attempts == 2


def test_close_flushes_and_gives_up_at_the_deadline(scripted, tmp_path):
    server = scripted([503] * 1000)
    sdk = sdk_for(server, tmp_path, flush_interval=60)
    sdk.for_user({"kind": "user", "key": "a"}).track("lost")
    start = time.monotonic()
    sdk.close_sync(timeout=1.0)
    assert time.monotonic() - start < 3.0
    assert server.events() == []


def test_memory_is_bounded_and_drops_are_counted(scripted, tmp_path):
    server = scripted([])
    sdk = sdk_for(server, tmp_path, flush_interval=60, events_capacity=50)
    for i in range(200):
        sdk.for_user({"kind": "user", "key": f"b{i}"}).track("click")
    stats = sdk.event_stats()
    assert (stats["pending"], stats["dropped_full"]) == (50, 150)
    sdk.close_sync()
    assert len(server.events()) == 50


def test_events_the_server_would_refuse_are_dropped_at_record_time(scripted, tmp_path):
    server = scripted([])
    sdk = sdk_for(server, tmp_path, flush_interval=60)
    scoped = sdk.for_user({"kind": "user", "key": "ok"})
    scoped.track("x" * 300)
    scoped.track("big", properties={"blob": "y" * 9000})
    scoped.track("nan", value=float("nan"))
    scoped.track("fine", value=2, properties={"n": [1, 2.5, None, True, "s"]})
    sdk.for_user({"kind": "user", "key": "z" * 300}).track("long-key")
    assert sdk.event_stats()["dropped_invalid"] == 4
    sdk.close_sync()
    events = server.events()
    assert [e["key"] for e in events] == ["fine"]
    assert events[0]["properties"] == {"n": [1, 2.5, None, True, "s"]}


def test_exposures_carry_the_configured_context_attributes_and_results_break_down_by_them(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server, flush_interval=60, exposure_dimensions=["device", "beta"])
    assert sdk.on_ready_sync(timeout=10)
    devices = {}
    for i in range(40):
        device = "mobile" if i % 4 else "desktop"
        devices[f"d{i}"] = device
        context = {"kind": "multi", "user": {"key": f"d{i}", "device": device}, "org": {"key": "o1", "beta": True}}
        sdk.for_user(context).get_bool_flag("checkout-v2", False)
    sdk.close_sync()
    exposures = [e for e in fresh_server.events() if e["kind"] == "exposure"]
    assert len(exposures) == 40
    for e in exposures:
        assert e["dimensions"] == {"device": devices[e["identifiers"]["USER"]], "beta": "true"}
    reply = fresh_server.admin("GET", "/environments/development/tests/checkout-v2/results?dimension=device")
    assert reply.status_code == 200, reply.text
    breakdown = {v["value"]: v["units"] for v in reply.json()["dimension"]["values"]}
    assert breakdown == {"mobile": 30, "desktop": 10}


def test_bad_exposure_dimensions_are_refused_at_start():
    from avsb import ConfigError

    with pytest.raises(ConfigError, match="exposure_dimensions"):
        AvsbServer(sdk_key="sdk-x", base_url="http://127.0.0.1:9", exposure_dimensions=[f"d{i}" for i in range(9)])
