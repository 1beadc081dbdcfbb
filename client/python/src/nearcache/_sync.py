"""The thread-safe blocking client: a small pool of Unix-socket connections,
each driving one sans-I/O Protocol with a request at a time.

A call takes an idle connection (or dials one), writes its frame, reads
until its reply comes, and puts the connection back. A pool survives a fork:
the child sees another pid and dials its own connections.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from types import TracebackType
from typing import Any, TypeVar

from . import _core
from ._core import TTL, BytesLike, Call, GetResult, MSetItems, PingInfo, as_bytes
from ._near import DEFAULT_NEAR_BYTES, DEFAULT_NEAR_MAX_TTL, NearStats, make_tier
from ._nearcalls import drop_before, merge_mget, near_result, offer, plan_mget
from .errors import DeadlineExceeded, Error, Unavailable

__all__ = ["Client"]

T = TypeVar("T")
#: How long after a failed dial a call dials once instead of retrying.
_DOWN_GRACE = 1.0


class _Lost(Exception):
    """The connection failed; ``sent``: the request may have reached the daemon."""

    def __init__(self, why: str, sent: bool) -> None:
        super().__init__(why)
        self.sent = sent


def slack(timeout: float) -> float:
    """Returns how long past a request's budget a client waits for the
    daemon's own answer (writes may answer at the deadline itself)."""
    return max(0.1, timeout * 0.1)


def seconds(timeout: float | timedelta) -> float:
    """Returns a timeout in seconds; raises ValueError if it is not positive."""
    t = timeout.total_seconds() if isinstance(timeout, timedelta) else float(timeout)
    if t <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return t


class _Conn:
    """One connection to the daemon (blocking socket) and its Protocol."""

    def __init__(self, path: str, deadline: float) -> None:
        self.pid = os.getpid()
        self.proto = _core.Protocol()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            self.sock.connect(path)
            self.sock.sendall(self.proto.initiate())
            while not self.proto.ready:
                data = self.sock.recv(8)
                if not data:
                    raise OSError("the daemon closed the connection during the handshake")
                self.proto.receive(data)
        except BaseException:
            self.sock.close()
            raise
        self.replies: dict[int, bytes] = {}

    def roundtrip(self, call: Call[T], timeout_ms: int, deadline: float) -> bytes:
        """Sends ``call`` and returns its reply body. Raises _Lost when the
        connection fails, DeadlineExceeded at ``deadline``."""
        sp_id, data = self.proto.encode(call, timeout_ms)
        try:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))
            self.sock.sendall(data)
        except TimeoutError:
            raise _Lost("timed out writing the request", sent=True) from None
        except OSError as e:
            raise _Lost(f"write: {e}", sent=False) from None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"no reply from the daemon within {timeout_ms} ms")
            try:
                self.sock.settimeout(left)
                data = self.sock.recv(262144)
            except TimeoutError:
                continue
            except OSError as e:
                raise _Lost(f"read: {e}", sent=True) from None
            if not data:
                raise _Lost("the daemon closed the connection", sent=True)
            # Replies to requests given up on earlier are dropped here.
            for rid, body in self.proto.receive(data):
                if rid == sp_id:
                    return body

    def close(self) -> None:
        self.sock.close()


class Client:
    """A blocking nearcache client, safe to share between threads.

    ``url``: ``ipc://PATH``; None takes ``$NEARCACHE_URL``, else
    ``ipc:///run/nearcache/nearcached.sock``. ``timeout``: each call's
    budget in seconds (sent to the daemon as ``timeout_ms``), unless the call
    gives its own.

    The near tier keeps hot values in this process too, so a hit costs no
    round trip: at most ``near_bytes`` (0 turns it off), each for at most
    ``near_max_ttl`` seconds, kept coherent by the daemon's ring file
    (``near_ring``; by default the socket's path + ``.ring``). Without a
    ring it serves nothing; :meth:`near_stats` says why.

    Every method raises :class:`nearcache.Error` subclasses:
    :class:`Unavailable` when the daemon cannot be reached,
    :class:`DeadlineExceeded` when no reply came in time, and the class of
    the daemon's status code otherwise.
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
        self._lock = threading.Lock()
        self._idle: list[_Conn] = []
        self._pid = os.getpid()
        self._closed = False
        self._down_since: float | None = None
        self._limit: int | None = None

    # --- the pool -----------------------------------------------------------

    def _take(self, deadline: float) -> _Conn:
        with self._lock:
            if self._closed:
                raise Unavailable("client is closed")
            if self._pid != os.getpid():  # a forked child: the parent's are not ours
                for c in self._idle:
                    c.sock.close()  # closes the child's copy only
                self._idle, self._pid = [], os.getpid()
            if self._idle:
                return self._idle.pop()
        return self._dial(deadline)

    def _dial(self, deadline: float) -> _Conn:
        """Dials, retrying until ``deadline`` (a restarting daemon), or once
        when the daemon was found down less than a second ago."""
        pause = 0.005
        while True:
            down = self._down_since
            try:
                conn = _Conn(self._path, deadline)
            except OSError as e:
                now = time.monotonic()
                if down is None:
                    self._down_since = now
                if (down is not None and now - down < _DOWN_GRACE) or now + pause >= deadline:
                    raise Unavailable(f"cannot reach nearcached at {self.url}: {e}") from None
                time.sleep(pause)
                pause = min(pause * 2, 0.1)
                continue
            except Error:
                raise
            self._down_since = None
            return conn

    def _drop_idle(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()

    def _give_back(self, conn: _Conn) -> None:
        with self._lock:
            if not self._closed and conn.pid == os.getpid():
                self._idle.append(conn)
                return
        conn.close()

    def _run(self, call: Call[T], timeout: float | timedelta | None) -> T:
        t = self.timeout if timeout is None else seconds(timeout)
        deadline = time.monotonic() + t + slack(t)
        size = _core.request_size(call)
        if size > _core.SMALL_REQUEST and self._limit is None:
            self._limit = self._run(_core.ping(), t).max_request_size
        _core.check_size(size, self._limit)
        if self._near is not None and call.request is not None:
            drop_before(self._near, call.request)  # drops its own entries of a write
        for attempt in (0, 1):
            conn = self._take(deadline)
            try:
                body = conn.roundtrip(call, int(t * 1000), deadline)
            except _Lost as e:
                conn.close()
                self._drop_idle()  # dialed before the same loss, most likely
                if attempt == 0 and (call.retry_safe or not e.sent):
                    continue
                raise Unavailable(
                    f"connection to nearcached lost ({e}); the request may have been applied"
                ) from None
            except BaseException:
                conn.close()  # an interrupted read leaves the stream mid-frame
                raise
            self._give_back(conn)
            return _core.finish(call, body)
        raise AssertionError("unreachable")

    # --- the API ------------------------------------------------------------

    def get(self, ns: BytesLike, key: BytesLike, *, timeout: float | None = None) -> bytes | None:
        """Returns the value of ``ns``/``key``, or None when it is absent."""
        near = self._near
        if near is None:
            return self._run(_core.get(ns, key), timeout).value
        nsb, kb = as_bytes(ns, "ns"), as_bytes(key, "key")
        e = near.entry(nsb, kb)
        if e is not None:
            return e.value  # None: known absent
        return self._fetch(nsb, kb, False, None, timeout).value

    def _fetch(
        self, ns: bytes, key: bytes, lease: bool, lease_ttl: TTL | None, timeout: float | None
    ) -> GetResult:
        """A Get the near tier missed: asked with a ticket, filled from."""
        assert self._near is not None
        ticket = self._near.ticket()
        r = self._run(_core.get(ns, key, lease=lease, lease_ttl=lease_ttl), timeout)
        offer(self._near, ticket, ns, key, r)
        return r

    def get_ex(
        self,
        ns: BytesLike,
        key: BytesLike,
        *,
        lease: bool = False,
        lease_ttl: TTL | None = None,
        slide: TTL | None = None,
        timeout: float | None = None,
    ) -> GetResult:
        """Returns everything a Get answers (source, TTL, stale, negative,
        lease). With ``lease``, a miss takes the key's lease
        (``LeaseState.GRANTED`` and a token) or waits for its holder;
        ``slide`` keeps the key alive that long after each read. A near-tier
        hit answers at once (source NEAR); a sliding Get always goes to the
        daemon."""
        near = self._near
        if near is None or slide is not None:
            call = _core.get(ns, key, lease=lease, lease_ttl=lease_ttl, slide=slide)
            return self._run(call, timeout)
        nsb, kb = as_bytes(ns, "ns"), as_bytes(key, "key")
        hit = near_result(near, nsb, kb)
        return hit if hit is not None else self._fetch(nsb, kb, lease, lease_ttl, timeout)

    def set(
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
        """Stores ``value`` for ``ttl`` (seconds or timedelta; None: the
        daemon's default) and returns the TTL applied, in ms. With
        ``lease_token``, stores only if that lease is still valid, else
        raises :class:`Aborted`. ``negative`` stores "known absent"."""
        call = _core.set_(
            ns,
            key,
            value,
            ttl,
            lease_token=lease_token,
            negative=negative,
            stale_while_revalidate=stale_while_revalidate,
        )
        return self._run(call, timeout)

    def delete(self, ns: BytesLike, key: BytesLike, *, timeout: float | None = None) -> bool:
        """Deletes the key everywhere; returns whether Redis held it."""
        return self._run(_core.delete(ns, key), timeout)

    def release(
        self, ns: BytesLike, key: BytesLike, lease_token: bytes, *, timeout: float | None = None
    ) -> bool:
        """Gives up a lease without storing (a loader that failed); returns
        whether the lease was still held with that token."""
        return self._run(_core.delete(ns, key, lease_token=lease_token), timeout)

    def mget(
        self, ns: BytesLike, keys: Sequence[BytesLike], *, timeout: float | None = None
    ) -> list[bytes | None]:
        """Returns the values of ``keys`` in order, None for each one absent."""
        return [r.value for r in self.mget_ex(ns, keys, timeout=timeout)]

    def mget_ex(
        self, ns: BytesLike, keys: Sequence[BytesLike], *, timeout: float | None = None
    ) -> list[GetResult]:
        """Returns a GetResult for each of ``keys``, in order; the near
        tier answers the keys it holds, the daemon the others."""
        near = self._near
        if near is None or not keys:
            return self._run(_core.mget(ns, keys), timeout)
        nsb, kbs = as_bytes(ns, "ns"), [as_bytes(k, "key") for k in keys]
        out, missing = plan_mget(near, nsb, kbs)
        ticket = near.ticket() if missing else None
        got = self._run(_core.mget(nsb, [kbs[i] for i in missing]), timeout) if missing else []
        return merge_mget(near, ticket, nsb, kbs, out, missing, got)

    def mset(
        self,
        ns: BytesLike,
        items: MSetItems,
        ttl: TTL | None = None,
        *,
        timeout: float | None = None,
    ) -> int:
        """Stores many keys of ``ns`` at once (a mapping, or (key, value[,
        ttl]) tuples); returns how many were stored."""
        return self._run(_core.mset(ns, items, ttl), timeout)

    def bump(self, ns: BytesLike, *, timeout: float | None = None) -> int:
        """Drops every key of ``ns`` on every host; returns its new version."""
        return self._run(_core.bump(ns), timeout)

    def stats(self, *, timeout: float | None = None) -> dict[str, int]:
        """Returns the daemon's counters and gauges by name."""
        return self._run(_core.stats(), timeout)

    def ping(self, *, timeout: float | None = None) -> PingInfo:
        """Returns the daemon's PingInfo (raises Unavailable if it is down)."""
        return self._run(_core.ping(), timeout)

    def near_stats(self) -> NearStats | None:
        """Returns the near tier's counters, or None without a near tier."""
        return None if self._near is None else self._near.stats()

    def request(self, body: bytes, *, timeout: float | None = None) -> Any:
        """Sends ``body`` as raw request bytes and returns the decoded
        ``nearcache.v1.Reply`` whatever its code. For tools and tests."""
        return self._run(_core.raw(body), timeout)

    def close(self) -> None:
        """Closes every connection; later calls raise Unavailable."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()
        if self._near is not None:
            self._near.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
