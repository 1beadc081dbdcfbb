"""Every method against a real daemon and Redis, through both clients."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from conftest import open_client
from procs import Daemon, Redis

import nearcache
from nearcache import LeaseState, Source


def test_get_of_a_missing_key_is_none(c: Any, ns: str) -> None:
    assert c.get(ns, "absent") is None


def test_set_then_get_returns_the_value_from_l2_then_l1(kind: str, daemon: Daemon, ns: str) -> None:
    with open_client(kind, daemon.url, timeout=5, near_bytes=0) as c:  # the daemon's tiers only
        assert c.set(ns, "k", b"v1", ttl=60) == 60000
        r1 = c.get_ex(ns, "k")
        assert r1.value == b"v1"
        assert r1.source in (Source.L1, Source.L2)
        # L1 serves while the daemon is caught up (its heartbeat within 1 s);
        # on a loaded machine that may take a moment.
        end = time.monotonic() + 5
        while (r2 := c.get_ex(ns, "k")).source is not Source.L1:
            assert r2.value == b"v1"
            assert time.monotonic() < end, "never served from L1"
            time.sleep(0.05)
        assert r2.value == b"v1"
        assert 0 < r2.ttl_ms <= 60000


def test_ttl_is_seconds_or_a_timedelta_and_none_is_the_daemons_default(c: Any, ns: str) -> None:
    assert c.set(ns, "a", "v", timedelta(minutes=5)) == 300000
    assert c.set(ns, "b", "v", 1.5) == 1500
    assert c.set(ns, "c", "v") == 3600000  # default_ttl 1h
    assert c.set(ns, "d", "v", timedelta(days=40)) == 30 * 86400 * 1000  # capped at max_ttl


def test_binary_keys_and_values_round_trip(c: Any, ns: str) -> None:
    key = b"\x00:\xff\n key"
    value = bytes(range(256)) * 4
    c.set(ns, key, value)
    assert c.get(ns, key) == value
    assert c.get(ns, b"\x00:\xff\n kez") is None


def test_str_and_bytes_name_the_same_key(c: Any, ns: str) -> None:
    c.set(ns, "ключ", "значение")
    assert c.get(ns.encode(), "ключ".encode()) == "значение".encode()


def test_an_empty_value_is_found_not_none(c: Any, ns: str) -> None:
    c.set(ns, "empty", b"")
    assert c.get(ns, "empty") == b""


def test_delete_says_whether_the_key_existed(c: Any, ns: str) -> None:
    c.set(ns, "k", "v")
    assert c.delete(ns, "k") is True
    assert c.get(ns, "k") is None
    assert c.delete(ns, "k") is False


def test_mget_answers_in_order_with_none_for_absent_keys(c: Any, ns: str) -> None:
    c.set(ns, "1", "one")
    c.set(ns, "3", "three")
    assert c.mget(ns, ["1", "2", "3", "1"]) == [b"one", None, b"three", b"one"]


def test_mset_takes_a_mapping_or_tuples_with_their_own_ttls(c: Any, ns: str) -> None:
    assert c.mset(ns, {"a": "A", b"b": b"B"}, ttl=60) == 2
    assert c.mset(ns, [("c", "C"), ("d", "D", timedelta(seconds=30))]) == 2
    assert c.mget(ns, ["a", "b", "c", "d"]) == [b"A", b"B", b"C", b"D"]
    assert 0 < c.get_ex(ns, "d").ttl_ms <= 30000


def test_bump_returns_the_new_version_and_drops_the_namespace(c: Any, ns: str) -> None:
    c.set(ns, "k", "v")
    first = c.bump(ns)
    assert first > 0
    assert c.get(ns, "k") is None
    assert c.bump(ns) == first + 1


def test_stats_counts_the_requests(c: Any, ns: str) -> None:
    before = c.stats()
    c.get(ns, "x")
    after = c.stats()
    assert after["gets"] == before["gets"] + 1
    assert {"l1_hits", "l1_misses", "uptime_ms"} <= after.keys()


def test_ping_describes_the_daemon(c: Any) -> None:
    info = c.ping()
    assert info.redis_up and info.subscribed
    assert len(info.node_id) == 16
    assert info.max_request_size == 1115264
    assert (info.version, info.protocol_version) == (nearcache.__version__, 1)


def test_a_lease_is_granted_on_a_miss_and_its_set_stores(c: Any, ns: str) -> None:
    r = c.get_ex(ns, "k", lease=True)
    assert (r.value, r.lease) == (None, LeaseState.GRANTED)
    assert r.lease_token
    c.set(ns, "k", "loaded", 60, lease_token=r.lease_token)
    assert c.get(ns, "k") == b"loaded"


def test_a_set_with_a_used_lease_token_is_aborted_with_the_daemons_message(c: Any, ns: str) -> None:
    token = c.get_ex(ns, "k", lease=True).lease_token
    c.set(ns, "k", "first", lease_token=token)
    with pytest.raises(nearcache.Aborted, match="lease is no longer valid"):
        c.set(ns, "k", "second", lease_token=token)
    assert c.get(ns, "k") == b"first"


def test_a_delete_voids_a_lease_so_its_stale_set_is_refused(c: Any, ns: str) -> None:
    token = c.get_ex(ns, "k", lease=True).lease_token
    c.delete(ns, "k")
    with pytest.raises(nearcache.Aborted):
        c.set(ns, "k", "old data", lease_token=token)
    assert c.get(ns, "k") is None


def test_a_second_lease_get_waits_for_the_holders_value(c: Any, ns: str) -> None:
    token = c.get_ex(ns, "k", lease=True).lease_token
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(c.get_ex(ns, "k", lease=True)))
    waiter.start()
    time.sleep(0.2)
    c.set(ns, "k", "from the holder", lease_token=token)
    waiter.join(10)
    assert got[0].value == b"from the holder"
    assert got[0].lease is LeaseState.WAITED


def test_a_lease_get_while_the_holder_is_slow_answers_busy(c: Any, ns: str) -> None:
    c.get_ex(ns, "k", lease=True)
    r = c.get_ex(ns, "k", lease=True, timeout=0.3)
    assert (r.value, r.lease) == (None, LeaseState.BUSY)


def test_a_released_lease_can_be_taken_at_once(c: Any, ns: str) -> None:
    token = c.get_ex(ns, "k", lease=True).lease_token
    assert c.release(ns, "k", token) is True
    assert c.release(ns, "k", token) is False
    assert c.get_ex(ns, "k", lease=True, timeout=0.5).lease is LeaseState.GRANTED


def test_a_negative_entry_is_none_and_says_known_absent(c: Any, ns: str) -> None:
    c.set(ns, "gone", b"", 60, negative=True)
    assert c.get(ns, "gone") is None
    r = c.get_ex(ns, "gone", lease=True)
    assert r.negative and r.lease is LeaseState.NONE


def test_stale_while_revalidate_serves_the_old_value_and_grants_one_refresh(
    c: Any, ns: str
) -> None:
    c.set(ns, "k", "old", 0.2, stale_while_revalidate=30)
    time.sleep(0.35)
    first = c.get_ex(ns, "k", lease=True)
    assert (first.value, first.stale, first.lease) == (b"old", True, LeaseState.GRANTED)
    second = c.get_ex(ns, "k", lease=True)
    assert (second.value, second.stale, second.lease) == (b"old", True, LeaseState.NONE)


def test_a_sliding_get_keeps_the_key_alive(c: Any, ns: str, redis: Redis) -> None:
    c.set(ns, "s", "v", 1)
    assert c.get_ex(ns, "s", slide=timedelta(seconds=30)).value == b"v"
    time.sleep(1.3)  # past the 1 s the Set gave it
    assert c.get(ns, "s") == b"v"
    assert int(redis.cmd("PTTL", redis.data_key(ns, "s"))) > 20000


def test_one_sync_client_is_shared_by_threads(daemon: Any, ns: str) -> None:
    errors: list[BaseException] = []
    with nearcache.Client(daemon.url, timeout=5) as cl:

        def work(t: int) -> None:
            try:
                for i in range(100):
                    cl.set(ns, f"{t}-{i}", f"value {t} {i}")
                    assert cl.get(ns, f"{t}-{i}") == f"value {t} {i}".encode()
            except BaseException as e:
                errors.append(e)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(60)
        assert errors == []
        # 8 threads, and the near tier's report (once a second, from the
        # client's background thread) when it came while all 8 were busy
        assert 1 <= len(cl._idle) <= 9
