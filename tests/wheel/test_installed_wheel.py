"""What scripts/build-wheels makes, as a team without Rust installs it (tests/wheel/run): where
the package comes from, what the wheel and the sdist hold, and what they tell pip."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

import avsb

REPO = Path(__file__).resolve().parents[2]
WHEEL = Path(os.environ["AVSB_WHEEL"])
SDIST = Path(os.environ["AVSB_SDIST"]) if os.environ.get("AVSB_SDIST") else None
# The tags scripts/build-wheels promises: every CPython from 3.10 on (stable ABI), glibc 2.17+.
TAGS = {"cp310-abi3-manylinux2014_x86_64", "cp310-abi3-manylinux_2_17_x86_64"}


def source_version() -> str:
    match = re.search(r'^version = "([^"]+)"', (REPO / "python" / "pyproject.toml").read_text(), re.MULTILINE)
    assert match, "python/pyproject.toml names no version"
    return match.group(1)


def test_no_rust_toolchain_can_be_found():
    assert shutil.which("cargo") is None
    assert shutil.which("rustc") is None
    assert not [name for name in os.environ if name.startswith(("CARGO", "RUSTUP", "RUSTC"))]


def test_avsb_is_the_package_pip_installed_from_the_wheel():
    site_packages = Path(sysconfig.get_paths()["platlib"]).resolve()
    assert Path(avsb.__file__).resolve() == site_packages / "avsb" / "__init__.py"
    dist = importlib.metadata.distribution("avsb-python")
    # pip records where it took the package from: this wheel file, not a source tree (an
    # editable or `pip install ./python` install records a directory).
    direct_url = json.loads(dist.read_text("direct_url.json"))
    assert direct_url["url"] == WHEEL.as_uri()
    assert "dir_info" not in direct_url


def test_the_wheel_is_tagged_for_every_cpython_from_3_10_on_glibc_2_17():
    wheel_file = importlib.metadata.distribution("avsb-python").read_text("WHEEL")
    assert {line.split(": ", 1)[1] for line in wheel_file.splitlines() if line.startswith("Tag: ")} == TAGS
    assert "Root-Is-Purelib: false" in wheel_file
    assert WHEEL.name == f"avsb_python-{source_version()}-cp310-abi3-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"


def test_the_metadata_tells_pip_the_python_and_the_dependencies():
    dist = importlib.metadata.distribution("avsb-python")
    assert dist.version == source_version()
    assert dist.metadata["Requires-Python"] == ">=3.10"
    requires = dist.requires or []
    assert any(r.startswith("urllib3") for r in requires)
    assert any(r.startswith("sseclient-py") for r in requires)
    assert any(r.startswith("django") and "extra == 'django'" in r for r in requires)


def test_the_wheel_holds_every_module_of_the_package_and_one_native_module():
    names = set(zipfile.ZipFile(WHEEL).namelist())
    package = REPO / "python"
    sources = {p.relative_to(package).as_posix() for p in (package / "avsb").rglob("*.py") if "__pycache__" not in p.parts}
    assert sources, "python/avsb holds no module"
    assert sources - names == set()
    assert [n for n in names if n.endswith(".so")] == ["avsb/_native.abi3.so"]
    assert {"avsb/_native.pyi", "avsb/py.typed", "avsb/contrib/proctor/templates/proctor_groups.html"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_installed_native_module_evaluates(tmp_path):
    matrix = {
        "audit": {"version": "1", "updated": 1, "updatedBy": "wheel"},
        "tests": {"everyone-on": {
            "version": "1", "salt": "everyone-on", "testType": "USER", "rule": None, "constants": {},
            "buckets": [
                {"name": "off", "value": 0, "payload": {"booleanValue": False}},
                {"name": "on", "value": 1, "payload": {"booleanValue": True}},
            ],
            "allocations": [{"rule": None, "ranges": [{"bucketValue": 0, "length": 0.0}, {"bucketValue": 1, "length": 1.0}]}],
        }},
    }
    (tmp_path / "matrix.json").write_text(json.dumps(matrix))
    server = avsb.AvsbServer(offline=True, matrix_path=tmp_path / "matrix.json", cache_dir=False)
    try:
        scoped = server.for_user({"kind": "user", "key": "u_1"})
        assert scoped.get_bool_flag("everyone-on", False) is True
        assert scoped.get_bool_flag_details("everyone-on", False).variant == "on"
        assert scoped.get_bool_flag("no-such-test", False) is False
    finally:
        server.close_sync()


@pytest.mark.skipif(SDIST is None, reason="tests/wheel/run was given no sdist")
def test_the_sdist_holds_what_a_build_from_source_needs():
    assert SDIST is not None
    root = f"avsb_python-{source_version()}/"
    with tarfile.open(SDIST) as archive:
        names = {n.removeprefix(root) for n in archive.getnames()}
        pyproject = archive.extractfile(root + "pyproject.toml").read().decode()
    assert {"pyproject.toml", "PKG-INFO", "Cargo.toml", "Cargo.lock", "avsb/__init__.py", "avsb/_native.pyi",
            "crates/avsb-python/src/lib.rs", "crates/avsb-core/src/lib.rs"} <= names
    assert 'manifest-path = "crates/avsb-python/Cargo.toml"' in pyproject
    assert not [n for n in names if n.endswith(".so") or "__pycache__" in n]
