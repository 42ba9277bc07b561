"""avsb.test_utils: TestData's builder (LaunchDarkly's API plus rollouts, identifier types and raw
rules) compiled by the real engine, and MockAvsbServer's AvsbServer-like surface."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from avsb import Engine
from avsb.test_utils import BuiltFlag, FlagBuilder, MockAvsbServer, TestData

EXAMPLES = Path(__file__).resolve().parents[3] / "spec" / "examples"


def serve(*flags, **kwargs) -> MockAvsbServer:
    """A mock over the given builders; the engine must have kept every one of them."""
    mock = MockAvsbServer(flags=[f.build() if isinstance(f, FlagBuilder) else f for f in flags], **kwargs)
    assert mock.engine is not None
    assert mock.engine.diagnostics == []
    for f in flags:
        assert f.key in mock.engine
    return mock


def user(key="u", **attributes) -> dict:
    return {"kind": "user", "key": key, **attributes}


def bool_details(mock, context, flag="f", default=None):
    d = mock.for_user(context).get_bool_flag_details(flag, default)
    return d.value, d.variant, d.reason, d.error_code


def compiles_alone(flag: FlagBuilder) -> Engine:
    """The built definition in a one-test matrix, without the mock: no diagnostics at all."""
    built = flag.build()
    matrix = {"audit": {"version": "1", "updated": 0, "updatedBy": "test"}, "tests": {built.key: built.definition}}
    engine = Engine.from_matrix(json.dumps(matrix))
    assert engine.diagnostics == []
    assert engine.test_names == [built.key]
    return engine


# -- defaults, on/off, fallthrough -------------------------------------------------------------------


def test_a_new_flag_is_a_boolean_flag_serving_true():
    flag = TestData.flag("f")
    mock = serve(flag)
    assert bool_details(mock, user()) == (True, "true", "STATIC", None)
    definition = flag.build().definition
    assert [b["name"] for b in definition["buckets"]] == ["true", "false"]
    assert [b["payload"] for b in definition["buckets"]] == [{"booleanValue": True}, {"booleanValue": False}]


def test_guide_flag_details():
    flag = TestData.flag("checkout-v2").boolean_flag().variation_for_user("u_1", True).fallthrough_variation(False)
    mock = serve(flag)
    d = mock.for_user(user("u_1")).get_bool_flag_details("checkout-v2", False)
    assert (d.value, d.variant, d.reason, d.error_code) == (True, "true", "TARGETING_MATCH", None)
    assert d.flag_metadata["bucketValue"] == 0
    assert bool_details(mock, user("u_2"), "checkout-v2", True) == (False, "false", "STATIC", None)


def test_off_serves_the_off_variation_to_everyone_ignoring_targets_and_rules():
    flag = (
        TestData.flag("f")
        .variation_for_user("u_1", True)
        .if_match("plan", "pro").then_return(True)
        .fallthrough_variation(True)
        .off_variation(False)
        .on(False)
    )
    mock = serve(flag)
    for context in (user("u_1"), user("u_2", plan="pro"), user("u_3")):
        assert mock.for_user(context).get_bool_flag("f", None) is False
    # Back on: the same builder serves its targets and rules again.
    mock.update(flag.on(True))
    assert mock.for_user(user("u_1")).get_bool_flag("f", None) is True
    assert mock.for_user(user("u_2", plan="pro")).get_bool_flag("f", None) is True


def test_off_without_an_off_variation_gives_the_callers_default():
    flag = FlagBuilder("colors").variations("red", "blue").variation_for_user("u_1", 1).fallthrough_variation(0).on(False)
    mock = serve(flag)
    for key in ("u_1", "u_2"):
        d = mock.for_user(user(key)).get_string_flag_details("colors", "caller")
        assert (d.value, d.variant, d.reason, d.error_code) == ("caller", None, "DEFAULT", None)


def test_variations_keep_the_flags_indexes_as_in_launchdarkly():
    # TestData.flag() starts boolean (off = variation 1); new variations keep that index.
    flag = TestData.flag("colors").variations("red", "blue").on(False)
    assert serve(flag).for_user(user()).get_string_flag("colors", None) == "blue"


def test_no_fallthrough_leaves_unmatched_contexts_to_the_default():
    flag = FlagBuilder("colors").variations("red", "blue").if_match("plan", "pro").then_return(1)
    mock = serve(flag)
    assert mock.for_user(user(plan="pro")).get_string_flag("colors", "caller") == "blue"
    d = mock.for_user(user(plan="free")).get_string_flag_details("colors", "caller")
    assert (d.value, d.reason, d.error_code) == ("caller", "DEFAULT", None)
    # Not even a rule: nobody is assigned, and the engine still keeps the test.
    mock.update(FlagBuilder("bare").variations("x", "y"))
    assert mock.engine.diagnostics == []
    assert mock.for_user(user()).get_string_flag("bare", "caller") == "caller"


def test_variation_for_all_clears_targets_and_rules():
    flag = TestData.flag("f").variation_for_user("u_1", False).if_match("plan", "pro").then_return(False).variation_for_all(True)
    mock = serve(flag)
    assert mock.for_user(user("u_1", plan="pro")).get_bool_flag("f", None) is True
    assert flag.build().definition["targets"] == []
    assert [a["rule"] for a in flag.build().definition["allocations"]] == [None]


def test_value_for_all_serves_one_typed_value():
    mock = serve(
        TestData.flag("s").value_for_all("hello"),
        TestData.flag("i").value_for_all(42),
        TestData.flag("d").value_for_all(2.5),
        TestData.flag("j").value_for_all({"limit": 3, "tags": ["a", "b"]}),
        TestData.flag("a").value_for_all([1, 2, 3]),
    )
    scope = mock.for_user(user())
    assert scope.get_string_flag("s", None) == "hello"
    assert scope.get_int_flag("i", None) == 42
    assert scope.get_float_flag("d", None) == 2.5
    assert scope.get_json_flag("j", None) == {"limit": 3, "tags": ["a", "b"]}
    assert scope.get_json_flag("a", None) == [1, 2, 3]
    # A wrong getter is a type mismatch, not a wrong value.
    d = scope.get_bool_flag_details("s", False)
    assert (d.value, d.error_code) == (False, "TYPE_MISMATCH")


@pytest.mark.parametrize(
    ("values", "payload_type", "payloads"),
    [
        ((True, False), "booleanValue", [True, False]),
        (("a", "b"), "stringValue", ["a", "b"]),
        ((1, 2), "longValue", [1, 2]),
        ((1, 2.5), "doubleValue", [1.0, 2.5]),
        (([1], {"k": "v"}), "json", [[1], {"k": "v"}]),
        (("a", 1), "json", ["a", 1]),
        (((1, 2),), "json", [[1, 2]]),
    ],
)
def test_variation_values_become_one_payload_type(values, payload_type, payloads):
    flag = TestData.flag("f").variations(*values).fallthrough_variation(0)
    definition = compiles_alone(flag).definition("f")
    assert [b["payload"] for b in definition["buckets"]] == [{payload_type: p} for p in payloads]


def test_bucket_names():
    assert [b["name"] for b in TestData.flag("f").build().definition["buckets"]] == ["true", "false"]
    assert [b["name"] for b in TestData.flag("f").variations(False, True).build().definition["buckets"]] == ["false", "true"]
    assert [b["name"] for b in TestData.flag("f").variations("x", "y", "z").build().definition["buckets"]] == [
        "variation-0",
        "variation-1",
        "variation-2",
    ]
    named = TestData.flag("f").variations("#fff", "#000", names=["light", "dark"]).fallthrough_variation(1)
    mock = serve(named)
    d = mock.for_user(user()).get_string_flag_details("f", None)
    assert (d.value, d.variant) == ("#000", "dark")


def test_boolean_flag_keeps_a_boolean_flags_settings_and_converts_others():
    flag = TestData.flag("f").fallthrough_variation(False).boolean_flag()
    assert serve(flag).for_user(user()).get_bool_flag("f", None) is False
    converted = TestData.flag("f").variations("a", "b").fallthrough_variation(1).boolean_flag()
    assert serve(converted).for_user(user()).get_bool_flag("f", None) is True


def test_a_bool_variation_makes_the_flag_boolean_as_in_launchdarkly():
    flag = TestData.flag("f").variations("a", "b").variation_for_user("u_1", False)
    mock = serve(flag)
    assert mock.for_user(user("u_1")).get_bool_flag("f", None) is False
    assert mock.for_user(user("u_2")).get_bool_flag("f", None) is True


# -- targets, rules, fallthrough: order --------------------------------------------------------------


def test_targets_beat_rules_rules_go_in_order_and_the_fallthrough_is_last():
    flag = (
        TestData.flag("tier")
        .variations("target", "rule-1", "rule-2", "fallthrough")
        .variation_for_user("vip", 0)
        .if_match("plan", "pro").then_return(1)
        .if_match("country", "FR").then_return(2)
        .fallthrough_variation(3)
    )
    mock = serve(flag)

    def tier(**context):
        return mock.for_user({"kind": "user", **context}).get_string_flag("tier", None)

    assert tier(key="vip", plan="pro", country="FR") == "target"
    assert tier(key="a", plan="pro", country="FR") == "rule-1"
    assert tier(key="a", plan="free", country="FR") == "rule-2"
    assert tier(key="a", country="FR") == "rule-2"
    assert tier(key="a", plan="free", country="US") == "fallthrough"
    assert tier(key="a") == "fallthrough"


def test_a_key_targeted_twice_keeps_the_last_variation_and_clear_targets_forgets_it():
    flag = TestData.flag("f").fallthrough_variation(False).variation_for_user("u_1", True).variation_for_user("u_1", False)
    assert serve(flag).for_user(user("u_1")).get_bool_flag("f", None) is False
    assert flag.build().definition["targets"] == [{"bucketValue": 1, "identifiers": ["u_1"]}]
    flag.variation_for_user("u_1", True).variation_for_user("u_2", True).variation_for_key("user", "u_3", False)
    assert flag.build().definition["targets"] == [
        {"bucketValue": 0, "identifiers": ["u_1", "u_2"]},
        {"bucketValue": 1, "identifiers": ["u_3"]},
    ]
    flag.clear_targets()
    assert flag.build().definition["targets"] == []
    assert serve(flag).for_user(user("u_1")).get_bool_flag("f", None) is False


def test_clear_rules():
    flag = TestData.flag("f").fallthrough_variation(False).if_match("plan", "pro").then_return(True).clear_rules()
    assert serve(flag).for_user(user(plan="pro")).get_bool_flag("f", None) is False


def test_if_match_is_an_or_over_values_and_and_match_an_and_over_clauses():
    flag = (
        TestData.flag("f")
        .fallthrough_variation(False)
        .if_match("plan", "pro", "team").and_match("country", "US", "CA").then_return(True)
    )
    mock = serve(flag)
    assert flag.build().definition["allocations"][0]["rule"] == (
        "${!empty plan && (plan == 'pro' || plan == 'team') && !empty country && (country == 'US' || country == 'CA')}"
    )
    for plan, country, expected in [
        ("pro", "US", True),
        ("team", "CA", True),
        ("pro", "FR", False),
        ("free", "US", False),
    ]:
        assert mock.for_user(user(plan=plan, country=country)).get_bool_flag("f", None) is expected


def test_if_not_match_and_and_not_match():
    flag = (
        TestData.flag("f")
        .fallthrough_variation(False)
        .if_not_match("plan", "free", "trial").and_not_match("country", "FR").then_return(True)
    )
    mock = serve(flag)
    assert mock.for_user(user(plan="pro", country="US")).get_bool_flag("f", None) is True
    assert mock.for_user(user(plan="trial", country="US")).get_bool_flag("f", None) is False
    assert mock.for_user(user(plan="pro", country="FR")).get_bool_flag("f", None) is False


def test_a_missing_attribute_never_matches_a_clause_even_negated():
    flag = (
        TestData.flag("f")
        .variations("matched", "negated", "fallthrough")
        .if_match("plan", "pro").then_return(0)
        .if_not_match("plan", "pro").then_return(1)
        .fallthrough_variation(2)
    )
    mock = serve(flag)
    assert mock.for_user(user(plan="pro")).get_string_flag("f", None) == "matched"
    assert mock.for_user(user(plan="free")).get_string_flag("f", None) == "negated"
    d = mock.for_user(user()).get_string_flag_details("f", None)
    assert (d.value, d.error_code) == ("fallthrough", None)
    # None counts as absent, as in LaunchDarkly; so does '' (the schema's default for an attribute).
    assert mock.for_user(user(plan=None)).get_string_flag("f", None) == "fallthrough"
    assert mock.for_user(user(plan="")).get_string_flag("f", None) == "fallthrough"


def test_numbers_and_bools_compare_unquoted():
    flag = (
        TestData.flag("f")
        .variations("beta", "big", "small", "none")
        .if_match("beta", True).then_return(0)
        .if_match("seats", 100, 250).then_return(1)
        .if_match("ratio", 0.5, -1.25).then_return(2)
        .fallthrough_variation(3)
    )
    rules = [a["rule"] for a in flag.build().definition["allocations"]]
    assert "beta == true" in rules[0]
    assert "(seats == 100 || seats == 250)" in rules[1]
    assert "(ratio == 0.5 || ratio == -1.25)" in rules[2]
    mock = serve(flag)
    assert mock.for_user(user(beta=True)).get_string_flag("f", None) == "beta"
    assert mock.for_user(user(beta=False, seats=250)).get_string_flag("f", None) == "big"
    assert mock.for_user(user(seats=99, ratio=-1.25)).get_string_flag("f", None) == "small"
    assert mock.for_user(user(seats=99, ratio=0.25)).get_string_flag("f", None) == "none"


def test_if_match_without_values_never_matches():
    flag = TestData.flag("f").fallthrough_variation(False).if_match("plan").then_return(True)
    assert serve(flag).for_user(user(plan="pro")).get_bool_flag("f", None) is False


@pytest.mark.parametrize(
    "value",
    [
        "it's",
        'say "hi"',
        "back\\slash",
        "\\'",
        "ends with a backslash\\",
        "' || true || '",
        "${nested}",
        "caf\u00e9 \u2603",
    ],
)
def test_rule_values_are_quoted_and_escaped(value):
    flag = TestData.flag("f").fallthrough_variation(False).if_match("name", value).then_return(True)
    mock = serve(flag)
    assert mock.for_user(user(name=value)).get_bool_flag("f", None) is True
    assert mock.for_user(user(name=value + "x")).get_bool_flag("f", None) is False
    assert mock.for_user(user(name="other")).get_bool_flag("f", None) is False


def test_the_escaped_literal_text():
    rule = TestData.flag("f").if_match("name", "it's a \\ test").then_return(True).build().definition["allocations"][0]["rule"]
    assert rule == "${!empty name && name == 'it\\'s a \\\\ test'}"


def test_if_match_context_reads_the_attribute_whichever_kind_carries_it():
    # Context variables have one namespace, in the mock as in production: a multi-context's
    # attributes are variables whatever the kind that carries them.
    flag = (
        TestData.flag("f")
        .fallthrough_variation(False)
        .if_match_context("account", "tier", "gold").then_return(True)
    )
    mock = serve(flag)
    both = {"kind": "multi", "user": {"key": "u"}, "account": {"key": "a", "tier": "gold"}}
    assert mock.for_user(both).get_bool_flag("f", None) is True
    assert mock.for_user(user(tier="gold")).get_bool_flag("f", None) is True
    assert mock.for_user(user(tier="silver")).get_bool_flag("f", None) is False
    user_rule = TestData.flag("g").fallthrough_variation(False).if_match("tier", "gold").then_return(True)
    mock.update(user_rule)
    assert mock.for_user(both).get_bool_flag("g", None) is True


def test_an_empty_string_is_an_absent_attribute():
    flag = (
        TestData.flag("f")
        .variations("empty", "not-empty", "fallthrough")
        .if_match("name", "").then_return(0)
        .if_not_match("name", "").then_return(1)
        .fallthrough_variation(2)
    )
    mock = serve(flag)
    assert mock.for_user(user(name="")).get_string_flag("f", None) == "fallthrough"
    assert mock.for_user(user()).get_string_flag("f", None) == "fallthrough"
    assert mock.for_user(user(name="x")).get_string_flag("f", None) == "not-empty"


def test_if_not_match_context_and_the_context_forms_of_and():
    flag = (
        TestData.flag("f")
        .fallthrough_variation(False)
        .if_not_match_context("account", "tier", "free")
        .and_match_context("account", "region", "eu")
        .and_not_match_context("account", "blocked", True)
        .then_return(True)
    )
    mock = serve(flag)

    def for_account(**attributes):
        context = {"kind": "multi", "user": {"key": "u"}, "account": {"key": "a", **attributes}}
        return mock.for_user(context).get_bool_flag("f", None)

    assert for_account(tier="gold", region="eu", blocked=False) is True
    assert for_account(tier="free", region="eu", blocked=False) is False
    assert for_account(tier="gold", region="us", blocked=False) is False
    assert for_account(tier="gold", region="eu", blocked=True) is False
    assert for_account(region="eu", blocked=False) is False  # no tier: the negated clause fails too


def test_raw_rules():
    flag = (
        TestData.flag("f")
        .variations("adult-us", "adult", "other")
        .rule("${age >= 18}").and_match("country", "US").then_return(0)
        .rule("age >= 18").then_return(1)
        .fallthrough_variation(2)
    )
    definition = flag.build().definition
    assert definition["allocations"][0]["rule"] == "${(age >= 18) && !empty country && country == 'US'}"
    assert definition["allocations"][1]["rule"] == "${age >= 18}"
    mock = serve(flag)
    assert mock.for_user(user(age=30, country="US")).get_string_flag("f", None) == "adult-us"
    assert mock.for_user(user(age=30, country="FR")).get_string_flag("f", None) == "adult"
    assert mock.for_user(user(age=12, country="US")).get_string_flag("f", None) == "other"
    # A raw rule is evaluated as written: without 'age' it fails, and the caller gets its default.
    d = mock.for_user(user(country="US")).get_string_flag_details("f", "caller")
    assert (d.value, d.reason, d.error_code) == ("caller", "ERROR", "GENERAL")
    assert "age" in d.error_message


def test_a_raw_rule_the_engine_refuses_raises_at_configuration_time():
    with pytest.raises(ValueError, match="refused"):
        MockAvsbServer(flags=[TestData.flag("f").rule("${plan ==}").then_return(True).build()])


# -- rollouts ------------------------------------------------------------------------------------------


def proportions(mock, flag, keys, getter="get_bool_flag", **attributes):
    counts: dict = {}
    for key in keys:
        value = getattr(mock.for_user(user(key, **attributes)), getter)(flag, None)
        counts[value] = counts.get(value, 0) + 1
    return {value: n / len(keys) for value, n in counts.items()}


KEYS = [f"user-{i}" for i in range(5000)]


def test_percentage_rollout_splits_the_fallthrough():
    flag = TestData.flag("f").percentage_rollout({True: 30, False: 70})
    assert flag.build().definition["allocations"] == [
        {"rule": None, "ranges": [{"bucketValue": 0, "length": 0.3}, {"bucketValue": 1, "length": 0.7}]}
    ]
    mock = serve(flag)
    shares = proportions(mock, "f", KEYS)
    assert shares[True] == pytest.approx(0.3, abs=0.03)
    assert shares[False] == pytest.approx(0.7, abs=0.03)
    d = mock.for_user(user("user-1")).get_bool_flag_details("f", None)
    assert d.reason == "SPLIT"
    # Sticky: the same key always gets the same value.
    assert all(mock.for_user(user(k)).get_bool_flag("f", None) == mock.for_user(user(k)).get_bool_flag("f", None) for k in KEYS[:50])


def test_percentage_rollout_by_index_and_by_list():
    by_index = TestData.flag("c").variations("a", "b", "c").percentage_rollout({2: 20, 0: 50, 1: 30})
    by_list = TestData.flag("c").variations("a", "b", "c").percentage_rollout([50, 30, 20])
    assert by_index.build().definition == by_list.build().definition
    shares = proportions(serve(by_index), "c", KEYS, getter="get_string_flag")
    assert shares["a"] == pytest.approx(0.5, abs=0.03)
    assert shares["b"] == pytest.approx(0.3, abs=0.03)
    assert shares["c"] == pytest.approx(0.2, abs=0.03)


def test_a_rule_can_end_in_a_rollout():
    flag = TestData.flag("f").fallthrough_variation(False).if_match("plan", "pro").then_rollout({True: 50, False: 50})
    mock = serve(flag)
    assert proportions(mock, "f", KEYS[:2000], plan="free") == {False: 1.0}
    shares = proportions(mock, "f", KEYS, plan="pro")
    assert shares[True] == pytest.approx(0.5, abs=0.03)


def test_zero_percent_variations_are_left_out_and_one_hundred_percent_is_static():
    flag = TestData.flag("f").percentage_rollout({True: 0, False: 100})
    assert flag.build().definition["allocations"][0]["ranges"] == [{"bucketValue": 1, "length": 1.0}]
    assert proportions(serve(flag), "f", KEYS[:500]) == {False: 1.0}


@pytest.mark.parametrize("weights", [{True: 30, False: 60}, {True: -10, False: 110}, {}, {True: "50", False: 50}, [50, 50, 1]])
def test_bad_rollouts_raise(weights):
    with pytest.raises(ValueError):
        TestData.flag("f").percentage_rollout(weights).build()


def test_a_rollout_naming_a_variation_twice_raises():
    with pytest.raises(ValueError, match="twice"):
        TestData.flag("f").percentage_rollout({True: 50, 0: 50})


def test_shared_salts_hash_alike():
    a = TestData.flag("a").salt("&shared").percentage_rollout({True: 50, False: 50})
    b = TestData.flag("b").salt("&shared").percentage_rollout({True: 50, False: 50})
    c = TestData.flag("c").percentage_rollout({True: 50, False: 50})
    mock = serve(a, b, c)
    keys = KEYS[:300]
    values = {name: [mock.for_user(user(k)).get_bool_flag(name, None) for k in keys] for name in "abc"}
    assert values["a"] == values["b"]
    assert values["a"] != values["c"]


# -- identifier types -----------------------------------------------------------------------------------


def test_identifier_type_account_hashes_and_targets_accounts():
    flag = (
        TestData.flag("f")
        .identifier_type("account")
        .variation_for_key("account", "acme", True)
        .fallthrough_variation(False)
    )
    assert flag.build().definition["testType"] == "ACCOUNT"
    mock = serve(flag)
    acme = {"kind": "multi", "user": {"key": "u"}, "account": {"key": "acme"}}
    assert mock.for_user(acme).get_bool_flag("f", None) is True
    assert mock.for_user({"kind": "account", "key": "other"}).get_bool_flag("f", None) is False
    d = mock.for_user(user("acme")).get_bool_flag_details("f", "caller")
    assert (d.value, d.error_code) == ("caller", "TARGETING_KEY_MISSING")


def test_a_rollout_over_accounts_gives_every_user_of_an_account_the_same_value():
    flag = TestData.flag("f").identifier_type("ACCOUNT").percentage_rollout({True: 50, False: 50})
    mock = serve(flag)
    for account in ("a1", "a2", "a3", "a4"):
        values = {
            mock.for_user({"kind": "multi", "user": {"key": f"u{i}"}, "account": {"key": account}}).get_bool_flag("f", None)
            for i in range(30)
        }
        assert len(values) == 1


def test_targeting_another_kind_than_the_identifier_type_raises():
    flag = TestData.flag("f").variation_for_key("account", "acme", True)
    with pytest.raises(ValueError, match="identifier_type"):
        flag.build()


def test_a_custom_identifier_type():
    flag = (
        TestData.flag("f")
        .identifier_type("device")
        .variation_for_key("device", "d-1", True)
        .if_match_context("device", "os", "ios").then_return(True)
        .fallthrough_variation(False)
    )
    mock = serve(flag, TestData.flag("plain").if_match("plan", "pro").then_return(False))
    assert mock.for_user({"kind": "device", "key": "d-1"}).get_bool_flag("f", None) is True
    assert mock.for_user({"kind": "device", "key": "d-2", "os": "ios"}).get_bool_flag("f", None) is True
    assert mock.for_user({"kind": "device", "key": "d-2", "os": "android"}).get_bool_flag("f", None) is False
    d = mock.for_user(user()).get_bool_flag_details("f", "caller")
    assert (d.value, d.error_code) == ("caller", "TARGETING_KEY_MISSING")
    # The other flag still works under the generated schema.
    assert mock.for_user(user(plan="pro")).get_bool_flag("plain", None) is False
    assert mock.for_user(user()).get_bool_flag("plain", None) is True


# -- update, TestData instances --------------------------------------------------------------------------


def test_update_replaces_a_flag_for_scopes_already_made():
    mock = serve(TestData.flag("f").variation_for_all(False))
    changes = []
    mock.on_change(changes.append)
    scope = mock.for_user(user("u_1", plan="pro"))
    assert scope.get_bool_flag("f", None) is False
    mock.update(TestData.flag("f").fallthrough_variation(False).if_match("plan", "pro").then_return(True))
    assert scope.get_bool_flag("f", None) is True
    assert [engine.version for engine in changes] == [mock.engine.version] == ["2"]
    assert mock.engine.definition("f")["version"] == "2"
    # A new flag, as a BuiltFlag.
    mock.update(TestData.flag("g").value_for_all("new").build())
    assert scope.get_string_flag("g", None) == "new"
    assert mock.engine.definition("g")["version"] == "1"
    assert mock.engine.diagnostics == []


def test_a_refused_update_raises_and_keeps_the_flag():
    mock = serve(TestData.flag("f").variation_for_all(True))
    with pytest.raises(ValueError):
        mock.update(TestData.flag("f").rule("${)").then_return(False))
    assert mock.for_user(user()).get_bool_flag("f", None) is True


def test_remove():
    mock = serve(TestData.flag("f"))
    mock.remove("f")
    assert mock.for_user(user()).get_bool_flag_details("f", None).error_code == "FLAG_NOT_FOUND"


def test_test_data_instances_push_updates_like_launchdarkly():
    td = TestData.data_source()
    td.update(td.flag("f").variation_for_all(False))
    mock = MockAvsbServer(test_data=td)
    other = MockAvsbServer(test_data=td)
    assert mock.for_user(user()).get_bool_flag("f", None) is False
    # td.flag(key) copies the last builder: changing the copy changes nothing until update().
    builder = td.flag("f").variation_for_user("u_1", True)
    assert mock.for_user(user("u_1")).get_bool_flag("f", None) is False
    td.update(builder)
    for server in (mock, other):
        assert server.for_user(user("u_1")).get_bool_flag("f", None) is True
        assert server.for_user(user("u_2")).get_bool_flag("f", None) is False
    assert td.flag("new").build().definition == TestData.flag("new").build().definition


def test_a_flag_given_directly_wins_over_test_data():
    td = TestData.data_source().update(TestData.flag("f").variation_for_all(False))
    mock = MockAvsbServer(flags=[TestData.flag("f").variation_for_all(True).build()], test_data=td)
    assert mock.for_user(user()).get_bool_flag("f", None) is True


# -- events -----------------------------------------------------------------------------------------------


def test_exposures_and_tracked_events_are_recorded():
    mock = serve(TestData.flag("f").variation_for_user("u_1", True).fallthrough_variation(False))
    scope = mock.for_user(user("u_1"))
    assert scope.get_bool_flag("f", None) is True
    assert scope.get_bool_flag("f", None) is True  # deduplicated
    mock.for_user(user("u_2")).get_bool_flag("f", None)
    scope.track("purchase", 149.99, {"currency": "EUR"})
    scope.track("click")
    exposures = [(e["identifiers"], e["test"], e["bucket"], e["bucketName"], e["version"]) for e in mock.exposures]
    assert exposures == [
        ({"USER": "u_1"}, "f", 0, "true", "1"),
        ({"USER": "u_2"}, "f", 1, "false", "1"),
    ]
    tracked = mock.tracked
    assert [(e["identifiers"], e["key"], e.get("value"), e.get("properties")) for e in tracked] == [
        ({"USER": "u_1"}, "purchase", 149.99, {"currency": "EUR"}),
        ({"USER": "u_1"}, "click", None, None),
    ]
    assert len(mock.events) == 4
    stats = mock.event_stats()
    assert stats["recorded"] == 4 and stats["deduplicated"] == 1 and stats["pending"] == 0
    mock.clear_events()
    assert mock.events == [] and mock.tracked == [] and mock.exposures == []
    # A new bucket after an update is a new exposure.
    mock.update(TestData.flag("f").variation_for_all(False))
    scope.get_bool_flag("f", None)
    assert [(e["bucket"], e["version"]) for e in mock.exposures] == [(1, "2")]


def test_no_events_when_recording_is_off():
    mock = MockAvsbServer(flags=[TestData.flag("f").build()], record_events=False)
    scope = mock.for_user(user())
    scope.get_bool_flag("f", None)
    scope.track("click")
    assert mock.events == []


# -- the AvsbServer surface -------------------------------------------------------------------------------


def test_lifecycle_matches_avsb_server():
    with MockAvsbServer(flags=[TestData.flag("f").build()]) as mock:
        assert mock.on_ready_sync() is True
        assert asyncio.run(mock.on_ready()) is True
        assert mock.is_ready() is True
        assert mock.status == "ready"
        mock.for_user(user()).get_bool_flag("f", None)
        mock.flush()
        assert mock.flush_sync() is True
        assert len(mock.exposures) == 1
    assert mock.status == "closed"
    # Flags keep answering after close, as AvsbServer's do.
    assert mock.for_user(user()).get_bool_flag("f", None) is True
    mock.close_sync()  # idempotent
    other = MockAvsbServer()
    asyncio.run(other.close())
    assert other.status == "closed"
    assert other.for_user(user()).get_bool_flag_details("f", "d").error_code == "FLAG_NOT_FOUND"


def test_force_groups_and_get_group_work_as_in_the_sdk():
    mock = serve(TestData.flag("f").variation_for_all(False))
    assert mock.for_user(user(), force_groups="f0").get_bool_flag("f", None) is True
    assert tuple(mock.for_user(user()).get_group("f")) == ("false", 1, False)
    assert mock.for_user(user()).all_flags()["f"]["payload"] is False


def test_identify_sees_builder_rules():
    mock = serve(TestData.flag("f").fallthrough_variation(False).if_match("plan", "pro").then_return(True))
    assert mock.identify({"USER": "u"}, {"plan": "pro"})["f"].group == "true"
    assert mock.identify({"USER": "u"}, {})["f"].group == "false"


# -- a real matrix -------------------------------------------------------------------------------------


def test_a_real_matrix_and_schema_evaluate_as_the_engine_does():
    matrix = EXAMPLES / "pipet-example-matrix.json"
    schema = EXAMPLES / "pipet-example-context.json"
    mock = MockAvsbServer(matrix=matrix, schema=schema)
    engine = Engine.from_matrix(matrix.read_text(), schema.read_text())
    assert sorted(mock.engine.test_names) == sorted(engine.test_names)
    for key in ("u_1", "u_2", "u_3", "someone"):
        for plan in ("pro", "free"):
            context = user(key, plan=plan, country="US")
            assert mock.for_user(context).all_flags() == _all_flags(engine, context)
    # The example's own flags, through the typed getters.
    assert mock.for_user(user("u_1")).get_bool_flag("checkout-v2", False) is True
    assert mock.for_user(user("u_9", plan="pro")).get_string_flag("ui-theme", None) == "dark"


def _all_flags(engine, context):
    from avsb._native import Evaluator

    evaluator = Evaluator()
    evaluator._set_engine(engine)
    return evaluator.for_user(context).all_flags()


def test_flags_replace_a_real_matrixs_test_of_the_same_name():
    matrix = (EXAMPLES / "pipet-example-matrix.json").read_text()
    mock = MockAvsbServer(matrix=matrix, flags=[TestData.flag("checkout-v2").variation_for_all(False).build()])
    assert mock.for_user(user("u_1")).get_bool_flag("checkout-v2", None) is False
    assert "ui-theme" in mock.engine
    mock.update(TestData.flag("checkout-v2").variation_for_all(True))
    assert mock.for_user(user("u_1")).get_bool_flag("checkout-v2", None) is True


def test_a_matrix_as_a_dict_with_builder_rules_and_a_schema():
    matrix = {
        "audit": {"version": "7", "updated": 0, "updatedBy": "test"},
        "tests": {
            "color": {
                "version": "3",
                "salt": "color",
                "testType": "USER",
                "buckets": [
                    {"name": "red", "value": 0, "payload": {"stringValue": "red"}},
                    {"name": "blue", "value": 1, "payload": {"stringValue": "blue"}},
                ],
                "allocations": [{"rule": "${country == 'US'}", "ranges": [{"bucketValue": 1, "length": 1.0}]},
                                {"rule": None, "ranges": [{"bucketValue": 0, "length": 1.0}]}],
            }
        },
    }
    schema = {"context": {"country": {"source": "QUERY", "type": "String", "defaultValue": "US"}}, "identifiers": {"USER": {"source": "QUERY"}}}
    flag = TestData.flag("f").fallthrough_variation(False).if_match("plan", "pro").then_return(True)
    mock = MockAvsbServer(matrix=matrix, schema=schema, flags=[flag.build()])
    assert mock.engine.diagnostics == []
    assert mock.for_user(user()).get_string_flag("color", None) == "blue"  # the schema's default
    assert mock.for_user(user(country="FR")).get_string_flag("color", None) == "red"
    assert mock.for_user(user(plan="pro")).get_bool_flag("f", None) is True
    assert mock.for_user(user()).get_bool_flag("f", None) is False


# -- the builder refuses what cannot work -------------------------------------------------------------


@pytest.mark.parametrize("attribute", ["first-name", "2fa", "key", "kind", "and", "empty", "account", "USER", 3])
def test_attributes_a_rule_cannot_read_raise(attribute):
    with pytest.raises((ValueError, TypeError)):
        TestData.flag("f").if_match(attribute, "x")


@pytest.mark.parametrize("attribute", ["caf\u00e9", "$plan", "notes", "_x1"])
def test_any_name_the_rule_language_reads_as_a_variable_is_an_attribute(attribute):
    flag = TestData.flag("f").fallthrough_variation(False).if_match(attribute, "yes").then_return(True)
    mock = serve(flag)
    assert mock.for_user(user(**{attribute: "yes"})).get_bool_flag("f", None) is True
    assert mock.for_user(user(**{attribute: "no"})).get_bool_flag("f", None) is False


@pytest.mark.parametrize("value", [None, [1], {"a": 1}, float("nan"), 2**64, object()])
def test_values_a_rule_cannot_compare_raise(value):
    with pytest.raises((ValueError, TypeError)):
        TestData.flag("f").if_match("plan", value)


def test_other_mistakes_raise():
    with pytest.raises(ValueError, match="no variations"):
        TestData.flag("f").variations().build()
    with pytest.raises(ValueError, match="variation 5"):
        TestData.flag("f").fallthrough_variation(5).build()
    with pytest.raises(ValueError, match="variation 2"):
        TestData.flag("f").if_match("plan", "pro").then_return(2).build()
    with pytest.raises(ValueError):
        TestData.flag("f").variations(None, 1).build()
    with pytest.raises(ValueError):
        TestData.flag("f").variations(object()).build()
    with pytest.raises(ValueError):
        TestData.flag("f").variations("a", "b", names=["same", "same"])
    with pytest.raises(ValueError):
        TestData.flag("")
    with pytest.raises(ValueError):
        TestData.flag("f").variation_for_key("multi", "k", True)
    with pytest.raises(TypeError):
        TestData.flag("f").fallthrough_variation("yes")
    with pytest.raises(TypeError):
        MockAvsbServer(flags=["not a flag"])


# -- every builder, compiled on its own ----------------------------------------------------------------


CATALOGUE = [
    TestData.flag("a"),
    TestData.flag("a").on(False),
    TestData.flag("a").variations("x", "y").on(False),
    TestData.flag("a").variations("x", "y"),
    TestData.flag("a").value_for_all({"nested": {"list": [1, 2.5, "s", True, None]}}),
    TestData.flag("a").value_for_all(-(2**63)),
    TestData.flag("a").variation_for_user("u", False).variation_for_key("user", "v", True),
    TestData.flag("a").if_match("n", -(2**63), 2**63 - 1, 0.1, True, "s").then_return(False),
    TestData.flag("a").if_not_match("plan").then_rollout([33.33, 66.67]),
    TestData.flag("a").identifier_type("EMAIL").variation_for_key("email", "a@b.c", True),
    TestData.flag("a").identifier_type("random").percentage_rollout({True: 10, False: 90}),
    TestData.flag("a").variations(*range(7)).percentage_rollout([100 / 7] * 7),
    TestData.flag("a").rule("${true}").then_return(1),
]


@pytest.mark.parametrize("flag", CATALOGUE, ids=lambda f: repr(f))
def test_every_built_flag_compiles_without_diagnostics(flag):
    compiles_alone(flag)
    assert isinstance(flag.build(), BuiltFlag)
    serve(flag)


def test_events_carry_the_contexts_identifiers_only():
    mock = serve(TestData.flag("f").if_match("plan", "pro").then_return(False))
    scope = mock.for_user({"kind": "multi", "user": {"key": "u", "plan": "pro"}, "account": {"key": "a"}})
    assert scope.get_bool_flag("f", None) is False
    scope.track("click")
    assert mock.exposures[0]["identifiers"] == {"USER": "u"}
    assert mock.tracked[0]["identifiers"] == {"USER": "u", "ACCOUNT": "a"}
    assert scope.problems == []
