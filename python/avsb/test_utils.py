"""Test utilities: ``MockAvsbServer`` and ``TestData``, so an application can test every branch
of its flags without a server.

    from avsb.test_utils import MockAvsbServer, TestData

    flag = (
        TestData.flag("checkout-v2")
        .boolean_flag()
        .variation_for_user("u_1", True)
        .if_match("plan", "pro", "team").then_rollout({True: 50, False: 50})
        .fallthrough_variation(False)
    )
    server = MockAvsbServer(flags=[flag.build()])
    server.for_user({"kind": "user", "key": "u_1"}).get_bool_flag("checkout-v2", False)  # True

The builder copies LaunchDarkly's ``TestData`` API (``flag``, ``variations``, ``on``,
``fallthrough_variation``, ``variation_for_user``, ``if_match`` ... ``then_return``) and adds
what A vs B can do beyond it: percentage rollouts (``percentage_rollout``, ``then_rollout``),
the identifier type that is hashed and targeted (``identifier_type``) and raw Proctor rules
(``rule``). ``build()`` turns a builder into a Proctor test definition; ``MockAvsbServer``
compiles the definitions with the real engine, so a flag answers exactly as the same test would
in production. Nothing here touches the network.

How a built flag evaluates:

* Targeted keys (``variation_for_key``) come first, then the rules in the order they were added,
  then the fallthrough. ``on(False)`` serves the off variation to everyone (targets and rules
  are ignored), or the caller's default when there is no off variation.
* Every context needs a key of the flag's identifier type (``USER`` unless ``identifier_type``
  says otherwise): without one the flag answers the caller's default with
  ``TARGETING_KEY_MISSING``, as it would in production.
* A clause (``if_match`` and friends) never matches a context that lacks its attribute, negated
  or not (LaunchDarkly's rule): each attribute is a context variable of type ``String`` whose
  default is ``''``, and each clause tests ``!empty plan`` first. ``None`` and ``''`` count as
  absent. Attributes share one namespace across the kinds of a multi-context, as context
  variables do in the engine: ``if_match_context('account', 'tier', ...)`` reads ``tier``
  whichever kind carries it.
* Raw rules (``rule('${...}')``) are evaluated as written: their variables are declared without
  a default, so a variable the context lacks is an evaluation error, and the caller gets its
  default (reason ``ERROR``).

Fixtures and production speak one language: the rules are plain Proctor rules over variables a
server's schema declares. ``mock.engine.matrix()`` and ``mock.engine.schema()`` are the matrix
and the context schema the mock evaluates, and a real ``avsb serve`` accepts them as they are
(``PUT /api/v1/projects/{project}/schema`` and ``.../environments/{environment}/matrix``) and
evaluates them the same way. Without a ``schema=`` the mock makes that schema itself: Proctor's
identifier types (and the custom ones flags hash), each clause attribute as above, and each
variable of a raw rule (or of a given matrix) as a ``String`` without a default. With one, the
given schema decides and only undeclared clause attributes are added, as above.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import os
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from avsb import _native

__all__ = ["BuiltFlag", "FlagBuilder", "FlagRuleBuilder", "MockAvsbServer", "TestData"]

logger = logging.getLogger("avsb")

_KIND_NAME = re.compile(r"[A-Za-z0-9._-]+\Z")
# What a longValue payload holds: a Java long.
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1

# An allocation no context matches: a test needs at least one, and a flag that is off without
# an off variation (or on without a fallthrough) must leave everyone unassigned.
_NEVER = {"rule": "${false}", "ranges": [{"bucketValue": 0, "length": 1.0}]}


def _check_kind(kind: Any) -> str:
    if not isinstance(kind, str) or not _KIND_NAME.match(kind) or kind in ("kind", "multi"):
        raise ValueError(f"{kind!r} is not a context kind (letters, digits, '.', '_' or '-'; not 'kind' or 'multi')")
    return kind


def _check_attribute(attribute: Any) -> str:
    if not isinstance(attribute, str):
        raise TypeError(f"an attribute name must be a string, not {type(attribute).__name__}")
    if attribute in ("key", "kind"):
        raise ValueError(
            f"rules cannot test the context's {attribute!r}: target keys with variation_for_key()/variation_for_user()"
        )
    if not _native.is_variable_name(attribute):
        raise ValueError(
            f"{attribute!r} cannot be used in a rule: attribute names must be identifiers of the rule language "
            "(letters, digits, '_' and '$', not starting with a digit) and not one of its reserved words"
        )
    if _native.canonical_identifier_type(attribute) in _native.PROCTOR_TEST_TYPES:
        raise ValueError(
            f"{attribute!r} names an identifier type, so a context attribute of that name is an identifier, "
            "not a variable: target it with variation_for_key() and identifier_type()"
        )
    return attribute


def _type_tag(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "str"


def _rule_body(expression: Any) -> str:
    """The inside of a raw rule: ``'${a && b}'`` → ``'a && b'`` (a bare body is accepted too)."""
    if not isinstance(expression, str):
        raise TypeError(f"a rule must be a string like '${{plan == \"pro\"}}', not {type(expression).__name__}")
    text = expression.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1].strip()
    if not text:
        raise ValueError("a rule needs an expression: '${plan == \"pro\"}'")
    return text


# An outcome: one variation index, or a rollout as ((index, length), ...) with lengths summing to 1.
_Outcome = Union[int, tuple]


@dataclass(frozen=True)
class _Clause:
    kind: str | None  # None: a raw rule, whose text is values[0]
    attribute: str
    values: tuple
    negate: bool

    def render(self, alone: bool) -> str:
        if self.kind is None:
            body = self.values[0]
            return body if alone else f"({body})"
        # An absent attribute has the schema's default, '': empty, so no clause matches it.
        guard = f"!empty {self.attribute}"
        tests = [f"{self.attribute} == {_native.rule_literal(v)}" for v in self.values] or ["false"]
        test = " || ".join(tests)
        if self.negate:
            return f"{guard} && !({test})"
        return f"{guard} && ({test})" if len(tests) > 1 else f"{guard} && {test}"


@dataclass
class _Rule:
    clauses: list[_Clause]
    outcome: _Outcome


@dataclass(frozen=True)
class BuiltFlag:
    """A flag ready for ``MockAvsbServer``: its key, its Proctor test definition, the identifier
    type it hashes and the attributes its rules read (with the Python types of their values)."""

    key: str
    definition: Mapping[str, Any]
    identifier_type: str
    attributes: tuple[tuple[str, str], ...] = ()

    def to_json(self) -> str:
        """The test definition as JSON (one entry of a matrix's ``tests``)."""
        return json.dumps(self.definition)


class FlagBuilder:
    """Builds one flag (LaunchDarkly's ``FlagBuilder``): every method changes the builder and
    returns it; ``build()`` makes the test definition."""

    def __init__(self, key: str) -> None:
        if not isinstance(key, str) or not key:
            raise ValueError(f"a flag key must be a non-empty string, not {key!r}")
        self._key = key
        self._on = True
        self._variations: list[Any] = []
        self._names: list[str] | None = None
        self._off: int | None = None
        self._fallthrough: _Outcome | None = None
        # Identifier type → key → variation index (a key is targeted to one variation).
        self._targets: dict[str, dict[str, int]] = {}
        self._rules: list[_Rule] = []
        self._identifier_type = "USER"
        self._salt: str | None = None

    @property
    def key(self) -> str:
        """The flag's key (the test's name)."""
        return self._key

    def _copy(self) -> FlagBuilder:
        return copy.deepcopy(self)

    # -- variations --------------------------------------------------------------------------

    def _is_boolean(self) -> bool:
        v = self._variations
        return len(v) == 2 and v[0] is True and v[1] is False

    def boolean_flag(self) -> FlagBuilder:
        """Makes this a boolean flag: variations ``[True, False]``, fallthrough ``True``, off
        ``False`` (unless it is one already, which keeps its settings)."""
        if self._is_boolean():
            return self
        return self.variations(True, False).fallthrough_variation(0).off_variation(1)

    def variations(self, *values: Any, names: Sequence[str] | None = None) -> FlagBuilder:
        """Sets the values the flag can take (the buckets' payloads), in index order; ``names``
        names the buckets (default ``'true'``/``'false'`` for booleans, else ``variation-N``)."""
        if names is not None:
            names = list(names)
            if len(names) != len(values):
                raise ValueError(f"{len(names)} names for {len(values)} variations")
            if any(not isinstance(n, str) or not n for n in names) or len(set(names)) != len(names):
                raise ValueError(f"variation names must be distinct non-empty strings: {names!r}")
        self._variations = list(values)
        self._names = names
        return self

    def _index(self, variation: bool | int) -> int:
        """A variation argument as an index: ``True`` → 0 and ``False`` → 1 on a boolean flag
        (which the flag becomes, as in LaunchDarkly), an int as itself."""
        if isinstance(variation, bool):
            self.boolean_flag()
            return 0 if variation else 1
        if isinstance(variation, int):
            if variation < 0:
                raise ValueError(f"a variation index cannot be negative: {variation}")
            return variation
        raise TypeError(f"a variation is a bool or a variation index, not {type(variation).__name__}")

    def _rollout(self, weights: Mapping[bool | int, float] | Sequence[float]) -> tuple:
        """Percentages by variation (``{True: 30, False: 70}``, ``{0: 10, 1: 90}`` or
        ``[10, 90]``) as ranges ordered by variation index."""
        items = list(weights.items()) if isinstance(weights, Mapping) else list(enumerate(weights))
        if not items:
            raise ValueError("a percentage rollout needs at least one variation")
        by_index: dict[int, float] = {}
        for variation, weight in items:
            index = self._index(variation)
            if index in by_index:
                raise ValueError(f"variation {variation!r} appears twice in the rollout")
            if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                raise ValueError(f"rollout percentages must be non-negative numbers, not {weight!r}")
            by_index[index] = float(weight)
        total = sum(by_index.values())
        if abs(total - 100.0) > 0.01:
            raise ValueError(f"rollout percentages must add up to 100, not {total:g}")
        return tuple((i, by_index[i] / total) for i in sorted(by_index) if by_index[i] > 0)

    # -- on/off, fallthrough ------------------------------------------------------------------

    def on(self, on: bool) -> FlagBuilder:
        """Turns targeting on or off. Off serves the off variation to everyone (targets and
        rules are ignored), or the caller's default when there is none."""
        self._on = bool(on)
        return self

    def fallthrough_variation(self, variation: bool | int) -> FlagBuilder:
        """The variation for contexts no target or rule matched."""
        self._fallthrough = self._index(variation)
        return self

    def percentage_rollout(self, weights: Mapping[bool | int, float] | Sequence[float]) -> FlagBuilder:
        """Splits the fallthrough by percentage (``{True: 30, False: 70}``), hashing the
        identifier (an A vs B extension: LaunchDarkly's TestData has no rollouts)."""
        self._fallthrough = self._rollout(weights)
        return self

    def off_variation(self, variation: bool | int) -> FlagBuilder:
        """The variation served while the flag is off."""
        self._off = self._index(variation)
        return self

    def variation_for_all(self, variation: bool | int) -> FlagBuilder:
        """One variation for everyone: turns the flag on and clears its targets and rules."""
        index = self._index(variation)
        self.clear_rules().clear_targets().on(True)
        self._fallthrough = index
        return self

    def value_for_all(self, value: Any) -> FlagBuilder:
        """One value for everyone: the flag's only variation."""
        return self.variations(value).variation_for_all(0)

    # -- targets ------------------------------------------------------------------------------

    def variation_for_user(self, user_key: str, variation: bool | int) -> FlagBuilder:
        """Serves ``variation`` to the user with this key."""
        return self.variation_for_key("user", user_key, variation)

    def variation_for_key(self, context_kind: str, key: str, variation: bool | int) -> FlagBuilder:
        """Serves ``variation`` to the context of this kind with this key (the kind must be the
        flag's identifier type: see ``identifier_type``)."""
        identifier_type = _native.canonical_identifier_type(_check_kind(context_kind))
        if not isinstance(key, str) or not key:
            raise ValueError(f"a context key must be a non-empty string, not {key!r}")
        index = self._index(variation)
        self._targets.setdefault(identifier_type, {})[key] = index
        return self

    def clear_targets(self) -> FlagBuilder:
        """Removes every targeted key."""
        self._targets = {}
        return self

    # -- rules --------------------------------------------------------------------------------

    def if_match(self, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Starts a rule matching users whose ``attribute`` equals one of ``values``."""
        return FlagRuleBuilder(self).and_match(attribute, *values)

    def if_match_context(self, context_kind: str, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Starts a rule matching contexts of this kind whose ``attribute`` equals one of ``values``."""
        return FlagRuleBuilder(self).and_match_context(context_kind, attribute, *values)

    def if_not_match(self, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Starts a rule matching users whose ``attribute`` is set and equals none of ``values``."""
        return FlagRuleBuilder(self).and_not_match(attribute, *values)

    def if_not_match_context(self, context_kind: str, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Starts a rule matching contexts of this kind whose ``attribute`` is set and equals
        none of ``values``."""
        return FlagRuleBuilder(self).and_not_match_context(context_kind, attribute, *values)

    def rule(self, expression: str) -> FlagRuleBuilder:
        """Starts a rule with a raw Proctor rule, ``'${country == "US" && age >= 18}'``
        (evaluated as written: a variable the context lacks makes it an evaluation error)."""
        return FlagRuleBuilder(self).and_rule(expression)

    def clear_rules(self) -> FlagBuilder:
        """Removes every rule."""
        self._rules = []
        return self

    def _add_rule(self, rule: _Rule) -> FlagBuilder:
        self._rules.append(rule)
        return self

    # -- A vs B settings ------------------------------------------------------------------------

    def identifier_type(self, identifier_type: str) -> FlagBuilder:
        """The identifier type the flag hashes and targets (``USER`` by default; ``ACCOUNT``,
        ``EMAIL``, ``PAGE``, ``COMPANY``, ``RANDOM`` or a custom type)."""
        self._identifier_type = _native.canonical_identifier_type(_check_kind(identifier_type))
        return self

    def salt(self, salt: str) -> FlagBuilder:
        """The hash salt (default: the flag key; ``'&name'`` shares hashing between flags)."""
        if not isinstance(salt, str) or not salt:
            raise ValueError(f"a salt must be a non-empty string, not {salt!r}")
        self._salt = salt
        return self

    # -- build ----------------------------------------------------------------------------------

    def _bucket_names(self) -> list[str]:
        if self._names is not None:
            return list(self._names)
        values = self._variations
        if all(isinstance(v, bool) for v in values) and len(set(values)) == len(values):
            return ["true" if v else "false" for v in values]
        return [f"variation-{i}" for i in range(len(values))]

    def _check_index(self, index: int, what: str) -> None:
        if index >= len(self._variations):
            raise ValueError(
                f"flag {self._key!r}: {what} names variation {index}, but the flag has "
                f"{len(self._variations)} variation(s)"
            )

    def _ranges(self, outcome: _Outcome, what: str) -> list[dict[str, Any]]:
        pairs = [(outcome, 1.0)] if isinstance(outcome, int) else list(outcome)
        for index, _ in pairs:
            self._check_index(index, what)
        return [{"bucketValue": index, "length": length} for index, length in pairs]

    def build(self) -> BuiltFlag:
        """The flag as a Proctor test definition (see the module's documentation for how it
        evaluates). Raises ``ValueError`` for a flag that cannot work."""
        if not self._variations:
            raise ValueError(
                f"flag {self._key!r} has no variations: call boolean_flag(), variations(...) or value_for_all(...)"
            )
        payload_type, payloads = _payloads(self._key, self._variations)
        names = self._bucket_names()
        definition: dict[str, Any] = {
            "version": "1",
            "salt": self._salt or self._key,
            "testType": self._identifier_type,
            "description": "built by avsb.test_utils.TestData",
            "rule": None,
            "constants": {},
            "buckets": [
                {"name": names[i], "value": i, "payload": {payload_type: payloads[i]}}
                for i in range(len(self._variations))
            ],
        }
        attributes: list[tuple[str, str]] = []
        if not self._on:
            if self._off is None:
                definition["allocations"] = [copy.deepcopy(_NEVER)]
            else:
                definition["allocations"] = [{"rule": None, "ranges": self._ranges(self._off, "the off variation")}]
            definition["targets"] = []
        else:
            targets: dict[int, list[str]] = {}
            for identifier_type, keys in self._targets.items():
                if keys and identifier_type.lower() != self._identifier_type.lower():
                    raise ValueError(
                        f"flag {self._key!r} targets {identifier_type} keys but hashes {self._identifier_type} "
                        f"identifiers; an A vs B test targets its own identifier type: call "
                        f".identifier_type({identifier_type.lower()!r})"
                    )
                for key, index in keys.items():
                    self._check_index(index, f"the target {key!r}")
                    targets.setdefault(index, []).append(key)
            definition["targets"] = [
                {"bucketValue": index, "identifiers": keys} for index, keys in sorted(targets.items())
            ]
            allocations = []
            for n, rule in enumerate(self._rules):
                alone = len(rule.clauses) == 1
                text = " && ".join(c.render(alone) for c in rule.clauses)
                allocations.append({"rule": "${" + text + "}", "ranges": self._ranges(rule.outcome, f"rule {n}")})
                for c in rule.clauses:
                    if c.kind is not None:
                        attributes.extend((c.attribute, _type_tag(v)) for v in c.values or ("",))
            if self._fallthrough is not None:
                allocations.append({"rule": None, "ranges": self._ranges(self._fallthrough, "the fallthrough")})
            definition["allocations"] = allocations or [copy.deepcopy(_NEVER)]
        return BuiltFlag(
            key=self._key,
            definition=definition,
            identifier_type=self._identifier_type,
            attributes=tuple(dict.fromkeys(attributes)),
        )

    def __repr__(self) -> str:
        return f"<FlagBuilder {self._key!r} variations={self._variations!r} on={self._on}>"


def _payloads(key: str, values: list[Any]) -> tuple[str, list[Any]]:
    """One payload type for every variation (a test has one): booleanValue, stringValue,
    longValue, doubleValue, else json."""
    if any(v is None for v in values):
        raise ValueError(f"flag {key!r}: a variation cannot be None (a bucket's payload has a value)")
    if all(isinstance(v, bool) for v in values):
        return "booleanValue", list(values)
    if all(isinstance(v, str) for v in values):
        return "stringValue", list(values)
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if numbers and all(isinstance(v, int) and _LONG_MIN <= v <= _LONG_MAX for v in values):
        return "longValue", list(values)
    if numbers and all(math.isfinite(v) for v in values):
        return "doubleValue", [float(v) for v in values]
    try:
        # A copy through JSON: tuples become lists, and later changes to the caller's objects
        # cannot reach the flag.
        return "json", [json.loads(json.dumps(v, allow_nan=False)) for v in values]
    except (TypeError, ValueError) as e:
        raise ValueError(f"flag {key!r}: every variation must be JSON: {e}") from None


class FlagRuleBuilder:
    """Builds one rule of a flag (LaunchDarkly's ``FlagRuleBuilder``): clauses that must all
    match, then ``then_return(variation)`` or ``then_rollout({...})``."""

    def __init__(self, flag: FlagBuilder) -> None:
        self._flag = flag
        self._clauses: list[_Clause] = []

    def and_match(self, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Also requires the user's ``attribute`` to equal one of ``values``."""
        return self.and_match_context("user", attribute, *values)

    def and_match_context(self, context_kind: str, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Also requires the ``attribute`` of the context of this kind to equal one of ``values``."""
        return self._add(context_kind, attribute, values, negate=False)

    def and_not_match(self, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Also requires the user's ``attribute`` to be set and to equal none of ``values``."""
        return self.and_not_match_context("user", attribute, *values)

    def and_not_match_context(self, context_kind: str, attribute: str, *values: Any) -> FlagRuleBuilder:
        """Also requires the ``attribute`` of the context of this kind to be set and to equal
        none of ``values``."""
        return self._add(context_kind, attribute, values, negate=True)

    def and_rule(self, expression: str) -> FlagRuleBuilder:
        """Also requires a raw Proctor rule (``'${age >= 18}'``) to be true."""
        self._clauses.append(_Clause(None, "", (_rule_body(expression),), False))
        return self

    def _add(self, context_kind: str, attribute: str, values: tuple, negate: bool) -> FlagRuleBuilder:
        kind = _check_kind(context_kind)
        attribute = _check_attribute(attribute)
        for v in values:
            _native.rule_literal(v)  # refuse what a rule cannot compare now, not at build()
        self._clauses.append(_Clause(kind, attribute, tuple(values), negate))
        return self

    def then_return(self, variation: bool | int) -> FlagBuilder:
        """Ends the rule: matching contexts get ``variation``. Returns the flag builder."""
        return self._flag._add_rule(_Rule(list(self._clauses), self._flag._index(variation)))

    def then_rollout(self, weights: Mapping[bool | int, float] | Sequence[float]) -> FlagBuilder:
        """Ends the rule: matching contexts are split by percentage (``{True: 30, False: 70}``).
        Returns the flag builder."""
        return self._flag._add_rule(_Rule(list(self._clauses), self._flag._rollout(weights)))


def _new_flag(key: str) -> FlagBuilder:
    """A new boolean flag: variations ``[True, False]``, on, fallthrough ``True``, off ``False``."""
    return FlagBuilder(key).boolean_flag()


class _FlagMethod:
    """``TestData.flag(key)`` on the class (a new boolean flag, as in the A vs B guide) or on a
    ``TestData`` instance (a copy of the last builder given to ``update`` for that key, else a
    new boolean flag, as in LaunchDarkly)."""

    def __get__(self, instance: TestData | None, owner: type) -> Callable[[str], FlagBuilder]:
        if instance is None:
            return _new_flag
        return instance._flag


class TestData:
    """Flag builders (LaunchDarkly's ``TestData``). ``TestData.flag(key)`` starts a builder;
    ``td = TestData.data_source()`` keeps flags that ``td.update(builder)`` pushes to every
    ``MockAvsbServer(test_data=td)``."""

    __test__ = False  # not a pytest test class, whatever its name

    flag = _FlagMethod()

    def __init__(self) -> None:
        self._builders: dict[str, FlagBuilder] = {}
        self._servers: weakref.WeakSet[MockAvsbServer] = weakref.WeakSet()
        self._lock = threading.Lock()

    @staticmethod
    def data_source() -> TestData:
        """A new, empty set of flags to give to ``MockAvsbServer(test_data=...)``."""
        return TestData()

    def _flag(self, key: str) -> FlagBuilder:
        with self._lock:
            existing = self._builders.get(key)
            return existing._copy() if existing is not None else _new_flag(key)

    def update(self, flag_builder: FlagBuilder) -> TestData:
        """Stores a copy of the builder and pushes the flag to every server using this data."""
        built = flag_builder.build()
        with self._lock:
            self._builders[flag_builder.key] = flag_builder._copy()
            servers = list(self._servers)
        for server in servers:
            server.update(built)
        return self

    def _built(self) -> list[BuiltFlag]:
        with self._lock:
            return [b.build() for b in self._builders.values()]

    def _attach(self, server: MockAvsbServer) -> None:
        with self._lock:
            self._servers.add(server)


# -- the mock server ------------------------------------------------------------------------------


def _as_built(flag: BuiltFlag | FlagBuilder) -> BuiltFlag:
    if isinstance(flag, FlagBuilder):
        return flag.build()
    if isinstance(flag, BuiltFlag):
        return flag
    raise TypeError(f"expected a TestData flag (a FlagBuilder or its build()), not {type(flag).__name__}")


def _document_text(value: Any, what: str) -> str | None:
    """A matrix or schema argument as JSON text: a dict, JSON text (str or bytes) or a path."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        return json.dumps(value)
    if isinstance(value, os.PathLike):
        return Path(value).read_text(encoding="utf-8")
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"{what} must be a dict, JSON text or a path, not {type(value).__name__}")


#: How a clause attribute is declared: text (Pipet's wire type; rules compare it with numbers
#: and booleans by EL's coercions) whose default, '', stands for an absent attribute.
ATTRIBUTE_DECLARATION = {"source": "QUERY", "type": "String", "defaultValue": ""}
#: How a variable of a raw rule is declared: without a default, so that a context without it is
#: an evaluation error, as the rule is written.
RULE_VARIABLE_DECLARATION = {"source": "QUERY", "type": "String"}


class MockAvsbServer(_native.Evaluator):
    """An ``AvsbServer`` for tests: the same evaluation and public API, over flags built with
    ``TestData`` and/or a matrix you give it, with no network. Events are kept in memory
    (``events``, ``tracked``, ``exposures``) instead of being sent.

    ``MockAvsbServer(flags=[TestData.flag('f').build()])``, ``MockAvsbServer(test_data=td)`` or
    ``MockAvsbServer(matrix=..., schema=...)`` (a Proctor test matrix or an A vs B datafile, as
    a dict, JSON text or a path; flags given too replace the matrix's tests of the same name).
    """

    def __init__(
        self,
        flags: Iterable[BuiltFlag | FlagBuilder] = (),
        *,
        matrix: Any = None,
        schema: Any = None,
        test_data: TestData | None = None,
        record_events: bool = True,
        events_capacity: int = 10_000,
    ) -> None:
        super().__init__()
        self._lock = threading.RLock()
        self._listeners: list[Callable[[_native.Engine], None]] = []
        self._recorded: list[dict[str, Any]] = []
        self._closed = False
        self._revision = 0
        self._flags: dict[str, BuiltFlag] = {}
        self._flag_versions: dict[str, int] = {}
        self._configure_events(bool(record_events), int(events_capacity))
        self._base_tests, self._schema = self._read_matrix(matrix, schema)
        initial: dict[str, BuiltFlag] = {}
        if test_data is not None:
            for built in test_data._built():
                initial[built.key] = built
        for flag in flags:
            built = _as_built(flag)
            initial[built.key] = built
        self._install(initial)
        if test_data is not None:
            test_data._attach(self)

    # -- matrices ------------------------------------------------------------------------------

    @staticmethod
    def _read_matrix(matrix: Any, schema: Any) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """The tests of the given matrix (read leniently, as the engine reads it, with its
        diagnostics logged) and the given schema as a dict."""
        matrix_text = _document_text(matrix, "matrix")
        schema_text = _document_text(schema, "schema")
        if matrix_text is None:
            if schema_text is None:
                return {}, None
            empty = '{"audit": {"version": "0"}, "tests": {}}'
            return {}, _native.Engine.from_matrix(empty, schema_text).schema()
        try:
            doc = json.loads(matrix_text) if schema_text is None else None
        except ValueError:
            doc = None  # comments: only the engine reads those
        if isinstance(doc, dict) and "matrix" in doc and "tests" not in doc:
            engine = _native.Engine.from_datafile(matrix_text)
            schema_doc = engine.schema()
        else:
            engine = _native.Engine.from_matrix(matrix_text, schema_text)
            schema_doc = engine.schema() if schema_text is not None else None
        for d in engine.diagnostics:
            logger.warning("avsb: MockAvsbServer matrix: %s: %s [%s]", d["path"], d["message"], d["code"])
        return dict(engine.matrix()["tests"]), schema_doc

    def _schema_for(self, flags: Mapping[str, BuiltFlag], tests: Mapping[str, Any]) -> dict[str, Any] | None:
        """The schema to compile with (see the module's documentation): the given one, plus what
        the built flags need; without one, a schema made for the flags and the given matrix.
        ``None`` (the permissive schema) only for a given matrix without a schema or flags."""
        if self._schema is None and not flags:
            return None
        custom = {
            f.identifier_type
            for f in flags.values()
            if _native.canonical_identifier_type(f.identifier_type) not in _native.PROCTOR_TEST_TYPES
        }
        if self._schema is not None:
            doc = copy.deepcopy(self._schema)
        else:
            types = [t for t in _native.PROCTOR_TEST_TYPES if t != "RANDOM"]
            doc = {"context": {}, "identifiers": {t: {"source": "QUERY"} for t in types}}
        context = doc.setdefault("context", {})
        identifiers = doc.setdefault("identifiers", {})
        for type_name in sorted(custom):
            if not any(existing.lower() == type_name.lower() for existing in identifiers):
                identifiers[type_name] = {"source": "QUERY"}
        for flag in flags.values():
            for attribute, _ in flag.attributes:
                context.setdefault(attribute, dict(ATTRIBUTE_DECLARATION))
        if self._schema is None:
            # Every other variable a rule reads: those of raw rules and of the given matrix.
            matrix = {"audit": {"version": "0"}, "tests": dict(tests)}
            permissive = _native.Engine.from_matrix(json.dumps(matrix), None, "USER", sorted(custom))
            for name, _ in permissive.variables:
                context.setdefault(name, dict(RULE_VARIABLE_DECLARATION))
        return doc

    def _compile(self, flags: Mapping[str, BuiltFlag], versions: Mapping[str, int], revision: int) -> _native.Engine:
        tests = dict(self._base_tests)
        for key, flag in flags.items():
            definition = copy.deepcopy(dict(flag.definition))
            definition["version"] = str(versions[key])
            tests[key] = definition
        matrix = {
            "audit": {"version": str(revision), "updated": int(time.time() * 1000), "updatedBy": "MockAvsbServer"},
            "tests": tests,
        }
        schema = self._schema_for(flags, tests)
        engine = _native.Engine.from_matrix(json.dumps(matrix), json.dumps(schema) if schema is not None else None)
        problems = [d for d in engine.diagnostics if d.get("test") in flags]
        errors = [d for d in problems if d.get("severity") == "error"]
        if errors:
            hint = ""
            if any(d["code"] == "unknown_variable" for d in errors):
                hint = " (with a schema, the variables of raw rules must be declared in it)"
            raise ValueError(
                "the engine refused flag(s) built with TestData: "
                + "; ".join(f"{d['path']}: {d['message']} [{d['code']}]" for d in errors)
                + hint
            )
        for d in problems:
            logger.warning("avsb: MockAvsbServer: %s: %s [%s]", d["path"], d["message"], d["code"])
        return engine

    def _install(self, flags: dict[str, BuiltFlag]) -> _native.Engine:
        """Compiles and serves a new set of flags (raising, and keeping the current ones, if
        the engine refuses one)."""
        with self._lock:
            versions = dict(self._flag_versions)
            for key, flag in flags.items():
                if self._flags.get(key) is not flag:
                    versions[key] = versions.get(key, 0) + 1
            revision = self._revision + 1
            engine = self._compile(flags, versions, revision)
            self._flags, self._flag_versions, self._revision = flags, versions, revision
            self._set_engine(engine)
            return engine

    def _notify(self, engine: _native.Engine) -> None:
        for listener in list(self._listeners):
            try:
                listener(engine)
            except Exception:  # noqa: BLE001 - as in AvsbServer: a listener's bug must not stop updates
                logger.exception("avsb: an on_change listener failed")

    def update(self, flag: BuiltFlag | FlagBuilder) -> None:
        """Adds or replaces one flag; scopes already made see it on their next call, and
        ``on_change`` listeners are called. Raises ``ValueError`` if the engine refuses it."""
        built = _as_built(flag)
        with self._lock:
            flags = dict(self._flags)
            flags[built.key] = built
            engine = self._install(flags)
        self._notify(engine)

    def remove(self, key: str) -> None:
        """Removes a flag given to this mock (it then answers ``FLAG_NOT_FOUND``, unless the
        given matrix has a test of that name)."""
        with self._lock:
            flags = dict(self._flags)
            flags.pop(key, None)
            engine = self._install(flags)
        self._notify(engine)

    # -- the AvsbServer API ------------------------------------------------------------------------

    def on_ready_sync(self, timeout: float | None = None) -> bool:
        """Always ready: returns ``True`` at once."""
        return True

    async def on_ready(self, timeout: float = 5.0) -> bool:
        """Always ready: returns ``True`` at once."""
        return True

    def is_ready(self) -> bool:
        """Always ``True``."""
        return True

    @property
    def status(self) -> str:
        """``ready``, or ``closed`` after ``close_sync()``."""
        return "closed" if self._closed else "ready"

    def on_change(self, listener: Callable[[_native.Engine], None]) -> None:
        """Calls ``listener(engine)`` after each ``update`` or ``remove``."""
        self._listeners.append(listener)

    def close_sync(self, timeout: float = 5.0) -> None:
        """Marks the mock closed and keeps its events; flags keep answering, as AvsbServer's do."""
        if not self._closed:
            self._collect()
            self._closed = True

    async def close(self, timeout: float = 5.0) -> None:
        """``close_sync`` for asyncio code."""
        self.close_sync(timeout)

    def flush(self) -> None:
        """Moves waiting events to ``events`` (the mock's stand-in for sending them)."""
        self._collect()

    def flush_sync(self, timeout: float = 5.0) -> bool:
        """Moves waiting events to ``events``; returns ``True``."""
        self._collect()
        return True

    def event_stats(self) -> dict[str, int]:
        """Event counters, as ``AvsbServer.event_stats()``."""
        stats = dict(self._event_counts())
        stats["pending"] = self._pending_events()
        stats["retrying"] = 0
        return stats

    def __enter__(self) -> MockAvsbServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()

    def __repr__(self) -> str:
        engine = self.engine
        return f"<MockAvsbServer status={self.status} tests={engine.test_names if engine is not None else []}>"

    # -- recorded events ----------------------------------------------------------------------------

    def _collect(self) -> None:
        with self._lock:
            while True:
                body = self._drain_events(1000)
                if body is None:
                    return
                self._recorded.extend(json.loads(body)["events"])

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every event recorded so far (exposures and tracked events), oldest first."""
        with self._lock:
            self._collect()
            return list(self._recorded)

    @property
    def exposures(self) -> list[dict[str, Any]]:
        """The recorded exposures: ``{'kind': 'exposure', 'identifiers': {...}, 'test': ...,
        'bucket': ..., 'bucketName': ..., 'version': ..., 'time': ...}`` (one per identifier,
        test and bucket: the engine deduplicates them as it does in production)."""
        return [e for e in self.events if e.get("kind") == "exposure"]

    @property
    def tracked(self) -> list[dict[str, Any]]:
        """The recorded ``track`` calls: ``{'kind': 'track', 'identifiers': {...}, 'key': ...,
        'value': ..., 'properties': {...}, 'time': ...}`` (value and properties when given)."""
        return [e for e in self.events if e.get("kind") == "track"]

    def clear_events(self) -> None:
        """Forgets every recorded event."""
        with self._lock:
            self._collect()
            self._recorded.clear()
