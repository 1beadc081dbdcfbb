"""The decorator's read-through logic, without I/O: one generator that
yields what to do (read the cache, call the function, store, release a
lease, refresh in the background) and is sent what came of it. The sync and
asyncio wrappers in ``_cached`` only carry these steps out.

A read asks for the key with a lease. A hit (or a known-absent entry, which
is None) is returned. A miss that is granted the lease calls the function
and stores its result with the lease token; a miss while another caller
holds the lease waits in the daemon for that caller's value, and only if it
does not come in time (LEASE_BUSY) calls the function itself without
storing. A stale value (stale-while-revalidate) is returned at once, and
the one caller granted the lease refreshes it in the background. When the
cache fails, the function is called directly (fail-open) unless the
decorator was told to raise.
"""

from __future__ import annotations

import logging
import random
import time
import warnings
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Any

from ._codec import Serializer
from ._core import GetResult, LeaseState
from .errors import Aborted, Error

__all__ = [
    "CacheWarning",
    "Get",
    "Load",
    "NotCacheable",
    "Policy",
    "Refresh",
    "Release",
    "Store",
    "read_through",
]

log = logging.getLogger("nearcache")


class CacheWarning(RuntimeWarning):
    """A value the decorator could not cache (too large, not serializable)."""


class NotCacheable(Exception):
    """Raised by a serializer for a value that must not be stored (an error
    response, say): the value is returned, uncached, without a warning."""


@dataclass
class Policy:
    """How one decorated function uses the cache."""

    ns: bytes
    ttl_ms: int
    negative_ttl_ms: int
    codec: Serializer
    jitter: float = 0.0
    slide: bool = False
    swr_ms: int | None = None
    lease: bool = True
    lease_ttl_ms: int | None = None
    timeout: float | None = None
    cache_read: bool = True
    cache_write: bool = True
    cache_none: bool = True
    fail_open: bool = True
    max_value_size: int = 1 << 20
    strict: bool = False  #: invalidate()/bump() raise when the daemon is unreachable
    name: str = ""
    #: Whether a hit may come from the client's near tier (a sliding read
    #: must reach the daemon, which moves the TTL).
    near_reads: bool = field(init=False)
    #: The codec's loads, or a quicker twin of it (JsonCodec.plain_loads).
    loads: Callable[[bytes], Any] = field(init=False)
    stats: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "hits",
                "misses",
                "loads",
                "stale",
                "busy",
                "aborted",
                "errors",
                "too_large",
                "unserializable",
                "undecodable",
            ),
            0,
        )
    )
    _last_log: float = 0.0

    #: The Get's lease_ttl and slide, in seconds (None: not given).
    lease_ttl: float | None = field(init=False)
    slide_ttl: float | None = field(init=False)

    def __post_init__(self) -> None:
        self.near_reads = self.cache_read and not self.slide
        self.lease_ttl = None if self.lease_ttl_ms is None else self.lease_ttl_ms / 1000
        self.slide_ttl = self.ttl_ms / 1000 if self.slide else None
        plain = getattr(self.codec, "plain_loads", None)
        self.loads = plain() if plain is not None else self.codec.loads

    def ttl(self, base_ms: int) -> int:
        """Returns ``base_ms`` moved by up to ±jitter of itself, at least 1."""
        if self.jitter <= 0:
            return base_ms
        return max(1, round(base_ms * (1 + random.uniform(-self.jitter, self.jitter))))

    def failed(self, what: str, e: Error) -> None:
        """Counts a cache failure and logs it (at most every 5 s); raises it
        unless the policy is fail-open."""
        self.stats["errors"] += 1
        if not self.fail_open:
            raise e
        now = time.monotonic()
        if now - self._last_log >= 5.0:
            self._last_log = now
            log.warning("nearcache %s failed for %s (%r); calling the function", what, self.name, e)


@dataclass
class Get:
    key: bytes


@dataclass
class Load:
    pass


@dataclass
class Store:
    key: bytes
    payload: bytes | None  #: None: a negative entry
    ttl_ms: int
    token: bytes | None


@dataclass
class Release:
    key: bytes
    token: bytes


@dataclass
class Refresh:
    key: bytes
    token: bytes


Op = Get | Load | Store | Release | Refresh
Flow = Generator[Op, Any, Any]
MISSING: Any = object()  #: no value: one that does not decode, or no near-tier hit


def read_through(p: Policy, key: bytes) -> Flow:
    """The steps of one call of the decorated function; returns its value."""
    token: bytes | None = None
    if p.cache_read:
        try:
            r: GetResult = yield Get(key)
        except Error as e:
            p.failed("read", e)
            return (yield Load())
        if r.negative:
            p.stats["hits"] += 1
            return None
        if r.value is not None:
            value = _decode(p, r.value)
            if value is not MISSING:
                p.stats["hits"] += 1
                if r.stale:
                    p.stats["stale"] += 1
                    if r.lease is LeaseState.GRANTED:
                        yield Refresh(key, r.lease_token)
                return value
        if r.lease is LeaseState.BUSY:
            p.stats["busy"] += 1  # its holder will store it; we only load
            p.stats["loads"] += 1
            return (yield Load())
        if r.lease is LeaseState.GRANTED:
            token = r.lease_token
        p.stats["misses"] += 1
    return (yield from load_and_store(p, key, token))


def load_and_store(p: Policy, key: bytes, token: bytes | None) -> Flow:
    """Calls the function, stores what it returned (with the lease ``token``
    when there is one) and returns it. Releases the lease if it raises."""
    try:
        value = yield Load()
    except BaseException:
        if token:
            yield from _release(p, key, token)
        raise
    p.stats["loads"] += 1
    store = _store_op(p, key, value, token) if p.cache_write else None
    if store is None:
        if token:
            yield from _release(p, key, token)
        return value
    try:
        yield store
    except Aborted:
        p.stats["aborted"] += 1  # written or deleted meanwhile: not ours to store
    except Error as e:
        p.failed("write", e)
    return value


def _release(p: Policy, key: bytes, token: bytes) -> Flow:
    try:
        yield Release(key, token)
    except Error as e:
        p.failed("lease release", e)


def _decode(p: Policy, data: bytes) -> Any:
    """Returns the value ``data`` holds, or MISSING (counted and logged)."""
    try:
        return p.loads(data)
    except ValueError as e:
        p.stats["undecodable"] += 1
        log.warning("nearcache: cached value of %s does not decode (%s); reloading", p.name, e)
        return MISSING


def _store_op(p: Policy, key: bytes, value: Any, token: bytes | None) -> Store | None:
    if value is None:
        return Store(key, None, p.ttl(p.negative_ttl_ms), token) if p.cache_none else None
    try:
        payload = p.codec.dumps(value)
    except NotCacheable:
        return None
    except (TypeError, ValueError) as e:
        p.stats["unserializable"] += 1
        warnings.warn(
            f"nearcache: {p.name} returned a value it cannot store: {e}", CacheWarning, stacklevel=4
        )
        return None
    if len(payload) > p.max_value_size:
        p.stats["too_large"] += 1
        warnings.warn(
            f"nearcache: {p.name} returned {len(payload)} bytes, more than max_value_size "
            f"({p.max_value_size}); not cached",
            CacheWarning,
            stacklevel=4,
        )
        return None
    return Store(key, payload, p.ttl(p.ttl_ms), token)
