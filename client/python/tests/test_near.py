"""The near tier fed by real daemons' rings, as tests/test_neartier.c does
for the C client: two daemons on one Redis stand for two hosts, A with
near-tier clients and B as the other host. Hot reads are answered in this
process, and every way the ring must stop them is tried: a write or a bump
on the other host, a lost subscription, a daemon killed or frozen, a ring
file that is not one; then a history of concurrent writes and near reads."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import open_client
from procs import Daemon, Redis, wait_until

import nearcache
from nearcache import NearStats, Source

WINDOW = 1.0  # the daemons' coherence_window (its default)
SLACK = 0.25  # polling and scheduling on a busy test machine


def ring_of(d: Daemon) -> Path:
    return d.dir / "nc.sock.ring"


@pytest.fixture
def hosts(make_daemon: Callable[..., Daemon]) -> tuple[Daemon, Daemon]:
    """Two daemons on the module's Redis: A (near-tier clients) and B."""
    a, b = make_daemon(), make_daemon()
    try:  # the daemon makes its ring just after it listens (and answers Ping)
        wait_until(ring_of(a).exists, 2, "the daemon's ring")
    except TimeoutError:
        pytest.skip("this nearcached writes no near-tier ring (build main's, NC_BUILD=...)")
    return a, b


@pytest.fixture
def b(hosts: tuple[Daemon, Daemon]) -> Iterator[nearcache.Client]:
    """A client of the other host, without a near tier."""
    with nearcache.Client(hosts[1].url, timeout=5, near_bytes=0) as c:
        yield c


@pytest.fixture
def near(hosts: tuple[Daemon, Daemon]) -> Iterator[nearcache.Client]:
    """A client of host A with a near tier."""
    with nearcache.Client(hosts[0].url, timeout=5) as c:
        yield c


def stats(cl: Any) -> NearStats:
    s: NearStats | None = getattr(cl, "inner", cl).near_stats()  # the facade's client: .inner
    assert s is not None
    return s


def by_window(cond: Callable[[], bool], what: str) -> None:
    """Polls ``cond()`` until it holds; fails if a check begun ``WINDOW`` or
    more after the call (just after the write that makes it hold was
    acknowledged) found it false. A check is timed by its start: the window
    bounds what a read is served, and a loaded machine may answer it late."""
    t0 = time.monotonic()
    while True:
        begun = time.monotonic()
        if cond():
            return
        assert begun - t0 < WINDOW, f"{what}: not seen by a read begun {begun - t0:.3f} s after"
        time.sleep(0.01)


def near_holds(cl: Any, ns: str, key: str, want: bytes) -> None:
    """Reads ns/key through cl until it comes from the near tier as ``want``."""
    r = None
    for _ in range(300):
        r = cl.get_ex(ns, key)
        if r.value == want and r.source is Source.NEAR:
            return
        time.sleep(0.01)
    raise AssertionError(f"{key} never came from the near tier as {want!r}: {r}; {stats(cl)}")


def test_a_hot_key_is_read_from_the_near_tier_until_another_host_writes_it(
    kind: str, hosts: tuple[Daemon, Daemon], b: nearcache.Client, ns: str
) -> None:
    with open_client(kind, hosts[0].url, timeout=5) as cl:
        b.set(ns, "k", "v1", 60)
        near_holds(cl, ns, "k", b"v1")
        before = stats(cl).hits
        assert all(cl.get(ns, "k") == b"v1" for _ in range(100))
        s = stats(cl)
        assert s.hits >= before + 100 and s.serving and s.entries >= 1, s
        b.set(ns, "k", "v2", 60)
        # The window bounds when a read is served; a read that began before
        # it may return later, so the last v1 read is timed by its start.
        t0 = old = time.monotonic()
        while (begun := time.monotonic()) - t0 < WINDOW + SLACK and (v := cl.get(ns, "k")) == b"v1":
            old = begun
            time.sleep(0.001)
        assert v == b"v2", "the write on B never reached A's near tier"
        assert old - t0 < WINDOW, f"v1 read {old - t0:.3f} s after B's write was acknowledged"
        near_holds(cl, ns, "k", b"v2")
        assert all(cl.get(ns, "k") == b"v2" for _ in range(100)), "v1 came back"


def test_an_own_write_is_read_back_at_once(
    kind: str, hosts: tuple[Daemon, Daemon], ns: str
) -> None:
    with open_client(kind, hosts[0].url, timeout=5) as cl:
        cl.set(ns, "k", "v1", 60)
        near_holds(cl, ns, "k", b"v1")
        cl.set(ns, "k", "v2", 60)
        assert cl.get(ns, "k") == b"v2", "the near tier answered its own process's old value"
        cl.mset(ns, {"k": "v3"}, 60)
        assert cl.get(ns, "k") == b"v3"
        cl.delete(ns, "k")
        assert cl.get(ns, "k") is None
        cl.set(ns, "k", "v4", 60)
        near_holds(cl, ns, "k", b"v4")
        cl.bump(ns)
        assert cl.get(ns, "k") is None


def test_mget_answers_the_keys_the_near_tier_holds_and_asks_for_the_others(
    kind: str, hosts: tuple[Daemon, Daemon], b: nearcache.Client, ns: str
) -> None:
    with open_client(kind, hosts[0].url, timeout=5) as near:
        b.mset(ns, {"a": "1", "b": "2"}, 60)
        near_holds(near, ns, "a", b"1")
        rs = near.mget_ex(ns, ["a", "b", "c"])
        assert [r.value for r in rs] == [b"1", b"2", None]
        assert rs[0].source is Source.NEAR and rs[1].source is not Source.NEAR
        wait_until(
            lambda: [r.source for r in near.mget_ex(ns, ["a", "b"])] == [Source.NEAR] * 2,
            3,
            "both keys in the near tier",
        )
        b.set(ns, "b", "3", 60)
        by_window(lambda: near.mget(ns, ["a", "b"]) == [b"1", b"3"], "B's write")


def test_a_bump_on_another_host_empties_the_namespace_from_the_near_tier(
    near: nearcache.Client, b: nearcache.Client, ns: str
) -> None:
    b.set(ns, "a", "1", 60)
    b.set(ns, "b", "2", 60)
    b.set(ns + "x", "a", "3", 60)
    for key, want in (("a", b"1"), ("b", b"2")):
        near_holds(near, ns, key, want)
    near_holds(near, ns + "x", "a", b"3")
    b.bump(ns)
    by_window(lambda: near.get(ns, "a") is None and near.get(ns, "b") is None, "the bump")
    assert near.get_ex(ns + "x", "a").source is Source.NEAR, "another namespace is kept"


def test_the_decorator_reads_a_hot_key_from_the_near_tier(near: nearcache.Client, ns: str) -> None:
    loads = []

    @nearcache.cached(ns=ns, client=near, ttl=60)
    def square(n: int) -> int:
        loads.append(n)
        return n * n

    assert square(7) == 49
    wait_until(lambda: near.get_ex(ns, "n=7").source is Source.NEAR, 3, "the near tier to hold it")
    hits = stats(near).hits
    assert all(square(7) == 49 for _ in range(20))
    assert stats(near).hits >= hits + 20 and loads == [7]


def test_a_lost_subscription_empties_the_near_tier(
    redis: Redis, near: nearcache.Client, b: nearcache.Client, ns: str
) -> None:
    b.set(ns, "k", "v", 60)
    near_holds(near, ns, "k", b"v")
    flushes = stats(near).flushes
    assert int(redis.cmd("CLIENT", "KILL", "TYPE", "pubsub")) >= 2
    by_window(lambda: stats(near).flushes > flushes, "the flush of A's L1 in the ring")
    assert near.get_ex(ns, "k").source is not Source.NEAR
    near_holds(near, ns, "k", b"v")  # and it fills again once A serves again


def serving_for(cl: Any, t0: float) -> float:
    """Polls cl's near tier until it stops serving; returns when the last check
    that found it serving began, in seconds after t0 (a check's start, not its
    end nor the poll's sleep, is what the window bounds)."""
    last = t0
    while (begun := time.monotonic()) - t0 < WINDOW + SLACK and stats(cl).serving:
        last = begun
        time.sleep(0.005)
    assert not stats(cl).serving, f"still serving {time.monotonic() - t0:.3f} s on"
    return last - t0


def test_a_killed_daemon_stops_near_reads_within_the_coherence_window(
    hosts: tuple[Daemon, Daemon], near: nearcache.Client, b: nearcache.Client, ns: str
) -> None:
    b.set(ns, "k", "v", 60)
    near_holds(near, ns, "k", b"v")
    t0 = time.monotonic()  # the daemon's last heartbeat is before it
    hosts[0].proc.kill()  # type: ignore[union-attr]  # kill -9: the ring is left as it was
    assert serving_for(near, t0) <= WINDOW
    with pytest.raises(nearcache.Unavailable):  # not from the near tier: from the dead daemon
        near.get(ns, "k", timeout=0.2)


def test_a_frozen_daemon_stops_near_reads_within_the_coherence_window(
    hosts: tuple[Daemon, Daemon], near: nearcache.Client, b: nearcache.Client, ns: str
) -> None:
    b.set(ns, "k", "v", 60)
    near_holds(near, ns, "k", b"v")
    t0 = time.monotonic()
    os.kill(hosts[0].pid, signal.SIGSTOP)
    try:
        assert serving_for(near, t0) <= WINDOW
        with pytest.raises(nearcache.DeadlineExceeded):
            near.get(ns, "k", timeout=0.2)  # not from the near tier: from the frozen daemon
    finally:
        os.kill(hosts[0].pid, signal.SIGCONT)
    b.set(ns, "k", "v2", 60)
    near_holds(near, ns, "k", b"v2")


def test_a_restarted_daemons_new_ring_is_followed(
    hosts: tuple[Daemon, Daemon], near: nearcache.Client, b: nearcache.Client, ns: str
) -> None:
    b.set(ns, "k", "v", 60)
    near_holds(near, ns, "k", b"v")
    hosts[0].restart()
    near_holds(near, ns, "k", b"v")
    b.set(ns, "k", "v2", 60)
    by_window(lambda: near.get(ns, "k") == b"v2", "B's write through the new ring")


def test_a_ring_file_that_is_not_one_leaves_the_client_working_without_it(
    hosts: tuple[Daemon, Daemon], tmp_path: Path, ns: str
) -> None:
    junk = tmp_path / "junk.ring"
    junk.write_bytes(b"not a ring at all" * 100)
    with nearcache.Client(hosts[0].url, timeout=5, near_ring=str(junk)) as c:
        c.set(ns, "k", "v", 60)
        assert all(c.get_ex(ns, "k").source is not Source.NEAR for _ in range(20))
        assert c.get(ns, "k") == b"v"
        s = stats(c)
        assert not s.serving and s.hits == 0 and "not a near ring" in s.problem, s


def test_near_reads_are_never_older_than_the_coherence_window(
    hosts: tuple[Daemon, Daemon], ns: str
) -> None:
    """Writers on B count each key up; near-tier readers on A check that no
    value they read was overwritten more than WINDOW before the read began."""
    keys = [f"k{i}" for i in range(4)]
    done: dict[str, dict[int, float]] = {k: {} for k in keys}  # version -> when its Set returned
    stop = time.monotonic() + 4.0
    bad: list[str] = []
    reads = [0]

    def write(my_keys: list[str]) -> None:
        with nearcache.Client(hosts[1].url, timeout=5, near_bytes=0) as c:
            version = 0
            while time.monotonic() < stop:
                version += 1
                for k in my_keys:
                    c.set(ns, k, str(version), 60)
                    done[k][version] = time.monotonic()
                time.sleep(random.uniform(0, 0.03))

    def read(c: nearcache.Client) -> None:
        while time.monotonic() < stop and not bad:
            k = random.choice(keys)
            t0 = time.monotonic()
            v = c.get(ns, k)
            seen = int(v) if v is not None else 0
            newer = done[k].get(seen + 1)
            if newer is not None and newer < t0 - WINDOW:
                bad.append(f"{k}: read {seen} at {t0:.3f}, but {seen + 1} was set at {newer:.3f}")
            reads[0] += 1

    with nearcache.Client(hosts[0].url, timeout=5) as near:
        threads = [threading.Thread(target=write, args=(keys[:2],))]
        threads += [threading.Thread(target=write, args=(keys[2:],))]
        threads += [threading.Thread(target=read, args=(near,)) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        s = stats(near)
    assert not bad, bad[:5]
    assert s.hits > 100 and reads[0] > s.hits, (reads[0], s)
