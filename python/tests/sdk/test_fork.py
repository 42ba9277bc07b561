"""After fork() (gunicorn --preload): the child keeps the matrix, runs its own stream and event
sender, and does not send the parent's waiting events twice."""

from __future__ import annotations

import os
import time

import pytest


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_evaluates_streams_and_sends_its_own_events(fresh_server, make_sdk):
    sdk = make_sdk(fresh_server, flush_interval=60)
    assert sdk.on_ready_sync(timeout=10)
    # An event waiting in the parent at fork time: the parent sends it, the child must not.
    sdk.for_user({"kind": "user", "key": "parent"}).track("before-fork")
    assert sdk.event_stats()["pending"] == 1
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: only os._exit leaves it
        code = 1
        try:
            os.close(ready_r)
            scoped = sdk.for_user({"kind": "user", "key": "u_1"})
            if scoped.get_bool_flag("checkout-v2", None) is True:
                scoped.track("in-child")
                os.write(ready_w, b"1")
                if wait_for(lambda: scoped.get_string_flag("ui-theme", "") == "from-parent", 10):
                    sdk.close_sync(timeout=5)
                    code = 0
                else:
                    code = 3
        except BaseException:  # noqa: BLE001
            code = 2
        finally:
            os._exit(code)
    os.close(ready_w)
    assert os.read(ready_r, 1) == b"1", "the child could not evaluate"
    os.close(ready_r)
    fresh_server.put_test(
        "ui-theme",
        {
            "version": "9",
            "salt": "ui-theme",
            "testType": "USER",
            "buckets": [{"name": "only", "value": 0, "payload": {"stringValue": "from-parent"}}],
            "allocations": [{"ranges": [{"bucketValue": 0, "length": 1.0}]}],
        },
    )
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    # The parent keeps working and sees the change too.
    assert wait_for(lambda: sdk.for_user({"kind": "user", "key": "p"}).get_string_flag("ui-theme", "") == "from-parent", 5)
    sdk.close_sync()
    keys = sorted(e["key"] for e in fresh_server.events() if e["kind"] == "track")
    assert keys == ["before-fork", "in-child"]
