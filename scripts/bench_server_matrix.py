#!/usr/bin/env python3
"""Helpers of scripts/bench-server (standard library only).

  matrix N            print the PUT .../matrix body of the W3 mix with N tests (N=1: one W1 test)
  check URL N OUT     GET an identify answer, require HTTP 200, meta.status 200 and N groups, save it
  lua OUT             write wrk's Lua script (distinct user per request, non-200 counter)
  run ...             the interleaved wrk runs and the table (see --help)

The test shapes come from python/bench/workloads.py (those of crates/avsb-core/benches/workloads.rs).
"""

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request


# --- the workloads: python/bench/workloads.py (the shapes of crates/avsb-core/benches/workloads.rs),
# shared with the Python SDK's benchmark ------------------------------------------------------

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python", "bench"))
import workloads  # noqa: E402


def matrix(n):
    return {"matrix": workloads.matrix(n), "comment": "bench"}


def cmd_matrix(args):
    json.dump(matrix(args.n), sys.stdout)


# --- the sample check -------------------------------------------------------------------------

def cmd_check(args):
    try:
        with urllib.request.urlopen(args.url, timeout=10) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    if status != 200:
        sys.exit(f"check failed: {args.url} answered HTTP {status}: {body[:500]!r}")
    doc = json.loads(body)
    if doc.get("meta", {}).get("status") != 200:
        sys.exit(f"check failed: meta.status is not 200: {body[:500]!r}")
    groups = doc.get("data", {}).get("groups", {})
    if len(groups) != args.groups:
        sys.exit(f"check failed: {len(groups)} groups, expected {args.groups}: {body[:500]!r}")
    # The timed users miss all three W2 rules (the worst case): nobody may be green.
    green = [name for name, g in groups.items() if name.startswith("w2_") and g.get("name") == "green"]
    if green:
        sys.exit(f"check failed: W2 tests {green[:5]} allocated by the plan rule; the context should miss every rule")
    with open(args.out, "wb") as f:
        f.write(body)
    print(f"ok: HTTP 200, {len(groups)} groups, {len(body)} bytes", file=sys.stderr)


# --- wrk's Lua script -------------------------------------------------------------------------

LUA = r"""
-- A distinct user on every request: "u<thread>-<counter>", appended to the path prefix given
-- after `--`; counts the answers whose status is not 200 and prints one machine-readable line.
local threads = {}
local next_tid = 0

function setup(thread)
  next_tid = next_tid + 1
  thread:set("tid", next_tid)
  table.insert(threads, thread)
end

function init(args)
  prefix = args[1]
  suffix = args[2] or ""
  counter = 0
  non200 = 0
end

function request()
  counter = counter + 1
  return wrk.format(nil, prefix .. "u" .. tid .. "-" .. counter .. suffix)
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non200")
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d non200=%d connect=%d read=%d write=%d status=%d timeout=%d\n",
    summary.requests, summary.duration, summary.bytes, latency:percentile(50), latency:percentile(99), bad,
    e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def cmd_lua(args):
    with open(args.out, "w") as f:
        f.write(LUA)


# --- the runs -------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid):
    """utime + stime of a process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def machine_busy_seconds():
    """(busy, total) CPU seconds of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / CLK_TCK, total / CLK_TCK


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def wait_quiet(max_wait, threshold=0.15, window=2.0):
    """Waits (at most max_wait seconds) until the machine is idle for a window: other processes
    (builds of other sessions) disturb a benchmark that needs both cores. Returns the seconds waited."""
    start = time.monotonic()
    told = False
    while True:
        busy0, _ = machine_busy_seconds()
        time.sleep(window)
        busy1, _ = machine_busy_seconds()
        cores = (busy1 - busy0) / window
        waited = time.monotonic() - start
        if cores < threshold or waited >= max_wait:
            if told:
                print(f"  ... waited {waited:.0f} s (machine busy {cores:.2f} cores)", file=sys.stderr, flush=True)
            return waited
        if not told:
            print(f"  the machine is busy ({cores:.2f} cores); waiting up to {max_wait:.0f} s for quiet", file=sys.stderr,
                  flush=True)
            told = True


def run_wrk(args, lua, base, prefix, pids):
    if args.quiet_wait > 0:
        wait_quiet(args.quiet_wait)
    before = {p: proc_cpu_seconds(p) for p in pids}
    busy0, _ = machine_busy_seconds()
    self0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall0 = time.monotonic()
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}", "--latency",
           "-s", lua, base, "--", prefix]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.monotonic() - wall0
    self1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, _ = machine_busy_seconds()
    after = {p: proc_cpu_seconds(p) for p in pids}
    if proc.returncode != 0:
        sys.exit(f"wrk failed ({proc.returncode}): {proc.stderr}\n{proc.stdout}")
    m = re.search(r"^BENCH (.*)$", proc.stdout, re.M)
    if not m:
        sys.exit(f"wrk printed no BENCH line:\n{proc.stdout}\n{proc.stderr}")
    r = {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    server_cpu = sum(after[p] - before[p] for p in pids)
    wrk_cpu = (self1.ru_utime - self0.ru_utime) + (self1.ru_stime - self0.ru_stime)
    r["cpu_us_per_req"] = server_cpu / max(r["requests"], 1) * 1e6
    r["server_cores"] = server_cpu / wall
    r["wrk_cores"] = wrk_cpu / wall
    r["other_cores"] = max(0.0, (busy1 - busy0) - server_cpu - wrk_cpu) / wall
    r["raw"] = proc.stdout
    return r


def fmt_ms(us):
    return f"{us / 1000:.2f} ms"


def cmd_run(args):
    single = f"/pipet/{args.single_key}/groups/identify?test={args.single_test}&id.USER="
    # The 200-test answer for a context that misses all three W2 rules (the anchor's worst case).
    full = f"/pipet/{args.bench_key}/groups/identify?ctx.country=DE&ctx.plan=free&ctx.version=1.0.0.0&id.USER="
    targets = [
        # name, base URL, path prefix, pids whose CPU counts, answer size, matching nginx target
        ("avsb single-test identify", args.avsb, single, [args.server_pid], args.small_bytes, "nginx small file"),
        ("nginx small file", args.nginx, "/small.json?u=", None, args.small_bytes, None),
        ("avsb 200-test identify", args.avsb, full, [args.server_pid], args.large_bytes, "nginx large file"),
        ("nginx large file", args.nginx, "/large.json?u=", None, args.large_bytes, None),
    ]
    results = {t[0]: [] for t in targets}
    failures = []
    for rep in range(1, args.reps + 1):
        for name, base, prefix, pids, _, _ in targets:
            if pids is None:  # nginx: the master and its worker(s)
                pids = [args.nginx_pid] + children(args.nginx_pid)
            r = run_wrk(args, args.lua, base, prefix, pids)
            results[name].append(r)
            bad = r["non200"] + r["connect"] + r["read"] + r["write"] + r["status"] + r["timeout"]
            if bad:
                failures.append(f"{name} rep {rep}: non200={r['non200']} connect={r['connect']} read={r['read']} "
                                f"write={r['write']} status={r['status']} timeout={r['timeout']}")
            print(f"rep {rep}/{args.reps} {name:27s} {r['rps']:>10,.0f} req/s  p50 {fmt_ms(r['p50_us']):>9s}  "
                  f"p99 {fmt_ms(r['p99_us']):>9s}  non-200 {r['non200']}  server {r['server_cores']:.2f} cores  "
                  f"wrk {r['wrk_cores']:.2f} cores  other {r['other_cores']:.2f} cores", file=sys.stderr, flush=True)
            if args.verbose:
                print(r["raw"], file=sys.stderr)

    med = {}
    for name, runs in results.items():
        med[name] = {k: statistics.median(r[k] for r in runs)
                     for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "server_cores", "wrk_cores", "other_cores")}
        med[name]["non200"] = sum(r["non200"] for r in runs)

    def ratio(name, other):
        """The median over reps of this target's req/s over the other's in the same rep."""
        return statistics.median(a["rps"] / b["rps"] for a, b in zip(results[name], results[other]))

    print()
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.duration} --latency, distinct user per request, "
          f"median of {args.reps} interleaved runs")
    print()
    print("| target | answer | req/s | p50 | p99 | ratio to matching nginx | ratio to nginx small file "
          "| server CPU per request | server cores | wrk cores | other cores | non-200 |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, _, _, _, size, match in targets:
        m = med[name]
        to_match = f"{ratio(name, match):.3f}x" if match else "1.0x"
        print(f"| {name} | {size:,} B | {m['rps']:,.0f} | {fmt_ms(m['p50_us'])} | {fmt_ms(m['p99_us'])} | {to_match} "
              f"| {ratio(name, 'nginx small file'):.3f}x | {m['cpu_us_per_req']:.1f} us | {m['server_cores']:.2f} "
              f"| {m['wrk_cores']:.2f} | {m['other_cores']:.2f} | {m['non200']} |")
    print()
    print("Ratios are medians of per-rep ratios (each run against the nginx run of the same rep). Server CPU per")
    print("request and cores come from /proc/<pid>/stat (nginx: master + worker); wrk cores from its rusage;")
    print("'other cores' is the rest of the machine's busy time during the run (other processes: noise).")
    noisy = max(max(r["other_cores"] for r in runs) for runs in results.values())
    if noisy > 0.1:
        print(f"WARNING: other processes used up to {noisy:.2f} cores during a run; the numbers are disturbed.")
    print()
    rss, hwm = status_kib(args.server_pid, "VmRSS"), status_kib(args.server_pid, "VmHWM")
    print(f"avsb server RSS after the runs: {rss / 1024:.1f} MiB (peak {hwm / 1024:.1f} MiB)")
    print()
    s_small = ratio("avsb single-test identify", "nginx small file")
    f_small = ratio("avsb 200-test identify", "nginx small file")
    f_large = ratio("avsb 200-test identify", "nginx large file")
    verdict = lambda ok: "PASS" if ok else "FAIL"  # noqa: E731
    print("Targets:")
    print(f"- single-test identify >= 0.6x nginx (small file):  {s_small:.3f}x  {verdict(s_small >= 0.6)}")
    print(f"- 200-test identify >= 0.12x nginx (small file, as the anchors' ratios): {f_small:.3f}x  "
          f"{verdict(f_small >= 0.12)}")
    print(f"- 200-test identify vs nginx serving the same-size file: {f_large:.3f}x  {verdict(f_large >= 0.12)}")
    if failures:
        print("\nErrors or non-200 answers:", file=sys.stderr)
        for line in failures:
            print("  " + line, file=sys.stderr)
        sys.exit(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("matrix")
    p.add_argument("n", type=int)
    p.set_defaults(func=cmd_matrix)
    p = sub.add_parser("check")
    p.add_argument("url")
    p.add_argument("groups", type=int)
    p.add_argument("out")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("lua")
    p.add_argument("out")
    p.set_defaults(func=cmd_lua)
    p = sub.add_parser("run")
    p.add_argument("--lua", required=True)
    p.add_argument("--avsb", required=True, help="the server's base URL")
    p.add_argument("--nginx", required=True, help="nginx's base URL")
    p.add_argument("--single-key", required=True)
    p.add_argument("--single-test", required=True)
    p.add_argument("--bench-key", required=True)
    p.add_argument("--server-pid", type=int, required=True)
    p.add_argument("--nginx-pid", type=int, required=True)
    p.add_argument("--small-bytes", type=int, required=True)
    p.add_argument("--large-bytes", type=int, required=True)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--duration", default="10s")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--quiet-wait", type=float, default=120, help="seconds to wait for an idle machine before each run")
    p.set_defaults(func=cmd_run)
    args = parser.parse_args()
    try:
        args.func(args)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
