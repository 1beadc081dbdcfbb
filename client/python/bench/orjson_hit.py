"""What orjson changes on the hit path: a warm near-tier hit of an async
``@cached`` function returning a product as a dict (about 150 bytes of
JSON), decoded by orjson and by the standard library's json, in the same
run, on a private redis-server and nearcached.

    NC_BUILD=build .venv/bin/python client/python/bench/orjson_hit.py [--smoke]

Prints a Markdown table: CPU µs per hit (this thread's CPU time, so that
other processes on a busy machine do not count), the median of 31 turns of
5,000 hits each, the two taken in turns.
"""

# ruff: noqa: RUF001 (the multiplication sign in the table)
from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from procs import Fleet

import nearcache
from nearcache import _codec

PRODUCT = {
    "id": 1,
    "name": "lamp",
    "description": "a lamp with a shade " * 5,
    "cents": 1999,
    "tags": ["home", "light"],
}


async def turns(fns: dict[str, Callable[[int], Awaitable[Any]]], rounds: int, n: int) -> Any:
    runs: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t = time.thread_time()
            for _ in range(n):
                await fn(1)
            runs[name].append((time.thread_time() - t) / n * 1e6)
    return {k: statistics.median(v) for k, v in runs.items()}


async def run(url: str, rounds: int, n: int) -> dict[str, float]:
    client = nearcache.AsyncClient(url)
    fns: dict[str, Callable[[int], Awaitable[Any]]] = {}
    orjson = _codec._orjson
    for name, module in (("orjson", orjson), ("json", None)):
        _codec._orjson = module  # what the decorator finds when it is applied

        @nearcache.cached(ttl=300, ns=f"bench-{name}", key="{pid}", client=client)
        async def product(pid: int) -> dict[str, Any]:
            return PRODUCT

        fns[name] = product
    _codec._orjson = orjson
    for fn in fns.values():
        await fn(1)
    await asyncio.sleep(0.2)  # the fills land; then every call is a near-tier hit
    await turns(fns, 1, 1000)
    hits = client.near_stats()
    result: dict[str, float] = await turns(fns, rounds, n)
    after = client.near_stats()
    assert hits is not None and after is not None
    assert after.misses == hits.misses, "not every measured call was a near-tier hit"
    await client.close()
    return result


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--smoke", action="store_true", help="a short run")
    args = ap.parse_args()
    fleet = Fleet(1)
    try:
        rounds, n = (3, 2000) if args.smoke else (31, 5000)
        us = asyncio.run(run(fleet[0].url, rounds, n))
    finally:
        fleet.stop()
    print("| near-tier hit of `@cached` (a dict) | CPU µs per hit | against json |")
    print("| --- | ---: | ---: |")
    for name in ("orjson", "json"):
        print(f"| decoded by {name} | {us[name]:.2f} | {us[name] / us['json']:.2f}× |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
