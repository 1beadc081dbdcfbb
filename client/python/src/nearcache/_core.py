"""The client without I/O: requests built from Python arguments, replies
turned into results or exceptions, request ids, the size check, and the URL.

Both shells (``Client`` and ``AsyncClient``) drive one :class:`Protocol` per
connection: ``encode()`` gives the bytes to write and the SP id to wait for,
``receive()`` takes what the socket read and gives back ``(sp_id, body)``
pairs, and :func:`finish` turns a body into the call's result. Nothing here
reads a clock, opens a socket or sleeps.
"""

from __future__ import annotations

import enum
import math
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Generic, TypeAlias, TypeVar

from . import _sp
from ._pb import nearcache_pb2 as pb
from .errors import InvalidArgument, ProtocolError, ResourceExhausted, error_for

__all__ = [
    "DEFAULT_URL",
    "TTL",
    "BytesLike",
    "Call",
    "GetResult",
    "LeaseState",
    "PingInfo",
    "Protocol",
    "Source",
    "finish",
    "resolve_url",
]

DEFAULT_URL = "ipc:///run/nearcache/nearcached.sock"
#: The wire protocol's version this client speaks (docs/protocol.md, Versions).
PROTOCOL_VERSION = 1
#: Requests above this size make the client learn the daemon's limit first.
SMALL_REQUEST = 64 * 1024

BytesLike: TypeAlias = str | bytes | bytearray | memoryview
TTL: TypeAlias = int | float | timedelta
T = TypeVar("T")


class Source(enum.IntEnum):
    """Where a value came from."""

    UNSPECIFIED = 0
    L1 = 1  #: the daemon's memory
    L2 = 2  #: Redis
    NEAR = 3  #: this process's near tier


class LeaseState(enum.IntEnum):
    """What a Get with a lease found (see docs/protocol.md, Leases)."""

    NONE = 0  #: a hit, or no lease asked
    GRANTED = 1  #: a miss: load the value and set it with ``lease_token``
    WAITED = 2  #: another caller held the lease; its value is here
    BUSY = 3  #: another caller holds it and did not set in time: no value


@dataclass(frozen=True)
class GetResult:
    """Everything a Get answered. ``value`` is None when the key was not
    found (then ``negative`` says whether it is known absent) and on a
    GRANTED or BUSY lease without a stale value."""

    value: bytes | None
    source: Source = Source.UNSPECIFIED
    ttl_ms: int = 0
    lease: LeaseState = LeaseState.NONE
    lease_token: bytes = b""
    stale: bool = False
    negative: bool = False
    stale_ms: int = 0

    @property
    def found(self) -> bool:
        """Whether a value (possibly empty, possibly stale) came back."""
        return self.value is not None


@dataclass(frozen=True)
class PingInfo:
    """The daemon's Ping reply."""

    version: str
    node_id: str
    uptime_ms: int
    redis_up: bool
    subscribed: bool
    l1_serving: bool
    max_request_size: int
    protocol_version: int  #: the wire protocol's version (a daemon that does not say speaks 1)


@dataclass
class Call(Generic[T]):
    """One request and how to read its reply. ``retry_safe``: the request
    may be sent again on a new connection when the old one dropped with it
    in flight (see docs/protocol.md, Timeouts, resends and reconnects)."""

    request: pb.Request | None
    decode: Callable[[pb.Reply], T]
    retry_safe: bool
    raw: bytes | None = None  #: bytes to send as they are, instead of request


def as_bytes(value: BytesLike, what: str) -> bytes:
    """Returns ``value`` as bytes (str as UTF-8); raises TypeError otherwise."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    raise TypeError(f"{what} must be str or bytes, not {type(value).__name__}")


def to_ms(ttl: TTL, what: str = "ttl") -> int:
    """Returns a duration (seconds, or a timedelta) in whole milliseconds,
    rounding a positive fraction of a millisecond up (so it never becomes 0)."""
    if isinstance(ttl, timedelta):
        seconds = ttl.total_seconds()
    elif isinstance(ttl, (int, float)) and not isinstance(ttl, bool):
        seconds = float(ttl)
    else:
        raise TypeError(f"{what} must be seconds or a timedelta, not {type(ttl).__name__}")
    ms = seconds * 1000.0
    return math.ceil(ms) if ms > 0 else int(ms)


def resolve_url(url: str | None) -> str:
    """Returns the URL to use: ``url``, else ``$NEARCACHE_URL``, else the
    packaged socket."""
    return url or os.environ.get("NEARCACHE_URL") or DEFAULT_URL


def ipc_path(url: str) -> str:
    """Returns the socket path of an ``ipc://`` URL; raises InvalidArgument
    for any other transport."""
    if not url.startswith("ipc://") or len(url) == len("ipc://"):
        raise InvalidArgument(f"unsupported url {url!r}: the Python client speaks ipc://PATH only")
    return url[len("ipc://") :]


def check(reply: pb.Reply) -> None:
    """Raises the reply's error, if its code is not OK."""
    if reply.code != 0:
        raise error_for(reply.code, reply.message)


def _result(g: pb.GetReply, found: bool) -> GetResult:
    return GetResult(
        value=g.value if found else None,
        source=Source(g.source) if g.source in (0, 1, 2) else Source.UNSPECIFIED,
        ttl_ms=g.ttl_ms,
        lease=LeaseState(g.lease) if g.lease in (0, 1, 2, 3) else LeaseState.NONE,
        lease_token=g.lease_token,
        stale=g.stale,
        negative=g.negative,
        stale_ms=g.stale_ms,
    )


def _decode_get(reply: pb.Reply) -> GetResult:
    if reply.code == pb.NOT_FOUND:
        return _result(reply.get, False)
    check(reply)
    g = reply.get
    # A GRANTED or BUSY lease carries no value unless it is a stale one.
    found = g.lease not in (pb.LEASE_GRANTED, pb.LEASE_BUSY) or g.stale
    return _result(g, found)


# --- requests --------------------------------------------------------------


def get(
    ns: BytesLike,
    key: BytesLike,
    *,
    lease: bool = False,
    lease_ttl: TTL | None = None,
    slide: TTL | None = None,
) -> Call[GetResult]:
    """A Get; with ``lease``, one that takes the key's lease on a miss."""
    req = pb.GetRequest(ns=as_bytes(ns, "ns"), key=as_bytes(key, "key"), lease=lease)
    if lease_ttl is not None:
        req.lease_ttl_ms = to_ms(lease_ttl, "lease_ttl")
    if slide is not None:
        req.slide_ttl_ms = to_ms(slide, "slide")
    return Call(pb.Request(get=req), _decode_get, retry_safe=not lease)


def set_(
    ns: BytesLike,
    key: BytesLike,
    value: BytesLike,
    ttl: TTL | None = None,
    *,
    lease_token: bytes | None = None,
    negative: bool = False,
    stale_while_revalidate: TTL | None = None,
) -> Call[int]:
    """A Set; its result is the TTL applied, in ms."""
    req = pb.SetRequest(
        ns=as_bytes(ns, "ns"),
        key=as_bytes(key, "key"),
        value=as_bytes(value, "value"),
        negative=negative,
    )
    if ttl is not None:
        req.ttl_ms = to_ms(ttl)
    if lease_token:
        req.lease_token = lease_token
    if stale_while_revalidate is not None:
        req.stale_while_revalidate_ms = to_ms(stale_while_revalidate, "stale_while_revalidate")

    def decode(reply: pb.Reply) -> int:
        check(reply)
        return int(reply.set.ttl_ms)

    # A lease Set repeated after its first landed answers ABORTED: not safe.
    return Call(pb.Request(set=req), decode, retry_safe=not lease_token)


def delete(ns: BytesLike, key: BytesLike, *, lease_token: bytes | None = None) -> Call[bool]:
    """A Delete (or, with ``lease_token``, a lease release); its result is
    whether the key (or the lease) existed."""
    req = pb.DeleteRequest(ns=as_bytes(ns, "ns"), key=as_bytes(key, "key"))
    if lease_token:
        req.lease_token = lease_token

    def decode(reply: pb.Reply) -> bool:
        check(reply)
        return bool(reply.delete.existed)

    return Call(pb.Request(delete=req), decode, retry_safe=False)


def mget(ns: BytesLike, keys: Iterable[BytesLike]) -> Call[list[GetResult]]:
    """An MGet; its result has one GetResult per key, in order."""
    req = pb.MGetRequest(ns=as_bytes(ns, "ns"), keys=[as_bytes(k, "key") for k in keys])
    n = len(req.keys)

    def decode(reply: pb.Reply) -> list[GetResult]:
        check(reply)
        items = reply.mget.items
        if len(items) != n:
            raise ProtocolError(f"MGet of {n} keys answered {len(items)} items")
        return [_result(it.get, it.found) for it in items]

    return Call(pb.Request(mget=req), decode, retry_safe=True)


MSetItems: TypeAlias = (
    Mapping[str, BytesLike]
    | Mapping[bytes, BytesLike]
    | Iterable[tuple[BytesLike, BytesLike] | tuple[BytesLike, BytesLike, TTL | None]]
)


def mset(ns: BytesLike, items: MSetItems, ttl: TTL | None = None) -> Call[int]:
    """An MSet of ``items`` (a mapping, or (key, value[, ttl]) tuples), each
    with its own TTL or ``ttl`` (None: the daemon's default); its result is
    the number stored. Its error names the keys not stored in
    ``not_stored`` and ``maybe_stored`` (see :class:`Error`)."""
    pairs: Iterable[tuple[Any, ...]] = items.items() if isinstance(items, Mapping) else items
    entries = []
    for item in pairs:
        t: TTL | None = item[2] if len(item) > 2 else ttl
        entries.append(
            pb.MSetEntry(
                key=as_bytes(item[0], "key"),
                value=as_bytes(item[1], "value"),
                ttl_ms=0 if t is None else to_ms(t),
            )
        )
    req = pb.MSetRequest(ns=as_bytes(ns, "ns"), entries=entries)

    def decode(reply: pb.Reply) -> int:
        if reply.code != 0 and reply.WhichOneof("result") == "mset":
            err = error_for(reply.code, reply.message)
            err.not_stored, err.maybe_stored = [], []
            for f in reply.mset.failed:
                into = err.maybe_stored if f.maybe_stored else err.not_stored
                into.extend(entries[i].key for i in f.index if i < len(entries))
            raise err
        check(reply)
        return int(reply.mset.stored)

    return Call(pb.Request(mset=req), decode, retry_safe=True)


def bump(ns: BytesLike) -> Call[int]:
    """A BumpNamespace; its result is the namespace's new version."""

    def decode(reply: pb.Reply) -> int:
        check(reply)
        return int(reply.bump_namespace.version)

    req = pb.Request(bump_namespace=pb.BumpNamespaceRequest(ns=as_bytes(ns, "ns")))
    return Call(req, decode, retry_safe=False)


def stats() -> Call[dict[str, int]]:
    """A Stats; its result maps each counter's name to its value."""

    def decode(reply: pb.Reply) -> dict[str, int]:
        check(reply)
        return {s.name: int(s.value) for s in reply.stats.stats}

    return Call(pb.Request(stats=pb.StatsRequest()), decode, retry_safe=True)


def ping() -> Call[PingInfo]:
    """A Ping; its result is the daemon's PingInfo. Raises ProtocolError when
    the daemon speaks another wire protocol version."""

    def decode(reply: pb.Reply) -> PingInfo:
        check(reply)
        p = reply.ping
        protocol = p.protocol_version or 1
        if protocol != PROTOCOL_VERSION:
            want = PROTOCOL_VERSION
            raise ProtocolError(
                f"the daemon speaks wire protocol version {protocol}, this client {want}"
            )
        return PingInfo(
            p.version,
            p.node_id,
            p.uptime_ms,
            p.redis_up,
            p.subscribed,
            p.l1_serving,
            p.max_request_size,
            protocol,
        )

    return Call(pb.Request(ping=pb.PingRequest()), decode, retry_safe=True)


def raw(body: bytes) -> Call[pb.Reply]:
    """Sends ``body`` as the request bytes, unchanged; its result is the
    decoded Reply, whatever its code (for conformance tests and tools)."""
    return Call(None, lambda reply: reply, retry_safe=False, raw=body)


# --- the connection's state -------------------------------------------------


class Protocol:
    """One connection's protocol state: the handshake, request ids and the
    reply frames. Feed it bytes read with :meth:`receive`."""

    def __init__(self) -> None:
        self._next = 1
        self._hello = bytearray()
        self.ready = False
        self._frames = _sp.FrameReader()

    def initiate(self) -> bytes:
        """Returns the bytes to write first: our SP header."""
        return _sp.handshake(_sp.PROTO_REQ)

    def encode(self, call: Call[T], timeout_ms: int) -> tuple[int, bytes]:
        """Gives ``call`` a fresh request id and returns ``(sp_id, frame)``."""
        n = self._next
        self._next = n + 1 if n < 0x7FFFFFFF else 1
        if call.raw is not None:
            body = call.raw
        else:
            assert call.request is not None
            call.request.id = n
            call.request.timeout_ms = max(0, min(timeout_ms, 0xFFFFFFFF))
            body = call.request.SerializeToString()
        return _sp.request_id(n), _sp.frame(_sp.request_id(n), body)

    def receive(self, data: bytes) -> list[tuple[int, bytes]]:
        """Takes bytes read from the socket; returns the replies completed,
        as ``(sp_id, body)``. Raises ProtocolError on a bad handshake or
        frame (the connection must then be dropped)."""
        if not self.ready:
            need = _sp.HANDSHAKE_LEN - len(self._hello)
            self._hello += data[:need]
            data = data[need:]
            if len(self._hello) < _sp.HANDSHAKE_LEN:
                return []
            _sp.check_handshake(bytes(self._hello), _sp.PROTO_REP)
            self.ready = True
        if data:
            self._frames.feed(data)
        return self._frames.replies()


def finish(call: Call[T], body: bytes) -> T:
    """Decodes a reply body for ``call``: returns its result or raises its
    error (an :class:`Error` subclass)."""
    reply = pb.Reply()
    try:
        reply.ParseFromString(body)
    except Exception as e:  # protobuf's DecodeError, whichever backend
        raise ProtocolError(f"reply of {len(body)} bytes is not a nearcache.v1.Reply") from e
    if call.request is not None and reply.id not in (call.request.id, 0):
        raise ProtocolError(f"reply id {reply.id} does not match request id {call.request.id}")
    return call.decode(reply)


def check_size(size: int, limit: int | None) -> None:
    """Raises ResourceExhausted when a request of ``size`` bytes is larger
    than the daemon's ``limit`` (None: not known yet)."""
    if limit and size > limit:
        raise ResourceExhausted(
            f"request of {size} bytes is larger than the daemon accepts "
            f"({limit} bytes; see max_value_size)"
        )


def request_size(call: Call[T]) -> int:
    """Returns the bytes ``call`` would put on the wire (without framing)."""
    if call.raw is not None:
        return len(call.raw)
    assert call.request is not None
    return call.request.ByteSize() + 16
