"""The example service's ``GET /products/{id}`` under load, cached four ways
in the same run: the tutorial's ``@cached`` (tutorial_shop.py),
fastapi-cache2 (fastapi_cache_shop.py), and examples/fastapi as it is,
with nearcache's near tier and without it (``NEARCACHE_NEAR_BYTES=0``).

Each is one Uvicorn worker (uvloop, httptools) on a free loopback port over
the same SQLite database of products, a private redis-server and
nearcached (tests/procs.py), stopped by pid. Every id is read once, then wrk
(2 threads, 32 connections, ids Zipf-distributed: zipf.lua) loads each in
turn for a slice of seconds, round after round (A B C D A B C D ...), so
that a noisy machine weighs on all alike; the table gives the medians over
the rounds. Then 200 concurrent requests for one cold product, spread over
two Uvicorn processes of each way, count the database loads.

    .venv/bin/pip install -e 'client/python[bench]'    # and wrk (Debian: apt-get install wrk)
    NC_BUILD=build .venv/bin/python client/python/bench/http_load.py [--smoke] [--json FILE]

Prints Markdown tables. Exits 1 if a request failed or nearcache's cold
product was loaded more than once.
"""

# ruff: noqa: RUF001 (the multiplication sign in the tables)
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from procs import REPO, Daemon, Redis, _die_with_parent, free_port, wait_until

BENCH = Path(__file__).resolve().parent
EXAMPLE = REPO / "examples" / "fastapi"
TUTORIAL = "tutorial @cached"
#: name -> (Uvicorn app, extra environment)
VARIANTS = {
    TUTORIAL: ("tutorial_shop:app", {}),
    "fastapi-cache2 @cache": ("fastapi_cache_shop:app", {}),
    "nearcache (near tier)": ("shop.main:app", {}),
    "nearcache without near tier": ("shop.main:app", {"NEARCACHE_NEAR_BYTES": "0"}),
}
HERD_VARIANTS = [TUTORIAL, "fastapi-cache2 @cache", "nearcache (near tier)"]


def seed(db_url: str, n: int) -> None:
    """Creates the example's tables at ``db_url`` with products 1..n."""
    os.environ["DATABASE_URL"] = db_url
    sys.path.insert(0, str(EXAMPLE))
    from shop.db import ProductRow, SessionLocal, create_all

    create_all()
    with SessionLocal() as db, db.begin():
        for i in range(1, n + 1):
            db.add(ProductRow(id=i, name=f"product {i}", description=f"the product {i}, " * 8))


class Server:
    """One Uvicorn process with one worker serving ``app``."""

    def __init__(self, app: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1"),
                    *("--port", str(self.port), "--workers", "1", "--no-access-log"),
                    *("--log-level", "warning", "--loop", "uvloop", "--http", "httptools"),
                ],
                env=env,
                stdout=out,
                stderr=out,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    def get(self, path: str) -> bytes:
        with urllib.request.urlopen(self.url + path, timeout=5) as reply:
            body: bytes = reply.read()
            return body

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited:\n{self.log.read_text()}")
        try:
            self.get("/debug/loads")
            return True
        except OSError:
            return False

    def product_loads(self) -> int:
        return int(json.loads(self.get("/debug/loads"))["loads"]["product"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def start(names: list[str], env: dict[str, str], tmp: Path) -> list[Server]:
    """Starts a Server of each variant named (any twice for two); waits for all."""
    first = len(list(tmp.glob("uvicorn-*.log")))
    servers = []
    for i, name in enumerate(names, first):
        app, extra = VARIANTS[name]
        servers.append(Server(app, {**env, **extra}, tmp / f"uvicorn-{i}.log"))
    for s in servers:
        wait_until(s.ready, 60, "uvicorn to answer")
    return servers


def wrk(url: str, seconds: float, ids: int) -> dict[str, float]:
    """One wrk slice; returns requests/s and p50/p99 in µs. Raises on errors."""
    run = subprocess.run(
        [
            *("wrk", "-t2", "-c32", f"-d{max(1, round(seconds))}s", "--timeout", "5s"),
            *("-s", str(BENCH / "zipf.lua"), url, "--", str(ids), "0.99"),
        ],
        capture_output=True,
        text=True,
    )
    out = run.stdout
    if run.returncode != 0:
        raise RuntimeError(f"wrk on {url} exited {run.returncode}: {run.stderr.strip()}\n{out}")
    r = json.loads(out.strip().splitlines()[-1])
    if r["errors"] or r["non_2xx"]:
        raise RuntimeError(f"wrk on {url}: {r}\n{out}")
    return {"rps": r["requests"] / (r["duration_us"] / 1e6), "p50": r["p50_us"], "p99": r["p99_us"]}


async def herd(servers: list[Server], product_id: int, n: int) -> float:
    """n concurrent GETs of one product, spread over ``servers``; returns ms."""
    limits = httpx.Limits(max_connections=n)
    async with httpx.AsyncClient(limits=limits, timeout=30) as c:
        t = time.perf_counter()
        replies = await asyncio.gather(
            *(c.get(f"{servers[i % len(servers)].url}/products/{product_id}") for i in range(n))
        )
        ms = (time.perf_counter() - t) * 1000
    bad = [r.status_code for r in replies if r.status_code != 200]
    if bad:
        raise RuntimeError(f"herd: {len(bad)} replies were not 200: {bad[:5]}")
    return ms


def load_table(
    env: dict[str, str], tmp: Path, ids: int, rounds: int, seconds: float, warm_slice: bool
) -> tuple[str, dict[str, dict[str, float]]]:
    """Returns the table and the medians by variant (rps, p50 and p99 in µs);
    ``warm_slice``: a wrk slice on each before the rounds, not counted."""
    servers = dict(zip(VARIANTS, start(list(VARIANTS), env, tmp), strict=True))
    try:
        for s in servers.values():
            for i in range(1, ids + 1):
                s.get(f"/products/{i}")
            if warm_slice:
                wrk(s.url, 1, ids)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
        for _ in range(rounds):
            for name, s in servers.items():
                runs[name].append(wrk(s.url, seconds, ids))
    finally:
        for s in servers.values():
            s.stop()
    med = {n: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for n, rs in runs.items()}
    base = med[TUTORIAL]
    lines = [
        "| GET /products/{id}, one Uvicorn worker | requests/s | p50 / p99 | vs tutorial |",
        "| --- | --- | --- | --- |",
    ]
    for name, m in med.items():
        lines.append(
            f"| {name} | {m['rps']:,.0f} | {m['p50'] / 1000:.2f} / {m['p99'] / 1000:.2f} ms"
            f" | {m['rps'] / base['rps']:.2f}× req/s, {m['p50'] / base['p50']:.2f}× p50 |"
        )
    return "\n".join(lines), med


def herd_table(
    env: dict[str, str], tmp: Path, product_id: int, n: int
) -> tuple[str, dict[str, int]]:
    """Returns the table and the database loads by variant."""
    lines = [
        f"| {n} concurrent GETs of one cold product over two Uvicorn processes"
        " (load: +50 ms) | time | database loads |",
        "| --- | --- | --- |",
    ]
    slow = {**env, "SHOP_LOAD_DELAY": "0.05"}
    loads = {}
    for name in HERD_VARIANTS:
        pair = start([name, name], slow, tmp)
        try:
            ms = asyncio.run(herd(pair, product_id, n))
            loads[name] = sum(s.product_loads() for s in pair)
        finally:
            for s in pair:
                s.stop()
        lines.append(f"| {name} | {ms:.0f} ms | {loads[name]} |")
    return "\n".join(lines), loads


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="a moment of each: only that it runs")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=5, help="length of one wrk slice")
    ap.add_argument("--ids", type=int, default=1000, help="products, Zipf s=0.99 over them")
    ap.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    args = ap.parse_args()
    if args.smoke:
        args.rounds, args.seconds, args.ids = 1, 1, 50
    herd_n = 20 if args.smoke else 200
    if shutil.which("wrk") is None:
        sys.exit("wrk is missing (Debian: apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-http-"))
    rs = Redis().start()
    d = Daemon(rs, "--log-level", "warn").start()
    try:
        db_url = f"sqlite:///{tmp}/shop.db"
        seed(db_url, args.ids + 1)
        pythonpath = os.pathsep.join([str(BENCH), str(EXAMPLE), os.environ.get("PYTHONPATH", "")])
        env = dict(
            os.environ,
            PYTHONPATH=pythonpath,
            DATABASE_URL=db_url,
            REDIS_URL=rs.url,
            NEARCACHE_URL=d.url,
        )
        print(
            f"wrk -t2 -c32, {args.rounds} rounds of {args.seconds:g} s per variant (medians), "
            f"ids Zipf s=0.99 over {args.ids} products, all warm\n"
        )
        table, med = load_table(env, tmp, args.ids, args.rounds, args.seconds, not args.smoke)
        print(table + "\n", flush=True)
        table, loads = herd_table(env, tmp, args.ids + 1, herd_n)
        print(table)
    finally:
        d.cleanup()
        rs.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"load": med, "herd loads": loads}))
    if loads[HERD_VARIANTS[-1]] != 1:
        sys.exit(f"nearcache loaded the cold product {loads[HERD_VARIANTS[-1]]} times")


if __name__ == "__main__":
    main()
