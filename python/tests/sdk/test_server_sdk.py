"""AvsbServer against the real `avsb serve`: ready, change propagation, the server down at start
and mid-run and back, the disk cache, consistency with the server's own answers, threads."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time

import pytest

from avsb import AvsbServer, ConfigError, GroupAssignment
from avsb_process import AvsbProcess, free_port

THEME_ALL_DARK = {
    "version": "2",
    "salt": "ui-theme",
    "testType": "USER",
    "buckets": [
        {"name": "default", "value": 0, "payload": {"stringValue": "default"}},
        {"name": "dark", "value": 1, "payload": {"stringValue": "dark"}},
    ],
    "allocations": [{"ranges": [{"bucketValue": 1, "length": 1.0}]}],
}


def theme_for_all(name: str, value: int) -> dict:
    definition = json.loads(json.dumps(THEME_ALL_DARK))
    definition["allocations"][0]["ranges"][0]["bucketValue"] = value
    definition["buckets"][value]["payload"]["stringValue"] = name
    return definition


def wait_for(predicate, timeout: float, interval: float = 0.02) -> float:
    """Waits until predicate() is true; returns the seconds it took, or fails."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)
    return time.monotonic() - start


def test_ready_and_guide_flags(avsb_server, make_sdk):
    sdk = make_sdk(avsb_server)
    assert sdk.on_ready_sync(timeout=10) is True
    assert sdk.status == "ready"
    u1 = sdk.for_user({"kind": "user", "key": "u_1", "plan": "pro"})
    assert u1.get_bool_flag("checkout-v2", False) is True  # u_1 is targeted
    assert u1.get_string_flag("ui-theme", "default") == "dark"  # plan == 'pro'
    free = sdk.for_user({"kind": "user", "key": "u_2"})
    assert free.get_string_flag("ui-theme", "x") in ("default", "dark")
    details = u1.get_bool_flag_details("checkout-v2", False)
    assert (details.value, details.variant, details.reason, details.error_code) == (True, "on", "TARGETING_MATCH", None)
    assert details.flag_metadata["bucketValue"] == 1


def test_groups_match_the_servers_pipet_answers(avsb_server, make_sdk):
    sdk = make_sdk(avsb_server)
    assert sdk.on_ready_sync(timeout=10)
    for i in range(150):
        user, country = f"user-{i}", ("US" if i % 2 else "CA")
        expected = avsb_server.identify({"id.USER": user, "ctx.country": country, "ctx.loggedIn": "true"})["groups"]
        scoped = sdk.for_user({"kind": "user", "key": user, "country": country, "loggedIn": True})
        for test in ("buttoncolortst", "countryalgotst", "newfeaturerollout", "checkout-v2", "ui-theme"):
            group = scoped.get_group(test)
            assert isinstance(group, GroupAssignment)
            want = expected.get(test)
            assert (group.group, group.value) == ((want["name"], want["value"]) if want else (None, None)), (user, test)


def test_multi_kind_context_hashes_the_tests_identifier_type(avsb_server, make_sdk):
    avsb_server.put_test(
        "account-flag",
        {
            "version": "1",
            "salt": "account-flag",
            "testType": "ACCOUNT",
            "buckets": [
                {"name": "off", "value": 0, "payload": {"booleanValue": False}},
                {"name": "on", "value": 1, "payload": {"booleanValue": True}},
            ],
            "allocations": [{"ranges": [{"bucketValue": 0, "length": 0.5}, {"bucketValue": 1, "length": 0.5}]}],
        },
    )
    sdk = make_sdk(avsb_server)
    assert sdk.on_ready_sync(timeout=10)
    seen = set()
    for i in range(40):
        account = f"acct-{i}"
        expected = avsb_server.identify({"id.USER": "same-user", "id.account": account, "test": "account-flag"})["groups"]
        ctx = {"kind": "multi", "user": {"key": "same-user"}, "account": {"key": account}}
        got = sdk.for_user(ctx).get_bool_flag_details("account-flag", None)
        assert got.variant == expected["account-flag"]["name"]
        seen.add(got.value)
    assert seen == {True, False}
    # Without an account the test cannot hash: the default, and OpenFeature's error code.
    missing = sdk.for_user({"kind": "user", "key": "same-user"}).get_bool_flag_details("account-flag", None)
    assert (missing.value, missing.reason, missing.error_code) == (None, "ERROR", "TARGETING_KEY_MISSING")


def test_a_change_reaches_the_sdk_through_the_stream_in_under_a_second(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server)
    assert sdk.on_ready_sync(timeout=10)
    scoped = sdk.for_user({"kind": "user", "key": "someone"})
    before = sdk.engine.version
    time.sleep(0.3)  # the stream is connected
    fresh_server.put_test("ui-theme", theme_for_all("solarized", 1))
    took = wait_for(lambda: scoped.get_string_flag("ui-theme", "x") == "solarized", timeout=5)
    assert took < 1.0, f"the change took {took:.2f} s"
    assert sdk.engine.version != before


def test_polling_with_etag_when_streaming_is_off(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server, stream=False, poll_interval=0.2)
    assert sdk.on_ready_sync(timeout=10)
    scoped = sdk.for_user({"kind": "user", "key": "someone"})
    fresh_server.put_test("ui-theme", theme_for_all("polled", 1))
    wait_for(lambda: scoped.get_string_flag("ui-theme", "x") == "polled", timeout=5)
    # Unchanged polls are answered 304 and change nothing.
    engine = sdk.engine
    time.sleep(0.6)
    assert sdk.engine is not None and sdk.engine.version == engine.version


def test_server_down_at_start_then_up(tmp_path, make_sdk, caplog):
    server = AvsbProcess(tmp_path / "server", port=free_port())
    server.start()  # to learn the demo's key, which survives a restart
    server.stop()
    sdk = make_sdk(server, cache_dir=False)
    with caplog.at_level(logging.WARNING, logger="avsb"):
        assert sdk.on_ready_sync(timeout=0.5) is False
    assert sdk.status == "initializing"
    scoped = sdk.for_user({"kind": "user", "key": "u_1"})
    details = scoped.get_bool_flag_details("checkout-v2", False)
    assert (details.value, details.error_code) == (False, "PROVIDER_NOT_READY")
    assert scoped.get_string_flag("ui-theme", "fallback") == "fallback"
    try:
        server.start()
        assert sdk.on_ready_sync(timeout=10)
        # The same scope follows the new matrix.
        assert scoped.get_bool_flag("checkout-v2", False) is True
        wait_for(lambda: sdk.status == "ready", timeout=5)
    finally:
        server.kill()


def test_server_down_mid_run_keeps_the_matrix_then_recovers(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server)
    assert sdk.on_ready_sync(timeout=10)
    scoped = sdk.for_user({"kind": "user", "key": "u_1", "plan": "pro"})
    fresh_server.kill()
    wait_for(lambda: sdk.status == "stale", timeout=10)
    assert scoped.get_bool_flag("checkout-v2", False) is True
    assert scoped.get_string_flag("ui-theme", "x") == "dark"
    fresh_server.start()
    wait_for(lambda: sdk.status == "ready", timeout=15)
    fresh_server.put_test("ui-theme", theme_for_all("after-restart", 1))
    wait_for(lambda: scoped.get_string_flag("ui-theme", "x") == "after-restart", timeout=5)


def test_last_good_datafile_on_disk_when_the_server_is_unreachable(tmp_path, fresh_server, make_sdk):
    cache = tmp_path / "cache"
    first = make_sdk(fresh_server, cache_dir=cache)
    assert first.on_ready_sync(timeout=10)
    fresh_server.put_test("ui-theme", theme_for_all("cached", 1))
    wait_for(lambda: first.for_user({"kind": "user", "key": "a"}).get_string_flag("ui-theme", "") == "cached", 5)
    first.close_sync()
    files = list(cache.iterdir())
    assert len(files) == 1 and (files[0].stat().st_mode & 0o777) == 0o600
    assert fresh_server.sdk_key not in files[0].name
    fresh_server.kill()

    second = make_sdk(fresh_server, cache_dir=cache)
    start = time.monotonic()
    assert second.on_ready_sync(timeout=5)
    assert time.monotonic() - start < 2.0
    assert second.status == "stale"
    assert second.for_user({"kind": "user", "key": "b"}).get_string_flag("ui-theme", "") == "cached"
    # Another key has another file: nothing leaks between environments.
    third = make_sdk(fresh_server, cache_dir=cache, sdk_key="sdk-other")
    assert third.on_ready_sync(timeout=0.3) is False


def test_revoked_key_keeps_the_last_matrix(fresh_server, make_sdk, caplog):
    created = fresh_server.create_sdk_key()
    sdk = make_sdk(fresh_server, sdk_key=created["key"])
    assert sdk.on_ready_sync(timeout=10)
    with caplog.at_level(logging.ERROR, logger="avsb"):
        fresh_server.revoke_sdk_key(created["id"])
        wait_for(lambda: any("refused the SDK key" in r.getMessage() for r in caplog.records), timeout=10)
    assert sdk.for_user({"kind": "user", "key": "u_1"}).get_bool_flag("checkout-v2", False) is True


def test_bad_configuration_raises_at_construction(monkeypatch):
    monkeypatch.delenv("AVSB_SDK_KEY", raising=False)
    with pytest.raises(ConfigError, match="SDK key"):
        AvsbServer()
    with pytest.raises(ConfigError, match="http"):
        AvsbServer(sdk_key="sdk-x", base_url="ftp://example")
    with pytest.raises(ConfigError, match="matrix_path"):
        AvsbServer(offline=True)
    with pytest.raises(ValueError):
        AvsbServer(sdk_key="sdk-x", base_url="http://127.0.0.1:9", poll_interval=0)


def test_offline_mode_reads_a_matrix_file(tmp_path):
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    sdk = AvsbServer(
        offline=True,
        matrix_path=root / "spec/examples/pipet-example-matrix.json",
        schema_path=root / "spec/examples/pipet-example-context.json",
    )
    try:
        assert sdk.on_ready_sync(timeout=0) and sdk.status == "offline"
        scoped = sdk.for_user({"kind": "user", "key": "u_1", "plan": "pro"})
        assert scoped.get_bool_flag("checkout-v2", False) is True
        assert scoped.get_string_flag("ui-theme", "") == "dark"
        scoped.track("purchase", value=1.0)  # no server, no events, no error
        assert sdk.event_stats()["pending"] == 0
    finally:
        sdk.close_sync()


def test_request_path_never_raises(avsb_server, make_sdk, caplog):
    sdk = make_sdk(avsb_server)
    assert sdk.on_ready_sync(timeout=10)
    contexts = [
        None,
        [],
        "u_1",
        {"kind": 3},
        {"kind": "user", "key": {"nested": 1}},
        {"kind": "user", "key": "u", "loggedIn": "maybe", "country": ["US"], "plan": object()},
        {"kind": "multi", "user": "not a dict"},
        {"kind": "user", "key": "x" * 10_000},
    ]
    for ctx in contexts:
        scoped = sdk.for_user(ctx)
        assert scoped.get_bool_flag("checkout-v2", "default") in (True, False, "default")
        assert scoped.get_string_flag("no-such-test", "d") == "d"
        assert scoped.get_int_flag("ui-theme", 7) == 7  # a string payload: TYPE_MISMATCH
        assert isinstance(scoped.all_flags(), dict)
        scoped.get_group("buttoncolortst")
        scoped.track("purchase", value="lots", properties={"k": object()})
        scoped.track(123)
    bad = sdk.for_user({"kind": "user", "key": "u", "loggedIn": "maybe"})
    assert any("loggedIn" in p for p in bad.problems) is False  # 'maybe' is a valid Java boolean text (false)
    worse = sdk.for_user({"kind": "user", "key": "u", "country": ["US"]})
    assert any("country" in p for p in worse.problems)


def test_threads_evaluate_while_the_matrix_changes(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server)
    assert sdk.on_ready_sync(timeout=10)
    errors: list[BaseException] = []
    values: set[str] = set()
    stop = threading.Event()

    def work(n: int) -> None:
        try:
            i = 0
            while not stop.is_set():
                scoped = sdk.for_user({"kind": "user", "key": f"t{n}-{i}"})
                values.add(scoped.get_string_flag("ui-theme", "default"))
                scoped.all_flags()
                i += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for k in range(8):
        fresh_server.put_test("ui-theme", theme_for_all(f"v{k}", 1))
        time.sleep(0.1)
    # The last change reaches the SDK (under load it may take longer than the pauses above);
    # then the workers must see it too.
    wait_for(lambda: sdk.for_user({"kind": "user", "key": "probe"}).get_string_flag("ui-theme", "") == "v7", timeout=10)
    wait_for(lambda: "v7" in values, timeout=5)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert "v7" in values and len(values) >= 3


def test_asyncio_ready_and_close(avsb_server, tmp_path):
    async def main() -> tuple[bool, bool, str]:
        sdk = AvsbServer(sdk_key=avsb_server.sdk_key, base_url=avsb_server.base_url, cache_dir=tmp_path)
        ready = await sdk.on_ready(timeout=10)
        flag = sdk.for_user({"kind": "user", "key": "u_1"}).get_bool_flag("checkout-v2", False)
        await sdk.close()
        return ready, flag, sdk.status

    assert asyncio.run(main()) == (True, True, "closed")


def test_a_problem_is_logged_once_per_flag_and_matrix_not_per_call(avsb_server, make_sdk, caplog):
    sdk = make_sdk(avsb_server)
    assert sdk.on_ready_sync(timeout=10)
    with caplog.at_level(logging.WARNING, logger="avsb"):
        for i in range(200):
            scoped = sdk.for_user({"kind": "user", "key": f"log-{i}", "country": ["US"]})
            assert scoped.get_string_flag("no-such-flag", "d") == "d"
            assert scoped.get_int_flag("ui-theme", 0) == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("FLAG_NOT_FOUND" in m for m in messages) == 1
    assert sum("TYPE_MISMATCH" in m for m in messages) == 1
    assert sum("context problems" in m for m in messages) == 1
