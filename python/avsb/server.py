"""``AvsbServer``: the A vs B server SDK.

It fetches the environment's datafile, keeps it current through the server's stream (falling
back to polling with ETag), evaluates every call locally through the native engine, keeps the
last good datafile on disk, and sends exposures and tracked events in background batches.

Two background threads do the I/O: the *data source* (datafile, stream, polling) and the
*event sender*. The request path only touches the native engine: it never blocks on the
network and never raises.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Mapping

import urllib3
from sseclient import SSEClient

from avsb import _native
from avsb.config import ConfigError, setting

__all__ = ["AvsbServer", "ConfigError", "default_server"]

logger = logging.getLogger("avsb")

USER_AGENT = "avsb-python/0.1.0"
DEFAULT_BASE_URL = "http://127.0.0.1:8080"
#: How long ``on_ready_sync()`` waits for the first matrix when it is given no timeout.
DEFAULT_READY_TIMEOUT = 5.0

# Servers in the order they were made: the Django middleware and the proctor drop-in use the
# first one still open when they are not given one.
_made: list[weakref.ReferenceType[AvsbServer]] = []
_made_lock = threading.Lock()


def default_server() -> AvsbServer | None:
    """The first ``AvsbServer`` created in this process that is not closed, if any."""
    with _made_lock:
        for ref in _made:
            server = ref()
            if server is not None and server.status != "closed":
                return server
    return None


def _django_is_starting() -> bool:
    """Whether Django is running its apps' ``ready()`` methods (``django.setup()``) right now."""
    django_apps = sys.modules.get("django.apps")
    if django_apps is None:
        return False
    registry = django_apps.apps
    return bool(registry.apps_ready and not registry.ready)


def _django_is_testing() -> bool:
    """Whether Django's test environment is set up (its test runner, pytest-django): the test
    outbox exists only then."""
    mail = sys.modules.get("django.core.mail")
    return mail is not None and hasattr(mail, "outbox")


def _register_default(server: AvsbServer) -> None:
    with _made_lock:
        _made[:] = [r for r in _made if r() is not None]
        _made.append(weakref.ref(server))


class _Backoff:
    """Exponential backoff with full jitter: 1 s, 2 s, 4 s ... capped."""

    def __init__(self, initial: float = 1.0, cap: float = 30.0) -> None:
        self.initial, self.cap, self.attempt = initial, cap, 0

    def next(self) -> float:
        delay = min(self.cap, self.initial * (2**self.attempt))
        self.attempt = min(self.attempt + 1, 16)
        return delay / 2 + random.uniform(0, delay / 2)

    def reset(self) -> None:
        self.attempt = 0


class AvsbServer(_native.Evaluator):
    """A vs B's server SDK: local evaluation of one environment's matrix.

    ``AvsbServer(sdk_key=..., base_url=...)`` starts fetching at once; ``on_ready_sync()`` (or
    ``await on_ready()``) waits for the first matrix. ``for_user(context)`` returns a scoped
    client with the typed getters. ``close_sync()`` (or ``await close()``) stops the threads and
    flushes the events.

    Offline mode (``offline=True, matrix_path=...``) reads a matrix file (a Proctor test matrix
    or an A vs B datafile) and never touches the network.

    ``exposure_dimensions=['device', 'country']`` copies those context attributes (strings,
    numbers, booleans) onto every exposure, so experiment results can be broken down by them.
    """

    def __init__(
        self,
        sdk_key: str | None = None,
        base_url: str | None = None,
        *,
        offline: bool = False,
        matrix_path: str | os.PathLike[str] | None = None,
        schema_path: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None | bool = True,
        stream: bool = True,
        poll_interval: float = 30.0,
        send_events: bool = True,
        flush_interval: float = 5.0,
        events_capacity: int = 10_000,
        exposure_dimensions: list[str] | tuple[str, ...] = (),
        timeout: float = 5.0,
    ) -> None:
        super().__init__()
        self._offline = bool(offline)
        self._sdk_key = sdk_key or setting("AVSB_SDK_KEY")
        if not self._offline and not self._sdk_key:
            raise ConfigError(
                "AvsbServer needs an SDK key: pass sdk_key=..., or set AVSB_SDK_KEY in the environment "
                "(or in Django's settings); for no server at all, pass offline=True and matrix_path=..."
            )
        if self._offline and matrix_path is None:
            raise ConfigError("offline=True needs matrix_path=... (a Proctor test matrix or an A vs B datafile)")
        self._base_url = (base_url or setting("AVSB_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        if not self._base_url.startswith(("http://", "https://")):
            raise ConfigError(f"base_url must start with http:// or https://, not {self._base_url!r}")
        if poll_interval <= 0 or flush_interval <= 0 or timeout <= 0:
            raise ConfigError("poll_interval, flush_interval and timeout must be positive numbers of seconds")
        if events_capacity < 1:
            raise ConfigError("events_capacity must be at least 1")
        dimensions = list(exposure_dimensions)
        if len(dimensions) > 8 or not all(isinstance(d, str) and 0 < len(d) <= 64 for d in dimensions):
            raise ConfigError("exposure_dimensions must name at most 8 context attributes, each 1 to 64 characters")
        self._stream = bool(stream)
        self._poll_interval = float(poll_interval)
        self._flush_interval = float(flush_interval)
        self._timeout = float(timeout)
        self._events_capacity = int(events_capacity)
        self._send_events = bool(send_events) and not self._offline
        self._cache_path = self._cache_file(cache_dir)
        self._listeners: list[Callable[[_native.Engine], None]] = []
        self._etag: str | None = None
        self._status = "initializing"
        self._closed = False
        self._warned_not_ready = False
        # Set by on_ready_sync() in an AppConfig.ready(): the wait owed once requests are served.
        self._wait_before_serving = False
        self._configure_events(self._send_events, self._events_capacity, dimensions=dimensions)
        self._start_state()
        if self._offline:
            self._load_offline(matrix_path, schema_path)
        else:
            self._start_threads()
        _register_default(self)
        _track_for_fork(self)

    # -- lifecycle -----------------------------------------------------------------------

    def _start_state(self) -> None:
        """Per-process synchronisation state (made again in a child after ``fork()``)."""
        self._ready = threading.Event()
        self._wake_events = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._response: urllib3.BaseHTTPResponse | None = None
        self._retry_batches: list[bytes] = []
        self._http = urllib3.PoolManager(num_pools=2, maxsize=2, headers={"User-Agent": USER_AGENT}, retries=False)
        # The stream holds its connection for hours and ends by being cut: it gets a pool of its
        # own, and its connections are closed, never reused.
        self._stream_http = urllib3.PoolManager(num_pools=1, maxsize=1, headers={"User-Agent": USER_AGENT}, retries=False)
        self._threads: list[threading.Thread] = []

    def _start_threads(self) -> None:
        self._threads = [threading.Thread(target=self._run_data_source, name="avsb-data-source", daemon=True)]
        if self._send_events:
            self._threads.append(threading.Thread(target=self._run_event_sender, name="avsb-events", daemon=True))
        for t in self._threads:
            t.start()

    def on_ready_sync(self, timeout: float | None = None) -> bool:
        """Waits until a matrix is loaded (from the server, or from the disk cache when the
        server cannot be reached), up to ``timeout`` seconds (5 by default). Returns whether
        one is; never raises.

        Without a timeout, called while Django starts (in an ``AppConfig.ready()``), it does not
        wait there: Django runs ``ready()`` for every management command, so ``manage.py check``,
        ``migrate`` and ``shell`` would all wait for a server. The wait happens instead where
        the application is about to serve requests, once per process: when ``AvsbMiddleware``
        is built (``runserver``, a WSGI or ASGI server loading the application) or when
        ``AvsbLifespan`` starts. A test run (Django's test runner, pytest-django) never waits
        then; give a timeout where a wait must happen whatever the process does."""
        if timeout is None:
            if not self._ready.is_set() and _django_is_starting():
                self._wait_before_serving = True
                return False
            timeout = DEFAULT_READY_TIMEOUT
        self._wait_before_serving = False
        ready = self._ready.wait(timeout)
        if not ready and not self._warned_not_ready:
            # Once per server: concurrent first requests waiting briefly would repeat it.
            self._warned_not_ready = True
            logger.warning(
                "avsb: no matrix after %.1f s (server %s unreachable and no cached datafile); "
                "flags return their defaults until one arrives",
                timeout,
                self._base_url,
            )
        return ready

    async def on_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> bool:
        """``on_ready_sync`` for asyncio code: waits without blocking the event loop."""
        if self._ready.is_set():
            self._wait_before_serving = False
            return True
        return await asyncio.to_thread(self.on_ready_sync, timeout)

    def before_serving(self) -> None:
        """Called where the application is about to serve requests (``AvsbMiddleware`` when it
        is built): waits for the first matrix if an ``on_ready_sync()`` in an
        ``AppConfig.ready()`` asked for it, once, and not in a test run."""
        if not self._wait_before_serving:
            return
        self._wait_before_serving = False
        if not _django_is_testing():
            self.on_ready_sync(DEFAULT_READY_TIMEOUT)

    def is_ready(self) -> bool:
        """Whether a matrix is loaded."""
        return self._ready.is_set()

    @property
    def status(self) -> str:
        """``initializing``, ``ready`` (current with the server), ``stale`` (serving the last
        good matrix while the server cannot be reached), ``offline`` or ``closed``."""
        return self._status

    @property
    def base_url(self) -> str:
        """The server's address."""
        return self._base_url

    def on_change(self, listener: Callable[[_native.Engine], None]) -> None:
        """Calls ``listener(engine)`` from the data-source thread after each new matrix."""
        self._listeners.append(listener)

    def close_sync(self, timeout: float = 5.0) -> None:
        """Stops the background threads and sends the waiting events (up to ``timeout``
        seconds). Idempotent; flags keep answering from the last matrix afterwards."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        self._wake_events.set()
        response = self._response
        if response is not None:
            try:
                response.shutdown()
            except Exception:  # noqa: BLE001 - closing a half-open stream must not fail close()
                pass
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self._send_events:
            self._flush_now(deadline)
        counts = self._event_counts()
        if counts["dropped_full"] or counts["dropped_invalid"]:
            logger.warning("avsb: events dropped in this process: %s", counts)
        self._http.clear()
        self._stream_http.clear()
        self._status = "closed"

    async def close(self, timeout: float = 5.0) -> None:
        """``close_sync`` for asyncio code."""
        await asyncio.to_thread(self.close_sync, timeout)

    def flush(self) -> None:
        """Asks the event sender to send what is waiting now (returns at once)."""
        self._wake_events.set()

    def flush_sync(self, timeout: float = 5.0) -> bool:
        """Sends what is waiting now, from this thread; returns whether everything was sent."""
        if not self._send_events:
            return True
        return self._flush_now(time.monotonic() + timeout)

    def event_stats(self) -> dict[str, int]:
        """Event counters (``recorded``, ``deduplicated``, ``dropped_full``, ``dropped_invalid``,
        ``pending``, ``retrying``)."""
        stats = dict(self._event_counts())
        stats["pending"] = self._pending_events()
        stats["retrying"] = len(self._retry_batches)
        return stats

    def __enter__(self) -> AvsbServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close_sync()

    def __repr__(self) -> str:
        engine = self.engine
        version = engine.version if engine is not None else None
        return f"<AvsbServer {self._base_url if not self._offline else 'offline'} status={self._status} version={version}>"

    # -- matrices ------------------------------------------------------------------------

    def _load_offline(self, matrix_path: Any, schema_path: Any) -> None:
        text = Path(matrix_path).read_text(encoding="utf-8")
        schema = Path(schema_path).read_text(encoding="utf-8") if schema_path is not None else None
        try:
            doc = json.loads(text) if schema is None else None
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "matrix" in doc and "tests" not in doc:
            engine = _native.Engine.from_datafile(text)
        else:
            engine = _native.Engine.from_matrix(text, schema)
        for d in engine.diagnostics:
            logger.warning("avsb: %s: %s: %s [%s]", matrix_path, d["path"], d["message"], d["code"])
        self._set_engine(engine)
        self._status = "offline"
        self._ready.set()

    def _apply(self, text: str | bytes, etag: str | None, source: str) -> bool:
        """Loads a datafile; a bad one is logged and the current matrix stays."""
        try:
            engine = _native.Engine.from_datafile(text)
        except _native.MatrixError as e:
            logger.error("avsb: ignoring a datafile from %s that cannot be used (%s); keeping the current matrix", source, e)
            return False
        for d in engine.diagnostics:
            logger.warning("avsb: matrix %s: %s: %s [%s]", engine.version, d["path"], d["message"], d["code"])
        self._set_engine(engine)
        self._etag = etag
        logger.info("avsb: matrix version %s loaded from %s (%d tests)", engine.version, source, len(engine))
        if source != "cache":
            self._save_cache(text)
        self._ready.set()
        for listener in list(self._listeners):
            try:
                listener(engine)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop updates
                logger.exception("avsb: an on_change listener failed")
        return True

    def _cache_file(self, cache_dir: Any) -> Path | None:
        if cache_dir is False or cache_dir is None or self._offline:
            return None
        if cache_dir is True:
            cache_dir = setting("AVSB_CACHE_DIR") or Path(
                os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
            ) / "avsb" / "datafiles"
        # The key itself never reaches the disk: the file is named by its digest.
        digest = hashlib.sha256(f"{self._base_url_for_cache()}|{self._sdk_key}".encode()).hexdigest()[:24]
        return Path(cache_dir) / f"{digest}.json"

    def _base_url_for_cache(self) -> str:
        return getattr(self, "_base_url", "")

    def _save_cache(self, text: str | bytes) -> None:
        if self._cache_path is None:
            return
        data = text.encode() if isinstance(text, str) else text
        try:
            self._cache_path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self._cache_path.parent, prefix=".datafile-")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.chmod(tmp, 0o600)
                os.replace(tmp, self._cache_path)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError as e:
            logger.warning("avsb: could not save the datafile to %s: %s", self._cache_path, e)

    def _load_cache(self) -> bool:
        if self._cache_path is None or self.engine is not None:
            return False
        try:
            text = self._cache_path.read_bytes()
        except FileNotFoundError:
            return False
        except OSError as e:
            logger.warning("avsb: could not read the cached datafile %s: %s", self._cache_path, e)
            return False
        if self._apply(text, None, "cache"):
            self._status = "stale"
            logger.warning("avsb: serving the last good matrix from %s until the server answers", self._cache_path)
            return True
        return False

    # -- the data source -------------------------------------------------------------------

    def _headers(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._sdk_key}", "Accept-Encoding": "gzip"}
        if extra:
            headers.update(extra)
        return headers

    def _poll(self) -> bool:
        """One ``GET /sdk/v1/datafile`` with ETag. Returns whether the server answered usefully."""
        headers = self._headers({"If-None-Match": self._etag} if self._etag else None)
        try:
            r = self._http.request(
                "GET",
                f"{self._base_url}/sdk/v1/datafile",
                headers=headers,
                timeout=urllib3.Timeout(connect=self._timeout, read=self._timeout * 2),
            )
        except urllib3.exceptions.HTTPError as e:
            logger.warning("avsb: cannot reach %s: %s", self._base_url, e)
            return False
        if r.status == 304:
            return True
        if r.status == 200:
            return self._apply(r.data, r.headers.get("ETag"), "server")
        self._log_refusal("datafile", r.status, r.data)
        return False

    def _log_refusal(self, what: str, status: int, body: bytes) -> None:
        try:
            message = json.loads(body)["error"]["message"]
        except Exception:  # noqa: BLE001 - any body at all
            message = body[:200].decode("utf-8", "replace")
        if status in (401, 403):
            logger.error("avsb: the server refused the SDK key (%s %d): %s", what, status, message)
        else:
            logger.warning("avsb: %s answered %d: %s", what, status, message)

    def _stream_once(self) -> bool:
        """Follows the stream until it ends. Returns whether the server accepted it."""
        headers = self._headers({"Accept": "text/event-stream"})
        headers.pop("Accept-Encoding", None)
        if self._etag:
            headers["Last-Event-ID"] = self._etag.strip('"')
        try:
            r = self._stream_http.request(
                "GET",
                f"{self._base_url}/sdk/v1/stream",
                headers=headers,
                preload_content=False,
                # Heartbeats come every 15 s by default; three missed ones mean a dead stream.
                timeout=urllib3.Timeout(connect=self._timeout, read=max(45.0, self._timeout)),
            )
        except urllib3.exceptions.HTTPError as e:
            logger.warning("avsb: cannot reach %s: %s", self._base_url, e)
            return False
        if r.status != 200:
            self._log_refusal("stream", r.status, r.read())
            r.close()
            return False
        self._response = r
        try:
            if self._stop.is_set():
                return True
            if self.engine is not None:
                # Connected: whatever we hold is current (Last-Event-ID) or about to be replaced.
                self._status = "ready"
            for event in SSEClient(r).events():
                if event.event == "datafile":
                    self._apply(event.data, f'"{event.id}"' if event.id else None, "server")
                    self._status = "ready"
                if self._stop.is_set():
                    break
        except (urllib3.exceptions.HTTPError, OSError, ValueError) as e:
            if not self._stop.is_set():
                logger.warning("avsb: the stream from %s broke: %s", self._base_url, e)
        finally:
            self._response = None
            r.close()
        return True

    def _run_data_source(self) -> None:
        backoff = _Backoff()
        if self._poll():
            self._status = "ready"
        else:
            self._load_cache()
        while not self._stop.is_set():
            if self._stream:
                started = time.monotonic()
                if self._stream_once() and time.monotonic() - started > 5.0:
                    # A stream that lived a while ended (server restart, proxy timeout): reconnect now.
                    backoff.reset()
                    continue
                if self._stop.is_set():
                    break
                delay = backoff.next()
            else:
                delay = self._poll_interval
            if self._stop.wait(delay):
                break
            # Polling: the only source without a stream, the fallback while the stream is down.
            if self._poll():
                self._status = "ready"
                if not self._stream:
                    backoff.reset()
            elif self.engine is not None:
                self._status = "stale"
                if not self._stream and self._stop.wait(max(0.0, backoff.next() - delay)):
                    break

    # -- events ----------------------------------------------------------------------------

    def _post_events(self, body: bytes) -> str:
        """Sends one batch: ``sent``, ``retry`` (try again later) or ``dropped`` (never will)."""
        try:
            r = self._http.request(
                "POST",
                f"{self._base_url}/sdk/v1/events",
                body=body,
                headers={**self._headers(), "Content-Type": "application/json"},
                timeout=urllib3.Timeout(connect=self._timeout, read=self._timeout * 2),
            )
        except urllib3.exceptions.HTTPError as e:
            logger.warning("avsb: cannot send events to %s: %s; will retry", self._base_url, e)
            return "retry"
        if 200 <= r.status < 300:
            return "sent"
        if r.status in (408, 425, 429) or r.status >= 500:
            logger.warning("avsb: the server answered %d to events; will retry", r.status)
            return "retry"
        self._log_refusal("events", r.status, r.data)
        return "dropped"

    def _send_round(self) -> bool:
        """Sends retried batches, then everything waiting. Returns False if a batch must wait."""
        while self._retry_batches:
            outcome = self._post_events(self._retry_batches[0])
            if outcome == "retry":
                return False
            self._retry_batches.pop(0)
        while True:
            body = self._drain_events(1000)
            if body is None:
                return True
            outcome = self._post_events(body)
            if outcome == "retry":
                self._retry_batches.append(body)
                # Bounded: batches waiting for a retry count against the event capacity.
                while len(self._retry_batches) * 1000 > max(self._events_capacity, 1000):
                    self._retry_batches.pop(0)
                    logger.warning("avsb: dropped a batch of events that could not be sent")
                return False

    def _flush_now(self, deadline: float) -> bool:
        backoff = _Backoff(initial=0.2, cap=2.0)
        with self._lock:
            while True:
                if self._send_round():
                    return True
                if time.monotonic() + 0.2 > deadline:
                    left = len(self._retry_batches)
                    logger.warning("avsb: %d batch(es) of events could not be sent before the deadline", left)
                    return False
                time.sleep(min(backoff.next(), max(0.0, deadline - time.monotonic())))

    def _run_event_sender(self) -> None:
        backoff = _Backoff()
        while not self._stop.is_set():
            woken = self._wake_events.wait(self._flush_interval)
            self._wake_events.clear()
            if self._stop.is_set():
                break
            with self._lock:
                ok = self._send_round()
            if ok:
                backoff.reset()
            elif not woken and self._stop.wait(backoff.next()):
                break

    # -- fork --------------------------------------------------------------------------------

    def _after_fork_in_child(self) -> None:
        """A forked child (gunicorn ``--preload``) keeps the matrix, drops the parent's waiting
        events (the parent sends those) and starts its own threads."""
        self._forget_events()
        was_ready = self._ready.is_set()
        self._start_state()
        if was_ready:
            self._ready.set()
        if not self._closed and not self._offline:
            self._start_threads()


_live: weakref.WeakSet[AvsbServer] = weakref.WeakSet()


def _track_for_fork(server: AvsbServer) -> None:
    _live.add(server)


def _after_fork_in_child() -> None:
    global _made_lock
    _made_lock = threading.Lock()
    for server in list(_live):
        try:
            server._after_fork_in_child()
        except Exception:  # noqa: BLE001 - a child must start even if one server cannot
            logger.exception("avsb: restarting after fork failed")


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
