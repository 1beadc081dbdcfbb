"""nearcache: the Python client of nearcached, the per-host cache daemon.

``Client`` (blocking, thread-safe) and ``AsyncClient`` (asyncio, many
requests in flight on one connection) speak the daemon's protocol
(docs/protocol.md) themselves; ``cached`` is the read-through decorator.
Every error is a :class:`nearcache.Error`.
"""

from importlib import metadata as _metadata

from ._async import AsyncClient
from ._cached import (
    AsyncCached,
    Cached,
    abump,
    ainvalidate,
    bump,
    cached,
    default_async_client,
    default_client,
    invalidate,
    set_default_clients,
)
from ._codec import Serializer
from ._core import DEFAULT_URL, GetResult, LeaseState, PingInfo, Source
from ._flow import CacheWarning
from ._near import NearStats
from ._sync import Client
from .errors import (
    Aborted,
    DeadlineExceeded,
    Error,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ProtocolError,
    ResourceExhausted,
    Unavailable,
    Unimplemented,
)

try:
    __version__ = _metadata.version("nearcache")  # pyproject.toml's, as installed
except _metadata.PackageNotFoundError:  # imported from a source tree without installing
    __version__ = "0+unknown"

__all__ = [
    "DEFAULT_URL",
    "Aborted",
    "AsyncCached",
    "AsyncClient",
    "CacheWarning",
    "Cached",
    "Client",
    "DeadlineExceeded",
    "Error",
    "FailedPrecondition",
    "GetResult",
    "Internal",
    "InvalidArgument",
    "LeaseState",
    "NearStats",
    "NotFound",
    "PermissionDenied",
    "PingInfo",
    "ProtocolError",
    "ResourceExhausted",
    "Serializer",
    "Source",
    "Unavailable",
    "Unimplemented",
    "__version__",
    "abump",
    "ainvalidate",
    "bump",
    "cached",
    "default_async_client",
    "default_client",
    "invalidate",
    "set_default_clients",
]
