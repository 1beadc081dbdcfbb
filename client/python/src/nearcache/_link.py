"""The policy of a client's link to its daemon, without I/O: budgets and
deadlines, the request-size probe, when to dial and what a failed dial
says, when a request lost with its connection is sent again, and the
invalidations kept while the daemon cannot be reached.

``Client`` and ``AsyncClient`` each own one :class:`Link` and only carry
its decisions out: they dial, write and read; the Link decides. Nothing
here opens a socket or sleeps; times are passed in (``time.monotonic()``).

Dialing fails fast (docs/protocol.md, "Client rules"): a failed dial is
not retried; the next one is due after a backoff (50 ms doubling to 2 s,
jittered to half to all of it, reset by a success), and a call made before it is due fails
at once with the last dial error, unless the socket file changed since
(a daemon that started there): then it dials at once.
"""

from __future__ import annotations

import asyncio
import errno
import grp
import logging
import os
import pwd
import random
import stat
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, TypeVar

from . import _core
from ._core import Call
from .errors import DeadlineExceeded, Error, PermissionDenied, ResourceExhausted, Unavailable

if TYPE_CHECKING:
    from ._near import NearTier

__all__ = ["Link", "Lost", "Pending", "dial_error", "seconds", "slack"]

T = TypeVar("T")
log = logging.getLogger("nearcache")

#: The first pause after a failed dial, and the longest, in seconds.
MIN_BACKOFF = 0.05
MAX_BACKOFF = 2.0
#: How many undelivered invalidations a client keeps by default.
DEFAULT_MAX_PENDING = 1000
#: How often the background thread or task looks for the daemon while
#: invalidations are pending (a dial is made only when one is due).
PENDING_POLL = 0.05


class Lost(Exception):
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


def _undelivered(e: Error) -> Error:
    """Marks ``e`` as a failure to reach the daemon (not the daemon's answer)."""
    e._nc_undelivered = True  # type: ignore[attr-defined]
    return e


def undelivered(e: BaseException) -> bool:
    """Whether ``e`` says the request never got an answer from the daemon:
    the dial failed or the connection was lost before the reply."""
    return bool(getattr(e, "_nc_undelivered", False))


def _owner(st: os.stat_result) -> tuple[str, str]:
    try:
        user = pwd.getpwuid(st.st_uid).pw_name
    except KeyError:
        user = str(st.st_uid)
    try:
        group = grp.getgrgid(st.st_gid).gr_name
    except KeyError:
        group = str(st.st_gid)
    return user, group


def _me() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _denied(url: str, path: str) -> Error:
    """The PERMISSION_DENIED error of a dial: the socket (or the directory
    that cannot be searched), its owner, group and mode, and the fix."""
    target = path
    try:
        st = os.stat(path)
    except PermissionError:
        target = os.path.dirname(path) or "."
        try:
            st = os.stat(target)
        except OSError:
            return PermissionDenied(f"cannot connect to nearcached at {url}: permission denied")
    except OSError:
        return PermissionDenied(f"cannot connect to nearcached at {url}: permission denied")
    user, group = _owner(st)
    me = _me()
    return PermissionDenied(
        f"cannot connect to nearcached at {url}: permission denied on {target} "
        f"({user}:{group} {stat.S_IMODE(st.st_mode):04o}); this process runs as {me}. "
        f"Add {me} to the group {group} (then start the process again), or set "
        f"socket_group in the daemon's config to a group {me} is in"
    )


def dial_error(url: str, path: str, e: Exception) -> Error:
    """Returns the error a failed dial raises, saying what was found at
    ``path`` and what to do about it."""
    head = f"cannot reach nearcached at {url}"
    code = getattr(e, "errno", None)
    if code == errno.ENOENT:
        folder = os.path.dirname(path) or "."
        also = "" if os.path.isdir(folder) else f" (nor its directory {folder})"
        return Unavailable(
            f"{head}: there is no socket {path}{also}, so no daemon is listening there "
            "(start nearcached, or point the client at its socket: "
            "NEARCACHE_URL=ipc://PATH or url=)"
        )
    if code == errno.ECONNREFUSED:
        return Unavailable(
            f"{head}: nothing listens on {path} (a stale socket: the daemon is not "
            "running; start it, or set NEARCACHE_URL to the socket of one that is)"
        )
    if code in (errno.EACCES, errno.EPERM):
        return _denied(url, path)
    return Unavailable(f"{head}: {e or 'timed out'}")


def _stamp(path: str) -> tuple[int, int] | None:
    """The socket file's identity (inode, change time), or None without one."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_ctime_ns


@dataclass
class Budget:
    """One call's time: its deadline (monotonic seconds) and the
    ``timeout_ms`` sent to the daemon."""

    deadline: float
    timeout_ms: int


class Pending:
    """Invalidations the daemon could not be given, in order, at most
    ``limit`` of them; beyond that, the namespaces whose entries were
    dropped (each is bumped instead). Each entry is ``(ns, key)`` for a
    Delete or ``(ns, None)`` for a BumpNamespace."""

    def __init__(self, limit: int = DEFAULT_MAX_PENDING) -> None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise ValueError(f"max_pending must be a whole number >= 0, got {limit!r}")
        self.limit = limit
        self.ops: deque[tuple[bytes, bytes | None]] = deque()
        self.overflow: dict[bytes, None] = {}  # ordered set
        self.logged = False

    def __len__(self) -> int:
        return len(self.ops) + len(self.overflow)

    def add(self, ns: bytes, key: bytes | None) -> None:
        """Keeps a Delete (``key``) or a bump (None) of ``ns`` for later."""
        if ns in self.overflow:
            return  # the bump to come covers it
        if len(self.ops) >= self.limit:
            self.overflow[ns] = None
            return
        self.ops.append((ns, key))

    def next(self) -> tuple[bytes, bytes | None] | None:
        """The invalidation to send first: the overflow's bumps, then the
        kept ones in order; None when there is none. It stays until
        :meth:`sent` says it was answered."""
        if self.overflow:
            return next(iter(self.overflow)), None
        return self.ops[0] if self.ops else None

    def sent(self, op: tuple[bytes, bytes | None]) -> None:
        """Forgets ``op``: the daemon answered it."""
        ns, key = op
        if key is None and ns in self.overflow:
            del self.overflow[ns]
        elif self.ops and self.ops[0] == op:
            self.ops.popleft()
        if not self:
            self.logged = False

    @staticmethod
    def call(op: tuple[bytes, bytes | None]) -> Call[object]:
        """The request that delivers ``op``."""
        ns, key = op
        if key is None:
            return _core.bump(ns)  # type: ignore[return-value]
        return _core.delete(ns, key)  # type: ignore[return-value]


class Link:
    """One client's link policy: ``url``'s socket ``path``, the default
    budget ``timeout`` (seconds), the daemon's request limit once known,
    the dial backoff and the pending invalidations."""

    def __init__(
        self,
        url: str | None,
        timeout: float | timedelta,
        max_pending: int = DEFAULT_MAX_PENDING,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.url = _core.resolve_url(url)
        self.path = _core.ipc_path(self.url)
        self.timeout = seconds(timeout)
        self.limit: int | None = None
        self.pending = Pending(max_pending)
        self._rng = rng
        self._error: Error | None = None
        self._due = 0.0
        self._pause = 0.0
        self._seen: tuple[int, int] | None = None  #: the socket file at the last failure

    # --- a call's budget and size -------------------------------------------

    def budget(self, timeout: float | timedelta | None, now: float) -> Budget:
        """Returns the budget of a call started at ``now``."""
        t = self.timeout if timeout is None else seconds(timeout)
        return Budget(now + t + slack(t), int(t * 1000))

    def needs_limit(self, call: Call[T]) -> bool:
        """Whether ``call`` is large enough that the daemon's limit must be
        learned (one Ping) before it is sent."""
        return self.limit is None and _core.request_size(call) > _core.SMALL_REQUEST

    def check_size(self, call: Call[T]) -> None:
        """Raises ResourceExhausted when ``call`` is over the daemon's limit."""
        if self.limit is not None:
            _core.check_size(_core.request_size(call), self.limit)

    # --- dialing ------------------------------------------------------------

    def may_dial(self, now: float) -> None:
        """Raises the last dial's error again while the next dial is not
        due; returns when a dial may be made: when it is due, or when the
        socket file changed since the failure (a daemon that started)."""
        e = self._error
        if e is not None and now < self._due and _stamp(self.path) == self._seen:
            raise _undelivered(type(e)(e.message, e.code))

    def dial_failed(self, now: float, exc: Exception) -> Error:
        """Records a failed dial (the next is due after the backoff) and
        returns the error to raise. A dial that timed out (a daemon that
        accepts but does not answer: frozen or overloaded) is
        DeadlineExceeded, as a reply that does not come, and delays no
        other dial."""
        if isinstance(exc, (TimeoutError, asyncio.TimeoutError)):
            return _undelivered(
                DeadlineExceeded(f"nearcached at {self.url} did not answer the connection in time")
            )
        self._seen = _stamp(self.path)
        self._pause = MIN_BACKOFF if self._pause == 0 else min(self._pause * 2, MAX_BACKOFF)
        self._due = now + self._pause * (0.5 + 0.5 * self._rng())  # half to all of it
        self._error = dial_error(self.url, self.path, exc)
        return _undelivered(type(self._error)(self._error.message, self._error.code))

    def dialed(self) -> None:
        """Records a dial that succeeded: the backoff starts over."""
        self._error, self._pause, self._due = None, 0.0, 0.0

    # --- a lost connection --------------------------------------------------

    def resend(self, call: Call[T], attempt: int, e: Lost) -> None:
        """Returns when ``call``, lost with its connection on ``attempt``
        (0 or 1), is to be sent again on a new one; raises Unavailable when
        not (it may have been applied)."""
        if attempt == 0 and (call.retry_safe or not e.sent):
            return
        raise _undelivered(
            Unavailable(f"connection to nearcached lost ({e}); the request may have been applied")
        )

    # --- invalidations kept while the daemon is unreachable -----------------

    def keep(self, call: Call[T], e: Error, strict: bool, near: NearTier | None = None) -> None:
        """After an invalidation ``call`` (a Delete without a lease token or
        a bump) failed with ``e``: keeps it to send when the daemon answers
        again, when ``e`` says the daemon was not reached, and empties the
        ``near`` tier (a reply in flight may hold what it replaced). Raises
        ``e`` when it was reached; Unavailable (with ``e``'s message) when
        ``strict``."""
        if not undelivered(e) or call.request is None:
            raise e
        method = call.request.WhichOneof("method")
        if method == "delete":
            self.pending.add(call.request.delete.ns, call.request.delete.key)
        elif method == "bump_namespace":
            self.pending.add(call.request.bump_namespace.ns, None)
        else:
            raise e
        if near is not None:
            near.forget()
        if strict:  # UNAVAILABLE, whatever the dial said (as in every client)
            if isinstance(e, Unavailable):
                raise e
            raise _undelivered(Unavailable(e.message)) from e
        if not self.pending.logged:
            self.pending.logged = True
            log.warning(
                "nearcache: %s; invalidations are kept (%d now) and sent as soon as it answers",
                e.message,
                len(self.pending),
            )

    def flushed(self, op: tuple[bytes, bytes | None], call: Call[T], body: bytes) -> bool:
        """Records the daemon's answer ``body`` to the pending invalidation
        ``op`` (sent as ``call``); returns whether to send the next one. One
        the daemon could not apply for now (its Redis unavailable, out of
        time, its queue full) stays first in line; one it refused is
        dropped, logged."""
        try:
            _core.finish(call, body)
        except (Unavailable, DeadlineExceeded, ResourceExhausted):
            return False
        except Error as e:
            log.warning("nearcache: a pending invalidation of %r was refused: %s", op[0], e.message)
        self.pending.sent(op)
        return True

    def lost_at_close(self, e: BaseException) -> None:
        """Logs the invalidations a closing client could not deliver."""
        log.warning(
            "nearcache: closing with %d invalidations undelivered (%s)", len(self.pending), e
        )

    def unapplied_at_close(self) -> None:
        """Logs the invalidations a closing client's daemon answered but
        could not apply (its Redis away): they are lost too."""
        if self.pending:
            self.lost_at_close(Unavailable("the daemon could not apply them yet"))
