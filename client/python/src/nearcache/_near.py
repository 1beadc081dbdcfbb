"""The near tier: hot values kept in this process, bounded in bytes (LRU),
and kept coherent by the daemon's invalidation ring (``_ring``), as
docs/protocol.md ("The reader") says; it passes tests/conformance/ring.json.
It takes keys and bytes: the clients' Gets and writes meet it in
``_nearcalls``.

Before every lookup the tier applies the ring's slots since its cursor; it
serves only while the daemon says its own L1 may serve (``serving_until``),
and empties itself on a new epoch, a flush or when lapped. A fill carries a
ticket taken before its request was sent and is refused when a slot for its
key (or namespace), or an emptying, came since. The stamps are two
direct-mapped lists (the spec's STAMPS, indexed by ``key_mix``) of the last
slot that named a key (or a namespace) hashing there; a collision may
refuse another key's fill, never allow a stale one.

Thread-safe with one lock (under the GIL a lock per shard buys nothing).
Fork-safe: a child process starts with an empty tier, a fresh lock and its
own mapping of the ring.
"""

from __future__ import annotations

import enum
import functools
import os
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ._core import TTL, to_ms
from ._ring import (
    EPOCH,
    GEN,
    HEAD,
    KIND_NAMESPACE,
    RECHECK_MS,
    STAMPS,
    UNTIL,
    RingError,
    RingReader,
    default_path,
    fnv1a64,
    key_mix,
    now_ms,
)

__all__ = [
    "DEFAULT_NEAR_BYTES",
    "DEFAULT_NEAR_MAX_TTL",
    "Keep",
    "NearStats",
    "NearTier",
    "keep_of",
    "make_tier",
]

#: The near tier's default size: 64 MiB of this process's memory.
DEFAULT_NEAR_BYTES = 64 << 20
#: How long a near entry lives at most, in seconds, by default.
DEFAULT_NEAR_MAX_TTL = 60.0

#: What each entry is charged beyond its namespace, key and value bytes:
#: the objects that hold it (its key tuple, the bytes objects' headers, the
#: _Entry and its ints, its slots in the dicts), as tracemalloc counts them
#: (test_ring.py checks that near_bytes bounds the tier's memory).
ENTRY_OVERHEAD = 700
_monotonic_ns = time.monotonic_ns  # CLOCK_MONOTONIC on Linux, as now_ms()


@dataclass(frozen=True)
class NearStats:
    """The near tier's counters. ``flushes``: times it was emptied because
    the daemon emptied its L1, restarted or stopped, or an invalidation of
    this process's own was kept; ``laps``: because the
    ring overtook it; ``fills_refused``: replies not kept because the key
    changed while they were in flight; ``serving``: whether it may serve
    now; ``problem``: why it cannot map the ring, if it cannot."""

    hits: int
    misses: int
    entries: int
    bytes: int
    evictions: int
    flushes: int
    laps: int
    fills_refused: int
    serving: bool
    problem: str


class Ticket(NamedTuple):
    """The tier's state when a request was sent: what its fill must show."""

    flushes: int
    cursor: int
    at_ms: int  #: when it was taken: a reply's TTL counts from then


class _Entry:
    """One key's value, or None: known absent (a negative entry); ``nsh``
    its namespace's hash, ``mix`` its key stamp's ``key_mix``."""

    __slots__ = ("expires_at", "mix", "nsh", "value")

    def __init__(self, value: bytes | None, expires_at: int, nsh: int, mix: int) -> None:
        self.value = value
        self.expires_at = expires_at
        self.nsh = nsh
        self.mix = mix


def _charge(k: tuple[bytes, bytes], value: bytes | None) -> int:
    return len(k[0]) + len(k[1]) + (0 if value is None else len(value)) + ENTRY_OVERHEAD


class Keep(enum.Enum):
    """What a Get's reply may put in the tier."""

    NOTHING = 0
    VALUE = 1
    NEGATIVE = 2


def keep_of(found: bool, negative: bool, stale: bool, leased: bool, ttl_ms: int) -> Keep:
    """Returns what a Get's reply may put in the tier (docs/protocol.md,
    "The reader"; ring.json's ``replies``): a value (``found``) that is not
    stale and carries no lease state; a negative entry likewise, with its
    time left (``ttl_ms`` > 0); else nothing."""
    if stale or leased:
        return Keep.NOTHING
    if found:
        return Keep.VALUE
    return Keep.NEGATIVE if negative and ttl_ms > 0 else Keep.NOTHING


@functools.lru_cache(maxsize=4096)
def _ns_hash(ns: bytes) -> int:
    return fnv1a64(ns)


_tiers: weakref.WeakSet[NearTier] = weakref.WeakSet()
#: Forks of this process (by os.fork) so far: a tier made before the last
#: one is the parent's until it resets itself.
_forks = [0]


def _after_fork_in_child() -> None:
    _forks[0] += 1
    for t in list(_tiers):
        t._lock = threading.Lock()  # a thread of the parent may have held it


os.register_at_fork(after_in_child=_after_fork_in_child)


class NearTier:
    """At most ``max_bytes`` of values, each kept at most ``max_ttl_ms``,
    fed by the ring at ``ring_path``. A ring that cannot be mapped now is
    looked for again later (every 100 ms at most); until then the tier
    serves nothing and :meth:`stats` says why."""

    def __init__(self, ring_path: str, max_bytes: int, max_ttl_ms: int) -> None:
        self.ring_path = ring_path
        self.max_bytes = max_bytes
        self.max_ttl_ms = max_ttl_ms
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._fork = _forks[0]
        self._entries: OrderedDict[tuple[bytes, bytes], _Entry] = OrderedDict()
        # For slots: an entry's mix -> its key (a list of keys in the rare
        # case that two share one), and a namespace's hash -> its keys.
        self._by_mix: dict[int, tuple[bytes, bytes] | list[tuple[bytes, bytes]]] = {}
        self._by_ns: dict[int, set[tuple[bytes, bytes]]] = {}
        self._bytes = 0
        self._rd: RingReader | None = None
        self._epoch = self._gen = self._cursor = self._flushes = 0
        self._seen_ring = False  # a ring was applied before: a new one counts as a flush
        self._recheck_at = 0
        self._key_stamp = [0] * STAMPS
        self._ns_stamp = [0] * STAMPS
        self._problem = ""
        self._closed = False
        self.hits = self.misses = self.evictions = self.nflushes = self.laps = self.refused = 0
        _tiers.add(self)
        with self._lock:
            self._attach_locked(now_ms())

    # --- ring state (under the lock) ----------------------------------------

    def _empty_locked(self) -> None:
        self._entries.clear()
        self._by_mix.clear()
        self._by_ns.clear()
        self._bytes = 0

    def _flush_locked(self, head: int) -> None:
        """Forgets everything: after a flush, a lap or a new epoch."""
        self._empty_locked()
        self._flushes += 1
        self._cursor = head

    def _remove_locked(self, k: tuple[bytes, bytes]) -> None:
        e = self._entries.pop(k, None)
        if e is None:
            return
        self._bytes -= _charge(k, e.value)
        ks = self._by_mix.pop(e.mix)
        if isinstance(ks, list):
            ks.remove(k)
            self._by_mix[e.mix] = ks[0] if len(ks) == 1 else ks
        in_ns = self._by_ns[e.nsh]
        in_ns.discard(k)
        if not in_ns:
            del self._by_ns[e.nsh]

    def _add_locked(self, k: tuple[bytes, bytes], e: _Entry) -> None:
        self._entries[k] = e
        self._bytes += _charge(k, e.value)
        ks = self._by_mix.setdefault(e.mix, k)
        if ks is not k:
            self._by_mix[e.mix] = [*ks, k] if isinstance(ks, list) else [ks, k]
        self._by_ns.setdefault(e.nsh, set()).add(k)

    def _drop_hashes_locked(self, nsh: int, kh: int) -> None:
        """Drops the entries of a key slot: every entry with its mix (which
        may drop another key's too: dropping is always safe)."""
        ks = self._by_mix.get(key_mix(nsh, kh))
        for k in ks if isinstance(ks, list) else () if ks is None else (ks,):
            self._remove_locked(k)

    def _drop_ns_hash_locked(self, nsh: int) -> None:
        for k in list(self._by_ns.get(nsh, ())):  # (not a walk of the whole tier)
            self._remove_locked(k)

    def _attach_locked(self, now: int) -> None:
        """Maps the ring when none is mapped, or again when the daemon made
        a new one; at most every RECHECK_MS."""
        rd = self._rd
        if self._closed or now < self._recheck_at or (rd is not None and not rd.replaced()):
            return
        self._recheck_at = now + RECHECK_MS
        try:
            fresh = RingReader(self.ring_path)
        except RingError as e:
            self._problem = str(e)
            return
        if rd is not None:
            rd.close()  # every read of it is under this lock: no one else uses it
        self._problem = ""
        self._epoch = 0  # _catch_up_locked() sees a new epoch
        self._rd = fresh

    def _catch_up_locked(self, now: int) -> bool:
        """Applies the ring up to its head: a new epoch or flush generation,
        or being lapped, empties the tier. Returns whether it may serve."""
        if self._pid != os.getpid() or self._fork != _forks[0]:
            self._forked_locked()
        rd = self._rd
        epoch = until = 0
        if rd is not None:
            epoch, until, gen, head = rd.header()
        if epoch == 0 or until < now:
            self._attach_locked(now)  # the daemon stopped or stalled: a new ring?
            rd = self._rd
            if rd is None:
                return False
            epoch, until, gen, head = rd.header()
            if epoch == 0 or until < now:
                return False
        assert rd is not None
        if epoch != self._epoch or gen != self._gen:
            if self._seen_ring:
                self.nflushes += 1
            self._seen_ring = True
            self._flush_locked(head)
            if epoch != self._epoch:  # a new ring counts from 1 again
                self._key_stamp = [0] * STAMPS
                self._ns_stamp = [0] * STAMPS
            self._epoch, self._gen = epoch, gen
        elif head - self._cursor > rd.slots or head < self._cursor:
            # Lapped (or a head that went back: a torn read of it, see _ring).
            self.laps += 1
            self._flush_locked(head)
        seq = self._cursor + 1
        while seq <= head:
            sl = rd.slot(seq)
            if sl is None:  # overwritten while we read: lapped
                self.laps += 1
                self._flush_locked(head)
                break
            if sl.kind == KIND_NAMESPACE:
                self._drop_ns_hash_locked(sl.ns_hash)
                self._ns_stamp[sl.ns_hash % STAMPS] = seq
            else:
                self._drop_hashes_locked(sl.ns_hash, sl.key_hash)
                self._key_stamp[key_mix(sl.ns_hash, sl.key_hash) % STAMPS] = seq
            seq += 1
        self._cursor = head
        return True

    def _forked_locked(self) -> None:
        """In a forked child: empty, and map the ring afresh."""
        self._pid = os.getpid()
        self._fork = _forks[0]
        self._empty_locked()
        if self._rd is not None:
            self._rd.close()
        self._rd = None
        self._epoch = self._gen = self._cursor = 0
        self._seen_ring = False
        self._recheck_at = 0
        self.hits = self.misses = self.evictions = self.nflushes = self.laps = self.refused = 0
        self._attach_locked(now_ms())

    # --- the API ------------------------------------------------------------

    def entry(self, ns: bytes, key: bytes, now: int = 0) -> _Entry | None:
        """Looks (ns, key) up at ``now`` (``CLOCK_MONOTONIC`` ms, default
        the time of the call). Returns its entry (``value``,
        ``expires_at``), or None on a miss or when the tier may not serve
        now. The hot path of every hit: it applies the ring first only if
        the ring moved, reading serving_until before the head."""
        now = now or _monotonic_ns() // 1_000_000  # now_ms(), inlined
        lock = self._lock
        lock.acquire()  # (cheaper than `with` here, where it counts)
        try:
            rd = self._rd
            if (
                rd is not None
                and self._fork == _forks[0]
                and rd.swords[UNTIL] >= now
                and rd.words[HEAD] == self._cursor
                and rd.words[GEN] == self._gen
                and rd.words[EPOCH] == self._epoch
            ) or self._catch_up_locked(now):
                k = (ns, key)
                e = self._entries.get(k)
                if e is not None:
                    if e.expires_at > now:
                        self._entries.move_to_end(k)
                        self.hits += 1
                        return e
                    self._remove_locked(k)
            self.misses += 1
            return None
        finally:
            lock.release()

    def ticket(self) -> Ticket:
        """The ticket to fill with: take it before sending the request."""
        now = now_ms()
        with self._lock:
            self._catch_up_locked(now)
            return Ticket(self._flushes, self._cursor, now)

    def fill(self, t: Ticket, ns: bytes, key: bytes, value: bytes | None, ttl_ms: int) -> bool:
        """Keeps value (None: known absent, the daemon's negative entry) for
        at most ``ttl_ms`` (0: no TTL) and the tier's max TTL, unless the
        ticket is void; returns whether it was kept."""
        now = now_ms()
        life = self.max_ttl_ms if ttl_ms <= 0 else min(ttl_ms, self.max_ttl_ms)
        k = (ns, key)
        if life <= 0 or _charge(k, value) > self.max_bytes:
            return False
        nsh = _ns_hash(ns)
        mix = key_mix(nsh, fnv1a64(key))
        with self._lock:
            ok = (
                self._catch_up_locked(now)
                and t.flushes == self._flushes
                and self._key_stamp[mix % STAMPS] <= t.cursor
                and self._ns_stamp[nsh % STAMPS] <= t.cursor
            )
            if not ok:
                self.refused += 1
                return False
            self._remove_locked(k)
            # from the request: Redis's TTL was read before the reply came
            self._add_locked(k, _Entry(value, t.at_ms + life, nsh, mix))
            while self._bytes > self.max_bytes and self._entries:
                self._remove_locked(next(iter(self._entries)))
                self.evictions += 1
            return True

    def drop(self, ns: bytes, key: bytes) -> None:
        """Drops (ns, key): before this process's own write of it."""
        with self._lock:
            self._remove_locked((ns, key))

    def drop_many(self, ns: bytes, keys: Sequence[bytes]) -> None:
        """Drops every (ns, key) of ``keys``: before an MSet."""
        with self._lock:
            for key in keys:
                self._remove_locked((ns, key))

    def drop_ns(self, ns: bytes) -> None:
        """Drops every key of ``ns``: before this process's own bump."""
        with self._lock:
            self._drop_ns_hash_locked(_ns_hash(ns))

    def forget(self) -> None:
        """Empties the tier and refuses every fill ticketed before: when
        this process's own invalidation is kept undelivered (rule R2), no
        ring slot will refuse a reply in flight that holds what it
        replaced."""
        with self._lock:
            self._flush_locked(self._cursor)
            self.nflushes += 1

    def stats(self) -> NearStats:
        """Returns the tier's counters (applying the ring first)."""
        with self._lock:
            serving = self._catch_up_locked(now_ms())
            return NearStats(
                hits=self.hits,
                misses=self.misses,
                entries=len(self._entries),
                bytes=self._bytes,
                evictions=self.evictions,
                flushes=self.nflushes,
                laps=self.laps,
                fills_refused=self.refused,
                serving=serving,
                problem=self._problem,
            )

    def close(self) -> None:
        """Empties the tier and unmaps the ring."""
        with self._lock:
            self._closed = True
            self._empty_locked()
            if self._rd is not None and self._pid == os.getpid():
                self._rd.close()
            self._rd = None


def make_tier(
    url: str, near_bytes: int, near_max_ttl: TTL, near_ring: str | None
) -> NearTier | None:
    """Returns the near tier a client asked for, or None for
    ``near_bytes=0``. Raises ValueError for a negative size or a max TTL
    that is not positive."""
    if isinstance(near_bytes, bool) or not isinstance(near_bytes, int) or near_bytes < 0:
        raise ValueError(f"near_bytes must be a whole number of bytes >= 0, got {near_bytes!r}")
    if near_bytes == 0:
        return None
    ttl_ms = to_ms(near_max_ttl, "near_max_ttl")
    if ttl_ms <= 0:
        raise ValueError(f"near_max_ttl must be positive, got {near_max_ttl!r}")
    return NearTier(near_ring or default_path(url), near_bytes, ttl_ms)
