"""``avsb.AvsbClient``: the one protocol ``AvsbServer`` and ``MockAvsbServer`` share, so code
written against it takes either."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from avsb import AvsbClient, AvsbServer, _native
from avsb.test_utils import MockAvsbServer, TestData

ROOT = Path(__file__).resolve().parents[3]

# What the protocol declares: its public members, and the context-manager pair.
MEMBERS = sorted(
    name
    for name, value in vars(AvsbClient).items()
    if (not name.startswith("_") or name in ("__enter__", "__exit__")) and (callable(value) or isinstance(value, property))
)


@pytest.fixture
def offline_server():
    server = AvsbServer(
        offline=True,
        matrix_path=ROOT / "spec/examples/pipet-example-matrix.json",
        schema_path=ROOT / "spec/examples/pipet-example-context.json",
    )
    yield server
    server.close_sync()


def test_the_protocol_covers_what_the_integrations_use():
    assert {"engine", "status", "for_user", "identify", "is_ready", "on_ready_sync", "on_ready", "on_change"} <= set(MEMBERS)
    assert {"flush", "flush_sync", "event_stats", "close_sync", "close", "__enter__", "__exit__"} <= set(MEMBERS)


def test_both_sdk_classes_are_clients_and_a_bare_evaluator_is_not(offline_server):
    mock = MockAvsbServer(flags=[TestData.flag("checkout-v2")])
    assert isinstance(offline_server, AvsbClient)
    assert isinstance(mock, AvsbClient)
    # The native evaluator alone has scopes but no lifecycle: not a client.
    assert not isinstance(_native.Evaluator(), AvsbClient)


def parameters(function) -> list[tuple[str, object, object]]:
    """A function's parameters after ``self``: name, kind and default."""
    params = list(inspect.signature(function).parameters.values())[1:]
    return [(p.name, p.kind, p.default) for p in params]


@pytest.mark.parametrize("cls", [AvsbServer, MockAvsbServer], ids=lambda c: c.__name__)
@pytest.mark.parametrize("name", MEMBERS)
def test_each_member_has_the_protocols_shape(cls, name):
    declared = vars(AvsbClient)[name]
    actual = inspect.getattr_static(cls, name)
    if isinstance(declared, property):
        assert inspect.isdatadescriptor(actual), f"{cls.__name__}.{name} is not a property"
        return
    method = getattr(cls, name)
    assert inspect.iscoroutinefunction(method) == inspect.iscoroutinefunction(declared), f"{cls.__name__}.{name}"
    assert parameters(method) == parameters(declared), f"{cls.__name__}.{name}"


def serve_checkout(client: AvsbClient, key: str) -> bool:
    """Application code written against the protocol."""
    with client:
        return client.for_user({"kind": "user", "key": key, "plan": "pro"}).get_bool_flag("checkout-v2", False)


def test_code_written_against_the_protocol_runs_on_either(offline_server):
    mock = MockAvsbServer(flags=[TestData.flag("checkout-v2").variation_for_all(True)])
    assert serve_checkout(offline_server, "u_1") is True
    assert serve_checkout(mock, "u_1") is True
    assert offline_server.status == "closed" and mock.status == "closed"
