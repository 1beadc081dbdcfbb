"""The asyncio client: one Unix-socket connection, on the event loop that
uses it, with many requests in flight, each matched to its reply by id.

A reader task feeds every byte read to the connection's sans-I/O Protocol
and resolves the future of each reply's id. A caller that is cancelled or
times out forgets its id; its reply, if it comes, is dropped. A forked child
or another event loop gets a connection of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import weakref
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from . import _core
from ._core import TTL, BytesLike, Call, GetResult, MSetItems, PingInfo, as_bytes
from ._link import DEFAULT_MAX_PENDING, PENDING_POLL, Link, Lost
from ._near import DEFAULT_NEAR_BYTES, DEFAULT_NEAR_MAX_TTL, NearStats, make_tier
from ._nearcalls import drop_before, merge_mget, near_result, offer, plan_mget
from ._report import DEFAULT_INTERVAL, Reporter
from .errors import DeadlineExceeded, Error, Unavailable

if TYPE_CHECKING:
    from ._flow import Policy

__all__ = ["AsyncClient"]

T = TypeVar("T")


class _AConn:
    """One connection, its reader task and the futures waiting on it."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proto: _core.Protocol
    ) -> None:
        self.pid = os.getpid()
        self.loop = asyncio.get_running_loop()
        self.reader, self.writer, self.proto = reader, writer, proto
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.lost: str | None = None
        self.task = self.loop.create_task(self._read())

    @classmethod
    async def open(cls, path: str, timeout: float) -> _AConn:
        proto = _core.Protocol()
        reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(path), timeout)
        try:
            writer.write(proto.initiate())
            while not proto.ready:
                data = await asyncio.wait_for(reader.read(8), timeout)
                if not data:
                    raise OSError("the daemon closed the connection during the handshake")
                proto.receive(data)
        except BaseException:
            writer.transport.abort()
            raise
        return cls(reader, writer, proto)

    async def _read(self) -> None:
        why = "the daemon closed the connection"
        try:
            while True:
                data = await self.reader.read(262144)
                if not data:
                    break
                for sp_id, body in self.proto.receive(data):
                    fut = self.waiting.pop(sp_id, None)
                    if fut is not None and not fut.done():
                        fut.set_result(body)
        except asyncio.CancelledError:
            why = "connection closed"
        except (OSError, Error) as e:
            why = f"read: {e}"
        self._fail(why)

    def _fail(self, why: str) -> None:
        self.lost = why
        self.writer.transport.abort()
        waiting, self.waiting = self.waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(Lost(why, sent=True))

    async def roundtrip(self, call: Call[T], timeout_ms: int, deadline: float) -> bytes:
        """Sends ``call`` and returns its reply body; raises Lost or
        DeadlineExceeded. Cancelling the caller leaves the connection usable."""
        if self.lost is not None:
            raise Lost(self.lost, sent=False)
        sp_id, data = self.proto.encode(call, timeout_ms)
        fut: asyncio.Future[bytes] = self.loop.create_future()
        self.waiting[sp_id] = fut
        try:
            self.writer.write(data)
            if self.writer.transport.get_write_buffer_size() > 1 << 20:
                await self.writer.drain()
            left = deadline - time.monotonic()
            return await asyncio.wait_for(fut, max(left, 0.0))
        except asyncio.TimeoutError:
            raise DeadlineExceeded(f"no reply from the daemon within {timeout_ms} ms") from None
        except (ConnectionError, RuntimeError) as e:
            raise Lost(f"write: {e}", sent=False) from None
        finally:
            self.waiting.pop(sp_id, None)

    def usable(self) -> bool:
        return (
            self.lost is None
            and self.pid == os.getpid()
            and self.loop is asyncio.get_running_loop()
        )

    def close(self) -> None:
        if self.pid != os.getpid():
            return  # a forked child leaves the parent's connection alone
        try:
            if not self.task.done():
                self.task.cancel()
            self.writer.transport.abort()
        except RuntimeError:  # its event loop is closed: the socket went with it
            pass


class AsyncClient:
    """An asyncio nearcache client: one connection with any number of
    requests in flight on it. It belongs to the event loop that uses it; a
    call from another loop replaces it (use one client per loop).

    Arguments (the near tier's too) and errors as for
    :class:`nearcache.Client`; every method is a coroutine. Cancelling a
    call abandons it without disturbing the others.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        timeout: float | timedelta = 1.0,
        near_bytes: int = DEFAULT_NEAR_BYTES,
        near_max_ttl: TTL = DEFAULT_NEAR_MAX_TTL,
        near_ring: str | None = None,
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._link = Link(url, timeout, max_pending)
        self.url = self._link.url
        self.timeout = self._link.timeout
        self._near = make_tier(self.url, near_bytes, near_max_ttl, near_ring)
        self._nc_near = self._near  # for @cached (its Backend)
        self._conn: _AConn | None = None
        self._dialing: asyncio.Lock | None = None
        self._closed = False
        self._reporter = Reporter(self._near) if self._near is not None else None
        self._ticker: asyncio.Task[None] | None = None
        self._pid = os.getpid()

    def _lock(self) -> asyncio.Lock:
        """The lock of dialing and of sending pending invalidations, of
        this event loop."""
        loop = asyncio.get_running_loop()
        if self._dialing is None or getattr(self._dialing, "_nc_loop", None) is not loop:
            self._dialing = asyncio.Lock()
            self._dialing._nc_loop = loop  # type: ignore[attr-defined]
        return self._dialing

    async def _connection(self, deadline: float) -> _AConn:
        conn = self._conn
        if conn is not None and conn.usable():
            return conn
        loop = asyncio.get_running_loop()
        async with self._lock():
            conn = self._conn
            if conn is not None and conn.usable():
                return conn
            if conn is not None and conn.pid == os.getpid() and conn.loop is loop:
                conn.close()
            self._conn = None
            if self._closed:
                raise Unavailable("client is closed")
            self._conn = await self._dial(deadline)
            return self._conn

    async def _dial(self, deadline: float) -> _AConn:
        """Dials once, if a dial is due (see ``_link``)."""
        link = self._link
        link.may_dial(time.monotonic())
        try:
            conn = await _AConn.open(link.path, max(0.001, deadline - time.monotonic()))
        except (OSError, asyncio.TimeoutError) as e:
            raise link.dial_failed(time.monotonic(), e) from None
        link.dialed()
        self._start_ticker()
        return conn

    def _start_ticker(self) -> None:
        """Starts the background task (once per event loop and process)
        that sends the near tier's reports and the pending invalidations."""
        t = self._ticker
        loop = asyncio.get_running_loop()
        if t is not None and not t.done() and t.get_loop() is loop and self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._ticker = loop.create_task(_tick_forever(weakref.ref(self)))

    async def _tick(self) -> float:
        """Sends what is due in the background; see :meth:`Client._tick`."""
        try:
            if self._link.pending:
                await self._run(_core.ping(), None)
            if self._reporter is not None:
                call = self._reporter.due(time.monotonic())
                if call is not None:
                    await self._run(call, None)
        except Error:
            pass
        if self._link.pending:
            return PENDING_POLL
        return self._reporter.interval if self._reporter is not None else DEFAULT_INTERVAL

    async def _flush(self, conn: _AConn, deadline: float) -> None:
        """Sends the pending invalidations on ``conn``, in order, before
        anything else; raises Lost as a roundtrip does, but with ``sent``
        False: the call that waits behind them was not sent."""
        link = self._link
        async with self._lock():
            while (op := link.pending.next()) is not None:
                call = link.pending.call(op)
                try:
                    body = await conn.roundtrip(call, int(link.timeout * 1000), deadline)
                except Lost as e:
                    raise Lost(str(e), sent=False) from None
                if not link.flushed(op, call, body):
                    return  # the daemon cannot apply it now: a later call tries again

    async def _run(self, call: Call[T], timeout: float | timedelta | None) -> T:
        link = self._link
        budget = link.budget(timeout, time.monotonic())
        if link.needs_limit(call):
            link.limit = (await self._run(_core.ping(), timeout)).max_request_size
        link.check_size(call)
        if self._near is not None and call.request is not None:
            drop_before(self._near, call.request)  # drops its own entries of a write
        for attempt in (0, 1):
            conn = await self._connection(budget.deadline)
            try:
                if link.pending:
                    await self._flush(conn, budget.deadline)
                body = await conn.roundtrip(call, budget.timeout_ms, budget.deadline)
            except Lost as e:
                link.resend(call, attempt, e)
                continue
            return _core.finish(call, body)
        raise AssertionError("unreachable")

    async def _invalidate(self, call: Call[T], strict: bool, timeout: float | None, queued: T) -> T:
        """Runs a Delete or a bump; see :meth:`Client.delete`."""
        try:
            return await self._run(call, timeout)
        except Error as e:
            self._link.keep(call, e, strict, self._near)
            self._start_ticker()  # sends it when the daemon is back
            return queued

    async def get(
        self, ns: BytesLike, key: BytesLike, *, timeout: float | None = None
    ) -> bytes | None:
        """Returns the value of ``ns``/``key``, or None when it is absent."""
        near = self._near
        if near is None:
            return (await self._run(_core.get(ns, key), timeout)).value
        nsb, kb = as_bytes(ns, "ns"), as_bytes(key, "key")
        e = near.entry(nsb, kb)
        if e is not None:
            return e.value  # None: known absent
        return (await self._fetch(nsb, kb, False, None, timeout)).value

    async def _fetch(
        self, ns: bytes, key: bytes, lease: bool, lease_ttl: TTL | None, timeout: float | None
    ) -> GetResult:
        """A Get the near tier missed: asked with a ticket, filled from."""
        assert self._near is not None
        ticket = self._near.ticket()
        r = await self._run(_core.get(ns, key, lease=lease, lease_ttl=lease_ttl), timeout)
        offer(self._near, ticket, ns, key, r)
        return r

    async def _nc_get(self, ns: bytes, key: bytes, p: Policy) -> GetResult:
        """The Get of ``@cached`` (its Backend, see ``_cached``) for a key
        its near-tier lookup just missed."""
        if p.near_reads and self._near is not None:
            return await self._fetch(ns, key, p.lease, p.lease_ttl, p.timeout)
        return await self.get_ex(
            ns, key, lease=p.lease, lease_ttl=p.lease_ttl, slide=p.slide_ttl, timeout=p.timeout
        )

    async def get_ex(
        self,
        ns: BytesLike,
        key: BytesLike,
        *,
        lease: bool = False,
        lease_ttl: TTL | None = None,
        slide: TTL | None = None,
        timeout: float | None = None,
    ) -> GetResult:
        """Returns everything a Get answers; see :meth:`Client.get_ex`."""
        near = self._near
        if near is None or slide is not None:
            call = _core.get(ns, key, lease=lease, lease_ttl=lease_ttl, slide=slide)
            return await self._run(call, timeout)
        nsb, kb = as_bytes(ns, "ns"), as_bytes(key, "key")
        hit = near_result(near, nsb, kb)
        return hit if hit is not None else await self._fetch(nsb, kb, lease, lease_ttl, timeout)

    async def set(
        self,
        ns: BytesLike,
        key: BytesLike,
        value: BytesLike,
        ttl: TTL | None = None,
        *,
        lease_token: bytes | None = None,
        negative: bool = False,
        stale_while_revalidate: TTL | None = None,
        timeout: float | None = None,
    ) -> int:
        """Stores ``value``; returns the TTL applied in ms. See :meth:`Client.set`."""
        call = _core.set_(
            ns,
            key,
            value,
            ttl,
            lease_token=lease_token,
            negative=negative,
            stale_while_revalidate=stale_while_revalidate,
        )
        return await self._run(call, timeout)

    async def delete(
        self, ns: BytesLike, key: BytesLike, *, strict: bool = False, timeout: float | None = None
    ) -> bool:
        """Deletes the key everywhere; returns whether Redis held it. When
        the daemon cannot be reached: see :meth:`Client.delete`."""
        return await self._invalidate(_core.delete(ns, key), strict, timeout, False)

    async def release(
        self, ns: BytesLike, key: BytesLike, lease_token: bytes, *, timeout: float | None = None
    ) -> bool:
        """Gives up a lease without storing; returns whether it was held."""
        return await self._run(_core.delete(ns, key, lease_token=lease_token), timeout)

    async def mget(
        self, ns: BytesLike, keys: Sequence[BytesLike], *, timeout: float | None = None
    ) -> list[bytes | None]:
        """Returns the values of ``keys`` in order, None for each one absent."""
        return [r.value for r in await self.mget_ex(ns, keys, timeout=timeout)]

    async def mget_ex(
        self, ns: BytesLike, keys: Sequence[BytesLike], *, timeout: float | None = None
    ) -> list[GetResult]:
        """Returns a GetResult for each of ``keys``, in order (near-tier
        hits among them)."""
        near = self._near
        if near is None or not keys:
            return await self._run(_core.mget(ns, keys), timeout)
        nsb, kbs = as_bytes(ns, "ns"), [as_bytes(k, "key") for k in keys]
        out, missing = plan_mget(near, nsb, kbs)
        ticket = near.ticket() if missing else None
        got: list[GetResult] = []
        if missing:
            got = await self._run(_core.mget(nsb, [kbs[i] for i in missing]), timeout)
        return merge_mget(near, ticket, nsb, kbs, out, missing, got)

    async def mset(
        self,
        ns: BytesLike,
        items: MSetItems,
        ttl: TTL | None = None,
        *,
        timeout: float | None = None,
    ) -> int:
        """Stores many keys of ``ns`` at once; returns how many were stored.
        A failure names the keys to retry (``not_stored``, ``maybe_stored``
        on the error), as :meth:`Client.mset` says."""
        return await self._run(_core.mset(ns, items, ttl), timeout)

    async def bump(
        self, ns: BytesLike, *, strict: bool = False, timeout: float | None = None
    ) -> int:
        """Drops every key of ``ns`` on every host; returns its new version,
        or 0 when it was kept for later (see :meth:`Client.bump`)."""
        return await self._invalidate(_core.bump(ns), strict, timeout, 0)

    async def stats(self, *, timeout: float | None = None) -> dict[str, int]:
        """Returns the daemon's counters and gauges by name."""
        return await self._run(_core.stats(), timeout)

    async def ping(self, *, timeout: float | None = None) -> PingInfo:
        """Returns the daemon's PingInfo (raises Unavailable if it is down)."""
        return await self._run(_core.ping(), timeout)

    def near_stats(self) -> NearStats | None:
        """Returns the near tier's counters, or None without a near tier."""
        return None if self._near is None else self._near.stats()

    async def request(self, body: bytes, *, timeout: float | None = None) -> Any:
        """Sends raw request bytes; returns the decoded Reply whatever its code."""
        return await self._run(_core.raw(body), timeout)

    async def close(self) -> None:
        """Sends the pending invalidations if the daemon answers, closes
        the connection; later calls raise Unavailable."""
        if self._link.pending and not self._closed:
            await self._flush_at_close()
        conn = self._conn
        if self._reporter is not None and conn is not None and conn.usable() and not self._closed:
            call = self._reporter.due(time.monotonic(), last=True)
            if call is not None:  # a last report, on the connection already open
                with contextlib.suppress(Error):
                    await self._run(call, 0.25)
        self._closed = True
        t, self._ticker = self._ticker, None
        if t is not None and t.get_loop() is asyncio.get_running_loop():
            t.cancel()
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._near is not None:
            self._near.close()

    async def _flush_at_close(self) -> None:
        link = self._link
        budget = link.budget(None, time.monotonic())
        link.dialed()  # one last dial, due or not
        try:
            conn = await self._connection(budget.deadline)
            await self._flush(conn, budget.deadline)
        except (Error, Lost) as e:
            link.lost_at_close(e)
        else:
            link.unapplied_at_close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


async def _tick_forever(ref: weakref.ref[AsyncClient]) -> None:
    """The background task of an AsyncClient (held weakly: it ends with it)."""
    wait = DEFAULT_INTERVAL
    while True:
        await asyncio.sleep(wait)
        c = ref()
        if c is None or c._closed:
            return
        wait = await c._tick()
        del c
