"""The avsb SDK's tests: the package against the real server binary (tests/harness)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "tests" / "harness"))

pytest_plugins = ["avsb_fixtures"]
