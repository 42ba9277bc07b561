"""avsb.openfeature.AvsbProvider through OpenFeature's own client API, over MockAvsbServer and over
a real AvsbServer against the real server binary."""

from __future__ import annotations

import datetime
import itertools
import threading
import time

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEvent
from openfeature.exception import ErrorCode, ProviderNotReadyError
from openfeature.flag_evaluation import Reason
from openfeature.provider import ProviderStatus
from openfeature.track import TrackingEventDetails

from avsb import AvsbServer
from avsb.openfeature import AvsbProvider, to_avsb_context
from avsb.test_utils import FlagBuilder, MockAvsbServer, TestData
from avsb_process import free_port

_domains = itertools.count()


@pytest.fixture
def bind():
    """Sets a provider for a fresh OpenFeature domain and returns that domain's client; resets
    OpenFeature's global state afterwards."""

    def bind(provider):
        domain = f"avsb-test-{next(_domains)}"
        api.set_provider_and_wait(provider, domain)
        return api.get_client(domain)

    yield bind
    api.shutdown()


class Recorder:
    """Collects provider events of one type, from OpenFeature's handler threads."""

    def __init__(self):
        self.events = []
        self._arrived = threading.Event()

    def __call__(self, details):
        self.events.append(details)
        self._arrived.set()

    def wait(self, timeout=10.0):
        assert self._arrived.wait(timeout), "no provider event arrived"
        self._arrived.clear()
        return self.events[-1]


def ctx(key=None, **attributes):
    return EvaluationContext(targeting_key=key, attributes=attributes)


@pytest.fixture
def mock():
    return MockAvsbServer(
        flags=[
            TestData.flag("checkout-v2").variation_for_user("u_1", True).fallthrough_variation(False),
            TestData.flag("theme").variations("light", "dark").if_match("plan", "pro").then_return(1).fallthrough_variation(0),
            TestData.flag("limit").value_for_all(25),
            TestData.flag("ratio").value_for_all(0.25),
            TestData.flag("config").value_for_all({"retries": 3, "hosts": ["a", "b"]}),
            TestData.flag("split").percentage_rollout({True: 50, False: 50}),
            TestData.flag("org-flag").identifier_type("ACCOUNT").variation_for_key("account", "acme", True).fallthrough_variation(False),
            FlagBuilder("dark-launch").variations("on", "off").on(False),
            TestData.flag("adults").rule("${age >= 18}").then_return(True).fallthrough_variation(False),
        ]
    )


# -- resolution through the client ------------------------------------------------------------------


def test_metadata(bind, mock):
    client = bind(AvsbProvider(mock))
    assert client.get_provider_status() == ProviderStatus.READY
    assert client.get_metadata().domain.startswith("avsb-test-")
    assert client.provider.get_metadata().name == "avsb"


def test_boolean_values_and_details(bind, mock):
    client = bind(AvsbProvider(mock))
    assert client.get_boolean_value("checkout-v2", False, ctx("u_1")) is True
    assert client.get_boolean_value("checkout-v2", True, ctx("u_2")) is False
    d = client.get_boolean_details("checkout-v2", False, ctx("u_1"))
    assert (d.flag_key, d.value, d.variant, d.reason, d.error_code) == ("checkout-v2", True, "true", Reason.TARGETING_MATCH, None)
    assert d.flag_metadata["bucketValue"] == 0
    assert d.flag_metadata["testVersion"] == "1"
    assert client.get_boolean_details("checkout-v2", True, ctx("u_2")).reason == Reason.STATIC
    assert client.get_boolean_details("split", True, ctx("u_2")).reason == Reason.SPLIT


def test_typed_values(bind, mock):
    client = bind(AvsbProvider(mock))
    assert client.get_string_value("theme", "x", ctx("u", plan="pro")) == "dark"
    assert client.get_string_value("theme", "x", ctx("u", plan="free")) == "light"
    assert client.get_integer_value("limit", 0, ctx("u")) == 25
    assert client.get_float_value("ratio", 0.0, ctx("u")) == 0.25
    assert client.get_float_value("limit", 0.0, ctx("u")) == 25.0
    assert client.get_object_value("config", {}, ctx("u")) == {"retries": 3, "hosts": ["a", "b"]}
    d = client.get_string_details("theme", "x", ctx("u", plan="pro"))
    assert (d.variant, d.reason) == ("variation-1", Reason.TARGETING_MATCH)


def test_type_mismatch(bind, mock):
    client = bind(AvsbProvider(mock))
    d = client.get_integer_details("theme", 7, ctx("u"))
    assert (d.value, d.reason, d.error_code) == (7, Reason.ERROR, ErrorCode.TYPE_MISMATCH)
    assert "stringValue" in d.error_message
    d = client.get_boolean_details("limit", False, ctx("u"))
    assert (d.value, d.error_code) == (False, ErrorCode.TYPE_MISMATCH)
    # A string payload is not an object: the provider says so itself.
    d = client.get_object_details("theme", {"fallback": True}, ctx("u"))
    assert (d.value, d.reason, d.error_code) == ({"fallback": True}, Reason.ERROR, ErrorCode.TYPE_MISMATCH)


def test_flag_not_found(bind, mock):
    client = bind(AvsbProvider(mock))
    d = client.get_boolean_details("no-such-flag", True, ctx("u"))
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND)
    assert "no-such-flag" in d.error_message


def test_targeting_key_missing(bind, mock):
    client = bind(AvsbProvider(mock))
    d = client.get_boolean_details("checkout-v2", True, ctx(plan="pro"))
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.TARGETING_KEY_MISSING)
    d = client.get_boolean_details("checkout-v2", True, None)
    assert d.error_code == ErrorCode.TARGETING_KEY_MISSING


def test_off_flags_and_rule_errors(bind, mock):
    client = bind(AvsbProvider(mock))
    d = client.get_string_details("dark-launch", "default", ctx("u"))
    assert (d.value, d.reason, d.error_code) == ("default", Reason.DEFAULT, None)
    d = client.get_boolean_details("adults", True, ctx("u"))  # the rule reads 'age', which is missing
    assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.GENERAL)
    assert client.get_boolean_value("adults", False, ctx("u", age=30)) is True


def test_context_kinds_and_multi_contexts(bind, mock):
    client = bind(AvsbProvider(mock))
    assert client.get_boolean_value("org-flag", False, ctx("acme", kind="account")) is True
    assert client.get_boolean_value("org-flag", True, ctx("other", kind="account")) is False
    multi = ctx("u_1", kind="multi", user={"plan": "pro"}, account={"key": "acme"})
    assert client.get_boolean_value("org-flag", False, multi) is True
    assert client.get_boolean_value("checkout-v2", False, multi) is True  # the targeting key is the user's
    assert client.get_string_value("theme", "x", multi) == "dark"
    # A user's targeting key does not make an account.
    d = client.get_boolean_details("org-flag", False, ctx("acme"))
    assert d.error_code == ErrorCode.TARGETING_KEY_MISSING


def test_contexts_merge_as_openfeature_says(bind, mock):
    client = bind(AvsbProvider(mock))
    api.set_evaluation_context(ctx("u_1", plan="free"))
    assert client.get_string_value("theme", "x") == "light"
    assert client.get_boolean_value("checkout-v2", False) is True
    client.context = ctx(plan="pro")
    assert client.get_string_value("theme", "x") == "dark"
    assert client.get_string_value("theme", "x", ctx("u_9", plan="free")) == "light"


def test_context_conversion():
    assert to_avsb_context(None) == {"kind": "user"}
    assert to_avsb_context(ctx("u", plan="pro", n=3)) == {"kind": "user", "key": "u", "plan": "pro", "n": 3}
    assert to_avsb_context(ctx("a", kind="account", tier="gold")) == {"kind": "account", "key": "a", "tier": "gold"}
    # The targeting key wins over a 'key' attribute; datetimes become ISO 8601 text.
    when = datetime.datetime(2024, 5, 1, 12, 30, tzinfo=datetime.timezone.utc)
    converted = to_avsb_context(EvaluationContext("u", {"key": "other", "signup": when}))
    assert converted == {"kind": "user", "key": "u", "signup": "2024-05-01T12:30:00+00:00"}
    multi = to_avsb_context(ctx("u", kind="multi", user={"plan": "pro"}, account={"key": "a"}, country="FR", plan="free"))
    assert multi == {
        "kind": "multi",
        "user": {"plan": "pro", "key": "u", "country": "FR"},
        "account": {"key": "a"},
    }
    # A user context with its own key keeps it; without a user context, one is made.
    assert to_avsb_context(ctx("u", kind="multi", user={"key": "x"}))["user"] == {"key": "x"}
    assert to_avsb_context(ctx("u", kind="multi", account={"key": "a"})) == {
        "kind": "multi",
        "account": {"key": "a"},
        "user": {"key": "u"},
    }
    assert to_avsb_context(ctx(kind="multi", account={"key": "a"})) == {"kind": "multi", "account": {"key": "a"}}


def test_top_level_attributes_of_a_multi_context_are_the_users(bind, mock):
    client = bind(AvsbProvider(mock))
    multi = ctx("u", kind="multi", account={"key": "acme"}, plan="pro")
    assert client.get_string_value("theme", "x", multi) == "dark"
    assert client.get_boolean_value("org-flag", False, multi) is True


# -- resolving never raises -----------------------------------------------------------------------


class BrokenServer:
    """A server whose evaluation fails: the provider must still answer."""

    engine = None

    def on_change(self, listener):
        pass

    def is_ready(self):
        return True

    def on_ready_sync(self, timeout=5.0):
        return True

    def for_user(self, context, force_groups=None):
        raise RuntimeError("boom")

    def close_sync(self, timeout=5.0):
        pass


def test_resolve_time_failures_become_general_errors(bind):
    provider = AvsbProvider(BrokenServer())
    client = bind(provider)
    for getter, default in [
        (client.get_boolean_details, True),
        (client.get_string_details, "s"),
        (client.get_integer_details, 1),
        (client.get_float_details, 1.5),
        (client.get_object_details, {"a": 1}),
    ]:
        d = getter("f", default, ctx("u"))
        assert (d.value, d.reason, d.error_code) == (default, Reason.ERROR, ErrorCode.GENERAL)
        assert "boom" in d.error_message
    direct = provider.resolve_boolean_details("f", False, ctx("u"))
    assert (direct.value, direct.error_code) == (False, ErrorCode.GENERAL)
    client.track("click", ctx("u"))  # does not raise


def test_odd_attribute_values_do_not_raise(bind, mock, caplog):
    client = bind(AvsbProvider(mock))
    d = client.get_string_details("theme", "x", ctx("u", plan=["a", "list"], other={"nested": 1}))
    # 'plan' could not be used, so it is absent (the schema's default): the fallthrough, and a log line.
    assert (d.value, d.error_code) == ("light", None)
    assert any("context attribute 'plan'" in r.getMessage() for r in caplog.records)


# -- tracking -------------------------------------------------------------------------------------


def test_track(bind, mock):
    client = bind(AvsbProvider(mock))
    client.track("purchase", ctx("u_1"), TrackingEventDetails(value=149.99, attributes={"currency": "EUR"}))
    client.track("click", ctx("u_2"))
    assert [(e["identifiers"], e["key"], e.get("value"), e.get("properties")) for e in mock.tracked] == [
        ({"USER": "u_1"}, "purchase", 149.99, {"currency": "EUR"}),
        ({"USER": "u_2"}, "click", None, None),
    ]


# -- lifecycle ------------------------------------------------------------------------------------


def test_configuration_changed_after_an_update(bind, mock):
    client = bind(AvsbProvider(mock))
    changed = Recorder()
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed)
    assert client.get_boolean_value("checkout-v2", True, ctx("u_2")) is False
    mock.update(TestData.flag("checkout-v2").variation_for_all(True))
    event = changed.wait()
    assert event.flags_changed == ["checkout-v2"]
    assert event.provider_name == "avsb"
    assert client.get_boolean_value("checkout-v2", False, ctx("u_2")) is True


class LateServer(MockAvsbServer):
    """A mock that only becomes ready when told to."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ready = False

    def is_ready(self):
        return self.ready

    def on_ready_sync(self, timeout=5.0):
        return self.ready

    def become_ready(self):
        self.ready = True
        self.update(TestData.flag("late").variation_for_all(True))


def test_a_server_that_is_not_ready_makes_initialization_fail_then_ready_later():
    server = LateServer()
    provider = AvsbProvider(server, ready_timeout=0.1)
    errors, ready = Recorder(), Recorder()
    api.add_handler(ProviderEvent.PROVIDER_ERROR, errors)
    try:
        with pytest.raises(ProviderNotReadyError):
            api.set_provider_and_wait(provider, "late-domain")
        client = api.get_client("late-domain")
        assert errors.wait().error_code == ErrorCode.PROVIDER_NOT_READY
        assert client.get_provider_status() == ProviderStatus.ERROR
        client.add_handler(ProviderEvent.PROVIDER_READY, ready)
        server.become_ready()
        ready.wait()
        assert client.get_provider_status() == ProviderStatus.READY
        assert client.get_boolean_value("late", False, ctx("u")) is True
    finally:
        api.shutdown()


def test_shutdown_closes_only_a_server_the_provider_owns(bind):
    shared = MockAvsbServer(flags=[TestData.flag("f").build()])
    bind(AvsbProvider(shared))
    owned = MockAvsbServer(flags=[TestData.flag("f").build()])
    bind(AvsbProvider(owned, owns_server=True))
    api.shutdown()
    assert shared.status == "ready"
    assert owned.status == "closed"


def test_a_provider_makes_and_owns_a_server_from_options(tmp_path):
    port = free_port()  # nobody listens: the provider never becomes ready
    provider = AvsbProvider(sdk_key="sdk-nothing", base_url=f"http://127.0.0.1:{port}", cache_dir=tmp_path, ready_timeout=0.3)
    server = provider.server
    assert isinstance(server, AvsbServer)
    try:
        with pytest.raises(ProviderNotReadyError):
            api.set_provider_and_wait(provider, "dead-domain")
        d = api.get_client("dead-domain").get_boolean_details("checkout-v2", True, ctx("u_1"))
        assert (d.value, d.reason, d.error_code) == (True, Reason.ERROR, ErrorCode.PROVIDER_NOT_READY)
    finally:
        api.shutdown()
    assert server.status == "closed"
    with pytest.raises(TypeError):
        AvsbProvider(MockAvsbServer(), sdk_key="x")


# -- against the real server ---------------------------------------------------------------------


def test_real_server_resolution(avsb_server, make_sdk, bind):
    sdk = make_sdk(avsb_server)
    client = bind(AvsbProvider(sdk, ready_timeout=10))
    assert client.get_provider_status() == ProviderStatus.READY
    d = client.get_boolean_details("checkout-v2", False, ctx("u_1"))
    assert (d.value, d.variant, d.reason, d.error_code) == (True, "on", Reason.TARGETING_MATCH, None)
    assert d.flag_metadata["bucketValue"] == 1
    assert client.get_string_value("ui-theme", "x", ctx("u_2", plan="pro")) == "dark"
    # Every answer equals the SDK's own.
    for key in ("u_2", "u_3", "u_4", "someone"):
        assert client.get_boolean_value("checkout-v2", None, ctx(key)) == sdk.for_user({"kind": "user", "key": key}).get_bool_flag("checkout-v2", None)
    d = client.get_integer_details("ui-theme", 3, ctx("u_2", plan="pro"))
    assert (d.value, d.error_code) == (3, ErrorCode.TYPE_MISMATCH)
    d = client.get_boolean_details("no-such-flag", True, ctx("u_2"))
    assert (d.value, d.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    d = client.get_boolean_details("checkout-v2", True, ctx())
    assert (d.value, d.error_code) == (True, ErrorCode.TARGETING_KEY_MISSING)


def test_real_server_configuration_change(avsb_server, make_sdk, bind):
    sdk = make_sdk(avsb_server)
    client = bind(AvsbProvider(sdk, ready_timeout=10))
    changed = Recorder()
    client.add_handler(ProviderEvent.PROVIDER_CONFIGURATION_CHANGED, changed)
    assert client.get_string_details("of-banner", "none", ctx("u_2")).error_code == ErrorCode.FLAG_NOT_FOUND
    definition = {
        "version": "1",
        "salt": "of-banner",
        "testType": "USER",
        "buckets": [
            {"name": "hidden", "value": 0, "payload": {"stringValue": "hidden"}},
            {"name": "shown", "value": 1, "payload": {"stringValue": "shown"}},
        ],
        "allocations": [{"rule": None, "ranges": [{"bucketValue": 1, "length": 1.0}]}],
    }
    started = time.monotonic()
    avsb_server.put_test("of-banner", definition)
    event = changed.wait(timeout=10)
    assert event.flags_changed == ["of-banner"]
    assert time.monotonic() - started < 10
    d = client.get_string_details("of-banner", "none", ctx("u_2"))
    assert (d.value, d.variant, d.error_code) == ("shown", "shown", None)


def test_real_server_tracking_reaches_the_server(avsb_server, make_sdk, bind):
    sdk = make_sdk(avsb_server)
    client = bind(AvsbProvider(sdk, ready_timeout=10))
    client.track("of-purchase", ctx("u_77"), TrackingEventDetails(value=9.5, attributes={"sku": "x1"}))
    assert sdk.flush_sync(timeout=10) is True
    stored = [e for e in avsb_server.events() if e.get("key") == "of-purchase"]
    assert len(stored) == 1
    assert stored[0].get("value") == 9.5
