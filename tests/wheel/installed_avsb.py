"""A pytest plugin (``-p installed_avsb``) for every suite tests/wheel/run runs: it refuses to
start unless ``import avsb`` finds the package the wheel installed into the virtualenv
``$AVSB_WHEEL_VENV`` (its site-packages, with the stable-ABI native module), never python/ of
this repository, and names the package's location in the report header."""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

import pytest


def installed_location() -> tuple[Path, Path]:
    """Where ``avsb`` and its native module were imported from, checked against the virtualenv."""
    import avsb
    import avsb._native

    venv = Path(os.environ["AVSB_WHEEL_VENV"]).resolve()
    site_packages = Path(sysconfig.get_paths()["platlib"]).resolve()
    package = Path(avsb.__file__).resolve().parent
    native = Path(avsb._native.__file__).resolve()
    if Path(sys.prefix).resolve() != venv:
        raise pytest.UsageError(f"python runs from {sys.prefix}, not the wheel's virtualenv {venv}")
    if package != site_packages / "avsb":
        raise pytest.UsageError(f"avsb was imported from {package}, not from the virtualenv's {site_packages}")
    if native.parent != package or not native.name.endswith(".abi3.so"):
        raise pytest.UsageError(f"avsb._native is {native}, not the wheel's stable-ABI module in {package}")
    return package, native


def pytest_configure(config: pytest.Config) -> None:
    installed_location()


def pytest_report_header(config: pytest.Config) -> str:
    package, native = installed_location()
    return f"avsb: the installed wheel, {package} ({native.name})"
