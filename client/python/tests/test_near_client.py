"""The clients' near-tier hooks against a real daemon, with a ring written
here (ringfile.py) instead of the daemon's: so the tests decide what the
ring says, and run against any nearcached, with a ring of its own or not."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import open_client
from procs import Daemon
from ringfile import RingWriter

import nearcache
from nearcache import NearStats, Source


@pytest.fixture
def ring(tmp_path: Path) -> Iterator[RingWriter]:
    w = RingWriter(tmp_path / "test.ring")
    yield w
    w.close()


@pytest.fixture
def nc(kind: str, daemon: Daemon, ring: RingWriter) -> Iterator[Any]:
    """A client (each kind in turn) whose near tier follows ``ring``."""
    with open_client(kind, daemon.url, timeout=5, near_ring=str(ring.path)) as c:
        yield c


@pytest.fixture
def other(daemon: Daemon) -> Iterator[nearcache.Client]:
    """Another process's writes, as far as the ring written here knows: none."""
    with nearcache.Client(daemon.url, timeout=5, near_bytes=0) as c:
        yield c


def stats(cl: Any) -> NearStats:
    s: NearStats | None = getattr(cl, "inner", cl).near_stats()
    assert s is not None
    return s


def test_a_read_fills_the_near_tier_which_answers_until_the_ring_names_the_key(
    nc: Any, other: nearcache.Client, ring: RingWriter, ns: str
) -> None:
    other.set(ns, "k", "v1", 60)
    assert nc.get_ex(ns, "k").source in (Source.L1, Source.L2)
    r = nc.get_ex(ns, "k")
    assert (r.value, r.source) == (b"v1", Source.NEAR) and 0 < r.ttl_ms <= 60000
    other.set(ns, "k", "v2", 60)
    assert nc.get(ns, "k") == b"v1", "only the ring tells the near tier (none came here)"
    ring.key(ns.encode(), b"k")
    assert nc.get(ns, "k") == b"v2"
    assert nc.get_ex(ns, "k").source is Source.NEAR
    s = stats(nc)
    assert s.hits >= 3 and s.serving and s.entries == 1, s


def test_own_writes_drop_their_entries_before_they_are_sent(nc: Any, ns: str) -> None:
    nc.mset(ns, {"a": "1", "b": "2", "c": "3"}, 60)
    assert nc.mget(ns, ["a", "b", "c"]) == [b"1", b"2", b"3"]
    assert [r.source for r in nc.mget_ex(ns, ["a", "b", "c"])] == [Source.NEAR] * 3
    nc.set(ns, "a", "1b", 60)
    assert nc.get(ns, "a") == b"1b"
    nc.mset(ns, [("b", "2b")], 60)
    assert nc.get(ns, "b") == b"2b"
    nc.delete(ns, "c")
    assert nc.get(ns, "c") is None
    nc.get(ns, "a")
    assert nc.get_ex(ns, "a").source is Source.NEAR
    nc.bump(ns)
    assert nc.get(ns, "a") is None and nc.get(ns, "b") is None


def test_a_bump_in_the_ring_drops_the_namespace_and_a_flush_everything(
    nc: Any, other: nearcache.Client, ring: RingWriter, ns: str
) -> None:
    other.mset(ns, {"a": "1"}, 60)
    other.mset(ns + "x", {"a": "2"}, 60)
    nc.mget(ns, ["a"])
    nc.mget(ns + "x", ["a"])
    ring.bump(ns.encode())
    assert nc.get_ex(ns, "a").source is not Source.NEAR
    assert nc.get_ex(ns + "x", "a").source is Source.NEAR
    ring.flush()
    assert nc.get_ex(ns + "x", "a").source is not Source.NEAR
    assert stats(nc).flushes == 1


def test_nothing_is_answered_from_the_near_tier_while_the_ring_says_not_serving(
    nc: Any, other: nearcache.Client, ring: RingWriter, ns: str
) -> None:
    other.set(ns, "k", "v", 60)
    nc.get(ns, "k")
    assert nc.get_ex(ns, "k").source is Source.NEAR
    ring.serve_for(-0.01)
    assert nc.get_ex(ns, "k").source is not Source.NEAR
    assert not stats(nc).serving


def test_a_negative_entry_is_kept_as_known_absent_until_the_ring_names_it(
    nc: Any, other: nearcache.Client, ring: RingWriter, ns: str
) -> None:
    other.set(ns, "neg", "", 60, negative=True)
    assert nc.get_ex(ns, "neg").negative
    r = nc.get_ex(ns, "neg")
    assert (r.value, r.negative, r.source) == (None, True, Source.NEAR) and 0 < r.ttl_ms <= 60000
    assert nc.get(ns, "neg") is None
    assert nc.mget_ex(ns, ["neg"])[0].source is Source.NEAR
    other.set(ns, "neg", "here", 60)
    ring.key(ns.encode(), b"neg")
    assert nc.get(ns, "neg") == b"here"
    assert nc.get(ns, "plain-miss") is None
    assert nc.get_ex(ns, "plain-miss").source is not Source.NEAR, "a plain miss was kept"


def test_stale_lease_and_sliding_replies_are_not_kept(
    nc: Any, other: nearcache.Client, ns: str
) -> None:
    r = nc.get_ex(ns, "absent", lease=True)
    assert r.lease is nearcache.LeaseState.GRANTED
    nc.set(ns, "absent", "v", 60, lease_token=r.lease_token)
    other.set(ns, "slide", "v", 60)
    assert all(nc.get_ex(ns, "slide", slide=60).source is not Source.NEAR for _ in range(3))
    assert stats(nc).entries == 0
