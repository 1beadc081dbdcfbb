"""The example service (examples/fastapi/) as two Uvicorn processes on two
daemons, "two hosts" sharing one Redis and one database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from procs import REPO, Daemon, Fleet, Redis, _die_with_parent, free_port, wait_until

import nearcache

EXAMPLE = REPO / "examples" / "fastapi"


class Service:
    def __init__(self, daemon: Daemon, db_url: str, log: Any) -> None:
        self.daemon = daemon
        self.log = log
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, NEARCACHE_URL=daemon.url, DATABASE_URL=db_url, SHOP_LOAD_DELAY="0.2")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "shop.main:app",
                "--app-dir",
                str(EXAMPLE),
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=log,
            stderr=log,
            preexec_fn=_die_with_parent,
        )

    def ready(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError("uvicorn exited:\n" + Path(self.log.name).read_text())
        try:
            return httpx.get(self.url + "/debug/loads", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def loads(self) -> dict[str, int]:
        data: dict[str, int] = httpx.get(self.url + "/debug/loads", timeout=5).json()["loads"]
        return data

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture
def services(redis: Redis, tmp_path: Any) -> Iterator[tuple[Service, Service]]:
    fleet = Fleet(2, redis=redis)
    a, b = fleet[0], fleet[1]
    db_url = f"sqlite:///{tmp_path}/shop.db"
    log = open(tmp_path / "uvicorn.log", "ab")  # noqa: SIM115
    sa = Service(a, db_url, log)
    sb = Service(b, db_url, log)
    try:
        wait_until(lambda: sa.ready() and sb.ready(), 30, "both services")
        yield sa, sb
    finally:
        for s in (sa, sb):
            s.stop()
        log.close()
        fleet.stop()


def test_an_update_through_one_host_is_seen_by_the_other(services: tuple[Service, Service]) -> None:
    a, b = services
    body = {"id": 1, "name": "lamp", "description": "a lamp"}
    assert httpx.put(f"{a.url}/products/1", json=body).status_code == 200
    assert httpx.get(f"{b.url}/products/1").json()["name"] == "lamp"
    assert httpx.get(f"{b.url}/products/1").json()["name"] == "lamp"
    assert httpx.put(f"{a.url}/products/1", json={**body, "name": "lamp v2"}).status_code == 200
    assert httpx.get(f"{a.url}/products/1").json()["name"] == "lamp v2"
    end = time.monotonic() + 2  # the invalidation reaches B's daemon through Redis
    while httpx.get(f"{b.url}/products/1").json()["name"] != "lamp v2":
        assert time.monotonic() < end, "host B still serves the old product"
        time.sleep(0.01)
    assert httpx.get(f"{b.url}/products/404").status_code == 404


def test_two_hundred_requests_for_a_cold_product_across_both_hosts_load_it_once(
    services: tuple[Service, Service],
) -> None:
    a, b = services
    body = {"id": 2, "name": "chair", "description": ""}
    assert httpx.put(f"{a.url}/products/2", json=body).status_code == 200
    before = a.loads()["product"] + b.loads()["product"]

    async def storm() -> list[int]:
        limits = httpx.Limits(max_connections=300)
        async with httpx.AsyncClient(limits=limits, timeout=30) as http:
            urls = [f"{(a, b)[i % 2].url}/products/2" for i in range(200)]
            replies = await asyncio.gather(*(http.get(u) for u in urls))
        assert all(r.json()["name"] == "chair" for r in replies)
        return [r.status_code for r in replies]

    assert asyncio.run(storm()) == [200] * 200
    assert a.loads()["product"] + b.loads()["product"] - before == 1


def test_a_bulk_reprice_bumps_the_price_namespace_on_every_host(
    services: tuple[Service, Service],
) -> None:
    a, b = services
    httpx.put(f"{a.url}/products/3", json={"id": 3, "name": "desk", "description": ""})
    httpx.put(f"{a.url}/products/3/price", json={"product_id": 3, "cents": 1000})
    assert httpx.get(f"{b.url}/products/3/price").json()["cents"] == 1000
    assert httpx.post(f"{a.url}/prices/reprice", params={"percent": 10}).json()["updated"] >= 1
    end = time.monotonic() + 2
    while httpx.get(f"{b.url}/products/3/price").json()["cents"] != 1100:
        assert time.monotonic() < end, "host B still serves the old price"
        time.sleep(0.01)


def test_an_update_while_the_daemon_is_down_is_seen_once_it_is_back(
    services: tuple[Service, Service],
) -> None:
    a, b = services
    body = {"id": 4, "name": "sofa", "description": ""}
    assert httpx.put(f"{a.url}/products/4", json=body).status_code == 200
    assert httpx.get(f"{a.url}/products/4").json()["name"] == "sofa"
    assert httpx.get(f"{b.url}/products/4").json()["name"] == "sofa"
    a.daemon.stop()
    # The write commits and answers 200: its invalidation is kept.
    reply = httpx.put(f"{a.url}/products/4", json={**body, "name": "sofa v2"}, timeout=10)
    assert reply.status_code == 200
    a.daemon.start()
    end = time.monotonic() + 10
    for s in (a, b):  # A sends the Delete before its next request; B hears it
        while httpx.get(f"{s.url}/products/4").json()["name"] != "sofa v2":
            assert time.monotonic() < end, "a host still serves the overwritten product"
            time.sleep(0.05)


@pytest.mark.parametrize("preload", [False, True], ids=["fork-then-import", "preload"])
def test_four_gunicorn_workers_share_the_daemon_and_report_their_near_tiers(
    redis: Redis, tmp_path: Any, preload: bool
) -> None:
    fleet = Fleet(1, redis=redis)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        NEARCACHE_URL=fleet[0].url,
        DATABASE_URL=f"sqlite:///{tmp_path}/shop.db",
    )
    cmd = [
        sys.executable, "-m", "gunicorn", "-k", "uvicorn.workers.UvicornWorker", "-w", "4",
        "--chdir", str(EXAMPLE), "-b", f"127.0.0.1:{port}", "shop.main:app",
    ]  # fmt: skip
    log = open(tmp_path / "gunicorn.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen(
        cmd + (["--preload"] if preload else []),
        env=env,
        stdout=log,
        stderr=log,
        preexec_fn=_die_with_parent,
    )

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "gunicorn.log").read_text()
        try:
            return httpx.get(url + "/debug/loads", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(up, 30, "gunicorn")
        body = {"id": 1, "name": "lamp", "description": ""}
        assert httpx.put(f"{url}/products/1", json=body).status_code == 200
        pids: set[int] = set()
        with httpx.Client(timeout=5) as http:
            end = time.monotonic() + 20
            while len(pids) < 4:  # a fresh connection lands on any worker
                assert time.monotonic() < end, f"only workers {pids} answered"
                with httpx.Client(timeout=5) as one:
                    pids.add(one.get(url + "/debug/loads").json()["pid"])
            for _ in range(200):
                assert http.get(f"{url}/products/1").json()["name"] == "lamp"
            assert http.put(f"{url}/products/1", json={**body, "name": "lamp v2"}).is_success
            for _ in range(20):  # every worker's near tier dropped it
                with httpx.Client(timeout=5) as one:
                    assert one.get(f"{url}/products/1").json()["name"] == "lamp v2"
        with nearcache.Client(fleet[0].url) as probe:
            # Reports go at most once a second: wait for the one after the hits.
            wait_until(
                lambda: probe.stats()["near_clients"] >= 4 and probe.stats()["near_hits"] > 0,
                10,
                "four reporters and their near hits",
            )
            stats = probe.stats()
            assert stats["near_hits"] > 0, stats
    finally:
        proc.terminate()
        proc.wait(20)
        log.close()
        fleet.stop()
