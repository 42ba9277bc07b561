"""Calls to a Pipet API, on the wire exactly as django-proctor 1.2.1 makes them.

``GET {api_root}/groups/identify`` with ``ctx.<key>`` for each context value, ``id.<key>`` for
each identifier, ``test=<comma list>`` always (an empty list asks for no tests, not for all), and
``prforceGroups`` only when it is not empty. Values are stringified the way ``requests`` does it
(``True`` → ``"True"``; ``None`` is not sent; a list sends the parameter once per item). Each
connect and read may take 0.25 s; a call that raises is tried 4 times in all; an HTTP error
status is not retried. Every failure is logged and gives ``None``: the caller leaves the tests
unassigned. A root without ``http://`` or ``https://`` fails at once, without a name lookup.

The call goes through the site's ``http`` session when it has one, else through the module's
``requests`` (a urllib3 client with ``requests``' ``get``), which tests may patch as they patch
django-proctor's.

Only used when no A vs B server SDK evaluates locally (see ``local``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from typing import Any, Iterable, Mapping
from urllib.parse import urlencode, urlsplit

import urllib3

from avsb.contrib.proctor import constants

__all__ = ["ProctorParameters", "call_proctor", "call_proctor_identify", "call_proctor_matrix", "requests"]

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

    def http_params(self) -> dict[str, Any]:
        """The parameters of a Pipet call as django-proctor passes them to ``get(params=)``: the
        values as given, ``ctx.<key>`` then ``id.<key>``, ``test`` always, ``prforceGroups``
        only when not empty."""
        out: dict[str, Any] = {"ctx." + str(k): v for k, v in self.context_dict.items()}
        out.update(("id." + str(k), v) for k, v in self.identifier_dict.items())
        out["test"] = ",".join(self.defined_tests)
        if self.force_groups:
            out[constants.PROP_NAME_FORCE_GROUPS] = self.force_groups
        return out

    def query(self) -> list[tuple[str, str]]:
        """The query parameters of ``/groups/identify`` as sent, in django-proctor's order, as text."""
        return _pairs(self.http_params())

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


class Response:
    """One answer of :data:`requests`: the parts of a ``requests.Response`` that a Pipet call
    reads."""

    def __init__(self, status_code: int, reason: str, content: bytes, url: str) -> None:
        self.status_code = status_code
        self.reason = reason
        self.content = content
        self.url = url

    @property
    def text(self) -> str:
        """The body as text (UTF-8, as Pipet sends it)."""
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body parsed as JSON; raises ``ValueError`` when it is not JSON."""
        return json.loads(self.content)


class MissingSchema(ValueError):
    """A URL without ``http://`` or ``https://`` (``requests``' exception of the same name)."""


class PooledHttp:
    """What a Pipet call goes through when the site gives no ``http`` session: a small client
    over one urllib3 pool per process, with the ``get(url, params=, timeout=)`` of the
    ``requests`` library that django-proctor calls, parameters encoded as ``requests`` encodes
    them. Tests stub Pipet by patching ``proctor.api.requests``, as with django-proctor."""

    def get(self, url: str, params: Any = None, timeout: float | None = None) -> Response:
        """``GET url?params``; raises on any transport failure, and at once for a URL without a
        scheme (``requests`` raises ``MissingSchema`` before connecting)."""
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise MissingSchema(f"Invalid URL {url!r}: No scheme supplied. Perhaps you meant https://{url}?")
        query = urlencode(_pairs(params))
        full = f"{url}?{query}" if query else url
        response = _http_pool().request(
            "GET",
            full,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,
            redirect=False,
        )
        return Response(response.status, response.reason or "", response.data, full)


#: Where Pipet calls go without a site session (``get_http()`` returning ``None``); the name
#: django-proctor gives the ``requests`` module it calls, so that ``mock.patch("proctor.api.requests")``
#: stubs Pipet here as it does there.
requests = PooledHttp()


def _pairs(params: Any) -> list[tuple[str, str]]:
    """``requests``' encoding of ``params``: a mapping (or pairs) of names to a value or a list of
    values; ``None`` is left out, anything else is sent as its text."""
    if params is None:
        return []
    items = params.items() if isinstance(params, Mapping) else params
    return [(str(name), text) for name, value in items for text in _texts(value)]


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
    """One Pipet call with django-proctor's retries and checks, through ``http`` (a
    ``requests.Session`` or anything with its ``get``) or :data:`requests`. The answer is read
    with ``response.status_code``, ``reason`` and ``json()``. Never raises."""
    http = http or requests
    if not params.api_root:
        logger.error("PROCTOR_API_ROOT is not set and nothing evaluates locally; every test is unassigned")
        return None
    url = f"{params.api_root}/{api_method}"
    shown = redacted(url)
    http_params = params.http_params()
    response = None
    for attempt in range(1, constants.MAX_HTTP_RETRIES + 1):
        try:
            response = http.get(url, params=http_params, timeout=timeout)
            break
        except Exception as e:  # noqa: BLE001 - any transport failure is retried, then logged
            if attempt == constants.MAX_HTTP_RETRIES:
                logger.error("Proctor API request to %s failed %d times, last with: %r", shown, attempt, e)
                return None

    if getattr(response, "status_code", None) != 200:
        status = getattr(response, "status_code", None)
        reason = getattr(response, "reason", "")
        try:
            message = response.json()["meta"]["error"]
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.error("Proctor API at %s returned HTTP error (%s: %s)", shown, status, reason)
        else:
            logger.error(
                "Proctor API at %s returned HTTP error (%s: %s) with API error message: %s",
                shown,
                status,
                reason,
                message,
            )
        return None

    try:
        api_response = response.json()
    except ValueError:
        logger.error("Proctor API at %s returned invalid JSON: %.200r", shown, getattr(response, "content", b""))
        return None

    error = None
    if api_method == constants.API_METHOD_GROUPS_IDENTIFY:
        data = api_response.get("data") if isinstance(api_response, dict) else None
        if not isinstance(data, dict) or not isinstance(data.get("groups"), dict):
            error = "missing groups field"
    elif api_method == constants.API_METHOD_PROCTOR_MATRIX:
        if not isinstance(api_response, dict) or not isinstance(api_response.get("tests"), dict):
            error = "missing tests field"
    if error:
        # The problem is an argument, as django-proctor logs it, so that handlers can group on it.
        logger.error("Proctor API at %s returned JSON with %s: %.200s", shown, error, api_response)
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
