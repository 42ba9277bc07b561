"""The results benchmark's body (see scripts/bench-results): ingest, results timings, DuckDB."""

from __future__ import annotations

import csv
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse

UNITS = int(os.environ.get("BENCH_UNITS", "100000"))
PER_UNIT = int(os.environ.get("BENCH_EVENTS_PER_UNIT", "10"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
BATCH = 1000


class Server:
    def __init__(self, binary: str, data: Path):
        self.binary, self.data = binary, data
        self.process: subprocess.Popen | None = None
        self.vars: dict[str, str] = {}

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.binary, "serve", "--demo", "--listen", "127.0.0.1:0", "--data", str(self.data), "--log-level", "warn"],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            key, _, value = line.strip().partition("=")
            self.vars[key] = value
            if key == "AVSB_CONSOLE_PASSWORD":
                break
        self.base = urlparse(self.vars["AVSB_CONSOLE_URL"])

    def stop(self) -> None:
        if self.process:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)
            self.process = None

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.base.hostname, self.base.port, timeout=600)

    def call(self, method: str, path: str, body=None, token: str | None = None, conn=None):
        conn = conn or self.connection()
        headers = {"Authorization": f"Bearer {token or self.vars['AVSB_ADMIN_TOKEN']}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


def events_of(unit: int, t0: int):
    """One unit's events: an exposure, then page views and purchases (deterministic)."""
    user = f"u{unit}"
    bucket = unit % 2
    t = t0 + unit // 100
    out = [("exposure", user, bucket, t, None, None)]
    for j in range(PER_UNIT - 1):
        # Every fourth unit buys once (more often in bucket 1); the rest are page views.
        if j == 0 and (unit * 7919) % 100 < (25 if bucket == 0 else 28):
            out.append(("track", user, None, t + 1000 + j, "purchase", float((unit * 31) % 200 + 5)))
        else:
            out.append(("track", user, None, t + 1000 + j, "pageview", None))
    return out


def as_json(e) -> dict:
    kind, user, bucket, t, key, value = e
    if kind == "exposure":
        return {"kind": "exposure", "identifiers": {"USER": user}, "test": "bench", "bucket": bucket, "reason": "split", "allocation": 0, "time": t}
    d = {"kind": "track", "identifiers": {"USER": user}, "key": key, "time": t}
    if value is not None:
        d["value"] = value
    return d


def ingest(server: Server, t0: int, csv_dir: Path) -> float:
    key = server.vars["AVSB_SDK_KEY"]
    lock = threading.Lock()
    next_unit = [0]
    units_per_batch = max(1, BATCH // PER_UNIT)
    exposures = open(csv_dir / "exposures.csv", "w", newline="")
    tracks = open(csv_dir / "tracks.csv", "w", newline="")
    ew, tw = csv.writer(exposures), csv.writer(tracks)
    ew.writerow(["unit", "bucket", "time"])
    tw.writerow(["unit", "key", "time", "value"])
    busy = [0.0]

    def worker():
        conn = server.connection()
        while True:
            with lock:
                start = next_unit[0]
                if start >= UNITS:
                    return
                next_unit[0] = min(UNITS, start + units_per_batch)
                end = next_unit[0]
                batch = [e for u in range(start, end) for e in events_of(u, t0)]
                for kind, user, bucket, t, k, v in batch:
                    if kind == "exposure":
                        ew.writerow([user, bucket, t])
                    else:
                        tw.writerow([user, k, t, "" if v is None else v])
            body = json.dumps({"batchId": str(uuid.uuid4()), "events": [as_json(e) for e in batch]}).encode()
            started = time.perf_counter()
            server.call("POST", "/sdk/v1/events", body, token=key, conn=conn)
            with lock:
                busy[0] += time.perf_counter() - started

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    exposures.close()
    tracks.close()
    return elapsed


def until_ready(server: Server, path: str):
    """Asks until the results are ready (a large experiment's first computation answers 202)."""
    while True:
        r = server.call("GET", path)
        if not r.get("computing"):
            return r
        time.sleep(0.2)


def until_fresh(server: Server, path: str):
    while True:
        r = server.call("GET", path)
        if not r.get("computing") and not r.get("stale"):
            return r
        time.sleep(0.2)


def timed(f):
    started = time.perf_counter()
    value = f()
    return time.perf_counter() - started, value


def duckdb_results(csv_dir: Path, window_ms: int) -> tuple[float, list]:
    import duckdb

    con = duckdb.connect()
    con.execute(f"CREATE TABLE exposures AS SELECT * FROM read_csv_auto('{csv_dir / 'exposures.csv'}')")
    con.execute(f"CREATE TABLE tracks AS SELECT * FROM read_csv_auto('{csv_dir / 'tracks.csv'}')")
    query = f"""
      WITH units AS (
        SELECT unit, min(time) AS first_time, min(bucket) AS bucket, count(DISTINCT bucket) AS buckets
        FROM exposures GROUP BY unit
      ),
      per_unit AS (
        SELECT u.unit, u.bucket,
               count(t.unit) FILTER (WHERE t.key = 'purchase') AS purchases,
               coalesce(sum(t.value) FILTER (WHERE t.key = 'purchase'), 0) AS revenue
        FROM units u LEFT JOIN tracks t
          ON t.unit = u.unit AND t.key = 'purchase' AND t.time >= u.first_time AND t.time <= u.first_time + {window_ms}
        WHERE u.buckets = 1
        GROUP BY u.unit, u.bucket
      )
      SELECT bucket, count(*) AS units,
             sum(CASE WHEN purchases > 0 THEN 1 ELSE 0 END) AS converted,
             sum(revenue) AS revenue, sum(revenue * revenue) AS revenue_squares
      FROM per_unit GROUP BY bucket ORDER BY bucket
    """
    con.execute(query).fetchall()  # warm
    seconds, rows = timed(lambda: con.execute(query).fetchall())
    return seconds, rows


def main() -> None:
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        data, csv_dir = Path(tmp) / "data", Path(tmp)
        server = Server(binary, data)
        server.start()
        try:
            definition = {
                "testType": "USER", "salt": "bench", "buckets": [{"name": "control", "value": 0}, {"name": "treatment", "value": 1}],
                "allocations": [{"ranges": [{"length": 0.5, "bucketValue": 0}, {"length": 0.5, "bucketValue": 1}]}],
            }
            server.call("PUT", "/api/v1/projects/demo/environments/development/tests/bench", {"definition": definition})
            for metric in (
                {"key": "buy", "name": "Purchase rate", "event": "purchase", "type": "conversion", "windowHours": 72},
                {"key": "rev", "name": "Revenue", "event": "purchase", "type": "mean", "windowHours": 72},
            ):
                server.call("POST", "/api/v1/projects/demo/metrics", metric)
            t0 = int(time.time() * 1000) + 10
            total = UNITS * PER_UNIT
            print(f"{UNITS:,} units, {total:,} events, batches of {BATCH}, {CLIENTS} clients", flush=True)
            seconds = ingest(server, t0, csv_dir)
            print(f"ingest: {seconds:.1f} s, {total / seconds:,.0f} events/s (including the client's JSON encoding)", flush=True)
            path = "/api/v1/projects/demo/environments/development/tests/bench/results?metrics=buy,rev&cuped=false"
            first, r = timed(lambda: until_ready(server, path))
            agains = sorted(timed(lambda: server.call("GET", path))[0] for _ in range(7))
            again = agains[len(agains) // 2]
            print(f"results, the first computation (a full scan): {first * 1000:,.0f} ms; again, nothing new: {again * 1000:,.1f} ms (median of 7; the first of them {agains[0] * 1000:,.1f} to {agains[-1] * 1000:,.1f} ms)", flush=True)
            extra = {"batchId": str(uuid.uuid4()), "events": [as_json(e) for e in events_of(UNITS, t0)]}
            server.call("POST", "/sdk/v1/events", extra, token=server.vars["AVSB_SDK_KEY"])
            after, r2 = timed(lambda: server.call("GET", path))
            print(f"results after one more batch: {after * 1000:,.0f} ms (stale: {r2.get('stale')})", flush=True)
            fresh, _ = timed(lambda: until_fresh(server, path))
            print(f"  ...fresh again after {fresh * 1000:,.0f} ms more", flush=True)
            server.stop()
            server.start()
            restart, r3 = timed(lambda: server.call("GET", path))
            print(f"results, first request after a restart: {restart * 1000:,.0f} ms (stale: {r3.get('stale')}, computing: {r3.get('computing')})", flush=True)
            units = [v["units"] for v in r["variants"]]
            sums = [(m["key"], [v["statistics"]["sum"] for v in m["variants"]]) for m in r["metrics"]]
            print(f"avsb: units {units}, sums {sums}", flush=True)
        finally:
            server.stop()
        duck, rows = duckdb_results(csv_dir, 72 * 3600 * 1000)
        print(f"duckdb (in memory, tables loaded beforehand): {duck * 1000:,.0f} ms; rows {rows}", flush=True)
        print(f"ratio, avsb first request / duckdb: {first / duck:.1f}x; after a restart: {restart / duck:.1f}x")


if __name__ == "__main__":
    main()
