"""Criteria and flags as one immutable snapshot, cached in the Django cache and in each process.

A request costs one cache read (the version) and no query once the cache is warm. Saving or
deleting a Flag or Criteria (or changing their relations) writes a new version after the
transaction commits; every process sees it on its next request and reloads — from the cache if
another process already did, else from the database (a fixed number of queries, whatever the
number of criteria). With a per-process cache (LocMemCache), other processes cannot see the new
version: use a shared cache.

Percent criteria are compiled into one A vs B matrix (one 2-bucket test per criteria), so the
engine hashes visitors exactly as it hashes every other test: no second hash in Python.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.cache import caches

from avsb import _native
from avsb.contrib.affect import conf

VERSION_KEY = "affect:version"
SNAPSHOT_KEY = "affect:snapshot:%s"
# A user's group ids, per snapshot version (so a new version forgets them all).
USER_GROUPS_KEY = "affect:user-groups:%s:%s"


@dataclass(frozen=True)
class CriteriaRule:
    """One criteria, as evaluation needs it."""

    name: str
    flags: tuple[str, ...]
    persistent: bool
    max_cookie_age: int | None
    everyone: bool | None
    testing: bool
    percent: float
    superusers: bool
    staff: bool
    authenticated: bool
    device_type: int
    entry_urls: tuple[str, ...]
    referrers: tuple[str, ...]
    query_args: dict[str, Any] | None
    group_ids: frozenset[int]
    user_ids: frozenset[Any]

    @property
    def percent_test(self) -> str:
        """The engine test that hashes visitors for this criteria's percent."""
        return f"affect_percent_{self.name}"

    @property
    def cookie_age(self) -> int | None:
        """Seconds the cookies live; ``None`` (a browser-session cookie) for 0 or blank."""
        return self.max_cookie_age or None


@dataclass(frozen=True)
class FlagRule:
    """One active flag: its priority and the active flags it conflicts with."""

    name: str
    priority: int
    conflicts: frozenset[str]


@dataclass
class Snapshot:
    """Everything evaluation reads, for one version."""

    version: str
    criteria: tuple[CriteriaRule, ...]
    flags: dict[str, FlagRule]
    uses_groups: bool = False
    evaluator: _native.Evaluator | None = field(default=None, repr=False)

    @classmethod
    def from_data(cls, version: str, data: dict[str, Any]) -> Snapshot:
        criteria = tuple(
            CriteriaRule(**{**c, "flags": tuple(c["flags"]), "entry_urls": tuple(c["entry_urls"]), "referrers": tuple(c["referrers"]), "group_ids": frozenset(c["group_ids"]), "user_ids": frozenset(c["user_ids"])})
            for c in data["criteria"]
        )
        flags = {f["name"]: FlagRule(f["name"], f["priority"], frozenset(f["conflicts"])) for f in data["flags"]}
        snapshot = cls(version, criteria, flags, uses_groups=any(c.group_ids for c in criteria))
        snapshot.evaluator = _percent_evaluator(criteria)
        return snapshot


def _split(text: str) -> list[str]:
    """django-affect's comma lists, with the whitespace people type around commas removed."""
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def _percent_matrix(criteria: tuple[CriteriaRule, ...]) -> dict[str, Any]:
    tests = {}
    for c in criteria:
        if c.percent <= 0:
            continue
        share = c.percent / 100.0
        tests[c.percent_test] = {
            "version": "1",
            "salt": c.percent_test,
            "testType": "USER",
            "description": f"affect criteria '{c.name}': {c.percent}% of visitors",
            "buckets": [{"name": "out", "value": 0}, {"name": "in", "value": 1}],
            "allocations": [{"ranges": [{"bucketValue": 1, "length": share}, {"bucketValue": 0, "length": round(1.0 - share, 12)}]}],
        }
    return {"audit": {"version": "affect", "updated": 0, "updatedBy": "affect"}, "tests": tests}


def _percent_evaluator(criteria: tuple[CriteriaRule, ...]) -> _native.Evaluator | None:
    matrix = _percent_matrix(criteria)
    if not matrix["tests"]:
        return None
    engine = _native.Engine.from_matrix(json.dumps(matrix))
    evaluator = _native.Evaluator()
    evaluator._set_engine(engine)
    return evaluator


def load_data() -> dict[str, Any]:
    """Reads every criteria and active flag with a fixed number of queries (six)."""
    from avsb.contrib.affect.models import Criteria, Flag

    active = {f.pk: f for f in Flag.objects.filter(active=True)}
    conflicts: dict[int, set[str]] = {pk: set() for pk in active}
    for a, b in Flag.conflicts.through.objects.values_list("from_flag_id", "to_flag_id"):
        if a in active and b in active:
            conflicts[a].add(active[b].name)
    flags_of: dict[int, list[str]] = {}
    for c_id, f_id in Criteria.flags.through.objects.values_list("criteria_id", "flag_id"):
        if f_id in active:
            flags_of.setdefault(c_id, []).append(active[f_id].name)
    groups_of: dict[int, list[int]] = {}
    for c_id, g_id in Criteria.groups.through.objects.values_list("criteria_id", "group_id"):
        groups_of.setdefault(c_id, []).append(g_id)
    users_of: dict[int, list[Any]] = {}
    user_column = Criteria.users.through._meta.get_field(Criteria.users.field.m2m_reverse_field_name()).attname
    for c_id, u_id in Criteria.users.through.objects.values_list("criteria_id", user_column):
        users_of.setdefault(c_id, []).append(u_id)
    criteria = []
    for c in Criteria.objects.all().order_by("name"):
        criteria.append(
            {
                "name": c.name,
                "flags": sorted(flags_of.get(c.pk, [])),
                "persistent": c.persistent,
                "max_cookie_age": c.max_cookie_age,
                "everyone": c.everyone,
                "testing": c.testing,
                "percent": float(c.percent or Decimal("0")),
                "superusers": c.superusers,
                "staff": c.staff,
                "authenticated": c.authenticated,
                "device_type": c.device_type,
                "entry_urls": _split(c.entry_url),
                "referrers": [host.lower() for host in _split(c.referrer)],
                "query_args": c.query_args if isinstance(c.query_args, dict) else None,
                "group_ids": sorted(groups_of.get(c.pk, [])),
                "user_ids": sorted(users_of.get(c.pk, []), key=str),
            }
        )
    flags = [{"name": f.name, "priority": f.priority, "conflicts": sorted(conflicts[pk])} for pk, f in active.items()]
    return {"criteria": criteria, "flags": flags}


class Registry:
    """The process's view of the current snapshot (one per process; tests may make more)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None

    def cache(self):
        return caches[conf.get("AFFECTED_CACHE_NAME")]

    def current(self) -> Snapshot:
        """The snapshot of the current version: one cache read when nothing changed."""
        cache = self.cache()
        version = cache.get(VERSION_KEY)
        if version is None:
            cache.add(VERSION_KEY, uuid.uuid4().hex, None)
            version = cache.get(VERSION_KEY) or "uncached"
        snapshot = self._snapshot
        if snapshot is not None and snapshot.version == version:
            return snapshot
        with self._lock:
            if self._snapshot is not None and self._snapshot.version == version:
                return self._snapshot
            data = cache.get(SNAPSHOT_KEY % version)
            if data is None:
                data = load_data()
                cache.add(SNAPSHOT_KEY % version, data, None)
            self._snapshot = Snapshot.from_data(version, data)
            return self._snapshot

    def user_group_ids(self, snapshot: Snapshot, user: Any) -> frozenset[int]:
        """The user's group ids, cached until the user's groups (or any criteria) change."""
        cache = self.cache()
        key = USER_GROUPS_KEY % (snapshot.version, user.pk)
        ids = cache.get(key)
        if ids is None:
            ids = sorted(user.groups.values_list("pk", flat=True))
            cache.add(key, ids, None)
        return frozenset(ids)


def invalidate() -> None:
    """A new version for every process (called after a commit that changed criteria or flags)."""
    caches[conf.get("AFFECTED_CACHE_NAME")].set(VERSION_KEY, uuid.uuid4().hex, None)


def forget_user_groups(user_pk: Any) -> None:
    """Forgets one user's cached group ids (their groups changed)."""
    cache = caches[conf.get("AFFECTED_CACHE_NAME")]
    version = cache.get(VERSION_KEY)
    if version is not None:
        cache.delete(USER_GROUPS_KEY % (version, user_pk))


def invalidate_all_user_groups() -> None:
    """Forgets every user's cached group ids (a group's members were cleared, or it was deleted)."""
    invalidate()


registry = Registry()
