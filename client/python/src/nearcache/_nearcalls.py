"""Where the clients' calls meet the near tier (``_near``, which takes keys
and bytes): a hit as a Get's result, a reply offered to fill it (as
``keep_of`` says), and a write dropping this process's own entries before
it is sent. Sans-I/O: the sync and asyncio clients both call these."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ._core import GetResult, LeaseState, Source
from ._near import Keep, NearTier, Ticket, keep_of
from ._ring import now_ms

__all__ = ["drop_before", "merge_mget", "near_result", "offer", "plan_mget"]


def near_result(tier: NearTier, ns: bytes, key: bytes) -> GetResult | None:
    """A lookup as a Get's result (source NEAR), or None on a miss."""
    now = now_ms()
    e = tier.entry(ns, key, now)
    if e is None:
        return None
    return GetResult(e.value, Source.NEAR, e.expires_at - now, negative=e.value is None)


def offer(tier: NearTier, t: Ticket, ns: bytes, key: bytes, r: GetResult) -> None:
    """Fills the tier from a Get's reply, with the ticket taken before it
    was sent, if ``keep_of`` allows."""
    keep = keep_of(
        r.value is not None, r.negative, r.stale, r.lease is not LeaseState.NONE, r.ttl_ms
    )
    if keep is Keep.VALUE:
        tier.fill(t, ns, key, r.value, r.ttl_ms)
    elif keep is Keep.NEGATIVE:
        tier.fill(t, ns, key, None, r.ttl_ms)


def drop_before(tier: NearTier, request: Any) -> None:
    """Drops this process's own entries of what ``request`` (a
    ``nearcache.v1.Request``) writes, before it is sent: a Set, a Delete,
    an MSet or a BumpNamespace."""
    method = request.WhichOneof("method")
    if method in ("set", "delete"):
        m = getattr(request, method)
        tier.drop(m.ns, m.key)
    elif method == "mset":
        tier.drop_many(request.mset.ns, [e.key for e in request.mset.entries])
    elif method == "bump_namespace":
        tier.drop_ns(request.bump_namespace.ns)


def plan_mget(
    tier: NearTier, ns: bytes, keys: Sequence[bytes]
) -> tuple[list[GetResult | None], list[int]]:
    """Answers what the tier can of an MGet: the results so far (None where
    the daemon must answer) and the indexes of the keys to ask it for."""
    out = [near_result(tier, ns, k) for k in keys]
    return out, [i for i, r in enumerate(out) if r is None]


def merge_mget(
    tier: NearTier,
    t: Ticket | None,
    ns: bytes,
    keys: Sequence[bytes],
    out: list[GetResult | None],
    missing: Sequence[int],
    got: Sequence[GetResult],
) -> list[GetResult]:
    """Puts the daemon's answers for ``missing`` in place (offering each to
    the tier with the ticket taken before asking) and returns every key's
    result."""
    for i, r in zip(missing, got, strict=True):
        if t is not None:
            offer(tier, t, ns, keys[i], r)
        out[i] = r
    return [r for r in out if r is not None]
