"""The exception tree: every error the client raises is a ``nearcache.Error``.

One class per status code that a caller would handle differently; each
carries the daemon's message (``str(e)``), its code number and name.
Client-side failures map onto the same tree: a daemon that cannot be reached
is :class:`Unavailable`, a reply that did not come in time
:class:`DeadlineExceeded`, bytes that are not the protocol
:class:`ProtocolError`.
"""

from __future__ import annotations

from ._pb import nearcache_pb2 as pb

__all__ = [
    "Aborted",
    "DeadlineExceeded",
    "Error",
    "FailedPrecondition",
    "Internal",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ProtocolError",
    "ResourceExhausted",
    "Unavailable",
    "Unimplemented",
    "error_for",
]

#: The status codes' names, from the generated enum (proto/nearcache.proto's Code).
_CODE_NAMES: dict[int, str] = {v.number: v.name for v in pb.Code.DESCRIPTOR.values}


class Error(Exception):
    """Base of every nearcache error. ``code`` is the gRPC status number
    (2, UNKNOWN, for client-side errors without one) and ``message`` the
    daemon's (or the client's) explanation."""

    default_code: int = pb.UNKNOWN
    #: After a failed MSet whose answer named its entries (docs/protocol.md,
    #: MSet): the keys not stored, and the keys whose write may have run
    #: (retrying them is safe); every other key was stored. None when the
    #: answer said nothing of the entries, and for any other call.
    not_stored: list[bytes] | None = None
    maybe_stored: list[bytes] | None = None

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = self.default_code if code is None else code

    @property
    def code_name(self) -> str:
        """The status code's name, e.g. ``"UNAVAILABLE"``."""
        return _CODE_NAMES.get(self.code, f"CODE_{self.code}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, code={self.code_name})"


class InvalidArgument(Error):
    """The request broke a rule (empty key, ':' in a namespace, bad TTL...)."""

    default_code: int = pb.INVALID_ARGUMENT


class DeadlineExceeded(Error):
    """The budget ran out, in the daemon or waiting for its reply."""

    default_code: int = pb.DEADLINE_EXCEEDED


class NotFound(Error):
    """The key does not exist (raised only where absence is not a result)."""

    default_code: int = pb.NOT_FOUND


class PermissionDenied(Error):
    """The daemon refused the caller access."""

    default_code: int = pb.PERMISSION_DENIED


class ResourceExhausted(Error):
    """A value or request too large, or the daemon overloaded or out of memory."""

    default_code: int = pb.RESOURCE_EXHAUSTED


class FailedPrecondition(Error):
    """Redis holds something other than a string at the key."""

    default_code: int = pb.FAILED_PRECONDITION


class Aborted(Error):
    """A Set with a lease token whose lease is gone: nothing was stored."""

    default_code: int = pb.ABORTED


class Unimplemented(Error):
    """The daemon does not know the method."""

    default_code: int = pb.UNIMPLEMENTED


class Internal(Error):
    """A bug in the daemon."""

    default_code: int = pb.INTERNAL


class Unavailable(Error):
    """The daemon, or its Redis, cannot be reached; or it is shutting down."""

    default_code: int = pb.UNAVAILABLE


class ProtocolError(Unavailable):
    """The peer sent bytes that are not the nearcache protocol; the
    connection is dropped."""


_BY_CODE: dict[int, type[Error]] = {
    cls.default_code: cls
    for cls in (
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        Unimplemented,
        Internal,
        Unavailable,
    )
}


def error_for(code: int, message: str) -> Error:
    """Returns the exception for a reply's status ``code`` (never 0): the
    class for that code, or :class:`Error` itself for any other code."""
    cls = _BY_CODE.get(code, Error)
    return cls(message or _CODE_NAMES.get(code, f"status {code}"), code)
