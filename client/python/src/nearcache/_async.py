"""The asyncio client: one Unix-socket connection, on the event loop that
uses it, with many requests in flight, each matched to its reply by id.

A reader task feeds every byte read to the connection's sans-I/O Protocol
and resolves the future of each reply's id. A caller that is cancelled or
times out forgets its id; its reply, if it comes, is dropped. A forked child
or another event loop gets a connection of its own.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from . import _core
from ._core import TTL, BytesLike, Call, GetResult, MSetItems, PingInfo, as_bytes
from ._near import DEFAULT_NEAR_BYTES, DEFAULT_NEAR_MAX_TTL, NearStats, make_tier
from ._nearcalls import drop_before, merge_mget, near_result, offer, plan_mget
from ._sync import _DOWN_GRACE, _Lost, seconds, slack
from .errors import DeadlineExceeded, Error, Unavailable

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
                fut.set_exception(_Lost(why, sent=True))

    async def roundtrip(self, call: Call[T], timeout_ms: int, deadline: float) -> bytes:
        """Sends ``call`` and returns its reply body; raises _Lost or
        DeadlineExceeded. Cancelling the caller leaves the connection usable."""
        if self.lost is not None:
            raise _Lost(self.lost, sent=False)
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
            raise _Lost(f"write: {e}", sent=False) from None
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
    ) -> None:
        self.url = _core.resolve_url(url)
        self._path = _core.ipc_path(self.url)
        self.timeout = seconds(timeout)
        self._near = make_tier(self.url, near_bytes, near_max_ttl, near_ring)
        self._conn: _AConn | None = None
        self._dialing: asyncio.Lock | None = None
        self._closed = False
        self._down_since: float | None = None
        self._limit: int | None = None

    async def _connection(self, deadline: float) -> _AConn:
        conn = self._conn
        if conn is not None and conn.usable():
            return conn
        loop = asyncio.get_running_loop()
        if self._dialing is None or getattr(self._dialing, "_nc_loop", None) is not loop:
            self._dialing = asyncio.Lock()
            self._dialing._nc_loop = loop  # type: ignore[attr-defined]
        async with self._dialing:
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
        pause = 0.005
        while True:
            down = self._down_since
            try:
                conn = await _AConn.open(self._path, max(0.001, deadline - time.monotonic()))
            except (OSError, asyncio.TimeoutError) as e:
                now = time.monotonic()
                if down is None:
                    self._down_since = now
                if (down is not None and now - down < _DOWN_GRACE) or now + pause >= deadline:
                    raise Unavailable(
                        f"cannot reach nearcached at {self.url}: {e or 'timed out'}"
                    ) from None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 0.1)
                continue
            self._down_since = None
            return conn

    async def _run(self, call: Call[T], timeout: float | timedelta | None) -> T:
        t = self.timeout if timeout is None else seconds(timeout)
        deadline = time.monotonic() + t + slack(t)
        size = _core.request_size(call)
        if size > _core.SMALL_REQUEST and self._limit is None:
            self._limit = (await self._run(_core.ping(), t)).max_request_size
        _core.check_size(size, self._limit)
        if self._near is not None and call.request is not None:
            drop_before(self._near, call.request)  # drops its own entries of a write
        for attempt in (0, 1):
            conn = await self._connection(deadline)
            try:
                body = await conn.roundtrip(call, int(t * 1000), deadline)
            except _Lost as e:
                if attempt == 0 and (call.retry_safe or not e.sent):
                    continue
                raise Unavailable(
                    f"connection to nearcached lost ({e}); the request may have been applied"
                ) from None
            return _core.finish(call, body)
        raise AssertionError("unreachable")

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

    async def delete(self, ns: BytesLike, key: BytesLike, *, timeout: float | None = None) -> bool:
        """Deletes the key everywhere; returns whether Redis held it."""
        return await self._run(_core.delete(ns, key), timeout)

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
        """Stores many keys of ``ns`` at once; returns how many were stored."""
        return await self._run(_core.mset(ns, items, ttl), timeout)

    async def bump(self, ns: BytesLike, *, timeout: float | None = None) -> int:
        """Drops every key of ``ns`` on every host; returns its new version."""
        return await self._run(_core.bump(ns), timeout)

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
        """Closes the connection; later calls raise Unavailable."""
        self._closed = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        if self._near is not None:
            self._near.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
