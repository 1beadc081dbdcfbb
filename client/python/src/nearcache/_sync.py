"""The thread-safe blocking client: a small pool of Unix-socket connections,
each driving one sans-I/O Protocol with a request at a time.

A call takes an idle connection (or dials one), writes its frame, reads
until its reply comes, and puts the connection back. A pool survives a fork:
the child sees another pid and dials its own connections.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
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

__all__ = ["Client"]

T = TypeVar("T")

_clients: weakref.WeakSet[Client] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for c in list(_clients):  # a thread of the parent (its ticker) may have held them
        c._lock = threading.Lock()
        c._flush_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


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
            raise Lost("timed out writing the request", sent=True) from None
        except OSError as e:
            raise Lost(f"write: {e}", sent=False) from None
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
                raise Lost(f"read: {e}", sent=True) from None
            if not data:
                raise Lost("the daemon closed the connection", sent=True)
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

    A Delete or bump that cannot reach the daemon is kept (at most
    ``max_pending``, then whole namespaces are bumped) and sent before
    anything else once it answers again; see :meth:`delete`.

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
        max_pending: int = DEFAULT_MAX_PENDING,
    ) -> None:
        self._link = Link(url, timeout, max_pending)
        self.url = self._link.url
        self.timeout = self._link.timeout
        self._near = make_tier(self.url, near_bytes, near_max_ttl, near_ring)
        self._nc_near = self._near  # for @cached (its Backend)
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._idle: list[_Conn] = []
        self._pid = os.getpid()
        self._closed = False
        self._reporter = Reporter(self._near) if self._near is not None else None
        self._ticker_pid = 0
        self._ticker_stop = threading.Event()
        _clients.add(self)

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
        """Dials once, if a dial is due (see ``_link``)."""
        link = self._link
        link.may_dial(time.monotonic())
        try:
            conn = _Conn(link.path, deadline)
        except OSError as e:
            raise link.dial_failed(time.monotonic(), e) from None
        link.dialed()
        self._start_ticker()
        return conn

    def _start_ticker(self) -> None:
        """Starts the background thread (once per process) that sends the
        near tier's reports and the pending invalidations."""
        if self._ticker_pid == os.getpid():
            return
        with self._lock:
            if self._ticker_pid == os.getpid() or self._closed:
                return
            self._ticker_pid = os.getpid()
            self._ticker_stop = threading.Event()
        t = threading.Thread(
            target=_tick_forever,
            args=(weakref.ref(self), self._ticker_stop),
            name="nearcache-report",
            daemon=True,
        )
        t.start()

    def _tick(self) -> float:
        """Sends what is due in the background: the pending invalidations
        (before a Ping) and the near tier's report. Returns how long to
        wait before the next tick."""
        try:
            if self._link.pending:
                self._run(_core.ping(), None)
            if self._reporter is not None:
                call = self._reporter.due(time.monotonic())
                if call is not None:
                    self._run(call, None)
        except Error:
            pass  # the daemon is away (the next tick tries again) or refused it
        if self._link.pending:
            return PENDING_POLL
        return self._reporter.interval if self._reporter is not None else DEFAULT_INTERVAL

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

    def _flush(self, conn: _Conn, deadline: float) -> None:
        """Sends the pending invalidations on ``conn``, in order, before
        anything else; raises Lost as a roundtrip does, but with ``sent``
        False: the call that waits behind them was not sent."""
        link = self._link
        with self._flush_lock:
            while (op := link.pending.next()) is not None:
                call = link.pending.call(op)
                try:
                    body = conn.roundtrip(call, int(link.timeout * 1000), deadline)
                except Lost as e:
                    raise Lost(str(e), sent=False) from None
                if not link.flushed(op, call, body):
                    return  # the daemon cannot apply it now: a later call tries again

    def _run(self, call: Call[T], timeout: float | timedelta | None) -> T:
        link = self._link
        budget = link.budget(timeout, time.monotonic())
        if link.needs_limit(call):
            link.limit = self._run(_core.ping(), timeout).max_request_size
        link.check_size(call)
        if self._near is not None and call.request is not None:
            drop_before(self._near, call.request)  # drops its own entries of a write
        for attempt in (0, 1):
            conn = self._take(budget.deadline)
            try:
                if link.pending:
                    self._flush(conn, budget.deadline)
                body = conn.roundtrip(call, budget.timeout_ms, budget.deadline)
            except Lost as e:
                conn.close()
                self._drop_idle()  # dialed before the same loss, most likely
                link.resend(call, attempt, e)
                continue
            except BaseException:
                conn.close()  # an interrupted read leaves the stream mid-frame
                raise
            self._give_back(conn)
            return _core.finish(call, body)
        raise AssertionError("unreachable")

    def _invalidate(self, call: Call[T], strict: bool, timeout: float | None, queued: T) -> T:
        """Runs a Delete or a bump; when the daemon cannot be reached, keeps
        it for later and returns ``queued`` (or raises, when ``strict``)."""
        try:
            return self._run(call, timeout)
        except Error as e:
            self._link.keep(call, e, strict, self._near)
            self._start_ticker()  # sends it when the daemon is back
            return queued

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

    def _nc_get(self, ns: bytes, key: bytes, p: Policy) -> GetResult:
        """The Get of ``@cached`` (its Backend, see ``_cached``) for a key
        its near-tier lookup just missed."""
        if p.near_reads and self._near is not None:
            return self._fetch(ns, key, p.lease, p.lease_ttl, p.timeout)
        return self.get_ex(
            ns, key, lease=p.lease, lease_ttl=p.lease_ttl, slide=p.slide_ttl, timeout=p.timeout
        )

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

    def delete(
        self, ns: BytesLike, key: BytesLike, *, strict: bool = False, timeout: float | None = None
    ) -> bool:
        """Deletes the key everywhere; returns whether Redis held it. When
        the daemon cannot be reached, the Delete is kept and sent as soon
        as it answers, and this returns False (logged once) or, with
        ``strict``, raises Unavailable."""
        return self._invalidate(_core.delete(ns, key), strict, timeout, False)

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
        ttl]) tuples); returns how many were stored. On a Redis Cluster some
        hash slots may fail while others are stored: the error raised then
        lists the keys to retry in ``not_stored`` and ``maybe_stored``."""
        return self._run(_core.mset(ns, items, ttl), timeout)

    def bump(self, ns: BytesLike, *, strict: bool = False, timeout: float | None = None) -> int:
        """Drops every key of ``ns`` on every host; returns its new version,
        or 0 when the daemon cannot be reached and the bump was kept for
        later (as :meth:`delete` keeps a Delete)."""
        return self._invalidate(_core.bump(ns), strict, timeout, 0)

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
        """Sends the pending invalidations if the daemon answers, closes
        every connection; later calls raise Unavailable."""
        if self._link.pending and not self._closed:
            self._flush_at_close()
        if self._reporter is not None and self._idle and not self._closed:
            call = self._reporter.due(time.monotonic(), last=True)
            if call is not None:  # a last report, on a connection already open
                with contextlib.suppress(Error):
                    self._run(call, 0.25)
        self._ticker_stop.set()
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for c in idle:
            c.close()
        if self._near is not None:
            self._near.close()

    def _flush_at_close(self) -> None:
        link = self._link
        budget = link.budget(None, time.monotonic())
        link.dialed()  # one last dial, due or not
        try:
            conn = self._take(budget.deadline)
            try:
                self._flush(conn, budget.deadline)
            finally:
                conn.close()
        except (Error, Lost) as e:
            link.lost_at_close(e)
        else:
            link.unapplied_at_close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _tick_forever(ref: weakref.ref[Client], stop: threading.Event) -> None:
    """The background thread of a Client (held weakly: it ends with it)."""
    wait = DEFAULT_INTERVAL
    while not stop.wait(wait):
        c = ref()
        if c is None or c._closed:
            return
        wait = c._tick()
        del c
