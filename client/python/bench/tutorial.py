"""The Python client measured against the tutorial's own code
(/work/shared/tutorial.md: ``@cached`` and ``get_with_lock`` over
redis.asyncio with hiredis and orjson) and fastapi-cache2's ``@cache`` with
its RedisBackend, on a private redis-server and nearcached started here,
stopped by pid.

    .venv/bin/pip install -e 'client/python[bench]'
    NC_BUILD=build .venv/bin/python client/python/bench/tutorial.py [--smoke] [--json FILE]

Prints a Markdown table. The "database" is an asyncio.sleep of LOAD_MS.
Exits 1 if the cold-key stampede through nearcache loaded more than once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any

import orjson
import redis.asyncio as redis
from fastapi_cache import FastAPICache
from fastapi_cache.backends.redis import RedisBackend
from fastapi_cache.decorator import cache

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from procs import Daemon, Redis

import nearcache

LOAD_MS = 50


def tutorial_cached(r: Any, ttl: int = 60, key: str | None = None) -> Any:
    """The tutorial's decorator, as it gives it."""
    prefix = "v1"

    def deco(fn: Any) -> Any:
        @wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            k = f"{prefix}:{key or fn.__name__}:{orjson.dumps([args, kwargs]).decode()}"
            hit = await r.get(k)
            if hit is not None:
                return orjson.loads(hit)
            value = await fn(*args, **kwargs)
            await r.set(k, orjson.dumps(value), ex=ttl)
            return value

        return wrapper

    return deco


async def tutorial_get_with_lock(r: Any, key: str, ttl: int, loader: Any) -> Any:
    """The tutorial's stampede lock, as it gives it."""
    val = await r.get(key)
    if val:
        return orjson.loads(val)
    lock = await r.set(f"{key}:lock", "1", nx=True, ex=10)
    if lock:
        try:
            v = await loader()
            await r.set(key, orjson.dumps(v), ex=ttl)
            return v
        finally:
            await r.delete(f"{key}:lock")
    await asyncio.sleep(0.05)
    return orjson.loads(await r.get(key) or b"null")


def pct(xs: list[float], p: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))]


async def latencies(fns: list[Callable[[], Awaitable[Any]]], n: int) -> list[tuple[float, float]]:
    """p50 and p99 (µs) of one call of each fn, measured in turns: a tenth
    of the n calls of each, then the next tenth, so that a noisy moment
    weighs on all alike."""
    for fn in fns:
        for _ in range(50):
            await fn()
    xs: list[list[float]] = [[] for _ in fns]
    for _ in range(10):
        for fn, x in zip(fns, xs, strict=True):
            for _ in range(max(1, n // 10)):
                t = time.perf_counter()
                await fn()
                x.append((time.perf_counter() - t) * 1e6)
    return [(statistics.median(x), pct(x, 0.99)) for x in xs]


async def throughputs(
    fns: list[Callable[[int], Awaitable[Any]]], tasks: int, each: int, rounds: int = 3
) -> list[float]:
    """Calls/s of each fn with ``tasks`` tasks on 100 keys: the median of
    ``rounds`` turns (A B C A B C ...)."""

    async def once(fn: Callable[[int], Awaitable[Any]]) -> float:
        async def worker(w: int) -> None:
            for i in range(each):
                await fn((w * 7 + i) % 100)

        t = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(tasks)))
        return tasks * each / (time.perf_counter() - t)

    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(rounds):
        for fn, r in zip(fns, runs, strict=True):
            r.append(await once(fn))
    return [statistics.median(r) for r in runs]


async def stampede(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[list[Any], float]:
    t = time.perf_counter()
    out = await asyncio.gather(*(fn() for _ in range(n)))
    return list(out), (time.perf_counter() - t) * 1000


async def main(smoke: bool, json_out: str | None) -> None:
    n, tasks, each, herd = (200, 8, 50, 50) if smoke else (5000, 32, 300, 200)
    rs = Redis().start()
    d = Daemon(rs, "--log-level", "warn").start()
    r = redis.from_url(rs.url, decode_responses=False)
    FastAPICache.init(RedisBackend(r), prefix="fastapi-cache")
    nc = nearcache.AsyncClient(d.url, timeout=2)  # with its near tier, the default
    nc0 = nearcache.AsyncClient(d.url, timeout=2, near_bytes=0)
    loads = {"tutorial": 0, "lock": 0, "fastapi-cache2": 0, "nearcache": 0}
    rows: list[tuple[str, str, str]] = []
    figures: dict[str, float] = {}  # for --json
    try:

        @tutorial_cached(r, ttl=300, key="product")
        async def t_product(product_id: int) -> dict[str, Any]:
            loads["tutorial"] += 1
            await asyncio.sleep(LOAD_MS / 1000)
            return {"id": product_id, "name": "lamp", "price": 9.5}

        @cache(expire=300)
        async def f_product(product_id: int) -> dict[str, Any]:
            loads["fastapi-cache2"] += 1
            await asyncio.sleep(LOAD_MS / 1000)
            return {"id": product_id, "name": "lamp", "price": 9.5}

        @nearcache.cached(ttl=300, ns="product", key="{product_id}", client=nc)
        async def n_product(product_id: int) -> dict[str, Any]:
            loads["nearcache"] += 1
            await asyncio.sleep(LOAD_MS / 1000)
            return {"id": product_id, "name": "lamp", "price": 9.5}

        @nearcache.cached(ttl=300, ns="product0", key="{product_id}", client=nc0)
        async def n0_product(product_id: int) -> dict[str, Any]:
            await asyncio.sleep(LOAD_MS / 1000)
            return {"id": product_id, "name": "lamp", "price": 9.5}

        await r.set("raw", b"x" * 100)
        await nc.set("raw", "k", b"x" * 100)
        for warm in (t_product, f_product, n_product, n0_product):  # 100 keys at once
            await asyncio.gather(*(warm(i) for i in range(100)))
        lat = [  # (row, name in figures, call, decimals)
            ("raw GET, redis.asyncio + hiredis", "", lambda: r.get("raw"), 0),
            ("raw Get, AsyncClient (near tier)", "", lambda: nc.get("raw", "k"), 1),
            ("raw Get, AsyncClient without near tier (L1)", "", lambda: nc0.get("raw", "k"), 0),
            ("warm hit, tutorial @cached", "tutorial", lambda: t_product(1), 0),
            ("warm hit, fastapi-cache2 @cache", "fastapi-cache2", lambda: f_product(1), 0),
            ("warm hit, nearcache @cached (near tier)", "near", lambda: n_product(1), 1),
            ("warm hit, nearcache @cached without near tier", "no-near", lambda: n0_product(1), 0),
        ]
        measured = await latencies([call for _, _, call, _ in lat], n)
        for (what, name, _, dp), (p50, p99) in zip(lat, measured, strict=True):
            if name:
                figures[f"hit p50 µs, {name}"] = p50
            rows.append((what, f"{p50:.{dp}f} / {p99:.{dp}f} µs", ""))
        thr = [  # (row, name in figures, function)
            ("tutorial", "tutorial", t_product),
            ("fastapi-cache2", "fastapi-cache2", f_product),
            ("nearcache (near tier)", "near", n_product),
            ("nearcache without near tier", "no-near", n0_product),
        ]
        measured_ops = await throughputs([fn for _, _, fn in thr], tasks, each)
        for (what, name, _), ops in zip(thr, measured_ops, strict=True):
            figures[f"calls/s, {name}"] = ops
            rows.append((f"{tasks} tasks on 100 warm keys, {what}", f"{ops:,.0f} calls/s", ""))

        before = dict(loads)
        out, ms = await stampede(lambda: t_product(10_000), herd)
        rows.append(
            (
                f"{herd} concurrent calls, cold key: tutorial @cached",
                f"{ms:.0f} ms",
                f"{loads['tutorial'] - before['tutorial']} loads",
            )
        )

        out, ms = await stampede(lambda: f_product(10_000), herd)
        rows.append(
            (
                f"{herd} concurrent calls, cold key: fastapi-cache2 @cache",
                f"{ms:.0f} ms",
                f"{loads['fastapi-cache2'] - before['fastapi-cache2']} loads",
            )
        )

        async def lock_loader() -> dict[str, int]:
            loads["lock"] += 1
            await asyncio.sleep(LOAD_MS / 1000)
            return {"id": 1}

        out, ms = await stampede(
            lambda: tutorial_get_with_lock(r, "v1:lock:1", 300, lock_loader), herd
        )
        nones = sum(1 for v in out if v is None)
        rows.append(
            (
                f"{herd} concurrent calls, cold key: tutorial get_with_lock",
                f"{ms:.0f} ms",
                f"{loads['lock']} loads, {nones} callers got None",
            )
        )
        out, ms = await stampede(lambda: n_product(10_000), herd)
        nones = sum(1 for v in out if v is None)
        n_loads = loads["nearcache"] - before["nearcache"]
        rows.append(
            (
                f"{herd} concurrent calls, cold key: nearcache @cached",
                f"{ms:.0f} ms",
                f"{loads['nearcache'] - before['nearcache']} loads, {nones} got None",
            )
        )
    finally:
        await nc.close()
        await nc0.close()
        await r.aclose()
        d.cleanup()
        rs.cleanup()
    print(f"| what (load: a {LOAD_MS} ms sleep) | p50 / p99, rate or time | notes |")
    print("| --- | --- | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if json_out:
        Path(json_out).write_text(json.dumps(figures, ensure_ascii=False))
    if n_loads != 1 or nones:
        sys.exit(f"nearcache's stampede loaded {n_loads} times, {nones} callers got None")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="few iterations: only that it runs")
    ap.add_argument("--json", metavar="FILE", help="also write the key figures to FILE")
    args = ap.parse_args()
    asyncio.run(main(args.smoke, args.json))
