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


async def latency(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[float, float]:
    for _ in range(50):
        await fn()
    xs = []
    for _ in range(n):
        t = time.perf_counter()
        await fn()
        xs.append((time.perf_counter() - t) * 1e6)
    return statistics.median(xs), pct(xs, 0.99)


async def throughput(fn: Callable[[int], Awaitable[Any]], tasks: int, each: int) -> float:
    async def worker(w: int) -> None:
        for i in range(each):
            await fn((w * 7 + i) % 100)

    t = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(tasks)))
    return tasks * each / (time.perf_counter() - t)


async def stampede(fn: Callable[[], Awaitable[Any]], n: int) -> tuple[list[Any], float]:
    t = time.perf_counter()
    out = await asyncio.gather(*(fn() for _ in range(n)))
    return list(out), (time.perf_counter() - t) * 1000


async def main(smoke: bool, json_out: str | None) -> None:
    n, tasks, each, herd = (200, 8, 50, 50) if smoke else (3000, 32, 300, 200)
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
        p50, p99 = await latency(lambda: r.get("raw"), n)
        rows.append(("raw GET, redis.asyncio + hiredis", f"{p50:.0f} / {p99:.0f} µs", ""))
        p50, p99 = await latency(lambda: nc.get("raw", "k"), n)
        rows.append(("raw Get, AsyncClient (near tier)", f"{p50:.1f} / {p99:.1f} µs", ""))
        p50, p99 = await latency(lambda: nc0.get("raw", "k"), n)
        rows.append(
            ("raw Get, AsyncClient without near tier (L1)", f"{p50:.0f} / {p99:.0f} µs", "")
        )
        p50, p99 = await latency(lambda: t_product(1), n)
        figures["hit p50 µs, tutorial"] = p50
        rows.append(("warm hit, tutorial @cached", f"{p50:.0f} / {p99:.0f} µs", ""))
        p50, p99 = await latency(lambda: f_product(1), n)
        figures["hit p50 µs, fastapi-cache2"] = p50
        rows.append(("warm hit, fastapi-cache2 @cache", f"{p50:.0f} / {p99:.0f} µs", ""))
        p50, p99 = await latency(lambda: n_product(1), n)
        figures["hit p50 µs, near"] = p50
        rows.append(("warm hit, nearcache @cached (near tier)", f"{p50:.1f} / {p99:.1f} µs", ""))
        p50, p99 = await latency(lambda: n0_product(1), n)
        figures["hit p50 µs, no-near"] = p50
        rows.append(
            ("warm hit, nearcache @cached without near tier", f"{p50:.0f} / {p99:.0f} µs", "")
        )
        for i in range(100):
            await t_product(i)
            await f_product(i)
            await n_product(i)
            await n0_product(i)
        ops = await throughput(t_product, tasks, each)
        figures["calls/s, tutorial"] = ops
        rows.append((f"{tasks} tasks on 100 warm keys, tutorial", f"{ops:,.0f} calls/s", ""))
        ops = await throughput(f_product, tasks, each)
        figures["calls/s, fastapi-cache2"] = ops
        rows.append((f"{tasks} tasks on 100 warm keys, fastapi-cache2", f"{ops:,.0f} calls/s", ""))
        ops = await throughput(n_product, tasks, each)
        figures["calls/s, near"] = ops
        rows.append(
            (f"{tasks} tasks on 100 warm keys, nearcache (near tier)", f"{ops:,.0f} calls/s", "")
        )
        ops = await throughput(n0_product, tasks, each)
        figures["calls/s, no-near"] = ops
        rows.append(
            (
                f"{tasks} tasks on 100 warm keys, nearcache without near tier",
                f"{ops:,.0f} calls/s",
                "",
            )
        )

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
