"""Calls to a Pipet API, on the wire exactly as django-proctor 1.2.1 makes them.

``GET {api_root}/groups/identify`` with ``ctx.<key>`` for each context value, ``id.<key>`` for
each identifier, ``test=<comma list>`` always (an empty list asks for no tests, not for all), and
``prforceGroups`` only when it is not empty. Values are stringified the way ``requests`` does it
(``True`` → ``"True"``; ``None`` is not sent; a list sends the parameter once per item). Each
connect and read may take 0.25 s; a call that raises is tried 4 times in all; an HTTP error
status is not retried. Every failure is logged and gives ``None``: the caller leaves the tests
unassigned.

Only used when no A vs B server SDK evaluates locally (see ``local``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any, Iterable, Mapping, NamedTuple
from urllib.parse import urlencode

import urllib3

from avsb.contrib.proctor import constants

__all__ = ["ProctorParameters", "call_proctor", "call_proctor_identify", "call_proctor_matrix"]

logger = logging.getLogger("application.proctor.api")

USER_AGENT = "avsb-python/0.1.0 (django-proctor API)"


class ProctorParameters:
    """Everything that decides a request's groups, in one value (compared by the caches).

    ``api_root``: the Pipet API, no trailing slash. ``defined_tests``: the test names.
    ``context_dict`` and ``identifier_dict``: Pipet *source keys* and their values.
    ``force_groups``: the ``prforceGroups`` string, or ``None``.
    """

    def __init__(
        self,
        api_root: str | None,
        defined_tests: Iterable[str],
        context_dict: Mapping[str, Any],
        identifier_dict: Mapping[str, Any],
        force_groups: str | None,
    ) -> None:
        self.api_root = api_root
        self.defined_tests = list(defined_tests)
        self.context_dict = context_dict
        self.identifier_dict = identifier_dict
        self.force_groups = force_groups

    def as_dict(self) -> dict[str, Any]:
        """The constructor's arguments as a dict."""
        return {
            "api_root": self.api_root,
            "defined_tests": self.defined_tests,
            "context_dict": self.context_dict,
            "identifier_dict": self.identifier_dict,
            "force_groups": self.force_groups,
        }

    def query(self) -> list[tuple[str, str]]:
        """The query parameters of ``/groups/identify``, in django-proctor's order, as text."""
        pairs: list[tuple[str, Any]] = [("ctx." + str(k), v) for k, v in self.context_dict.items()]
        pairs += [("id." + str(k), v) for k, v in self.identifier_dict.items()]
        pairs.append(("test", ",".join(self.defined_tests)))
        if self.force_groups:
            pairs.append((constants.PROP_NAME_FORCE_GROUPS, self.force_groups))
        return [(name, text) for name, value in pairs for text in _texts(value)]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ProctorParameters):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __ne__(self, other: object) -> bool:
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    __hash__ = None  # type: ignore[assignment] - mutable, compared by value

    def __repr__(self) -> str:
        return f"ProctorParameters({self.as_dict()!r})"


def _texts(value: Any) -> list[str]:
    """One query value as ``requests`` sends it: ``None`` dropped, an iterable (other than text)
    sent once per item that is not ``None``, anything else as ``str()``."""
    if value is None:
        return []
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return [_text(value)]
    return [_text(item) for item in value if item is not None]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class _Answer(NamedTuple):
    status: int
    reason: str
    body: bytes


_pool: urllib3.PoolManager | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def _http_pool() -> urllib3.PoolManager:
    """One connection pool per process (made again in a forked child)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool = urllib3.PoolManager(num_pools=4, maxsize=8, headers={"User-Agent": USER_AGENT}, retries=False)
            _pool_pid = os.getpid()
        return _pool


def _get(http: Any, url: str, params: ProctorParameters, timeout: float) -> _Answer:
    """One GET; raises on any transport failure."""
    if http is not None:
        # A `requests.Session` (or equivalent) from the middleware's get_http().
        response = http.get(url, params=params.query(), timeout=timeout)
        return _Answer(int(response.status_code), str(getattr(response, "reason", "") or ""), response.content)
    query = urlencode(params.query())
    response = _http_pool().request(
        "GET",
        f"{url}?{query}",
        timeout=urllib3.Timeout(connect=timeout, read=timeout),
        retries=False,
        redirect=False,
    )
    return _Answer(response.status, response.reason or "", response.data)


def redacted(url: str) -> str:
    """The URL with the SDK key of an A vs B Pipet root (``.../pipet/<key>``) hidden, for logs."""
    return re.sub(r"(/pipet/)[^/?#]+", r"\1<sdk-key>", url)


def call_proctor_identify(params: ProctorParameters, timeout: float = constants.MAX_HTTP_TIMEOUT_SECONDS, http: Any = None) -> dict | None:
    """``/groups/identify``: the parsed answer, or ``None`` (logged) when there is none to use."""
    return call_proctor(params, constants.API_METHOD_GROUPS_IDENTIFY, timeout, http)


def call_proctor_matrix(params: ProctorParameters, timeout: float = constants.MAX_HTTP_TIMEOUT_SECONDS, http: Any = None) -> dict | None:
    """``/proctor/matrix``: the test matrix, or ``None`` (logged)."""
    return call_proctor(params, constants.API_METHOD_PROCTOR_MATRIX, timeout, http)


def call_proctor(
    params: ProctorParameters,
    api_method: str = constants.API_METHOD_GROUPS_IDENTIFY,
    timeout: float = constants.MAX_HTTP_TIMEOUT_SECONDS,
    http: Any = None,
) -> dict | None:
    """One Pipet call with django-proctor's retries and checks. Never raises."""
    if not params.api_root:
        logger.error("PROCTOR_API_ROOT is not set and nothing evaluates locally; every test is unassigned")
        return None
    url = f"{params.api_root}/{api_method}"
    shown = redacted(url)
    answer = None
    for attempt in range(1, constants.MAX_HTTP_RETRIES + 1):
        try:
            answer = _get(http, url, params, timeout)
            break
        except Exception as e:  # noqa: BLE001 - any transport failure is retried, then logged
            if attempt == constants.MAX_HTTP_RETRIES:
                logger.error("Proctor API request to %s failed %d times, last with: %r", shown, attempt, e)
                return None
    assert answer is not None

    if answer.status != 200:
        try:
            message = json.loads(answer.body)["meta"]["error"]
        except (ValueError, KeyError, TypeError):
            logger.error("Proctor API at %s returned HTTP error (%d: %s)", shown, answer.status, answer.reason)
        else:
            logger.error(
                "Proctor API at %s returned HTTP error (%d: %s) with API error message: %s",
                shown,
                answer.status,
                answer.reason,
                message,
            )
        return None

    try:
        api_response = json.loads(answer.body)
    except ValueError:
        logger.error("Proctor API at %s returned invalid JSON: %r", shown, answer.body[:200])
        return None

    if api_method == constants.API_METHOD_GROUPS_IDENTIFY:
        data = api_response.get("data") if isinstance(api_response, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("groups"), dict):
            logger.error("Proctor API at %s returned JSON with missing groups field: %.200s", shown, api_response)
            return None
    elif api_method == constants.API_METHOD_PROCTOR_MATRIX:
        if not isinstance(api_response, dict) or not isinstance(api_response.get("tests"), dict):
            logger.error("Proctor API at %s returned JSON with missing tests field: %.200s", shown, api_response)
            return None
    return api_response


def pipet_values(values: Mapping[str, Any]) -> dict[str, str]:
    """What Pipet reads for each key of a context or identifier dict sent as ``query()`` sends
    it: the first text of each value (Pipet takes a repeated parameter's first), and no entry
    for a value that is not sent. Local evaluation uses this so both modes see the same input."""
    out: dict[str, str] = {}
    for key, value in values.items():
        texts = _texts(value)
        if texts:
            out[str(key)] = texts[0]
    return out
