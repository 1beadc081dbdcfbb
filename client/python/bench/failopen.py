"""What a fail-open ``@cached`` call costs when no daemon is there
(docs/protocol.md, "Client rules", R1): the function's own time plus the
client's, for a socket file that is missing and one that is stale (bound,
nobody listening), at three rates: back to back, one call every 10 ms and
one every 250 ms (most calls then dial once).

    NC_BUILD=build .venv/bin/python client/python/bench/failopen.py [--smoke]

Prints a Markdown table of the added time (decorated minus undecorated, in
µs). Exits 1 if the median call of any row added 10 ms or more: calls
that wait (for a dial's retry, a backoff of at least 50 ms, a timeout).
Not 1 ms: on an idle VM a call after 250 ms of sleep runs on a cold CPU,
and its one dial then adds 0.6-1.8 ms (the undecorated function alone
takes 30x its warm time). The max column is preemption on a busy
machine, not waits.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nearcache

WORK = 200  #: the function's own work: sum(range(WORK))
WAIT_US = 10_000  #: a median added time from here on is a wait, not work


def work(x: int) -> int:
    return x + sum(range(WORK))


async def awork(x: int) -> int:
    return x + sum(range(WORK))


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


def measure(calls: list[Callable[[int], Any]], n: int, pause: float) -> list[list[float]]:
    """Times n calls of each of ``calls``, in turns, ``pause`` apart (so
    that each finds the caches as cold as the others)."""
    out: list[list[float]] = [[] for _ in calls]
    for i in range(n):
        for call, x in zip(calls, out, strict=True):
            if pause:
                time.sleep(pause)
            t = time.perf_counter()
            call(i)
            x.append(time.perf_counter() - t)
    return out


async def ameasure(calls: list[Callable[[int], Any]], n: int, pause: float) -> list[list[float]]:
    out: list[list[float]] = [[] for _ in calls]
    for i in range(n):
        for call, x in zip(calls, out, strict=True):
            if pause:
                await asyncio.sleep(pause)
            t = time.perf_counter()
            await call(i)
            x.append(time.perf_counter() - t)
    return out


def socket_path(tmp: Path, kind: str) -> str:
    path = tmp / f"{kind}.sock"
    if kind == "stale":
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(path))  # bound and closed: nobody listens
    return str(path)


def row(name: str, base: list[float], took: list[float]) -> tuple[str, float, float, float, float]:
    """The function's own median time and the time the cache added to it
    (median, p99, max), in µs."""
    own = statistics.median(base)
    added = [(t - own) * 1e6 for t in took]
    return name, own * 1e6, statistics.median(added), pct(added, 0.99), max(added)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a short run")
    args = ap.parse_args()
    rates = [("back to back", 0.0, 20000), ("every 10 ms", 0.01, 300), ("every 250 ms", 0.25, 20)]
    if args.smoke:
        rates = [("back to back", 0.0, 2000), ("every 10 ms", 0.01, 30), ("every 250 ms", 0.25, 3)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="nc-failopen-") as d:
        for kind in ("missing", "stale"):
            url = "ipc://" + socket_path(Path(d), kind)
            client = nearcache.Client(url, timeout=1)
            aclient = nearcache.AsyncClient(url, timeout=1)
            sync_fn = nearcache.cached(ttl=60, client=client)(work)
            async_fn = nearcache.cached(ttl=60, client=aclient)(awork)
            for rate, pause, n in rates:
                base, took = measure([work, sync_fn], n, pause)
                rows.append(row(f"sync, {kind} socket, {rate}", base, took))
                base, took = asyncio.run(ameasure([awork, async_fn], n, pause))
                rows.append(row(f"async, {kind} socket, {rate}", base, took))
            client.close()
    print("| fail-open @cached, no daemon | function p50 µs | added p50 µs | added p99 µs "
          "| added max µs |")  # fmt: skip
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, own, p50, p99, worst in rows:
        print(f"| {name} | {own:.1f} | {p50:.1f} | {p99:.1f} | {worst:.1f} |")
    slow = [r[0] for r in rows if r[2] >= WAIT_US]
    if slow:
        print(f"calls waited (median over 10 ms): {', '.join(slow)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
