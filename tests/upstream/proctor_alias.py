"""A pytest plugin: `proctor` is `avsb.contrib.proctor`, by an import alias and nothing else.

Every module `proctor` or `proctor.<name>` is the module `avsb.contrib.proctor[.<name>]` itself,
except `proctor.tests` and its modules: django-proctor's own test suite, loaded from the directory
`AVSB_UPSTREAM_SUITE` names (the extracted wheel, which holds `proctor/tests/`). So the suite runs
unchanged, as a site that switched packages would: `from proctor import api`,
`mock.patch("proctor.api.requests")` and `from proctor.tests.utils import ...` all resolve.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from types import ModuleType

ALIAS = "proctor"
TARGET = "avsb.contrib.proctor"
SUITE = ALIAS + ".tests"


class _Alias(importlib.abc.Loader):
    """Hands out the target module itself, so the alias and the target are one object."""

    def __init__(self, target: str) -> None:
        self.target = target

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(self.target)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the target module is already imported."""


class ProctorAlias(importlib.abc.MetaPathFinder):
    """Finds `proctor[.*]` as the drop-in's modules and `proctor.tests[.*]` in the suite."""

    def __init__(self, suite_dir: str) -> None:
        self.suite_dir = suite_dir

    def find_spec(self, name: str, path=None, target=None):
        if name == SUITE or name.startswith(SUITE + "."):
            parent = os.path.join(self.suite_dir, *name.split(".")[:-1])
            return importlib.machinery.PathFinder.find_spec(name, [parent])
        if name == ALIAS or name.startswith(ALIAS + "."):
            return importlib.util.spec_from_loader(name, _Alias(TARGET + name[len(ALIAS):]))
        return None


def install() -> None:
    """Puts the alias first on `sys.meta_path`. It runs when pytest imports this plugin (`-p
    proctor_alias`), before pytest-django imports the suite's settings."""
    suite_dir = os.environ.get("AVSB_UPSTREAM_SUITE")
    if not suite_dir:
        raise RuntimeError("AVSB_UPSTREAM_SUITE must name the directory that holds proctor/tests/")
    if any(name == ALIAS or name.startswith(ALIAS + ".") for name in sys.modules):
        raise RuntimeError("a module named proctor was imported before the alias was installed")
    sys.meta_path.insert(0, ProctorAlias(suite_dir))


install()
