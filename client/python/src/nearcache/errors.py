"""The exception tree: every error the client raises is a ``nearcache.Error``.

One class per status code that a caller would handle differently; each
carries the daemon's message (``str(e)``), its code number and name.
Client-side failures map onto the same tree: a daemon that cannot be reached
is :class:`Unavailable`, a reply that did not come in time
:class:`DeadlineExceeded`, bytes that are not the protocol
:class:`ProtocolError`.
"""

from __future__ import annotations

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

_CODE_NAMES = {
    0: "OK",
    1: "CANCELLED",
    2: "UNKNOWN",
    3: "INVALID_ARGUMENT",
    4: "DEADLINE_EXCEEDED",
    5: "NOT_FOUND",
    6: "ALREADY_EXISTS",
    7: "PERMISSION_DENIED",
    8: "RESOURCE_EXHAUSTED",
    9: "FAILED_PRECONDITION",
    10: "ABORTED",
    11: "OUT_OF_RANGE",
    12: "UNIMPLEMENTED",
    13: "INTERNAL",
    14: "UNAVAILABLE",
    15: "DATA_LOSS",
    16: "UNAUTHENTICATED",
}


class Error(Exception):
    """Base of every nearcache error. ``code`` is the gRPC status number
    (2, UNKNOWN, for client-side errors without one) and ``message`` the
    daemon's (or the client's) explanation."""

    default_code = 2

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

    default_code = 3


class DeadlineExceeded(Error):
    """The budget ran out, in the daemon or waiting for its reply."""

    default_code = 4


class NotFound(Error):
    """The key does not exist (raised only where absence is not a result)."""

    default_code = 5


class PermissionDenied(Error):
    """The daemon refused the caller access."""

    default_code = 7


class ResourceExhausted(Error):
    """A value or request too large, or the daemon overloaded or out of memory."""

    default_code = 8


class FailedPrecondition(Error):
    """Redis holds something other than a string at the key."""

    default_code = 9


class Aborted(Error):
    """A Set with a lease token whose lease is gone: nothing was stored."""

    default_code = 10


class Unimplemented(Error):
    """The daemon does not know the method."""

    default_code = 12


class Internal(Error):
    """A bug in the daemon."""

    default_code = 13


class Unavailable(Error):
    """The daemon, or its Redis, cannot be reached; or it is shutting down."""

    default_code = 14


class ProtocolError(Unavailable):
    """The peer sent bytes that are not the nearcache protocol; the
    connection is dropped."""


_BY_CODE: dict[int, type[Error]] = {
    3: InvalidArgument,
    4: DeadlineExceeded,
    5: NotFound,
    7: PermissionDenied,
    8: ResourceExhausted,
    9: FailedPrecondition,
    10: Aborted,
    12: Unimplemented,
    13: Internal,
    14: Unavailable,
}


def error_for(code: int, message: str) -> Error:
    """Returns the exception for a reply's status ``code`` (never 0): the
    class for that code, or :class:`Error` itself for any other code."""
    cls = _BY_CODE.get(code, Error)
    return cls(message or _CODE_NAMES.get(code, f"status {code}"), code)
