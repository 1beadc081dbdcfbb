"""The asyncio client: many requests in flight on one connection, matched
by id; cancellation and timeouts leave the connection usable."""

from __future__ import annotations

import asyncio

import pytest

import nearcache
from nearcache import LeaseState


async def test_two_hundred_pipelined_gets_share_one_connection_and_get_their_own_values(
    aclient: nearcache.AsyncClient, ns: str
) -> None:
    await aclient.mset(ns, {f"k{i}": f"value {i}" for i in range(200)})
    conn = aclient._conn
    tasks = [asyncio.create_task(aclient.get(ns, f"k{i}")) for i in range(200)]
    await asyncio.sleep(0)  # every task has written its request
    assert conn is not None and len(conn.waiting) == 200
    values = await asyncio.gather(*tasks)
    assert values == [f"value {i}".encode() for i in range(200)]
    assert aclient._conn is conn and not conn.waiting


async def test_a_cancelled_call_leaves_the_connection_usable(
    aclient: nearcache.AsyncClient, ns: str
) -> None:
    await aclient.get_ex(ns, "held", lease=True)  # now a lease Get of it waits
    conn = aclient._conn
    waiter = asyncio.create_task(aclient.get_ex(ns, "held", lease=True, timeout=0.5))
    await asyncio.sleep(0.1)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await aclient.set(ns, "other", "v")
    assert await aclient.get(ns, "other") == b"v"
    await asyncio.sleep(0.6)  # the cancelled Get's LEASE_BUSY reply comes and is dropped
    assert await aclient.get(ns, "other") == b"v"
    assert conn is not None and aclient._conn is conn and not conn.waiting


async def test_a_slow_call_does_not_hold_up_the_others_on_the_connection(
    aclient: nearcache.AsyncClient, ns: str
) -> None:
    await aclient.get_ex(ns, "held", lease=True)
    slow = asyncio.create_task(aclient.get_ex(ns, "held", lease=True, timeout=0.8))
    await asyncio.sleep(0.05)
    for i in range(20):
        await aclient.set(ns, f"k{i}", "v")
    assert not slow.done()
    assert (await slow).lease is LeaseState.BUSY


async def test_concurrent_first_calls_dial_one_connection(daemon: object, ns: str) -> None:
    async with nearcache.AsyncClient(daemon.url) as c:  # type: ignore[attr-defined]
        await asyncio.gather(*(c.ping() for _ in range(50)))
        conn = c._conn
        await c.ping()
        assert c._conn is conn


async def test_a_client_follows_a_new_event_loop(daemon: object, ns: str) -> None:
    c = nearcache.AsyncClient(daemon.url)  # type: ignore[attr-defined]
    await c.set(ns, "k", "v")
    first = c._conn

    def in_another_loop() -> bytes | None:
        return asyncio.run(c.get(ns, "k"))

    assert await asyncio.to_thread(in_another_loop) == b"v"
    assert c._conn is not first
    await c.close()
