"""The decorator's read-through steps without I/O: the generator is driven
by hand with the replies a daemon would give."""

from __future__ import annotations

from typing import Any

import pytest

import nearcache
from nearcache import GetResult, LeaseState
from nearcache._codec import JsonCodec
from nearcache._flow import Get, Load, Policy, Refresh, Release, Store, read_through


def policy(**kw: Any) -> Policy:
    return Policy(ns=b"ns", ttl_ms=1000, negative_ttl_ms=500, codec=JsonCodec(), **kw)


def finish(gen: Any, value: Any) -> Any:
    with pytest.raises(StopIteration) as stop:
        gen.send(value)
    return stop.value.value


def test_a_hit_returns_the_decoded_value_without_loading() -> None:
    gen = read_through(policy(), b"k")
    assert next(gen) == Get(b"k")
    assert finish(gen, GetResult(b'{"a":1}')) == {"a": 1}


def test_a_granted_miss_loads_and_stores_with_the_token() -> None:
    gen = read_through(policy(), b"k")
    next(gen)
    assert gen.send(GetResult(None, lease=LeaseState.GRANTED, lease_token=b"t")) == Load()
    assert gen.send([1, 2]) == Store(b"k", b"[1,2]", 1000, b"t")
    assert finish(gen, 1000) == [1, 2]


def test_none_is_stored_as_a_negative_entry_for_the_negative_ttl() -> None:
    gen = read_through(policy(), b"k")
    next(gen)
    gen.send(GetResult(None, lease=LeaseState.GRANTED, lease_token=b"t"))
    assert gen.send(None) == Store(b"k", None, 500, b"t")


def test_a_busy_lease_loads_without_storing() -> None:
    gen = read_through(policy(), b"k")
    next(gen)
    assert gen.send(GetResult(None, lease=LeaseState.BUSY)) == Load()
    assert finish(gen, "v") == "v"


def test_a_loader_error_releases_the_lease_and_propagates() -> None:
    gen = read_through(policy(), b"k")
    next(gen)
    gen.send(GetResult(None, lease=LeaseState.GRANTED, lease_token=b"t"))
    assert gen.throw(LookupError("db")) == Release(b"k", b"t")
    with pytest.raises(LookupError):
        gen.send(True)


def test_a_stale_value_with_the_lease_is_returned_and_refreshed() -> None:
    gen = read_through(policy(), b"k")
    next(gen)
    stale = GetResult(b"1", stale=True, lease=LeaseState.GRANTED, lease_token=b"t")
    assert gen.send(stale) == Refresh(b"k", b"t")
    assert finish(gen, None) == 1


def test_a_failed_read_fails_open_or_raises() -> None:
    p = policy()
    gen = read_through(p, b"k")
    next(gen)
    assert gen.throw(nearcache.Unavailable("down")) == Load()
    assert finish(gen, 5) == 5
    assert p.stats["errors"] == 1
    strict = read_through(policy(fail_open=False), b"k")
    next(strict)
    with pytest.raises(nearcache.Unavailable):
        strict.throw(nearcache.Unavailable("down"))


def test_an_undecodable_value_is_reloaded() -> None:
    p = policy()
    gen = read_through(p, b"k")
    next(gen)
    assert gen.send(GetResult(b"not json")) == Load()
    assert p.stats["undecodable"] == 1


def test_jitter_stays_within_its_fraction() -> None:
    p = policy(jitter=0.1)
    ttls = {p.ttl(10000) for _ in range(200)}
    assert len(ttls) > 10 and min(ttls) >= 9000 and max(ttls) <= 11000
