"""TestData's flags through a real `avsb serve`'s write path: the matrix and the context schema a
MockAvsbServer evaluates are accepted by the admin API as they are, and the server evaluates them
as the mock does (over Pipet's /groups/identify, and through an AvsbServer reading the server's
datafile), so fixtures and production speak one language."""

from __future__ import annotations

import itertools

import pytest
import requests

from avsb import RequestError
from avsb._native import canonical_identifier_type
from avsb.test_utils import FlagBuilder, MockAvsbServer, TestData

PROJECT = "testdata"

# One flag per feature of the builder.
FLAGS = [
    # Targets, the fallthrough, a boolean flag.
    TestData.flag("targets").variation_for_user("u_1", True).variation_for_user("u_2", False).fallthrough_variation(False),
    # Named string variations; rules in order, OR over values, AND over clauses, negation.
    TestData.flag("tier")
    .variations("#fff", "#000", "#f00", "#0f0", names=["light", "dark", "red", "green"])
    .if_match("plan", "pro", "team").and_match("country", "US", "CA").then_return(1)
    .if_not_match("country", "US").then_return(2)
    .if_match("plan", "free").then_return(3)
    .fallthrough_variation(0),
    # Long payloads; numbers and booleans compared unquoted.
    TestData.flag("seats").variations(1, 2, 3).if_match("seats", 100, 250).then_return(1).if_match("beta", True).then_return(2).fallthrough_variation(0),
    # Double payloads; a double compared.
    TestData.flag("ratio").variations(0.5, 1.5).if_match("ratio", 0.25, -1.5).then_return(1).fallthrough_variation(0),
    # JSON, string, long and double values for everyone.
    TestData.flag("config").value_for_all({"retries": 3, "hosts": ["a", "b"], "on": True}),
    TestData.flag("greeting").value_for_all("hello"),
    TestData.flag("limit").value_for_all(25),
    TestData.flag("share").value_for_all(0.75),
    # Off, with and without an off variation.
    TestData.flag("off").variation_for_user("u_1", True).fallthrough_variation(True).on(False),
    FlagBuilder("off-bare").variations("x", "y").on(False),
    # No fallthrough: unmatched contexts are unassigned.
    FlagBuilder("no-fallthrough").variations("x", "y").if_match("plan", "pro").then_return(1),
    # A clause without values never matches; its negation matches any present value.
    TestData.flag("no-values").if_match("plan").then_return(True).if_not_match("country").then_return(True).fallthrough_variation(False),
    # Percentage rollouts, of the fallthrough and of a rule; a shared salt.
    TestData.flag("rollout").percentage_rollout({True: 30, False: 70}),
    TestData.flag("rule-rollout").if_match("plan", "pro").then_rollout({True: 50, False: 50}).fallthrough_variation(False),
    TestData.flag("shared-a").salt("&shared").percentage_rollout({True: 50, False: 50}),
    TestData.flag("shared-b").salt("&shared").percentage_rollout({True: 50, False: 50}),
    TestData.flag("multi").variations("a", "b", "c").percentage_rollout([20, 30, 50]),
    # Another identifier type, with a rule on another kind's attribute.
    TestData.flag("accounts")
    .identifier_type("account")
    .variation_for_key("account", "acme", True)
    .if_match_context("account", "region", "eu").then_return(True)
    .fallthrough_variation(False),
    # A custom identifier type.
    TestData.flag("devices").identifier_type("device").variation_for_key("device", "d-1", True).fallthrough_variation(False),
    # A raw rule (its variable is required: a context without it is an evaluation error).
    TestData.flag("adults").rule("${age >= 18}").and_match("country", "US").then_return(True).fallthrough_variation(False),
]

ATTRIBUTES = [
    {},
    {"plan": "pro", "country": "US"},
    {"plan": "team", "country": "CA", "seats": 250},
    {"plan": "pro", "country": "FR", "beta": True},
    {"plan": "free", "country": "US", "seats": 99, "beta": False, "ratio": 0.25},
    {"plan": "", "country": "US", "ratio": -1.5},
    {"country": "DE", "region": "eu", "ratio": 1.0},
    {"plan": "pro", "age": 30, "country": "US"},
    {"age": 12, "country": "US"},
    {"age": 40, "country": "FR", "seats": 100},
]
KEYS = ["u_1", "u_2"] + [f"user-{n}" for n in range(24)]


def contexts():
    """Users with every attribute set, accounts, devices, and multi-contexts."""
    out = []
    for key, attributes in zip(KEYS, itertools.cycle(ATTRIBUTES)):
        out.append({"kind": "user", "key": key, **attributes})
    out.append({"kind": "multi", "user": {"key": "u_3", "plan": "pro"}, "account": {"key": "acme"}})
    out.append({"kind": "multi", "user": {"key": "u_4"}, "account": {"key": "initech", "region": "eu"}})
    out.append({"kind": "multi", "user": {"key": "u_5"}, "account": {"key": "globex", "region": "us"}})
    out.append({"kind": "device", "key": "d-1"})
    out.append({"kind": "device", "key": "d-2", "age": 20, "country": "US"})
    return out


@pytest.fixture(scope="module")
def mock():
    mock = MockAvsbServer(flags=FLAGS)
    assert mock.engine.diagnostics == []
    return mock


@pytest.fixture(scope="module")
def project(avsb_server, mock):
    """A project on the real server made from what the mock evaluates: its schema, then its
    matrix through the write path (PUT .../matrix); returns the new environment's SDK key."""
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {avsb_server.admin_token}"
    api = f"{avsb_server.base_url}/api/v1/projects"
    created = http.post(api, json={"key": PROJECT, "schema": mock.engine.schema(), "environments": ["development"]}, timeout=10)
    assert created.status_code == 201, created.text
    put = http.put(
        f"{api}/{PROJECT}/environments/development/matrix",
        json={"matrix": mock.engine.matrix(), "comment": "TestData flags"},
        timeout=10,
    )
    assert put.status_code == 200, put.text
    stored = http.get(f"{api}/{PROJECT}/environments/development/matrix", timeout=10)
    assert stored.status_code == 200, stored.text
    assert sorted(stored.json()["tests"]) == sorted(f.key for f in FLAGS)
    key = http.post(f"{api}/{PROJECT}/environments/development/sdk-keys", json={"name": "testdata"}, timeout=10)
    assert key.status_code == 201, key.text
    http.close()
    return key.json()["key"]


def test_the_server_stores_the_mocks_matrix_and_schema_as_they_are(avsb_server, mock, project):
    headers = {"Authorization": f"Bearer {avsb_server.admin_token}"}
    schema = requests.get(f"{avsb_server.base_url}/api/v1/projects/{PROJECT}/schema", headers=headers, timeout=10).json()
    assert schema == mock.engine.schema()
    # No variable the mock invented: the rules read the flags' attributes and the raw rule's.
    assert sorted(schema["context"]) == ["age", "beta", "country", "plan", "ratio", "region", "seats"]


def _text(value):
    """A context value as Pipet's query text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pipet_params(context):
    """Pipet's query parameters for a context: identifiers by type, variables by name."""
    parts = [context] if context["kind"] != "multi" else [dict(v, kind=k) for k, v in context.items() if k != "kind"]
    params = {}
    for part in parts:
        # The schema's identifier types: Proctor's in upper case, custom ones as written.
        params[f"id.{canonical_identifier_type(part['kind'])}"] = part["key"]
        for name, value in part.items():
            if name not in ("kind", "key"):
                params[f"ctx.{name}"] = _text(value)
    return params


def test_pipet_on_the_server_assigns_what_the_mock_assigns(avsb_server, mock, project):
    compared = 0
    # Each context as it is, then with the raw rule's variable, which Pipet requires.
    with_age = [c if "age" in c or c["kind"] == "multi" else {**c, "age": 21} for c in contexts()]
    for context in contexts() + with_age:
        params = _pipet_params(context)
        identifiers = {k[3:]: v for k, v in params.items() if k.startswith("id.")}
        variables = {k[4:]: v for k, v in params.items() if k.startswith("ctx.")}
        response = requests.get(f"{avsb_server.base_url}/pipet/{project}/groups/identify", params=params, timeout=10)
        try:
            expected = mock.identify(identifiers, variables)
        except RequestError as e:
            # The raw rule's variable is required by Pipet, on the server as in the mock.
            assert response.status_code == e.args[0] == 400, (context, response.text)
            assert "'age'" in e.args[1] and "'age'" in response.text
            continue
        assert response.status_code == 200, (context, response.text)
        groups = response.json()["data"]["groups"]
        for test in set(expected) | set(groups):
            got = groups.get(test)
            want = expected.get(test)
            assert (got and (got["name"], got["value"])) == (want and (want.group, want.value)), (context, test)
            compared += 1
    assert compared > 300


def _answer(scope, flag):
    d = scope.get_json_flag_details(flag, "caller-default")
    return d.value, d.variant, d.reason, d.error_code


def test_an_sdk_reading_the_servers_datafile_answers_as_the_mock(avsb_server, mock, project, make_sdk):
    sdk = make_sdk(avsb_server, sdk_key=project)
    assert sdk.on_ready_sync(timeout=10)
    assert sdk.engine.diagnostics == []
    answers = set()
    for context in contexts():
        server_scope, mock_scope = sdk.for_user(context), mock.for_user(context)
        for flag in FLAGS:
            got, want = _answer(server_scope, flag.key), _answer(mock_scope, flag.key)
            assert got == want, (context, flag.key)
            answers.add((flag.key, want[1], want[2], want[3]))
    # The contexts reach every kind of answer: targets, rules, fallthroughs, splits, off,
    # unassigned, a missing identifier and the raw rule's missing variable.
    reasons = {reason for _, _, reason, _ in answers}
    assert {"TARGETING_MATCH", "STATIC", "SPLIT", "DEFAULT", "ERROR"} <= reasons
    errors = {error for _, _, _, error in answers}
    assert {"TARGETING_KEY_MISSING", "GENERAL"} <= errors
    # Every variation of the rules' flags is reached somewhere.
    assert {variant for key, variant, *_ in answers if key == "tier"} - {None} == {"light", "dark", "red", "green"}
    assert {variant for key, variant, *_ in answers if key == "seats"} - {None} == {"variation-0", "variation-1", "variation-2"}
