"""@nearcache.cached against a real daemon: every rule of docs/python.md."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pydantic
import pytest
from procs import Daemon, Redis

import nearcache


class Product(pydantic.BaseModel):
    id: int
    name: str
    price: float


@dataclasses.dataclass
class Point:
    x: int
    y: int


@pytest.fixture
def cl(daemon: Daemon) -> Iterator[nearcache.Client]:
    with nearcache.Client(daemon.url, timeout=3) as c:
        yield c


def test_the_default_namespace_is_the_qualified_name(cl: nearcache.Client) -> None:
    @nearcache.cached(client=cl)
    def price(product_id: int) -> int:
        return product_id

    assert price.ns == (
        b"test_cached.test_the_default_namespace_is_the_qualified_name.<locals>.price"
    )


def test_positional_keyword_and_default_arguments_name_one_key(
    cl: nearcache.Client, ns: str
) -> None:
    calls: list[int] = []

    @nearcache.cached(ns=ns, client=cl)
    def product(product_id: int, lang: str = "en") -> dict[str, Any]:
        calls.append(product_id)
        return {"id": product_id, "lang": lang}

    assert product(42) == {"id": 42, "lang": "en"}
    assert product(product_id=42) == {"id": 42, "lang": "en"}
    assert product(42, "en") == {"id": 42, "lang": "en"}
    assert calls == [42]
    assert product.key(42) == b'product_id=42&lang="en"'
    assert cl.get(ns, b'product_id=42&lang="en"') == b'{"id":42,"lang":"en"}'
    assert product(42, "de")["lang"] == "de"
    assert calls == [42, 42]


def test_a_template_names_the_key(cl: nearcache.Client) -> None:
    ns = "product"

    @nearcache.cached(ttl=300, ns=ns, key="{product_id}", client=cl)
    def product(product_id: int, verbose: bool = False) -> dict[str, int]:
        return {"id": product_id}

    cl.delete(ns, "4242")
    product(4242)
    assert cl.get(ns, "4242") == b'{"id":4242}'
    assert nearcache.invalidate(ns, "4242", client=cl) is True


def test_a_key_callable_takes_the_functions_arguments(cl: nearcache.Client, ns: str) -> None:
    @nearcache.cached(ns=ns, key=lambda user, page=1: f"{user['id']}/{page}", client=cl)
    def feed(user: dict[str, int], page: int = 1) -> list[int]:
        return [page]

    feed({"id": 7}, page=2)
    assert cl.get(ns, "7/2") == b"[2]"


def test_exclude_leaves_arguments_out_of_the_key(cl: nearcache.Client, ns: str) -> None:
    @nearcache.cached(ns=ns, exclude=["trace_id"], client=cl)
    def lookup(item: int, trace_id: str) -> int:
        return item

    assert lookup.key(1, "abc") == lookup.key(1, "xyz") == b"item=1"


def test_an_argument_without_a_key_encoding_is_a_type_error_naming_it(
    cl: nearcache.Client, ns: str
) -> None:
    @nearcache.cached(ns=ns, client=cl)
    def lookup(item: int, conn: object) -> int:
        return item

    with pytest.raises(TypeError, match="argument 'conn' of type object"):
        lookup(1, object())


def test_a_pydantic_model_comes_back_as_the_model(cl: nearcache.Client, ns: str) -> None:
    calls = []

    @nearcache.cached(ns=ns, client=cl)
    def product(product_id: int) -> Product:
        calls.append(product_id)
        return Product(id=product_id, name="lamp", price=9.5)

    first = product(1)
    again = product(1)
    assert calls == [1]
    assert isinstance(again, Product) and again == first


def test_lists_of_models_optional_models_and_dataclasses_round_trip(
    cl: nearcache.Client, ns: str
) -> None:
    @nearcache.cached(ns=ns, client=cl)
    def many(n: int) -> list[Product]:
        return [Product(id=i, name=f"p{i}", price=i) for i in range(n)]

    @nearcache.cached(ns=ns, client=cl)
    def maybe(n: int) -> Product | None:
        return Product(id=n, name="x", price=1) if n else None

    @nearcache.cached(ns=ns, client=cl)
    def point(x: int) -> Point:
        return Point(x, -x)

    for _ in range(2):
        assert many(3) == [Product(id=i, name=f"p{i}", price=i) for i in range(3)]
        assert maybe(5) == Product(id=5, name="x", price=1)
        assert maybe(0) is None
        assert point(3) == Point(3, -3)


def test_none_is_cached_as_a_negative_entry(cl: nearcache.Client, ns: str) -> None:
    calls = []

    @nearcache.cached(ns=ns, key="{user_id}", client=cl)
    def user(user_id: int) -> dict[str, int] | None:
        calls.append(user_id)
        return None

    assert user(9) is None
    assert user(9) is None
    assert calls == [9]
    assert cl.get_ex(ns, "9").negative


def test_a_value_that_does_not_fit_a_scalar_annotation_is_loaded_again(
    cl: nearcache.Client, ns: str
) -> None:
    cl.set(ns, "1", b'{"a":"not an int"}', 60)  # another writer's, or an older deploy's

    @nearcache.cached(ns=ns, key="{k}", client=cl)
    def counts(k: int) -> dict[str, int]:
        return {"a": 1}

    assert counts(1) == {"a": 1}
    assert counts.cache_info()["undecodable"] == 1

    @nearcache.cached(ns=ns, key="f{k}", client=cl)
    def ratio(k: int) -> float:
        return float("nan")  # stored as null by JSON: a hit must not answer None

    assert math.isnan(ratio(1))
    assert math.isnan(ratio(1))


def test_cache_none_false_does_not_store_none(cl: nearcache.Client, ns: str) -> None:
    calls = []

    @nearcache.cached(ns=ns, cache_none=False, client=cl)
    def user(user_id: int) -> None:
        calls.append(user_id)

    user(1)
    user(1)
    assert calls == [1, 1]


def test_pickle_is_used_only_when_asked(cl: nearcache.Client, ns: str) -> None:
    class Opaque:
        def __eq__(self, other: object) -> bool:
            return isinstance(other, Opaque)

    calls = []

    @nearcache.cached(ns=ns, client=cl)
    def as_json() -> Any:
        calls.append(1)
        return Opaque()

    with pytest.warns(nearcache.CacheWarning, match="cannot store"):
        assert as_json() == Opaque()
    assert cl.get(ns, "-") is None  # nothing stored

    @nearcache.cached(ns=ns, serializer="pickle", key="p", client=cl)
    def as_pickle() -> frozenset[int]:
        calls.append(2)
        return frozenset({1, 2})

    assert as_pickle() == as_pickle() == frozenset({1, 2})
    assert calls == [1, 2]


def test_a_value_too_large_warns_and_is_returned_uncached(cl: nearcache.Client, ns: str) -> None:
    calls = []

    @nearcache.cached(ns=ns, max_value_size=100, client=cl)
    def big(n: int) -> str:
        calls.append(n)
        return "x" * n

    with pytest.warns(nearcache.CacheWarning, match="more than max_value_size"):
        assert big(200) == "x" * 200
    with pytest.warns(nearcache.CacheWarning):
        big(200)
    assert calls == [200, 200]
    assert big.cache_info()["too_large"] == 2


def test_invalidate_recomputes_the_same_key(cl: nearcache.Client, ns: str) -> None:
    version = {"n": 1}

    @nearcache.cached(ns=ns, client=cl)
    def product(product_id: int) -> int:
        return version["n"]

    assert product(5) == 1
    version["n"] = 2
    assert product(5) == 1
    assert product.invalidate(product_id=5) is True
    assert product(5) == 2
    version["n"] = 3
    first = product.bump()
    assert first > 0
    assert product(5) == 3
    assert product.bump() == first + 1


def test_cache_read_false_always_loads_and_refreshes_the_entry(
    cl: nearcache.Client, ns: str
) -> None:
    version = {"n": 1}

    def load(k: int) -> int:
        return version["n"]

    reader = nearcache.cached(ns=ns, key="{k}", client=cl)(load)
    writer = nearcache.cached(ns=ns, key="{k}", cache_read=False, client=cl)(load)
    assert reader(1) == 1
    version["n"] = 2
    assert reader(1) == 1
    assert writer(1) == 2
    assert reader(1) == 2


def test_cache_write_false_reads_but_never_stores(cl: nearcache.Client, ns: str) -> None:
    @nearcache.cached(ns=ns, key="{k}", cache_write=False, client=cl)
    def load(k: int) -> int:
        return k

    assert load(1) == 1
    assert cl.get(ns, "1") is None
    cl.set(ns, "1", "100")
    assert load(1) == 100


def test_options_change_cache_read_and_write_for_some_calls(cl: nearcache.Client, ns: str) -> None:
    version = {"n": 1}

    @nearcache.cached(ns=ns, key="{k}", client=cl)
    def load(k: int) -> int:
        return version["n"]

    assert load(1) == 1
    version["n"] = 2
    assert load(1) == 1
    assert load.options(cache_read=False)(1) == 2
    assert load(1) == 2, "the call that did not read still stored"
    version["n"] = 3
    assert load.options(cache_read=False, cache_write=False)(1) == 3
    assert load(1) == 2, "the call that did not write stored"
    assert load.cache_info()["loads"] == 3


def test_jitter_spreads_ttls_within_its_bounds(cl: nearcache.Client, ns: str, redis: Redis) -> None:
    @nearcache.cached(ttl=timedelta(seconds=100), ns=ns, key="{k}", jitter=0.2, client=cl)
    def spread(k: int) -> int:
        return k

    @nearcache.cached(ttl=100, ns=ns, key="exact{k}", jitter=0, client=cl)
    def exact(k: int) -> int:
        return k

    ttls = set()
    for k in range(20):
        spread(k)
        ttls.add(int(redis.cmd("PTTL", redis.data_key(ns, str(k)))))
    assert len(ttls) > 5
    assert all(79000 <= t <= 120000 for t in ttls)
    exact(1)
    assert 99000 <= int(redis.cmd("PTTL", redis.data_key(ns, "exact1"))) <= 100000


def test_slide_keeps_a_read_entry_alive(cl: nearcache.Client, ns: str) -> None:
    calls = []

    @nearcache.cached(ttl=1, ns=ns, key="{s}", slide=True, jitter=0, client=cl)
    def session(s: str) -> str:
        calls.append(s)
        return s

    for _ in range(4):
        session("abc")
        time.sleep(0.4)
    assert calls == ["abc"]  # 1.6 s after a 1 s TTL, never reloaded


def test_stale_while_revalidate_answers_stale_and_refreshes_in_the_background(
    cl: nearcache.Client, ns: str
) -> None:
    version = {"n": 1}

    @nearcache.cached(ttl=0.3, ns=ns, key="{k}", jitter=0, stale_while_revalidate=30, client=cl)
    def price(k: int) -> int:
        return version["n"]

    assert price(1) == 1
    version["n"] = 2
    time.sleep(0.45)
    assert price(1) == 1  # stale, and this caller's lease refreshes it
    deadline = time.monotonic() + 3
    while price(1) != 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert price.cache_info()["stale"] >= 1


def test_a_loader_that_raises_releases_the_lease_at_once(cl: nearcache.Client, ns: str) -> None:
    @nearcache.cached(ns=ns, key="{k}", client=cl)
    def broken(k: int) -> int:
        raise LookupError("database down")

    with pytest.raises(LookupError):
        broken(1)
    t0 = time.monotonic()
    r = cl.get_ex(ns, "1", lease=True)
    assert r.lease is nearcache.LeaseState.GRANTED
    assert time.monotonic() - t0 < 1.0  # not when the lease runs out (lease_ttl, 3 s)


def test_a_busy_lease_holder_makes_the_caller_load_without_storing(
    cl: nearcache.Client, ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    cl.get_ex(ns, "1", lease=True)  # someone else holds the lease and is slow

    @nearcache.cached(ns=ns, key="{k}", timeout=0.3, client=cl)
    def load(k: int) -> str:
        return "mine"

    with caplog.at_level(logging.WARNING, logger="nearcache"):
        assert load(1) == "mine"  # never None, as the tutorial's lock gave
    # The daemon answers BUSY 30 ms before the 300 ms budget (at most 50 ms
    # before any budget); a loaded machine can deliver it later, and then the
    # client's own deadline ends the wait, with the same outcome. Nothing else
    # may end it.
    info = load.cache_info()
    if info["busy"] == 0:
        assert info["errors"] == 1 and "DeadlineExceeded" in caplog.text, (info, caplog.text)
    else:
        assert info["busy"] == 1 and info["errors"] == 0, info
    assert cl.get(ns, "1") is None  # the holder stores it; this caller did not


def test_a_write_during_the_load_makes_its_old_value_uncached(
    cl: nearcache.Client, ns: str
) -> None:
    @nearcache.cached(ns=ns, key="{k}", client=cl)
    def load(k: int) -> str:
        cl.delete(ns, str(k))  # the row changed while we read it
        return "old"

    assert load(1) == "old"
    assert load.cache_info()["aborted"] == 1
    assert cl.get(ns, "1") is None


def test_threads_missing_one_key_cause_one_load(cl: nearcache.Client, ns: str) -> None:
    calls = []

    @nearcache.cached(ns=ns, key="{k}", client=cl)
    def slow(k: int) -> int:
        calls.append(k)
        time.sleep(0.3)
        return k

    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(slow(1))) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == [1] * 16
    assert calls == [1]


def test_processes_missing_one_key_cause_one_load(daemon: Daemon, ns: str, tmp_path: Any) -> None:
    log = tmp_path / "loads"

    def work() -> None:
        with nearcache.Client(daemon.url, timeout=3) as c:

            @nearcache.cached(ns=ns, key="{k}", client=c)
            def slow(k: int) -> int:
                with open(log, "a") as f:
                    f.write(f"{os.getpid()}\n")
                time.sleep(0.3)
                return k

            assert slow(1) == 1

    pids = []
    for _ in range(6):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                work()
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    for pid in pids:
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    assert len(log.read_text().splitlines()) == 1


def test_an_unreachable_daemon_fails_open_logged_and_counted(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with nearcache.Client(f"ipc://{tmp_path}/none.sock", timeout=0.2) as down:

        @nearcache.cached(client=down)
        def load(k: int) -> int:
            return k * 2

        with caplog.at_level(logging.WARNING, logger="nearcache"):
            assert load(2) == 4
            assert load(3) == 6
        assert load.cache_info()["errors"] == 2
        assert "calling the function" in caplog.text

        @nearcache.cached(client=down, fail_open=False)
        def strict(k: int) -> int:
            return k

        with pytest.raises(nearcache.Unavailable):
            strict(1)


async def test_an_async_function_is_cached_with_one_load_for_many_tasks(
    aclient: nearcache.AsyncClient, ns: str
) -> None:
    calls = []

    @nearcache.cached(ns=ns, client=aclient)
    async def product(product_id: int) -> Product:
        calls.append(product_id)
        await asyncio.sleep(0.2)
        return Product(id=product_id, name="lamp", price=1.0)

    results = await asyncio.gather(*(product(7) for _ in range(50)))
    assert all(r == Product(id=7, name="lamp", price=1.0) for r in results)
    assert calls == [7]
    assert await product.invalidate(7) is True
    await product(product_id=7)
    assert calls == [7, 7]
    first = await product.bump()
    assert await product.bump() == first + 1


async def test_async_stale_while_revalidate_refreshes_in_a_task(
    aclient: nearcache.AsyncClient, ns: str
) -> None:
    version = {"n": 1}

    @nearcache.cached(ttl=0.3, ns=ns, jitter=0, stale_while_revalidate=30, client=aclient)
    async def price(k: int) -> int:
        return version["n"]

    assert await price(1) == 1
    version["n"] = 2
    await asyncio.sleep(0.45)
    assert await price(1) == 1
    for _ in range(100):
        if await price(1) == 2:
            break
        await asyncio.sleep(0.02)
    assert await price(1) == 2


async def test_an_async_function_fails_open(tmp_path: Any) -> None:
    async with nearcache.AsyncClient(f"ipc://{tmp_path}/none.sock", timeout=0.2) as down:

        @nearcache.cached(client=down)
        async def load(k: int) -> int:
            return k + 1

        assert await load(1) == 2
        assert load.cache_info()["errors"] == 1


def test_a_sync_function_given_an_async_client_is_a_type_error(
    aclient: nearcache.AsyncClient,
) -> None:
    @nearcache.cached(client=aclient)
    def load(k: int) -> int:
        return k

    with pytest.raises(TypeError, match=r"needs a nearcache\.Client"):
        load(1)


def test_the_default_client_comes_from_the_environment(
    daemon: Daemon, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEARCACHE_URL", daemon.url)
    nearcache.set_default_clients(None, None)
    try:

        @nearcache.cached(ns=ns, key="{k}")
        def load(k: int) -> int:
            return k

        load(3)
        assert nearcache.default_client().url == daemon.url
        assert nearcache.default_client().get(ns, "3") == b"3"
        first = nearcache.bump(ns)
        assert nearcache.bump(ns) == first + 1
    finally:
        nearcache.default_client().close()
        nearcache.set_default_clients(None, None)


def test_a_hot_key_is_answered_from_the_near_tier_until_another_host_writes_it(
    make_daemon: Any, ns: str
) -> None:
    a, b = make_daemon(), make_daemon()  # two hosts on one Redis
    loads: list[int] = []
    with nearcache.Client(a.url, timeout=3) as ca, nearcache.Client(b.url, timeout=3) as cb:

        @nearcache.cached(ns=ns, key="{pid}", client=ca)
        def product(pid: int) -> dict[str, Any]:
            loads.append(pid)
            return {"id": pid, "v": 1}

        @nearcache.cached(ns=ns, key="m{pid}", client=ca)
        def model(pid: int) -> Product:
            return Product(id=pid, name="lamp", price=9.5)

        deadline = time.monotonic() + 5  # until a new daemon hears its own heartbeat
        while not ca.near_stats().serving:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, ca.near_stats()
            time.sleep(0.01)
        for _ in range(3):  # a load, then a read from the daemon that fills the near tier
            assert product(1) == {"id": 1, "v": 1}
            assert model(1) == Product(id=1, name="lamp", price=9.5)
            time.sleep(0.05)
        gets = ca.stats()["gets"]
        near_hits = ca.near_stats().hits  # type: ignore[union-attr]
        for _ in range(100):
            assert product(1) == {"id": 1, "v": 1}
            assert model(1) == Product(id=1, name="lamp", price=9.5)
        assert ca.near_stats().hits - near_hits == 200  # type: ignore[union-attr]
        assert ca.stats()["gets"] == gets, "the daemon was asked for a hot key"
        assert product.cache_info()["hits"] >= 100

        cb.set(ns, "1", b'{"id":1,"v":2}', 60)  # another host's write
        deadline = time.monotonic() + 2
        while product(1)["v"] != 2:
            assert time.monotonic() < deadline, "the near tier kept the old value"
            time.sleep(0.005)
        cb.set(ns, "1", b"not json", 60)  # what no codec reads: reloaded, not raised
        deadline = time.monotonic() + 2
        while product(1)["v"] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.005)
        assert loads == [1, 1]
        assert product.cache_info()["undecodable"] >= 1


def test_a_cached_none_is_answered_from_the_near_tier_until_another_host_writes_it(
    make_daemon: Any, ns: str
) -> None:
    a, b = make_daemon(), make_daemon()
    loads: list[int] = []
    with nearcache.Client(a.url, timeout=3) as ca, nearcache.Client(b.url, timeout=3) as cb:

        @nearcache.cached(ns=ns, key="{pid}", client=ca)
        def product(pid: int) -> dict[str, Any] | None:
            loads.append(pid)
            return None  # no such product: a negative entry

        deadline = time.monotonic() + 5
        while not ca.near_stats().serving:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, ca.near_stats()
            time.sleep(0.01)
        for _ in range(3):
            assert product(404) is None
            time.sleep(0.05)
        gets = ca.stats()["gets"]
        assert all(product(404) is None for _ in range(100))
        assert ca.stats()["gets"] == gets, "the daemon was asked for a known-absent key"
        assert loads == [404]
        cb.set(ns, "404", b'{"id":404}', 60)  # it exists now, written on another host
        deadline = time.monotonic() + 2
        while product(404) is None:
            assert time.monotonic() < deadline, "the near tier kept the absent key"
            time.sleep(0.005)
        assert product(404) == {"id": 404} and loads == [404]


def test_set_default_clients_refuses_a_client_in_the_wrong_slot(tmp_path: Any) -> None:
    url = f"ipc://{tmp_path}/none.sock"
    sync, aio = nearcache.Client(url), nearcache.AsyncClient(url)
    with pytest.raises(TypeError, match=r"expected a nearcache\.Client or None, got AsyncClient"):
        nearcache.set_default_clients(aio)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"expected a nearcache\.AsyncClient or None, got Client"):
        nearcache.set_default_clients(aclient=sync)  # type: ignore[arg-type]
    sync.close()
