"""A vs B: self-hosted A/B tests and feature flags, evaluated locally by a Rust engine.

    from avsb import AvsbServer
    server = AvsbServer(sdk_key=os.environ["AVSB_SDK_KEY"])
    server.on_ready_sync()
    scoped = server.for_user({"kind": "user", "key": "u_1", "plan": "pro"})
    scoped.get_bool_flag("checkout-v2", False)

Importing ``avsb`` never imports Django; the Django layers live in ``avsb.contrib``.
"""

from avsb import _native
from avsb._native import Engine, FlagDetails, MatrixError, RequestError, Scope
from avsb.client import AvsbClient
from avsb.config import ConfigError
from avsb.server import AvsbServer, default_server
from avsb.assignment import GroupAssignment

_native._set_group_assignment_type(GroupAssignment)

__version__ = "0.1.0"

__all__ = [
    "AvsbClient",
    "AvsbServer",
    "ConfigError",
    "Engine",
    "FlagDetails",
    "GroupAssignment",
    "MatrixError",
    "RequestError",
    "Scope",
    "default_server",
]
