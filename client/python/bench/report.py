"""Runs the Python benchmarks once (tutorial.py, http_load.py, failopen.py,
orjson_hit.py) and writes their tables, with the ratios against the tutorial, into
docs/benchmarks.md between the markers below, leaving the rest of the page
as bench/run.sh wrote it (run.sh keeps this section when it rewrites the
page).

    NC_BUILD=build .venv/bin/python client/python/bench/report.py [--print]

``--print`` prints the section instead of writing it.
"""

# ruff: noqa: RUF001 (the multiplication sign in the tables)
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parents[2]
DOC = REPO / "docs" / "benchmarks.md"
BEGIN, END = "<!-- python-bench:begin -->", "<!-- python-bench:end -->"
#: Where a page without the markers gets the section (bench/run.sh puts it there too).
BEFORE = "## Where the floor is, and why"


def verdict(x: float, target: tuple[str, float] | None) -> str:
    """The target column of a ratio: ``≥ 20: **met**`` or ``**missed**``."""
    if target is None:
        return ""
    op, bound = target
    met = x >= bound if op == ">=" else x <= bound
    return f"{'≥' if op == '>=' else '≤'} {bound:g}: **{'met' if met else 'missed'}**"


def run(script: str, out: Path) -> str:
    """Runs bench/SCRIPT with --json OUT; returns its Markdown (stdout)."""
    print(f"report: running {script} ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, str(BENCH / script), "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"report: {script} exited {done.returncode}:\n{done.stderr}{done.stdout}")
    return done.stdout.strip()


def run_plain(script: str) -> str:
    """Runs bench/SCRIPT; returns its Markdown (stdout)."""
    print(f"report: running {script} ...", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, str(BENCH / script)], capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"report: {script} exited {done.returncode}:\n{done.stderr}{done.stdout}")
    return done.stdout.strip()


def sh(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()


def loadavg() -> str:
    return ", ".join(Path("/proc/loadavg").read_text().split()[:3])


def section(
    load_start: str,
    tutorial_md: str,
    t: dict[str, float],
    http_md: str,
    h: dict[str, Any],
    failopen_md: str,
    orjson_md: str,
) -> str:
    """Returns the docs section, markers included."""
    load = h["load"]
    rps = {name: m["rps"] / load["tutorial @cached"]["rps"] for name, m in load.items()}
    pkgs = ", ".join(
        f"{p} {version(p)}"
        for p in ("redis", "hiredis", "orjson", "fastapi", "uvicorn", "fastapi-cache2")
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # "-dirty" when anything but the page bench/run.sh and this write has changed
    changed = sh("git", "-C", str(REPO), "status", "--porcelain", "--", ".", ":!docs/benchmarks.*")
    commit = sh("git", "-C", str(REPO), "rev-parse", "--short", "HEAD") + (
        "-dirty" if changed else ""
    )
    wrk = (sh("wrk", "-v") or "wrk ?").split()[1]  # "wrk VERSION [epoll] Copyright ..."
    base = t["hit p50 µs, tutorial"]
    # (what, ratio, the target as (">=" or "<=", bound), or None)
    ratios: list[tuple[str, float, tuple[str, float] | None]] = [
        (
            "calls/s, 32 tasks on warm keys: nearcache (near tier) / tutorial",
            t["calls/s, near"] / t["calls/s, tutorial"],
            (">=", 20),
        ),
        (
            "warm hit p50: nearcache without near tier / tutorial",
            t["hit p50 µs, no-near"] / base,
            ("<=", 1.5),
        ),
        ("warm hit p50: nearcache (near tier) / tutorial", t["hit p50 µs, near"] / base, None),
        (
            "HTTP requests/s: nearcache (near tier) / tutorial",
            rps["nearcache (near tier)"],
            (">=", 1.5),
        ),
        (
            "HTTP requests/s: nearcache without near tier / tutorial",
            rps["nearcache without near tier"],
            None,
        ),
        ("HTTP requests/s: fastapi-cache2 / tutorial", rps["fastapi-cache2 @cache"], None),
    ]
    rows = "\n".join(f"| {what} | {x:.3g}× | {verdict(x, target)} |" for what, x, target in ratios)
    return f"""{BEGIN}
## The Python client against the tutorial

Written by `client/python/bench/report.py` on {when} (commit {commit});
load average {load_start} at the start, {loadavg()} at the end. `bench/run.sh`
keeps this section as it is. Python {platform.python_version()}, {pkgs}, wrk {wrk}.
The tutorial's code (a "FastAPI + Redis caching" tutorial: redis.asyncio with
hiredis, orjson) is as it gives it; each table's rows ran in the same run, on
a private redis-server and nearcached.

```sh
.venv/bin/pip install -e 'client/python[bench]'   # and wrk
NC_BUILD=build .venv/bin/python client/python/bench/report.py   # both, and this section
NC_BUILD=build .venv/bin/python client/python/bench/tutorial.py
NC_BUILD=build .venv/bin/python client/python/bench/http_load.py
```

Against the tutorial's `@cached`, this run:

| ratio | this run | target (issue 12) |
| --- | --- | --- |
{rows}

### A cached async function (`tutorial.py`)

The same function (a 50 ms sleep as its "database") under the tutorial's
`@cached` and `get_with_lock`, fastapi-cache2's `@cache` (RedisBackend,
JsonCoder) and nearcache's `@cached` with its near tier (the client's
default) and without it (`near_bytes=0`), on one event loop; latencies
measured in turns (a tenth of each at a time), calls/s the median of three
turns.

{tutorial_md}

### `GET /products/{{id}}` of the example service (`http_load.py`)

[examples/fastapi](../examples/fastapi/README.md) over SQLite, and the same
route, database, loader and response model cached the tutorial's way
(`bench/tutorial_shop.py`) and fastapi-cache2's (`bench/fastapi_cache_shop.py`,
`@cache` below the route). One Uvicorn worker each (uvloop, httptools, no
access log), wrk on the same 2-core machine; Redis and nearcached are on it
too, so a Redis round trip costs CPU that the server shares. The cold
product's 200 requests come from one Python process (httpx, one connection
each), whose own work is most of their time; the loads are the figure.

{http_md}

### Fail-open with no daemon

What a fail-open `@cached` call adds to the function's own time when no
daemon is there (`failopen.py`): the socket file missing, or stale (nobody
listening); calls back to back (before the next dial is due: they fail at
once) and spaced out (more of them dial once). Function and decorated
function are timed in turns, so both find the caches alike; a spaced call is
slower than a back-to-back one for both.

{failopen_md}

### orjson on the hit path

A warm near-tier hit of an async `@cached` function returning a dict of
about 150 bytes of JSON, decoded by orjson and by the standard library's
`json` (`orjson_hit.py`, the two in turns), in CPU time of the calling
thread, which a busy machine does not inflate.

{orjson_md}
{END}"""


def write(doc: Path, text: str) -> None:
    """Replaces the section between the markers of ``doc`` with ``text``
    (inserts it before BEFORE, or at the end, when there is none)."""
    page = doc.read_text()
    if BEGIN in page and END in page:
        head, rest = page.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        page = head + text + tail
    elif BEFORE in page:
        head, tail = page.split(BEFORE, 1)
        page = head + text + "\n\n" + BEFORE + tail
    else:
        page = page.rstrip("\n") + "\n\n" + text + "\n"
    doc.write_text(page)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--print", action="store_true", help="print the section, write nothing")
    args = ap.parse_args()
    os.environ.setdefault("NC_BUILD", str(REPO / "build"))
    load_start = loadavg()
    with tempfile.TemporaryDirectory() as tmp:
        tutorial_md = run("tutorial.py", Path(tmp) / "t.json")
        http_md = run("http_load.py", Path(tmp) / "h.json")
        failopen_md = run_plain("failopen.py")
        orjson_md = run_plain("orjson_hit.py")
        t = json.loads((Path(tmp) / "t.json").read_text())
        h = json.loads((Path(tmp) / "h.json").read_text())
    text = section(load_start, tutorial_md, t, http_md, h, failopen_md, orjson_md)
    if args.print:
        print(text)
    else:
        write(DOC, text)
        print(f"report: wrote the Python section of {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
