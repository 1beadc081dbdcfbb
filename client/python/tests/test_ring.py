"""The near tier without a daemon: the ring reader and the tier against ring
files that a Python writer (ringfile.py) publishes to, as tests/test_near.c
does for the C client."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ringfile import RingWriter

from nearcache import GetResult, LeaseState, Source
from nearcache._near import ENTRY_OVERHEAD, NearTier
from nearcache._ring import RingError, RingReader, fnv1a64, now_ms

NS, OTHER = b"ns", b"other"


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


# --- the reader -------------------------------------------------------------


def test_fnv1a64_is_the_daemons_hash() -> None:
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C
    assert fnv1a64(b"foobar") == 0x85944171F73967E8


def test_a_published_slot_reads_whole_and_a_rewritten_one_does_not(ring: RingWriter) -> None:
    rd = RingReader(str(ring.path))
    assert rd.epoch() == ring.epoch and rd.slots == 64 and rd.head() == 0
    seq = ring.key(NS, b"k")
    s = rd.slot(seq)
    assert s is not None and (s.kind, s.ns_hash, s.key_hash) == (1, fnv1a64(NS), fnv1a64(b"k"))
    ring.tear(seq)
    assert rd.slot(seq) is None, "a slot being rewritten (seq 0) must not be taken"
    for _ in range(64):
        ring.key(NS, b"x")
    assert rd.slot(seq) is None, "a slot overwritten by a later lap must not be taken"
    rd.close()


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"", "too short for a ring header"),
        (b"NOTARING" + bytes(400), "not a near ring"),
        (struct.pack("<8sIIQ", b"NCRING\0\0", 2, 32, 64) + bytes(2400), "another layout"),
        (struct.pack("<8sIIQ", b"NCRING\0\0", 1, 32, 100) + bytes(4000), "bad slot size or count"),
        (struct.pack("<8sIIQ", b"NCRING\0\0", 1, 32, 64) + bytes(300), "truncated"),
    ],
)
def test_a_file_that_is_not_a_ring_of_this_layout_is_refused_with_why(
    path: Path, content: bytes, why: str
) -> None:
    path.write_bytes(content)
    with pytest.raises(RingError, match=why):
        RingReader(str(path))


def test_a_missing_ring_is_refused_naming_the_file(path: Path) -> None:
    with pytest.raises(RingError, match=f"{path}: No such file"):
        RingReader(str(path))


# --- the tier ---------------------------------------------------------------


def test_a_filled_key_is_served_until_a_slot_names_it(ring: RingWriter, tier: NearTier) -> None:
    assert fill(tier, b"k", b"v1")
    assert fill(tier, b"k2", b"v2")
    assert tier.entry(NS, b"k") is not None and value(tier, b"k") == b"v1"
    ring.key(NS, b"k")
    assert value(tier, b"k") is None
    assert value(tier, b"k2") == b"v2", "a slot drops only the key it names"
    s = tier.stats()
    assert (s.hits, s.misses, s.entries, s.serving) == (3, 1, 1, True)


def test_a_fill_whose_key_changed_while_in_flight_is_refused(
    ring: RingWriter, tier: NearTier
) -> None:
    t = tier.ticket()
    ring.key(NS, b"k")  # the key changed after the Get was sent
    assert not tier.fill(t, NS, b"k", b"old", 0)
    assert tier.fill(t, NS, b"k2", b"v", 0), "another key's fill is kept"
    assert value(tier, b"k") is None
    t = tier.ticket()
    ring.bump(NS)
    assert not tier.fill(t, NS, b"k3", b"old", 0), "a bump since voids the namespace's fills"
    assert tier.fill(tier.ticket(), NS, b"k", b"new", 0)
    assert value(tier, b"k") == b"new"
    assert tier.stats().fills_refused == 2


def test_a_namespace_slot_drops_every_key_of_that_namespace_only(
    ring: RingWriter, tier: NearTier
) -> None:
    fill(tier, b"a", b"1")
    fill(tier, b"b", b"2")
    fill(tier, b"a", b"3", ns=OTHER)
    ring.bump(NS)
    assert value(tier, b"a") is None and value(tier, b"b") is None
    assert value(tier, b"a", ns=OTHER) == b"3"


def test_nothing_is_served_while_the_daemon_may_not_serve(ring: RingWriter, tier: NearTier) -> None:
    fill(tier, b"k", b"v")
    ring.serve_for(-0.01)
    assert value(tier, b"k") is None and not tier.stats().serving
    assert not fill(tier, b"k2", b"v"), "nor filled"
    ring.serve_for(10)
    assert value(tier, b"k") == b"v", "the entry is still coherent: no slot came"
    ring.stop()
    assert value(tier, b"k") is None and not tier.stats().serving


def test_a_flush_a_lap_and_a_new_epoch_each_empty_the_tier(
    path: Path, ring: RingWriter, tier: NearTier
) -> None:
    fill(tier, b"k", b"v")
    ring.flush()
    assert value(tier, b"k") is None
    assert tier.stats().flushes == 1

    fill(tier, b"k", b"v")
    for i in range(65):  # one more than the ring holds
        ring.key(OTHER, b"%d" % i)
    assert value(tier, b"k") is None
    assert tier.stats().laps == 1

    fill(tier, b"k", b"v")
    seq = ring.key(OTHER, b"x")
    ring.tear(seq)  # being rewritten as we read it: we were lapped
    assert value(tier, b"k") is None
    assert tier.stats().laps == 2

    fill(tier, b"k", b"v")
    struct.pack_into("<Q", ring.mm, 24, ring.epoch + 1)  # the daemon restarted in place
    assert value(tier, b"k") is None
    assert tier.stats().flushes == 2
    assert fill(tier, b"k", b"v"), "a new epoch clears the stamps: fills are kept again"


def test_a_head_that_goes_back_empties_the_tier(ring: RingWriter, tier: NearTier) -> None:
    ring.key(OTHER, b"x")
    fill(tier, b"k", b"v")
    struct.pack_into("<Q", ring.mm, 64, 0)  # as a torn read of the head could show
    assert value(tier, b"k") is None
    assert tier.stats().laps == 1


def test_a_replaced_ring_file_is_mapped_again(path: Path, ring: RingWriter) -> None:
    tier = NearTier(str(path), 1 << 20, 60_000)
    fill(tier, b"k", b"v")
    ring.stop()  # the daemon stops; a new one makes a new file
    fresh = RingWriter(path)
    time.sleep(0.11)  # the tier looks for a new file every 100 ms at most
    assert value(tier, b"k") is None
    assert tier.stats().serving
    assert fill(tier, b"k", b"v2") and value(tier, b"k") == b"v2"
    fresh.key(NS, b"k")
    assert value(tier, b"k") is None, "the new ring's slots are followed"
    tier.close()
    fresh.close()


def test_a_tier_without_its_ring_serves_nothing_says_why_and_attaches_later(
    path: Path,
) -> None:
    tier = NearTier(str(path), 1 << 20, 60_000)
    s = tier.stats()
    assert not s.serving and "No such file" in s.problem
    assert not fill(tier, b"k", b"v")
    w = RingWriter(path)
    time.sleep(0.11)
    assert tier.stats().serving and tier.stats().problem == ""
    assert fill(tier, b"k", b"v") and value(tier, b"k") == b"v"
    tier.close()
    w.close()


def test_an_entry_lives_no_longer_than_its_ttl_or_the_max(ring: RingWriter) -> None:
    tier = NearTier(str(ring.path), 1 << 20, 400)
    t0 = time.monotonic()
    fill(tier, b"a", b"1", ttl_ms=100)
    fill(tier, b"b", b"2", ttl_ms=0)  # no TTL in Redis: the tier's max
    hit = tier.result(NS, b"a")
    assert hit is not None and 0 < hit.ttl_ms <= 100
    time.sleep(0.15)
    assert value(tier, b"a") is None
    if time.monotonic() - t0 < 0.35:  # (a loaded machine may have slept longer)
        assert value(tier, b"b") == b"2"
    time.sleep(max(0.0, t0 + 0.45 - time.monotonic()))
    assert value(tier, b"b") is None
    tier.close()


def test_an_entrys_ttl_counts_from_its_request_not_its_reply(tier: NearTier) -> None:
    t = tier.ticket()
    time.sleep(0.08)  # the reply took 80 ms; Redis read "100 ms left" before it left
    tier.offer(t, NS, b"slow", GetResult(b"v", Source.L2, 100))
    tier.offer(t, NS, b"gone", GetResult(None, Source.L2, 100, negative=True))
    if now_ms() - t.at_ms < 95:  # (unless the machine slept past the TTL already)
        assert value(tier, b"slow") == b"v" and tier.result(NS, b"gone") is not None
    time.sleep(max(0.0, (t.at_ms + 130 - now_ms()) / 1000))
    assert tier.result(NS, b"slow") is None, "a value outlived its TTL by the reply's latency"
    assert tier.result(NS, b"gone") is None, "known absent past its TTL"


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


def test_own_writes_drop_their_entries(tier: NearTier) -> None:
    fill(tier, b"a", b"1")
    fill(tier, b"b", b"2")
    fill(tier, b"c", b"3")
    tier.drop(NS, b"a")
    tier.drop_many(NS, [b"b"])
    assert value(tier, b"a") is None and value(tier, b"b") is None
    tier.drop_ns(NS)
    assert value(tier, b"c") is None


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
        tier.offer(tier.ticket(), NS, b"k", r)
        assert tier.result(NS, b"k") is None, r
    tier.offer(tier.ticket(), NS, b"k", GetResult(b"v", Source.L1, ttl_ms=5000))
    hit = tier.result(NS, b"k")
    assert hit is not None and hit.value == b"v" and hit.source is Source.NEAR
    assert 0 < hit.ttl_ms <= 5000 and not hit.negative
    tier.offer(tier.ticket(), NS, b"gone", GetResult(None, Source.L2, 5000, negative=True))
    hit = tier.result(NS, b"gone")
    assert hit is not None and hit.value is None and hit.negative and hit.source is Source.NEAR
    ring.key(NS, b"gone")  # a write of it anywhere
    assert tier.result(NS, b"gone") is None


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
