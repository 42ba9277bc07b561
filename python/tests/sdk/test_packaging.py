"""The package as installed: import without Django, the private typed native module."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import avsb


def test_import_avsb_does_not_import_django_or_openfeature():
    code = "import sys, avsb, avsb.test_utils; print(sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'openfeature')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_native_module_is_private_and_typed():
    package = Path(avsb.__file__).parent
    assert (package / "_native.pyi").is_file()
    assert (package / "py.typed").is_file()
    assert avsb._native.__name__ == "avsb._native"
    assert "_native" not in avsb.__all__
    # Everything the stub declares exists in the module.
    stub = (package / "_native.pyi").read_text()
    for line in stub.splitlines():
        if line.startswith("class ") or line.startswith("def "):
            name = line.split()[1].split("(")[0].split(":")[0]
            assert hasattr(avsb._native, name), name


def test_python_errors_subclass_value_error():
    assert issubclass(avsb.MatrixError, ValueError)
    assert issubclass(avsb.RequestError, ValueError)
    assert issubclass(avsb.ConfigError, ValueError)
    try:
        avsb.Engine.from_matrix("{not json")
    except avsb.MatrixError as e:
        assert "matrix" in str(e)
    else:
        raise AssertionError("an unreadable matrix must raise MatrixError")


def test_payload_types_come_from_the_engine():
    assert avsb._native.payload_types()[-1] == "booleanValue"
    assert "TYPE_MISMATCH" in avsb._native.ERROR_CODES
