"""django-proctor's constants, under the same names."""

#: Pipet's method that assigns groups (``GET {PROCTOR_API_ROOT}/groups/identify``).
API_METHOD_GROUPS_IDENTIFY = "groups/identify"
#: Pipet's method that returns the whole test matrix (used by the private views).
API_METHOD_PROCTOR_MATRIX = "proctor/matrix"
#: The query parameter and cookie that carry force groups.
PROP_NAME_FORCE_GROUPS = "prforceGroups"
#: Each connect and each read of a Pipet call may take this long (seconds).
MAX_HTTP_TIMEOUT_SECONDS = 0.25
#: Attempts per Pipet call when the call raises (HTTP error statuses are not retried).
MAX_HTTP_RETRIES = 4
#: How long, at most, requests wait for the first matrix of a server SDK that is still loading;
#: past it (counted from the first request that found the SDK not ready) they get unassigned
#: groups at once until the matrix arrives.
LOCAL_READY_TIMEOUT_SECONDS = 2.0
