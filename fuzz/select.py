"""Picks the inputs of a libFuzzer merge that together reach the most edges, at most N of them
(greedy: each pick adds the most edges not yet reached, the smaller input on a tie). Run by
`scripts/fuzz save`, so that the saved corpus stays small:

    python3 fuzz/select.py CONTROL_FILE N OUT_DIR

CONTROL_FILE is libFuzzer's `-merge_control_file`: the number of inputs, the number in the
first corpus, their paths, then for each input `STARTED i size`, `FT i features...` and
`COV i edges...`.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def main() -> None:
    control, limit, out = Path(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    lines = control.read_text().splitlines()
    count = int(lines[0])
    paths = lines[2 : 2 + count]
    edges: dict[int, set[str]] = {}
    sizes: dict[int, int] = {}
    for line in lines[2 + count :]:
        parts = line.split()
        if parts and parts[0] == "COV":
            edges[int(parts[1])] = set(parts[2:])
        elif parts and parts[0] == "STARTED":
            sizes[int(parts[1])] = int(parts[2])
    reached: set[str] = set()
    picked: list[int] = []
    every = set().union(*edges.values()) if edges else set()
    while len(picked) < limit:
        best = max(edges, key=lambda i: (len(edges[i] - reached), -sizes.get(i, 0)), default=None)
        if best is None or not edges[best] - reached:
            break
        picked.append(best)
        reached |= edges.pop(best)
    out.mkdir(parents=True, exist_ok=True)
    for i in picked:
        shutil.copy(paths[i], out / Path(paths[i]).name)
    print(f"{len(picked)} inputs reach {len(reached)} of the {len(every)} edges the corpus reaches")


if __name__ == "__main__":
    main()
