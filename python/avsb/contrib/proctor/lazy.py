"""``PROCTOR_LAZY = True``: ``request.proc`` evaluates when a view or template first reads a
group, a value, a payload or ``str(proc)``; a request that never does costs nothing."""

from __future__ import annotations

import threading
from typing import Any, Iterator

from avsb.contrib.proctor import groups
from avsb.contrib.proctor.local import AUTO

__all__ = ["LazyGroupAssignment", "LazyProctorGroups"]


class LazyProctorGroups(groups.ProctorGroups):
    """``ProctorGroups`` that loads on first use."""

    def __init__(self, params: Any, cacher: Any = None, request: Any = None, http: Any = None, server: Any = AUTO) -> None:
        self.loaded = False
        self._params = params
        self._cacher = cacher
        self._request = request
        self._http = http
        self._server = server
        self._load_lock = threading.Lock()
        super().__init__({test: LazyGroupAssignment(self, test) for test in params.defined_tests})

    def load(self) -> None:
        """Evaluates now (once); later reads of ``proc.<test>`` give plain ``GroupAssignment``s."""
        if self.loaded:
            return
        # Nested: identify imports this module.
        from avsb.contrib.proctor import identify

        with self._load_lock:
            if self.loaded:
                return
            group_dict = identify.load_group_dict(
                self._params, self._cacher, self._request, self._http, server=self._server
            )
            # A stubbed load_group_dict may give nothing; every test is then unassigned.
            self._group_dict = group_dict or groups.unassigned_groups(self._params.defined_tests)
            self.loaded = True
            # The request is no longer needed; do not keep it alive through proc.
            self._request = None

    def get_group_string_list(self) -> list[str]:
        self.load()
        return super().get_group_string_list()

    def __repr__(self) -> str:
        if not self.loaded:
            return f"<{type(self).__name__} (not loaded)>"
        return super().__repr__()


class LazyGroupAssignment:
    """Stands for one test's ``GroupAssignment`` until the groups are loaded; reading any field
    (or unpacking it, or comparing it) loads them."""

    def __init__(self, lazy_groups: LazyProctorGroups, test_name: str) -> None:
        self._lazy_groups = lazy_groups
        self._test_name = test_name

    def _assignment(self) -> groups.GroupAssignment:
        self._lazy_groups.load()
        return self._lazy_groups._group_dict[self._test_name]

    @property
    def group(self) -> Any:
        return self._assignment().group

    @property
    def value(self) -> Any:
        return self._assignment().value

    @property
    def payload(self) -> Any:
        return self._assignment().payload

    def __iter__(self) -> Iterator[Any]:
        return iter(self._assignment())

    def __getitem__(self, index: int) -> Any:
        return self._assignment()[index]

    def __len__(self) -> int:
        return 3

    def __eq__(self, other: object) -> bool:
        return self._assignment() == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self._lazy_groups.loaded:
            return repr(self._assignment())
        return f"LazyGroupAssignment({self._test_name!r}, not loaded)"
