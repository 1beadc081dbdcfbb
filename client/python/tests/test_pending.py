"""Invalidations that cannot reach the daemon are kept and sent first once
it answers (docs/protocol.md, "Client rules", R2): the caller of a
committed write is not failed unless it asked for strictness, and a read
after the daemon's return sees the new value."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from conftest import open_client
from procs import Daemon, Redis

import nearcache
from nearcache._pb import nearcache_pb2 as pb


def reachable(cl: Any, timeout: float = 10) -> None:
    """Waits until a call reaches the daemon (past the dial backoff)."""
    end = time.monotonic() + timeout
    while True:
        try:
            cl.ping()
            return
        except nearcache.Unavailable:
            assert time.monotonic() < end, "the daemon never answered again"
            time.sleep(0.05)


def test_a_delete_while_the_daemon_is_down_is_sent_when_it_is_back(
    kind: str, make_daemon: Callable[..., Daemon], ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    d = make_daemon()
    with open_client(kind, d.url, timeout=2) as cl:
        cl.set(ns, "k", "old")
        assert cl.get(ns, "k") == b"old"
        d.stop()
        with caplog.at_level(logging.WARNING, logger="nearcache"):
            assert cl.delete(ns, "k") is False  # kept, not raised
            assert cl.delete(ns, "k2") is False
        kept = [r for r in caplog.records if "invalidations are kept" in r.getMessage()]
        assert len(kept) == 1  # logged once
        d.start()
        reachable(cl)  # the first call on the new connection sends them first
        assert cl.get(ns, "k") is None


def test_a_kept_delete_empties_the_near_tier(
    kind: str, make_daemon: Callable[..., Daemon], ns: str
) -> None:
    """No ring slot will name a key the daemon never heard of, so a Get
    reply in flight with the old value could fill the writer's own near
    tier after its kept Delete: the tier empties instead (the fill's side
    is in tests/conformance/ring.json)."""
    d = make_daemon()
    with open_client(kind, d.url, timeout=2) as cl:
        cl.set(ns, "k", "old")
        cl.set(ns, "k2", "x")
        end = time.monotonic() + 5
        while (st := cl.near_stats()).entries < 2:
            assert time.monotonic() < end, f"the near tier never held both keys: {st}"
            assert cl.get(ns, "k") == b"old" and cl.get(ns, "k2") == b"x"
            time.sleep(0.01)
        d.stop()
        assert cl.delete(ns, "k") is False  # kept
        after = cl.near_stats()
        assert after.entries == 0
        assert after.flushes == st.flushes + 1
        d.start()
        reachable(cl)
        assert cl.get(ns, "k") is None


def test_a_delete_sent_while_the_daemon_drains_reaches_the_next_daemon(
    kind: str, make_daemon: Callable[..., Daemon], redis: Redis, ns: str
) -> None:
    """SIGTERM: a request that arrives during the drain is neither run nor
    answered; the connection closes when the daemon exits, so the Delete is
    kept and the next daemon on the socket gets it (it was answered
    UNAVAILABLE "shutting down", which raised). A Get waiting on a frozen
    Redis holds the drain open meanwhile."""
    d = make_daemon("--redis-timeout", "1s")
    assert redis.proc is not None
    key = redis.data_key(ns, "k")
    with open_client(kind, d.url, timeout=4) as cl, nearcache.Client(d.url, timeout=3) as other:
        cl.set(ns, "k", "old")
        redis.proc.send_signal(signal.SIGSTOP)
        try:
            held = threading.Thread(target=lambda: other.get(ns, "cold"), daemon=True)
            held.start()
            end = time.monotonic() + 3
            while other.stats()["l1_misses"] < 1:  # the Get waits on Redis
                assert time.monotonic() < end, "the Get never reached the daemon"
            assert d.proc is not None
            d.proc.send_signal(signal.SIGTERM)
            sock = d.url.removeprefix("ipc://")
            end = time.monotonic() + 3
            while os.path.exists(sock):  # the drain removes it first
                assert time.monotonic() < end, "the socket file is still there"
            threading.Timer(0.3, redis.proc.send_signal, (signal.SIGCONT,)).start()
            assert cl.delete(ns, "k") is False  # kept, not raised
        finally:
            redis.proc.send_signal(signal.SIGCONT)
        assert d.proc.wait(10) == 0
        d.proc = None
        assert redis.cmd("EXISTS", key) == "1"  # the draining daemon did not run it
        d.start()
        reachable(cl)  # the first call on the new connection sends it first
        assert redis.cmd("EXISTS", key) == "0"


def test_strict_raises_unavailable_when_the_daemon_is_down(
    kind: str, make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    with open_client(kind, d.url, timeout=2) as cl:
        cl.set(ns, "k", "old")
        d.stop()
        with pytest.raises(nearcache.Unavailable, match="cannot reach nearcached"):
            cl.delete(ns, "k", strict=True)
        with pytest.raises(nearcache.Unavailable):
            cl.bump(ns, strict=True)
        assert cl.bump(ns) == 0  # not strict: kept, 0 for "not known yet"


def test_an_overflow_bumps_the_namespaces_it_dropped_before_the_kept_deletes(
    make_daemon: Callable[..., Daemon], redis: Redis, ns: str
) -> None:
    d = make_daemon()
    other = ns + "x"
    with nearcache.Client(d.url, timeout=2, max_pending=2) as cl:
        for k in ("a", "b", "c"):
            cl.set(ns, k, "old")
        cl.set(other, "a", "old")
        version = int(redis.cmd("GET", f"nc:v1:nsver:{ns}"))
        other_version = int(redis.cmd("GET", f"nc:v1:nsver:{other}"))
        d.stop()
        cl.delete(other, "a")  # kept
        cl.delete(ns, "a")  # kept
        cl.delete(ns, "b")  # over the bound: ns is bumped instead
        cl.delete(ns, "c")  # covered by that bump
        assert len(cl._link.pending) == 3
        d.start()
        reachable(cl)
        assert len(cl._link.pending) == 0
        assert int(redis.cmd("GET", f"nc:v1:nsver:{ns}")) > version
        assert int(redis.cmd("GET", f"nc:v1:nsver:{other}")) == other_version
        assert [cl.get(ns, k) for k in ("a", "b", "c")] == [None, None, None]
        assert cl.get(other, "a") is None


def test_pending_invalidations_are_sent_at_close_when_the_daemon_answers(
    make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    cl = nearcache.Client(d.url, timeout=2)
    cl.set(ns, "k", "old")
    d.stop()
    cl.delete(ns, "k")
    d.start()
    cl.close()  # no call in between: close sends it
    with nearcache.Client(d.url, timeout=2) as fresh:
        assert fresh.get(ns, "k") is None


def test_cached_invalidate_while_the_daemon_is_down_then_a_read_sees_the_new_value(
    make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    db = {1: "lamp"}
    client = nearcache.Client(d.url, timeout=2)

    @nearcache.cached(ttl=60, ns=ns, client=client)
    def product(pid: int) -> str:
        return db[pid]

    assert product(1) == "lamp"
    d.stop()
    db[1] = "lamp v2"  # the committed write
    assert product.invalidate(1) is False  # kept; the handler goes on
    d.start()
    reachable(client)
    errors = product.cache_info()["errors"]
    assert product(1) == "lamp v2"
    assert product.cache_info()["errors"] == errors  # read through the cache
    client.close()


def test_async_cached_invalidate_while_the_daemon_is_down_then_a_read_sees_the_new_value(
    make_daemon: Callable[..., Daemon], ns: str
) -> None:
    d = make_daemon()
    db = {1: "lamp"}

    async def run() -> None:
        aclient = nearcache.AsyncClient(d.url, timeout=2)

        @nearcache.cached(ttl=60, ns=ns, client=aclient)
        async def product(pid: int) -> str:
            return db[pid]

        assert await product(1) == "lamp"
        d.stop()
        db[1] = "lamp v2"
        assert await product.invalidate(1) is False
        with pytest.raises(nearcache.Unavailable):
            await nearcache.ainvalidate(ns, "x", client=aclient, strict=True)
        d.start()
        end = time.monotonic() + 10
        while True:
            try:
                await aclient.ping()
                break
            except nearcache.Unavailable:
                assert time.monotonic() < end
                await asyncio.sleep(0.05)
        errors = product.cache_info()["errors"]
        assert await product(1) == "lamp v2"
        assert product.cache_info()["errors"] == errors
        await aclient.close()

    asyncio.run(run())


def test_an_invalidation_the_daemon_cannot_apply_yet_stays_pending(
    make_daemon: Callable[..., Daemon], ns: str
) -> None:
    own = Redis().start()
    try:
        d = make_daemon("--redis-timeout", "300ms", redis_=own)
        with nearcache.Client(d.url, timeout=2) as cl:
            cl.set(ns, "k", "old")
            d.stop()
            cl.delete(ns, "k")
            own.stop()
            d.start()  # its Redis is down: the Delete is answered UNAVAILABLE
            reachable(cl)
            assert len(cl._link.pending) == 1  # kept, not dropped
            own.start()
            d.wait_ready()
            end = time.monotonic() + 10
            while cl._link.pending:  # the background thread or the next call sends it
                assert time.monotonic() < end, "the Delete was never delivered"
                time.sleep(0.05)
    finally:
        own.cleanup()


@pytest.mark.parametrize(
    "code", ["UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED"], ids=str.lower
)
def test_a_kept_invalidation_the_daemon_could_not_take_yet_stays_first(code: str) -> None:
    """UNAVAILABLE, DEADLINE_EXCEEDED and RESOURCE_EXHAUSTED (an overloaded
    daemon's queue) say "not now", as libnearcache's flush reads them: the
    Delete stays first in line; a refusal of the request itself drops it."""
    from nearcache._link import Link

    def answer(code: str, message: str) -> bytes:
        return pb.Reply(code=code, message=message).SerializeToString()

    link = Link("ipc:///nonexistent/nc.sock", 1.0)
    link.pending.add(b"users", b"k")
    op = link.pending.next()
    assert op == (b"users", b"k")
    call = link.pending.call(op)
    assert link.flushed(op, call, answer(code, "not now")) is False
    assert link.pending.next() == op
    assert link.flushed(op, call, answer("INVALID_ARGUMENT", "namespace contains ':'")) is True
    assert not link.pending


def test_strict_raises_unavailable_whatever_kept_the_invalidation() -> None:
    """R2: a strict caller gets UNAVAILABLE (as libnearcache's
    NC_EUNAVAILABLE), also when the dial was forbidden or timed out; the
    dial's own words stay in the message."""
    from nearcache import _core
    from nearcache._link import Link, _undelivered

    for why in (
        nearcache.PermissionDenied("permission denied on /run/nearcache/nearcached.sock"),
        nearcache.DeadlineExceeded("nearcached did not answer the connection in time"),
    ):
        link = Link("ipc:///run/nearcache/nearcached.sock", 1.0)
        with pytest.raises(nearcache.Unavailable, match=why.message) as raised:
            link.keep(_core.delete(b"users", b"k"), _undelivered(why), strict=True)
        assert raised.value.code == nearcache.Unavailable.default_code
        assert link.pending.next() == (b"users", b"k")  # kept all the same


def test_close_logs_the_invalidations_the_daemon_could_not_apply(
    kind: str, make_daemon: Callable[..., Daemon], ns: str, caplog: pytest.LogCaptureFixture
) -> None:
    """At close the daemon answers but cannot apply the kept Delete (its
    Redis is down): the Delete is lost with the process, and says so."""
    own = Redis().start()
    try:
        d = make_daemon("--redis-timeout", "300ms", redis_=own)
        cl = open_client(kind, d.url, timeout=2)
        cl.set(ns, "k", "old")
        d.stop()
        cl.delete(ns, "k")
        own.stop()
        d.start()
        with caplog.at_level(logging.WARNING, logger="nearcache"):
            cl.close()
        lost = [r for r in caplog.records if "closing with 1 invalidations" in r.getMessage()]
        assert len(lost) == 1, [r.getMessage() for r in caplog.records]
    finally:
        own.cleanup()


class _DropsFirstConnection:
    """A REP peer at ``path`` that reads one request on its first connection
    and hangs up without a reply; on the next ones it answers every request
    OK. ``methods`` lists what it read, in order."""

    def __init__(self, path: str) -> None:
        self.methods: list[str] = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @staticmethod
    def _read(c: Any, n: int) -> bytes:
        data = b""
        while len(data) < n:
            got = c.recv(n - len(data))
            if not got:
                raise EOFError
            data += got
        return data

    def _serve(self) -> None:
        first = True
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                try:
                    self._read(c, 8)
                    c.sendall(b"\x00SP\x00\x00\x31\x00\x00")
                    while True:
                        size = struct.unpack(">Q", self._read(c, 9)[1:])[0]
                        payload = self._read(c, size)
                        req = pb.Request.FromString(payload[4:])
                        method = req.WhichOneof("method") or ""
                        self.methods.append(method)
                        if first:
                            first = False
                            break  # hang up: the reply is lost
                        reply = pb.Reply(id=req.id)
                        if method == "set":
                            reply.set.ttl_ms = 1000
                        else:
                            getattr(reply, method).SetInParent()
                        body = reply.SerializeToString()
                        c.sendall(b"\x01" + struct.pack(">Q", len(payload[:4]) + len(body)))
                        c.sendall(payload[:4] + body)
                except (EOFError, OSError):
                    pass

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def test_a_connection_lost_while_kept_invalidations_go_does_not_fail_the_call_after_them(
    kind: str, tmp_path: Any
) -> None:
    """The call waits behind the flush and was never sent: it goes on the
    next connection, even one that must not be sent twice (a lease's Set)."""
    path = str(tmp_path / "nc.sock")
    with open_client(kind, "ipc://" + path, timeout=2, near_bytes=0) as cl:
        assert cl.delete("users", "k") is False  # no daemon: kept
        peer = _DropsFirstConnection(path)
        try:
            time.sleep(0.1)  # past the dial backoff
            assert cl.set("users", "x", "v", lease_token=b"tok") == 1000
            assert peer.methods == ["delete", "delete", "set"]
        finally:
            peer.close()
