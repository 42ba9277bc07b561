"""The tests that django-proctor's interop suite and the avsb.contrib.proctor suite add to the
demo matrix: one per payload shape django-proctor unwraps, and one hashed by the ACCOUNT
identifier (the one `proctor.identify.proc_by_accountid` sends)."""

EXTRA_TESTS = {
    "limits": {
        "version": "1",
        "salt": "limits",
        "testType": "USER",
        "rule": None,
        "constants": {},
        "description": "longArray payloads",
        "buckets": [
            {"name": "small", "value": 0, "payload": {"longArray": [10, 20]}},
            {"name": "large", "value": 1, "payload": {"longArray": [100, 200]}},
        ],
        "allocations": [
            {"rule": None, "ranges": [{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}]}
        ],
    },
    "copy": {
        "version": "1",
        "salt": "copy",
        "testType": "USER",
        "rule": None,
        "constants": {},
        "description": "map payloads",
        "buckets": [
            {
                "name": "plain",
                "value": 0,
                "payload": {"map": {"title": "Welcome", "maxItems": 3, "ratio": 0.5, "tags": ["a", "b"]}},
            },
        ],
        "allocations": [{"rule": None, "ranges": [{"length": 1.0, "bucketValue": 0}]}],
    },
    "accounttst": {
        "version": "1",
        "salt": "accounttst",
        "testType": "ACCOUNT",
        "rule": None,
        "constants": {},
        "description": "hashed by account",
        "buckets": [
            {"name": "control", "value": 0, "payload": {"stringValue": "A"}},
            {"name": "test", "value": 1, "payload": {"stringValue": "B"}},
        ],
        "allocations": [
            {"rule": None, "ranges": [{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}]}
        ],
    },
}
