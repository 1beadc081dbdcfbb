"""A hot key read through the near tier against the same read through the
daemon, in one run, on a private redis-server and nearcached started here
(stopped by pid): µs per call of ``Client.get``, ``Client.get_ex`` and
``AsyncClient.get``, with a near tier and with ``near_bytes=0``.

    NC_BUILD=build .venv/bin/python client/python/bench/near.py [--smoke]

Needs a nearcached that writes the near-tier ring. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from procs import Daemon, Redis

import nearcache


def per_call_us(fn: Callable[[], Any], n: int, rounds: int = 5) -> float:
    """The median over ``rounds`` of the mean µs per call of n calls."""
    means = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        means.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(means)


async def aper_call_us(c: nearcache.AsyncClient, n: int, rounds: int = 5) -> float:
    means = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(n):
            await c.get("bench", "hot")
        means.append((time.perf_counter() - t0) / n * 1e6)
    return statistics.median(means)


def main(smoke: bool) -> int:
    near_n, far_n = (2000, 200) if smoke else (100_000, 5000)
    redis = Redis().start()
    daemon = Daemon(redis).start()
    try:
        with (
            nearcache.Client(daemon.url) as near,
            nearcache.Client(daemon.url, near_bytes=0) as far,
        ):
            near.set("bench", "hot", b"x" * 100, 600)
            end = time.monotonic() + 10
            while near.get_ex("bench", "hot").source is not nearcache.Source.NEAR:
                if time.monotonic() > end:
                    print(f"the near tier never served: {near.near_stats()}", file=sys.stderr)
                    return 1
                time.sleep(0.01)
            rows = [
                ("Client.get", per_call_us(lambda: near.get("bench", "hot"), near_n),
                 per_call_us(lambda: far.get("bench", "hot"), far_n)),
                ("Client.get_ex", per_call_us(lambda: near.get_ex("bench", "hot"), near_n),
                 per_call_us(lambda: far.get_ex("bench", "hot"), far_n)),
            ]  # fmt: skip

            async def aio() -> tuple[float, float]:
                async with (
                    nearcache.AsyncClient(daemon.url) as an,
                    nearcache.AsyncClient(daemon.url, near_bytes=0) as af,
                ):
                    await an.get("bench", "hot")
                    await an.get("bench", "hot")
                    return await aper_call_us(an, near_n), await aper_call_us(af, far_n)

            rows.append(("AsyncClient.get", *asyncio.run(aio())))
            print("| a hot key (100 bytes) | near tier, µs/call | daemon (L1), µs/call |")
            print("| --- | ---: | ---: |")
            for what, n_us, f_us in rows:
                print(f"| {what} | {n_us:.1f} | {f_us:.1f} |")
            print(f"\nnear tier: {near.near_stats()}")
    finally:
        daemon.cleanup()
        redis.cleanup()
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="few iterations: only that it runs")
    sys.exit(main(ap.parse_args().smoke))
