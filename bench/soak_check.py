"""Checks the logs of bench/soak.sh's clients for stale reads.

A read of a key is stale when a write of that key with a higher sequence
number was acknowledged more than WINDOW before the read began (one writer
per key, so sequence order is write order). Reads that found nothing are
counted apart: Redis restarted empty loses values, which is Redis's loss.

usage: soak_check.py WINDOW_MS LOG...   (exit 1 when any read is stale)
"""

from __future__ import annotations

import bisect
import sys
from collections import defaultdict


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    window = int(argv[1]) * 1000
    acks: dict[str, list[tuple[int, int]]] = defaultdict(list)  # key: (ack, seq)
    reads: list[tuple[str, int, int]] = []  # key, seq (-1: absent), start
    for path in argv[2:]:
        with open(path, errors="replace") as f:
            for line in f:
                p = line.split()
                if len(p) != 5 or not p[3].isdigit() or not p[4].isdigit():
                    continue  # a line cut short by kill -9
                if p[0] == "W" and p[2].isdigit():
                    acks[p[1]].append((int(p[4]), int(p[2])))
                elif p[0] == "R":
                    reads.append((p[1], -1 if p[2] == "-" else int(p[2]), int(p[3])))
    # per key: ack times in order and the highest sequence acknowledged by each
    times: dict[str, list[int]] = {}
    best: dict[str, list[int]] = {}
    for key, lst in acks.items():
        lst.sort()
        times[key] = [a for a, _ in lst]
        m, run = -1, []
        for _, s in lst:
            m = max(m, s)
            run.append(m)
        best[key] = run
    stale = absent = 0
    worst = 0
    for key, seq, start in reads:
        if seq < 0:
            absent += 1
            continue
        i = bisect.bisect_right(times.get(key, []), start - window)
        if i > 0 and best[key][i - 1] > seq:
            stale += 1
            # how long before the read the first newer write was acknowledged
            j = next(n for n, (_, s) in enumerate(acks[key]) if s > seq)
            worst = max(worst, start - acks[key][j][0])
    writes = sum(len(v) for v in acks.values())
    print(
        f"history: {writes} acknowledged writes, {len(reads)} reads "
        f"({absent} found nothing), {stale} stale (window {window // 1000} ms)"
        + (f", the worst {worst / 1000:.0f} ms behind" if stale else "")
    )
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
