"""The Python near tier without a daemon, beyond what every reader must do
(tests/conformance/ring.json, run by test_ringcases.py): its byte budget
(an honest bound on its memory), forks, and the clients' Gets meeting it
(``_nearcalls``)."""

from __future__ import annotations

import gc
import os
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest
from ringfile import RingWriter

from nearcache import GetResult, LeaseState, Source
from nearcache._near import ENTRY_OVERHEAD, NearTier
from nearcache._nearcalls import near_result, offer

NS = b"ns"


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "nc.sock.ring"


@pytest.fixture
def ring(path: Path) -> Iterator[RingWriter]:
    w = RingWriter(path)
    yield w
    w.close()


@pytest.fixture
def tier(ring: RingWriter) -> Iterator[NearTier]:
    t = NearTier(str(ring.path), 1 << 20, 60_000)
    yield t
    t.close()


def fill(t: NearTier, key: bytes, value: bytes, ns: bytes = NS, ttl_ms: int = 0) -> bool:
    return t.fill(t.ticket(), ns, key, value, ttl_ms)


def value(t: NearTier, key: bytes, ns: bytes = NS) -> bytes | None:
    e = t.entry(ns, key)
    return None if e is None else e.value


def test_the_tier_keeps_within_its_bytes_by_dropping_the_least_recent(ring: RingWriter) -> None:
    one = len(NS) + 2 + 100 + ENTRY_OVERHEAD
    tier = NearTier(str(ring.path), 3 * one, 60_000)
    for k in (b"k1", b"k2", b"k3"):
        assert fill(tier, k, b"x" * 100)
    assert value(tier, b"k1") is not None  # k2 is now the least recent
    fill(tier, b"k4", b"x" * 100)
    assert value(tier, b"k2") is None
    assert all(value(tier, k) is not None for k in (b"k1", b"k3", b"k4"))
    s = tier.stats()
    assert (s.entries, s.bytes, s.evictions) == (3, 3 * one, 1)
    assert not fill(tier, b"big", b"x" * (3 * one)), "larger than the tier: not kept"
    tier.close()


def test_only_plain_values_and_negative_entries_fill_the_tier(
    ring: RingWriter, tier: NearTier
) -> None:
    for r in (
        GetResult(None, Source.L2),
        GetResult(b"v", Source.L2, stale=True),
        GetResult(None, Source.L1, negative=True, stale=True),
        GetResult(None, Source.L1, negative=True),  # no time left given: not kept
        GetResult(b"v", Source.L2, lease=LeaseState.WAITED),
        GetResult(None, Source.L2, lease=LeaseState.GRANTED, lease_token=b"t"),
    ):
        offer(tier, tier.ticket(), NS, b"k", r)
        assert near_result(tier, NS, b"k") is None, r
    offer(tier, tier.ticket(), NS, b"k", GetResult(b"v", Source.L1, ttl_ms=5000))
    hit = near_result(tier, NS, b"k")
    assert hit is not None and hit.value == b"v" and hit.source is Source.NEAR
    assert 0 < hit.ttl_ms <= 5000 and not hit.negative
    offer(tier, tier.ticket(), NS, b"gone", GetResult(None, Source.L2, 5000, negative=True))
    hit = near_result(tier, NS, b"gone")
    assert hit is not None and hit.value is None and hit.negative and hit.source is Source.NEAR
    ring.key(NS, b"gone")  # a write of it anywhere
    assert near_result(tier, NS, b"gone") is None


def test_a_forked_child_starts_with_an_empty_tier_of_its_own(
    ring: RingWriter, tier: NearTier
) -> None:
    fill(tier, b"k", b"v")
    pid = os.fork()
    if pid == 0:  # the child: the parent's entries are gone, the ring still followed
        code = 0
        try:
            if value(tier, b"k") is not None:
                code = 1
            elif not fill(tier, b"k", b"child") or value(tier, b"k") != b"child":
                code = 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert value(tier, b"k") == b"v", "the parent keeps its own"


@pytest.mark.parametrize("size", [100, 16384, 1 << 20])
def test_live_memory_stays_within_near_bytes(ring: RingWriter, size: int) -> None:
    """What the tier holds after a full collection, counted by tracemalloc
    (its dicts, entries and bytes objects, its stamps), is at most 1.1
    times near_bytes, for small and for large values."""
    budget = 4 << 20
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tier = NearTier(str(ring.path), budget, 60_000)
        for i in range(3 * budget // (size + ENTRY_OVERHEAD)):
            ns = bytes(bytearray(b"users"))  # a new object per call, as from a str namespace
            assert fill(tier, b"k%07d" % i, os.urandom(size), ns=ns)
        gc.collect()
        live = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    s = tier.stats()
    assert s.evictions > 0 and s.bytes <= budget
    assert live <= 1.1 * budget, f"{live} bytes live for near_bytes {budget} ({s.entries} entries)"
    tier.close()
