"""Seed inputs for the fuzz targets, made from the shared cases of spec/ (run by scripts/fuzz).

    python3 fuzz/seeds.py TARGET OUT_DIR

writes one file per seed into OUT_DIR, in the format the target reads (fuzz/src/targets.rs):

- matrix: every matrix of spec/eval (a case's matrix, as text) and the example matrix;
- rule: every rule of spec/rules, its variables renamed to the target's (s, t: String; n:
  Integer; l: Long; d: Double; b: Boolean; v: ReleaseVersion; ua: UserAgent; u: unknown type),
  then 0, its constants as JSON, then 0-separated values; plus the rules of issue 15;
- force: every force string of spec/eval;
- schema: every schema of spec/eval, then 0-separated raw request values.

Seeds are not kept: scripts/fuzz makes them afresh in its working corpus, and only the corpus
that libFuzzer minimises is saved (fuzz/corpus/TARGET).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

SPEC = Path(__file__).resolve().parents[1] / "spec"

# The rule target's variables by slot, with the Pipet types a spec case may give them.
VARIABLES = {
    "s": {"String", "string", "java.lang.String"},
    "t": set(),
    "n": {"int", "Integer", "java.lang.Integer", "short", "Short", "byte", "Byte", "java.lang.Short", "java.lang.Byte"},
    "l": {"long", "Long", "java.lang.Long"},
    "d": {"double", "Double", "java.lang.Double", "float", "Float", "java.lang.Float"},
    "b": {"boolean", "Boolean", "java.lang.Boolean"},
    "v": {"ReleaseVersion", "com.indeed.util.core.ReleaseVersion"},
    "ua": {"UserAgent"},
    "u": {"?"},
}
SLOTS = list(VARIABLES)


def eval_cases() -> list[dict]:
    cases = []
    for path in sorted((SPEC / "eval").glob("*.json")):
        cases.extend(json.loads(path.read_text(encoding="utf-8"))["cases"])
    return cases


def matrix_text(case: dict) -> str | None:
    if "matrix" in case:
        m = case["matrix"]
        return m if isinstance(m, str) else json.dumps(m)
    if "matrix_file" in case:
        return (SPEC / "eval" / case["matrix_file"]).read_text(encoding="utf-8")
    return None


def issue_rules() -> list[str]:
    def rep(inner: str, w: str) -> str:
        return f"fn:replace({inner}, 'a', {w})"
    square = rep("s", "s")
    grown = "s"
    for _ in range(3):
        grown = rep(grown, "'aaaaaaaaaa'")
    return [
        "${fn:length(" + rep(square, square) + ") > 0}\0\0a",
        "${fn:length(" + square + ") > 0}\0\0*600:a",
        "${fn:length(" + grown + ") > 0}\0\0*50:a",
        "${fn:length(fn:join(fn:split(s, ''), s)) > 0}\0\0*300:ab",
        "${proctor:matches(s, t) && s.matches('[ab]*a[ab]{20}')}\0\0*4000:ab\0[ab]*a[ab]{10}",
        "${fn:containsIgnoreCase(fn:toUpperCase(s), t)}\0\0*20000:\u00df\0\u0390",
        "${fn:length(fn:split(s, t)) > C}\0{\"C\": 3}\0*9000:a,b;\0,;",
        "${proctor:contains(C, s) || C[0] == s}\0{\"C\": [\"a\", 1, 2.5, null, [\"x\"]]}\0a",
        "${ua.browser.name == 'CHROME' && proctor:versionInRange(v, '1.0.0.0', '2.0.0.0')}\0\0x\0\0\0\0\0\0"
        "1.5.0.0\0Mozilla/5.0 Chrome/120.0",
    ]


def rule_seeds() -> list[str]:
    seeds = issue_rules()
    doc = json.loads((SPEC / "rules" / "cases.json").read_text(encoding="utf-8"))
    for case in doc["cases"]:
        rule = case.get("rule")
        if not isinstance(rule, str):
            continue
        schema = case.get("schema") or {}
        context = case.get("context") or {}
        renames: dict[str, str] = {}
        values: dict[str, str] = {}
        for name, ty in schema.items():
            slot = next((s for s in SLOTS if ty in VARIABLES[s] and s not in renames.values()), None)
            if slot is None and ty in VARIABLES["s"]:
                slot = "t" if "t" not in renames.values() else None
            if slot is None:
                continue
            renames[name] = slot
            raw = context.get(name)
            if isinstance(raw, str):
                values[slot] = raw
        for name, slot in renames.items():
            rule = re.sub(rf"(?<![\w.:$]){re.escape(name)}(?![\w$])", slot, rule)
        parts = [rule, json.dumps(case.get("constants") or {})] + [values.get(s, "") for s in SLOTS]
        seeds.append("\0".join(parts))
    return seeds


def write(out: Path, seeds: list[str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        data = seed.encode("utf-8")
        (out / ("seed-" + hashlib.sha1(data).hexdigest())).write_bytes(data)


def main() -> None:
    target, out = sys.argv[1], Path(sys.argv[2])
    cases = eval_cases()
    if target == "matrix":
        seeds = [t for t in (matrix_text(c) for c in cases) if t]
        seeds.append((SPEC / "examples" / "pipet-example-matrix.json").read_text(encoding="utf-8"))
    elif target == "rule":
        seeds = rule_seeds()
    elif target == "force":
        seeds = sorted({c["request"]["force"] for c in cases if isinstance(c.get("request", {}).get("force"), str)})
        seeds += ["buttoncolortst2;stringValue:\"red\",default_to_min_live", "countryalgotst1;map:{\"a\":[1,2]},x-1"]
    elif target == "schema":
        seeds = []
        for c in cases:
            if isinstance(c.get("schema"), dict):
                values = list((c.get("request", {}).get("context") or {}).values())
                values += list((c.get("request", {}).get("identifiers") or {}).values())
                seeds.append("\0".join([json.dumps(c["schema"])] + [v for v in values if isinstance(v, str)]))
        seeds.append((SPEC / "examples" / "pipet-example-context.json").read_text(encoding="utf-8") + "\0US\0true\0free\0*9000:Mozilla ")
    else:
        raise SystemExit(f"unknown target {target!r}")
    write(out, seeds)
    print(f"{len(seeds)} seeds for {target}")


if __name__ == "__main__":
    main()
