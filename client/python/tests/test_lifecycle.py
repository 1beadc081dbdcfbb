"""Clients outlive a daemon restart and a fork."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from conftest import open_client
from procs import Daemon

import nearcache


def test_the_next_call_after_a_daemon_restart_succeeds(
    kind: str, make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    with open_client(kind, d.url, timeout=3) as cl:
        cl.set(ns, "k", "before the restart")
        old = cl.ping().node_id
        d.restart()
        assert cl.get(ns, "k") == b"before the restart"
        assert cl.ping().node_id != old


def test_calls_while_the_daemon_is_down_fail_and_it_is_found_again(
    kind: str, make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    with open_client(kind, d.url, timeout=1) as cl:
        cl.set(ns, "k", "v")
        d.stop()
        for _ in range(3):
            try:
                cl.get(ns, "k")
                raise AssertionError("a stopped daemon answered")
            except nearcache.Unavailable:
                pass
        d.start()
        end = time.monotonic() + 5
        while True:  # calls before the next dial is due fail at once
            try:
                assert cl.get(ns, "k") == b"v"
                break
            except nearcache.Unavailable:
                assert time.monotonic() < end
                time.sleep(0.05)


def _child(body: Callable[[], Any]) -> int:
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            code = 0 if body() else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_a_forked_child_gets_its_own_connection_and_the_parents_goes_on(
    daemon: Daemon, ns: str
) -> None:
    with nearcache.Client(daemon.url, timeout=3) as cl:
        cl.set(ns, "k", "parent")
        parent_conn = cl._idle[0]

        def child() -> bool:
            ok = cl.get(ns, "k") == b"parent"
            cl.set(ns, "k", "child")
            mine = cl._idle[0]
            return ok and mine is not parent_conn and mine.pid == os.getpid()

        assert _child(child) == 0
        assert cl.get(ns, "k") == b"child"
        assert cl._idle == [parent_conn]


def test_a_forked_child_gets_its_own_async_connection(daemon: Daemon, ns: str) -> None:
    c = nearcache.AsyncClient(daemon.url, timeout=3)

    async def use(value: str) -> bytes | None:
        await c.set(ns, "k", value)
        return await c.get(ns, "k")

    assert asyncio.run(use("parent")) == b"parent"

    def child() -> bool:
        return (
            asyncio.run(use("child")) == b"child"
            and c._conn is not None
            and (c._conn.pid == os.getpid())
        )

    assert _child(child) == 0
    assert asyncio.run(use("parent again")) == b"parent again"


def test_every_pooled_connection_is_redialed_after_a_restart(
    make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    with nearcache.Client(d.url, timeout=3) as cl:
        barrier = threading.Barrier(4)

        def use() -> None:
            barrier.wait()
            cl.set(ns, "k", "v")

        threads = [threading.Thread(target=use) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert len(cl._idle) >= 2  # several connections, all to the old daemon
        d.restart()
        assert cl.get(ns, "k") == b"v"
